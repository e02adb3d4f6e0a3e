// idle: open --connections clients and hold them for --duration seconds,
// answering pings, so the server's memory per connection can be read.
#include "modes.hpp"

namespace windlass::load {
namespace {

class IdleWorkload final : public Workload {
 public:
  void on_open(Client&, uint64_t) override {}
  void on_message(Client&, const Message&) override {}
  void on_closed(Client&, bool) override {}
};

}  // namespace

void run_idle(const Options& opts, const Target& target, Report& report) {
  IdleWorkload workload;
  ClientLoop loop(opts, target, report.connections, workload);
  if (opts.server_pid > 0) report.server_rss_before = read_rss_bytes(opts.server_pid);

  report.opened = open_all(loop, opts);
  if (report.opened == 0 && !loop.aborted()) loop.abort("no connection could be opened");
  if (!loop.aborted()) {
    // Give the server a moment to finish whatever it does after an upgrade
    // (timers, buffers) before weighing it.
    loop.run_until(monotonic_ns() + 1'000'000'000);
    if (opts.server_pid > 0) report.server_rss_after = read_rss_bytes(opts.server_pid);
    progress(opts, "holding %zu connections for %.1f s", report.opened, opts.duration_s);
    measure_window(loop, opts, report, [&](uint64_t deadline) { loop.run_until(deadline); });
  }
  loop.close_all(10000);
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

}  // namespace windlass::load
