// Server→client message encoders (see server_message.hpp).
#include "channels/server_message.hpp"

#include <charconv>

#include "channels/json_text.hpp"

namespace windlass::channels {
namespace {

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// Writes JSON text inside a JSON string literal (the double encoding of
// server events' data): the nested JSON's structure is escaped once, the
// strings within it twice.
class NestedJson {
 public:
  explicit NestedJson(std::string& out) : out_(out) {}
  // Structural text of the nested JSON, or raw JSON (user_info).
  void json(std::string_view text) { append_json_string_content(out_, text, 1); }
  // A string value of the nested JSON, quotes included.
  void string(std::string_view s) {
    out_.append("\\\"");
    append_json_string_content(out_, s, 2);
    out_.append("\\\"");
  }
  void number(uint64_t n) { append_number(out_, n); }

 private:
  std::string& out_;
};

void append_event_head(std::string& out, std::string_view event) {
  out.append("{\"event\":");
  append_json_string(out, event);
}

void append_channel(std::string& out, std::string_view channel) {
  out.append(",\"channel\":");
  append_json_string(out, channel);
}

void append_user_info(NestedJson& j, std::string_view user_info) {
  j.json(user_info.empty() ? std::string_view("null") : user_info);
}

}  // namespace

void append_connection_established(std::string& out, std::string_view socket_id, uint32_t activity_timeout) {
  out.append("{\"event\":\"pusher:connection_established\",\"data\":\"{");
  NestedJson j(out);
  j.json("\"socket_id\":");
  j.string(socket_id);
  j.json(",\"activity_timeout\":");
  j.number(activity_timeout);
  out.append("}\"}");
}

void append_error(std::string& out, uint16_t code, std::string_view message) {
  out.append("{\"event\":\"pusher:error\",\"data\":{\"message\":");
  append_json_string(out, message);
  out.append(",\"code\":");
  append_number(out, code);
  out.append("}}");
}

void append_ping(std::string& out) {
  out.append("{\"event\":\"pusher:ping\",\"data\":{}}");
}

void append_pong(std::string& out) {
  out.append("{\"event\":\"pusher:pong\",\"data\":{}}");
}

void append_subscription_succeeded(std::string& out, std::string_view channel) {
  out.append("{\"event\":\"pusher_internal:subscription_succeeded\"");
  append_channel(out, channel);
  out.append(",\"data\":\"{}\"}");
}

void append_subscription_succeeded(std::string& out, std::string_view channel, std::string_view stream_offset,
                                   std::string_view recovery) {
  // Both are ASCII without quotes or backslashes: an offset is digits and
  // a dash, the outcome a fixed word.
  out.append("{\"event\":\"pusher_internal:subscription_succeeded\"");
  append_channel(out, channel);
  out.append(",\"data\":\"{");
  if (!stream_offset.empty()) {
    out.append("\\\"stream_offset\\\":\\\"");
    out.append(stream_offset);
    out.append("\\\",");
  }
  out.append("\\\"recovery\\\":\\\"");
  out.append(recovery);
  out.append("\\\"}\"}");
}

void append_presence_subscription_succeeded(std::string& out, std::string_view channel,
                                            std::span<const PresenceMemberView> members) {
  out.append("{\"event\":\"pusher_internal:subscription_succeeded\"");
  append_channel(out, channel);
  out.append(",\"data\":\"");
  NestedJson j(out);
  j.json("{\"presence\":{\"ids\":[");
  for (size_t i = 0; i < members.size(); ++i) {
    if (i != 0) j.json(",");
    j.string(members[i].user_id);
  }
  j.json("],\"hash\":{");
  for (size_t i = 0; i < members.size(); ++i) {
    if (i != 0) j.json(",");
    j.string(members[i].user_id);
    j.json(":");
    append_user_info(j, members[i].user_info);
  }
  j.json("},\"count\":");
  j.number(members.size());
  j.json("}}");
  out.append("\"}");
}

void append_member_added(std::string& out, std::string_view channel, const PresenceMemberView& member) {
  out.append("{\"event\":\"pusher_internal:member_added\"");
  append_channel(out, channel);
  out.append(",\"data\":\"");
  NestedJson j(out);
  j.json("{\"user_id\":");
  j.string(member.user_id);
  j.json(",\"user_info\":");
  append_user_info(j, member.user_info);
  j.json("}");
  out.append("\"}");
}

void append_member_removed(std::string& out, std::string_view channel, std::string_view user_id) {
  out.append("{\"event\":\"pusher_internal:member_removed\"");
  append_channel(out, channel);
  out.append(",\"data\":\"");
  NestedJson j(out);
  j.json("{\"user_id\":");
  j.string(user_id);
  j.json("}");
  out.append("\"}");
}

void append_subscription_error(std::string& out, std::string_view channel, std::string_view type,
                               std::string_view error, uint16_t status) {
  out.append("{\"event\":\"pusher:subscription_error\"");
  append_channel(out, channel);
  out.append(",\"data\":{\"type\":");
  append_json_string(out, type);
  out.append(",\"error\":");
  append_json_string(out, error);
  out.append(",\"status\":");
  append_number(out, status);
  out.append("}}");
}

void append_cache_miss(std::string& out, std::string_view channel) {
  out.append("{\"event\":\"pusher:cache_miss\"");
  append_channel(out, channel);
  out.append(",\"data\":\"{}\"}");
}

void append_signin_success(std::string& out, std::string_view user_data) {
  out.append("{\"event\":\"pusher:signin_success\",\"data\":\"");
  NestedJson j(out);
  j.json("{\"user_data\":");
  j.string(user_data);
  j.json("}");
  out.append("\"}");
}

void append_channel_event(std::string& out, std::string_view event, std::string_view channel,
                          std::string_view data, std::string_view user_id) {
  append_event_head(out, event);
  append_channel(out, channel);
  out.append(",\"data\":");
  append_json_string(out, data);
  if (!user_id.empty()) {
    out.append(",\"user_id\":");
    append_json_string(out, user_id);
  }
  out.push_back('}');
}

void append_channel_event_json(std::string& out, std::string_view event, std::string_view channel,
                               std::string_view data_json, std::string_view user_id) {
  append_event_head(out, event);
  append_channel(out, channel);
  out.append(",\"data\":");
  out.append(data_json.empty() ? std::string_view("null") : data_json);
  if (!user_id.empty()) {
    out.append(",\"user_id\":");
    append_json_string(out, user_id);
  }
  out.push_back('}');
}

}  // namespace windlass::channels
