// pusher: a Pusher-protocol server's fan-out of HTTP API publishes.
//
// N subscribers connect to /app/{key}?protocol=7, read
// pusher:connection_established, send pusher:subscribe for one public
// channel and wait for pusher_internal:subscription_succeeded. Then the
// publisher's API connections ("lanes", --api-connections, each with one
// request in flight) POST signed events to /apps/{id}/events: first probes
// until every subscriber has one (a subscription that is acknowledged
// before it takes effect would otherwise lose the first events), then the
// measured events, at --rate publishes a second in bursts of --burst, or
// unthrottled: whenever a lane is free and fewer than --window publishes
// are still on their way to some subscriber.
//
// Each event's data is the JSON text
//   {"id":G,"lane":L,"seq":N,"t":T,"pad":"..."}
// (G counts every publish, N those of lane L, T the send time in ns since
// the run began, and the filler, which depends on G, pads it to --size
// bytes). A lane's requests are serial, so its events must reach every
// subscriber in the order of N, and each must be exactly the text sent:
// every subscriber checks the event name, the channel, the data byte for
// byte, and that nothing is lost, repeated or reordered. The latency is
// receipt minus T. A publish not received by every subscriber within 10 s
// of being sent ends the run.
//
// pusher-idle: the same subscribers, held for --duration with nothing
// published, to weigh the server's memory per subscribed connection.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "api_client.hpp"
#include "modes.hpp"
#include "pusher_json.hpp"

namespace windlass::load {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kStallTimeoutNs = 10 * kSecond;
constexpr uint64_t kSetupTimeoutNs = 10 * kSecond;  // without progress, while subscribing or probing
constexpr uint64_t kProbeIntervalNs = 200'000'000;
constexpr uint64_t kProbeTag = uint64_t{1} << 63;
constexpr size_t kFillerPeriod = 26;
// The close handshakes at the end may take a while: Soketi needs more than
// 10 s for 10,000 subscribed connections on a busy machine.
constexpr uint64_t kCloseMsPerConnection = 3;
constexpr int kMinCloseMs = 10000;

int close_timeout_ms(size_t connections) {
  return std::max(kMinCloseMs, static_cast<int>(std::min<uint64_t>(connections * kCloseMsPerConnection, 600'000)));
}

// Closes every subscriber (after the run: not measured) and says how long
// the server took.
void close_subscribers(ClientLoop& loop, Report& report) {
  const uint64_t started = monotonic_ns();
  loop.close_all(close_timeout_ms(loop.size()));
  report.pusher.close_seconds = static_cast<double>(monotonic_ns() - started) / 1e9;
}

int64_t unix_seconds() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec);
}

void append_number(std::string& out, uint64_t v) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, static_cast<size_t>(r.ptr - digits));
}

// Reads `literal` then a JSON unsigned integer (no leading zero) at `p`.
bool read_field(std::string_view& p, std::string_view literal, uint64_t& value) noexcept {
  if (!p.starts_with(literal)) return false;
  p.remove_prefix(literal.size());
  size_t n = 0;
  while (n < p.size() && p[n] >= '0' && p[n] <= '9') ++n;
  if (n == 0 || n > 20 || (n > 1 && p[0] == '0')) return false;
  const auto r = std::from_chars(p.data(), p.data() + n, value);
  if (r.ec != std::errc()) return false;
  p.remove_prefix(n);
  return true;
}

char filler(uint64_t id, size_t i) noexcept {
  return static_cast<char>('a' + (id + i) % kFillerPeriod);
}

class PusherWorkload final : public Workload, public ApiLaneOwner {
 public:
  PusherWorkload(const Options& opts, const Target& target, size_t subscribers)
      : opts_(opts),
        target_(target),
        subscribers_(subscribers),
        lane_count_(opts.api_connections),
        subs_(subscribers),
        next_seq_(subscribers * opts.api_connections, 0),
        lane_seq_(opts.api_connections, 0),
        builder_(opts.app_id, opts.app_key, opts.app_secret, target.host_header, opts.api_close),
        epoch_ns_(monotonic_ns()) {
    subscribe_.assign(R"({"event":"pusher:subscribe","data":{"auth":"","channel":")");
    subscribe_ += opts.channel;
    subscribe_ += R"("}})";
    body_head_.assign(R"({"name":")");
    body_head_ += opts.event;
    body_head_ += R"(","channel":")";
    body_head_ += opts.channel;
    body_head_ += R"(","data":")";
  }

  void attach(ClientLoop& loop) {
    loop_ = &loop;
    for (size_t i = 0; i < lane_count_; ++i) {
      lanes_.push_back(std::make_unique<ApiLane>(loop, target_, *this, lane_counters_, i, opts_.api_close));
    }
  }

  // ------------------------------------------------ subscribers

  bool reads_payload() const noexcept override { return true; }

  void on_open(Client& client, uint64_t) override {
    Sub& s = subs_[client.index()];
    s.phase = Phase::established_wanted;
    s.last_rx_ns = client.loop().now_ns();
  }

  void on_payload(Client& client, const uint8_t* chunk, size_t len, uint64_t offset) override {
    std::string& m = subs_[client.index()].message;
    if (offset == 0) m.clear();
    m.append(reinterpret_cast<const char*>(chunk), len);
  }

  void on_message(Client& client, const Message& m) override {
    ClientLoop& loop = client.loop();
    Sub& s = subs_[client.index()];
    s.last_rx_ns = loop.now_ns();
    if (m.length == 0) s.message.clear();
    if (m.opcode != Opcode::text)
      return delivery_error(client, "a binary message (the protocol has text only)");
    if (const char* why = parse_pusher_event(s.message, ev_)) {
      return delivery_error(client, std::string("a message that is not valid JSON (") + why + ")");
    }
    if (!ev_.has_event) return delivery_error(client, "a message without an event");
    const std::string& name = ev_.event;
    if (name == opts_.event && ev_.channel == opts_.channel) return on_event(client, s);
    if (name == "pusher:connection_established") return on_established(client, s);
    if (name == "pusher_internal:subscription_succeeded") {
      if (s.phase != Phase::subscribing || ev_.channel != opts_.channel) {
        return subscribe_error(client, "an unexpected pusher_internal:subscription_succeeded");
      }
      s.phase = Phase::subscribed;
      ++subscribed_;
      return;
    }
    if (name == "pusher:ping") {
      static constexpr std::string_view kPong = R"({"event":"pusher:pong","data":{}})";
      client.send(Opcode::text, reinterpret_cast<const uint8_t*>(kPong.data()), kPong.size());
      return;
    }
    if (name == "pusher:pong") return;
    if (name == "pusher:error" || name == "pusher:subscription_error" ||
        name == "pusher_internal:subscription_error") {
      return subscribe_error(client, "the server sent " + s.message.substr(0, 300));
    }
    delivery_error(client, "an unexpected event: " + s.message.substr(0, 200));
  }

  void on_closed(Client& client, bool) override {
    if (live_)
      client.loop().abort("subscriber " + std::to_string(client.index()) + " was closed during the run");
  }

  // ------------------------------------------------ the API lanes

  void on_lane_ready(ApiLane&) override { pump(); }

  void on_answer(ApiLane& lane, int status, std::string_view body) override {
    const uint64_t now = monotonic_ns();
    const bool probe = (lane.tag & kProbeTag) != 0;
    if (status != 200) {
      ++loop_->stats().api_errors;
      char why[200];
      std::snprintf(why, sizeof why, "the API answered %d to %s: ", status, probe ? "a probe" : "a publish");
      loop_->abort(why + std::string(body.substr(0, 300)));
      return;
    }
    if (probe) {
      probe_in_flight_ = false;
    } else {
      win_.api_latency.record(now - lane.sent_ns());
      ++win_.publishes;
      if (lane.tag >= base_id_) pending_[lane.tag - base_id_].answered = true;
      pop_completed();
    }
    pump();
  }

  void on_lane_failed(ApiLane& lane, const std::string& why) override {
    ++loop_->stats().api_errors;
    loop_->abort("API connection " + std::to_string(lane.index()) + ": " + why);
  }

  // ------------------------------------------------ phases

  void set_live(bool live) noexcept { live_ = live; }
  size_t subscribed() const noexcept { return subscribed_; }
  size_t probed_last() const noexcept {
    size_t n = 0;
    for (const Sub& s : subs_) n += s.phase == Phase::subscribed && s.last_probe == probes_sent_;
    return n;
  }
  uint64_t probes_sent() const noexcept { return probes_sent_; }

  void open_lanes() {
    for (auto& lane : lanes_) lane->connect();
  }
  size_t lanes_ready() const noexcept {
    size_t n = 0;
    for (const auto& lane : lanes_) n += lane->ready();
    return n;
  }
  void shut_lanes() {
    for (auto& lane : lanes_) lane->shut();
  }

  // Settle: probes until every subscriber has received the last one sent.
  void set_probing(bool probing) noexcept { probing_ = probing; }
  bool settled() const noexcept {
    return probes_sent_ > 0 && !probe_in_flight_ && probed_last() == subscribers_;
  }

  // The first burst is due half an interval from now, so that a measured
  // window a whole number of intervals long, starting a whole number of
  // intervals after this, holds exactly that many bursts (none on its edges).
  void start(uint64_t now) {
    sending_ = true;
    next_tick_ns_ = now + interval_ns() / 2;
    pump();
  }
  void stop() noexcept { sending_ = false; }
  bool drained() const noexcept {
    if (!pending_.empty()) return false;
    for (const auto& lane : lanes_) {
      if (lane->busy()) return false;
    }
    return true;
  }

  void reset_window() {
    win_ = Window{};
    connects_at_window_ = lane_counters_.connects;
    closed_at_window_ = lane_counters_.closed_by_server;
  }
  void fill(PusherFigures& f, bool window_ended) {
    if (window_ended) {
      f.publishes = win_.publishes;
      f.publishes_sent = win_.sent;
      f.publishes_due = win_.due;
      f.deliveries = win_.deliveries;
      f.api_latency = win_.api_latency;
      f.publish_lag = win_.publish_lag;
      f.api_connects_window = lane_counters_.connects - connects_at_window_;
      f.api_closed_by_server_window = lane_counters_.closed_by_server - closed_at_window_;
    }
    f.api_connects = lane_counters_.connects;
    f.api_closed_by_server = lane_counters_.closed_by_server;
    f.api_requests = lane_counters_.requests;
    f.probes = probes_sent_;
  }

  // What the drive loop does besides polling: the rate's clock, probes,
  // pusher:ping to quiet connections, the stall check. Returns how long
  // the next poll may wait, in ms.
  int tick(uint64_t now) {
    uint64_t wait_ns = 100'000'000;
    if (sending_ && opts_.rate > 0) {
      const uint64_t interval = interval_ns();
      bool added = false;
      while (now >= next_tick_ns_) {
        for (size_t k = 0; k < opts_.burst; ++k) due_.push_back(next_tick_ns_);
        win_.due += opts_.burst;
        next_tick_ns_ += interval;
        added = true;
      }
      if (added) pump();
      wait_ns = std::min(wait_ns, next_tick_ns_ - now);
    }
    if (probing_) {
      // Another probe only while some subscriber has none: one that every
      // subscriber gets ends the settling, however long it takes to arrive.
      if (now >= next_probe_ns_ && !probe_in_flight_ && (probes_sent_ == 0 || probed_any_ < subscribers_)) {
        send_probe(now);
      }
      wait_ns = std::min<uint64_t>(wait_ns, 10'000'000);
    }
    if (now >= next_sweep_ns_) {
      next_sweep_ns_ = now + kSecond;
      sweep(now);
    }
    check_stall(now);
    return static_cast<int>((wait_ns + 999'999) / 1'000'000);
  }

 private:
  uint64_t interval_ns() const noexcept {
    return opts_.rate > 0 ? static_cast<uint64_t>(static_cast<double>(opts_.burst) / opts_.rate * 1e9) : 0;
  }

  enum class Phase : uint8_t { connecting, established_wanted, subscribing, subscribed };
  struct Sub {
    Phase phase = Phase::connecting;
    bool got_data = false;
    uint64_t last_probe = 0;  // probes count from 1
    uint64_t last_rx_ns = 0;
    std::string message;  // the message being received
  };
  struct Pending {
    uint64_t sent_ns;
    uint64_t seq;
    uint32_t lane;
    bool answered;
    size_t delivered;
  };
  struct Window {
    uint64_t publishes = 0;  // answered 200
    uint64_t sent = 0;
    uint64_t due = 0;
    uint64_t deliveries = 0;
    LatencyHistogram api_latency;
    LatencyHistogram publish_lag;
  };

  void on_established(Client& client, Sub& s) {
    if (s.phase != Phase::established_wanted)
      return subscribe_error(client, "a second pusher:connection_established");
    // data: "{\"socket_id\":\"1.2\",\"activity_timeout\":120}"
    if (!ev_.data_is_string) return subscribe_error(client, "connection_established's data is not a string");
    const size_t at = ev_.data.find("\"activity_timeout\":");
    uint64_t timeout_s = 0;
    std::string_view rest =
        at == std::string::npos ? std::string_view() : std::string_view(ev_.data).substr(at);
    if (ev_.data.find("\"socket_id\":\"") == std::string::npos ||
        !read_field(rest, "\"activity_timeout\":", timeout_s)) {
      return subscribe_error(client,
                             "connection_established without socket_id and activity_timeout: " + ev_.data);
    }
    if (timeout_s > 0) activity_timeout_ns_ = std::min(activity_timeout_ns_, timeout_s * kSecond);
    s.phase = Phase::subscribing;
    client.send(Opcode::text, reinterpret_cast<const uint8_t*>(subscribe_.data()), subscribe_.size());
  }

  void on_event(Client& client, Sub& s) {
    if (s.phase != Phase::subscribed) return delivery_error(client, "an event before subscription_succeeded");
    if (!ev_.data_is_string) return delivery_error(client, "the event's data is not a string");
    std::string_view p = ev_.data;
    uint64_t v = 0;
    if (p.starts_with("{\"probe\":")) {
      if (!read_field(p, "{\"probe\":", v) || p != "}")
        return delivery_error(client, "a corrupted probe: " + ev_.data);
      if (s.got_data) return delivery_error(client, "a probe after the measured events began (reordered)");
      if (v <= s.last_probe || v > probes_sent_)
        return delivery_error(client, "a probe repeated or out of order");
      if (s.last_probe == 0) ++probed_any_;
      s.last_probe = v;
      return;
    }
    uint64_t id = 0, lane = 0, seq = 0, t = 0;
    if (!read_field(p, "{\"id\":", id) || !read_field(p, ",\"lane\":", lane) ||
        !read_field(p, ",\"seq\":", seq) || !read_field(p, ",\"t\":", t) || !p.starts_with(",\"pad\":\"") ||
        ev_.data.size() != opts_.size || !p.ends_with("\"}")) {
      return delivery_error(client, "the data is not what was sent (" + std::to_string(ev_.data.size()) +
                                        " bytes): " + ev_.data.substr(0, 160));
    }
    p.remove_prefix(8);
    p.remove_suffix(2);
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] != filler(id, i)) return delivery_error(client, "the data's filler differs (corrupted)");
    }
    if (lane >= lane_count_ || id < base_id_ || id >= next_id_) {
      return delivery_error(
          client, "an event that was not sent, or was received twice (id " + std::to_string(id) + ")");
    }
    Pending& pe = pending_[id - base_id_];
    if (pe.lane != lane || pe.seq != seq || pe.sent_ns - epoch_ns_ != t) {
      return delivery_error(client, "the data's numbers do not match what was sent (corrupted)");
    }
    uint64_t& expected = next_seq_[client.index() * lane_count_ + lane];
    if (seq != expected) {
      const bool gap = seq > expected;
      expected = seq + 1;
      return delivery_error(client, gap ? "an event is missing (lost, or delivered out of order)"
                                        : "an event came again or out of order");
    }
    ++expected;
    s.got_data = true;
    ClientLoop& loop = client.loop();
    loop.stats().latency.record(loop.now_ns() - pe.sent_ns);
    ++win_.deliveries;
    if (++pe.delivered == subscribers_ && pe.answered) {
      pop_completed();
      pump();
    }
  }

  void pop_completed() {
    while (!pending_.empty() && pending_.front().answered && pending_.front().delivered == subscribers_) {
      pending_.pop_front();
      ++base_id_;
    }
  }

  // Sends what may be sent on the free lanes.
  void pump() {
    if (loop_ == nullptr || loop_->aborted()) return;
    if (probing_ && !sending_) {
      if (!probe_in_flight_ && probes_sent_ == 0) send_probe(monotonic_ns());
      return;
    }
    if (!sending_) return;
    for (auto& lane : lanes_) {
      if (!lane->ready()) continue;
      uint64_t due = 0;
      if (opts_.rate > 0) {
        if (due_.empty()) return;
        due = due_.front();
        due_.pop_front();
      } else if (next_id_ - base_id_ >= opts_.window) {
        return;
      }
      publish(*lane, due);
      if (loop_->aborted()) return;
    }
  }

  void publish(ApiLane& lane, uint64_t due_ns) {
    const uint64_t id = next_id_++;
    const uint64_t seq = lane_seq_[lane.index()]++;
    const uint64_t now = monotonic_ns();
    data_.assign("{\"id\":");
    append_number(data_, id);
    data_ += ",\"lane\":";
    append_number(data_, lane.index());
    data_ += ",\"seq\":";
    append_number(data_, seq);
    data_ += ",\"t\":";
    append_number(data_, now - epoch_ns_);
    data_ += ",\"pad\":\"";
    const size_t pad = opts_.size > data_.size() + 2 ? opts_.size - data_.size() - 2 : 0;
    for (size_t i = 0; i < pad; ++i) data_ += filler(id, i);
    data_ += "\"}";
    body_ = body_head_;
    append_json_escaped(body_, data_);
    body_ += "\"}";
    if (!builder_.build(request_, body_, unix_seconds())) {
      ++loop_->stats().api_errors;
      loop_->abort("OpenSSL could not sign the API request");
      return;
    }
    pending_.push_back(Pending{now, seq, static_cast<uint32_t>(lane.index()), false, 0});
    ++win_.sent;
    if (due_ns != 0) win_.publish_lag.record(now > due_ns ? now - due_ns : 0);
    lane.tag = id;
    lane.post(request_);
  }

  void send_probe(uint64_t now) {
    ApiLane& lane = *lanes_[0];
    if (!lane.ready()) return;
    const uint64_t k = ++probes_sent_;
    data_.assign("{\"probe\":");
    append_number(data_, k);
    data_ += '}';
    body_ = body_head_;
    append_json_escaped(body_, data_);
    body_ += "\"}";
    if (!builder_.build(request_, body_, unix_seconds())) {
      ++loop_->stats().api_errors;
      loop_->abort("OpenSSL could not sign the API request");
      return;
    }
    probe_in_flight_ = true;
    next_probe_ns_ = now + kProbeIntervalNs;
    lane.tag = kProbeTag | k;
    lane.post(request_);
  }

  // pusher-js's liveness: after activity_timeout of silence, pusher:ping.
  void sweep(uint64_t now) {
    static constexpr std::string_view kPing = R"({"event":"pusher:ping","data":{}})";
    for (size_t i = 0; i < subscribers_; ++i) {
      Sub& s = subs_[i];
      Client& c = loop_->client(i);
      if (c.is_open() && s.phase != Phase::connecting && now - s.last_rx_ns > activity_timeout_ns_) {
        c.send(Opcode::text, reinterpret_cast<const uint8_t*>(kPing.data()), kPing.size());
        s.last_rx_ns = now;
      }
    }
  }

  void check_stall(uint64_t now) {
    if (pending_.empty() || now < pending_.front().sent_ns + kStallTimeoutNs) return;
    const Pending& pe = pending_.front();
    size_t behind = 0;
    size_t first_behind = 0;
    for (size_t i = subscribers_; i-- > 0;) {
      if (next_seq_[i * lane_count_ + pe.lane] <= pe.seq) {
        ++behind;
        first_behind = i;
      }
    }
    char why[400];
    std::snprintf(why, sizeof why,
                  "stalled: publish %llu (API connection %u, its event %llu) %s and reached %zu of %zu "
                  "subscribers in %.0f s; %zu are behind (subscriber %zu first)",
                  static_cast<unsigned long long>(base_id_), pe.lane, static_cast<unsigned long long>(pe.seq),
                  pe.answered ? "was answered" : "was not answered", pe.delivered, subscribers_,
                  static_cast<double>(kStallTimeoutNs) / 1e9, behind, first_behind);
    ++loop_->stats().delivery_errors;
    loop_->abort(why);
  }

  void delivery_error(Client& client, const std::string& what) {
    ClientLoop& loop = client.loop();
    if (loop.stats().delivery_errors++ == 0) {
      loop.abort("delivery error on subscriber " + std::to_string(client.index()) + ": " + what);
    }
  }

  void subscribe_error(Client& client, const std::string& what) {
    ClientLoop& loop = client.loop();
    if (loop.stats().subscribe_errors++ == 0) {
      loop.abort("subscriber " + std::to_string(client.index()) + ": " + what);
    }
  }

  const Options& opts_;
  const Target& target_;
  const size_t subscribers_;
  const size_t lane_count_;
  ClientLoop* loop_ = nullptr;
  std::vector<Sub> subs_;
  std::vector<uint64_t> next_seq_;  // per subscriber and lane: the event expected next
  std::vector<uint64_t> lane_seq_;  // per lane: events sent
  std::vector<std::unique_ptr<ApiLane>> lanes_;
  ApiLaneCounters lane_counters_;
  EventRequestBuilder builder_;
  const uint64_t epoch_ns_;
  PusherEvent ev_;
  std::string subscribe_;
  std::string body_head_;
  std::string data_, body_, request_;  // scratch, reused

  bool live_ = false;
  bool sending_ = false;
  bool probing_ = false;
  bool probe_in_flight_ = false;
  size_t subscribed_ = 0;
  uint64_t probes_sent_ = 0;
  size_t probed_any_ = 0;  // subscribers that have received a probe
  uint64_t next_probe_ns_ = 0;
  uint64_t next_sweep_ns_ = 0;
  uint64_t activity_timeout_ns_ = 120 * kSecond;
  uint64_t next_tick_ns_ = 0;
  std::deque<uint64_t> due_;     // rate: due times of publishes not yet sent
  std::deque<Pending> pending_;  // publishes from base_id_ on, not yet complete
  uint64_t base_id_ = 0;
  uint64_t next_id_ = 0;
  Window win_;
  uint64_t connects_at_window_ = 0;
  uint64_t closed_at_window_ = 0;
};

// Polls until `deadline_ns`, an abort, or `done()`.
template <class Done>
void drive(ClientLoop& loop, PusherWorkload& w, uint64_t deadline_ns, Done&& done) {
  while (!loop.aborted() && !done()) {
    const uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return;
    const int wait_ms = w.tick(now);
    loop.poll(static_cast<int>(
        std::min<uint64_t>((deadline_ns - now) / 1'000'000 + 1, static_cast<uint64_t>(wait_ms))));
  }
}

void drive_until(ClientLoop& loop, PusherWorkload& w, uint64_t deadline_ns) {
  drive(loop, w, deadline_ns, [] { return false; });
}

// Polls until `progress()` reaches `target`; false (the run aborted) when
// it does not move for kSetupTimeoutNs.
template <class Progress>
bool wait_for(ClientLoop& loop, PusherWorkload& w, size_t target, Progress&& progress, const char* what) {
  size_t last = progress();
  uint64_t moved = monotonic_ns();
  while (!loop.aborted() && progress() < target) {
    drive(loop, w, monotonic_ns() + 50'000'000, [&] { return progress() >= target; });
    const size_t now_at = progress();
    if (now_at != last) {
      last = now_at;
      moved = monotonic_ns();
    } else if (monotonic_ns() - moved > kSetupTimeoutNs) {
      loop.abort("only " + std::to_string(now_at) + " of " + std::to_string(target) + " " + what +
                 " within " + std::to_string(kSetupTimeoutNs / kSecond) + " s");
    }
  }
  return !loop.aborted();
}

// Opens the subscribers and waits until every one is subscribed.
bool subscribe_all(ClientLoop& loop, PusherWorkload& w, const Options& opts, Report& report,
                   size_t subscribers) {
  report.opened = open_all(loop, opts);
  if (!loop.aborted() && report.opened < subscribers) {
    loop.abort("only " + std::to_string(report.opened) + " of " + std::to_string(subscribers) +
               " subscribers opened");
  }
  if (loop.aborted()) return false;
  w.set_live(true);
  const uint64_t started = monotonic_ns();
  if (!wait_for(
          loop, w, subscribers, [&] { return w.subscribed(); }, "subscribers were subscribed"))
    return false;
  report.pusher.subscribers = w.subscribed();
  progress(opts, "%zu subscribers of %s subscribed in %.2f s", w.subscribed(), opts.channel.c_str(),
           static_cast<double>(monotonic_ns() - started) / 1e9);
  return true;
}

}  // namespace

void run_pusher(const Options& opts, const Target& target, Report& report) {
  report.pusher.present = true;
  report.pusher.api_connections = opts.api_connections;
  // The API connections are descriptors too: when RLIMIT_NOFILE capped the
  // connections, they come out of the subscribers.
  if (report.connections < report.requested_connections && report.connections > opts.api_connections) {
    report.connections -= opts.api_connections;
  }
  const size_t subscribers = report.connections;
  PusherWorkload w(opts, target, subscribers);
  ClientLoop loop(opts, target, subscribers, w);
  w.attach(loop);

  if (subscribe_all(loop, w, opts, report, subscribers)) {
    w.open_lanes();
    wait_for(
        loop, w, opts.api_connections, [&] { return w.lanes_ready(); }, "API connections were opened");
  }
  if (!loop.aborted()) {
    const uint64_t started = monotonic_ns();
    w.set_probing(true);
    drive(loop, w, started + 3 * kSetupTimeoutNs, [&] { return w.settled(); });
    w.set_probing(false);
    if (!loop.aborted() && !w.settled()) {
      loop.abort("only " + std::to_string(w.probed_last()) + " of " + std::to_string(subscribers) +
                 " subscribers received the publisher's probe events within 30 s");
    }
    if (!loop.aborted()) {
      progress(opts, "all %zu subscribers received probe %llu (%.2f s)", subscribers,
               static_cast<unsigned long long>(w.probes_sent()),
               static_cast<double>(monotonic_ns() - started) / 1e9);
    }
  }
  if (!loop.aborted()) {
    w.start(monotonic_ns());
    if (opts.warmup_s > 0) {
      progress(opts, "warming up for %.1f s", opts.warmup_s);
      drive_until(loop, w, monotonic_ns() + static_cast<uint64_t>(opts.warmup_s * 1e9));
    }
    progress(opts, "measuring for %.1f s", opts.duration_s);
    loop.stats().reset_window();
    w.reset_window();
    report.window_start = sample_cpu(opts.server_pid);
    drive_until(loop, w, report.window_start.wall_ns + static_cast<uint64_t>(opts.duration_s * 1e9));
    report.window_end = sample_cpu(opts.server_pid);
    report.window = loop.stats();
    w.fill(report.pusher, true);
    // What is in flight is still checked, to the last delivery.
    w.stop();
    drive(loop, w, monotonic_ns() + kStallTimeoutNs + kSecond, [&] { return w.drained(); });
    if (!loop.aborted() && !w.drained()) loop.abort("publishes in flight at the end were not all delivered");
  }
  w.set_live(false);
  w.shut_lanes();
  close_subscribers(loop, report);
  w.fill(report.pusher, false);
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

void run_pusher_idle(const Options& opts, const Target& target, Report& report) {
  report.pusher.present = true;
  const size_t subscribers = report.connections;
  PusherWorkload w(opts, target, subscribers);
  ClientLoop loop(opts, target, subscribers, w);
  w.attach(loop);
  if (opts.server_pid > 0) report.server_rss_before = read_rss_bytes(opts.server_pid);
  if (subscribe_all(loop, w, opts, report, subscribers)) {
    // As idle does: a moment for the server to settle before weighing it.
    drive_until(loop, w, monotonic_ns() + kSecond);
    if (opts.server_pid > 0) report.server_rss_after = read_rss_bytes(opts.server_pid);
    progress(opts, "holding %zu subscribed connections for %.1f s", report.opened, opts.duration_s);
    measure_window(loop, opts, report, [&](uint64_t deadline) { drive_until(loop, w, deadline); });
  }
  w.set_live(false);
  close_subscribers(loop, report);
  report.totals = loop.stats();
  report.failure = loop.abort_reason();
}

}  // namespace windlass::load
