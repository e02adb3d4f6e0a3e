// Access control for incoming requests: IP addresses and CIDR networks,
// the real client address behind trusted proxies, the Origin allow-list,
// and per-address connection counts: the pure core under the decorators of
// include/windlass/decorators.hpp (Ratchet's OriginCheck and IpBlackList)
// and the HTTP layer's client-address resolution.
//
// Pure: no I/O, no clock, no logger, no globals. Addresses arrive as text
// from the server ("1.2.3.4", "::1"; IPv4-mapped IPv6 already shown as
// IPv4) and from request headers. Everything here except ConnectionLimiter
// is immutable once compiled and safe to share between loops;
// ConnectionLimiter is thread-safe.
//
// This file needs no header outside src/, so fuzz/cidr_fuzz.cpp can
// compile access_control.cpp against the pure core's include path alone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace windlass::detail {

// ------------------------------------------------------------ addresses

// An IPv4 or IPv6 address in one 16-byte form, network byte order. IPv4 is
// kept as IPv4-mapped IPv6, ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), so
// "1.2.3.4" and "::ffff:1.2.3.4" are the same address: that is what a
// dual-stack socket reports for an IPv4 client.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  bool is_v4() const noexcept;  // in ::ffff:0:0/96
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// Parses an address exactly as inet_pton(3) does ("192.0.2.7", "2001:db8::1",
// "::ffff:192.0.2.7"): no brackets, port, zone index or surrounding space.
// IPv4 octets are decimal without leading zeros ("010.0.0.1" is refused,
// as some parsers would read it as octal).
std::optional<IpAddress> parse_ip(std::string_view text) noexcept;

// "192.0.2.7" for IPv4 (mapped or not), "2001:db8::1" otherwise.
std::string to_string(const IpAddress& address);

// A CIDR network. The prefix counts bits of the 16-byte form, so the IPv4
// network a.b.c.d/n is stored as ::ffff:a.b.c.d/(96+n).
struct IpNetwork {
  IpAddress base;  // host bits are zero
  uint8_t prefix = 128;

  // An IPv4 network (prefix >= 96 inside ::ffff:0:0/96) contains IPv4
  // addresses; any other network contains IPv6 addresses only, so "::/0"
  // does not swallow every IPv4 client of a dual-stack socket.
  bool is_v4() const noexcept;
  bool contains(const IpAddress& address) const noexcept;
  IpAddress last() const noexcept;  // the highest address inside
  friend bool operator==(const IpNetwork&, const IpNetwork&) = default;
};

// Parses "10.0.0.0/8", "192.168.1.7" (a /32), "2001:db8::/32", "::1" (a
// /128), "::ffff:1.2.3.0/120" (the IPv4 network 1.2.3.0/24). On failure
// returns nullopt and, when `error` is not null, sets it to what is wrong:
//   "prefix length 33 out of range for IPv4 (0-32)"
//   "host bits set: 10.0.0.1/8 is inside 10.0.0.0/8; write that, or 10.0.0.1/32"
//   "zone index not allowed: fe80::1%eth0"
// Host bits are refused rather than masked: "192.168.1.7/16" is more often
// a typo for a single address than a way to write 192.168.0.0/16.
std::optional<IpNetwork> parse_network(std::string_view text, std::string* error = nullptr);

// "10.0.0.0/8", "2001:db8::/32"; parse_network reads it back.
std::string to_string(const IpNetwork& network);

// A set of networks with contains() in O(log n): the networks are turned
// into sorted, merged address ranges (one list per family), searched by
// bisection. Thousands of rules cost a few comparisons per lookup and
// 8 bytes (IPv4) or 32 bytes (IPv6) per range.
class IpSet {
 public:
  IpSet() = default;
  explicit IpSet(std::span<const IpNetwork> networks);

  // Compiles rules in parse_network's syntax. On the first bad one returns
  // nullopt and sets `error` to `[index] "text": what is wrong`.
  static std::optional<IpSet> compile(std::span<const std::string> rules, std::string& error);

  bool contains(const IpAddress& address) const noexcept;
  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
  size_t range_count() const noexcept { return v4_.size() + v6_.size(); }

 private:
  struct U128 {
    uint64_t hi = 0, lo = 0;
    friend auto operator<=>(const U128&, const U128&) = default;
  };
  std::vector<std::pair<uint32_t, uint32_t>> v4_;  // [first, last], sorted, disjoint, not adjacent
  std::vector<std::pair<U128, U128>> v6_;
};

// ------------------------------------------------------------ client address

enum class ClientIpSource : uint8_t {
  peer,           // the TCP peer: not a trusted proxy, or it sent no usable header
  forwarded_for,  // an X-Forwarded-For entry
  real_ip,        // X-Real-IP
};

struct ClientIp {
  IpAddress address;
  ClientIpSource source = ClientIpSource::peer;
  // An X-Forwarded-For entry or X-Real-IP value that was not an address and
  // stopped the walk (a view into the header, for the log); empty if none.
  std::string_view unparsed;
};

// The address the request came from.
//
// Only when `peer` (the TCP peer) is in `trusted_proxies` are the headers
// read: anyone else can write any X-Forwarded-For it likes (RFC 7239 §8.1
// notes the same of Forwarded). X-Forwarded-For is then walked from the
// right, skipping addresses that are themselves trusted proxies, and the
// first other address is the client; if every entry is trusted, the
// left-most one is. This is nginx's real_ip_recursive: each trusted proxy
// appends the address it received the request from, so the entries to the
// right of the first untrusted one were written by proxies we trust, and
// the ones to its left by the client, who can forge them.
//
// `x_forwarded_for` is the header's value, empty when absent. A request
// with several X-Forwarded-For lines must have them joined in order with
// "," by the caller (RFC 9110 §5.3 makes that the same field). Entries are
// separated by commas with optional spaces; empty entries are skipped (RFC
// 9110 §5.6.1). An entry may be "192.0.2.7", "192.0.2.7:5678",
// "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:443"; a zone index
// ("fe80::1%eth0") is dropped. Any other entry ("unknown", an obfuscated
// "_hidden" node of RFC 7239 §6, garbage) stops the walk and the client is
// the last trusted hop seen (the proxy that wrote it): that proxy is the
// nearest address we know, and skipping the entry would mean believing
// whatever the unknown hop in front of it wrote. `unparsed` names it.
//
// When X-Forwarded-For has no entries, `x_real_ip` (same single-entry
// syntax) is used if it parses; otherwise the client is the peer.
ClientIp resolve_client_ip(const IpAddress& peer, std::string_view x_forwarded_for,
                           std::string_view x_real_ip, const IpSet& trusted_proxies) noexcept;

// One X-Forwarded-For entry or X-Real-IP value, in the forms listed above,
// with surrounding spaces and tabs removed.
std::optional<IpAddress> parse_forwarded_address(std::string_view text) noexcept;

// ------------------------------------------------------------ origins

enum class OriginVerdict : uint8_t {
  allowed,
  not_listed,   // a well-formed origin that is not in the list
  null_origin,  // "null" and the list does not have it
  missing,      // no Origin header and allow_missing_origin is false
  malformed,    // not one serialized origin (RFC 6454 §6.2), e.g. a list, a path, a bad port
};

// The Origin allow-list. Matching is a linear scan: lists are short (a
// handful of sites), each comparison is a few bytes, and the scan needs
// no allocation per request.
class OriginPolicy {
 public:
  // `allowed` in AccessOptions::allowed_origins' syntax. On the first bad
  // entry returns nullopt and sets `error` to `[index] "text": what is wrong`.
  static std::optional<OriginPolicy> compile(std::span<const std::string> allowed, bool allow_missing,
                                             std::string& error);

  bool enabled() const noexcept { return !entries_.empty() || allow_null_; }

  // `origin` is the Origin header's value, or nullopt when the request has
  // none. A request with two Origin lines should be passed as malformed
  // (the caller joins them with ',' and the comma makes it so).
  OriginVerdict check(std::optional<std::string_view> origin) const noexcept;

 private:
  struct Entry {
    std::string scheme;  // lowercase
    std::string host;    // lowercase; for a wildcard, the suffix with its leading '.'
    int32_t port = -1;   // -1: none written, or the scheme's default
    bool wildcard = false;
    bool ipv6 = false;  // host is an IPv6 literal, compared as the address `ip`
    IpAddress ip;
  };
  std::vector<Entry> entries_;
  bool allow_null_ = false;
  bool allow_missing_ = true;
};

// ------------------------------------------------------------ connection counts

class ConnectionLimiter;

// One counted connection; releases its count when destroyed or released.
// Move it into the object that lives as long as the connection. It points
// at its limiter, which must outlive it (the App owns the AccessPolicy for
// the server's whole life; connections end before it).
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& other) noexcept
      : limiter_(std::exchange(other.limiter_, nullptr)), key_(other.key_) {}
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { release(); }

  void release() noexcept;
  bool held() const noexcept { return limiter_ != nullptr; }

 private:
  friend class ConnectionLimiter;
  ConnectionSlot(ConnectionLimiter* limiter, const IpAddress& key) noexcept : limiter_(limiter), key_(key) {}
  ConnectionLimiter* limiter_ = nullptr;
  IpAddress key_;
};

// Open connections per client address, for the whole process.
//
// One map shared by every loop, behind a mutex, rather than one map per
// loop with max/threads each: SO_REUSEPORT spreads one address's
// connections over the loops by a hash of the 4-tuple, not evenly, so a
// per-loop share would refuse a client while other loops have room for it
// (and round max/threads down to nothing for small limits). acquire and
// release happen once per connection, never per message, so the lock is
// taken twice in a connection's life. Entries are erased at zero: the map
// holds at most one entry per open connection.
//
// IPv4 addresses are counted whole; IPv6 ones per network of
// `ipv6_prefix` bits (see AccessOptions::ipv6_prefix_per_ip).
class ConnectionLimiter {
 public:
  ConnectionLimiter(size_t max_per_ip, unsigned ipv6_prefix) noexcept;
  ConnectionLimiter(const ConnectionLimiter&) = delete;
  ConnectionLimiter& operator=(const ConnectionLimiter&) = delete;

  // Counts one more connection from `address`; false (and nothing counted)
  // when it already holds max_per_ip. With max_per_ip 0 always true.
  bool try_acquire(const IpAddress& address);
  // Undoes one try_acquire that returned true.
  void release(const IpAddress& address) noexcept;
  // try_acquire as an RAII slot; nullopt at the limit.
  std::optional<ConnectionSlot> acquire(const IpAddress& address);

  size_t max_per_ip() const noexcept { return max_; }
  size_t count(const IpAddress& address) const;  // for tests and stats
  size_t tracked() const;                        // addresses with a connection

 private:
  friend class ConnectionSlot;
  IpAddress key(const IpAddress& address) const noexcept;
  void release_key(const IpAddress& key) noexcept;

  struct Hash {
    size_t operator()(const IpAddress& a) const noexcept;
  };
  size_t max_;
  unsigned ipv6_prefix_;
  mutable std::mutex mu_;
  std::unordered_map<IpAddress, size_t, Hash> counts_;
};

// ------------------------------------------------------------ the policy

// Why a request was refused: one value per distinct reason, one table for
// its status and fixed text, as in the proto errors.
enum class AccessError : uint8_t {
  none,
  blocked_address,       // 403: the client address is in the blocklist
  origin_not_allowed,    // 403
  null_origin,           // 403: Origin "null" and the list does not allow it
  missing_origin,        // 403: no Origin and allow_missing_origin is false
  malformed_origin,      // 403: not one serialized origin
  too_many_connections,  // 429: max_connections_per_ip reached (RFC 6585 §4)
};

int http_status_for(AccessError e) noexcept;
const char* describe(AccessError e) noexcept;
AccessError access_error_for(OriginVerdict v) noexcept;

}  // namespace windlass::detail
