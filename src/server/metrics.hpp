// GET /metrics in the Prometheus text exposition format 0.0.4, and the
// health endpoints /healthz (the process runs) and /readyz (it takes new
// clients: 503 once a graceful shutdown has begun).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "components.hpp"
#include "config.hpp"
#include "windlass/amqp.hpp"
#include "windlass/app.hpp"
#include "windlass/channels.hpp"
#include "windlass/redis.hpp"

namespace windlass::server {

// A WebSocket route as /metrics labels it.
struct RouteMetrics {
  std::string path;
  std::string component;
  std::shared_ptr<const ServerComponent> counts;
};

// The whole exposition for one scrape. Pure apart from the process
// numbers it reads from /proc (open fds, CPU time, start time).
std::string render_metrics(const Stats& stats, unsigned threads, const std::vector<RouteMetrics>& routes,
                           const channels::Hub* hub = nullptr, const redis::RedisBridge* bridge = nullptr,
                           const AmqpInput* amqp = nullptr);

// Adds the configured /metrics, /healthz and /readyz handlers to `app`.
// `app` must outlive the handlers (it owns them).
// `hub`, `bridge` and `amqp`, when given, add their families (the hub's per
// app); they must outlive the handlers too. With `split_fails_readiness`,
// /readyz answers 503 while the bridge has lost Redis.
void add_metrics_routes(App& app, const MetricsConfig& config, std::vector<RouteMetrics> routes,
                        const channels::Hub* hub = nullptr, const redis::RedisBridge* bridge = nullptr,
                        bool split_fails_readiness = false, const AmqpInput* amqp = nullptr);

}  // namespace windlass::server
