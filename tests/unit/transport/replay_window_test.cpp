#include <gtest/gtest.h>

#include <random>

#include "keyhole/transport/replay_window.h"

using keyhole::transport::ReplayWindow;

TEST(ReplayWindow, AcceptsEachCounterOnce) {
    ReplayWindow window;
    for (std::uint64_t c = 0; c < 3000; ++c) {
        ASSERT_TRUE(window.may_accept(c));
        window.accept(c);
        ASSERT_FALSE(window.may_accept(c));
    }
}

TEST(ReplayWindow, AcceptsReorderedCountersInsideTheWindow) {
    ReplayWindow window;
    window.accept(100);
    EXPECT_TRUE(window.may_accept(99));
    window.accept(99);
    EXPECT_FALSE(window.may_accept(99));
    EXPECT_TRUE(window.may_accept(50));
}

TEST(ReplayWindow, RejectsCountersOlderThanTheWindow) {
    ReplayWindow window;
    window.accept(5000);
    EXPECT_FALSE(window.may_accept(5000 - ReplayWindow::kSize));
    EXPECT_TRUE(window.may_accept(5000 - ReplayWindow::kSize + 1));
}

TEST(ReplayWindow, ABigJumpForgetsTheOldWindow) {
    ReplayWindow window;
    window.accept(10);
    window.accept(10 + 10 * ReplayWindow::kSize);
    EXPECT_FALSE(window.may_accept(10));
    EXPECT_TRUE(window.may_accept(10 + 10 * ReplayWindow::kSize - 1));
}

TEST(ReplayWindow, RandomOrderNeverAcceptsADuplicate) {
    ReplayWindow window;
    std::mt19937_64 random(42);
    std::vector<bool> accepted(20000, false);
    std::uint64_t highest = 0;
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t c = random() % accepted.size();
        if (window.may_accept(c)) {
            ASSERT_FALSE(accepted[c]) << "counter " << c << " accepted twice";
            ASSERT_TRUE(c > highest || highest - c < ReplayWindow::kSize);
            accepted[c] = true;
            window.accept(c);
            highest = std::max(highest, c);
        }
    }
}
