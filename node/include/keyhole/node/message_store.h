// The durable message store (SQLite, WAL): outbox, inbox and contacts.
// Nothing acknowledged is ever lost: every write that a caller is told about
// is on disk first (synchronous=FULL), so it survives a crash and a restart.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::node {

// Longest chat message text, in bytes of UTF-8.
constexpr std::size_t kMaxMessageText = 64 * 1024;

enum class MessageDirection { outgoing, incoming };

struct StoredMessage {
    std::string message_id;         // 32 lowercase hex chars (16 random bytes), unique
    identity::PeerId peer;          // the other side of the conversation
    MessageDirection direction = MessageDirection::outgoing;
    std::uint64_t sequence = 0;     // the sender's per-conversation sequence, from 1
    std::string text;
    std::int64_t sent_unix_ms = 0;  // when the sender queued it (sender's clock)
    std::int64_t stored_unix_ms = 0;
    bool delivered = false;         // outgoing: the peer acknowledged it
    std::optional<std::int64_t> delivered_unix_ms;
    // Store-wide order in which messages entered their conversation (outgoing:
    // when queued; incoming: when presentable, 0 before). Cursor for inbox --follow.
    std::int64_t row = 0;
};

class MessageStore {
public:
    // Opens or creates <path>; sets WAL mode and synchronous=FULL. Errors name the file.
    static Result<std::unique_ptr<MessageStore>> open(const std::filesystem::path& path);
    ~MessageStore();

    // Outgoing: assigns a random id and the next sequence for `peer`, and
    // commits before returning. Refuses empty or oversized text.
    Result<StoredMessage> enqueue_outgoing(const identity::PeerId& peer, std::string_view text, std::int64_t now_ms);
    // Queued (not yet acknowledged) messages to `peer`, by sequence; the first `limit`.
    std::vector<StoredMessage> pending_outgoing(const identity::PeerId& peer,
                                                std::size_t limit = SIZE_MAX) const;
    // Every peer with at least one unacknowledged message.
    std::vector<identity::PeerId> peers_with_pending() const;
    // Marks an outgoing message delivered; returns the message if this call
    // changed it (false for unknown ids and repeats).
    Result<std::optional<StoredMessage>> mark_delivered(std::string_view message_id, std::int64_t now_ms);
    std::optional<StoredMessage> find(std::string_view message_id) const;

    // Incoming: stores the message unless its id is already stored (a
    // retransmission), committing before returning. Returns the messages from
    // `from` that became presentable in order because of it: the receiver
    // presents a conversation by the sender's sequence without gaps, so a
    // message that arrives early waits until the ones before it are stored.
    Result<std::vector<StoredMessage>> store_incoming(const identity::PeerId& from, std::string_view message_id,
                                                      std::uint64_t sequence, std::string_view text,
                                                      std::int64_t sent_ms, std::int64_t now_ms);
    // Presentable incoming messages with row > after_row, oldest first.
    std::vector<StoredMessage> inbox(std::int64_t after_row, std::size_t limit) const;
    // Both directions of the conversation with `peer`: the last `limit`
    // messages, oldest first (incoming ones only once presentable).
    std::vector<StoredMessage> history(const identity::PeerId& peer, std::size_t limit) const;

    // Contacts: the peers `accept_from = "contacts"` lets in.
    Status add_contact(const identity::PeerId& peer, std::string_view name);
    Status remove_contact(const identity::PeerId& peer);  // error if not a contact
    struct Contact {
        identity::PeerId peer;
        std::string name;
    };
    std::vector<Contact> contacts() const;
    bool is_contact(const identity::PeerId& peer) const;

private:
    MessageStore() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyhole::node
