// HttpServer: reads the request head of each new connection, routes it by
// path, and either answers it as plain HTTP or hands it to the WsServer
// (Ratchet's HttpServer + Router).
#pragma once

#include <chrono>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/access_control.hpp"
#include "io/io_server.hpp"
#include "metrics/counter.hpp"
#include "windlass/stats.hpp"
#include "windlass/http.hpp"
#include "ws/ws_server.hpp"

namespace windlass::detail {

struct HttpOptions {
  const std::function<void(const AccessEvent&)>* on_access = nullptr;  // App's, may be empty
  const AccessPolicy* access = nullptr;  // null when no access rule is configured
  size_t max_head_size = 8192;
  size_t max_headers = 64;
  size_t max_body_size = 1u << 20;
  size_t max_connections = 10000;
  std::chrono::milliseconds header_timeout{10'000};
};

// Exact paths first, then the longest matching "prefix/*" pattern.
class Router {
 public:
  void add_ws(std::string path, std::unique_ptr<WsRoute> route);
  void add_http(std::string path, HttpHandler handler);

  WsRoute* find_ws(std::string_view path) const;
  const HttpHandler* find_http(std::string_view path) const;

 private:
  struct HttpEntry {
    std::string path;  // without the trailing "*" for prefixes
    bool prefix;
    HttpHandler handler;
  };
  std::vector<std::pair<std::string, std::unique_ptr<WsRoute>>> ws_;
  std::vector<HttpEntry> http_;
};

// The statuses the server itself answers with, one counter each.
inline constexpr int kRefusalStatuses[] = {400, 403, 404, 405, 408, 413, 426, 429, 431, 500, 501, 503, 505};
inline constexpr size_t kRefusalSlots = std::size(kRefusalStatuses) + 1;  // + "other"
size_t refusal_slot(int status) noexcept;

struct HttpCounters {
  Counter requests;
  Counter refused[kRefusalSlots];
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, Router& router, WsServer& ws)
      : options_(options), router_(router), ws_(ws) {}

  std::shared_ptr<SocketHandler> make_session(Socket& socket);

  const HttpOptions& options() const noexcept { return options_; }
  Router& router() noexcept { return router_; }
  WsServer& ws() noexcept { return ws_; }
  HttpCounters& counters() noexcept { return counters_; }

 private:
  HttpOptions options_;
  Router& router_;
  WsServer& ws_;
  HttpCounters counters_;
};

// Calls the App's access-log hook, if any.
inline void emit_access(const std::function<void(const AccessEvent&)>* hook, const AccessEvent& e) {
  if (hook != nullptr && *hook) (*hook)(e);
}

// Writes a complete error response (text/plain body: the reason) and
// closes the connection after it is flushed.
void write_error_response(Socket& socket, int status, std::string_view reason,
                          std::string_view extra_headers = {});

}  // namespace windlass::detail
