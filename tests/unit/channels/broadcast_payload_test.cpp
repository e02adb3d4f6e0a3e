#include "channels/broadcast_payload.hpp"

#include <gtest/gtest.h>

using namespace windlass::channels;

namespace {

TEST(BroadcastPayload, reads_what_laravels_redis_broadcaster_publishes) {
  BroadcastPayloadParser p;
  BroadcastPayload out;
  ASSERT_EQ(p.parse(R"({"event":"App\\Events\\OrderShipped","data":{"order":{"id":1},"socket":null},"socket":"12.34"})", out),
            BroadcastError::none);
  EXPECT_EQ(out.event, "App\\Events\\OrderShipped");
  EXPECT_EQ(out.data, R"({"order":{"id":1},"socket":null})");
  EXPECT_EQ(out.socket, "12.34");
  ASSERT_EQ(p.parse(R"({"event":"x","socket":null})", out), BroadcastError::none);
  EXPECT_EQ(out.data, "{}");
  EXPECT_TRUE(out.socket.empty());
}

TEST(BroadcastPayload, refuses_what_it_cannot_broadcast) {
  BroadcastPayloadParser p(100);
  BroadcastPayload out;
  EXPECT_EQ(p.parse("not json", out), BroadcastError::malformed_json);
  EXPECT_EQ(p.parse("[1]", out), BroadcastError::not_an_object);
  EXPECT_EQ(p.parse(R"({"data":{}})", out), BroadcastError::missing_event);
  EXPECT_EQ(p.parse(R"({"event":1})", out), BroadcastError::event_not_string);
  EXPECT_EQ(p.parse(R"({"event":""})", out), BroadcastError::event_empty);
  EXPECT_EQ(p.parse(R"({"event":"x","socket":5})", out), BroadcastError::socket_not_string);
  EXPECT_EQ(p.parse(std::string(200, ' '), out), BroadcastError::too_large);
  EXPECT_EQ(p.parse("{\"event\":\"\xff\"}", out), BroadcastError::invalid_utf8);
}

}  // namespace
