// fanout: one publisher and N subscribers on a chat-like server, where
// every message a client sends goes to every other client at the path
// (examples/chat; the peers in bench/peers follow the same protocol). The
// publisher writes --burst messages in one send; once every subscriber has
// received all of them the next burst goes out. Light bursts (1) weigh the
// cost of one publish; heavy ones (32) queue that many messages for each
// subscriber, where a server that writes each message on its own falls
// behind one that writes a connection's whole queue once per loop turn.
// With --rate the publisher keeps its own pace instead (a burst every
// burst/rate seconds, whether or not the last one has arrived): steady
// chat traffic, where a server's cost per delivery depends on how many
// messages reach each subscriber per loop turn.
//
// Every payload is the message's sequence number (8 bytes), its send time
// (8 bytes: nanoseconds on CLOCK_MONOTONIC since the run began), then
// filler up to --size that depends on the sequence number. Both numbers
// are written as eight big-endian 7-bit groups, so the payload is ASCII
// and a valid text message. Each subscriber checks that every message is
// exactly the next one (nothing lost, reordered or repeated), with the
// right opcode, length and filler; its latency is the receipt time minus
// the send time it carries.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "modes.hpp"

namespace windlass::load {
namespace {

constexpr size_t kHeaderBytes = 16;  // sequence number, send time
constexpr size_t kFillerPeriod = 26;
// Settle probes carry this bit in their sequence number; data messages
// count from 0 and never reach it.
constexpr uint64_t kProbeBit = uint64_t{1} << 55;
constexpr uint64_t kProbeIntervalNs = 200'000'000;
constexpr uint64_t kSettleTimeoutNs = 10'000'000'000;
// A burst not fully delivered this long after it was sent ends the run.
constexpr uint64_t kStallTimeoutNs = 10'000'000'000;

// 56 bits as eight 7-bit groups, most significant first.
void encode7(uint64_t value, uint8_t* out) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(value & 0x7f);
    value >>= 7;
  }
}

bool decode7(const uint8_t* in, uint64_t& value) noexcept {
  value = 0;
  uint8_t high = 0;
  for (int i = 0; i < 8; ++i) {
    high |= in[i];
    value = (value << 7) | in[i];
  }
  return (high & 0x80) == 0;
}

class FanoutWorkload final : public Workload {
 public:
  FanoutWorkload(const Options& opts, size_t subscribers)
      : opts_(opts),
        opcode_(opts.binary ? Opcode::binary : Opcode::text),
        subscribers_(subscribers),
        subs_(subscribers),
        payload_(opts.size),
        pattern_(opts.size + kFillerPeriod),
        epoch_ns_(monotonic_ns()) {
    for (size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = static_cast<uint8_t>('a' + i % kFillerPeriod);
  }

  bool reads_payload() const noexcept override { return true; }

  void on_open(Client&, uint64_t) override {}

  // Keeps the first 16 bytes of each message and compares the rest with
  // the filler its sequence number calls for, where it lies in the
  // receive buffer.
  void on_payload(Client& client, const uint8_t* chunk, size_t len, uint64_t offset) override {
    if (client.index() >= subscribers_) return;  // the publisher: on_message reports it
    Subscriber& s = subs_[client.index()];
    if (offset < kHeaderBytes) {
      const size_t take = std::min(len, kHeaderBytes - static_cast<size_t>(offset));
      std::memcpy(s.head + offset, chunk, take);
      chunk += take;
      len -= take;
      offset += take;
      if (offset == kHeaderBytes) s.head_ok = decode7(s.head, s.seq);
      if (len == 0) return;
    }
    if (offset + len > opts_.size) return;  // too long: on_message reports the length
    const size_t phase = static_cast<size_t>((offset + s.seq) % kFillerPeriod);
    if (std::memcmp(chunk, pattern_.data() + phase, len) != 0) s.filler_ok = false;
  }

  void on_message(Client& client, const Message& m) override {
    ClientLoop& loop = client.loop();
    if (client.index() >= subscribers_) {
      ++loop.stats().delivery_errors;
      loop.abort("the publisher received a message (" + std::to_string(m.length) +
                 " bytes): the server must not send a client's message back to it");
      return;
    }
    Subscriber& s = subs_[client.index()];
    const bool filler_ok = s.filler_ok;
    const bool head_ok = s.head_ok;
    s.filler_ok = true;
    s.head_ok = false;
    // One error per wrong message: after a gap the subscriber's sequence
    // picks up from the message that came, so a loss counts once.
    uint64_t sent_ns = 0;
    if (m.opcode != opcode_) {
      mismatch(client, m, "the opcode differs");
    } else if (m.length != opts_.size) {
      mismatch(client, m, "the length differs");
    } else if (!head_ok || !decode7(s.head + 8, sent_ns)) {
      mismatch(client, m, "the sequence number or send time is not 7-bit groups (corrupted)");
    } else if ((s.seq & kProbeBit) != 0) {
      if (!filler_ok) {
        mismatch(client, m, "the filler of a settle probe differs (corrupted)");
      } else if (s.next_seq > 0) {
        mismatch(client, m, "a settle probe arrived after data messages (reordered)");
      } else if (!s.probed) {
        s.probed = true;
        ++probed_;
      }
    } else if (s.seq != s.next_seq) {
      mismatch(client, m,
               s.seq > s.next_seq ? "a message is missing (lost, or delivered out of order)"
                                  : "a message came again or out of order");
      s.next_seq = s.seq + 1;
    } else if (!filler_ok) {
      mismatch(client, m, "the filler differs (corrupted, or mixed with another message)");
      ++s.next_seq;
    } else if (epoch_ns_ + sent_ns > loop.now_ns()) {
      mismatch(client, m, "the send time is in the future (corrupted)");
      ++s.next_seq;
    } else {
      ++s.next_seq;
      loop.stats().latency.record(loop.now_ns() - (epoch_ns_ + sent_ns));
      last_delivery_ns_ = loop.now_ns();
      if (++delivered_ == subscribers_ * published_ && sending_ && opts_.rate == 0) publish_burst();
    }
  }

  // From the moment every subscriber is open until the run is over, a
  // closed connection makes the numbers meaningless: the run stops (the
  // server's close code is in the report).
  void on_closed(Client& client, bool) override {
    if (!live_) return;
    client.loop().abort(client.index() >= subscribers_
                            ? std::string("the publisher's connection was closed during the run")
                            : "subscriber " + std::to_string(client.index()) + " was closed during the run");
  }

  void set_publisher(Client& publisher) noexcept { publisher_ = &publisher; }
  void set_live(bool live) noexcept { live_ = live; }
  size_t probed() const noexcept { return probed_; }

  // Settle: a probe (repeated while some subscriber has none, since one
  // that was not yet subscribed when a probe went out never gets it).
  void probe_if_due(uint64_t now_ns) {
    if (now_ns < next_probe_ns_) return;
    next_probe_ns_ = now_ns + kProbeIntervalNs;
    fill_and_send(kProbeBit | probes_sent_++, monotonic_ns());
  }

  // Starts the closed loop (each completed burst sends the next), or the
  // paced one (tick() sends what is due).
  void start() {
    sending_ = true;
    if (opts_.rate == 0) {
      publish_burst();
      return;
    }
    interval_ns_ = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(opts_.burst) * 1e9 / opts_.rate));
    next_burst_ns_ = monotonic_ns();
    last_delivery_ns_ = next_burst_ns_;
    tick(next_burst_ns_);
  }
  // Paced: the bursts due by `now_ns`; after a stall of the load generator
  // itself, the schedule restarts rather than sending the backlog at once.
  void tick(uint64_t now_ns) {
    if (!sending_ || opts_.rate == 0) return;
    for (int due = 0; next_burst_ns_ <= now_ns; ++due) {
      if (due == 64) {
        next_burst_ns_ = now_ns + interval_ns_;
        break;
      }
      publish_burst();
      next_burst_ns_ += interval_ns_;
    }
  }
  // Milliseconds until the next paced burst (bounded by `most`).
  int wait_ms(uint64_t now_ns, int most) const noexcept {
    if (!sending_ || opts_.rate == 0) return most;
    if (next_burst_ns_ <= now_ns) return 0;
    // Rounded up: a burst due within the millisecond waits for poll's next
    // tick instead of a busy loop (tick() sends every burst due by then).
    return static_cast<int>(
        std::min<uint64_t>((next_burst_ns_ - now_ns + 999'999) / 1'000'000, static_cast<uint64_t>(most)));
  }
  void stop() noexcept { sending_ = false; }
  bool all_delivered() const noexcept { return delivered_ == subscribers_ * published_; }

  // Aborts the run when the current burst has waited too long (paced:
  // when nothing has arrived for that long while messages are out).
  void check_stall(ClientLoop& loop) {
    const uint64_t since = opts_.rate == 0 ? burst_sent_ns_ : last_delivery_ns_;
    if (all_delivered() || loop.now_ns() < since + kStallTimeoutNs) return;
    size_t behind = 0;
    size_t first_behind = 0;
    for (size_t i = subscribers_; i-- > 0;) {
      if (subs_[i].next_seq < published_) {
        ++behind;
        first_behind = i;
      }
    }
    const uint64_t expected = subscribers_ * published_;
    char why[400];
    std::snprintf(why, sizeof why,
                  "stalled: %llu deliveries missing (%llu of %llu) %.0f s after the burst of messages "
                  "%llu..%llu was sent; %zu of %zu subscribers are behind (subscriber %zu waits for "
                  "message %llu)",
                  static_cast<unsigned long long>(expected - delivered_),
                  static_cast<unsigned long long>(delivered_), static_cast<unsigned long long>(expected),
                  static_cast<double>(kStallTimeoutNs) / 1e9,
                  static_cast<unsigned long long>(published_ - opts_.burst),
                  static_cast<unsigned long long>(published_ - 1), behind, subscribers_, first_behind,
                  static_cast<unsigned long long>(subs_[first_behind].next_seq));
    ++loop.stats().delivery_errors;
    loop.abort(why);
  }

 private:
  struct Subscriber {
    uint8_t head[kHeaderBytes];  // of the message being received
    bool head_ok = false;        // the 16 bytes are in and the sequence number decoded
    bool filler_ok = true;       // no filler byte of this message differed so far
    bool probed = false;
    uint64_t seq = 0;       // of the message being received
    uint64_t next_seq = 0;  // the data message expected next
  };

  void publish_burst() {
    const uint64_t now = monotonic_ns();
    for (size_t k = 0; k < opts_.burst; ++k) fill_and_send(published_++, now);
    burst_sent_ns_ = now;
  }

  void fill_and_send(uint64_t seq, uint64_t now_ns) {
    if (!publisher_->is_open()) return;  // closed: the run is being aborted
    encode7(seq, payload_.data());
    encode7(now_ns - epoch_ns_, payload_.data() + 8);
    std::memcpy(payload_.data() + kHeaderBytes, pattern_.data() + (kHeaderBytes + seq) % kFillerPeriod,
                opts_.size - kHeaderBytes);
    publisher_->send(opcode_, payload_.data(), payload_.size());
  }

  // Counts an error; the first ends the run, saying what was wrong.
  void mismatch(Client& client, const Message& m, const char* what) {
    ClientLoop& loop = client.loop();
    const Subscriber& s = subs_[client.index()];
    if (loop.stats().delivery_errors++ == 0) {
      char detail[400];
      std::snprintf(detail, sizeof detail,
                    "delivery error on subscriber %zu: %s (got opcode %u, %llu bytes, sequence number %llu; "
                    "expected %zu bytes, message %llu)",
                    client.index(), what, static_cast<unsigned>(m.opcode),
                    static_cast<unsigned long long>(m.length), static_cast<unsigned long long>(s.seq),
                    opts_.size, static_cast<unsigned long long>(s.next_seq));
      loop.abort(detail);
    }
  }

  const Options& opts_;
  const Opcode opcode_;
  const size_t subscribers_;
  std::vector<Subscriber> subs_;
  std::vector<uint8_t> payload_;  // one message, refilled for each
  std::vector<uint8_t> pattern_;  // 'a'..'z' repeated; the filler is a window of it
  const uint64_t epoch_ns_;
  Client* publisher_ = nullptr;
  bool sending_ = false;
  bool live_ = false;
  uint64_t published_ = 0;  // data messages sent
  uint64_t delivered_ = 0;  // data messages received, over all subscribers
  uint64_t burst_sent_ns_ = 0;
  uint64_t interval_ns_ = 0;    // paced: between bursts
  uint64_t next_burst_ns_ = 0;  // paced: when the next burst is due
  uint64_t last_delivery_ns_ = 0;
  uint64_t probes_sent_ = 0;
  uint64_t next_probe_ns_ = 0;
  size_t probed_ = 0;  // subscribers that have received a probe
};

// Polls until `deadline_ns` or an abort, watching for a stalled burst.
void drive(ClientLoop& loop, FanoutWorkload& workload, uint64_t deadline_ns) {
  while (!loop.aborted()) {
    const uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return;
    const int until_deadline = static_cast<int>(std::min<uint64_t>((deadline_ns - now) / 1'000'000 + 1, 100));
    loop.poll(workload.wait_ms(now, until_deadline));
    workload.tick(monotonic_ns());
    workload.check_stall(loop);
  }
}

// Opens the publisher after the subscribers, then probes until every
// subscriber has been subscribed; false (with the run aborted) if not.
bool settle(ClientLoop& loop, FanoutWorkload& workload, size_t subscribers, const Options& opts) {
  Client& publisher = loop.client(subscribers);
  loop.connect(publisher);
  while (!loop.aborted() && publisher.state() != ClientState::open &&
         publisher.state() != ClientState::idle) {
    loop.poll(50);
  }
  if (loop.aborted()) return false;
  if (!publisher.is_open()) {
    loop.abort("the publisher's connection could not be opened");
    return false;
  }
  workload.set_publisher(publisher);
  workload.set_live(true);

  const uint64_t started = monotonic_ns();
  while (!loop.aborted() && workload.probed() < subscribers) {
    const uint64_t now = monotonic_ns();
    if (now - started > kSettleTimeoutNs) {
      loop.abort("only " + std::to_string(workload.probed()) + " of " + std::to_string(subscribers) +
                 " subscribers received the publisher's probe within 10 s: is this a chat server, sending "
                 "every message to every other client at " +
                 opts.path + "?");
      return false;
    }
    workload.probe_if_due(now);
    loop.poll(10);
  }
  if (loop.aborted()) return false;
  progress(opts, "all %zu subscribers reached in %.2f s", subscribers,
           static_cast<double>(monotonic_ns() - started) / 1e9);
  return true;
}

}  // namespace

void run_fanout(const Options& opts, const Target& target, Report& report) {
  // The publisher is one more descriptor: when RLIMIT_NOFILE capped the
  // connections, it comes out of the subscribers.
  if (report.connections < report.requested_connections && report.connections > 1) --report.connections;
  const size_t subscribers = report.connections;
  FanoutWorkload workload(opts, subscribers);
  ClientLoop loop(opts, target, subscribers + 1, workload);

  report.opened = open_all(loop, opts, subscribers);
  if (!loop.aborted() && report.opened < subscribers) {
    loop.abort("only " + std::to_string(report.opened) + " of " + std::to_string(subscribers) +
               " subscribers opened");
  }
  if (!loop.aborted() && settle(loop, workload, subscribers, opts)) {
    workload.start();
    warm_up_and_measure(loop, opts, report, [&](uint64_t deadline) { drive(loop, workload, deadline); });

    // The burst in flight is still checked to the last delivery.
    workload.stop();
    while (!loop.aborted() && !workload.all_delivered()) {
      loop.poll(100);
      workload.check_stall(loop);
    }
  }
  workload.set_live(false);
  loop.close_all(10000);
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

}  // namespace windlass::load
