// The client→server message parser. Every test goes through Harness::parse,
// which parses the text through both entry points (the copying parse() and
// the in-place parse_padded(), with the padding filled with bytes that would
// change the result if they were read as JSON) and expects the same outcome.
#include "channels/client_message.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "channels/signature.hpp"

namespace windlass::channels {
namespace {

// A ClientMessage with its own copies of the strings.
struct Owned {
  ClientMessageError error = ClientMessageError::none;
  ChannelNameError channel_error = ChannelNameError::none;
  ClientEvent kind = ClientEvent::ping;
  std::string event;
  std::string channel;
  ChannelInfo channel_info;
  std::string data;
  JsonType data_type = JsonType::none;
  std::string data_string;
  std::string auth;
  std::string channel_data;
  bool has_channel_data = false;
  std::string user_data;
  std::string stream_offset;
  bool operator==(const Owned&) const = default;
};

Owned own(ClientMessageError e, const ClientMessageParser& p, const ClientMessage& m) {
  Owned o;
  o.error = e;
  o.channel_error = p.channel_error();
  if (e != ClientMessageError::none) return o;  // on error only the error is compared
  o.kind = m.kind;
  o.event = m.event;
  o.channel = m.channel;
  o.channel_info = m.channel_info;
  o.data = m.data;
  o.data_type = m.data_type;
  o.data_string = m.data_string;
  o.auth = m.auth;
  o.channel_data = m.channel_data;
  o.has_channel_data = m.has_channel_data;
  o.user_data = m.user_data;
  o.stream_offset = m.stream_offset;
  return o;
}

class Harness {
 public:
  explicit Harness(ClientMessageLimits limits = {}) : parser_(limits) {}

  Owned parse(std::string_view text) {
    ClientMessage m;
    const Owned copied = own(parser_.parse(text, m), parser_, m);
    // The same bytes in place, followed by kJsonPadding bytes of JSON-looking
    // garbage: a parser that read them would see a different document.
    std::vector<char> buf(text.size() + kJsonPadding);
    if (!text.empty()) std::memcpy(buf.data(), text.data(), text.size());
    for (size_t i = 0; i < kJsonPadding; ++i) buf[text.size() + i] = "\"}],:1"[i % 6];
    const Owned in_place =
        own(parser_.parse_padded(std::string_view(buf.data(), text.size()), m), parser_, m);
    EXPECT_EQ(copied, in_place) << "parse() and parse_padded() disagree on: " << text;
    return copied;
  }
  ClientMessageError error(std::string_view text) { return parse(text).error; }

 private:
  ClientMessageParser parser_;
};

constexpr std::string_view kKey = "278d425bdf160c739803";
constexpr std::string_view kSecret = "7ad3773142a6692b25b8";

// --- What pusher-js sends ---------------------------------------------------

TEST(PusherClientMessage, parses_a_public_subscribe) {
  Harness h;
  const Owned m = h.parse(R"({"event":"pusher:subscribe","data":{"auth":"","channel":"chat"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::subscribe);
  EXPECT_EQ(m.event, "pusher:subscribe");
  EXPECT_EQ(m.channel, "chat");
  EXPECT_EQ(m.channel_info.type, ChannelType::public_);
  EXPECT_EQ(m.auth, "");
  EXPECT_FALSE(m.has_channel_data);
  EXPECT_EQ(m.data_type, JsonType::object);
  EXPECT_EQ(m.data, R"({"auth":"","channel":"chat"})");
}

TEST(PusherClientMessage, parses_a_subscribe_without_auth) {
  Harness h;
  const Owned m = h.parse(R"({"event":"pusher:subscribe","data":{"channel":"cache-news"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.auth, "");
  EXPECT_TRUE(m.channel_info.cache);
}

TEST(PusherClientMessage, parses_a_private_subscribe_whose_auth_verifies) {
  Harness h;
  const Owned m = h.parse(
      R"({"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4","channel":"private-foobar"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.channel_info.type, ChannelType::private_);
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_channel(m.channel_info.type, m.auth, "1234.1234", m.channel, m.channel_data),
            AuthError::none);
}

TEST(PusherClientMessage, keeps_presence_channel_data_exactly_as_signed) {
  // The vector's channel_data, JSON-encoded as pusher-js sends it: the
  // parser must hand back the exact string the auth endpoint signed.
  Harness h;
  const Owned m = h.parse(
      R"({"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80",)"
      R"("channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}","channel":"presence-foobar"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_TRUE(m.has_channel_data);
  EXPECT_EQ(m.channel_data, R"({"user_id":10,"user_info":{"name":"Mr. Channels"}})");
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_channel(ChannelType::presence, m.auth, "1234.1234", m.channel, m.channel_data),
            AuthError::none);
}

TEST(PusherClientMessage, unescapes_channel_data_however_it_was_escaped) {
  Harness h;
  const Owned m = h.parse(
      R"({"event":"pusher:subscribe","data":{"channel":"presence-x","channel_data":"{\"user_id\":\"\u00e9\\u0041\"}"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.channel_data, "{\"user_id\":\"\xc3\xa9\\u0041\"}");
}

TEST(PusherClientMessage, parses_an_unsubscribe) {
  Harness h;
  const Owned m = h.parse(R"({"event":"pusher:unsubscribe","data":{"channel":"presence-room"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::unsubscribe);
  EXPECT_EQ(m.channel, "presence-room");
  EXPECT_EQ(m.channel_info.type, ChannelType::presence);
}

TEST(PusherClientMessage, parses_a_signin_whose_auth_verifies) {
  Harness h;
  const Owned m = h.parse(
      R"({"event":"pusher:signin","data":{"auth":"278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba","user_data":"{\"id\":\"12345\"}"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::signin);
  EXPECT_EQ(m.user_data, R"({"id":"12345"})");
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_user(m.auth, "1234.1234", m.user_data), AuthError::none);
}

TEST(PusherClientMessage, parses_ping_and_pong_with_or_without_data) {
  Harness h;
  Owned m = h.parse(R"({"event":"pusher:ping","data":{}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::ping);
  m = h.parse(R"({"event":"pusher:pong","data":{}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::pong);
  m = h.parse(R"({"event":"pusher:ping"})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.data_type, JsonType::none);
  EXPECT_EQ(m.data, "");
  m = h.parse(R"({"event":"pusher:ping","data":"x"})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.data_string, "x");
}

TEST(PusherClientMessage, parses_a_client_event_keeping_its_data_as_written) {
  Harness h;
  const Owned m = h.parse(
      R"({"event":"client-typing","channel":"private-chat.1","data":{ "who" : "ann", "n":[1, 2.5e1] }})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::client_event);
  EXPECT_EQ(m.event, "client-typing");
  EXPECT_EQ(m.channel, "private-chat.1");
  EXPECT_TRUE(m.channel_info.allows_client_events());
  EXPECT_EQ(m.data_type, JsonType::object);
  EXPECT_EQ(m.data, R"({ "who" : "ann", "n":[1, 2.5e1] })");
}

TEST(PusherClientMessage, takes_client_event_data_of_any_json_type) {
  Harness h;
  struct Case {
    const char* data;
    JsonType type;
  };
  for (const Case& c : {Case{R"("a \"string\"")", JsonType::string}, Case{"[1,[2]]", JsonType::array},
                        Case{"-12.5", JsonType::number}, Case{"18446744073709551615", JsonType::number},
                        Case{"true", JsonType::boolean}, Case{"null", JsonType::null}}) {
    const Owned m =
        h.parse(std::string(R"({"event":"client-x","channel":"presence-a","data":)") + c.data + "}");
    ASSERT_EQ(m.error, ClientMessageError::none) << c.data;
    EXPECT_EQ(m.data, c.data);
    EXPECT_EQ(m.data_type, c.type) << c.data;
  }
  const Owned s = h.parse(R"({"event":"client-x","channel":"presence-a","data":"a \"string\""})");
  EXPECT_EQ(s.data_string, "a \"string\"");
}

TEST(PusherClientMessage, accepts_members_in_any_order_with_whitespace) {
  Harness h;
  const Owned m =
      h.parse(" \n{ \"data\" : [ ] ,\t\"channel\":\"private-a\" , \"event\" : \"client-a\" }\r\n ");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.data, "[ ]");
  EXPECT_EQ(m.channel, "private-a");
}

TEST(PusherClientMessage, ignores_unknown_keys_at_the_top_and_in_data) {
  Harness h;
  const Owned m = h.parse(
      R"({"x":1,"event":"pusher:subscribe","user_id":"u","x":[2],"data":{"channel":"a","extra":{"y":1},"extra":2}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.channel, "a");
}

TEST(PusherClientMessage, reads_escaped_keys_by_their_value) {
  // "ev\u0065nt" is the key "event" to any JSON parser, so it is here too.
  Harness h;
  const Owned m = h.parse(R"({"ev\u0065nt":"pusher:ping","d\u0061ta":{}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.kind, ClientEvent::ping);
  EXPECT_EQ(m.data, "{}");
  EXPECT_EQ(h.error(R"({"event":"pusher:ping","ev\u0065nt":"pusher:pong"})"),
            ClientMessageError::duplicate_key);
}

TEST(PusherClientMessage, unescapes_the_event_name) {
  Harness h;
  const Owned m = h.parse(R"({"event":"client-\u00e9\n","channel":"private-a","data":1})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.event, "client-\xc3\xa9\n");
}

TEST(PusherClientMessage, keeps_views_valid_until_the_next_parse) {
  ClientMessageParser parser;
  ClientMessage a;
  ASSERT_EQ(parser.parse(R"({"event":"client-a","channel":"private-a","data":{"k":"v"}})", a),
            ClientMessageError::none);
  const std::string big =
      R"({"event":"client-b","channel":"private-b","data":")" + std::string(5000, 'z') + "\"}";
  EXPECT_EQ(a.data, R"({"k":"v"})");
  ClientMessage b;
  ASSERT_EQ(parser.parse(big, b), ClientMessageError::none);
  EXPECT_EQ(b.data_string.size(), 5000u);
  ClientMessage c;
  ASSERT_EQ(parser.parse(R"({"event":"pusher:ping"})", c), ClientMessageError::none);
  EXPECT_EQ(c.event, "pusher:ping");
}

// --- Limits -----------------------------------------------------------------

TEST(PusherClientMessage, refuses_a_message_over_the_size_limit_before_parsing) {
  ClientMessageLimits limits;
  limits.max_message_size = 64;
  Harness h(limits);
  std::string ok = R"({"event":"pusher:ping","data":")";
  ok += std::string(64 - ok.size() - 2, 'a') + "\"}";
  ASSERT_EQ(ok.size(), 64u);
  EXPECT_EQ(h.error(ok), ClientMessageError::none);
  EXPECT_EQ(h.error(ok + " "), ClientMessageError::message_too_large);
  // Not even looked at: garbage over the limit is "too large", not "malformed".
  EXPECT_EQ(h.error(std::string(65, '{')), ClientMessageError::message_too_large);
  EXPECT_EQ(reply_for(ClientMessageError::message_too_large).close, true);
  EXPECT_EQ(reply_for(ClientMessageError::message_too_large).code, 1009);
}

TEST(PusherClientMessage, parses_a_huge_message_within_a_raised_limit) {
  ClientMessageLimits limits;
  limits.max_message_size = 4 << 20;
  limits.max_data_size = 4 << 20;
  Harness h(limits);
  std::string data = "[";
  for (int i = 0; i < 200000; ++i) data += i == 0 ? "1" : ",1";
  data += "]";
  const Owned m = h.parse(R"({"event":"client-big","channel":"private-a","data":)" + data + "}");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.data.size(), data.size());
}

TEST(PusherClientMessage, limits_client_event_data) {
  ClientMessageLimits limits;
  limits.max_data_size = 10;
  Harness h(limits);
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":"private-a","data":"12345678"})"),
            ClientMessageError::none);
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":"private-a","data":"123456789"})"),
            ClientMessageError::data_too_large);
  EXPECT_EQ(reply_for(ClientMessageError::data_too_large).close, false);
}

TEST(PusherClientMessage, limits_the_event_name) {
  Harness h;
  const std::string n200 = "client-" + std::string(193, 'e');
  EXPECT_EQ(h.error(R"({"event":")" + n200 + R"(","channel":"private-a","data":1})"),
            ClientMessageError::none);
  EXPECT_EQ(h.error(R"({"event":")" + n200 + R"(e","channel":"private-a","data":1})"),
            ClientMessageError::event_too_long);
}

TEST(PusherClientMessage, limits_auth_channel_data_and_user_data) {
  ClientMessageLimits limits;
  limits.max_auth = 4;
  limits.max_channel_data = 4;
  limits.max_user_data = 4;
  Harness h(limits);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"a","auth":"1234"}})"),
            ClientMessageError::none);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"a","auth":"12345"}})"),
            ClientMessageError::auth_too_long);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"presence-a","channel_data":"{}{}"}})"),
            ClientMessageError::none);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"presence-a","channel_data":"{ }{}"}})"),
            ClientMessageError::channel_data_too_long);
  EXPECT_EQ(h.error(R"({"event":"pusher:signin","data":{"auth":"a:b","user_data":"12345"}})"),
            ClientMessageError::user_data_too_long);
  EXPECT_EQ(h.error(R"({"event":"pusher:signin","data":{"auth":"a:b:c","user_data":"1"}})"),
            ClientMessageError::auth_too_long);
}

TEST(PusherClientMessage, takes_a_stream_offset_on_subscribe_only) {
  Harness h;
  Owned m = h.parse(R"({"event":"pusher:subscribe","data":{"channel":"a","stream_offset":"1700000000000-3"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.stream_offset, "1700000000000-3");
  m = h.parse(R"({"event":"pusher:subscribe","data":{"channel":"a"}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_TRUE(m.stream_offset.empty());
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"a","stream_offset":17}})"),
            ClientMessageError::stream_offset_invalid);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"a","stream_offset":")" + std::string(65, '1') +
                    R"("}})"),
            ClientMessageError::stream_offset_invalid);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{"channel":"a","stream_offset":"1-0","stream_offset":"2-0"}})"),
            ClientMessageError::duplicate_key);
}

TEST(PusherClientMessage, limits_nesting_depth) {
  ClientMessageLimits limits;
  limits.max_depth = 8;
  Harness h(limits);
  auto nested = [](int depth) {
    return R"({"event":"client-a","channel":"private-a","data":)" +
           std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']') + "}";
  };
  EXPECT_EQ(h.error(nested(7)), ClientMessageError::none);  // 7 arrays in the top-level object
  EXPECT_EQ(h.error(nested(40)), ClientMessageError::too_deep);
  Harness deep;
  EXPECT_EQ(deep.error(nested(2000)), ClientMessageError::too_deep);
}

// --- Malformed text -----------------------------------------------------------

TEST(PusherClientMessage, refuses_text_that_is_not_json) {
  Harness h;
  for (const char* bad : {"",
                          " ",
                          "{",
                          "}",
                          "{\"event\":\"pusher:ping\",}",
                          "{\"event\":\"pusher:ping\"",
                          "not json",
                          "{'event':'pusher:ping'}",
                          "{\"event\":pusher:ping}",
                          "{\"event\":\"pusher:ping\"} {}",
                          "{\"event\":\"pusher:ping\"}x",
                          "{\"event\":\"pusher:ping\",\"data\":NaN}",
                          "{\"event\":\"pusher:ping\",\"data\":01}",
                          "{\"event\":\"pusher:ping\",\"data\":1.}",
                          "{\"event\":\"pusher:ping\" /* c */}",
                          "{\"event\":\"pusher:ping\",\"data\":\"\\x\"}",
                          "{\"event\":\"pusher:ping\",\"data\":\"\\ud800\"}",
                          "{\"event\":\"pusher:ping\",\"data\":\"a\nb\"}",
                          "{\"event\":\"pusher:ping\",\"data\":[1 2]}",
                          "{\"event\":\"pusher:ping\",\"data\":tru}",
                          "\xef\xbb\xbf{\"event\":\"pusher:ping\"}"}) {
    EXPECT_EQ(h.error(bad), ClientMessageError::malformed_json) << bad;
  }
  EXPECT_EQ(h.error(std::string("{\"event\":\"pusher:ping\"}\0", 24)), ClientMessageError::malformed_json);
}

TEST(PusherClientMessage, refuses_numbers_json_allows_but_simdjson_cannot_hold) {
  // A documented limit of the DOM parser: integers beyond 64 bits and
  // doubles beyond range are refused rather than rounded.
  Harness h;
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":"private-a","data":123456789012345678901234567890})"),
            ClientMessageError::malformed_json);
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":"private-a","data":1e400})"),
            ClientMessageError::malformed_json);
}

TEST(PusherClientMessage, refuses_invalid_utf8_with_close_1007) {
  Harness h;
  EXPECT_EQ(h.error("{\"event\":\"client-\xff\",\"channel\":\"private-a\",\"data\":1}"),
            ClientMessageError::invalid_utf8);
  EXPECT_EQ(h.error("{\"event\":\"pusher:ping\",\"data\":\"\xed\xa0\x80\"}"),
            ClientMessageError::invalid_utf8);
  EXPECT_EQ(h.error("{\"event\":\"pusher:ping\",\"data\":\"\xc3\"}"), ClientMessageError::invalid_utf8);
  EXPECT_EQ(h.error("{\"event\":\"pusher:ping\",\"data\":\"\xc0\xaf\"}"), ClientMessageError::invalid_utf8);
  EXPECT_TRUE(reply_for(ClientMessageError::invalid_utf8).close);
  EXPECT_EQ(reply_for(ClientMessageError::invalid_utf8).code, 1007);
}

TEST(PusherClientMessage, refuses_a_message_that_is_not_an_object) {
  Harness h;
  for (const char* bad : {"[]", "[{\"event\":\"pusher:ping\"}]", "\"pusher:ping\"", "1", "null", "true"}) {
    EXPECT_EQ(h.error(bad), ClientMessageError::not_an_object) << bad;
  }
}

// --- Type confusion -------------------------------------------------------------

TEST(PusherClientMessage, refuses_an_event_that_is_not_a_string) {
  Harness h;
  for (const char* v : {"1", "null", "true", "{}", "[\"pusher:ping\"]", "{\"event\":\"pusher:ping\"}"}) {
    EXPECT_EQ(h.error(std::string(R"({"event":)") + v + "}"), ClientMessageError::event_not_string) << v;
  }
}

TEST(PusherClientMessage, refuses_a_missing_or_empty_event) {
  Harness h;
  EXPECT_EQ(h.error(R"({})"), ClientMessageError::missing_event);
  EXPECT_EQ(h.error(R"({"data":{"channel":"a"}})"), ClientMessageError::missing_event);
  EXPECT_EQ(h.error(R"({"Event":"pusher:ping"})"), ClientMessageError::missing_event)
      << "keys are case-sensitive";
  EXPECT_EQ(h.error(R"({"event":""})"), ClientMessageError::event_empty);
}

TEST(PusherClientMessage, refuses_a_top_level_channel_that_is_not_a_string) {
  Harness h;
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":1,"data":1})"), ClientMessageError::channel_not_string);
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":["private-a"],"data":1})"),
            ClientMessageError::channel_not_string);
  EXPECT_EQ(h.error(R"({"event":"pusher:ping","channel":null})"), ClientMessageError::channel_not_string)
      << "a present key of the wrong type is refused even where it is not used";
}

TEST(PusherClientMessage, refuses_subscribe_data_that_is_not_an_object) {
  Harness h;
  // Data as a JSON-encoded string is how the server sends, not how clients do.
  for (const char* v : {R"("{\"channel\":\"a\"}")", "[]", "1", "null", "true"}) {
    EXPECT_EQ(h.error(std::string(R"({"event":"pusher:subscribe","data":)") + v + "}"),
              ClientMessageError::data_not_object)
        << v;
    EXPECT_EQ(h.error(std::string(R"({"event":"pusher:unsubscribe","data":)") + v + "}"),
              ClientMessageError::data_not_object)
        << v;
    EXPECT_EQ(h.error(std::string(R"({"event":"pusher:signin","data":)") + v + "}"),
              ClientMessageError::data_not_object)
        << v;
  }
}

TEST(PusherClientMessage, refuses_subscribe_fields_of_the_wrong_type) {
  Harness h;
  const std::string head = R"({"event":"pusher:subscribe","data":{)";
  EXPECT_EQ(h.error(head + R"("channel":7}})"), ClientMessageError::channel_not_string);
  EXPECT_EQ(h.error(head + R"("channel":{"name":"a"}}})"), ClientMessageError::channel_not_string);
  EXPECT_EQ(h.error(head + R"("channel":"a","auth":7}})"), ClientMessageError::auth_not_string);
  EXPECT_EQ(h.error(head + R"("channel":"a","auth":null}})"), ClientMessageError::auth_not_string);
  EXPECT_EQ(h.error(head + R"("channel":"presence-a","channel_data":{"user_id":1}}})"),
            ClientMessageError::channel_data_not_string);
  EXPECT_EQ(h.error(head + R"("channel":"presence-a","channel_data":1}})"),
            ClientMessageError::channel_data_not_string);
}

TEST(PusherClientMessage, refuses_signin_fields_missing_or_of_the_wrong_type) {
  Harness h;
  const std::string head = R"({"event":"pusher:signin","data":{)";
  EXPECT_EQ(h.error(head + R"("user_data":"{}"}})"), ClientMessageError::missing_auth);
  EXPECT_EQ(h.error(head + R"("auth":1,"user_data":"{}"}})"), ClientMessageError::auth_not_string);
  EXPECT_EQ(h.error(head + R"("auth":"k:s"}})"), ClientMessageError::missing_user_data);
  EXPECT_EQ(h.error(head + R"("auth":"k:s","user_data":{"id":"1"}}})"),
            ClientMessageError::user_data_not_string);
  EXPECT_EQ(h.error(R"({"event":"pusher:signin"})"), ClientMessageError::missing_data);
}

// --- Duplicate keys ---------------------------------------------------------------

TEST(PusherClientMessage, refuses_duplicate_keys_it_reads) {
  Harness h;
  for (const char* bad :
       {R"({"event":"pusher:ping","event":"pusher:ping"})",
        R"({"event":"client-a","channel":"private-a","channel":"private-b","data":1})",
        R"({"event":"client-a","channel":"private-a","data":1,"data":2})",
        R"({"event":"pusher:subscribe","data":{"channel":"a","channel":"b"}})",
        R"({"event":"pusher:subscribe","data":{"channel":"private-a","auth":"x","auth":"y"}})",
        R"({"event":"pusher:subscribe","data":{"channel":"presence-a","channel_data":"","channel_data":""}})",
        R"({"event":"pusher:unsubscribe","data":{"channel":"a","channel":"a"}})",
        R"({"event":"pusher:signin","data":{"auth":"a","user_data":"","user_data":""}})"}) {
    EXPECT_EQ(h.error(bad), ClientMessageError::duplicate_key) << bad;
  }
}

TEST(PusherClientMessage, passes_duplicate_keys_inside_client_event_data_through) {
  Harness h;
  const Owned m = h.parse(R"({"event":"client-a","channel":"private-a","data":{"k":1,"k":2}})");
  ASSERT_EQ(m.error, ClientMessageError::none);
  EXPECT_EQ(m.data, R"({"k":1,"k":2})");
}

TEST(PusherClientMessage, ignores_duplicates_of_keys_it_does_not_read) {
  Harness h;
  EXPECT_EQ(h.error(R"({"event":"pusher:unsubscribe","data":{"channel":"a","auth":1,"auth":2}})"),
            ClientMessageError::none);
}

// --- Events and channels ------------------------------------------------------------

TEST(PusherClientMessage, refuses_pusher_events_it_does_not_take) {
  Harness h;
  for (const char* e : {"pusher:", "pusher:foo", "pusher:subscribe2", "pusher:Subscribe", "pusher:error",
                        "pusher:connection_established", "pusher:cache_miss"}) {
    EXPECT_EQ(h.error(std::string(R"({"event":")") + e + R"(","data":{}})"),
              ClientMessageError::unknown_pusher_event)
        << e;
  }
}

TEST(PusherClientMessage, refuses_server_only_events) {
  Harness h;
  EXPECT_EQ(h.error(R"({"event":"pusher_internal:subscription_succeeded","channel":"a","data":"{}"})"),
            ClientMessageError::reserved_event);
  EXPECT_EQ(h.error(R"({"event":"pusher_internal:member_added","channel":"presence-a","data":"{}"})"),
            ClientMessageError::reserved_event);
}

TEST(PusherClientMessage, refuses_events_that_are_neither_pusher_nor_client) {
  Harness h;
  for (const char* e : {"my-event", "client", "Client-x", "clientx", " client-x", "pusher", "PUSHER:ping"}) {
    EXPECT_EQ(h.error(std::string(R"({"event":")") + e + R"(","channel":"private-a","data":{}})"),
              ClientMessageError::unsupported_event)
        << e;
  }
}

TEST(PusherClientMessage, refuses_a_client_event_without_channel_or_data) {
  Harness h;
  EXPECT_EQ(h.error(R"({"event":"client-a","data":{}})"), ClientMessageError::missing_channel);
  EXPECT_EQ(h.error(R"({"event":"client-a","channel":"private-a"})"), ClientMessageError::missing_data);
}

TEST(PusherClientMessage, refuses_invalid_channel_names_saying_why) {
  ClientMessageParser parser;
  ClientMessage m;
  struct Case {
    const char* message;
    ChannelNameError why;
  };
  for (const Case& c :
       {Case{R"({"event":"pusher:subscribe","data":{"channel":""}})", ChannelNameError::empty},
        Case{R"({"event":"pusher:subscribe","data":{"channel":"a b"}})", ChannelNameError::invalid_character},
        Case{R"({"event":"pusher:subscribe","data":{"channel":"private-"}})", ChannelNameError::prefix_only},
        Case{R"({"event":"pusher:unsubscribe","data":{"channel":"#server-to-user-1"}})",
             ChannelNameError::invalid_character},
        Case{R"({"event":"client-a","channel":"private-\u0000","data":1})",
             ChannelNameError::invalid_character}}) {
    EXPECT_EQ(parser.parse(c.message, m), ClientMessageError::invalid_channel) << c.message;
    EXPECT_EQ(parser.channel_error(), c.why) << c.message;
  }
  const std::string long_name(165, 'a');
  EXPECT_EQ(parser.parse(R"({"event":"pusher:subscribe","data":{"channel":")" + long_name + "\"}}", m),
            ClientMessageError::invalid_channel);
  EXPECT_EQ(parser.channel_error(), ChannelNameError::too_long);
}

TEST(PusherClientMessage, refuses_a_subscribe_without_data_or_channel) {
  Harness h;
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe"})"), ClientMessageError::missing_data);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","data":{}})"), ClientMessageError::missing_channel);
  EXPECT_EQ(h.error(R"({"event":"pusher:subscribe","channel":"a","data":{}})"),
            ClientMessageError::missing_channel)
      << "the channel of a subscribe is data.channel";
  EXPECT_EQ(h.error(R"({"event":"pusher:unsubscribe","data":{}})"), ClientMessageError::missing_channel);
}

// --- The error table --------------------------------------------------------------

TEST(PusherClientMessage, maps_every_error_to_a_reply_and_a_short_ascii_reason) {
  for (int i = 0; i <= static_cast<int>(ClientMessageError::stream_offset_invalid); ++i) {
    const auto e = static_cast<ClientMessageError>(i);
    const std::string reason = describe(e);
    EXPECT_FALSE(reason.empty()) << i;
    EXPECT_LE(reason.size(), 123u) << i;
    for (char c : reason) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << i;
    const ClientErrorReply r = reply_for(e);
    if (e == ClientMessageError::none) continue;
    if (r.close) {
      EXPECT_TRUE(r.code == 1007 || r.code == 1009) << i;
    } else {
      EXPECT_EQ(r.code, 4200) << i;
    }
  }
}

}  // namespace
}  // namespace windlass::channels
