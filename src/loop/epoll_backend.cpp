// The epoll backend: level-triggered readiness. Each ready descriptor's
// handler makes its own read or write system call.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "loop/backend.hpp"
#include "loop/mailbox.hpp"

namespace windlass::detail {

namespace {

[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

class EpollBackend final : public LoopBackend {
 public:
  EpollBackend() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw_errno("epoll_create1");
  }
  ~EpollBackend() override { ::close(epoll_fd_); }

  IoBackend kind() const noexcept override { return IoBackend::epoll; }

  void add_fd(int fd, uint32_t events, IoHandler* handler) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl(ADD)");
  }

  void modify_fd(int fd, uint32_t events, IoHandler* handler) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) throw_errno("epoll_ctl(MOD)");
  }

  void remove_fd(int fd) override {
    epoll_event ev{};
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &ev);
  }

  void attach_mailbox(Mailbox& mailbox) override {
    mailbox_watch_.mailbox = &mailbox;
    add_fd(mailbox.fd(), EPOLLIN, &mailbox_watch_);
  }

  void wait(int timeout_ms) override {
    ready_ = ::epoll_wait(epoll_fd_, events_, kMaxEvents, timeout_ms);
    if (ready_ < 0) {
      if (errno != EINTR) throw_errno("epoll_wait");
      ready_ = 0;
    }
  }

  void dispatch() override {
    for (int i = 0; i < ready_; ++i) static_cast<IoHandler*>(events_[i].data.ptr)->on_io(events_[i].events);
    ready_ = 0;
  }

 private:
  struct MailboxWatch final : IoHandler {
    Mailbox* mailbox = nullptr;
    void on_io(uint32_t) override {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(mailbox->fd(), &count, sizeof count);
      mailbox->run();
    }
  };

  static constexpr int kMaxEvents = 256;
  int epoll_fd_ = -1;
  int ready_ = 0;
  epoll_event events_[kMaxEvents];
  MailboxWatch mailbox_watch_;
};

}  // namespace

std::unique_ptr<LoopBackend> make_epoll_backend() {
  return std::make_unique<EpollBackend>();
}

}  // namespace windlass::detail
