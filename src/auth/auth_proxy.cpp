// AuthProxy (include/windlass/auth.hpp): asks the web application whether
// a handshake may proceed.
//
// One handshake, on its loop thread:
//   1. The forwarded headers are copied out of the request (its views die
//      when the hook returns) and hashed into the cache key.
//   2. A cached answer decides at once, inside the hook: no deferral.
//   3. Otherwise the handshake defers, keeping a RequestCopy, and joins
//      the check already in flight for the same key — on any loop — or
//      starts one on this loop's HttpClient.
//   4. The answer (on the loop that asked) is cached, and every waiter is
//      answered through its PendingUpgrade: refused, or resumed on its
//      own loop, where the callback and the wrapped component's on_upgrade
//      run with the copied request.
// The cache and the in-flight table are one per AuthProxy under one
// mutex: a handshake takes it once (a hit) or twice (a miss), which is
// nothing next to the HTTP request a miss costs.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "auth/answer_cache.hpp"
#include "auth/claims.hpp"
#include "auth/log_text.hpp"
#include "log.hpp"
#include "proto/http1_parser.hpp"
#include "windlass/app.hpp"
#include "windlass/auth.hpp"

namespace windlass {

using detail::CacheKey;
using detail::CacheKeyHash;

const char* to_string(AuthProxyRefusal r) noexcept {
  switch (r) {
    case AuthProxyRefusal::no_credentials: return "no_credentials";
    case AuthProxyRefusal::unauthorized: return "unauthorized";
    case AuthProxyRefusal::forbidden: return "forbidden";
    case AuthProxyRefusal::bad_status: return "bad_status";
    case AuthProxyRefusal::bad_answer: return "bad_answer";
    case AuthProxyRefusal::unavailable: return "unavailable";
    case AuthProxyRefusal::timeout: return "timeout";
  }
  return "?";
}

const char* describe(AuthProxyRefusal r) noexcept {
  switch (r) {
    case AuthProxyRefusal::no_credentials: return "authentication required";
    case AuthProxyRefusal::unauthorized: return "not authenticated";
    case AuthProxyRefusal::forbidden: return "forbidden";
    case AuthProxyRefusal::bad_status:
    case AuthProxyRefusal::bad_answer: return "authentication service error";
    case AuthProxyRefusal::unavailable: return "authentication service unavailable";
    case AuthProxyRefusal::timeout: return "authentication service timed out";
  }
  return "?";
}

int http_status_for(AuthProxyRefusal r) noexcept {
  switch (r) {
    case AuthProxyRefusal::no_credentials:
    case AuthProxyRefusal::unauthorized: return 401;
    case AuthProxyRefusal::forbidden: return 403;
    case AuthProxyRefusal::bad_status:
    case AuthProxyRefusal::bad_answer:
    case AuthProxyRefusal::unavailable: return 503;
    case AuthProxyRefusal::timeout: return 504;
  }
  return 500;
}

uint64_t AuthProxyStats::refused_total() const noexcept {
  uint64_t n = 0;
  for (uint64_t r : refused) n += r;
  return n;
}

namespace {

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && proto::iequals(s.substr(0, prefix.size()), prefix);
}

// application/json, or any type with a +json suffix (RFC 6839 §3.1).
bool is_json_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  if (proto::iequals(content_type, "application/json")) return true;
  return content_type.size() > 5 && proto::iequals(content_type.substr(content_type.size() - 5), "+json");
}

// What a check sends: the forwarded header lines, in order, and whether a
// credential was among them.
struct Forwarded {
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_credentials = false;
  // For a POST's body.
  std::string path, query, origin, client;
};

Forwarded forwarded(const Request& r, const AuthProxyOptions& o) {
  Forwarded f;
  for (const std::string& name : o.forward_headers) {
    for (const HeaderField& h : r.headers) {
      if (!proto::iequals(h.name, name)) continue;
      f.headers.emplace_back(name, std::string(h.value));
      f.has_credentials = true;
    }
  }
  if (o.forward_client_address && !r.client_address.empty()) {
    f.client = std::string(r.client_address);
    f.headers.emplace_back("X-Forwarded-For", f.client);
  }
  if (o.forward_origin) {
    if (auto origin = r.header("origin")) {
      f.origin = std::string(*origin);
      f.headers.emplace_back("Origin", f.origin);
    }
  }
  if (o.forward_uri) {
    f.path = std::string(r.path);
    f.query = std::string(r.query);
    f.headers.emplace_back("X-Original-URI", std::string(r.target));
  }
  return f;
}

// SHA-256 over every forwarded line, each name and value prefixed by its
// length so that no two different sets of lines hash the same input.
CacheKey cache_key(const Forwarded& f) {
  std::string input;
  auto add = [&input](std::string_view part, bool lower) {
    const auto n = static_cast<uint32_t>(part.size());
    for (int shift = 24; shift >= 0; shift -= 8) input.push_back(static_cast<char>((n >> shift) & 0xff));
    for (char c : part) input.push_back(lower && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  };
  for (const auto& [name, value] : f.headers) {
    add(name, true);
    add(value, false);
  }
  CacheKey key{};
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), key.data(), &len, EVP_sha256(), nullptr);
  return key;
}

}  // namespace

// ------------------------------------------------------------ the shared part

namespace {

// What the web application's answer (or its absence) decides.
struct Decision {
  bool allowed = false;
  AuthProxyRefusal refusal = AuthProxyRefusal::unavailable;
  std::string detail;                             // for the log line
  std::shared_ptr<const AuthProxyAnswer> answer;  // when allowed
};

// A handshake waiting for a check.
struct Waiter {
  PendingUpgrade pending;
  RequestCopy request;
};

}  // namespace

struct AuthProxy::Shared {
  Shared(AuthProxyOptions o, OnAllowed cb, std::shared_ptr<MessageComponent> in)
      : options(std::move(o)),
        on_allowed(std::move(cb)),
        inner(std::move(in)),
        cache(options.cache_entries) {}

  const AuthProxyOptions options;
  const OnAllowed on_allowed;
  const std::shared_ptr<MessageComponent> inner;

  std::mutex mu;
  detail::AnswerCache<Decision> cache;                                        // under mu
  std::unordered_map<CacheKey, std::vector<Waiter>, CacheKeyHash> in_flight;  // under mu

  std::atomic<uint64_t> allowed{0};
  std::array<std::atomic<uint64_t>, kAuthProxyRefusalCount> refused{};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> coalesced{0};

  std::chrono::steady_clock::time_point now() const {
    return options.clock ? options.clock() : std::chrono::steady_clock::now();
  }

  // The handshake may proceed: the callback, then the wrapped component
  // (on the connection's loop thread, inside a hook).
  void admit(Upgrade& up, const AuthProxyAnswer& answer) {
    allowed.fetch_add(1, std::memory_order_relaxed);
    if (on_allowed) on_allowed(up, answer);
    if (!up.answered()) inner->on_upgrade(up);
  }

  void log_refusal(const Request& r, AuthProxyRefusal why, std::string_view detail) {
    refused[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    // The HTTP layer logs the status and describe(why); this line says what exactly.
    if (http_status_for(why) >= 500) {
      detail::log_warn("auth proxy: {} {}: {}", r.client_address, r.path, detail);
    } else {
      detail::log_info("auth proxy: {} {}: {}", r.client_address, r.path, detail);
    }
  }

  void refuse_now(Upgrade& up, AuthProxyRefusal why, std::string_view detail) {
    log_refusal(up.request(), why, detail);
    up.refuse(http_status_for(why), describe(why));
  }

  // Answers one deferred handshake (any thread).
  void answer(std::shared_ptr<Shared> self, Waiter w, const Decision& d) {
    if (d.allowed) {
      w.pending.resume(std::move(w.request),
                       [self = std::move(self), a = d.answer](Upgrade& up) { self->admit(up, *a); });
      return;
    }
    // False when the client left or the deadline passed first: then nobody was refused here.
    if (w.pending.refuse(http_status_for(d.refusal), describe(d.refusal)))
      log_refusal(w.request.get(), d.refusal, d.detail);
  }

  // The check for `key` ended: cache what it decided, answer its waiters.
  void complete(const std::shared_ptr<Shared>& self, const CacheKey& key, Decision d) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(mu);
      auto it = in_flight.find(key);
      if (it != in_flight.end()) {
        waiters = std::move(it->second);
        in_flight.erase(it);
      }
      const bool deny = !d.allowed && (d.refusal == AuthProxyRefusal::unauthorized ||
                                       d.refusal == AuthProxyRefusal::forbidden);
      const auto ttl = d.allowed ? options.allow_ttl : deny ? options.deny_ttl : std::chrono::milliseconds(0);
      if (ttl.count() > 0) {
        Decision cached = d;
        cached.detail += " (cached)";
        cache.put(key, std::move(cached), now() + ttl);
      }
    }
    for (Waiter& w : waiters) answer(self, std::move(w), d);
  }

  Decision decide(const HttpClientResult& res) const {
    Decision d;
    const std::string where = options.method + " " + options.url;
    if (!res.ok()) {
      d.refusal =
          res.error == HttpClientError::timeout ? AuthProxyRefusal::timeout : AuthProxyRefusal::unavailable;
      d.detail = where + ": " + describe(res.error) +
                 (res.error_text.empty() ? "" : " (" + detail::log_text(res.error_text) + ")");
      return d;
    }
    if (res.status == 401 || res.status == 403) {
      d.refusal = res.status == 401 ? AuthProxyRefusal::unauthorized : AuthProxyRefusal::forbidden;
      d.detail = where + " answered " + std::to_string(res.status);
      return d;
    }
    if (res.status < 200 || res.status > 299) {
      d.refusal = AuthProxyRefusal::bad_status;
      d.detail = where + " answered " + std::to_string(res.status) + ", not 2xx, 401 or 403";
      if (auto location = res.header("location")) {
        d.detail +=
            " (Location: " + detail::log_text(*location) + "; a redirect to a login page? answer 401)";
      }
      return d;
    }
    auto answer = std::make_shared<AuthProxyAnswer>();
    answer->status = res.status;
    auto type = res.header("content-type");
    if (type && is_json_type(*type) && !res.body.empty()) {
      auto body = detail::parse_json_object(res.body);
      if (!body) {
        d.refusal = AuthProxyRefusal::bad_answer;
        d.detail = where + " answered " + std::to_string(res.status) + " with a " +
                   detail::log_text(*type, 64) +
                   " body that is not a JSON object: " + detail::log_text(res.body, 100);
        return d;
      }
      if (auto id = body->find("user_id"); id != body->end()) {
        if (id->is_string()) {
          answer->user_id = id->get<std::string>();
        } else if (id->is_number_unsigned()) {
          answer->user_id = std::to_string(id->get<uint64_t>());
        } else if (id->is_number_integer()) {
          answer->user_id = std::to_string(id->get<int64_t>());
        }
      }
      answer->body = detail::make_claims(std::move(*body));
    }
    d.allowed = true;
    d.answer = std::move(answer);
    return d;
  }

  HttpClientRequest make_request(Forwarded f) const {
    HttpClientRequest req;
    req.method = options.method;
    req.url = options.url;
    req.headers = std::move(f.headers);
    for (const auto& h : options.headers) req.headers.push_back(h);
    if (options.method == "POST") {
      nlohmann::json body = nlohmann::json::object();
      if (options.forward_uri) {
        body["path"] = f.path;
        body["query"] = f.query;
      }
      if (options.forward_origin && !f.origin.empty()) body["origin"] = f.origin;
      if (options.forward_client_address && !f.client.empty()) body["client_address"] = f.client;
      req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      req.headers.emplace_back("Content-Type", "application/json");
    }
    req.timeout = options.timeout;
    req.connect_timeout = std::min(req.connect_timeout, options.timeout);
    req.max_response_size = options.max_response_size;
    return req;
  }
};

// ------------------------------------------------------------ the per-loop part

struct AuthProxy::PerLoop {
  PerLoop(Loop& l, std::shared_ptr<Shared> s)
      : loop(l), shared(std::move(s)), client(l, shared->options.client) {}

  // After this loop's last connection: its own waiters are answered
  // already; waiters from other loops on a check that ran here are
  // refused rather than left to their deadline.
  ~PerLoop() {
    for (const CacheKey& key : started) {
      std::vector<Waiter> waiters;
      {
        std::lock_guard lock(shared->mu);
        auto it = shared->in_flight.find(key);
        if (it == shared->in_flight.end()) continue;
        waiters = std::move(it->second);
        shared->in_flight.erase(it);
      }
      for (Waiter& w : waiters) w.pending.refuse(503, "server shutting down", {{"Retry-After", "5"}});
    }
  }

  Loop& loop;
  std::shared_ptr<Shared> shared;
  HttpClient client;
  std::unordered_set<CacheKey, CacheKeyHash> started;  // checks running on `client`
};

// ------------------------------------------------------------ AuthProxy

namespace {
AuthProxyOptions checked(AuthProxyOptions o) {
  if (!starts_with_ci(o.url, "http://") && !starts_with_ci(o.url, "https://")) {
    throw std::invalid_argument("auth proxy: url \"" + o.url + "\" is not http:// or https://");
  }
  if (o.method != "GET" && o.method != "POST") {
    throw std::invalid_argument("auth proxy: method \"" + o.method + "\" is not GET or POST");
  }
  if (o.timeout.count() <= 0) throw std::invalid_argument("auth proxy: timeout must be positive");
  if (o.allow_ttl.count() < 0 || o.deny_ttl.count() < 0)
    throw std::invalid_argument("auth proxy: negative ttl");
  for (const std::string& name : o.forward_headers) {
    if (!is_token(name))
      throw std::invalid_argument("auth proxy: forward_headers: \"" + name + "\" is not a header name");
  }
  for (const auto& [name, value] : o.headers) {
    if (!is_token(name) || value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      throw std::invalid_argument("auth proxy: headers: \"" + name + "\" is not a valid header");
    }
  }
  return o;
}
}  // namespace

AuthProxy::AuthProxy(App& app, std::shared_ptr<MessageComponent> inner, AuthProxyOptions options,
                     OnAllowed on_allowed)
    : ComponentDecorator(std::move(inner)),
      shared_(std::make_shared<Shared>(checked(std::move(options)), std::move(on_allowed), inner_)),
      loops_(app, [shared = shared_](Loop& loop) { return std::make_unique<PerLoop>(loop, shared); }) {}

AuthProxy::~AuthProxy() = default;

void AuthProxy::on_upgrade(Upgrade& up) {
  Shared& s = *shared_;
  const Request& r = up.request();
  Forwarded f = forwarded(r, s.options);
  if (!f.has_credentials && s.options.refuse_without_credentials) {
    std::string names;
    for (const std::string& n : s.options.forward_headers) names += (names.empty() ? "" : ", ") + n;
    return s.refuse_now(up, AuthProxyRefusal::no_credentials,
                        "none of " + names + " in the request: not asked");
  }
  const CacheKey key = cache_key(f);

  // A cached answer decides now, in the hook.
  {
    std::unique_lock lock(s.mu);
    if (const Decision* hit = s.cache.find(key, s.now())) {
      const Decision d = *hit;
      lock.unlock();
      s.cache_hits.fetch_add(1, std::memory_order_relaxed);
      if (d.allowed) return s.admit(up, *d.answer);
      return s.refuse_now(up, d.refusal, d.detail);
    }
  }

  PerLoop& here = loops_.get();
  if (&here.loop != Loop::current()) throw std::logic_error("AuthProxy: used on a route of another App");
  Waiter w{up.defer(), RequestCopy(r)};
  bool start = false;
  {
    std::unique_lock lock(s.mu);
    // Answered meanwhile by another loop's check: no new request.
    if (const Decision* hit = s.cache.find(key, s.now())) {
      const Decision d = *hit;
      lock.unlock();
      s.cache_hits.fetch_add(1, std::memory_order_relaxed);
      return s.answer(shared_, std::move(w), d);
    }
    auto [it, fresh] = s.in_flight.try_emplace(key);
    it->second.push_back(std::move(w));
    start = fresh;
  }
  if (!start) {
    s.coalesced.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  here.started.insert(key);
  s.requests.fetch_add(1, std::memory_order_relaxed);
  here.client.request(s.make_request(std::move(f)),
                      [shared = shared_, loop = &here, key](HttpClientResult res) {
                        loop->started.erase(key);
                        shared->complete(shared, key, shared->decide(res));
                      });
}

AuthProxyStats AuthProxy::stats() const {
  const Shared& s = *shared_;
  AuthProxyStats out;
  out.allowed = s.allowed.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kAuthProxyRefusalCount; ++i)
    out.refused[i] = s.refused[i].load(std::memory_order_relaxed);
  out.requests = s.requests.load(std::memory_order_relaxed);
  out.cache_hits = s.cache_hits.load(std::memory_order_relaxed);
  out.coalesced = s.coalesced.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(shared_->mu);
    out.cache_entries = shared_->cache.size();
  }
  return out;
}

void AuthProxy::clear_cache() {
  std::lock_guard lock(shared_->mu);
  shared_->cache.clear();
}

}  // namespace windlass
