// How many CPUs this process may use: the default number of event loops.
// std::thread::hardware_concurrency() counts the machine's CPUs, which is
// wrong under `taskset -c 0` (the process may run on one) and in a
// container limited to two CPUs by its cgroup's quota (the kernel lets it
// run on all of them, but only for two CPUs' worth of time per period, so
// more loops than that only take turns and add latency).
#pragma once

#include <optional>
#include <string_view>

namespace windlass::detail {

// A cgroup v2 `cpu.max` file ("max 100000", "150000 100000"): the quota in
// CPUs (1.5 for the second), or nullopt for no limit or a malformed file.
std::optional<double> parse_cgroup_v2_cpu_max(std::string_view text) noexcept;
// cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us ("-1": no limit).
std::optional<double> parse_cgroup_v1_quota(std::string_view quota_us, std::string_view period_us) noexcept;
// The process's cgroup v2 path from /proc/self/cgroup ("0::/system.slice/x.service").
std::optional<std::string_view> cgroup_v2_path(std::string_view proc_self_cgroup) noexcept;

// CPUs in the affinity mask, capped by the cgroup quota (rounded up), at least 1.
unsigned usable_cpus(unsigned affinity, std::optional<double> quota) noexcept;

}  // namespace windlass::detail
