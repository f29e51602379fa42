// relay_load: relay clients over UDP against a real `keyholed --relay`, for
// the abuse test (tests/integration/relay_abuse_test.sh) and by hand.
// Throwaway identity keys, the real allocation exchange (RelayAllocationClient:
// allocate_request -> challenge -> confirm -> result), then traffic at a
// bounded, paced rate for a bounded time. Every mode prints one summary line
// of key=value pairs on stdout.
//
//   relay_load echo  --relay IP:PORT --relay-id ID [--seconds S]
//       Allocates and answers every relay_deliver with a relay_reply carrying
//       the same datagram (an echo). Prints "owner=ID limit_packets_per_s=..
//       limit_bytes_per_s=.. lifetime_s=.." once granted, then, after S
//       seconds (default 30) or SIGTERM/SIGINT, "mode=echo delivered=..".
//   relay_load send  --relay IP:PORT --target ID [--rate R] [--size B] [--seconds S]
//                    [--sockets N] [--grace-ms MS]
//       Sends relay_send frames of B bytes (default 1024) to the allocation of
//       ID at R per second (default 200) for S seconds (default 5) from N
//       sockets (default 1), and counts the echoes coming back: delivered
//       round trips per second, loss, round-trip times. Waits MS (default
//       500) after the last frame for late echoes.
//   relay_load flood --relay IP:PORT --relay-id ID [--rate R] [--size B] [--seconds S]
//                    [--sockets N] [--echo]
//       An abusive client: allocates its own allocation and sends to it from
//       N sockets (default 4, i.e. N source ports) at R per second (default
//       20000) for S seconds (default 5); the holder counts what the relay
//       delivered (and echoes it with --echo). Reports relay_error answers
//       by code and the delivered rate, also in steady state (from 1.5 s on,
//       once the allocation's one-second burst is spent) beside what the
//       allocation's limits allow for this frame size.
//   relay_load converse --relay IP:PORT --relay-id ID [send options]
//       echo and send in one process (two sockets): a quick loopback check.
//
// Bounds: rate <= 50000/s, size 32..1400 bytes, seconds <= 120, at most 16
// sockets; allocation gives up after --alloc-timeout-ms (default 5000); a
// sender that falls behind more than 100 ms skips those frames (counted as
// "skipped") instead of bursting. Answers that do not parse, come from
// elsewhere, or carry a datagram that is not ours are counted, not trusted.
// Exit: 0 ran (the caller judges the numbers), 1 no allocation or a socket
// failed, 2 bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sodium.h>

#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/transport/relay_client.h"
#include "keyhole/transport/relay_wire.h"

constexpr const char* kToolName = "relay_load";
#include "tool_args.h"

namespace {

using namespace keyhole;
using transport::RelayCode;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void usage() {
    std::fputs(
        "usage:\n"
        "  relay_load echo     --relay IP:PORT --relay-id ID [--seconds S]\n"
        "  relay_load send     --relay IP:PORT --target ID [--rate R] [--size B] [--seconds S] [--sockets N]\n"
        "                      [--grace-ms MS]\n"
        "  relay_load flood    --relay IP:PORT --relay-id ID [--rate R] [--size B] [--seconds S] [--sockets N]\n"
        "                      [--echo]\n"
        "  relay_load converse --relay IP:PORT --relay-id ID [--rate R] [--size B] [--seconds S]\n"
        "common: [--alloc-timeout-ms MS]\n",
        stderr);
    std::exit(2);
}

// Short names for the key=value output (to_string(RelayCode) is prose).
const char* code_name(std::size_t code) {
    static constexpr const char* kNames[transport::kRelayCodeCount] = {
        "ok",         "capacity",      "per_key_limit",  "rate_limited",    "bandwidth",     "bad_cookie",
        "bad_signature", "unknown_target", "unknown_channel", "not_allocated", "too_large"};
    // A code added after this table gets no name of its own (never nullptr).
    return code < transport::kRelayCodeCount && kNames[code] != nullptr ? kNames[code] : "unknown";
}

sockaddr_in parse_endpoint(std::string_view s) {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) die("expected IP:PORT, got '" + std::string(s) + "'");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    const std::string host(s.substr(0, colon));
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) die("bad IPv4 address '" + host + "'");
    a.sin_port = htons(static_cast<std::uint16_t>(parse_num(s.substr(colon + 1), 1, 65535, "port")));
    return a;
}

identity::PeerId parse_id(std::string_view s, const char* what) {
    auto id = identity::PeerId::parse(s);
    if (!id) die(std::string("bad ") + what + ": " + id.error());
    return id.value();
}

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// One non-blocking UDP socket on an ephemeral port, talking to the relay only.
class Socket {
public:
    explicit Socket(const sockaddr_in& relay) : relay_(relay) {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) die(std::string("socket: ") + std::strerror(errno));
        sockaddr_in any{};
        any.sin_family = AF_INET;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0)
            die(std::string("bind: ") + std::strerror(errno));
        const int size = 1 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    ~Socket() { ::close(fd_); }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    int fd() const { return fd_; }
    // False when the kernel refused it (e.g. ENOBUFS): the caller counts it.
    bool send(std::span<const std::uint8_t> data) const {
        return ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&relay_), sizeof relay_) ==
               static_cast<ssize_t>(data.size());
    }
    // One datagram from the relay, if any is queued. Datagrams from any other
    // address are dropped here and counted in `foreign`.
    std::optional<std::span<const std::uint8_t>> receive(std::uint64_t& foreign) {
        for (;;) {
            sockaddr_in from{};
            socklen_t length = sizeof from;
            const auto n = ::recvfrom(fd_, buffer_.data(), buffer_.size(), 0, reinterpret_cast<sockaddr*>(&from), &length);
            if (n < 0) {
                if (errno == EINTR) continue;
                return std::nullopt;  // EAGAIN, or an ICMP error surfacing: nothing to read now
            }
            if (length != sizeof from || from.sin_addr.s_addr != relay_.sin_addr.s_addr ||
                from.sin_port != relay_.sin_port) {
                ++foreign;
                continue;
            }
            return std::span<const std::uint8_t>(buffer_.data(), static_cast<std::size_t>(n));
        }
    }

private:
    int fd_ = -1;
    sockaddr_in relay_;
    std::array<std::uint8_t, 65536> buffer_{};
};

struct Counters {
    std::array<std::uint64_t, transport::kRelayCodeCount> errors{};
    std::uint64_t errors_unknown_code = 0;
    std::uint64_t malformed = 0;   // not a relay packet we can parse, or not a datagram of ours
    std::uint64_t unexpected = 0;  // well formed, but not what this role expects
    std::uint64_t foreign = 0;     // from an address other than the relay

    void count_error(RelayCode code) {
        const auto index = static_cast<std::size_t>(code);
        if (index < errors.size())
            ++errors[index];
        else
            ++errors_unknown_code;
    }
    std::string format(const char* prefix) const {
        std::string out;
        std::uint64_t total = errors_unknown_code;
        for (auto n : errors) total += n;
        out += " " + std::string(prefix) + "errors_rate_limited=" + std::to_string(errors[3]);
        out += " " + std::string(prefix) + "errors_total=" + std::to_string(total);
        for (std::size_t code = 1; code < errors.size(); ++code)
            if (code != 3 && errors[code] != 0)
                out += " " + std::string(prefix) + "errors_" + code_name(code) + "=" + std::to_string(errors[code]);
        out += " " + std::string(prefix) + "malformed=" + std::to_string(malformed);
        out += " " + std::string(prefix) + "unexpected=" + std::to_string(unexpected + foreign);
        return out;
    }
};

// An allocation holder: allocates with a fresh key, keeps it refreshed, counts
// deliveries and (if asked) echoes them.
class Owner {
public:
    Owner(const sockaddr_in& relay, const identity::PeerId& relay_id, bool echo)
        : socket_(relay), key_(identity::KeyPair::generate()), client_(key_, relay_id), echo_(echo) {}

    // The allocation exchange, bounded by `timeout`. False (with a message) if
    // the relay refused or stayed silent.
    bool allocate(milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (!g_stop) {
            const auto now = Clock::now();
            if (client_.state(now) == transport::RelayAllocationClient::State::granted) return true;
            if (client_.state(now) == transport::RelayAllocationClient::State::refused) {
                std::fprintf(stderr, "relay_load: allocation refused: %s\n",
                             code_name(static_cast<std::size_t>(*client_.refusal())));
                return false;
            }
            if (now >= deadline) break;
            tick(now);
            pollfd p{socket_.fd(), POLLIN, 0};
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - now).count();
            ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left, 1, 50)));
            drain(Clock::now());
        }
        std::fprintf(stderr, "relay_load: no allocation within %lld ms\n", static_cast<long long>(timeout.count()));
        return false;
    }

    // Sends the refresh request when due.
    void tick(Clock::time_point now) {
        if (auto request = client_.poll(now)) (void)socket_.send(*request);
    }

    void drain(Clock::time_point now, int limit = 512) {
        for (int i = 0; i < limit; ++i) {
            auto datagram = socket_.receive(counters_.foreign);
            if (!datagram) return;
            on_packet(*datagram, now);
        }
    }

    int fd() const { return socket_.fd(); }
    identity::PeerId id() const { return key_.id(); }
    const transport::RelayAllocationClient& client() const { return client_; }
    // Deliveries counted only inside [from, to) (the steady-state window).
    void set_window(Clock::time_point from, Clock::time_point to) {
        window_from_ = from;
        window_to_ = to;
    }

    std::uint64_t delivered = 0;
    std::uint64_t delivered_bytes = 0;
    std::uint64_t delivered_in_window = 0;
    std::uint64_t replied = 0;
    std::uint64_t reply_failed = 0;
    Counters counters_;

private:
    void on_packet(std::span<const std::uint8_t> datagram, Clock::time_point now) {
        auto parsed = transport::parse_relay_packet(datagram);
        if (!parsed) {
            ++counters_.malformed;
            return;
        }
        auto& packet = parsed.value();
        if (auto* deliver = std::get_if<transport::RelayDeliver>(&packet)) {
            if (deliver->channel == transport::kReplyChannel) {  // we never send: nothing to reply to us
                ++counters_.unexpected;
                return;
            }
            ++delivered;
            delivered_bytes += deliver->inner.size();
            if (now >= window_from_ && now < window_to_) ++delivered_in_window;
            if (echo_) {
                if (socket_.send(transport::encode_relay_reply(deliver->channel, deliver->inner)))
                    ++replied;
                else
                    ++reply_failed;
            }
        } else if (auto* challenge = std::get_if<transport::AllocateChallenge>(&packet)) {
            if (auto confirm = client_.on_challenge(*challenge, now)) (void)socket_.send(*confirm);
        } else if (auto* result = std::get_if<transport::AllocateResult>(&packet)) {
            if (!client_.on_result(*result, now)) ++counters_.unexpected;
        } else if (auto* error = std::get_if<transport::RelayError>(&packet)) {
            counters_.count_error(error->code);
        } else {
            ++counters_.unexpected;
        }
    }

    Socket socket_;
    identity::KeyPair key_;
    transport::RelayAllocationClient client_;
    bool echo_;
    Clock::time_point window_from_{}, window_to_{};
};

// Frames sent through the relay: magic, run nonce, sequence number, send
// time; the rest filler. An echo must carry back exactly what we sent.
constexpr std::array<std::uint8_t, 4> kMagic = {'K', 'L', 'D', '1'};
constexpr std::size_t kFrameHeader = 4 + 4 + 8 + 8;

void put_u64(std::uint8_t* at, std::uint64_t v) {
    for (int i = 7; i >= 0; --i, v >>= 8) at[i] = static_cast<std::uint8_t>(v);
}
std::uint64_t get_u64(const std::uint8_t* at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | at[i];
    return v;
}

// Sends relay_send frames to `target` at a fixed rate from one or more
// sockets and matches the echoes that come back on channel 0.
class Sender {
public:
    Sender(const sockaddr_in& relay, const identity::PeerId& target, std::size_t size, int sockets, long rate,
           double seconds)
        : rate_(rate), seconds_(seconds) {
        for (int i = 0; i < sockets; ++i) sockets_.push_back(std::make_unique<Socket>(relay));
        randombytes_buf(nonce_.data(), nonce_.size());
        std::vector<std::uint8_t> inner(size, 0x5a);
        std::copy(kMagic.begin(), kMagic.end(), inner.begin());
        std::copy(nonce_.begin(), nonce_.end(), inner.begin() + 4);
        frame_ = transport::encode_relay_send(target, inner);
        inner_offset_ = transport::kRelaySendHeaderSize;
        inner_size_ = size;
        const auto most = static_cast<std::size_t>(static_cast<double>(rate) * seconds) + 16;
        seen_.assign(most, 0);
        rtts_ms_.reserve(std::min<std::size_t>(most, kMaxRttSamples));
    }

    std::size_t frame_size() const { return frame_.size(); }
    std::size_t socket_count() const { return sockets_.size(); }
    int fd(std::size_t i) const { return sockets_[i]->fd(); }

    void start(Clock::time_point now) {
        start_ = now;
        end_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_));
    }
    Clock::time_point end() const { return end_; }
    bool sending(Clock::time_point now) const { return now < end_ && sent_ + skipped_ < seen_.size() - 16; }

    // Sends what is due by `now` (at most a bounded batch); returns when the
    // next frame is due.
    Clock::time_point pump(Clock::time_point now) {
        if (!sending(now)) return end_;
        const double elapsed = seconds_between(start_, now);
        auto due = static_cast<std::uint64_t>(elapsed * static_cast<double>(rate_)) + 1;
        due = std::min<std::uint64_t>(due, seen_.size() - 16);
        // More than 100 ms behind (descheduled): skip, do not burst.
        const auto lag_limit = static_cast<std::uint64_t>(std::max(1.0, 0.1 * static_cast<double>(rate_)));
        const auto done = sent_ + skipped_;
        if (due > done + lag_limit) skipped_ += due - done - lag_limit;
        for (int batch = 0; batch < kMaxBatch && sent_ + skipped_ < due; ++batch) {
            const std::uint64_t seq = sent_ + skipped_;
            std::uint8_t* inner = frame_.data() + inner_offset_;
            put_u64(inner + 8, seq);
            put_u64(inner + 16, static_cast<std::uint64_t>(
                                    std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_).count()));
            // A frame our own kernel refused (e.g. ENOBUFS) still counts as
            // sent: it was offered, and it is lost.
            if (!sockets_[seq % sockets_.size()]->send(frame_)) ++send_failed_;
            ++sent_;
        }
        const double next = static_cast<double>(sent_ + skipped_) / static_cast<double>(rate_);
        return start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(next));
    }

    void drain(std::size_t i, Clock::time_point now, int limit = 512) {
        for (int n = 0; n < limit; ++n) {
            auto datagram = sockets_[i]->receive(counters_.foreign);
            if (!datagram) return;
            on_packet(*datagram, now);
        }
    }

    std::string summary(bool with_echo) const {
        char line[512];
        const double offered = static_cast<double>(sent_) / seconds_;
        std::string out;
        std::snprintf(line, sizeof line, "sent=%llu sent_per_s=%.1f skipped=%llu send_failed=%llu frame_bytes=%zu",
                      static_cast<unsigned long long>(sent_), offered, static_cast<unsigned long long>(skipped_),
                      static_cast<unsigned long long>(send_failed_), frame_.size());
        out += line;
        if (with_echo) {
            std::vector<double> sorted = rtts_ms_;
            std::sort(sorted.begin(), sorted.end());
            auto pct = [&](double p) {
                return sorted.empty() ? 0.0
                                      : sorted[std::min(sorted.size() - 1,
                                                        static_cast<std::size_t>(p * static_cast<double>(sorted.size())))];
            };
            const double loss = sent_ == 0 ? 0.0 : 100.0 * static_cast<double>(sent_ - delivered_) / static_cast<double>(sent_);
            std::snprintf(line, sizeof line,
                          " delivered=%llu delivered_per_s=%.1f loss_pct=%.2f duplicates=%llu rtt_p50_ms=%.3f "
                          "rtt_p99_ms=%.3f rtt_max_ms=%.3f",
                          static_cast<unsigned long long>(delivered_), static_cast<double>(delivered_) / seconds_, loss,
                          static_cast<unsigned long long>(duplicates_), pct(0.5), pct(0.99),
                          sorted.empty() ? 0.0 : sorted.back());
            out += line;
        }
        out += counters_.format("");
        return out;
    }

    std::uint64_t sent() const { return sent_; }
    const Counters& counters() const { return counters_; }

private:
    static constexpr int kMaxBatch = 256;
    static constexpr std::size_t kMaxRttSamples = 200'000;

    void on_packet(std::span<const std::uint8_t> datagram, Clock::time_point now) {
        auto parsed = transport::parse_relay_packet(datagram);
        if (!parsed) {
            ++counters_.malformed;
            return;
        }
        auto& packet = parsed.value();
        if (auto* error = std::get_if<transport::RelayError>(&packet)) {
            counters_.count_error(error->code);
            return;
        }
        auto* deliver = std::get_if<transport::RelayDeliver>(&packet);
        if (!deliver || deliver->channel != transport::kReplyChannel) {
            ++counters_.unexpected;
            return;
        }
        // An echo must be one of our frames, intact, and one we sent.
        const auto inner = deliver->inner;
        if (inner.size() != inner_size_ || !std::equal(kMagic.begin(), kMagic.end(), inner.begin()) ||
            !std::equal(nonce_.begin(), nonce_.end(), inner.begin() + 4)) {
            ++counters_.malformed;
            return;
        }
        const auto seq = get_u64(inner.data() + 8);
        const auto sent_ns = get_u64(inner.data() + 16);
        if (seq >= sent_ + skipped_ || seq >= seen_.size()) {
            ++counters_.malformed;
            return;
        }
        if (seen_[seq]) {
            ++duplicates_;
            return;
        }
        seen_[seq] = 1;
        ++delivered_;
        const double now_ns =
            static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_).count());
        if (rtts_ms_.size() < kMaxRttSamples && now_ns >= static_cast<double>(sent_ns))
            rtts_ms_.push_back((now_ns - static_cast<double>(sent_ns)) / 1e6);
    }

    long rate_;
    double seconds_;
    std::vector<std::unique_ptr<Socket>> sockets_;
    std::array<std::uint8_t, 4> nonce_{};
    std::vector<std::uint8_t> frame_;
    std::size_t inner_offset_ = 0;
    std::size_t inner_size_ = 0;
    Clock::time_point start_{}, end_{};
    std::uint64_t sent_ = 0, skipped_ = 0, send_failed_ = 0, delivered_ = 0, duplicates_ = 0;
    std::vector<std::uint8_t> seen_;
    std::vector<double> rtts_ms_;
    Counters counters_;
};

struct Options {
    std::string mode;
    std::optional<sockaddr_in> relay;
    std::optional<identity::PeerId> relay_id;
    std::optional<identity::PeerId> target;
    long rate = -1;
    long size = 1024;
    double seconds = -1;
    int sockets = -1;
    long grace_ms = 500;
    long alloc_timeout_ms = 5000;
    bool echo = false;
};

Options parse_args(int argc, char** argv) {
    if (argc < 2) usage();
    Options o;
    o.mode = argv[1];
    if (o.mode != "echo" && o.mode != "send" && o.mode != "flood" && o.mode != "converse") usage();
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) die("missing value after " + std::string(arg));
            return argv[++i];
        };
        if (arg == "--relay") o.relay = parse_endpoint(value());
        else if (arg == "--relay-id") o.relay_id = parse_id(value(), "--relay-id");
        else if (arg == "--target") o.target = parse_id(value(), "--target");
        else if (arg == "--rate") o.rate = parse_num(value(), 1, 50000, "--rate");
        else if (arg == "--size") o.size = parse_num(value(), static_cast<long>(kFrameHeader) + 8, 1400, "--size");
        else if (arg == "--seconds") o.seconds = static_cast<double>(parse_num(value(), 1, 120, "--seconds"));
        else if (arg == "--sockets") o.sockets = static_cast<int>(parse_num(value(), 1, 16, "--sockets"));
        else if (arg == "--grace-ms") o.grace_ms = parse_num(value(), 0, 10000, "--grace-ms");
        else if (arg == "--alloc-timeout-ms") o.alloc_timeout_ms = parse_num(value(), 100, 60000, "--alloc-timeout-ms");
        else if (arg == "--echo") o.echo = true;
        else die("unknown argument '" + std::string(arg) + "'");
    }
    if (!o.relay) die("--relay IP:PORT is required");
    if (o.mode == "send" && !o.target) die("send needs --target ID (the allocation holder's key)");
    if (o.mode != "send" && !o.relay_id) die(o.mode + " needs --relay-id ID (the relay's key, `keyhole id` on it)");
    if (o.mode == "send" && o.relay_id) die("send does not allocate: no --relay-id");
    if (o.mode != "send" && o.target) die(o.mode + " has no --target (it allocates its own)");
    if (o.seconds < 0) o.seconds = o.mode == "echo" ? 30 : 5;
    if (o.rate < 0) o.rate = o.mode == "flood" ? 20000 : 200;
    if (o.sockets < 0) o.sockets = o.mode == "flood" ? 4 : 1;
    return o;
}

// Waits for any of `fds` to be readable, at most until `until` (sub-ms).
void wait_readable(std::vector<pollfd>& fds, Clock::time_point until) {
    const auto left = until - Clock::now();
    if (left <= Clock::duration::zero()) {
        for (auto& p : fds) p.revents = POLLIN;  // just try them
        return;
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::min<Clock::duration>(left, milliseconds(20)));
    timespec timeout{static_cast<time_t>(ns.count() / 1'000'000'000), static_cast<long>(ns.count() % 1'000'000'000)};
    for (auto& p : fds) p.revents = 0;
    if (::ppoll(fds.data(), fds.size(), &timeout, nullptr) < 0 && errno != EINTR)
        die(std::string("ppoll: ") + std::strerror(errno));
}

std::string limits_text(const transport::RelayAllocationClient& client) {
    return "limit_packets_per_s=" + std::to_string(client.packets_per_s()) +
           " limit_bytes_per_s=" + std::to_string(client.bytes_per_s());
}

int run_echo(const Options& o) {
    Owner owner(*o.relay, *o.relay_id, /*echo=*/true);
    if (!owner.allocate(milliseconds(o.alloc_timeout_ms))) return 1;
    std::printf("owner=%s %s lifetime_s=%lld observed=%s\n", owner.id().to_text().c_str(),
                limits_text(owner.client()).c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(owner.client().expires() -
                                                                                        Clock::now())
                                           .count()),
                owner.client().observed().to_string().c_str());
    std::fflush(stdout);
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
    std::vector<pollfd> fds{{owner.fd(), POLLIN, 0}};
    while (!g_stop && Clock::now() < end) {
        wait_readable(fds, std::min(end, Clock::now() + milliseconds(200)));
        const auto now = Clock::now();
        owner.drain(now);
        owner.tick(now);
    }
    std::printf("mode=echo seconds=%.1f delivered=%llu replied=%llu reply_failed=%llu%s\n",
                seconds_between(start, Clock::now()), static_cast<unsigned long long>(owner.delivered),
                static_cast<unsigned long long>(owner.replied), static_cast<unsigned long long>(owner.reply_failed),
                owner.counters_.format("").c_str());
    return 0;
}

// send, flood and converse: a sender, and an owner for flood and converse.
int run_traffic(const Options& o) {
    std::unique_ptr<Owner> owner;
    identity::PeerId target;
    if (o.mode == "send") {
        target = *o.target;
    } else {
        owner = std::make_unique<Owner>(*o.relay, *o.relay_id, o.mode == "converse" || o.echo);
        if (!owner->allocate(milliseconds(o.alloc_timeout_ms))) return 1;
        target = owner->id();
    }
    Sender sender(*o.relay, target, static_cast<std::size_t>(o.size), o.sockets, o.rate, o.seconds);
    std::vector<pollfd> fds;
    for (std::size_t i = 0; i < sender.socket_count(); ++i) fds.push_back({sender.fd(i), POLLIN, 0});
    if (owner) fds.push_back({owner->fd(), POLLIN, 0});

    // Readiness for scripts: traffic starts now.
    std::fprintf(stderr, "relay_load: %s: sending %ld/s of %ld bytes from %d socket(s) for %.0f s\n", o.mode.c_str(),
                 o.rate, o.size, o.sockets, o.seconds);
    const auto start = Clock::now();
    sender.start(start);
    // Steady state: after the allocation's one-second burst has been spent.
    if (owner) owner->set_window(start + milliseconds(1500), sender.end());
    const auto stop_at = sender.end() + milliseconds(o.grace_ms);
    auto next_send = start;
    while (!g_stop) {
        auto now = Clock::now();
        if (now >= stop_at) break;
        if (now >= next_send) next_send = sender.pump(now);
        // At high rates, send in batches every 0.5 ms rather than one frame per wakeup.
        const auto wake =
            sender.sending(now) ? std::min(std::max(next_send, now + std::chrono::microseconds(500)), stop_at) : stop_at;
        wait_readable(fds, wake);
        now = Clock::now();
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (!(fds[i].revents & (POLLIN | POLLERR))) continue;
            if (i < sender.socket_count())
                sender.drain(i, now);
            else
                owner->drain(now);
        }
        if (owner) owner->tick(now);
    }

    const bool with_echo = o.mode != "flood" || o.echo;
    std::string line = "mode=" + o.mode + " seconds=" + std::to_string(static_cast<int>(o.seconds)) +
                       " rate=" + std::to_string(o.rate) + " size=" + std::to_string(o.size) +
                       " sockets=" + std::to_string(o.sockets) + " " + sender.summary(o.mode != "flood");
    if (owner) {
        char extra[512];
        const double window = std::max(0.001, o.seconds - 1.5);
        // What the allocation's limits let through per second for frames of
        // this size (both buckets charge the received relay_send).
        const double by_packets = owner->client().packets_per_s();
        const double by_bytes = static_cast<double>(owner->client().bytes_per_s()) / static_cast<double>(sender.frame_size());
        const double allowed = std::min(by_packets, by_bytes) / (with_echo ? 2.0 : 1.0);
        std::snprintf(extra, sizeof extra,
                      " owner_delivered=%llu owner_delivered_per_s=%.1f owner_delivered_steady_per_s=%.1f"
                      " allowed_per_s=%.1f owner_replied=%llu %s",
                      static_cast<unsigned long long>(owner->delivered),
                      static_cast<double>(owner->delivered) / o.seconds,
                      o.seconds > 1.5 ? static_cast<double>(owner->delivered_in_window) / window : 0.0, allowed,
                      static_cast<unsigned long long>(owner->replied), limits_text(owner->client()).c_str());
        line += extra;
        line += owner->counters_.format("owner_");
    }
    std::printf("%s\n", line.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_args(argc, argv);
    if (sodium_init() < 0) die("libsodium initialisation failed");
    struct sigaction action{};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    // Last resort: whatever happens, this process does not outlive its bound.
    ::alarm(static_cast<unsigned>(options.seconds + options.alloc_timeout_ms / 1000 + options.grace_ms / 1000 + 30));
    return options.mode == "echo" ? run_echo(options) : run_traffic(options);
}
