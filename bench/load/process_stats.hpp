// CPU time and memory of this process and of the server under test, read
// from /proc so that a run can tell whose CPU was the limit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace windlass::load {

// A point in time for measuring a window: wall clock, our own CPU time and,
// when a server pid is known, the server's CPU time (all its threads).
// With several server pids (a cluster's nodes and Redis), server_cpu_s is
// their sum and each_cpu_s their own figures.
struct CpuSample {
  static constexpr size_t kMaxServers = 8;
  uint64_t wall_ns = 0;
  double self_cpu_s = 0;
  double server_cpu_s = -1;  // -1: no pid given, or /proc unreadable (for any of them)
  std::array<double, kMaxServers> each_cpu_s{};
  size_t servers = 0;
};

CpuSample sample_cpu(const std::vector<int>& server_pids) noexcept;

// The process's resident set (VmRSS in /proc/PID/status) in bytes, or -1.
int64_t read_rss_bytes(int pid) noexcept;

}  // namespace windlass::load
