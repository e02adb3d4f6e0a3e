// Plain HTTP answers: the routes that are not WebSocket endpoints (the
// chat page, static files, health checks, an HTTP API), Ratchet's Router
// with an HTTP controller.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/request.hpp"

namespace windlass {

class Loop;

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  static Response text(int status, std::string body);
  // application/json; the body is sent as given.
  static Response json(int status, std::string body);
};

// Called on the loop thread with the whole request (head and body); fills
// the response. An exception becomes a 500 and a log line.
using HttpHandler = std::function<void(const Request&, Response&)>;

namespace detail {
struct PendingResponse;
}

// The answer to a request handled asynchronously (AsyncHttpHandler): call
// send() once, from any thread. The connection waits for it (requests that
// follow on the same connection are answered after it, in order) until
// ServerOptions::async_response_timeout, when the client gets 504 and a
// later send() does nothing. Copies refer to the same answer; dropping
// every copy without sending answers 500.
class HttpResponder {
 public:
  HttpResponder() = default;
  explicit HttpResponder(std::shared_ptr<detail::PendingResponse> p) noexcept : p_(std::move(p)) {}

  // True the first time (the answer is on its way), false after that or
  // once the request timed out or its connection closed.
  bool send(Response response) const;
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::shared_ptr<detail::PendingResponse> p_;
};

// Called on the loop thread; the request's views are valid during the call
// only (copy what the answer needs, or use RequestCopy).
using AsyncHttpHandler = std::function<void(const Request&, HttpResponder)>;

// Why a request is refused before it reaches a route or a component.
struct Refusal {
  int status = 403;
  std::string reason;  // the body's text and the log line's reason
  std::vector<std::pair<std::string, std::string>> headers;
};

// A check every request passes before it is routed, plain HTTP and
// WebSocket alike: the place of Ratchet's IpBlackList, which wraps the
// whole HttpServer. Called on the loop thread of the connection (and so
// on several threads at once when the App has several loops).
class RequestFilter {
 public:
  virtual ~RequestFilter() = default;
  // nullopt lets the request through.
  virtual std::optional<Refusal> check(const Request& request) = 0;
};

// The standard reason phrase of an HTTP status ("Not Found").
std::string_view reason_phrase(int status) noexcept;

// Serves the files under `root` (GET and HEAD). Paths are decoded and
// normalised before they touch the file system: ".." segments, NUL bytes,
// backslashes and encoded slashes are refused with 400/404, and the final
// path must resolve inside `root` (symlinks included), so no request can
// read a file outside it. "/" and directories map to index.html. The
// whole request path is looked up under `root`, whatever the route.
HttpHandler static_files(std::string root);

}  // namespace windlass
