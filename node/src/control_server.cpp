#include "keyhole/node/control_server.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

namespace keyhole::node {

namespace fs = std::filesystem;

namespace {

using Local = asio::local::stream_protocol;

constexpr std::size_t kMaxConnections = 64;
// A client that sends requests but never reads its replies must not make the
// daemon buffer without bound.
constexpr std::size_t kMaxPendingOutput = 8 * 1024 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;
// accept() errors such as EMFILE persist; retrying at once would spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(200);

std::string errno_text() {
    return std::strerror(errno);
}

std::size_t max_socket_path_length() {
    return sizeof(sockaddr_un{}.sun_path) - 1;
}

Result<gid_t> find_group(const std::string& name) {
    long suggested = sysconf(_SC_GETGR_R_SIZE_MAX);
    std::vector<char> buffer(suggested > 0 ? static_cast<std::size_t>(suggested) : 16384);
    for (;;) {
        group entry{};
        group* found = nullptr;
        int error = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
        if (error == ERANGE && buffer.size() < (1u << 20)) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        if (error != 0) {
            return fail("cannot look up control group '" + name + "': " + std::strerror(error));
        }
        if (!found) return fail("control group '" + name + "' does not exist");
        return found->gr_gid;
    }
}

// Creates the socket's directory if missing. It is private to the owner, or
// traversable by the control group when one is configured, since the group
// cannot reach a 0660 socket inside a 0700 directory.
Status ensure_parent_directory(const fs::path& socket_path, std::optional<gid_t> group) {
    fs::path parent = socket_path.parent_path();
    if (parent.empty()) return success();
    std::error_code error;
    if (fs::exists(parent, error)) return success();

    if (fs::path grandparent = parent.parent_path(); !grandparent.empty()) {
        fs::create_directories(grandparent, error);
        if (error) {
            return fail("cannot create directory " + grandparent.string() + ": " + error.message());
        }
    }
    if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
        return fail("cannot create directory " + parent.string() + ": " + errno_text());
    }
    mode_t mode = group ? 0750 : 0700;
    if (group && ::chown(parent.c_str(), static_cast<uid_t>(-1), *group) != 0) {
        return fail("cannot give directory " + parent.string() +
                    " to the control group: " + errno_text());
    }
    if (::chmod(parent.c_str(), mode) != 0) {
        return fail("cannot set the mode of directory " + parent.string() + ": " + errno_text());
    }
    return success();
}

// An existing socket file is either a live daemon (refuse) or left over from
// one that died (remove). Anything else at the path is not ours to delete.
Status clear_stale_socket(const fs::path& path) {
    const std::string name = path.string();
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) {
        if (errno == ENOENT) return success();
        return fail("cannot inspect control socket " + name + ": " + errno_text());
    }
    if (!S_ISSOCK(status.st_mode)) {
        return fail(name + " exists and is not a socket; not replacing it");
    }

    // Non-blocking: a live daemon with a full backlog answers EAGAIN instead
    // of stalling our startup.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0) return fail("cannot create a socket: " + errno_text());
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
    int connected = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    int connect_error = errno;
    ::close(probe);

    if (connected == 0 || connect_error == EAGAIN || connect_error == EINPROGRESS) {
        return fail("control socket " + name + " is in use by another daemon");
    }
    if (connect_error != ECONNREFUSED) {
        return fail("cannot check control socket " + name + ": " + std::strerror(connect_error));
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return fail("cannot remove stale control socket " + name + ": " + errno_text());
    }
    spdlog::info("removed stale control socket {}", name);
    return success();
}

class Listener;

// One client. Lives while the listener holds it or an operation is in flight;
// replies hold only a weak reference, so they cannot keep a closed one alive.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(Local::socket socket, std::weak_ptr<Listener> listener, std::uint64_t number)
        : socket_(std::move(socket)),
          listener_(std::move(listener)),
          number_(number),
          read_buffer_(kReadChunk) {}

    void start() {
        spdlog::debug("control: client {} connected", number_);
        read_more();
    }

    void queue_line(std::string line);
    void close();
    Local::socket::executor_type executor() { return socket_.get_executor(); }

    // Counts requests whose replies may still come (see PendingRequest).
    // After the client half-closes (`printf ... | socat`), the connection
    // stays open until they are all answered or abandoned, so late replies
    // are still delivered.
    void request_started() { ++outstanding_requests_; }
    void request_finished() {
        --outstanding_requests_;
        close_if_finished();
    }

private:
    void read_more();
    void on_read(const std::error_code& error, std::size_t count);
    void consume(std::string_view data);
    void handle_line(std::string_view line);
    void reply_line_too_long();
    void write_next();
    void on_written(const std::error_code& error);
    void close_if_finished();
    bool peer_hung_up();
    ControlReply make_reply();

    Local::socket socket_;
    std::weak_ptr<Listener> listener_;
    std::uint64_t number_;
    std::vector<char> read_buffer_;
    std::string partial_line_;
    bool discarding_oversized_line_ = false;
    bool peer_finished_sending_ = false;
    bool closed_ = false;
    bool writing_ = false;
    std::deque<std::string> outbox_;  // deque: front() stays put while we append
    std::size_t outbox_bytes_ = 0;
    std::size_t outstanding_requests_ = 0;
};

// Marks one request outstanding until every copy of its ControlReply is gone.
// The last copy may die on another thread (a DHT callback wrapper released on
// OpenDHT's thread), so the bookkeeping is posted back to the io_context.
class PendingRequest {
public:
    explicit PendingRequest(const std::shared_ptr<Connection>& owner)
        : connection_(owner), executor_(owner->executor()) {
        owner->request_started();
    }
    ~PendingRequest() {
        try {
            asio::post(executor_, [connection = std::move(connection_)] {
                if (auto owner = connection.lock()) owner->request_finished();
            });
        } catch (...) {
            // Only allocation can fail here; the connection then merely stays
            // open until the client closes it.
        }
    }
    PendingRequest(const PendingRequest&) = delete;
    PendingRequest& operator=(const PendingRequest&) = delete;

    std::shared_ptr<Connection> connection() const { return connection_.lock(); }

private:
    std::weak_ptr<Connection> connection_;
    Local::socket::executor_type executor_;
};

// The listening socket and its connections. Shared so that completion
// handlers still queued after ControlServer is gone find a valid object.
class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(asio::io_context& io, ControlHandler handler)
        : handler_(std::move(handler)), acceptor_(io), retry_timer_(io) {}

    Status start(const ControlSocketOptions& options);
    void stop();
    std::size_t connection_count() const { return connections_.size(); }

    void dispatch(const ControlRequest& request, const ControlReply& reply);
    void forget(Connection* connection) { connections_.erase(connection); }

private:
    Status bind_and_listen(const fs::path& path, std::optional<gid_t> group);
    void accept_next();
    void on_accept(std::uint64_t generation, const std::error_code& error, Local::socket socket);
    void remove_socket_file();

    ControlHandler handler_;
    Local::acceptor acceptor_;
    asio::steady_timer retry_timer_;
    fs::path path_;
    bool running_ = false;
    // Bumped by stop() so an accept completing from an earlier run is ignored.
    std::uint64_t generation_ = 0;
    // Identifies the file we bound, so stop() never unlinks a successor's socket.
    dev_t socket_device_ = 0;
    ino_t socket_inode_ = 0;
    std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
    std::uint64_t next_client_number_ = 1;
};

// ---------------------------------------------------------------------------
// Connection

void Connection::read_more() {
    socket_.async_read_some(
        asio::buffer(read_buffer_),
        [self = shared_from_this()](const std::error_code& error, std::size_t count) {
            self->on_read(error, count);
        });
}

void Connection::on_read(const std::error_code& error, std::size_t count) {
    if (closed_) return;
    if (error == asio::error::eof) {
        // A last request without a trailing newline still counts.
        if (!discarding_oversized_line_ && !partial_line_.empty()) consume("\n");
        if (closed_) return;
        peer_finished_sending_ = true;
        if (peer_hung_up()) {
            close();
        } else {
            close_if_finished();
        }
        return;
    }
    if (error) {
        close();
        return;
    }
    consume(std::string_view(read_buffer_.data(), count));
    if (!closed_) read_more();
}

void Connection::consume(std::string_view data) {
    // The handler may close this connection (or stop the server) mid-batch.
    while (!data.empty() && !closed_) {
        std::size_t newline = data.find('\n');
        bool complete = newline != std::string_view::npos;
        std::string_view piece = data.substr(0, newline);
        data.remove_prefix(complete ? newline + 1 : data.size());

        if (discarding_oversized_line_) {
            if (complete) discarding_oversized_line_ = false;
            continue;
        }
        // One spare byte for the '\r' of a CRLF line ending.
        if (partial_line_.size() + piece.size() > kMaxControlLine + 1) {
            partial_line_.clear();
            partial_line_.shrink_to_fit();
            reply_line_too_long();
            discarding_oversized_line_ = !complete;
            continue;
        }
        if (!complete) {
            partial_line_.append(piece);
            continue;
        }

        std::string joined;
        std::string_view line = piece;
        if (!partial_line_.empty()) {
            joined = std::move(partial_line_);
            partial_line_.clear();
            joined.append(piece);
            line = joined;
        }
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        handle_line(line);
    }
}

void Connection::reply_line_too_long() {
    queue_line(make_error_reply(
        nullptr, error_code::line_too_long,
        "request line is longer than " + std::to_string(kMaxControlLine) + " bytes"));
}

void Connection::handle_line(std::string_view line) {
    ParsedRequest parsed = parse_request_line(line);
    if (auto* error = std::get_if<ControlError>(&parsed)) {
        spdlog::debug("control: client {} sent a bad request: {}", number_, error->message);
        queue_line(make_error_reply(*error));
        return;
    }
    // Held for the call: the handler may destroy the ControlServer.
    auto listener = listener_.lock();
    if (!listener) return;
    listener->dispatch(std::get<ControlRequest>(parsed), make_reply());
}

ControlReply Connection::make_reply() {
    auto pending = std::make_shared<PendingRequest>(shared_from_this());
    return [pending](std::string line) {
        if (auto connection = pending->connection()) connection->queue_line(std::move(line));
    };
}

void Connection::queue_line(std::string line) {
    if (closed_) return;
    line.push_back('\n');
    // A single large reply is allowed; only a backlog the client leaves unread is not.
    if (!outbox_.empty() && outbox_bytes_ + line.size() > kMaxPendingOutput) {
        spdlog::warn("control: client {} is not reading its replies; closing it", number_);
        close();
        return;
    }
    outbox_bytes_ += line.size();
    outbox_.push_back(std::move(line));
    if (!writing_) write_next();
}

void Connection::write_next() {
    writing_ = true;
    asio::async_write(socket_, asio::buffer(outbox_.front()),
                      [self = shared_from_this()](const std::error_code& error, std::size_t) {
                          self->on_written(error);
                      });
}

void Connection::on_written(const std::error_code& error) {
    writing_ = false;
    if (closed_) return;
    if (error) {
        close();
        return;
    }
    outbox_bytes_ -= outbox_.front().size();
    outbox_.pop_front();
    if (!outbox_.empty()) {
        write_next();
    } else {
        close_if_finished();
    }
}

// EOF alone cannot tell a half-close (the client still reads) from a client
// that is gone; on Linux, POLLHUP means both directions are shut.
bool Connection::peer_hung_up() {
    pollfd entry{socket_.native_handle(), POLLOUT, 0};
    return ::poll(&entry, 1, 0) > 0 && (entry.revents & (POLLHUP | POLLERR)) != 0;
}

void Connection::close_if_finished() {
    if (closed_ || !peer_finished_sending_) return;
    if (writing_ || !outbox_.empty() || outstanding_requests_ > 0) return;
    close();
}

void Connection::close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ignored;
    socket_.close(ignored);
    spdlog::debug("control: client {} disconnected", number_);
    if (auto listener = listener_.lock()) listener->forget(this);
}

// ---------------------------------------------------------------------------
// Listener

Status Listener::start(const ControlSocketOptions& options) {
    if (running_) return fail("the control server is already running");
    const fs::path& path = options.path;
    const std::string name = path.string();
    if (name.empty()) return fail("no control socket path given");
    if (name.size() > max_socket_path_length()) {
        return fail("control socket path " + name + " is too long (at most " +
                    std::to_string(max_socket_path_length()) + " bytes)");
    }

    std::optional<gid_t> group;
    if (!options.group.empty()) {
        auto found = find_group(options.group);
        if (!found) return fail(found.error());
        group = *found;
    }
    if (auto made = ensure_parent_directory(path, group); !made) return made;
    if (auto cleared = clear_stale_socket(path); !cleared) return cleared;

    Status bound = success();
    try {
        bound = bind_and_listen(path, group);
    } catch (const std::exception& error) {
        // Asio's throwing paths (e.g. endpoint construction) as a value.
        bound = fail("cannot start control socket " + name + ": " + error.what());
    }
    if (!bound) {
        std::error_code ignored;
        acceptor_.close(ignored);
        return bound;
    }
    path_ = path;
    running_ = true;
    spdlog::info("control socket listening on {}", name);
    accept_next();
    return success();
}

Status Listener::bind_and_listen(const fs::path& path, std::optional<gid_t> group) {
    const std::string name = path.string();
    std::error_code error;
    acceptor_.open(Local(), error);
    if (error) return fail("cannot create the control socket: " + error.message());

    // The umask makes the socket 0600 from the moment it exists; chmod after
    // bind alone would leave a window where it is as open as the umask allows.
    // The umask is process-wide, which is fine while the daemon starts up on
    // one thread.
    mode_t previous_umask = ::umask(0177);
    acceptor_.bind(Local::endpoint(name), error);
    ::umask(previous_umask);
    if (error) return fail("cannot bind control socket " + name + ": " + error.message());

    auto unlink_and_fail = [&](std::string message) -> Status {
        ::unlink(path.c_str());
        return fail(std::move(message));
    };
    struct stat status {};
    if (::stat(path.c_str(), &status) != 0) {
        return unlink_and_fail("cannot inspect control socket " + name + ": " + errno_text());
    }
    socket_device_ = status.st_dev;
    socket_inode_ = status.st_ino;

    if (group) {
        if (::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
            return unlink_and_fail("cannot give control socket " + name +
                                   " to the control group: " + errno_text());
        }
        if (::chmod(path.c_str(), 0660) != 0) {
            return unlink_and_fail("cannot set the mode of control socket " + name + ": " +
                                   errno_text());
        }
    } else if (::chmod(path.c_str(), 0600) != 0) {
        return unlink_and_fail("cannot set the mode of control socket " + name + ": " +
                               errno_text());
    }

    acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
        return unlink_and_fail("cannot listen on control socket " + name + ": " + error.message());
    }
    return success();
}

void Listener::accept_next() {
    acceptor_.async_accept([self = shared_from_this(), generation = generation_](
                               const std::error_code& error, Local::socket socket) {
        self->on_accept(generation, error, std::move(socket));
    });
}

void Listener::on_accept(std::uint64_t generation, const std::error_code& error,
                         Local::socket socket) {
    if (!running_ || generation != generation_) return;
    if (error) {
        if (error == asio::error::operation_aborted) return;
        spdlog::warn("control: accept failed: {}", error.message());
        retry_timer_.expires_after(kAcceptRetryDelay);
        retry_timer_.async_wait([self = shared_from_this(), generation](const std::error_code& e) {
            if (!e && self->running_ && generation == self->generation_) self->accept_next();
        });
        return;
    }
    if (connections_.size() >= kMaxConnections) {
        spdlog::warn("control: refusing a client, {} already connected", connections_.size());
        std::error_code ignored;
        socket.close(ignored);
    } else {
        auto connection = std::make_shared<Connection>(std::move(socket), weak_from_this(),
                                                       next_client_number_++);
        connections_.emplace(connection.get(), connection);
        connection->start();
    }
    accept_next();
}

void Listener::dispatch(const ControlRequest& request, const ControlReply& reply) {
    if (!running_) return;
    try {
        handler_(request, reply);
    } catch (const std::exception& error) {
        // A handler bug must not unwind through the event loop and take the
        // daemon down with it.
        spdlog::error("control: command '{}' failed: {}", request.command, error.what());
        reply(make_error_reply(request.id, error_code::internal, "internal error"));
    }
}

void Listener::stop() {
    if (!running_) return;
    running_ = false;
    ++generation_;
    std::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    auto open_connections = std::move(connections_);
    connections_.clear();
    for (auto& [raw, connection] : open_connections) connection->close();
    remove_socket_file();
    spdlog::info("control socket {} closed", path_.string());
}

void Listener::remove_socket_file() {
    struct stat status {};
    if (::lstat(path_.c_str(), &status) != 0) return;
    if (status.st_dev != socket_device_ || status.st_ino != socket_inode_) {
        spdlog::warn("control socket {} was replaced by another; leaving it", path_.string());
        return;
    }
    if (::unlink(path_.c_str()) != 0) {
        spdlog::warn("cannot remove control socket {}: {}", path_.string(), errno_text());
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// ControlServer

struct ControlServer::Impl {
    std::shared_ptr<Listener> listener;
};

ControlServer::ControlServer(asio::io_context& io, ControlHandler handler)
    : impl_(std::make_unique<Impl>(Impl{std::make_shared<Listener>(io, std::move(handler))})) {}

ControlServer::~ControlServer() {
    stop();
}

Status ControlServer::start(const ControlSocketOptions& options) {
    return impl_->listener->start(options);
}

void ControlServer::stop() {
    impl_->listener->stop();
}

std::size_t ControlServer::connection_count() const {
    return impl_->listener->connection_count();
}

}  // namespace keyhole::node
