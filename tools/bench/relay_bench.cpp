// relay_bench: how much one relay forwards on loopback (issue #5).
//
//   relay_bench [--seconds S] [--json]
//
// The relay (RelayServer on a UdpPort, as keyholed runs it) has its own
// thread and io_context, pinned to CPU 0 when there are two CPUs or more; the
// test clients run on the main thread (CPU 1), with plain non-blocking
// sockets. Limits are lifted so that only the relay's own cost shows.
//
// 1. Throughput: clients allocate, senders blast relay_send with 1 KiB inner
//    frames round robin at 1 and at 100 allocations; frames/s and MB/s are
//    what the relay forwarded (its own counter) per second of wall time.
// 2. Added latency per hop: ping-pong through the relay (send -> deliver,
//    reply -> deliver: two hops) against the same ping-pong direct;
//    (relay - direct) / 2 at p50 and p95.
// 3. RSS per 1,000 allocations: 10,000 allocations made through the real
//    request / challenge / confirm exchange (sender captured in memory), one
//    channel each; RSS before and after.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include "keyhole/identity/key_pair.h"
#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/udp_port.h"
#include "relay_server.h"

namespace {

using namespace keyhole;
using namespace keyhole::transport;
using Clock = std::chrono::steady_clock;

node::RelayLimits unlimited() {
    node::RelayLimits limits;
    limits.max_allocations = 1'000'000;
    limits.max_allocations_per_key = 64;
    limits.allocation_packets_per_s = 10'000'000;
    limits.allocation_bytes_per_s = 4'000'000'000u;
    limits.source_packets_per_s = 10'000'000;
    limits.source_bytes_per_s = 4'000'000'000u;
    limits.total_bytes_per_s = 1'000'000'000'000ull;
    return limits;
}

void pin_to_cpu(int cpu) {
    if (std::thread::hardware_concurrency() < 2) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

long rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// The relay on its own thread.
struct RelayThread {
    explicit RelayThread(const identity::KeyPair& key) : key(key) {
        thread = std::thread([this] {
            pin_to_cpu(0);
            transport::UdpPort udp(io);
            if (!udp.open(identity::Endpoint::ipv4({127, 0, 0, 1}, 0))) std::abort();
            node::RelayServer server(this->key, unlimited(),
                                     [&udp](const node::RelayPath& to, std::span<const std::uint8_t> packet) {
                                         udp.send_to(to.endpoint, packet);
                                     });
            udp.start_receiving([&server](std::span<const std::uint8_t> packet, const identity::Endpoint& from) {
                if (is_relay_server_packet(packet)) server.on_packet(packet, node::RelayPath{from, 0});
            });
            endpoint_port = udp.local_endpoint().port();
            auto guard = asio::make_work_guard(io);
            io.run();
            forwarded = server.stats().frames_forwarded;
            forwarded_bytes = server.stats().bytes_forwarded;
            udp.close();
        });
        while (endpoint_port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    void stop() {
        io.stop();
        thread.join();
    }
    const identity::KeyPair& key;
    asio::io_context io;
    std::thread thread;
    std::atomic<std::uint16_t> endpoint_port{0};
    std::uint64_t forwarded = 0;
    std::uint64_t forwarded_bytes = 0;
};

// A plain non-blocking UDP socket on 127.0.0.1.
struct Socket {
    Socket() {
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
        int size = 4 << 20;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        socklen_t length = sizeof address;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
        port = ntohs(address.sin_port);
    }
    ~Socket() { ::close(fd); }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    bool send(std::uint16_t to_port, const std::vector<std::uint8_t>& data) const {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons(to_port);
        return ::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) >= 0;
    }
    // Waits up to `limit` for one datagram.
    std::optional<std::vector<std::uint8_t>> receive(std::chrono::milliseconds limit) const {
        const auto deadline = Clock::now() + limit;
        std::vector<std::uint8_t> buffer(65536);
        do {
            const auto n = ::recv(fd, buffer.data(), buffer.size(), 0);
            if (n >= 0) {
                buffer.resize(static_cast<std::size_t>(n));
                return buffer;
            }
        } while (Clock::now() < deadline);
        return std::nullopt;
    }
    std::size_t drain() const {
        std::size_t n = 0;
        std::uint8_t buffer[2048];
        while (::recv(fd, buffer, sizeof buffer, 0) >= 0) ++n;
        return n;
    }
    int fd = -1;
    std::uint16_t port = 0;
};

bool allocate(const Socket& socket, const identity::KeyPair& key, std::uint16_t relay_port,
              const identity::PeerId& relay) {
    socket.send(relay_port, encode_allocate_request(key.id(), {}));
    auto challenge = socket.receive(std::chrono::milliseconds(1000));
    if (!challenge) return false;
    auto parsed = parse_relay_packet(*challenge);
    if (!parsed || !std::holds_alternative<AllocateChallenge>(parsed.value())) return false;
    socket.send(relay_port, encode_allocate_confirm(key, relay, std::get<AllocateChallenge>(parsed.value()).cookie));
    auto result = socket.receive(std::chrono::milliseconds(1000));
    if (!result) return false;
    parsed = parse_relay_packet(*result);
    return parsed && std::holds_alternative<AllocateResult>(parsed.value()) &&
           std::get<AllocateResult>(parsed.value()).code == RelayCode::ok;
}

struct Throughput {
    double frames_per_s = 0;
    double mb_per_s = 0;
    double received_per_s = 0;
};

Throughput measure_throughput(int allocations, double seconds) {
    const auto relay_key = identity::KeyPair::generate();
    RelayThread relay(relay_key);
    std::vector<std::unique_ptr<Socket>> owners;
    std::vector<std::vector<std::uint8_t>> sends;
    const std::vector<std::uint8_t> frame(1024, 0x42);
    for (int i = 0; i < allocations; ++i) {
        owners.push_back(std::make_unique<Socket>());
        const auto key = identity::KeyPair::generate();
        if (!allocate(*owners.back(), key, relay.endpoint_port, relay_key.id())) {
            std::fprintf(stderr, "allocation %d failed\n", i);
            std::exit(1);
        }
        sends.push_back(encode_relay_send(key.id(), frame));
    }
    std::vector<std::unique_ptr<Socket>> senders;
    for (int i = 0; i < 4; ++i) senders.push_back(std::make_unique<Socket>());

    std::size_t received = 0;
    std::size_t next = 0;
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
        for (int burst = 0; burst < 32; ++burst) {
            senders[next % senders.size()]->send(relay.endpoint_port, sends[next % sends.size()]);
            ++next;
        }
        for (const auto& owner : owners) received += owner->drain();
    }
    // Let the relay finish what is queued, then count.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (const auto& owner : owners) received += owner->drain();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    relay.stop();
    return {relay.forwarded / elapsed, relay.forwarded_bytes / elapsed / 1e6, received / elapsed};
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    return values[std::min(values.size() - 1, static_cast<std::size_t>(p * (values.size() - 1) + 0.5))];
}

struct Latency {
    double direct_p50_us = 0, direct_p95_us = 0, relay_p50_us = 0, relay_p95_us = 0;
};

Latency measure_latency(int rounds) {
    Latency latency;
    const std::vector<std::uint8_t> frame(1024, 0x17);
    {  // direct ping-pong
        Socket a, b;
        std::vector<double> samples;
        for (int i = 0; i < rounds; ++i) {
            const auto t0 = Clock::now();
            a.send(b.port, frame);
            if (!b.receive(std::chrono::milliseconds(1000))) continue;
            b.send(a.port, frame);
            if (!a.receive(std::chrono::milliseconds(1000))) continue;
            samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        latency.direct_p50_us = percentile(samples, 0.5);
        latency.direct_p95_us = percentile(samples, 0.95);
    }
    const auto relay_key = identity::KeyPair::generate();
    RelayThread relay(relay_key);
    Socket owner, peer;
    const auto owner_key = identity::KeyPair::generate();
    if (!allocate(owner, owner_key, relay.endpoint_port, relay_key.id())) std::exit(1);
    const auto send = encode_relay_send(owner_key.id(), frame);
    std::vector<double> samples;
    for (int i = 0; i < rounds; ++i) {
        const auto t0 = Clock::now();
        peer.send(relay.endpoint_port, send);
        auto delivered = owner.receive(std::chrono::milliseconds(1000));
        if (!delivered) continue;
        auto parsed = parse_relay_packet(*delivered);
        if (!parsed || !std::holds_alternative<RelayDeliver>(parsed.value())) continue;
        owner.send(relay.endpoint_port, encode_relay_reply(std::get<RelayDeliver>(parsed.value()).channel, frame));
        if (!peer.receive(std::chrono::milliseconds(1000))) continue;
        samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    relay.stop();
    latency.relay_p50_us = percentile(samples, 0.5);
    latency.relay_p95_us = percentile(samples, 0.95);
    return latency;
}

double measure_rss_per_1000(int allocations) {
    const auto relay_key = identity::KeyPair::generate();
    std::vector<std::uint8_t> last;
    node::RelayServer server(relay_key, unlimited(), [&](const node::RelayPath&, std::span<const std::uint8_t> packet) {
        last.assign(packet.begin(), packet.end());
    });
    // Keys first, so their memory is not counted.
    std::vector<identity::KeyPair> keys;
    keys.reserve(allocations);
    for (int i = 0; i < allocations; ++i) keys.push_back(identity::KeyPair::generate());
    const std::vector<std::uint8_t> frame(64, 1);
    const long before = rss_kib();
    for (int i = 0; i < allocations; ++i) {
        const node::RelayPath path{identity::Endpoint::ipv4({10, static_cast<std::uint8_t>(i >> 16),
                                                             static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)},
                                                            4224),
                                   0};
        server.on_packet(encode_allocate_request(keys[i].id(), {}), path);
        auto parsed = parse_relay_packet(last);
        if (!parsed || !std::holds_alternative<AllocateChallenge>(parsed.value())) std::exit(1);
        server.on_packet(encode_allocate_confirm(keys[i], relay_key.id(), std::get<AllocateChallenge>(parsed.value()).cookie),
                         path);
        const node::RelayPath remote{identity::Endpoint::ipv4({10, 200, static_cast<std::uint8_t>(i >> 8),
                                                               static_cast<std::uint8_t>(i)},
                                                              5000),
                                     0};
        server.on_packet(encode_relay_send(keys[i].id(), frame), remote);
    }
    const long after = rss_kib();
    if (server.allocation_count() != static_cast<std::size_t>(allocations)) std::exit(1);
    return static_cast<double>(after - before) / (allocations / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 3;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--seconds" && i + 1 < argc) {
            seconds = std::stod(argv[++i]);
        } else if (arg == "--json") {
            json = true;
        } else {
            std::fprintf(stderr, "usage: relay_bench [--seconds S] [--json]\n");
            return 2;
        }
    }
    spdlog::set_level(spdlog::level::warn);
    pin_to_cpu(1);

    const auto one = measure_throughput(1, seconds);
    const auto hundred = measure_throughput(100, seconds);
    const auto latency = measure_latency(2000);
    const double rss = measure_rss_per_1000(10000);
    const double added_p50 = (latency.relay_p50_us - latency.direct_p50_us) / 2;
    const double added_p95 = (latency.relay_p95_us - latency.direct_p95_us) / 2;

    if (json) {
        std::printf(
            "{\"frames_per_s_1\":%.0f,\"mb_per_s_1\":%.1f,\"frames_per_s_100\":%.0f,\"mb_per_s_100\":%.1f,"
            "\"added_latency_per_hop_p50_us\":%.1f,\"added_latency_per_hop_p95_us\":%.1f,"
            "\"rss_kib_per_1000_allocations\":%.0f}\n",
            one.frames_per_s, one.mb_per_s, hundred.frames_per_s, hundred.mb_per_s, added_p50, added_p95, rss);
        return 0;
    }
    std::printf("relay_bench: loopback, 1 KiB frames, relay on one core, %.0f s per run\n\n", seconds);
    std::printf("%-34s %14s %10s %16s\n", "allocations", "frames/s", "MB/s", "received/s");
    std::printf("%-34s %14.0f %10.1f %16.0f\n", "1", one.frames_per_s, one.mb_per_s, one.received_per_s);
    std::printf("%-34s %14.0f %10.1f %16.0f\n", "100", hundred.frames_per_s, hundred.mb_per_s, hundred.received_per_s);
    std::printf("\n%-34s %10s %10s\n", "round trip, 1 KiB (us)", "p50", "p95");
    std::printf("%-34s %10.1f %10.1f\n", "direct", latency.direct_p50_us, latency.direct_p95_us);
    std::printf("%-34s %10.1f %10.1f\n", "through the relay (2 hops)", latency.relay_p50_us, latency.relay_p95_us);
    std::printf("%-34s %10.1f %10.1f\n", "added per hop", added_p50, added_p95);
    std::printf("\n%-34s %10.0f KiB\n", "RSS per 1,000 allocations", rss);
    return 0;
}
