// Webhooks: what happened in the hub, POSTed to the apps' web apps,
// batched, signed (X-Pusher-Key, X-Pusher-Signature: hex HMAC-SHA256 of the
// body under the app's secret), retried with backoff, from a bounded queue.
//
// Events arrive from any loop (push) and are sent from the first loop, by
// a windlass::HttpClient on it. Vacating events (channel_vacated,
// member_removed) wait HubOptions::webhook_delay; if the matching
// occupying event (channel_occupied, member_added) comes before it is due,
// both are dropped: a page reload fires nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/channels.hpp"
#include "windlass/http_client.hpp"
#include "windlass/loop.hpp"

namespace windlass::channels {

class Webhooks {
 public:
  explicit Webhooks(Hub::Impl& hub);
  ~Webhooks();

  // The first loop's thread, at its start and its stop.
  void start(Loop& loop);
  void stop();

  // Any thread. `vacating`: a channel_vacated or member_removed, held back;
  // `key` pairs it with its occupying twin ("channel:<topic>", "member:...").
  void push(size_t app, std::string json, bool vacating, std::string_view key);

  size_t queued() const;

 private:
  struct Held {
    size_t app;
    std::string json;
    std::chrono::steady_clock::time_point due;
  };
  struct Batch {
    size_t app;
    size_t target;
    std::string body;
    unsigned attempt = 0;
  };

  void flush();  // loop thread
  void send(std::shared_ptr<Batch> batch);
  void drop(size_t app, size_t n);

  Hub::Impl& hub_;
  Loop* loop_ = nullptr;
  std::unique_ptr<HttpClient> client_;
  Loop::TimerId timer_ = 0;

  mutable std::mutex mu_;
  struct Ready {
    std::string name;  // the event's name, for the targets' filters
    std::string json;
  };
  std::vector<std::vector<Ready>> ready_;  // per app: events to send
  std::map<std::string, Held> held_;             // vacating events by key, waiting for their delay
  size_t count_ = 0;                             // ready and held, for the bound
  std::chrono::steady_clock::time_point last_drop_log_{};  // under mu_
};

}  // namespace windlass::channels
