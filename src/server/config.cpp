#include "config.hpp"

#include <toml++/toml.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <fstream>
#include <set>
#include <system_error>

#include "units.hpp"
#include "windlass/amqp.hpp"

namespace windlass::server {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

const char* to_string(ComponentKind kind) noexcept {
  switch (kind) {
    case ComponentKind::chat: return "chat";
    case ComponentKind::echo: return "echo";
    case ComponentKind::static_files: return "static";
  }
  return "?";
}

const char* to_string(AuthKind kind) noexcept {
  switch (kind) {
    case AuthKind::none: return "none";
    case AuthKind::jwt: return "jwt";
    case AuthKind::proxy: return "proxy";
  }
  return "?";
}

namespace {

constexpr uint64_t KiB = 1ull << 10, MiB = 1ull << 20, GiB = 1ull << 30;
constexpr milliseconds kSecond{1000}, kMinute{60'000}, kHour{3'600'000};

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kIoBackends[] = {"auto", "epoll", "io_uring"};
constexpr std::string_view kComponents[] = {"chat", "echo", "static"};
constexpr std::string_view kCompressionModes[] = {"off", "shared", "per-connection"};
constexpr std::string_view kAuthKinds[] = {"jwt", "proxy"};
constexpr std::string_view kJwtAlgorithms[] = {"HS256", "RS256"};
constexpr std::string_view kJwtSourceKinds[] = {"bearer", "query", "cookie"};

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// Edit distance, for "did you mean" on unknown keys and values.
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest candidate, if it is close enough to be the intended one. A
// unit suffix ("ping_interval_ms") is a common habit from other servers:
// the key without it is suggested too.
template <class Range>
std::string suggest(std::string_view word, const Range& candidates) {
  std::string_view best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (std::string_view c : candidates) {
    size_t d = distance(word, c);
    for (std::string_view suffix : {"_ms", "_bytes", "_seconds", "_s"}) {
      if (word.ends_with(suffix) && word.substr(0, word.size() - suffix.size()) == c) d = 0;
    }
    // "warning" for "warn", "max_message" for "max_message_size".
    if (c.size() >= 3 && (word.starts_with(c) || c.starts_with(word))) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = c;
  }
  if (best.empty() || best_d > std::max<size_t>(2, word.size() / 3)) return {};
  return " (did you mean '" + std::string(best) + "'?)";
}

std::string position(const std::string& file, const toml::source_region& where) {
  if (where.begin.line == 0) return file + ": ";
  return file + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column) + ": ";
}

// A syntax check of an endpoint path; empty when it is fine. Prefix
// patterns ("/static/*") are for HTTP routes only: WebSocket routes match
// exactly.
std::string path_problem(std::string_view p, bool allow_prefix) {
  if (p.empty() || p.front() != '/') return "must start with '/'";
  for (size_t i = 0; i < p.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c <= 0x20 || c >= 0x7f) return "must be printable ASCII without spaces (percent-encode the rest)";
    if (c == '?' || c == '#') return "must not contain '?' or '#': routes match the path only";
    if (c == '*') {
      if (!allow_prefix) return "'*' is only for static routes: WebSocket routes match the exact path";
      if (i + 1 != p.size() || i == 0 || p[i - 1] != '/')
        return "'*' may only end a prefix, as in \"/static/*\"";
    }
  }
  return {};
}

// One TOML table being read: every getter marks its key as known, and
// finish() turns whatever is left into an "unknown key" error.
class Section {
 public:
  Section(const toml::table& table, std::string prefix, const std::string& file)
      : table_(table), prefix_(std::move(prefix)), file_(file) {}

  const toml::node* find(std::string_view key) {
    known_.emplace_back(key);
    return table_.get(key);
  }

  [[noreturn]] void fail(const toml::node& node, std::string_view key, const std::string& what) const {
    throw ConfigError(position(file_, node.source()) + prefix_ + std::string(key) + ": " + what);
  }
  [[noreturn]] void fail_here(const std::string& what) const {
    std::string name = prefix_.empty() ? std::string("(top level)") : prefix_.substr(0, prefix_.size() - 1);
    throw ConfigError(position(file_, table_.source()) + name + ": " + what);
  }

  void boolean(std::string_view key, bool& out) {
    if (const toml::node* n = find(key)) {
      if (!n->is_boolean()) fail(*n, key, std::string("expected true or false, got ") + type_name(n->type()));
      out = n->as_boolean()->get();
    }
  }

  void string(std::string_view key, std::string& out) {
    if (const toml::node* n = find(key)) out = string_of(*n, key);
  }

  template <class T>
  void integer(std::string_view key, T& out, int64_t min, int64_t max) {
    if (const toml::node* n = find(key)) {
      if (!n->is_integer()) fail(*n, key, std::string("expected an integer, got ") + type_name(n->type()));
      int64_t v = n->as_integer()->get();
      if (v < min || v > max) {
        fail(*n, key,
             std::to_string(v) + " is out of range (" + std::to_string(min) + " to " + std::to_string(max) +
                 ")");
      }
      out = static_cast<T>(v);
    }
  }

  void size(std::string_view key, size_t& out, uint64_t min, uint64_t max) {
    const toml::node* n = find(key);
    if (n == nullptr) return;
    uint64_t v = 0;
    if (n->is_integer()) {
      int64_t i = n->as_integer()->get();
      if (i < 0) fail(*n, key, "a size cannot be negative");
      v = static_cast<uint64_t>(i);
    } else if (n->is_string()) {
      const std::string& s = n->as_string()->get();
      auto parsed = parse_size(s);
      if (!parsed) {
        fail(*n, key,
             "bad size \"" + s +
                 "\": use a number of bytes or a number with a unit: B, KB, MB, GB, TB (powers of 1000) "
                 "or KiB, MiB, GiB, TiB (powers of 1024), as in \"16MiB\"");
      }
      v = *parsed;
    } else {
      fail(*n, key,
           std::string("expected a size (an integer in bytes or a string like \"16MiB\"), got ") +
               type_name(n->type()));
    }
    if (v < min || v > max) {
      fail(*n, key,
           format_size(v) + " is out of range (" + format_size(min) + " to " + format_size(max) + ")");
    }
    out = static_cast<size_t>(v);
  }

  void duration(std::string_view key, milliseconds& out, milliseconds min, milliseconds max) {
    const toml::node* n = find(key);
    if (n == nullptr) return;
    milliseconds v{0};
    if (n->is_integer()) {
      int64_t i = n->as_integer()->get();
      if (i < 0) fail(*n, key, "a duration cannot be negative");
      v = milliseconds(i);
    } else if (n->is_string()) {
      const std::string& s = n->as_string()->get();
      auto parsed = parse_duration(s);
      if (!parsed) {
        fail(*n, key,
             "bad duration \"" + s +
                 "\": use an integer number of milliseconds or numbers with units ms, s, m, h, "
                 "as in \"30s\", \"500ms\" or \"1m30s\"");
      }
      v = *parsed;
    } else {
      fail(*n, key,
           std::string("expected a duration (an integer in milliseconds or a string like \"30s\"), got ") +
               type_name(n->type()));
    }
    if (v < min || v > max) {
      fail(*n, key,
           format_duration(v) + " is out of range (" + format_duration(min) + " to " + format_duration(max) +
               ")");
    }
    out = v;
  }

  template <class Range>
  void one_of(std::string_view key, std::string& out, const Range& allowed) {
    const toml::node* n = find(key);
    if (n == nullptr) return;
    std::string v = string_of(*n, key);
    if (std::find(std::begin(allowed), std::end(allowed), v) == std::end(allowed)) {
      fail(*n, key, "\"" + v + "\" is not one of " + list(allowed) + suggest(v, allowed));
    }
    out = v;
  }

  void string_list(std::string_view key, std::vector<std::string>& out) {
    const toml::node* n = find(key);
    if (n == nullptr) return;
    const toml::array* a = n->as_array();
    if (a == nullptr) fail(*n, key, std::string("expected an array of strings, got ") + type_name(n->type()));
    out.clear();
    for (const toml::node& item : *a) {
      if (!item.is_string())
        fail(item, key, std::string("expected strings only, got ") + type_name(item.type()));
      out.push_back(item.as_string()->get());
    }
  }

  // For tables with required keys: unknown keys are reported before a
  // missing one, since "pth: unknown key (did you mean 'path'?)" is the
  // real mistake behind "missing 'path'".
  void check_keys(std::initializer_list<std::string_view> all) {
    for (std::string_view k : all) known_.emplace_back(k);
    finish();
  }

  // Every key not asked for is a mistake: say which, where, and what was
  // probably meant.
  void finish() const {
    for (auto&& [k, v] : table_) {
      if (std::find(known_.begin(), known_.end(), k.str()) != known_.end()) continue;
      throw ConfigError(position(file_, k.source()) + prefix_ + std::string(k.str()) + ": unknown key" +
                        suggest(k.str(), known_));
    }
  }

  const std::string& prefix() const { return prefix_; }
  const toml::table& table() const { return table_; }
  const std::string& file() const { return file_; }

 private:
  std::string string_of(const toml::node& n, std::string_view key) const {
    if (!n.is_string()) fail(n, key, std::string("expected a string, got ") + type_name(n.type()));
    return n.as_string()->get();
  }

  template <class Range>
  static std::string list(const Range& r) {
    std::string out;
    for (std::string_view s : r) out += (out.empty() ? "\"" : ", \"") + std::string(s) + "\"";
    return out;
  }

  const toml::table& table_;
  std::string prefix_;
  const std::string& file_;
  std::vector<std::string> known_;
};

void read_ws_options(Section& s, WsOptions& ws) {
  s.size("max_message_size", ws.max_message_size, 1, 4 * GiB);
  s.duration("ping_interval", ws.ping_interval, milliseconds(0), 24 * kHour);
  s.duration("pong_timeout", ws.pong_timeout, milliseconds(10), kHour);
  s.duration("close_timeout", ws.close_timeout, milliseconds(10), 10 * kMinute);

  using Mode = windlass::CompressionOptions::Mode;
  std::string mode;
  s.one_of("compression", mode, kCompressionModes);
  if (mode == "off") ws.compression.mode = Mode::off;
  if (mode == "shared") ws.compression.mode = Mode::shared;
  if (mode == "per-connection") ws.compression.mode = Mode::per_connection;
  s.size("compression_min_size", ws.compression.min_size, 0, 4 * GiB);

  s.integer("rate_limit_messages", ws.rate_limit.messages_per_second, 0, 10'000'000);
  size_t bytes_per_second = ws.rate_limit.bytes_per_second;
  s.size("rate_limit_bytes", bytes_per_second, 0, 4 * GiB);
  ws.rate_limit.bytes_per_second = bytes_per_second;
  // The byte bucket must hold one maximal message, or such a message could
  // never pass: its burst is the larger of one second's worth and that.
  ws.rate_limit.burst_bytes = bytes_per_second == 0 ? 0 : std::max<uint64_t>(bytes_per_second, ws.max_message_size);
}

void read_access(Section& s, windlass::AccessOptions& a) {
  s.string_list("allowed_origins", a.allowed_origins);
  s.boolean("allow_missing_origin", a.allow_missing_origin);
  s.string_list("blocklist", a.blocklist);
  s.string_list("trusted_proxies", a.trusted_proxies);
  s.integer("max_connections_per_ip", a.max_connections_per_ip, 0, 100'000'000);
  s.finish();
}

void read_server(Section& s, ServerOptions& o) {
  s.string("host", o.host);
  if (const toml::node* n = s.table().get("host"); n != nullptr && o.host.empty()) {
    s.fail(*n, "host", "must not be empty (\"0.0.0.0\" or \"::\" listens on every address)");
  }
  s.integer("port", o.port, 0, 65535);
  s.integer("threads", o.threads, 0, 1024);
  std::string io(windlass::to_string(o.io));
  s.one_of("io", io, kIoBackends);
  o.io = *windlass::parse_io_backend(io);
  s.integer("node_id", o.node_id, 0, (1 << 24) - 1);
  s.integer("max_connections", o.max_connections, 1, 10'000'000);
  s.size("max_send_queue", o.max_send_queue, 1 * KiB, 2 * GiB);
  s.size("max_head_size", o.max_head_size, 1 * KiB, 1 * MiB);
  s.integer("max_headers", o.max_headers, 1, 100);  // the head parser's hard ceiling
  s.size("max_body_size", o.max_body_size, 0, 1 * GiB);
  s.duration("header_timeout", o.header_timeout, milliseconds(100), kHour);
  s.duration("shutdown_timeout", o.shutdown_timeout, milliseconds(0), kHour);
  s.duration("drain_delay", o.drain_delay, milliseconds(0), kHour);
  // The sweep is a repeating timer: zero would make it fire once and never again.
  s.duration("sweep_interval", o.sweep_interval, milliseconds(10), kMinute);
  s.finish();
}

void read_log(Section& s, LogConfig& log) {
  s.one_of("level", log.level, kLogLevels);
  std::string format = log.format == LogFormat::json ? "json" : "text";
  s.one_of("format", format, std::array<std::string_view, 2>{"text", "json"});
  log.format = format == "json" ? LogFormat::json : LogFormat::text;
  s.boolean("access", log.access);
  s.string_list("redact_query_params", log.redact_query_params);
  if (const toml::node* n = s.table().get("redact_query_params")) {
    for (const auto& p : log.redact_query_params) {
      if (p.empty() || p.find_first_of("=&?# ") != std::string::npos) {
        s.fail(*n, "redact_query_params", "\"" + p + "\" is not a query parameter name");
      }
    }
  }
  s.finish();
}

void read_metrics(Section& s, MetricsConfig& m) {
  s.boolean("enabled", m.enabled);
  struct {
    const char* key;
    std::string* value;
    bool may_be_empty;
  } paths[] = {
      {"path", &m.path, false}, {"health_path", &m.health_path, true}, {"ready_path", &m.ready_path, true}};
  for (auto& p : paths) {
    s.string(p.key, *p.value);
    if (const toml::node* n = s.table().get(p.key)) {
      if (p.value->empty() && p.may_be_empty) continue;
      if (std::string why = path_problem(*p.value, false); !why.empty()) s.fail(*n, p.key, why);
    }
  }
  s.finish();
}

// A file the server must read at startup: resolved against the config
// file's directory and checked now, so --check-config catches a typo in
// the path rather than the first start.
std::string readable_file(Section& s, std::string_view key, const fs::path& base_dir) {
  std::string value;
  s.string(key, value);
  const toml::node* n = s.table().get(key);
  if (n == nullptr) s.fail_here("missing '" + std::string(key) + "'");
  if (value.empty()) s.fail(*n, key, "must not be empty");
  fs::path p = fs::path(value).is_absolute() ? fs::path(value) : base_dir / value;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    s.fail(*n, key, p.string() + " is not a file" + (ec ? ": " + ec.message() : ""));
  if (::access(p.c_str(), R_OK) != 0)
    s.fail(*n, key, "cannot read " + p.string() + ": " + std::strerror(errno));
  return p.string();
}

void read_tls(Section& s, ServerOptions& o, const fs::path& base_dir) {
  s.check_keys({"certificate", "private_key", "host", "port", "min_version", "plain_listener"});
  o.tls_certificate_file = readable_file(s, "certificate", base_dir);
  o.tls_private_key_file = readable_file(s, "private_key", base_dir);
  s.string("host", o.tls_host);
  o.tls_port = 8443;
  s.integer("port", o.tls_port, 0, 65535);
  std::string min_version = "1.2";
  s.one_of("min_version", min_version, std::array<std::string_view, 2>{"1.2", "1.3"});
  o.tls_min_version_1_3 = min_version == "1.3";
  s.boolean("plain_listener", o.plain_listener);
  s.finish();
}

// A subprotocol is an HTTP token (RFC 6455 §4.1, RFC 9110 §5.6.2).
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void read_route_auth(Section& s, RouteConfig& r, const fs::path& base_dir);

RouteConfig read_route(Section& s, const WsOptions& defaults, const fs::path& base_dir) {
  RouteConfig r;
  r.line = static_cast<int>(s.table().source().begin.line);
  r.ws = defaults;
  s.check_keys({"path", "component", "root", "topic", "max_message_size", "ping_interval", "pong_timeout",
                "close_timeout", "subprotocols", "compression", "compression_min_size", "rate_limit_messages",
                "rate_limit_bytes", "auth", "jwt", "proxy"});

  std::string component;
  s.one_of("component", component, kComponents);
  if (component.empty()) s.fail_here("missing 'component' (one of \"chat\", \"echo\", \"static\")");
  r.component = component == "chat"   ? ComponentKind::chat
                : component == "echo" ? ComponentKind::echo
                                      : ComponentKind::static_files;

  s.string("path", r.path);
  if (const toml::node* n = s.table().get("path")) {
    if (std::string why = path_problem(r.path, !r.is_websocket()); !why.empty()) s.fail(*n, "path", why);
  } else {
    s.fail_here("missing 'path'");
  }

  // Keys that only make sense for some components are refused on the
  // others, so that a misplaced key cannot be silently ignored.
  auto only_for = [&](std::string_view key, bool allowed, const char* which) {
    if (const toml::node* n = s.table().get(key); n != nullptr && !allowed) {
      s.fail(*n, key,
             std::string("applies only to ") + which + " routes, not to component = \"" + component + "\"");
    }
  };
  for (std::string_view key :
       {"max_message_size", "ping_interval", "pong_timeout", "close_timeout", "subprotocols", "compression",
        "compression_min_size", "rate_limit_messages", "rate_limit_bytes", "auth", "jwt", "proxy"}) {
    only_for(key, r.is_websocket(), "WebSocket (chat, echo)");
  }
  only_for("root", r.component == ComponentKind::static_files, "static");
  only_for("topic", r.component == ComponentKind::chat, "chat");

  read_ws_options(s, r.ws);
  s.string_list("subprotocols", r.subprotocols);
  if (const toml::node* n = s.table().get("subprotocols")) {
    std::set<std::string> seen;
    for (const auto& p : r.subprotocols) {
      if (!is_token(p))
        s.fail(*n, "subprotocols", "\"" + p + "\" is not a valid subprotocol name (an HTTP token)");
      if (!seen.insert(p).second) s.fail(*n, "subprotocols", "\"" + p + "\" is listed twice");
    }
  }

  s.string("topic", r.topic);
  if (r.component == ComponentKind::chat && r.topic.empty()) r.topic = r.path;

  read_route_auth(s, r, base_dir);

  std::string root;
  s.string("root", root);
  if (r.component == ComponentKind::static_files) {
    const toml::node* n = s.table().get("root");
    if (n == nullptr) s.fail_here("missing 'root': the directory a static route serves");
    if (root.empty()) s.fail(*n, "root", "must not be empty");
    // Relative to the config file, not to the working directory, so the
    // same file works whoever starts the server from wherever.
    fs::path p = fs::path(root).is_absolute() ? fs::path(root) : base_dir / root;
    std::error_code ec;
    fs::path resolved = fs::canonical(p, ec);
    if (ec) s.fail(*n, "root", "cannot use " + p.string() + ": " + ec.message());
    if (!fs::is_directory(resolved, ec)) s.fail(*n, "root", resolved.string() + " is not a directory");
    r.root = resolved;
  }
  s.finish();
  return r;
}

void read_channels(Section& s, ChannelsConfig& c) {
  channels::HubOptions& o = c.options;
  s.string("path", o.websocket_prefix);
  if (const toml::node* n = s.table().get("path")) {
    if (std::string why = path_problem(o.websocket_prefix, false); !why.empty()) s.fail(*n, "path", why);
    if (o.websocket_prefix == "/") s.fail(*n, "path", "must name a prefix, such as \"/app\"");
  }
  milliseconds activity(o.activity_timeout), pong(o.pong_timeout), skew(o.api_timestamp_skew);
  s.duration("activity_timeout", activity, milliseconds(1000), kHour);
  s.duration("pong_timeout", pong, milliseconds(1000), 10 * kMinute);
  s.duration("api_timestamp_skew", skew, milliseconds(1000), kHour);
  o.activity_timeout = std::chrono::duration_cast<std::chrono::seconds>(activity);
  o.pong_timeout = std::chrono::duration_cast<std::chrono::seconds>(pong);
  o.api_timestamp_skew = std::chrono::duration_cast<std::chrono::seconds>(skew);
  s.size("max_message_size", o.ws.max_message_size, 1 * KiB, 16 * MiB);
  std::string mode = "off";
  s.one_of("compression", mode, kCompressionModes);
  using Mode = windlass::CompressionOptions::Mode;
  o.ws.compression.mode = mode == "shared" ? Mode::shared : mode == "per-connection" ? Mode::per_connection : Mode::off;
  s.duration("webhook_delay", o.webhook_delay, milliseconds(0), kMinute);
  s.integer("webhook_queue", o.webhook_queue, 1, 10'000'000);
  s.integer("webhook_batch", o.webhook_batch, 1, 1000);
  s.integer("webhook_retries", o.webhook_retries, 0, 20);
  s.duration("webhook_timeout", o.webhook_timeout, milliseconds(100), kMinute);
  s.finish();
}

void read_broker_redis(Section& s, RedisConfig& r) {
  s.string("redis_url", r.url);
  if (const toml::node* n = s.table().get("redis_url"); n != nullptr && !r.url.empty() &&
                                                       !r.url.starts_with("redis://") &&
                                                       !r.url.starts_with("redis-cluster://")) {
    s.fail(*n, "redis_url", "\"" + r.url + "\": expected redis://host:port or redis-cluster://host:port,host:port");
  }
  s.string("prefix", r.prefix);
  s.boolean("fail_readiness_when_split", r.fail_readiness_when_split);
  s.boolean("laravel", r.laravel);
  s.string("laravel_prefix", r.laravel_prefix);
  s.string("laravel_app", r.laravel_app);
}

// The secret of an [[app]] or a [route.jwt]: given inline, or named by an
// environment variable, or read from a file (its first line, stripped of
// trailing spaces), so that it can stay out of the config file. `what`
// names it in the message when it is empty; the value is never quoted.
std::string read_secret(Section& s, const fs::path& base_dir, std::string_view what = "the app's secret") {
  const toml::node* inline_n = s.table().get("secret");
  const toml::node* env_n = s.table().get("secret_env");
  const toml::node* file_n = s.table().get("secret_file");
  const int given = (inline_n != nullptr) + (env_n != nullptr) + (file_n != nullptr);
  if (given == 0) s.fail_here("missing 'secret' (or 'secret_env' naming an environment variable, or 'secret_file')");
  if (given > 1) s.fail_here("give one of 'secret', 'secret_env' and 'secret_file'");
  std::string value;
  if (inline_n != nullptr) {
    s.string("secret", value);
  } else if (env_n != nullptr) {
    std::string name;
    s.string("secret_env", name);
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') s.fail(*env_n, "secret_env", "the environment variable " + name + " is not set");
    value = v;
  } else {
    std::string path = readable_file(s, "secret_file", base_dir);
    std::ifstream in(path);
    std::getline(in, value);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
  }
  if (value.empty()) s.fail_here(std::string(what) + " is empty");
  return value;
}

// A table inside a [[route]]: [route.jwt] after it, or jwt = { ... };
// `header` is how the table is written ("route.jwt").
const toml::table* route_sub_table(Section& s, std::string_view key, std::string_view header) {
  const toml::node* n = s.find(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    s.fail(*n, key,
           "expected a table ([" + std::string(header) + "] after its [[route]], or " + std::string(key) +
               " = { ... }), got " + type_name(n->type()));
  }
  return n->as_table();
}

// A query parameter name as JwtTokenSource takes it: what comes between
// '?' or '&' and '='.
bool is_query_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || std::string_view("=&?#+%").find(c) != std::string_view::npos) return false;
  }
  return true;
}

// [route.jwt]: JwtOptions, key for key (but clock, which is for tests).
// Checked here as JwtVerifier's constructor checks them, with the
// position of the key at fault; the key itself is then loaded once by a
// JwtVerifier, so that a PEM that is not an RSA public key of 2048 bits
// or more fails --check-config too. Secrets never appear in a message.
JwtOptions read_jwt(Section& j, const fs::path& base_dir) {
  JwtOptions o;
  j.check_keys({"algorithm", "secret", "secret_env", "secret_file", "public_key", "public_key_file", "issuer",
                "audience", "sources", "require_exp", "leeway", "max_token_size"});
  std::string algorithm = "HS256";
  j.one_of("algorithm", algorithm, kJwtAlgorithms);
  o.algorithm = algorithm == "RS256" ? JwtAlgorithm::rs256 : JwtAlgorithm::hs256;
  const bool hs = o.algorithm == JwtAlgorithm::hs256;
  auto only_for = [&](std::string_view key, bool allowed, const char* which) {
    if (const toml::node* n = j.table().get(key); n != nullptr && !allowed) {
      j.fail(*n, key, std::string("applies only to algorithm = \"") + which + "\", not to \"" + algorithm + "\"");
    }
  };
  for (std::string_view key : {"secret", "secret_env", "secret_file"}) only_for(key, hs, "HS256");
  for (std::string_view key : {"public_key", "public_key_file"}) only_for(key, !hs, "RS256");

  const toml::node* key_node = nullptr;  // where a key the verifier refuses is
  if (hs) {
    o.secret = read_secret(j, base_dir, "the JWT secret");
    for (std::string_view k : {"secret", "secret_env", "secret_file"}) {
      if (const toml::node* n = j.table().get(k)) key_node = n;
    }
    if (o.secret.size() < 32) {
      std::string_view k = j.table().get("secret") ? "secret" : j.table().get("secret_env") ? "secret_env" : "secret_file";
      j.fail(*key_node, k,
             "the HS256 secret has " + std::to_string(o.secret.size()) +
                 " bytes; it must have at least 32 (RFC 7518 §3.2: as long as the hash)");
    }
  } else {
    const toml::node* inline_n = j.table().get("public_key");
    const toml::node* file_n = j.table().get("public_key_file");
    if (inline_n == nullptr && file_n == nullptr) {
      j.fail_here("missing 'public_key_file' (or 'public_key', the PEM itself): RS256 verifies with an RSA public key");
    }
    if (inline_n != nullptr && file_n != nullptr) j.fail_here("give one of 'public_key' and 'public_key_file'");
    if (inline_n != nullptr) {
      j.string("public_key", o.public_key);
      if (o.public_key.empty()) j.fail(*inline_n, "public_key", "must not be empty");
      key_node = inline_n;
    } else {
      o.public_key_file = readable_file(j, "public_key_file", base_dir);
      key_node = file_n;
    }
  }

  for (std::string_view key : {"issuer", "audience"}) {
    std::string& out = key == "issuer" ? o.issuer : o.audience;
    j.string(key, out);
    const toml::node* n = j.table().get(key);
    const char* claim = key == "issuer" ? "iss" : "aud";
    if (n == nullptr) {
      j.fail_here("missing '" + std::string(key) + "': required, the token's \"" + claim + "\" must " +
                  (key == "issuer" ? "equal it" : "hold it"));
    }
    if (out.empty()) j.fail(*n, key, "must not be empty");
  }

  if (const toml::node* n = j.table().get("sources")) {
    std::vector<std::string> names;
    j.string_list("sources", names);
    if (names.empty()) j.fail(*n, "sources", "is empty: no token could be found");
    o.sources.clear();
    std::set<std::string> seen;
    const toml::array& items = *n->as_array();
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& v = names[i];
      n = items.get(i);
      const size_t colon = v.find(':');
      const std::string kind = v.substr(0, colon);
      const std::string name = colon == std::string::npos ? std::string() : v.substr(colon + 1);
      if (std::find(std::begin(kJwtSourceKinds), std::end(kJwtSourceKinds), kind) == std::end(kJwtSourceKinds)) {
        j.fail(*n, "sources",
               "\"" + v + "\" is not \"bearer\", \"query:NAME\" or \"cookie:NAME\"" + suggest(kind, kJwtSourceKinds));
      }
      if (kind == "bearer") {
        if (colon != std::string::npos) j.fail(*n, "sources", "\"" + v + "\": bearer takes no name (Authorization: Bearer)");
        o.sources.push_back(JwtTokenSource::bearer());
      } else if (kind == "query") {
        if (!is_query_name(name)) {
          j.fail(*n, "sources", "\"" + v + "\": expected \"query:NAME\", NAME a query parameter (as \"query:access_token\")");
        }
        o.sources.push_back(JwtTokenSource::query(name));
      } else {
        if (!is_token(name)) {
          j.fail(*n, "sources", "\"" + v + "\": expected \"cookie:NAME\", NAME a cookie name (an HTTP token, as \"cookie:jwt\")");
        }
        o.sources.push_back(JwtTokenSource::cookie(name));
      }
      if (!seen.insert(v).second) j.fail(*n, "sources", "\"" + v + "\" is listed twice");
    }
  }
  j.boolean("require_exp", o.require_exp);
  milliseconds leeway = o.leeway;
  j.duration("leeway", leeway, milliseconds(0), kHour);
  if (leeway.count() % 1000 != 0) {
    j.fail(*j.table().get("leeway"), "leeway", "must be whole seconds (exp and nbf are in seconds)");
  }
  o.leeway = std::chrono::duration_cast<std::chrono::seconds>(leeway);
  j.size("max_token_size", o.max_token_size, 64, 1 * MiB);
  j.finish();

  // What only the key itself can say (a PEM that is not an RSA public key,
  // too short a key): the verifier's message, at the key.
  try {
    JwtVerifier check(o);
  } catch (const std::invalid_argument& e) {
    std::string why = e.what();
    for (std::string_view prefix : {"jwt: ", "public_key: "}) {
      if (why.starts_with(prefix)) why.erase(0, prefix.size());
    }
    const std::string_view k = hs ? "secret" : o.public_key.empty() ? "public_key_file" : "public_key";
    if (key_node != nullptr) j.fail(*key_node, k, why);
    j.fail_here(why);
  }
  return o;
}

// A header value given in the config: no line breaks.
bool is_header_value(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// [route.proxy.client]: HttpClientOptions.
void read_http_client(Section& c, HttpClientOptions& o, const fs::path& base_dir) {
  c.integer("max_concurrent", o.max_concurrent, 1, 10'000);
  c.integer("max_queued", o.max_queued, 0, 10'000'000);
  c.integer("max_idle_connections", o.max_idle_connections, 0, 10'000);
  c.string("user_agent", o.user_agent);
  if (const toml::node* n = c.table().get("user_agent"); n != nullptr && !is_header_value(o.user_agent)) {
    c.fail(*n, "user_agent", "must be one line");
  }
  c.string("proxy", o.proxy);
  if (const toml::node* n = c.table().get("proxy"); n != nullptr && !o.proxy.empty() &&
                                                    o.proxy.find("://") == std::string::npos) {
    c.fail(*n, "proxy", "expected a proxy URL, as \"http://proxy.internal:3128\"");
  }
  c.boolean("proxy_from_environment", o.proxy_from_environment);
  if (c.table().get("ca_file") != nullptr) o.ca_file = readable_file(c, "ca_file", base_dir);
  c.finish();
}

// [route.proxy]: AuthProxyOptions, key for key (but clock, which is for
// tests), checked as AuthProxy's constructor checks them. Header values
// (a shared key the endpoint checks) never appear in a message.
AuthProxyOptions read_proxy(Section& p, const fs::path& base_dir, const WsOptions& ws) {
  AuthProxyOptions o;
  p.check_keys({"url", "method", "forward_headers", "forward_client_address", "forward_origin", "forward_uri",
                "headers", "headers_env", "refuse_without_credentials", "timeout", "max_response_size",
                "allow_ttl", "deny_ttl", "cache_entries", "client"});
  p.string("url", o.url);
  const toml::node* url_n = p.table().get("url");
  if (url_n == nullptr) p.fail_here("missing 'url': the web application's endpoint that answers 2xx, 401 or 403");
  {
    std::string lower = o.url.substr(0, 8);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    const size_t scheme = lower.starts_with("http://") ? 7 : lower.starts_with("https://") ? 8 : 0;
    if (scheme == 0) p.fail(*url_n, "url", "\"" + o.url + "\" is not an http:// or https:// URL");
    if (o.url.size() == scheme || o.url[scheme] == '/') p.fail(*url_n, "url", "\"" + o.url + "\" has no host");
    for (char ch : o.url) {
      const auto u = static_cast<unsigned char>(ch);
      if (u <= 0x20 || u >= 0x7f) p.fail(*url_n, "url", "must be printable ASCII without spaces (percent-encode the rest)");
    }
  }
  p.one_of("method", o.method, std::array<std::string_view, 2>{"GET", "POST"});

  if (const toml::node* n = p.table().get("forward_headers")) {
    p.string_list("forward_headers", o.forward_headers);
    std::set<std::string> seen;
    for (const std::string& h : o.forward_headers) {
      if (!is_token(h)) p.fail(*n, "forward_headers", "\"" + h + "\" is not a header name");
      std::string lower = h;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (!seen.insert(lower).second) p.fail(*n, "forward_headers", "\"" + h + "\" is listed twice");
    }
  }
  p.boolean("forward_client_address", o.forward_client_address);
  p.boolean("forward_origin", o.forward_origin);
  p.boolean("forward_uri", o.forward_uri);
  p.boolean("refuse_without_credentials", o.refuse_without_credentials);
  if (o.forward_headers.empty() && o.refuse_without_credentials) {
    p.fail(*p.table().get("forward_headers"), "forward_headers",
           "is empty while refuse_without_credentials is on: every handshake would be refused unasked");
  }

  // headers = { Name = "value" } replaces the default (Accept:
  // application/json); headers_env = { Name = "VARIABLE" } adds headers
  // whose values come from the environment (a shared key).
  auto header_table = [&](std::string_view key) -> const toml::table* {
    const toml::node* n = p.find(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) {
      p.fail(*n, key, std::string("expected a table of header names to ") +
                          (key == "headers" ? "values" : "environment variable names") +
                          ", as { X-Windlass-Key = \"...\" }, got " + type_name(n->type()));
    }
    return n->as_table();
  };
  const toml::table* headers = header_table("headers");
  const toml::table* headers_env = header_table("headers_env");
  if (headers != nullptr) o.headers.clear();
  std::set<std::string> names;
  for (const toml::table* t : {headers, headers_env}) {
    if (t == nullptr) continue;
    const std::string key = t == headers ? "headers" : "headers_env";
    for (auto&& [k, v] : *t) {
      const std::string name(k.str());
      const std::string where = key + "." + name;
      if (!is_token(name)) p.fail(v, where, "not a header name (an HTTP token)");
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (!names.insert(lower).second) p.fail(v, where, "given twice (in headers and headers_env)");
      if (!v.is_string()) p.fail(v, where, std::string("expected a string, got ") + type_name(v.type()));
      std::string value = v.as_string()->get();
      if (t == headers_env) {
        const char* e = std::getenv(value.c_str());
        if (e == nullptr || *e == '\0') p.fail(v, where, "the environment variable " + value + " is not set");
        value = e;
        if (!is_header_value(value)) p.fail(v, where, "the environment variable " + v.as_string()->get() + " holds a line break");
      } else if (!is_header_value(value)) {
        p.fail(v, where, "the value holds a line break");
      }
      o.headers.emplace_back(name, std::move(value));
    }
  }

  milliseconds timeout = o.timeout;
  p.duration("timeout", timeout, milliseconds(1), kHour);
  if (timeout >= ws.upgrade_timeout) {
    p.fail(*p.table().get("timeout"), "timeout",
           format_duration(timeout) + " is not under the handshake's deadline (" +
               format_duration(ws.upgrade_timeout) + "): the client would not hear the 504");
  }
  o.timeout = timeout;
  p.size("max_response_size", o.max_response_size, 1 * KiB, 16 * MiB);
  p.duration("allow_ttl", o.allow_ttl, milliseconds(0), 24 * kHour);
  p.duration("deny_ttl", o.deny_ttl, milliseconds(0), 24 * kHour);
  p.integer("cache_entries", o.cache_entries, 0, 10'000'000);
  if (const toml::table* t = route_sub_table(p, "client", "route.proxy.client")) {
    Section c(*t, p.prefix() + "client.", p.file());
    read_http_client(c, o.client, base_dir);
  }
  p.finish();
  return o;
}

void read_route_auth(Section& s, RouteConfig& r, const fs::path& base_dir) {
  std::string auth;
  s.one_of("auth", auth, kAuthKinds);
  r.auth = auth == "jwt" ? AuthKind::jwt : auth == "proxy" ? AuthKind::proxy : AuthKind::none;
  for (std::string_view key : kAuthKinds) {
    const toml::node* n = s.table().get(key);
    if (n != nullptr && auth != key) {
      s.fail(*n, key,
             "applies only to auth = \"" + std::string(key) + "\"" +
                 (auth.empty() ? std::string(", and the route has no 'auth'") : ", not to auth = \"" + auth + "\""));
    }
  }
  if (r.auth == AuthKind::none) return;
  const toml::table* t = route_sub_table(s, auth, "route." + auth);
  if (t == nullptr) {
    s.fail_here("auth = \"" + auth + "\" needs its options: a [route." + auth + "] table after the [[route]] (" +
                (r.auth == AuthKind::jwt ? "issuer, audience and the key" : "at least url") + ")");
  }
  Section a(*t, s.prefix() + auth + ".", s.file());
  if (r.auth == AuthKind::jwt) {
    r.jwt = read_jwt(a, base_dir);
  } else {
    r.proxy = read_proxy(a, base_dir, r.ws);
  }
}

channels::AppConfig read_app(Section& s, const fs::path& base_dir) {
  channels::AppConfig a;
  s.check_keys({"id", "key", "secret", "secret_env", "secret_file", "enabled", "client_events",
                "user_authentication", "max_connections", "max_presence_members", "max_user_info_size",
                "max_event_size", "max_channels_per_event", "max_batch_events", "client_events_per_second",
                "allowed_origins", "webhook", "history"});
  s.string("id", a.id);
  if (a.id.empty()) s.fail_here("missing 'id'");
  s.string("key", a.key);
  if (a.key.empty()) s.fail_here("missing 'key'");
  a.secret = read_secret(s, base_dir);
  s.boolean("enabled", a.enabled);
  s.boolean("client_events", a.client_events);
  s.boolean("user_authentication", a.user_authentication);
  s.integer("max_connections", a.max_connections, 0, 100'000'000);
  s.integer("max_presence_members", a.max_presence_members, 1, 100'000);
  s.size("max_user_info_size", a.max_user_info_bytes, 1, 64 * KiB);
  s.size("max_event_size", a.max_event_bytes, 1, 1 * MiB);
  s.integer("max_channels_per_event", a.max_channels_per_event, 1, 1000);
  s.integer("max_batch_events", a.max_batch_events, 1, 1000);
  s.integer("client_events_per_second", a.client_events_per_second, 1, 1000);
  s.string_list("allowed_origins", a.allowed_origins);
  if (const toml::node* n = s.find("webhook")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      s.fail(*n, "webhook", "expected an array of tables (write [[app.webhook]] after its [[app]])");
    }
    size_t i = 0;
    for (const toml::node& item : *arr) {
      Section w(*item.as_table(), s.prefix() + "webhook[" + std::to_string(i++) + "].", s.file());
      channels::WebhookTarget t;
      w.check_keys({"url", "events"});
      w.string("url", t.url);
      if (t.url.empty()) w.fail_here("missing 'url'");
      if (!t.url.starts_with("http://") && !t.url.starts_with("https://")) {
        w.fail(*item.as_table()->get("url"), "url", "\"" + t.url + "\" is not an http:// or https:// URL");
      }
      static constexpr std::string_view kEvents[] = {"channel_occupied", "channel_vacated", "member_added",
                                                     "member_removed",   "client_event",    "cache_miss"};
      w.string_list("events", t.events);
      for (const auto& e : t.events) {
        if (std::find(std::begin(kEvents), std::end(kEvents), e) == std::end(kEvents)) {
          w.fail(*item.as_table()->get("events"), "events", "\"" + e + "\" is not a webhook event" + suggest(e, kEvents));
        }
      }
      a.webhooks.push_back(std::move(t));
    }
  }
  if (const toml::node* n = s.find("history")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      s.fail(*n, "history", "expected an array of tables (write [[app.history]] after its [[app]])");
    }
    size_t i = 0;
    for (const toml::node& item : *arr) {
      Section h(*item.as_table(), s.prefix() + "history[" + std::to_string(i++) + "].", s.file());
      channels::HistoryConfig c;
      h.check_keys({"channels", "messages", "max_age"});
      h.string("channels", c.channel_prefix);
      if (c.channel_prefix.starts_with("presence-") || c.channel_prefix.starts_with("private-cache-") ||
          c.channel_prefix.starts_with("cache-") || c.channel_prefix.starts_with("presence-cache-") ||
          c.channel_prefix.starts_with("private-encrypted-cache-")) {
        h.fail(*item.as_table()->get("channels"), "channels",
               "presence- and cache- channels keep no history (they replay their state their own way)");
      }
      h.integer("messages", c.messages, 1, 100'000);
      h.duration("max_age", c.max_age, std::chrono::milliseconds(1000), 7 * 24 * kHour);
      h.finish();
      a.history.push_back(std::move(c));
    }
  }
  s.finish();
  return a;
}

// The channels app RabbitMQ messages go to, when amqp_app does not say:
// the only [[app]]. `where` names what turned the input on, for the message.
void resolve_amqp_app(AmqpConfig& a, const ChannelsConfig& channels, const std::string& where) {
  if (!a.app.empty()) return;  // given, and checked by read_broker_amqp
  if (channels.apps.empty()) {
    throw ConfigError(where +
                      ": RabbitMQ messages are published to a channels app, and no [[app]] is configured");
  }
  if (channels.apps.size() > 1) {
    std::string ids;
    for (const auto& app : channels.apps) ids += (ids.empty() ? "\"" : ", \"") + app.id + "\"";
    throw ConfigError(where + ": there are " + std::to_string(channels.apps.size()) + " [[app]]s (" + ids +
                      "): name the one RabbitMQ messages go to with broker.amqp_app");
  }
  a.app = channels.apps.front().id;
}

// [broker]'s RabbitMQ keys. Read after the [[app]]s, which amqp_app names.
// The URL's password never appears in a message.
void read_broker_amqp(Section& s, AmqpConfig& a, const ChannelsConfig& channels) {
  if (const toml::node* n = s.find("amqp_url")) {
    s.string("amqp_url", a.url);
    AmqpUrl url;
    if (AmqpUrlError e = parse_amqp_url(a.url, url); e != AmqpUrlError::none)
      s.fail(*n, "amqp_url", describe(e));
    a.enabled = true;
  }
  auto name = [&](std::string_view key, std::string& out) {
    s.string(key, out);
    if (const toml::node* n = s.table().get(key)) {
      if (std::string why = amqp_name_problem(out); !why.empty()) s.fail(*n, key, "\"" + out + "\" " + why);
    }
  };
  name("amqp_exchange", a.exchange);
  name("amqp_queue", a.queue);
  s.integer("amqp_prefetch", a.prefetch, 1, 65535);
  if (const toml::node* n = s.find("amqp_app")) {
    s.string("amqp_app", a.app);
    auto known = [&](const channels::AppConfig& app) { return app.id == a.app; };
    if (std::none_of(channels.apps.begin(), channels.apps.end(), known)) {
      std::vector<std::string> ids;
      for (const auto& app : channels.apps) ids.push_back(app.id);
      s.fail(*n, "amqp_app", "\"" + a.app + "\" is not the id of an [[app]]" + suggest(a.app, ids));
    }
  }
  if (a.enabled) resolve_amqp_app(a, channels, position(s.file(), s.table().source()) + "broker.amqp_url");
}

template <class T>
std::optional<T> parse_integer(std::string_view v, int64_t min, int64_t max) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < min || n > max) return std::nullopt;
  return static_cast<T>(n);
}

}  // namespace

Config load_config(const fs::path& file) {
  Config c;
  c.source = file.string();
  toml::table root;
  try {
    root = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    std::string where =
        c.source + (b.line != 0 ? ":" + std::to_string(b.line) + ":" + std::to_string(b.column) : "");
    throw ConfigError(where + ": " + std::string(e.description()));
  }
  fs::path base_dir = fs::absolute(file).parent_path();

  Section top(root, "", c.source);
  auto sub_table = [&](std::string_view key) -> const toml::table* {
    const toml::node* n = top.find(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table())
      top.fail(*n, key,
               std::string("expected a table [") + std::string(key) + "], got " + type_name(n->type()));
    return n->as_table();
  };
  if (const toml::table* t = sub_table("server")) {
    Section s(*t, "server.", c.source);
    read_server(s, c.server);
  }
  if (const toml::table* t = sub_table("websocket")) {
    Section s(*t, "websocket.", c.source);
    read_ws_options(s, c.websocket);
    s.finish();
  }
  if (const toml::table* t = sub_table("access")) {
    Section s(*t, "access.", c.source);
    read_access(s, c.server.access);
  }
  if (const toml::table* t = sub_table("tls")) {
    Section s(*t, "tls.", c.source);
    read_tls(s, c.server, base_dir);
  }
  if (const toml::table* t = sub_table("log")) {
    Section s(*t, "log.", c.source);
    read_log(s, c.log);
  }
  if (const toml::table* t = sub_table("metrics")) {
    Section s(*t, "metrics.", c.source);
    read_metrics(s, c.metrics);
  }
  // Routes come after [websocket], whose keys are their defaults, wherever
  // the tables appear in the file.
  if (const toml::node* n = top.find("route")) {
    const toml::array* a = n->as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      top.fail(*n, "route",
               std::string("expected an array of tables (write [[route]], with two brackets), got ") +
                   type_name(n->type()));
    }
    size_t i = 0;
    for (const toml::node& item : *a) {
      Section s(*item.as_table(), "route[" + std::to_string(i++) + "].", c.source);
      c.routes.push_back(read_route(s, c.websocket, base_dir));
    }
  }
  if (const toml::table* t = sub_table("channels")) {
    Section s(*t, "channels.", c.source);
    read_channels(s, c.channels);
  }
  if (const toml::node* n = top.find("app")) {
    const toml::array* a = n->as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      top.fail(*n, "app", std::string("expected an array of tables (write [[app]]), got ") + type_name(n->type()));
    }
    size_t i = 0;
    std::set<std::string> ids, keys;
    for (const toml::node& item : *a) {
      Section s(*item.as_table(), "app[" + std::to_string(i++) + "].", c.source);
      channels::AppConfig app = read_app(s, base_dir);
      if (!ids.insert(app.id).second) s.fail(*item.as_table()->get("id"), "id", "\"" + app.id + "\" is used by another [[app]]");
      if (!keys.insert(app.key).second) s.fail(*item.as_table()->get("key"), "key", "\"" + app.key + "\" is used by another [[app]]");
      if (app.key == "app-key" || app.secret == "app-secret") c.channels.demo_apps.push_back(app.id);
      c.channels.apps.push_back(std::move(app));
    }
  }
  c.channels.enabled = !c.channels.apps.empty();
  if (const toml::table* t = sub_table("broker")) {
    // One section, each reader its own keys; [[app]]s are known by now.
    Section s(*t, "broker.", c.source);
    read_broker_redis(s, c.broker.redis);
    read_broker_amqp(s, c.broker.amqp, c.channels);
    s.finish();
  }
  top.finish();
  validate(c);
  return c;
}

void apply_override(Config& c, OverrideKey key, std::string_view value, std::string_view origin) {
  auto fail = [&](const std::string& what) -> void {
    throw ConfigError(std::string(origin) + "=" + std::string(value) + ": " + what);
  };
  switch (key) {
    case OverrideKey::host:
      if (value.empty()) fail("the host must not be empty");
      c.server.host = value;
      break;
    case OverrideKey::port:
      if (auto v = parse_integer<uint16_t>(value, 0, 65535))
        c.server.port = *v;
      else
        fail("not a port number (0 to 65535)");
      break;
    case OverrideKey::threads:
      if (auto v = parse_integer<unsigned>(value, 0, 1024))
        c.server.threads = *v;
      else
        fail("not a thread count (0 to 1024; 0 means one per core)");
      break;
    case OverrideKey::io:
      if (auto v = windlass::parse_io_backend(value))
        c.server.io = *v;
      else
        fail("not an I/O backend (auto, epoll or io_uring)" + suggest(value, kIoBackends));
      break;
    case OverrideKey::log_level:
      if (std::find(std::begin(kLogLevels), std::end(kLogLevels), value) == std::end(kLogLevels)) {
        fail("not a log level (trace, debug, info, warn, error, off)" + suggest(value, kLogLevels));
      }
      c.log.level = value;
      break;
    case OverrideKey::node_id:
      if (auto v = parse_integer<uint32_t>(value, 0, (1 << 24) - 1))
        c.server.node_id = *v;
      else
        fail("not a node id (0 to 16777215)");
      break;
    case OverrideKey::redis_url:
      if (!value.empty() && !value.starts_with("redis://") && !value.starts_with("redis-cluster://")) {
        fail("expected redis://host:port or redis-cluster://host:port,host:port");
      }
      c.broker.redis.url = value;
      break;
    case OverrideKey::laravel_prefix:
      c.broker.redis.laravel_prefix = value;
      c.broker.redis.laravel = true;
      break;
    case OverrideKey::log_format:
      if (value == "text")
        c.log.format = LogFormat::text;
      else if (value == "json")
        c.log.format = LogFormat::json;
      else
        fail("not a log format (text or json)");
      break;
    case OverrideKey::amqp_url: {
      // Not quoted back: it holds a password.
      AmqpUrl url;
      if (AmqpUrlError e = parse_amqp_url(value, url); e != AmqpUrlError::none) {
        throw ConfigError(std::string(origin) + ": " + describe(e));
      }
      c.broker.amqp.url = value;
      c.broker.amqp.enabled = true;
      resolve_amqp_app(c.broker.amqp, c.channels, std::string(origin));
      break;
    }
  }
}

void validate(const Config& c) {
  auto fail = [&](const RouteConfig& r, size_t index, const std::string& what) {
    throw ConfigError(c.source + ":" + std::to_string(r.line) + ": route[" + std::to_string(index) +
                      "].path \"" + r.path + "\": " + what);
  };
  // Plain HTTP paths taken by the built-in endpoints.
  std::vector<std::pair<std::string, const char*>> builtin;
  if (c.metrics.enabled) builtin.emplace_back(c.metrics.path, "metrics.path");
  if (!c.metrics.health_path.empty()) builtin.emplace_back(c.metrics.health_path, "metrics.health_path");
  if (!c.metrics.ready_path.empty()) builtin.emplace_back(c.metrics.ready_path, "metrics.ready_path");
  for (size_t i = 0; i < builtin.size(); ++i) {
    for (size_t j = i + 1; j < builtin.size(); ++j) {
      if (builtin[i].first == builtin[j].first) {
        throw ConfigError(c.source + ": " + builtin[i].second + " and " + builtin[j].second + " are both \"" +
                          builtin[i].first + "\"");
      }
    }
  }
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const RouteConfig& r = c.routes[i];
    if (c.channels.enabled && r.is_websocket() && r.path.starts_with(c.channels.options.websocket_prefix + "/")) {
      fail(r, i, "is under channels.path \"" + c.channels.options.websocket_prefix + "\", the Pusher endpoint");
    }
    if (c.channels.enabled && !r.is_websocket() && (r.path == "/apps/*" || r.path.starts_with("/apps/"))) {
      fail(r, i, "is under /apps/, the channels HTTP API");
    }
    for (size_t j = 0; j < i; ++j) {
      const RouteConfig& o = c.routes[j];
      if (o.path == r.path && o.is_websocket() == r.is_websocket()) {
        fail(r, i,
             std::string("already taken by route[") + std::to_string(j) + "] (line " +
                 std::to_string(o.line) + ")");
      }
    }
    for (auto& [path, key] : builtin) {
      if (path == r.path) fail(r, i, std::string("is ") + key + "; choose another path for one of them");
    }
  }
}

void validate_broker(const Config& c) {
  if (c.broker.redis.laravel) {
    if (c.broker.redis.url.empty()) {
      throw ConfigError(c.source + ": broker.laravel needs broker.redis_url (or WINDLASS_REDIS_URL)");
    }
    if (!c.channels.enabled) throw ConfigError(c.source + ": broker.laravel needs an [[app]] to broadcast to");
    if (c.broker.redis.laravel_app.empty() && c.channels.apps.size() != 1) {
      throw ConfigError(c.source + ": broker.laravel_app must name the [[app]] Laravel broadcasts to");
    }
    if (!c.broker.redis.laravel_app.empty() &&
        std::none_of(c.channels.apps.begin(), c.channels.apps.end(),
                     [&](const auto& a) { return a.id == c.broker.redis.laravel_app; })) {
      throw ConfigError(c.source + ": broker.laravel_app \"" + c.broker.redis.laravel_app + "\" is not an [[app]] id");
    }
  }
}

std::string amqp_node_id(const Config& c) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  const unsigned port = c.server.plain_listener ? c.server.port : c.server.tls_port;
  // A port picked at random names a new queue at every start: nothing
  // durable to find again, but at least not another process's queue.
  return std::string(host) + "." + (port != 0 ? std::to_string(port) : "pid" + std::to_string(::getpid()));
}

std::string summary(const Config& c) {
  std::string listen =
      c.server.plain_listener ? c.server.host + ":" + std::to_string(c.server.port) : "tls only";
  std::string s = c.source + ": listen " + listen + ", threads " +
                  (c.server.threads == 0 ? std::string("auto") : std::to_string(c.server.threads)) + ", io " +
                  std::string(windlass::to_string(c.server.io)) + ", routes ";
  if (c.routes.empty()) s += "(none)";
  for (size_t i = 0; i < c.routes.size(); ++i) {
    s += (i ? ", " : "") + c.routes[i].path + " " + to_string(c.routes[i].component);
    if (c.routes[i].auth != AuthKind::none) s += std::string(" (auth ") + to_string(c.routes[i].auth) + ")";
  }
  if (!c.server.tls_certificate_file.empty()) {
    s += ", tls " + (c.server.tls_host.empty() ? c.server.host : c.server.tls_host) + ":" +
         std::to_string(c.server.tls_port) + (c.server.plain_listener ? "" : " only");
  }
  if (c.channels.enabled) {
    s += ", channels " + c.channels.options.websocket_prefix + "/{key} (" + std::to_string(c.channels.apps.size()) +
         (c.channels.apps.size() == 1 ? " app)" : " apps)");
  }
  if (!c.broker.redis.url.empty()) {
    // Credentials stay out of logs: "redis://***@host:port".
    std::string url = c.broker.redis.url;
    if (const size_t at = url.rfind('@'); at != std::string::npos) {
      const size_t scheme = url.find("://");
      url = url.substr(0, scheme + 3) + "***" + url.substr(at);
    }
    s += ", redis " + url +
         (c.broker.redis.laravel ? " (+laravel " + c.broker.redis.laravel_prefix + "*)" : "");
  }
  if (c.broker.amqp.enabled) {
    AmqpUrl url;
    parse_amqp_url(c.broker.amqp.url, url);
    s += ", amqp " + url.redacted() + " exchange " + c.broker.amqp.exchange + " queue " +
         (c.broker.amqp.queue.empty() ? "windlass." + amqp_node_id(c) : c.broker.amqp.queue) + " -> app " +
         c.broker.amqp.app;
  }
  s += ", metrics " + (c.metrics.enabled ? c.metrics.path : std::string("off"));
  s += ", log " + c.log.level + " " + (c.log.format == LogFormat::json ? "json" : "text") + ", access log " +
       (c.log.access ? "on" : "off");
  return s;
}

}  // namespace windlass::server
