#include "process_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "client_loop.hpp"

namespace windlass::load {
namespace {

// utime + stime from /proc/PID/stat (fields 14 and 15, in clock ticks).
// The command name in field 2 may hold spaces and parentheses, so the
// fields are counted from the last ')'.
double read_process_cpu_s(int pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return -1;
  char line[1024];
  const size_t n = std::fread(line, 1, sizeof line - 1, f);
  std::fclose(f);
  line[n] = '\0';
  const char* p = std::strrchr(line, ')');
  if (p == nullptr) return -1;
  unsigned long utime = 0;
  unsigned long stime = 0;
  // After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime(14) stime(15).
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

CpuSample sample_cpu(const std::vector<int>& server_pids) noexcept {
  CpuSample s;
  s.wall_ns = monotonic_ns();
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  s.self_cpu_s = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                 static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  if (server_pids.empty()) return s;
  s.server_cpu_s = 0;
  for (const int pid : server_pids) {
    if (s.servers == CpuSample::kMaxServers) break;
    const double cpu = read_process_cpu_s(pid);
    s.each_cpu_s[s.servers++] = cpu;
    s.server_cpu_s = cpu < 0 || s.server_cpu_s < 0 ? -1 : s.server_cpu_s + cpu;
  }
  return s;
}

int64_t read_rss_bytes(int pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long long value = 0;
    if (std::sscanf(line, "VmRSS: %lld kB", &value) == 1) {
      kib = value;
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

}  // namespace windlass::load
