// The HTTP API: paths, the signed query (the protocol page's verified
// example, then every refusal), and the events and batch_events bodies.
#include "channels/api_request.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace windlass::channels {
namespace {

constexpr std::string_view kKey = "278d425bdf160c739803";
constexpr std::string_view kSecret = "7ad3773142a6692b25b8";
constexpr std::string_view kExampleBody =
    R"({"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"})";
constexpr int64_t kExampleTime = 1353088179;

// --- Paths ---------------------------------------------------------------------

ApiPath path_of(std::string_view method, std::string_view path) {
  ApiPath out;
  EXPECT_EQ(parse_api_path(method, path, out), ApiError::none) << method << " " << path;
  return out;
}

ApiError path_error(std::string_view method, std::string_view path) {
  ApiPath out;
  return parse_api_path(method, path, out);
}

TEST(PusherApiPath, parses_every_route) {
  EXPECT_EQ(path_of("POST", "/apps/3/events").route, ApiRoute::events);
  EXPECT_EQ(path_of("POST", "/apps/3/events").app_id, "3");
  EXPECT_EQ(path_of("POST", "/apps/my-app_1.x/batch_events").route, ApiRoute::batch_events);
  EXPECT_EQ(path_of("POST", "/apps/my-app_1.x/batch_events").app_id, "my-app_1.x");
  EXPECT_EQ(path_of("GET", "/apps/3/channels").route, ApiRoute::channels);
  const ApiPath channel = path_of("GET", "/apps/3/channels/presence-room");
  EXPECT_EQ(channel.route, ApiRoute::channel);
  EXPECT_EQ(channel.channel, "presence-room");
  EXPECT_EQ(channel.channel_info.type, ChannelType::presence);
  const ApiPath users = path_of("GET", "/apps/3/channels/presence-room/users");
  EXPECT_EQ(users.route, ApiRoute::channel_users);
  EXPECT_EQ(users.channel, "presence-room");
  const ApiPath terminate = path_of("POST", "/apps/3/users/42/terminate_connections");
  EXPECT_EQ(terminate.route, ApiRoute::terminate_user_connections);
  EXPECT_EQ(terminate.user_id, "42");
}

TEST(PusherApiPath, percent_decodes_captured_parts) {
  EXPECT_EQ(path_of("GET", "/apps/%33/channels/private%2Dx%3b1").channel, "private-x;1");
  EXPECT_EQ(path_of("GET", "/apps/%33/channels/private%2Dx%3b1").app_id, "3");
  EXPECT_EQ(path_of("POST", "/apps/3/users/ann%20o%27hara%2Fx/terminate_connections").user_id,
            "ann o'hara/x");
  EXPECT_EQ(path_of("POST", "/apps/3/users/caf%C3%A9+1/terminate_connections").user_id, "caf\xc3\xa9+1")
      << "'+' is a plus in a path";
}

TEST(PusherApiPath, answers_404_for_shapes_that_are_no_route) {
  for (const char* p : {"",
                        "/",
                        "/apps",
                        "/apps/",
                        "/apps/3",
                        "/apps/3/",
                        "/apps/3/events/",
                        "/apps//events",
                        "/apps/3//events",
                        "/apps/3/foo",
                        "/app/3/events",
                        "/apps/3/Events",
                        "/apps/3/channels/",
                        "/apps/3/channels/x/users/y",
                        "/apps/3/channels/x/members",
                        "/apps/3/users/1",
                        "/apps/3/users/1/terminate",
                        "/apps/3/channels//users",
                        "/apps/3/%65vents",
                        "apps/3/events",
                        "/apps/3/events?x=1"}) {
    EXPECT_EQ(path_error("POST", p), ApiError::not_found) << p;
    EXPECT_EQ(path_error("GET", p), ApiError::not_found) << p;
  }
  EXPECT_EQ(http_status(ApiError::not_found), 404);
}

TEST(PusherApiPath, answers_405_for_the_wrong_method) {
  EXPECT_EQ(path_error("GET", "/apps/3/events"), ApiError::method_not_allowed);
  EXPECT_EQ(path_error("PUT", "/apps/3/batch_events"), ApiError::method_not_allowed);
  EXPECT_EQ(path_error("POST", "/apps/3/channels"), ApiError::method_not_allowed);
  EXPECT_EQ(path_error("DELETE", "/apps/3/channels/a"), ApiError::method_not_allowed);
  EXPECT_EQ(path_error("post", "/apps/3/events"), ApiError::method_not_allowed)
      << "methods are case-sensitive";
  EXPECT_EQ(path_error("GET", "/apps/3/users/1/terminate_connections"), ApiError::method_not_allowed);
  EXPECT_EQ(http_status(ApiError::method_not_allowed), 405);
  EXPECT_EQ(api_route_method(ApiRoute::channel_users), "GET");
}

TEST(PusherApiPath, refuses_invalid_parts) {
  EXPECT_EQ(path_error("POST", "/apps/a%20b/events"), ApiError::invalid_app_id);
  EXPECT_EQ(path_error("POST", "/apps/a:b/events"), ApiError::invalid_app_id);
  EXPECT_EQ(path_error("POST", "/apps/" + std::string(65, '1') + "/events"), ApiError::invalid_app_id);
  EXPECT_EQ(path_error("POST", "/apps/" + std::string(64, '1') + "/events"), ApiError::none);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/a%20b"), ApiError::invalid_path_channel);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/private-"), ApiError::invalid_path_channel);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/" + std::string(165, 'c') + "/users"),
            ApiError::invalid_path_channel);
  EXPECT_EQ(path_error("POST", "/apps/3/users/%00/terminate_connections"), ApiError::invalid_path_user_id);
  EXPECT_EQ(path_error("POST", "/apps/3/users/a%0Ab/terminate_connections"), ApiError::invalid_path_user_id);
  EXPECT_EQ(path_error("POST", "/apps/3/users/%FF/terminate_connections"), ApiError::invalid_path_user_id);
  EXPECT_EQ(path_error("POST", "/apps/3/users/" + std::string(129, 'u') + "/terminate_connections"),
            ApiError::invalid_path_user_id);
  EXPECT_EQ(path_error("POST", "/apps/3/users/%2/terminate_connections"), ApiError::malformed_path);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/a%zz"), ApiError::malformed_path);
  EXPECT_EQ(path_error("GET", "/apps/%/channels"), ApiError::malformed_path);
  EXPECT_EQ(http_status(ApiError::invalid_path_channel), 400);
}

TEST(PusherApiPath, lists_users_of_presence_channels_only) {
  EXPECT_EQ(path_error("GET", "/apps/3/channels/presence-cache-x/users"), ApiError::none);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/private-x/users"), ApiError::not_a_presence_channel);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/x/users"), ApiError::not_a_presence_channel);
  EXPECT_EQ(path_error("GET", "/apps/3/channels/private-x"), ApiError::none);
  EXPECT_EQ(http_status(ApiError::not_a_presence_channel), 400);
}

// --- Signed queries -------------------------------------------------------------

// An independent signer for the tests: sorted k=v of the given decoded
// parameters, then the query as sent (percent-encoded).
std::string encode(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string sign_query(std::string_view method, std::string_view path,
                       std::map<std::string, std::string> params, std::string_view body, int64_t ts,
                       std::string_view secret = kSecret) {
  params["auth_key"] = std::string(kKey);
  params["auth_timestamp"] = std::to_string(ts);
  params["auth_version"] = "1.0";
  if (!body.empty()) {
    Md5Hex md5;
    md5_hex(body, md5);
    params["body_md5"] = std::string(md5.view());
  }
  std::string to_sign = std::string(method) + "\n" + std::string(path) + "\n";
  std::string query;
  for (const auto& [k, v] : params) {
    if (&k != &params.begin()->first) to_sign += "&";
    to_sign += k + "=" + v;
    query += encode(k) + "=" + encode(v) + "&";
  }
  Sha256Hex sig;
  hmac_sha256_hex(secret, to_sign, sig);
  return query + "auth_signature=" + std::string(sig.view());
}

class PusherApiAuth : public ::testing::Test {
 protected:
  ApiError verify(std::string_view method, std::string_view path, std::string_view query,
                  std::string_view body, int64_t now) {
    return verifier_.verify(ApiRequest{method, path, query, body}, signer_, now);
  }
  ApiError verify_events(std::string_view query, std::string_view body = kExampleBody,
                         int64_t now = kExampleTime) {
    return verify("POST", "/apps/3/events", query, body, now);
  }

  AppSigner signer_{kKey, kSecret};
  ApiRequestVerifier verifier_;
};

constexpr std::string_view kExampleQuery =
    "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0"
    "&body_md5=ec365a775a4cd0599faeb73354201b6f"
    "&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

TEST_F(PusherApiAuth, verifies_the_protocol_pages_example) {
  EXPECT_EQ(verify_events(kExampleQuery), ApiError::none);
  EXPECT_EQ(verifier_.string_to_sign(),
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0"
            "&body_md5=ec365a775a4cd0599faeb73354201b6f");
}

TEST_F(PusherApiAuth, verifies_whatever_the_parameter_order_and_case) {
  EXPECT_EQ(verify_events("auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
                          "&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_version=1.0"
                          "&AUTH_TIMESTAMP=1353088179&Auth_Key=278d425bdf160c739803"),
            ApiError::none);
}

TEST_F(PusherApiAuth, accepts_timestamps_within_600_seconds_either_way) {
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, kExampleTime + 600), ApiError::none);
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, kExampleTime - 600), ApiError::none);
}

TEST_F(PusherApiAuth, refuses_replays_and_clock_skew_beyond_600_seconds) {
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, kExampleTime + 601), ApiError::stale_timestamp);
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, kExampleTime - 601), ApiError::stale_timestamp);
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, 1'900'000'000), ApiError::stale_timestamp);
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, INT64_MIN), ApiError::stale_timestamp);
  EXPECT_EQ(verify_events(kExampleQuery, kExampleBody, INT64_MAX), ApiError::stale_timestamp);
  EXPECT_EQ(http_status(ApiError::stale_timestamp), 401);
}

TEST_F(PusherApiAuth, takes_a_configured_clock_skew) {
  ApiAuthOptions o;
  o.max_clock_skew = 5;
  ApiRequestVerifier strict(o);
  EXPECT_EQ(strict.verify({"POST", "/apps/3/events", kExampleQuery, kExampleBody}, signer_, kExampleTime + 5),
            ApiError::none);
  EXPECT_EQ(strict.verify({"POST", "/apps/3/events", kExampleQuery, kExampleBody}, signer_, kExampleTime + 6),
            ApiError::stale_timestamp);
}

TEST_F(PusherApiAuth, verifies_a_get_without_body_with_decoded_values) {
  const std::string q = sign_query("GET", "/apps/3/channels",
                                   {{"filter_by_prefix", "presence-"}, {"info", "user_count"}}, "", 1000);
  EXPECT_EQ(verify("GET", "/apps/3/channels", q, "", 1000), ApiError::none);
  EXPECT_EQ(verifier_.param("filter_by_prefix"), "presence-");
  EXPECT_EQ(verifier_.param("info"), "user_count");
  EXPECT_EQ(verifier_.param("nothing"), std::nullopt);
}

TEST_F(PusherApiAuth, signs_percent_decoded_values_without_escaping_them_again) {
  const std::string q =
      sign_query("GET", "/apps/3/channels/presence-x",
                 {{"info", "user_count,subscription_count"}, {"x", "a b&c=d%e\xc3\xa9"}}, "", 1000);
  ASSERT_NE(q.find("%2C"), std::string::npos) << "the test encodes the comma";
  EXPECT_EQ(verify("GET", "/apps/3/channels/presence-x", q, "", 1000), ApiError::none);
  EXPECT_EQ(verifier_.param("x"), "a b&c=d%e\xc3\xa9");
  EXPECT_NE(verifier_.string_to_sign().find("x=a b&c=d%e"), std::string::npos);
}

TEST_F(PusherApiAuth, reads_plus_as_a_space_in_the_query) {
  std::string q = sign_query("GET", "/apps/3/channels", {{"filter_by_prefix", "a b"}}, "", 1000);
  const size_t at = q.find("a%20b");
  ASSERT_NE(at, std::string::npos);
  q.replace(at, 5, "a+b");
  EXPECT_EQ(verify("GET", "/apps/3/channels", q, "", 1000), ApiError::none);
  EXPECT_EQ(verifier_.param("filter_by_prefix"), "a b");
}

TEST_F(PusherApiAuth, joins_array_parameters_with_commas_as_signed) {
  std::string q =
      sign_query("GET", "/apps/3/channels/presence-x", {{"info", "user_count,subscription_count"}}, "", 1);
  const size_t at = q.find("info=");
  const size_t end = q.find('&', at);
  q.replace(at, end - at, "info%5B%5D=user_count&info[]=subscription_count");
  EXPECT_EQ(verify("GET", "/apps/3/channels/presence-x", q, "", 1), ApiError::none);
  EXPECT_EQ(verifier_.param("info"), "user_count,subscription_count");
  q.replace(q.find("info%5B%5D"), 10, "info[0]");
  q.replace(q.find("info[]"), 6, "info[1]");
  EXPECT_EQ(verify("GET", "/apps/3/channels/presence-x", q, "", 1), ApiError::none);
}

TEST_F(PusherApiAuth, skips_empty_segments_and_reads_a_bare_key_as_empty) {
  ASSERT_EQ(verifier_.parse_query("&a=1&&flag&b=&"), ApiError::none);
  EXPECT_EQ(verifier_.param("a"), "1");
  EXPECT_EQ(verifier_.param("flag"), "");
  EXPECT_EQ(verifier_.param("b"), "");
  const std::string q = sign_query("GET", "/apps/3/channels", {{"flag", ""}}, "", 1);
  EXPECT_EQ(verify("GET", "/apps/3/channels", "&&" + q + "&", "", 1), ApiError::none);
}

TEST_F(PusherApiAuth, refuses_each_missing_parameter) {
  struct Case {
    const char* drop;
    ApiError error;
  };
  for (const Case& c : {Case{"auth_key", ApiError::missing_auth_key},
                        Case{"auth_timestamp", ApiError::missing_auth_timestamp},
                        Case{"auth_version", ApiError::missing_auth_version},
                        Case{"auth_signature", ApiError::missing_auth_signature},
                        Case{"body_md5", ApiError::missing_body_md5}}) {
    std::string q(kExampleQuery);
    const size_t at = q.find(c.drop);
    const size_t end = q.find('&', at);
    q.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
    EXPECT_EQ(verify_events(q), c.error) << q;
    EXPECT_EQ(http_status(c.error), 400);
  }
}

TEST_F(PusherApiAuth, refuses_an_unsupported_auth_version) {
  for (const char* v : {"1.1", "", "1", "2.0", "1.0 "}) {
    std::string q(kExampleQuery);
    q.replace(q.find("1.0"), 3, encode(v));
    EXPECT_EQ(verify_events(q), ApiError::unsupported_auth_version) << v;
  }
}

TEST_F(PusherApiAuth, refuses_another_apps_key_with_401) {
  std::string q(kExampleQuery);
  q.replace(q.find(kKey), kKey.size(), "0000000000000000000");
  EXPECT_EQ(verify_events(q), ApiError::unknown_key);
  EXPECT_EQ(http_status(ApiError::unknown_key), 401);
}

TEST_F(PusherApiAuth, refuses_timestamps_that_are_not_plain_seconds) {
  for (const char* t : {"", "abc", "-1", "+1", "1.5", "1e9", " 1", "0x10", "1353088179000000000000"}) {
    std::string q(kExampleQuery);
    q.replace(q.find("1353088179"), 10, encode(t));
    EXPECT_EQ(verify_events(q), ApiError::invalid_auth_timestamp) << t;
  }
}

TEST_F(PusherApiAuth, checks_body_md5) {
  // The body changed after signing: its MD5 no longer matches.
  EXPECT_EQ(verify_events(kExampleQuery, R"({"name":"bar","channels":["project-3"],"data":"{}"})"),
            ApiError::body_md5_mismatch);
  EXPECT_EQ(http_status(ApiError::body_md5_mismatch), 401);
  for (const char* bad : {"ec365a775a4cd0599faeb73354201b6", "ec365a775a4cd0599faeb73354201b6fa",
                          "zz365a775a4cd0599faeb73354201b6f"}) {
    std::string q(kExampleQuery);
    q.replace(q.find("ec365a775a4cd0599faeb73354201b6f"), 32, bad);
    EXPECT_EQ(verify_events(q), ApiError::malformed_body_md5) << bad;
  }
  // Upper-case hex is the same digest (and the signature covers the text sent).
  std::string upper(kExampleQuery);
  upper.replace(upper.find("ec365a775a4cd0599faeb73354201b6f"), 32, "EC365A775A4CD0599FAEB73354201B6F");
  EXPECT_EQ(verify_events(upper), ApiError::wrong_signature);
}

TEST_F(PusherApiAuth, checks_body_md5_on_an_empty_body_when_given) {
  const std::string q =
      sign_query("GET", "/apps/3/channels", {{"body_md5", "d41d8cd98f00b204e9800998ecf8427e"}}, "", 1);
  EXPECT_EQ(verify("GET", "/apps/3/channels", q, "", 1), ApiError::none);
  const std::string wrong =
      sign_query("GET", "/apps/3/channels", {{"body_md5", "ec365a775a4cd0599faeb73354201b6f"}}, "", 1);
  EXPECT_EQ(verify("GET", "/apps/3/channels", wrong, "", 1), ApiError::body_md5_mismatch);
}

TEST_F(PusherApiAuth, refuses_a_malformed_signature_with_400) {
  for (const char* bad : {"", "da45", "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6cc",
                          "xa454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"}) {
    std::string q(kExampleQuery);
    const size_t at = q.find("da4548");
    q.replace(at, 64, bad);
    EXPECT_EQ(verify_events(q), ApiError::malformed_auth_signature) << bad;
  }
  EXPECT_EQ(http_status(ApiError::malformed_auth_signature), 400);
}

TEST_F(PusherApiAuth, refuses_a_wrong_signature_with_401) {
  std::string q(kExampleQuery);
  q[q.size() - 1] = 'd';
  EXPECT_EQ(verify_events(q), ApiError::wrong_signature);
  // The signature covers the method, the path and every other parameter.
  EXPECT_EQ(verify("PUT", "/apps/3/events", kExampleQuery, kExampleBody, kExampleTime),
            ApiError::wrong_signature);
  EXPECT_EQ(verify("POST", "/apps/4/events", kExampleQuery, kExampleBody, kExampleTime),
            ApiError::wrong_signature);
  EXPECT_EQ(verify_events(std::string(kExampleQuery) + "&extra=1"), ApiError::wrong_signature);
  const std::string other =
      sign_query("POST", "/apps/3/events", {}, kExampleBody, kExampleTime, "other secret");
  EXPECT_EQ(verify_events(other), ApiError::wrong_signature);
  EXPECT_EQ(http_status(ApiError::wrong_signature), 401);
}

TEST_F(PusherApiAuth, refuses_a_parameter_given_twice) {
  EXPECT_EQ(verify_events(std::string(kExampleQuery) + "&auth_key=278d425bdf160c739803"),
            ApiError::duplicate_parameter);
  EXPECT_EQ(verify_events(std::string(kExampleQuery) + "&AUTH_VERSION=1.0"), ApiError::duplicate_parameter);
  EXPECT_EQ(verifier_.parse_query("info=a&info[]=b"), ApiError::duplicate_parameter);
  EXPECT_EQ(verifier_.parse_query("info[]=a&info=b"), ApiError::duplicate_parameter);
  EXPECT_EQ(verifier_.parse_query("a[x]=1&a[x]=2"), ApiError::duplicate_parameter)
      << "only [] and [N] are arrays";
}

TEST_F(PusherApiAuth, refuses_malformed_queries) {
  for (const char* bad : {"a=%zz", "a=%4", "a=%", "%zz=1", "=1", "=", "%=1"}) {
    EXPECT_EQ(verifier_.parse_query(bad), ApiError::malformed_query) << bad;
  }
}

TEST_F(PusherApiAuth, limits_the_query_before_parsing_it) {
  ApiAuthOptions o;
  o.max_query_length = 16;
  o.max_parameters = 2;
  ApiRequestVerifier v(o);
  EXPECT_EQ(v.parse_query("a=1&b=2"), ApiError::none);
  EXPECT_EQ(v.parse_query("a=1&b=2&c=3"), ApiError::too_many_parameters);
  EXPECT_EQ(v.parse_query(std::string(17, 'a')), ApiError::query_too_long);
  EXPECT_EQ(v.parse_query(std::string(17, '%')), ApiError::query_too_long);
  EXPECT_EQ(http_status(ApiError::query_too_long), 414);
  EXPECT_EQ(verify_events(std::string(5000, 'a')), ApiError::query_too_long);
}

TEST_F(PusherApiAuth, refuses_a_body_over_the_limit_before_hashing_it) {
  ApiAuthOptions o;
  o.max_body_size = 10;
  ApiRequestVerifier v(o);
  EXPECT_EQ(v.verify({"POST", "/apps/3/events", kExampleQuery, kExampleBody}, signer_, kExampleTime),
            ApiError::body_too_large);
  EXPECT_EQ(http_status(ApiError::body_too_large), 413);
}

TEST_F(PusherApiAuth, reuses_its_buffers_across_requests) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(verify_events(kExampleQuery), ApiError::none);
    EXPECT_EQ(verify_events(std::string(kExampleQuery) + "&x=1"), ApiError::wrong_signature);
    EXPECT_EQ(verifier_.param("x"), "1");
  }
  EXPECT_EQ(verify_events(kExampleQuery), ApiError::none);
  EXPECT_EQ(verifier_.param("x"), std::nullopt) << "parameters of an earlier request are gone";
}

TEST(PusherApiInfo, parses_info_attributes) {
  InfoAttributes a;
  EXPECT_TRUE(parse_info_attributes("", a));
  EXPECT_EQ(a, InfoAttributes{});
  EXPECT_TRUE(parse_info_attributes("user_count", a));
  EXPECT_TRUE(a.user_count && !a.subscription_count);
  EXPECT_TRUE(parse_info_attributes("subscription_count,user_count", a));
  EXPECT_TRUE(a.user_count && a.subscription_count);
  for (const char* bad : {"foo", "user_count,", ",user_count", "user_count,,subscription_count", "USER_COUNT",
                          "user_count ", "members"}) {
    EXPECT_FALSE(parse_info_attributes(bad, a)) << bad;
    EXPECT_EQ(a, InfoAttributes{});
  }
}

// --- Bodies -------------------------------------------------------------------------

TEST(PusherApiBody, parses_the_protocol_pages_example) {
  ApiBodyParser p;
  ASSERT_EQ(p.parse_events(kExampleBody), ApiError::none);
  ASSERT_EQ(p.events().size(), 1u);
  const ApiEvent& e = p.events()[0];
  EXPECT_EQ(e.name, "foo");
  EXPECT_EQ(e.data, R"({"some":"data"})");
  EXPECT_EQ(e.data_json, R"("{\"some\":\"data\"}")");
  ASSERT_EQ(e.channels.size(), 1u);
  EXPECT_EQ(e.channels[0], "project-3");
  EXPECT_EQ(e.socket_id, "");
  EXPECT_EQ(e.info, InfoAttributes{});
}

TEST(PusherApiBody, parses_a_single_channel_socket_id_and_info) {
  ApiBodyParser p;
  ASSERT_EQ(
      p.parse_events(R"({"info":"user_count,subscription_count","socket_id":"123.456","data":"x\u0041",)"
                     R"("channel":"presence-a","name":"ev"})"),
      ApiError::none);
  const ApiEvent& e = p.events()[0];
  EXPECT_EQ(e.channels.size(), 1u);
  EXPECT_EQ(e.channels[0], "presence-a");
  EXPECT_EQ(e.socket_id, "123.456");
  EXPECT_TRUE(e.info.user_count && e.info.subscription_count);
  EXPECT_EQ(e.data, "xA");
  EXPECT_EQ(e.data_json, R"("x\u0041")");
}

TEST(PusherApiBody, takes_up_to_100_channels) {
  ApiBodyParser p;
  auto body = [](int n) {
    std::string b = R"({"name":"e","data":"d","channels":[)";
    for (int i = 0; i < n; ++i) b += (i == 0 ? "\"c" : ",\"c") + std::to_string(i) + "\"";
    return b + "]}";
  };
  ASSERT_EQ(p.parse_events(body(100)), ApiError::none);
  EXPECT_EQ(p.events()[0].channels.size(), 100u);
  EXPECT_EQ(p.events()[0].channels[99], "c99");
  EXPECT_EQ(p.parse_events(body(101)), ApiError::too_many_channels);
  EXPECT_EQ(http_status(ApiError::too_many_channels), 400);
}

TEST(PusherApiBody, limits_data_to_10_kb_with_413) {
  ApiBodyParser p;
  const std::string fits = R"({"name":"e","channel":"c","data":")" + std::string(10240, 'd') + "\"}";
  EXPECT_EQ(p.parse_events(fits), ApiError::none);
  const std::string over = R"({"name":"e","channel":"c","data":")" + std::string(10241, 'd') + "\"}";
  EXPECT_EQ(p.parse_events(over), ApiError::data_too_large);
  EXPECT_EQ(http_status(ApiError::data_too_large), 413);
  // The limit is on the data, not on its escaped form.
  std::string escaped = R"({"name":"e","channel":"c","data":")";
  for (int i = 0; i < 10240; ++i) escaped += "\\u0041";
  EXPECT_EQ(p.parse_events(escaped + "\"}"), ApiError::none);
}

TEST(PusherApiBody, refuses_a_body_over_the_limit_before_parsing) {
  ApiBodyLimits limits;
  limits.max_body_size = 16;
  ApiBodyParser p(limits);
  EXPECT_EQ(p.parse_events(std::string(17, '{')), ApiError::body_too_large);
  EXPECT_EQ(p.parse_batch_events(std::string(17, '{')), ApiError::body_too_large);
}

TEST(PusherApiBody, refuses_bodies_that_are_not_json_objects) {
  ApiBodyParser p;
  EXPECT_EQ(p.parse_events(""), ApiError::body_malformed_json);
  EXPECT_EQ(p.parse_events("{\"name\":"), ApiError::body_malformed_json);
  EXPECT_EQ(p.parse_events("name=foo&data=x"), ApiError::body_malformed_json);
  EXPECT_EQ(p.parse_events("{\"name\":\"\xff\"}"), ApiError::body_invalid_utf8);
  EXPECT_EQ(p.parse_events("[]"), ApiError::body_not_an_object);
  EXPECT_EQ(p.parse_events(R"("{}")"), ApiError::body_not_an_object);
  EXPECT_EQ(p.parse_events(R"({"name":"e","data":"d","channel":"c","x":)" + std::string(20, '[') +
                           std::string(20, ']') + "}"),
            ApiError::body_too_deep);
}

TEST(PusherApiBody, refuses_each_bad_field_naming_it) {
  ApiBodyParser p;
  struct Case {
    const char* body;
    ApiError error;
  };
  for (const Case& c : {
           Case{R"({"data":"d","channel":"c"})", ApiError::missing_name},
           Case{R"({"name":1,"data":"d","channel":"c"})", ApiError::name_not_string},
           Case{R"({"name":"","data":"d","channel":"c"})", ApiError::name_empty},
           Case{R"({"name":"e","channel":"c"})", ApiError::missing_data},
           Case{R"({"name":"e","data":{"some":"data"},"channel":"c"})", ApiError::data_not_string},
           Case{R"({"name":"e","data":null,"channel":"c"})", ApiError::data_not_string},
           Case{R"({"name":"e","data":"d"})", ApiError::missing_channels},
           Case{R"({"name":"e","data":"d","channel":"c","channels":["c"]})", ApiError::channel_and_channels},
           Case{R"({"name":"e","data":"d","channels":"c"})", ApiError::channels_not_array},
           Case{R"({"name":"e","data":"d","channels":[]})", ApiError::channels_empty},
           Case{R"({"name":"e","data":"d","channels":["a",1]})", ApiError::channel_not_string},
           Case{R"({"name":"e","data":"d","channel":["a"]})", ApiError::channel_not_string},
           Case{R"({"name":"e","data":"d","channels":["a","b c"]})", ApiError::invalid_channel},
           Case{R"({"name":"e","data":"d","channel":"c","socket_id":123.456})",
                ApiError::socket_id_not_string},
           Case{R"({"name":"e","data":"d","channel":"c","socket_id":"123"})", ApiError::invalid_socket_id},
           Case{R"({"name":"e","data":"d","channel":"c","info":["user_count"]})", ApiError::info_not_string},
           Case{R"({"name":"e","data":"d","channel":"c","info":"members"})", ApiError::invalid_info},
           Case{R"({"name":"e","name":"e","data":"d","channel":"c"})", ApiError::duplicate_key},
           Case{R"({"name":"e","data":"d","data":"d","channel":"c"})", ApiError::duplicate_key},
           Case{R"({"name":"e","data":"d","channels":["c"],"channels":["c"]})", ApiError::duplicate_key},
       }) {
    EXPECT_EQ(p.parse_events(c.body), c.error) << c.body;
    EXPECT_EQ(http_status(c.error), 400) << c.body;
    EXPECT_TRUE(p.events().empty());
  }
  const std::string long_name = R"({"name":")" + std::string(201, 'n') + R"(","data":"d","channel":"c"})";
  EXPECT_EQ(p.parse_events(long_name), ApiError::name_too_long);
}

TEST(PusherApiBody, says_what_is_wrong_with_a_channel_or_socket_id) {
  ApiBodyParser p;
  ASSERT_EQ(p.parse_events(R"({"name":"e","data":"d","channels":["ok","private-"]})"),
            ApiError::invalid_channel);
  EXPECT_EQ(p.channel_error(), ChannelNameError::prefix_only);
  EXPECT_EQ(p.error_message(ApiError::invalid_channel),
            "invalid channel name: channel name is only a prefix");
  ASSERT_EQ(p.parse_events(R"({"name":"e","data":"d","channel":"c","socket_id":"1.2.3"})"),
            ApiError::invalid_socket_id);
  EXPECT_EQ(p.socket_id_error(), SocketIdError::malformed);
  EXPECT_EQ(p.error_message(ApiError::invalid_socket_id),
            "invalid socket_id: socket_id is not of the form digits.digits");
}

TEST(PusherApiBody, parses_a_batch) {
  ApiBodyParser p;
  ASSERT_EQ(
      p.parse_batch_events(R"({"batch":[{"name":"a","data":"1","channel":"c1"},)"
                           R"( {"channel":"private-c2","data":"\"2\"","name":"b","socket_id":"1.2"}]})"),
      ApiError::none);
  ASSERT_EQ(p.events().size(), 2u);
  EXPECT_EQ(p.events()[0].name, "a");
  ASSERT_EQ(p.events()[0].channels.size(), 1u);
  EXPECT_EQ(p.events()[0].channels[0], "c1");
  EXPECT_EQ(p.events()[0].data_json, R"("1")");
  EXPECT_EQ(p.events()[1].channels[0], "private-c2");
  EXPECT_EQ(p.events()[1].data, "\"2\"");
  EXPECT_EQ(p.events()[1].data_json, R"("\"2\"")");
  EXPECT_EQ(p.events()[1].socket_id, "1.2");
}

TEST(PusherApiBody, accepts_an_empty_batch) {
  ApiBodyParser p;
  EXPECT_EQ(p.parse_batch_events(R"({"batch":[]})"), ApiError::none);
  EXPECT_TRUE(p.events().empty());
}

TEST(PusherApiBody, limits_a_batch_to_10_events) {
  auto body = [](int n) {
    std::string b = R"({"batch":[)";
    for (int i = 0; i < n; ++i)
      b += std::string(i == 0 ? "" : ",") + R"({"name":"e","data":"d","channel":"c"})";
    return b + "]}";
  };
  ApiBodyParser p;
  EXPECT_EQ(p.parse_batch_events(body(10)), ApiError::none);
  EXPECT_EQ(p.events().size(), 10u);
  EXPECT_EQ(p.parse_batch_events(body(11)), ApiError::batch_too_large);
  ApiBodyLimits limits;
  limits.max_batch_size = 20;
  ApiBodyParser larger(limits);
  EXPECT_EQ(larger.parse_batch_events(body(20)), ApiError::none);
}

TEST(PusherApiBody, refuses_bad_batches_naming_the_item) {
  ApiBodyParser p;
  EXPECT_EQ(p.parse_batch_events(R"({})"), ApiError::missing_batch);
  EXPECT_EQ(p.parse_batch_events(R"({"batch":{}})"), ApiError::batch_not_array);
  EXPECT_EQ(p.parse_batch_events(R"({"batch":[],"batch":[]})"), ApiError::duplicate_key);
  EXPECT_EQ(p.parse_batch_events(R"([])"), ApiError::body_not_an_object);
  EXPECT_EQ(p.parse_batch_events(R"({"batch":[{"name":"e","data":"d","channel":"c"},1]})"),
            ApiError::batch_item_not_object);
  EXPECT_EQ(p.error_index(), 1u);
  EXPECT_EQ(
      p.parse_batch_events(R"({"batch":[{"name":"e","data":"d","channel":"c"},{"name":"e","data":"d"}]})"),
      ApiError::missing_channels);
  EXPECT_EQ(p.error_index(), 1u);
  EXPECT_EQ(p.error_message(ApiError::missing_channels), "batch[1]: channels or channel is missing");
  // A batch item names one channel: "channels" is not read there.
  EXPECT_EQ(p.parse_batch_events(R"({"batch":[{"name":"e","data":"d","channels":["c"]}]})"),
            ApiError::missing_channels);
  EXPECT_EQ(p.parse_batch_events(R"({"batch":[{"name":"e","data":"d","channel":"a b"}]})"),
            ApiError::invalid_channel);
  EXPECT_EQ(p.error_message(ApiError::invalid_channel),
            "batch[0]: invalid channel name: channel name has a character outside [-a-zA-Z0-9_=@,.;]");
  EXPECT_TRUE(p.events().empty());
}

TEST(PusherApiBody, keeps_results_valid_until_the_next_parse) {
  ApiBodyParser p;
  ASSERT_EQ(p.parse_events(kExampleBody), ApiError::none);
  const std::span<const ApiEvent> first = p.events();
  EXPECT_EQ(first[0].channels[0], "project-3");
  ASSERT_EQ(p.parse_batch_events(R"({"batch":[{"name":"x","data":"y","channel":"z"}]})"), ApiError::none);
  EXPECT_EQ(p.events()[0].channels[0], "z");
  ASSERT_EQ(p.parse_events(kExampleBody), ApiError::none);
  EXPECT_EQ(p.events()[0].channels[0], "project-3");
}

TEST(PusherApiErrors, map_to_a_status_and_a_reason) {
  for (int i = 0; i <= static_cast<int>(ApiError::batch_item_not_object); ++i) {
    const auto e = static_cast<ApiError>(i);
    const uint16_t s = http_status(e);
    EXPECT_TRUE(s == 200 || s == 400 || s == 401 || s == 404 || s == 405 || s == 413 || s == 414 || s == 500)
        << i;
    EXPECT_EQ(s == 200, e == ApiError::none) << i;
    EXPECT_GT(std::string(describe(e)).size(), 1u) << i;
  }
}

}  // namespace
}  // namespace windlass::channels
