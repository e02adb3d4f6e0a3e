// Encoders for server→client Pusher messages (protocol 7). Each appends one
// complete JSON text to a caller's std::string, so a loop can keep one
// buffer and reuse its capacity: nothing here allocates beyond growing `out`.
//
// Wire shapes (data is itself a JSON-encoded string, except where noted):
//   pusher:connection_established  {"event":..,"data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}
//   pusher:error                   {"event":..,"data":{"message":"..","code":4009}}   (data an object)
//   pusher:ping / pusher:pong      {"event":..,"data":{}}                             (data an object)
//   pusher_internal:subscription_succeeded  {"event":..,"channel":..,"data":"{}"}
//       presence: data "{\"presence\":{\"ids\":[..],\"hash\":{..},\"count\":N}}"
//   pusher_internal:member_added   data "{\"user_id\":\"1\",\"user_info\":{..}}"
//   pusher_internal:member_removed data "{\"user_id\":\"1\"}"
//   pusher:subscription_error {"event":..,"channel":..,"data":{"type":"AuthError","error":"..","status":401}}
//   pusher:cache_miss              {"event":..,"channel":..,"data":"{}"}
//   pusher:signin_success          data "{\"user_data\":\"<user_data>\"}"
//   a channel event                {"event":..,"channel":..,"data":"<string>"} (+ "user_id":"..")
// Strings are escaped by append_json_string (json_text.hpp): control
// characters, quotes and backslashes escaped, invalid UTF-8 replaced by
// U+FFFD, so any input gives valid JSON. user_info and raw event data are
// JSON text that one of this library's parsers validated; they are copied
// (or, inside a data string, escaped) as they are, not re-checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace windlass::channels {

void append_connection_established(std::string& out, std::string_view socket_id, uint32_t activity_timeout);
void append_error(std::string& out, uint16_t code, std::string_view message);
void append_ping(std::string& out);
void append_pong(std::string& out);

void append_subscription_succeeded(std::string& out, std::string_view channel);
// The same for a channel that keeps a history: data says where the
// subscription starts ("stream_offset", empty: unknown) and how the
// recovery from the client's offset went ("recovery": fresh, recovered,
// too_old, invalid_offset, unavailable).
void append_subscription_succeeded(std::string& out, std::string_view channel, std::string_view stream_offset,
                                   std::string_view recovery);

// One member of a presence channel: the user_id (a string) and user_info
// as raw JSON text (empty for none: encoded as null).
struct PresenceMemberView {
  std::string_view user_id;
  std::string_view user_info;
};

// Presence: ids in the order given, hash from id to user_info, count. The
// caller passes each user once (a user with two connections is one member).
void append_presence_subscription_succeeded(std::string& out, std::string_view channel,
                                            std::span<const PresenceMemberView> members);
void append_member_added(std::string& out, std::string_view channel, const PresenceMemberView& member);
void append_member_removed(std::string& out, std::string_view channel, std::string_view user_id);

// Soketi's answer to a failed channel authorization, which pusher-js and
// Laravel Echo report to the channel's error callback. `type` is e.g.
// "AuthError", `status` an HTTP-like status (401).
void append_subscription_error(std::string& out, std::string_view channel, std::string_view type,
                               std::string_view error, uint16_t status);
void append_cache_miss(std::string& out, std::string_view channel);
// `user_data` is the string the client signed in with, passed on unchanged.
void append_signin_success(std::string& out, std::string_view user_data);

// A channel event whose data is a string (what the HTTP API publishes),
// JSON-encoded here. `user_id` is added when not empty (client events on
// presence channels).
void append_channel_event(std::string& out, std::string_view event, std::string_view channel,
                          std::string_view data, std::string_view user_id = {});
// The same with data given as JSON text that is copied verbatim: the raw
// data of a client event (any JSON value), or the raw string literal of an
// API event's data (ApiEvent::data_json), which saves unescaping and
// escaping it again. The text must be valid JSON (it came from a parser).
void append_channel_event_json(std::string& out, std::string_view event, std::string_view channel,
                               std::string_view data_json, std::string_view user_id = {});

}  // namespace windlass::channels
