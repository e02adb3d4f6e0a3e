// The thread contract of connection.hpp, kept by the code: every method
// documented as any-thread is called from other threads, in a tight loop,
// while the connection closes and its slot is reused by new connections.
// Under ThreadSanitizer (the tsan stage) a data race here fails the test.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/windlass.hpp"

using namespace std::chrono_literals;
using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;
using Op = windlass::proto::Opcode;

namespace {

class Keep final : public windlass::MessageComponent {
 public:
  explicit Keep(Waiter& w) : waiter(w) {}
  void on_open(windlass::Connection& c) override {
    c.subscribe("t");
    waiter.update([&] { handles.push_back(c); });
  }
  void on_message(windlass::Connection& c, const windlass::Message& m) override { c.send(m); }
  Waiter& waiter;
  std::vector<windlass::Connection> handles;  // under waiter.m
};

TEST(ThreadContract, any_thread_methods_are_safe_while_connections_close_and_slots_are_reused) {
  Waiter w;
  AppRunner r(windlass::test::test_options(2));
  auto keep = std::make_shared<Keep>(w);
  r.app->route("/", keep);
  r.start();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> calls{0};
  auto hammer = [&] {
    while (!stop.load()) {
      std::vector<windlass::Connection> hs;
      {
        std::lock_guard lock(w.m);
        hs = keep->handles;
      }
      for (const auto& h : hs) {
        (void)h.is_open();
        (void)h.buffered_amount();
        (void)h.id();
        (void)h.loop();
        h.send("x");
        h.send_binary(std::string_view("y"));
        h.publish("t", "z");
        if (calls.fetch_add(1) % 7 == 0) h.close(1000, "bye");
      }
      std::this_thread::yield();
    }
  };
  std::thread t1(hammer), t2(hammer);
  // Connections come and go; slots are freed and reused under the handles.
  for (int round = 0; round < 30; ++round) {
    std::vector<std::unique_ptr<TestClient>> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(std::make_unique<TestClient>(r.port));
      clients.back()->handshake("/");
    }
    for (auto& c : clients) c->send_frame(Op::text, "ping");
    std::this_thread::sleep_for(2ms);
  }
  stop = true;
  t1.join();
  t2.join();
  EXPECT_GT(calls.load(), 0u);
  // Handles to connections that are gone say so.
  std::vector<windlass::Connection> hs;
  {
    std::lock_guard lock(w.m);
    hs = keep->handles;
  }
  ASSERT_TRUE(w.wait([&] { return r.app->connection_count() == 0; }, 5000ms));
  for (const auto& h : hs) {
    EXPECT_FALSE(h.is_open());
    EXPECT_EQ(h.buffered_amount(), 0u);
    EXPECT_EQ(h.send("late"), windlass::SendStatus::closed);
  }
}

#if defined(WINDLASS_CHECKS)
TEST(ThreadContractDeath, a_loop_thread_method_from_another_thread_stops_with_a_message) {
  EXPECT_DEATH(
      {
        Waiter w;
        AppRunner r(windlass::test::test_options(1));
        auto keep = std::make_shared<Keep>(w);
        r.app->route("/", keep);
        r.start();
        TestClient c(r.port);
        c.handshake("/");
        w.wait([&] { return !keep->handles.empty(); });
        windlass::Connection h;
        {
          std::lock_guard lock(w.m);
          h = keep->handles[0];
        }
        (void)h.subscribe("t");  // not on its loop's thread
      },
      "Connection::subscribe: called off its loop's thread");
}
#endif

}  // namespace
