// libFuzzer target for the Pusher HTTP API's request handling: paths,
// signed queries and the events / batch_events bodies.
//
// The input is "<option byte><method> <path>\n<query>\n<body>". Properties:
//  1. Paths: an accepted path has the route's method, a valid app id and,
//     where the route has one, a valid channel name or user id.
//  2. Queries: whatever parses, re-encoded (percent-encoding every byte) and
//     signed by an independent canonicalisation in this file, verifies; the
//     decoded parameters come back the same. The raw query itself verifies
//     only if it carries that same signature (a random one never does).
//  3. Bodies: an accepted event keeps its limits (name, data size, channel
//     count, channel names, socket_id); its raw data literal parses to its
//     data; the events, written again as JSON, parse to the same events;
//     encoded as channel events from data and from data_json, they read back
//     the same.
// Any violation traps, so libFuzzer and the replay build both stop on it.
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channels/api_request.hpp"
#include "channels/channel_name.hpp"
#include "channels/json_text.hpp"
#include "channels/server_message.hpp"
#include "channels/signature.hpp"

namespace {

namespace ch = windlass::channels;
namespace dom = simdjson::dom;

constexpr std::string_view kKey = "278d425bdf160c739803";
constexpr std::string_view kSecret = "7ad3773142a6692b25b8";
constexpr int64_t kNow = 1353088179;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string_view str(dom::element e) {
  std::string_view v;
  check(e.get_string().get(v) == simdjson::SUCCESS);
  return v;
}

void paths(std::string_view method, std::string_view path) {
  ch::ApiPath out;
  const ch::ApiError e = ch::parse_api_path(method, path, out);
  check(ch::http_status(e) != 401 && ch::http_status(e) != 413);
  if (e != ch::ApiError::none) return;
  check(method == ch::api_route_method(out.route));
  check(!out.app_id.empty() && out.app_id.size() <= ch::kMaxAppIdLength);
  const bool has_channel = out.route == ch::ApiRoute::channel || out.route == ch::ApiRoute::channel_users;
  ch::ChannelInfo info;
  check(has_channel == !out.channel.empty());
  if (has_channel) check(ch::parse_channel_name(out.channel, info) == ch::ChannelNameError::none);
  if (out.route == ch::ApiRoute::channel_users) check(info.type == ch::ChannelType::presence);
  const bool has_user = out.route == ch::ApiRoute::terminate_user_connections;
  check(has_user == !out.user_id.empty());
  if (has_user) check(out.user_id.size() <= ch::kMaxUserIdLength && ch::is_valid_utf8(out.user_id));
}

std::string percent_encode(std::string_view s) {
  constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
  }
  return out;
}

void queries(std::string_view method, std::string_view path, std::string_view query, std::string_view body,
             uint8_t option) {
  ch::AppSigner signer(kKey, kSecret);
  ch::ApiRequestVerifier verifier;
  const ch::ApiError raw =
      verifier.verify({method, path, query, body}, signer, kNow + (option % 7) * 200 - 600);
  check(raw != ch::ApiError::crypto_failure);
  if (verifier.parse_query(query) != ch::ApiError::none) return;

  // The decoded parameters, with this file's own auth parameters in place
  // of any the input had.
  std::vector<std::pair<std::string, std::string>> params;
  for (size_t i = 0; i < verifier.parameter_count(); ++i) {
    const std::string name(verifier.parameter_name(i));
    check(!name.empty());
    for (char c : name) check(c < 'A' || c > 'Z');
    if (name.starts_with("auth_") || name == "body_md5") continue;
    // A name that itself ends in "[]" or "[N]" cannot be sent as a plain key.
    if (name.back() == ']') continue;
    // Array parameters come back joined; they are sent back plain.
    params.emplace_back(name, std::string(verifier.parameter_value(i)));
  }
  if (params.size() + 5 > verifier.options().max_parameters) return;
  params.emplace_back("auth_key", std::string(kKey));
  params.emplace_back("auth_timestamp", std::to_string(kNow));
  params.emplace_back("auth_version", "1.0");
  if (!body.empty() || (option & 1) != 0) {
    ch::Md5Hex md5;
    check(ch::md5_hex(body, md5));
    params.emplace_back("body_md5", std::string(md5.view()));
  }
  std::vector<std::pair<std::string, std::string>> sorted = params;
  std::sort(sorted.begin(), sorted.end());
  std::string to_sign = std::string(method) + "\n" + std::string(path) + "\n";
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i != 0) to_sign += "&";
    to_sign += sorted[i].first + "=" + sorted[i].second;
  }
  ch::Sha256Hex sig;
  check(ch::hmac_sha256_hex(kSecret, to_sign, sig));
  std::string q;
  // Sent in the input's order, signature somewhere in the middle.
  for (size_t i = 0; i < params.size(); ++i) {
    if (i == params.size() / 2) q += "auth_signature=" + std::string(sig.view()) + "&";
    q += percent_encode(params[i].first) + "=" + percent_encode(params[i].second) + "&";
  }
  if (q.size() > verifier.options().max_query_length) return;
  const ch::ApiError e = verifier.verify({method, path, q, body}, signer, kNow);
  check(e == ch::ApiError::none);
  check(verifier.string_to_sign() == to_sign);
  for (const auto& [k, v] : params) check(verifier.param(k) == std::string_view(v));
}

void check_event(const ch::ApiEvent& e, const ch::ApiBodyLimits& limits, bool batch) {
  check(!e.name.empty() && e.name.size() <= limits.max_event_name);
  check(e.data.size() <= limits.max_data_size);
  check(!e.channels.empty() && e.channels.size() <= (batch ? 1 : limits.max_channels));
  for (std::string_view c : e.channels) {
    ch::ChannelInfo info;
    check(ch::parse_channel_name(c, info) == ch::ChannelNameError::none);
  }
  if (!e.socket_id.empty()) check(ch::validate_socket_id(e.socket_id) == ch::SocketIdError::none);
  dom::parser p;
  std::string_view back;
  check(p.parse(e.data_json.data(), e.data_json.size()).get_string().get(back) == simdjson::SUCCESS);
  check(back == e.data);
  // The two ways of encoding the channel event agree.
  std::string a;
  std::string b;
  ch::append_channel_event(a, e.name, e.channels[0], e.data);
  ch::append_channel_event_json(b, e.name, e.channels[0], e.data_json);
  dom::parser pa;
  dom::parser pb;
  dom::element ea;
  dom::element eb;
  check(pa.parse(a).get(ea) == simdjson::SUCCESS);
  check(pb.parse(b).get(eb) == simdjson::SUCCESS);
  check(str(ea["event"]) == e.name && str(eb["event"]) == e.name);
  check(str(ea["channel"]) == e.channels[0] && str(eb["channel"]) == e.channels[0]);
  check(str(ea["data"]) == e.data && str(eb["data"]) == e.data);
}

struct OwnedEvent {
  std::string name, data;
  std::vector<std::string> channels;
  std::string socket_id;
  ch::InfoAttributes info;
  bool operator==(const OwnedEvent&) const = default;
};

std::vector<OwnedEvent> own(std::span<const ch::ApiEvent> events) {
  std::vector<OwnedEvent> out;
  for (const ch::ApiEvent& e : events) {
    OwnedEvent o{std::string(e.name), std::string(e.data), {}, std::string(e.socket_id), e.info};
    for (std::string_view c : e.channels) o.channels.emplace_back(c);
    out.push_back(std::move(o));
  }
  return out;
}

void append_event(std::string& out, const OwnedEvent& e, bool batch) {
  out += "{\"name\":";
  ch::append_json_string(out, e.name);
  out += ",\"data\":";
  ch::append_json_string(out, e.data);
  // One channel goes as "channel": an array would nest one level deeper
  // than the input may have, and a small depth limit would refuse it.
  if (batch || e.channels.size() == 1) {
    out += ",\"channel\":";
    ch::append_json_string(out, e.channels[0]);
  } else {
    out += ",\"channels\":[";
    for (size_t i = 0; i < e.channels.size(); ++i) {
      if (i != 0) out += ",";
      ch::append_json_string(out, e.channels[i]);
    }
    out += "]";
  }
  if (!e.socket_id.empty()) {
    out += ",\"socket_id\":";
    ch::append_json_string(out, e.socket_id);
  }
  if (e.info.user_count || e.info.subscription_count) {
    out += ",\"info\":\"";
    out += e.info.user_count ? "user_count" : "";
    out += e.info.user_count && e.info.subscription_count ? "," : "";
    out += e.info.subscription_count ? "subscription_count" : "";
    out += "\"";
  }
  out += "}";
}

void bodies(std::string_view body, uint8_t option) {
  ch::ApiBodyLimits limits;
  if ((option & 2) != 0) {
    limits.max_body_size = 16u + option * 4u;
    limits.max_data_size = option >> 2;
    limits.max_channels = 1u + (option >> 5);
    limits.max_batch_size = 1u + (option >> 6);
    limits.max_event_name = 1u + (option >> 4);
    limits.max_depth = 2u + (option >> 6);
  }
  ch::ApiBodyParser parser(limits);
  for (const bool batch : {false, true}) {
    const ch::ApiError e = batch ? parser.parse_batch_events(body) : parser.parse_events(body);
    const uint16_t status = ch::http_status(e);
    check(status == 200 || status == 400 || status == 413);
    if (body.size() > limits.max_body_size) check(e == ch::ApiError::body_too_large);
    if (e != ch::ApiError::none) {
      check(parser.events().empty());
      check(!parser.error_message(e).empty());
      continue;
    }
    check(batch || parser.events().size() == 1);
    check(parser.events().size() <= limits.max_batch_size || !batch);
    for (const ch::ApiEvent& ev : parser.events()) check_event(ev, limits, batch);
    const std::vector<OwnedEvent> first = own(parser.events());
    std::string again = batch ? "{\"batch\":[" : "";
    for (size_t i = 0; i < first.size(); ++i) {
      if (i != 0) again += ",";
      append_event(again, first[i], batch);
    }
    if (batch) again += "]}";
    const ch::ApiError e2 = batch ? parser.parse_batch_events(again) : parser.parse_events(again);
    check(e2 == ch::ApiError::none || e2 == ch::ApiError::body_too_large);
    if (e2 == ch::ApiError::none) check(own(parser.events()) == first);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t option = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nl1 = input.find('\n');
  const std::string_view line = input.substr(0, nl1);
  const std::string_view rest = nl1 == std::string_view::npos ? std::string_view() : input.substr(nl1 + 1);
  const size_t nl2 = rest.find('\n');
  const std::string_view query = rest.substr(0, nl2);
  const std::string_view body = nl2 == std::string_view::npos ? std::string_view() : rest.substr(nl2 + 1);
  const size_t sp = line.find(' ');
  const std::string_view method =
      sp == std::string_view::npos ? std::string_view("POST") : line.substr(0, sp);
  const std::string_view path = sp == std::string_view::npos ? line : line.substr(sp + 1);

  paths(method, path);
  queries(method, path, query, body, option);
  bodies(body, option);
  // The whole input as a body too: the corpus of bodies need not carry a head.
  bodies(input, option);
  ch::InfoAttributes info;
  if (ch::parse_info_attributes(query, info)) check(query.size() <= 64);
  return 0;
}
