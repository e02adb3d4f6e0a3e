// The pusher mode's reader of what a Pusher server sends: one JSON object
// per text message, whose members "event", "channel" and "data" it keeps
// (strings decoded; "data" of another type kept as its JSON text, as
// pusher:error and pusher:ping carry objects). Strict JSON (RFC 8259):
// anything else is an error, so a server that sends malformed JSON fails
// the run. Written for the load generator, independent of the server's
// parser (simdjson) and encoder, so it checks them rather than sharing
// their bugs. Values of other members are validated and skipped; UTF-8 is
// not checked (the frame reader does not either).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace windlass::load {

struct PusherEvent {
  bool has_event = false;
  bool has_channel = false;
  bool has_data = false;
  bool data_is_string = false;
  std::string event;    // decoded
  std::string channel;  // decoded
  std::string data;     // decoded when a string, else the value's JSON text

  void clear() noexcept {
    has_event = has_channel = has_data = data_is_string = false;
    event.clear();
    channel.clear();
    data.clear();
  }
};

// Parses `text` into `out` (cleared first; its strings keep their
// capacity, so steady state does not allocate). Returns nullptr, or what
// is wrong with the text.
const char* parse_pusher_event(std::string_view text, PusherEvent& out);

// Appends `s` to `out` as the body of a JSON string (no quotes around it):
// '"', '\\' and control characters escaped, everything else as is.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace windlass::load
