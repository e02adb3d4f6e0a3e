// Presence channel_data and sign-in user_data.
#include "channels/presence.hpp"

#include <gtest/gtest.h>

#include <string>

namespace windlass::channels {
namespace {

TEST(PusherPresence, parses_the_vectors_channel_data) {
  PresenceParser p;
  PresenceMember m;
  ASSERT_EQ(p.parse_channel_data(R"({"user_id":10,"user_info":{"name":"Mr. Channels"}})", m),
            MemberDataError::none);
  EXPECT_EQ(m.user_id, "10");
  EXPECT_EQ(m.user_info, R"({"name":"Mr. Channels"})");
}

TEST(PusherPresence, keeps_a_string_user_id_as_it_is) {
  PresenceParser p;
  PresenceMember m;
  ASSERT_EQ(p.parse_channel_data(R"({"user_id":"u-\u00e9 1","user_info":null})", m), MemberDataError::none);
  EXPECT_EQ(m.user_id, "u-\xc3\xa9 1");
  EXPECT_EQ(m.user_info, "null");
}

TEST(PusherPresence, normalizes_integer_user_ids_to_decimal_strings) {
  PresenceParser p;
  PresenceMember m;
  ASSERT_EQ(p.parse_channel_data(R"({"user_id":-5})", m), MemberDataError::none);
  EXPECT_EQ(m.user_id, "-5");
  ASSERT_EQ(p.parse_channel_data(R"({"user_id":18446744073709551615})", m), MemberDataError::none);
  EXPECT_EQ(m.user_id, "18446744073709551615");
  ASSERT_EQ(p.parse_channel_data(R"({"user_id":0})", m), MemberDataError::none);
  EXPECT_EQ(m.user_id, "0");
}

TEST(PusherPresence, refuses_user_ids_that_are_not_strings_or_integers) {
  PresenceParser p;
  PresenceMember m;
  for (const char* v : {"1.5", "1e3", "1.0", "null", "true", "[1]", "{\"id\":1}"}) {
    EXPECT_EQ(p.parse_channel_data(std::string(R"({"user_id":)") + v + "}", m),
              MemberDataError::user_id_wrong_type)
        << v;
  }
}

TEST(PusherPresence, keeps_user_info_as_raw_json_text) {
  PresenceParser p;
  PresenceMember m;
  ASSERT_EQ(p.parse_channel_data(R"({ "user_info" : [ 1, "\u0041" ] , "user_id" : "a" })", m),
            MemberDataError::none);
  EXPECT_EQ(m.user_info, R"([ 1, "\u0041" ])");
  ASSERT_EQ(p.parse_channel_data(R"({"user_id":"a"})", m), MemberDataError::none);
  EXPECT_EQ(m.user_info, "") << "absent user_info";
}

TEST(PusherPresence, limits_user_info_to_1_kb_by_default) {
  PresenceParser p;
  PresenceMember m;
  const std::string fits = "\"" + std::string(1022, 'x') + "\"";
  ASSERT_EQ(fits.size(), 1024u);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":"a","user_info":)" + fits + "}", m), MemberDataError::none);
  EXPECT_EQ(p.parse_channel_data(
                std::string(R"({"user_id":"a","user_info":")") + std::string(1023, 'x') + "\"}", m),
            MemberDataError::user_info_too_large);
}

TEST(PusherPresence, takes_a_configured_user_info_limit) {
  PresenceLimits limits;
  limits.max_user_info = 4;
  PresenceParser p(limits);
  PresenceMember m;
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":"a","user_info":[12]})", m), MemberDataError::none);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":"a","user_info":[123]})", m),
            MemberDataError::user_info_too_large);
}

TEST(PusherPresence, refuses_channel_data_longer_than_its_limits_allow_before_parsing) {
  PresenceParser p;
  PresenceMember m;
  EXPECT_EQ(p.parse_channel_data(std::string(p.limits().max_text() + 1, '{'), m), MemberDataError::too_long);
}

TEST(PusherPresence, refuses_missing_empty_and_long_user_ids) {
  PresenceParser p;
  PresenceMember m;
  EXPECT_EQ(p.parse_channel_data(R"({"user_info":{}})", m), MemberDataError::missing_user_id);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":""})", m), MemberDataError::user_id_empty);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":")" + std::string(128, 'u') + "\"}", m),
            MemberDataError::none);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":")" + std::string(129, 'u') + "\"}", m),
            MemberDataError::user_id_too_long);
}

TEST(PusherPresence, refuses_malformed_channel_data) {
  PresenceParser p;
  PresenceMember m;
  EXPECT_EQ(p.parse_channel_data("", m), MemberDataError::malformed_json);
  EXPECT_EQ(p.parse_channel_data("{\"user_id\":1", m), MemberDataError::malformed_json);
  EXPECT_EQ(p.parse_channel_data("{\"user_id\":\"\xff\"}", m), MemberDataError::invalid_utf8);
  EXPECT_EQ(p.parse_channel_data("[1]", m), MemberDataError::not_an_object);
  EXPECT_EQ(p.parse_channel_data("\"{}\"", m), MemberDataError::not_an_object);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":1,"user_id":2})", m), MemberDataError::duplicate_key);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":1,"user_info":1,"user_info":2})", m),
            MemberDataError::duplicate_key);
  EXPECT_EQ(p.parse_channel_data(R"({"user_id":1,"x":1,"x":2})", m), MemberDataError::none)
      << "unknown keys are ignored, duplicated or not";
  const std::string deep = R"({"user_id":1,"user_info":)" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_EQ(p.parse_channel_data(deep, m), MemberDataError::too_deep);
  EXPECT_TRUE(m.user_id.empty()) << "nothing is left from a failed parse";
}

TEST(PusherSigninUser, parses_the_vectors_user_data) {
  PresenceParser p;
  SigninUser u;
  ASSERT_EQ(p.parse_user_data(R"({"id":"12345"})", u), MemberDataError::none);
  EXPECT_EQ(u.id, "12345");
  EXPECT_EQ(u.user_info, "");
  EXPECT_TRUE(u.watchlist.empty());
}

TEST(PusherSigninUser, parses_user_info_and_a_watchlist) {
  PresenceParser p;
  SigninUser u;
  ASSERT_EQ(p.parse_user_data(R"({"id":"1","user_info":{"name":"Ann"},"watchlist":["2","3"]})", u),
            MemberDataError::none);
  EXPECT_EQ(u.user_info, R"({"name":"Ann"})");
  ASSERT_EQ(u.watchlist.size(), 2u);
  EXPECT_EQ(u.watchlist[1], "3");
}

TEST(PusherSigninUser, refuses_ids_that_are_missing_empty_long_or_not_strings) {
  PresenceParser p;
  SigninUser u;
  EXPECT_EQ(p.parse_user_data(R"({"user_id":"1"})", u), MemberDataError::missing_id);
  EXPECT_EQ(p.parse_user_data(R"({"id":1})", u), MemberDataError::id_not_string);
  EXPECT_EQ(p.parse_user_data(R"({"id":null})", u), MemberDataError::id_not_string);
  EXPECT_EQ(p.parse_user_data(R"({"id":""})", u), MemberDataError::id_empty);
  EXPECT_EQ(p.parse_user_data(R"({"id":")" + std::string(129, 'i') + "\"}", u), MemberDataError::id_too_long);
  EXPECT_EQ(p.parse_user_data(R"({"id":"1","id":"2"})", u), MemberDataError::duplicate_key);
}

TEST(PusherSigninUser, refuses_bad_watchlists) {
  PresenceParser p;
  SigninUser u;
  EXPECT_EQ(p.parse_user_data(R"({"id":"1","watchlist":"2"})", u), MemberDataError::watchlist_not_array);
  EXPECT_EQ(p.parse_user_data(R"({"id":"1","watchlist":[2]})", u), MemberDataError::watchlist_item_invalid);
  EXPECT_EQ(p.parse_user_data(R"({"id":"1","watchlist":[""]})", u), MemberDataError::watchlist_item_invalid);
  std::string many = R"({"id":"1","watchlist":[)";
  for (int i = 0; i < 101; ++i) many += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\"";
  many += "]}";
  EXPECT_EQ(p.parse_user_data(many, u), MemberDataError::watchlist_too_long);
  EXPECT_TRUE(u.watchlist.empty());
}

TEST(PusherSigninUser, limits_user_info) {
  PresenceLimits limits;
  limits.max_user_info = 2;
  PresenceParser p(limits);
  SigninUser u;
  EXPECT_EQ(p.parse_user_data(R"({"id":"1","user_info":{}})", u), MemberDataError::none);
  EXPECT_EQ(p.parse_user_data(R"({"id":"1","user_info":[1]})", u), MemberDataError::user_info_too_large);
}

TEST(PusherPresence, describes_every_error) {
  for (int i = 0; i <= static_cast<int>(MemberDataError::watchlist_item_invalid); ++i) {
    EXPECT_GT(std::string(describe(static_cast<MemberDataError>(i))).size(), 5u) << i;
  }
}

}  // namespace
}  // namespace windlass::channels
