#include "keyhole/node/logging.h"

#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace keyhole::node {

void setup_logging() {
    auto logger = spdlog::stderr_color_mt("keyholed");
    if (std::getenv("JOURNAL_STREAM") != nullptr) {
        logger->set_pattern("%l: %v");
    } else {
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    }
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
}

Status set_log_level(const std::string& level) {
    const auto parsed = spdlog::level::from_str(level);
    // from_str maps unknown names to "off"; only "off" itself may mean off.
    if (parsed == spdlog::level::off && level != "off")
        return fail("unknown log level '" + level + "' (trace, debug, info, warn, error, critical, off)");
    spdlog::set_level(parsed);
    return success();
}

}  // namespace keyhole::node
