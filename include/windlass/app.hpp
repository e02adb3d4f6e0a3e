// App: the whole stack in one object, as Ratchet's App wires IoServer,
// HttpServer, Router and WsServer:
//
//   windlass::App app({.port = 8080});
//   app.route("/chat", std::make_shared<Chat>());
//   app.route("/app/:key", std::make_shared<Hub>());   // the key reaches on_upgrade
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
#include <vector>

#include "windlass/access.hpp"
#include "windlass/broker.hpp"
#include "windlass/component.hpp"
#include "windlass/http.hpp"
#include "windlass/loop.hpp"
#include "windlass/stats.hpp"
#include "windlass/ws_options.hpp"

namespace windlass {

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
  // An AsyncHttpHandler must answer within this time -> 504.
  std::chrono::milliseconds async_response_timeout{10'000};
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
  // listener. 0: one per CPU this process may run on (its affinity mask,
  // and the cgroup's CPU quota when one is set: under `taskset -c 0` or
  // in a container limited to 2 CPUs, 1 or 2). A connection stays on the
  // loop that accepted it, and all its callbacks run on that loop's thread.
  unsigned threads = 0;
  // What the loops wait with: io_uring (one system call per loop turn for
  // all of its sockets' receives and sends) where this kernel and process
  // allow it, else epoll, with one log line saying why. `epoll` or
  // `io_uring` insist (the App's constructor throws if io_uring cannot be
  // used). Both backends behave alike; see Loop and IoBackend.
  IoBackend io = IoBackend::automatic;
  // This node's number in a cluster, 0 to 2^24-1: the top bits of every
  // connection id (Connection::id()), so ids are unique across nodes that
  // have different node ids (Pusher's socket_id is "node.counter").
  uint32_t node_id = 0;
  // Called for every handshake, plain HTTP answer, refusal and WebSocket
  // close, on the loop thread that saw it (so it must be thread-safe when
  // threads > 1). Empty: no access log.
  std::function<void(const AccessEvent&)> on_access;
  // Origin allow-list (403), IP blocklist (403), trusted proxies for the
  // real client address, per-IP connection limit (429), applied to every
  // route through the decorators of decorators.hpp. See access.hpp.
  AccessOptions access;
};

class App {
 public:
  explicit App(ServerOptions options = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Routes (before run()). A pattern is an exact path ("/chat"), or has
  // segments ":name" that capture one non-empty segment ("/app/:key"), or
  // ends in a segment "*" that captures the rest of the path, possibly
  // empty ("/files/*"; "/*" catches every path). Captures reach the
  // component as Request::params (in on_upgrade) and HTTP handlers as the
  // same. Exact paths are found first, with one hash lookup; among the
  // patterns that match, the most specific wins (segment by segment: a
  // literal before a parameter before "*"). A malformed pattern, or the
  // same one twice, throws std::invalid_argument.
  //
  // A path may have both a WebSocket route and an HTTP handler: upgrade
  // requests go to the first, the rest to the second.
  App& route(std::string pattern, std::shared_ptr<MessageComponent> component, WsOptions options = {});
  App& http(std::string pattern, HttpHandler handler);
  App& http_async(std::string pattern, AsyncHttpHandler handler);
  // A check every request passes before it is routed (see RequestFilter).
  App& filter(std::shared_ptr<RequestFilter> filter);

  // The broker Connection::subscribe/publish go through: the local one,
  // unless set_broker() installed a decorator of it (before run()).
  Broker& broker() const noexcept;
  std::shared_ptr<Broker> local_broker() const noexcept;
  App& set_broker(std::shared_ptr<Broker> broker);

  // Per-loop lifecycle (before run()): `fn` runs on each loop's thread
  // before that loop serves its first connection, and after its last
  // connection is gone (its stop hooks in reverse order of registration).
  // See LoopLocal in loop_local.hpp for a typed per-loop slot.
  App& on_loop_start(std::function<void(Loop&)> fn);
  App& on_loop_stop(std::function<void(Loop&)> fn);

  // Binds the listeners now (so port() is known before run()).
  App& listen();
  uint16_t port() const noexcept;
  uint16_t tls_port() const noexcept;  // 0 without TLS
  // Re-reads the TLS certificate and key (what SIGHUP does). Throws on
  // failure, keeping the current ones. Any thread.
  void reload_tls();

  // Runs the loops (the first on this thread) until stop() or a signal's
  // graceful shutdown completes.
  void run();
  // Thread-safe graceful shutdown: stop accepting, close every client with
  // 1001, wait up to shutdown_timeout, return from run().
  void stop();

  // Any thread: broker().publish() of one text or binary message.
  void publish(std::string_view topic, std::string_view data, MessageKind kind = MessageKind::text);

  // Every loop; loop(0) is the one run() is called on. Loop::index() is
  // the argument that finds it again.
  Loop& loop(size_t index = 0) noexcept;
  unsigned thread_count() const noexcept;
  uint32_t node_id() const noexcept;
  // Counters summed over the loops, and the process's RSS. Any thread.
  Stats stats() const;
  // Open connections over all loops (a snapshot; any thread).
  size_t connection_count() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The number of CPUs this process may run on: its affinity mask
// (sched_getaffinity), capped by the cgroup's CPU quota when one is set
// (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us),
// rounded up. At least 1. What ServerOptions::threads = 0 uses.
unsigned usable_cpu_count() noexcept;

}  // namespace windlass
