// A way into a loop's mailbox for answers that come from other threads
// (a deferred handshake, an asynchronous HTTP response) and may come after
// the App is gone: its owner (a WsServer, an HttpServer) closes it when it
// goes, and a post after that is dropped instead of reaching a destroyed
// loop. The lock orders the last post before the close.
#pragma once

#include <mutex>
#include <utility>

#include "windlass/loop.hpp"

namespace windlass::detail {

class LoopGate {
 public:
  explicit LoopGate(Loop& loop) noexcept : loop_(&loop) {}
  // False when the gate is closed (the task is dropped).
  bool post(Loop::Task task) {
    std::lock_guard lock(mu_);
    if (loop_ == nullptr) return false;
    loop_->post(std::move(task));
    return true;
  }
  void close() noexcept {
    std::lock_guard lock(mu_);
    loop_ = nullptr;
  }

 private:
  std::mutex mu_;
  Loop* loop_;
};

}  // namespace windlass::detail
