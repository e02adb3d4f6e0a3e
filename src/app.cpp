// App: wires Loop -> IoServer -> HttpServer/Router -> WsServer -> components,
// once per loop (a Worker each), with the broker and the decorators that
// ServerOptions::access asks for.
#include "windlass/app.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <thread>

#include "app/worker.hpp"
#include "http/access_control.hpp"
#include "http/http_server.hpp"
#include "log.hpp"
#include "tls/tls_context.hpp"
#include "windlass/decorators.hpp"
#include "ws/local_broker.hpp"
#include "ws/ws_server.hpp"

namespace windlass {

using detail::log_info;
using detail::log_warn;

// ------------------------------------------------------------ Worker

namespace detail {

Worker::Worker(size_t index, const ServerOptions& o, const Routes& routes, std::atomic<size_t>& process_connections,
               WsShared shared, const IpSet* trusted_proxies)
    : loop(o.io),
      topics(&loop),
      ws(loop, resources, topics, shared),
      http(HttpOptions{&o.on_access, trusted_proxies, o.max_head_size, o.max_headers, o.max_body_size,
                       o.max_connections, o.header_timeout, o.async_response_timeout},
           routes, loop),
      io(loop, resources,
         IoOptions{o.max_connections, o.max_send_queue, std::chrono::milliseconds(2000), o.sweep_interval,
                   &process_connections, {}},
         [this](Socket& s) { return http.make_session(s); }) {
  loop.set_index(index);
}

void Worker::begin_shutdown(std::chrono::milliseconds timeout) {
  if (shutting_down) return;
  shutting_down = true;
  io.stop_accepting();
  io.shutdown_all();
  auto deadline = Loop::Clock::now() + timeout;
  loop.add_timer(
      std::chrono::milliseconds(0),
      [this, deadline] {
        if (io.connection_count() == 0) {
          loop.stop();
        } else if (Loop::Clock::now() >= deadline) {
          log_warn("shutdown deadline reached: dropping {} connection(s)", io.connection_count());
          io.abort_all();
          loop.stop();
        }
      },
      std::chrono::milliseconds(20));
}

}  // namespace detail

// ------------------------------------------------------------ App::Impl

namespace {

// What ServerOptions::access compiles to: the decorators every route gets.
struct AccessDecorators {
  std::optional<detail::IpSet> trusted;
  std::shared_ptr<IpBlackList> blocklist;
  std::vector<std::string> origins;
  bool allow_missing_origin = true;
  std::shared_ptr<PerIpCounter> per_ip;

  static AccessDecorators compile(const AccessOptions& a) {
    AccessDecorators d;
    std::string why;
    auto trusted = detail::IpSet::compile(a.trusted_proxies, why);
    if (!trusted) throw std::invalid_argument("access.trusted_proxies" + why);
    if (!trusted->empty()) d.trusted = std::move(*trusted);
    try {
      if (!a.blocklist.empty()) d.blocklist = std::make_shared<IpBlackList>(a.blocklist);
      if (!a.allowed_origins.empty()) {
        // Compiled once here so a bad entry is reported when the App is made.
        OriginCheck probe(std::make_shared<Probe>(), a.allowed_origins, a.allow_missing_origin);
        d.origins = a.allowed_origins;
        d.allow_missing_origin = a.allow_missing_origin;
      }
      if (a.ipv6_prefix_per_ip < 1 || a.ipv6_prefix_per_ip > 128) {
        throw std::invalid_argument("ipv6_prefix_per_ip " + std::to_string(a.ipv6_prefix_per_ip) +
                                    " out of range (1-128)");
      }
      if (a.max_connections_per_ip > 0) d.per_ip = PerIpCounter::make(a.max_connections_per_ip, a.ipv6_prefix_per_ip);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("access.") + e.what());
    }
    return d;
  }

  // Origin first, the count last: a connection refused for another reason
  // is never counted.
  std::shared_ptr<MessageComponent> wrap(std::shared_ptr<MessageComponent> c) const {
    if (per_ip) c = std::make_shared<ConnectionLimit>(std::move(c), per_ip);
    if (!origins.empty()) c = std::make_shared<OriginCheck>(std::move(c), origins, allow_missing_origin);
    return c;
  }

 private:
  struct Probe final : MessageComponent {
    void on_message(Connection&, const Message&) override {}
  };
};

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

struct App::Impl {
  ServerOptions options;
  AccessDecorators access;
  std::atomic<size_t> process_connections{0};
  // Shared by the workers and outliving them (declared before them).
  detail::Routes routes;
  std::vector<std::unique_ptr<detail::WsRoute>> ws_routes;
  std::shared_ptr<detail::LocalBroker> local_broker = std::make_shared<detail::LocalBroker>();
  std::shared_ptr<Broker> broker = local_broker;
  Broker* broker_raw = local_broker.get();  // what the workers read
  std::vector<std::function<void(Loop&)>> start_hooks, stop_hooks;
  std::vector<std::unique_ptr<detail::Worker>> workers;
  bool listening = false;
  bool running = false;
  uint16_t port = 0;
  uint16_t tls_port = 0;
  std::shared_ptr<tls::TlsContext> tls;
  std::atomic<bool> shutdown_requested{false};

  explicit Impl(ServerOptions o) : options(std::move(o)), access(AccessDecorators::compile(options.access)) {
    if (options.max_send_queue == 0 || options.max_send_queue > (size_t{1} << 31)) {
      throw std::invalid_argument("max_send_queue " + std::to_string(options.max_send_queue) +
                                  " out of range (1 byte to 2 GiB)");
    }
    if (options.node_id >= (1u << Connection::kNodeIdBits)) {
      throw std::invalid_argument("node_id " + std::to_string(options.node_id) + " out of range (0-16777215)");
    }
    if (access.blocklist) routes.filters.push_back(access.blocklist);
    unsigned n = options.threads != 0 ? options.threads : usable_cpu_count();
    detail::WsShared shared{&options.on_access, &broker_raw, local_broker.get(), options.node_id};
    for (unsigned i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<detail::Worker>(i, options, routes, process_connections, shared,
                                                         access.trusted ? &*access.trusted : nullptr));
      local_broker->add_loop(&workers.back()->loop, &workers.back()->topics);
    }
  }

  ~Impl() {
    // Workers first: their connections' last callbacks reach the routes'
    // components and the broker, which must still be there.
    workers.clear();
  }

  void before_run(const char* what) const {
    if (running) throw std::logic_error(std::string("App::") + what + " after run()");
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
          detail::Worker* wp = w.get();
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

  // One loop's thread: the start hooks, the loop, the stop hooks.
  void run_worker(detail::Worker& w) {
    auto start = [&] {
      for (auto& hook : start_hooks) {
        try {
          hook(w.loop);
        } catch (const std::exception& e) {
          detail::log_error("loop {}: a start hook threw: {}", w.loop.index(), e.what());
        }
      }
    };
    auto stop = [&] {
      for (auto it = stop_hooks.rbegin(); it != stop_hooks.rend(); ++it) {
        try {
          (*it)(w.loop);
        } catch (const std::exception& e) {
          detail::log_error("loop {}: a stop hook threw: {}", w.loop.index(), e.what());
        }
      }
    };
    w.loop.run(start, stop);
  }
};

App::App(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  // A peer that vanishes must not kill the process when we write to it.
  std::signal(SIGPIPE, SIG_IGN);
  // OpenSSL loads its providers and pages in its digest code on the first
  // SHA-1 (about 2 MB): done here, once, not inside the first handshake,
  // which would otherwise pay for it (and a memory figure taken after
  // start would count it per connection).
  (void)detail::warm_up_handshake();
}

App::~App() = default;

App& App::route(std::string pattern, std::shared_ptr<MessageComponent> component, WsOptions options) {
  impl_->before_run("route");
  if (!component) throw std::invalid_argument("route " + pattern + ": no component");
  auto r = std::make_unique<detail::WsRoute>();
  r->pattern = pattern;
  r->component = impl_->access.wrap(std::move(component));
  r->subprotocols = r->component->subprotocols();
  r->state = r->component->state_traits();
  r->options = options;
  r->deflate = detail::deflate_policy(options.compression);
  std::string error;
  auto rate = detail::RateLimitConfig::compile(options.rate_limit, options.max_message_size, error);
  if (!rate) throw std::invalid_argument("route " + pattern + ": rate_limit: " + error);
  r->rate = *rate;
  if (options.upgrade_timeout_status != 503 && options.upgrade_timeout_status != 504) {
    throw std::invalid_argument("route " + pattern + ": upgrade_timeout_status must be 503 or 504");
  }
  const size_t index = impl_->ws_routes.size();
  if (!impl_->routes.ws.add(std::move(pattern), index, error)) throw std::invalid_argument(error);
  impl_->ws_routes.push_back(std::move(r));
  for (auto& w : impl_->workers) {
    w->ws.add_endpoint(*impl_->ws_routes.back());
    w->http.set_ws_endpoints(w->ws.endpoints());
  }
  return *this;
}

App& App::http(std::string pattern, HttpHandler handler) {
  impl_->before_run("http");
  std::string error;
  if (!impl_->routes.http.add(std::move(pattern), detail::HttpRoute{std::move(handler), {}}, error)) {
    throw std::invalid_argument(error);
  }
  return *this;
}

App& App::http_async(std::string pattern, AsyncHttpHandler handler) {
  impl_->before_run("http_async");
  std::string error;
  if (!impl_->routes.http.add(std::move(pattern), detail::HttpRoute{{}, std::move(handler)}, error)) {
    throw std::invalid_argument(error);
  }
  return *this;
}

App& App::filter(std::shared_ptr<RequestFilter> filter) {
  impl_->before_run("filter");
  if (filter) impl_->routes.filters.push_back(std::move(filter));
  return *this;
}

Broker& App::broker() const noexcept { return *impl_->broker; }
std::shared_ptr<Broker> App::local_broker() const noexcept { return impl_->local_broker; }

App& App::set_broker(std::shared_ptr<Broker> broker) {
  impl_->before_run("set_broker");
  if (!broker) throw std::invalid_argument("set_broker: null broker");
  impl_->broker = std::move(broker);
  impl_->broker_raw = impl_->broker.get();
  return *this;
}

App& App::on_loop_start(std::function<void(Loop&)> fn) {
  impl_->before_run("on_loop_start");
  impl_->start_hooks.push_back(std::move(fn));
  return *this;
}

App& App::on_loop_stop(std::function<void(Loop&)> fn) {
  impl_->before_run("on_loop_stop");
  impl_->stop_hooks.push_back(std::move(fn));
  return *this;
}

App& App::listen() {
  if (impl_->listening) return *this;
  const ServerOptions& o = impl_->options;
  // Every loop gets its own listener on the same address (SO_REUSEPORT):
  // the kernel spreads new connections over them, with no acceptor thread
  // and no lock between loops.
  auto listen_all = [&](detail::ListenerOptions lo) {
    lo.reuse_port = impl_->workers.size() > 1;
    for (auto& w : impl_->workers) {
      lo.port = w->io.listen(lo);  // port 0: the others join the port the first one got
    }
    return lo.port;
  };
  if (o.plain_listener) {
    detail::ListenerOptions lo;
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
    detail::ListenerOptions lo;
    lo.host = o.tls_host.empty() ? o.host : o.tls_host;
    lo.port = o.tls_port;
    lo.tls = impl_->tls;
    lo.plain_text_answer = detail::tls_port_plain_text_answer();
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
  impl_->running = true;
  detail::Worker& first = *impl_->workers.front();
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
    threads.emplace_back([this, w = impl_->workers[i].get()] { impl_->run_worker(*w); });
  }
  impl_->run_worker(first);
  for (auto& t : threads) t.join();
}

void App::stop() { impl_->begin_shutdown(); }

void App::publish(std::string_view topic, std::string_view data, MessageKind kind) {
  impl_->broker_raw->publish(topic, Message{kind, data});
}

Loop& App::loop(size_t index) noexcept {
  return impl_->workers[index < impl_->workers.size() ? index : 0]->loop;
}
unsigned App::thread_count() const noexcept { return static_cast<unsigned>(impl_->workers.size()); }
uint32_t App::node_id() const noexcept { return impl_->options.node_id; }
size_t App::connection_count() const noexcept { return impl_->connection_count(); }

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
