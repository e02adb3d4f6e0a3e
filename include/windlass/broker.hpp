// The broker: publish/subscribe between connections, across every loop of
// an App, and — through a bridge an application installs — across nodes.
//
// The App's own broker (App::local_broker()) delivers within the process:
// each loop keeps its own subscriber lists, touched only by its thread; a
// publish encodes the frame once, delivers it at once to the subscribers
// on the publishing loop and posts one task carrying the same shared
// frame to every other loop. A bridge (Redis, RabbitMQ, ...) is a
// BrokerDecorator over it: it forwards what is published here to the
// other nodes, follows the topics this process has subscribers for
// through TopicObserver, and delivers what arrives from elsewhere to the
// local broker. Nothing in the library knows any bridge.
//
//   app.set_broker(std::make_shared<MyBridge>(app.local_broker_ptr(), ...));
//   conn.subscribe("room:1");          // through app.broker()
//   app.broker().publish("room:1", windlass::Message{windlass::MessageKind::text, "hi"});
//
// Topics may keep a history, and a subscriber come back from the last
// offset it saw (history.hpp): keep_history(), subscribe_from().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/connection.hpp"
#include "windlass/history.hpp"

namespace windlass {

struct PublishOptions {
  // A connection (Connection::id()) that must not receive the message: the
  // sender of a chat line, Pusher's socket_id. Ids carry their node
  // (ServerOptions::node_id), so a bridge can exclude across nodes. 0: none.
  uint64_t except = 0;
  // Who publishes. 0 is the application; a bridge gives what it relays
  // from elsewhere its own tag, so that it (and any other decorator) can
  // tell a message that came *from* it and must not be sent back *to* it.
  uint32_t origin = 0;
  // The message's offset in its topic's history, given by whoever keeps
  // that history outside the process (a HistorySource). Empty: the local
  // broker assigns one itself, if it keeps the topic's history.
  std::string_view offset{};
};

// Hears a topic's subscriber count in this process (all loops together)
// go from 0 to 1 and from 1 to 0: what a bridge needs to subscribe
// upstream only to the topics this node has subscribers for.
//
// Called on the loop thread where the change happened, with the broker's
// registry lock held, so the calls for one topic arrive in the order the
// changes happened. Keep them short (post the work to your own loop) and
// do not call back into the broker from them.
class TopicObserver {
 public:
  virtual ~TopicObserver() = default;
  virtual void on_topic_occupied(std::string_view topic) = 0;
  virtual void on_topic_vacated(std::string_view topic) = 0;
};

class Broker {
 public:
  virtual ~Broker() = default;

  // The connection's loop thread. False when the connection is not open,
  // or is already subscribed (subscribe) / not subscribed (unsubscribe).
  virtual bool subscribe(const Connection& conn, std::string_view topic) = 0;
  virtual bool unsubscribe(const Connection& conn, std::string_view topic) = 0;
  // Any thread. Sends `message` to every subscriber of `topic`.
  virtual void publish(std::string_view topic, const Message& message, const PublishOptions& options = {}) = 0;

  // Any thread: a snapshot for this process (a bridge may answer for the
  // whole cluster through its own API).
  virtual size_t subscriber_count(std::string_view topic) const = 0;
  // Any thread: the topics with at least one subscriber in this process
  // (what a bridge resubscribes to after reconnecting).
  virtual std::vector<std::string> topics() const = 0;

  // Any thread. The observer must outlive its registration.
  virtual void add_observer(TopicObserver* observer) = 0;
  virtual void remove_observer(TopicObserver* observer) = 0;

  // History (history.hpp). Before the App runs: the topics whose names
  // start with `prefix` keep a history; the longest matching prefix wins.
  virtual void keep_history(std::string prefix, HistoryOptions options) = 0;
  // Any thread: the history options `topic` follows, or null.
  virtual const HistoryOptions* history_of(std::string_view topic) const = 0;
  // The connection's loop thread: subscribes `conn` to `topic` (false as
  // subscribe() is) and sends it, first, what was published after `since`
  // (an offset it saw; empty: none, a fresh subscription), exactly once
  // and in order, then what is published from then on. `done` says how it
  // went (Recovery), before the missed messages.
  virtual bool subscribe_from(const Connection& conn, std::string_view topic, std::string_view since,
                              RecoveryHandler done) = 0;
  // Before the App runs: a bridge that keeps the history (see HistorySource).
  virtual void set_history_source(HistorySource* source) = 0;
};

// A broker that forwards every call to the one it wraps: the base of a
// bridge, which overrides what it adds to.
class BrokerDecorator : public Broker {
 public:
  explicit BrokerDecorator(std::shared_ptr<Broker> inner) noexcept : inner_(std::move(inner)) {}

  bool subscribe(const Connection& conn, std::string_view topic) override { return inner_->subscribe(conn, topic); }
  bool unsubscribe(const Connection& conn, std::string_view topic) override {
    return inner_->unsubscribe(conn, topic);
  }
  void publish(std::string_view topic, const Message& message, const PublishOptions& options = {}) override {
    inner_->publish(topic, message, options);
  }
  size_t subscriber_count(std::string_view topic) const override { return inner_->subscriber_count(topic); }
  std::vector<std::string> topics() const override { return inner_->topics(); }
  void add_observer(TopicObserver* observer) override { inner_->add_observer(observer); }
  void remove_observer(TopicObserver* observer) override { inner_->remove_observer(observer); }
  void keep_history(std::string prefix, HistoryOptions options) override {
    inner_->keep_history(std::move(prefix), std::move(options));
  }
  const HistoryOptions* history_of(std::string_view topic) const override { return inner_->history_of(topic); }
  bool subscribe_from(const Connection& conn, std::string_view topic, std::string_view since,
                      RecoveryHandler done) override {
    return inner_->subscribe_from(conn, topic, since, std::move(done));
  }
  void set_history_source(HistorySource* source) override { inner_->set_history_source(source); }

  Broker& inner() const noexcept { return *inner_; }

 protected:
  std::shared_ptr<Broker> inner_;
};

}  // namespace windlass
