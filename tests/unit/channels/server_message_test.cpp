// Server→client encoders: exact bytes for the shapes pusher-js expects, and
// a JSON parser's reading of them (the double-encoded data included).
#include "channels/server_message.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace windlass::channels {
namespace {

namespace dom = simdjson::dom;

// A parsed message and, when its data is a string, that string parsed too.
struct Parsed {
  dom::parser outer_parser;
  dom::parser inner_parser;
  dom::element root;
  std::string data_text;
  dom::element data;

  explicit Parsed(const std::string& text) {
    EXPECT_EQ(outer_parser.parse(text).get(root), simdjson::SUCCESS) << text;
    dom::element d;
    if (root["data"].get(d) == simdjson::SUCCESS) {
      std::string_view s;
      if (d.get_string().get(s) == simdjson::SUCCESS) {
        data_text = std::string(s);
        EXPECT_EQ(inner_parser.parse(data_text).get(data), simdjson::SUCCESS) << data_text;
      } else {
        data = d;
      }
    }
  }
  std::string str(const char* key) {
    std::string_view v;
    EXPECT_EQ(root[key].get_string().get(v), simdjson::SUCCESS) << key;
    return std::string(v);
  }
};

std::string_view sv(dom::element e) {
  std::string_view v;
  EXPECT_EQ(e.get_string().get(v), simdjson::SUCCESS);
  return v;
}

TEST(PusherServerMessage, encodes_connection_established_with_double_encoded_data) {
  std::string out;
  append_connection_established(out, "123.456", 120);
  EXPECT_EQ(
      out,
      R"({"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"})");
  Parsed p(out);
  EXPECT_EQ(sv(p.data["socket_id"]), "123.456");
  EXPECT_EQ(int64_t(p.data["activity_timeout"]), 120);
}

TEST(PusherServerMessage, encodes_errors_with_an_object_data) {
  std::string out;
  append_error(out, 4009, "invalid \"signature\"");
  EXPECT_EQ(out, R"({"event":"pusher:error","data":{"message":"invalid \"signature\"","code":4009}})");
  Parsed p(out);
  EXPECT_EQ(sv(p.data["message"]), "invalid \"signature\"");
}

TEST(PusherServerMessage, encodes_ping_and_pong) {
  std::string out;
  append_ping(out);
  EXPECT_EQ(out, R"({"event":"pusher:ping","data":{}})");
  out.clear();
  append_pong(out);
  EXPECT_EQ(out, R"({"event":"pusher:pong","data":{}})");
}

TEST(PusherServerMessage, appends_after_what_the_buffer_holds) {
  std::string out = "prefix|";
  append_pong(out);
  append_pong(out);
  EXPECT_EQ(out, R"(prefix|{"event":"pusher:pong","data":{}}{"event":"pusher:pong","data":{}})");
}

TEST(PusherServerMessage, encodes_subscription_succeeded) {
  std::string out;
  append_subscription_succeeded(out, "private-x");
  EXPECT_EQ(out, R"({"event":"pusher_internal:subscription_succeeded","channel":"private-x","data":"{}"})");
}

TEST(PusherServerMessage, encodes_presence_subscription_succeeded) {
  const std::vector<PresenceMemberView> members = {{"1", R"({"name":"Ann \"A\""})"}, {"two", ""}};
  std::string out;
  append_presence_subscription_succeeded(out, "presence-room", members);
  EXPECT_EQ(
      out,
      R"({"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":)"
      R"("{\"presence\":{\"ids\":[\"1\",\"two\"],\"hash\":{\"1\":{\"name\":\"Ann \\\"A\\\"\"},\"two\":null},\"count\":2}}"})");
  Parsed p(out);
  EXPECT_EQ(p.str("channel"), "presence-room");
  dom::element presence = p.data["presence"];
  EXPECT_EQ(int64_t(presence["count"]), 2);
  EXPECT_EQ(sv(presence["ids"].at(1)), "two");
  EXPECT_EQ(sv(presence["hash"]["1"]["name"]), "Ann \"A\"");
  EXPECT_TRUE(presence["hash"]["two"].is_null());
}

TEST(PusherServerMessage, encodes_an_empty_presence_channel) {
  std::string out;
  append_presence_subscription_succeeded(out, "presence-x", {});
  Parsed p(out);
  EXPECT_EQ(int64_t(p.data["presence"]["count"]), 0);
  EXPECT_EQ(dom::array(p.data["presence"]["ids"]).size(), 0u);
}

TEST(PusherServerMessage, escapes_user_ids_inside_the_nested_json) {
  const std::vector<PresenceMemberView> members = {{"a\"b\\c\n", "{}"}};
  std::string out;
  append_presence_subscription_succeeded(out, "presence-x", members);
  Parsed p(out);
  EXPECT_EQ(sv(p.data["presence"]["ids"].at(0)), "a\"b\\c\n");
  dom::object hash = p.data["presence"]["hash"];
  EXPECT_EQ((*hash.begin()).key, "a\"b\\c\n");
}

TEST(PusherServerMessage, encodes_member_added_and_removed) {
  std::string out;
  append_member_added(out, "presence-x", {"7", R"({"n":[1,"\u00e9"]})"});
  EXPECT_EQ(out, R"({"event":"pusher_internal:member_added","channel":"presence-x","data":)"
                 R"("{\"user_id\":\"7\",\"user_info\":{\"n\":[1,\"\\u00e9\"]}}"})");
  Parsed added(out);
  EXPECT_EQ(sv(added.data["user_id"]), "7");
  EXPECT_EQ(sv(added.data["user_info"]["n"].at(1)), "\xc3\xa9");
  out.clear();
  append_member_removed(out, "presence-x", "7");
  EXPECT_EQ(
      out,
      R"({"event":"pusher_internal:member_removed","channel":"presence-x","data":"{\"user_id\":\"7\"}"})");
}

TEST(PusherServerMessage, encodes_subscription_error_cache_miss_and_signin_success) {
  std::string out;
  append_subscription_error(out, "private-x", "AuthError", "invalid signature", 401);
  EXPECT_EQ(out, R"({"event":"pusher:subscription_error","channel":"private-x","data":)"
                 R"({"type":"AuthError","error":"invalid signature","status":401}})");
  out.clear();
  append_cache_miss(out, "cache-x");
  EXPECT_EQ(out, R"({"event":"pusher:cache_miss","channel":"cache-x","data":"{}"})");
  out.clear();
  append_signin_success(out, R"({"id":"12345"})");
  EXPECT_EQ(out,
            R"({"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"12345\\\"}\"}"})");
  Parsed p(out);
  EXPECT_EQ(sv(p.data["user_data"]), R"({"id":"12345"})");
}

TEST(PusherServerMessage, encodes_a_channel_event_with_string_data) {
  std::string out;
  append_channel_event(out, "my-event", "project-3", R"({"some":"data"})");
  EXPECT_EQ(out, R"({"event":"my-event","channel":"project-3","data":"{\"some\":\"data\"}"})");
  out.clear();
  append_channel_event(out, "client-typing", "presence-x", "hi", "42");
  EXPECT_EQ(out, R"({"event":"client-typing","channel":"presence-x","data":"hi","user_id":"42"})");
}

TEST(PusherServerMessage, copies_raw_json_data_verbatim) {
  std::string out;
  append_channel_event_json(out, "client-x", "private-x", R"({"a":[1,2]})");
  EXPECT_EQ(out, R"({"event":"client-x","channel":"private-x","data":{"a":[1,2]}})");
  out.clear();
  append_channel_event_json(out, "e", "c", R"("{\"some\":\"data\"}")", "u");
  EXPECT_EQ(out, R"({"event":"e","channel":"c","data":"{\"some\":\"data\"}","user_id":"u"})");
  out.clear();
  append_channel_event_json(out, "e", "c", "");
  EXPECT_EQ(out, R"({"event":"e","channel":"c","data":null})");
}

TEST(PusherServerMessage, gives_valid_json_for_any_bytes) {
  std::string nasty;
  for (int c = 0; c < 256; ++c) nasty.push_back(static_cast<char>(c));
  std::string event;
  append_channel_event(event, nasty, nasty, nasty, nasty);
  std::string error;
  append_error(error, 4200, nasty);
  std::string member;
  append_member_added(member, nasty, {nasty, "{}"});
  dom::parser parser;
  for (const std::string& doc : {event, error, member}) {
    dom::element e;
    EXPECT_EQ(parser.parse(doc).get(e), simdjson::SUCCESS) << doc;
  }
}

}  // namespace
}  // namespace windlass::channels
