#include "dht_logger.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string_view>

#include <spdlog/spdlog.h>

namespace keyhole::dht {

namespace {

::dht::LogMethod forward(spdlog::level::level_enum level) {
    return ::dht::LogMethod([level](char const* format, va_list args) {
        // The default logger, looked up each time, so level changes apply.
        auto logger = spdlog::default_logger();
        if (!logger->should_log(level)) return;
        char line[1024];
        va_list copy;
        va_copy(copy, args);
        const int length = std::vsnprintf(line, sizeof(line), format, copy);
        va_end(copy);
        if (length < 0) return;
        std::string_view text(line, std::min<std::size_t>(length, sizeof(line) - 1));
        // Our socket is IPv4-only by choice; OpenDHT says so on every search.
        if (text.find("IPv6") != std::string_view::npos && text.find("unsupported") != std::string_view::npos)
            return;
        logger->log(level, "dht: {}", text);
    });
}

}  // namespace

std::shared_ptr<::dht::Logger> make_spdlog_logger() {
    // OpenDHT's "error" lines are mostly about remote peers misbehaving, and
    // its warnings are routine chatter: one level down each.
    return std::make_shared<::dht::Logger>(forward(spdlog::level::warn), forward(spdlog::level::debug),
                                           forward(spdlog::level::trace));
}

}  // namespace keyhole::dht
