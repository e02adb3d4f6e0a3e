// Pusher channel names: what kind of channel a name denotes, and whether it
// is a legal name at all. Pure: no allocation, no I/O.
//
// The kind comes from the prefix (Pusher Channels protocol 7):
//   private-encrypted-cache-   private_encrypted, cache
//   private-encrypted-         private_encrypted
//   private-cache-             private_, cache
//   private-                   private_
//   presence-cache-            presence, cache
//   presence-                  presence
//   cache-                     public_, cache
//   anything else              public_
// Longest prefix wins, so "private-encrypted-x" is encrypted, not a private
// channel named "encrypted-x".
//
// A legal name is 1 to 164 characters, each one of [-a-zA-Z0-9_=@,.;]
// (the protocol's channel naming rule), and is more than its prefix: a bare
// "private-" or "presence-cache-" names nothing and is refused, so no two
// kinds can disagree about an empty remainder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace windlass::channels {

inline constexpr size_t kMaxChannelNameLength = 164;

enum class ChannelType : uint8_t {
  public_,            // anyone may subscribe; auth ignored
  private_,           // private-: signed socket_id:channel
  private_encrypted,  // private-encrypted-: signed like private, payload opaque, no client events
  presence,           // presence-: signed socket_id:channel:channel_data, member list
};

struct ChannelInfo {
  ChannelType type = ChannelType::public_;
  bool cache = false;  // a cache- variant: the last event is kept for new subscribers
  uint8_t prefix_length = 0;

  // private, private-encrypted and presence channels need a signature.
  constexpr bool needs_auth() const noexcept { return type != ChannelType::public_; }
  // Client events are allowed on private and presence channels only (and
  // not on encrypted ones, whose payloads the server cannot vouch for).
  constexpr bool allows_client_events() const noexcept {
    return type == ChannelType::private_ || type == ChannelType::presence;
  }
  constexpr bool operator==(const ChannelInfo&) const = default;
};

enum class ChannelNameError : uint8_t {
  none,
  empty,              // ""
  too_long,           // more than 164 characters
  invalid_character,  // a character outside [-a-zA-Z0-9_=@,.;]
  prefix_only,        // "private-", "cache-", ...: nothing after the prefix
};

const char* describe(ChannelNameError e) noexcept;

// The kind of channel `name` denotes, from its prefix alone (no validation).
ChannelInfo classify_channel(std::string_view name) noexcept;

// Validates `name` and, when it is legal, classifies it into `info`. The
// length is checked before any character is looked at.
ChannelNameError parse_channel_name(std::string_view name, ChannelInfo& info) noexcept;

// True when every byte of `s` is one of [-a-zA-Z0-9_=@,.;]. The same set is
// used for user ids in API paths that name channels' members.
bool is_channel_name_chars(std::string_view s) noexcept;

}  // namespace windlass::channels
