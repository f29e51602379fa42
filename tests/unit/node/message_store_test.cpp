#include "keyhole/node/message_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace keyhole::node {
namespace {

namespace fs = std::filesystem;
using identity::PeerId;

using keyhole::testing::TempDir;

PeerId peer(std::uint8_t fill) {
    identity::PublicKeyBytes key{};
    key.fill(fill);
    return PeerId(key);
}

std::string hex_id(int n) {
    char buffer[33];
    std::snprintf(buffer, sizeof(buffer), "%032x", n);
    return buffer;
}

std::vector<std::uint64_t> sequences(const std::vector<StoredMessage>& messages) {
    std::vector<std::uint64_t> out;
    for (const auto& m : messages) out.push_back(m.sequence);
    return out;
}

std::vector<std::string> texts(const std::vector<StoredMessage>& messages) {
    std::vector<std::string> out;
    for (const auto& m : messages) out.push_back(m.text);
    return out;
}

class MessageStoreTest : public ::testing::Test {
protected:
    void SetUp() override { reopen(); }

    void reopen() {
        store_.reset();
        auto opened = MessageStore::open(file_);
        ASSERT_TRUE(opened.ok()) << opened.error();
        store_ = std::move(opened).value();
    }

    MessageStore& store() { return *store_; }

    // Stores an incoming message and expects success.
    std::vector<StoredMessage> receive(const PeerId& from, int id, std::uint64_t sequence, const std::string& text,
                                       std::int64_t now_ms = 1000) {
        auto result = store().store_incoming(from, hex_id(id), sequence, text, now_ms - 10, now_ms);
        EXPECT_TRUE(result.ok()) << result.error();
        return result.ok() ? result.value() : std::vector<StoredMessage>{};
    }

    TempDir dir_;
    fs::path file_ = dir_.path() / "messages.db";
    std::unique_ptr<MessageStore> store_;
};

// --- outgoing ----------------------------------------------------------------

TEST_F(MessageStoreTest, EnqueueAssignsIncreasingSequencesPerPeerIndependently) {
    const auto alice = peer(1), bob = peer(2);
    auto a1 = store().enqueue_outgoing(alice, "a1", 100);
    auto a2 = store().enqueue_outgoing(alice, "a2", 101);
    auto b1 = store().enqueue_outgoing(bob, "b1", 102);
    auto a3 = store().enqueue_outgoing(alice, "a3", 103);
    ASSERT_TRUE(a1.ok() && a2.ok() && b1.ok() && a3.ok());
    EXPECT_EQ(a1->sequence, 1u);
    EXPECT_EQ(a2->sequence, 2u);
    EXPECT_EQ(a3->sequence, 3u);
    EXPECT_EQ(b1->sequence, 1u);
    EXPECT_EQ(a1->peer, alice);
    EXPECT_EQ(b1->peer, bob);
    EXPECT_EQ(a1->direction, MessageDirection::outgoing);
    EXPECT_EQ(a1->sent_unix_ms, 100);
    EXPECT_EQ(a1->stored_unix_ms, 100);
    EXPECT_FALSE(a1->delivered);
    EXPECT_FALSE(a1->delivered_unix_ms.has_value());
    EXPECT_LT(a1->row, a2->row);
    EXPECT_LT(a2->row, b1->row);
}

TEST_F(MessageStoreTest, EnqueueAssignsDistinctRandomLowercaseHexIds) {
    auto first = store().enqueue_outgoing(peer(1), "one", 1);
    auto second = store().enqueue_outgoing(peer(1), "two", 2);
    ASSERT_TRUE(first.ok() && second.ok());
    for (const auto* id : {&first->message_id, &second->message_id}) {
        ASSERT_EQ(id->size(), 32u);
        EXPECT_EQ(id->find_first_not_of("0123456789abcdef"), std::string::npos) << *id;
    }
    EXPECT_NE(first->message_id, second->message_id);
    auto found = store().find(first->message_id);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->text, "one");
    EXPECT_EQ(found->row, first->row);
}

TEST_F(MessageStoreTest, EnqueueRejectsEmptyOversizedAndInvalidUtf8TextAndStoresNothing) {
    const auto alice = peer(1);
    auto empty = store().enqueue_outgoing(alice, "", 1);
    ASSERT_FALSE(empty.ok());
    EXPECT_NE(empty.error().find("empty"), std::string::npos) << empty.error();

    auto oversized = store().enqueue_outgoing(alice, std::string(kMaxMessageText + 1, 'x'), 1);
    ASSERT_FALSE(oversized.ok());
    EXPECT_NE(oversized.error().find("limit"), std::string::npos) << oversized.error();

    for (const std::string& bad : {std::string("abc\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                                  std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
        auto result = store().enqueue_outgoing(alice, bad, 1);
        ASSERT_FALSE(result.ok());
        EXPECT_NE(result.error().find("UTF-8"), std::string::npos) << result.error();
    }

    EXPECT_TRUE(store().pending_outgoing(alice).empty());
    EXPECT_TRUE(store().peers_with_pending().empty());
    EXPECT_TRUE(store().history(alice, 100).empty());
    // The failed attempts did not use up a sequence.
    auto good = store().enqueue_outgoing(alice, "ok", 2);
    ASSERT_TRUE(good.ok()) << good.error();
    EXPECT_EQ(good->sequence, 1u);
}

TEST_F(MessageStoreTest, EnqueueAcceptsTextOfExactlyTheLimitAndMultibyteUtf8) {
    auto largest = store().enqueue_outgoing(peer(1), std::string(kMaxMessageText, 'x'), 1);
    ASSERT_TRUE(largest.ok()) << largest.error();
    const std::string utf8 = "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x91";
    auto text = store().enqueue_outgoing(peer(1), utf8, 2);
    ASSERT_TRUE(text.ok()) << text.error();
    EXPECT_EQ(store().find(text->message_id)->text, utf8);
    EXPECT_EQ(store().find(largest->message_id)->text.size(), kMaxMessageText);
}

TEST_F(MessageStoreTest, DeliveredMessageIsNoLongerPending) {
    const auto alice = peer(1);
    auto first = store().enqueue_outgoing(alice, "first", 10);
    auto second = store().enqueue_outgoing(alice, "second", 11);
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_EQ(texts(store().pending_outgoing(alice)), (std::vector<std::string>{"first", "second"}));

    auto marked = store().mark_delivered(first->message_id, 50);
    ASSERT_TRUE(marked.ok()) << marked.error();
    ASSERT_TRUE(marked->has_value());
    EXPECT_TRUE((*marked)->delivered);
    EXPECT_EQ((*marked)->delivered_unix_ms, 50);
    EXPECT_EQ((*marked)->message_id, first->message_id);

    EXPECT_EQ(texts(store().pending_outgoing(alice)), (std::vector<std::string>{"second"}));
    EXPECT_TRUE(store().find(first->message_id)->delivered);
}

TEST_F(MessageStoreTest, RepeatedMarkDeliveredReturnsNothingAndKeepsTheFirstTime) {
    auto sent = store().enqueue_outgoing(peer(1), "hi", 10);
    ASSERT_TRUE(sent.ok());
    ASSERT_TRUE(store().mark_delivered(sent->message_id, 50)->has_value());
    auto again = store().mark_delivered(sent->message_id, 60);
    ASSERT_TRUE(again.ok()) << again.error();
    EXPECT_FALSE(again->has_value());
    EXPECT_EQ(store().find(sent->message_id)->delivered_unix_ms, 50);
}

TEST_F(MessageStoreTest, MarkDeliveredIgnoresUnknownMalformedAndIncomingIds) {
    receive(peer(1), 7, 1, "incoming");
    for (const std::string& id : {hex_id(99), hex_id(7), std::string("nonsense"), std::string()}) {
        auto result = store().mark_delivered(id, 5);
        ASSERT_TRUE(result.ok()) << result.error();
        EXPECT_FALSE(result->has_value()) << id;
    }
    EXPECT_FALSE(store().find(hex_id(7))->delivered);
}

TEST_F(MessageStoreTest, PeersWithPendingListsEachPeerOnceUntilAllDelivered) {
    const auto alice = peer(1), bob = peer(2);
    auto a1 = store().enqueue_outgoing(alice, "a1", 1);
    auto a2 = store().enqueue_outgoing(alice, "a2", 2);
    auto b1 = store().enqueue_outgoing(bob, "b1", 3);
    ASSERT_TRUE(a1.ok() && a2.ok() && b1.ok());
    EXPECT_EQ(store().peers_with_pending(), (std::vector<PeerId>{alice, bob}));
    ASSERT_TRUE(store().mark_delivered(b1->message_id, 4).ok());
    EXPECT_EQ(store().peers_with_pending(), (std::vector<PeerId>{alice}));
    ASSERT_TRUE(store().mark_delivered(a1->message_id, 5).ok());
    ASSERT_TRUE(store().mark_delivered(a2->message_id, 6).ok());
    EXPECT_TRUE(store().peers_with_pending().empty());
}

// --- incoming ------------------------------------------------------------------

TEST_F(MessageStoreTest, OutOfOrderIncomingIsPresentedInSequenceOrder) {
    const auto alice = peer(1);
    EXPECT_TRUE(receive(alice, 3, 3, "three", 1001).empty());
    EXPECT_TRUE(store().inbox(0, 100).empty());
    EXPECT_EQ(sequences(receive(alice, 1, 1, "one", 1002)), (std::vector<std::uint64_t>{1}));
    const auto released = receive(alice, 2, 2, "two", 1003);
    EXPECT_EQ(sequences(released), (std::vector<std::uint64_t>{2, 3}));
    EXPECT_EQ(texts(released), (std::vector<std::string>{"two", "three"}));

    const auto inbox = store().inbox(0, 100);
    EXPECT_EQ(texts(inbox), (std::vector<std::string>{"one", "two", "three"}));
    ASSERT_EQ(inbox.size(), 3u);
    EXPECT_LT(inbox[0].row, inbox[1].row);
    EXPECT_LT(inbox[1].row, inbox[2].row);
    // The rows returned by store_incoming are the inbox rows.
    EXPECT_EQ(released[0].row, inbox[1].row);
    EXPECT_EQ(released[1].row, inbox[2].row);
    EXPECT_EQ(inbox[2].stored_unix_ms, 1001);
    EXPECT_EQ(inbox[2].sent_unix_ms, 991);
    EXPECT_EQ(inbox[0].direction, MessageDirection::incoming);
}

TEST_F(MessageStoreTest, IncomingConversationsWithDifferentPeersAreIndependent) {
    const auto alice = peer(1), bob = peer(2);
    EXPECT_TRUE(receive(alice, 1, 2, "alice two").empty());
    EXPECT_EQ(texts(receive(bob, 2, 1, "bob one")), (std::vector<std::string>{"bob one"}));
    EXPECT_EQ(texts(receive(alice, 3, 1, "alice one")), (std::vector<std::string>{"alice one", "alice two"}));
}

TEST_F(MessageStoreTest, WaitingIncomingMessageIsFindableButHasNoRowYet) {
    receive(peer(1), 5, 2, "early");
    auto found = store().find(hex_id(5));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->row, 0);
    EXPECT_EQ(found->sequence, 2u);
}

TEST_F(MessageStoreTest, DuplicateIncomingIdIsStoredOnce) {
    const auto alice = peer(1);
    EXPECT_EQ(receive(alice, 1, 1, "hello").size(), 1u);
    EXPECT_TRUE(receive(alice, 1, 1, "hello").empty());
    EXPECT_TRUE(receive(alice, 9, 3, "early").empty());
    EXPECT_TRUE(receive(alice, 9, 3, "early").empty());  // also while still waiting
    EXPECT_EQ(texts(store().inbox(0, 100)), (std::vector<std::string>{"hello"}));
    EXPECT_EQ(texts(receive(alice, 2, 2, "two")), (std::vector<std::string>{"two", "early"}));
    EXPECT_EQ(store().inbox(0, 100).size(), 3u);
}

TEST_F(MessageStoreTest, ReusedIncomingSequenceWithNewIdIsRejectedAndDoesNotOverwrite) {
    const auto alice = peer(1);
    receive(alice, 1, 1, "original");
    auto presented = store().store_incoming(alice, hex_id(2), 1, "impostor", 0, 1);
    ASSERT_FALSE(presented.ok());
    EXPECT_NE(presented.error().find("sequence 1"), std::string::npos) << presented.error();

    receive(alice, 3, 5, "waiting");
    auto waiting = store().store_incoming(alice, hex_id(4), 5, "impostor", 0, 1);
    ASSERT_FALSE(waiting.ok());

    EXPECT_FALSE(store().find(hex_id(2)).has_value());
    EXPECT_FALSE(store().find(hex_id(4)).has_value());
    EXPECT_EQ(store().find(hex_id(3))->text, "waiting");
    EXPECT_EQ(texts(store().inbox(0, 100)), (std::vector<std::string>{"original"}));
}

TEST_F(MessageStoreTest, IncomingIdAlreadyUsedByAnotherPeerOrOurOwnMessageIsRejected) {
    receive(peer(1), 1, 1, "from alice");
    auto stolen = store().store_incoming(peer(2), hex_id(1), 1, "from mallory", 0, 1);
    ASSERT_FALSE(stolen.ok());
    EXPECT_NE(stolen.error().find("already used"), std::string::npos) << stolen.error();

    auto ours = store().enqueue_outgoing(peer(2), "to mallory", 1);
    ASSERT_TRUE(ours.ok());
    auto echoed = store().store_incoming(peer(2), ours->message_id, 1, "echo", 0, 1);
    ASSERT_FALSE(echoed.ok());
    EXPECT_EQ(store().find(ours->message_id)->direction, MessageDirection::outgoing);
    EXPECT_TRUE(store().inbox(0, 100).size() == 1u);
}

TEST_F(MessageStoreTest, IncomingWithMalformedIdBadSequenceOrBadTextIsRejected) {
    const auto alice = peer(1);
    const std::string upper = "0123456789ABCDEF0123456789ABCDEF";
    EXPECT_FALSE(store().store_incoming(alice, upper, 1, "x", 0, 1).ok());
    EXPECT_FALSE(store().store_incoming(alice, "abc", 1, "x", 0, 1).ok());
    EXPECT_FALSE(store().store_incoming(alice, hex_id(1) + "0", 1, "x", 0, 1).ok());
    EXPECT_FALSE(store().store_incoming(alice, hex_id(1), 0, "x", 0, 1).ok());
    EXPECT_FALSE(store().store_incoming(alice, hex_id(1), UINT64_MAX, "x", 0, 1).ok());
    EXPECT_FALSE(store().store_incoming(alice, hex_id(1), 1, "bad \xfe", 0, 1).ok());
    EXPECT_FALSE(store().store_incoming(alice, hex_id(1), 1, std::string(kMaxMessageText + 1, 'x'), 0, 1).ok());
    EXPECT_FALSE(store().find(hex_id(1)).has_value());
    // The rejected attempts left sequence 1 free.
    EXPECT_EQ(receive(alice, 1, 1, "fine").size(), 1u);
}

TEST_F(MessageStoreTest, InboxPagesByRowCursorAndSkipsOutgoing) {
    const auto alice = peer(1);
    receive(alice, 1, 1, "one");
    ASSERT_TRUE(store().enqueue_outgoing(alice, "reply", 1).ok());
    receive(alice, 2, 2, "two");
    receive(alice, 3, 3, "three");

    const auto first_page = store().inbox(0, 2);
    EXPECT_EQ(texts(first_page), (std::vector<std::string>{"one", "two"}));
    const auto second_page = store().inbox(first_page.back().row, 2);
    EXPECT_EQ(texts(second_page), (std::vector<std::string>{"three"}));
    EXPECT_TRUE(store().inbox(second_page.back().row, 2).empty());
    EXPECT_TRUE(store().inbox(0, 0).empty());
}

// --- history -----------------------------------------------------------------

TEST_F(MessageStoreTest, HistoryInterleavesBothDirectionsInConversationOrder) {
    const auto alice = peer(1), bob = peer(2);
    ASSERT_TRUE(store().enqueue_outgoing(alice, "out 1", 100).ok());
    receive(alice, 1, 1, "in 1", 200);
    receive(alice, 3, 3, "in 3", 300);  // early: not in the conversation yet
    ASSERT_TRUE(store().enqueue_outgoing(bob, "to bob", 350).ok());
    ASSERT_TRUE(store().enqueue_outgoing(alice, "out 2", 400).ok());
    EXPECT_EQ(texts(store().history(alice, 100)), (std::vector<std::string>{"out 1", "in 1", "out 2"}));

    receive(alice, 2, 2, "in 2", 500);  // releases 2 and 3, after "out 2"
    const auto history = store().history(alice, 100);
    EXPECT_EQ(texts(history), (std::vector<std::string>{"out 1", "in 1", "out 2", "in 2", "in 3"}));
    for (std::size_t i = 1; i < history.size(); ++i) EXPECT_LT(history[i - 1].row, history[i].row);

    EXPECT_EQ(texts(store().history(alice, 2)), (std::vector<std::string>{"in 2", "in 3"}));
    EXPECT_TRUE(store().history(alice, 0).empty());
    EXPECT_EQ(texts(store().history(bob, 100)), (std::vector<std::string>{"to bob"}));
    EXPECT_TRUE(store().history(peer(3), 100).empty());
}

TEST_F(MessageStoreTest, OutgoingAndIncomingSequencesOfOnePeerDoNotCollide) {
    const auto alice = peer(1);
    auto sent = store().enqueue_outgoing(alice, "mine", 1);
    ASSERT_TRUE(sent.ok());
    EXPECT_EQ(sent->sequence, 1u);
    EXPECT_EQ(receive(alice, 1, 1, "theirs").size(), 1u);
    EXPECT_EQ(store().history(alice, 10).size(), 2u);
}

// --- contacts ------------------------------------------------------------------

TEST_F(MessageStoreTest, ContactsCanBeAddedRenamedListedByNameAndRemoved) {
    const auto alice = peer(1), bob = peer(2), carol = peer(3);
    EXPECT_TRUE(store().contacts().empty());
    EXPECT_FALSE(store().is_contact(alice));

    ASSERT_TRUE(store().add_contact(carol, "carol").ok());
    ASSERT_TRUE(store().add_contact(alice, "zed").ok());
    ASSERT_TRUE(store().add_contact(bob, "bob").ok());
    ASSERT_TRUE(store().add_contact(alice, "alice").ok());  // rename, not a second entry

    const auto list = store().contacts();
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0].name, "alice");
    EXPECT_EQ(list[0].peer, alice);
    EXPECT_EQ(list[1].name, "bob");
    EXPECT_EQ(list[2].name, "carol");
    EXPECT_TRUE(store().is_contact(bob));

    ASSERT_TRUE(store().remove_contact(bob).ok());
    EXPECT_FALSE(store().is_contact(bob));
    EXPECT_EQ(store().contacts().size(), 2u);
}

TEST_F(MessageStoreTest, RemovingSomeoneWhoIsNotAContactIsAnError) {
    auto result = store().remove_contact(peer(9));
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("not a contact"), std::string::npos) << result.error();
    ASSERT_TRUE(store().add_contact(peer(9), "x").ok());
    ASSERT_TRUE(store().remove_contact(peer(9)).ok());
    EXPECT_FALSE(store().remove_contact(peer(9)).ok());
}

TEST_F(MessageStoreTest, ContactNameMustBeValidUtf8) {
    EXPECT_FALSE(store().add_contact(peer(1), "bad\xff").ok());
    EXPECT_FALSE(store().is_contact(peer(1)));
    EXPECT_TRUE(store().add_contact(peer(1), "").ok());
    EXPECT_TRUE(store().is_contact(peer(1)));
}

// --- durability ------------------------------------------------------------------

TEST_F(MessageStoreTest, ReopeningKeepsMessagesSequencesPresentableStateAndContacts) {
    const auto alice = peer(1), bob = peer(2);
    auto out1 = store().enqueue_outgoing(alice, "out 1", 10);
    auto out2 = store().enqueue_outgoing(alice, "out 2", 11);
    ASSERT_TRUE(out1.ok() && out2.ok());
    ASSERT_TRUE(store().mark_delivered(out1->message_id, 12).ok());
    receive(bob, 1, 1, "bob 1");
    receive(bob, 3, 3, "bob 3");
    ASSERT_TRUE(store().add_contact(bob, "bob").ok());
    const auto row_before = store().inbox(0, 10).back().row;

    reopen();

    EXPECT_EQ(texts(store().pending_outgoing(alice)), (std::vector<std::string>{"out 2"}));
    EXPECT_TRUE(store().find(out1->message_id)->delivered);
    EXPECT_EQ(store().find(out1->message_id)->delivered_unix_ms, 12);
    auto out3 = store().enqueue_outgoing(alice, "out 3", 13);
    ASSERT_TRUE(out3.ok());
    EXPECT_EQ(out3->sequence, 3u);
    EXPECT_GT(out3->row, row_before);

    EXPECT_EQ(texts(store().inbox(0, 10)), (std::vector<std::string>{"bob 1"}));
    EXPECT_TRUE(receive(bob, 1, 1, "bob 1").empty());  // still a duplicate
    EXPECT_EQ(texts(receive(bob, 2, 2, "bob 2")), (std::vector<std::string>{"bob 2", "bob 3"}));
    EXPECT_EQ(texts(store().inbox(row_before, 10)), (std::vector<std::string>{"bob 2", "bob 3"}));
    EXPECT_TRUE(store().is_contact(bob));
    EXPECT_EQ(store().contacts().at(0).name, "bob");
}

TEST_F(MessageStoreTest, AcknowledgedMessageSurvivesKillNine) {
    store_.reset();
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The "daemon": enqueue, report success, then hang until killed. The
        // store is never closed, no destructor or exit handler runs.
        ::close(fds[0]);
        auto opened = MessageStore::open(file_);
        if (!opened.ok()) ::_exit(2);
        auto sent = opened.value()->enqueue_outgoing(peer(1), "survives", 42);
        if (!sent.ok()) ::_exit(3);
        auto presented = opened.value()->store_incoming(peer(2), hex_id(1), 1, "also survives", 40, 41);
        if (!presented.ok() || presented->size() != 1) ::_exit(4);
        const std::string reply = sent->message_id;
        if (::write(fds[1], reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) ::_exit(5);
        for (;;) ::pause();
    }
    ::close(fds[1]);
    char buffer[64] = {};
    std::size_t got = 0;
    while (got < 32) {
        const auto n = ::read(fds[0], buffer + got, sizeof(buffer) - 1 - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fds[0]);
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_EQ(got, 32u) << "child exited with status " << status;
    ASSERT_TRUE(WIFSIGNALED(status));

    reopen();
    auto found = store().find(std::string(buffer, got));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->text, "survives");
    EXPECT_EQ(texts(store().pending_outgoing(peer(1))), (std::vector<std::string>{"survives"}));
    EXPECT_EQ(texts(store().inbox(0, 10)), (std::vector<std::string>{"also survives"}));
    auto next = store().enqueue_outgoing(peer(1), "after", 50);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->sequence, 2u);
}

// --- the file ------------------------------------------------------------------

TEST(MessageStoreFile, CreatesMissingParentDirectoryAndPrivateFile) {
    TempDir dir;
    const auto file = dir.path() / "state" / "nested" / "messages.db";
    auto opened = MessageStore::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error();
    ASSERT_TRUE(opened.value()->enqueue_outgoing(peer(1), "x", 1).ok());
    struct stat info {};
    ASSERT_EQ(::stat(file.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(file.parent_path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat((file.string() + "-wal").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(MessageStoreFile, UsesWalJournalAndSchemaVersionOne) {
    TempDir dir;
    const auto file = dir.path() / "messages.db";
    ASSERT_TRUE(MessageStore::open(file).ok());
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    auto single = [db](const char* sql) {
        sqlite3_stmt* stmt = nullptr;
        std::string value;
        if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
            value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
        return value;
    };
    EXPECT_EQ(single("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(single("PRAGMA user_version"), "1");
    sqlite3_close(db);
}

TEST(MessageStoreFile, CorruptFileGivesAnErrorNamingTheFile) {
    TempDir dir;
    const auto file = dir.path() / "messages.db";
    {
        std::ofstream out(file, std::ios::binary);
        std::uint32_t state = 12345;
        for (int i = 0; i < 8192; ++i) {
            state = state * 1103515245u + 12345u;
            out.put(static_cast<char>(state >> 24));
        }
    }
    auto opened = MessageStore::open(file);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().find(file.string()), std::string::npos) << opened.error();
}

TEST(MessageStoreFile, ShortGarbageFileGivesAnErrorNamingTheFile) {
    TempDir dir;
    const auto file = dir.path() / "messages.db";
    std::ofstream(file) << "this is not a database\n";
    auto opened = MessageStore::open(file);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().find(file.string()), std::string::npos) << opened.error();
}

TEST(MessageStoreFile, DamagedDatabaseGivesErrorsNotCrashes) {
    TempDir dir;
    const auto file = dir.path() / "messages.db";
    {
        auto opened = MessageStore::open(file);
        ASSERT_TRUE(opened.ok());
        for (int i = 0; i < 200; ++i)
            ASSERT_TRUE(opened.value()->enqueue_outgoing(peer(1), std::string(500, 'a' + i % 26), i).ok());
    }
    // Overwrite everything after the header page with garbage.
    {
        std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(4096);
        for (int i = 0; i < 64 * 1024; ++i) io.put(static_cast<char>(0xA5 ^ i));
    }
    auto opened = MessageStore::open(file);
    if (!opened.ok()) {
        EXPECT_NE(opened.error().find(file.string()), std::string::npos) << opened.error();
        return;
    }
    // Opened (the damage was not on a page open reads): every call must fail softly.
    auto& store = *opened.value();
    auto sent = store.enqueue_outgoing(peer(1), "x", 1);
    if (!sent.ok()) {
        EXPECT_NE(sent.error().find(file.string()), std::string::npos) << sent.error();
    }
    (void)store.pending_outgoing(peer(1));
    (void)store.history(peer(1), 10);
    (void)store.inbox(0, 10);
    (void)store.peers_with_pending();
    (void)store.contacts();
}

TEST(MessageStoreFile, ForeignSqliteDatabaseIsRefused) {
    TempDir dir;
    const auto file = dir.path() / "other.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    auto opened = MessageStore::open(file);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().find("not a keyhole message store"), std::string::npos) << opened.error();
}

TEST(MessageStoreFile, StoreFromANewerSchemaVersionIsRefused) {
    TempDir dir;
    const auto file = dir.path() / "messages.db";
    ASSERT_TRUE(MessageStore::open(file).ok());
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 2", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    auto opened = MessageStore::open(file);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().find("version 2"), std::string::npos) << opened.error();
    EXPECT_NE(opened.error().find(file.string()), std::string::npos) << opened.error();
}

TEST(MessageStoreFile, DirectoryInPlaceOfTheFileIsAnError) {
    TempDir dir;
    const auto file = dir.path() / "messages.db";
    fs::create_directory(file);
    auto opened = MessageStore::open(file);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().find(file.string()), std::string::npos) << opened.error();
}

}  // namespace
}  // namespace keyhole::node
