// Channel name classification and validation (see channel_name.hpp).
#include "channels/channel_name.hpp"

#include <array>

namespace windlass::channels {
namespace {

// One flag per byte value: the protocol's channel name alphabet.
constexpr std::array<bool, 256> make_name_table() {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (char c : std::string_view("-_=@,.;")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kNameChar = make_name_table();

struct Prefix {
  std::string_view text;
  ChannelType type;
  bool cache;
};

// Longest first: the first match is the right one.
constexpr Prefix kPrefixes[] = {
    {"private-encrypted-cache-", ChannelType::private_encrypted, true},
    {"private-encrypted-", ChannelType::private_encrypted, false},
    {"private-cache-", ChannelType::private_, true},
    {"private-", ChannelType::private_, false},
    {"presence-cache-", ChannelType::presence, true},
    {"presence-", ChannelType::presence, false},
    {"cache-", ChannelType::public_, true},
};

}  // namespace

const char* describe(ChannelNameError e) noexcept {
  switch (e) {
    case ChannelNameError::none: return "valid channel name";
    case ChannelNameError::empty: return "channel name is empty";
    case ChannelNameError::too_long: return "channel name is longer than 164 characters";
    case ChannelNameError::invalid_character:
      return "channel name has a character outside [-a-zA-Z0-9_=@,.;]";
    case ChannelNameError::prefix_only: return "channel name is only a prefix";
  }
  return "invalid channel name";
}

ChannelInfo classify_channel(std::string_view name) noexcept {
  for (const Prefix& p : kPrefixes) {
    if (name.starts_with(p.text)) {
      return ChannelInfo{p.type, p.cache, static_cast<uint8_t>(p.text.size())};
    }
  }
  return ChannelInfo{};
}

bool is_channel_name_chars(std::string_view s) noexcept {
  for (char c : s) {
    if (!kNameChar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

ChannelNameError parse_channel_name(std::string_view name, ChannelInfo& info) noexcept {
  if (name.empty()) return ChannelNameError::empty;
  if (name.size() > kMaxChannelNameLength) return ChannelNameError::too_long;
  if (!is_channel_name_chars(name)) return ChannelNameError::invalid_character;
  const ChannelInfo c = classify_channel(name);
  if (c.prefix_length == name.size()) return ChannelNameError::prefix_only;
  info = c;
  return ChannelNameError::none;
}

}  // namespace windlass::channels
