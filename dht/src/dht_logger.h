// Forwards OpenDHT's printf-style log lines (2.4 API) to spdlog.
#pragma once

#include <memory>

#include <opendht/log_enable.h>

namespace keyhole::dht {

std::shared_ptr<::dht::Logger> make_spdlog_logger();

}  // namespace keyhole::dht
