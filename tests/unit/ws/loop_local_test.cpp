// Per-loop lifecycle: start hooks on each loop's thread before it serves,
// stop hooks after its last connection, and a LoopLocal slot per loop.
#include "windlass/loop_local.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"

using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;
using Op = windlass::proto::Opcode;

namespace {

struct Table {
  std::thread::id owner = std::this_thread::get_id();
  int members = 0;
  static std::atomic<int> alive;
  Table() { ++alive; }
  ~Table() { --alive; }
};
std::atomic<int> Table::alive{0};

class Counts final : public windlass::MessageComponent {
 public:
  explicit Counts(windlass::LoopLocal<Table>& t) : table(t) {}
  void on_open(windlass::Connection& c) override {
    Table& t = table.get();
    ok = ok && t.owner == std::this_thread::get_id();
    c.send(std::to_string(++t.members));
  }
  void on_message(windlass::Connection&, const windlass::Message&) override {}
  void on_close(windlass::Connection&, const windlass::CloseInfo&) override { --table.get().members; }
  windlass::LoopLocal<Table>& table;
  std::atomic<bool> ok{true};
};

TEST(LoopLocal, one_object_per_loop_made_and_destroyed_on_its_thread) {
  std::mutex m;
  std::set<std::thread::id> started, stopped;
  int open_at_stop = -1;
  {
    AppRunner r(windlass::test::test_options(2));
    windlass::LoopLocal<Table> table(*r.app, [](windlass::Loop&) { return std::make_unique<Table>(); });
    r.app->on_loop_start([&](windlass::Loop& loop) {
      std::lock_guard lock(m);
      EXPECT_TRUE(loop.in_loop_thread());
      EXPECT_EQ(windlass::Loop::current(), &loop);
      started.insert(std::this_thread::get_id());
    });
    r.app->on_loop_stop([&](windlass::Loop& loop) {
      std::lock_guard lock(m);
      stopped.insert(std::this_thread::get_id());
      open_at_stop = std::max(open_at_stop, table.get(loop).members);
    });
    auto counts = std::make_shared<Counts>(table);
    r.app->route("/", counts);
    r.start();
    // Both loops have run their start hooks once each has run a task: both
    // clients may land on the same loop (SO_REUSEPORT hashes them), and the
    // other one may still be starting.
    for (size_t i = 0; i < 2; ++i) r.on_loop([] {}, i);
    {
      TestClient a(r.port), b(r.port);
      a.handshake("/");
      b.handshake("/");
      ASSERT_TRUE(a.read_frame());
      ASSERT_TRUE(b.read_frame());
      EXPECT_EQ(Table::alive.load(), 2);
      EXPECT_THROW(table.get(), std::logic_error) << "the test thread is not a loop";
    }
    r.stop();
    EXPECT_TRUE(counts->ok.load());
    EXPECT_EQ(Table::alive.load(), 0);
  }
  EXPECT_EQ(started.size(), 2u);
  EXPECT_EQ(stopped, started);
  EXPECT_EQ(open_at_stop, 0) << "stop hooks run after the loop's connections are gone";
}

TEST(AppLoops, every_loop_is_reachable_and_knows_its_index) {
  AppRunner r(windlass::test::test_options(3));
  EXPECT_EQ(r.app->thread_count(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(r.app->loop(i).index(), i);
  r.start();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.on_loop([&] { return windlass::Loop::current()->index(); }, i), i);
  }
}

TEST(AppLoops, the_default_thread_count_follows_the_cpus_the_process_may_use) {
  windlass::ServerOptions so;
  so.port = 0;
  so.threads = 0;
  windlass::App app(so);
  EXPECT_EQ(app.thread_count(), windlass::usable_cpu_count());
}

}  // namespace
