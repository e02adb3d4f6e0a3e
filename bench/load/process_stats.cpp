#include "process_stats.hpp"

#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "client_loop.hpp"

namespace windlass::load {
namespace {

// utime + stime from /proc/PID/stat (fields 14 and 15, in clock ticks).
// The command name in field 2 may hold spaces and parentheses, so the
// fields are counted from the last ')'.
bool read_process_cpu(int pid, double& user_s, double& system_s) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return false;
  char line[1024];
  const size_t n = std::fread(line, 1, sizeof line - 1, f);
  std::fclose(f);
  line[n] = '\0';
  const char* p = std::strrchr(line, ')');
  if (p == nullptr) return false;
  unsigned long utime = 0;
  unsigned long stime = 0;
  // After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime(14) stime(15).
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    return false;
  }
  const auto tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  user_s = static_cast<double>(utime) / tick;
  system_s = static_cast<double>(stime) / tick;
  return true;
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
  s.server_user_s = 0;
  s.server_system_s = 0;
  for (const int pid : server_pids) {
    if (s.servers == CpuSample::kMaxServers) break;
    double user = 0, system = 0;
    const bool ok = read_process_cpu(pid, user, system);
    s.each_cpu_s[s.servers++] = ok ? user + system : -1;
    if (!ok || s.server_cpu_s < 0) {
      s.server_cpu_s = s.server_user_s = s.server_system_s = -1;
    } else {
      s.server_cpu_s += user + system;
      s.server_user_s += user;
      s.server_system_s += system;
    }
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

SyscallCounter::~SyscallCounter() {
  for (int fd : fds_) ::close(fd);
}

bool SyscallCounter::start(int pid, std::string& why) {
  long id = -1;
  for (const char* path : {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                           "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"}) {
    if (FILE* f = std::fopen(path, "re")) {
      if (std::fscanf(f, "%ld", &id) != 1) id = -1;
      std::fclose(f);
      if (id >= 0) break;
    }
  }
  if (id < 0) {
    why = "no raw_syscalls:sys_enter tracepoint (is tracefs mounted?)";
    return false;
  }
  char dir_path[64];
  std::snprintf(dir_path, sizeof dir_path, "/proc/%d/task", pid);
  DIR* dir = ::opendir(dir_path);
  if (dir == nullptr) {
    why = std::string(dir_path) + ": " + std::strerror(errno);
    return false;
  }
  while (dirent* e = ::readdir(dir)) {
    const long tid = std::strtol(e->d_name, nullptr, 10);
    if (tid <= 0) continue;
    perf_event_attr attr{};
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof attr;
    attr.config = static_cast<uint64_t>(id);
    attr.disabled = 1;
    attr.inherit = 1;  // threads the server starts during the window too
    const long fd = ::syscall(SYS_perf_event_open, &attr, static_cast<pid_t>(tid), -1, -1, 0);
    if (fd < 0) {
      why = std::string("perf_event_open: ") + std::strerror(errno) +
            (errno == EACCES || errno == EPERM ? " (perf_event_paranoid, or not root)" : "");
      ::closedir(dir);
      return false;
    }
    fds_.push_back(static_cast<int>(fd));
  }
  ::closedir(dir);
  for (int fd : fds_) ::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
  return !fds_.empty();
}

int64_t SyscallCounter::stop() {
  if (fds_.empty()) return -1;
  int64_t total = 0;
  for (int fd : fds_) {
    ::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
    uint64_t count = 0;
    if (::read(fd, &count, sizeof count) != static_cast<ssize_t>(sizeof count)) return -1;
    total += static_cast<int64_t>(count);
  }
  return total;
}

}  // namespace windlass::load
