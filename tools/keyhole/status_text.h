// `keyhole status` for a person: a short summary of the daemon's status
// result (`keyhole status --json` prints the result itself, for scripts).
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace keyhole::cli {

// ("label", "value") lines, in the order they are printed.
std::vector<std::pair<std::string, std::string>> status_summary(const nlohmann::json& status);
void print_status(const nlohmann::json& status, std::ostream& out);

// "45 s", "12 min", "3 h 05 min", "2 d 4 h".
std::string uptime_text(std::int64_t seconds);

}  // namespace keyhole::cli
