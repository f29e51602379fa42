#include "keyhole/dht/dht_node.h"

#include <future>
#include <map>

#include <atomic>
#include <ctime>
#include <optional>
#include <set>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <opendht/dhtrunner.h>
#include <spdlog/spdlog.h>

#include "dht_logger.h"
#include "record_value_type.h"
#include "relay_directory.h"
#include "shared_port_socket.h"

namespace keyhole::dht {

namespace {

constexpr auto kFirstBootstrapRetry = std::chrono::seconds(1);
constexpr auto kMaxBootstrapRetry = std::chrono::seconds(60);
// While connected, how often to check that we still are.
constexpr auto kConnectedCheck = std::chrono::seconds(30);
// A put fails at once while we know no nodes; OpenDHT then gives it up.
constexpr auto kFirstPutRetry = std::chrono::seconds(1);
constexpr auto kMaxPutRetry = std::chrono::seconds(30);
constexpr auto kLookupRetryPause = std::chrono::milliseconds(200);

std::uint64_t now_unix_s() { return static_cast<std::uint64_t>(std::time(nullptr)); }

struct HostPort {
    std::string host;
    std::string port;
};

std::optional<HostPort> split_host_port(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return HostPort{host, text.substr(colon + 1)};
}

}  // namespace

struct Announcement {
    ::dht::InfoHash key;
    std::shared_ptr<::dht::Value> value;
};

// One lookup in flight. Lives on the io_context thread only.
struct Lookup {
    identity::PeerId peer;
    LookupCallback done;
    std::function<void(const identity::IdentityRecord&)> found;  // the best so far, each time it improves; may be empty
    std::uint64_t reported_sequence = 0;                          // the last record given to `found`
    std::chrono::steady_clock::time_point deadline;
    std::optional<identity::IdentityRecord> best;
    std::vector<std::uint8_t> best_signed;  // the bytes of `best`, as found
    std::function<void(std::vector<std::uint8_t>)> signed_done;  // lookup_signed(): gets best_signed
    std::string last_rejection;
    bool finished = false;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::unique_ptr<asio::steady_timer> deadline_timer;
};

struct DhtNode::Impl : std::enable_shared_from_this<DhtNode::Impl> {
    Impl(asio::io_context& io_context, DatagramSender send)
        : io(io_context), sender(std::move(send)), bootstrap_timer(io_context), put_retry_timer(io_context) {}

    asio::io_context& io;
    DatagramSender sender;
    ::dht::DhtRunner runner;
    SharedPortSocket* socket = nullptr;  // owned by the runner while running
    bool running = false;
    std::vector<std::string> bootstrap_entries;
    asio::steady_timer bootstrap_timer;
    std::chrono::seconds bootstrap_backoff = kFirstBootstrapRetry;
    std::unique_ptr<asio::ip::udp::resolver> resolver;
    std::atomic<std::uint64_t> records_rejected{0};
    std::shared_ptr<RelayDirectory> relays;  // relay announcements (relay_directory.h)
    LookupStats lookup_counts;  // records_rejected lives in the atomic above
    std::map<std::uint64_t, std::pair<::dht::InfoHash, std::shared_future<size_t>>> inbox_listens;
    std::uint64_t next_inbox_listen = 1;
    std::uint64_t bootstrap_rounds = 0;
    bool connected = false;
    // Our record currently announced, so a failed put can be retried and the
    // next publish can cancel it.
    std::optional<Announcement> announced;
    asio::steady_timer put_retry_timer;
    std::chrono::seconds put_backoff = kFirstPutRetry;
    bool last_put_failed = false;
    bool announced_stored = false;

    // Crossing from OpenDHT's thread to ours: every OpenDHT callback goes through here.
    template <typename F>
    void post_to_loop(F&& work) {
        asio::post(io, [weak = weak_from_this(), work = std::forward<F>(work)]() mutable {
            if (auto self = weak.lock(); self && self->running) work(*self);
        });
    }

    void schedule_bootstrap(std::chrono::seconds delay) {
        bootstrap_timer.expires_after(delay);
        bootstrap_timer.async_wait([weak = weak_from_this()](const asio::error_code& error) {
            if (error) return;
            if (auto self = weak.lock(); self && self->running) self->bootstrap_tick();
        });
    }

    void bootstrap_tick() {
        const auto stats = runner.getNodesStats(AF_INET);
        if (stats.good_nodes > 0) {
            if (!connected) {
                spdlog::info("DHT connected: {} good nodes", stats.good_nodes);
                connected = true;
                if (last_put_failed) put_announced();
            }
            bootstrap_backoff = kFirstBootstrapRetry;
            schedule_bootstrap(std::chrono::duration_cast<std::chrono::seconds>(kConnectedCheck));
            return;
        }
        connected = false;
        if (!bootstrap_entries.empty()) {
            if (bootstrap_rounds++ > 0)
                spdlog::info("DHT has no good nodes yet; contacting {} bootstrap node(s) again",
                             bootstrap_entries.size());
            for (const auto& entry : bootstrap_entries) bootstrap_one(entry);
        }
        schedule_bootstrap(bootstrap_backoff);
        bootstrap_backoff = std::min(bootstrap_backoff * 2, kMaxBootstrapRetry);
    }

    void bootstrap_one(const std::string& entry) {
        auto parts = split_host_port(entry);
        if (!parts) {
            spdlog::warn("bootstrap entry '{}' is not host:port; skipped", entry);
            return;
        }
        // Asio resolves names off the event loop.
        resolver->async_resolve(
            asio::ip::udp::v4(), parts->host, parts->port,
            [weak = weak_from_this(), entry](const asio::error_code& error,
                                              asio::ip::udp::resolver::results_type results) {
                auto self = weak.lock();
                if (!self || !self->running) return;
                if (error) {
                    spdlog::warn("cannot resolve bootstrap node {}: {}", entry, error.message());
                    return;
                }
                std::vector<::dht::SockAddr> addresses;
                for (const auto& result : results) {
                    const auto endpoint = result.endpoint();
                    addresses.emplace_back(endpoint.data(), static_cast<socklen_t>(endpoint.size()));
                }
                if (!addresses.empty()) self->runner.bootstrap(std::move(addresses));
            });
    }

    void put_announced() {
        if (!announced) return;
        put_retry_timer.cancel();
        const auto value_id = announced->value->id;
        runner.put(
            announced->key, announced->value,
            [weak = weak_from_this(), value_id](bool ok) {
                if (auto self = weak.lock())
                    self->post_to_loop([ok, value_id](Impl& impl) { impl.put_finished(ok, value_id); });
            },
            ::dht::time_point::max(), /*permanent=*/true);
    }

    void put_finished(bool ok, ::dht::Value::Id value_id) {
        if (!announced || announced->value->id != value_id) return;  // superseded meanwhile
        announced_stored = ok;
        if (ok) {
            spdlog::info("identity record stored in the DHT");
            last_put_failed = false;
            put_backoff = kFirstPutRetry;
            return;
        }
        last_put_failed = true;
        spdlog::debug("identity record put failed; retrying in {} s", put_backoff.count());
        put_retry_timer.expires_after(put_backoff);
        put_backoff = std::min(put_backoff * 2, kMaxPutRetry);
        put_retry_timer.async_wait([weak = weak_from_this(), value_id](const asio::error_code& error) {
            auto self = weak.lock();
            if (error || !self || !self->running || !self->announced || self->announced->value->id != value_id)
                return;
            self->runner.cancelPut(self->announced->key, value_id);
            self->put_announced();
        });
    }

    // Lookup counters for metrics; finish() runs on the io_context thread only.
    void count_finished(const Lookup& lookup) {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - lookup.started).count();
        ++(lookup.best ? lookup_counts.lookups_found : lookup_counts.lookups_not_found);
        std::size_t bucket = 0;
        while (bucket < kLookupLatencyBoundsMs.size() && seconds * 1000 > kLookupLatencyBoundsMs[bucket]) ++bucket;
        ++lookup_counts.latency_counts[bucket];
        lookup_counts.latency_sum_s += seconds;
    }

    void finish(const std::shared_ptr<Lookup>& lookup) {
        if (lookup->finished) return;
        lookup->finished = true;
        lookup->deadline_timer->cancel();
        count_finished(*lookup);
        if (lookup->signed_done) lookup->signed_done(lookup->best_signed);
        if (lookup->best) {
            lookup->done(*lookup->best);
        } else if (!lookup->last_rejection.empty()) {
            lookup->done(fail("not found; a value there was rejected: " + lookup->last_rejection));
        } else {
            lookup->done(fail("not found"));
        }
    }

    // Arms the deadline and starts the first get; a stopped DHT answers
    // "not found" (empty bytes for lookup_signed) at once, on the loop.
    void start_lookup(const std::shared_ptr<Lookup>& lookup, std::chrono::milliseconds timeout) {
        lookup->deadline = std::chrono::steady_clock::now() + timeout;
        lookup->deadline_timer = std::make_unique<asio::steady_timer>(io, timeout);
        if (!running) {
            asio::post(io, [lookup] {
                if (lookup->signed_done) lookup->signed_done({});
                lookup->done(fail("DHT is not running"));
            });
            return;
        }
        lookup->deadline_timer->async_wait([weak = weak_from_this(), lookup](const asio::error_code& error) {
            if (error) return;
            if (auto self = weak.lock()) self->finish(lookup);
        });
        run_get(lookup);
    }

    void run_get(const std::shared_ptr<Lookup>& lookup) {
        const auto peer = lookup->peer;
        runner.get(
            record_key(peer),
            [weak = weak_from_this(), lookup](const std::vector<std::shared_ptr<::dht::Value>>& values) {
                std::vector<std::vector<std::uint8_t>> payloads;
                for (const auto& value : values)
                    if (value && value->type == kRecordValueTypeId) payloads.push_back(value->data);
                if (auto self = weak.lock())
                    self->post_to_loop([lookup, payloads = std::move(payloads)](Impl& impl) {
                        impl.consider(*lookup, payloads);
                    });
                return true;
            },
            [weak = weak_from_this(), lookup](bool) {
                if (auto self = weak.lock())
                    self->post_to_loop([lookup](Impl& impl) { impl.get_finished(lookup); });
            });
    }

    void consider(Lookup& lookup, const std::vector<std::vector<std::uint8_t>>& payloads) {
        for (const auto& payload : payloads) {
            auto record = identity::decode_verified(payload, lookup.peer, now_unix_s());
            if (!record) {
                ++records_rejected;
                lookup.last_rejection = record.error();
                spdlog::debug("lookup {}: rejected a value: {}", lookup.peer.to_text(), record.error());
                continue;
            }
            if (!lookup.best || identity::supersedes(record.value(), *lookup.best)) {
                lookup.best = record.value();
                lookup.best_signed = payload;
            }
        }
        // After the whole batch: a node holds every unexpired sequence of a
        // record (each its own value), and the newest is the one to use.
        if (lookup.best && lookup.found && !lookup.finished && lookup.best->sequence > lookup.reported_sequence) {
            lookup.reported_sequence = lookup.best->sequence;
            lookup.found(*lookup.best);
        }
    }

    void get_finished(const std::shared_ptr<Lookup>& lookup) {
        if (lookup->finished) return;
        if (lookup->best || std::chrono::steady_clock::now() + kLookupRetryPause >= lookup->deadline) {
            finish(lookup);
            return;
        }
        // A get right after the owner's put can miss; ask again until the deadline.
        auto pause = std::make_shared<asio::steady_timer>(io, kLookupRetryPause);
        pause->async_wait([weak = weak_from_this(), lookup, pause](const asio::error_code& error) {
            auto self = weak.lock();
            if (error || !self || !self->running || lookup->finished) return;
            self->run_get(lookup);
        });
    }
};

DhtNode::DhtNode(asio::io_context& io, DatagramSender sender)
    : impl_(std::make_shared<Impl>(io, std::move(sender))) {}

DhtNode::~DhtNode() { stop(); }

Status DhtNode::start(const DhtOptions& options) {
    if (impl_->running) return fail("DHT already running");
    ::dht::DhtRunner::Config config;
    config.threaded = true;
    config.dht_config.node_config.network = options.network_id;
    if (options.node_identity)
        config.dht_config.node_config.node_id = ::dht::InfoHash::get("keyhole/v1/node/" + options.node_identity->to_hex());

    ::dht::DhtRunner::Context context;
    context.logger = make_spdlog_logger();
    auto socket = std::make_unique<SharedPortSocket>(impl_->sender, options.local_endpoint);
    impl_->socket = socket.get();
    context.sock = std::move(socket);
    try {
        impl_->runner.run(config, std::move(context));
    } catch (const std::exception& error) {
        impl_->socket = nullptr;
        return fail(std::string("cannot start OpenDHT: ") + error.what());
    }
    impl_->runner.registerType(record_value_type());
    impl_->runner.registerType(inbox_value_type());
    impl_->runner.registerType(relay_value_type());
    impl_->relays = std::make_shared<RelayDirectory>(impl_->io, impl_->runner);
    impl_->running = true;
    impl_->resolver = std::make_unique<asio::ip::udp::resolver>(impl_->io);
    impl_->bootstrap_entries = options.bootstrap;
    impl_->bootstrap_tick();
    return success();
}

void DhtNode::stop() {
    if (!impl_->running) return;
    impl_->running = false;
    impl_->bootstrap_timer.cancel();
    if (impl_->resolver) impl_->resolver->cancel();
    if (impl_->relays) impl_->relays->stop();
    impl_->runner.join();
    impl_->socket = nullptr;
}

void DhtNode::deliver(std::span<const std::uint8_t> datagram, const Endpoint& from) {
    if (impl_->running && impl_->socket) impl_->socket->deliver(datagram, from);
}

void DhtNode::publish(const identity::IdentityRecord& record, std::vector<std::uint8_t> signed_record) {
    if (!impl_->running) return;
    withdraw();
    impl_->announced_stored = false;
    impl_->announced = Announcement{
        record_key(record.owner),
        std::make_shared<::dht::Value>(kRecordValueTypeId, std::move(signed_record), record_value_id(record.sequence))};
    impl_->put_announced();
}

bool DhtNode::record_stored() const { return impl_->announced && impl_->announced_stored; }

void DhtNode::withdraw() {
    if (impl_->running && impl_->announced) impl_->runner.cancelPut(impl_->announced->key, impl_->announced->value->id);
    impl_->announced.reset();
    impl_->put_retry_timer.cancel();
}

void DhtNode::lookup(const identity::PeerId& peer, std::chrono::milliseconds timeout, LookupCallback done,
                     std::function<void(const identity::IdentityRecord&)> found) {
    auto lookup = std::make_shared<Lookup>();
    lookup->peer = peer;
    lookup->done = std::move(done);
    lookup->found = std::move(found);
    impl_->start_lookup(lookup, timeout);
}

void DhtNode::lookup_signed(const identity::PeerId& peer, std::chrono::milliseconds timeout,
                            std::function<void(std::vector<std::uint8_t>)> done) {
    auto lookup = std::make_shared<Lookup>();
    lookup->peer = peer;
    lookup->done = [](Result<identity::IdentityRecord>) {};
    lookup->signed_done = std::move(done);
    impl_->start_lookup(lookup, timeout);
}

void DhtNode::store_record(const identity::IdentityRecord& record, std::vector<std::uint8_t> signed_record) {
    if (!impl_->running) return;
    auto value = std::make_shared<::dht::Value>(kRecordValueTypeId, std::move(signed_record),
                                                record_value_id(record.sequence));
    impl_->runner.put(record_key(record.owner), value, [](bool) {}, ::dht::time_point::max(), /*permanent=*/false);
}

DhtNode::InboxListen DhtNode::listen_inbox(const identity::PeerId& owner, InboxCallback on_message) {
    if (!impl_->running) return 0;
    // OpenDHT reports a stored value again on re-listen; pass each value id on once.
    auto seen = std::make_shared<std::set<::dht::Value::Id>>();
    const auto key = inbox_key(owner);
    const auto handle = impl_->next_inbox_listen++;
    impl_->inbox_listens[handle] = {key, impl_->runner.listen(
        key,
        [weak = std::weak_ptr<Impl>(impl_), on_message = std::move(on_message), seen](
            const std::vector<std::shared_ptr<::dht::Value>>& values, bool expired) {
            if (expired) return true;
            std::vector<std::pair<::dht::Value::Id, std::vector<std::uint8_t>>> messages;
            for (const auto& value : values)
                if (value && value->type == kInboxValueTypeId && value->data.size() <= kMaxInboxMessage)
                    messages.emplace_back(value->id, value->data);
            if (auto self = weak.lock())
                self->post_to_loop([on_message, seen, messages = std::move(messages)](Impl&) {
                    for (const auto& [id, data] : messages)
                        if (seen->insert(id).second) on_message(data);
                });
            return true;
        }).share()};
    return handle;
}

void DhtNode::stop_listening(InboxListen listen) {
    auto found = impl_->inbox_listens.find(listen);
    if (found == impl_->inbox_listens.end()) return;
    if (impl_->running) impl_->runner.cancelListen(found->second.first, found->second.second);
    impl_->inbox_listens.erase(found);
}

void DhtNode::send_to_inbox(const identity::PeerId& owner, std::vector<std::uint8_t> message) {
    if (!impl_->running || message.size() > kMaxInboxMessage) return;
    auto value = std::make_shared<::dht::Value>(kInboxValueTypeId, std::move(message));
    impl_->runner.put(inbox_key(owner), value, [](bool) {}, ::dht::time_point::max(), /*permanent=*/false);
}

std::vector<Endpoint> DhtNode::known_nodes(std::size_t limit) const {
    std::vector<Endpoint> nodes;
    if (!impl_->running) return nodes;
    for (const auto& node : impl_->runner.exportNodes()) {
        if (nodes.size() >= limit) break;
        auto endpoint = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&node.ss), node.sslen);
        if (endpoint && endpoint->port() != 0) nodes.push_back(endpoint.value());
    }
    return nodes;
}

DhtHealth DhtNode::health() const {
    DhtHealth health;
    if (!impl_->running) return health;
    const auto stats = impl_->runner.getNodesStats(AF_INET);
    health.good_nodes = stats.good_nodes;
    health.dubious_nodes = stats.dubious_nodes;
    for (const auto& address : impl_->runner.getPublicAddress(AF_INET)) {
        auto endpoint = Endpoint::from_sockaddr(address.get(), address.getLength());
        if (endpoint) health.public_addresses.push_back(endpoint->address_string());
    }
    return health;
}

LookupStats DhtNode::lookup_stats() const {
    LookupStats stats = impl_->lookup_counts;
    stats.records_rejected = impl_->records_rejected.load();
    return stats;
}

Status DhtNode::announce_relay(std::vector<std::uint8_t> signed_announcement) {
    if (!impl_->running || !impl_->relays) return fail("DHT is not running");
    return impl_->relays->announce(std::move(signed_announcement));
}

void DhtNode::withdraw_relay() {
    if (impl_->relays) impl_->relays->withdraw();
}

bool DhtNode::relay_announcement_stored() const { return impl_->relays && impl_->relays->announced_stored(); }

void DhtNode::find_relays(std::chrono::milliseconds timeout, RelaysCallback done) {
    if (!impl_->running || !impl_->relays) {
        asio::post(impl_->io, [done = std::move(done)] { done({}); });
        return;
    }
    impl_->relays->find(timeout, std::move(done));
}

std::uint64_t DhtNode::relay_announcements_rejected() const { return impl_->relays ? impl_->relays->rejected() : 0; }

std::string record_key_hex(const identity::PeerId& owner) { return record_key(owner).toString(); }

}  // namespace keyhole::dht
