// The windlass-server configuration: a TOML file (toml++), then
// environment variables, then command-line flags, each overriding the one
// before (docs/configuration.md lists every key).
//
// Parsing is strict on purpose: an unknown key, a value of the wrong type
// or out of range is an error that names the key and its line, never a
// silently ignored typo.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/app.hpp"
#include "windlass/auth.hpp"
#include "windlass/channels.hpp"

namespace windlass::server {

// "file:line:column: key: what is wrong", or without position for
// environment variables and flags ("WINDLASS_PORT=x: ...").
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ComponentKind : uint8_t { chat, echo, static_files };
const char* to_string(ComponentKind kind) noexcept;

enum class LogFormat : uint8_t { text, json };

// A WebSocket route's `auth`: the decorator of windlass_auth
// (include/windlass/auth.hpp) main wraps the component in.
enum class AuthKind : uint8_t { none, jwt, proxy };
const char* to_string(AuthKind kind) noexcept;  // "none", "jwt", "proxy"

struct RouteConfig {
  std::string path;
  ComponentKind component = ComponentKind::echo;
  std::filesystem::path root;  // static: absolute, resolved against the config file's directory
  std::string topic;           // chat: the room's topic (default: the route's path)
  WsOptions ws;                // WebSocket routes: [websocket] overridden by the route's keys
  std::vector<std::string> subprotocols;
  // auth = "jwt" ([route.jwt]) or "proxy" ([route.proxy]): the options
  // of JwtAuth or AuthProxy, as the library takes them. The JWT secret is
  // in here: never log these.
  AuthKind auth = AuthKind::none;
  JwtOptions jwt;
  AuthProxyOptions proxy;
  int line = 0;  // where the [[route]] table starts, for messages

  bool is_websocket() const noexcept { return component != ComponentKind::static_files; }
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, off
  LogFormat format = LogFormat::text;
  bool access = true;
  // Query parameters whose values are replaced by "REDACTED" wherever
  // "?name=" or "&name=" appears in a log line.
  std::vector<std::string> redact_query_params = {"token", "access_token", "api_key",  "key",
                                                  "auth",  "signature",    "password", "secret"};
};

struct MetricsConfig {
  bool enabled = true;
  std::string path = "/metrics";
  std::string health_path = "/healthz";  // "" disables
  std::string ready_path = "/readyz";    // "" disables
};

// [channels] and [[app]]: the Pusher-protocol hub. Off unless an app is configured.
struct ChannelsConfig {
  bool enabled = false;
  channels::HubOptions options;
  std::vector<channels::AppConfig> apps;
  // Apps whose key or secret is one of the well-known demo values, said
  // at start as not for production.
  std::vector<std::string> demo_apps;
};

// [broker]: what connects this node to the other nodes and to the web
// application's message brokers. Each input or bridge has its own struct
// and its own reader in config.cpp (read_broker_redis, read_broker_amqp),
// so that they stay apart.

// Several windlass-server processes as one, through Redis, and Laravel's
// Redis broadcaster as an input.
struct RedisConfig {
  std::string url;  // empty: no bridge (WINDLASS_REDIS_URL overrides)
  std::string prefix = "windlass:";
  bool fail_readiness_when_split = false;  // /readyz answers 503 while Redis is away
  // Laravel's Redis broadcaster: PSUBSCRIBE "<laravel_prefix>*" and
  // broadcast each message to the Pusher channel named by the rest.
  bool laravel = false;
  std::string laravel_prefix = "laravel_database_";  // WINDLASS_LARAVEL_PREFIX overrides
  std::string laravel_app;                           // the [[app]] id; default: the only one
};

// RabbitMQ as an input (include/windlass/amqp.hpp): messages published to
// `exchange` with the channel as routing key and Laravel's broadcast
// payload as body go to the hub's app `app`.
struct AmqpConfig {
  bool enabled = false;  // amqp_url is set, in the file or by WINDLASS_AMQP_URL
  std::string url;       // holds the password: log AmqpUrl::redacted() instead
  std::string exchange = "windlass";
  // Empty: "windlass.<hostname>.<port>" (server.port, or tls.port without
  // a plain listener), or "windlass.<hostname>.pid<pid>" when the port is 0.
  std::string queue;
  uint16_t prefetch = 100;
  // The [[app]] messages are published to: amqp_app, or the only [[app]].
  // Never empty when enabled.
  std::string app;
};

struct BrokerConfig {
  RedisConfig redis;
  AmqpConfig amqp;
};

struct Config {
  ServerOptions server;  // on_access and handle_signals are set by main, not by the file
  WsOptions websocket;   // defaults for every WebSocket route
  LogConfig log;
  MetricsConfig metrics;
  std::vector<RouteConfig> routes;
  ChannelsConfig channels;
  BrokerConfig broker;
  std::string source = "(built-in defaults)";  // the file it came from
};

// Reads and validates a config file. Relative static roots are resolved
// against the file's directory. Throws ConfigError.
Config load_config(const std::filesystem::path& file);

// The keys that environment variables and flags may override. amqp_url
// comes from WINDLASS_AMQP_URL only: a flag would show its password to ps.
enum class OverrideKey : uint8_t {
  host,
  port,
  threads,
  io,
  log_level,
  log_format,
  node_id,
  redis_url,
  laravel_prefix,
  amqp_url
};

// Applies one override, validated as strictly as the file's key; `origin`
// names where it came from ("WINDLASS_PORT" or "--port") for the message.
// Throws ConfigError.
void apply_override(Config& config, OverrideKey key, std::string_view value, std::string_view origin);

// Checks what no single key can: route paths that collide, routes that
// shadow the metrics or health endpoints. Throws ConfigError.
void validate(const Config& config);

// What depends on keys that the environment or flags may give
// (broker.laravel needs a Redis URL): checked after every override.
void validate_broker(const Config& config);

// The node id the AMQP input derives its queue from when amqp_queue is
// not given ("<hostname>.<port>", see AmqpConfig): the queue is
// "windlass." followed by it.
std::string amqp_node_id(const Config& config);

// One line for --check-config and the startup log.
std::string summary(const Config& config);

}  // namespace windlass::server
