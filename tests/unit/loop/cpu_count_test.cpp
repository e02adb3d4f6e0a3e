#include "loop/cpu_count.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include "windlass/app.hpp"

using namespace windlass::detail;

TEST(CpuCount, reads_a_cgroup_v2_quota) {
  EXPECT_EQ(parse_cgroup_v2_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_DOUBLE_EQ(*parse_cgroup_v2_cpu_max("200000 100000\n"), 2.0);
  EXPECT_DOUBLE_EQ(*parse_cgroup_v2_cpu_max("150000 100000"), 1.5);
  EXPECT_EQ(parse_cgroup_v2_cpu_max(""), std::nullopt);
  EXPECT_EQ(parse_cgroup_v2_cpu_max("abc 100000"), std::nullopt);
  EXPECT_EQ(parse_cgroup_v2_cpu_max("100000 0"), std::nullopt);
}

TEST(CpuCount, reads_a_cgroup_v1_quota) {
  EXPECT_EQ(parse_cgroup_v1_quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_DOUBLE_EQ(*parse_cgroup_v1_quota("50000\n", "100000\n"), 0.5);
}

TEST(CpuCount, finds_the_unified_hierarchy_line) {
  EXPECT_EQ(cgroup_v2_path("12:cpu,cpuacct:/x\n0::/system.slice/windlass.service\n"),
            "/system.slice/windlass.service");
  EXPECT_EQ(cgroup_v2_path("12:cpu,cpuacct:/x\n"), std::nullopt);
}

TEST(CpuCount, quota_caps_the_affinity_mask_rounding_up) {
  EXPECT_EQ(usable_cpus(8, std::nullopt), 8u);
  EXPECT_EQ(usable_cpus(8, 2.0), 2u);
  EXPECT_EQ(usable_cpus(8, 1.5), 2u);
  EXPECT_EQ(usable_cpus(8, 0.2), 1u);
  EXPECT_EQ(usable_cpus(2, 16.0), 2u);
  EXPECT_EQ(usable_cpus(0, std::nullopt), 1u);
}

TEST(CpuCount, follows_the_affinity_mask_of_the_process) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (size_t i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &saved)) {
      CPU_SET(i, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const unsigned n = windlass::usable_cpu_count();
  sched_setaffinity(0, sizeof saved, &saved);
  EXPECT_EQ(n, 1u);
}
