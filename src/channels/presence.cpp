// Presence channel_data and sign-in user_data (see presence.hpp).
#include "channels/presence.hpp"

#include <charconv>

#include "channels/json_document.hpp"
#include "channels/json_text.hpp"

namespace windlass::channels {

using detail::JsonDocument;
using detail::JsonStatus;
namespace dom = simdjson::dom;

namespace {

MemberDataError from_status(JsonStatus s) noexcept {
  switch (s) {
    case JsonStatus::ok: return MemberDataError::none;
    case JsonStatus::invalid_utf8: return MemberDataError::invalid_utf8;
    case JsonStatus::too_deep: return MemberDataError::too_deep;
    case JsonStatus::malformed: return MemberDataError::malformed_json;
  }
  return MemberDataError::malformed_json;
}

struct Member {
  bool present = false;
  dom::element value;
  size_t index = 0;
};

// Finds the named members of the root object, refusing duplicates of them.
template <size_t N>
MemberDataError find_members(dom::element root, const std::string_view (&names)[N], Member (&found)[N]) {
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return MemberDataError::not_an_object;
  size_t index = 0;
  for (dom::key_value_pair field : obj) {
    for (size_t i = 0; i < N; ++i) {
      if (field.key != names[i]) continue;
      if (found[i].present) return MemberDataError::duplicate_key;
      found[i] = Member{true, field.value, index};
      break;
    }
    ++index;
  }
  return MemberDataError::none;
}

MemberDataError read_user_info(const JsonDocument& doc, const Member& m, size_t max, std::string& out) {
  out.clear();
  if (!m.present) return MemberDataError::none;
  const std::string_view raw = json_object_member_value(doc.text(), m.index);
  if (raw.size() > max) return MemberDataError::user_info_too_large;
  out.assign(raw);
  return MemberDataError::none;
}

}  // namespace

const char* describe(MemberDataError e) noexcept {
  switch (e) {
    case MemberDataError::none: return "no error";
    case MemberDataError::too_long: return "member data is too long";
    case MemberDataError::invalid_utf8: return "member data is not valid UTF-8";
    case MemberDataError::malformed_json: return "member data is not valid JSON";
    case MemberDataError::too_deep: return "member data nests too deeply";
    case MemberDataError::not_an_object: return "member data is not a JSON object";
    case MemberDataError::duplicate_key: return "member data has a duplicate key";
    case MemberDataError::missing_user_id: return "channel_data has no user_id";
    case MemberDataError::user_id_wrong_type: return "user_id is neither a string nor an integer";
    case MemberDataError::user_id_empty: return "user_id is empty";
    case MemberDataError::user_id_too_long: return "user_id is too long";
    case MemberDataError::user_info_too_large: return "user_info is too large";
    case MemberDataError::missing_id: return "user_data has no id";
    case MemberDataError::id_not_string: return "user_data id is not a string";
    case MemberDataError::id_empty: return "user_data id is empty";
    case MemberDataError::id_too_long: return "user_data id is too long";
    case MemberDataError::watchlist_not_array: return "watchlist is not an array";
    case MemberDataError::watchlist_too_long: return "watchlist has too many ids";
    case MemberDataError::watchlist_item_invalid: return "watchlist has an id that is not a valid string";
  }
  return "invalid member data";
}

PresenceParser::PresenceParser(PresenceLimits limits)
    : limits_(limits), doc_(std::make_unique<JsonDocument>(limits.max_text(), limits.max_depth)) {}

PresenceParser::~PresenceParser() = default;

MemberDataError PresenceParser::parse_channel_data(std::string_view text, PresenceMember& out) {
  out.user_id.clear();
  out.user_info.clear();
  if (text.size() > limits_.max_text()) return MemberDataError::too_long;
  dom::element root;
  if (auto e = from_status(doc_->parse_copy(text, root)); e != MemberDataError::none) return e;
  static constexpr std::string_view kNames[] = {"user_id", "user_info"};
  Member found[2];
  if (auto e = find_members(root, kNames, found); e != MemberDataError::none) return e;

  const Member& id = found[0];
  if (!id.present) return MemberDataError::missing_user_id;
  std::string_view s;
  int64_t i = 0;
  uint64_t u = 0;
  char digits[24];
  if (detail::get_string(id.value, s)) {
    // The string as it is.
  } else if (id.value.get_int64().get(i) == simdjson::SUCCESS) {
    const auto r = std::to_chars(digits, digits + sizeof digits, i);
    s = std::string_view(digits, static_cast<size_t>(r.ptr - digits));
  } else if (id.value.get_uint64().get(u) == simdjson::SUCCESS) {
    const auto r = std::to_chars(digits, digits + sizeof digits, u);
    s = std::string_view(digits, static_cast<size_t>(r.ptr - digits));
  } else {
    return MemberDataError::user_id_wrong_type;
  }
  if (s.empty()) return MemberDataError::user_id_empty;
  if (s.size() > limits_.max_user_id) return MemberDataError::user_id_too_long;
  if (auto e = read_user_info(*doc_, found[1], limits_.max_user_info, out.user_info);
      e != MemberDataError::none) {
    return e;
  }
  out.user_id.assign(s);
  return MemberDataError::none;
}

MemberDataError PresenceParser::parse_user_data(std::string_view text, SigninUser& out) {
  out.id.clear();
  out.user_info.clear();
  out.watchlist.clear();
  if (text.size() > limits_.max_text()) return MemberDataError::too_long;
  dom::element root;
  if (auto e = from_status(doc_->parse_copy(text, root)); e != MemberDataError::none) return e;
  static constexpr std::string_view kNames[] = {"id", "user_info", "watchlist"};
  Member found[3];
  if (auto e = find_members(root, kNames, found); e != MemberDataError::none) return e;

  if (!found[0].present) return MemberDataError::missing_id;
  std::string_view id;
  if (!detail::get_string(found[0].value, id)) return MemberDataError::id_not_string;
  if (id.empty()) return MemberDataError::id_empty;
  if (id.size() > limits_.max_user_id) return MemberDataError::id_too_long;
  if (auto e = read_user_info(*doc_, found[1], limits_.max_user_info, out.user_info);
      e != MemberDataError::none) {
    return e;
  }
  if (found[2].present) {
    dom::array list;
    if (found[2].value.get_array().get(list) != simdjson::SUCCESS)
      return MemberDataError::watchlist_not_array;
    if (list.size() > limits_.max_watchlist) return MemberDataError::watchlist_too_long;
    out.watchlist.reserve(list.size());
    for (dom::element item : list) {
      std::string_view w;
      if (!detail::get_string(item, w) || w.empty() || w.size() > limits_.max_user_id) {
        out.watchlist.clear();
        return MemberDataError::watchlist_item_invalid;
      }
      out.watchlist.emplace_back(w);
    }
  }
  out.id.assign(id);
  return MemberDataError::none;
}

}  // namespace windlass::channels
