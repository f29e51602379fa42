// Argument helpers shared by the lab's small tools (udp_probe, nfq_delay).
// Each tool defines kToolName before including this.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Prints "TOOL: msg" and exits 2 (bad usage or setup, not a test verdict).
[[noreturn]] inline void die(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", kToolName, msg.c_str());
  std::exit(2);
}

// A decimal integer in [lo, hi], or die naming `what`.
inline long parse_num(std::string_view s, long lo, long hi, const char* what) {
  std::string str(s);
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(str.c_str(), &end, 10);
  if (str.empty() || errno != 0 || *end != '\0' || v < lo || v > hi)
    die(std::string("bad ") + what + ": '" + str + "'");
  return v;
}
