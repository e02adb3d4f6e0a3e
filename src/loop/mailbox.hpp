// The loop's mailbox: tasks posted from any thread, run on the loop's.
// post() appends under a mutex and writes the eventfd only when the queue
// was empty, so a burst of posts costs the posting threads one system call
// between them; the backend watches the eventfd (epoll: a read after it is
// ready; io_uring: a read kept in the ring, so the loop spends no system
// call of its own on a wake-up).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "windlass/loop.hpp"

namespace windlass::detail {

class Mailbox {
 public:
  Mailbox();
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  int fd() const noexcept { return fd_; }
  // Any thread.
  void post(Loop::Task task);
  // Loop thread: runs everything posted so far (the eventfd's counter has
  // been read by then, by the backend).
  void run();

 private:
  int fd_ = -1;
  std::mutex mutex_;
  std::vector<Loop::Task> queue_;
  std::vector<Loop::Task> running_;  // kept to reuse its capacity
};

}  // namespace windlass::detail
