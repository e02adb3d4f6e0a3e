// What a run measured, printed as one human summary or one JSON object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "client_loop.hpp"
#include "options.hpp"
#include "process_stats.hpp"

namespace windlass::load {

struct Report {
  std::string mode;
  size_t requested_connections = 0;
  size_t connections = 0;   // after the RLIMIT_NOFILE cap
  size_t nofile_limit = 0;  // the hard limit, reported when it capped the run
  size_t opened = 0;        // connections open when the measured window began
  CpuSample window_start;
  CpuSample window_end;
  Stats window;                    // throughput and latency within the measured window
  Stats totals;                    // errors and close codes over the whole run
  int64_t server_rss_before = -1;  // idle mode: before connecting
  int64_t server_rss_after = -1;   // idle mode: with all connections open
  std::string failure;             // why the run was aborted; empty when it was not
  int64_t server_syscalls = -1;    // --count-syscalls: the server's system calls in the window
  std::string syscalls_unavailable;

  double seconds() const noexcept {
    return static_cast<double>(window_end.wall_ns - window_start.wall_ns) / 1e9;
  }
  bool ok() const noexcept { return failure.empty() && totals.errors() == 0; }
};

void print_report(const Report& report, const Options& opts);

}  // namespace windlass::load
