#include "windlass/loop.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace windlass {

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

// Cross-thread wake-ups: post() appends under a mutex and writes the
// eventfd only when the queue was empty, so a burst of posts costs one
// syscall.
class Loop::Wakeup final : public IoHandler {
 public:
  explicit Wakeup(Loop& loop) : loop_(loop) {
    fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) throw_errno("eventfd");
    loop_.add_fd(fd_, EPOLLIN, this);
  }
  ~Wakeup() { ::close(fd_); }

  void post(Task task) {
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

  void on_io(uint32_t) override {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);
    {
      std::lock_guard lock(mutex_);
      running_.swap(queue_);
    }
    for (auto& task : running_) task();
    running_.clear();
  }

 private:
  Loop& loop_;
  int fd_ = -1;
  std::mutex mutex_;
  std::vector<Task> queue_;
  std::vector<Task> running_;  // kept to reuse its capacity
};

// Signals arrive as reads on a signalfd, so handlers run as ordinary loop
// callbacks instead of in async-signal context.
class Loop::Signals final : public IoHandler {
 public:
  explicit Signals(Loop& loop) : loop_(loop) { sigemptyset(&mask_); }
  ~Signals() {
    if (fd_ >= 0) {
      loop_.remove_fd(fd_);
      ::close(fd_);
    }
  }

  void add(int signo, std::function<void(int)> fn) {
    sigaddset(&mask_, signo);
    // Blocked in this thread so the signalfd, not the default action, gets it.
    if (pthread_sigmask(SIG_BLOCK, &mask_, nullptr) != 0) throw_errno("pthread_sigmask");
    handlers_.emplace_back(signo, std::move(fn));
    int fd = ::signalfd(fd_, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) throw_errno("signalfd");
    if (fd_ < 0) {
      fd_ = fd;
      loop_.add_fd(fd_, EPOLLIN, this);
    }
  }

  void on_io(uint32_t) override {
    signalfd_siginfo info;
    while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      for (auto& [signo, fn] : handlers_) {
        if (signo == static_cast<int>(info.ssi_signo)) fn(signo);
      }
    }
  }

 private:
  Loop& loop_;
  int fd_ = -1;
  sigset_t mask_;
  std::vector<std::pair<int, std::function<void(int)>>> handlers_;
};

namespace {
thread_local Loop* t_current = nullptr;
}  // namespace

Loop* Loop::current() noexcept { return t_current; }

Loop::Loop() : thread_id_(std::this_thread::get_id()), now_(Clock::now()) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  wakeup_ = std::make_unique<Wakeup>(*this);
  signals_ = std::make_unique<Signals>(*this);
}

Loop::~Loop() {
  signals_.reset();
  wakeup_.reset();
  ::close(epoll_fd_);
}

void Loop::post(Task task) { wakeup_->post(std::move(task)); }

void Loop::stop() {
  if (in_loop_thread()) {
    stopping_ = true;
  } else {
    post([this] { stopping_ = true; });
  }
}

void Loop::defer(Task task) { deferred_.push_back(std::move(task)); }

void Loop::add_before_wait(Task fn) { before_wait_.push_back(std::move(fn)); }

Loop::TimerId Loop::add_timer(std::chrono::milliseconds delay, Task fn,
                              std::chrono::milliseconds repeat) {
  TimerId id = next_timer_id_++;
  timers_.emplace(id, TimerEntry{std::move(fn), repeat});
  timer_heap_.push_back(Timer{Clock::now() + delay, id});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
  return id;
}

// Cancelled timers stay in the heap until they come due and are skipped
// there: cancelling is O(1) and the heap never needs a search.
void Loop::cancel_timer(TimerId id) { timers_.erase(id); }

void Loop::on_signal(int signo, std::function<void(int)> fn) { signals_->add(signo, std::move(fn)); }

void Loop::add_fd(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl(ADD)");
}

void Loop::modify_fd(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) throw_errno("epoll_ctl(MOD)");
}

void Loop::remove_fd(int fd) {
  epoll_event ev{};
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &ev);
}

int Loop::next_timeout_ms() {
  if (!deferred_.empty() || stopping_) return 0;
  // Drop cancelled timers from the top so they do not shorten the wait.
  while (!timer_heap_.empty() && !timers_.contains(timer_heap_.front().id)) {
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
    timer_heap_.pop_back();
  }
  if (timer_heap_.empty()) return -1;
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(timer_heap_.front().due - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
}

void Loop::run_timers() {
  while (!timer_heap_.empty() && timer_heap_.front().due <= now_) {
    Timer t = timer_heap_.front();
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
    timer_heap_.pop_back();
    auto it = timers_.find(t.id);
    if (it == timers_.end()) continue;  // cancelled
    lag_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(now_ - t.due).count(),
                  std::memory_order_relaxed);
    if (it->second.repeat.count() > 0) {
      // Re-armed before running, so the callback may cancel it.
      timer_heap_.push_back(Timer{now_ + it->second.repeat, t.id});
      std::push_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
      Task fn = it->second.fn;  // the callback may cancel and so destroy the entry
      fn();
    } else {
      Task fn = std::move(it->second.fn);
      timers_.erase(it);
      fn();
    }
  }
}

void Loop::run_deferred() {
  // Work deferred by deferred work runs in the next turn, so a task that
  // re-defers itself cannot starve I/O.
  std::vector<Task> batch;
  batch.swap(deferred_);
  for (auto& task : batch) task();
}

void Loop::run() {
  run({}, {});
}

void Loop::run(const std::function<void()>& on_start, const std::function<void()>& on_stop) {
  thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
  Loop* outer = t_current;  // a loop run from inside another loop's callback (tests do)
  t_current = this;
  if (on_start) on_start();
  stopping_ = false;
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stopping_) {
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, next_timeout_ms());
    if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
    now_ = Clock::now();
    for (int i = 0; i < n; ++i) {
      static_cast<IoHandler*>(events[i].data.ptr)->on_io(events[i].events);
    }
    run_timers();
    run_deferred();
    for (auto& fn : before_wait_) fn();
  }
  if (on_stop) on_stop();
  t_current = outer;
}

}  // namespace windlass
