// nfq_delay: holds every packet of one NFQUEUE for a fixed time, then
// accepts it. The NAT lab (tests/lab/lab.sh, lab_impair --delay) uses it
// where the kernel has no sch_netem: iptables -j NFQUEUE sends a router's
// public-interface packets here, and each one is released MS milliseconds
// after it arrived, in arrival order.
//
//   nfq_delay --queue N --delay-ms MS
//
// Prints "nfq_delay: queue N, delay MS ms" to stderr once the queue is bound
// (scripts wait for that line). SIGTERM/SIGINT accept everything still held
// and exit 0. One thread: ppoll waits for either a packet, a signal, or the
// release time of the oldest held packet.
// glibc's <netinet/in.h> (via arpa/inet.h) must come before the kernel
// headers, or both define struct in_addr.
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>

constexpr const char* kToolName = "nfq_delay";
#include "tool_args.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Held {
  uint32_t id;           // the kernel's packet id, needed for the verdict
  Clock::time_point due; // arrival + delay
};

struct State {
  std::chrono::milliseconds delay{0};
  std::deque<Held> held;  // arrival order == release order (one fixed delay)
  unsigned long long queued = 0, released = 0;
};

[[noreturn]] void usage() {
  std::fputs("usage: nfq_delay --queue N --delay-ms MS\n", stderr);
  std::exit(2);
}


int on_packet(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
  auto* st = static_cast<State*>(data);
  const nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == nullptr) return 0;
  // The id is big-endian on the wire. Stamping here (not with the kernel's
  // timestamp, which is often absent) is exact enough: we read the socket
  // as soon as it is readable.
  st->held.push_back({ntohl(ph->packet_id), Clock::now() + st->delay});
  ++st->queued;
  return 0;
}

void release(nfq_q_handle* qh, State& st, const Held& h) {
  if (nfq_set_verdict(qh, h.id, NF_ACCEPT, 0, nullptr) < 0)
    std::fprintf(stderr, "nfq_delay: verdict for packet %u failed: %s\n", h.id, std::strerror(errno));
  ++st.released;
}

}  // namespace

int main(int argc, char** argv) {
  long queue = -1, delay_ms = -1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--queue") queue = parse_num(argv[++i], 0, 65535, "queue number");
    else if (a == "--delay-ms") delay_ms = parse_num(argv[++i], 0, 60000, "delay");
    else usage();
  }
  if (queue < 0 || delay_ms < 0) usage();

  State st;
  st.delay = std::chrono::milliseconds(delay_ms);

  // Signals arrive through a descriptor so they cannot slip in between a
  // check and the wait (the classic race with a flag and poll).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  if (sigprocmask(SIG_BLOCK, &sigs, nullptr) != 0) die("sigprocmask failed");
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (sfd < 0) die(std::string("signalfd: ") + std::strerror(errno));

  nfq_handle* h = nfq_open();
  if (h == nullptr) die(std::string("nfq_open: ") + std::strerror(errno));
  nfq_q_handle* qh = nfq_create_queue(h, static_cast<uint16_t>(queue), &on_packet, &st);
  if (qh == nullptr)
    die("cannot bind queue " + std::to_string(queue) + ": " + std::strerror(errno) +
        " (another program on it, or no nfnetlink_queue?)");
  // Only the packet id matters; never copy payloads to user space.
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) die(std::string("nfq_set_mode: ") + std::strerror(errno));
  // A delay of MS at line rate holds many packets at once; the default
  // queue length (1024) would drop a burst.
  if (nfq_set_queue_maxlen(qh, 4096) < 0)
    std::fprintf(stderr, "nfq_delay: cannot raise the queue length: %s\n", std::strerror(errno));
  int fd = nfq_fd(h);
  // Bursts of queue messages must not overflow the socket between reads.
  // SO_RCVBUFFORCE ignores rmem_max (we are root); fall back to SO_RCVBUF.
  int rcvbuf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  std::fprintf(stderr, "nfq_delay: queue %ld, delay %ld ms\n", queue, delay_ms);
  std::fflush(stderr);

  alignas(nlmsghdr) static char buf[64 * 1024];
  unsigned long long enobufs = 0;
  bool running = true;
  while (running) {
    // Release everything that is due before waiting again.
    auto now = Clock::now();
    while (!st.held.empty() && st.held.front().due <= now) {
      release(qh, st, st.held.front());
      st.held.pop_front();
    }
    timespec ts{};
    timespec* timeout = nullptr;  // nothing held: wait for a packet or a signal
    if (!st.held.empty()) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(st.held.front().due - now).count();
      ts.tv_sec = static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      timeout = &ts;
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    int r = ppoll(p, 2, timeout, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      die(std::string("ppoll: ") + std::strerror(errno));
    }
    if (p[1].revents & POLLIN) {
      signalfd_siginfo si{};
      (void)!read(sfd, &si, sizeof si);
      running = false;
    }
    if (p[0].revents & POLLIN) {
      // Drain the socket: one wake-up may carry many queued packets.
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          nfq_handle_packet(h, buf, static_cast<int>(n));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == ENOBUFS) {
          // The kernel could not deliver some queue messages (those packets
          // are dropped by the kernel); the socket itself is still fine.
          if (enobufs++ % 100 == 0)
            std::fprintf(stderr, "nfq_delay: receive buffer overflow (ENOBUFS x%llu), continuing\n", enobufs);
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        die(std::string("recv: ") + (n == 0 ? "socket closed" : std::strerror(errno)));
      }
    }
  }

  // Accept what is still held: once the queue is unbound the kernel would
  // drop these packets.
  for (const Held& held : st.held) release(qh, st, held);
  st.held.clear();
  nfq_destroy_queue(qh);
  nfq_close(h);
  std::fprintf(stderr, "nfq_delay: exiting, %llu packets delayed, %llu released\n", st.queued, st.released);
  return 0;
}
