// The client→server message parser (see client_message.hpp).
#include "channels/client_message.hpp"

#include <cstdint>

#include "channels/json_document.hpp"
#include "channels/json_text.hpp"

namespace windlass::channels {

using detail::JsonDocument;
using detail::JsonStatus;
namespace dom = simdjson::dom;

namespace {

constexpr uint16_t kGenericCode = 4200;

JsonType json_type(dom::element e) noexcept {
  switch (e.type()) {
    case dom::element_type::OBJECT: return JsonType::object;
    case dom::element_type::ARRAY: return JsonType::array;
    case dom::element_type::STRING: return JsonType::string;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return JsonType::number;
    case dom::element_type::BOOL: return JsonType::boolean;
    case dom::element_type::NULL_VALUE: return JsonType::null;
  }
  return JsonType::none;
}

// A string member that may be absent: `present` says whether it was there.
struct OptionalString {
  bool present = false;
  dom::element value;
};

// Reads one string member, checking type and length. `missing` is the error
// for an absent member, or none when absence is fine.
ClientMessageError read_string(const OptionalString& field, size_t max, ClientMessageError missing,
                               ClientMessageError not_string, ClientMessageError too_long,
                               std::string_view& out) noexcept {
  if (!field.present) return missing;
  if (!detail::get_string(field.value, out)) return not_string;
  if (out.size() > max) return too_long;
  return ClientMessageError::none;
}

struct EventName {
  std::string_view text;
  ClientEvent kind;
};

constexpr EventName kPusherEvents[] = {
    {"pusher:subscribe", ClientEvent::subscribe}, {"pusher:unsubscribe", ClientEvent::unsubscribe},
    {"pusher:signin", ClientEvent::signin},       {"pusher:ping", ClientEvent::ping},
    {"pusher:pong", ClientEvent::pong},
};

ClientMessageError classify_event(std::string_view event, ClientEvent& kind) noexcept {
  if (event.starts_with("client-")) {
    kind = ClientEvent::client_event;
    return ClientMessageError::none;
  }
  if (event.starts_with("pusher:")) {
    for (const EventName& e : kPusherEvents) {
      if (event == e.text) {
        kind = e.kind;
        return ClientMessageError::none;
      }
    }
    return ClientMessageError::unknown_pusher_event;
  }
  if (event.starts_with("pusher_internal:")) return ClientMessageError::reserved_event;
  return ClientMessageError::unsupported_event;
}

class Decoder {
 public:
  Decoder(const ClientMessageLimits& limits, const JsonDocument& doc, ClientMessage& out,
          ChannelNameError& ce)
      : limits_(limits), doc_(doc), out_(out), channel_error_(ce) {}

  ClientMessageError run(dom::element root) {
    dom::object top;
    if (root.get_object().get(top) != simdjson::SUCCESS) return ClientMessageError::not_an_object;
    OptionalString event;
    OptionalString channel;
    OptionalString data;
    size_t data_index = 0;
    size_t index = 0;
    for (dom::key_value_pair field : top) {
      OptionalString* slot = nullptr;
      if (field.key == "event") {
        slot = &event;
      } else if (field.key == "channel") {
        slot = &channel;
      } else if (field.key == "data") {
        slot = &data;
        data_index = index;
      }
      ++index;
      if (slot == nullptr) continue;
      if (slot->present) return ClientMessageError::duplicate_key;
      slot->present = true;
      slot->value = field.value;
    }

    std::string_view name;
    if (auto e = read_string(event, limits_.max_event_name, ClientMessageError::missing_event,
                             ClientMessageError::event_not_string, ClientMessageError::event_too_long, name);
        e != ClientMessageError::none) {
      return e;
    }
    if (name.empty()) return ClientMessageError::event_empty;
    out_.event = name;
    if (auto e = classify_event(name, out_.kind); e != ClientMessageError::none) return e;

    std::string_view top_channel;
    if (channel.present && !detail::get_string(channel.value, top_channel)) {
      return ClientMessageError::channel_not_string;
    }
    if (data.present) {
      out_.data_type = json_type(data.value);
      out_.data = json_object_member_value(doc_.text(), data_index);
      if (out_.data_type == JsonType::string) detail::get_string(data.value, out_.data_string);
    }

    switch (out_.kind) {
      case ClientEvent::subscribe:
      case ClientEvent::unsubscribe:
      case ClientEvent::signin: return pusher_data(data);
      case ClientEvent::ping:
      case ClientEvent::pong: return ClientMessageError::none;
      case ClientEvent::client_event: return client_event(channel, top_channel, data);
    }
    return ClientMessageError::unsupported_event;
  }

 private:
  ClientMessageError set_channel(std::string_view name) {
    channel_error_ = parse_channel_name(name, out_.channel_info);
    if (channel_error_ != ChannelNameError::none) return ClientMessageError::invalid_channel;
    out_.channel = name;
    return ClientMessageError::none;
  }

  ClientMessageError client_event(const OptionalString& channel, std::string_view name,
                                  const OptionalString& data) {
    if (!channel.present) return ClientMessageError::missing_channel;
    if (auto e = set_channel(name); e != ClientMessageError::none) return e;
    if (!data.present) return ClientMessageError::missing_data;
    if (out_.data.size() > limits_.max_data_size) return ClientMessageError::data_too_large;
    return ClientMessageError::none;
  }

  // The data object of pusher:subscribe, pusher:unsubscribe, pusher:signin.
  ClientMessageError pusher_data(const OptionalString& data) {
    if (!data.present) return ClientMessageError::missing_data;
    dom::object obj;
    if (data.value.get_object().get(obj) != simdjson::SUCCESS) return ClientMessageError::data_not_object;
    OptionalString channel;
    OptionalString auth;
    OptionalString channel_data;
    OptionalString user_data;
    OptionalString stream_offset;
    const bool subscribe = out_.kind == ClientEvent::subscribe;
    const bool signin = out_.kind == ClientEvent::signin;
    for (dom::key_value_pair field : obj) {
      OptionalString* slot = nullptr;
      if (field.key == "channel" && !signin) {
        slot = &channel;
      } else if (field.key == "auth" && (subscribe || signin)) {
        slot = &auth;
      } else if (field.key == "channel_data" && subscribe) {
        slot = &channel_data;
      } else if (field.key == "user_data" && signin) {
        slot = &user_data;
      } else if (field.key == "stream_offset" && subscribe) {
        slot = &stream_offset;
      }
      if (slot == nullptr) continue;
      if (slot->present) return ClientMessageError::duplicate_key;
      slot->present = true;
      slot->value = field.value;
    }

    using E = ClientMessageError;
    if (signin) {
      if (auto e = read_string(auth, limits_.max_auth, E::missing_auth, E::auth_not_string, E::auth_too_long,
                               out_.auth);
          e != E::none) {
        return e;
      }
      return read_string(user_data, limits_.max_user_data, E::missing_user_data, E::user_data_not_string,
                         E::user_data_too_long, out_.user_data);
    }

    std::string_view name;
    if (auto e = read_string(channel, SIZE_MAX, E::missing_channel, E::channel_not_string, E::none, name);
        e != E::none) {
      return e;
    }
    if (auto e = set_channel(name); e != E::none) return e;
    if (!subscribe) return E::none;
    if (stream_offset.present) {
      // An offset is two numbers and a dash: 64 bytes is more than enough.
      if (auto e = read_string(stream_offset, 64, E::none, E::stream_offset_invalid, E::stream_offset_invalid,
                               out_.stream_offset);
          e != E::none) {
        return e;
      }
    }
    // Public channels send "auth":"" or leave it out: both are an empty auth.
    if (auth.present) {
      if (auto e =
              read_string(auth, limits_.max_auth, E::none, E::auth_not_string, E::auth_too_long, out_.auth);
          e != E::none) {
        return e;
      }
    }
    if (channel_data.present) {
      out_.has_channel_data = true;
      return read_string(channel_data, limits_.max_channel_data, E::none, E::channel_data_not_string,
                         E::channel_data_too_long, out_.channel_data);
    }
    return E::none;
  }

  const ClientMessageLimits& limits_;
  const JsonDocument& doc_;
  ClientMessage& out_;
  ChannelNameError& channel_error_;
};

ClientMessageError from_status(JsonStatus s) noexcept {
  switch (s) {
    case JsonStatus::ok: return ClientMessageError::none;
    case JsonStatus::invalid_utf8: return ClientMessageError::invalid_utf8;
    case JsonStatus::too_deep: return ClientMessageError::too_deep;
    case JsonStatus::malformed: return ClientMessageError::malformed_json;
  }
  return ClientMessageError::malformed_json;
}

}  // namespace

ClientErrorReply reply_for(ClientMessageError e) noexcept {
  switch (e) {
    case ClientMessageError::none: return {false, 0};
    // The WebSocket layer refuses the same messages with the same codes
    // (RFC 6455 §7.4.1): too big for it to process, or text that is not UTF-8.
    case ClientMessageError::message_too_large: return {true, 1009};
    case ClientMessageError::invalid_utf8: return {true, 1007};
    default: return {false, kGenericCode};
  }
}

const char* describe(ClientMessageError e) noexcept {
  switch (e) {
    case ClientMessageError::none: return "no error";
    case ClientMessageError::message_too_large: return "message too big";
    case ClientMessageError::invalid_utf8: return "message is not valid UTF-8";
    case ClientMessageError::malformed_json: return "message is not valid JSON";
    case ClientMessageError::too_deep: return "message nests too deeply";
    case ClientMessageError::not_an_object: return "message is not a JSON object";
    case ClientMessageError::duplicate_key: return "message has a duplicate key";
    case ClientMessageError::missing_event: return "message has no event";
    case ClientMessageError::event_not_string: return "event is not a string";
    case ClientMessageError::event_empty: return "event is empty";
    case ClientMessageError::event_too_long: return "event name is too long";
    case ClientMessageError::unknown_pusher_event: return "unsupported pusher: event";
    case ClientMessageError::reserved_event: return "pusher_internal: events are sent by the server only";
    case ClientMessageError::unsupported_event: return "event is neither a pusher: nor a client- event";
    case ClientMessageError::missing_channel: return "channel is missing";
    case ClientMessageError::channel_not_string: return "channel is not a string";
    case ClientMessageError::invalid_channel: return "invalid channel name";
    case ClientMessageError::missing_data: return "data is missing";
    case ClientMessageError::data_not_object: return "data is not a JSON object";
    case ClientMessageError::data_too_large: return "client event data is too large";
    case ClientMessageError::auth_not_string: return "auth is not a string";
    case ClientMessageError::auth_too_long: return "auth is too long";
    case ClientMessageError::missing_auth: return "auth is missing";
    case ClientMessageError::channel_data_not_string: return "channel_data is not a string";
    case ClientMessageError::channel_data_too_long: return "channel_data is too long";
    case ClientMessageError::missing_user_data: return "user_data is missing";
    case ClientMessageError::user_data_not_string: return "user_data is not a string";
    case ClientMessageError::user_data_too_long: return "user_data is too long";
    case ClientMessageError::stream_offset_invalid: return "stream_offset is not a string of at most 64 bytes";
  }
  return "invalid message";
}

ClientMessageParser::ClientMessageParser(ClientMessageLimits limits)
    : limits_(limits), doc_(std::make_unique<JsonDocument>(limits.max_message_size, limits.max_depth)) {}

ClientMessageParser::~ClientMessageParser() = default;

ClientMessageError ClientMessageParser::parse(std::string_view text, ClientMessage& out) {
  out = ClientMessage{};
  channel_error_ = ChannelNameError::none;
  if (text.size() > limits_.max_message_size) return ClientMessageError::message_too_large;
  dom::element root;
  if (auto e = from_status(doc_->parse_copy(text, root)); e != ClientMessageError::none) return e;
  return Decoder(limits_, *doc_, out, channel_error_).run(root);
}

ClientMessageError ClientMessageParser::parse_padded(std::string_view text, ClientMessage& out) {
  out = ClientMessage{};
  channel_error_ = ChannelNameError::none;
  if (text.size() > limits_.max_message_size) return ClientMessageError::message_too_large;
  dom::element root;
  if (auto e = from_status(doc_->parse_in_place(text, root)); e != ClientMessageError::none) return e;
  return Decoder(limits_, *doc_, out, channel_error_).run(root);
}

}  // namespace windlass::channels
