// The parser for client→server Pusher messages (protocol 7): UTF-8 JSON
// text of the form {"event":"...","channel":"...","data":...}. "Only a
// parser": it takes one message's bytes and fills a struct of views, or
// names the first thing wrong with it; no socket, clock or logger.
//
// What it accepts, per event:
//   pusher:subscribe    data {"channel", "auth"?, "channel_data"?}: channel a
//                       valid name; auth and channel_data strings (channel_data
//                       kept exactly as sent: presence signs it)
//   pusher:unsubscribe  data {"channel"}
//   pusher:signin       data {"auth", "user_data"}, both strings
//   pusher:ping, pusher:pong   data anything or absent
//   client-*            top-level "channel" (valid name) and "data" (any JSON,
//                       at most max_data_size bytes of raw text)
// Anything else is refused: other pusher: events, pusher_internal: events
// (server-only), event names without either prefix. Whether a channel may
// take a subscription or a client event (auth, client events enabled, the
// sender subscribed, rate) is the hub's business, not the parser's.
//
// Decisions:
//   - The whole message must be valid JSON (simdjson's DOM parser validates
//     structure, UTF-8, escapes and numbers before anything is read); its
//     limits apply: numbers must fit in 64-bit integers or finite doubles,
//     no byte-order mark.
//   - Duplicate keys: refused (duplicate_key) at the top level and in the
//     data object of pusher:subscribe, :unsubscribe and :signin, among the
//     keys this parser reads, since JSON parsers disagree about which copy
//     wins and the signature check and the subscription must see the same
//     channel. Inside client event data, which the server forwards without
//     interpreting, duplicates pass through as sent.
//   - Unknown keys are ignored, at the top level and inside data.
//   - A present key of the wrong type is an error, never skipped: numbers
//     where strings go, an array for data, and so on.
//   - Limits are checked before work: the message size before parsing,
//     each field's length before it is validated or signed.
//
// Padding: simdjson reads up to kJsonPadding (64) bytes past the end of its
// input. parse() copies the message into the parser's own padded buffer
// (allocated once, reused); parse_padded() parses the caller's bytes in
// place when the caller guarantees kJsonPadding readable bytes after them.
// The WebSocket layer's receive buffer has 32 (Loop::kReadBufferPadding),
// so it uses parse() until that is raised to 64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "channels/channel_name.hpp"
#include "channels/json_padding.hpp"

namespace windlass::channels {

namespace detail {
class JsonDocument;
}

struct ClientMessageLimits {
  size_t max_message_size = 16 * 1024;  // whole text; over it: close 1009
  size_t max_data_size = 10 * 1024;     // raw text of a client event's data (Pusher's 10 KB)
  size_t max_event_name = 200;          // Pusher's event name limit
  size_t max_auth = 256;                // "<key>:<64 hex>" with room for long keys
  size_t max_channel_data = 4 * 1024;   // presence: user_id + user_info (1 KB) + JSON
  size_t max_user_data = 4 * 1024;      // sign-in user_data
  size_t max_depth = 64;                // nesting as simdjson counts it: {"a":1} is 2 deep
};

enum class ClientEvent : uint8_t { subscribe, unsubscribe, signin, ping, pong, client_event };

// JSON type of the data member.
enum class JsonType : uint8_t { none, object, array, string, number, boolean, null };

struct ClientMessage {
  ClientEvent kind = ClientEvent::ping;
  std::string_view event;  // the event name, unescaped
  // subscribe / unsubscribe: data.channel; client events: the top-level
  // channel. Empty for the other events.
  std::string_view channel;
  ChannelInfo channel_info;  // classification of `channel` when it is set
  std::string_view data;     // raw JSON text of "data" as sent; empty when absent
  JsonType data_type = JsonType::none;
  std::string_view data_string;   // the unescaped value when data is a JSON string
  std::string_view auth;          // subscribe (empty for public channels), signin
  std::string_view channel_data;  // subscribe: presence channel_data, unescaped, exactly as signed
  bool has_channel_data = false;
  // subscribe: the last stream_offset the client saw on the channel (a
  // channel with history: what it missed since then comes first); empty: none.
  std::string_view stream_offset;
  std::string_view user_data;  // signin: unescaped, exactly as signed
};

enum class ClientMessageError : uint8_t {
  none,
  message_too_large,  // over max_message_size -> close 1009
  invalid_utf8,       // -> close 1007
  malformed_json,
  too_deep,
  not_an_object,
  duplicate_key,
  missing_event,
  event_not_string,
  event_empty,
  event_too_long,
  unknown_pusher_event,  // pusher:<something this server does not take>
  reserved_event,        // pusher_internal:*
  unsupported_event,     // neither pusher: nor client-
  missing_channel,
  channel_not_string,
  invalid_channel,  // see ClientMessageParser::channel_error()
  missing_data,
  data_not_object,
  data_too_large,
  auth_not_string,
  auth_too_long,
  missing_auth,
  channel_data_not_string,
  channel_data_too_long,
  missing_user_data,
  user_data_not_string,
  user_data_too_long,
  stream_offset_invalid,  // not a string, or over 64 bytes (its form is the broker's to judge)
};

// How the hub answers a refused message: a pusher:error event with `code`
// (the connection stays open), or closing the connection with `code`.
struct ClientErrorReply {
  bool close = false;
  uint16_t code = 0;
};

// Code 4200 ("generic") for what a client may correct and continue after;
// RFC 6455's own close codes for what the WebSocket layer would also refuse.
ClientErrorReply reply_for(ClientMessageError e) noexcept;
// A fixed reason phrase: ASCII, under 123 bytes (it may become a close reason).
const char* describe(ClientMessageError e) noexcept;

// Holds a simdjson parser and a padded buffer sized for its limits (a few
// hundred KiB at the defaults, grown on demand). Not thread-safe: one per loop.
class ClientMessageParser {
 public:
  explicit ClientMessageParser(ClientMessageLimits limits = {});
  ~ClientMessageParser();
  ClientMessageParser(const ClientMessageParser&) = delete;
  ClientMessageParser& operator=(const ClientMessageParser&) = delete;

  // Copies `text` into the parser's padded buffer and parses it. On an
  // error, `out` holds what was read before the failure (the event name,
  // once it was a string) and is otherwise empty.
  ClientMessageError parse(std::string_view text, ClientMessage& out);
  // Parses `text` in place: kJsonPadding bytes after text.end() must be
  // readable (any values).
  ClientMessageError parse_padded(std::string_view text, ClientMessage& out);

  // After invalid_channel: what is wrong with the name.
  ChannelNameError channel_error() const noexcept { return channel_error_; }
  const ClientMessageLimits& limits() const noexcept { return limits_; }

  // The views in a ClientMessage point into this parser (unescaped strings)
  // and into the parsed text (raw data: the parser's copy for parse(), the
  // caller's bytes for parse_padded()). They stay valid until the next
  // parse call.

 private:
  ClientMessageLimits limits_;
  std::unique_ptr<detail::JsonDocument> doc_;
  ChannelNameError channel_error_ = ChannelNameError::none;
};

}  // namespace windlass::channels
