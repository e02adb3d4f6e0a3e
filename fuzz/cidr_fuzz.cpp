// libFuzzer target for access control (src/http/access_control.cpp): IP
// addresses, CIDR networks, IpSet, the X-Forwarded-For walk and the Origin
// allow-list. The input is read as lines; each line is tried as an address,
// a network, a header entry and an origin, and all lines together as a
// rule list, an X-Forwarded-For value and an allow-list.
//
// Properties:
//   - whatever parses prints as text that parses back to the same value;
//   - a network contains its first and last address (unless an IPv6
//     network's last address is IPv4-mapped: IPv6 rules never match IPv4);
//   - IpSet (sorted, merged ranges, bisection) agrees with a linear scan
//     over its networks, at the edges of every network and just past them;
//   - resolve_client_ip agrees with a plain reference walk, never reads the
//     headers of an untrusted peer, and points `unparsed` into the headers;
//   - every compiled, non-wildcard origin entry allows itself.
//
// windlass_proto, the only library a fuzz target links, does not hold
// src/http, so this file compiles access_control.cpp (pure) itself.
#include "http/access_control.cpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace windlass::detail;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Lines are capped so the linear-scan reference stays cheap.
constexpr size_t kMaxLines = 128;

std::vector<std::string_view> split_lines(std::string_view input) {
  std::vector<std::string_view> out;
  while (out.size() < kMaxLines) {
    const size_t nl = input.find('\n');
    out.push_back(input.substr(0, nl));
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
  return out;
}

void check_address(std::string_view line) {
  if (auto a = parse_ip(line)) {
    const std::string text = to_string(*a);
    auto again = parse_ip(text);
    check(again && *again == *a && to_string(*again) == text);
    // A header entry may be anything parse_ip takes, and more.
    auto forwarded = parse_forwarded_address(line);
    check(forwarded && *forwarded == *a);
  }
  if (auto f = parse_forwarded_address(line)) {
    auto again = parse_ip(to_string(*f));
    check(again && *again == *f);
  }
}

void check_network(std::string_view line, std::vector<IpNetwork>& out) {
  std::string error;
  auto n = parse_network(line, &error);
  if (!n) {
    check(!error.empty());
    return;
  }
  check(n->prefix <= 128);
  check(n->contains(n->base));
  // An IPv6 network as wide as ::/80 ends inside ::ffff:0:0/96, the
  // IPv4-mapped space, which only IPv4 rules match.
  check(n->contains(n->last()) == (n->last().is_v4() == n->is_v4()));
  check(n->is_v4() == n->base.is_v4());
  auto again = parse_network(to_string(*n));
  check(again && *again == *n);
  out.push_back(*n);
}

IpAddress step(IpAddress a, bool up) {
  for (size_t k = 16; k-- > 0;) {
    if (up ? ++a.bytes[k] != 0 : a.bytes[k]-- != 0) break;
  }
  return a;
}

void check_set(const std::vector<IpNetwork>& networks, const std::vector<IpAddress>& extra) {
  IpSet set(networks);
  check(set.range_count() <= networks.size());
  auto naive = [&](const IpAddress& a) {
    for (const auto& n : networks) {
      if (n.contains(a)) return true;
    }
    return false;
  };
  for (const auto& n : networks) {
    for (const IpAddress& a : {n.base, n.last(), step(n.base, false), step(n.last(), true)}) {
      check(set.contains(a) == naive(a));
    }
  }
  for (const auto& a : extra) check(set.contains(a) == naive(a));
}

// The walk, written the plain way: split, then loop from the right.
ClientIp reference_resolve(const IpAddress& peer, std::string_view xff, std::string_view xri,
                           const IpSet& trusted) {
  ClientIp r{peer, ClientIpSource::peer, {}};
  if (!trusted.contains(peer)) return r;
  std::vector<std::string_view> entries;
  size_t start = 0;
  while (true) {
    const size_t comma = xff.find(',', start);
    const std::string_view e =
        trim(xff.substr(start, comma == std::string_view::npos ? xff.npos : comma - start));
    if (!e.empty()) entries.push_back(e);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  for (size_t i = entries.size(); i-- > 0;) {
    auto a = parse_forwarded_address(entries[i]);
    if (!a) {
      r.unparsed = entries[i];
      return r;
    }
    r.address = *a;
    r.source = ClientIpSource::forwarded_for;
    if (!trusted.contains(*a)) return r;
  }
  if (!entries.empty()) return r;
  const std::string_view real = trim(xri);
  if (real.empty()) return r;
  if (auto a = parse_forwarded_address(real)) {
    r.address = *a;
    r.source = ClientIpSource::real_ip;
  } else {
    r.unparsed = real;
  }
  return r;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_resolve(std::string_view xff, std::string_view xri, const std::vector<IpNetwork>& networks,
                   const std::vector<IpAddress>& addresses) {
  IpSet trusted(networks);
  std::vector<IpAddress> peers = addresses;
  if (!networks.empty()) peers.push_back(networks.front().base);
  peers.push_back(*parse_ip("127.0.0.1"));
  if (peers.size() > 8) peers.resize(8);
  for (const IpAddress& peer : peers) {
    const ClientIp got = resolve_client_ip(peer, xff, xri, trusted);
    const ClientIp want = reference_resolve(peer, xff, xri, trusted);
    check(got.address == want.address && got.source == want.source && got.unparsed == want.unparsed);
    if (!trusted.contains(peer)) check(got.address == peer && got.source == ClientIpSource::peer);
    if (!got.unparsed.empty()) check(inside(got.unparsed, xff) || inside(got.unparsed, xri));
  }
}

void check_origins(const std::vector<std::string_view>& lines) {
  std::vector<std::string> allowed(lines.begin(), lines.end());
  std::string error;
  auto policy = OriginPolicy::compile(allowed, false, error);
  auto open = OriginPolicy::compile({}, false, error);
  check(open && !open->enabled());
  for (std::string_view line : lines) {
    check(open->check(line) == OriginVerdict::allowed);
    if (policy) {
      const OriginVerdict v = policy->check(line);
      OriginParts parts;
      if (v == OriginVerdict::allowed && line != "null") check(split_origin(line, false, parts) == nullptr);
    }
  }
  if (!policy) {
    check(!error.empty());
    return;
  }
  check(policy->check(std::nullopt) == (policy->enabled() ? OriginVerdict::missing : OriginVerdict::allowed));
  for (std::string_view line : lines) {
    const std::string_view entry = trim(line);
    if (entry == "null") {
      check(policy->check(entry) == OriginVerdict::allowed);
      continue;
    }
    OriginParts parts;
    if (split_origin(entry, true, parts) == nullptr && !parts.wildcard) {
      check(policy->check(entry) == OriginVerdict::allowed);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> lines = split_lines(input);
  std::vector<IpNetwork> networks;
  std::vector<IpAddress> addresses;
  for (std::string_view line : lines) {
    check_address(line);
    check_network(line, networks);
    if (auto a = parse_forwarded_address(line)) addresses.push_back(*a);
  }
  check_set(networks, addresses);
  // The lines joined as one X-Forwarded-For, the raw input as one (its
  // newlines are just bytes there), and none at all; the last line is
  // X-Real-IP.
  std::string joined(input);
  for (char& c : joined) c = c == '\n' ? ',' : c;
  check_resolve(joined, lines.back(), networks, addresses);
  check_resolve(input, lines.back(), networks, addresses);
  check_resolve({}, lines.back(), networks, addresses);
  check_origins(lines);
  return 0;
}
