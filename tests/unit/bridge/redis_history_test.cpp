// History kept in Redis (RedisBridge as the HistorySource): two nodes (two
// Apps in this process) against a real redis-server. A client that was away
// comes back on the other node from the last offset it saw and gets what it
// missed exactly once and in order, then the live messages; an offset whose
// messages are gone is too_old, one ahead of the topic invalid.
#include <gtest/gtest.h>

#include <charconv>
#include <set>

#include "unit/bridge/redis_server.hpp"
#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/redis.hpp"

using namespace std::chrono_literals;
using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;
using Op = windlass::proto::Opcode;

namespace {

// "sub:<since>" subscribes to "h:room" from that offset and answers
// "rec <outcome> <position> <missed>" first; messages arrive as
// "<offset> <payload>" (the stamp).
class Room final : public windlass::MessageComponent {
 public:
  explicit Room(windlass::App& a) : app(a) {}
  void on_message(windlass::Connection& c, const windlass::Message& m) override {
    std::string_view d = m.data;
    if (!d.starts_with("sub:")) return;
    app.broker().subscribe_from(c, "h:room", d.substr(4), [c](const windlass::Recovery& r) mutable {
      c.send("rec " + std::string(windlass::describe(r.outcome)) + " " + r.position + " " +
             std::to_string(r.missed));
    });
  }
  windlass::App& app;
};

struct Node {
  Node(uint32_t id, const std::string& url, size_t max_messages) {
    auto so = windlass::test::test_options(2);
    so.node_id = id;
    runner = std::make_unique<AppRunner>(so);
    room = std::make_shared<Room>(*runner->app);
    runner->app->route("/", room);
    windlass::HistoryOptions h;
    h.max_messages = max_messages;
    h.max_age = 60s;
    h.stamp = [](std::string_view payload, std::string_view offset) {
      return (offset.empty() ? std::string("-") : std::string(offset)) + " " + std::string(payload);
    };
    runner->app->broker().keep_history("h:", h);
    bridge = windlass::redis::RedisBridge::install(*runner->app, {.url = url, .prefix = "t:"});
    runner->start();
  }
  bool wait_connected(std::chrono::milliseconds t = 5000ms) {
    auto until = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < until) {
      if (bridge->connected()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  void publish(const std::string& text) {
    runner->app->broker().publish("h:room", windlass::Message{windlass::MessageKind::text, text});
  }
  std::unique_ptr<AppRunner> runner;
  std::shared_ptr<Room> room;
  std::shared_ptr<windlass::redis::RedisBridge> bridge;
};

std::string next(TestClient& c, int timeout_ms = 3000) {
  auto f = c.read_frame(timeout_ms);
  return f ? f->payload : std::string("<nothing>");
}

struct Rec {
  std::string outcome, position;
  size_t missed = 0;
};
Rec subscribe(TestClient& c, const std::string& since) {
  c.send_frame(Op::text, "sub:" + since);
  const std::string line = next(c);
  Rec r;
  std::istringstream in(line);
  std::string tag;
  in >> tag >> r.outcome >> r.position >> r.missed;
  EXPECT_EQ(tag, "rec") << line;
  return r;
}

// "<offset> <payload>" -> its parts.
std::pair<std::string, std::string> split(const std::string& frame) {
  const size_t sp = frame.find(' ');
  return {frame.substr(0, sp), sp == std::string::npos ? std::string() : frame.substr(sp + 1)};
}

TEST(RedisHistory, a_client_back_on_another_node_gets_what_it_missed_once_and_in_order) {
  REQUIRE_REDIS();
  windlass::test::RedisServer redis;
  Node a(1, redis.url(), 1000), b(2, redis.url(), 1000);
  ASSERT_TRUE(a.wait_connected() && b.wait_connected());
  TestClient ca(a.runner->port);
  ca.handshake("/");
  const Rec fresh = subscribe(ca, "");
  EXPECT_EQ(fresh.outcome, "fresh");
  ASSERT_TRUE(windlass::StreamOffset::parse(fresh.position)) << fresh.position;
  // Published on both nodes: a's subscriber gets each once, with an offset, in order.
  std::string last;
  for (int i = 0; i < 20; ++i) {
    (i % 2 == 0 ? a : b).publish("m" + std::to_string(i));
    const auto [offset, payload] = split(next(ca));
    ASSERT_EQ(payload, "m" + std::to_string(i));
    const auto o = windlass::StreamOffset::parse(offset);
    ASSERT_TRUE(o) << offset;
    if (!last.empty()) {
      EXPECT_GT(*o, *windlass::StreamOffset::parse(last));
    }
    last = offset;
  }
  EXPECT_FALSE(ca.read_frame(300)) << "each message once, the publishing node's own too";
  ca.send_close(1000);
  ca.read_frame();
  // Away: 300 more, from both nodes.
  for (int i = 20; i < 320; ++i) (i % 2 == 0 ? a : b).publish("m" + std::to_string(i));
  // Back on b from the last offset seen; live messages go on meanwhile.
  TestClient cb(b.runner->port);
  cb.handshake("/");
  cb.send_frame(Op::text, "sub:" + last);
  a.publish("m320");
  std::string head = next(cb);
  ASSERT_TRUE(head.starts_with("rec recovered ")) << head;
  // The two nodes' publishes interleave in Redis as they arrive: each
  // node's own in the order it published them, all in offset order, each once.
  std::set<int> seen;
  int last_even = 18, last_odd = 19;
  for (int i = 0; i < 301; ++i) {
    const std::string f = next(cb);
    ASSERT_NE(f, "<nothing>") << "after " << i << " of 301";
    const auto [offset, payload] = split(f);
    const auto o = windlass::StreamOffset::parse(offset);
    ASSERT_TRUE(o) << f;
    EXPECT_GT(*o, *windlass::StreamOffset::parse(last)) << f;
    last = offset;
    int n = -1;
    std::from_chars(payload.data() + 1, payload.data() + payload.size(), n);
    EXPECT_TRUE(seen.insert(n).second) << "twice: " << payload;
    int& prev = n % 2 == 0 ? last_even : last_odd;
    EXPECT_EQ(n, prev + 2) << "out of order: " << payload;
    prev = n;
  }
  EXPECT_EQ(seen.size(), 301u);
  EXPECT_EQ(*seen.begin(), 20);
  EXPECT_EQ(*seen.rbegin(), 320);
  EXPECT_FALSE(cb.read_frame(300)) << "nothing twice";
  b.publish("live");
  EXPECT_EQ(split(next(cb)).second, "live");
  EXPECT_EQ(a.bridge->stats().history_errors + b.bridge->stats().history_errors, 0u);
}

TEST(RedisHistory, too_old_when_what_followed_is_gone_and_invalid_when_ahead) {
  REQUIRE_REDIS();
  windlass::test::RedisServer redis;
  Node a(1, redis.url(), 5), b(2, redis.url(), 5);
  ASSERT_TRUE(a.wait_connected() && b.wait_connected());
  TestClient ca(a.runner->port);
  ca.handshake("/");
  const Rec fresh = subscribe(ca, "");
  ASSERT_EQ(fresh.outcome, "fresh");
  for (int i = 0; i < 3; ++i) b.publish("x" + std::to_string(i));
  std::string seen;
  for (int i = 0; i < 3; ++i) seen = split(next(ca)).first;
  // Within the bound: recovered.
  for (int i = 3; i < 6; ++i) b.publish("x" + std::to_string(i));
  for (int i = 3; i < 6; ++i) next(ca);
  TestClient c2(b.runner->port);
  c2.handshake("/");
  const Rec ok = subscribe(c2, seen);
  EXPECT_EQ(ok.outcome, "recovered");
  EXPECT_EQ(ok.missed, 3u);
  // Ten more: the five kept no longer reach back to `seen`.
  for (int i = 6; i < 16; ++i) b.publish("x" + std::to_string(i));
  for (int i = 6; i < 16; ++i) next(ca);
  TestClient c3(b.runner->port);
  c3.handshake("/");
  const Rec old = subscribe(c3, seen);
  EXPECT_EQ(old.outcome, "too_old");
  EXPECT_EQ(old.missed, 0u);
  EXPECT_TRUE(windlass::StreamOffset::parse(old.position));
  // Live messages still come after a too_old.
  a.publish("after");
  EXPECT_EQ(split(next(c3)).second, "after");
  TestClient c4(a.runner->port);
  c4.handshake("/");
  EXPECT_EQ(subscribe(c4, "99999999999999-0").outcome, "invalid_offset");
  TestClient c5(a.runner->port);
  c5.handshake("/");
  EXPECT_EQ(subscribe(c5, "not-an-offset").outcome, "invalid_offset");
  // A history that Redis lost (FLUSHALL: a restart without persistence)
  // starts again later: an offset of the old one is too old, not "recovered".
  redis.cli_output("flushall");
  TestClient c6(b.runner->port);
  c6.handshake("/");
  EXPECT_EQ(subscribe(c6, seen).outcome, "too_old");
}

TEST(RedisHistory, while_redis_is_away_local_subscribers_still_get_messages_without_offsets) {
  REQUIRE_REDIS();
  windlass::test::RedisServer redis;
  Node a(1, redis.url(), 100);
  ASSERT_TRUE(a.wait_connected());
  TestClient ca(a.runner->port);
  ca.handshake("/");
  ASSERT_EQ(subscribe(ca, "").outcome, "fresh");
  redis.stop();
  auto until = std::chrono::steady_clock::now() + 5s;
  while (a.bridge->connected() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(a.bridge->connected());
  a.publish("split");
  EXPECT_EQ(next(ca), "- split");
  redis.start();
  ASSERT_TRUE(a.wait_connected(10s));
  // The outbox went out (into the history) and its echo is not delivered twice.
  EXPECT_FALSE(ca.read_frame(1000));
  a.publish("back");
  const auto [offset, payload] = split(next(ca));
  EXPECT_EQ(payload, "back");
  EXPECT_TRUE(windlass::StreamOffset::parse(offset)) << offset;
}

TEST(RedisHistory, in_a_redis_cluster_the_stream_and_the_shard_channel_share_a_slot) {
  REQUIRE_REDIS();
  std::unique_ptr<windlass::test::RedisCluster> cluster;
  try {
    cluster = std::make_unique<windlass::test::RedisCluster>();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no Redis Cluster here: " << e.what();
  }
  Node a(1, cluster->url(), 100), b(2, cluster->url(), 100);
  ASSERT_TRUE(a.wait_connected(10s) && b.wait_connected(10s));
  TestClient ca(a.runner->port), watcher(a.runner->port);
  ca.handshake("/");
  watcher.handshake("/");
  ASSERT_EQ(subscribe(ca, "").outcome, "fresh");
  ASSERT_EQ(subscribe(watcher, "").outcome, "fresh");
  std::string last;
  for (int i = 0; i < 5; ++i) {
    b.publish("c" + std::to_string(i));
    const auto [offset, payload] = split(next(ca));
    ASSERT_EQ(payload, "c" + std::to_string(i));
    EXPECT_EQ(split(next(watcher)).second, payload);
    last = offset;
  }
  ca.send_close(1000);
  ca.read_frame();
  // A publish is asynchronous: once the watcher has them, they are in the history.
  for (int i = 5; i < 10; ++i) a.publish("c" + std::to_string(i));
  for (int i = 5; i < 10; ++i) ASSERT_EQ(split(next(watcher)).second, "c" + std::to_string(i));
  TestClient cb(b.runner->port);
  cb.handshake("/");
  const Rec r = subscribe(cb, last);
  EXPECT_EQ(r.outcome, "recovered");
  EXPECT_EQ(r.missed, 5u);
  for (int i = 5; i < 10; ++i) EXPECT_EQ(split(next(cb)).second, "c" + std::to_string(i));
  EXPECT_EQ(a.bridge->stats().history_errors + b.bridge->stats().history_errors, 0u);
}

}  // namespace
