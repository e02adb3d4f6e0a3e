// The HTTP API's paths, signed queries and bodies (see api_request.hpp).
#include "channels/api_request.hpp"

#include <algorithm>
#include <charconv>

#include "channels/json_document.hpp"
#include "channels/json_text.hpp"

namespace windlass::channels {

using detail::JsonDocument;
using detail::JsonStatus;
namespace dom = simdjson::dom;

namespace {

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in` onto the end of `out` (RFC 3986 §2.1); with
// `plus_is_space`, '+' is a space (application/x-www-form-urlencoded, what
// PHP's http_build_query sends). False on a '%' without two hex digits.
bool percent_decode(std::string_view in, bool plus_is_space, std::string& out) {
  // Runs without '%' or '+' are appended whole.
  const size_t n = in.size();
  size_t run = 0;
  size_t i = 0;
  while (i < n) {
    const char c = in[i];
    if (c != '%' && (c != '+' || !plus_is_space)) {
      ++i;
      continue;
    }
    out.append(in.data() + run, i - run);
    if (c == '+') {
      out.push_back(' ');
      i += 1;
    } else {
      if (n - i < 3) return false;
      const int hi = hex_digit(in[i + 1]);
      const int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>((hi << 4) | lo));
      i += 3;
    }
    run = i;
  }
  out.append(in.data() + run, n - run);
  return true;
}

bool is_app_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxAppIdLength) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool is_user_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxUserIdLength) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return is_valid_utf8(s);
}

bool all_hex(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return hex_digit(c) >= 0; });
}

char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// "name[]" or "name[12]": the base name of a PHP-style array parameter.
bool array_base(std::string_view key, std::string_view& base) noexcept {
  if (key.size() < 3 || key.back() != ']') return false;
  const size_t open = key.rfind('[');
  if (open == std::string_view::npos || open == 0) return false;
  const std::string_view index = key.substr(open + 1, key.size() - open - 2);
  if (!std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  base = key.substr(0, open);
  return true;
}

}  // namespace

uint16_t http_status(ApiError e) noexcept {
  switch (e) {
    case ApiError::none: return 200;
    case ApiError::not_found: return 404;
    case ApiError::method_not_allowed: return 405;
    case ApiError::query_too_long: return 414;
    case ApiError::unknown_key:
    case ApiError::stale_timestamp:
    case ApiError::body_md5_mismatch:
    case ApiError::wrong_signature: return 401;
    case ApiError::crypto_failure: return 500;
    case ApiError::body_too_large:
    case ApiError::data_too_large: return 413;
    default: return 400;
  }
}

const char* describe(ApiError e) noexcept {
  switch (e) {
    case ApiError::none: return "ok";
    case ApiError::not_found: return "no such API path";
    case ApiError::method_not_allowed: return "method not allowed on this path";
    case ApiError::invalid_app_id: return "invalid app id in path";
    case ApiError::invalid_path_channel: return "invalid channel name in path";
    case ApiError::invalid_path_user_id: return "invalid user id in path";
    case ApiError::not_a_presence_channel: return "only presence channels have users";
    case ApiError::malformed_path: return "malformed percent-escape in path";
    case ApiError::query_too_long: return "query string too long";
    case ApiError::too_many_parameters: return "too many query parameters";
    case ApiError::malformed_query: return "malformed query string";
    case ApiError::duplicate_parameter: return "query parameter given twice";
    case ApiError::missing_auth_key: return "auth_key is missing";
    case ApiError::missing_auth_timestamp: return "auth_timestamp is missing";
    case ApiError::missing_auth_version: return "auth_version is missing";
    case ApiError::missing_auth_signature: return "auth_signature is missing";
    case ApiError::missing_body_md5: return "body_md5 is missing for a request with a body";
    case ApiError::invalid_auth_timestamp: return "auth_timestamp is not a number of seconds";
    case ApiError::unsupported_auth_version: return "auth_version must be 1.0";
    case ApiError::malformed_body_md5: return "body_md5 is not 32 hex digits";
    case ApiError::malformed_auth_signature: return "auth_signature is not 64 hex digits";
    case ApiError::unknown_key: return "unknown auth_key";
    case ApiError::stale_timestamp: return "auth_timestamp is too far from the server's time";
    case ApiError::body_md5_mismatch: return "body_md5 does not match the body";
    case ApiError::wrong_signature: return "invalid signature";
    case ApiError::crypto_failure: return "signature could not be computed";
    case ApiError::invalid_info: return "info names an unknown attribute";
    case ApiError::body_too_large: return "request body too large";
    case ApiError::body_invalid_utf8: return "body is not valid UTF-8";
    case ApiError::body_malformed_json: return "body is not valid JSON";
    case ApiError::body_too_deep: return "body nests too deeply";
    case ApiError::body_not_an_object: return "body is not a JSON object";
    case ApiError::duplicate_key: return "body has a duplicate key";
    case ApiError::missing_name: return "name is missing";
    case ApiError::name_not_string: return "name is not a string";
    case ApiError::name_empty: return "name is empty";
    case ApiError::name_too_long: return "name is longer than 200 bytes";
    case ApiError::missing_data: return "data is missing";
    case ApiError::data_not_string: return "data is not a string";
    case ApiError::data_too_large: return "data is larger than the limit";
    case ApiError::missing_channels: return "channels or channel is missing";
    case ApiError::channel_and_channels: return "both channels and channel are given";
    case ApiError::channels_not_array: return "channels is not an array";
    case ApiError::channels_empty: return "channels is empty";
    case ApiError::too_many_channels: return "too many channels";
    case ApiError::channel_not_string: return "a channel is not a string";
    case ApiError::invalid_channel: return "invalid channel name";
    case ApiError::socket_id_not_string: return "socket_id is not a string";
    case ApiError::invalid_socket_id: return "invalid socket_id";
    case ApiError::info_not_string: return "info is not a string";
    case ApiError::missing_batch: return "batch is missing";
    case ApiError::batch_not_array: return "batch is not an array";
    case ApiError::batch_too_large: return "too many events in batch";
    case ApiError::batch_item_not_object: return "a batch item is not a JSON object";
  }
  return "invalid request";
}

// --- Paths -----------------------------------------------------------------

std::string_view api_route_method(ApiRoute r) noexcept {
  switch (r) {
    case ApiRoute::events:
    case ApiRoute::batch_events:
    case ApiRoute::terminate_user_connections: return "POST";
    case ApiRoute::channels:
    case ApiRoute::channel:
    case ApiRoute::channel_users: return "GET";
  }
  return "GET";
}

ApiError parse_api_path(std::string_view method, std::string_view path, ApiPath& out) {
  constexpr std::string_view kPrefix = "/apps/";
  if (!path.starts_with(kPrefix)) return ApiError::not_found;
  // Up to four segments after /apps/; an empty one (a doubled or trailing
  // slash) matches no route.
  std::string_view seg[5];
  size_t n = 0;
  std::string_view rest = path.substr(kPrefix.size());
  while (true) {
    if (n == 5) return ApiError::not_found;
    const size_t slash = rest.find('/');
    seg[n] = rest.substr(0, slash);
    if (seg[n].empty()) return ApiError::not_found;
    ++n;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  std::string_view channel;
  std::string_view user;
  if (n == 2 && seg[1] == "events") {
    out.route = ApiRoute::events;
  } else if (n == 2 && seg[1] == "batch_events") {
    out.route = ApiRoute::batch_events;
  } else if (n == 2 && seg[1] == "channels") {
    out.route = ApiRoute::channels;
  } else if (n == 3 && seg[1] == "channels") {
    out.route = ApiRoute::channel;
    channel = seg[2];
  } else if (n == 4 && seg[1] == "channels" && seg[3] == "users") {
    out.route = ApiRoute::channel_users;
    channel = seg[2];
  } else if (n == 4 && seg[1] == "users" && seg[3] == "terminate_connections") {
    out.route = ApiRoute::terminate_user_connections;
    user = seg[2];
  } else {
    return ApiError::not_found;
  }
  if (method != api_route_method(out.route)) return ApiError::method_not_allowed;

  out.app_id.clear();
  out.channel.clear();
  out.user_id.clear();
  out.channel_info = ChannelInfo{};
  // Each capture is bounded before it is decoded: decoding only shrinks it.
  if (seg[0].size() > 3 * kMaxAppIdLength) return ApiError::invalid_app_id;
  if (!percent_decode(seg[0], false, out.app_id)) return ApiError::malformed_path;
  if (!is_app_id(out.app_id)) return ApiError::invalid_app_id;
  if (!channel.empty()) {
    if (channel.size() > 3 * kMaxChannelNameLength) return ApiError::invalid_path_channel;
    if (!percent_decode(channel, false, out.channel)) return ApiError::malformed_path;
    if (parse_channel_name(out.channel, out.channel_info) != ChannelNameError::none) {
      return ApiError::invalid_path_channel;
    }
    if (out.route == ApiRoute::channel_users && out.channel_info.type != ChannelType::presence) {
      return ApiError::not_a_presence_channel;
    }
  }
  if (!user.empty()) {
    if (user.size() > 3 * kMaxUserIdLength) return ApiError::invalid_path_user_id;
    if (!percent_decode(user, false, out.user_id)) return ApiError::malformed_path;
    if (!is_user_id(out.user_id)) return ApiError::invalid_path_user_id;
  }
  return ApiError::none;
}

// --- Signed queries --------------------------------------------------------

ApiRequestVerifier::ApiRequestVerifier(ApiAuthOptions options) : options_(options) {}

ApiError ApiRequestVerifier::parse_query(std::string_view query) {
  count_ = 0;
  if (query.size() > options_.max_query_length) return ApiError::query_too_long;
  std::string& key = key_;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;  // "a=1&&b=2", a trailing '&'
    const size_t eq = part.find('=');
    key.clear();
    if (!percent_decode(part.substr(0, eq), true, key) || key.empty()) return ApiError::malformed_query;
    for (char& c : key) c = ascii_lower(c);
    std::string_view name = key;
    const bool array = array_base(key, name);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);

    Param* existing = nullptr;
    for (size_t i = 0; i < count_; ++i) {
      if (params_[i].key == name) existing = &params_[i];
    }
    if (existing != nullptr) {
      if (!array || !existing->array) return ApiError::duplicate_parameter;
      existing->value.push_back(',');
      if (!percent_decode(raw_value, true, existing->value)) return ApiError::malformed_query;
      continue;
    }
    if (count_ == options_.max_parameters) return ApiError::too_many_parameters;
    if (params_.size() == count_) params_.emplace_back();
    Param& p = params_[count_++];
    p.key.assign(name);
    p.value.clear();
    p.array = array;
    if (!percent_decode(raw_value, true, p.value)) return ApiError::malformed_query;
  }
  return ApiError::none;
}

std::optional<std::string_view> ApiRequestVerifier::param(std::string_view name) const noexcept {
  for (size_t i = 0; i < count_; ++i) {
    if (params_[i].key == name) return std::string_view(params_[i].value);
  }
  return std::nullopt;
}

ApiError ApiRequestVerifier::verify(const ApiRequest& request, AppSigner& signer, int64_t now) {
  to_sign_.clear();
  if (request.body.size() > options_.max_body_size) return ApiError::body_too_large;
  if (auto e = parse_query(request.query); e != ApiError::none) return e;

  const auto key = param("auth_key");
  const auto timestamp = param("auth_timestamp");
  const auto version = param("auth_version");
  const auto signature = param("auth_signature");
  const auto body_md5 = param("body_md5");
  if (!key) return ApiError::missing_auth_key;
  if (!timestamp) return ApiError::missing_auth_timestamp;
  if (!version) return ApiError::missing_auth_version;
  if (!signature) return ApiError::missing_auth_signature;
  if (*version != "1.0") return ApiError::unsupported_auth_version;
  if (*key != signer.key()) return ApiError::unknown_key;

  // Unix seconds: digits only, no sign, no more than fit in 64 bits.
  int64_t ts = 0;
  const std::string_view t = *timestamp;
  if (t.empty() || t.size() > 18 ||
      !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::from_chars(t.data(), t.data() + t.size(), ts).ec != std::errc()) {
    return ApiError::invalid_auth_timestamp;
  }
  // The distance between two int64 values fits in uint64 (modular arithmetic
  // gives it exactly), so a wild `now` cannot overflow the check.
  const uint64_t skew = ts >= now ? static_cast<uint64_t>(ts) - static_cast<uint64_t>(now)
                                  : static_cast<uint64_t>(now) - static_cast<uint64_t>(ts);
  if (options_.max_clock_skew < 0 || skew > static_cast<uint64_t>(options_.max_clock_skew)) {
    return ApiError::stale_timestamp;
  }

  if (!request.body.empty() && !body_md5) return ApiError::missing_body_md5;
  if (body_md5) {
    if (body_md5->size() != kMd5HexLength || !all_hex(*body_md5)) return ApiError::malformed_body_md5;
    Md5Hex actual;
    if (!md5_.hex(request.body, actual)) return ApiError::crypto_failure;
    char claimed[kMd5HexLength];
    for (size_t i = 0; i < kMd5HexLength; ++i) claimed[i] = ascii_lower((*body_md5)[i]);
    if (!constant_time_equal(std::string_view(claimed, kMd5HexLength), actual.view())) {
      return ApiError::body_md5_mismatch;
    }
  }

  // METHOD \n PATH \n sorted k=v pairs, auth_signature left out.
  order_.clear();
  for (size_t i = 0; i < count_; ++i) {
    if (params_[i].key != "auth_signature") order_.push_back(static_cast<uint32_t>(i));
  }
  std::sort(order_.begin(), order_.end(),
            [&](uint32_t a, uint32_t b) { return params_[a].key < params_[b].key; });
  to_sign_.append(request.method);
  to_sign_.push_back('\n');
  to_sign_.append(request.path);
  to_sign_.push_back('\n');
  for (size_t i = 0; i < order_.size(); ++i) {
    if (i != 0) to_sign_.push_back('&');
    const Param& p = params_[order_[i]];
    to_sign_.append(p.key);
    to_sign_.push_back('=');
    to_sign_.append(p.value);
  }
  switch (signer.verify_hex(*signature, {to_sign_})) {
    case AuthError::none: return ApiError::none;
    case AuthError::malformed_signature: return ApiError::malformed_auth_signature;
    case AuthError::crypto_failure: return ApiError::crypto_failure;
    default: return ApiError::wrong_signature;
  }
}

bool parse_info_attributes(std::string_view text, InfoAttributes& out) noexcept {
  out = InfoAttributes{};
  if (text.empty()) return true;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (item == "user_count") {
      out.user_count = true;
    } else if (item == "subscription_count") {
      out.subscription_count = true;
    } else {
      out = InfoAttributes{};
      return false;
    }
    if (comma == std::string_view::npos) return true;
    text = text.substr(comma + 1);
  }
}

// --- Bodies ----------------------------------------------------------------

namespace {

ApiError from_status(JsonStatus s) noexcept {
  switch (s) {
    case JsonStatus::ok: return ApiError::none;
    case JsonStatus::invalid_utf8: return ApiError::body_invalid_utf8;
    case JsonStatus::too_deep: return ApiError::body_too_deep;
    case JsonStatus::malformed: return ApiError::body_malformed_json;
  }
  return ApiError::body_malformed_json;
}

struct Member {
  bool present = false;
  dom::element value;
  size_t index = 0;
};

}  // namespace

class ApiBodyParser::Walker {
 public:
  explicit Walker(ApiBodyParser& p) : p_(p) {}

  // One event object; `raw` is its text (for the data literal as sent).
  ApiError event(dom::element element, std::string_view raw, bool batch_item) {
    dom::object obj;
    if (element.get_object().get(obj) != simdjson::SUCCESS) {
      return batch_item ? ApiError::batch_item_not_object : ApiError::body_not_an_object;
    }
    enum { kName, kData, kChannels, kChannel, kSocketId, kInfo, kCount };
    static constexpr std::string_view kNames[kCount] = {"name",    "data",      "channels",
                                                        "channel", "socket_id", "info"};
    Member m[kCount];
    size_t index = 0;
    for (dom::key_value_pair field : obj) {
      for (size_t i = 0; i < kCount; ++i) {
        if (field.key != kNames[i]) continue;
        // A batch item names one channel; "channels" there is not ours.
        if (i == kChannels && batch_item) break;
        if (m[i].present) return ApiError::duplicate_key;
        m[i] = Member{true, field.value, index};
        break;
      }
      ++index;
    }

    ApiEvent ev;
    const ApiBodyLimits& limits = p_.limits_;
    if (!m[kName].present) return ApiError::missing_name;
    if (!detail::get_string(m[kName].value, ev.name)) return ApiError::name_not_string;
    if (ev.name.empty()) return ApiError::name_empty;
    if (ev.name.size() > limits.max_event_name) return ApiError::name_too_long;

    if (!m[kData].present) return ApiError::missing_data;
    if (!detail::get_string(m[kData].value, ev.data)) return ApiError::data_not_string;
    if (ev.data.size() > limits.max_data_size) return ApiError::data_too_large;
    ev.data_json = json_object_member_value(raw, m[kData].index);

    if (m[kChannels].present && m[kChannel].present) return ApiError::channel_and_channels;
    const size_t first = p_.channels_.size();
    if (m[kChannels].present) {
      dom::array list;
      if (m[kChannels].value.get_array().get(list) != simdjson::SUCCESS) return ApiError::channels_not_array;
      const size_t count = list.size();
      if (count == 0) return ApiError::channels_empty;
      if (count > limits.max_channels) return ApiError::too_many_channels;
      for (dom::element item : list) {
        if (auto e = channel(item); e != ApiError::none) return e;
      }
    } else if (m[kChannel].present) {
      if (auto e = channel(m[kChannel].value); e != ApiError::none) return e;
    } else {
      return ApiError::missing_channels;
    }
    p_.channel_ranges_.emplace_back(first, p_.channels_.size() - first);

    if (m[kSocketId].present) {
      if (!detail::get_string(m[kSocketId].value, ev.socket_id)) return ApiError::socket_id_not_string;
      p_.socket_id_error_ = validate_socket_id(ev.socket_id);
      if (p_.socket_id_error_ != SocketIdError::none) return ApiError::invalid_socket_id;
    }
    if (m[kInfo].present) {
      std::string_view info;
      if (!detail::get_string(m[kInfo].value, info)) return ApiError::info_not_string;
      if (!parse_info_attributes(info, ev.info)) return ApiError::invalid_info;
    }
    p_.events_.push_back(ev);
    return ApiError::none;
  }

 private:
  ApiError channel(dom::element item) {
    std::string_view name;
    if (!detail::get_string(item, name)) return ApiError::channel_not_string;
    ChannelInfo info;
    p_.channel_error_ = parse_channel_name(name, info);
    if (p_.channel_error_ != ChannelNameError::none) return ApiError::invalid_channel;
    p_.channels_.push_back(name);
    return ApiError::none;
  }

  ApiBodyParser& p_;
};

ApiBodyParser::ApiBodyParser(ApiBodyLimits limits)
    : limits_(limits), doc_(std::make_unique<JsonDocument>(limits.max_body_size, limits.max_depth)) {}

ApiBodyParser::~ApiBodyParser() = default;

namespace {
template <class T>
void reserve_once(std::vector<T>& v, size_t n) {
  if (v.capacity() < n) v.reserve(n);
}
}  // namespace

ApiError ApiBodyParser::parse_events(std::string_view body) {
  events_.clear();
  channels_.clear();
  channel_ranges_.clear();
  error_index_ = 0;
  in_batch_ = false;
  channel_error_ = ChannelNameError::none;
  socket_id_error_ = SocketIdError::none;
  if (body.size() > limits_.max_body_size) return ApiError::body_too_large;
  dom::element root;
  if (auto e = from_status(doc_->parse_copy(body, root)); e != ApiError::none) return e;
  reserve_once(channels_, limits_.max_channels);
  Walker w(*this);
  if (auto e = w.event(root, doc_->text(), false); e != ApiError::none) {
    events_.clear();
    return e;
  }
  events_[0].channels = std::span<const std::string_view>(channels_.data(), channels_.size());
  return ApiError::none;
}

ApiError ApiBodyParser::parse_batch_events(std::string_view body) {
  events_.clear();
  channels_.clear();
  channel_ranges_.clear();
  error_index_ = 0;
  in_batch_ = true;
  channel_error_ = ChannelNameError::none;
  socket_id_error_ = SocketIdError::none;
  if (body.size() > limits_.max_body_size) return ApiError::body_too_large;
  dom::element root;
  if (auto e = from_status(doc_->parse_copy(body, root)); e != ApiError::none) return e;
  in_batch_ = false;
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return ApiError::body_not_an_object;
  Member batch;
  size_t index = 0;
  for (dom::key_value_pair field : obj) {
    if (field.key == "batch") {
      if (batch.present) return ApiError::duplicate_key;
      batch = Member{true, field.value, index};
    }
    ++index;
  }
  if (!batch.present) return ApiError::missing_batch;
  dom::array items;
  if (batch.value.get_array().get(items) != simdjson::SUCCESS) return ApiError::batch_not_array;
  const size_t count = items.size();
  if (count > limits_.max_batch_size) return ApiError::batch_too_large;
  if (count == 0) return ApiError::none;

  // The raw text of each item, to find its data literal as sent.
  raw_items_.resize(count);
  const std::string_view batch_text = json_object_member_value(doc_->text(), batch.index);
  const size_t found = json_array_elements(batch_text, raw_items_.data(), count);
  if (found != count) return ApiError::body_malformed_json;  // cannot happen on valid JSON

  reserve_once(events_, count);
  reserve_once(channels_, count);
  in_batch_ = true;
  Walker w(*this);
  size_t i = 0;
  for (dom::element item : items) {
    if (auto e = w.event(item, raw_items_[i], true); e != ApiError::none) {
      error_index_ = i;
      events_.clear();
      return e;
    }
    ++i;
  }
  for (size_t k = 0; k < events_.size(); ++k) {
    events_[k].channels = std::span<const std::string_view>(channels_.data() + channel_ranges_[k].first,
                                                            channel_ranges_[k].second);
  }
  return ApiError::none;
}

std::string ApiBodyParser::error_message(ApiError e) const {
  std::string out;
  if (in_batch_) {
    out.append("batch[");
    out.append(std::to_string(error_index_));
    out.append("]: ");
  }
  out.append(describe(e));
  if (e == ApiError::invalid_channel) {
    out.append(": ");
    out.append(describe(channel_error_));
  } else if (e == ApiError::invalid_socket_id) {
    out.append(": ");
    out.append(describe(socket_id_error_));
  }
  return out;
}

}  // namespace windlass::channels
