// The upgrade hook and typed per-connection state, through a real App and
// a raw client: refusals (sync and deferred), the deadline, the client
// leaving mid-handshake, subprotocol choice, and state made and destroyed
// exactly once on every path.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "unit/ws/test_client.hpp"
#include "windlass/windlass.hpp"

using namespace std::chrono_literals;
using windlass::test::TestClient;
using Op = windlass::proto::Opcode;

namespace {

// Counts constructions and destructions of the state, process-wide.
std::atomic<int> g_made{0};
std::atomic<int> g_destroyed{0};

struct Player {
  Player() { ++g_made; }
  ~Player() { ++g_destroyed; }
  std::string name;
  int messages = 0;
};

// What the hook should do, set by each test before it connects.
enum class Plan { accept, refuse_401, refuse_429_with_header, defer_accept, defer_refuse, defer_never, no_answer,
                  throw_in_hook, choose_offered, choose_unoffered, defer_then_keep };

struct Seen {
  std::mutex m;
  std::condition_variable cv;
  int opens = 0;
  int closes = 0;
  std::vector<int> failed;  // on_upgrade_failed statuses
  std::vector<std::string> errors;
  std::vector<std::string> names_at_open;
  std::vector<std::string> params;
  windlass::PendingUpgrade pending;
  std::string request_seen;  // the request's target, read inside the hook

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds t = 3000ms) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, t, [&] { return pred(*this); });
  }
  void notify() { cv.notify_all(); }
};

class Game final : public windlass::Component<Player> {
 public:
  explicit Game(Seen& s) : seen(s) {}
  std::atomic<Plan> plan{Plan::accept};

  void on_upgrade(windlass::Upgrade& up) override {
    {
      std::lock_guard lock(seen.m);
      seen.request_seen = std::string(up.request().target);
      if (auto k = up.param("key")) seen.params.emplace_back(*k);
    }
    state(up.connection()).name = up.request().query_param("name").value_or("anonymous");
    switch (plan.load()) {
      case Plan::accept: return up.accept();
      case Plan::refuse_401: return up.refuse(401, "a token is required");
      case Plan::refuse_429_with_header:
        return up.refuse(429, "slow down", {{"Retry-After", "7"}});
      case Plan::choose_offered: return up.accept_with("b.v1");
      case Plan::choose_unoffered: return up.accept_with("zz.v9");
      case Plan::no_answer: return;
      case Plan::throw_in_hook: throw std::runtime_error("hook blew up");
      case Plan::defer_accept:
      case Plan::defer_refuse:
      case Plan::defer_never:
      case Plan::defer_then_keep: {
        windlass::PendingUpgrade p = up.defer();
        const Plan what = plan.load();
        std::lock_guard lock(seen.m);
        seen.pending = p;
        seen.notify();
        if (what == Plan::defer_accept) {
          std::thread([p] {
            std::this_thread::sleep_for(50ms);
            p.accept([](windlass::Connection& c) { c.state<Player>().name = "verified"; });
          }).detach();
        } else if (what == Plan::defer_refuse) {
          std::thread([p] {
            std::this_thread::sleep_for(50ms);
            p.refuse(403, "your token was revoked");
          }).detach();
        }
        return;
      }
    }
  }
  void on_upgrade_failed(windlass::Connection&, int status) override {
    std::lock_guard lock(seen.m);
    seen.failed.push_back(status);
    seen.notify();
  }
  void on_open(windlass::Connection& c) override {
    std::lock_guard lock(seen.m);
    ++seen.opens;
    seen.names_at_open.push_back(state(c).name);
    seen.notify();
  }
  void on_message(windlass::Connection& c, const windlass::Message& m) override {
    state(c).messages += 1;
    c.send(state(c).name + ":" + std::to_string(state(c).messages) + ":" + std::string(m.data));
  }
  void on_close(windlass::Connection&, const windlass::CloseInfo&) override {
    std::lock_guard lock(seen.m);
    ++seen.closes;
    seen.notify();
  }
  void on_error(windlass::Connection&, std::exception_ptr e) override {
    std::lock_guard lock(seen.m);
    seen.errors.push_back(windlass::describe_exception(e));
    seen.notify();
  }
  std::vector<std::string> subprotocols() const override { return {"a.v1"}; }

  Seen& seen;
};

class UpgradeHook : public ::testing::Test {
 protected:
  void SetUp() override {
    g_made = 0;
    g_destroyed = 0;
    windlass::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.handle_signals = false;
    so.threads = 2;
    so.sweep_interval = 50ms;
    so.on_access = [this](const windlass::AccessEvent& e) {
      if (e.kind != windlass::AccessEvent::Kind::refused) return;
      std::lock_guard lock(seen.m);
      refused.emplace_back(e.status, std::string(e.reason));
    };
    app = std::make_unique<windlass::App>(so);
    game = std::make_shared<Game>(seen);
    windlass::WsOptions wo;
    wo.upgrade_timeout = 300ms;
    app->route("/game", game, wo);
    app->route("/room/:key", game, wo);
    app->listen();
    port = app->port();
    thread = std::thread([this] { app->run(); });
  }
  void TearDown() override {
    app->stop();
    thread.join();
    app.reset();
    // Every state made was destroyed, exactly once.
    EXPECT_EQ(g_made.load(), g_destroyed.load());
  }

  Seen seen;
  std::vector<std::pair<int, std::string>> refused;  // under seen.m
  std::shared_ptr<Game> game;
  std::unique_ptr<windlass::App> app;
  std::thread thread;
  uint16_t port = 0;
};

TEST_F(UpgradeHook, accepts_and_the_state_lives_with_the_connection) {
  TestClient c(port);
  ASSERT_EQ(c.handshake("/game?name=ada").substr(0, 12), "HTTP/1.1 101");
  c.send_frame(Op::text, "hi");
  c.send_frame(Op::text, "again");
  EXPECT_EQ(c.read_frame()->payload, "ada:1:hi");
  EXPECT_EQ(c.read_frame()->payload, "ada:2:again");
  c.send_close(1000);
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.closes == 1; }));
  EXPECT_EQ(seen.request_seen, "/game?name=ada");
  EXPECT_TRUE(seen.failed.empty());
}

TEST_F(UpgradeHook, refuses_synchronously_with_the_status_and_body_it_chose) {
  game->plan = Plan::refuse_401;
  TestClient c(port);
  std::string head = c.handshake("/game");
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 401");
  EXPECT_EQ(c.read_until_eof(), "a token is required\n");
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 401);
  EXPECT_EQ(seen.opens, 0);
  std::lock_guard lock(seen.m);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0], std::make_pair(401, std::string("a token is required")));
}

TEST_F(UpgradeHook, a_refusal_carries_its_headers) {
  game->plan = Plan::refuse_429_with_header;
  TestClient c(port);
  std::string head = c.handshake("/game");
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 429");
  EXPECT_NE(head.find("Retry-After: 7\r\n"), std::string::npos) << head;
}

TEST_F(UpgradeHook, deferred_accept_from_another_thread_fills_the_state_before_on_open) {
  game->plan = Plan::defer_accept;
  TestClient c(port);
  ASSERT_EQ(c.handshake("/game?name=eve").substr(0, 12), "HTTP/1.1 101");
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.opens == 1; }));
  EXPECT_EQ(seen.names_at_open[0], "verified");
  c.send_frame(Op::text, "x");
  EXPECT_EQ(c.read_frame()->payload, "verified:1:x");
  // A second answer changes nothing.
  EXPECT_FALSE(seen.pending.refuse(500, "too late"));
}

TEST_F(UpgradeHook, deferred_refusal_from_another_thread_answers_with_its_status) {
  game->plan = Plan::defer_refuse;
  TestClient c(port);
  EXPECT_EQ(c.handshake("/game").substr(0, 12), "HTTP/1.1 403");
  EXPECT_EQ(c.read_until_eof(), "your token was revoked\n");
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 403);
}

TEST_F(UpgradeHook, an_unanswered_deferral_times_out_with_504) {
  game->plan = Plan::defer_never;
  TestClient c(port);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.handshake("/game").substr(0, 12), "HTTP/1.1 504");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 504);
  EXPECT_FALSE(seen.pending.accept()) << "an answer after the deadline must report that it was too late";
}

TEST_F(UpgradeHook, the_client_leaving_during_a_deferral_ends_it_with_status_0) {
  game->plan = Plan::defer_then_keep;
  {
    TestClient c(port);
    c.write_raw(
        "GET /game HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    ASSERT_TRUE(seen.wait([](Seen& s) { return static_cast<bool>(s.pending); }));
  }
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 0);
  EXPECT_FALSE(seen.pending.accept());
}

TEST_F(UpgradeHook, a_hook_that_does_not_answer_gets_500) {
  game->plan = Plan::no_answer;
  TestClient c(port);
  EXPECT_EQ(c.handshake("/game").substr(0, 12), "HTTP/1.1 500");
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 500);
}

TEST_F(UpgradeHook, a_hook_that_throws_gets_500_and_on_error) {
  game->plan = Plan::throw_in_hook;
  TestClient c(port);
  EXPECT_EQ(c.handshake("/game").substr(0, 12), "HTTP/1.1 500");
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.failed.size() == 1 && s.errors.size() == 1; }));
  EXPECT_EQ(seen.errors[0], "hook blew up");
}

TEST_F(UpgradeHook, chooses_a_subprotocol_the_client_offered) {
  game->plan = Plan::choose_offered;
  TestClient c(port);
  std::string head = c.handshake("/game", "Sec-WebSocket-Protocol: a.v1, b.v1\r\n");
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 101");
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: b.v1\r\n"), std::string::npos) << head;
}

TEST_F(UpgradeHook, choosing_a_subprotocol_not_offered_is_refused_with_500) {
  game->plan = Plan::choose_unoffered;
  TestClient c(port);
  EXPECT_EQ(c.handshake("/game", "Sec-WebSocket-Protocol: a.v1\r\n").substr(0, 12), "HTTP/1.1 500");
}

TEST_F(UpgradeHook, default_accept_picks_the_routes_preference) {
  TestClient c(port);
  std::string head = c.handshake("/game", "Sec-WebSocket-Protocol: b.v1, a.v1\r\n");
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: a.v1\r\n"), std::string::npos) << head;
}

TEST_F(UpgradeHook, route_parameters_reach_the_hook) {
  TestClient c(port);
  ASSERT_EQ(c.handshake("/room/abc-123").substr(0, 12), "HTTP/1.1 101");
  ASSERT_TRUE(seen.wait([](Seen& s) { return s.opens == 1; }));
  ASSERT_EQ(seen.params.size(), 1u);
  EXPECT_EQ(seen.params[0], "abc-123");
  TestClient d(port);
  EXPECT_EQ(d.handshake("/room/").substr(0, 12), "HTTP/1.1 404");
  TestClient e(port);
  EXPECT_EQ(e.handshake("/room/a/b").substr(0, 12), "HTTP/1.1 404");
}

TEST_F(UpgradeHook, a_malformed_handshake_is_refused_before_any_hook_runs) {
  TestClient c(port);
  c.write_raw(
      "GET /game HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_EQ(c.read_http_head().substr(0, 12), "HTTP/1.1 400");
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(seen.m);
  EXPECT_TRUE(seen.request_seen.empty());
  EXPECT_EQ(g_made.load(), 0);
}

// Connection::request() is for the hook only: elsewhere a debug or
// sanitizer build stops with a message instead of handing out a request
// that is gone.
#if defined(WINDLASS_CHECKS)
TEST(UpgradeHookDeath, request_outside_the_hook_is_a_clear_error) {
  struct Peek final : windlass::MessageComponent {
    void on_message(windlass::Connection& c, const windlass::Message&) override { (void)c.request(); }
  };
  EXPECT_DEATH(
      {
        windlass::ServerOptions so;
        so.port = 0;
        so.threads = 1;
        so.handle_signals = false;
        windlass::App app(so);
        app.route("/", std::make_shared<Peek>());
        app.listen();
        std::thread t([&] {
          TestClient c(app.port());
          c.handshake("/");
          c.send_frame(Op::text, "x");
          c.read_frame(2000);
        });
        app.loop().add_timer(3000ms, [&] { app.stop(); });
        app.run();
        t.join();
      },
      "Connection::request: called outside on_upgrade");
}
#endif

}  // namespace
