// Runs an App on its own thread for a test, and stops it at the end.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "windlass/windlass.hpp"

namespace windlass::test {

// Options for a test server: loopback, a free port, no signal handlers.
inline ServerOptions test_options(unsigned threads = 1) {
  ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.handle_signals = false;
  so.threads = threads;
  so.sweep_interval = std::chrono::milliseconds(50);
  return so;
}

class AppRunner {
 public:
  explicit AppRunner(ServerOptions so = test_options()) : app(std::make_unique<App>(std::move(so))) {}
  ~AppRunner() { stop(); }

  // Binds and starts the loops on a thread, and returns once every loop
  // runs: until then a loop counts the thread that made it (this one) as
  // its own, and what the test does through it would race with the loop.
  void start() {
    app->listen();
    port = app->port();
    thread = std::thread([this] { app->run(); });
    for (size_t i = 0; i < app->thread_count(); ++i) {
      std::promise<void> running;
      app->loop(i).post([&running] { running.set_value(); });
      running.get_future().wait();
    }
  }
  void stop() {
    if (thread.joinable()) {
      app->stop();
      thread.join();
    }
  }
  // Runs `fn` on loop `index` and waits for its result.
  template <class F>
  auto on_loop(F fn, size_t index = 0) {
    std::promise<decltype(fn())> p;
    app->loop(index).post([&] {
      if constexpr (std::is_void_v<decltype(fn())>) {
        fn();
        p.set_value();
      } else {
        p.set_value(fn());
      }
    });
    return p.get_future().get();
  }

  std::unique_ptr<App> app;
  std::thread thread;
  uint16_t port = 0;
};

// A condition to wait on from the test thread.
struct Waiter {
  std::mutex m;
  std::condition_variable cv;
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds t = std::chrono::milliseconds(3000)) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, t, pred);
  }
  template <class F>
  void update(F f) {
    {
      std::lock_guard lock(m);
      f();
    }
    cv.notify_all();
  }
};

}  // namespace windlass::test
