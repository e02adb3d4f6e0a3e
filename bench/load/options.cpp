#include "options.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace windlass::load {
namespace {

constexpr const char* kUsage = R"(usage: windlass-load MODE [options]

modes:
  echo        N connections each send a message and wait for its echo, for
              --duration seconds after --warmup (or exactly --count times);
              reports messages/s and round-trip latency percentiles
  fanout      N subscribers and one publisher on a chat-like server (every
              message goes to every other client at the path, as
              examples/chat does): the publisher writes --burst messages in
              one send, waits until every subscriber has received all of
              them (each checked for order, loss and content), and repeats;
              reports deliveries/s and publish-to-receipt latency
  handshake   keep N connections cycling connect -> upgrade -> close;
              reports handshakes/s and connect-to-101 latency
  idle        open N connections and hold them for --duration seconds;
              with --server-pid, reports the server's memory per connection
  pusher      a Pusher-protocol server (windlass-server's channels hub,
              Soketi): N subscribers connect to /app/{key}?protocol=7 and
              subscribe to one public channel; a publisher POSTs signed
              events to the HTTP API (/apps/{id}/events), at --rate or
              unthrottled, each carrying its sequence number and send time
              in its data; every subscriber checks order, loss and content;
              reports deliveries/s, publish-to-receipt latency, API calls
              and the API connections they needed
  pusher-idle N connections each subscribed to the channel, held for
              --duration seconds; with --server-pid, the server's memory
              per subscribed connection

target:
  --url ws://HOST:PORT/PATH   or the three below
  --host HOST                 default 127.0.0.1
  --port PORT                 required unless --url gives it
  --path PATH                 default /
  --spread PORT,PORT,...      the WebSocket clients connect round-robin to
                              these ports of --host (client i to the
                              (i mod n)-th): the nodes of a cluster; the
                              pusher mode's API calls still go to --port
                              (not in fanout, whose publisher is a client)

workload:
  --connections N   default 100 (capped by RLIMIT_NOFILE, which is raised
                    to its hard limit); in fanout, the subscribers (the
                    publisher is one more connection)
  --size BYTES      payload per message, default 20; fanout needs >= 16
                    (sequence number and send time, then filler)
  --binary          send binary messages (default text)
  --pipeline K      messages in flight per connection, default 1
  --burst K         fanout: messages per burst, written in one send,
                    default 1 (light); 32 queues 32 per subscriber (heavy)
  --rate R          fanout: publish R messages a second (a burst every
                    burst/R s) whether or not the last ones have arrived,
                    like a chat room's steady traffic; default 0: the next
                    burst waits until every subscriber has the last one
  --duration SEC    measured time, default 10
  --warmup SEC      unmeasured time before it, default 2
  --count N         echo: exactly N round trips per connection, then close
                    and exit (no warmup; N may be 0 for a baseline of just
                    the handshakes and closes); for instruction counts
  --max-connecting C  connections in connect/handshake at once, default 256

pusher, pusher-idle:
  --app-id ID         default app-id (the API path /apps/ID/events)
  --app-key KEY       default app-key (the endpoint /app/KEY and auth_key)
  --app-secret SECRET default app-secret (signs every API call)
  --channel NAME      public channel, default bench
  --event NAME        event name, default bench-event
  --size BYTES        of each event's data string (JSON text with the
                      sequence numbers, send time and filler), default 100,
                      at least 100
  --rate R            publishes per second, in bursts of --burst at once
                      (every burst/R seconds); default 0: unthrottled, as
                      fast as the API answers, with at most --window
                      publishes not yet received by every subscriber
  --window W          unthrottled: default 64
  --api-connections L HTTP connections to the API, each with one request in
                      flight, default 1; a burst spreads over them
  --api-close         send Connection: close on every call (by default the
                      publisher asks for keep-alive; a server that closes
                      anyway is counted, and the connection reopened)
  --path PATH         default /app/KEY?protocol=7&client=windlass-load&version=1.0

output:
  --server-pid PID  also report that process's CPU use over the measured
                    window (from /proc/PID/stat) and, in idle mode, its
                    memory growth (VmRSS from /proc/PID/status); a list
                    PID,PID,... (at most 8: a cluster's nodes and Redis)
                    sums their CPU and reports each (memory: the first's)
  --count-syscalls  with --server-pid: also count the (first) server's system
                    calls over the window (perf's raw_syscalls:sys_enter
                    tracepoint; root or perf_event_paranoid <= 1), reported
                    as calls per unit of work
  --json            print one JSON object instead of the human summary
  --quiet           no progress lines on stderr
)";

bool parse_number(std::string_view text, uint64_t& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

bool parse_number(std::string_view text, double& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && out >= 0;
}

bool parse_port(std::string_view text, uint16_t& out) {
  uint64_t value = 0;
  if (!parse_number(text, value) || value == 0 || value > 65535) return false;
  out = static_cast<uint16_t>(value);
  return true;
}

// A comma-separated list of at most `max` items, each parsed by `one`.
template <class T, class One>
bool parse_list(std::string_view text, size_t max, std::vector<T>& out, One&& one) {
  out.clear();
  for (;;) {
    const size_t comma = text.find(',');
    T item{};
    if (!one(text.substr(0, comma), item) || out.size() == max) return false;
    out.push_back(item);
    if (comma == std::string_view::npos) return true;
    text.remove_prefix(comma + 1);
  }
}

// ws://host[:port][/path]; host may be a bracketed IPv6 literal.
bool parse_url(std::string_view url, Options& out) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  url.remove_prefix(kScheme.size());

  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  out.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return false;
      port_text = authority.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return false;
  if (port_text.empty()) {
    out.port = 80;
    return true;
  }
  return parse_port(port_text, out.port);
}

// Pusher app ids and keys: [-a-zA-Z0-9_.], so they need no escaping in a
// path or a query.
bool is_plain_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > 128) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A public channel: [-a-zA-Z0-9_=@,.;], at most 164, and no prefix that
// needs an auth signature.
bool is_public_channel(std::string_view s) noexcept {
  if (s.empty() || s.size() > 164) return false;
  if (s.starts_with("private-") || s.starts_with("presence-")) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '=' || c == '@' || c == ',' || c == '.' || c == ';';
    if (!ok) return false;
  }
  return true;
}

// An event name written into JSON as is: no quote, backslash or control
// character.
bool is_plain_event(std::string_view s) noexcept {
  if (s.empty() || s.size() > 200) return false;
  for (const char c : s) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

bool fail(const char* what, std::string_view arg) {
  std::fprintf(stderr, "windlass-load: %s: %.*s\n\n%s", what, static_cast<int>(arg.size()), arg.data(),
               kUsage);
  return false;
}

}  // namespace

bool parse_options(int argc, char** argv, Options& out, bool& help) {
  help = false;
  bool size_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      help = true;
      return false;
    }
    if (arg.substr(0, 2) != "--") {
      if (!out.mode.empty()) return fail("unexpected argument", arg);
      out.mode = std::string(arg);
      continue;
    }
    if (arg == "--binary") {
      out.binary = true;
      continue;
    }
    if (arg == "--json") {
      out.json = true;
      continue;
    }
    if (arg == "--count-syscalls") {
      out.count_syscalls = true;
      continue;
    }
    if (arg == "--api-close") {
      out.api_close = true;
      continue;
    }
    if (arg == "--quiet") {
      out.quiet = true;
      continue;
    }

    if (i + 1 >= argc) return fail("missing value for", arg);
    const std::string_view value = argv[++i];
    uint64_t number = 0;
    bool ok = true;
    if (arg == "--url") {
      ok = parse_url(value, out);
      out.path_given = value.find('/', 5) != std::string_view::npos;
    } else if (arg == "--host") {
      out.host = std::string(value);
    } else if (arg == "--port") {
      ok = parse_port(value, out.port);
    } else if (arg == "--spread") {
      ok = parse_list(value, 64, out.spread, [](std::string_view t, uint16_t& p) { return parse_port(t, p); });
    } else if (arg == "--path") {
      out.path = std::string(value);
      out.path_given = true;
      ok = !out.path.empty() && out.path.front() == '/';
    } else if (arg == "--connections") {
      ok = parse_number(value, number) && number > 0;
      out.connections = static_cast<size_t>(number);
    } else if (arg == "--size") {
      ok = parse_number(value, number) && number <= (uint64_t{1} << 30);
      out.size = static_cast<size_t>(number);
      size_given = true;
    } else if (arg == "--pipeline") {
      ok = parse_number(value, number) && number > 0 && number <= 4096;
      out.pipeline = static_cast<size_t>(number);
    } else if (arg == "--burst") {
      ok = parse_number(value, number) && number > 0 && number <= 4096;
      out.burst = static_cast<size_t>(number);
    } else if (arg == "--duration") {
      ok = parse_number(value, out.duration_s);
    } else if (arg == "--warmup") {
      ok = parse_number(value, out.warmup_s);
    } else if (arg == "--count") {
      ok = parse_number(value, out.count);
      out.counted = true;
    } else if (arg == "--max-connecting") {
      ok = parse_number(value, number) && number > 0;
      out.max_connecting = static_cast<size_t>(number);
    } else if (arg == "--app-id") {
      out.app_id = std::string(value);
      ok = is_plain_id(value);
    } else if (arg == "--app-key") {
      out.app_key = std::string(value);
      ok = is_plain_id(value);
    } else if (arg == "--app-secret") {
      out.app_secret = std::string(value);
      ok = !value.empty();
    } else if (arg == "--channel") {
      out.channel = std::string(value);
      ok = is_public_channel(value);
    } else if (arg == "--event") {
      out.event = std::string(value);
      ok = is_plain_event(value);
    } else if (arg == "--rate") {
      ok = parse_number(value, out.rate) && out.rate <= 1e7;
    } else if (arg == "--window") {
      ok = parse_number(value, number) && number > 0 && number <= 1'000'000;
      out.window = static_cast<size_t>(number);
    } else if (arg == "--api-connections") {
      ok = parse_number(value, number) && number > 0 && number <= 256;
      out.api_connections = static_cast<size_t>(number);
    } else if (arg == "--server-pid") {
      ok = parse_list(value, 8, out.server_pids, [](std::string_view t, int& pid) {
        uint64_t n = 0;
        if (!parse_number(t, n) || n == 0 || n >= (uint64_t{1} << 31)) return false;
        pid = static_cast<int>(n);
        return true;
      });
      out.server_pid = ok ? out.server_pids.front() : 0;
    } else {
      return fail("unknown option", arg);
    }
    if (!ok) return fail("bad value", std::string(arg) + " " + std::string(value));
  }
  if (out.mode.empty()) return fail("missing mode", "echo, fanout, handshake, idle, pusher or pusher-idle");
  if (out.count_syscalls && out.server_pid == 0) return fail("--count-syscalls needs", "--server-pid");
  if (out.port == 0) return fail("missing target", "give --port or --url");
  if (out.mode == "fanout") {
    if (!out.spread.empty()) return fail("--spread is not for fanout", "its publisher is one of the clients");
    if (out.size < 16) return fail("fanout needs --size 16 or more", std::to_string(out.size));
    if (out.counted) return fail("--count is for echo only", "fanout is timed");
  }
  if (out.mode == "pusher" || out.mode == "pusher-idle") {
    if (!size_given) out.size = 100;
    if (out.size < 100) return fail("pusher needs --size 100 or more", std::to_string(out.size));
    if (out.size > 10 * 1024)
      return fail("pusher: --size over Pusher's 10 KB of data", std::to_string(out.size));
    if (out.counted) return fail("--count is for echo only", out.mode + " is timed");
    if (out.binary) return fail("--binary is not part of the Pusher protocol", out.mode);
    if (!out.path_given) out.path = "/app/" + out.app_key + "?protocol=7&client=windlass-load&version=1.0";
  }
  return true;
}

}  // namespace windlass::load
