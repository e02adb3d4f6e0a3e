// echo: every connection sends a message, waits for the server to send it
// back, checks it and sends the next; --pipeline K keeps K in flight.
#include <cstdio>
#include <string>
#include <vector>

#include "modes.hpp"

namespace windlass::load {
namespace {

class EchoWorkload final : public Workload {
 public:
  EchoWorkload(const Options& opts, size_t clients)
      : opts_(opts),
        opcode_(opts.binary ? Opcode::binary : Opcode::text),
        payload_(opts.size),
        in_flight_(clients * opts.pipeline),
        clients_(clients) {
    // Printable ASCII, so a text message is valid UTF-8 either way.
    for (size_t i = 0; i < payload_.size(); ++i) payload_[i] = static_cast<uint8_t>('a' + i % 26);
  }

  // While false, a reply is checked but no new message follows it.
  void set_sending(bool sending) noexcept { sending_ = sending; }

  // Sends up to the pipeline depth on every open client (after warmup
  // setup, when the clients opened before sending was switched on).
  void start_all(ClientLoop& loop) {
    for (size_t i = 0; i < loop.size(); ++i) {
      if (loop.client(i).is_open()) fill(loop.client(i));
    }
  }

  void on_open(Client& client, uint64_t) override {
    if (opts_.counted && opts_.count == 0) {
      client.close();
      return;
    }
    fill(client);
  }

  void on_message(Client& client, const Message& m) override {
    PerClient& pc = clients_[client.index()];
    ClientLoop& loop = client.loop();
    if (pc.in_flight == 0) {
      mismatch(client, m, "a message nothing was sent for");
      return;
    }
    const InFlight sent = in_flight_[slot(client, pc.oldest)];
    const char* wrong = nullptr;
    if (m.opcode != opcode_) {
      wrong = "the opcode differs";
    } else if (m.length != opts_.size) {
      wrong = "the length differs";
    } else if (opts_.size > 0 && m.first_byte != first_tag(sent.seq)) {
      wrong = "the first byte differs (reordered or corrupted)";
    } else if (opts_.size > 1 && m.last_byte != last_tag(sent.seq)) {
      wrong = "the last byte differs (reordered or corrupted)";
    }
    if (wrong != nullptr) {
      mismatch(client, m, wrong);
      return;
    }
    loop.stats().latency.record(loop.now_ns() - sent.sent_ns);
    pc.oldest = (pc.oldest + 1) % opts_.pipeline;
    --pc.in_flight;
    ++pc.completed;
    if (opts_.counted && pc.completed == opts_.count) {
      client.close();
    } else {
      fill(client);
    }
  }

  // In a timed run every connection must stay open until the end: one
  // the server closed or dropped makes the numbers meaningless, so the run
  // stops (the close code is in the report).
  void on_closed(Client& client, bool) override {
    if (sending_ && !opts_.counted) {
      client.loop().abort("connection " + std::to_string(client.index()) +
                          " closed by the server during the run");
    }
  }

 private:
  struct InFlight {
    uint64_t sent_ns;
    uint32_t seq;
  };
  // Echo order is preserved per connection, so the replies come back in
  // the order of this ring.
  struct PerClient {
    size_t oldest = 0;
    size_t in_flight = 0;
    uint32_t next_seq = 0;
    uint64_t issued = 0;
    uint64_t completed = 0;
  };

  // Each message's first and last bytes carry its sequence number, so a
  // reply that is stale, reordered or from another message is caught
  // without comparing every byte.
  static int first_tag(uint32_t seq) noexcept { return 'A' + static_cast<int>(seq % 26); }
  static int last_tag(uint32_t seq) noexcept { return 'A' + static_cast<int>(seq / 26 % 26); }

  size_t slot(const Client& client, size_t i) const noexcept {
    return client.index() * opts_.pipeline + i % opts_.pipeline;
  }

  void fill(Client& client) {
    PerClient& pc = clients_[client.index()];
    while (sending_ && client.is_open() && pc.in_flight < opts_.pipeline &&
           (!opts_.counted || pc.issued < opts_.count)) {
      const uint32_t seq = pc.next_seq++;
      if (!payload_.empty()) payload_.front() = static_cast<uint8_t>(first_tag(seq));
      if (payload_.size() > 1) payload_.back() = static_cast<uint8_t>(last_tag(seq));
      client.send(opcode_, payload_.data(), payload_.size());
      in_flight_[slot(client, pc.oldest + pc.in_flight)] = {client.loop().now_ns(), seq};
      ++pc.in_flight;
      ++pc.issued;
    }
  }

  void mismatch(Client& client, const Message& m, const char* what) {
    ClientLoop& loop = client.loop();
    if (loop.stats().echo_mismatches++ == 0) {
      char detail[256];
      std::snprintf(detail, sizeof detail,
                    "echo mismatch on connection %zu: %s (got opcode %u, %llu bytes, first %d, last %d; "
                    "sent %zu bytes)",
                    client.index(), what, static_cast<unsigned>(m.opcode),
                    static_cast<unsigned long long>(m.length), m.first_byte, m.last_byte, opts_.size);
      loop.abort(detail);
    }
  }

  const Options& opts_;
  const Opcode opcode_;
  bool sending_ = true;
  std::vector<uint8_t> payload_;     // one template, retagged per message
  std::vector<InFlight> in_flight_;  // pipeline slots per client, side by side
  std::vector<PerClient> clients_;
};

// Exactly --count round trips per connection, then every connection
// closes; the whole run is the window. Meant for instruction counts under
// callgrind, where what matters is that the server's work is fixed.
void run_counted(const Options& opts, const Target& target, Report& report) {
  EchoWorkload workload(opts, report.connections);
  ClientLoop loop(opts, target, report.connections, workload);
  report.window_start = sample_cpu(opts.server_pids);
  loop.connect_all();
  while (!loop.aborted() && loop.count(ClientState::idle) < loop.size()) loop.poll(100);
  report.window_end = sample_cpu(opts.server_pids);
  report.opened = loop.stats().handshakes;
  report.window = loop.stats();
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

}  // namespace

void run_echo(const Options& opts, const Target& target, Report& report) {
  if (opts.counted) {
    run_counted(opts, target, report);
    return;
  }
  EchoWorkload workload(opts, report.connections);
  workload.set_sending(false);
  ClientLoop loop(opts, target, report.connections, workload);

  report.opened = open_all(loop, opts);
  if (report.opened == 0 && !loop.aborted()) loop.abort("no connection could be opened");
  if (!loop.aborted()) {
    workload.set_sending(true);
    workload.start_all(loop);
    warm_up_and_measure(loop, opts, report, [&](uint64_t deadline) { loop.run_until(deadline); });
  }
  // Replies still in flight are checked but not followed by new messages.
  workload.set_sending(false);
  loop.close_all(3000);
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

}  // namespace windlass::load
