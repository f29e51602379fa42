// The durable message store: see message_store.h.
//
// One SQLite file in WAL mode with synchronous=FULL. Every mutating call is a
// single BEGIN IMMEDIATE ... COMMIT transaction and returns only after COMMIT,
// so whatever a caller has been told about survives kill -9 and power loss.
//
// Schema version 1 (PRAGMA user_version; a later version adds a migration step
// in ensure_schema()):
//
//   conversations  one row per peer we have exchanged messages with:
//                  next_outgoing_sequence              next sequence we assign (from 1)
//                  next_presentable_incoming_sequence  next sequence of theirs we may show (from 1)
//   messages       both directions. (peer, direction, sequence) is unique, so a
//                  peer can never overwrite a stored message by reusing a sequence.
//   contacts       peer -> name.
//   store_state    a single row holding the store-wide presentation counter.
//
// About StoredMessage::row (the inbox cursor). Incoming messages are presented
// by the sender's sequence without gaps, so a message that arrives early waits
// for the ones before it; its SQLite rowid (order of insertion) is therefore
// not the order in which it enters the conversation. Instead every message gets
// `presented_row` from the store-wide counter at the moment it enters the
// conversation: an outgoing message when it is enqueued, an incoming one when
// it becomes presentable. StoredMessage::row is that value, for both directions,
// so rows are unique, only grow, and follow conversation order; history() sorts
// by it and inbox() pages by it. An incoming message still waiting for an
// earlier sequence has no row yet and reports row 0 (only find() can see it).
//
// The store is not thread-safe: use one MessageStore from one thread.
#include "keyhole/node/message_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

namespace keyhole::node {

namespace fs = std::filesystem;
using identity::PeerId;

namespace {

constexpr int kSchemaVersion = 1;
constexpr std::size_t kMessageIdBytes = 16;
constexpr std::size_t kMessageIdChars = 2 * kMessageIdBytes;
constexpr std::size_t kMaxContactName = 256;
constexpr int kBusyTimeoutMs = 5000;

constexpr int kOutgoing = 0;
constexpr int kIncoming = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE conversations(
  peer BLOB PRIMARY KEY NOT NULL CHECK(typeof(peer) = 'blob' AND length(peer) = 32),
  next_outgoing_sequence INTEGER NOT NULL DEFAULT 1 CHECK(next_outgoing_sequence >= 1),
  next_presentable_incoming_sequence INTEGER NOT NULL DEFAULT 1
    CHECK(next_presentable_incoming_sequence >= 1)
);
CREATE TABLE messages(
  row INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT UNIQUE NOT NULL
    CHECK(length(message_id) = 32 AND message_id NOT GLOB '*[^0-9a-f]*'),
  peer BLOB NOT NULL REFERENCES conversations(peer),
  direction INTEGER NOT NULL CHECK(direction IN (0, 1)),
  sequence INTEGER NOT NULL CHECK(sequence >= 1),
  text TEXT NOT NULL,
  sent_ms INTEGER NOT NULL,
  stored_ms INTEGER NOT NULL,
  delivered INTEGER NOT NULL DEFAULT 0 CHECK(delivered IN (0, 1)),
  delivered_ms INTEGER,
  presentable INTEGER NOT NULL DEFAULT 0 CHECK(presentable IN (0, 1)),
  presented_row INTEGER UNIQUE,
  CHECK((presentable = 1) = (presented_row IS NOT NULL))
);
CREATE UNIQUE INDEX messages_by_sequence ON messages(peer, direction, sequence);
CREATE INDEX messages_by_conversation ON messages(peer, presented_row);
CREATE INDEX messages_pending ON messages(peer, sequence) WHERE direction = 0 AND delivered = 0;
CREATE TABLE contacts(
  peer BLOB PRIMARY KEY NOT NULL CHECK(typeof(peer) = 'blob' AND length(peer) = 32),
  name TEXT NOT NULL,
  added_ms INTEGER NOT NULL
);
CREATE TABLE store_state(
  id INTEGER PRIMARY KEY CHECK(id = 1),
  next_presented_row INTEGER NOT NULL
);
INSERT INTO store_state(id, next_presented_row) VALUES(1, 1);
PRAGMA user_version = 1;
)sql";

// The columns read_message() expects, in order.
#define KEYHOLE_MESSAGE_COLUMNS \
    "message_id, peer, direction, sequence, text, sent_ms, stored_ms, delivered, delivered_ms, presented_row"

enum Stmt : std::size_t {
    kBegin,
    kCommit,
    kRollback,
    kEnsureConversation,
    kGetConversation,
    kSetConversation,
    kGetCounter,
    kSetCounter,
    kInsertMessage,
    kFindById,
    kFindIncomingBySequence,
    kMarkPresentable,
    kMarkDelivered,
    kPending,
    kPeersWithPending,
    kInbox,
    kHistory,
    kUpsertContact,
    kDeleteContact,
    kListContacts,
    kIsContact,
    kStmtCount
};

constexpr const char* kSql[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "INSERT OR IGNORE INTO conversations(peer) VALUES(?1)",
    "SELECT next_outgoing_sequence, next_presentable_incoming_sequence FROM conversations WHERE peer = ?1",
    "UPDATE conversations SET next_outgoing_sequence = ?2, next_presentable_incoming_sequence = ?3 WHERE peer = ?1",
    "SELECT next_presented_row FROM store_state WHERE id = 1",
    "UPDATE store_state SET next_presented_row = ?1 WHERE id = 1",
    "INSERT INTO messages(message_id, peer, direction, sequence, text, sent_ms, stored_ms, delivered,"
    " delivered_ms, presentable, presented_row) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    "SELECT " KEYHOLE_MESSAGE_COLUMNS " FROM messages WHERE message_id = ?1",
    "SELECT " KEYHOLE_MESSAGE_COLUMNS " FROM messages WHERE peer = ?1 AND direction = 1 AND sequence = ?2",
    "UPDATE messages SET presentable = 1, presented_row = ?2 WHERE message_id = ?1",
    "UPDATE messages SET delivered = 1, delivered_ms = ?2"
    " WHERE message_id = ?1 AND direction = 0 AND delivered = 0",
    "SELECT " KEYHOLE_MESSAGE_COLUMNS " FROM messages"
    " WHERE peer = ?1 AND direction = 0 AND delivered = 0 ORDER BY sequence LIMIT ?2",
    "SELECT DISTINCT peer FROM messages WHERE direction = 0 AND delivered = 0 ORDER BY peer",
    "SELECT " KEYHOLE_MESSAGE_COLUMNS " FROM messages"
    " WHERE direction = 1 AND presentable = 1 AND presented_row > ?1 ORDER BY presented_row LIMIT ?2",
    "SELECT " KEYHOLE_MESSAGE_COLUMNS " FROM (SELECT * FROM messages"
    " WHERE peer = ?1 AND presented_row IS NOT NULL ORDER BY presented_row DESC LIMIT ?2)"
    " ORDER BY presented_row",
    "INSERT INTO contacts(peer, name, added_ms) VALUES(?1, ?2, ?3)"
    " ON CONFLICT(peer) DO UPDATE SET name = excluded.name",
    "DELETE FROM contacts WHERE peer = ?1",
    "SELECT peer, name FROM contacts ORDER BY name, peer",
    "SELECT 1 FROM contacts WHERE peer = ?1",
};
static_assert(std::size(kSql) == kStmtCount, "one SQL text per Stmt");

#undef KEYHOLE_MESSAGE_COLUMNS

// Returns the offset of the first byte that is not part of well-formed UTF-8
// (no overlong forms, no surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view text) {
    std::size_t i = 0;
    const std::size_t n = text.size();
    while (i < n) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t length = 0;
        std::uint32_t code_point = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            length = 2;
            code_point = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            length = 3;
            code_point = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            length = 4;
            code_point = c & 0x07u;
        } else {
            return i;
        }
        if (n - i < length) return i;
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0u) != 0x80u) return i;
            code_point = (code_point << 6) | (next & 0x3Fu);
        }
        if (length == 3 && (code_point < 0x800 || (code_point >= 0xD800 && code_point <= 0xDFFF))) return i;
        if (length == 4 && (code_point < 0x10000 || code_point > 0x10FFFF)) return i;
        i += length;
    }
    return std::string_view::npos;
}

Status check_message_text(std::string_view text) {
    if (text.size() > kMaxMessageText)
        return fail("message text is " + std::to_string(text.size()) + " bytes; the limit is " +
                    std::to_string(kMaxMessageText) + " bytes");
    if (const auto at = invalid_utf8_at(text); at != std::string_view::npos)
        return fail("message text is not valid UTF-8 (at byte " + std::to_string(at) + ")");
    return success();
}

bool is_message_id(std::string_view id) {
    if (id.size() != kMessageIdChars) return false;
    for (const char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::string random_message_id() {
    std::array<unsigned char, kMessageIdBytes> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    std::array<char, kMessageIdChars + 1> hex{};
    sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
    return std::string(hex.data(), kMessageIdChars);
}

std::int64_t clamp_to_int64(std::size_t value) {
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(value > max ? max : value);
}

std::int64_t unix_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Binds parameters 1, 2, ... in order, remembering the first failure.
class Binder {
public:
    explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}

    Binder& i64(std::int64_t value) {
        if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, ++index_, value);
        return *this;
    }
    Binder& null() {
        if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_null(stmt_, ++index_);
        return *this;
    }
    Binder& text(std::string_view value) {
        // A null data() would bind SQL NULL; an empty string must stay a string.
        if (rc_ == SQLITE_OK)
            rc_ = sqlite3_bind_text64(stmt_, ++index_, value.data() ? value.data() : "", value.size(),
                                      SQLITE_TRANSIENT, SQLITE_UTF8);
        return *this;
    }
    Binder& peer(const PeerId& peer) {
        if (rc_ == SQLITE_OK)
            rc_ = sqlite3_bind_blob(stmt_, ++index_, peer.key().data(), static_cast<int>(peer.key().size()),
                                    SQLITE_TRANSIENT);
        return *this;
    }
    int rc() const { return rc_; }

private:
    sqlite3_stmt* stmt_;
    int rc_ = SQLITE_OK;
    int index_ = 0;
};

// Resets a cached statement and clears its bindings when the use ends.
class StatementUse {
public:
    explicit StatementUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
    ~StatementUse() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;
    sqlite3_stmt* get() const { return stmt_; }
    Binder bind() const { return Binder(stmt_); }

private:
    sqlite3_stmt* stmt_;
};

std::optional<PeerId> read_peer(sqlite3_stmt* stmt, int column) {
    if (sqlite3_column_type(stmt, column) != SQLITE_BLOB) return std::nullopt;
    const void* data = sqlite3_column_blob(stmt, column);
    if (!data || sqlite3_column_bytes(stmt, column) != static_cast<int>(identity::kPublicKeySize))
        return std::nullopt;
    identity::PublicKeyBytes key{};
    std::memcpy(key.data(), data, key.size());
    return PeerId(key);
}

std::string read_text(sqlite3_stmt* stmt, int column) {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
    const int bytes = sqlite3_column_bytes(stmt, column);
    if (!data || bytes <= 0) return {};
    return std::string(data, static_cast<std::size_t>(bytes));
}

// Reads a row selected with the message columns; nullopt for a row that does
// not look like ours (only possible if the file was edited by hand).
std::optional<StoredMessage> read_message(sqlite3_stmt* stmt) {
    auto peer = read_peer(stmt, 1);
    if (!peer) return std::nullopt;
    const auto direction = sqlite3_column_int64(stmt, 2);
    const auto sequence = sqlite3_column_int64(stmt, 3);
    if ((direction != kOutgoing && direction != kIncoming) || sequence < 1) return std::nullopt;
    StoredMessage message;
    message.message_id = read_text(stmt, 0);
    message.peer = *peer;
    message.direction = direction == kOutgoing ? MessageDirection::outgoing : MessageDirection::incoming;
    message.sequence = static_cast<std::uint64_t>(sequence);
    message.text = read_text(stmt, 4);
    message.sent_unix_ms = sqlite3_column_int64(stmt, 5);
    message.stored_unix_ms = sqlite3_column_int64(stmt, 6);
    message.delivered = sqlite3_column_int64(stmt, 7) != 0;
    if (sqlite3_column_type(stmt, 8) != SQLITE_NULL) message.delivered_unix_ms = sqlite3_column_int64(stmt, 8);
    message.row = sqlite3_column_type(stmt, 9) == SQLITE_NULL ? 0 : sqlite3_column_int64(stmt, 9);
    return message;
}

struct Conversation {
    std::int64_t next_outgoing = 1;
    std::int64_t next_presentable = 1;
};

}  // namespace

struct MessageStore::Impl {
    std::string path;
    sqlite3* db = nullptr;
    std::array<sqlite3_stmt*, kStmtCount> stmts{};

    ~Impl() {
        for (auto*& stmt : stmts) {
            sqlite3_finalize(stmt);
            stmt = nullptr;
        }
        if (db) sqlite3_close(db);
    }

    // "<path>: <what>: <sqlite's reason>".
    Error sqlite_error(const std::string& what, int rc) const {
        const char* reason = (db && sqlite3_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        return fail(path + ": " + what + ": " + reason);
    }

    StatementUse use(Stmt which) const { return StatementUse(stmts[which]); }

    // Steps a statement that returns no rows.
    Status run(const StatementUse& stmt, const Binder& bound, const char* what) {
        if (bound.rc() != SQLITE_OK) return sqlite_error(what, bound.rc());
        const int rc = sqlite3_step(stmt.get());
        if (rc != SQLITE_DONE) return sqlite_error(what, rc);
        return success();
    }

    Status exec(const char* sql, const char* what) {
        const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) return sqlite_error(what, rc);
        return success();
    }

    // Runs a single-column query such as a PRAGMA and returns its first value as text.
    Result<std::string> query_text(const char* sql, const char* what) {
        sqlite3_stmt* stmt = nullptr;
        int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(stmt);
            return sqlite_error(what, rc);
        }
        rc = sqlite3_step(stmt);
        std::string value;
        if (rc == SQLITE_ROW) value = read_text(stmt, 0);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            Error error = sqlite_error(what, rc);
            sqlite3_finalize(stmt);
            return error;
        }
        sqlite3_finalize(stmt);
        return value;
    }

    Status configure() {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, kBusyTimeoutMs);
        // Refuse the schema-corrupting tricks SQL could otherwise play on us.
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
        auto mode = query_text("PRAGMA journal_mode=WAL", "cannot open message store");
        if (!mode) return Error{mode.error()};
        if (*mode != "wal") return fail(path + ": cannot switch the message store to WAL mode (got " + *mode + ")");
        if (auto s = exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
                          "cannot configure message store");
            !s)
            return s;
        return success();
    }

    Status ensure_schema() {
        // Inside a write transaction, so two processes creating the same file
        // at once cannot both create the tables.
        if (auto s = exec("BEGIN IMMEDIATE", "cannot open message store"); !s) return s;
        auto version = query_text("PRAGMA user_version", "cannot read message store schema version");
        Status result = success();
        if (!version) {
            result = Error{version.error()};
        } else if (*version == "0") {
            auto tables = query_text("SELECT count(*) FROM sqlite_master", "cannot read message store schema");
            if (!tables)
                result = Error{tables.error()};
            else if (*tables != "0")
                result = fail(path + ": is an SQLite database but not a keyhole message store");
            else
                result = exec(kSchema, "cannot create message store schema");
        } else if (*version != std::to_string(kSchemaVersion)) {
            result = fail(path + ": message store schema version " + *version +
                          " is not supported (this keyhole understands version " +
                          std::to_string(kSchemaVersion) + "; was it written by a newer keyhole?)");
        }
        // Future migrations from older versions go here, inside this transaction.
        if (!result) {
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            return result;
        }
        if (auto s = exec("COMMIT", "cannot create message store schema"); !s) {
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            return s;
        }
        return success();
    }

    Status prepare_statements() {
        for (std::size_t i = 0; i < kStmtCount; ++i) {
            const int rc = sqlite3_prepare_v3(db, kSql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts[i], nullptr);
            if (rc != SQLITE_OK) return sqlite_error(std::string("cannot prepare statement \"") + kSql[i] + "\"", rc);
        }
        return success();
    }

    // --- transactions ---------------------------------------------------------

    Status begin() {
        auto stmt = use(kBegin);
        return run(stmt, stmt.bind(), "cannot start transaction");
    }
    Status commit() {
        auto stmt = use(kCommit);
        return run(stmt, stmt.bind(), "cannot commit transaction");
    }
    void rollback() {
        // SQLite rolls back by itself after some errors (I/O, disk full).
        if (sqlite3_get_autocommit(db)) return;
        auto stmt = use(kRollback);
        sqlite3_step(stmt.get());
    }

    // Rolls back unless committed.
    class Transaction {
    public:
        explicit Transaction(Impl& impl) : impl_(impl) {}
        ~Transaction() {
            if (active_) impl_.rollback();
        }
        Transaction(const Transaction&) = delete;
        Transaction& operator=(const Transaction&) = delete;

        Status begin() {
            auto s = impl_.begin();
            active_ = s.ok();
            return s;
        }
        Status commit() {
            auto s = impl_.commit();
            if (s) active_ = false;
            return s;
        }

    private:
        Impl& impl_;
        bool active_ = false;
    };

    // --- single steps used inside transactions ----------------------------------

    Result<std::optional<StoredMessage>> find_one(const StatementUse& stmt, const Binder& bound, const char* what) {
        if (bound.rc() != SQLITE_OK) return sqlite_error(what, bound.rc());
        const int rc = sqlite3_step(stmt.get());
        if (rc == SQLITE_DONE) return std::optional<StoredMessage>{};
        if (rc != SQLITE_ROW) return sqlite_error(what, rc);
        auto message = read_message(stmt.get());
        if (!message) return fail(path + ": " + what + ": malformed message row");
        return message;
    }

    Result<std::optional<StoredMessage>> find_by_id(std::string_view message_id) {
        auto stmt = use(kFindById);
        auto bound = stmt.bind().text(message_id);
        return find_one(stmt, bound, "cannot look up message");
    }

    Result<std::optional<StoredMessage>> find_incoming(const PeerId& peer, std::int64_t sequence) {
        auto stmt = use(kFindIncomingBySequence);
        auto bound = stmt.bind().peer(peer).i64(sequence);
        return find_one(stmt, bound, "cannot look up message");
    }

    Result<Conversation> conversation(const PeerId& peer) {
        {
            auto stmt = use(kEnsureConversation);
            if (auto s = run(stmt, stmt.bind().peer(peer), "cannot store conversation"); !s) return Error{s.error()};
        }
        auto stmt = use(kGetConversation);
        auto bound = stmt.bind().peer(peer);
        if (bound.rc() != SQLITE_OK) return sqlite_error("cannot read conversation", bound.rc());
        const int rc = sqlite3_step(stmt.get());
        if (rc != SQLITE_ROW) return sqlite_error("cannot read conversation", rc);
        return Conversation{sqlite3_column_int64(stmt.get(), 0), sqlite3_column_int64(stmt.get(), 1)};
    }

    Status set_conversation(const PeerId& peer, const Conversation& c) {
        auto stmt = use(kSetConversation);
        return run(stmt, stmt.bind().peer(peer).i64(c.next_outgoing).i64(c.next_presentable),
                   "cannot update conversation");
    }

    Result<std::int64_t> counter() {
        auto stmt = use(kGetCounter);
        const int rc = sqlite3_step(stmt.get());
        if (rc != SQLITE_ROW) return sqlite_error("cannot read store state", rc);
        return std::int64_t{sqlite3_column_int64(stmt.get(), 0)};
    }

    Status set_counter(std::int64_t value) {
        auto stmt = use(kSetCounter);
        return run(stmt, stmt.bind().i64(value), "cannot update store state");
    }

    Status insert(const StoredMessage& m, bool presentable) {
        auto stmt = use(kInsertMessage);
        auto bound = stmt.bind()
                         .text(m.message_id)
                         .peer(m.peer)
                         .i64(m.direction == MessageDirection::outgoing ? kOutgoing : kIncoming)
                         .i64(static_cast<std::int64_t>(m.sequence))
                         .text(m.text)
                         .i64(m.sent_unix_ms)
                         .i64(m.stored_unix_ms)
                         .i64(m.delivered ? 1 : 0);
        if (m.delivered_unix_ms)
            bound.i64(*m.delivered_unix_ms);
        else
            bound.null();
        bound.i64(presentable ? 1 : 0);
        if (presentable)
            bound.i64(m.row);
        else
            bound.null();
        return run(stmt, bound, "cannot store message");
    }

    // Runs a query of message rows; empty on failure (the callers' signatures
    // have no error channel, and a failed read changes nothing).
    std::vector<StoredMessage> list(const StatementUse& stmt, const Binder& bound) const {
        std::vector<StoredMessage> out;
        if (bound.rc() != SQLITE_OK) return {};
        int rc;
        while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW)
            if (auto message = read_message(stmt.get())) out.push_back(std::move(*message));
        if (rc != SQLITE_DONE) return {};
        return out;
    }
};


// ---------------------------------------------------------------------------

Result<std::unique_ptr<MessageStore>> MessageStore::open(const fs::path& path) {
    if (sodium_init() < 0) return fail("libsodium failed to initialise");
    if (path.empty()) return fail("message store path is empty");

    const fs::path parent = path.parent_path();
    if (!parent.empty()) {
        std::error_code error;
        if (fs::create_directories(parent, error))
            fs::permissions(parent, fs::perms::owner_all, fs::perm_options::replace, error);
        if (error) return fail(parent.string() + ": cannot create directory for the message store: " + error.message());
    }

    // Create the file ourselves so it is private from the start; SQLite gives
    // its -wal and -shm files the same permissions.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        const int sync_error = ::fsync(fd) == 0 ? 0 : errno;
        ::close(fd);
        // Make the new directory entry durable too.
        const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            (void)::fsync(dir);
            ::close(dir);
        }
        if (sync_error != 0)
            return fail(path.string() + ": cannot create message store: " + std::strerror(sync_error));
    } else if (errno != EEXIST) {
        return fail(path.string() + ": cannot create message store: " + std::strerror(errno));
    }

    auto impl = std::make_unique<Impl>();
    impl->path = path.string();
    const int rc = sqlite3_open_v2(impl->path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
        if (!impl->db) return fail(impl->path + ": cannot open message store: " + sqlite3_errstr(rc));
        return impl->sqlite_error("cannot open message store", rc);
    }
    if (auto s = impl->configure(); !s) return Error{s.error()};
    if (auto s = impl->ensure_schema(); !s) return Error{s.error()};
    if (auto s = impl->prepare_statements(); !s) return Error{s.error()};

    std::unique_ptr<MessageStore> store(new MessageStore());
    store->impl_ = std::move(impl);
    return store;
}

MessageStore::~MessageStore() = default;

Result<StoredMessage> MessageStore::enqueue_outgoing(const PeerId& peer, std::string_view text, std::int64_t now_ms) {
    if (text.empty()) return fail("message text is empty");
    if (auto s = check_message_text(text); !s) return Error{s.error()};

    auto& impl = *impl_;
    Impl::Transaction tx(impl);
    if (auto s = tx.begin(); !s) return Error{s.error()};
    auto conversation = impl.conversation(peer);
    if (!conversation) return Error{conversation.error()};
    auto row = impl.counter();
    if (!row) return Error{row.error()};

    StoredMessage message;
    message.message_id = random_message_id();
    message.peer = peer;
    message.direction = MessageDirection::outgoing;
    message.sequence = static_cast<std::uint64_t>(conversation->next_outgoing);
    message.text = std::string(text);
    message.sent_unix_ms = now_ms;
    message.stored_unix_ms = now_ms;
    message.row = *row;
    if (auto s = impl.insert(message, true); !s) return Error{s.error()};

    conversation->next_outgoing += 1;
    if (auto s = impl.set_conversation(peer, *conversation); !s) return Error{s.error()};
    if (auto s = impl.set_counter(*row + 1); !s) return Error{s.error()};
    if (auto s = tx.commit(); !s) return Error{s.error()};
    return message;
}

std::vector<StoredMessage> MessageStore::pending_outgoing(const PeerId& peer, std::size_t limit) const {
    auto stmt = impl_->use(kPending);
    // SQLite reads a negative LIMIT as "no limit".
    const auto sql_limit = limit > static_cast<std::size_t>(INT64_MAX) ? std::int64_t{-1} : static_cast<std::int64_t>(limit);
    return impl_->list(stmt, stmt.bind().peer(peer).i64(sql_limit));
}

std::vector<PeerId> MessageStore::peers_with_pending() const {
    auto stmt = impl_->use(kPeersWithPending);
    std::vector<PeerId> peers;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW)
        if (auto peer = read_peer(stmt.get(), 0)) peers.push_back(*peer);
    if (rc != SQLITE_DONE) return {};
    return peers;
}

Result<std::optional<StoredMessage>> MessageStore::mark_delivered(std::string_view message_id, std::int64_t now_ms) {
    if (!is_message_id(message_id)) return std::optional<StoredMessage>{};
    auto& impl = *impl_;
    Impl::Transaction tx(impl);
    if (auto s = tx.begin(); !s) return Error{s.error()};
    {
        auto stmt = impl.use(kMarkDelivered);
        if (auto s = impl.run(stmt, stmt.bind().text(message_id).i64(now_ms), "cannot mark message delivered"); !s)
            return Error{s.error()};
    }
    if (sqlite3_changes(impl.db) == 0) return std::optional<StoredMessage>{};  // unknown, incoming or repeat
    auto message = impl.find_by_id(message_id);
    if (!message) return Error{message.error()};
    if (auto s = tx.commit(); !s) return Error{s.error()};
    return message;
}

std::optional<StoredMessage> MessageStore::find(std::string_view message_id) const {
    if (!is_message_id(message_id)) return std::nullopt;
    auto message = impl_->find_by_id(message_id);
    if (!message) return std::nullopt;
    return *message;
}

Result<std::vector<StoredMessage>> MessageStore::store_incoming(const PeerId& from, std::string_view message_id,
                                                                std::uint64_t sequence, std::string_view text,
                                                                std::int64_t sent_ms, std::int64_t now_ms) {
    if (!is_message_id(message_id)) return fail("message id must be 32 lowercase hex characters");
    if (sequence < 1 || sequence > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return fail("message sequence " + std::to_string(sequence) + " is out of range");
    if (auto s = check_message_text(text); !s) return Error{s.error()};

    auto& impl = *impl_;
    Impl::Transaction tx(impl);
    if (auto s = tx.begin(); !s) return Error{s.error()};

    auto existing = impl.find_by_id(message_id);
    if (!existing) return Error{existing.error()};
    if (*existing) {
        const auto& stored = **existing;
        if (stored.direction == MessageDirection::incoming && stored.peer == from)
            return std::vector<StoredMessage>{};  // a retransmission: already stored
        return fail("message id " + std::string(message_id) + " from " + from.to_hex() +
                    " is already used by a different message");
    }

    const auto seq = static_cast<std::int64_t>(sequence);
    auto same_sequence = impl.find_incoming(from, seq);
    if (!same_sequence) return Error{same_sequence.error()};
    if (*same_sequence)
        return fail("peer " + from.to_hex() + " sent sequence " + std::to_string(sequence) + " again as message " +
                    std::string(message_id) + ", but it is already stored as message " +
                    (*same_sequence)->message_id);

    auto conversation = impl.conversation(from);
    if (!conversation) return Error{conversation.error()};

    StoredMessage message;
    message.message_id = std::string(message_id);
    message.peer = from;
    message.direction = MessageDirection::incoming;
    message.sequence = sequence;
    message.text = std::string(text);
    message.sent_unix_ms = sent_ms;
    message.stored_unix_ms = now_ms;
    if (auto s = impl.insert(message, false); !s) return Error{s.error()};

    std::vector<StoredMessage> presentable;
    if (seq == conversation->next_presentable) {
        auto row = impl.counter();
        if (!row) return Error{row.error()};
        std::int64_t next_row = *row;
        for (;;) {
            auto next = impl.find_incoming(from, conversation->next_presentable);
            if (!next) return Error{next.error()};
            if (!*next) break;
            auto& ready = **next;
            {
                auto stmt = impl.use(kMarkPresentable);
                if (auto s = impl.run(stmt, stmt.bind().text(ready.message_id).i64(next_row),
                                      "cannot mark message presentable");
                    !s)
                    return Error{s.error()};
            }
            ready.row = next_row++;
            presentable.push_back(std::move(ready));
            conversation->next_presentable += 1;
        }
        if (auto s = impl.set_counter(next_row); !s) return Error{s.error()};
        if (auto s = impl.set_conversation(from, *conversation); !s) return Error{s.error()};
    }
    if (auto s = tx.commit(); !s) return Error{s.error()};
    return presentable;
}

std::vector<StoredMessage> MessageStore::inbox(std::int64_t after_row, std::size_t limit) const {
    auto stmt = impl_->use(kInbox);
    return impl_->list(stmt, stmt.bind().i64(after_row).i64(clamp_to_int64(limit)));
}

std::vector<StoredMessage> MessageStore::history(const PeerId& peer, std::size_t limit) const {
    auto stmt = impl_->use(kHistory);
    return impl_->list(stmt, stmt.bind().peer(peer).i64(clamp_to_int64(limit)));
}

Status MessageStore::add_contact(const PeerId& peer, std::string_view name) {
    if (name.size() > kMaxContactName)
        return fail("contact name is " + std::to_string(name.size()) + " bytes; the limit is " +
                    std::to_string(kMaxContactName) + " bytes");
    if (const auto at = invalid_utf8_at(name); at != std::string_view::npos)
        return fail("contact name is not valid UTF-8 (at byte " + std::to_string(at) + ")");
    auto& impl = *impl_;
    Impl::Transaction tx(impl);
    if (auto s = tx.begin(); !s) return s;
    {
        auto stmt = impl.use(kUpsertContact);
        if (auto s = impl.run(stmt, stmt.bind().peer(peer).text(name).i64(unix_now_ms()), "cannot store contact");
            !s)
            return s;
    }
    return tx.commit();
}

Status MessageStore::remove_contact(const PeerId& peer) {
    auto& impl = *impl_;
    Impl::Transaction tx(impl);
    if (auto s = tx.begin(); !s) return s;
    {
        auto stmt = impl.use(kDeleteContact);
        if (auto s = impl.run(stmt, stmt.bind().peer(peer), "cannot remove contact"); !s) return s;
    }
    if (sqlite3_changes(impl.db) == 0) return fail(peer.to_text() + " is not a contact");
    return tx.commit();
}

std::vector<MessageStore::Contact> MessageStore::contacts() const {
    auto stmt = impl_->use(kListContacts);
    std::vector<Contact> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW)
        if (auto peer = read_peer(stmt.get(), 0)) out.push_back(Contact{*peer, read_text(stmt.get(), 1)});
    if (rc != SQLITE_DONE) return {};
    return out;
}

bool MessageStore::is_contact(const PeerId& peer) const {
    auto stmt = impl_->use(kIsContact);
    if (stmt.bind().peer(peer).rc() != SQLITE_OK) return false;
    return sqlite3_step(stmt.get()) == SQLITE_ROW;
}

}  // namespace keyhole::node
