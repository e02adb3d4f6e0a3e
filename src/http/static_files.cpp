// Plain HTTP building blocks: reason phrases, text responses, and the
// static file handler.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "log.hpp"
#include "windlass/http.hpp"

namespace windlass {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

Response Response::text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.header("Content-Type", "text/plain; charset=utf-8");
  return r;
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.header("Content-Type", "application/json");
  return r;
}

namespace {

std::string_view content_type_for(std::string_view path) {
  struct Entry {
    std::string_view ext, type;
  };
  static constexpr Entry kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".jpg", "image/jpeg"}, {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
  };
  for (auto& e : kTypes) {
    if (path.ends_with(e.ext)) return e.type;
  }
  return "application/octet-stream";
}

// Decodes and normalises a request path into a relative file path, or
// returns false: the checks happen on the decoded form, so "%2e%2e" is as
// dead as "..".
bool safe_relative_path(std::string_view raw, std::string& out) {
  auto decoded = percent_decode(raw);
  if (!decoded || decoded->empty() || (*decoded)[0] != '/') return false;
  out.clear();
  size_t i = 0;
  const std::string& p = *decoded;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string_view seg(p.data() + i, j - i);
    i = j + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == ".." || seg.front() == '.') return false;  // no parent, no hidden files
    for (char c : seg) {
      if (c == '\0' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
    }
    if (!out.empty()) out += '/';
    out += seg;
  }
  return true;
}

}  // namespace

HttpHandler static_files(std::string root) {
  char resolved[PATH_MAX];
  if (::realpath(root.c_str(), resolved) == nullptr) {
    throw std::runtime_error("static_files: cannot resolve " + root);
  }
  std::string base = resolved;
  return [base](const Request& req, Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res = Response::text(405, "method not allowed\n");
      res.header("Allow", "GET, HEAD");
      return;
    }
    std::string rel;
    if (!safe_relative_path(req.path, rel)) {
      res = Response::text(404, "not found\n");
      return;
    }
    std::string full = base + "/" + rel;
    struct stat st{};
    if (::stat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) full += "/index.html";
    // Symlinks are followed only when they stay inside the root.
    char real[PATH_MAX];
    if (::realpath(full.c_str(), real) == nullptr ||
        std::string_view(real).substr(0, base.size() + 1) != base + "/") {
      res = Response::text(404, "not found\n");
      return;
    }
    int fd = ::open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      if (fd >= 0) ::close(fd);
      res = Response::text(404, "not found\n");
      return;
    }
    res.status = 200;
    res.body.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < res.body.size()) {
      ssize_t n = ::read(fd, res.body.data() + got, res.body.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    res.body.resize(got);
    res.header("Content-Type", std::string(content_type_for(real)));
    res.header("X-Content-Type-Options", "nosniff");
    res.header("Cache-Control", "no-cache");
  };
}

}  // namespace windlass
