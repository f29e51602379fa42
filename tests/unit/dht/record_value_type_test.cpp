// Storing nodes run these policies on every record put to them: only records
// that verify, under their owner's key and value id, are kept.
#include <gtest/gtest.h>

#include <ctime>

#include <opendht/value.h>

#include "keyhole/identity/record.h"
#include "record_value_type.h"

namespace {

using keyhole::identity::IdentityRecord;
using keyhole::identity::KeyPair;
namespace kd = keyhole::dht;

std::uint64_t now() { return static_cast<std::uint64_t>(std::time(nullptr)); }

struct SignedRecord {
    IdentityRecord record;
    std::shared_ptr<dht::Value> value;
};

SignedRecord make_record(const KeyPair& key, std::uint64_t sequence, std::uint64_t expires) {
    IdentityRecord record;
    record.owner = key.id();
    record.sequence = sequence;
    record.expires_unix_s = expires;
    auto value = std::make_shared<dht::Value>(kd::kRecordValueTypeId, keyhole::identity::encode_signed(record, key),
                                              kd::record_value_id(sequence));
    return {record, value};
}

bool store(const dht::InfoHash& key, std::shared_ptr<dht::Value> value) {
    return kd::record_value_type().storePolicy(key, value, dht::InfoHash(), dht::SockAddr());
}

bool edit(const dht::InfoHash& key, std::shared_ptr<dht::Value> old_value, std::shared_ptr<dht::Value> new_value) {
    return kd::record_value_type().editPolicy(key, old_value, new_value, dht::InfoHash(), dht::SockAddr());
}

TEST(RecordValueType, StoresAValidRecordUnderItsOwnersKey) {
    const auto key = KeyPair::generate();
    auto signed_record = make_record(key, 5, now() + 600);
    EXPECT_TRUE(store(kd::record_key(key.id()), signed_record.value));
}

TEST(RecordValueType, RefusesARecordUnderAnotherKey) {
    const auto key = KeyPair::generate();
    const auto other = KeyPair::generate();
    auto signed_record = make_record(key, 5, now() + 600);
    EXPECT_FALSE(store(kd::record_key(other.id()), signed_record.value));
}

TEST(RecordValueType, RefusesATamperedRecord) {
    const auto key = KeyPair::generate();
    auto signed_record = make_record(key, 5, now() + 600);
    signed_record.value->data[10] ^= 0x01;
    EXPECT_FALSE(store(kd::record_key(key.id()), signed_record.value));
}

TEST(RecordValueType, RefusesAnExpiredRecord) {
    const auto key = KeyPair::generate();
    auto signed_record = make_record(key, 5, now() - 1);
    EXPECT_FALSE(store(kd::record_key(key.id()), signed_record.value));
}

TEST(RecordValueType, RefusesAValueIdOtherThanTheSequence) {
    const auto key = KeyPair::generate();
    auto signed_record = make_record(key, 5, now() + 600);
    signed_record.value->id = 6;
    EXPECT_FALSE(store(kd::record_key(key.id()), signed_record.value));
}

TEST(RecordValueType, RefusesAnotherValueType) {
    const auto key = KeyPair::generate();
    auto signed_record = make_record(key, 5, now() + 600);
    signed_record.value->type = 0;
    EXPECT_FALSE(store(kd::record_key(key.id()), signed_record.value));
}

TEST(RecordValueType, EditAcceptsTheSameRecordAgain) {
    const auto key = KeyPair::generate();
    auto first = make_record(key, 5, now() + 600);
    auto again = std::make_shared<dht::Value>(first.value->type, first.value->data, first.value->id);
    EXPECT_TRUE(edit(kd::record_key(key.id()), first.value, again));
}

TEST(RecordValueType, EditRefusesADifferentRecordWithTheSameId) {
    const auto key = KeyPair::generate();
    auto first = make_record(key, 5, now() + 600);
    auto changed = make_record(key, 5, now() + 900);  // same sequence, other content
    EXPECT_FALSE(edit(kd::record_key(key.id()), first.value, changed.value));
}

}  // namespace
