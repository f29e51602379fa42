// How identity records live in OpenDHT: a plain value of a keyhole value type
// whose store and edit policies verify the record on every keyhole node, so
// honest nodes refuse forged or stale records. Readers verify again anyway.
#pragma once

#include <opendht/infohash.h>
#include <opendht/value.h>

#include "keyhole/identity/peer_id.h"

namespace keyhole::dht {

// 'K' 'H' as a 16-bit value type id.
constexpr ::dht::ValueType::Id kRecordValueTypeId = 0x4b48;
// How long storing nodes keep a record without a refresh; OpenDHT refreshes
// permanent puts shortly before this runs out.
constexpr auto kRecordStorageLifetime = std::chrono::minutes(10);

::dht::InfoHash record_key(const identity::PeerId& owner);
// Each record gets its own value id, its sequence number: OpenDHT reports a
// value id once per get, so a fixed id would let a stale local copy hide the
// newer record another node holds. Readers take the highest verified sequence;
// older copies expire with kRecordStorageLifetime once nobody refreshes them.
::dht::Value::Id record_value_id(std::uint64_t sequence);

const ::dht::ValueType& record_value_type();

// Inbox values: opaque, small, short-lived. 'K' 'I'.
constexpr ::dht::ValueType::Id kInboxValueTypeId = 0x4b49;
::dht::InfoHash inbox_key(const identity::PeerId& owner);
const ::dht::ValueType& inbox_value_type();

}  // namespace keyhole::dht
