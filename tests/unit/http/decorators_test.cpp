// The decorators composed by hand, as an application would: what each
// refuses, with which status, and that a connection counted by
// ConnectionLimit is released when a component inside it refuses.
#include "windlass/decorators.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"

using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;

namespace {

// Refuses a handshake that asks for "?deny".
class Gate final : public windlass::MessageComponent {
 public:
  void on_upgrade(windlass::Upgrade& up) override {
    if (up.request().query == "deny") return up.refuse(403, "denied by the app");
    up.accept();
  }
  void on_message(windlass::Connection&, const windlass::Message&) override {}
};

TEST(Decorators, compose_and_each_refuses_with_its_status) {
  AppRunner r;
  auto counter = windlass::PerIpCounter::make(1);
  auto stack = std::make_shared<windlass::OriginCheck>(
      std::make_shared<windlass::ConnectionLimit>(std::make_shared<Gate>(), counter),
      std::vector<std::string>{"https://ok.example"});
  r.app->route("/ws", stack);
  r.app->filter(std::make_shared<windlass::IpBlackList>(std::vector<std::string>{"10.0.0.0/8"}));
  r.start();
  {
    TestClient c(r.port);
    EXPECT_EQ(c.handshake("/ws", "Origin: https://bad.example\r\n").substr(0, 12), "HTTP/1.1 403");
    EXPECT_EQ(c.read_until_eof(), "origin not allowed\n");
  }
  EXPECT_EQ(counter->count("127.0.0.1"), 0u) << "refused before the limit: not counted";
  {
    // Refused inside the limit: counted, then released.
    TestClient c(r.port);
    EXPECT_EQ(c.handshake("/ws?deny", "Origin: https://ok.example\r\n").substr(0, 12), "HTTP/1.1 403");
  }
  EXPECT_EQ(r.on_loop([&] { return counter->count("127.0.0.1"); }), 0u);
  TestClient a(r.port);
  ASSERT_EQ(a.handshake("/ws", "Origin: https://ok.example\r\n").substr(0, 12), "HTTP/1.1 101");
  EXPECT_EQ(counter->count("127.0.0.1"), 1u);
  TestClient b(r.port);
  EXPECT_EQ(b.handshake("/ws", "Origin: https://ok.example\r\n").substr(0, 12), "HTTP/1.1 429");
}

TEST(Decorators, bad_rules_are_refused_naming_the_entry) {
  auto inner = std::make_shared<Gate>();
  try {
    windlass::OriginCheck bad(inner, {"https://a.example", "https://b.example/path"});
    FAIL() << "accepted a bad origin";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("allowed_origins[1] \"https://b.example/path\"", 0), 0u) << e.what();
  }
  EXPECT_THROW(windlass::IpBlackList({"300.1.1.1"}), std::invalid_argument);
  EXPECT_THROW(windlass::PerIpCounter::make(1, 0), std::invalid_argument);
  EXPECT_THROW(windlass::ConnectionLimit(inner, nullptr), std::invalid_argument);
}

TEST(Decorators, the_blocklist_filter_refuses_plain_http_too) {
  auto so = windlass::test::test_options();
  so.access.blocklist = {"127.0.0.0/8"};
  AppRunner r(so);
  r.app->http("/*", [](const windlass::Request&, windlass::Response& res) { res = windlass::Response::text(200, "hi"); });
  r.start();
  TestClient c(r.port);
  EXPECT_EQ(c.request("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 12), "HTTP/1.1 403");
  EXPECT_EQ(c.read_until_eof(), "client address is blocked\n");
}

}  // namespace
