#include "channels/webhooks.hpp"

#include <algorithm>

#include "channels/hub_internal.hpp"

namespace windlass::channels {

namespace {
constexpr auto kFlushEvery = std::chrono::milliseconds(100);

// The "name" member of an event's JSON, which this file wrote itself.
std::string event_name(std::string_view json) {
  constexpr std::string_view kName = "{\"name\":\"";
  if (!json.starts_with(kName)) return {};
  const size_t end = json.find('"', kName.size());
  return std::string(json.substr(kName.size(), end - kName.size()));
}
}  // namespace

Webhooks::Webhooks(Hub::Impl& hub) : hub_(hub), ready_(hub.apps.size()) {}

Webhooks::~Webhooks() = default;

void Webhooks::start(Loop& loop) {
  loop_ = &loop;
  bool any = false;
  for (const auto& a : hub_.apps) any = any || !a->config.webhooks.empty();
  if (!any) return;
  client_ = std::make_unique<HttpClient>(loop, HttpClientOptions{.max_concurrent = 16, .max_queued = 4096});
  timer_ = loop.add_timer(kFlushEvery, [this] { flush(); }, kFlushEvery);
}

void Webhooks::stop() {
  if (loop_ != nullptr && timer_ != 0) loop_->cancel_timer(timer_);
  timer_ = 0;
  if (client_) flush();  // what is ready goes now; what is in flight is dropped with the client
  client_.reset();
  loop_ = nullptr;
}

size_t Webhooks::queued() const {
  std::lock_guard lock(mu_);
  return count_;
}

void Webhooks::drop(size_t app, size_t n) {
  // Counted always, said at most once a second: a full queue means many drops.
  hub_.apps[app]->counters.webhooks_dropped.fetch_add(n, std::memory_order_relaxed);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_drop_log_ >= std::chrono::seconds(1)) {
    last_drop_log_ = now;
    windlass::log(LogLevel::warn, "channels: app " + hub_.apps[app]->config.id + ": webhook queue full (" +
                                      std::to_string(hub_.options.webhook_queue) + " events): dropping");
  }
}

void Webhooks::push(size_t app, std::string json, bool vacating, std::string_view key) {
  std::lock_guard lock(mu_);
  if (!key.empty()) {
    auto it = held_.find(std::string(key));
    if (it != held_.end() && !vacating) {
      // Back before its leaving was told: neither is.
      held_.erase(it);
      --count_;
      return;
    }
    if (vacating) {
      if (count_ >= hub_.options.webhook_queue) return drop(app, 1);
      auto due = std::chrono::steady_clock::now() + hub_.options.webhook_delay;
      auto [pos, inserted] = held_.try_emplace(std::string(key), Held{app, std::move(json), due});
      if (inserted) ++count_;
      return;
    }
  }
  if (count_ >= hub_.options.webhook_queue) return drop(app, 1);
  ready_[app].push_back(Ready{event_name(json), std::move(json)});
  ++count_;
}

void Webhooks::flush() {
  std::vector<std::vector<Ready>> ready(hub_.apps.size());
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->second.due <= now) {
        ready_[it->second.app].push_back(Ready{event_name(it->second.json), std::move(it->second.json)});
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    for (size_t a = 0; a < ready_.size(); ++a) {
      count_ -= ready_[a].size();
      ready[a].swap(ready_[a]);
    }
  }
  if (!client_) return;
  const int64_t time_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (size_t a = 0; a < ready.size(); ++a) {
    if (ready[a].empty()) continue;
    const AppConfig& config = hub_.apps[a]->config;
    for (size_t t = 0; t < config.webhooks.size(); ++t) {
      const auto& events = config.webhooks[t].events;
      std::vector<const Ready*> mine;
      for (const Ready& r : ready[a]) {
        if (events.empty() || std::find(events.begin(), events.end(), r.name) != events.end()) mine.push_back(&r);
      }
      for (size_t i = 0; i < mine.size(); i += hub_.options.webhook_batch) {
        auto batch = std::make_shared<Batch>();
        batch->app = a;
        batch->target = t;
        batch->body = "{\"time_ms\":" + std::to_string(time_ms) + ",\"events\":[";
        for (size_t j = i; j < std::min(mine.size(), i + hub_.options.webhook_batch); ++j) {
          if (j != i) batch->body += ',';
          batch->body += mine[j]->json;
        }
        batch->body += "]}";
        send(std::move(batch));
      }
    }
  }
}

void Webhooks::send(std::shared_ptr<Batch> batch) {
  if (!client_ || loop_ == nullptr) return;
  AppState& app = *hub_.apps[batch->app];
  Sha256Hex signature;
  hub_.loops->get(*loop_).signers[app.index]->sign_webhook(batch->body, signature);
  HttpClientRequest r;
  r.method = "POST";
  r.url = app.config.webhooks[batch->target].url;
  r.headers = {{"Content-Type", "application/json"},
               {"X-Pusher-Key", app.config.key},
               {"X-Pusher-Signature", std::string(signature.view())}};
  r.body = batch->body;
  r.timeout = hub_.options.webhook_timeout;
  client_->request(std::move(r), [this, batch](HttpClientResult result) {
    AppState& a = *hub_.apps[batch->app];
    if (result.ok() && result.status >= 200 && result.status < 300) {
      a.counters.webhooks_sent.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::string why = result.error != HttpClientError::none ? result.error_text
                                                                  : "status " + std::to_string(result.status);
    if (batch->attempt < hub_.options.webhook_retries && loop_ != nullptr) {
      const auto backoff = std::chrono::milliseconds(1000) * (1 << batch->attempt);
      ++batch->attempt;
      windlass::log(LogLevel::info, "channels: app " + a.config.id + ": webhook to " +
                                        a.config.webhooks[batch->target].url + " failed (" + why + "); retry " +
                                        std::to_string(batch->attempt) + " in " + std::to_string(backoff.count()) +
                                        " ms");
      loop_->add_timer(backoff, [this, batch] { send(batch); });
      return;
    }
    a.counters.webhooks_failed.fetch_add(1, std::memory_order_relaxed);
    windlass::log(LogLevel::warn, "channels: app " + a.config.id + ": webhook to " +
                                      a.config.webhooks[batch->target].url + " failed after " +
                                      std::to_string(batch->attempt + 1) + " tries (" + why + "); dropped");
  });
}

}  // namespace windlass::channels
