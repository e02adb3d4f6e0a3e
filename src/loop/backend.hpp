// What a Loop waits with: one implementation per file, chosen when the
// Loop is made (Redis's ae_epoll.c / ae_kqueue.c, but at run time).
//
//   epoll_backend.cpp  readiness: epoll_wait, then a read or write per
//                      ready descriptor, each its own system call
//   uring.cpp          completions: one io_uring_enter per turn submits the
//                      turn's operations and collects what finished
//
// The Loop keeps what both share: timers, deferred work, the before-wait
// hooks and the mailbox of posted tasks. Loop thread only, except where
// said.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "windlass/loop.hpp"

namespace windlass::detail {

class Mailbox;

class LoopBackend {
 public:
  virtual ~LoopBackend() = default;
  virtual IoBackend kind() const noexcept = 0;

  virtual void add_fd(int fd, uint32_t events, IoHandler* handler) = 0;
  virtual void modify_fd(int fd, uint32_t events, IoHandler* handler) = 0;
  virtual void remove_fd(int fd) = 0;
  // Runs mailbox.run() on the loop thread whenever its eventfd is written.
  virtual void attach_mailbox(Mailbox& mailbox) = 0;

  // One turn: wait up to `timeout_ms` (-1: until something happens) ...
  virtual void wait(int timeout_ms) = 0;
  // ... then call the handlers of what the wait collected.
  virtual void dispatch() = 0;

  // run() starts and ends on the calling thread (io_uring binds its ring
  // to the thread that runs it, and sends the last turn's operations).
  virtual void enter_thread() {}
  virtual void leave_thread() {}
};

// The two backends; both throw std::runtime_error naming the failed call.
std::unique_ptr<LoopBackend> make_epoll_backend();
// Why io_uring cannot be used by this process ("" when it can), probed once.
const std::string& uring_unavailable();
// Null (with `why` set) when io_uring cannot be used here.
std::unique_ptr<LoopBackend> make_uring_backend(std::string& why);

}  // namespace windlass::detail
