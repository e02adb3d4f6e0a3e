#include "http/router.hpp"

#include <gtest/gtest.h>

using windlass::RouteParams;
using windlass::detail::RoutePattern;
using windlass::detail::RouteTable;

namespace {

std::string compile_error(const std::string& p) {
  std::string error;
  EXPECT_FALSE(RoutePattern::compile(p, error).has_value()) << p;
  return error;
}

TEST(RoutePattern, refuses_malformed_patterns_with_a_reason) {
  EXPECT_NE(compile_error("app").find("starts with '/'"), std::string::npos);
  EXPECT_NE(compile_error("/a/:/b").find("needs a name"), std::string::npos);
  EXPECT_NE(compile_error("/a/*/b").find("last segment"), std::string::npos);
  EXPECT_NE(compile_error("/:x/:x").find("appears twice"), std::string::npos);
  EXPECT_NE(compile_error("/:a/:b/:c/:d/:e/:f/:g/:h/:i").find("captures"), std::string::npos);
}

TEST(RoutePattern, captures_parameters_and_the_rest) {
  std::string error;
  auto p = RoutePattern::compile("/app/:key/events/*", error);
  ASSERT_TRUE(p) << error;
  EXPECT_FALSE(p->exact());
  RouteParams params;
  ASSERT_TRUE(p->match("/app/k1/events/a/b", params));
  EXPECT_EQ(params.get("key"), "k1");
  EXPECT_EQ(params.get("*"), "a/b");
  params.clear();
  ASSERT_TRUE(p->match("/app/k1/events/", params));
  EXPECT_EQ(params.get("*"), "");
  params.clear();
  EXPECT_FALSE(p->match("/app/k1/events", params));
  EXPECT_FALSE(p->match("/app//events/x", params));  // a parameter is never empty
  EXPECT_FALSE(p->match("/app/k1/other/x", params));
}

TEST(RoutePattern, a_parameter_takes_exactly_one_segment) {
  std::string error;
  auto p = RoutePattern::compile("/app/:key", error);
  ASSERT_TRUE(p);
  RouteParams params;
  EXPECT_TRUE(p->match("/app/a%2Fb", params));  // encoded: still one segment
  params.clear();
  EXPECT_FALSE(p->match("/app/a/b", params));
  EXPECT_FALSE(p->match("/app/a/", params));
  EXPECT_FALSE(p->match("/app", params));
}

TEST(RouteTable, exact_paths_win_then_the_most_specific_pattern) {
  RouteTable<int> t;
  std::string error;
  ASSERT_TRUE(t.add("/*", 1, error));
  ASSERT_TRUE(t.add("/app/*", 2, error));
  ASSERT_TRUE(t.add("/app/:key", 3, error));
  ASSERT_TRUE(t.add("/app/special", 4, error));
  ASSERT_TRUE(t.add("/:any/x", 5, error));
  RouteParams params;
  EXPECT_EQ(*t.find("/app/special", params), 4);
  EXPECT_EQ(*t.find("/app/abc", params), 3);
  EXPECT_EQ(params.get("key"), "abc");
  EXPECT_EQ(*t.find("/app/abc/def", params), 2);
  EXPECT_EQ(*t.find("/app/x", params), 3);  // literal "app" outranks ":any"
  EXPECT_EQ(*t.find("/other/x", params), 5);
  EXPECT_EQ(*t.find("/", params), 1);
  EXPECT_EQ(*t.find("/anything/else/deep", params), 1);
}

TEST(RouteTable, refuses_the_same_pattern_twice) {
  RouteTable<int> t;
  std::string error;
  ASSERT_TRUE(t.add("/a", 1, error));
  EXPECT_FALSE(t.add("/a", 2, error));
  EXPECT_NE(error.find("already taken"), std::string::npos);
  ASSERT_TRUE(t.add("/b/:x", 1, error));
  EXPECT_FALSE(t.add("/b/:x", 2, error));
}

TEST(RouteTable, nothing_matches_an_empty_table) {
  RouteTable<int> t;
  RouteParams params;
  EXPECT_EQ(t.find("/", params), nullptr);
}

}  // namespace
