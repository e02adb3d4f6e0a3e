// The broker seam: the local broker's first/last-subscriber events across
// loops, subscriber counts, exclusion by connection id, and a decorator
// installed with App::set_broker seeing what is published (and relaying
// with its own origin tag without hearing it back).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
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

// Subscribes to "room" on open; "say:x" publishes x to the room; "leave" unsubscribes.
class Room final : public windlass::MessageComponent {
 public:
  explicit Room(Waiter& w) : waiter(w) {}
  void on_open(windlass::Connection& c) override {
    c.subscribe("room");
    waiter.update([&] { ++opens; });
  }
  void on_message(windlass::Connection& c, const windlass::Message& m) override {
    std::string_view d = m.data;
    if (d.starts_with("say:")) c.publish("room", d.substr(4));
    if (d == "leave") c.send(c.unsubscribe("room") ? "left" : "not in it");
    if (d == "again") c.send(c.subscribe("room") ? "joined" : "already in");
    if (d == "id") c.send(std::to_string(c.id()));
  }
  void on_close(windlass::Connection&, const windlass::CloseInfo&) override {
    waiter.update([&] { ++closes; });
  }
  Waiter& waiter;
  int opens = 0;   // under waiter.m
  int closes = 0;  // under waiter.m
};

struct Recorder final : windlass::TopicObserver {
  std::mutex m;
  std::vector<std::string> events;
  void on_topic_occupied(std::string_view t) override {
    std::lock_guard lock(m);
    events.push_back("+" + std::string(t));
  }
  void on_topic_vacated(std::string_view t) override {
    std::lock_guard lock(m);
    events.push_back("-" + std::string(t));
  }
  std::vector<std::string> get() {
    std::lock_guard lock(m);
    return events;
  }
};

TEST(LocalBroker, reports_the_first_and_last_subscriber_of_the_process_once_each) {
  Waiter w;
  AppRunner r(windlass::test::test_options(2));
  auto room = std::make_shared<Room>(w);
  r.app->route("/", room);
  Recorder rec;
  r.app->broker().add_observer(&rec);
  r.start();
  for (int cycle = 0; cycle < 3; ++cycle) {
    {
      std::vector<std::unique_ptr<TestClient>> clients;
      for (int i = 0; i < 20; ++i) {
        clients.push_back(std::make_unique<TestClient>(r.port));
        ASSERT_EQ(clients.back()->handshake("/").substr(0, 12), "HTTP/1.1 101");
      }
      ASSERT_TRUE(w.wait([&] { return room->opens == 20 * (cycle + 1); }));
      EXPECT_EQ(r.app->broker().subscriber_count("room"), 20u);
      EXPECT_EQ(r.app->broker().topics(), std::vector<std::string>{"room"});
    }
    ASSERT_TRUE(w.wait([&] { return room->closes == 20 * (cycle + 1); }));
    ASSERT_TRUE(w.wait([&] { return rec.get().size() == static_cast<size_t>(2 * (cycle + 1)); }));
  }
  std::vector<std::string> expected;
  for (int i = 0; i < 3; ++i) {
    expected.push_back("+room");
    expected.push_back("-room");
  }
  EXPECT_EQ(rec.get(), expected);
  EXPECT_EQ(r.app->broker().subscriber_count("room"), 0u);
  EXPECT_TRUE(r.app->broker().topics().empty());
  r.stop();
  r.app->broker().remove_observer(&rec);
}

TEST(LocalBroker, publish_reaches_every_subscriber_on_every_loop_but_the_sender) {
  Waiter w;
  AppRunner r(windlass::test::test_options(2));
  auto room = std::make_shared<Room>(w);
  r.app->route("/", room);
  r.start();
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<TestClient>(r.port));
    clients.back()->handshake("/");
  }
  ASSERT_TRUE(w.wait([&] { return room->opens == 6; }));
  clients[0]->send_frame(Op::text, "say:hello");
  for (size_t i = 1; i < clients.size(); ++i) {
    auto f = clients[i]->read_frame();
    ASSERT_TRUE(f) << i;
    EXPECT_EQ(f->payload, "hello");
  }
  EXPECT_FALSE(clients[0]->read_frame(200)) << "the sender is excluded";
  // Excluding by id from outside a connection: the App's broker with PublishOptions.
  clients[1]->send_frame(Op::text, "id");
  uint64_t id1 = std::stoull(clients[1]->read_frame()->payload);
  r.app->broker().publish("room", windlass::Message{windlass::MessageKind::text, "from the app"},
                          windlass::PublishOptions{.except = id1});
  for (size_t i = 0; i < clients.size(); ++i) {
    if (i == 1) continue;
    auto f = clients[i]->read_frame();
    ASSERT_TRUE(f) << i;
    EXPECT_EQ(f->payload, "from the app");
  }
  EXPECT_FALSE(clients[1]->read_frame(200));
  // Unsubscribing stops deliveries; subscribing twice is refused.
  clients[2]->send_frame(Op::text, "leave");
  EXPECT_EQ(clients[2]->read_frame()->payload, "left");
  clients[2]->send_frame(Op::text, "leave");
  EXPECT_EQ(clients[2]->read_frame()->payload, "not in it");
  clients[3]->send_frame(Op::text, "again");
  EXPECT_EQ(clients[3]->read_frame()->payload, "already in");
  r.app->publish("room", "to those left");
  EXPECT_FALSE(clients[2]->read_frame(200));
  EXPECT_EQ(clients[3]->read_frame()->payload, "to those left");
  EXPECT_EQ(r.app->broker().subscriber_count("room"), 5u);
}

// A bridge in miniature: forwards every local publish to "upstream" (a
// vector here), and relays what comes from upstream to the local broker
// with its own origin tag.
class FakeBridge final : public windlass::BrokerDecorator {
 public:
  using BrokerDecorator::BrokerDecorator;
  static constexpr uint32_t kTag = 7;
  void publish(std::string_view topic, const windlass::Message& m, const windlass::PublishOptions& o) override {
    {
      std::lock_guard lock(mu);
      sent_upstream.push_back(std::string(topic) + "|" + std::string(m.data) + "|" + std::to_string(o.origin) + "|" +
                              std::to_string(o.except != 0));
    }
    inner().publish(topic, m, o);
  }
  // A message from another node: delivered here, never sent back.
  void from_upstream(std::string_view topic, std::string_view data) {
    inner().publish(topic, windlass::Message{windlass::MessageKind::text, data}, windlass::PublishOptions{.origin = kTag});
  }
  std::vector<std::string> upstream() {
    std::lock_guard lock(mu);
    return sent_upstream;
  }
  std::mutex mu;
  std::vector<std::string> sent_upstream;
};

TEST(BrokerDecorator, sees_every_publish_and_relays_without_echo) {
  Waiter w;
  AppRunner r(windlass::test::test_options(2));
  auto room = std::make_shared<Room>(w);
  r.app->route("/", room);
  auto bridge = std::make_shared<FakeBridge>(r.app->local_broker());
  r.app->set_broker(bridge);
  EXPECT_EQ(&r.app->broker(), bridge.get());
  r.start();
  TestClient a(r.port), b(r.port);
  a.handshake("/");
  b.handshake("/");
  ASSERT_TRUE(w.wait([&] { return room->opens == 2; }));
  a.send_frame(Op::text, "say:one");
  EXPECT_EQ(b.read_frame()->payload, "one");
  r.app->publish("room", "two");
  EXPECT_EQ(a.read_frame()->payload, "two");
  EXPECT_EQ(b.read_frame()->payload, "two");
  bridge->from_upstream("room", "three");
  EXPECT_EQ(a.read_frame()->payload, "three");
  EXPECT_EQ(b.read_frame()->payload, "three");
  EXPECT_EQ(bridge->upstream(), (std::vector<std::string>{"room|one|0|1", "room|two|0|0"}));
}

TEST(ConnectionIds, carry_the_node_id_in_their_top_bits) {
  Waiter w;
  auto so = windlass::test::test_options(1);
  so.node_id = 4242;
  AppRunner r(so);
  auto room = std::make_shared<Room>(w);
  r.app->route("/", room);
  r.start();
  TestClient a(r.port);
  a.handshake("/");
  a.send_frame(Op::text, "id");
  uint64_t id = std::stoull(a.read_frame()->payload);
  EXPECT_EQ(windlass::Connection::node_of(id), 4242u);
  EXPECT_GT(windlass::Connection::counter_of(id), 0u);
  EXPECT_THROW(
      {
        auto bad = windlass::test::test_options(1);
        bad.node_id = 1u << 24;
        windlass::App app(bad);
      },
      std::invalid_argument);
}

}  // namespace
