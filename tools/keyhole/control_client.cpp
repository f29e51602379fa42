#include "control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace keyhole::cli {

namespace {

// Replies can be long (message history) but not unbounded.
constexpr std::size_t kMaxReplyLine = 64 * 1024 * 1024;

std::string seconds_text(std::chrono::milliseconds timeout) {
    auto tenths = (timeout.count() + 50) / 100;
    std::string text = std::to_string(tenths / 10);
    if (tenths % 10 != 0) text += "." + std::to_string(tenths % 10);
    return text;
}

}  // namespace

Result<ControlClient> ControlClient::connect(const std::filesystem::path& socket_path,
                                             std::chrono::milliseconds timeout) {
    const std::string path = socket_path.string();
    auto cannot_connect = [&](const std::string& reason) {
        return fail("cannot connect to the daemon at " + path + ": " + reason +
                    " (is keyholed running?)");
    };

    sockaddr_un address{};
    if (path.empty() || path.size() >= sizeof(address.sun_path)) {
        return cannot_connect("socket path is empty or too long");
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);

    // Non-blocking throughout, so a stuck daemon costs at most the timeout.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(std::string("cannot create a socket: ") + std::strerror(errno));
    ControlClient client(fd, timeout);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        if (errno == EAGAIN) {
            return cannot_connect("the daemon is not accepting connections");
        }
        return cannot_connect(std::strerror(errno));
    }
    return client;
}

ControlClient::ControlClient(ControlClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      timeout_(other.timeout_),
      next_id_(other.next_id_),
      closed_(other.closed_),
      received_(std::move(other.received_)),
      events_(std::move(other.events_)) {}

ControlClient& ControlClient::operator=(ControlClient&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        timeout_ = other.timeout_;
        next_id_ = other.next_id_;
        closed_ = other.closed_;
        received_ = std::move(other.received_);
        events_ = std::move(other.events_);
    }
    return *this;
}

ControlClient::~ControlClient() {
    if (fd_ >= 0) ::close(fd_);
}

Result<ControlResponse> ControlClient::call(nlohmann::json request) {
    return call(std::move(request), timeout_);
}

Result<ControlResponse> ControlClient::call(nlohmann::json request,
                                            std::chrono::milliseconds timeout) {
    const Deadline deadline = std::chrono::steady_clock::now() + timeout;
    const std::int64_t id = next_id_++;
    request["id"] = id;
    std::string line = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    if (auto sent = send_all(line, deadline); !sent) return fail(sent.error());

    auto reply = read_reply(id, deadline);
    if (!reply) return fail(reply.error());
    if (!*reply) {
        return fail("the daemon did not answer within " + seconds_text(timeout) + " s" +
                    (timeout == timeout_ ? " (see --timeout)" : ""));
    }
    return std::move(**reply);
}

Result<std::int64_t> ControlClient::send_request(nlohmann::json request) {
    const std::int64_t id = next_id_++;
    request["id"] = id;
    std::string line = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    if (auto sent = send_all(line, std::chrono::steady_clock::now() + timeout_); !sent) {
        return fail(sent.error());
    }
    return id;
}

Result<std::optional<ControlResponse>> ControlClient::poll_reply(
    std::int64_t id, std::chrono::milliseconds timeout) {
    return read_reply(id, std::chrono::steady_clock::now() + timeout);
}

Result<std::optional<nlohmann::json>> ControlClient::read_event(
    std::chrono::milliseconds timeout) {
    const Deadline deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (!events_.empty()) {
            nlohmann::json event = std::move(events_.front());
            events_.pop_front();
            return std::optional<nlohmann::json>(std::move(event));
        }
        auto received = read_line(deadline);
        if (!received) return fail(received.error());
        if (!*received) return std::optional<nlohmann::json>();
        auto line = nlohmann::json::parse(**received, nullptr, /*allow_exceptions=*/false);
        if (line.is_discarded() || !line.is_object()) {
            return fail("the daemon sent something that is not a JSON object");
        }
        if (is_event(line)) return std::optional<nlohmann::json>(std::move(line));
        // A reply nobody is waiting for any more (e.g. after a timeout): skipped.
    }
}

bool ControlClient::is_event(const nlohmann::json& line) {
    auto event = line.find("event");
    return event != line.end() && event->is_string() && !line.contains("id");
}

Result<std::optional<ControlResponse>> ControlClient::read_reply(std::int64_t id,
                                                                 Deadline deadline) {
    for (;;) {
        auto received = read_line(deadline);
        if (!received) {
            if (closed_) return fail("the daemon closed the connection without replying");
            return fail(received.error());
        }
        if (!*received) return std::optional<ControlResponse>();
        auto reply = nlohmann::json::parse(**received, nullptr, /*allow_exceptions=*/false);
        if (reply.is_discarded() || !reply.is_object()) {
            return fail("the daemon sent something that is not a JSON object");
        }
        if (is_event(reply)) {
            events_.push_back(std::move(reply));
            continue;
        }
        auto reply_id = reply.find("id");
        if (reply_id == reply.end() || *reply_id != id) continue;  // another request's reply

        ControlResponse response;
        auto ok = reply.find("ok");
        response.ok = ok != reply.end() && ok->is_boolean() && ok->get<bool>();
        if (response.ok) {
            if (auto result = reply.find("result"); result != reply.end()) {
                response.result = *result;
            }
            return std::optional<ControlResponse>(std::move(response));
        }
        response.error_code = "internal";
        response.error_message = "the daemon reported an error without a message";
        if (auto error = reply.find("error"); error != reply.end() && error->is_object()) {
            if (auto code = error->find("code"); code != error->end() && code->is_string()) {
                response.error_code = code->get<std::string>();
            }
            if (auto message = error->find("message");
                message != error->end() && message->is_string()) {
                response.error_message = message->get<std::string>();
            }
        }
        return std::optional<ControlResponse>(std::move(response));
    }
}

Result<bool> ControlClient::wait_for(short events, Deadline deadline) {
    for (;;) {
        auto remaining = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (remaining.count() <= 0) return false;
        pollfd entry{fd_, events, 0};
        int ready = ::poll(&entry, 1, static_cast<int>(std::min<std::int64_t>(
                                          remaining.count(), 24 * 3600 * 1000)));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) {
            return fail(std::string("cannot wait for the daemon: ") + std::strerror(errno));
        }
        if (ready > 0) return true;
    }
}

Status ControlClient::send_all(const std::string& data, Deadline deadline) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        // MSG_NOSIGNAL: a daemon that went away is an error message, not SIGPIPE.
        ssize_t count = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (count >= 0) {
            sent += static_cast<std::size_t>(count);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return fail(std::string("cannot send to the daemon: ") + std::strerror(errno));
        }
        auto ready = wait_for(POLLOUT, deadline);
        if (!ready) return fail(ready.error());
        if (!*ready) {
            return fail("the daemon did not take the request within " +
                        seconds_text(timeout_) + " s (see --timeout)");
        }
    }
    return success();
}

Result<std::optional<std::string>> ControlClient::read_line(Deadline deadline) {
    std::array<char, 64 * 1024> chunk;
    for (;;) {
        if (auto newline = received_.find('\n'); newline != std::string::npos) {
            std::string line = received_.substr(0, newline);
            received_.erase(0, newline + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return std::optional<std::string>(std::move(line));
        }
        if (received_.size() > kMaxReplyLine) return fail("the daemon's reply is too large");
        if (closed_) return fail("the daemon closed the connection");

        ssize_t count = ::recv(fd_, chunk.data(), chunk.size(), 0);
        if (count > 0) {
            received_.append(chunk.data(), static_cast<std::size_t>(count));
            continue;
        }
        if (count == 0) {
            closed_ = true;
            return fail("the daemon closed the connection");
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return fail(std::string("cannot read from the daemon: ") + std::strerror(errno));
        }
        auto ready = wait_for(POLLIN, deadline);
        if (!ready) return fail(ready.error());
        if (!*ready) return std::optional<std::string>();
    }
}

}  // namespace keyhole::cli
