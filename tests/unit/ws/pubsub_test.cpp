// Topics across several loops: a publish reaches every subscriber on every
// thread exactly once, and never the publisher.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "unit/ws/test_client.hpp"
#include "windlass/app.hpp"

using namespace std::chrono_literals;
using windlass::test::TestClient;
using Op = windlass::proto::Opcode;

namespace {

class Room final : public windlass::MessageComponent {
 public:
  void on_open(windlass::Connection& c) override {
    c.subscribe("room");
    ++opened;
  }
  void on_message(windlass::Connection& from, const windlass::Message& msg) override {
    if (msg.data == "leave") {
      from.unsubscribe("room");
      from.send("left");
      return;
    }
    from.publish("room", msg);
  }
  std::atomic<int> opened{0};
};

class PubSubTest : public ::testing::Test {
 protected:
  void start(unsigned threads) {
    windlass::ServerOptions so;
    so.port = 0;
    so.threads = threads;
    so.handle_signals = false;
    app = std::make_unique<windlass::App>(so);
    room = std::make_shared<Room>();
    app->route("/", room);
    app->listen();
    thread = std::thread([this] { app->run(); });
  }
  void open_clients(int n) {
    for (int i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<TestClient>(app->port()));
      ASSERT_NE(clients.back()->handshake("/").find("101"), std::string::npos);
    }
    for (int i = 0; i < 300 && room->opened < n; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(room->opened, n);
  }
  void TearDown() override {
    clients.clear();
    if (app) {
      app->stop();
      thread.join();
    }
  }
  std::unique_ptr<windlass::App> app;
  std::shared_ptr<Room> room;
  std::thread thread;
  std::vector<std::unique_ptr<TestClient>> clients;
};

}  // namespace

TEST_F(PubSubTest, publish_reaches_every_other_subscriber_on_every_loop) {
  start(2);
  open_clients(8);
  clients[0]->send_frame(Op::text, "hello room");
  for (size_t i = 1; i < clients.size(); ++i) {
    auto f = clients[i]->read_frame();
    ASSERT_TRUE(f) << "client " << i;
    EXPECT_EQ(f->payload, "hello room");
  }
  EXPECT_FALSE(clients[0]->read_frame(200)) << "the publisher got its own message";
}

TEST_F(PubSubTest, large_messages_are_shared_not_copied_and_arrive_intact) {
  start(2);
  open_clients(4);
  std::string big(200 * 1024, 'z');
  big[12345] = 'a';
  clients[1]->send_frame(Op::binary, big);
  for (size_t i : {0u, 2u, 3u}) {
    auto f = clients[i]->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, Op::binary);
    EXPECT_EQ(f->payload, big);
  }
}

TEST_F(PubSubTest, app_publish_from_another_thread_reaches_everyone) {
  start(2);
  open_clients(6);
  app->publish("room", "announcement");
  for (auto& c : clients) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload, "announcement");
  }
}

TEST_F(PubSubTest, unsubscribed_and_closed_connections_receive_nothing_more) {
  start(2);
  open_clients(3);
  clients[2]->send_frame(Op::text, "leave");
  auto left = clients[2]->read_frame();
  ASSERT_TRUE(left);
  EXPECT_EQ(left->payload, "left");
  clients[1].reset();  // drops its TCP connection
  std::this_thread::sleep_for(100ms);
  clients[0]->send_frame(Op::text, "anyone?");
  EXPECT_FALSE(clients[2]->read_frame(300));
  app->publish("room", "still here");
  auto f = clients[0]->read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "still here");
}

TEST_F(PubSubTest, concurrent_publishers_deliver_every_message_exactly_once) {
  start(2);
  constexpr size_t kClients = 10, kEach = 30;
  open_clients(kClients);
  std::vector<std::thread> senders;
  for (size_t i = 0; i < kClients; ++i) {
    senders.emplace_back([&, i] {
      for (size_t m = 0; m < kEach; ++m)
        clients[i]->send_frame(Op::text, std::to_string(i) + ":" + std::to_string(m));
    });
  }
  for (auto& t : senders) t.join();
  for (size_t i = 0; i < kClients; ++i) {
    std::multiset<std::string> got;
    for (size_t k = 0; k < (kClients - 1) * kEach; ++k) {
      auto f = clients[i]->read_frame();
      ASSERT_TRUE(f) << "client " << i << " after " << k;
      got.insert(f->payload);
    }
    for (size_t j = 0; j < kClients; ++j) {
      for (size_t m = 0; m < kEach; ++m) {
        EXPECT_EQ(got.count(std::to_string(j) + ":" + std::to_string(m)), j == i ? 0u : 1u);
      }
    }
  }
}

// A connection that replies, then gets a broadcast it is subscribed to, then
// replies again, all from one on_message: the three frames leave in that
// order. The replies collect in the loop's cork while its input is handled;
// a broadcast (copied when small, shared when large) must not overtake them.
namespace {
class ReplyAroundPublish final : public windlass::MessageComponent {
 public:
  explicit ReplyAroundPublish(windlass::App*& app) : app_(app) {}
  void on_open(windlass::Connection& c) override { c.subscribe("all"); }
  void on_message(windlass::Connection& c, const windlass::Message& msg) override {
    c.send("first");
    app_->publish("all", msg.data);  // every subscriber, this connection included
    c.send("third");
  }

 private:
  windlass::App*& app_;
};
}  // namespace

TEST(PubSubOrder, replies_and_a_broadcast_to_oneself_keep_their_order) {
  windlass::ServerOptions so;
  so.port = 0;
  so.threads = 1;
  so.handle_signals = false;
  windlass::App app(so);
  windlass::App* app_ptr = &app;
  app.route("/", std::make_shared<ReplyAroundPublish>(app_ptr));
  app.listen();
  std::thread thread([&] { app.run(); });
  {
    TestClient client(app.port());
    ASSERT_NE(client.handshake("/").find("101"), std::string::npos);
    for (size_t size : {size_t{5}, size_t{4000}}) {  // copied, then shared by reference
      const std::string second(size, 's');
      client.send_frame(Op::text, second);
      for (const std::string& want : {std::string("first"), second, std::string("third")}) {
        auto f = client.read_frame();
        ASSERT_TRUE(f) << "size " << size;
        EXPECT_EQ(f->payload, want) << "size " << size;
      }
    }
  }
  app.stop();
  thread.join();
}

// The loop's topics batch a turn's deliveries (pubsub.hpp). A batch must be
// invisible: from one handler, bursts longer than a batch, publishes to two
// topics, a direct send, an exclusion, an unsubscribe and a subscribe all
// reach each client in the order they were made, and only the subscribers
// of the moment get each message.
namespace {
class BatchOrder final : public windlass::MessageComponent {
 public:
  explicit BatchOrder(windlass::App*& app) : app_(app) {}
  void on_open(windlass::Connection& c) override {
    c.subscribe("a");
    c.subscribe("b");
    conns.push_back(c);
    ++opened;
  }
  void on_message(windlass::Connection& c, const windlass::Message&) override {
    windlass::Connection other = conns[0].id() == c.id() ? conns[1] : conns[0];
    for (int i = 0; i < 150; ++i) app_->publish("a", "a" + std::to_string(i));  // over two batches
    app_->publish("b", "b");
    app_->publish("a", "a-after-b");
    c.send("direct");
    app_->publish("a", "a-after-direct");
    c.publish("a", "not-to-self");
    other.unsubscribe("a");
    app_->publish("a", "a-after-unsubscribe");
    other.subscribe("a");
    app_->publish("a", "a-after-subscribe");
    app_->publish("b", "b-last");
  }
  std::vector<windlass::Connection> conns;  // loop thread only
  std::atomic<int> opened{0};

 private:
  windlass::App*& app_;
};
}  // namespace

TEST(PubSubOrder, a_turns_batched_deliveries_keep_every_order_and_membership) {
  windlass::ServerOptions so;
  so.port = 0;
  so.threads = 1;
  so.handle_signals = false;
  windlass::App app(so);
  windlass::App* app_ptr = &app;
  auto component = std::make_shared<BatchOrder>(app_ptr);
  app.route("/", component);
  app.listen();
  std::thread thread([&] { app.run(); });
  {
    TestClient sender(app.port()), other(app.port());
    ASSERT_NE(sender.handshake("/").find("101"), std::string::npos);
    ASSERT_NE(other.handshake("/").find("101"), std::string::npos);
    for (int i = 0; i < 300 && component->opened < 2; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(component->opened, 2);
    sender.send_frame(Op::text, "go");
    std::vector<std::string> burst;
    for (int i = 0; i < 150; ++i) burst.push_back("a" + std::to_string(i));
    std::vector<std::string> want_sender = burst, want_other = burst;
    for (const char* s : {"b", "a-after-b", "direct", "a-after-direct", "a-after-unsubscribe", "a-after-subscribe",
                          "b-last"})
      want_sender.push_back(s);
    for (const char* s : {"b", "a-after-b", "a-after-direct", "not-to-self", "a-after-subscribe", "b-last"})
      want_other.push_back(s);
    for (auto [client, want] : {std::pair{&sender, &want_sender}, std::pair{&other, &want_other}}) {
      for (size_t k = 0; k < want->size(); ++k) {
        auto f = client->read_frame();
        ASSERT_TRUE(f) << k;
        ASSERT_EQ(f->payload, (*want)[k]) << k;
      }
      EXPECT_FALSE(client->read_frame(200)) << "one too many";
    }
  }
  app.stop();
  thread.join();
}
