#include "windlass/loop.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using windlass::Loop;

TEST(Loop, runs_timers_in_due_order) {
  Loop loop;
  std::vector<int> order;
  loop.add_timer(30ms, [&] { order.push_back(3); });
  loop.add_timer(10ms, [&] { order.push_back(1); });
  loop.add_timer(20ms, [&] { order.push_back(2); });
  loop.add_timer(40ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(Loop, cancelled_timer_never_fires) {
  Loop loop;
  bool fired = false;
  auto id = loop.add_timer(10ms, [&] { fired = true; });
  loop.cancel_timer(id);
  loop.add_timer(30ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_FALSE(fired);
}

TEST(Loop, repeating_timer_can_cancel_itself) {
  Loop loop;
  int count = 0;
  Loop::TimerId id = 0;
  id = loop.add_timer(1ms, [&] {
    if (++count == 5) {
      loop.cancel_timer(id);
      loop.add_timer(10ms, [&] { loop.stop(); });
    }
  }, 1ms);
  loop.run();
  EXPECT_EQ(count, 5);
}

TEST(Loop, post_from_many_threads_runs_every_task_on_the_loop_thread) {
  Loop loop;
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

TEST(Loop, stop_from_another_thread_returns_run) {
  Loop loop;
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    loop.stop();
  });
  loop.run();
  t.join();
  SUCCEED();
}

TEST(Loop, deferred_work_runs_after_the_current_callback) {
  Loop loop;
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

TEST(Loop, before_wait_hook_runs_every_turn) {
  Loop loop;
  int hooks = 0;
  loop.add_before_wait([&] { ++hooks; });
  loop.add_timer(1ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_GE(hooks, 1);
}

namespace {
struct Reader final : windlass::IoHandler {
  int fd;
  std::string got;
  Loop* loop;
  void on_io(uint32_t) override {
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (got == "ping") loop->stop();
  }
};
}  // namespace

TEST(Loop, dispatches_readable_file_descriptors) {
  Loop loop;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  Reader r;
  r.fd = sv[0];
  r.loop = &loop;
  loop.add_fd(sv[0], EPOLLIN, &r);
  ASSERT_EQ(::write(sv[1], "ping", 4), 4);
  loop.add_timer(5s, [&] { loop.stop(); });
  loop.run();
  loop.remove_fd(sv[0]);
  ::close(sv[0]);
  ::close(sv[1]);
  EXPECT_EQ(r.got, "ping");
}

TEST(Loop, delivers_signals_through_signalfd) {
  Loop loop;
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
