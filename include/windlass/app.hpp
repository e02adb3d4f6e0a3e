// App: the whole stack in one object, as Ratchet's App wires IoServer,
// HttpServer, Router and WsServer:
//
//   windlass::App app({.port = 8080});
//   app.route("/chat", std::make_shared<Chat>());
//   app.http("/*", windlass::static_files("public"));
//   app.run();  // until SIGINT or SIGTERM
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "windlass/access.hpp"
#include "windlass/component.hpp"
#include "windlass/http.hpp"
#include "windlass/loop.hpp"
#include "windlass/stats.hpp"

namespace windlass {

// permessage-deflate (RFC 7692) for a route.
struct CompressionOptions {
  enum class Mode : uint8_t {
    off,             // never negotiated
    shared,          // one compressor per loop for every connection (server_no_context_takeover):
                     // little memory, and a broadcast is compressed once per loop
    per_connection,  // each connection keeps its compression window: better ratios,
                     // about 256 KiB more memory per connection at the default settings
  };
  Mode mode = Mode::off;
  size_t min_size = 64;  // messages shorter than this are sent uncompressed
  int level = 6;         // zlib level 1..9
  int mem_level = 8;     // zlib memLevel 1..9
  int server_max_window_bits = 15;  // 9..15 (8 is negotiated as 9: zlib's raw deflate minimum)
  int client_max_window_bits = 15;  // asked of clients that offer client_max_window_bits
  bool client_no_context_takeover = false;  // ask clients to reset per message: we then inflate
                                            // with no window kept between messages
};

// Per WebSocket route.
struct WsOptions {
  // Largest message accepted (sum of its frames' payloads); larger -> close 1009.
  size_t max_message_size = 1u << 20;
  // Send a ping after this long without hearing from the client; 0 disables keepalive.
  std::chrono::milliseconds ping_interval{30'000};
  // Close a connection whose ping went unanswered this long (CloseCause::keepalive_timeout).
  std::chrono::milliseconds pong_timeout{30'000};
  // How long to wait for the client's close frame after sending ours (RFC 6455 §7.1.1).
  std::chrono::milliseconds close_timeout{5'000};
  CompressionOptions compression;
  // Per connection: messages and bytes per second with a burst; a client
  // over it is closed with 1008 (CloseCause::rate_limited). Zero: no limit.
  RateLimit rate_limit;
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // IPv4, IPv6 ("::" takes both), or a name
  uint16_t port = 8080;            // 0: pick a free port (see App::port())
  // Open connections (HTTP and WebSocket); a handshake past it gets 503.
  size_t max_connections = 10000;
  // Bytes queued for one connection before it is closed as a slow consumer
  // (close code 1008, CloseCause::slow_consumer).
  size_t max_send_queue = 16u << 20;
  size_t max_head_size = 8192;  // request head; larger -> 431
  size_t max_headers = 64;      // header lines; more -> 431
  size_t max_body_size = 1u << 20;  // plain HTTP request bodies; larger -> 413
  // A request head must arrive within this time (slowloris) -> 408.
  std::chrono::milliseconds header_timeout{10'000};
  // SIGTERM/SIGINT: clients get close 1001; the process exits after all are
  // gone or after this deadline.
  std::chrono::milliseconds shutdown_timeout{10'000};
  // Before closing anything, keep serving this long with stats().draining
  // set, so a load balancer polling /readyz stops sending new clients.
  std::chrono::milliseconds drain_delay{0};
  // Granularity of per-connection deadlines (timeouts are checked by a sweep).
  std::chrono::milliseconds sweep_interval{1'000};
  bool handle_signals = true;  // install the SIGINT/SIGTERM (and SIGHUP) handlers in run()
  // A TLS listener (wss://, https://) beside the plain one, when a
  // certificate is given. Both serve the same routes. SIGHUP re-reads the
  // certificate and key without dropping open connections.
  std::string tls_host;  // empty: same as host
  uint16_t tls_port = 0;  // 0 with a certificate: pick a free port (see App::tls_port())
  std::string tls_certificate_file;  // PEM chain, leaf first
  std::string tls_private_key_file;  // PEM, unencrypted
  bool tls_min_version_1_3 = false;  // default minimum: TLS 1.2
  bool plain_listener = true;        // false: TLS only
  // Event loops, one thread each, each accepting on its own SO_REUSEPORT
  // listener; 0 means one per core. A connection stays on the loop that
  // accepted it, and all its callbacks run on that loop's thread.
  unsigned threads = 0;
  // Called for every handshake, plain HTTP answer, refusal and WebSocket
  // close, on the loop thread that saw it (so it must be thread-safe when
  // threads > 1). Empty: no access log.
  std::function<void(const AccessEvent&)> on_access;
  // Origin allow-list (403), IP blocklist (403), trusted proxies for the
  // real client address, per-IP connection limit (429). See access.hpp.
  AccessOptions access;
};

class App {
 public:
  explicit App(ServerOptions options = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // A WebSocket endpoint at exactly `path`.
  App& route(std::string path, std::shared_ptr<MessageComponent> component, WsOptions options = {});
  // A plain HTTP endpoint: exactly `path`, or every path under a prefix
  // when `path` ends in "/*" ("/*" catches all). A path may have both a
  // WebSocket route and an HTTP handler: upgrade requests go to the first,
  // the rest to the second.
  App& http(std::string path, HttpHandler handler);

  // Binds the listener now (so port() is known before run()).
  App& listen();
  uint16_t port() const noexcept;
  uint16_t tls_port() const noexcept;  // 0 without TLS
  // Re-reads the TLS certificate and key (what SIGHUP does). Throws on
  // failure, keeping the current ones. Any thread.
  void reload_tls();

  // Runs the loop until stop() or a signal's graceful shutdown completes.
  void run();
  // Thread-safe graceful shutdown: stop accepting, close every client with
  // 1001, wait up to shutdown_timeout, return from run().
  void stop();

  // Sends to every subscriber of `topic` on every loop (Connection::subscribe).
  // Any thread.
  void publish(std::string_view topic, std::string_view data, MessageKind kind = MessageKind::text);

  // The first loop (the one run() is called on).
  Loop& loop() noexcept;
  unsigned thread_count() const noexcept;
  // Counters summed over the loops, and the process's RSS. Any thread.
  Stats stats() const;
  // Open connections over all loops (a snapshot; any thread).
  size_t connection_count() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "trace", "debug", "info", "warn", "error", "off". False for an unknown name.
bool set_log_level(std::string_view level);

}  // namespace windlass
