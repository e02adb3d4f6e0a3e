// Presence channel_data and sign-in user_data: the member a connection
// brings to a presence channel, and the user a pusher:signin names. Both
// are JSON objects inside a JSON string that the app's auth endpoint signed;
// the caller checks the signature over the exact string first, then parses
// it here.
//
//   channel_data  {"user_id": "<string>" | <integer>, "user_info": <any JSON>?}
//   user_data     {"id": "<string>", "user_info": <any JSON>?, "watchlist": ["<id>", ...]?}
//
// user_id is normalized to a string: an integer becomes its decimal digits
// (10 -> "10"); a fraction or exponent is refused (which id would 1e1 be?).
// user_info is kept as raw JSON text as sent, validated and limited in size
// (1 KB by default, Pusher's limit), so the hub can copy it into
// member_added and subscription_succeeded without re-encoding. Duplicate
// keys among these fields are refused; unknown keys are ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace windlass::channels {

namespace detail {
class JsonDocument;
}

struct PresenceLimits {
  size_t max_user_info = 1024;  // raw JSON bytes of user_info
  size_t max_user_id = 128;     // bytes of the normalized user_id / id
  size_t max_watchlist = 100;   // ids in a sign-in watchlist
  size_t max_depth = 32;        // nesting as simdjson counts it: {"a":1} is 2 deep
  // channel_data or user_data longer than this is refused before parsing:
  // room for the limits above plus the JSON around them.
  size_t max_text() const noexcept { return max_user_info + max_user_id * (max_watchlist + 1) + 1024; }
};

// Owned: the hub keeps them in its member table.
struct PresenceMember {
  std::string user_id;
  std::string user_info;  // raw JSON; empty when absent
};

struct SigninUser {
  std::string id;
  std::string user_info;  // raw JSON; empty when absent
  std::vector<std::string> watchlist;
};

enum class MemberDataError : uint8_t {
  none,
  too_long,  // the whole text over PresenceLimits::max_text()
  invalid_utf8,
  malformed_json,
  too_deep,
  not_an_object,
  duplicate_key,
  missing_user_id,
  user_id_wrong_type,  // not a string or an integer
  user_id_empty,
  user_id_too_long,
  user_info_too_large,
  missing_id,  // user_data without id
  id_not_string,
  id_empty,
  id_too_long,
  watchlist_not_array,
  watchlist_too_long,
  watchlist_item_invalid,  // not a non-empty string within max_user_id
};
const char* describe(MemberDataError e) noexcept;

class PresenceParser {
 public:
  explicit PresenceParser(PresenceLimits limits = {});
  ~PresenceParser();
  PresenceParser(const PresenceParser&) = delete;
  PresenceParser& operator=(const PresenceParser&) = delete;

  MemberDataError parse_channel_data(std::string_view channel_data, PresenceMember& out);
  MemberDataError parse_user_data(std::string_view user_data, SigninUser& out);

  const PresenceLimits& limits() const noexcept { return limits_; }

 private:
  PresenceLimits limits_;
  std::unique_ptr<detail::JsonDocument> doc_;
};

}  // namespace windlass::channels
