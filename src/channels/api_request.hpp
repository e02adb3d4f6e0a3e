// The Pusher HTTP API, server side: request paths, the signed query, and the
// bodies of POST /apps/{id}/events and /batch_events. Pure: the clock comes
// in as `now`, the app's key and secret as an AppSigner.
//
// Signed query (Pusher REST API, "authentication"):
//   auth_key        the app's key                              else 401 unknown_key
//   auth_timestamp  Unix seconds, within ±max_clock_skew of now (600 s): a
//                   replay is refused (Soketi and Reverb accept them)  else 401
//   auth_version    "1.0"                                      else 400
//   body_md5        hex MD5 of the body; required when the body is not empty,
//                   checked whenever present                   else 400 / 401
//   auth_signature  hex HMAC-SHA256(secret, METHOD "\n" PATH "\n" QUERY) else 401
// where QUERY is every parameter except auth_signature, keys lower-cased and
// percent-decoded ('+' is a space), values percent-decoded, sorted by key
// (bytes), joined as k=v with '&' and not escaped again. PATH is the path as
// received (without a proxy prefix: the caller strips it). A PHP-style array
// parameter (info[]=a&info[]=b, or info[0]=...) is one key whose values are
// joined with ',' in the order sent, as the SDKs sign it. A key sent twice
// otherwise (in any case) is refused: the signature and the request must not
// be able to disagree about its value.
//
// Errors: one enum for paths, queries and bodies, each with an HTTP status
// (400, 401, 404, 405, 413) and a fixed reason naming what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "channels/channel_name.hpp"
#include "channels/signature.hpp"

namespace windlass::channels {

namespace detail {
class JsonDocument;
}

enum class ApiError : uint8_t {
  none,
  // Paths.
  not_found,           // 404: no API route has this shape
  method_not_allowed,  // 405
  invalid_app_id,      // 400
  invalid_path_channel,
  invalid_path_user_id,
  not_a_presence_channel,  // /users of a channel that has no members
  malformed_path,          // a bad percent-escape
  // Queries.
  query_too_long,  // 414
  too_many_parameters,
  malformed_query,  // a bad percent-escape, an empty key
  duplicate_parameter,
  missing_auth_key,
  missing_auth_timestamp,
  missing_auth_version,
  missing_auth_signature,
  missing_body_md5,
  invalid_auth_timestamp,
  unsupported_auth_version,
  malformed_body_md5,
  malformed_auth_signature,
  unknown_key,        // 401
  stale_timestamp,    // 401
  body_md5_mismatch,  // 401
  wrong_signature,    // 401
  crypto_failure,     // 500
  invalid_info,       // the info parameter names an unknown attribute
  // Bodies.
  body_too_large,  // 413
  body_invalid_utf8,
  body_malformed_json,
  body_too_deep,
  body_not_an_object,
  duplicate_key,
  missing_name,
  name_not_string,
  name_empty,
  name_too_long,
  missing_data,
  data_not_string,
  data_too_large,  // 413
  missing_channels,
  channel_and_channels,
  channels_not_array,
  channels_empty,
  too_many_channels,
  channel_not_string,
  invalid_channel,  // see ApiBodyParser::channel_error()
  socket_id_not_string,
  invalid_socket_id,  // see ApiBodyParser::socket_id_error()
  info_not_string,
  missing_batch,
  batch_not_array,
  batch_too_large,
  batch_item_not_object,
};

uint16_t http_status(ApiError e) noexcept;
const char* describe(ApiError e) noexcept;

// --- Paths -----------------------------------------------------------------

enum class ApiRoute : uint8_t {
  events,                      // POST /apps/{id}/events
  batch_events,                // POST /apps/{id}/batch_events
  channels,                    // GET  /apps/{id}/channels
  channel,                     // GET  /apps/{id}/channels/{name}
  channel_users,               // GET  /apps/{id}/channels/{name}/users
  terminate_user_connections,  // POST /apps/{id}/users/{user_id}/terminate_connections
};

// The method a route takes.
std::string_view api_route_method(ApiRoute r) noexcept;

inline constexpr size_t kMaxAppIdLength = 64;
inline constexpr size_t kMaxUserIdLength = 128;

struct ApiPath {
  ApiRoute route = ApiRoute::events;
  std::string app_id;   // 1-64 of [-a-zA-Z0-9_.]
  std::string channel;  // channel, channel_users: a valid channel name
  ChannelInfo channel_info;
  std::string user_id;  // terminate_user_connections: 1-128 bytes of UTF-8, no control characters
};

// Parses `path` (no query string; the part of the request target before
// '?'). Captured segments are percent-decoded, then validated. The shape is
// matched first (404), then the method (405), then the parts (400); the
// users of a channel exist only for presence channels (400 otherwise).
ApiError parse_api_path(std::string_view method, std::string_view path, ApiPath& out);

// --- Signed queries --------------------------------------------------------

struct ApiAuthOptions {
  int64_t max_clock_skew = 600;    // seconds either side of now
  size_t max_query_length = 4096;  // raw bytes
  size_t max_parameters = 32;
  size_t max_body_size = 1 << 20;  // checked before the body is hashed: 413
};

struct ApiRequest {
  std::string_view method;  // "POST", "GET"
  std::string_view path;    // "/apps/3/events", as received
  std::string_view query;   // without the '?'
  std::string_view body;
};

// Verifies signed queries; keeps its buffers between requests, so steady
// state does not allocate. Not thread-safe: one per loop.
class ApiRequestVerifier {
 public:
  explicit ApiRequestVerifier(ApiAuthOptions options = {});

  // Parses the query of `request` and verifies it for the app whose key and
  // secret `signer` holds, at `now` (Unix seconds). Checks in this order:
  // sizes, query syntax, required parameters, auth_version, auth_key,
  // auth_timestamp, body_md5, auth_signature.
  ApiError verify(const ApiRequest& request, AppSigner& signer, int64_t now);

  // Parses a query alone (verify() does it first): decoded parameters
  // become available through param().
  ApiError parse_query(std::string_view query);
  // A decoded parameter by its lower-case name; arrays joined with ','.
  std::optional<std::string_view> param(std::string_view name) const noexcept;
  // Every decoded parameter, in the order first sent.
  size_t parameter_count() const noexcept { return count_; }
  std::string_view parameter_name(size_t i) const noexcept { return params_[i].key; }
  std::string_view parameter_value(size_t i) const noexcept { return params_[i].value; }
  // The string the last verify() signed, for logs and tests.
  std::string_view string_to_sign() const noexcept { return to_sign_; }
  const ApiAuthOptions& options() const noexcept { return options_; }

 private:
  struct Param {
    std::string key;
    std::string value;
    bool array = false;
  };

  ApiAuthOptions options_;
  Md5Hasher md5_;
  std::vector<Param> params_;  // reused: params_[0, count_) are live
  size_t count_ = 0;
  std::vector<uint32_t> order_;
  std::string key_;  // the key being decoded
  std::string to_sign_;
};

// The info attributes an API request may ask for (events, channels).
struct InfoAttributes {
  bool user_count = false;
  bool subscription_count = false;
  constexpr bool operator==(const InfoAttributes&) const = default;
};
// Parses "user_count,subscription_count" (either, both, in any order;
// empty is none); false on anything else.
bool parse_info_attributes(std::string_view text, InfoAttributes& out) noexcept;

// --- Bodies ----------------------------------------------------------------

struct ApiBodyLimits {
  size_t max_body_size = 1 << 20;    // 413
  size_t max_data_size = 10 * 1024;  // unescaped bytes of one event's data: 413 (Pusher's 10 KB)
  size_t max_channels = 100;         // per event
  size_t max_batch_size = 10;        // events per batch
  size_t max_event_name = 200;
  size_t max_depth = 16;  // nesting as simdjson counts it: {"a":1} is 2 deep
};

struct ApiEvent {
  std::string_view name;
  std::string_view data;       // unescaped
  std::string_view data_json;  // the data string literal as sent, quotes included (valid JSON)
  std::span<const std::string_view> channels;
  std::string_view socket_id;  // empty when absent; a valid socket_id otherwise
  InfoAttributes info;
};

class ApiBodyParser {
 public:
  explicit ApiBodyParser(ApiBodyLimits limits = {});
  ~ApiBodyParser();
  ApiBodyParser(const ApiBodyParser&) = delete;
  ApiBodyParser& operator=(const ApiBodyParser&) = delete;

  // {"name","data","channels":[..] | "channel","socket_id"?,"info"?}
  ApiError parse_events(std::string_view body);
  // {"batch":[{"name","data","channel","socket_id"?,"info"?}, ...]}; an
  // empty batch is accepted (it publishes nothing).
  ApiError parse_batch_events(std::string_view body);

  // The events of the last successful parse (one for parse_events). Views
  // point into the parser and the body; valid until the next parse.
  std::span<const ApiEvent> events() const noexcept { return {events_.data(), events_.size()}; }
  // After an error in a batch: the index of the item at fault.
  size_t error_index() const noexcept { return error_index_; }
  ChannelNameError channel_error() const noexcept { return channel_error_; }
  SocketIdError socket_id_error() const noexcept { return socket_id_error_; }
  // The reason for the last error with its detail, e.g.
  // "batch[2]: invalid channel name: channel name is empty".
  std::string error_message(ApiError e) const;
  const ApiBodyLimits& limits() const noexcept { return limits_; }

 private:
  class Walker;  // the DOM walk, in api_request.cpp

  ApiBodyLimits limits_;
  std::unique_ptr<detail::JsonDocument> doc_;
  std::vector<ApiEvent> events_;
  std::vector<std::string_view> channels_;  // every event's channels, back to back
  std::vector<std::pair<size_t, size_t>> channel_ranges_;
  std::vector<std::string_view> raw_items_;  // each batch item's text
  size_t error_index_ = 0;
  bool in_batch_ = false;
  ChannelNameError channel_error_ = ChannelNameError::none;
  SocketIdError socket_id_error_ = SocketIdError::none;
};

}  // namespace windlass::channels
