// The event loop: epoll or io_uring, timers, signals and cross-thread
// wake-ups.
//
// One Loop runs on one thread. Everything registered with it (file
// descriptors, timers, signal handlers, deferred work) is called on that
// thread. The only members safe to call from other threads are post(),
// stop() and in_loop_thread().
//
// One turn of run():
//   1. wait: epoll_wait, or one io_uring_enter that also submits everything
//      the last turn queued (receive re-arms, sends, closes, polls); no
//      longer than the next timer, not at all when deferred work is pending
//   2. dispatch what happened (ready or completed I/O; the eventfd runs
//      posted work, the signalfd runs signal handlers)
//   3. run expired timers
//   4. run deferred work, then the "before wait" hooks (the I/O layer
//      flushes every connection that queued data during this turn, so many
//      small sends become one send per connection per turn)
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace windlass {

class Loop;

namespace detail {
class LoopBackend;
class Mailbox;
class Uring;
// The io_uring backend of `loop`, or null when it waits with epoll (for
// the I/O layer, which submits its socket operations to the same ring).
Uring* uring_of(Loop& loop) noexcept;
}  // namespace detail

// The kernel interface a Loop waits on. Both give the same API and the
// same behaviour; io_uring makes a loop turn one system call, whatever the
// number of connections that read and write in it.
//
// `automatic` follows the environment variable WINDLASS_IO when it is set
// to "epoll" or "io_uring" (so an operator, or a test suite, chooses for
// every loop of a program without rebuilding it; "auto" or unset: the
// kernel decides).
enum class IoBackend : uint8_t {
  automatic,  // io_uring when this kernel and process allow it, else epoll (one log line says why)
  epoll,
  io_uring,   // Loop's constructor throws std::runtime_error when io_uring cannot be used
};

// "auto", "epoll", "io_uring".
std::string_view to_string(IoBackend backend) noexcept;
// The reverse of to_string; nullopt for anything else.
std::optional<IoBackend> parse_io_backend(std::string_view text) noexcept;

// Something that owns a file descriptor registered with a Loop.
class IoHandler {
 public:
  virtual void on_io(uint32_t epoll_events) = 0;

 protected:
  ~IoHandler() = default;
};

class Loop {
 public:
  using Task = std::function<void()>;
  using TimerId = uint64_t;
  using Clock = std::chrono::steady_clock;

  explicit Loop(IoBackend backend = IoBackend::automatic);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until stop() is called; returns after the turn that saw it.
  void run();
  // The same, with `on_start` run on this thread first and `on_stop` after
  // the last turn, both already counting as this loop's thread
  // (in_loop_thread(), current()).
  void run(const std::function<void()>& on_start, const std::function<void()>& on_stop);
  // Thread-safe: asks run() to return.
  void stop();

  // Thread-safe: runs `task` on the loop's thread soon (wakes it through an eventfd).
  void post(Task task);
  // Loop thread only: runs `task` at the end of the current turn, before waiting.
  void defer(Task task);

  // Loop thread only: calls `fn` after `delay`, then every `repeat` if non-zero.
  TimerId add_timer(std::chrono::milliseconds delay, Task fn,
                    std::chrono::milliseconds repeat = std::chrono::milliseconds(0));
  void cancel_timer(TimerId id);

  // Loop thread only: routes `signo` to `fn` through a signalfd (the signal
  // is blocked for the calling thread, and threads created afterwards).
  void on_signal(int signo, std::function<void(int)> fn);

  // Loop thread only: runs `fn` at the end of every turn, after deferred
  // work. Used by the I/O layer to flush queued writes once per turn.
  void add_before_wait(Task fn);

  // File descriptors, watched level-triggered: `events` and what on_io()
  // gets are epoll's bits (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR,
  // EPOLLHUP), on either backend (io_uring polls the descriptor and
  // re-arms the poll after each call, which keeps it level-triggered).
  // add_fd throws for a descriptor that is closed or already added,
  // modify_fd for one that is not added.
  void add_fd(int fd, uint32_t events, IoHandler* handler);
  void modify_fd(int fd, uint32_t events, IoHandler* handler);
  void remove_fd(int fd);

  // The time at the start of this turn: cheap, and the same for every
  // callback of the turn.
  Clock::time_point now() const noexcept { return now_; }
  bool in_loop_thread() const noexcept {
    return std::this_thread::get_id() == thread_id_.load(std::memory_order_acquire);
  }
  // The loop whose run() is on the calling thread's stack, or null.
  static Loop* current() noexcept;

  // This loop's place among its App's loops (App::loop(index)); 0 for a
  // Loop of its own.
  size_t index() const noexcept { return index_; }
  void set_index(size_t index) noexcept { index_ = index; }

  // Milliseconds the last turn started later than its earliest timer was due.
  int64_t lag_ms() const noexcept { return lag_ms_.load(std::memory_order_relaxed); }

  // The backend this loop waits on: epoll or io_uring, never automatic.
  IoBackend backend() const noexcept;
  // Why this process cannot use io_uring, or "" when it can: the kernel's
  // answer to a probe made once per process (io_uring_setup refused, by
  // kernel.io_uring_disabled or a seccomp filter; an opcode or feature
  // this kernel lacks). Thread-safe.
  static const std::string& io_uring_unavailable();

 private:
  struct Timer {
    Clock::time_point due;
    TimerId id;
    bool operator>(const Timer& o) const noexcept { return due > o.due || (due == o.due && id > o.id); }
  };
  struct TimerEntry {
    Task fn;
    std::chrono::milliseconds repeat;
  };
  class Signals;
  friend detail::Uring* detail::uring_of(Loop& loop) noexcept;

  int next_timeout_ms();
  void run_timers();
  void run_deferred();

  std::unique_ptr<detail::LoopBackend> backend_;
  detail::Uring* uring_ = nullptr;  // backend_, when it is io_uring
  bool stopping_ = false;
  // The thread that runs (or last ran) the loop; read by other threads.
  std::atomic<std::thread::id> thread_id_;
  Clock::time_point now_;
  std::atomic<int64_t> lag_ms_{0};  // read by scrapes from other threads

  std::vector<Timer> timer_heap_;  // min-heap on due
  std::unordered_map<TimerId, TimerEntry> timers_;  // few per loop: per-connection deadlines use a sweep
  TimerId next_timer_id_ = 1;

  std::vector<Task> deferred_;
  std::vector<Task> before_wait_;

  std::unique_ptr<detail::Mailbox> mailbox_;
  std::unique_ptr<Signals> signals_;
  size_t index_ = 0;
};

}  // namespace windlass
