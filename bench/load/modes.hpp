// The load generator's modes. Each is one function that builds its
// Workload, drives a ClientLoop through its phases and fills a Report; a
// new mode is a new function here and a line in
// the table in windlass_load.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "client_loop.hpp"
#include "options.hpp"
#include "process_stats.hpp"
#include "report.hpp"

namespace windlass::load {

using ModeFunction = void (*)(const Options& opts, const Target& target, Report& report);

// Round trips of --size bytes, --pipeline in flight per connection.
void run_echo(const Options& opts, const Target& target, Report& report);
// Connections cycling through connect, upgrade and close.
void run_handshake(const Options& opts, const Target& target, Report& report);
// Connections held open doing nothing, to weigh the server's memory.
void run_idle(const Options& opts, const Target& target, Report& report);
// One publisher, N subscribers: bursts of --burst messages, each to be
// received by every subscriber before the next burst goes out.
void run_fanout(const Options& opts, const Target& target, Report& report);
// A Pusher-protocol server: N subscribers of one public channel, events
// published through the signed HTTP API (mode_pusher.cpp).
void run_pusher(const Options& opts, const Target& target, Report& report);
// The same subscribers held idle, to weigh the server's memory.
void run_pusher_idle(const Options& opts, const Target& target, Report& report);

// Phases the modes share.

// Connects the first `first_n` clients (all by default) and polls until
// each has opened or failed (or the run is aborted); returns how many are
// open. The other clients must be idle.
size_t open_all(ClientLoop& loop, const Options& opts, size_t first_n = SIZE_MAX);

// A progress line on stderr, unless --quiet.
void progress(const Options& opts, const char* format, ...) __attribute__((format(printf, 2, 3)));

// The measured window: resets the window's statistics, samples CPU at both
// ends and keeps the window's statistics in `report`. `run_until(deadline_ns)`
// drives the loop (a mode may do more than poll, as fanout does).
template <class RunUntil>
void measure_window(ClientLoop& loop, const Options& opts, Report& report, RunUntil&& run_until) {
  SyscallCounter syscalls;
  if (opts.count_syscalls && !syscalls.start(opts.server_pid, report.syscalls_unavailable)) {
    progress(opts, "not counting the server's system calls: %s", report.syscalls_unavailable.c_str());
  }
  loop.stats().reset_window();
  report.window_start = sample_cpu(opts.server_pids);
  run_until(report.window_start.wall_ns + static_cast<uint64_t>(opts.duration_s * 1e9));
  report.window_end = sample_cpu(opts.server_pids);
  report.window = loop.stats();
  report.server_syscalls = syscalls.stop();
}

// --warmup seconds unmeasured, then the measured window, with progress lines.
template <class RunUntil>
void warm_up_and_measure(ClientLoop& loop, const Options& opts, Report& report, RunUntil&& run_until) {
  if (opts.warmup_s > 0) {
    progress(opts, "warming up for %.1f s", opts.warmup_s);
    run_until(monotonic_ns() + static_cast<uint64_t>(opts.warmup_s * 1e9));
  }
  progress(opts, "measuring for %.1f s", opts.duration_s);
  measure_window(loop, opts, report, run_until);
}

}  // namespace windlass::load
