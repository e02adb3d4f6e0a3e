// Authentication at the upgrade hook: two decorators (decorators.hpp)
// that decide whether a WebSocket handshake may proceed before the 101,
// in the library windlass_auth (which links libjwt and the HTTP client;
// the core windlass library needs neither).
//
// JwtAuth verifies a JSON Web Token (RFC 7519) carried by the upgrade
// request — HS256 with a shared secret or RS256 with a public key — and
// checks its issuer, audience and validity period. Synchronous: no I/O.
//
//   windlass::JwtOptions jwt;
//   jwt.secret = std::getenv("JWT_SECRET");
//   jwt.issuer = "https://app.example";
//   jwt.audience = "chat";
//   app.route("/chat", std::make_shared<windlass::JwtAuth>(
//       chat, jwt, [](windlass::Upgrade& up, const windlass::JwtClaims& c) {
//         up.connection().state<User>().id = c.subject;
//       }));
//
// AuthProxy asks the web application: it forwards the upgrade request's
// Cookie and Authorization headers to a URL of the application, on the
// connection's own loop (windlass::HttpClient), while the handshake waits
// (Upgrade::defer). 2xx lets the handshake through, 401/403 refuse it,
// anything else 503, no answer in time 504. Answers are cached for a few
// seconds, and identical checks in flight at once share one request.
//
//   windlass::AuthProxyOptions proxy;
//   proxy.url = "http://127.0.0.1:8000/ws-auth";
//   app.route("/chat", std::make_shared<windlass::AuthProxy>(
//       app, chat, proxy, [](windlass::Upgrade& up, const windlass::AuthProxyAnswer& a) {
//         up.connection().state<User>().id = a.user_id;
//       }));
//
// Either callback may refuse the handshake (an authorization rule: a
// claim the route requires); otherwise the wrapped component's on_upgrade
// runs next, as with every decorator. docs/authentication.md has the
// options, the refusals and a recipe for PHP and Laravel.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/decorators.hpp"
#include "windlass/http_client.hpp"
#include "windlass/loop_local.hpp"

namespace windlass {

class App;

// A JSON object read by member name: a verified token's payload, or the
// JSON body of the web application's answer. Copies share one immutable
// parsed object; any thread.
class Claims {
 public:
  struct Impl;
  Claims();  // an empty object
  explicit Claims(std::shared_ptr<const Impl> impl) noexcept;

  bool empty() const noexcept;
  bool has(std::string_view name) const;
  // A string member, or nullopt (absent or of another type).
  std::optional<std::string> string(std::string_view name) const;
  // An integer member (a JSON number without fraction that fits), or nullopt.
  std::optional<int64_t> integer(std::string_view name) const;
  std::optional<bool> boolean(std::string_view name) const;
  // Any member as compact JSON text ("\"ada\"", "42", "[\"a\",\"b\"]",
  // "{\"x\":1}"), or nullopt when absent: for claims of the
  // application's own shape, parsed by the application's own JSON library.
  std::optional<std::string> json(std::string_view name) const;
  // The whole object as compact JSON text ("{}" when empty).
  std::string json() const;
  // Member names, in the order of the object's keys (sorted).
  std::vector<std::string> names() const;

 private:
  std::shared_ptr<const Impl> impl_;
};

// ---------------------------------------------------------------- JwtAuth

enum class JwtAlgorithm : uint8_t {
  hs256,  // HMAC-SHA-256 with a shared secret (RFC 7518 §3.2)
  rs256,  // RSASSA-PKCS1-v1_5 with SHA-256 and an RSA public key (RFC 7518 §3.3)
};
const char* to_string(JwtAlgorithm a) noexcept;  // "HS256", "RS256"

// Where the token is read from. JwtOptions::sources are looked at in
// order, and the first that is present is the token: a token found there
// that fails is refused, never passed over for the next source.
struct JwtTokenSource {
  enum class Kind : uint8_t {
    bearer,  // Authorization: Bearer <token> (RFC 6750 §2.1): native clients
    query,   // ?name=<token> (RFC 6750 §2.3): browsers, which cannot set headers on a WebSocket
    cookie,  // Cookie: name=<token>: browsers, same site
  };
  Kind kind = Kind::bearer;
  std::string name{};  // the query parameter or cookie; unused for bearer

  static JwtTokenSource bearer() { return {Kind::bearer, {}}; }
  static JwtTokenSource query(std::string name) { return {Kind::query, std::move(name)}; }
  static JwtTokenSource cookie(std::string name) { return {Kind::cookie, std::move(name)}; }
};

struct JwtOptions {
  JwtAlgorithm algorithm = JwtAlgorithm::hs256;
  // HS256: the shared secret, at least 32 bytes (RFC 7518 §3.2: a key as
  // long as the hash output).
  std::string secret{};
  // RS256: the public key, PEM ("-----BEGIN PUBLIC KEY-----", or a
  // certificate whose key is used), RSA of 2048 bits or more (RFC 7518
  // §3.3); in the string, or in a file read once by the constructor.
  std::string public_key{};
  std::string public_key_file{};
  // Required, both: the token's "iss" must equal `issuer`, and its "aud"
  // (a string, or an array of strings) must hold `audience`, so a token
  // made for another service by the same issuer opens nothing here.
  std::string issuer{};
  std::string audience{};
  // Looked at in this order; see JwtTokenSource.
  std::vector<JwtTokenSource> sources{JwtTokenSource::bearer(), JwtTokenSource::query("access_token")};
  // A token without "exp" is refused unless this is false.
  bool require_exp = true;
  // Clock skew allowed both ways for "exp" and "nbf".
  std::chrono::seconds leeway{30};
  // A longer token is refused as malformed before any decoding.
  size_t max_token_size = 8192;
  // The time "exp" and "nbf" are compared with; empty: the system clock.
  // Called on loop threads: it must be thread-safe.
  std::function<std::chrono::system_clock::time_point()> clock{};
};

// Why a token was refused. Every one is answered 401 with
// `WWW-Authenticate: Bearer` (RFC 6750 §3), but `internal`, 500.
enum class JwtError : uint8_t {
  none,
  no_token,            // no source held a token
  malformed,           // not three base64url parts of JSON objects; over max_token_size; a
                       // "typ" other than JWT, a "crit" header, "exp"/"nbf"/"sub" of the wrong type
  algorithm_mismatch,  // "alg" is not the configured algorithm ("none" never is)
  bad_signature,       // the signature does not verify with the configured key
  no_expiry,           // no "exp" while JwtOptions::require_exp
  expired,             // now >= exp + leeway
  not_yet_valid,       // now + leeway < nbf
  wrong_issuer,        // "iss" absent or not JwtOptions::issuer
  wrong_audience,      // "aud" absent or without JwtOptions::audience
  internal,            // libjwt failed for another reason (out of memory)
};
inline constexpr size_t kJwtErrorCount = static_cast<size_t>(JwtError::internal) + 1;
const char* to_string(JwtError e) noexcept;  // "bad_signature": a metric label
const char* describe(JwtError e) noexcept;   // "bad token signature": the refusal's reason
int http_status_for(JwtError e) noexcept;    // 401, or 500 for internal

struct JwtClaims {
  std::string subject;                // "sub"; empty when absent
  std::string issuer;                 // "iss"
  std::vector<std::string> audience;  // "aud", as a list
  std::string token_id;               // "jti"; empty when absent
  // NumericDates, whole seconds since the epoch (a fraction is dropped).
  std::optional<int64_t> expires_at;  // "exp"
  std::optional<int64_t> not_before;  // "nbf"
  std::optional<int64_t> issued_at;   // "iat" (read, not checked)
  Claims payload;                     // every claim, the application's own too
};

struct JwtResult {
  JwtError error = JwtError::none;
  // What exactly was wrong, for the log line ("exp 1700000000 is 95 s
  // past, leeway 30 s"); never sent to the client.
  std::string detail;
  JwtClaims claims;  // filled when error == none

  bool ok() const noexcept { return error == JwtError::none; }
};

// The token check of JwtAuth, usable alone (a token in a message, a
// Pusher-style auth call). Immutable after construction; verify() is
// thread-safe and does no I/O.
class JwtVerifier {
 public:
  // Throws std::invalid_argument saying what is wrong with the options
  // (a short secret, an unreadable key file, no issuer, ...).
  explicit JwtVerifier(JwtOptions options);
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;
  JwtVerifier& operator=(JwtVerifier&&) noexcept;

  // The token of `request` from the first source that has one, or nullopt.
  std::optional<std::string> find_token(const Request& request) const;
  // Verifies in this order: size and form, the header's "alg" (before any
  // key is used: an HS256 token is never checked with the RS256 public key
  // as its secret, "alg": "none" is never accepted), the signature
  // (libjwt), then exp, nbf, iss and aud. A claim is looked at only once
  // the signature holds.
  JwtResult verify(std::string_view token) const;
  const JwtOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Counts since construction; a snapshot, any thread.
struct JwtAuthStats {
  uint64_t verified = 0;  // tokens that held (the callback or the component may still refuse)
  std::array<uint64_t, kJwtErrorCount> refused{};  // by JwtError; [none] stays 0

  uint64_t refused_total() const noexcept;
  uint64_t refused_for(JwtError e) const noexcept { return refused[static_cast<size_t>(e)]; }
};

// Refuses a handshake without a valid token (401, a log line with the
// detail, a count by reason); on success calls `on_verified` and then the
// wrapped component's on_upgrade, unless the callback answered.
class JwtAuth final : public ComponentDecorator {
 public:
  using OnVerified = std::function<void(Upgrade&, const JwtClaims&)>;

  // Throws std::invalid_argument as JwtVerifier does.
  JwtAuth(std::shared_ptr<MessageComponent> inner, JwtOptions options, OnVerified on_verified = {});
  ~JwtAuth() override;
  void on_upgrade(Upgrade& upgrade) override;

  JwtAuthStats stats() const noexcept;
  const JwtVerifier& verifier() const noexcept { return verifier_; }

 private:
  struct Counters;
  JwtVerifier verifier_;
  OnVerified on_verified_;
  std::unique_ptr<Counters> counters_;
};

// ---------------------------------------------------------------- AuthProxy

struct AuthProxyOptions {
  // The web application's endpoint: http:// or https://. It answers 2xx
  // (let the handshake through), 401 or 403 (refuse with that status).
  std::string url{};
  std::string method = "GET";  // GET or POST (POST: a JSON body, see docs/authentication.md)
  // Copied from the upgrade request when present, every line: the
  // credentials. Their values (and the extras below, when sent) are the
  // cache key.
  std::vector<std::string> forward_headers{"Cookie", "Authorization"};
  bool forward_client_address = true;  // X-Forwarded-For: Request::client_address
  bool forward_origin = true;          // Origin, when the request has one
  bool forward_uri = true;             // X-Original-URI: the request's path and query
  // Sent as given. The default makes frameworks answer 401, not a redirect
  // to a login page; add a shared secret the endpoint checks here.
  std::vector<std::pair<std::string, std::string>> headers{{"Accept", "application/json"}};
  // No forwarded header present: refuse with 401 without asking.
  bool refuse_without_credentials = true;
  // From the handshake to the web application's answer; past it, 504.
  // Keep it under the route's WsOptions::upgrade_timeout (10 s).
  std::chrono::milliseconds timeout{3'000};
  // A larger answer is refused (503): the answer is small.
  size_t max_response_size = 16u << 10;
  // How long answers are reused, by kind; 0: not cached.
  std::chrono::milliseconds allow_ttl{10'000};  // 2xx
  std::chrono::milliseconds deny_ttl{2'000};    // 401, 403
  // Cached answers kept at most (least recently used go first); 0: no cache.
  size_t cache_entries = 10'000;
  // Each loop's client (concurrency, queue, https CA file, proxy).
  HttpClientOptions client{};
  // The cache's clock; empty: steady_clock. Thread-safe.
  std::function<std::chrono::steady_clock::time_point()> clock{};
};

// Why AuthProxy refused a handshake.
enum class AuthProxyRefusal : uint8_t {
  no_credentials,  // 401: none of forward_headers in the request (refuse_without_credentials)
  unauthorized,    // 401: the web application answered 401
  forbidden,       // 403: the web application answered 403
  bad_status,      // 503: it answered another status (a 302 to a login page, a 500, ...)
  bad_answer,      // 503: a 2xx with a JSON Content-Type whose body is not a JSON object
  unavailable,     // 503: no answer (connection refused, reset, DNS, TLS, too large, queue full)
  timeout,         // 504: no answer within AuthProxyOptions::timeout
};
inline constexpr size_t kAuthProxyRefusalCount = static_cast<size_t>(AuthProxyRefusal::timeout) + 1;
const char* to_string(AuthProxyRefusal r) noexcept;  // "bad_status": a metric label
const char* describe(AuthProxyRefusal r) noexcept;   // the refusal's reason
int http_status_for(AuthProxyRefusal r) noexcept;

// A 2xx answer of the web application, given to the callback.
struct AuthProxyAnswer {
  int status = 200;
  // "user_id" of a JSON object body: a string, or an integer as decimal
  // text; empty otherwise.
  std::string user_id;
  // The JSON object body (application/json or +json); empty otherwise.
  Claims body;
};

struct AuthProxyStats {
  uint64_t allowed = 0;                                    // handshakes let through
  std::array<uint64_t, kAuthProxyRefusalCount> refused{};  // by AuthProxyRefusal
  uint64_t requests = 0;                                   // requests sent to the web application
  uint64_t cache_hits = 0;                                 // handshakes answered from the cache
  uint64_t coalesced = 0;                                  // handshakes that waited for another's request
  uint64_t cache_entries = 0;                              // answers cached now

  uint64_t refused_total() const noexcept;
  uint64_t refused_for(AuthProxyRefusal r) const noexcept { return refused[static_cast<size_t>(r)]; }
};

// Asks the web application whether each handshake may proceed (see the
// top of this file). The checks run on the connection's own loop, through
// one HttpClient per loop made by the App's loop-start hooks: construct it
// before app.run() (after, it throws std::logic_error), for an App whose
// routes it then guards. The cache and the table of checks in flight are
// one per AuthProxy, shared by every loop under a mutex touched once or
// twice per handshake.
class AuthProxy final : public ComponentDecorator {
 public:
  using OnAllowed = std::function<void(Upgrade&, const AuthProxyAnswer&)>;

  // Throws std::invalid_argument for bad options (a URL that is not http
  // or https, a method other than GET or POST, a header name that is not
  // a token, a zero timeout).
  AuthProxy(App& app, std::shared_ptr<MessageComponent> inner, AuthProxyOptions options,
            OnAllowed on_allowed = {});
  ~AuthProxy() override;
  void on_upgrade(Upgrade& upgrade) override;

  AuthProxyStats stats() const;
  // Forgets every cached answer (a user logged out; the tests). Any thread.
  void clear_cache();

 private:
  struct Shared;
  struct PerLoop;
  std::shared_ptr<Shared> shared_;
  LoopLocal<PerLoop> loops_;
};

}  // namespace windlass
