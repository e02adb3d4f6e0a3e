#include "http/access_control.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace windlass::detail {

namespace {

constexpr std::string_view kSpace = " \t";

std::string_view trim(std::string_view s) noexcept {
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool iends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// Config text echoed in an error message: quoted, control and non-ASCII
// bytes escaped, long entries cut, so the message is one readable line.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  out += '"';
  return out;
}

// A decimal number of at most `max_digits` digits, nothing else.
std::optional<uint32_t> parse_decimal(std::string_view s, size_t max_digits) noexcept {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

std::optional<uint32_t> parse_port(std::string_view s) noexcept {
  auto p = parse_decimal(s, 5);
  if (!p || *p > 65535) return std::nullopt;
  return p;
}

uint32_t v4_value(const IpAddress& a) noexcept {
  return (uint32_t{a.bytes[12]} << 24) | (uint32_t{a.bytes[13]} << 16) | (uint32_t{a.bytes[14]} << 8) |
         uint32_t{a.bytes[15]};
}

uint64_t half(const IpAddress& a, size_t from) noexcept {
  uint64_t v = 0;
  for (size_t i = from; i < from + 8; ++i) v = (v << 8) | a.bytes[i];
  return v;
}

// Sets the bits after `prefix` to `one` (host part all ones) or zero.
IpAddress with_host_bits(IpAddress a, unsigned prefix, bool one) noexcept {
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit + 8 <= prefix) continue;
    const unsigned keep = prefix > first_bit ? prefix - first_bit : 0;  // leading bits of this byte kept
    const auto mask = static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
    a.bytes[i] = static_cast<uint8_t>(one ? (a.bytes[i] | ~mask) : (a.bytes[i] & mask));
  }
  return a;
}

// A v6 address with an optional zone index ("fe80::1%eth0"): the zone
// names an interface of the host that wrote it and means nothing here.
std::optional<IpAddress> parse_v6_with_zone(std::string_view s) noexcept {
  const size_t pct = s.find('%');
  if (pct != std::string_view::npos) {
    if (pct + 1 == s.size()) return std::nullopt;  // "%" with no zone
    s = s.substr(0, pct);
  }
  if (s.find(':') == std::string_view::npos) return std::nullopt;
  return parse_ip(s);
}

}  // namespace

// ------------------------------------------------------------ addresses

bool IpAddress::is_v4() const noexcept {
  for (size_t i = 0; i < 10; ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

std::optional<IpAddress> parse_ip(std::string_view text) noexcept {
  char buf[INET6_ADDRSTRLEN];
  // inet_pton reads a C string: refuse what it would silently cut short.
  if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    // glibc's inet_pton takes exactly four decimal octets and refuses
    // leading zeros, where inet_aton would read "010" as octal 8 and
    // "10.1" as 10.0.0.1: one address, one spelling.
    if (::inet_pton(AF_INET, buf, &a.bytes[12]) != 1) return std::nullopt;
    a.bytes[10] = a.bytes[11] = 0xff;
  } else if (::inet_pton(AF_INET6, buf, a.bytes.data()) != 1) {
    return std::nullopt;
  }
  return a;
}

std::string to_string(const IpAddress& address) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (address.is_v4()) {
    ::inet_ntop(AF_INET, &address.bytes[12], buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, address.bytes.data(), buf, sizeof buf);
  }
  return buf;
}

bool IpNetwork::is_v4() const noexcept {
  return prefix >= 96 && base.is_v4();
}

bool IpNetwork::contains(const IpAddress& address) const noexcept {
  if (address.is_v4() != is_v4()) return false;
  return with_host_bits(address, prefix, false) == base;
}

IpAddress IpNetwork::last() const noexcept {
  return with_host_bits(base, prefix, true);
}

std::optional<IpNetwork> parse_network(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<IpNetwork> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  text = trim(text);
  if (text.empty()) return fail("empty entry");
  const size_t slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  if (addr_text.find('%') != std::string_view::npos) {
    // A zone names an interface of one host; a rule applies to addresses.
    return fail("zone index not allowed: " + std::string(addr_text));
  }
  if (addr_text.find('[') != std::string_view::npos || addr_text.find(']') != std::string_view::npos) {
    return fail("brackets not allowed: write the address bare, as in 2001:db8::1");
  }
  const bool v4_text = addr_text.find(':') == std::string_view::npos;
  auto addr = parse_ip(addr_text);
  if (!addr) {
    if (v4_text) {
      return fail("not an IPv4 address: four decimal octets 0-255 without leading zeros");
    }
    if (std::count(addr_text.begin(), addr_text.end(), ':') == 1) {
      return fail("not an IP address (a port is not allowed in a rule)");
    }
    return fail("not an IPv6 address");
  }
  const unsigned max_bits = v4_text ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view prefix_text = text.substr(slash + 1);
    if (prefix_text.empty()) return fail("missing prefix length after '/'");
    auto n = parse_decimal(prefix_text, 3);
    if (!n) return fail("prefix length " + quoted(prefix_text) + " is not a number of bits");
    if (*n > max_bits) {
      return fail("prefix length " + std::to_string(*n) + " out of range for " + (v4_text ? "IPv4" : "IPv6") +
                  " (0-" + std::to_string(max_bits) + ")");
    }
    bits = *n;
  }
  IpNetwork net;
  net.prefix = static_cast<uint8_t>(v4_text ? 96 + bits : bits);
  net.base = with_host_bits(*addr, net.prefix, false);
  if (!(net.base == *addr)) {
    IpNetwork single{*addr, 128};
    return fail("host bits set: " + std::string(text) + " is inside " + to_string(net) + "; write that, or " +
                to_string(single));
  }
  return net;
}

std::string to_string(const IpNetwork& network) {
  if (network.is_v4()) return to_string(network.base) + "/" + std::to_string(network.prefix - 96);
  char buf[INET6_ADDRSTRLEN] = {0};
  ::inet_ntop(AF_INET6, network.base.bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(network.prefix);
}

// ------------------------------------------------------------ IpSet

IpSet::IpSet(std::span<const IpNetwork> networks) {
  for (const IpNetwork& n : networks) {
    const unsigned prefix = std::min<unsigned>(n.prefix, 128);
    const IpAddress first = with_host_bits(n.base, prefix, false);
    const IpAddress last = with_host_bits(n.base, prefix, true);
    if (n.is_v4()) {
      v4_.emplace_back(v4_value(first), v4_value(last));
    } else {
      v6_.emplace_back(U128{half(first, 0), half(first, 8)}, U128{half(last, 0), half(last, 8)});
    }
  }
  // Sorted by first address, then overlapping or adjacent ranges merged,
  // so a lookup is one bisection and at most one range to compare.
  auto merge = [](auto& ranges, auto next) {
    std::sort(ranges.begin(), ranges.end());
    size_t out = 0;
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (out > 0) {
        auto& prev = ranges[out - 1];
        // prev.second + 1 would overflow at the top of the space: compare with it first.
        if (ranges[i].first <= prev.second || ranges[i].first == next(prev.second)) {
          prev.second = std::max(prev.second, ranges[i].second);
          continue;
        }
      }
      ranges[out++] = ranges[i];
    }
    ranges.resize(out);
  };
  merge(v4_, [](uint32_t v) { return v + 1; });  // wraps to 0 only at the top, where nothing follows
  merge(v6_, [](U128 v) {
    v.lo += 1;
    if (v.lo == 0) v.hi += 1;
    return v;
  });
}

std::optional<IpSet> IpSet::compile(std::span<const std::string> rules, std::string& error) {
  std::vector<IpNetwork> networks;
  networks.reserve(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    std::string why;
    auto n = parse_network(rules[i], &why);
    if (!n) {
      error = "[" + std::to_string(i) + "] " + quoted(rules[i]) + ": " + why;
      return std::nullopt;
    }
    networks.push_back(*n);
  }
  return IpSet(networks);
}

bool IpSet::contains(const IpAddress& address) const noexcept {
  auto lookup = [](const auto& ranges, auto key) {
    // The last range starting at or before key is the only candidate.
    auto it = std::upper_bound(ranges.begin(), ranges.end(), key,
                               [](const auto& k, const auto& range) { return k < range.first; });
    return it != ranges.begin() && key <= std::prev(it)->second;
  };
  if (address.is_v4()) return lookup(v4_, v4_value(address));
  return lookup(v6_, U128{half(address, 0), half(address, 8)});
}

// ------------------------------------------------------------ client address

std::optional<IpAddress> parse_forwarded_address(std::string_view text) noexcept {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (text.front() == '[') {
    // "[v6]" or "[v6]:port" (RFC 3986 §3.2.2 IP-literal), as written by
    // proxies that append the peer with its port.
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !parse_port(rest.substr(1)))) return std::nullopt;
    return parse_v6_with_zone(text.substr(1, close - 1));
  }
  const size_t colons = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
  if (colons == 0) return parse_ip(text);
  if (colons == 1) {
    // "192.0.2.7:5678": IPv4 with the client's port, as some load
    // balancers (Azure Application Gateway, IIS ARR) write it. A bare IPv6
    // address always has at least two colons.
    const size_t colon = text.find(':');
    if (!parse_port(text.substr(colon + 1))) return std::nullopt;
    return parse_ip(text.substr(0, colon));
  }
  // A bare IPv6 address. "2001:db8::1:80" cannot be told from an address
  // with a port, so it is read as the address it spells (RFC 3986 wants
  // brackets around an IPv6 address followed by a port).
  return parse_v6_with_zone(text);
}

ClientIp resolve_client_ip(const IpAddress& peer, std::string_view x_forwarded_for,
                           std::string_view x_real_ip, const IpSet& trusted_proxies) noexcept {
  ClientIp result{peer, ClientIpSource::peer, {}};
  // Headers from an untrusted peer are the client's own words. RFC 7239
  // §8.1: header fields like these can be forged by the client, so only
  // values added by known proxies carry any weight.
  if (trusted_proxies.empty() || !trusted_proxies.contains(peer)) return result;

  bool any_entry = false;
  size_t end = x_forwarded_for.size();
  while (true) {
    const size_t comma = end == 0 ? std::string_view::npos : x_forwarded_for.rfind(',', end - 1);
    const size_t start = comma == std::string_view::npos ? 0 : comma + 1;
    const std::string_view entry = trim(x_forwarded_for.substr(start, end - start));
    if (!entry.empty()) {  // RFC 9110 §5.6.1: empty list elements do not count
      any_entry = true;
      auto address = parse_forwarded_address(entry);
      if (!address) {
        // Written by the trusted hop in `result`, so not a forgery; but the
        // hop before it is unknown, and everything to the left is that
        // hop's word. Stop at the nearest address we can vouch for.
        result.unparsed = entry;
        return result;
      }
      result.address = *address;
      result.source = ClientIpSource::forwarded_for;
      if (!trusted_proxies.contains(*address)) return result;
    }
    if (comma == std::string_view::npos) break;
    end = comma;
  }
  // Every entry was a trusted proxy: the left-most is where the request
  // began (a health check from inside, say), as nginx decides.
  if (any_entry) return result;

  // No X-Forwarded-For: X-Real-IP, which a proxy sets (not appends) to its
  // own peer, e.g. nginx's `proxy_set_header X-Real-IP $remote_addr`.
  const std::string_view real = trim(x_real_ip);
  if (real.empty()) return result;
  if (auto address = parse_forwarded_address(real)) {
    result.address = *address;
    result.source = ClientIpSource::real_ip;
  } else {
    result.unparsed = real;
  }
  return result;
}

// ------------------------------------------------------------ origins

namespace {

// RFC 6454 §6.2: serialized origin = scheme "://" host [ ":" port ], with
// the port omitted when it is the scheme's default (§6.1 step 5).
struct OriginParts {
  std::string_view scheme;
  std::string_view host;  // IPv6 literals with their brackets
  int32_t port = -1;      // -1: none, or the default for the scheme
  bool wildcard = false;  // host began with "*."
  bool ipv6 = false;
  IpAddress ip;
};

int32_t default_port(std::string_view scheme) noexcept {
  // RFC 7230 §2.7.1-2 (http, https) and RFC 6455 §3 (ws, wss).
  if (iequals(scheme, "http") || iequals(scheme, "ws")) return 80;
  if (iequals(scheme, "https") || iequals(scheme, "wss")) return 443;
  return -1;
}

// A registered name, label by label: letters, digits, '-' and '_' (which
// real hosts use, though DNS hostnames should not), no empty label except
// a final one (the root, "example.com.").
bool valid_reg_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > 253 + 1) return false;
  size_t label = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return true;
}

// nullptr on success, else why `s` is not an origin.
const char* split_origin(std::string_view s, bool allow_wildcard, OriginParts& out) noexcept {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return "non-ASCII: write the host in its punycode (xn--) form, as browsers send it";
    }
  }
  const size_t sep = s.find("://");
  if (sep == std::string_view::npos) return "not scheme://host[:port]";
  out.scheme = s.substr(0, sep);
  // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  if (out.scheme.empty() || !is_alpha(out.scheme.front())) return "bad scheme";
  for (char c : out.scheme) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return "bad scheme";
  }
  std::string_view rest = s.substr(sep + 3);
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    return "an origin has no path, query or fragment (not even a trailing '/'; RFC 6454 §6.2)";
  }
  if (rest.find('@') != std::string_view::npos) return "an origin has no user info";
  std::string_view port_text;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return "unclosed '[' in host";
    out.host = rest.substr(0, close + 1);
    auto ip = parse_ip(rest.substr(1, close - 1));
    if (!ip || rest.substr(1, close - 1).find(':') == std::string_view::npos) {
      return "bad IPv6 literal in host";
    }
    out.ipv6 = true;
    out.ip = *ip;
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "junk after ']'";
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = rest.find(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = rest.substr(colon + 1);
    }
    std::string_view name = out.host;
    if (allow_wildcard && name.starts_with("*.")) {
      out.wildcard = true;
      name.remove_prefix(2);
    }
    if (name.find('*') != std::string_view::npos) {
      return allow_wildcard
                 ? "a wildcard is only allowed as the whole left-most label, as in https://*.example.com"
                 : "bad host";
    }
    if (name.empty()) return out.wildcard ? "a wildcard needs a domain after it" : "empty host";
    if (!valid_reg_name(name)) return "bad host";
  }
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return "bad port (1 to 5 digits, at most 65535)";
    out.port = static_cast<int32_t>(*port);
    if (out.port == default_port(out.scheme)) out.port = -1;
  }
  return nullptr;
}

}  // namespace

std::optional<OriginPolicy> OriginPolicy::compile(std::span<const std::string> allowed, bool allow_missing,
                                                  std::string& error) {
  OriginPolicy p;
  p.allow_missing_ = allow_missing;
  for (size_t i = 0; i < allowed.size(); ++i) {
    const std::string_view text = trim(allowed[i]);
    auto fail = [&](std::string_view why) {
      error = "[" + std::to_string(i) + "] " + quoted(allowed[i]) + ": " + std::string(why);
      return std::nullopt;
    };
    // RFC 6454 §7.1: the opaque origin is serialized as the lowercase
    // literal "null" (sandboxed iframes, file:// pages, some redirects).
    // Denied unless listed: every such page shares that one name.
    if (text == "null") {
      p.allow_null_ = true;
      continue;
    }
    if (text == "*")
      return fail("\"*\" would allow every origin; leave allowed_origins empty to turn the check off");
    OriginParts parts;
    if (const char* why = split_origin(text, true, parts)) return fail(why);
    Entry e;
    e.scheme = lowered(parts.scheme);
    e.host = lowered(parts.wildcard ? parts.host.substr(1) : parts.host);  // "*.a.com" -> ".a.com"
    e.port = parts.port;
    e.wildcard = parts.wildcard;
    e.ipv6 = parts.ipv6;
    e.ip = parts.ip;
    p.entries_.push_back(std::move(e));
  }
  return p;
}

OriginVerdict OriginPolicy::check(std::optional<std::string_view> origin) const noexcept {
  if (!enabled()) return OriginVerdict::allowed;
  // RFC 6455 §4.1 (client requirement 8): a browser always sends Origin;
  // a request without it is from some other kind of client.
  if (!origin) return allow_missing_ ? OriginVerdict::allowed : OriginVerdict::missing;
  if (*origin == "null") return allow_null_ ? OriginVerdict::allowed : OriginVerdict::null_origin;
  // RFC 6454 §7.1 also allows a space-separated list of origins; RFC 6455
  // §4.1 sends exactly one, the page's. A list (or two Origin lines joined
  // with ',') fails split_origin and is refused as malformed.
  OriginParts parts;
  if (split_origin(*origin, false, parts) != nullptr) return OriginVerdict::malformed;
  for (const Entry& e : entries_) {
    if (e.port != parts.port || !iequals(e.scheme, parts.scheme)) continue;
    if (e.ipv6) {
      if (parts.ipv6 && e.ip == parts.ip) return OriginVerdict::allowed;
    } else if (e.wildcard) {
      // ".example.com" matches "a.example.com" and "a.b.example.com", not
      // "example.com" or "badexample.com".
      if (!parts.ipv6 && parts.host.size() > e.host.size() && iends_with(parts.host, e.host)) {
        return OriginVerdict::allowed;
      }
    } else if (iequals(e.host, parts.host)) {
      return OriginVerdict::allowed;
    }
  }
  return OriginVerdict::not_listed;
}

// ------------------------------------------------------------ connection counts

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    key_ = other.key_;
  }
  return *this;
}

void ConnectionSlot::release() noexcept {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->release_key(key_);
}

ConnectionLimiter::ConnectionLimiter(size_t max_per_ip, unsigned ipv6_prefix) noexcept
    : max_(max_per_ip), ipv6_prefix_(std::min(ipv6_prefix, 128u)) {}

size_t ConnectionLimiter::Hash::operator()(const IpAddress& a) const noexcept {
  // splitmix64's finalizer over both halves: keys are spread even when
  // they differ only in a few bits (one /64 after another).
  uint64_t x = half(a, 0) ^ (half(a, 8) * 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return static_cast<size_t>(x ^ (x >> 31));
}

IpAddress ConnectionLimiter::key(const IpAddress& address) const noexcept {
  return address.is_v4() ? address : with_host_bits(address, ipv6_prefix_, false);
}

bool ConnectionLimiter::try_acquire(const IpAddress& address) {
  if (max_ == 0) return true;
  const IpAddress k = key(address);
  std::lock_guard lock(mu_);
  auto [it, inserted] = counts_.try_emplace(k, 0);
  if (it->second >= max_) return false;
  ++it->second;
  return true;
}

void ConnectionLimiter::release(const IpAddress& address) noexcept {
  if (max_ == 0) return;
  release_key(key(address));
}

void ConnectionLimiter::release_key(const IpAddress& k) noexcept {
  std::lock_guard lock(mu_);
  auto it = counts_.find(k);
  if (it == counts_.end()) return;  // not acquired: nothing to undo
  if (--it->second == 0) counts_.erase(it);
}

std::optional<ConnectionSlot> ConnectionLimiter::acquire(const IpAddress& address) {
  if (max_ == 0) return ConnectionSlot();
  if (!try_acquire(address)) return std::nullopt;
  return ConnectionSlot(this, key(address));
}

size_t ConnectionLimiter::count(const IpAddress& address) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(key(address));
  return it == counts_.end() ? 0 : it->second;
}

size_t ConnectionLimiter::tracked() const {
  std::lock_guard lock(mu_);
  return counts_.size();
}

// ------------------------------------------------------------ the policy

int http_status_for(AccessError e) noexcept {
  switch (e) {
    case AccessError::none: return 200;
    case AccessError::blocked_address:
    case AccessError::origin_not_allowed:
    case AccessError::null_origin:
    case AccessError::missing_origin:
    case AccessError::malformed_origin: return 403;
    case AccessError::too_many_connections: return 429;  // RFC 6585 §4
  }
  return 403;
}

const char* describe(AccessError e) noexcept {
  switch (e) {
    case AccessError::none: return "allowed";
    case AccessError::blocked_address: return "client address is blocked";
    case AccessError::origin_not_allowed: return "origin not allowed";
    case AccessError::null_origin: return "opaque origin (null) not allowed";
    case AccessError::missing_origin: return "Origin header required";
    case AccessError::malformed_origin: return "malformed Origin header";
    case AccessError::too_many_connections: return "too many connections from this address";
  }
  return "refused";
}

AccessError access_error_for(OriginVerdict v) noexcept {
  switch (v) {
    case OriginVerdict::allowed: return AccessError::none;
    case OriginVerdict::not_listed: return AccessError::origin_not_allowed;
    case OriginVerdict::null_origin: return AccessError::null_origin;
    case OriginVerdict::missing: return AccessError::missing_origin;
    case OriginVerdict::malformed: return AccessError::malformed_origin;
  }
  return AccessError::malformed_origin;
}

}  // namespace windlass::detail
