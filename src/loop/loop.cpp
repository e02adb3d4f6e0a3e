#include "windlass/loop.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "log.hpp"
#include "loop/backend.hpp"
#include "loop/mailbox.hpp"
#include "loop/uring.hpp"

namespace windlass {

std::string_view to_string(IoBackend backend) noexcept {
  switch (backend) {
    case IoBackend::automatic: return "auto";
    case IoBackend::epoll: return "epoll";
    case IoBackend::io_uring: return "io_uring";
  }
  return "auto";
}

std::optional<IoBackend> parse_io_backend(std::string_view text) noexcept {
  if (text == "auto") return IoBackend::automatic;
  if (text == "epoll") return IoBackend::epoll;
  if (text == "io_uring") return IoBackend::io_uring;
  return std::nullopt;
}

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

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

namespace {

// `auto` says once per process why it took epoll, not once per loop.
void note_fallback(const std::string& why) {
  static std::once_flag once;
  std::call_once(once, [&] { detail::log_info("io: io_uring unavailable ({}); using epoll", why); });
}

// What `auto` means in this process: WINDLASS_IO when it names a backend
// (as libuv's UV_USE_IO_URING does: an operator or a test suite chooses
// for every loop of a program without rebuilding it), else the probe's
// choice. Read once.
IoBackend resolve(IoBackend asked) {
  if (asked != IoBackend::automatic) return asked;
  static const IoBackend from_env = [] {
    const char* v = std::getenv("WINDLASS_IO");
    if (v == nullptr || *v == '\0') return IoBackend::automatic;
    if (auto b = parse_io_backend(v)) return *b;
    detail::log_warn("io: WINDLASS_IO={} is not auto, epoll or io_uring; ignored", v);
    return IoBackend::automatic;
  }();
  return from_env;
}

}  // namespace

Loop::Loop(IoBackend asked) : thread_id_(std::this_thread::get_id()), now_(Clock::now()) {
  const IoBackend backend = resolve(asked);
  if (backend != IoBackend::epoll) {
    std::string why;
    backend_ = detail::make_uring_backend(why);
    if (!backend_) {
      if (backend == IoBackend::io_uring) throw std::runtime_error("io_uring: " + why);
      note_fallback(why);
    } else {
      uring_ = static_cast<detail::Uring*>(backend_.get());
    }
  }
  if (!backend_) backend_ = detail::make_epoll_backend();
  mailbox_ = std::make_unique<detail::Mailbox>();
  backend_->attach_mailbox(*mailbox_);
  signals_ = std::make_unique<Signals>(*this);
}

Loop::~Loop() {
  signals_.reset();
  backend_.reset();  // before the mailbox: io_uring may still hold a read of its eventfd
  mailbox_.reset();
}

IoBackend Loop::backend() const noexcept { return backend_->kind(); }

const std::string& Loop::io_uring_unavailable() { return detail::uring_unavailable(); }

namespace detail {
Uring* uring_of(Loop& loop) noexcept { return loop.uring_; }
}  // namespace detail

void Loop::post(Task task) { mailbox_->post(std::move(task)); }

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

void Loop::add_fd(int fd, uint32_t events, IoHandler* handler) { backend_->add_fd(fd, events, handler); }

void Loop::modify_fd(int fd, uint32_t events, IoHandler* handler) { backend_->modify_fd(fd, events, handler); }

void Loop::remove_fd(int fd) { backend_->remove_fd(fd); }

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
  backend_->enter_thread();
  struct Leave {
    Loop& loop;
    Loop* outer;
    ~Leave() {
      loop.backend_->leave_thread();
      t_current = outer;
    }
  } leave{*this, outer};
  if (on_start) on_start();
  stopping_ = false;
  while (!stopping_) {
    backend_->wait(next_timeout_ms());
    now_ = Clock::now();
    backend_->dispatch();
    run_timers();
    run_deferred();
    for (auto& fn : before_wait_) fn();
  }
  if (on_stop) on_stop();
}

}  // namespace windlass
