// keyholed: the keyhole daemon.
#include <csignal>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "keyhole/node/config.h"
#include "keyhole/node/daemon.h"
#include "keyhole/node/logging.h"

int main(int argc, char** argv) {
    keyhole::node::setup_logging();
    if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
        std::printf("keyholed %s\n", KEYHOLE_VERSION);
        return 0;
    }
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

    // SIGHUP re-reads the same file with the same flags on top, so the
    // precedence (defaults < file < flags) holds after a reload too.
    keyhole::node::ReloadSource reload;
    reload.config_file = command_line->config_file;
    reload.read = [argc, argv]() -> keyhole::Result<keyhole::node::DaemonConfig> {
        auto reread = keyhole::node::parse_command_line(argc, argv);
        if (!reread) return keyhole::fail(reread.error());
        return std::move(reread->config);
    };
    return keyhole::node::run_daemon(command_line->config, std::move(reload));
}
