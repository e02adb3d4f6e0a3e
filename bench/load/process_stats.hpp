// CPU time and memory of this process and of the server under test, read
// from /proc so that a run can tell whose CPU was the limit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
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
  double server_user_s = -1;    // its two parts: user space ...
  double server_system_s = -1;  // ... and the kernel
  std::array<double, kMaxServers> each_cpu_s{};
  size_t servers = 0;
};

CpuSample sample_cpu(const std::vector<int>& server_pids) noexcept;

// The process's resident set (VmRSS in /proc/PID/status) in bytes, or -1.
int64_t read_rss_bytes(int pid) noexcept;

// The system calls a process makes over a window (--count-syscalls): one
// perf counter of the tracepoint raw_syscalls:sys_enter per thread the
// process has when the window opens (the one `perf stat -e
// raw_syscalls:sys_enter -p PID` counts), read when it closes. The
// tracepoint costs the server a few nanoseconds per call, not the
// ptrace round trip per call that strace -c would. Needs tracefs and
// perf_event_paranoid <= 1 (or root).
class SyscallCounter {
 public:
  SyscallCounter() = default;
  ~SyscallCounter();
  SyscallCounter(const SyscallCounter&) = delete;
  SyscallCounter& operator=(const SyscallCounter&) = delete;

  // False, with `why` set, when the counters cannot be opened.
  bool start(int pid, std::string& why);
  // The calls counted since start(), or -1.
  int64_t stop();

 private:
  std::vector<int> fds_;
};

}  // namespace windlass::load
