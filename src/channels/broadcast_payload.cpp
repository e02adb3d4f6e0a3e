#include "channels/broadcast_payload.hpp"

#include "channels/json_document.hpp"
#include "channels/json_text.hpp"

namespace windlass::channels {

const char* describe(BroadcastError e) noexcept {
  switch (e) {
    case BroadcastError::none: return "ok";
    case BroadcastError::too_large: return "payload too large";
    case BroadcastError::invalid_utf8: return "payload is not UTF-8";
    case BroadcastError::malformed_json: return "payload is not JSON";
    case BroadcastError::not_an_object: return "payload is not a JSON object";
    case BroadcastError::missing_event: return "payload has no \"event\"";
    case BroadcastError::event_not_string: return "\"event\" is not a string";
    case BroadcastError::event_empty: return "\"event\" is empty";
    case BroadcastError::socket_not_string: return "\"socket\" is neither a string nor null";
  }
  return "bad payload";
}

BroadcastPayloadParser::BroadcastPayloadParser(size_t max_size)
    : max_size_(max_size), doc_(std::make_unique<detail::JsonDocument>(max_size, 64)) {}

BroadcastPayloadParser::~BroadcastPayloadParser() = default;

BroadcastError BroadcastPayloadParser::parse(std::string_view text, BroadcastPayload& out) {
  out = {};
  if (text.size() > max_size_) return BroadcastError::too_large;
  simdjson::dom::element root;
  switch (doc_->parse_copy(text, root)) {
    case detail::JsonStatus::ok: break;
    case detail::JsonStatus::invalid_utf8: return BroadcastError::invalid_utf8;
    case detail::JsonStatus::too_deep:
    case detail::JsonStatus::malformed: return BroadcastError::malformed_json;
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return BroadcastError::not_an_object;
  simdjson::dom::element event;
  if (object["event"].get(event) != simdjson::SUCCESS) return BroadcastError::missing_event;
  if (!detail::get_string(event, out.event)) return BroadcastError::event_not_string;
  if (out.event.empty()) return BroadcastError::event_empty;
  simdjson::dom::element socket;
  if (object["socket"].get(socket) == simdjson::SUCCESS && !socket.is_null()) {
    if (!detail::get_string(socket, out.socket)) return BroadcastError::socket_not_string;
  }
  // The data's raw text, found by member position in the text simdjson accepted.
  out.data = "{}";
  size_t index = 0;
  for (auto field : object) {
    if (field.key == "data") {
      out.data = json_object_member_value(doc_->text(), index);
      break;
    }
    ++index;
  }
  return BroadcastError::none;
}

}  // namespace windlass::channels
