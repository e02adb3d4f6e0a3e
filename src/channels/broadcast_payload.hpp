// The message a web app puts on a queue for the hub to broadcast: what
// Laravel's Redis broadcaster PUBLISHes (and what windlass takes from
// RabbitMQ too), {"event": "<name>", "data": <any JSON>, "socket": "<socket_id>" | null}.
// The channel is not in it: it is the Redis channel (without its prefix) or
// the AMQP routing key. Pure.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace windlass::channels {

namespace detail {
class JsonDocument;
}

struct BroadcastPayload {
  std::string_view event;
  std::string_view data;    // raw JSON text of "data" as sent (an object, usually); "{}" when absent
  std::string_view socket;  // empty when absent or null
};

enum class BroadcastError : uint8_t {
  none,
  too_large,
  invalid_utf8,
  malformed_json,
  not_an_object,
  missing_event,
  event_not_string,
  event_empty,
  socket_not_string,
};
const char* describe(BroadcastError e) noexcept;

class BroadcastPayloadParser {
 public:
  explicit BroadcastPayloadParser(size_t max_size = 64 * 1024);
  ~BroadcastPayloadParser();
  BroadcastPayloadParser(const BroadcastPayloadParser&) = delete;
  BroadcastPayloadParser& operator=(const BroadcastPayloadParser&) = delete;

  // Views valid until the next parse.
  BroadcastError parse(std::string_view text, BroadcastPayload& out);

 private:
  size_t max_size_;
  std::unique_ptr<detail::JsonDocument> doc_;
};

}  // namespace windlass::channels
