#include "report.hpp"

#include <cstdio>
#include <string>

namespace windlass::load {
namespace {

double per_second(uint64_t n, double seconds) noexcept {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

double us(uint64_t ns) noexcept {
  return static_cast<double>(ns) / 1000.0;
}

double percent(double cpu_s, double seconds) noexcept {
  return seconds > 0 ? 100.0 * cpu_s / seconds : 0;
}

double server_cpu_s(const Report& r) noexcept {
  if (r.window_start.server_cpu_s < 0 || r.window_end.server_cpu_s < 0) return -1;
  return r.window_end.server_cpu_s - r.window_start.server_cpu_s;
}

// The unit of work each mode counts: echoed messages, fan-out deliveries or
// handshakes.
uint64_t work_done(const Report& r) noexcept {
  if (r.mode == "pusher") return r.pusher.deliveries;
  return r.mode == "handshake" ? r.window.handshakes : r.window.messages_received;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void print_pusher_json(const Report& r, const Options& opts) {
  const PusherFigures& p = r.pusher;
  const double secs = r.seconds();
  std::printf("\"pusher\":{\"channel\":%s,\"event\":%s,\"app_id\":%s,\"subscribers\":%zu,",
              json_string(opts.channel).c_str(), json_string(opts.event).c_str(),
              json_string(opts.app_id).c_str(), p.subscribers);
  if (r.mode == "pusher") {
    std::printf("\"rate\":%.3f,\"burst\":%zu,\"window\":%zu,\"api_connections\":%zu,\"api_close\":%s,",
                opts.rate, opts.burst, opts.window, p.api_connections, opts.api_close ? "true" : "false");
    std::printf("\"publishes\":%llu,\"publishes_per_s\":%.1f,\"publishes_sent\":%llu,\"publishes_due\":%llu,",
                static_cast<unsigned long long>(p.publishes), per_second(p.publishes, secs),
                static_cast<unsigned long long>(p.publishes_sent),
                static_cast<unsigned long long>(p.publishes_due));
    std::printf("\"deliveries\":%llu,\"deliveries_per_s\":%.1f,",
                static_cast<unsigned long long>(p.deliveries), per_second(p.deliveries, secs));
    std::printf("\"api_latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},",
                us(p.api_latency.percentile(0.5)), us(p.api_latency.percentile(0.99)),
                us(p.api_latency.max()));
    std::printf("\"publish_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},",
                us(p.publish_lag.percentile(0.5)), us(p.publish_lag.percentile(0.99)),
                us(p.publish_lag.max()));
    std::printf(
        "\"api_connects_window\":%llu,\"api_connects_per_publish\":%.3f,\"api_closed_by_server_window\":%"
        "llu,",
        static_cast<unsigned long long>(p.api_connects_window),
        p.publishes ? static_cast<double>(p.api_connects_window) / static_cast<double>(p.publishes) : 0.0,
        static_cast<unsigned long long>(p.api_closed_by_server_window));
    std::printf("\"api_connects\":%llu,\"api_closed_by_server\":%llu,\"api_requests\":%llu,\"probes\":%llu,",
                static_cast<unsigned long long>(p.api_connects),
                static_cast<unsigned long long>(p.api_closed_by_server),
                static_cast<unsigned long long>(p.api_requests), static_cast<unsigned long long>(p.probes));
  }
  std::printf("\"close_seconds\":%.3f,\"size\":%zu},", p.close_seconds, opts.size);
}

void print_json(const Report& r, const Options& opts) {
  const double secs = r.seconds();
  const double server_s = server_cpu_s(r);
  const LatencyHistogram& lat = r.window.latency;
  std::printf("{\"mode\":%s,\"connections\":%zu,\"requested_connections\":%zu,", json_string(r.mode).c_str(),
              r.connections, r.requested_connections);
  std::printf("\"nofile_capped\":%s,\"opened\":%zu,",
              r.connections < r.requested_connections ? "true" : "false", r.opened);
  std::printf("\"size\":%zu,\"binary\":%s,\"pipeline\":%zu,", opts.size, opts.binary ? "true" : "false",
              opts.pipeline);
  if (r.mode == "fanout") {
    std::printf("\"burst\":%zu,\"rate\":%g,\"subscribers\":%zu,", opts.burst, opts.rate, r.opened);
  }
  if (!opts.spread.empty()) {
    // Client i went to spread[i % n]: how many each port was given.
    std::printf("\"spread\":[");
    for (size_t i = 0; i < opts.spread.size(); ++i) {
      const size_t n = opts.spread.size();
      const size_t given = r.connections / n + (i < r.connections % n ? 1 : 0);
      std::printf("%s{\"port\":%u,\"connections\":%zu}", i ? "," : "", opts.spread[i], given);
    }
    std::printf("],");
  }
  if (r.pusher.present) print_pusher_json(r, opts);
  // pusher: the deliveries of events, not every message (pings, replies).
  const uint64_t messages = r.mode == "pusher" ? r.pusher.deliveries : r.window.messages_received;
  std::printf("\"seconds\":%.3f,\"messages_sent\":%llu,\"messages\":%llu,\"messages_per_s\":%.1f,", secs,
              static_cast<unsigned long long>(r.window.messages_sent),
              static_cast<unsigned long long>(messages), per_second(messages, secs));
  std::printf("\"payload_bytes_per_s\":%.0f,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,",
              per_second(r.window.payload_bytes_received, secs),
              static_cast<unsigned long long>(r.window.handshakes), per_second(r.window.handshakes, secs));
  std::printf(
      "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
      us(lat.percentile(0.50)), us(lat.percentile(0.90)), us(lat.percentile(0.99)), us(lat.percentile(0.999)),
      us(lat.max()), us(lat.mean()));
  std::printf("\"client_cpu_pct\":%.1f,", percent(r.window_end.self_cpu_s - r.window_start.self_cpu_s, secs));
  if (server_s >= 0) {
    std::printf("\"server_cpu_s\":%.3f,\"server_cpu_pct\":%.1f,\"work_per_server_cpu_s\":%.1f,", server_s,
                percent(server_s, secs), server_s > 0 ? static_cast<double>(work_done(r)) / server_s : 0);
    if (r.window_end.servers > 1) {
      std::printf("\"server_cpu_s_each\":[");
      for (size_t i = 0; i < r.window_end.servers; ++i) {
        std::printf("%s%.3f", i ? "," : "", r.window_end.each_cpu_s[i] - r.window_start.each_cpu_s[i]);
      }
      std::printf("],");
    }
  }
  if (server_s >= 0) {
    std::printf("\"server_user_s\":%.3f,\"server_system_s\":%.3f,",
                r.window_end.server_user_s - r.window_start.server_user_s,
                r.window_end.server_system_s - r.window_start.server_system_s);
  }
  if (r.server_syscalls >= 0) {
    std::printf("\"server_syscalls\":%lld,\"server_syscalls_per_work\":%.4f,",
                static_cast<long long>(r.server_syscalls),
                work_done(r) > 0 ? static_cast<double>(r.server_syscalls) / static_cast<double>(work_done(r)) : 0);
  }
  if (r.server_rss_before >= 0 && r.server_rss_after >= 0) {
    const double per_conn = r.opened ? static_cast<double>(r.server_rss_after - r.server_rss_before) /
                                           static_cast<double>(r.opened)
                                     : 0;
    std::printf("\"server_rss_before\":%lld,\"server_rss_after\":%lld,\"server_rss_per_connection\":%.0f,",
                static_cast<long long>(r.server_rss_before), static_cast<long long>(r.server_rss_after),
                per_conn);
  }
  const Stats& t = r.totals;
  std::printf(
      "\"errors\":{\"total\":%llu,\"connect\":%llu,\"handshake\":%llu,\"protocol\":%llu,"
      "\"echo_mismatch\":%llu,\"delivery\":%llu,\"subscribe\":%llu,\"api\":%llu,\"unexpected_close\":%llu,"
      "\"timeout\":%llu},",
      static_cast<unsigned long long>(t.errors()), static_cast<unsigned long long>(t.connect_errors),
      static_cast<unsigned long long>(t.handshake_errors), static_cast<unsigned long long>(t.protocol_errors),
      static_cast<unsigned long long>(t.echo_mismatches), static_cast<unsigned long long>(t.delivery_errors),
      static_cast<unsigned long long>(t.subscribe_errors), static_cast<unsigned long long>(t.api_errors),
      static_cast<unsigned long long>(t.unexpected_closes), static_cast<unsigned long long>(t.timeouts));
  std::printf("\"server_close_codes\":{");
  const char* sep = "";
  for (const auto& [code, n] : t.server_close_codes) {
    std::printf("%s\"%u\":%llu", sep, code, static_cast<unsigned long long>(n));
    sep = ",";
  }
  std::printf("},\"failure\":%s}\n", r.failure.empty() ? "null" : json_string(r.failure).c_str());
}

void print_human(const Report& r, const Options& opts) {
  const double secs = r.seconds();
  const LatencyHistogram& lat = r.window.latency;
  if (r.connections < r.requested_connections) {
    std::printf("note: %zu connections asked for, capped at %zu by the RLIMIT_NOFILE hard limit (%zu)\n",
                r.requested_connections, r.connections, r.nofile_limit);
  }
  if (r.mode == "echo") {
    std::printf(
        "echo: %zu connections, %zu B %s, pipeline %zu, %.2f s: %.0f msg/s, %.1f MB/s payload each way\n",
        r.opened, opts.size, opts.binary ? "binary" : "text", opts.pipeline, secs,
        per_second(r.window.messages_received, secs),
        per_second(r.window.payload_bytes_received, secs) / 1e6);
  } else if (r.mode == "fanout") {
    char paced_text[64];
    std::snprintf(paced_text, sizeof paced_text, "paced at %g msg/s, ", opts.rate);
    std::printf(
        "fanout: %zu subscribers, %zu B %s, burst %zu, %s%.2f s: %.0f deliveries/s (%.0f messages "
        "published/s)\n",
        r.opened, opts.size, opts.binary ? "binary" : "text", opts.burst,
        opts.rate == 0 ? "closed loop, " : paced_text, secs,
        per_second(r.window.messages_received, secs), per_second(r.window.messages_sent, secs));
  } else if (r.mode == "pusher") {
    const PusherFigures& p = r.pusher;
    char how_text[96];
    if (opts.rate > 0) {
      std::snprintf(how_text, sizeof how_text, "%g publishes/s in bursts of %zu", opts.rate, opts.burst);
    } else {
      std::snprintf(how_text, sizeof how_text, "unthrottled (window %zu)", opts.window);
    }
    const std::string how = how_text;
    std::printf(
        "pusher: %zu subscribers of %s, %zu B data, %s, %zu API connection(s), %.2f s: %.0f deliveries/s "
        "(%.1f API publishes/s",
        p.subscribers, opts.channel.c_str(), opts.size, how.c_str(), p.api_connections, secs,
        per_second(p.deliveries, secs), per_second(p.publishes, secs));
    if (opts.rate > 0) std::printf(" of %.1f due", per_second(p.publishes_due, secs));
    std::printf(")\n");
    std::printf(
        "  API: answer p50 %.0f us, p99 %.0f us; %llu connections opened in the window (%.2f per publish), "
        "%llu closed by the server",
        us(p.api_latency.percentile(0.5)), us(p.api_latency.percentile(0.99)),
        static_cast<unsigned long long>(p.api_connects_window),
        p.publishes ? static_cast<double>(p.api_connects_window) / static_cast<double>(p.publishes) : 0.0,
        static_cast<unsigned long long>(p.api_closed_by_server_window));
    if (opts.rate > 0) {
      std::printf("; behind schedule p99 %.0f us, max %.0f us", us(p.publish_lag.percentile(0.99)),
                  us(p.publish_lag.max()));
    }
    std::printf("\n");
  } else if (r.mode == "pusher-idle") {
    std::printf("pusher-idle: %zu connections subscribed to %s, held for %.2f s\n", r.pusher.subscribers,
                opts.channel.c_str(), secs);
  } else if (r.mode == "handshake") {
    std::printf("handshake: %zu concurrent, %.2f s: %.0f handshakes/s\n", r.connections, secs,
                per_second(r.window.handshakes, secs));
  } else {
    std::printf("idle: %zu connections open for %.2f s\n", r.opened, secs);
  }
  if (lat.count() > 0) {
    std::printf("  %s latency: p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
                r.mode == "handshake"                      ? "connect-to-101"
                : r.mode == "fanout" || r.mode == "pusher" ? "publish-to-receipt"
                                                           : "round-trip",
                us(lat.percentile(0.50)), us(lat.percentile(0.90)), us(lat.percentile(0.99)),
                us(lat.percentile(0.999)), us(lat.max()));
  }
  const double client_pct = percent(r.window_end.self_cpu_s - r.window_start.self_cpu_s, secs);
  const double server_s = server_cpu_s(r);
  if (server_s > 0 && work_done(r) > 0) {
    std::printf("  server CPU %.0f%% (%.0f per server CPU-second), load generator CPU %.0f%%\n",
                percent(server_s, secs), static_cast<double>(work_done(r)) / server_s, client_pct);
  } else if (server_s >= 0) {
    std::printf("  server CPU %.0f%%, load generator CPU %.0f%%\n", percent(server_s, secs), client_pct);
  } else {
    std::printf("  load generator CPU %.0f%%\n", client_pct);
  }
  if (r.server_syscalls >= 0 && work_done(r) > 0) {
    std::printf("  server system calls: %lld, %.3f per %s\n", static_cast<long long>(r.server_syscalls),
                static_cast<double>(r.server_syscalls) / static_cast<double>(work_done(r)),
                r.mode == "handshake" ? "handshake" : r.mode == "fanout" ? "delivery" : "message");
  }
  if (r.server_rss_before >= 0 && r.server_rss_after >= 0 && r.opened > 0) {
    std::printf(
        "  server VmRSS %.1f MiB -> %.1f MiB: %.0f bytes per connection\n",
        static_cast<double>(r.server_rss_before) / 1048576.0,
        static_cast<double>(r.server_rss_after) / 1048576.0,
        static_cast<double>(r.server_rss_after - r.server_rss_before) / static_cast<double>(r.opened));
  }
  const Stats& t = r.totals;
  std::printf(
      "  errors: %llu (connect %llu, handshake %llu, protocol %llu, echo mismatch %llu, delivery %llu, "
      "subscribe %llu, API %llu, unexpected close %llu, timeout %llu)\n",
      static_cast<unsigned long long>(t.errors()), static_cast<unsigned long long>(t.connect_errors),
      static_cast<unsigned long long>(t.handshake_errors), static_cast<unsigned long long>(t.protocol_errors),
      static_cast<unsigned long long>(t.echo_mismatches), static_cast<unsigned long long>(t.delivery_errors),
      static_cast<unsigned long long>(t.subscribe_errors), static_cast<unsigned long long>(t.api_errors),
      static_cast<unsigned long long>(t.unexpected_closes), static_cast<unsigned long long>(t.timeouts));
  for (const auto& [code, n] : t.server_close_codes) {
    if (code != 1000) {
      std::printf("  server closed %llu connection(s) with code %u\n", static_cast<unsigned long long>(n),
                  code);
    }
  }
  if (!r.failure.empty()) std::printf("FAILED: %s\n", r.failure.c_str());
}

}  // namespace

void print_report(const Report& report, const Options& opts) {
  if (opts.json) {
    print_json(report, opts);
  } else {
    print_human(report, opts);
  }
  std::fflush(stdout);
}

}  // namespace windlass::load
