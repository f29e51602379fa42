// A small blocking client for keyholed's control socket: send a request
// line, wait (with a deadline) for the reply line carrying the same id.
// After "subscribe", the daemon also sends event lines ({"event": ...}, no
// id) on the connection; they may arrive before, between and after replies,
// and are kept in order for read_event().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "keyhole/result.h"

namespace keyhole::cli {

struct ControlResponse {
    bool ok = false;
    nlohmann::json result;      // when ok
    std::string error_code;     // when not ok, e.g. "not_found"
    std::string error_message;  // when not ok
};

class ControlClient {
public:
    // `timeout` bounds connecting and, separately, each call().
    static Result<ControlClient> connect(const std::filesystem::path& socket_path,
                                         std::chrono::milliseconds timeout);

    ControlClient(ControlClient&& other) noexcept;
    ControlClient& operator=(ControlClient&& other) noexcept;
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;
    ~ControlClient();

    // `request` holds "cmd" and the arguments; the id is filled in here.
    // Replies with other ids are skipped; events are queued for read_event().
    Result<ControlResponse> call(nlohmann::json request);
    // The same with its own bound, e.g. for a send that waits for delivery.
    Result<ControlResponse> call(nlohmann::json request, std::chrono::milliseconds timeout);

    // The two halves of call(), for waiting on a reply while watching other
    // descriptors: send_request() returns the id it used; poll_reply() returns
    // the reply once it has arrived, or nothing when `timeout` (zero: only
    // what can be read without blocking) passes first.
    Result<std::int64_t> send_request(nlohmann::json request);
    Result<std::optional<ControlResponse>> poll_reply(std::int64_t id,
                                                      std::chrono::milliseconds timeout);

    // The next event, oldest first, or nothing when none arrives within
    // `timeout` (zero: only what can be read without blocking). Fails when
    // the daemon closed the connection or sent something that is not JSON.
    // Before polling fd() for more events, read until this returns nothing:
    // lines already buffered do not make the descriptor readable.
    Result<std::optional<nlohmann::json>> read_event(std::chrono::milliseconds timeout);

    // For poll(): readable when more lines may be waiting.
    int fd() const { return fd_; }

private:
    ControlClient(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}

    using Deadline = std::chrono::steady_clock::time_point;
    Status send_all(const std::string& data, Deadline deadline);
    // The next complete line, or nothing once the deadline has passed.
    Result<std::optional<std::string>> read_line(Deadline deadline);
    // Reads lines until the reply to `id` (queuing events) or the deadline.
    Result<std::optional<ControlResponse>> read_reply(std::int64_t id, Deadline deadline);
    static bool is_event(const nlohmann::json& line);
    // Waits for `events` on the socket; false once the deadline has passed.
    Result<bool> wait_for(short events, Deadline deadline);

    int fd_ = -1;
    std::chrono::milliseconds timeout_;
    std::int64_t next_id_ = 1;
    bool closed_ = false;               // the daemon closed its end
    std::string received_;              // bytes read past the last complete line
    std::deque<nlohmann::json> events_;  // events read while waiting for a reply
};

}  // namespace keyhole::cli
