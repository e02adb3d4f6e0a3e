// The Loop on both of its backends: every test runs once on epoll and once
// on io_uring (skipped, with the probe's reason, where io_uring cannot be
// used), and must see the same behaviour.
#include "windlass/loop.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loop/backend.hpp"
#include "loop/uring.hpp"

using namespace std::chrono_literals;
using windlass::IoBackend;
using windlass::Loop;

namespace {

class LoopTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  void SetUp() override {
    if (GetParam() == IoBackend::io_uring && !Loop::io_uring_unavailable().empty()) {
      GTEST_SKIP() << "io_uring unavailable: " << Loop::io_uring_unavailable();
    }
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, LoopTest, ::testing::Values(IoBackend::epoll, IoBackend::io_uring),
                         [](const auto& p) { return std::string(windlass::to_string(p.param)); });

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) {
      a = sv[0];
      b = sv[1];
    }
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

// Calls `fn(events)` from on_io.
template <class F>
struct Handler final : windlass::IoHandler {
  F fn;
  explicit Handler(F f) : fn(std::move(f)) {}
  void on_io(uint32_t events) override { fn(events); }
};
template <class F>
Handler(F) -> Handler<F>;

}  // namespace

TEST_P(LoopTest, uses_the_backend_it_was_given) {
  Loop loop(GetParam());
  EXPECT_EQ(loop.backend(), GetParam());
}

TEST_P(LoopTest, runs_timers_in_due_order) {
  Loop loop(GetParam());
  std::vector<int> order;
  loop.add_timer(30ms, [&] { order.push_back(3); });
  loop.add_timer(10ms, [&] { order.push_back(1); });
  loop.add_timer(20ms, [&] { order.push_back(2); });
  loop.add_timer(40ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(LoopTest, a_timer_waits_its_delay_and_no_longer) {
  Loop loop(GetParam());
  const auto start = Loop::Clock::now();
  Loop::Clock::time_point fired;
  loop.add_timer(50ms, [&] {
    fired = Loop::Clock::now();
    loop.stop();
  });
  loop.run();
  EXPECT_GE(fired - start, 50ms);
  EXPECT_LT(fired - start, 500ms);
}

TEST_P(LoopTest, cancelled_timer_never_fires) {
  Loop loop(GetParam());
  bool fired = false;
  auto id = loop.add_timer(10ms, [&] { fired = true; });
  loop.cancel_timer(id);
  loop.add_timer(30ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_FALSE(fired);
}

TEST_P(LoopTest, repeating_timer_can_cancel_itself) {
  Loop loop(GetParam());
  int count = 0;
  Loop::TimerId id = 0;
  id = loop.add_timer(
      1ms,
      [&] {
        if (++count == 5) {
          loop.cancel_timer(id);
          loop.add_timer(10ms, [&] { loop.stop(); });
        }
      },
      1ms);
  loop.run();
  EXPECT_EQ(count, 5);
}

TEST_P(LoopTest, post_from_many_threads_runs_every_task_on_the_loop_thread) {
  Loop loop(GetParam());
  constexpr int kThreads = 4, kPerThread = 2000;
  int ran = 0;  // touched only on the loop thread: TSan checks that
  std::atomic<int> off_thread{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        loop.post([&] {
          if (!loop.in_loop_thread()) off_thread.fetch_add(1);
          if (++ran == kThreads * kPerThread) loop.stop();
        });
      }
    });
  }
  loop.add_timer(10s, [&] { loop.stop(); });  // a bound, not an expectation
  loop.run();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ran, kThreads * kPerThread);
  EXPECT_EQ(off_thread.load(), 0);
}

TEST_P(LoopTest, a_post_wakes_a_loop_that_waits_without_a_deadline) {
  Loop loop(GetParam());
  bool ran = false;
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    loop.post([&] {
      ran = true;
      // A timer made by posted work fires too: the wait is bounded again.
      loop.add_timer(5ms, [&] { loop.stop(); });
    });
  });
  loop.run();  // no timer at all until the post
  t.join();
  EXPECT_TRUE(ran);
}

TEST_P(LoopTest, stop_from_another_thread_returns_run) {
  Loop loop(GetParam());
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    loop.stop();
  });
  loop.run();
  t.join();
  SUCCEED();
}

TEST_P(LoopTest, deferred_work_runs_after_the_current_callback) {
  Loop loop(GetParam());
  std::vector<int> order;
  loop.add_timer(1ms, [&] {
    loop.defer([&] {
      order.push_back(2);
      loop.stop();
    });
    order.push_back(1);
  });
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_P(LoopTest, before_wait_hook_runs_every_turn) {
  Loop loop(GetParam());
  int hooks = 0;
  loop.add_before_wait([&] { ++hooks; });
  loop.add_timer(1ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_GE(hooks, 1);
}

TEST_P(LoopTest, dispatches_readable_file_descriptors) {
  Loop loop(GetParam());
  Pair p;
  std::string got;
  Handler h([&](uint32_t) {
    char buf[64];
    ssize_t n = ::read(p.a, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (got == "ping") loop.stop();
  });
  loop.add_fd(p.a, EPOLLIN, &h);
  ASSERT_EQ(::write(p.b, "ping", 4), 4);
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  loop.remove_fd(p.a);
  EXPECT_EQ(got, "ping");
}

// A handler that reads one byte per call is called again while bytes wait:
// io_uring's polls must keep epoll's level-triggered contract.
TEST_P(LoopTest, a_descriptor_stays_level_triggered) {
  Loop loop(GetParam());
  Pair p;
  std::string got;
  int calls = 0;
  Handler h([&](uint32_t events) {
    ++calls;
    EXPECT_TRUE(events & EPOLLIN);
    char c;
    if (::read(p.a, &c, 1) == 1) got += c;
    if (got.size() == 5) loop.stop();
  });
  loop.add_fd(p.a, EPOLLIN, &h);
  ASSERT_EQ(::write(p.b, "abcde", 5), 5);
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  loop.remove_fd(p.a);
  EXPECT_EQ(got, "abcde");
  EXPECT_EQ(calls, 5);
}

TEST_P(LoopTest, modify_fd_changes_what_is_watched) {
  Loop loop(GetParam());
  Pair p;
  std::vector<uint32_t> seen;
  windlass::IoHandler* self = nullptr;
  Handler h([&](uint32_t events) {
    seen.push_back(events);
    if (seen.size() == 1) loop.modify_fd(p.a, EPOLLIN, self);  // writable once is enough
    if (seen.size() == 2) loop.stop();
  });
  self = &h;
  loop.add_fd(p.a, EPOLLOUT, &h);
  // Nothing is readable for a while: a poll still watching EPOLLOUT would
  // be called again at once.
  loop.add_timer(30ms, [&] { ASSERT_EQ(::write(p.b, "x", 1), 1); });
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  loop.remove_fd(p.a);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0] & EPOLLOUT);
  EXPECT_TRUE(seen[1] & EPOLLIN);
  EXPECT_FALSE(seen[1] & EPOLLOUT);
}

// curl does this: from inside a descriptor's callback, stop watching it,
// close it, and watch a new descriptor that got the same number.
TEST_P(LoopTest, a_handler_may_remove_and_close_its_descriptor_and_watch_its_successor) {
  Loop loop(GetParam());
  Pair first;
  int reused_a = -1, reused_b = -1;
  std::string second_got;
  Handler second([&](uint32_t) {
    char buf[16];
    ssize_t n = ::read(reused_a, buf, sizeof buf);
    if (n > 0) second_got.append(buf, static_cast<size_t>(n));
    loop.stop();
  });
  int first_calls = 0;
  Handler h([&](uint32_t) {
    ++first_calls;
    const int number = first.a;
    loop.remove_fd(number);
    ::close(number);
    first.a = -1;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    reused_a = sv[0];
    reused_b = sv[1];
    EXPECT_EQ(reused_a, number);  // the lowest free number: the one just closed
    loop.add_fd(reused_a, EPOLLIN, &second);
    ASSERT_EQ(::write(reused_b, "next", 4), 4);
  });
  loop.add_fd(first.a, EPOLLIN, &h);
  ASSERT_EQ(::write(first.b, "x", 1), 1);
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  loop.remove_fd(reused_a);
  ::close(reused_a);
  ::close(reused_b);
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(second_got, "next");
}

// Removed and closed in the turn that added it: its number may be reused
// at once, and the old handler never hears of the new descriptor.
TEST_P(LoopTest, remove_then_close_in_the_same_turn_frees_the_number) {
  Loop loop(GetParam());
  bool old_called = false;
  Handler old([&](uint32_t) { old_called = true; });
  std::string got;
  Pair p;
  int sv[2] = {-1, -1};
  Handler fresh([&](uint32_t) {
    char buf[16];
    ssize_t n = ::read(sv[0], buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    loop.stop();
  });
  loop.add_timer(1ms, [&] {
    ASSERT_EQ(::write(p.b, "old", 3), 3);
    const int number = p.a;
    loop.add_fd(number, EPOLLIN, &old);
    loop.remove_fd(number);
    ::close(number);
    p.a = -1;
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    EXPECT_EQ(sv[0], number);
    loop.add_fd(sv[0], EPOLLIN, &fresh);
    ASSERT_EQ(::write(sv[1], "new", 3), 3);
  });
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  loop.remove_fd(sv[0]);
  ::close(sv[0]);
  ::close(sv[1]);
  EXPECT_FALSE(old_called);
  EXPECT_EQ(got, "new");
}

TEST_P(LoopTest, add_fd_refuses_a_closed_or_duplicate_descriptor) {
  Loop loop(GetParam());
  Pair p;
  Handler h([](uint32_t) {});
  loop.add_fd(p.a, EPOLLIN, &h);
  EXPECT_THROW(loop.add_fd(p.a, EPOLLIN, &h), std::runtime_error);
  EXPECT_THROW(loop.modify_fd(p.b, EPOLLIN, &h), std::runtime_error);
  const int closed = ::dup(p.b);
  ::close(closed);
  EXPECT_THROW(loop.add_fd(closed, EPOLLIN, &h), std::runtime_error);
  loop.remove_fd(p.a);
  loop.remove_fd(p.b);  // never added: nothing happens
}

TEST_P(LoopTest, the_peer_hanging_up_is_reported) {
  Loop loop(GetParam());
  Pair p;
  uint32_t seen = 0;
  Handler h([&](uint32_t events) {
    seen = events;
    loop.remove_fd(p.a);
    loop.stop();
  });
  loop.add_fd(p.a, EPOLLIN | EPOLLRDHUP, &h);
  ::close(p.b);
  p.b = -1;
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  EXPECT_TRUE(seen & (EPOLLRDHUP | EPOLLHUP));
}

TEST_P(LoopTest, delivers_signals_through_signalfd) {
  Loop loop(GetParam());
  int seen = 0;
  loop.on_signal(SIGUSR1, [&](int signo) {
    seen = signo;
    loop.stop();
  });
  loop.add_timer(1ms, [] { ::raise(SIGUSR1); });
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(seen, SIGUSR1);
}

TEST_P(LoopTest, runs_again_after_it_stopped) {
  Loop loop(GetParam());
  int turns = 0;
  for (int i = 0; i < 3; ++i) {
    loop.add_timer(1ms, [&] {
      ++turns;
      loop.stop();
    });
    loop.run();
  }
  EXPECT_EQ(turns, 3);
}

// ---------------------------------------------------------------- io_uring only

namespace {

class UringLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Loop::io_uring_unavailable().empty()) GTEST_SKIP() << Loop::io_uring_unavailable();
  }
};

}  // namespace

// The design: a turn costs one io_uring_enter, which submits what the last
// turn queued and waits for the next completion or timer.
TEST_F(UringLoopTest, every_turn_is_one_enter) {
  Loop loop(IoBackend::io_uring);
  windlass::detail::Uring* ring = windlass::detail::uring_of(loop);
  ASSERT_NE(ring, nullptr);
  Pair p;
  int reads = 0;
  Handler h([&](uint32_t) {
    char c;
    while (::read(p.a, &c, 1) == 1) ++reads;
  });
  loop.add_fd(p.a, EPOLLIN, &h);
  int ticks = 0;
  loop.add_timer(
      1ms,
      [&] {
        [[maybe_unused]] ssize_t n = ::write(p.b, "x", 1);
        loop.post([] {});
        if (++ticks == 50) loop.stop();
      },
      1ms);
  loop.run();
  loop.remove_fd(p.a);
  EXPECT_GT(ring->turns(), 50u);
  // The enters of the turns, and one more when run() returns (it submits
  // the last turn's operations: here the removal of the poll).
  EXPECT_LE(ring->enter_calls(), ring->turns() + 1);
  EXPECT_GT(reads, 0);
}

// A single-issuer ring belongs to the thread that first ran it.
TEST_F(UringLoopTest, run_on_a_second_thread_is_refused) {
  Loop loop(IoBackend::io_uring);
  if (!windlass::detail::uring_of(loop)->defers_task_work()) GTEST_SKIP() << "not a single-issuer ring";
  std::thread first([&] {
    loop.add_timer(1ms, [&] { loop.stop(); });
    loop.run();
  });
  first.join();
  EXPECT_THROW(loop.run(), std::logic_error);
}

// ---------------------------------------------------------------- choosing

TEST(LoopBackend, names_round_trip) {
  for (IoBackend b : {IoBackend::automatic, IoBackend::epoll, IoBackend::io_uring}) {
    EXPECT_EQ(windlass::parse_io_backend(windlass::to_string(b)), b);
  }
  EXPECT_EQ(windlass::parse_io_backend("uring"), std::nullopt);
  EXPECT_EQ(windlass::parse_io_backend(""), std::nullopt);
}

namespace {

// In a child: a seccomp filter refusing io_uring's three system calls with
// EPERM (systemd's SystemCallFilter=~@aio with SystemCallErrorNumber=EPERM,
// or a container's profile), then `check` returns the child's exit code.
template <class F>
int in_a_child_without_io_uring(F check) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    sock_fprog fprog{static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) {
      ::_exit(100);
    }
    ::_exit(check());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

}  // namespace

#if defined(__x86_64__)
TEST(LoopBackend, io_uring_refused_by_seccomp_is_reported_and_epoll_still_works) {
  // Asked for outright: the constructor says why it cannot.
  EXPECT_EQ(in_a_child_without_io_uring([] {
              try {
                Loop loop(IoBackend::io_uring);
                return 1;
              } catch (const std::runtime_error& e) {
                return std::string(e.what()).find("Operation not permitted") != std::string::npos ? 0 : 2;
              }
            }),
            0);
  // What `auto` does: no backend, a reason, and epoll serves instead.
  EXPECT_EQ(in_a_child_without_io_uring([] {
              std::string why;
              if (windlass::detail::make_uring_backend(why) != nullptr) return 1;
              if (why.find("Operation not permitted") == std::string::npos) return 2;
              Loop loop(IoBackend::epoll);
              int fired = 0;
              loop.add_timer(1ms, [&] {
                ++fired;
                loop.stop();
              });
              loop.run();
              return fired == 1 ? 0 : 3;
            }),
            0);
}
#endif
