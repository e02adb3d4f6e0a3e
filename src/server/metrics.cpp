#include "metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <utility>

#ifndef WINDLASS_VERSION
#error "WINDLASS_VERSION must be defined by the build (CMake's PROJECT_VERSION)"
#endif

namespace windlass::server {

namespace {

using Label = std::pair<std::string_view, std::string>;

// The text format 0.0.4: "# HELP" and "# TYPE" once per family, then its
// samples. HELP escapes backslash and newline; label values also escape
// the double quote.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (char c : help) {
      if (c == '\\')
        out_ += "\\\\";
      else if (c == '\n')
        out_ += "\\n";
      else
        out_ += c;
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, std::initializer_list<Label> labels, std::string_view value) {
    out_ += name;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        for (char c : v) {
          if (c == '\\')
            out_ += "\\\\";
          else if (c == '"')
            out_ += "\\\"";
          else if (c == '\n')
            out_ += "\\n";
          else
            out_ += c;
        }
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, value);
    sample(name, labels, ec == std::errc() ? std::string_view(buf, static_cast<size_t>(p - buf)) : "NaN");
  }

  // One family with a single unlabelled sample.
  template <class V>
  void single(std::string_view name, std::string_view type, std::string_view help, V value) {
    family(name, type, help);
    sample(name, {}, value);
  }

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

constexpr CloseCause kCauses[] = {CloseCause::peer_closed,     CloseCause::server_closed,
                                  CloseCause::protocol_error,  CloseCause::keepalive_timeout,
                                  CloseCause::slow_consumer,   CloseCause::shutdown,
                                  CloseCause::transport_closed};

struct ProcessNumbers {
  double cpu_seconds = 0;
  uint64_t virtual_bytes = 0;
  double start_time = 0;  // seconds since the epoch
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
  bool ok = false;
};

// /proc/self/stat (proc(5)): after the command in parentheses come state
// (field 3), ..., utime (14), stime (15), ..., starttime (22), vsize (23).
ProcessNumbers read_process() {
  ProcessNumbers p;
  char buf[1024];
  std::FILE* f = std::fopen("/proc/self/stat", "r");
  if (f == nullptr) return p;
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* rest = std::strrchr(buf, ')');
  if (rest == nullptr) return p;
  unsigned long long utime = 0, stime = 0, starttime = 0, vsize = 0;
  int got = std::sscanf(
      rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu",
      &utime, &stime, &starttime, &vsize);
  if (got != 4) return p;
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  p.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  p.virtual_bytes = vsize;

  // starttime counts from boot: add the boot time from /proc/stat.
  static const double boot_time = [] {
    std::FILE* s = std::fopen("/proc/stat", "r");
    if (s == nullptr) return 0.0;
    char line[256];
    unsigned long long btime = 0;
    while (std::fgets(line, sizeof line, s) != nullptr) {
      if (std::sscanf(line, "btime %llu", &btime) == 1) break;
    }
    std::fclose(s);
    return static_cast<double>(btime);
  }();
  p.start_time = boot_time + static_cast<double>(starttime) / ticks;

  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++p.open_fds;
    }
    ::closedir(d);
    --p.open_fds;  // the descriptor opendir itself holds
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) p.max_fds = rl.rlim_cur;
  p.ok = true;
  return p;
}

void render_channels(Exposition& x, const channels::Hub& hub) {
  const auto stats = hub.stats();
  struct Gauge {
    const char* name;
    const char* type;
    const char* help;
    uint64_t channels::AppStats::*field;
  };
  static constexpr Gauge kFields[] = {
      {"windlass_channels_connections", "gauge", "Open Pusher connections, per app.", &channels::AppStats::connections},
      {"windlass_channels_connections_total", "counter", "Pusher connections opened, per app.",
       &channels::AppStats::connections_total},
      {"windlass_channels_channels", "gauge", "Channels with subscribers in this process, per app.",
       &channels::AppStats::channels},
      {"windlass_channels_presence_members", "gauge", "Members of presence channels, per app.",
       &channels::AppStats::presence_members},
      {"windlass_channels_messages_received_total", "counter", "Messages received from Pusher clients, per app.",
       &channels::AppStats::messages_in},
      {"windlass_channels_events_published_total", "counter",
       "Events published to a channel (API, client events, presence), per app and channel.",
       &channels::AppStats::messages_out},
      {"windlass_channels_client_events_total", "counter", "Client events relayed, per app.",
       &channels::AppStats::client_events},
      {"windlass_channels_webhooks_sent_total", "counter", "Webhook POSTs answered 2xx, per app.",
       &channels::AppStats::webhooks_sent},
      {"windlass_channels_webhooks_failed_total", "counter", "Webhook POSTs that failed after every retry, per app.",
       &channels::AppStats::webhooks_failed},
      {"windlass_channels_webhooks_dropped_total", "counter", "Webhook events dropped: the queue was full.",
       &channels::AppStats::webhooks_dropped},
  };
  for (const Gauge& g : kFields) {
    x.family(g.name, g.type, g.help);
    for (const auto& [app, st] : stats) x.sample(g.name, {{"app", app}}, st.*g.field);
  }
  x.family("windlass_channels_api_requests_total", "counter", "HTTP API calls, per app and status.");
  for (const auto& [app, st] : stats) {
    for (const auto& [status, n] : st.api_calls) x.sample("windlass_channels_api_requests_total", {{"app", app}, {"status", std::to_string(status)}}, n);
  }
  x.family("windlass_channels_auth_failures_total", "counter", "Refused signatures and origins, per app and reason.");
  for (const auto& [app, st] : stats) {
    for (const auto& [reason, n] : st.auth_failures) x.sample("windlass_channels_auth_failures_total", {{"app", app}, {"reason", reason}}, n);
  }
  x.family("windlass_channels_closes_total", "counter", "Connections the server closed with a Pusher code, per app.");
  for (const auto& [app, st] : stats) {
    for (const auto& [code, n] : st.closes) x.sample("windlass_channels_closes_total", {{"app", app}, {"code", std::to_string(code)}}, n);
  }
}

void render_amqp(Exposition& x, const AmqpInput& amqp) {
  const AmqpStats st = amqp.stats();
  const std::initializer_list<Label> labels = {{"queue", amqp.queue()}};
  auto one = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
    x.family(name, type, help);
    x.sample(name, labels, value);
  };
  one("windlass_amqp_connected", "gauge", "1 while the RabbitMQ input is connected and consuming, else 0.",
      uint64_t{st.connected});
  one("windlass_amqp_state_since_seconds", "gauge",
      "When windlass_amqp_connected last changed (or the input started), seconds since the epoch.",
      std::chrono::duration<double>(st.since.time_since_epoch()).count());
  one("windlass_amqp_messages_delivered_total", "counter",
      "Messages the hub took from the queue (acknowledged).", st.delivered);
  one("windlass_amqp_messages_rejected_total", "counter",
      "Messages rejected without requeue: bad payload, bad channel, unknown app, too large.", st.rejected);
  one("windlass_amqp_redeliveries_skipped_total", "counter",
      "Redelivered messages acknowledged without publishing: the hub had taken them before a connection was "
      "lost.",
      st.duplicates);
  one("windlass_amqp_reconnects_total", "counter", "Connections to RabbitMQ made again after one was lost.",
      st.reconnects);
  one("windlass_amqp_connect_failures_total", "counter",
      "Attempts to connect (and declare, bind, consume) that failed.", st.connect_failures);
  one("windlass_amqp_messages_in_flight", "gauge",
      "Deliveries handed to the hub's loop, verdict not yet back.", st.in_flight);
}

}  // namespace

void render_bridge(Exposition& x, const redis::RedisBridge& bridge) {
  const redis::BridgeStats b = bridge.stats();
  x.single("windlass_redis_connected", "gauge", "1 while the Redis bridge is connected; 0: the cluster is split.",
           uint64_t{b.connected});
  x.single("windlass_redis_split_since_seconds", "gauge",
           "When the bridge last lost Redis (Unix seconds); 0 while connected.",
           static_cast<double>(b.split_since_unix_ms) / 1000.0);
  x.single("windlass_redis_published_total", "counter", "Messages this node sent to Redis.", b.published);
  x.single("windlass_redis_received_total", "counter", "Messages from other nodes delivered here.", b.received);
  x.single("windlass_redis_dropped_total", "counter", "Publishes dropped: the outbox was full while Redis was away.",
           b.dropped);
  x.single("windlass_redis_outbox", "gauge", "Publishes waiting for Redis.", b.outbox);
  x.single("windlass_redis_reconnects_total", "counter", "Times the bridge came back after losing Redis.", b.reconnects);
  x.single("windlass_redis_subscriptions", "gauge", "Topics this node is subscribed to on Redis.", b.subscriptions);
}

std::string render_metrics(const Stats& s, unsigned threads, const std::vector<RouteMetrics>& routes,
                           const channels::Hub* hub, const redis::RedisBridge* bridge, const AmqpInput* amqp) {
  Exposition x;
  x.family("windlass_build_info", "gauge", "Always 1; the version of this windlass-server.");
  x.sample("windlass_build_info", {{"version", WINDLASS_VERSION}}, uint64_t{1});
  x.single("windlass_threads", "gauge", "Event loops (one thread each).", uint64_t{threads});
  x.single("windlass_draining", "gauge", "1 once a graceful shutdown has begun (readiness fails), else 0.",
           uint64_t{s.draining});

  x.single("windlass_connections_open", "gauge", "Open TCP connections, HTTP and WebSocket.",
           s.connections_open);
  x.family("windlass_loop_connections_open", "gauge", "Open TCP connections per event loop.");
  for (size_t i = 0; i < s.loops.size(); ++i) {
    x.sample("windlass_loop_connections_open", {{"loop", std::to_string(i)}}, s.loops[i].connections_open);
  }
  x.single("windlass_connections_accepted_total", "counter", "TCP connections accepted.",
           s.connections_accepted);
  x.single("windlass_http_requests_total", "counter", "HTTP request heads parsed, upgrades included.",
           s.http_requests);
  x.family(
      "windlass_http_refused_total", "counter",
      "Error answers the server wrote itself, by HTTP status (\"other\": a status not counted on its own).");
  for (const auto& [status, n] : s.refused_by_status) {
    x.sample("windlass_http_refused_total", {{"status", status == 0 ? "other" : std::to_string(status)}}, n);
  }

  x.single("windlass_websocket_handshakes_total", "counter", "Successful WebSocket handshakes.",
           s.websockets_opened);
  x.family("windlass_websocket_connections_open", "gauge", "Open WebSocket connections per route.");
  for (const auto& r : routes) {
    x.sample("windlass_websocket_connections_open", {{"route", r.path}, {"component", r.component}},
             r.counts->open_connections());
  }
  x.single("windlass_websocket_messages_received_total", "counter", "WebSocket messages received.",
           s.messages_in);
  x.single("windlass_websocket_received_bytes_total", "counter",
           "Payload bytes of the WebSocket messages received.", s.bytes_in);
  x.single("windlass_websocket_messages_sent_total", "counter", "WebSocket messages queued to clients.",
           s.messages_out);
  x.single("windlass_websocket_sent_bytes_total", "counter",
           "Bytes of the WebSocket messages queued to clients (payload; topic broadcasts count their frame "
           "header too).",
           s.bytes_out);
  x.family("windlass_websocket_closes_total", "counter", "WebSocket connections ended, by cause.");
  for (CloseCause c : kCauses) {
    auto it = s.closes_by_cause.find(c);
    // Every cause is present from the start, so rate() sees the first one.
    x.sample("windlass_websocket_closes_total", {{"cause", to_string(c)}},
             it == s.closes_by_cause.end() ? 0 : it->second);
  }
  x.family("windlass_websocket_close_codes_total", "counter",
           "WebSocket connections ended, by the close code reported to the component (\"other\": codes not "
           "counted "
           "on their own, mostly 3000-4999).");
  for (const auto& [code, n] : s.close_codes) {
    x.sample("windlass_websocket_close_codes_total", {{"code", code == 0 ? "other" : std::to_string(code)}},
             n);
  }

  x.single("windlass_send_queue_bytes", "gauge", "Bytes queued for clients and not yet taken by the kernel.",
           s.send_queue_bytes);
  x.family("windlass_loop_lag_seconds", "gauge", "How late each event loop last ran a due timer.");
  for (size_t i = 0; i < s.loops.size(); ++i) {
    x.sample("windlass_loop_lag_seconds", {{"loop", std::to_string(i)}},
             static_cast<double>(s.loops[i].lag_ms) / 1000.0);
  }

  // The standard process collector's names, so existing dashboards work.
  x.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", s.rss_bytes);
  if (ProcessNumbers p = read_process(); p.ok) {
    x.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes);
    x.single("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
             p.cpu_seconds);
    x.single("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
             p.start_time);
    x.single("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
    x.single("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds);
  }
  if (hub != nullptr) render_channels(x, *hub);
  if (bridge != nullptr) render_bridge(x, *bridge);
  if (amqp != nullptr) render_amqp(x, *amqp);
  return x.take();
}

void add_metrics_routes(App& app, const MetricsConfig& config, std::vector<RouteMetrics> routes,
                        const channels::Hub* hub, const redis::RedisBridge* bridge, bool split_fails_readiness,
                        const AmqpInput* amqp) {
  // Probes and scrapers only read: anything but GET and HEAD is a mistake
  // worth a clear answer rather than a page.
  auto read_only = [](const Request& req, Response& res) {
    if (req.method == "GET" || req.method == "HEAD") return true;
    res = Response::text(405, "method not allowed\n");
    res.header("Allow", "GET, HEAD");
    return false;
  };
  if (config.enabled) {
    app.http(config.path,
             [&app, routes = std::move(routes), read_only, hub, bridge, amqp](const Request& req, Response& res) {
               if (!read_only(req, res)) return;
               res = Response::text(200, render_metrics(app.stats(), app.thread_count(), routes, hub, bridge, amqp));
               res.headers.clear();
               res.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
               res.header("Cache-Control", "no-store");
             });
  }
  if (!config.health_path.empty()) {
    // Liveness: answering at all is the proof.
    app.http(config.health_path, [read_only](const Request& req, Response& res) {
      if (!read_only(req, res)) return;
      res = Response::text(200, "ok\n");
      res.header("Cache-Control", "no-store");
    });
  }
  if (!config.ready_path.empty()) {
    // Readiness: fails as soon as draining starts, while connections are
    // still served, so a load balancer sends new clients elsewhere before
    // this process closes anything (ServerOptions::drain_delay).
    app.http(config.ready_path, [&app, read_only, bridge, split_fails_readiness](const Request& req, Response& res) {
      if (!read_only(req, res)) return;
      if (app.stats().draining) {
        res = Response::text(503, "draining\n");
      } else if (bridge != nullptr && !bridge->connected()) {
        // Said either way; whether it fails readiness is the operator's choice.
        res = split_fails_readiness ? Response::text(503, "redis unreachable: the cluster is split\n")
                                    : Response::text(200, "ready (redis unreachable: the cluster is split)\n");
      } else {
        res = Response::text(200, "ready\n");
      }
      res.header("Cache-Control", "no-store");
    });
  }
}

}  // namespace windlass::server
