// Channel names: the kind each prefix denotes and the protocol's naming rule
// (1-164 characters of [-a-zA-Z0-9_=@,.;]).
#include "channels/channel_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace windlass::channels {
namespace {

ChannelInfo info_of(std::string_view name) {
  ChannelInfo info;
  EXPECT_EQ(parse_channel_name(name, info), ChannelNameError::none) << name;
  return info;
}

TEST(ChannelName, classifies_every_prefix) {
  struct Case {
    const char* name;
    ChannelType type;
    bool cache;
  };
  for (const Case& c :
       {Case{"chat", ChannelType::public_, false}, Case{"private-chat.1", ChannelType::private_, false},
        Case{"private-encrypted-chat", ChannelType::private_encrypted, false},
        Case{"presence-room", ChannelType::presence, false}, Case{"cache-news", ChannelType::public_, true},
        Case{"private-cache-x", ChannelType::private_, true},
        Case{"private-encrypted-cache-x", ChannelType::private_encrypted, true},
        Case{"presence-cache-x", ChannelType::presence, true}}) {
    SCOPED_TRACE(c.name);
    const ChannelInfo info = info_of(c.name);
    EXPECT_EQ(info.type, c.type);
    EXPECT_EQ(info.cache, c.cache);
    EXPECT_EQ(classify_channel(c.name), info);
  }
}

TEST(ChannelName, takes_the_longest_prefix) {
  // "private-encrypted-" is its own kind, not a private channel named
  // "encrypted-..."; without the trailing dash it is a private channel.
  EXPECT_EQ(info_of("private-encrypted-x").type, ChannelType::private_encrypted);
  EXPECT_EQ(info_of("private-encrypted").type, ChannelType::private_);
  EXPECT_EQ(info_of("private-encryptedx").type, ChannelType::private_);
  EXPECT_EQ(info_of("private-cachex").cache, false);
  EXPECT_EQ(info_of("presence").type, ChannelType::public_);
  EXPECT_EQ(info_of("Private-x").type, ChannelType::public_) << "prefixes are case-sensitive";
  EXPECT_EQ(info_of("x-private-y").type, ChannelType::public_);
}

TEST(ChannelName, reports_the_prefix_length) {
  EXPECT_EQ(info_of("private-encrypted-cache-x").prefix_length, 24);
  EXPECT_EQ(info_of("presence-x").prefix_length, 9);
  EXPECT_EQ(info_of("x").prefix_length, 0);
}

TEST(ChannelName, says_which_kinds_need_auth_and_take_client_events) {
  EXPECT_FALSE(info_of("chat").needs_auth());
  EXPECT_FALSE(info_of("cache-chat").needs_auth());
  EXPECT_TRUE(info_of("private-chat").needs_auth());
  EXPECT_TRUE(info_of("private-encrypted-chat").needs_auth());
  EXPECT_TRUE(info_of("presence-chat").needs_auth());
  EXPECT_FALSE(info_of("chat").allows_client_events());
  EXPECT_TRUE(info_of("private-chat").allows_client_events());
  EXPECT_TRUE(info_of("presence-chat").allows_client_events());
  EXPECT_FALSE(info_of("private-encrypted-chat").allows_client_events());
}

TEST(ChannelName, accepts_every_character_of_the_alphabet) {
  EXPECT_EQ(info_of("azAZ09-_=@,.;").type, ChannelType::public_);
  EXPECT_TRUE(is_channel_name_chars("abcxyzABCXYZ0123456789-_=@,.;"));
}

TEST(ChannelName, accepts_164_characters_and_refuses_165) {
  ChannelInfo info;
  EXPECT_EQ(parse_channel_name(std::string(164, 'a'), info), ChannelNameError::none);
  EXPECT_EQ(parse_channel_name("private-" + std::string(156, 'a'), info), ChannelNameError::none);
  EXPECT_EQ(parse_channel_name(std::string(165, 'a'), info), ChannelNameError::too_long);
}

TEST(ChannelName, checks_length_before_characters) {
  ChannelInfo info;
  EXPECT_EQ(parse_channel_name(std::string(165, '#'), info), ChannelNameError::too_long);
}

TEST(ChannelName, refuses_an_empty_name) {
  ChannelInfo info;
  EXPECT_EQ(parse_channel_name("", info), ChannelNameError::empty);
}

TEST(ChannelName, refuses_characters_outside_the_alphabet) {
  for (const char* bad : {"a b",
                          "a/b",
                          "a#b",
                          "#server-to-user-1",
                          "a:b",
                          "a\"b",
                          "a\\b",
                          "a*",
                          "\xc3\xa9t\xc3\xa9",
                          "tab\there",
                          "a+b",
                          "a?b",
                          "a%20b",
                          "a!b",
                          "a'b",
                          "a(b)",
                          "a[b]",
                          "a{b}",
                          "a|b",
                          "a~b",
                          "a$b",
                          "a&b",
                          "a<b>",
                          "a^b",
                          "a`b"}) {
    ChannelInfo info;
    EXPECT_EQ(parse_channel_name(bad, info), ChannelNameError::invalid_character) << bad;
  }
  ChannelInfo info;
  EXPECT_EQ(parse_channel_name(std::string("a\0b", 3), info), ChannelNameError::invalid_character);
}

TEST(ChannelName, refuses_a_bare_prefix) {
  for (const char* bare : {"private-", "private-encrypted-", "private-cache-", "private-encrypted-cache-",
                           "presence-", "presence-cache-", "cache-"}) {
    ChannelInfo info;
    EXPECT_EQ(parse_channel_name(bare, info), ChannelNameError::prefix_only) << bare;
  }
}

TEST(ChannelName, leaves_info_unchanged_on_error) {
  ChannelInfo info{ChannelType::presence, true, 15};
  EXPECT_NE(parse_channel_name("a b", info), ChannelNameError::none);
  EXPECT_EQ(info, (ChannelInfo{ChannelType::presence, true, 15}));
}

TEST(ChannelName, describes_every_error) {
  for (auto e : {ChannelNameError::none, ChannelNameError::empty, ChannelNameError::too_long,
                 ChannelNameError::invalid_character, ChannelNameError::prefix_only}) {
    EXPECT_GT(std::string(describe(e)).size(), 5u);
  }
}

}  // namespace
}  // namespace windlass::channels
