// PendingUpgrade::resume: a decorator that deferred hands the handshake on
// to the component it wraps, whose on_upgrade then answers as if it had
// been called synchronously — accept (with its state and subprotocol
// choice), refuse, defer again, throw — with the request it copied.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/windlass.hpp"

using namespace std::chrono_literals;
using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;

namespace {

std::atomic<int> g_made{0};
std::atomic<int> g_destroyed{0};

struct Name {
  Name() { ++g_made; }
  ~Name() { ++g_destroyed; }
  std::string value;
};

struct Seen {
  Waiter w;
  int opens = 0;
  std::vector<int> failed;
  std::vector<std::string> errors;
  std::vector<std::string> names;
  std::string request_in_hook;
  windlass::PendingUpgrade second;
};

// Decides by the query: "accept", "refuse", "again" (defers a second time
// and accepts from a thread), "again-never", "throw", "silent", "proto".
class Inner final : public windlass::Component<Name> {
 public:
  explicit Inner(Seen& s) : seen(s) {}
  void on_upgrade(windlass::Upgrade& up) override {
    const std::string q(up.request().query);
    seen.w.update([&] { seen.request_in_hook = std::string(up.connection().request().target); });
    state(up.connection()).value = "inner:" + q;
    if (q == "accept") return up.accept();
    if (q == "proto") return up.accept_with("b.v1");
    if (q == "refuse") return up.refuse(403, "inner says no", {{"X-Why", "inner"}});
    if (q == "throw") throw std::runtime_error("inner blew up");
    if (q == "silent") return;
    windlass::PendingUpgrade p = up.defer();
    seen.w.update([&] { seen.second = p; });
    if (q == "again") {
      std::thread([p] {
        std::this_thread::sleep_for(20ms);
        p.accept([](windlass::Connection& c) { c.state<Name>().value += "+later"; });
      }).detach();
    }
  }
  void on_upgrade_failed(windlass::Connection&, int status) override {
    seen.w.update([&] { seen.failed.push_back(status); });
  }
  void on_open(windlass::Connection& c) override {
    seen.w.update([&] {
      ++seen.opens;
      seen.names.push_back(state(c).value);
    });
  }
  void on_message(windlass::Connection&, const windlass::Message&) override {}
  void on_error(windlass::Connection&, std::exception_ptr e) override {
    seen.w.update([&] { seen.errors.push_back(windlass::describe_exception(e)); });
  }
  std::vector<std::string> subprotocols() const override { return {"a.v1"}; }
  Seen& seen;
};

// Defers every handshake, copies the request, and resumes from another
// thread after a short wait ("slow" in the path: after 400 ms).
class Deferring final : public windlass::ComponentDecorator {
 public:
  using ComponentDecorator::ComponentDecorator;
  // Shared with the threads, which may outlive the test's App.
  std::shared_ptr<std::atomic<int>> resumed_ok = std::make_shared<std::atomic<int>>(0);
  void on_upgrade(windlass::Upgrade& up) override {
    auto copy = std::make_shared<windlass::RequestCopy>(up.request());
    const bool slow = up.request().path == "/slow";
    windlass::PendingUpgrade p = up.defer();
    std::thread([inner = inner_, ok = resumed_ok, p, slow, copy] {
      std::this_thread::sleep_for(slow ? 400ms : 20ms);
      if (p.resume(std::move(*copy), [inner](windlass::Upgrade& u) { inner->on_upgrade(u); })) ++*ok;
    }).detach();
  }
};

class UpgradeResume : public ::testing::Test {
 protected:
  void SetUp() override {
    g_made = 0;
    g_destroyed = 0;
    auto inner = std::make_shared<Inner>(seen);
    deferring = std::make_shared<Deferring>(inner);
    windlass::WsOptions wo;
    wo.upgrade_timeout = 300ms;
    r.app->route("/ws", deferring, wo);
    r.app->route("/slow", deferring, wo);
    r.start();
  }
  void TearDown() override {
    r.stop();
    r.app.reset();
    // Let the detached threads finish before the next test's counters.
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(g_made.load(), g_destroyed.load());
  }
  Seen seen;
  AppRunner r;
  std::shared_ptr<Deferring> deferring;
};

TEST_F(UpgradeResume, the_inner_component_accepts_with_its_state_and_the_copied_request) {
  TestClient c(r.port);
  std::string head = c.handshake("/ws?accept", "Sec-WebSocket-Protocol: b.v1, a.v1\r\n");
  ASSERT_EQ(head.substr(0, 12), "HTTP/1.1 101") << head;
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: a.v1\r\n"), std::string::npos) << head;
  ASSERT_TRUE(seen.w.wait([&] { return seen.opens == 1; }));
  EXPECT_EQ(seen.names[0], "inner:accept");
  EXPECT_EQ(seen.request_in_hook, "/ws?accept");
  // resume() returns to its thread after the loop has answered: the count
  // may trail the 101 a moment.
  auto until = std::chrono::steady_clock::now() + 3s;
  while (deferring->resumed_ok->load() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(deferring->resumed_ok->load(), 1);
}

TEST_F(UpgradeResume, the_inner_component_chooses_an_offered_subprotocol) {
  TestClient c(r.port);
  std::string head = c.handshake("/ws?proto", "Sec-WebSocket-Protocol: a.v1, b.v1\r\n");
  ASSERT_EQ(head.substr(0, 12), "HTTP/1.1 101") << head;
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: b.v1\r\n"), std::string::npos) << head;
}

TEST_F(UpgradeResume, the_inner_component_refuses_with_its_status_and_headers) {
  TestClient c(r.port);
  std::string head = c.handshake("/ws?refuse");
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 403");
  EXPECT_NE(head.find("X-Why: inner\r\n"), std::string::npos) << head;
  EXPECT_EQ(c.read_until_eof(), "inner says no\n");
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 403);
}

TEST_F(UpgradeResume, the_inner_component_defers_again_and_answers_from_a_thread) {
  TestClient c(r.port);
  ASSERT_EQ(c.handshake("/ws?again").substr(0, 12), "HTTP/1.1 101");
  ASSERT_TRUE(seen.w.wait([&] { return seen.opens == 1; }));
  EXPECT_EQ(seen.names[0], "inner:again+later");
  EXPECT_FALSE(seen.second.refuse(500, "too late"));
}

TEST_F(UpgradeResume, a_second_deferral_keeps_the_first_deadline) {
  TestClient c(r.port);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.handshake("/ws?again-never").substr(0, 12), "HTTP/1.1 504");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 504);
  EXPECT_FALSE(seen.second.accept());
}

TEST_F(UpgradeResume, a_throwing_or_silent_inner_hook_gets_500) {
  {
    TestClient c(r.port);
    EXPECT_EQ(c.handshake("/ws?throw").substr(0, 12), "HTTP/1.1 500");
  }
  {
    TestClient c(r.port);
    EXPECT_EQ(c.handshake("/ws?silent").substr(0, 12), "HTTP/1.1 500");
  }
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 2; }));
  EXPECT_EQ(seen.failed, (std::vector<int>{500, 500}));
  EXPECT_EQ(seen.errors, std::vector<std::string>{"inner blew up"});
}

TEST_F(UpgradeResume, resuming_after_the_deadline_or_after_the_client_left_does_nothing) {
  {
    TestClient c(r.port);
    EXPECT_EQ(c.handshake("/slow?accept").substr(0, 12), "HTTP/1.1 504");
  }
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 1; }));
  std::this_thread::sleep_for(300ms);  // the resume comes at 400 ms, too late
  EXPECT_EQ(deferring->resumed_ok->load(), 0);
  EXPECT_TRUE(seen.request_in_hook.empty()) << "the inner hook ran after the deadline";
  {
    TestClient c(r.port);
    c.write_raw(
        "GET /ws?accept HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 2; }));
  EXPECT_EQ(seen.failed[1], 0);
  EXPECT_EQ(seen.opens, 0);
}

}  // namespace
