// Plain HTTP answers: the routes that are not WebSocket endpoints (the
// chat page, static files, health checks), Ratchet's Router with an
// HTTP controller.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/request.hpp"

namespace windlass {

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  static Response text(int status, std::string body);
};

// Called on the loop thread with the whole request (head and body); fills
// the response. An exception becomes a 500 and a log line.
using HttpHandler = std::function<void(const Request&, Response&)>;

// The standard reason phrase of an HTTP status ("Not Found").
std::string_view reason_phrase(int status) noexcept;

// Serves the files under `root` (GET and HEAD). Paths are decoded and
// normalised before they touch the file system: ".." segments, NUL bytes,
// backslashes and encoded slashes are refused with 400/404, and the final
// path must resolve inside `root` (symlinks included), so no request can
// read a file outside it. "/" and directories map to index.html.
HttpHandler static_files(std::string root);

}  // namespace windlass
