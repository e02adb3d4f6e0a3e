// App: wires Loop -> IoServer -> HttpServer/Router -> WsServer -> components,
// once per thread.
#include "windlass/app.hpp"

#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <unistd.h>
#include <thread>

#include "http/http_server.hpp"
#include "io/io_server.hpp"
#include "log.hpp"
#include "tls/tls_context.hpp"
#include "ws/pubsub.hpp"
#include "ws/ws_server.hpp"

namespace windlass {

using detail::log_info;
using detail::log_warn;

namespace {

// One loop and its layers. Workers share the Router (read-only once run()
// starts) and the components; everything else is theirs alone.
struct Worker {
  Loop loop;
  detail::WsServer ws;
  detail::HttpServer http;
  detail::IoServer io;
  bool shutting_down = false;

  Worker(const ServerOptions& o, detail::Router& router, std::atomic<size_t>& process_connections,
         const detail::AccessPolicy* access)
      : http(detail::HttpOptions{&o.on_access, access, o.max_head_size, o.max_headers, o.max_body_size,
                                 o.max_connections, o.header_timeout},
             router, ws),
        io(loop,
           detail::IoOptions{o.max_connections, o.max_send_queue, std::chrono::milliseconds(2000),
                             o.sweep_interval, &process_connections},
           [this](detail::Socket& s) { return http.make_session(s); }) {
    ws.set_access_hook(&o.on_access);
  }

  // Loop thread: stop accepting, close every client politely, and stop the
  // loop when the last one is gone or at the deadline.
  void begin_shutdown(std::chrono::milliseconds timeout) {
    if (shutting_down) return;
    shutting_down = true;
    io.stop_accepting();
    io.shutdown_all();
    auto deadline = Loop::Clock::now() + timeout;
    loop.add_timer(std::chrono::milliseconds(0), [this, deadline] {
      if (io.connection_count() == 0) {
        loop.stop();
      } else if (Loop::Clock::now() >= deadline) {
        log_warn("shutdown deadline reached: dropping {} connection(s)", io.connection_count());
        io.abort_all();
        loop.stop();
      }
    }, std::chrono::milliseconds(20));
  }
};

}  // namespace

struct App::Impl {
  ServerOptions options;
  std::atomic<size_t> process_connections{0};
  std::optional<detail::AccessPolicy> access;  // outlives the workers that point at it
  detail::Router router;
  detail::Hub hub;
  std::vector<std::unique_ptr<Worker>> workers;
  bool listening = false;
  uint16_t port = 0;
  uint16_t tls_port = 0;
  std::shared_ptr<tls::TlsContext> tls;
  std::atomic<bool> shutdown_requested{false};

  explicit Impl(ServerOptions o) : options(std::move(o)) {
    std::string error;
    access = detail::AccessPolicy::compile(options.access, error);
    if (!access) throw std::invalid_argument(error);
    const detail::AccessPolicy* policy = access->active() ? &*access : nullptr;
    unsigned n = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<Worker>(options, router, process_connections, policy));
      workers.back()->ws.set_hub(&hub);
      hub.add(&workers.back()->loop, &workers.back()->ws.topics());
    }
  }

  // Any thread. Draining starts at once; closing starts after drain_delay.
  void begin_shutdown() {
    if (shutdown_requested.exchange(true)) return;
    log_info("shutting down: {} connection(s) open, closing them in {} ms", connection_count(),
             options.drain_delay.count());
    Loop& first = workers.front()->loop;
    first.post([this, &first] {
      first.add_timer(options.drain_delay, [this] {
        for (auto& w : workers) {
          Worker* wp = w.get();
          w->loop.post([wp, t = options.shutdown_timeout] { wp->begin_shutdown(t); });
        }
      });
    });
  }

  size_t connection_count() const {
    size_t n = 0;
    for (auto& w : workers) n += w->io.connection_count();
    return n;
  }
};

App::App(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  // A peer that vanishes must not kill the process when we write to it.
  std::signal(SIGPIPE, SIG_IGN);
}

App::~App() = default;

App& App::route(std::string path, std::shared_ptr<MessageComponent> component, WsOptions options) {
  auto r = std::make_unique<detail::WsRoute>();
  r->subprotocols = component->subprotocols();
  r->component = std::move(component);
  r->options = options;
  r->deflate = detail::deflate_policy(options.compression);
  std::string error;
  auto rate = detail::RateLimitConfig::compile(options.rate_limit, options.max_message_size, error);
  if (!rate) throw std::invalid_argument("route " + path + ": rate_limit: " + error);
  r->rate = *rate;
  impl_->router.add_ws(std::move(path), std::move(r));
  return *this;
}

App& App::http(std::string path, HttpHandler handler) {
  impl_->router.add_http(std::move(path), std::move(handler));
  return *this;
}

App& App::listen() {
  if (impl_->listening) return *this;
  const ServerOptions& o = impl_->options;
  // Every loop gets its own listener on the same address (SO_REUSEPORT):
  // the kernel spreads new connections over them, with no acceptor thread
  // and no lock between loops.
  auto listen_all = [&](detail::ListenOptions lo) {
    lo.reuse_port = impl_->workers.size() > 1;
    for (auto& w : impl_->workers) {
      lo.port = w->io.listen(lo);  // port 0: the others join the port the first one got
    }
    return lo.port;
  };
  if (o.plain_listener) {
    detail::ListenOptions lo;
    lo.host = o.host;
    lo.port = o.port;
    impl_->port = listen_all(lo);
  }
  if (!o.tls_certificate_file.empty()) {
    tls::TlsConfig tc;
    tc.certificate_chain_file = o.tls_certificate_file;
    tc.private_key_file = o.tls_private_key_file;
    tc.min_version = o.tls_min_version_1_3 ? tls::TlsVersion::tls1_3 : tls::TlsVersion::tls1_2;
    impl_->tls = std::make_shared<tls::TlsContext>(tc);
    detail::ListenOptions lo;
    lo.host = o.tls_host.empty() ? o.host : o.tls_host;
    lo.port = o.tls_port;
    lo.tls = impl_->tls;
    impl_->tls_port = listen_all(lo);
  }
  impl_->listening = true;
  return *this;
}

uint16_t App::tls_port() const noexcept { return impl_->tls_port; }

void App::reload_tls() {
  if (!impl_->tls) return;
  impl_->tls->reload();
  log_info("tls: certificate reloaded (generation {})", impl_->tls->generation());
}

uint16_t App::port() const noexcept { return impl_->port; }

void App::run() {
  listen();
  Worker& first = *impl_->workers.front();
  if (impl_->options.handle_signals) {
    // Registered before the other threads start, so they inherit the
    // blocked mask and the signals reach only the first loop's signalfd.
    auto on_signal = [this](int signo) {
      log_info("received {}", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      impl_->begin_shutdown();
    };
    first.loop.on_signal(SIGINT, on_signal);
    first.loop.on_signal(SIGTERM, on_signal);
    first.loop.on_signal(SIGHUP, [this](int) {
      log_info("received SIGHUP");
      try {
        reload_tls();
      } catch (const std::exception& e) {
        detail::log_error("{}; keeping the current certificate", e.what());
      }
    });
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->workers.size(); ++i) {
    threads.emplace_back([w = impl_->workers[i].get()] { w->loop.run(); });
  }
  first.loop.run();
  for (auto& t : threads) t.join();
}

void App::stop() { impl_->begin_shutdown(); }

void App::publish(std::string_view topic, std::string_view data, MessageKind kind) {
  impl_->hub.publish(topic, detail::make_shared_frame(kind == MessageKind::binary, data), 0);
}

Loop& App::loop() noexcept { return impl_->workers.front()->loop; }
unsigned App::thread_count() const noexcept { return static_cast<unsigned>(impl_->workers.size()); }
size_t App::connection_count() const noexcept { return impl_->connection_count(); }

namespace {
uint64_t resident_bytes() {
  // /proc/self/statm: size resident shared ... in pages.
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}
}  // namespace

Stats App::stats() const {
  Stats s;
  for (auto& w : impl_->workers) {
    LoopStats ls;
    ls.connections_open = w->io.connection_count();
    ls.lag_ms = w->loop.lag_ms();
    s.loops.push_back(ls);
    s.connections_open += ls.connections_open;
    s.connections_accepted += w->io.accepted_total();
    s.send_queue_bytes += w->io.queued_bytes();
    const auto& hc = w->http.counters();
    s.http_requests += hc.requests.get();
    for (size_t i = 0; i < detail::kRefusalSlots; ++i) {
      if (uint64_t n = hc.refused[i].get(); n != 0) {
        s.refused_by_status[i < std::size(detail::kRefusalStatuses) ? detail::kRefusalStatuses[i] : 0] += n;
      }
    }
    const auto& wc = w->ws.counters();
    s.websockets_opened += wc.opened.get();
    s.messages_in += wc.messages_in.get();
    s.bytes_in += wc.bytes_in.get();
    s.messages_out += wc.messages_out.get();
    s.bytes_out += wc.bytes_out.get();
    for (size_t i = 0; i < std::size(wc.closes_by_cause); ++i) {
      if (uint64_t n = wc.closes_by_cause[i].get(); n != 0) s.closes_by_cause[static_cast<CloseCause>(i)] += n;
    }
    for (size_t i = 0; i < detail::kCloseCodeSlots; ++i) {
      if (uint64_t n = wc.close_codes[i].get(); n != 0) {
        s.close_codes[i < std::size(detail::kCountedCloseCodes) ? detail::kCountedCloseCodes[i] : 0] += n;
      }
    }
  }
  s.rss_bytes = resident_bytes();
  s.draining = impl_->shutdown_requested.load();
  return s;
}

}  // namespace windlass
