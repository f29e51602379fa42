#include "record_value_type.h"

#include <ctime>

#include "keyhole/identity/record.h"

namespace keyhole::dht {

namespace {

std::uint64_t now_unix_s() { return static_cast<std::uint64_t>(std::time(nullptr)); }

Result<identity::IdentityRecord> verify_value(const ::dht::InfoHash& key, const ::dht::Value& value) {
    if (value.type != kRecordValueTypeId) return fail("not a keyhole record");
    auto record = identity::decode_verified_any_owner(value.data, now_unix_s());
    if (!record) return record;
    if (record_key(record->owner) != key) return fail("record stored under another key");
    if (value.id != record_value_id(record->sequence)) return fail("record has the wrong value id");
    return record;
}

bool store_policy(::dht::InfoHash key, std::shared_ptr<::dht::Value>& value, const ::dht::InfoHash&,
                  const ::dht::SockAddr&) {
    return value && verify_value(key, *value).ok();
}

bool edit_policy(::dht::InfoHash key, const std::shared_ptr<::dht::Value>& old_value,
                 std::shared_ptr<::dht::Value>& new_value, const ::dht::InfoHash&, const ::dht::SockAddr&) {
    if (!new_value) return false;
    auto incoming = verify_value(key, *new_value);
    if (!incoming) return false;
    // Same value id means same sequence: only the owner's refresh of that
    // record (or a valid copy replacing one that no longer verifies) gets in.
    auto stored = old_value ? verify_value(key, *old_value) : Result<identity::IdentityRecord>(fail("none"));
    return !stored || incoming.value() == stored.value();
}

}  // namespace

::dht::InfoHash record_key(const identity::PeerId& owner) {
    return ::dht::InfoHash::get("keyhole/v1/id/" + owner.to_hex());
}

::dht::Value::Id record_value_id(std::uint64_t sequence) {
    return sequence == 0 ? 1 : sequence;  // 0 would mean "assign a random id"
}

::dht::InfoHash inbox_key(const identity::PeerId& owner) {
    // The record's own key (values told apart by type): the lookup that just
    // found the record leaves OpenDHT a search for this key with live nodes,
    // so the connect request put after it goes out at once instead of first
    // searching a second key (≈ 1 s whenever a dead node is among the closest).
    return record_key(owner);
}

const ::dht::ValueType& inbox_value_type() {
    // Whatever is in there is verified by the owner (it must be a Noise
    // message to it); storing nodes only bound the size.
    static const ::dht::ValueType type(
        kInboxValueTypeId, "keyhole inbox message", std::chrono::minutes(2),
        [](::dht::InfoHash, std::shared_ptr<::dht::Value>& value, const ::dht::InfoHash&, const ::dht::SockAddr&) {
            return value && value->data.size() <= 1024;
        },
        [](::dht::InfoHash, const std::shared_ptr<::dht::Value>&, std::shared_ptr<::dht::Value>&,
           const ::dht::InfoHash&, const ::dht::SockAddr&) { return false; });
    return type;
}

const ::dht::ValueType& record_value_type() {
    static const ::dht::ValueType type(kRecordValueTypeId, "keyhole identity record",
                                       kRecordStorageLifetime, store_policy, edit_policy);
    return type;
}

}  // namespace keyhole::dht
