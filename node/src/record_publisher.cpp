#include "keyhole/node/record_publisher.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "keyhole/node/state_lock.h"

namespace keyhole::node {

namespace {

constexpr std::chrono::seconds kRefreshRetry{30};

std::uint64_t now_unix_s() { return static_cast<std::uint64_t>(std::time(nullptr)); }

// The last sequence we signed; 0 if none (or the file is unreadable: the
// clock floor below still keeps the sequence rising).
std::uint64_t read_last_sequence(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::uint64_t value = 0;
    if (in && (in >> value)) return value;
    return 0;
}

}  // namespace

RecordPublisher::RecordPublisher(asio::io_context& io, dht::DhtNode& dht, const identity::KeyPair& key,
                                 std::filesystem::path sequence_file, std::chrono::seconds lifetime)
    : refresh_timer_(io), dht_(dht), key_(key), sequence_file_(std::move(sequence_file)),
      lifetime_(lifetime) {
    current_.owner = key_.id();
}

Status RecordPublisher::start() {
    auto status = publish_new_sequence();
    if (status) schedule_refresh(refresh_interval());
    return status;
}

Status RecordPublisher::publish_new_sequence() {
    // Never below the wall clock: a lost sequence file must not make our new
    // record lose to an old copy still stored in the DHT.
    const std::uint64_t sequence = std::max(read_last_sequence(sequence_file_) + 1, now_unix_s());
    auto saved = write_file_atomically(sequence_file_, std::to_string(sequence) + "\n", 0600);
    if (!saved) return saved;
    current_.sequence = sequence;
    current_.expires_unix_s = now_unix_s() + static_cast<std::uint64_t>(lifetime_.count());
    signed_ = identity::encode_signed(current_, key_);
    dht_.publish(current_, signed_);
    published_ = true;
    spdlog::info("publishing identity record, sequence {}, valid for {} s", sequence, lifetime_.count());
    return success();
}

void RecordPublisher::set_relays(const std::vector<identity::RelayRef>& relays) {
    std::vector<identity::RelayRef> listed(relays.begin(),
                                           relays.begin() + std::min(relays.size(), identity::kMaxRelaysInRecord));
    if (listed == current_.relays) return;
    current_.relays = std::move(listed);
    if (!published_) return;  // start() publishes them
    if (auto status = publish_new_sequence(); !status)
        spdlog::error("cannot publish the record with new relays: {}; the next refresh will", status.error());
}

void RecordPublisher::schedule_refresh(std::chrono::seconds delay) {
    refresh_timer_.expires_after(delay);
    refresh_timer_.async_wait([this](const asio::error_code& error) {
        if (error) return;
        if (auto status = publish_new_sequence(); !status) {
            // The old record stays valid for the other half of its lifetime: retry well before then.
            spdlog::error("cannot refresh identity record: {}; retrying in {} s", status.error(),
                          kRefreshRetry.count());
            schedule_refresh(kRefreshRetry);
            return;
        }
        schedule_refresh(refresh_interval());
    });
}

void RecordPublisher::stop() {
    refresh_timer_.cancel();
    if (published_) dht_.withdraw();
    published_ = false;
}

}  // namespace keyhole::node
