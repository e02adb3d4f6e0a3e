// libFuzzer target for the Pusher client message parser and what sits
// around it: the JSON string escaper, the raw value scanner, presence
// channel_data and the server event encoders.
//
// Properties per input (after one option byte):
//  1. Entry-point equivalence: parse() and parse_padded() (padding filled
//     with JSON-looking bytes) give the same result.
//  2. Accepted messages keep their promises: limits hold, the channel is a
//     valid name of the kind reported, raw data is valid JSON of the type
//     reported, and it matches the prefix rules of its event.
//  3. Round trip: the fields, encoded again as a client message with the
//     library's escaper, parse to the same fields; encoded as a server
//     event, a JSON parser reads back the same event, channel and data.
//  4. The escaper turns any bytes into a JSON string literal that parses,
//     is valid UTF-8, and gives back the input whenever it was valid UTF-8,
//     at one and at two levels of nesting.
//  5. The scanner finds, in any JSON object simdjson accepts, member values
//     that are JSON of the same type as simdjson's.
//  6. Presence channel_data that parses gives a member whose member_added
//     event reads back with the same user_id and user_info; sign-in
//     user_data that parses keeps its limits.
// Any violation traps, so libFuzzer and the replay build both stop on it.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "channels/channel_name.hpp"
#include "channels/client_message.hpp"
#include "channels/json_text.hpp"
#include "channels/presence.hpp"
#include "channels/server_message.hpp"

namespace {

namespace ch = windlass::channels;
namespace dom = simdjson::dom;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Owned {
  ch::ClientMessageError error = ch::ClientMessageError::none;
  ch::ChannelNameError channel_error = ch::ChannelNameError::none;
  ch::ClientEvent kind = ch::ClientEvent::ping;
  std::string event, channel, data, data_string, auth, channel_data, user_data;
  ch::ChannelInfo channel_info;
  ch::JsonType data_type = ch::JsonType::none;
  bool has_channel_data = false;
  bool operator==(const Owned&) const = default;
};

Owned own(ch::ClientMessageError e, const ch::ClientMessageParser& p, const ch::ClientMessage& m) {
  Owned o;
  o.error = e;
  o.channel_error = p.channel_error();
  if (e != ch::ClientMessageError::none) return o;
  o.kind = m.kind;
  o.event = m.event;
  o.channel = m.channel;
  o.data = m.data;
  o.data_string = m.data_string;
  o.auth = m.auth;
  o.channel_data = m.channel_data;
  o.user_data = m.user_data;
  o.channel_info = m.channel_info;
  o.data_type = m.data_type;
  o.has_channel_data = m.has_channel_data;
  return o;
}

Owned parse_both(ch::ClientMessageParser& parser, std::string_view text) {
  ch::ClientMessage m;
  const Owned copied = own(parser.parse(text, m), parser, m);
  std::vector<char> buf(text.size() + ch::kJsonPadding);
  if (!text.empty()) std::memcpy(buf.data(), text.data(), text.size());
  for (size_t i = 0; i < ch::kJsonPadding; ++i) buf[text.size() + i] = "\"}]:,1{["[i % 8];
  const Owned in_place = own(parser.parse_padded(std::string_view(buf.data(), text.size()), m), parser, m);
  check(copied == in_place);
  return copied;
}

ch::JsonType type_of(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: return ch::JsonType::object;
    case dom::element_type::ARRAY: return ch::JsonType::array;
    case dom::element_type::STRING: return ch::JsonType::string;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return ch::JsonType::number;
    case dom::element_type::BOOL: return ch::JsonType::boolean;
    case dom::element_type::NULL_VALUE: return ch::JsonType::null;
  }
  return ch::JsonType::none;
}

std::string_view str(dom::element e) {
  std::string_view v;
  check(e.get_string().get(v) == simdjson::SUCCESS);
  return v;
}

void check_accepted(const Owned& m, const ch::ClientMessageLimits& limits) {
  check(!m.event.empty() && m.event.size() <= limits.max_event_name);
  check(m.auth.size() <= limits.max_auth);
  check(m.channel_data.size() <= limits.max_channel_data);
  check(m.user_data.size() <= limits.max_user_data);
  check(m.has_channel_data || m.channel_data.empty());
  const bool needs_channel = m.kind == ch::ClientEvent::subscribe || m.kind == ch::ClientEvent::unsubscribe ||
                             m.kind == ch::ClientEvent::client_event;
  if (needs_channel) {
    ch::ChannelInfo info;
    check(ch::parse_channel_name(m.channel, info) == ch::ChannelNameError::none);
    check(info == m.channel_info);
  } else {
    check(m.channel.empty());
  }
  switch (m.kind) {
    case ch::ClientEvent::subscribe: check(m.event == "pusher:subscribe"); break;
    case ch::ClientEvent::unsubscribe: check(m.event == "pusher:unsubscribe"); break;
    case ch::ClientEvent::signin: check(m.event == "pusher:signin"); break;
    case ch::ClientEvent::ping: check(m.event == "pusher:ping"); break;
    case ch::ClientEvent::pong: check(m.event == "pusher:pong"); break;
    case ch::ClientEvent::client_event:
      check(m.event.starts_with("client-"));
      check(m.data_type != ch::JsonType::none && m.data.size() <= limits.max_data_size);
      break;
  }
  if (m.kind == ch::ClientEvent::subscribe || m.kind == ch::ClientEvent::unsubscribe ||
      m.kind == ch::ClientEvent::signin) {
    check(m.data_type == ch::JsonType::object);
  }
  // Raw data is a JSON value of the type reported, with the same string.
  check(m.data.empty() == (m.data_type == ch::JsonType::none));
  if (!m.data.empty()) {
    dom::parser p;
    dom::element e;
    check(p.parse(m.data).get(e) == simdjson::SUCCESS);
    check(type_of(e) == m.data_type);
    if (m.data_type == ch::JsonType::string) check(str(e) == m.data_string);
  }
}

// The fields of an accepted message, written again as a client would.
std::string reencode(const Owned& m) {
  std::string out = "{\"event\":";
  ch::append_json_string(out, m.event);
  if (m.kind == ch::ClientEvent::client_event) {
    out += ",\"channel\":";
    ch::append_json_string(out, m.channel);
  }
  switch (m.kind) {
    case ch::ClientEvent::subscribe:
    case ch::ClientEvent::unsubscribe:
      out += ",\"data\":{\"channel\":";
      ch::append_json_string(out, m.channel);
      if (m.kind == ch::ClientEvent::subscribe) {
        out += ",\"auth\":";
        ch::append_json_string(out, m.auth);
        if (m.has_channel_data) {
          out += ",\"channel_data\":";
          ch::append_json_string(out, m.channel_data);
        }
      }
      out += "}";
      break;
    case ch::ClientEvent::signin:
      out += ",\"data\":{\"auth\":";
      ch::append_json_string(out, m.auth);
      out += ",\"user_data\":";
      ch::append_json_string(out, m.user_data);
      out += "}";
      break;
    default:
      if (!m.data.empty()) out += ",\"data\":" + m.data;
  }
  return out + "}";
}

void round_trip(ch::ClientMessageParser& parser, const Owned& m) {
  const std::string again = reencode(m);
  Owned n = parse_both(parser, again);
  check(n.error == ch::ClientMessageError::none || n.error == ch::ClientMessageError::message_too_large);
  if (n.error != ch::ClientMessageError::none) return;
  check(n.kind == m.kind && n.event == m.event && n.channel == m.channel && n.channel_info == m.channel_info);
  check(n.auth == m.auth && n.channel_data == m.channel_data && n.has_channel_data == m.has_channel_data);
  check(n.user_data == m.user_data);
  if (m.kind == ch::ClientEvent::client_event || m.kind == ch::ClientEvent::ping ||
      m.kind == ch::ClientEvent::pong) {
    check(n.data == m.data && n.data_type == m.data_type && n.data_string == m.data_string);
  }

  // As the server would forward it.
  if (m.kind != ch::ClientEvent::client_event) return;
  std::string event;
  ch::append_channel_event_json(event, m.event, m.channel, m.data, "user\x01");
  dom::parser p;
  dom::element root;
  check(p.parse(event).get(root) == simdjson::SUCCESS);
  check(str(root["event"]) == m.event);
  check(str(root["channel"]) == m.channel);
  check(str(root["user_id"]) == "user\x01");
  check(type_of(root["data"]) == m.data_type);
}

void escaper(std::string_view input) {
  dom::parser p;
  std::string once;
  ch::append_json_string(once, input);
  check(ch::is_valid_utf8(once));
  std::string_view back;
  check(p.parse(once).get_string().get(back) == simdjson::SUCCESS);
  const bool valid = ch::is_valid_utf8(input);
  if (valid) check(back == input);
  check(ch::is_valid_utf8(back));
  // Level 2: the content of a literal whose value is the level-1 content.
  const std::string level1(once.substr(1, once.size() - 2));
  std::string twice = "\"";
  ch::append_json_string_content(twice, input, 2);
  twice += "\"";
  std::string_view back2;
  check(p.parse(twice).get_string().get(back2) == simdjson::SUCCESS);
  check(back2 == level1);
}

void scanner(std::string_view input) {
  dom::parser p;
  dom::element root;
  if (p.parse(input.data(), input.size()).get(root) != simdjson::SUCCESS) return;
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    dom::array arr;
    if (root.get_array().get(arr) != simdjson::SUCCESS) return;
    std::vector<std::string_view> items(arr.size());
    check(ch::json_array_elements(input, items.data(), items.size()) == arr.size());
    size_t i = 0;
    dom::parser q;
    for (dom::element e : arr) {
      dom::element again;
      check(q.parse(items[i++]).get(again) == simdjson::SUCCESS);
      check(type_of(again) == type_of(e));
    }
    return;
  }
  size_t i = 0;
  dom::parser q;
  for (dom::key_value_pair field : obj) {
    const std::string_view raw = ch::json_object_member_value(input, i++);
    dom::element again;
    check(q.parse(raw).get(again) == simdjson::SUCCESS);
    check(type_of(again) == type_of(field.value));
    if (type_of(again) == ch::JsonType::string) check(str(again) == str(field.value));
  }
  check(ch::json_object_member_value(input, i).empty());
}

void signin_user(ch::PresenceParser& parser, std::string_view input) {
  ch::SigninUser u;
  if (parser.parse_user_data(input, u) != ch::MemberDataError::none) return;
  check(!u.id.empty() && u.id.size() <= parser.limits().max_user_id);
  check(u.user_info.size() <= parser.limits().max_user_info);
  check(u.watchlist.size() <= parser.limits().max_watchlist);
  for (const std::string& w : u.watchlist) check(!w.empty() && w.size() <= parser.limits().max_user_id);
  if (!u.user_info.empty()) {
    dom::parser p;
    dom::element info;
    check(p.parse(u.user_info).get(info) == simdjson::SUCCESS);
  }
}

void presence(ch::PresenceParser& parser, std::string_view input) {
  ch::PresenceMember m;
  if (parser.parse_channel_data(input, m) != ch::MemberDataError::none) return;
  check(!m.user_id.empty() && m.user_id.size() <= parser.limits().max_user_id);
  check(m.user_info.size() <= parser.limits().max_user_info);
  std::string out;
  ch::append_member_added(out, "presence-x", {m.user_id, m.user_info});
  dom::parser p;
  dom::parser q;
  dom::element root;
  check(p.parse(out).get(root) == simdjson::SUCCESS);
  dom::element data;
  check(q.parse(std::string(str(root["data"]))).get(data) == simdjson::SUCCESS);
  check(str(data["user_id"]) == m.user_id);
  if (!m.user_info.empty()) {
    dom::parser r;
    dom::element info;
    check(r.parse(m.user_info).get(info) == simdjson::SUCCESS);
    check(type_of(info) == type_of(data["user_info"]));
  } else {
    check(data["user_info"].is_null());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  ch::ClientMessageLimits limits;
  // Small limits now and then, so every limit is reachable.
  const size_t option = data[0];
  if ((option & 1) != 0) {
    limits.max_message_size = 64 + (option >> 1) * 8;
    limits.max_data_size = option >> 2;
    limits.max_event_name = 8 + (option >> 4);
    limits.max_auth = option >> 3;
    limits.max_channel_data = option >> 3;
    limits.max_user_data = option >> 3;
    limits.max_depth = 2 + (option >> 5);
  }
  ch::ClientMessageParser parser(limits);
  const Owned m = parse_both(parser, text);
  if (text.size() > limits.max_message_size) check(m.error == ch::ClientMessageError::message_too_large);
  if (m.error == ch::ClientMessageError::none) {
    check_accepted(m, limits);
    round_trip(parser, m);
  } else if (m.error == ch::ClientMessageError::invalid_channel) {
    check(m.channel_error != ch::ChannelNameError::none);
  }
  escaper(text);
  scanner(text);
  ch::PresenceParser presence_parser;
  presence(presence_parser, text);
  signin_user(presence_parser, text);
  if (m.error == ch::ClientMessageError::none && m.has_channel_data)
    presence(presence_parser, m.channel_data);
  if (m.error == ch::ClientMessageError::none && m.kind == ch::ClientEvent::signin) {
    signin_user(presence_parser, m.user_data);
  }
  return 0;
}
