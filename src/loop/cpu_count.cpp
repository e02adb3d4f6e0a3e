#include "loop/cpu_count.hpp"

#include <sched.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "windlass/app.hpp"

namespace windlass::detail {

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<long long> parse_integer(std::string_view s) noexcept {
  s = trim(s);
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::optional<double> parse_cgroup_v2_cpu_max(std::string_view text) noexcept {
  text = trim(text);
  const size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view quota = text.substr(0, space);
  if (quota == "max") return std::nullopt;
  auto q = parse_integer(quota);
  auto p = parse_integer(text.substr(space + 1));
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return static_cast<double>(*q) / static_cast<double>(*p);
}

std::optional<double> parse_cgroup_v1_quota(std::string_view quota_us, std::string_view period_us) noexcept {
  auto q = parse_integer(quota_us);
  auto p = parse_integer(period_us);
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;  // -1: no limit
  return static_cast<double>(*q) / static_cast<double>(*p);
}

std::optional<std::string_view> cgroup_v2_path(std::string_view proc_self_cgroup) noexcept {
  while (!proc_self_cgroup.empty()) {
    const size_t nl = proc_self_cgroup.find('\n');
    std::string_view line = proc_self_cgroup.substr(0, nl);
    proc_self_cgroup = nl == std::string_view::npos ? std::string_view() : proc_self_cgroup.substr(nl + 1);
    if (line.starts_with("0::")) return line.substr(3);
  }
  return std::nullopt;
}

unsigned usable_cpus(unsigned affinity, std::optional<double> quota) noexcept {
  unsigned n = affinity == 0 ? 1 : affinity;
  if (quota && *quota > 0) {
    const double q = std::ceil(*quota);
    if (q < static_cast<double>(n)) n = static_cast<unsigned>(q);
  }
  return n == 0 ? 1 : n;
}

namespace {

// The tightest quota on the way from the process's cgroup up to the root
// (a limit set on a parent applies to its children too).
std::optional<double> cgroup_quota() {
  std::optional<double> best;
  auto take = [&best](std::optional<double> q) {
    if (q && (!best || *q < *best)) best = q;
  };
  if (auto self = read_file("/proc/self/cgroup")) {
    if (auto path = cgroup_v2_path(*self)) {
      std::string dir(*path);
      for (;;) {
        if (auto text = read_file("/sys/fs/cgroup" + dir + "/cpu.max")) take(parse_cgroup_v2_cpu_max(*text));
        if (dir.empty() || dir == "/") break;
        dir.erase(dir.rfind('/'));
      }
    }
  }
  for (const char* base : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
    auto quota = read_file(std::string(base) + "/cpu.cfs_quota_us");
    auto period = read_file(std::string(base) + "/cpu.cfs_period_us");
    if (quota && period) take(parse_cgroup_v1_quota(*quota, *period));
  }
  return best;
}

}  // namespace

}  // namespace windlass::detail

namespace windlass {

unsigned usable_cpu_count() noexcept {
  unsigned affinity = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    affinity = static_cast<unsigned>(CPU_COUNT(&set));
  } else {
    affinity = std::thread::hardware_concurrency();
  }
  try {
    return detail::usable_cpus(affinity, detail::cgroup_quota());
  } catch (...) {  // reading /proc or /sys ran out of memory: the mask alone
    return detail::usable_cpus(affinity, std::nullopt);
  }
}

}  // namespace windlass
