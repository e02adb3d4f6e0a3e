// handshake: --connections clients each loop connect -> upgrade -> close
// handshake -> reconnect, measuring completed upgrades per second and the
// time from connect() to a valid 101.
#include <string>

#include "modes.hpp"

namespace windlass::load {
namespace {

class HandshakeWorkload final : public Workload {
 public:
  void set_cycling(bool cycling) noexcept { cycling_ = cycling; }

  void on_open(Client& client, uint64_t handshake_ns) override {
    client.loop().stats().latency.record(handshake_ns);
    client.close();
  }

  void on_message(Client&, const Message&) override {}

  // A cycle that did not end in a clean close handshake makes the rate
  // meaningless (refused connections "cycle" very fast), so the run stops;
  // the loop has already said why.
  void on_closed(Client& client, bool clean) override {
    if (!cycling_) return;
    if (!clean) {
      client.loop().abort("connection " + std::to_string(client.index()) + " failed during the run");
      return;
    }
    client.loop().connect(client);
  }

 private:
  bool cycling_ = true;
};

}  // namespace

void run_handshake(const Options& opts, const Target& target, Report& report) {
  HandshakeWorkload workload;
  ClientLoop loop(opts, target, report.connections, workload);
  report.opened = report.connections;
  loop.connect_all();
  warm_up_and_measure(loop, opts, report, [&](uint64_t deadline) { loop.run_until(deadline); });
  workload.set_cycling(false);
  loop.close_all(3000);
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

}  // namespace windlass::load
