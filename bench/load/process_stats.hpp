// CPU time and memory of this process and of the server under test, read
// from /proc so that a run can tell whose CPU was the limit.
#pragma once

#include <cstdint>

namespace windlass::load {

// A point in time for measuring a window: wall clock, our own CPU time and,
// when a server pid is known, the server's CPU time (all its threads).
struct CpuSample {
  uint64_t wall_ns = 0;
  double self_cpu_s = 0;
  double server_cpu_s = -1;  // -1: no pid given, or /proc unreadable
};

CpuSample sample_cpu(int server_pid) noexcept;

// The process's resident set (VmRSS in /proc/PID/status) in bytes, or -1.
int64_t read_rss_bytes(int pid) noexcept;

}  // namespace windlass::load
