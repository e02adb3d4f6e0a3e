#include "loop/mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace windlass::detail {

Mailbox::Mailbox() {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

Mailbox::~Mailbox() {
  ::close(fd_);
}

void Mailbox::post(Loop::Task task) {
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    was_empty = queue_.empty();
    queue_.push_back(std::move(task));
  }
  if (was_empty) {
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the loop will wake.
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
  }
}

void Mailbox::run() {
  {
    std::lock_guard lock(mutex_);
    running_.swap(queue_);
  }
  for (auto& task : running_) task();
  running_.clear();
}

}  // namespace windlass::detail
