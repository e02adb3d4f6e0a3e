#include "windlass/request.hpp"

#include <cstring>

#include "proto/http1_parser.hpp"

namespace windlass {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const HeaderField& h : headers) {
    if (proto::iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    if (key && *key == name) {
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
    }
  }
  return std::nullopt;
}

std::optional<std::string> Request::cookie(std::string_view name) const {
  // Browsers send one Cookie header (RFC 6265 §5.4); proxies may split it.
  for (const HeaderField& h : headers) {
    if (!proto::iequals(h.name, "cookie")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
  }
  return std::nullopt;
}

RequestCopy::RequestCopy(const Request& r) {
  // One block for every string, in this order; the views are made after
  // the copy, when the block no longer moves.
  size_t total = r.method.size() + r.target.size() + r.path.size() + r.query.size() + r.body.size() +
                 r.remote_address.size() +
                 r.client_address.size();
  for (const HeaderField& h : r.headers) total += h.name.size() + h.value.size();
  for (size_t i = 0; i < r.params.size(); ++i) total += r.params[i].first.size() + r.params[i].second.size();
  bytes_ = std::make_unique<char[]>(total == 0 ? 1 : total);
  char* at = bytes_.get();
  auto keep = [&at](std::string_view s) {
    // An empty view may have no data at all (memcpy from null is undefined).
    if (!s.empty()) std::memcpy(at, s.data(), s.size());
    std::string_view v(at, s.size());
    at += s.size();
    return v;
  };
  request_.method = keep(r.method);
  request_.target = keep(r.target);
  // path and query are parts of target: point into the copy of it.
  if (!r.path.empty() && r.path.data() >= r.target.data() && r.path.data() + r.path.size() <= r.target.data() + r.target.size()) {
    request_.path = request_.target.substr(static_cast<size_t>(r.path.data() - r.target.data()), r.path.size());
  } else {
    request_.path = keep(r.path);
  }
  if (!r.query.empty() && r.query.data() >= r.target.data() &&
      r.query.data() + r.query.size() <= r.target.data() + r.target.size()) {
    request_.query = request_.target.substr(static_cast<size_t>(r.query.data() - r.target.data()), r.query.size());
  } else {
    request_.query = keep(r.query);
  }
  request_.version_minor = r.version_minor;
  headers_.reserve(r.headers.size());
  for (const HeaderField& h : r.headers) {
    std::string_view name = keep(h.name);
    headers_.push_back(HeaderField{name, keep(h.value)});
  }
  request_.headers = headers_;
  request_.body = keep(r.body);
  request_.remote_address = keep(r.remote_address);
  request_.client_address = keep(r.client_address);
  request_.remote_port = r.remote_port;
  for (size_t i = 0; i < r.params.size(); ++i) {
    std::string_view name = keep(r.params[i].first);
    request_.params.add(name, keep(r.params[i].second));
  }
}

}  // namespace windlass
