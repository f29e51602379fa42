// The control socket: a Unix stream socket on the daemon's io_context.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "keyhole/node/control_protocol.h"
#include "keyhole/result.h"

namespace keyhole::node {

// Sends one reply line (without newline) to the client that made the request.
// Safe to keep and call later from the io_context thread; a no-op once the
// client has gone.
using ControlReply = std::function<void(std::string line)>;
using ControlHandler = std::function<void(const ControlRequest&, ControlReply)>;

struct ControlSocketOptions {
    std::filesystem::path path;
    std::string group;  // empty: mode 0600, owner only; else mode 0660 and this group
};

class ControlServer {
public:
    ControlServer(asio::io_context& io, ControlHandler handler);
    ~ControlServer();

    // Creates the parent directory (0700 if new), removes a stale socket file
    // (only if it is a socket nobody answers on), binds, sets mode/group,
    // listens. Fails if another daemon answers on the path.
    Status start(const ControlSocketOptions& options);
    // Closes the listener and every connection, removes the socket file.
    void stop();

    std::size_t connection_count() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyhole::node
