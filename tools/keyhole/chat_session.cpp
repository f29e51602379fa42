// `keyhole chat ID`: an interactive conversation. One connection subscribes
// to events (incoming messages, delivery acks, session changes); another
// sends each line read from stdin. poll() watches stdin and the
// subscription, so no threads are needed.
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>

#include "chat_commands.h"
#include "control_client.h"
#include "poll_wait.h"
#include "render.h"

namespace keyhole::cli {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

class ChatSession {
public:
    ChatSession(std::string peer, ControlClient events, ControlClient sender, std::ostream& out,
                std::ostream& err)
        : peer_(std::move(peer)),
          events_(std::move(events)),
          sender_(std::move(sender)),
          out_(out),
          err_(err),
          stdin_is_terminal_(::isatty(STDIN_FILENO) == 1),
          stdout_is_terminal_(::isatty(STDOUT_FILENO) == 1),
          stderr_is_terminal_(::isatty(STDERR_FILENO) == 1) {}

    int run();

private:
    // Prints what the subscription has; false when it has ended.
    bool drain_events();
    void on_event(const json& event);
    // Reads what stdin has; sends complete lines. False on a fatal error.
    bool read_stdin();
    bool send_line(std::string line);

    std::string peer_;
    ControlClient events_;
    ControlClient sender_;
    std::ostream& out_;
    std::ostream& err_;
    const bool stdin_is_terminal_;
    const bool stdout_is_terminal_;
    // Progress (looking up, connecting, session up via a path) is for a
    // person watching; it goes to stderr and only when that is a terminal,
    // so piped output holds the conversation alone.
    const bool stderr_is_terminal_;

    bool stdin_open_ = true;
    std::string input_;
    bool discarding_long_line_ = false;
    // Sent in this chat, not yet acknowledged. A send's reply is always read
    // before the events that follow it, so its ack cannot come first.
    std::unordered_set<std::string> outstanding_;
};

int ChatSession::run() {
    if (stdin_is_terminal_) {
        err_ << "chatting with " << peer_ << "; Ctrl-D ends\n";
    }
    std::optional<Clock::time_point> drain_deadline;
    for (;;) {
        if (!drain_events()) return kExitFailure;
        out_.flush();
        if (!out_) return kExitFailure;
        if (!stdin_open_) {
            if (outstanding_.empty()) return kExitSuccess;
            if (!drain_deadline) drain_deadline = Clock::now() + kChatDrainTimeout;
        }
        auto ready = wait_readable({events_.fd(), stdin_open_ ? STDIN_FILENO : -1}, drain_deadline);
        if (!ready) {
            err_ << "keyhole: " << ready.error() << '\n';
            return kExitFailure;
        }
        if (ready->interrupted) return kExitSuccess;
        if (ready->timed_out) {
            err_ << "keyhole: " << outstanding_.size()
                 << (outstanding_.size() == 1 ? " message is" : " messages are")
                 << " not delivered yet; queued, will be retried\n";
            return kExitSuccess;
        }
        if (ready->ready.size() > 1 && ready->ready[1] && !read_stdin()) return kExitFailure;
    }
}

bool ChatSession::drain_events() {
    for (;;) {
        auto event = events_.read_event(std::chrono::milliseconds(0));
        if (!event) {
            out_.flush();
            err_ << "keyhole: " << event.error() << '\n';
            return false;
        }
        if (!*event) return true;
        on_event(**event);
    }
}

void ChatSession::on_event(const json& event) {
    const json& kind = field(event, "event");
    if (kind == "message") {
        if (!same_peer(field(event, "from"), peer_)) return;
        const json& text = field(event, "text");
        out_ << "< " << indented_text(text.is_string() ? text.get<std::string>() : plain(text), 2)
             << '\n';
    } else if (kind == "delivered") {
        const json& id = field(event, "message_id");
        if (!id.is_string()) return;
        if (outstanding_.erase(id.get<std::string>()) != 0 && stdout_is_terminal_) {
            out_ << "✓ delivered\n";
        }
    } else if (kind == "peer") {
        if (!same_peer(field(event, "peer"), peer_)) return;
        if (!stderr_is_terminal_) return;
        if (auto text = peer_event_text(event, /*with_endpoint=*/false)) {
            out_.flush();
            err_ << "* " << *text << '\n';
        }
    }
}

bool ChatSession::read_stdin() {
    std::array<char, 64 * 1024> chunk;
    ssize_t count = ::read(STDIN_FILENO, chunk.data(), chunk.size());
    if (count < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return true;
        err_ << "keyhole: cannot read stdin: " << std::strerror(errno) << '\n';
        count = 0;  // treated as the end of input
    }
    if (count == 0) {
        stdin_open_ = false;
        std::string last = std::move(input_);
        input_.clear();
        if (!discarding_long_line_ && !last.empty()) return send_line(std::move(last));
        return true;
    }
    input_.append(chunk.data(), static_cast<std::size_t>(count));
    std::size_t start = 0;
    for (std::size_t newline; (newline = input_.find('\n', start)) != std::string::npos;
         start = newline + 1) {
        std::string line = input_.substr(start, newline - start);
        if (discarding_long_line_) {
            discarding_long_line_ = false;
            continue;
        }
        if (!send_line(std::move(line))) return false;
    }
    input_.erase(0, start);
    // A line longer than any message can be is dropped, not buffered forever.
    if (!discarding_long_line_ && input_.size() > kMaxMessageBytes + 1) {
        err_ << "keyhole: line longer than " << kMaxMessageBytes << " bytes; not sent\n";
        discarding_long_line_ = true;
    }
    if (discarding_long_line_) input_.clear();
    return true;
}

bool ChatSession::send_line(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return true;
    if (auto checked = check_message_text(line); !checked) {
        err_ << "keyhole: " << checked.error() << "; not sent\n";
        return true;
    }
    auto response = sender_.call(json{{"cmd", "send"}, {"peer", peer_}, {"text", line}});
    if (!response) {
        err_ << "keyhole: " << response.error() << '\n';
        return false;
    }
    if (!response->ok) {
        err_ << "keyhole: not sent: " << response->error_message << '\n';
        return true;
    }
    // On a terminal the user already sees the line they typed.
    if (!stdin_is_terminal_) out_ << "> " << indented_text(line, 2) << '\n';
    const json& id = field(response->result, "message_id");
    if (!id.is_string()) return true;
    outstanding_.insert(id.get<std::string>());
    return true;
}

int run_chat(const Invocation& invocation, std::ostream& out, std::ostream& err) {
    if (invocation.arguments.size() != 1) {
        err << "keyhole: chat takes one ID (usage: keyhole chat ID)\n";
        return kExitUsage;
    }
    auto peer = parse_peer_argument(invocation.arguments[0]);
    if (!peer) {
        err << "keyhole: " << peer.error() << '\n';
        return kExitUsage;
    }
    auto events = subscribe(invocation, err);
    if (!events) return kExitFailure;
    auto sender = ControlClient::connect(invocation.socket_path, invocation.timeout);
    if (!sender) {
        err << "keyhole: " << sender.error() << '\n';
        return kExitFailure;
    }
    catch_interrupts();
    ChatSession session(*peer, std::move(*events), std::move(*sender), out, err);
    return session.run();
}

}  // namespace

Command chat_command() {
    return {.name = "chat",
            .argument_synopsis = "ID",
            .summary = "chat with ID: send stdin's lines, print their replies",
            .build_request = nullptr,
            .print_result = nullptr,
            .run = run_chat};
}

}  // namespace keyhole::cli
