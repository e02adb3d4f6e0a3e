// windlass-server: the ready-to-run server. It reads a TOML config (then
// environment variables, then flags), mounts the configured components,
// static files, /metrics and the health endpoints on one App, and runs
// until SIGTERM or SIGINT, speaking systemd's readiness protocol when
// started by systemd.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "access_log.hpp"
#include "components.hpp"
#include "config.hpp"
#include "escape.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "notify.hpp"
#include "units.hpp"
#include "windlass/amqp.hpp"
#include "windlass/auth.hpp"
#include "windlass/channels.hpp"
#include "windlass/redis.hpp"
#include "windlass/windlass.hpp"

namespace ws = windlass::server;
using std::chrono::milliseconds;

namespace {

constexpr const char* kVersionLine = "windlass-server " WINDLASS_VERSION;

struct Flags {
  std::string config;
  bool check_config = false;
  // Empty when not given; validated by apply_override like the file's keys.
  std::string host, port, threads, io, log_level, log_format, node_id, redis_url;
};

struct OverrideSource {
  ws::OverrideKey key;
  const char* env;
  const char* flag;
  std::string Flags::*value;
};

constexpr OverrideSource kOverrides[] = {
    {ws::OverrideKey::host, "WINDLASS_HOST", "--host", &Flags::host},
    {ws::OverrideKey::port, "WINDLASS_PORT", "--port", &Flags::port},
    {ws::OverrideKey::threads, "WINDLASS_THREADS", "--threads", &Flags::threads},
    {ws::OverrideKey::io, "WINDLASS_IO", "--io", &Flags::io},
    {ws::OverrideKey::log_level, "WINDLASS_LOG_LEVEL", "--log-level", &Flags::log_level},
    {ws::OverrideKey::log_format, "WINDLASS_LOG_FORMAT", "--log-format", &Flags::log_format},
    {ws::OverrideKey::node_id, "WINDLASS_NODE_ID", "--node-id", &Flags::node_id},
    {ws::OverrideKey::redis_url, "WINDLASS_REDIS_URL", "--redis-url", &Flags::redis_url},
};

// An empty variable counts as unset, as most shells and compose files
// mean it.
const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// Precedence: flags > environment > config file > built-in defaults.
ws::Config effective_config(const Flags& flags, bool config_from_flag) {
  ws::Config config;
  std::string file = config_from_flag ? flags.config : (env("WINDLASS_CONFIG") ? env("WINDLASS_CONFIG") : "");
  if (!file.empty()) config = ws::load_config(file);
  for (const auto& o : kOverrides) {
    if (const char* v = env(o.env)) ws::apply_override(config, o.key, v, o.env);
  }
  if (const char* v = env("WINDLASS_LARAVEL_PREFIX")) {
    ws::apply_override(config, ws::OverrideKey::laravel_prefix, v, "WINDLASS_LARAVEL_PREFIX");
  }
  // No flag for this one: a URL on the command line shows its password to ps.
  if (const char* v = env("WINDLASS_AMQP_URL")) {
    ws::apply_override(config, ws::OverrideKey::amqp_url, v, "WINDLASS_AMQP_URL");
  }
  for (const auto& o : kOverrides) {
    if (!(flags.*o.value).empty()) ws::apply_override(config, o.key, flags.*o.value, o.flag);
  }
  ws::validate_broker(config);
  return config;
}

// Things that are allowed but probably not meant: said once at startup.
void warn_about(const ws::Config& config) {
  auto& log = ws::server_logger();
  if (config.routes.empty()) {
    log.warn("no [[route]] configured: only the metrics and health endpoints are served");
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < config.server.max_connections + 64) {
    log.warn(
        "server.max_connections is {} but the open-file limit is {}: accept() will fail first "
        "(raise LimitNOFILE= or ulimit -n)",
        config.server.max_connections, static_cast<unsigned long long>(rl.rlim_cur));
  }
}

int serve(const ws::Config& config) {
  auto& log = ws::server_logger();
  log.info("{} starting: {}", kVersionLine, ws::summary(config));
  warn_about(config);

  windlass::ServerOptions options = config.server;
  // Signals are ours: systemd must hear STOPPING=1 before draining starts,
  // and SIGHUP is answered with a log line either way.
  options.handle_signals = false;
  options.on_access = ws::make_access_hook(config.log.format);
  if (!config.broker.redis.url.empty() && options.node_id == 0) {
    // Nodes of one cluster need distinct ids (they are in every socket id):
    // one drawn at random is distinct with near certainty.
    std::random_device rd;
    options.node_id = 1 + rd() % ((1u << 24) - 1);
    log.info("node id {} (drawn at random: set server.node_id or WINDLASS_NODE_ID to fix it)", options.node_id);
  }
  windlass::App app(options);

  std::shared_ptr<windlass::redis::RedisBridge> bridge;
  if (!config.broker.redis.url.empty()) {
    try {
      bridge = windlass::redis::RedisBridge::install(app, {.url = config.broker.redis.url, .prefix = config.broker.redis.prefix});
    } catch (const std::invalid_argument& e) {
      log.error("broker: {}", e.what());
      return 1;
    }
  }

  ws::Notifier notifier;
  // RabbitMQ as an input, when [broker] amqp_url is set (made below).
  std::unique_ptr<windlass::AmqpInput> amqp;
  // Registered on the first loop before run() starts the other threads,
  // which inherit the blocked signal mask: only this loop's signalfd sees
  // them. And before listening: a SIGTERM sent as soon as the "listening
  // on" line appears must find the handler, not the default action.
  bool stopping = false;
  auto on_signal = [&](int signo) {
    const char* name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (stopping) {
      // A second Ctrl-C means "now": whoever types it is not waiting for a drain.
      if (signo == SIGINT) {
        log.warn("second SIGINT: exiting without waiting for connections to close");
        std::_Exit(130);
      }
      log.info("{} again: already shutting down", name);
      return;
    }
    stopping = true;
    // No delivery is taken after this: what the hub already took is
    // acknowledged, the rest stays in the queue for the next start.
    if (amqp) amqp->stop();
    log.info("received {}: draining for {}, then closing connections (waiting up to {}){}", name,
             ws::format_duration(config.server.drain_delay),
             ws::format_duration(config.server.shutdown_timeout),
             signo == SIGINT ? "; Ctrl-C again to exit at once" : "");
    // systemd may wait for the drain, the closing, and a margin.
    notifier.stopping("draining",
                      config.server.drain_delay + config.server.shutdown_timeout + milliseconds(5000));
    app.stop();
  };
  app.loop().on_signal(SIGINT, on_signal);
  app.loop().on_signal(SIGTERM, on_signal);
  // SIGHUP would otherwise end the process on the spot. It means "reload":
  // the TLS certificate and key are re-read (after a renewal) without
  // dropping a connection; the rest of the config is read only at start.
  app.loop().on_signal(SIGHUP, [&](int) {
    if (app.tls_port() == 0) {
      log.info("received SIGHUP: nothing to reload (no TLS); restart to apply a changed config");
      return;
    }
    log.info("received SIGHUP: reloading the TLS certificate and key");
    try {
      app.reload_tls();
    } catch (const std::exception& e) {
      log.error("{}; keeping the current certificate", e.what());
    }
  });

  std::vector<ws::RouteMetrics> route_metrics;
  for (const auto& r : config.routes) {
    if (r.is_websocket()) {
      auto component = ws::make_component(r);
      // The check runs at the upgrade hook, before the 101 and before the
      // component (and its connection count) sees the connection.
      std::shared_ptr<windlass::MessageComponent> mounted = component;
      try {
        switch (r.auth) {
          case ws::AuthKind::none: break;
          case ws::AuthKind::jwt: mounted = std::make_shared<windlass::JwtAuth>(component, r.jwt); break;
          case ws::AuthKind::proxy: mounted = std::make_shared<windlass::AuthProxy>(app, component, r.proxy); break;
        }
      } catch (const std::invalid_argument& e) {
        // load_config checked the same things; a key file that changed since, say.
        log.error("route {}: auth: {}", r.path, e.what());
        return 1;
      }
      // Nothing secret: the secret and the headers' values stay out.
      if (r.auth == ws::AuthKind::jwt) {
        log.info("route {}: auth jwt ({}, issuer {}, audience {})", r.path, windlass::to_string(r.jwt.algorithm),
                 r.jwt.issuer, r.jwt.audience);
      } else if (r.auth == ws::AuthKind::proxy) {
        log.info("route {}: auth proxy ({} {}, timeout {})", r.path, r.proxy.method, r.proxy.url,
                 ws::format_duration(r.proxy.timeout));
      }
      app.route(r.path, mounted, r.ws);
      route_metrics.push_back({r.path, ws::to_string(r.component), component});
    } else {
      app.http(r.path, windlass::static_files(r.root.string()));
    }
  }
  // The Pusher-protocol hub, when [[app]]s are configured.
  std::unique_ptr<windlass::channels::Hub> hub;
  if (config.channels.enabled) {
    windlass::channels::HubOptions hub_options = config.channels.options;
    if (bridge) {
      // Several nodes, one hub: presence, counts and webhooks are the cluster's, kept in Redis.
      auto cluster = std::make_shared<windlass::channels::ClusterOptions>();
      std::weak_ptr<windlass::redis::RedisBridge> weak = bridge;
      cluster->redis = [weak](std::string key, std::vector<std::string> args,
                              windlass::channels::ClusterOptions::Reply reply) {
        if (auto b = weak.lock()) {
          b->command(std::move(key), std::move(args), std::move(reply));
        } else if (reply) {
          reply({}, "the bridge is gone");
        }
      };
      cluster->connected = [weak] {
        auto b = weak.lock();
        return b && b->connected();
      };
      cluster->key_prefix = config.broker.redis.prefix;
      hub_options.cluster = std::move(cluster);
    }
    try {
      hub = std::make_unique<windlass::channels::Hub>(app, config.channels.apps, hub_options);
    } catch (const std::invalid_argument& e) {
      log.error("{}", e.what());
      return 1;
    }
    for (const auto& id : config.channels.demo_apps) {
      log.warn("channels: app \"{}\" uses the well-known demo key or secret (app-key / app-secret): a demo "
               "credential, not for production",
               id);
    }
    log.info("channels: {} app(s) at {}/{{key}}; HTTP API at /apps/{{id}}/...", config.channels.apps.size(),
             config.channels.options.websocket_prefix);
  }
  if (bridge && config.broker.redis.laravel) {
    // Laravel's Redis broadcaster PUBLISHes {"event","data","socket"} on
    // "<prefix><channel>". Every node subscribes and delivers to its own
    // clients, so these are published here only (an origin tag of their own).
    const std::string prefix = config.broker.redis.laravel_prefix;
    const std::string app_id =
        config.broker.redis.laravel_app.empty() ? config.channels.apps.front().id : config.broker.redis.laravel_app;
    windlass::channels::Hub* h = hub.get();
    bridge->psubscribe(prefix + "*", [h, prefix, app_id](std::string_view channel, std::string_view payload) {
      std::string error;
      if (!h->publish_payload(app_id, channel.substr(prefix.size()), payload, ws::kLaravelOrigin, &error)) {
        windlass::log(windlass::LogLevel::warn, "broker: laravel message on \"" + std::string(channel) +
                                                    "\" dropped: " + error);
      }
    });
    log.info("broker: Laravel's Redis broadcaster on {}* goes to app {}", prefix, app_id);
  }
  if (config.broker.amqp.enabled) {
    const ws::AmqpConfig& c = config.broker.amqp;
    windlass::AmqpOptions o;
    o.url = c.url;
    o.exchange = c.exchange;
    o.queue = c.queue;
    o.node_id = ws::amqp_node_id(config);
    o.prefetch = c.prefetch;
    // What the hub's payload parser takes: larger bodies are refused
    // before they are gathered.
    o.max_message_size = 64 * 1024;
    windlass::channels::Hub* h = hub.get();
    auto handler = [h, app_id = c.app, &log](std::string_view key, std::string_view body) {
      std::string error;
      if (h->publish_payload(app_id, key, body, windlass::kAmqpOrigin, &error)) return true;
      std::string line;
      ws::append_one_line(line, key);
      log.warn("amqp: rejected a message with routing key \"{}\": {}", line, error);
      return false;
    };
    try {
      amqp = std::make_unique<windlass::AmqpInput>(app.loop(), std::move(o), std::move(handler));
    } catch (const std::invalid_argument& e) {
      log.error("{}", e.what());
      return 1;
    }
  }
  ws::add_metrics_routes(app, config.metrics, std::move(route_metrics), hub.get(), bridge.get(),
                         config.broker.redis.fail_readiness_when_split, amqp.get());

  try {
    app.listen();
  } catch (const std::exception& e) {
    // The library's message names the address, or the TLS file, at fault.
    log.error("cannot start listening: {}", e.what());
    return 1;
  }
  // stdout carries exactly these lines, as the examples print them:
  // scripts and tests wait for them.
  std::string listening;
  if (config.server.plain_listener) {
    listening = "listening on " + config.server.host + ":" + std::to_string(app.port());
    std::printf("%s\n", listening.c_str());
  }
  if (app.tls_port() != 0) {
    const std::string& tls_host =
        config.server.tls_host.empty() ? config.server.host : config.server.tls_host;
    std::string line = "listening on " + tls_host + ":" + std::to_string(app.tls_port()) + " (tls)";
    std::printf("%s\n", line.c_str());
    listening += (listening.empty() ? "" : "; ") + line;
  }
  std::fflush(stdout);
  log.info("{} ({} event loop{} on {})", listening, app.thread_count(), app.thread_count() == 1 ? "" : "s",
           windlass::to_string(app.loop().backend()));

  // After listening, so that the first deliveries find the endpoints up.
  if (amqp) amqp->start();

  // Posted, so READY=1 is sent by the running loop, not merely a bound socket.
  app.loop().post([&] {
    notifier.start_timers(app, milliseconds(10'000));
    notifier.ready(listening);
  });
  app.run();
  // Before the hub its handler publishes to; the thread ends at once if
  // SIGTERM already stopped it.
  amqp.reset();
  log.info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{
      "windlass-server: a WebSocket server (chat, echo, static files, /metrics) configured by a TOML file.",
      "windlass-server"};
  Flags flags;
  cli.set_version_flag("--version", kVersionLine, "Print the version and exit");
  auto* config_opt =
      cli.add_option("-c,--config", flags.config, "The TOML config file (env WINDLASS_CONFIG)");
  cli.add_flag("--check-config", flags.check_config,
               "Parse and validate the configuration, print a one-line summary, exit 0 (valid) or 1");
  cli.add_option("--host", flags.host, "Listen address (env WINDLASS_HOST; config server.host)");
  cli.add_option("--port", flags.port,
                 "Listen port, 0 for any free one (env WINDLASS_PORT; config server.port)");
  cli.add_option("--threads", flags.threads, "Event loops, 0 for one per core (env WINDLASS_THREADS)");
  cli.add_option("--io", flags.io,
                 "What the loops wait with: auto, epoll or io_uring (env WINDLASS_IO; config server.io)");
  cli.add_option("--log-level", flags.log_level,
                 "trace, debug, info, warn, error, off (env WINDLASS_LOG_LEVEL)");
  cli.add_option("--log-format", flags.log_format, "text or json (env WINDLASS_LOG_FORMAT)");
  cli.add_option("--node-id", flags.node_id,
                 "This node's id in a cluster, 1-16777215 (env WINDLASS_NODE_ID; config server.node_id)");
  cli.add_option("--redis-url", flags.redis_url,
                 "redis://host:port or redis-cluster://host:port,... (env WINDLASS_REDIS_URL; config broker.redis_url)");
  cli.footer(
      "Precedence: flags, then environment variables, then the config file, then built-in defaults.\n"
      "Every key is described in docs/configuration.md.");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = cli.exit(e);  // prints help, the version, or the error
    return code == 0 ? 0 : 2;
  }

  ws::Config config;
  try {
    config = effective_config(flags, config_opt->count() > 0);
  } catch (const ws::ConfigError& e) {
    std::fprintf(stderr, "windlass-server: config error: %s\n", e.what());
    return 1;
  }
  if (flags.check_config) {
    std::printf("config ok: %s\n", ws::summary(config).c_str());
    return 0;
  }

  try {
    ws::configure_logging(config.log);
    return serve(config);
  } catch (const std::exception& e) {
    // Setup only (a static root that vanished since the check, a bad
    // host): the loop itself never throws.
    std::fprintf(stderr, "windlass-server: %s\n", e.what());
    return 1;
  }
}
