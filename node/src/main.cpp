// keyholed: the keyhole daemon.
#include <csignal>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "keyhole/node/config.h"
#include "keyhole/node/daemon.h"
#include "keyhole/node/logging.h"

int main(int argc, char** argv) {
    keyhole::node::setup_logging();
    auto command_line = keyhole::node::parse_command_line(argc, argv);
    if (!command_line) {
        std::fprintf(stderr, "keyholed: %s\n", command_line.error().c_str());
        return 2;
    }
    if (command_line->show_help) {
        std::fputs(keyhole::node::usage_text().c_str(), stdout);
        return 0;
    }
    if (auto level = keyhole::node::set_log_level(command_line->config.log_level); !level) {
        std::fprintf(stderr, "keyholed: %s\n", level.error().c_str());
        return 2;
    }
    // A control client that goes away mid-reply must not kill the daemon.
    std::signal(SIGPIPE, SIG_IGN);
    return keyhole::node::run_daemon(command_line->config);
}
