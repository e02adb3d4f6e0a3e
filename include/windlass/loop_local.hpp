// A typed per-loop slot: one T for each loop of an App, created on that
// loop's thread when it starts and destroyed on it after its last
// connection is gone, so a hub's channel table or a bridge's connection
// lives on each loop without a lock.
//
//   struct Rooms { std::unordered_map<std::string, int> members; };
//   windlass::LoopLocal<Rooms> rooms(app, [](windlass::Loop&) { return std::make_unique<Rooms>(); });
//   ...
//   void on_open(windlass::Connection& c) override { rooms.get().members["lobby"]++; }  // this loop's
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "windlass/app.hpp"
#include "windlass/loop.hpp"

namespace windlass {

template <class T>
class LoopLocal {
 public:
  using Factory = std::function<std::unique_ptr<T>(Loop&)>;

  // Registers with `app` (before run()). The slot may be destroyed before
  // or after the App: the hooks hold what they need.
  LoopLocal(App& app, Factory make) : slots_(std::make_shared<std::vector<std::unique_ptr<T>>>(app.thread_count())) {
    app.on_loop_start([slots = slots_, make = std::move(make)](Loop& loop) { (*slots)[loop.index()] = make(loop); });
    app.on_loop_stop([slots = slots_](Loop& loop) { (*slots)[loop.index()].reset(); });
  }

  // The calling thread's loop's T: loop threads only, between that loop's
  // start and stop hooks. Anywhere else it throws std::logic_error.
  T& get() const { return at(Loop::current()); }
  // `loop`'s T; only on that loop's thread.
  T& get(const Loop& loop) const { return at(&loop); }

 private:
  T& at(const Loop* loop) const {
    if (loop == nullptr || !loop->in_loop_thread() || loop->index() >= slots_->size() ||
        !(*slots_)[loop->index()]) {
      throw std::logic_error("LoopLocal::get(): not on a running loop's thread");
    }
    return *(*slots_)[loop->index()];
  }
  std::shared_ptr<std::vector<std::unique_ptr<T>>> slots_;
};

}  // namespace windlass
