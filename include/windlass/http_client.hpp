// An HTTP client that runs on a windlass Loop: libcurl's multi interface,
// driven by the loop's epoll and timers, so outgoing requests (webhooks to
// the web application, the auth proxy's "may this handshake proceed?")
// neither block the loop nor take a thread each.
//
//   windlass::HttpClient client(loop);
//   client.request({.method = "POST", .url = "http://127.0.0.1:8000/hook",
//                   .headers = {{"Content-Type", "application/json"}},
//                   .body = R"({"event":"open"})"},
//                  [](windlass::HttpClientResult r) {
//                    if (!r.ok()) log("webhook: {}: {}", describe(r.error), r.error_text);
//                  });
//
// Contract (docs/http_client.md):
// - One client belongs to one Loop. It is created, used and destroyed on
//   that loop's thread only (checked with assert() in debug builds), and
//   must be destroyed before the loop. It takes no lock and starts no
//   thread of its own.
// - Every request() gets exactly one callback, on the loop thread, never
//   from inside request() or cancel(): a success, an HTTP error status
//   (that is still a success of the transport), or an HttpClientError —
//   unless the client is destroyed first. Destroying the client drops every
//   callback not yet run without calling it; none runs afterwards.
// - At most max_concurrent requests are in flight; up to max_queued more
//   wait in order for a slot. A request past that is refused at once with
//   HttpClientError::queue_full (its callback runs at the end of the loop
//   turn). Memory is bounded by those two numbers times max_response_size.
// - A request's timeout counts from the request() call, time in the queue
//   included, so a caller with a deadline gets its answer by then.
// - Connections to the same host are kept open and reused (HTTP/1.1
//   keep-alive, HTTP/2 over https when the server offers it).
// - Only http:// and https:// URLs; redirects are not followed unless the
//   request asks; TLS peers are verified against the system's CA store (or
//   ca_file); no proxy is used, and the http_proxy / HTTPS_PROXY / NO_PROXY
//   environment variables are ignored, unless the options say otherwise;
//   no cookies are kept; the User-Agent is "windlass/<version>".
#pragma once

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

#include "windlass/loop.hpp"

namespace windlass {

// Why a request produced no HTTP response. An HTTP status (404, 500, ...)
// is not an error here: the result carries it with error == none.
// Only connect_failed, dns, queue_full, invalid_request and a cancel before
// the request started mean the server cannot have seen the request; after
// timeout, connection_lost or too_large it may have acted on it, so a
// retry must be safe to repeat (an idempotency key, as webhooks carry).
enum class HttpClientError : uint8_t {
  none,
  timeout,          // timeout (or connect_timeout) passed, in the queue or on the wire
  connect_failed,   // TCP connect refused or the host unreachable: nothing was sent
  dns,              // the host name (or the proxy's) did not resolve
  tls,              // TLS handshake failed or the peer's certificate did not verify
  too_large,        // the response body passed max_response_size (or its head, 64 KiB)
  connection_lost,  // the connection broke or closed before a complete response
  cancelled,        // cancel() was called
  queue_full,       // max_concurrent in flight and max_queued waiting: refused at once
  invalid_request,  // bad URL, scheme other than http/https, bad method or header, timeout <= 0
  other,            // any other failure; error_text says what
};

// A fixed description ("timed out", "connection refused or failed", ...).
const char* describe(HttpClientError e) noexcept;

struct HttpClientRequest {
  std::string method = "GET";  // any token: GET, HEAD, POST, PUT, PATCH, DELETE, ...
  std::string url{};           // http:// or https:// only
  // Sent as given, in order. Without a Content-Type none is sent (libcurl's
  // default form-urlencoded type is suppressed), and "Expect: 100-continue"
  // is never sent unless given here. Names must be tokens, values may not
  // hold CR, LF or NUL, and Content-Length / Transfer-Encoding are refused:
  // the client frames the body itself.
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};  // sent with Content-Length when non-empty (or the method is POST)
  // From request() to the callback, time queued included. Must be positive.
  std::chrono::milliseconds timeout{10'000};
  // For the TCP (and TLS) connect, when a new connection is needed; never
  // more than what is left of `timeout`.
  std::chrono::milliseconds connect_timeout{3'000};
  // Largest response body kept; a larger one fails with too_large (at once
  // when Content-Length announces it, else as soon as the bytes pass it).
  size_t max_response_size = 1u << 20;
  // 0: a 3xx answer is returned as is. n > 0: follow up to n redirects
  // (http and https targets only).
  unsigned max_redirects = 0;
};

struct HttpClientResult {
  HttpClientError error = HttpClientError::none;
  std::string error_text;  // empty on success; else libcurl's message, or ours
  int status = 0;          // HTTP status of the (last) response; 0 when none arrived
  // The response's header lines in order, names as sent. After followed
  // redirects or a 100 Continue, those of the final response only.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // A response arrived (of any status).
  bool ok() const noexcept { return error == HttpClientError::none; }
  // First header of that name (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
};

// The string members are value-initialized ({}) so that designated
// initializers may leave them out without -Wmissing-field-initializers.
struct HttpClientOptions {
  // Requests in flight at once; the rest wait in the queue. At least 1.
  size_t max_concurrent = 64;
  // Requests waiting for a slot; one more is refused with queue_full.
  size_t max_queued = 1024;
  // Idle connections kept open for reuse (libcurl's connection cache);
  // 0: max_concurrent.
  size_t max_idle_connections = 0;
  // Empty: "windlass/<version>".
  std::string user_agent{};
  // An explicit proxy URL ("http://proxy:3128"); empty: no proxy.
  std::string proxy{};
  // True: use libcurl's default, the http_proxy / https_proxy / all_proxy /
  // no_proxy environment variables (only when `proxy` is empty). Off by
  // default: a server's environment should not silently reroute its calls
  // to the web application.
  bool proxy_from_environment = false;
  // PEM file of trusted CAs for https; empty: the system's store.
  std::string ca_file{};
};

class HttpClient {
 public:
  using RequestId = uint64_t;  // never 0
  using Callback = std::function<void(HttpClientResult)>;

  // Loop thread only.
  explicit HttpClient(Loop& loop, HttpClientOptions options = {});
  // Drops every queued and in-flight request without running its callback,
  // and closes every connection. Loop thread only; may be called from one
  // of this client's callbacks.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts the request (or queues it). `callback` runs exactly once, later,
  // on the loop thread, unless the client is destroyed first.
  RequestId request(HttpClientRequest request, Callback callback);

  // True if the request was queued or in flight: it is stopped at once (its
  // connection closed if it was in the middle of a transfer) and its
  // callback runs with HttpClientError::cancelled at the end of the loop
  // turn. False if it already completed (or its callback is already due):
  // then nothing changes.
  bool cancel(RequestId id);

  size_t in_flight() const noexcept;  // handed to libcurl
  size_t queued() const noexcept;     // waiting for a slot

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace windlass
