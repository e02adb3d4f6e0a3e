// The JSON string escaper (RFC 8259 §7, invalid UTF-8 replaced by U+FFFD
// per maximal subpart), the UTF-8 check and the raw value scanner.
#include "channels/json_text.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace windlass::channels {
namespace {

std::string literal(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string content(std::string_view s, int levels) {
  std::string out;
  append_json_string_content(out, s, levels);
  return out;
}

// What a JSON parser reads back from a string literal.
std::string parse_back(const std::string& literal) {
  simdjson::dom::parser parser;
  std::string_view v;
  EXPECT_EQ(parser.parse(literal).get_string().get(v), simdjson::SUCCESS) << literal;
  return std::string(v);
}

TEST(PusherJsonText, copies_plain_text) {
  EXPECT_EQ(literal(""), "\"\"");
  EXPECT_EQ(literal("hello world"), "\"hello world\"");
  EXPECT_EQ(literal("a/b <tag> {x:1} 'q'"), "\"a/b <tag> {x:1} 'q'\"");
}

TEST(PusherJsonText, escapes_quotes_and_backslashes) {
  EXPECT_EQ(literal("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(literal("C:\\dir\\"), R"("C:\\dir\\")");
}

TEST(PusherJsonText, escapes_every_control_character) {
  EXPECT_EQ(literal("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(literal(std::string("\0", 1)), R"("\u0000")");
  EXPECT_EQ(literal("\x01\x1f"), R"("\u0001\u001f")");
  for (int c = 0; c < 0x20; ++c) {
    const std::string s(1, static_cast<char>(c));
    const std::string q = literal(s);
    for (char k : q) EXPECT_GE(static_cast<unsigned char>(k), 0x20) << c;
    EXPECT_EQ(parse_back(q), s) << c;
  }
  EXPECT_EQ(literal("\x7f"), "\"\x7f\"") << "DEL needs no escape in JSON";
}

TEST(PusherJsonText, copies_valid_utf8_unchanged) {
  const std::string s =
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 \xef\xbf\xbf \xf4\x8f\xbf\xbf";
  EXPECT_EQ(literal(s), "\"" + s + "\"");
}

TEST(PusherJsonText, replaces_each_maximal_ill_formed_subpart_with_one_replacement_character) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(content("a\xff"
                    "b",
                    1),
            "a" + r + "b");
  EXPECT_EQ(content("\x80", 1), r) << "a lone continuation byte";
  EXPECT_EQ(content("\xc0\xaf", 1), r + r) << "C0 never starts a sequence; AF is a stray continuation";
  EXPECT_EQ(content("\xe2\x82", 1), r) << "a truncated 3-byte sequence is one subpart";
  EXPECT_EQ(content("\xe2\x82"
                    "A",
                    1),
            r + "A");
  EXPECT_EQ(content("\xed\xa0\x80", 1), r + r + r) << "a surrogate: ED then two stray continuations";
  EXPECT_EQ(content("\xe0\x80\x80", 1), r + r + r) << "an overlong";
  EXPECT_EQ(content("\xf4\x90\x80\x80", 1), r + r + r + r) << "above U+10FFFF";
  EXPECT_EQ(content("\xf0\x9f\x98", 1), r) << "a truncated 4-byte sequence";
  EXPECT_EQ(content("\xf5", 1), r);
  EXPECT_TRUE(is_valid_utf8(content("\xff\xfe\xc3\x28\xe2\x28\xa1", 1)));
}

TEST(PusherJsonText, round_trips_every_byte_through_a_json_parser) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += std::string("\0x", 2);
  EXPECT_EQ(parse_back(literal(all)), all);
}

TEST(PusherJsonText, handles_escapes_at_every_position_of_the_eight_byte_fast_path) {
  for (size_t len = 0; len < 40; ++len) {
    for (size_t at = 0; at < len; ++at) {
      std::string s(len, 'x');
      s[at] = '"';
      EXPECT_EQ(parse_back(literal(s)), s) << len << " " << at;
      s[at] = '\xc3';
      if (at + 1 < len) {
        s[at + 1] = '\xa9';
        EXPECT_EQ(literal(s), "\"" + s + "\"");
      }
    }
  }
}

TEST(PusherJsonText, escapes_twice_for_json_inside_a_string) {
  // Level 2 is the content of a literal whose value is the level-1 content.
  const std::string_view cases[] = {"plain", "q\"uote", "back\\slash", "nl\n", std::string_view("\0", 1),
                                    "\x01"};
  for (std::string_view s : cases) {
    const std::string once = content(s, 1);
    EXPECT_EQ(content(s, 2), content(once, 1)) << s;
    EXPECT_EQ(parse_back("\"" + content(s, 2) + "\""), once) << s;
    EXPECT_EQ(parse_back("\"" + once + "\""), std::string(s));
  }
  EXPECT_EQ(content("\"", 2), R"(\\\")");
  EXPECT_EQ(content("\\", 2), R"(\\\\)");
  EXPECT_EQ(content("\n", 2), R"(\\n)");
}

TEST(PusherJsonText, validates_utf8) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("ascii only, long enough for the fast path"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  for (const char* bad :
       {"\x80", "\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xfe", "abcdefgh\xff"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << bad;
  }
}

TEST(PusherJsonText, finds_each_member_value_as_written) {
  const std::string_view doc =
      R"( { "a" : 1 , "b":"x\"}y" ,"c": {"d":[1,{"e":"]"}]}, "d" :true,"e":null,"f":-1.5e3 } )";
  EXPECT_EQ(json_object_member_value(doc, 0), "1");
  EXPECT_EQ(json_object_member_value(doc, 1), R"("x\"}y")");
  EXPECT_EQ(json_object_member_value(doc, 2), R"({"d":[1,{"e":"]"}]})");
  EXPECT_EQ(json_object_member_value(doc, 3), "true");
  EXPECT_EQ(json_object_member_value(doc, 4), "null");
  EXPECT_EQ(json_object_member_value(doc, 5), "-1.5e3");
  EXPECT_EQ(json_object_member_value(doc, 6), "");
  EXPECT_EQ(json_object_member_value("{}", 0), "");
  EXPECT_EQ(json_object_member_value("[1]", 0), "");
}

TEST(PusherJsonText, finds_member_values_after_escaped_keys) {
  EXPECT_EQ(json_object_member_value(R"({"k\"ey":1,"d\u0061ta":[2]})", 1), "[2]");
  EXPECT_EQ(json_object_member_value(R"({"\\":1,"x":"\\"})", 1), R"("\\")");
}

TEST(PusherJsonText, lists_array_elements) {
  std::string_view out[4];
  EXPECT_EQ(json_array_elements(R"([ {"a":1} , "s,]" ,3,[4,5]])", out, 4), 4u);
  EXPECT_EQ(out[0], R"({"a":1})");
  EXPECT_EQ(out[1], R"("s,]")");
  EXPECT_EQ(out[2], "3");
  EXPECT_EQ(out[3], "[4,5]");
  EXPECT_EQ(json_array_elements("[]", out, 4), 0u);
  EXPECT_EQ(json_array_elements(" [ ] ", out, 4), 0u);
  EXPECT_EQ(json_array_elements("[1,2,3]", out, 2), 2u) << "stops at max";
}

TEST(PusherJsonText, skips_values_of_every_type) {
  EXPECT_EQ(skip_json_value("  \"a\\\\\" x", 0), 7u);
  EXPECT_EQ(skip_json_value("123,", 0), 3u);
  EXPECT_EQ(skip_json_value("[[],{}] ", 0), 7u);
  EXPECT_EQ(skip_json_whitespace(" \t\r\nx", 0), 4u);
}

}  // namespace
}  // namespace windlass::channels
