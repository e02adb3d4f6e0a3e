// CPU time and memory of this process and of the server under test, read
// from /proc so that a run can tell whose CPU was the limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace windlass::load {

// A point in time for measuring a window: wall clock, our own CPU time and,
// when a server pid is known, the server's CPU time (all its threads).
struct CpuSample {
  uint64_t wall_ns = 0;
  double self_cpu_s = 0;
  double server_cpu_s = -1;  // -1: no pid given, or /proc unreadable
  double server_user_s = -1;    // its two parts: user space ...
  double server_system_s = -1;  // ... and the kernel
};

CpuSample sample_cpu(int server_pid) noexcept;

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
