// A small blocking client for keyholed's control socket: send one request
// line, wait (with a deadline) for the reply line carrying the same id.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
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
    // Lines with other ids (or events) are skipped.
    Result<ControlResponse> call(nlohmann::json request);

private:
    ControlClient(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}

    using Deadline = std::chrono::steady_clock::time_point;
    Status send_all(const std::string& data, Deadline deadline);
    Result<std::string> read_line(Deadline deadline);
    // Waits for `events` on the socket; fails once the deadline has passed.
    Status wait_for(short events, Deadline deadline);

    int fd_ = -1;
    std::chrono::milliseconds timeout_;
    std::int64_t next_id_ = 1;
    std::string received_;  // bytes read past the last complete line
};

}  // namespace keyhole::cli
