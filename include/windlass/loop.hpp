// The event loop: epoll, timers, signals and cross-thread wake-ups.
//
// One Loop runs on one thread. Everything registered with it (file
// descriptors, timers, signal handlers, deferred work) is called on that
// thread. The only members safe to call from other threads are post(),
// stop() and in_loop_thread().
//
// One turn of run():
//   1. wait in epoll_wait (no longer than the next timer, not at all when
//      deferred work is pending)
//   2. dispatch ready file descriptors (the eventfd runs posted work,
//      the signalfd runs signal handlers)
//   3. run expired timers
//   4. run deferred work, then the "before wait" hooks (the I/O layer
//      flushes every connection that queued data during this turn, so many
//      small sends become one writev per connection per turn)
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace windlass {

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

  Loop();
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

  // File descriptors, watched level-triggered.
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
  class Wakeup;
  class Signals;

  int next_timeout_ms();
  void run_timers();
  void run_deferred();

  int epoll_fd_ = -1;
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

  std::unique_ptr<Wakeup> wakeup_;
  std::unique_ptr<Signals> signals_;
  size_t index_ = 0;
};

}  // namespace windlass
