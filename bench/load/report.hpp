// What a run measured, printed as one human summary or one JSON object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "client_loop.hpp"
#include "options.hpp"
#include "process_stats.hpp"

namespace windlass::load {

// The pusher modes' own figures.
struct PusherFigures {
  bool present = false;
  size_t subscribers = 0;  // subscribed when publishing began
  size_t api_connections = 0;
  // Within the measured window:
  uint64_t publishes = 0;        // API calls answered 200
  uint64_t publishes_sent = 0;   // API calls written
  uint64_t publishes_due = 0;    // --rate: publishes the schedule called for
  uint64_t deliveries = 0;       // events received and checked, over every subscriber
  LatencyHistogram api_latency;  // request written -> answer read
  LatencyHistogram publish_lag;  // --rate: due -> written (the publisher falling behind)
  uint64_t api_connects_window = 0;
  uint64_t api_closed_by_server_window = 0;
  // Over the whole run:
  uint64_t api_connects = 0;          // TCP connections opened to the API
  uint64_t api_closed_by_server = 0;  // closed by the server (or announced) after an answer
  uint64_t api_requests = 0;
  uint64_t probes = 0;
  double close_seconds = 0;  // closing every subscriber at the end
};

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
  PusherFigures pusher;

  double seconds() const noexcept {
    return static_cast<double>(window_end.wall_ns - window_start.wall_ns) / 1e9;
  }
  bool ok() const noexcept { return failure.empty() && totals.errors() == 0; }
};

void print_report(const Report& report, const Options& opts);

}  // namespace windlass::load
