#include "relay_directory.h"

#include <chrono>
#include <map>

#include <asio/post.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

namespace keyhole::dht {

namespace {

constexpr auto kMaxPutRetry = std::chrono::seconds(60);
constexpr auto kGetRetryPause = std::chrono::milliseconds(200);

std::uint64_t now_unix_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

Result<identity::RelayAnnouncement> verify_value(const ::dht::InfoHash& key, const ::dht::Value& value) {
    if (value.type != kRelayValueTypeId) return fail("not a relay announcement");
    if (key != relays_key()) return fail("relay announcement stored under another key");
    auto announcement = identity::decode_verified_announcement(value.data, now_unix_ms());
    if (!announcement) return announcement;
    if (value.id != relay_value_id(announcement.value())) return fail("relay announcement has the wrong value id");
    return announcement;
}

}  // namespace

::dht::InfoHash relays_key() { return ::dht::InfoHash::get("keyhole/v1/relays"); }

::dht::Value::Id relay_value_id(const identity::RelayAnnouncement& announcement) {
    // First 8 bytes of BLAKE2b-128(relay key || issued_ms big-endian).
    std::array<std::uint8_t, 40> input{};
    std::copy(announcement.relay.key().begin(), announcement.relay.key().end(), input.begin());
    for (int i = 0; i < 8; ++i) input[32 + i] = static_cast<std::uint8_t>(announcement.issued_ms >> (56 - 8 * i));
    std::array<std::uint8_t, 16> hash{};
    crypto_generichash(hash.data(), hash.size(), input.data(), input.size(), nullptr, 0);
    std::uint64_t id = 0;
    for (int i = 0; i < 8; ++i) id = (id << 8) | hash[i];
    return id == 0 ? 1 : id;  // 0 would make OpenDHT pick a random id
}

const ::dht::ValueType& relay_value_type() {
    static const ::dht::ValueType type(
        kRelayValueTypeId, "keyhole relay announcement", kRelayStorageLifetime,
        [](::dht::InfoHash key, std::shared_ptr<::dht::Value>& value, const ::dht::InfoHash&, const ::dht::SockAddr&) {
            return value && verify_value(key, *value).ok();
        },
        [](::dht::InfoHash key, const std::shared_ptr<::dht::Value>& old_value,
           std::shared_ptr<::dht::Value>& new_value, const ::dht::InfoHash&, const ::dht::SockAddr&) {
            // Same id = same relay and issue time: only an identical refresh,
            // or a valid copy replacing one that no longer verifies.
            if (!new_value) return false;
            auto incoming = verify_value(key, *new_value);
            if (!incoming) return false;
            auto stored = old_value ? verify_value(key, *old_value)
                                    : Result<identity::RelayAnnouncement>(fail("none"));
            return !stored || incoming.value() == stored.value();
        });
    return type;
}

struct RelayDirectory::Find {
    RelaysCallback done;
    std::chrono::steady_clock::time_point deadline;
    std::map<identity::PeerId, identity::RelayAnnouncement> best;  // per relay, the latest issued
    bool finished = false;
    std::unique_ptr<asio::steady_timer> deadline_timer;
};

RelayDirectory::RelayDirectory(asio::io_context& io, ::dht::DhtRunner& runner)
    : io_(io), runner_(runner), retry_timer_(io) {}

template <typename F>
void RelayDirectory::post_to_loop(F&& work) {
    // The crossing from OpenDHT's thread to the io_context.
    asio::post(io_, [weak = weak_from_this(), work = std::forward<F>(work)]() mutable {
        if (auto self = weak.lock(); self && self->running_) work(*self);
    });
}

Status RelayDirectory::announce(std::vector<std::uint8_t> signed_announcement) {
    if (!running_) return fail("DHT is not running");
    auto announcement = identity::decode_verified_announcement(signed_announcement, now_unix_ms());
    if (!announcement) return fail("refusing to announce: " + announcement.error());
    withdraw();
    announced_ = std::make_shared<::dht::Value>(kRelayValueTypeId, std::move(signed_announcement),
                                                relay_value_id(announcement.value()));
    backoff_ = std::chrono::seconds(1);
    put_current();
    return success();
}

void RelayDirectory::put_current() {
    if (!announced_ || !running_) return;
    const auto id = announced_->id;
    runner_.put(
        relays_key(), announced_,
        [weak = weak_from_this(), id](bool ok) {
            if (auto self = weak.lock()) self->post_to_loop([ok, id](RelayDirectory& d) { d.put_finished(ok, id); });
        },
        ::dht::time_point::max(), /*permanent=*/true);
}

void RelayDirectory::put_finished(bool ok, ::dht::Value::Id id) {
    if (!announced_ || announced_->id != id) return;  // withdrawn or replaced meanwhile
    const bool was_stored = stored_;
    stored_ = ok;
    if (ok) {
        if (!was_stored) spdlog::info("relay announcement stored in the DHT");
        backoff_ = std::chrono::seconds(1);
        return;
    }
    spdlog::debug("relay announcement put failed; retrying in {} s", backoff_.count());
    retry_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, kMaxPutRetry);
    retry_timer_.async_wait([weak = weak_from_this(), id](const asio::error_code& error) {
        auto self = weak.lock();
        if (error || !self || !self->running_ || !self->announced_ || self->announced_->id != id) return;
        self->runner_.cancelPut(relays_key(), id);
        self->put_current();
    });
}

void RelayDirectory::withdraw() {
    if (announced_ && running_) runner_.cancelPut(relays_key(), announced_->id);
    announced_.reset();
    stored_ = false;
    retry_timer_.cancel();
}

void RelayDirectory::find(std::chrono::milliseconds timeout, RelaysCallback done) {
    auto find = std::make_shared<Find>();
    find->done = std::move(done);
    find->deadline = std::chrono::steady_clock::now() + timeout;
    find->deadline_timer = std::make_unique<asio::steady_timer>(io_, timeout);
    if (!running_) {
        asio::post(io_, [find] { find->done({}); });
        return;
    }
    find->deadline_timer->async_wait([weak = weak_from_this(), find](const asio::error_code& error) {
        if (error) return;
        if (auto self = weak.lock(); self && self->running_) self->finish(find);
    });
    run_get(find);
}

void RelayDirectory::run_get(const std::shared_ptr<Find>& find) {
    runner_.get(
        relays_key(),
        [weak = weak_from_this(), find](const std::vector<std::shared_ptr<::dht::Value>>& values) {
            std::vector<std::vector<std::uint8_t>> payloads;
            for (const auto& value : values)
                if (value && value->type == kRelayValueTypeId) payloads.push_back(value->data);
            if (auto self = weak.lock())
                self->post_to_loop([find, payloads = std::move(payloads)](RelayDirectory& d) {
                    const auto now = now_unix_ms();
                    for (const auto& payload : payloads) {
                        auto announcement = identity::decode_verified_announcement(payload, now);
                        if (!announcement) {
                            ++d.rejected_;
                            spdlog::debug("relay directory: rejected a value: {}", announcement.error());
                            continue;
                        }
                        const auto known = find->best.find(announcement->relay);
                        if (known == find->best.end() || known->second.issued_ms < announcement->issued_ms)
                            find->best[announcement->relay] = announcement.value();
                    }
                });
            return true;
        },
        [weak = weak_from_this(), find](bool) {
            if (auto self = weak.lock()) self->post_to_loop([find](RelayDirectory& d) { d.get_finished(find); });
        });
}

void RelayDirectory::get_finished(const std::shared_ptr<Find>& find) {
    if (find->finished) return;
    if (!find->best.empty() || std::chrono::steady_clock::now() + kGetRetryPause >= find->deadline) {
        finish(find);
        return;
    }
    auto pause = std::make_shared<asio::steady_timer>(io_, kGetRetryPause);
    pause->async_wait([weak = weak_from_this(), find, pause](const asio::error_code& error) {
        auto self = weak.lock();
        if (error || !self || !self->running_ || find->finished) return;
        self->run_get(find);
    });
}

void RelayDirectory::finish(const std::shared_ptr<Find>& find) {
    if (find->finished) return;
    find->finished = true;
    find->deadline_timer->cancel();
    std::vector<identity::RelayAnnouncement> relays;
    for (auto& [relay, announcement] : find->best) relays.push_back(std::move(announcement));
    find->done(std::move(relays));
}

void RelayDirectory::stop() {
    if (announced_ && running_) runner_.cancelPut(relays_key(), announced_->id);
    running_ = false;
    retry_timer_.cancel();
}

}  // namespace keyhole::dht
