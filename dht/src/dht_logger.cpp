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
        // OpenDHT 2.4 reports this per stored value and listener each time a
        // value under a listened key changes (every connect request and
        // record refresh); it is about OpenDHT's own bookkeeping, nothing an
        // operator can act on.
        if (text.find("request without socket") != std::string_view::npos) {
            if (logger->should_log(spdlog::level::trace)) logger->log(spdlog::level::trace, "dht: {}", text);
            return;
        }
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
