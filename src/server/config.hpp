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

struct RouteConfig {
  std::string path;
  ComponentKind component = ComponentKind::echo;
  std::filesystem::path root;  // static: absolute, resolved against the config file's directory
  std::string topic;           // chat: the room's topic (default: the route's path)
  WsOptions ws;                // WebSocket routes: [websocket] overridden by the route's keys
  std::vector<std::string> subprotocols;
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

struct Config {
  ServerOptions server;  // on_access and handle_signals are set by main, not by the file
  WsOptions websocket;   // defaults for every WebSocket route
  LogConfig log;
  MetricsConfig metrics;
  std::vector<RouteConfig> routes;
  ChannelsConfig channels;
  std::string source = "(built-in defaults)";  // the file it came from
};

// Reads and validates a config file. Relative static roots are resolved
// against the file's directory. Throws ConfigError.
Config load_config(const std::filesystem::path& file);

// The keys that environment variables and flags may override.
enum class OverrideKey : uint8_t { host, port, threads, io, log_level, log_format };

// Applies one override, validated as strictly as the file's key; `origin`
// names where it came from ("WINDLASS_PORT" or "--port") for the message.
// Throws ConfigError.
void apply_override(Config& config, OverrideKey key, std::string_view value, std::string_view origin);

// Checks what no single key can: route paths that collide, routes that
// shadow the metrics or health endpoints. Throws ConfigError.
void validate(const Config& config);

// One line for --check-config and the startup log.
std::string summary(const Config& config);

}  // namespace windlass::server
