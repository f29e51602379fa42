#include "config_reload.h"

#include <type_traits>

namespace keyhole::node {

namespace {

std::string text_of(const std::string& value) { return "\"" + value + "\""; }
std::string text_of(bool value) { return value ? "true" : "false"; }
std::string text_of(const std::filesystem::path& value) { return text_of(value.string()); }
std::string text_of(AcceptFrom value) {
    return text_of(std::string(value == AcceptFrom::anyone ? "anyone" : "contacts"));
}
std::string text_of(const std::vector<std::string>& values) {
    std::string text = "[";
    for (const auto& value : values) text += (text.size() > 1 ? ", " : "") + text_of(value);
    return text + "]";
}
template <typename Integer>
    requires std::is_integral_v<Integer>
std::string text_of(Integer value) {
    return std::to_string(value);
}

template <typename Value>
std::string change_text(const char* key, const Value& before, const Value& after) {
    return std::string(key) + ": " + text_of(before) + " -> " + text_of(after);
}

}  // namespace

ReloadPlan plan_reload(const DaemonConfig& running, const DaemonConfig& reread) {
    ReloadPlan plan{running, {}, {}, false};

    // Read live by the parts that use them (peer manager, accept filter,
    // lookup command), so replacing the value is all it takes.
    auto apply = [&](const char* key, auto DaemonConfig::*field) {
        if (running.*field == reread.*field) return;
        plan.applied.push_back(change_text(key, running.*field, reread.*field));
        plan.config.*field = reread.*field;
    };
    apply("log_level", &DaemonConfig::log_level);
    apply("keepalive_interval_s", &DaemonConfig::keepalive_interval_s);
    apply("lookup_timeout_s", &DaemonConfig::lookup_timeout_s);
    apply("accept_from", &DaemonConfig::accept_from);
    apply("birthday_probing", &DaemonConfig::birthday_probing);
    if (running.metrics_port != reread.metrics_port) plan.metrics_port_changed = true;
    apply("metrics_port", &DaemonConfig::metrics_port);

    // Bound into sockets, files or the published record at start-up.
    auto keep = [&](const char* key, auto DaemonConfig::*field) {
        if (running.*field == reread.*field) return;
        plan.ignored.push_back(change_text(key, running.*field, reread.*field));
    };
    keep("state_dir", &DaemonConfig::state_dir);
    keep("port", &DaemonConfig::port);
    keep("bind_address", &DaemonConfig::bind_address);
    keep("bootstrap", &DaemonConfig::bootstrap);
    keep("dht_network", &DaemonConfig::dht_network);
    keep("control_socket", &DaemonConfig::control_socket);
    keep("control_group", &DaemonConfig::control_group);
    keep("relay", &DaemonConfig::relay);
    keep("relays", &DaemonConfig::relays);                  // read when relays are first needed
    keep("relay_fallback", &DaemonConfig::relay_fallback);  // likewise
    keep("bootstrap_only", &DaemonConfig::bootstrap_only);
    keep("record_lifetime_s", &DaemonConfig::record_lifetime_s);
    return plan;
}

}  // namespace keyhole::node
