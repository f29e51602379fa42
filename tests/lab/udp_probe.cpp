// udp_probe: a tiny, bounded UDP/TCP probe used by the NAT test lab
// (tests/lab) to prove how a lab router maps and filters traffic.
// Standalone: POSIX sockets and the C++ standard library only.
//
//   udp_probe echo PORT [--max-seconds S]
//       Serves UDP and TCP on 0.0.0.0:PORT. Every UDP datagram is answered
//       with "seen IP:PORT" (the sender's address as this server saw it);
//       a datagram "probe TOKEN" is answered "seen IP:PORT TOKEN". Every TCP
//       connection gets "seen IP:PORT\n" and is closed. Exits 0 after S
//       seconds (default 30).
//   udp_probe ask [--bind-port P] [--tries N] [--timeout-ms MS] HOST:PORT...
//       From ONE UDP socket, probes each server in turn and prints
//       "HOST:PORT -> seen IP:PORT" per server (or "HOST:PORT -> no answer").
//       Defaults: 3 tries of 500 ms per server. Exit 1 if any server stayed
//       silent.
//   udp_probe burst HOST:PORT [--count N] [--interval-ms MS] [--wait-ms MS]
//                   [--bind-port P]
//       Sends N probes (default 40, 10 ms apart, no retries) from one socket,
//       waits MS (default 1000) after the last one, prints "answered K/N".
//       Exit 0 if it ran (the caller judges K).
//   udp_probe send HOST:PORT [--bind-port P] [--count N] [--message TEXT]
//       Sends N (default 1) datagrams and exits 0.
//   udp_probe listen PORT [--timeout S]
//       Binds 0.0.0.0:PORT, prints "got from IP:PORT" for the first datagram
//       and exits 0; exits 1 after S seconds (default 5) without one.
//   udp_probe tcp-ask HOST:PORT [--timeout-ms MS]
//       Connects over TCP, prints "HOST:PORT -> seen IP:PORT" (what an echo
//       server saw), exit 1 on failure/timeout (default 2000 ms).
//
// Readiness: echo and listen print "listening on PORT" to stderr once bound,
// so scripts can wait for it before sending.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

constexpr const char* kToolName = "udp_probe";
#include "tool_args.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

[[noreturn]] void usage() {
  std::fputs(
      "usage:\n"
      "  udp_probe echo PORT [--max-seconds S]\n"
      "  udp_probe ask [--bind-port P] [--tries N] [--timeout-ms MS] HOST:PORT...\n"
      "  udp_probe burst HOST:PORT [--count N] [--interval-ms MS] [--wait-ms MS] [--bind-port P]\n"
      "  udp_probe send HOST:PORT [--bind-port P] [--count N] [--message TEXT]\n"
      "  udp_probe listen PORT [--timeout S]\n"
      "  udp_probe tcp-ask HOST:PORT [--timeout-ms MS]\n",
      stderr);
  std::exit(2);
}


sockaddr_in parse_endpoint(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) die("expected HOST:PORT, got '" + std::string(s) + "'");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  std::string host(s.substr(0, colon));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
    die("bad IPv4 address '" + host + "'");
  a.sin_port = htons(static_cast<uint16_t>(parse_num(s.substr(colon + 1), 1, 65535, "port")));
  return a;
}

std::string to_string(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

bool same_endpoint(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

int make_socket(int type, int port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (port >= 0) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      die("bind port " + std::to_string(port) + ": " + std::strerror(errno));
  }
  return fd;
}

void send_to(int fd, const sockaddr_in& to, std::string_view msg) {
  if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0)
    std::fprintf(stderr, "udp_probe: sendto %s: %s\n", to_string(to).c_str(), std::strerror(errno));
}

// Waits until `deadline` for one datagram; returns it (and its sender) or nothing.
std::optional<std::string> recv_until(int fd, Clock::time_point deadline, sockaddr_in& from) {
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char buf[2048];
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      // ICMP errors can surface as ECONNREFUSED etc.; keep waiting until the deadline.
      if (errno == EINTR || errno == EAGAIN || errno == ECONNREFUSED || errno == EHOSTUNREACH) continue;
      die(std::string("recvfrom: ") + std::strerror(errno));
    }
    return std::string(buf, static_cast<size_t>(n));
  }
}

std::string random_token() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(g()));
  return buf;
}

struct Args {
  std::vector<std::string> positional;
  int bind_port = 0;  // 0 = ephemeral
  int tries = 3;
  int timeout_ms = 500;
  bool timeout_ms_set = false;
  int timeout_s = 5;
  int max_seconds = 30;
  int count = -1;
  int interval_ms = 10;
  int wait_ms = 1000;
  std::string message = "hello from udp_probe";
};

Args parse(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string_view s = argv[i];
    auto value = [&](const char* what) -> std::string_view {
      if (i + 1 >= argc) die(std::string("missing value for ") + what);
      return argv[++i];
    };
    if (s == "--bind-port") a.bind_port = static_cast<int>(parse_num(value("--bind-port"), 0, 65535, "port"));
    else if (s == "--tries") a.tries = static_cast<int>(parse_num(value("--tries"), 1, 20, "tries"));
    else if (s == "--timeout-ms") { a.timeout_ms = static_cast<int>(parse_num(value("--timeout-ms"), 1, 60000, "timeout")); a.timeout_ms_set = true; }
    else if (s == "--timeout") a.timeout_s = static_cast<int>(parse_num(value("--timeout"), 1, 3600, "timeout"));
    else if (s == "--max-seconds") a.max_seconds = static_cast<int>(parse_num(value("--max-seconds"), 1, 86400, "max-seconds"));
    else if (s == "--count") a.count = static_cast<int>(parse_num(value("--count"), 1, 100000, "count"));
    else if (s == "--interval-ms") a.interval_ms = static_cast<int>(parse_num(value("--interval-ms"), 0, 10000, "interval"));
    else if (s == "--wait-ms") a.wait_ms = static_cast<int>(parse_num(value("--wait-ms"), 0, 60000, "wait"));
    else if (s == "--message") a.message = std::string(value("--message"));
    else if (s.starts_with("--")) die("unknown option " + std::string(s));
    else a.positional.emplace_back(s);
  }
  return a;
}

int cmd_echo(const Args& a) {
  if (a.positional.size() != 1) usage();
  int port = static_cast<int>(parse_num(a.positional[0], 1, 65535, "port"));
  int udp = make_socket(SOCK_DGRAM, port);
  int tcp = make_socket(SOCK_STREAM, port);
  if (::listen(tcp, 64) != 0) die(std::string("listen: ") + std::strerror(errno));
  std::fprintf(stderr, "listening on %d (udp+tcp), max %d s\n", port, a.max_seconds);
  std::fflush(stderr);
  auto deadline = Clock::now() + std::chrono::seconds(a.max_seconds);
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p[2] = {{udp, POLLIN, 0}, {tcp, POLLIN, 0}};
    int r = ::poll(p, 2, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die(std::string("poll: ") + std::strerror(errno));
    if (p[0].revents & POLLIN) {
      char buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(udp, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n >= 0) {
        std::string_view req(buf, static_cast<size_t>(n));
        std::string reply = "seen " + to_string(from);
        if (req.starts_with("probe ")) reply += " " + std::string(req.substr(6, 64));
        send_to(udp, from, reply);
        std::printf("udp from %s\n", to_string(from).c_str());
        std::fflush(stdout);
      }
    }
    if (p[1].revents & POLLIN) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      int c = ::accept4(tcp, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        std::string reply = "seen " + to_string(from) + "\n";
        // Non-blocking: a short line always fits the fresh socket's send buffer.
        (void)!::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        ::close(c);
        std::printf("tcp from %s\n", to_string(from).c_str());
        std::fflush(stdout);
      }
    }
  }
  std::fprintf(stderr, "echo: max time reached, exiting\n");
  return 0;
}

int cmd_ask(const Args& a) {
  if (a.positional.empty()) usage();
  std::vector<sockaddr_in> servers;
  for (auto& p : a.positional) servers.push_back(parse_endpoint(p));
  int fd = make_socket(SOCK_DGRAM, a.bind_port);
  int failures = 0;
  for (size_t i = 0; i < servers.size(); ++i) {
    const auto& srv = servers[i];
    std::string token = random_token();
    std::string answer;
    for (int t = 0; t < a.tries && answer.empty(); ++t) {
      send_to(fd, srv, "probe " + token);
      auto deadline = Clock::now() + milliseconds(a.timeout_ms);
      sockaddr_in from{};
      while (auto msg = recv_until(fd, deadline, from)) {
        // Only the server we asked, answering this very probe, counts.
        if (!same_endpoint(from, srv) || !msg->starts_with("seen ")) continue;
        auto sp = msg->find(' ', 5);
        if (sp == std::string::npos || msg->substr(sp + 1) != token) continue;
        answer = msg->substr(0, sp);
        break;
      }
    }
    if (answer.empty()) {
      std::printf("%s -> no answer\n", a.positional[i].c_str());
      ++failures;
    } else {
      std::printf("%s -> %s\n", a.positional[i].c_str(), answer.c_str());
    }
    std::fflush(stdout);
  }
  ::close(fd);
  return failures == 0 ? 0 : 1;
}

int cmd_burst(const Args& a) {
  if (a.positional.size() != 1) usage();
  auto srv = parse_endpoint(a.positional[0]);
  int count = a.count < 0 ? 40 : a.count;
  int fd = make_socket(SOCK_DGRAM, a.bind_port);
  std::string base = random_token();
  std::vector<bool> answered(static_cast<size_t>(count), false);
  int got = 0;
  auto drain = [&](Clock::time_point until) {
    sockaddr_in from{};
    while (auto msg = recv_until(fd, until, from)) {
      if (!same_endpoint(from, srv)) continue;
      auto sp = msg->rfind(' ');
      if (sp == std::string::npos) continue;
      std::string tok = msg->substr(sp + 1);
      if (!tok.starts_with(base + "-")) continue;
      long idx = std::strtol(tok.c_str() + base.size() + 1, nullptr, 10);
      if (idx >= 0 && idx < count && !answered[static_cast<size_t>(idx)]) {
        answered[static_cast<size_t>(idx)] = true;
        ++got;
      }
    }
  };
  for (int i = 0; i < count; ++i) {
    send_to(fd, srv, "probe " + base + "-" + std::to_string(i));
    drain(Clock::now() + milliseconds(a.interval_ms));
  }
  drain(Clock::now() + milliseconds(a.wait_ms));
  std::printf("answered %d/%d\n", got, count);
  ::close(fd);
  return 0;
}

int cmd_send(const Args& a) {
  if (a.positional.size() != 1) usage();
  auto dst = parse_endpoint(a.positional[0]);
  int fd = make_socket(SOCK_DGRAM, a.bind_port);
  int count = a.count < 0 ? 1 : a.count;
  for (int i = 0; i < count; ++i) send_to(fd, dst, a.message);
  ::close(fd);
  return 0;
}

int cmd_listen(const Args& a) {
  if (a.positional.size() != 1) usage();
  int port = static_cast<int>(parse_num(a.positional[0], 1, 65535, "port"));
  int fd = make_socket(SOCK_DGRAM, port);
  std::fprintf(stderr, "listening on %d, timeout %d s\n", port, a.timeout_s);
  std::fflush(stderr);
  sockaddr_in from{};
  auto msg = recv_until(fd, Clock::now() + std::chrono::seconds(a.timeout_s), from);
  ::close(fd);
  if (!msg) {
    std::printf("timeout: nothing on port %d after %d s\n", port, a.timeout_s);
    return 1;
  }
  std::printf("got from %s\n", to_string(from).c_str());
  return 0;
}

int cmd_tcp_ask(const Args& a) {
  if (a.positional.size() != 1) usage();
  auto dst = parse_endpoint(a.positional[0]);
  int timeout_ms = a.timeout_ms_set ? a.timeout_ms : 2000;
  auto deadline = Clock::now() + milliseconds(timeout_ms);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  auto fail = [&](const std::string& why) {
    std::printf("%s -> no answer (%s)\n", a.positional[0].c_str(), why.c_str());
    ::close(fd);
    return 1;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS)
    return fail(std::strerror(errno));
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return fail("timeout");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return fail("timeout");
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) break;
    line.append(buf, static_cast<size_t>(n));
    if (line.find('\n') != std::string::npos || line.size() > 200) break;
  }
  ::close(fd);
  if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  if (!line.starts_with("seen ")) {
    std::printf("%s -> no answer (unexpected reply)\n", a.positional[0].c_str());
    return 1;
  }
  std::printf("%s -> %s\n", a.positional[0].c_str(), line.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  std::string_view cmd = argv[1];
  Args a = parse(argc, argv, 2);
  if (cmd == "echo") return cmd_echo(a);
  if (cmd == "ask") return cmd_ask(a);
  if (cmd == "burst") return cmd_burst(a);
  if (cmd == "send") return cmd_send(a);
  if (cmd == "listen") return cmd_listen(a);
  if (cmd == "tcp-ask") return cmd_tcp_ask(a);
  usage();
}
