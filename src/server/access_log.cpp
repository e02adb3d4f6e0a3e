#include "access_log.hpp"

#include <string>
#include <string_view>

#include "escape.hpp"
#include "logging.hpp"

namespace windlass::server {

namespace {

const char* event_name(AccessEvent::Kind k) {
  switch (k) {
    case AccessEvent::Kind::http: return "http";
    case AccessEvent::Kind::upgrade: return "upgrade";
    case AccessEvent::Kind::refused: return "refused";
    case AccessEvent::Kind::close: return "close";
  }
  return "?";
}

// Milliseconds with three decimals, without floating point or locale.
std::string millis(std::chrono::microseconds d) {
  auto us = static_cast<uint64_t>(d.count() < 0 ? 0 : d.count());
  std::string frac = std::to_string(us % 1000);
  return std::to_string(us / 1000) + "." + std::string(3 - frac.size(), '0') + frac;
}

// Builds either format through one list of fields, so that the two never
// disagree about what a line contains.
class Fields {
 public:
  explicit Fields(LogFormat f) : json_(f == LogFormat::json) {}

  void str(std::string_view key, std::string_view value) {
    begin(key);
    if (json_) {
      out_ += '"';
      append_json_escaped(out_, value);
      out_ += '"';
    } else {
      append_logfmt_value(out_, value);
    }
  }
  void num(std::string_view key, std::string_view digits) {
    begin(key);
    out_ += digits;
  }
  void num(std::string_view key, uint64_t v) { num(key, std::to_string(v)); }

  std::string take() { return std::move(out_); }

 private:
  void begin(std::string_view key) {
    if (json_) {
      if (!out_.empty()) out_ += ',';
      out_ += '"';
      out_ += key;
      out_ += "\":";
    } else {
      out_ += ' ';
      out_ += key;
      out_ += '=';
    }
  }

  bool json_;
  std::string out_;
};

}  // namespace

std::string format_access(const AccessEvent& e, LogFormat format) {
  Fields f(format);
  bool json = format == LogFormat::json;
  if (json) f.str("event", event_name(e.kind));
  bool websocket = e.kind == AccessEvent::Kind::upgrade || e.kind == AccessEvent::Kind::close;
  if (websocket) f.num("id", e.connection_id);
  if (json) {
    f.str("remote", e.remote);
    f.num("remote_port", e.remote_port);
  } else {
    // IPv6 in brackets, so the port stays unambiguous.
    bool v6 = e.remote.find(':') != std::string_view::npos;
    f.str("remote",
          (v6 ? "[" : "") + std::string(e.remote) + (v6 ? "]:" : ":") + std::to_string(e.remote_port));
  }
  f.str("forwarded_for", e.forwarded_for);
  if (e.kind != AccessEvent::Kind::close) f.str("method", e.method);
  f.str("path", e.path);
  if (e.kind == AccessEvent::Kind::close) {
    f.num("code", e.close_code);
    f.str("cause", to_string(e.cause));
  } else {
    f.num("status", static_cast<uint64_t>(e.status < 0 ? 0 : e.status));
  }
  if (e.kind == AccessEvent::Kind::refused || e.kind == AccessEvent::Kind::close) f.str("reason", e.reason);
  f.num("duration_ms", millis(e.duration));
  if (e.kind == AccessEvent::Kind::close) f.num("bytes_in", e.bytes_in);
  if (e.kind == AccessEvent::Kind::close || e.kind == AccessEvent::Kind::http)
    f.num("bytes_out", e.bytes_out);
  std::string fields = f.take();
  return json ? fields : std::string("access ") + event_name(e.kind) + fields;
}

std::function<void(const AccessEvent&)> make_access_hook(LogFormat format) {
  auto logger = access_logger();
  if (!logger) return {};
  return [logger, format](const AccessEvent& e) {
    std::string line = format_access(e, format);
    logger->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
  };
}

}  // namespace windlass::server
