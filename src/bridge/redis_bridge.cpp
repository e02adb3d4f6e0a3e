#include "windlass/redis.hpp"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netdb.h>

#include <atomic>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>

#include "bridge/redis_client.hpp"
#include "bridge/redis_history.hpp"
#include "windlass/log.hpp"

namespace windlass::redis {

namespace {

// The envelope of a message between nodes: a tag, the sending process, the
// connection to leave out, the message kind, then the payload as is.
//   "wl1" sender(8, big-endian) except(8, big-endian) kind(1: 't' or 'b') payload
// The sender is a random number drawn when the bridge is made, not the node
// id: two processes given the same node id by mistake must still hear each
// other (their connection ids then collide, which install() warns about).
// A message of a topic that keeps its history in Redis (redis_history.hpp)
// is put together by the append script, which alone knows its offset:
//   "wl1" sender except kind(1: 'h' or 'H') flags(1) id-length(1) id payload
// with flag 1: already delivered on the sending node (it was published
// there while Redis was away), so its echo is dropped there.
constexpr std::string_view kMagic = "wl1";
constexpr size_t kHeader = 3 + 8 + 8 + 1;
constexpr char kDeliveredAtOrigin = 1;

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_be(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

std::string envelope(uint64_t sender, uint64_t except, MessageKind kind, std::string_view payload) {
  std::string out;
  out.reserve(kHeader + payload.size());
  out += kMagic;
  put_be(out, sender, 8);
  put_be(out, except, 8);
  out += kind == MessageKind::binary ? 'b' : 't';
  out += payload;
  return out;
}

// The head of a history message: what the append script puts before the id.
std::string history_head(uint64_t sender, uint64_t except, MessageKind kind, char flags) {
  std::string out;
  out += kMagic;
  put_be(out, sender, 8);
  put_be(out, except, 8);
  out += kind == MessageKind::binary ? 'H' : 'h';
  out += flags;
  return out;
}

void flatten(const redisReply& r, std::vector<std::string>& out) {
  switch (r.type) {
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < r.elements; ++i) flatten(*r.element[i], out);
      break;
    case REDIS_REPLY_INTEGER: out.push_back(std::to_string(r.integer)); break;
    case REDIS_REPLY_NIL: out.emplace_back(); break;
    default: out.emplace_back(reply_string(r));
  }
}

// "host:port" or "host" to a numeric endpoint, resolving a name now.
Endpoint resolve(std::string_view host_port, uint16_t default_port, const std::string& what) {
  std::string host(host_port);
  uint16_t port = default_port;
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    if (close == std::string::npos) throw std::invalid_argument(what + ": unbalanced '[' in \"" + host + "\"");
    std::string rest = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (rest.starts_with(':')) {
      unsigned p = 0;
      if (std::from_chars(rest.data() + 1, rest.data() + rest.size(), p).ec != std::errc() || p == 0 || p > 65535) {
        throw std::invalid_argument(what + ": bad port in \"" + std::string(host_port) + "\"");
      }
      port = static_cast<uint16_t>(p);
    }
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos && host.find(':') == colon) {
    unsigned p = 0;
    if (std::from_chars(host.data() + colon + 1, host.data() + host.size(), p).ec != std::errc() || p == 0 ||
        p > 65535) {
      throw std::invalid_argument(what + ": bad port in \"" + std::string(host_port) + "\"");
    }
    port = static_cast<uint16_t>(p);
    host = host.substr(0, colon);
  }
  if (host.empty()) throw std::invalid_argument(what + ": no host in \"" + std::string(host_port) + "\"");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); e != 0 || res == nullptr) {
    throw std::invalid_argument(what + ": cannot resolve \"" + host + "\": " + ::gai_strerror(e));
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (res->ai_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof buf);
  }
  ::freeaddrinfo(res);
  return Endpoint{buf, port};
}

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      if (std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ec == std::errc()) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

ClientOptions parse_options(const RedisOptions& o) {
  ClientOptions c;
  c.connect_timeout = o.connect_timeout;
  c.reply_timeout = o.reply_timeout;
  c.slots_refresh = o.slots_refresh;
  std::string_view url = o.url;
  const std::string what = "redis url \"" + o.url + "\"";
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("redis-cluster://")) {
    rest = url.substr(16);
    c.cluster = true;
  } else if (!url.empty()) {
    throw std::invalid_argument(what + ": expected redis://host:port or redis-cluster://host:port,...");
  }
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      c.password = percent_decoded(credentials);
    } else {
      c.username = percent_decoded(credentials.substr(0, colon));
      c.password = percent_decoded(credentials.substr(colon + 1));
    }
  }
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      int d = 0;
      if (std::from_chars(db.data(), db.data() + db.size(), d).ec != std::errc() || d < 0 || d > 10000) {
        throw std::invalid_argument(what + ": the database is a number");
      }
      c.database = d;
    }
  }
  std::vector<std::string> hosts;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    hosts.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  for (const auto& s : o.cluster_seeds) hosts.push_back(s);
  if (!o.cluster_seeds.empty() || hosts.size() > 1) c.cluster = true;
  if (hosts.empty()) throw std::invalid_argument(what + ": no host");
  for (const auto& h : hosts) c.seeds.push_back(resolve(h, 6379, what));
  if (c.cluster && c.database != 0) throw std::invalid_argument(what + ": a Redis Cluster has no databases");
  return c;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct RedisBridge::Impl {
  App& app;
  RedisOptions options;
  ClientOptions client_options;
  uint64_t sender = std::random_device{}() * 0x100000000ull + std::random_device{}();
  std::atomic<Loop*> loop{nullptr};  // the bridge's loop, once it runs
  std::unique_ptr<Client> client;  // on `loop`

  // Publishes made before the bridge's loop runs, or while Redis is away.
  // A plain one is PUBLISHed as it is; one of a topic whose history Redis
  // keeps goes through the append script.
  struct Outgoing {
    std::string channel;
    std::string env;  // the envelope; the head only, for a history message
    // A history message:
    std::string key;  // its stream (empty: a plain publish)
    std::string payload;
    MessageKind kind = MessageKind::text;
    const HistoryOptions* history = nullptr;
    uint64_t except = 0;
    bool delivered = false;  // here already
    size_t bytes() const noexcept { return env.size() + payload.size(); }
  };
  std::mutex mu;
  std::deque<Outgoing> outbox;
  size_t outbox_bytes = 0;
  int64_t last_drop_log_ms = 0;
  std::map<std::string, PatternHandler> patterns;  // asked before the loop runs

  std::atomic<bool> connected{false};
  std::atomic<int64_t> split_since{0};
  std::atomic<uint64_t> published{0}, received{0}, own_echoes{0}, dropped{0}, reconnects{0}, malformed{0};
  std::atomic<uint64_t> subscriptions{0};
  std::atomic<uint64_t> history_errors{0};
  std::atomic<int64_t> last_history_log_ms{0};
  bool was_connected = false;  // loop thread

  Impl(App& a, RedisOptions o) : app(a), options(std::move(o)), client_options(parse_options(options)) {}

  std::string channel_of(std::string_view topic) const { return options.prefix + std::string(topic); }

  // Any thread: into the outbox, and a nudge to the bridge's loop.
  void enqueue(Outgoing out) {
    bool first = false;
    {
      std::lock_guard lock(mu);
      if (outbox.size() >= options.outbox_messages || outbox_bytes + out.bytes() > options.outbox_bytes) {
        dropped.fetch_add(1, std::memory_order_relaxed);
        const int64_t now = unix_ms();
        if (now - last_drop_log_ms >= 1000) {
          last_drop_log_ms = now;
          windlass::log(LogLevel::warn, "redis: outbox full (" + std::to_string(outbox.size()) +
                                            " messages): dropping publishes until Redis is back");
        }
        return;
      }
      first = outbox.empty();
      outbox_bytes += out.bytes();
      outbox.push_back(std::move(out));
    }
    if (Loop* l = loop.load(); first && l != nullptr) l->post([this] { drain(); });
  }

  // The bridge's loop: sends what waits, if Redis is there to take it.
  void drain() {
    if (!client || !client->up()) return;
    std::deque<Outgoing> batch;
    {
      std::lock_guard lock(mu);
      batch.swap(outbox);
      outbox_bytes = 0;
    }
    for (Outgoing& out : batch) {
      if (out.key.empty()) {
        client->publish(out.channel, out.env);
      } else {
        append(std::move(out));
      }
      published.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The bridge's loop: EVALSHA of `script`, and EVAL when Redis does not
  // have it yet (NOSCRIPT). The first key routes the command.
  void run_script(const LuaScript& script, std::vector<std::string> keys, std::vector<std::string> args,
                  Link::Callback done, bool eval = false) {
    std::string key = keys.front();
    std::vector<std::string> command = script.call(keys, args, eval);  // before keys and args move below
    client->command(std::move(key), std::move(command),
                    [this, &script, keys = std::move(keys), args = std::move(args), done = std::move(done), eval](
                        const redisReply* r, std::string_view error) mutable {
                      if (!eval && r != nullptr && reply_is_error(*r) && reply_string(*r).starts_with("NOSCRIPT") &&
                          client) {
                        return run_script(script, std::move(keys), std::move(args), std::move(done), true);
                      }
                      done(r, error);
                    });
  }

  // The bridge's loop: a history message through the append script (which
  // publishes it). If Redis does not take it, this node's subscribers get
  // it anyway, without an offset, as while Redis is away.
  void append(Outgoing out) {
    auto args = append_args(out.env, out.payload, out.kind == MessageKind::binary, *out.history, client_options.cluster);
    std::vector<std::string> keys = {out.key, out.channel};
    run_script(append_script(), std::move(keys), std::move(args),
               [this, out = std::move(out)](const redisReply* r, std::string_view error) {
                 if (r != nullptr && !reply_is_error(*r)) return;
                 history_failed("append", r != nullptr ? reply_string(*r) : error);
                 if (out.delivered) return;
                 self->inner().publish(out.channel.substr(options.prefix.size()), Message{out.kind, out.payload},
                                       PublishOptions{.except = out.except, .origin = kRedisOrigin});
               });
  }

  void history_failed(std::string_view what, std::string_view why) {
    history_errors.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = unix_ms();
    if (now - last_history_log_ms >= 1000) {
      last_history_log_ms = now;
      windlass::log(LogLevel::warn, "redis: history " + std::string(what) + " failed: " + std::string(why));
    }
  }

  // The bridge's loop: the history of `topic` after `since`, read once
  // this node is subscribed to it (so nothing falls between the read and
  // the live messages).
  void read_history(std::string topic, std::optional<StreamOffset> since, const HistoryOptions& h,
                    std::function<void(HistoryRead)> done) {
    const std::string channel = channel_of(topic);
    const std::string key = history_key(channel);
    if (!client || !client->up() || key.empty()) {
      if (key.empty()) history_failed("read", "channel \"" + channel + "\" cannot keep one (its '{' '}')");
      return done(HistoryRead{});
    }
    client->when_subscribed(channel, [this, key, since, &h, done = std::move(done)](bool ok) mutable {
      if (!ok || !client) {
        if (!ok) history_failed("read", "the subscription was not confirmed in time");
        return done(HistoryRead{});
      }
      run_read(key, since, h, std::move(done));
    });
  }

  void run_read(const std::string& key, const std::optional<StreamOffset>& since, const HistoryOptions& h,
                std::function<void(HistoryRead)> done) {
    run_script(read_script(), {key}, read_args(since, h),
               [this, done = std::move(done)](const redisReply* r, std::string_view error) {
                 if (r == nullptr || reply_is_error(*r)) {
                   history_failed("read", r != nullptr ? reply_string(*r) : error);
                   return done(HistoryRead{});
                 }
                 std::string why;
                 HistoryRead read = parse_read_reply(*r, why);
                 if (!why.empty()) history_failed("read", why);
                 done(std::move(read));
               });
  }


  void on_message(std::string_view channel, std::string_view payload) {
    if (!channel.starts_with(options.prefix)) return;
    if (payload.size() < kHeader || !payload.starts_with(kMagic)) {
      malformed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const bool own = get_be(payload, 3, 8) == sender;
    const uint64_t except = get_be(payload, 11, 8);
    const char kind_byte = payload[19];
    std::string_view topic = channel.substr(options.prefix.size());
    if (kind_byte == 'h' || kind_byte == 'H') {
      // A history message: every node delivers it from here, the sending
      // one too (unless it did already), with its offset.
      if (payload.size() < kHeader + 2 || payload.size() < kHeader + 2 + static_cast<uint8_t>(payload[21])) {
        malformed.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (own && (payload[20] & kDeliveredAtOrigin) != 0) {
        own_echoes.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      const size_t id_len = static_cast<uint8_t>(payload[21]);
      const std::string_view id = payload.substr(kHeader + 2, id_len);
      received.fetch_add(1, std::memory_order_relaxed);
      self->inner().publish(topic,
                            Message{kind_byte == 'H' ? MessageKind::binary : MessageKind::text,
                                    payload.substr(kHeader + 2 + id_len)},
                            PublishOptions{.except = except, .origin = kRedisOrigin, .offset = id});
      return;
    }
    if (own) {
      own_echoes.fetch_add(1, std::memory_order_relaxed);  // delivered here when it was published
      return;
    }
    const MessageKind kind = kind_byte == 'b' ? MessageKind::binary : MessageKind::text;
    received.fetch_add(1, std::memory_order_relaxed);
    self->inner().publish(topic, Message{kind, payload.substr(kHeader)},
                          PublishOptions{.except = except, .origin = kRedisOrigin});
  }

  // The bridge's loop: subscribed on Redis exactly when the topic has subscribers here.
  void reconcile(const std::string& topic) {
    if (!client) return;
    const std::string channel = channel_of(topic);
    if (self->inner().subscriber_count(topic) > 0) {
      client->subscribe(channel);
    } else {
      client->unsubscribe(channel);
    }
    subscriptions.store(client->subscriptions(), std::memory_order_relaxed);
  }

  void start(Loop& l) {
    loop = &l;
    client = std::make_unique<Client>(l, client_options);
    client->on_message([this](std::string_view c, std::string_view p) { on_message(c, p); });
    client->on_pmessage([this](std::string_view pattern, std::string_view c, std::string_view p) {
      auto it = patterns.find(std::string(pattern));
      if (it != patterns.end() && it->second) it->second(c, p);
    });
    client->on_state([this](bool up, std::string_view why) {
      connected.store(up, std::memory_order_relaxed);
      if (up) {
        split_since.store(0, std::memory_order_relaxed);
        if (was_connected || reconnects.load() > 0) reconnects.fetch_add(1, std::memory_order_relaxed);
        windlass::log(LogLevel::info, "redis: connected (" + std::string(client_options.cluster ? "cluster" : "standalone") +
                                          ", " + std::to_string(client->masters().size()) + " master(s))");
        was_connected = true;
        drain();
      } else {
        split_since.store(unix_ms(), std::memory_order_relaxed);
        windlass::log(LogLevel::warn, "redis: lost (" + std::string(why) +
                                          "): the cluster is split; local delivery goes on, publishes wait in "
                                          "the outbox, reconnecting");
      }
    });
    // What this node has subscribers for already (topics made before the loop ran).
    for (const std::string& t : self->inner().topics()) client->subscribe(channel_of(t));
    for (const auto& [pattern, handler] : patterns) client->psubscribe(pattern);
    client->start();
  }

  void stop() {
    if (client) client->stop();
    client.reset();
    connected.store(false);
    loop.store(nullptr);
  }

  RedisBridge* self = nullptr;
};

std::shared_ptr<RedisBridge> RedisBridge::install(App& app, RedisOptions options) {
  std::shared_ptr<RedisBridge> bridge(new RedisBridge(app, std::move(options)));
  if (app.node_id() == 0) {
    windlass::log(LogLevel::warn,
                  "redis: this node's id is 0: give every node its own (ServerOptions::node_id, [server] node_id), "
                  "or socket ids and exclusions can collide across nodes");
  }
  app.set_broker(bridge);
  app.local_broker()->add_observer(bridge.get());
  // The topics that keep a history keep it in Redis, shared by the nodes.
  app.local_broker()->set_history_source(bridge.get());
  std::weak_ptr<RedisBridge> weak = bridge;
  app.on_loop_start([weak](Loop& loop) {
    if (loop.index() != 0) return;
    if (auto b = weak.lock()) b->impl_->start(loop);
  });
  app.on_loop_stop([weak](Loop& loop) {
    if (loop.index() != 0) return;
    if (auto b = weak.lock()) b->impl_->stop();
  });
  return bridge;
}

RedisBridge::RedisBridge(App& app, RedisOptions options)
    : BrokerDecorator(app.local_broker()), prefix_(options.prefix), impl_(std::make_unique<Impl>(app, std::move(options))) {
  impl_->self = this;
}

RedisBridge::~RedisBridge() {
  inner().remove_observer(this);
}

void RedisBridge::publish(std::string_view topic, const Message& message, const PublishOptions& options) {
  // What came from elsewhere (another node, or an input every node
  // consumes itself) is not carried again.
  const HistoryOptions* history = options.origin == 0 ? inner().history_of(topic) : nullptr;
  std::string channel = impl_->channel_of(topic);
  std::string key = history != nullptr ? history_key(channel) : std::string();
  if (key.empty()) {
    inner().publish(topic, message, options);  // this node's subscribers, at once
    if (options.origin != 0) return;
    Impl::Outgoing out;
    out.channel = std::move(channel);
    out.env = envelope(impl_->sender, options.except, message.kind, message.data);
    impl_->enqueue(std::move(out));
    return;
  }
  // A topic whose history Redis keeps: the offset comes from Redis, so
  // every node (this one too) delivers it when it comes back from there,
  // in the history's order. While Redis is away, this node's subscribers
  // get it at once without an offset, and the others when it is back.
  const bool delivered = !impl_->connected.load(std::memory_order_relaxed);
  if (delivered) inner().publish(topic, message, PublishOptions{.except = options.except});
  impl_->enqueue(Impl::Outgoing{
      .channel = std::move(channel),
      .env = history_head(impl_->sender, options.except, message.kind, delivered ? kDeliveredAtOrigin : '\0'),
      .key = std::move(key),
      .payload = std::string(message.data),
      .kind = message.kind,
      .history = history,
      .except = options.except,
      .delivered = delivered});
}

void RedisBridge::read_history(std::string topic, std::optional<StreamOffset> since, const HistoryOptions& options,
                               std::function<void(HistoryRead)> done) {
  Loop* l = impl_->loop.load();
  if (l == nullptr) return done(HistoryRead{});
  // Posted even from the bridge's loop: the subscription this read waits
  // for was posted there first, by on_topic_occupied.
  l->post([impl = impl_.get(), topic = std::move(topic), since, &options, done = std::move(done)]() mutable {
    impl->read_history(std::move(topic), since, options, std::move(done));
  });
}

void RedisBridge::when_subscribed(std::string_view topic, std::function<void(bool)> done) {
  Loop* l = impl_->loop.load();
  if (l == nullptr) return done(false);
  // Posted even from the bridge's loop: the SUBSCRIBE it waits for was
  // posted there first, by on_topic_occupied.
  l->post([impl = impl_.get(), channel = impl_->channel_of(topic), done = std::move(done)]() mutable {
    if (!impl->client || !impl->client->up()) return done(false);
    impl->client->when_subscribed(channel, std::move(done));
  });
}

void RedisBridge::on_topic_occupied(std::string_view topic) {
  // Called under the local broker's lock: the work goes to the bridge's loop.
  if (Loop* l = impl_->loop.load()) l->post([impl = impl_.get(), t = std::string(topic)] { impl->reconcile(t); });
}

void RedisBridge::on_topic_vacated(std::string_view topic) {
  if (Loop* l = impl_->loop.load()) l->post([impl = impl_.get(), t = std::string(topic)] { impl->reconcile(t); });
}

BridgeStats RedisBridge::stats() const {
  BridgeStats s;
  s.connected = impl_->connected.load();
  s.split_since_unix_ms = impl_->split_since.load();
  s.published = impl_->published.load();
  s.received = impl_->received.load();
  s.own_echoes = impl_->own_echoes.load();
  s.dropped = impl_->dropped.load();
  s.reconnects = impl_->reconnects.load();
  s.subscriptions = impl_->subscriptions.load();
  s.malformed = impl_->malformed.load();
  s.history_errors = impl_->history_errors.load();
  {
    std::lock_guard lock(impl_->mu);
    s.outbox = impl_->outbox.size();
  }
  return s;
}

bool RedisBridge::connected() const noexcept {
  return impl_->connected.load();
}

void RedisBridge::command(std::string key, std::vector<std::string> args, CommandCallback cb) {
  Loop* l = impl_->loop.load();
  if (l == nullptr) {
    if (cb) cb({}, "the bridge is not running");
    return;
  }
  auto run = [impl = impl_.get(), key = std::move(key), args = std::move(args), cb = std::move(cb)]() mutable {
    if (!impl->client) {
      if (cb) cb({}, "the bridge is not running");
      return;
    }
    impl->client->command(std::move(key), std::move(args), [cb](const redisReply* r, std::string_view error) {
      if (!cb) return;
      std::vector<std::string> out;
      if (r == nullptr) return cb(out, error.empty() ? std::string_view("no reply") : error);
      if (reply_is_error(*r)) return cb(out, reply_string(*r));
      flatten(*r, out);
      cb(out, {});
    });
  };
  if (l->in_loop_thread()) {
    run();
  } else {
    l->post(std::move(run));
  }
}

void RedisBridge::psubscribe(std::string pattern, PatternHandler handler) {
  Loop* l = impl_->loop.load();
  if (l == nullptr) {
    impl_->patterns[pattern] = std::move(handler);  // before run(): subscribed when the loop starts
    return;
  }
  l->post([impl = impl_.get(), pattern = std::move(pattern), handler = std::move(handler)]() mutable {
    impl->patterns[pattern] = std::move(handler);
    if (impl->client) impl->client->psubscribe(pattern);
  });
}

}  // namespace windlass::redis
