// App: wires Loop -> IoServer -> HttpServer/Router -> WsServer -> components.
#include "windlass/app.hpp"

#include <signal.h>

#include <csignal>

#include "http/http_server.hpp"
#include "io/io_server.hpp"
#include "log.hpp"
#include "ws/ws_server.hpp"

namespace windlass {

using detail::log_info;
using detail::log_warn;

struct App::Impl {
  ServerOptions options;
  Loop loop;
  detail::Router router;
  detail::WsServer ws;
  detail::HttpServer http;
  detail::IoServer io;
  bool listening = false;
  uint16_t port = 0;
  bool shutting_down = false;

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        http(detail::HttpOptions{options.max_head_size, options.max_headers, options.max_body_size,
                                 options.max_connections, options.header_timeout},
             router, ws),
        io(loop,
           detail::IoOptions{options.max_connections, options.max_send_queue,
                             std::chrono::milliseconds(2000), options.sweep_interval},
           [this](detail::Socket& s) { return http.make_session(s); }) {}

  // Graceful shutdown (loop thread): stop accepting, close every client
  // politely, and stop the loop when the last one is gone or at the deadline.
  void begin_shutdown() {
    if (shutting_down) return;
    shutting_down = true;
    log_info("shutting down: {} connection(s) open", io.connection_count());
    io.stop_accepting();
    io.shutdown_all();
    auto deadline = Loop::Clock::now() + options.shutdown_timeout;
    auto check = [this, deadline] {
      if (io.connection_count() == 0) {
        loop.stop();
      } else if (Loop::Clock::now() >= deadline) {
        log_warn("shutdown deadline reached: dropping {} connection(s)", io.connection_count());
        io.abort_all();
        loop.stop();
      }
    };
    loop.add_timer(std::chrono::milliseconds(0), check, std::chrono::milliseconds(20));
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
  impl_->router.add_ws(std::move(path), std::move(r));
  return *this;
}

App& App::http(std::string path, HttpHandler handler) {
  impl_->router.add_http(std::move(path), std::move(handler));
  return *this;
}

App& App::listen() {
  if (!impl_->listening) {
    detail::ListenOptions lo;
    lo.host = impl_->options.host;
    lo.port = impl_->options.port;
    impl_->port = impl_->io.listen(lo);
    impl_->listening = true;
  }
  return *this;
}

uint16_t App::port() const noexcept { return impl_->port; }

void App::run() {
  listen();
  if (impl_->options.handle_signals) {
    auto on_signal = [this](int signo) {
      log_info("received {}", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      impl_->begin_shutdown();
    };
    impl_->loop.on_signal(SIGINT, on_signal);
    impl_->loop.on_signal(SIGTERM, on_signal);
  }
  impl_->loop.run();
}

void App::stop() {
  impl_->loop.post([this] { impl_->begin_shutdown(); });
}

Loop& App::loop() noexcept { return impl_->loop; }
size_t App::connection_count() const noexcept { return impl_->io.connection_count(); }

}  // namespace windlass
