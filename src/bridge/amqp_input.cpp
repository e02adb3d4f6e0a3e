// AmqpInput: one thread per input speaks AMQP 0-9-1 through librabbitmq
// and hands each delivery to a windlass Loop (include/windlass/amqp.hpp
// says why a thread, and what is guaranteed).
//
// The thread, once connected, turns like this:
//   1. take the verdicts the Loop sent back (a locked vector) and write an
//      ack or a reject for each; after a batch of acks, a synchronous
//      basic.qos whose reply proves the broker processed them
//   2. read every frame already available, without blocking
//      (amqp_simple_wait_frame_noblock with a zero timeout, which also
//      sends a heartbeat when one is due and notices a missing one):
//      deliveries are assembled from their method, header and body
//      frames and posted to the Loop as they complete
//   3. poll() the broker's socket and the eventfd the Loop writes after a
//      verdict (and stop() writes), for at most half a heartbeat
//
// Reading frames ourselves rather than through amqp_consume_message
// keeps the thread from blocking inside a message whose body is still on
// the wire, and lets a body over max_message_size be skipped frame by
// frame instead of being gathered whole first.
//
// Which connection a delivery belongs to is a generation number. The
// Loop hands a delivery to the handler only if its generation is still
// the live one (Shared::live_gen, under the lock); when the connection
// ends, the thread clears it under the same lock and waits for a handler
// already running to finish. From then on, the set of deliveries handed
// over is exactly the set of verdicts that came back, which is what the
// RedeliveryLedger needs to recognise their redeliveries.
#include "bridge/amqp_input.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "windlass/amqp.hpp"
#include "windlass/log.hpp"

namespace windlass {

using detail::AmqpClock;
using detail::AmqpFingerprint;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// URLs

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.1. An encoded NUL would end the C string librabbitmq is given.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// Everything but RFC 3986's unreserved characters, so that "/" (the
// default vhost) comes out as %2F.
std::string percent_encode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    unsigned char u = static_cast<unsigned char>(c);
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '.' || c == '_' || c == '~';
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

const char* describe(AmqpUrlError e) noexcept {
  switch (e) {
    case AmqpUrlError::none: return "no error";
    case AmqpUrlError::empty: return "the URL is empty";
    case AmqpUrlError::bad_scheme: return "not an AMQP URL: write amqp://user:password@host:port/vhost";
    case AmqpUrlError::tls_unsupported:
      return "amqps:// (TLS) is not supported: use amqp:// to a broker on this host or a private network, or "
             "a "
             "TLS tunnel";
    case AmqpUrlError::bad_character: return "spaces, control characters and '#' must be percent-encoded";
    case AmqpUrlError::bad_escape: return "a '%' must be followed by two hex digits (and not encode NUL)";
    case AmqpUrlError::bad_host:
      return "bad host: an IPv6 address is written in brackets, as in amqp://[::1]:5672";
    case AmqpUrlError::bad_port: return "the port must be a number from 1 to 65535";
    case AmqpUrlError::empty_vhost:
      return "empty vhost after the '/': RabbitMQ's default vhost \"/\" is written %2f (or leave out the "
             "path)";
    case AmqpUrlError::slash_in_vhost: return "a '/' in the vhost must be written %2f";
    case AmqpUrlError::has_query: return "query parameters (?...) are not supported: use the input's options";
  }
  return "unknown error";
}

AmqpUrlError parse_amqp_url(std::string_view text, AmqpUrl& out) {
  if (text.empty()) return AmqpUrlError::empty;
  if (starts_with_icase(text, "amqps://")) return AmqpUrlError::tls_unsupported;
  if (!starts_with_icase(text, "amqp://")) return AmqpUrlError::bad_scheme;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '#') return AmqpUrlError::bad_character;
  }
  std::string_view rest = text.substr(7);
  if (rest.find('?') != std::string_view::npos) return AmqpUrlError::has_query;

  AmqpUrl u;
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  // The last '@': a password with an unencoded '@' still parses.
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    size_t colon = userinfo.find(':');
    if (!percent_decode(userinfo.substr(0, colon), u.user)) return AmqpUrlError::bad_escape;
    if (colon != std::string_view::npos && !percent_decode(userinfo.substr(colon + 1), u.password)) {
      return AmqpUrlError::bad_escape;
    }
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return AmqpUrlError::bad_host;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return AmqpUrlError::bad_host;
      port = after.substr(1);
      if (port.empty()) return AmqpUrlError::bad_port;
    }
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return AmqpUrlError::bad_port;
  }
  if (host.find_first_of("[]") != std::string_view::npos) return AmqpUrlError::bad_host;
  std::string decoded_host;
  if (!percent_decode(host, decoded_host)) return AmqpUrlError::bad_escape;
  if (!decoded_host.empty()) u.host = std::move(decoded_host);  // the spec's default host otherwise
  if (!port.empty()) {
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return AmqpUrlError::bad_port;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return AmqpUrlError::bad_port;
    u.port = static_cast<uint16_t>(value);
  }
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash + 1);
    if (path.empty()) return AmqpUrlError::empty_vhost;
    if (path.find('/') != std::string_view::npos) return AmqpUrlError::slash_in_vhost;
    if (!percent_decode(path, u.vhost)) return AmqpUrlError::bad_escape;
  }
  out = std::move(u);
  return AmqpUrlError::none;
}

std::string AmqpUrl::redacted() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "amqp://" + percent_encode(user) + "@" + h + ":" + std::to_string(port) + "/" +
         percent_encode(vhost);
}

// ---------------------------------------------------------------------------
// Options

std::string amqp_name_problem(std::string_view name) {
  // AMQP 0-9-1 §4.2.5.3: names are short strings, at most 255 octets.
  if (name.empty()) return "must not be empty";
  if (name.size() > 255) return "is longer than 255 bytes";
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "must not contain control characters";
  }
  if (name.starts_with("amq.")) return "starts with \"amq.\", which the broker reserves for its own";
  return {};
}

std::string validate(const AmqpOptions& o) {
  AmqpUrl url;
  if (AmqpUrlError e = parse_amqp_url(o.url, url); e != AmqpUrlError::none)
    return std::string("url: ") + describe(e);
  if (std::string why = amqp_name_problem(o.exchange); !why.empty()) {
    return "exchange \"" + o.exchange + "\": " + why;
  }
  if (o.exchange_type != "topic" && o.exchange_type != "direct" && o.exchange_type != "fanout") {
    return "exchange_type \"" + o.exchange_type + "\": must be \"topic\", \"direct\" or \"fanout\"";
  }
  if (o.queue.empty() && o.node_id.empty())
    return "queue: neither a queue name nor a node_id to derive one from";
  const std::string queue = o.queue.empty() ? "windlass." + o.node_id : o.queue;
  if (std::string why = amqp_name_problem(queue); !why.empty()) return "queue \"" + queue + "\": " + why;
  if (o.binding_keys.empty()) return "binding_keys: at least one is needed (\"#\" takes everything)";
  for (const auto& k : o.binding_keys) {
    if (k.size() > 255) return "binding_keys: \"" + k.substr(0, 32) + "...\" is longer than 255 bytes";
  }
  if (o.prefetch == 0) return "prefetch: must be at least 1 (0 would mean no limit)";
  if (o.max_message_size == 0) return "max_message_size: must be at least 1 byte";
  if (o.heartbeat.count() < 0 || o.heartbeat.count() > 65535) return "heartbeat: 0 to 65535 seconds";
  if (o.connect_timeout.count() <= 0) return "connect_timeout: must be positive";
  if (o.rpc_timeout.count() <= 0) return "rpc_timeout: must be positive";
  if (o.backoff_initial.count() <= 0) return "backoff_initial: must be positive";
  if (o.backoff_max < o.backoff_initial) return "backoff_max: must not be below backoff_initial";
  if (o.redelivery_window.count() < 0) return "redelivery_window: must not be negative";
  return {};
}

// ---------------------------------------------------------------------------
// The pure parts (src/bridge/amqp_input.hpp)

namespace detail {

AmqpFingerprint amqp_fingerprint(std::string_view routing_key, std::string_view body,
                                 std::string_view message_id, uint64_t timestamp) noexcept {
  std::hash<std::string_view> h;
  auto mix = [](uint64_t seed, uint64_t v) {
    return seed ^ (v + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2));
  };
  uint64_t fp = mix(0, h(routing_key));
  fp = mix(fp, h(body));
  fp = mix(fp, body.size());
  fp = mix(fp, h(message_id));
  return mix(fp, timestamp);
}

void RedeliveryLedger::confirmed(size_t n) {
  n = std::min(n, unconfirmed_.size());
  unconfirmed_.erase(unconfirmed_.begin(), unconfirmed_.begin() + static_cast<std::ptrdiff_t>(n));
}

void RedeliveryLedger::add_candidate(AmqpFingerprint fp) {
  if (max_candidates_ == 0) return;
  if (candidates_.size() == max_candidates_) candidates_.pop_front();
  candidates_.push_back({fp, AmqpClock::time_point::max()});
}

void RedeliveryLedger::handed_over_unacked(AmqpFingerprint fp) {
  add_candidate(fp);
}

void RedeliveryLedger::connection_lost() {
  for (AmqpFingerprint fp : unconfirmed_) add_candidate(fp);
  unconfirmed_.clear();
}

void RedeliveryLedger::connected(AmqpClock::time_point now) {
  for (Candidate& c : candidates_) {
    if (c.deadline == AmqpClock::time_point::max()) c.deadline = now + window_;
  }
}

bool RedeliveryLedger::take_duplicate(AmqpFingerprint fp, bool redelivered, AmqpClock::time_point now) {
  // A message delivered for the first time cannot have been handed over.
  if (!redelivered || candidates_.empty()) return false;
  expire(now);
  auto it =
      std::find_if(candidates_.begin(), candidates_.end(), [&](const Candidate& c) { return c.fp == fp; });
  if (it == candidates_.end()) return false;
  candidates_.erase(it);
  return true;
}

void RedeliveryLedger::expire(AmqpClock::time_point now) {
  std::erase_if(candidates_, [&](const Candidate& c) { return c.deadline <= now; });
}

milliseconds Backoff::next() {
  milliseconds d = initial_;
  for (unsigned i = 0; i < attempt_ && d < max_; ++i) d *= 2;
  d = std::min(d, max_);
  if (attempt_ < 64) ++attempt_;
  std::uniform_int_distribution<int64_t> pick(d.count() / 2, d.count());
  return milliseconds(pick(rng_));
}

}  // namespace detail

// ---------------------------------------------------------------------------
// The input

namespace {

// The input logs through the library's public log (windlass/log.hpp), as
// every application on the library does; a line is formatted only when
// its level is on.
template <class... A>
void log_at(LogLevel level, fmt::format_string<A...> f, A&&... a) {
  if (level < log_level()) return;
  windlass::log(level, fmt::format(f, std::forward<A>(a)...));
}

constexpr amqp_channel_t kChannel = 1;
// Frames read before the verdicts are looked at again.
constexpr int kFramesPerTurn = 256;
// How long the thread waits, at the end of a connection, for a handler
// that is running at that moment (a handler should take microseconds).
constexpr milliseconds kHandlerWait{10'000};

std::string_view view(amqp_bytes_t b) noexcept {
  return b.len == 0 ? std::string_view() : std::string_view(static_cast<const char*>(b.bytes), b.len);
}
amqp_bytes_t bytes(const std::string& s) noexcept {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

timeval to_timeval(milliseconds d) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

std::string seconds_text(milliseconds d) {
  if (d < milliseconds(1000)) return std::to_string(d.count()) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// A routing key comes from whoever publishes: quoted, control characters
// escaped, so a log line stays one line.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 256)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", u);
      out += esc;
    } else {
      out += c;
    }
  }
  if (s.size() > 256) out += "...";
  return out + "\"";
}

// librabbitmq says "a socket error occurred" and keeps errno to itself;
// errno is still the failed call's right after it returns.
std::string library_error(int status, int saved_errno) {
  std::string why = amqp_error_string2(status);
  if (status == AMQP_STATUS_SOCKET_ERROR && saved_errno != 0 && saved_errno != EAGAIN &&
      saved_errno != EINPROGRESS) {
    why += std::string(" (") + std::strerror(saved_errno) + ")";
  }
  return why;
}

int64_t unix_ms_now() noexcept {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Verdict {
  uint64_t generation;
  uint64_t tag;
  AmqpFingerprint fingerprint;
  bool taken;
};

struct Delivery {
  uint64_t generation;
  uint64_t tag;
  AmqpFingerprint fingerprint;
  std::string routing_key;
  std::string body;
};

// What the thread and the tasks it posts to the Loop share. Held by
// shared_ptr: a task still in the Loop's mailbox after the input is gone
// finds it there, sees that its generation is no longer live, and does
// nothing.
struct AmqpShared {
  explicit AmqpShared(AmqpInput::Handler h) : handler(std::move(h)) {
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) throw std::runtime_error(std::string("amqp: eventfd: ") + std::strerror(errno));
  }
  ~AmqpShared() { ::close(wake_fd); }
  AmqpShared(const AmqpShared&) = delete;
  AmqpShared& operator=(const AmqpShared&) = delete;

  void wake() const noexcept {
    uint64_t one = 1;
    // EAGAIN only when the counter is at its maximum: it is readable then.
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }
  void drain_wake() const noexcept {
    uint64_t n;
    [[maybe_unused]] ssize_t r = ::read(wake_fd, &n, sizeof n);
  }

  // On the Loop's thread.
  void hand_over(const Delivery& d) {
    {
      std::lock_guard lock(mu);
      // The connection is gone (or stop() was called): the broker requeues
      // the message and delivers it again on the next connection.
      if (d.generation != live_generation) return;
      ++running;
    }
    bool taken = false;
    try {
      taken = handler(d.routing_key, d.body);
    } catch (const std::exception& e) {
      log_at(LogLevel::error, "amqp: the handler threw for a message with routing key {}: {}; rejecting it",
             quoted(d.routing_key), e.what());
    } catch (...) {
      log_at(LogLevel::error, "amqp: the handler threw for a message with routing key {}; rejecting it",
             quoted(d.routing_key));
    }
    bool first;
    {
      std::lock_guard lock(mu);
      --running;
      first = verdicts.empty();
      verdicts.push_back({d.generation, d.tag, d.fingerprint, taken});
    }
    idle.notify_all();
    if (first) wake();  // the thread drains them all at once: one wake-up per batch
  }

  const AmqpInput::Handler handler;
  int wake_fd = -1;

  std::mutex mu;
  std::condition_variable idle;   // running went back to 0
  uint64_t live_generation = 0;   // under mu; 0: none
  unsigned running = 0;           // under mu: handlers running now
  std::vector<Verdict> verdicts;  // under mu

  std::atomic<bool> stopping{false};
  std::atomic<bool> connected{false};
  std::atomic<int64_t> since_ms{0};
  std::atomic<uint64_t> delivered{0}, rejected{0}, duplicates{0}, reconnects{0}, connect_failures{0},
      in_flight{0};
};

// The thread's side: the connection and everything only it touches.
class Worker {
 public:
  Worker(Loop& loop, const AmqpOptions& options, const AmqpUrl& url, std::string url_text, std::string queue,
         std::shared_ptr<AmqpShared> shared)
      : loop_(loop),
        o_(options),
        url_(url),
        url_text_(std::move(url_text)),
        queue_(std::move(queue)),
        s_(std::move(shared)),
        // Candidates: every ack not yet confirmed (a batch is confirmed
        // at a quarter of the prefetch), plus what was in flight, twice
        // over for a second loss before the window closes.
        ledger_(4 * size_t{options.prefetch} + 64, options.redelivery_window),
        backoff_(options.backoff_initial, options.backoff_max, std::random_device{}()),
        confirm_batch_(std::max<size_t>(1, options.prefetch / 4)) {
    const int64_t hb_ms = int64_t{options.heartbeat.count()} * 1000;
    poll_ms_ = static_cast<int>(hb_ms > 0 ? std::min<int64_t>(hb_ms / 2, 5000) : 5000);
  }

  void run();

 private:
  bool connect(std::string& why);
  int open_socket(std::string& why);
  std::string serve();
  void finish(bool stopping);
  void close_connection();
  void wait(milliseconds delay);
  void set_connected(bool up);

  std::string on_frame(const amqp_frame_t& f);
  std::string complete_delivery();
  std::string drain_verdicts();
  std::string settle(const Verdict& v);
  std::string confirm();
  std::string reply_problem(const amqp_rpc_reply_t& r, const char* what);
  std::string broker_closed(const amqp_method_t& method);
  std::string lost(int status, const char* what);

  Loop& loop_;
  const AmqpOptions& o_;
  const AmqpUrl& url_;
  const std::string url_text_;
  const std::string queue_;
  const std::shared_ptr<AmqpShared> s_;

  amqp_connection_state_t conn_ = nullptr;
  bool alive_ = false;  // frames may still be written
  bool channel_open_ = false;
  uint64_t generation_ = 0;
  detail::RedeliveryLedger ledger_;
  detail::Backoff backoff_;
  size_t confirm_batch_;
  int poll_ms_;
  std::vector<Verdict> spare_;  // swapped with the shared vector, so neither reallocates in steady state

  // The delivery being assembled from its frames.
  bool assembling_ = false;
  bool want_header_ = false;
  bool oversize_ = false;
  bool redelivered_ = false;
  uint64_t tag_ = 0;
  uint64_t body_size_ = 0;
  uint64_t received_ = 0;
  uint64_t timestamp_ = 0;
  std::string routing_key_, body_, message_id_;
};

void Worker::set_connected(bool up) {
  s_->connected.store(up);
  s_->since_ms.store(unix_ms_now());
}

void Worker::run() {
  bool ever_connected = false;
  unsigned failures = 0;
  AmqpClock::time_point down_since{};
  while (!s_->stopping.load()) {
    std::string why;
    if (!connect(why)) {
      close_connection();
      if (s_->stopping.load()) break;  // interrupted, not failed
      s_->connect_failures.fetch_add(1);
      ++failures;
      milliseconds delay = backoff_.next();
      log_at(LogLevel::warn, "amqp: cannot connect to {}: {}; retrying in {}", url_text_, why,
             seconds_text(delay));
      wait(delay);
      continue;
    }
    backoff_.reset();
    set_connected(true);
    std::string keys;
    for (const auto& k : o_.binding_keys) keys += (keys.empty() ? "" : ", ") + quoted(k);
    if (ever_connected) {
      s_->reconnects.fetch_add(1);
      auto down = std::chrono::duration_cast<milliseconds>(AmqpClock::now() - down_since);
      log_at(LogLevel::info,
             "amqp: reconnected to {} after {} ({} failed attempt{}): consuming queue {} again", url_text_,
             seconds_text(down), failures, failures == 1 ? "" : "s", quoted(queue_));
    } else {
      log_at(LogLevel::info,
             "amqp: connected to {}: consuming queue {} bound to {} exchange {} with {} (prefetch {})",
             url_text_, quoted(queue_), o_.exchange_type, quoted(o_.exchange), keys, o_.prefetch);
    }
    ever_connected = true;
    failures = 0;
    why = serve();
    const bool stopping = why.empty();
    finish(stopping);
    set_connected(false);
    if (stopping) break;
    down_since = AmqpClock::now();
    milliseconds delay = backoff_.next();
    log_at(LogLevel::warn, "amqp: disconnected from {}: {}; reconnecting in {}", url_text_, why,
           seconds_text(delay));
    wait(delay);
  }
  if (ever_connected)
    log_at(LogLevel::info, "amqp: stopped consuming queue {} on {}", quoted(queue_), url_text_);
}

void Worker::wait(milliseconds delay) {
  const auto deadline = AmqpClock::now() + delay;
  while (!s_->stopping.load()) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - AmqpClock::now());
    if (left.count() <= 0) return;
    pollfd p{s_->wake_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000))) > 0) s_->drain_wake();
  }
}

std::string Worker::reply_problem(const amqp_rpc_reply_t& r, const char* what) {
  const int e = errno;
  std::string out = what;
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return {};
    case AMQP_RESPONSE_NONE: return out + ": no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      alive_ = false;
      return out + ": " + library_error(r.library_error, e);
    case AMQP_RESPONSE_SERVER_EXCEPTION: break;
  }
  return out + ": " + broker_closed(r.reply);
}

// The broker's connection.close or channel.close, answered, in words.
std::string Worker::broker_closed(const amqp_method_t& method) {
  if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
    const auto* m = static_cast<const amqp_connection_close_t*>(method.decoded);
    amqp_connection_close_ok_t ok{};
    amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    alive_ = false;
    channel_open_ = false;
    return "the broker closed the connection: " + std::to_string(m->reply_code) + " " +
           std::string(view(m->reply_text));
  }
  if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* m = static_cast<const amqp_channel_close_t*>(method.decoded);
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    channel_open_ = false;
    return "the broker closed the channel: " + std::to_string(m->reply_code) + " " +
           std::string(view(m->reply_text));
  }
  return std::string("unexpected method ") + amqp_method_name(method.id);
}

std::string Worker::lost(int status, const char* what) {
  const int e = errno;
  alive_ = false;
  return std::string(what) + ": " + library_error(status, e);
}

// The TCP connection is made here rather than by librabbitmq, so that a
// failure says what failed (refused, unreachable, the name unknown),
// stop() interrupts a connect in progress, and the socket gets its
// options before its first byte. Blocking name resolution is fine on
// this thread.
int Worker::open_socket(std::string& why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(url_.port);
  if (int e = ::getaddrinfo(url_.host.c_str(), port.c_str(), &hints, &list); e != 0) {
    why = "resolving " + url_.host + ": " + ::gai_strerror(e);
    return -1;
  }
  const auto deadline = AmqpClock::now() + o_.connect_timeout;
  int fd = -1;
  for (addrinfo* a = list; a != nullptr && fd < 0 && !s_->stopping.load(); a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    // Bytes the broker does not acknowledge (an ack written to a peer
    // that vanished) end the connection after this long, instead of a
    // write waiting forever.
    unsigned user_timeout =
        static_cast<unsigned>(o_.heartbeat.count() > 0 ? o_.heartbeat.count() * 2000 : 30'000);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      while (err == EINPROGRESS) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - AmqpClock::now());
        if (left.count() <= 0 || s_->stopping.load()) {
          err = ETIMEDOUT;
          break;
        }
        pollfd p[2] = {{fd, POLLOUT, 0}, {s_->wake_fd, POLLIN, 0}};
        if (::poll(p, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) {
          err = errno;
          break;
        }
        if (p[1].revents != 0) s_->drain_wake();
        if (p[0].revents != 0) {
          socklen_t len = sizeof err;
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    if (err != 0) {
      why = "TCP connect: " + (err == ETIMEDOUT ? "no answer within " + seconds_text(o_.connect_timeout)
                                                : std::string(std::strerror(err)));
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(list);
  return fd;
}

bool Worker::connect(std::string& why) {
  conn_ = amqp_new_connection();
  if (conn_ == nullptr) {
    why = "out of memory";
    return false;
  }
  amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
  if (socket == nullptr) {
    why = "out of memory";
    return false;
  }
  const int fd = open_socket(why);
  if (fd < 0) return false;
  amqp_tcp_socket_set_sockfd(socket, fd);  // closed by amqp_destroy_connection from now on
  alive_ = true;
  timeval connect_tv = to_timeval(o_.connect_timeout), rpc_tv = to_timeval(o_.rpc_timeout);
  amqp_set_handshake_timeout(conn_, &connect_tv);
  amqp_set_rpc_timeout(conn_, &rpc_tv);

  // connection_name shows in the management UI; consumer_cancel_notify
  // makes the broker say when our consumer is cancelled (its queue
  // deleted) instead of going quiet.
  const std::string name = "windlass " + queue_;
  amqp_table_entry_t capability{};
  capability.key = amqp_cstring_bytes("consumer_cancel_notify");
  capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capability.value.value.boolean = 1;
  amqp_table_entry_t props[2]{};
  props[0].key = amqp_cstring_bytes("connection_name");
  props[0].value.kind = AMQP_FIELD_KIND_UTF8;
  props[0].value.value.bytes = bytes(name);
  props[1].key = amqp_cstring_bytes("capabilities");
  props[1].value.kind = AMQP_FIELD_KIND_TABLE;
  props[1].value.value.table = amqp_table_t{1, &capability};
  amqp_table_t properties{2, props};
  errno = 0;
  if (why = reply_problem(amqp_login_with_properties(
                              conn_, url_.vhost.c_str(), AMQP_DEFAULT_MAX_CHANNELS, AMQP_DEFAULT_FRAME_SIZE,
                              static_cast<int>(o_.heartbeat.count()), &properties, AMQP_SASL_METHOD_PLAIN,
                              url_.user.c_str(), url_.password.c_str()),
                          "login");
      !why.empty()) {
    return false;
  }
  amqp_channel_open(conn_, kChannel);
  if (why = reply_problem(amqp_get_rpc_reply(conn_), "opening a channel"); !why.empty()) return false;
  channel_open_ = true;
  amqp_exchange_declare(conn_, kChannel, bytes(o_.exchange), bytes(o_.exchange_type), 0, o_.durable, 0, 0,
                        amqp_empty_table);
  if (why = reply_problem(amqp_get_rpc_reply(conn_), "declaring the exchange"); !why.empty()) return false;
  amqp_queue_declare(conn_, kChannel, bytes(queue_), 0, o_.durable, 0, 0, amqp_empty_table);
  if (why = reply_problem(amqp_get_rpc_reply(conn_), "declaring the queue"); !why.empty()) return false;
  for (const auto& key : o_.binding_keys) {
    amqp_queue_bind(conn_, kChannel, bytes(queue_), bytes(o_.exchange), bytes(key), amqp_empty_table);
    if (why = reply_problem(amqp_get_rpc_reply(conn_), "binding the queue"); !why.empty()) return false;
  }
  amqp_basic_qos(conn_, kChannel, 0, o_.prefetch, 0);
  if (why = reply_problem(amqp_get_rpc_reply(conn_), "setting the prefetch"); !why.empty()) return false;
  amqp_basic_consume(conn_, kChannel, bytes(queue_), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  if (why = reply_problem(amqp_get_rpc_reply(conn_), "starting the consumer"); !why.empty()) return false;
  amqp_maybe_release_buffers(conn_);

  ++generation_;
  {
    std::lock_guard lock(s_->mu);
    if (!s_->stopping.load()) s_->live_generation = generation_;
  }
  ledger_.connected(AmqpClock::now());
  assembling_ = false;
  return true;
}

std::string Worker::serve() {
  const int fd = amqp_get_sockfd(conn_);
  for (;;) {
    if (s_->stopping.load()) return {};
    if (std::string why = drain_verdicts(); !why.empty()) return why;
    if (ledger_.unconfirmed() >= confirm_batch_) {
      if (std::string why = confirm(); !why.empty()) return why;
    }
    int frames = 0;
    for (; frames < kFramesPerTurn; ++frames) {
      amqp_frame_t frame;
      timeval zero{0, 0};
      errno = 0;
      int st = amqp_simple_wait_frame_noblock(conn_, &frame, &zero);
      if (st == AMQP_STATUS_TIMEOUT) break;
      if (st != AMQP_STATUS_OK) return lost(st, "reading");
      std::string why = on_frame(frame);
      amqp_maybe_release_buffers_on_channel(conn_, frame.channel);
      if (!why.empty()) return why;
    }
    if (frames == kFramesPerTurn || amqp_frames_enqueued(conn_) || amqp_data_in_buffer(conn_)) continue;
    // Nothing more to read now. Confirm the last acks while it is quiet,
    // so that a connection lost later leaves few candidates behind.
    if (ledger_.unconfirmed() > 0 && !assembling_ && s_->in_flight.load() == 0) {
      if (std::string why = confirm(); !why.empty()) return why;
      continue;
    }
    ledger_.expire(AmqpClock::now());
    pollfd p[2] = {{fd, POLLIN, 0}, {s_->wake_fd, POLLIN, 0}};
    if (::poll(p, 2, poll_ms_) < 0 && errno != EINTR) {
      alive_ = false;
      return std::string("poll: ") + std::strerror(errno);
    }
    if (p[1].revents != 0) s_->drain_wake();
    // The socket's data, its end or its error is found by the next read.
  }
}

std::string Worker::on_frame(const amqp_frame_t& f) {
  if (f.frame_type == AMQP_FRAME_METHOD) {
    switch (f.payload.method.id) {
      case AMQP_BASIC_DELIVER_METHOD: {
        if (assembling_) return "protocol error: a delivery began before the previous one was complete";
        const auto* m = static_cast<const amqp_basic_deliver_t*>(f.payload.method.decoded);
        assembling_ = want_header_ = true;
        oversize_ = false;
        redelivered_ = m->redelivered != 0;
        tag_ = m->delivery_tag;
        routing_key_.assign(view(m->routing_key));
        body_.clear();
        message_id_.clear();
        timestamp_ = body_size_ = received_ = 0;
        return {};
      }
      case AMQP_CONNECTION_CLOSE_METHOD:
      case AMQP_CHANNEL_CLOSE_METHOD: return broker_closed(f.payload.method);
      case AMQP_BASIC_CANCEL_METHOD:
        return "the broker cancelled the consumer (was the queue " + quoted(queue_) + " deleted?)";
      default: return {};  // nothing else is expected on a consuming channel
    }
  }
  if (f.frame_type == AMQP_FRAME_HEADER) {
    if (!assembling_ || !want_header_) return "protocol error: a content header without a delivery";
    want_header_ = false;
    body_size_ = f.payload.properties.body_size;
    const auto* p = static_cast<const amqp_basic_properties_t*>(f.payload.properties.decoded);
    if (p != nullptr && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0)
      message_id_.assign(view(p->message_id));
    if (p != nullptr && (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0) timestamp_ = p->timestamp;
    // Checked before anything is gathered: the body's frames are then
    // counted and dropped.
    oversize_ = body_size_ > o_.max_message_size;
    if (!oversize_) body_.reserve(static_cast<size_t>(body_size_));
    return body_size_ == 0 ? complete_delivery() : std::string();
  }
  if (f.frame_type == AMQP_FRAME_BODY) {
    if (!assembling_ || want_header_) return "protocol error: a body frame without a delivery";
    std::string_view part = view(f.payload.body_fragment);
    received_ += part.size();
    if (received_ > body_size_) return "protocol error: a body longer than its header said";
    if (!oversize_) body_.append(part);
    return received_ == body_size_ ? complete_delivery() : std::string();
  }
  return {};
}

std::string Worker::complete_delivery() {
  assembling_ = false;
  if (oversize_) {
    s_->rejected.fetch_add(1);
    log_at(
        LogLevel::warn,
        "amqp: rejected a message of {} bytes with routing key {}: larger than max_message_size ({} bytes)",
        body_size_, quoted(routing_key_), o_.max_message_size);
    if (int st = amqp_basic_reject(conn_, kChannel, tag_, 0); st != AMQP_STATUS_OK)
      return lost(st, "rejecting");
    return {};
  }
  const AmqpFingerprint fp = detail::amqp_fingerprint(routing_key_, body_, message_id_, timestamp_);
  if (ledger_.take_duplicate(fp, redelivered_, AmqpClock::now())) {
    // Handed over before the last connection was lost, its ack lost with
    // it. Acknowledged again, and remembered again in case this ack is
    // lost too.
    s_->duplicates.fetch_add(1);
    log_at(LogLevel::debug,
           "amqp: acknowledged a redelivered message with routing key {}: already handed over",
           quoted(routing_key_));
    ledger_.acked(fp);
    if (int st = amqp_basic_ack(conn_, kChannel, tag_, 0); st != AMQP_STATUS_OK)
      return lost(st, "acknowledging");
    return {};
  }
  s_->in_flight.fetch_add(1);
  loop_.post([s = s_, d = Delivery{generation_, tag_, fp, std::move(routing_key_), std::move(body_)}] {
    s->hand_over(d);
  });
  routing_key_.clear();
  body_.clear();
  return {};
}

std::string Worker::settle(const Verdict& v) {
  // A verdict later than the wait in finish(), which reset the count.
  if (v.generation == generation_) s_->in_flight.fetch_sub(1);
  (v.taken ? s_->delivered : s_->rejected).fetch_add(1);
  if (v.generation != generation_ || !alive_) {
    // Its connection is gone: the broker requeued it, and will deliver it
    // again, flagged redelivered.
    if (v.taken) ledger_.handed_over_unacked(v.fingerprint);
    return {};
  }
  if (v.taken) {
    ledger_.acked(v.fingerprint);
    if (int st = amqp_basic_ack(conn_, kChannel, v.tag, 0); st != AMQP_STATUS_OK)
      return lost(st, "acknowledging");
  } else if (int st = amqp_basic_reject(conn_, kChannel, v.tag, 0); st != AMQP_STATUS_OK) {
    return lost(st, "rejecting");
  }
  return {};
}

std::string Worker::drain_verdicts() {
  spare_.clear();
  {
    std::lock_guard lock(s_->mu);
    spare_.swap(s_->verdicts);
  }
  std::string why;
  for (const Verdict& v : spare_) {
    std::string w = settle(v);
    if (why.empty()) why = std::move(w);  // after a failed write, the rest count as handed over, unacked
  }
  return why;
}

// basic.qos again, with the same prefetch: the broker handles a channel's
// methods in order, so its reply means every ack written before it was
// processed, and those messages will not come back.
std::string Worker::confirm() {
  const size_t n = ledger_.unconfirmed();
  amqp_basic_qos(conn_, kChannel, 0, o_.prefetch, 0);
  if (std::string why = reply_problem(amqp_get_rpc_reply(conn_), "confirming acks"); !why.empty()) return why;
  ledger_.confirmed(n);
  return {};
}

void Worker::finish(bool stopping) {
  // From here no delivery of this connection is handed over; wait for a
  // handler that is running now, so that every delivery handed over has
  // its verdict in the vector.
  {
    std::unique_lock lock(s_->mu);
    s_->live_generation = 0;
    if (!s_->idle.wait_for(lock, kHandlerWait, [&] { return s_->running == 0; })) {
      log_at(LogLevel::error, "amqp: a handler has been running for {}; not waiting for it",
             seconds_text(kHandlerWait));
    }
  }
  // When stopping, the connection is still up: what the handler took is
  // acknowledged before the channel closes. Otherwise it counts as handed
  // over and not acknowledged.
  if (std::string why = drain_verdicts(); !why.empty() && stopping) {
    log_at(LogLevel::warn, "amqp: while stopping: {}", why);
  }
  // Deliveries posted but never handed over will not send a verdict.
  s_->in_flight.store(0);
  if (stopping && alive_ && channel_open_) {
    // channel.close is synchronous: its reply means every ack before it was processed.
    if (std::string why =
            reply_problem(amqp_channel_close(conn_, kChannel, AMQP_REPLY_SUCCESS), "closing the channel");
        !why.empty()) {
      log_at(LogLevel::warn, "amqp: while stopping: {}", why);
    }
    channel_open_ = false;
  }
  if (!stopping) ledger_.connection_lost();
  close_connection();
}

void Worker::close_connection() {
  if (conn_ == nullptr) return;
  if (alive_) {
    // Best effort, bounded by the RPC timeout: a clean close spares the
    // broker's log a "client unexpectedly closed TCP connection".
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
  alive_ = channel_open_ = false;
}

}  // namespace

struct AmqpInput::Impl {
  Loop& loop;
  AmqpOptions options;
  AmqpUrl url;
  std::string url_text;
  std::string queue;
  std::shared_ptr<AmqpShared> shared;
  std::unique_ptr<Worker> worker;
  std::thread thread;
};

AmqpInput::AmqpInput(Loop& loop, AmqpOptions options, Handler handler) {
  if (std::string why = validate(options); !why.empty()) throw std::invalid_argument("amqp: " + why);
  if (!handler) throw std::invalid_argument("amqp: no handler");
  impl_ = std::make_unique<Impl>(Impl{loop, std::move(options), {}, {}, {}, nullptr, nullptr, {}});
  Impl& m = *impl_;
  parse_amqp_url(m.options.url, m.url);
  m.url_text = m.url.redacted();
  m.queue = m.options.queue.empty() ? "windlass." + m.options.node_id : m.options.queue;
  m.shared = std::make_shared<AmqpShared>(std::move(handler));
  m.shared->since_ms.store(unix_ms_now());
  m.worker = std::make_unique<Worker>(m.loop, m.options, m.url, m.url_text, m.queue, m.shared);
}

AmqpInput::~AmqpInput() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void AmqpInput::start() {
  if (impl_->thread.joinable() || impl_->shared->stopping.load()) {
    throw std::logic_error("amqp: start() once, before stop()");
  }
  impl_->thread = std::thread([w = impl_->worker.get()] { w->run(); });
}

void AmqpInput::stop() {
  AmqpShared& s = *impl_->shared;
  s.stopping.store(true);
  {
    std::lock_guard lock(s.mu);
    s.live_generation = 0;
  }
  s.wake();
}

AmqpStats AmqpInput::stats() const {
  const AmqpShared& s = *impl_->shared;
  AmqpStats out;
  out.connected = s.connected.load();
  out.since = std::chrono::system_clock::time_point(milliseconds(s.since_ms.load()));
  out.delivered = s.delivered.load();
  out.rejected = s.rejected.load();
  out.duplicates = s.duplicates.load();
  out.reconnects = s.reconnects.load();
  out.connect_failures = s.connect_failures.load();
  out.in_flight = s.in_flight.load();
  return out;
}

const std::string& AmqpInput::queue() const noexcept {
  return impl_->queue;
}
const std::string& AmqpInput::url() const noexcept {
  return impl_->url_text;
}

}  // namespace windlass
