// HttpServer: reads the request head of each new connection, passes it
// through the request filters, routes it by path, and either answers it as
// plain HTTP (at once or asynchronously) or hands it to the WebSocket
// endpoint of its route (Ratchet's HttpServer + Router). It knows the
// WebSocket layer only through UpgradeTarget.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/access_control.hpp"
#include "http/router.hpp"
#include "http/upgrade_target.hpp"
#include "io/io_server.hpp"
#include "io/slab.hpp"
#include "loop/loop_gate.hpp"
#include "metrics/counter.hpp"
#include "proto/http1_parser.hpp"
#include "windlass/http.hpp"
#include "windlass/stats.hpp"

namespace windlass::detail {

struct HttpOptions {
  const std::function<void(const AccessEvent&)>* on_access = nullptr;  // App's, may be empty
  const IpSet* trusted_proxies = nullptr;  // null when none is configured
  size_t max_head_size = 8192;
  size_t max_headers = 64;
  size_t max_body_size = 1u << 20;
  size_t max_connections = 10000;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds async_response_timeout{10'000};
};

struct HttpRoute {
  HttpHandler handler;             // one of the two is set
  AsyncHttpHandler async_handler;
};

// What every loop's HttpServer routes by: filled before the loops start,
// read-only afterwards (so shared without a lock). A WebSocket route is an
// index into each loop's own endpoints (HttpServer::set_ws_endpoints).
struct Routes {
  RouteTable<size_t> ws;
  RouteTable<HttpRoute> http;
  std::vector<std::shared_ptr<RequestFilter>> filters;
};

// The statuses the server itself answers with, one counter each.
inline constexpr int kRefusalStatuses[] = {400, 401, 403, 404, 405, 408, 413, 426, 429,
                                           431, 500, 501, 503, 504, 505};
inline constexpr size_t kRefusalSlots = std::size(kRefusalStatuses) + 1;  // + "other"
size_t refusal_slot(int status) noexcept;

struct HttpCounters {
  Counter requests;
  Counter refused[kRefusalSlots];
};

class HttpSession;

class HttpServer {
 public:
  HttpServer(HttpOptions options, const Routes& routes, Loop& loop);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // This loop's WebSocket endpoints, indexed as Routes::ws's values.
  void set_ws_endpoints(std::vector<UpgradeTarget*> endpoints) { endpoints_ = std::move(endpoints); }

  // The IoServer's handler factory.
  SocketHandler* make_session(Socket& socket);

  const HttpOptions& options() const noexcept { return options_; }
  const Routes& routes() const noexcept { return routes_; }
  UpgradeTarget* endpoint(size_t index) const noexcept { return endpoints_[index]; }
  HttpCounters& counters() noexcept { return counters_; }
  // The loop's scratch request head: parsed into and used within one call.
  proto::HttpRequestHead& head_scratch() noexcept { return head_; }
  Loop& loop() const noexcept { return loop_; }
  const std::shared_ptr<LoopGate>& gate() const noexcept { return gate_; }
  // Frees `session` at the end of this loop turn.
  void retire(HttpSession* session);

 private:
  void free_retired();

  HttpOptions options_;
  const Routes& routes_;
  Loop& loop_;
  std::shared_ptr<LoopGate> gate_ = std::make_shared<LoopGate>(loop_);  // for answers from other threads
  std::vector<UpgradeTarget*> endpoints_;
  HttpCounters counters_;
  proto::HttpRequestHead head_;
  Slab sessions_;
  std::vector<HttpSession*> retired_;
};

// Calls the App's access-log hook, if any.
inline void emit_access(const std::function<void(const AccessEvent&)>* hook, const AccessEvent& e) {
  if (hook != nullptr && *hook) (*hook)(e);
}

// A complete response head: status line, Date, `extra_headers` (each
// ending in CRLF), Content-Length, and Connection: close when `close`.
std::string response_head(int status, size_t content_length, bool close, std::string_view extra_headers);

// The answer for a plain-text peer on a TLS port (ListenerOptions).
std::string tls_port_plain_text_answer();

}  // namespace windlass::detail
