// IP addresses and CIDR networks, the client address behind proxies, the
// Origin allow-list and per-address connection counts.
#include "http/access_control.hpp"

#include <stdexcept>

#include "windlass/app.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "windlass/access.hpp"

namespace windlass::detail {
namespace {

IpAddress ip(std::string_view text) {
  auto a = parse_ip(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

IpSet set(std::vector<std::string> rules) {
  std::string error;
  auto s = IpSet::compile(rules, error);
  EXPECT_TRUE(s.has_value()) << error;
  return s.value_or(IpSet{});
}

std::string network_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_network(text, &error).has_value()) << text;
  return error;
}

// ------------------------------------------------------------ addresses

TEST(ParseIp, accepts_what_inet_pton_accepts_and_shows_it_canonically) {
  const std::pair<const char*, const char*> cases[] = {
      {"192.0.2.7", "192.0.2.7"},
      {"0.0.0.0", "0.0.0.0"},
      {"255.255.255.255", "255.255.255.255"},
      {"::1", "::1"},
      {"::", "::"},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
      {"2001:db8::1", "2001:db8::1"},
      {"::ffff:1.2.3.4", "1.2.3.4"},  // IPv4-mapped: the IPv4 address
      {"::FFFF:102:304", "1.2.3.4"},
      {"::1.2.3.4", "::1.2.3.4"},  // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1): IPv6
      {"fe80::1", "fe80::1"},
  };
  for (auto [in, out] : cases) {
    auto a = parse_ip(in);
    ASSERT_TRUE(a.has_value()) << in;
    EXPECT_EQ(to_string(*a), out) << in;
  }
}

TEST(ParseIp, rejects_everything_else) {
  for (std::string_view bad : {"",
                               " 1.2.3.4",
                               "1.2.3.4 ",
                               "1.2.3",
                               "1.2.3.4.5",
                               "256.1.1.1",
                               "010.0.0.1",
                               "1.2.3.04",
                               "0x7f.0.0.1",
                               "1.2.3.4:80",
                               "[::1]",
                               "::1%lo",
                               "fe80::1%eth0",
                               "2001:db8::g",
                               "1:2:3:4:5:6:7:8:9",
                               ":::",
                               "localhost",
                               "1.2.3.4/32",
                               "-1.2.3.4",
                               "+1.2.3.4",
                               "::ffff:1.2.3.256"}) {
    EXPECT_FALSE(parse_ip(bad).has_value()) << bad;
  }
  EXPECT_FALSE(parse_ip(std::string_view("1.2.3.4\0junk", 12)).has_value());  // no silent cut at NUL
  EXPECT_FALSE(parse_ip(std::string(100, '1')).has_value());
}

TEST(ParseIp, treats_the_ipv4_mapped_form_as_the_same_address) {
  EXPECT_EQ(ip("1.2.3.4"), ip("::ffff:1.2.3.4"));
  EXPECT_TRUE(ip("::ffff:1.2.3.4").is_v4());
  EXPECT_FALSE(ip("::1.2.3.4").is_v4());
  EXPECT_FALSE(ip("::1").is_v4());
}

TEST(ParseNetwork, reads_cidr_and_single_addresses_of_both_families) {
  const std::pair<const char*, const char*> cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"192.168.1.7", "192.168.1.7/32"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"1.2.3.4/32", "1.2.3.4/32"},
      {"2001:db8::/32", "2001:db8::/32"},
      {"::1", "::1/128"},
      {"::/0", "::/0"},
      {"::ffff:1.2.3.0/120", "1.2.3.0/24"},  // an IPv4 rule written in mapped form
      {"::ffff:0:0/96", "0.0.0.0/0"},
      {"  10.1.0.0/16\t", "10.1.0.0/16"},
      {"10.0.0.0/008", "10.0.0.0/8"},
      {"2001:DB8::/32", "2001:db8::/32"},
  };
  for (auto [in, out] : cases) {
    std::string error;
    auto n = parse_network(in, &error);
    ASSERT_TRUE(n.has_value()) << in << ": " << error;
    EXPECT_EQ(to_string(*n), out) << in;
    EXPECT_EQ(parse_network(to_string(*n)), n) << in;
  }
}

TEST(ParseNetwork, says_precisely_what_is_wrong) {
  EXPECT_EQ(network_error("10.0.0.0/33"), "prefix length 33 out of range for IPv4 (0-32)");
  EXPECT_EQ(network_error("2001:db8::/129"), "prefix length 129 out of range for IPv6 (0-128)");
  EXPECT_EQ(network_error("10.0.0.1/8"),
            "host bits set: 10.0.0.1/8 is inside 10.0.0.0/8; write that, or 10.0.0.1/32");
  EXPECT_EQ(network_error("192.168.1.7/16"),
            "host bits set: 192.168.1.7/16 is inside 192.168.0.0/16; write that, or 192.168.1.7/32");
  EXPECT_EQ(network_error("2001:db8::1/32"),
            "host bits set: 2001:db8::1/32 is inside 2001:db8::/32; write that, or 2001:db8::1/128");
  EXPECT_EQ(network_error("10.0.0.0/"), "missing prefix length after '/'");
  EXPECT_EQ(network_error("10.0.0.0/x"), "prefix length \"x\" is not a number of bits");
  EXPECT_EQ(network_error("10.0.0.0/-1"), "prefix length \"-1\" is not a number of bits");
  EXPECT_EQ(network_error("10.0.0.0/8/8"), "prefix length \"8/8\" is not a number of bits");
  EXPECT_EQ(network_error("10.0.0.0/1000"), "prefix length \"1000\" is not a number of bits");
  EXPECT_EQ(network_error("300.0.0.0/8"),
            "not an IPv4 address: four decimal octets 0-255 without leading zeros");
  EXPECT_EQ(network_error("010.0.0.0/8"),
            "not an IPv4 address: four decimal octets 0-255 without leading zeros");
  EXPECT_EQ(network_error("example.com"),
            "not an IPv4 address: four decimal octets 0-255 without leading zeros");
  EXPECT_EQ(network_error("1.2.3.4:80"), "not an IP address (a port is not allowed in a rule)");
  EXPECT_EQ(network_error("2001:db8::zz/32"), "not an IPv6 address");
  EXPECT_EQ(network_error("fe80::1%eth0"), "zone index not allowed: fe80::1%eth0");
  EXPECT_EQ(network_error("[::1]"), "brackets not allowed: write the address bare, as in 2001:db8::1");
  EXPECT_EQ(network_error(""), "empty entry");
  EXPECT_EQ(network_error("   "), "empty entry");
  // Mapped form with a prefix below 96 reaches into the IPv6 bits: host bits.
  EXPECT_EQ(network_error("::ffff:1.2.3.0/64").rfind("host bits set", 0), 0u);
}

TEST(IpNetwork, keeps_ipv4_rules_and_ipv6_rules_apart) {
  auto v4all = *parse_network("0.0.0.0/0");
  auto v6all = *parse_network("::/0");
  EXPECT_TRUE(v4all.contains(ip("1.2.3.4")));
  EXPECT_TRUE(v4all.contains(ip("::ffff:1.2.3.4")));
  EXPECT_FALSE(v4all.contains(ip("::1")));
  // "::/0" means IPv6 clients: it does not swallow the IPv4 clients that a
  // dual-stack socket reports as ::ffff:a.b.c.d.
  EXPECT_TRUE(v6all.contains(ip("2001:db8::1")));
  EXPECT_TRUE(v6all.contains(ip("::1.2.3.4")));
  EXPECT_FALSE(v6all.contains(ip("1.2.3.4")));
  auto rule = *parse_network("1.2.3.0/24");
  EXPECT_TRUE(rule.contains(ip("::ffff:1.2.3.4")));
  EXPECT_TRUE(rule.contains(ip("1.2.3.255")));
  EXPECT_FALSE(rule.contains(ip("1.2.4.0")));
  EXPECT_FALSE(rule.contains(ip("::1.2.3.4")));  // IPv4-compatible is not IPv4
  EXPECT_EQ(to_string(rule.last()), "1.2.3.255");
  EXPECT_EQ(to_string(parse_network("2001:db8::/126")->last()), "2001:db8::3");
}

// ------------------------------------------------------------ IpSet

TEST(IpSet, matches_by_range_in_both_families) {
  IpSet s = set({"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"});
  for (auto in : {"10.0.0.0", "10.255.255.255", "10.1.2.3", "192.168.1.7", "::ffff:10.9.9.9",
                  "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "::1"}) {
    EXPECT_TRUE(s.contains(ip(in))) << in;
  }
  for (auto in : {"9.255.255.255", "11.0.0.0", "192.168.1.6", "192.168.1.8",
                  "2001:db9::", "2001:db7:ffff::", "::2", "::", "1.0.0.127"}) {
    EXPECT_FALSE(s.contains(ip(in))) << in;
  }
}

TEST(IpSet, merges_overlapping_and_adjacent_networks) {
  IpSet s = set({"10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "2001:db8::/33",
                 "2001:db8:8000::/33"});
  EXPECT_EQ(s.range_count(), 2u);  // 10.0.0.0-11.255.255.255 and 2001:db8::/32
  EXPECT_TRUE(s.contains(ip("11.255.255.255")));
  EXPECT_FALSE(s.contains(ip("12.0.0.0")));
}

TEST(IpSet, handles_the_edges_of_the_address_space) {
  IpSet s = set({"255.255.255.255/32", "0.0.0.0/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "::/128",
                 "255.255.255.254/32"});
  EXPECT_TRUE(s.contains(ip("255.255.255.255")));
  EXPECT_TRUE(s.contains(ip("255.255.255.254")));
  EXPECT_TRUE(s.contains(ip("0.0.0.0")));
  EXPECT_TRUE(s.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(s.contains(ip("::")));
  EXPECT_FALSE(s.contains(ip("255.255.255.253")));
  EXPECT_FALSE(s.contains(ip("::1")));
  IpSet all = set({"0.0.0.0/0", "::/0"});
  EXPECT_EQ(all.range_count(), 2u);
  EXPECT_TRUE(all.contains(ip("1.2.3.4")));
  EXPECT_TRUE(all.contains(ip("2001:db8::1")));
  EXPECT_FALSE(IpSet{}.contains(ip("1.2.3.4")));
  EXPECT_TRUE(IpSet{}.empty());
}

// Random addresses crowded into a small part of each family, so that
// random networks overlap and nest.
IpAddress random_address(std::mt19937_64& rng, bool v4) {
  IpAddress a;
  for (auto& b : a.bytes) b = static_cast<uint8_t>(rng());
  if (v4) {
    for (size_t k = 0; k < 10; ++k) a.bytes[k] = 0;
    a.bytes[10] = a.bytes[11] = 0xff;
    a.bytes[12] = static_cast<uint8_t>(rng() % 4);
  } else {
    a.bytes[0] = 0x20;
    a.bytes[1] = static_cast<uint8_t>(rng() % 2);
  }
  return a;
}

IpAddress masked(IpAddress a, unsigned prefix) {
  for (unsigned bit = prefix; bit < 128; ++bit)
    a.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  return a;
}

TEST(IpSet, agrees_with_a_linear_scan_over_thousands_of_random_rules) {
  std::mt19937_64 rng(42);
  std::vector<IpNetwork> networks;
  for (int i = 0; i < 10000; ++i) {
    const bool v4 = i % 2 == 0;
    const unsigned prefix =
        v4 ? 96 + 8 + static_cast<unsigned>(rng() % 25) : 8 + static_cast<unsigned>(rng() % 121);
    IpNetwork n{masked(random_address(rng, v4), prefix), static_cast<uint8_t>(prefix)};
    // Every network survives the trip through its text form.
    ASSERT_EQ(parse_network(to_string(n)), n) << to_string(n);
    networks.push_back(n);
  }
  IpSet s(networks);
  EXPECT_LT(s.range_count(), networks.size());  // overlaps were merged
  auto naive = [&](const IpAddress& a) {
    for (auto& n : networks) {
      if (n.contains(a)) return true;
    }
    return false;
  };
  int hits = 0;
  for (int i = 0; i < 20000; ++i) {
    // Probe the edges of random networks, just past them, and random addresses.
    const IpNetwork& n = networks[rng() % networks.size()];
    IpAddress a;
    switch (i % 4) {
      case 0: a = n.base; break;
      case 1: a = n.last(); break;
      case 2:
        a = n.last();
        for (size_t k = 16; k-- > 0;) {
          if (++a.bytes[k] != 0) break;
        }
        break;
      default: a = random_address(rng, i % 8 == 3); break;
    }
    const bool expected = naive(a);
    hits += expected;
    ASSERT_EQ(s.contains(a), expected) << to_string(a);
  }
  EXPECT_GT(hits, 5000);
  EXPECT_LT(hits, 20000);
}

TEST(IpSet, compile_names_the_first_bad_rule_by_index) {
  std::vector<std::string> rules = {"10.0.0.0/8", "192.168.0.0/16", "1.2.3.4/33", "garbage"};
  std::string error;
  EXPECT_FALSE(IpSet::compile(rules, error).has_value());
  EXPECT_EQ(error, "[2] \"1.2.3.4/33\": prefix length 33 out of range for IPv4 (0-32)");
  rules = {"\x01\xff"};
  EXPECT_FALSE(IpSet::compile(rules, error).has_value());
  EXPECT_EQ(error.rfind("[0] \"\\x01\\xff\": ", 0), 0u) << error;  // control bytes escaped in the message
}

// ------------------------------------------------------------ client address

TEST(ParseForwardedAddress, accepts_addresses_with_ports_brackets_and_zones) {
  const std::pair<const char*, const char*> cases[] = {
      {"192.0.2.7", "192.0.2.7"},
      {" 192.0.2.7 ", "192.0.2.7"},
      {"192.0.2.7:5678", "192.0.2.7"},
      {"2001:db8::1", "2001:db8::1"},
      {"[2001:db8::1]", "2001:db8::1"},
      {"[2001:db8::1]:443", "2001:db8::1"},
      {"[::1]", "::1"},
      {"fe80::1%eth0", "fe80::1"},
      {"[fe80::1%25eth0]:80", "fe80::1"},
      {"::ffff:192.0.2.7", "192.0.2.7"},
      {"[::ffff:192.0.2.7]:1", "192.0.2.7"},
      {"2001:db8::1:80", "2001:db8::1:80"},  // no brackets: the address it spells
  };
  for (auto [in, out] : cases) {
    auto a = parse_forwarded_address(in);
    ASSERT_TRUE(a.has_value()) << in;
    EXPECT_EQ(to_string(*a), out) << in;
  }
}

TEST(ParseForwardedAddress, rejects_names_obfuscation_and_garbage) {
  for (std::string_view bad : {"",
                               "unknown",
                               "_hidden",
                               "_abc123",
                               "\"[2001:db8::1]\"",
                               "192.0.2.7:",
                               "192.0.2.7:65536",
                               "192.0.2.7:x",
                               "192.0.2.7:-1",
                               "[2001:db8::1",
                               "[2001:db8::1]x",
                               "[2001:db8::1]:",
                               "[192.0.2.7]",
                               "[192.0.2.7]:80",
                               "fe80::1%",
                               "for=192.0.2.7",
                               "192.0.2.7 192.0.2.8",
                               "example.com",
                               "1.2.3.4.5",
                               "[]",
                               "[::1]:99999",
                               "010.0.0.1"}) {
    EXPECT_FALSE(parse_forwarded_address(bad).has_value()) << bad;
  }
}

struct ResolveCase {
  const char* name;
  const char* peer;
  const char* xff;
  const char* real_ip;
  const char* expected;
  ClientIpSource source;
  const char* unparsed = "";
};

TEST(ResolveClientIp, follows_the_trusted_chain_from_the_right) {
  IpSet trusted = set({"10.0.0.0/8", "2001:db8:ffff::/48", "127.0.0.1"});
  using S = ClientIpSource;
  const ResolveCase cases[] = {
      {"untrusted peer: headers ignored", "203.0.113.9", "1.1.1.1", "2.2.2.2", "203.0.113.9", S::peer},
      {"untrusted peer spoofing a trusted address", "203.0.113.9", "10.0.0.1", "", "203.0.113.9", S::peer},
      {"untrusted peer, garbage", "203.0.113.9", "garbage, ,,", "x", "203.0.113.9", S::peer},
      {"trusted peer, no headers", "10.0.0.1", "", "", "10.0.0.1", S::peer},
      {"one proxy", "10.0.0.1", "198.51.100.4", "", "198.51.100.4", S::forwarded_for},
      {"two proxies", "10.0.0.1", "198.51.100.4, 10.0.0.2", "", "198.51.100.4", S::forwarded_for},
      {"client-forged entries left of the real client are ignored", "10.0.0.1",
       "6.6.6.6, 10.9.9.9, 198.51.100.4, 10.0.0.2", "", "198.51.100.4", S::forwarded_for},
      {"a forged trusted address left of the client does not help", "10.0.0.1", "10.0.0.5, 198.51.100.4", "",
       "198.51.100.4", S::forwarded_for},
      {"every entry trusted: the left-most", "10.0.0.1", "10.0.0.7, 127.0.0.1, 10.0.0.2", "", "10.0.0.7",
       S::forwarded_for},
      {"ipv6 chain", "2001:db8:ffff::1", "2001:db8:1::5, [2001:db8:ffff::2]:443", "", "2001:db8:1::5",
       S::forwarded_for},
      {"ipv4 with port", "10.0.0.1", "198.51.100.4:5678", "", "198.51.100.4", S::forwarded_for},
      {"mapped trusted proxy entry", "::ffff:10.0.0.1", "198.51.100.4, ::ffff:10.0.0.2", "", "198.51.100.4",
       S::forwarded_for},
      {"empty elements skipped", "10.0.0.1", " , 198.51.100.4 ,, 10.0.0.2 , ", "", "198.51.100.4",
       S::forwarded_for},
      {"multiple lines joined by the caller", "10.0.0.1", "6.6.6.6, 198.51.100.4,10.0.0.3", "",
       "198.51.100.4", S::forwarded_for},
      {"garbage written by the trusted proxy stops the walk", "10.0.0.1", "6.6.6.6, unknown", "", "10.0.0.1",
       S::peer, "unknown"},
      {"garbage behind a trusted hop: that hop is the client", "10.0.0.1", "6.6.6.6, _hidden, 10.0.0.2", "",
       "10.0.0.2", S::forwarded_for, "_hidden"},
      {"garbage left of the client is never read", "10.0.0.1", "%%%garbage, 198.51.100.4", "", "198.51.100.4",
       S::forwarded_for},
      {"zone index dropped", "10.0.0.1", "fe80::1%eth0", "", "fe80::1", S::forwarded_for},
      {"X-Real-IP when X-Forwarded-For is absent", "10.0.0.1", "", "198.51.100.4", "198.51.100.4",
       S::real_ip},
      {"X-Real-IP when X-Forwarded-For has no entries", "10.0.0.1", " , ", "198.51.100.4", "198.51.100.4",
       S::real_ip},
      {"X-Real-IP with a port", "10.0.0.1", "", "198.51.100.4:5678", "198.51.100.4", S::real_ip},
      {"X-Real-IP bracketed", "10.0.0.1", "", "[2001:db8::7]", "2001:db8::7", S::real_ip},
      {"X-Forwarded-For wins over X-Real-IP", "10.0.0.1", "198.51.100.4", "198.51.100.99", "198.51.100.4",
       S::forwarded_for},
      {"malformed X-Real-IP: the peer", "10.0.0.1", "", "not-an-ip", "10.0.0.1", S::peer, "not-an-ip"},
  };
  for (const auto& c : cases) {
    ClientIp r = resolve_client_ip(ip(c.peer), c.xff, c.real_ip, trusted);
    EXPECT_EQ(to_string(r.address), c.expected) << c.name;
    EXPECT_EQ(r.source, c.source) << c.name;
    EXPECT_EQ(r.unparsed, c.unparsed) << c.name;
  }
}

TEST(ResolveClientIp, trusts_nothing_without_trusted_proxies) {
  ClientIp r = resolve_client_ip(ip("127.0.0.1"), "1.1.1.1", "2.2.2.2", IpSet{});
  EXPECT_EQ(to_string(r.address), "127.0.0.1");
  EXPECT_EQ(r.source, ClientIpSource::peer);
}

TEST(ResolveClientIp, walks_a_thousand_entries) {
  IpSet trusted = set({"10.0.0.0/8"});
  std::string xff = "6.6.6.6, 198.51.100.4";
  for (int i = 0; i < 1000; ++i) xff += ", 10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250);
  ClientIp r = resolve_client_ip(ip("10.0.0.1"), xff, "", trusted);
  EXPECT_EQ(to_string(r.address), "198.51.100.4");
  // A thousand forged entries from the client are never even looked at.
  std::string forged;
  for (int i = 0; i < 1000; ++i) forged += "garbage" + std::to_string(i) + ", ";
  forged += "198.51.100.4";
  r = resolve_client_ip(ip("10.0.0.1"), forged, "", trusted);
  EXPECT_EQ(to_string(r.address), "198.51.100.4");
  EXPECT_TRUE(r.unparsed.empty());
}

TEST(ResolveClientIp, points_unparsed_into_the_header) {
  IpSet trusted = set({"10.0.0.0/8"});
  const std::string xff = "1.1.1.1,  bogus  ";
  ClientIp r = resolve_client_ip(ip("10.0.0.1"), xff, "", trusted);
  EXPECT_EQ(r.unparsed, "bogus");
  EXPECT_GE(r.unparsed.data(), xff.data());
  EXPECT_LE(r.unparsed.data() + r.unparsed.size(), xff.data() + xff.size());
}

// ------------------------------------------------------------ origins

OriginPolicy origins(std::vector<std::string> allowed, bool allow_missing = true) {
  std::string error;
  auto p = OriginPolicy::compile(allowed, allow_missing, error);
  EXPECT_TRUE(p.has_value()) << error;
  return p.value_or(OriginPolicy{});
}

std::string origin_error(std::string entry) {
  std::string error;
  std::vector<std::string> allowed = {"https://ok.example", std::move(entry)};
  EXPECT_FALSE(OriginPolicy::compile(allowed, true, error).has_value());
  return error;
}

TEST(OriginPolicy, compares_scheme_host_and_port_as_rfc_6454_does) {
  OriginPolicy p = origins({"https://example.com", "http://localhost:8080", "https://*.example.org",
                            "HTTPS://Upper.Example.NET:443", "http://[::1]:3000", "chrome-extension://abcdef",
                            "wss://sockets.example.com"});
  using V = OriginVerdict;
  const std::pair<const char*, V> cases[] = {
      {"https://example.com", V::allowed},
      {"HTTPS://EXAMPLE.COM", V::allowed},      // scheme and host are case-insensitive
      {"https://example.com:443", V::allowed},  // the default port, written
      {"http://example.com", V::not_listed},    // another scheme is another origin
      {"https://example.com:8443", V::not_listed},
      {"https://www.example.com", V::not_listed},
      {"https://example.com.evil.net", V::not_listed},
      {"https://evilexample.com", V::not_listed},
      {"http://localhost:8080", V::allowed},
      {"http://localhost", V::not_listed},
      {"http://localhost:80", V::not_listed},
      {"https://a.example.org", V::allowed},
      {"https://a.b.example.org", V::allowed},
      {"https://A.Example.ORG", V::allowed},
      {"https://example.org", V::not_listed},  // the wildcard does not cover the apex
      {"https://badexample.org", V::not_listed},
      {"http://a.example.org", V::not_listed},
      {"https://a.example.org:444", V::not_listed},
      {"https://upper.example.net", V::allowed},
      {"http://[::1]:3000", V::allowed},
      {"http://[0:0::1]:3000", V::allowed},  // the same IPv6 address
      {"http://[::2]:3000", V::not_listed},
      {"chrome-extension://abcdef", V::allowed},
      {"wss://sockets.example.com:443", V::allowed},
      {"https://sockets.example.com", V::not_listed},
      // Not one serialized origin.
      {"", V::malformed},
      {"https://example.com/", V::malformed},
      {"https://example.com/path", V::malformed},
      {"https://example.com https://example.org", V::malformed},  // an origin list
      {"https://example.com,https://example.com", V::malformed},  // two Origin lines joined
      {"https://user@example.com", V::malformed},
      {"https://example.com:", V::malformed},
      {"https://example.com:99999", V::malformed},
      {"https://*.example.org", V::malformed},  // wildcards belong in the list, not the request
      {"example.com", V::malformed},
      {"https://", V::malformed},
      {"https://exa mple.com", V::malformed},
      {"https://ex\xc3\xa4mple.com", V::malformed},
      {"1https://example.com", V::malformed},
      {"https://.example.org", V::malformed},
      {"https://a..example.org", V::malformed},
      {"NULL", V::malformed},  // RFC 6454 §7.1: the literal is lowercase
  };
  for (auto [origin, verdict] : cases) EXPECT_EQ(p.check(origin), verdict) << origin;
}

TEST(OriginPolicy, denies_the_null_origin_unless_listed) {
  EXPECT_EQ(origins({"https://example.com"}).check("null"), OriginVerdict::null_origin);
  EXPECT_EQ(origins({"https://example.com", "null"}).check("null"), OriginVerdict::allowed);
  OriginPolicy only_null = origins({"null"});
  EXPECT_TRUE(only_null.enabled());
  EXPECT_EQ(only_null.check("null"), OriginVerdict::allowed);
  EXPECT_EQ(only_null.check("https://example.com"), OriginVerdict::not_listed);
}

TEST(OriginPolicy, lets_non_browser_clients_in_unless_told_not_to) {
  EXPECT_EQ(origins({"https://example.com"}).check(std::nullopt), OriginVerdict::allowed);
  EXPECT_EQ(origins({"https://example.com"}, false).check(std::nullopt), OriginVerdict::missing);
}

TEST(OriginPolicy, checks_nothing_when_the_list_is_empty) {
  OriginPolicy p = origins({}, false);
  EXPECT_FALSE(p.enabled());
  EXPECT_EQ(p.check(std::nullopt), OriginVerdict::allowed);
  EXPECT_EQ(p.check("garbage"), OriginVerdict::allowed);
}

TEST(OriginPolicy, refuses_bad_entries_with_the_reason) {
  EXPECT_EQ(
      origin_error("https://example.com/"),
      "[1] \"https://example.com/\": an origin has no path, query or fragment (not even a trailing '/'; "
      "RFC 6454 §6.2)");
  EXPECT_EQ(origin_error("*"),
            "[1] \"*\": \"*\" would allow every origin; leave allowed_origins empty to turn the check off");
  EXPECT_EQ(origin_error("example.com"), "[1] \"example.com\": not scheme://host[:port]");
  EXPECT_EQ(origin_error("https://a.*.example.com"),
            "[1] \"https://a.*.example.com\": a wildcard is only allowed as the whole left-most label, as in "
            "https://*.example.com");
  EXPECT_EQ(origin_error("https://*example.com"),
            "[1] \"https://*example.com\": a wildcard is only allowed as the whole left-most label, as in "
            "https://*.example.com");
  EXPECT_EQ(origin_error("https://*."), "[1] \"https://*.\": a wildcard needs a domain after it");
  EXPECT_EQ(origin_error("https://example.com:0x50"),
            "[1] \"https://example.com:0x50\": bad port (1 to 5 digits, at most 65535)");
  EXPECT_EQ(origin_error("https://b\xc3\xbc"
                         "cher.de"),
            "[1] \"https://b\\xc3\\xbccher.de\": non-ASCII: write the host in its punycode (xn--) form, as "
            "browsers send it");
  EXPECT_EQ(origin_error("https://[::1"), "[1] \"https://[::1\": unclosed '[' in host");
  EXPECT_EQ(origin_error("https://[nope]"), "[1] \"https://[nope]\": bad IPv6 literal in host");
  EXPECT_EQ(origin_error("ht tp://a.com"), "[1] \"ht tp://a.com\": bad scheme");
  EXPECT_EQ(origin_error("https://u:p@a.com"), "[1] \"https://u:p@a.com\": an origin has no user info");
}

// ------------------------------------------------------------ connection counts

TEST(ConnectionLimiter, counts_per_address_up_to_the_limit) {
  ConnectionLimiter l(2, 64);
  const IpAddress a = ip("192.0.2.1"), b = ip("192.0.2.2");
  EXPECT_TRUE(l.try_acquire(a));
  EXPECT_TRUE(l.try_acquire(a));
  EXPECT_FALSE(l.try_acquire(a));
  EXPECT_FALSE(l.try_acquire(ip("::ffff:192.0.2.1")));  // the same address, mapped
  EXPECT_TRUE(l.try_acquire(b));
  EXPECT_EQ(l.count(a), 2u);
  l.release(a);
  EXPECT_TRUE(l.try_acquire(a));
  l.release(a);
  l.release(a);
  l.release(b);
  EXPECT_EQ(l.tracked(), 0u);  // entries go at zero: memory follows open connections
  l.release(a);                // a release without an acquire changes nothing
  EXPECT_EQ(l.tracked(), 0u);
}

TEST(ConnectionLimiter, counts_ipv6_clients_per_prefix) {
  ConnectionLimiter per64(1, 64);
  EXPECT_TRUE(per64.try_acquire(ip("2001:db8:1:2::1")));
  EXPECT_FALSE(per64.try_acquire(ip("2001:db8:1:2:ffff::9")));  // same /64
  EXPECT_TRUE(per64.try_acquire(ip("2001:db8:1:3::1")));
  ConnectionLimiter per128(1, 128);
  EXPECT_TRUE(per128.try_acquire(ip("2001:db8:1:2::1")));
  EXPECT_TRUE(per128.try_acquire(ip("2001:db8:1:2::2")));
  EXPECT_FALSE(per128.try_acquire(ip("2001:db8:1:2::2")));
}

TEST(ConnectionLimiter, with_no_limit_counts_nothing) {
  ConnectionLimiter l(0, 64);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(l.try_acquire(ip("192.0.2.1")));
  EXPECT_EQ(l.tracked(), 0u);
  auto slot = l.acquire(ip("192.0.2.1"));
  ASSERT_TRUE(slot.has_value());
  EXPECT_FALSE(slot->held());
}

TEST(ConnectionLimiter, slots_release_once_when_moved_and_destroyed) {
  ConnectionLimiter l(1, 64);
  const IpAddress a = ip("192.0.2.1");
  {
    auto slot = l.acquire(a);
    ASSERT_TRUE(slot.has_value());
    EXPECT_TRUE(slot->held());
    EXPECT_FALSE(l.acquire(a).has_value());
    ConnectionSlot moved = std::move(*slot);
    EXPECT_FALSE(slot->held());
    EXPECT_TRUE(moved.held());
    ConnectionSlot other;
    other = std::move(moved);
    EXPECT_EQ(l.count(a), 1u);
    other.release();
    EXPECT_EQ(l.count(a), 0u);
    other.release();  // idempotent
    auto again = l.acquire(a);
    EXPECT_TRUE(again.has_value());
  }
  EXPECT_EQ(l.count(a), 0u);
  EXPECT_EQ(l.tracked(), 0u);
}

TEST(ConnectionLimiter, holds_the_limit_across_threads) {
  // The server's loops share one limiter; the limit must hold for the process.
  ConnectionLimiter l(10, 64);
  const IpAddress a = ip("192.0.2.1");
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (l.try_acquire(a)) {
          granted.fetch_add(1);
          EXPECT_LE(l.count(a), 10u);
          l.release(a);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(granted.load(), 0);
  EXPECT_EQ(l.tracked(), 0u);
}

// ------------------------------------------------------------ the policy

TEST(AccessError, maps_each_refusal_to_its_status_and_text) {
  const std::tuple<AccessError, int, const char*> table[] = {
      {AccessError::blocked_address, 403, "client address is blocked"},
      {AccessError::origin_not_allowed, 403, "origin not allowed"},
      {AccessError::null_origin, 403, "opaque origin (null) not allowed"},
      {AccessError::missing_origin, 403, "Origin header required"},
      {AccessError::malformed_origin, 403, "malformed Origin header"},
      {AccessError::too_many_connections, 429, "too many connections from this address"},
  };
  for (auto [e, status, text] : table) {
    EXPECT_EQ(http_status_for(e), status);
    EXPECT_STREQ(describe(e), text);
  }
  EXPECT_EQ(access_error_for(OriginVerdict::allowed), AccessError::none);
  EXPECT_EQ(access_error_for(OriginVerdict::not_listed), AccessError::origin_not_allowed);
  EXPECT_EQ(access_error_for(OriginVerdict::null_origin), AccessError::null_origin);
  EXPECT_EQ(access_error_for(OriginVerdict::missing), AccessError::missing_origin);
  EXPECT_EQ(access_error_for(OriginVerdict::malformed), AccessError::malformed_origin);
}

// ServerOptions::access is compiled when the App is made: a bad entry is
// refused then, naming the option and the entry.
std::string policy_error(const AccessOptions& o) {
  windlass::ServerOptions so;
  so.access = o;
  so.threads = 1;
  try {
    windlass::App app(so);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "the App accepted the access options";
  return {};
}

TEST(AccessOptions, names_the_option_and_entry_that_is_wrong) {
  AccessOptions o;
  o.blocklist = {"10.0.0.0/8", "10.0.0.0/33"};
  EXPECT_EQ(policy_error(o),
            "access.blocklist[1] \"10.0.0.0/33\": prefix length 33 out of range for IPv4 (0-32)");
  o = {};
  o.trusted_proxies = {"10.0.0.1/8"};
  EXPECT_EQ(
      policy_error(o),
      "access.trusted_proxies[0] \"10.0.0.1/8\": host bits set: 10.0.0.1/8 is inside 10.0.0.0/8; write that, "
      "or 10.0.0.1/32");
  o = {};
  o.allowed_origins = {"https://example.com/"};
  EXPECT_EQ(
      policy_error(o).rfind("access.allowed_origins[0] \"https://example.com/\": an origin has no path", 0),
      0u);
  o = {};
  o.ipv6_prefix_per_ip = 129;
  EXPECT_EQ(policy_error(o), "access.ipv6_prefix_per_ip 129 out of range (1-128)");
  o.ipv6_prefix_per_ip = 0;
  EXPECT_EQ(policy_error(o), "access.ipv6_prefix_per_ip 0 out of range (1-128)");
}

}  // namespace
}  // namespace windlass::detail
