// permessage-deflate (RFC 7692): negotiation tables (§5, §7.1), the §7.2.3
// examples verbatim, round trips with and without context takeover, the
// inflated-size limit and corrupt input. Every inflating test goes through
// expect_inflates, which feeds the payloads whole, byte by byte and in
// seeded random splits and expects the same messages and error each time.
#include "proto/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace windlass::proto {
namespace {

using Bytes = std::string;

Bytes bytes(std::initializer_list<int> list) {
  Bytes out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

// --- Negotiation -----------------------------------------------------------

DeflatePolicy policy_with(void (*edit)(DeflatePolicy&)) {
  DeflatePolicy p;
  edit(p);
  return p;
}

DeflateParams params(bool snct, bool cnct, int sbits, int cbits) {
  DeflateParams p;
  p.server_no_context_takeover = snct;
  p.client_no_context_takeover = cnct;
  p.server_max_window_bits = static_cast<uint8_t>(sbits);
  p.client_max_window_bits = static_cast<uint8_t>(cbits);
  return p;
}

void expect_accepted(std::string_view header, std::string_view response, DeflateParams expected,
                     const DeflatePolicy& policy = {}) {
  SCOPED_TRACE(testing::Message() << "header: " << header);
  const DeflateNegotiation n = negotiate_deflate(header, policy);
  ASSERT_EQ(n.outcome, DeflateOutcome::accepted) << describe(n.outcome);
  EXPECT_EQ(n.response, response);
  EXPECT_EQ(n.params, expected);
  // Our own response, read back as an offer, must lead to the same answer:
  // every value in it is within what it would be limited to again.
  const DeflateNegotiation again = negotiate_deflate(n.response, policy);
  ASSERT_TRUE(again.accepted());
  EXPECT_EQ(again.response, n.response);
  EXPECT_EQ(again.params, n.params);
}

void expect_outcome(std::string_view header, DeflateOutcome outcome, const DeflatePolicy& policy = {}) {
  SCOPED_TRACE(testing::Message() << "header: " << header);
  const DeflateNegotiation n = negotiate_deflate(header, policy);
  EXPECT_EQ(n.outcome, outcome) << describe(n.outcome);
  EXPECT_TRUE(n.response.empty());
}

const DeflateParams kDefaults = params(false, false, 15, 15);

TEST(DeflateNegotiation, accepts_chromium_offer) {
  expect_accepted("permessage-deflate; client_max_window_bits", "permessage-deflate", kDefaults);
}

TEST(DeflateNegotiation, limits_chromium_client_window_by_policy) {
  const auto p = policy_with([](DeflatePolicy& x) { x.client_max_window_bits = 10; });
  expect_accepted("permessage-deflate; client_max_window_bits",
                  "permessage-deflate; client_max_window_bits=10", params(false, false, 15, 10), p);
}

TEST(DeflateNegotiation, accepts_firefox_offer) {
  expect_accepted("permessage-deflate", "permessage-deflate", kDefaults);
}

TEST(DeflateNegotiation, declines_offer_without_client_window_bits_when_policy_limits_it) {
  // §7.1.2.2: the response MUST NOT carry client_max_window_bits, so a
  // 15-bit client window cannot be avoided; the policy's limit wins.
  const auto p = policy_with([](DeflatePolicy& x) { x.client_max_window_bits = 12; });
  expect_outcome("permessage-deflate", DeflateOutcome::no_acceptable_offer, p);
}

TEST(DeflateNegotiation, accepts_node_ws_and_python_websockets_offers) {
  // Both clients' default offer is Chromium's.
  expect_accepted("permessage-deflate; client_max_window_bits", "permessage-deflate", kDefaults);
  const auto p = policy_with([](DeflatePolicy& x) {
    x.server_no_context_takeover = true;
    x.client_max_window_bits = 9;
  });
  expect_accepted("permessage-deflate; client_max_window_bits",
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
                  params(true, false, 15, 9), p);
}

TEST(DeflateNegotiation, honours_offered_server_no_context_takeover) {
  expect_accepted("permessage-deflate; server_no_context_takeover",
                  "permessage-deflate; server_no_context_takeover", params(true, false, 15, 15));
}

TEST(DeflateNegotiation, adds_context_takeover_limits_from_policy) {
  const auto p = policy_with([](DeflatePolicy& x) {
    x.server_no_context_takeover = true;
    x.client_no_context_takeover = true;
  });
  expect_accepted("permessage-deflate",
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                  params(true, true, 15, 15), p);
}

TEST(DeflateNegotiation, echoes_offered_client_no_context_takeover) {
  expect_accepted("permessage-deflate; client_no_context_takeover",
                  "permessage-deflate; client_no_context_takeover", params(false, true, 15, 15));
}

TEST(DeflateNegotiation, accepts_offered_server_window_with_same_or_smaller_value) {
  expect_accepted("permessage-deflate; server_max_window_bits=10",
                  "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15));
  const auto p = policy_with([](DeflatePolicy& x) { x.server_max_window_bits = 9; });
  expect_accepted("permessage-deflate; server_max_window_bits=12",
                  "permessage-deflate; server_max_window_bits=9", params(false, false, 9, 15), p);
}

TEST(DeflateNegotiation, announces_smaller_server_window_unasked) {
  const auto p = policy_with([](DeflatePolicy& x) { x.server_max_window_bits = 11; });
  expect_accepted("permessage-deflate", "permessage-deflate; server_max_window_bits=11",
                  params(false, false, 11, 15), p);
}

TEST(DeflateNegotiation, accepts_server_window_of_8) {
  expect_accepted("permessage-deflate; server_max_window_bits=8",
                  "permessage-deflate; server_max_window_bits=8", params(false, false, 8, 15));
}

TEST(DeflateNegotiation, limits_client_window_to_offered_hint) {
  expect_accepted("permessage-deflate; client_max_window_bits=12",
                  "permessage-deflate; client_max_window_bits=12", params(false, false, 15, 12));
  const auto p = policy_with([](DeflatePolicy& x) { x.client_max_window_bits = 10; });
  expect_accepted("permessage-deflate; client_max_window_bits=12",
                  "permessage-deflate; client_max_window_bits=10", params(false, false, 15, 10), p);
  expect_accepted("permessage-deflate; client_max_window_bits=15", "permessage-deflate", kDefaults);
}

TEST(DeflateNegotiation, picks_first_acceptable_of_several_offers) {
  // §5: in the client's order of preference.
  expect_accepted(
      "permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=10, "
      "permessage-deflate",
      "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15));
  expect_accepted(
      "permessage-deflate; client_no_context_takeover; server_no_context_takeover, "
      "permessage-deflate",
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
      params(true, true, 15, 15));
  const auto p = policy_with([](DeflatePolicy& x) { x.client_max_window_bits = 10; });
  expect_accepted("permessage-deflate, permessage-deflate; client_max_window_bits",
                  "permessage-deflate; client_max_window_bits=10", params(false, false, 15, 10), p);
}

TEST(DeflateNegotiation, ignores_other_extensions) {
  expect_accepted("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits, foo; bar=\"baz, qux\"",
                  "permessage-deflate", kDefaults);
  expect_outcome("x-webkit-deflate-frame; no_context_takeover", DeflateOutcome::not_offered);
}

TEST(DeflateNegotiation, declines_unknown_parameter_and_tries_next_offer) {
  // §7: a parameter not defined for use in an offer.
  expect_outcome("permessage-deflate; foo", DeflateOutcome::no_acceptable_offer);
  expect_outcome("permessage-deflate; max_window_bits=10", DeflateOutcome::no_acceptable_offer);
  expect_accepted("permessage-deflate; foo=1, permessage-deflate; server_no_context_takeover",
                  "permessage-deflate; server_no_context_takeover", params(true, false, 15, 15));
}

TEST(DeflateNegotiation, declines_duplicate_parameters) {
  // §7: multiple parameters with the same name.
  for (const char* header : {
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
           "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
           "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
           "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
           "permessage-deflate; client_max_window_bits; client_max_window_bits",
       }) {
    expect_outcome(header, DeflateOutcome::no_acceptable_offer);
  }
}

TEST(DeflateNegotiation, declines_invalid_values) {
  // §7.1.2: 8..15 without leading zeros; §7.1.1: no value for the
  // context-takeover parameters; server_max_window_bits needs one.
  for (const char* header : {
           "permessage-deflate; server_max_window_bits=7",
           "permessage-deflate; server_max_window_bits=16",
           "permessage-deflate; server_max_window_bits=abc",
           "permessage-deflate; server_max_window_bits=010",
           "permessage-deflate; server_max_window_bits=08",
           "permessage-deflate; server_max_window_bits=1",
           "permessage-deflate; server_max_window_bits=-9",
           "permessage-deflate; server_max_window_bits=+9",
           "permessage-deflate; server_max_window_bits=150",
           "permessage-deflate; server_max_window_bits",
           "permessage-deflate; server_max_window_bits=\"\"",
           "permessage-deflate; server_max_window_bits=\"1 0\"",
           "permessage-deflate; server_max_window_bits=\" 10\"",
           "permessage-deflate; client_max_window_bits=7",
           "permessage-deflate; client_max_window_bits=16",
           "permessage-deflate; client_max_window_bits=abc",
           "permessage-deflate; client_max_window_bits=\"\"",
           "permessage-deflate; server_no_context_takeover=1",
           "permessage-deflate; server_no_context_takeover=\"\"",
           "permessage-deflate; client_no_context_takeover=true",
       }) {
    expect_outcome(header, DeflateOutcome::no_acceptable_offer);
  }
}

TEST(DeflateNegotiation, unescapes_quoted_values) {
  // RFC 6455 §9.1: the quoted-string form means the same token.
  expect_accepted("permessage-deflate; server_max_window_bits=\"10\"",
                  "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15));
  expect_accepted("permessage-deflate; client_max_window_bits=\"1\\1\"",
                  "permessage-deflate; client_max_window_bits=11", params(false, false, 15, 11));
}

TEST(DeflateNegotiation, tolerates_whitespace_and_empty_list_elements) {
  expect_accepted(" ,permessage-deflate ;\tserver_max_window_bits = 12 ; client_max_window_bits , , ",
                  "permessage-deflate; server_max_window_bits=12", params(false, false, 12, 15));
  expect_accepted("foo,,permessage-deflate", "permessage-deflate", kDefaults);
}

TEST(DeflateNegotiation, declines_whole_malformed_header) {
  for (const char* header : {
           "permessage-deflate; server_max_window_bits=\"10",  // unterminated quote
           "permessage-deflate;",                              // empty parameter
           "permessage-deflate; =10",
           "permessage-deflate; server_max_window_bits=",
           "permessage-deflate client_max_window_bits",
           ";permessage-deflate",
           "permessage-deflate; a=b=c",
           "permessage-deflate; a=\"b\"c",
           "permessage-deflate, foo bar",  // broken after a good offer
           "permessage-deflate; client_max_window_bits=\"1\\",
           "permessage-deflate; a=\"\x01\"",
           "permessage-deflate\x7f",
           "perm\xc3\xa9ssage-deflate",
           "\"permessage-deflate\"",
       }) {
    expect_outcome(header, DeflateOutcome::malformed_header);
  }
}

TEST(DeflateNegotiation, compares_names_exactly) {
  expect_outcome("Permessage-Deflate", DeflateOutcome::not_offered);
  expect_outcome("permessage-deflate; Server_No_Context_Takeover", DeflateOutcome::no_acceptable_offer);
}

TEST(DeflateNegotiation, reports_not_offered_and_disabled) {
  expect_outcome("", DeflateOutcome::not_offered);
  expect_outcome("   ", DeflateOutcome::not_offered);
  expect_outcome("permessage-deflate", DeflateOutcome::disabled,
                 policy_with([](DeflatePolicy& x) { x.enabled = false; }));
}

TEST(DeflateNegotiation, clamps_policy_to_legal_window_sizes) {
  const auto p = policy_with([](DeflatePolicy& x) {
    x.server_max_window_bits = 3;
    x.client_max_window_bits = 99;
  });
  expect_accepted("permessage-deflate; client_max_window_bits",
                  "permessage-deflate; server_max_window_bits=8", params(false, false, 8, 15), p);
}

TEST(DeflateNegotiation, maps_agreed_parameters_to_stream_configs) {
  DeflatePolicy policy;
  policy.level = 3;
  policy.mem_level = 5;
  const DeflateParams agreed = params(true, true, 9, 11);
  const DeflaterConfig d = deflater_config(agreed, policy);
  EXPECT_EQ(d.window_bits, 9);
  EXPECT_EQ(d.level, 3);
  EXPECT_EQ(d.mem_level, 5);
  EXPECT_TRUE(d.no_context_takeover);
  const InflaterConfig i = inflater_config(agreed, 1234);
  EXPECT_EQ(i.window_bits, 11);
  EXPECT_TRUE(i.no_context_takeover);
  EXPECT_EQ(i.max_message_size, 1234u);
}

// --- Inflating: the same result for every split ----------------------------

struct InflateRun {
  std::vector<Bytes> messages;  // the messages completed before any error
  InflateError error = InflateError::none;
  size_t max_capacity = 0;  // the largest output buffer seen
};

enum class Split { whole, byte_by_byte, random };

// Inflates each payload as one message on one Inflater, cut as `how` says.
InflateRun inflate_messages(const InflaterConfig& config, const std::vector<Bytes>& payloads, Split how,
                            uint32_t seed = 0) {
  std::mt19937 rng(seed);
  Inflater inflater(config);
  InflateRun run;
  for (const Bytes& payload : payloads) {
    Bytes out;
    size_t at = 0;
    InflateError e = InflateError::none;
    while (e == InflateError::none && at < payload.size()) {
      size_t n = payload.size() - at;
      if (how == Split::byte_by_byte) n = 1;
      if (how == Split::random) n = std::min<size_t>(n, std::uniform_int_distribution<size_t>(0, 40)(rng));
      e = inflater.feed(reinterpret_cast<const uint8_t*>(payload.data()) + at, n, out);
      at += n;
      run.max_capacity = std::max(run.max_capacity, out.capacity());
    }
    if (e == InflateError::none) e = inflater.finish(out);
    run.max_capacity = std::max(run.max_capacity, out.capacity());
    if (e != InflateError::none) {
      run.error = e;
      EXPECT_EQ(inflater.error(), e);
      return run;
    }
    run.messages.push_back(std::move(out));
  }
  return run;
}

void expect_inflates(const InflaterConfig& config, const std::vector<Bytes>& payloads,
                     const std::vector<Bytes>& expected, InflateError error = InflateError::none) {
  size_t total = 0;
  for (const Bytes& p : payloads) total += p.size();
  auto check = [&](Split how, uint32_t seed, const char* name) {
    SCOPED_TRACE(testing::Message() << "fed " << name << " (seed " << seed << ")");
    const InflateRun run = inflate_messages(config, payloads, how, seed);
    EXPECT_EQ(run.error, error) << describe(run.error);
    ASSERT_EQ(run.messages.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_TRUE(run.messages[i] == expected[i]) << "message " << i;
  };
  check(Split::whole, 0, "whole");
  if (total <= (64u << 10)) check(Split::byte_by_byte, 0, "byte by byte");
  for (uint32_t seed = 1; seed <= 6; ++seed) check(Split::random, seed, "in random splits");
}

InflaterConfig inflater(bool no_context_takeover = false, int window_bits = 15,
                        uint64_t max_message_size = 16u << 20) {
  InflaterConfig c;
  c.window_bits = window_bits;
  c.no_context_takeover = no_context_takeover;
  c.max_message_size = max_message_size;
  return c;
}

DeflaterConfig deflater(bool no_context_takeover = false, int window_bits = 15, int level = 6,
                        int mem_level = 8) {
  DeflaterConfig c;
  c.window_bits = window_bits;
  c.no_context_takeover = no_context_takeover;
  c.level = level;
  c.mem_level = mem_level;
  return c;
}

Bytes compress(Deflater& d, const Bytes& message) {
  Bytes out;
  EXPECT_EQ(d.compress(message, out), DeflateError::none);
  return out;
}

// --- RFC 7692 §7.2.3 examples, verbatim ------------------------------------

const Bytes kHello = "Hello";
const Bytes kHelloCompressed = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
const Bytes kHelloAgainTakeover = bytes({0xf2, 0x00, 0x11, 0x00, 0x00});

TEST(Deflater, compresses_rfc_hello_into_one_block) {
  // §7.2.3.1.
  Deflater d;
  EXPECT_EQ(compress(d, kHello), kHelloCompressed);
}

TEST(Inflater, inflates_rfc_hello_whole_and_in_the_rfc_fragments) {
  // §7.2.3.1: the same payload unfragmented and as "f2 48 cd" + "c9 c9 07 00".
  expect_inflates(inflater(), {kHelloCompressed}, {kHello});
  Inflater i;
  Bytes out;
  ASSERT_EQ(i.feed(kHelloCompressed.substr(0, 3), out), InflateError::none);
  ASSERT_EQ(i.feed(kHelloCompressed.substr(3), out), InflateError::none);
  ASSERT_EQ(i.finish(out), InflateError::none);
  EXPECT_EQ(out, kHello);
}

TEST(Deflater, shares_the_window_across_messages_with_context_takeover) {
  // §7.2.3.2: the second "Hello" is a back-reference into the first.
  Deflater d;
  EXPECT_EQ(compress(d, kHello), kHelloCompressed);
  EXPECT_EQ(compress(d, kHello), kHelloAgainTakeover);
}

TEST(Deflater, compresses_every_message_alike_without_context_takeover) {
  // §7.2.3.2 with no context takeover: same bytes each time.
  Deflater d(deflater(true));
  EXPECT_EQ(compress(d, kHello), kHelloCompressed);
  EXPECT_EQ(compress(d, kHello), kHelloCompressed);
  EXPECT_EQ(compress(d, kHello), kHelloCompressed);
}

TEST(Inflater, inflates_rfc_shared_window_messages) {
  expect_inflates(inflater(), {kHelloCompressed, kHelloAgainTakeover}, {kHello, kHello});
}

TEST(Inflater, inflates_rfc_stored_block) {
  // §7.2.3.3: a DEFLATE block with no compression.
  expect_inflates(inflater(), {bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})},
                  {kHello});
}

TEST(Inflater, inflates_rfc_bfinal_block) {
  // §7.2.3.4: a block with BFINAL set, then the 0x00 octet that lets the
  // tail complete an empty stored block.
  const Bytes bfinal = bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00});
  expect_inflates(inflater(), {bfinal, bfinal}, {kHello, kHello});
}

TEST(Inflater, starts_an_empty_window_after_a_bfinal_block) {
  // A final block ends the DEFLATE data set (RFC 1951 §3.2.3); what follows
  // starts afresh, as it does for a zlib sender, which must reset after
  // Z_FINISH. A later reference to data before it is out of the window.
  const Bytes bfinal = bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00});
  expect_inflates(inflater(), {bfinal, kHelloAgainTakeover}, {kHello}, InflateError::corrupt);
  expect_inflates(inflater(), {bfinal, kHelloCompressed, kHelloAgainTakeover}, {kHello, kHello, kHello});
}

TEST(Inflater, reads_many_final_blocks_in_one_message) {
  // An empty fixed block with BFINAL set is 2 bytes (0x03 0x00); each one
  // restarts the stream, which must stay cheap.
  Bytes payload;
  for (int i = 0; i < 20000; ++i) payload += bytes({0x03, 0x00});
  payload += kHelloCompressed;
  expect_inflates(inflater(), {payload}, {kHello});
}

TEST(Inflater, accepts_message_ending_in_a_final_block_without_the_padding_octet) {
  // What zlib's Z_FINISH produces; ws and websockets read it too.
  const Bytes finished = bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
  expect_inflates(inflater(), {finished, finished, kHelloCompressed, kHelloAgainTakeover},
                  {kHello, kHello, kHello, kHello});
}

TEST(Inflater, inflates_rfc_two_blocks_in_one_message) {
  // §7.2.3.5.
  expect_inflates(inflater(),
                  {bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00})},
                  {kHello});
}

TEST(Deflater, compresses_empty_message_to_one_zero_octet) {
  // §7.2.3.6, with and without context takeover, before and after other messages.
  for (const bool nct : {false, true}) {
    Deflater d(deflater(nct));
    EXPECT_EQ(compress(d, ""), bytes({0x00}));
    EXPECT_EQ(d.memory(), 0u);  // no zlib state needed for it
    const Bytes first = compress(d, kHello);
    EXPECT_EQ(compress(d, ""), bytes({0x00}));
    const Bytes third = compress(d, kHello);
    expect_inflates(inflater(nct), {bytes({0x00}), first, bytes({0x00}), third}, {"", kHello, "", kHello});
  }
}

TEST(Inflater, inflates_empty_payload_to_empty_message) {
  // Not what §7.2.1 produces, but senders that skip the compressor for
  // empty messages send it; the stream is untouched, so takeover continues.
  expect_inflates(inflater(), {"", kHelloCompressed, "", kHelloAgainTakeover}, {"", kHello, "", kHello});
}

// --- Round trips -------------------------------------------------------------

Bytes text_like(size_t n, uint32_t seed) {
  static const char* const kWords[] = {"the ",      "channel ", "message ", "{\"event\":", "\"user\":",
                                       "presence ", "42, ",     "true, ",   "windlass ",   "\n"};
  std::mt19937 rng(seed);
  Bytes s;
  while (s.size() < n) s += kWords[rng() % 10];
  s.resize(n);
  return s;
}

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Compresses `messages` on one Deflater and inflates them on one Inflater
// with matching settings, in every split.
void expect_round_trip(const std::vector<Bytes>& messages, bool nct, int bits, int level = 6) {
  SCOPED_TRACE(testing::Message() << "no_context_takeover=" << nct << " window_bits=" << bits
                                  << " level=" << level);
  Deflater d(deflater(nct, bits, level));
  std::vector<Bytes> payloads;
  for (const Bytes& m : messages) payloads.push_back(compress(d, m));
  expect_inflates(inflater(nct, bits), payloads, messages);
}

TEST(DeflateRoundTrip, restores_messages_of_many_sizes) {
  for (const size_t n : {size_t{1}, size_t{2}, size_t{5}, size_t{63}, size_t{64}, size_t{1000}, size_t{4096},
                         size_t{65535}, size_t{65536}, size_t{100000}}) {
    SCOPED_TRACE(testing::Message() << "size " << n);
    for (const bool nct : {false, true}) {
      expect_round_trip({text_like(n, 1), text_like(n, 1), random_bytes(n, 2), Bytes(n, 'a')}, nct, 15);
    }
  }
}

TEST(DeflateRoundTrip, restores_messages_with_every_window_size) {
  for (int bits = 8; bits <= 15; ++bits) {
    for (const bool nct : {false, true}) {
      std::vector<Bytes> messages;
      for (uint32_t i = 0; i < 6; ++i) messages.push_back(text_like(100 + 700 * i, 10 + i % 2));
      expect_round_trip(messages, nct, bits);
    }
  }
}

TEST(DeflateRoundTrip, restores_messages_at_every_level) {
  for (int level = 0; level <= 9; ++level) {
    expect_round_trip({text_like(3000, 5), text_like(3000, 5), random_bytes(500, 6)}, false, 15, level);
  }
}

TEST(DeflateRoundTrip, restores_a_one_mebibyte_message) {
  Deflater d;
  const Bytes big = text_like(1u << 20, 7);
  const Bytes payload = compress(d, big);
  EXPECT_LT(payload.size(), big.size() / 4);
  expect_inflates(inflater(), {payload}, {big});
}

TEST(Deflater, appends_to_existing_output) {
  Deflater d;
  Bytes out = "prefix";
  ASSERT_EQ(d.compress(kHello, out), DeflateError::none);
  EXPECT_EQ(out, "prefix" + kHelloCompressed);
  Inflater i;
  Bytes plain = "head:";
  ASSERT_EQ(i.inflate_message(kHelloCompressed, plain), InflateError::none);
  EXPECT_EQ(plain, "head:Hello");
}

// A raw zlib inflater with an 8-bit window: what a strict peer that agreed
// server_max_window_bits=8 keeps. Output goes out one byte per call, so
// every back-reference is served from zlib's 256-byte window, not from an
// output buffer that happens to hold more.
std::vector<Bytes> zlib_inflate_8bit_window(const std::vector<Bytes>& payloads, bool& ok) {
  z_stream z{};
  ok = inflateInit2(&z, -8) == Z_OK;
  std::vector<Bytes> result;
  for (Bytes payload : payloads) {
    payload += bytes({0x00, 0x00, 0xff, 0xff});
    Bytes out;
    z.next_in = reinterpret_cast<Bytef*>(payload.data());
    z.avail_in = static_cast<uInt>(payload.size());
    while (ok && z.avail_in > 0) {
      Bytef c;
      z.next_out = &c;
      z.avail_out = 1;
      const int ret = inflate(&z, Z_SYNC_FLUSH);
      if (ret != Z_OK && ret != Z_BUF_ERROR) ok = false;
      if (z.avail_out == 0) out.push_back(static_cast<char>(c));
      if (ret == Z_BUF_ERROR) break;
    }
    result.push_back(out);
  }
  inflateEnd(&z);
  return result;
}

TEST(Deflater, honours_an_agreed_8_bit_window_by_running_zlib_at_9) {
  // zlib refuses windowBits 8 for raw deflate; at 9 its matches reach at
  // most 2^9 - 262 = 250 bytes back, inside an 8-bit window. Data with
  // repeats 300 bytes apart would tempt a 512-byte window.
  const Bytes unit = random_bytes(300, 11);
  std::vector<Bytes> messages;
  for (size_t i = 0; i < 8; ++i) messages.push_back(unit + unit.substr(0, 120 + 17 * i) + text_like(200, 12));
  Deflater d(deflater(false, 8));
  std::vector<Bytes> payloads;
  for (const Bytes& m : messages) payloads.push_back(compress(d, m));
  bool ok = false;
  EXPECT_EQ(zlib_inflate_8bit_window(payloads, ok), messages);
  EXPECT_TRUE(ok);
  expect_inflates(inflater(false, 8), payloads, messages);
  // The check has teeth: a 15-bit window's output of the same messages
  // refers further back, and the 8-bit reader refuses it.
  Deflater wide;
  std::vector<Bytes> wide_payloads;
  for (const Bytes& m : messages) wide_payloads.push_back(compress(wide, m));
  zlib_inflate_8bit_window(wide_payloads, ok);
  EXPECT_FALSE(ok);
}

TEST(Deflater, shared_deflater_output_is_read_by_any_larger_window) {
  // One Deflater without context takeover compresses a broadcast once;
  // recipients with windows of at least its size, keeping their context or
  // not, all read it.
  Deflater shared(deflater(true, 10));
  std::vector<Bytes> messages, payloads;
  for (uint32_t i = 0; i < 5; ++i) {
    messages.push_back(text_like(2000, 20 + i % 2));
    payloads.push_back(compress(shared, messages.back()));
  }
  for (int bits = 10; bits <= 15; ++bits) {
    expect_inflates(inflater(false, bits), payloads, messages);
    expect_inflates(inflater(true, bits), payloads, messages);
  }
}

TEST(Deflater, release_between_messages_keeps_the_peer_in_step) {
  // After release() the next message starts from an empty window; the
  // peer's window is still valid, just unused.
  Deflater d;
  std::vector<Bytes> messages = {text_like(3000, 30), text_like(3000, 30), text_like(3000, 30)};
  std::vector<Bytes> payloads;
  payloads.push_back(compress(d, messages[0]));
  EXPECT_GT(d.memory(), 0u);
  d.release();
  EXPECT_EQ(d.memory(), 0u);
  payloads.push_back(compress(d, messages[1]));
  payloads.push_back(compress(d, messages[2]));
  EXPECT_LT(payloads[2].size(), payloads[1].size());  // the third refers back to the second
  expect_inflates(inflater(), payloads, messages);
}

TEST(DeflateRoundTrip, restores_random_message_sequences) {
  std::mt19937 rng(99);
  for (int round = 0; round < 30; ++round) {
    const bool nct = rng() % 2 == 0;
    const int bits = 8 + static_cast<int>(rng() % 8);
    std::vector<Bytes> messages;
    const int count = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < count; ++i) {
      const size_t n = rng() % 5000;
      messages.push_back(rng() % 3 == 0 ? random_bytes(n, static_cast<uint32_t>(rng())) : text_like(n, rng() % 4));
    }
    expect_round_trip(messages, nct, bits, static_cast<int>(rng() % 10));
  }
}

// --- The inflated-size limit -------------------------------------------------

TEST(Inflater, stops_a_decompression_bomb_at_the_limit) {
  // 10 MiB of zeros compresses to about 10 KiB; with a 1 MiB limit the
  // output never grows past 1 MiB, however the payload arrives.
  Deflater d;
  const Bytes bomb = compress(d, Bytes(10u << 20, '\0'));
  EXPECT_LT(bomb.size(), 20u << 10);
  const uint64_t limit = 1u << 20;
  for (const Split how : {Split::whole, Split::byte_by_byte, Split::random}) {
    const InflateRun run = inflate_messages(inflater(false, 15, limit), {bomb}, how, 3);
    EXPECT_EQ(run.error, InflateError::too_big);
    EXPECT_LE(run.max_capacity, limit);
  }
  EXPECT_EQ(close_code_for(InflateError::too_big), CloseCode::message_too_big);
}

TEST(Inflater, fills_the_output_exactly_to_the_limit_before_failing) {
  Deflater d;
  const Bytes payload = compress(d, text_like(5000, 40));
  Inflater i(inflater(false, 15, 4096));
  Bytes out;
  EXPECT_EQ(i.inflate_message(payload, out), InflateError::too_big);
  EXPECT_EQ(out, text_like(4096, 40));
  EXPECT_LE(out.capacity(), 4096u);
  // The error sticks: the connection is to be closed.
  EXPECT_EQ(i.feed(kHelloCompressed, out), InflateError::too_big);
  EXPECT_EQ(i.finish(out), InflateError::too_big);
}

TEST(Inflater, accepts_a_message_of_exactly_the_limit) {
  for (const size_t limit : {size_t{1}, size_t{5}, size_t{1000}, size_t{70000}}) {
    SCOPED_TRACE(testing::Message() << "limit " << limit);
    Deflater d;
    const Bytes at = text_like(limit, 41);
    const Bytes over = text_like(limit + 1, 41);
    expect_inflates(inflater(false, 15, limit), {compress(d, at)}, {at});
    Deflater d2;
    expect_inflates(inflater(false, 15, limit), {compress(d2, over)}, {}, InflateError::too_big);
  }
}

TEST(Inflater, applies_the_limit_per_message) {
  // Each message fits; together they would not. Output already in the
  // buffer does not count either.
  Deflater d;
  std::vector<Bytes> messages(4, text_like(900, 42)), payloads;
  for (const Bytes& m : messages) payloads.push_back(compress(d, m));
  expect_inflates(inflater(false, 15, 1000), payloads, messages);
  Inflater i(inflater(false, 15, 5));
  Bytes out(1000, 'x');
  ASSERT_EQ(i.inflate_message(kHelloCompressed, out), InflateError::none);
  EXPECT_EQ(out, Bytes(1000, 'x') + kHello);
}

TEST(Inflater, zero_limit_allows_only_empty_messages) {
  Deflater d;
  expect_inflates(inflater(false, 15, 0), {compress(d, ""), ""}, {"", ""});
  expect_inflates(inflater(false, 15, 0), {kHelloCompressed}, {}, InflateError::too_big);
}

// --- Corrupt input -----------------------------------------------------------

TEST(Inflater, rejects_reserved_block_type) {
  // BFINAL 0, BTYPE 11: reserved (RFC 1951 §3.2.3).
  expect_inflates(inflater(), {bytes({0x06, 0x00})}, {}, InflateError::corrupt);
  EXPECT_EQ(close_code_for(InflateError::corrupt), CloseCode::invalid_payload);
}

TEST(Inflater, rejects_stored_block_with_bad_length_complement) {
  expect_inflates(inflater(), {bytes({0x00, 0x05, 0x00, 0x00, 0x00, 'H', 'e', 'l', 'l', 'o'})}, {},
                  InflateError::corrupt);
}

TEST(Inflater, rejects_reference_before_the_start_of_the_window) {
  // The §7.2.3.2 second message means nothing without the first.
  expect_inflates(inflater(), {kHelloAgainTakeover}, {}, InflateError::corrupt);
  // Nor when the client promised no context takeover (§7.1.1.2).
  expect_inflates(inflater(true), {kHelloCompressed, kHelloAgainTakeover}, {kHello}, InflateError::corrupt);
}

TEST(Inflater, rejects_message_that_stops_inside_a_block) {
  // The first 3 bytes of "Hello": the tail cannot complete this block.
  expect_inflates(inflater(), {kHelloCompressed.substr(0, 3)}, {}, InflateError::corrupt);
  // A block cut just before its end-of-block code.
  expect_inflates(inflater(), {kHelloCompressed.substr(0, 5)}, {}, InflateError::corrupt);
}

TEST(Inflater, rejects_unflushed_data_that_leaves_the_stream_mid_byte) {
  // A fixed block holding "Hello" and its end-of-block code but no sync
  // flush after it: the tail is read as the start of another block.
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(64, '\0');
  Bytes in = kHello;
  z.next_in = reinterpret_cast<Bytef*>(in.data());
  z.avail_in = 5;
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = 64;
  ASSERT_EQ(deflate(&z, Z_PARTIAL_FLUSH), Z_OK);
  out.resize(64 - z.avail_out);
  deflateEnd(&z);
  const InflateRun run = inflate_messages(inflater(), {out}, Split::whole);
  EXPECT_EQ(run.error, InflateError::corrupt);
}

TEST(Inflater, reports_the_same_error_for_any_split_of_random_garbage) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    const Bytes garbage = random_bytes(1 + rng() % 300, static_cast<uint32_t>(rng()));
    const InflateRun whole = inflate_messages(inflater(false, 15, 2000), {garbage, garbage}, Split::whole);
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const InflateRun split =
          inflate_messages(inflater(false, 15, 2000), {garbage, garbage}, Split::random, seed);
      EXPECT_EQ(split.error, whole.error);
      EXPECT_EQ(split.messages, whole.messages);
      EXPECT_LE(split.max_capacity, 2000u);
    }
  }
}

// --- Context takeover on the inflating side ---------------------------------

TEST(Inflater, resets_per_message_with_client_no_context_takeover) {
  expect_inflates(inflater(true), {kHelloCompressed, kHelloCompressed, kHelloCompressed},
                  {kHello, kHello, kHello});
  Deflater d(deflater(true));
  std::vector<Bytes> messages(5, text_like(5000, 50)), payloads;
  for (const Bytes& m : messages) payloads.push_back(compress(d, m));
  expect_inflates(inflater(true), payloads, messages);
}

// --- Memory ------------------------------------------------------------------

TEST(DeflateMemory, allocates_lazily_and_matches_the_stated_sizes) {
  // deflate.hpp: Deflater (1 << (W + 2)) + (1 << (mem_level + 9)) + ~5.8 KiB;
  // Inflater (1 << window_bits) + ~7 KiB.
  const size_t kStateSlack = 8u << 10;
  for (const int bits : {8, 9, 10, 12, 15}) {
    for (const int mem_level : {1, 4, 8, 9}) {
      Deflater d(deflater(false, bits, 6, mem_level));
      EXPECT_EQ(d.memory(), 0u);
      compress(d, text_like(1000, 60));
      const int w = std::max(bits, 9);
      const size_t buffers = (size_t{1} << (w + 2)) + (size_t{1} << (mem_level + 9));
      EXPECT_GE(d.memory(), buffers) << "bits " << bits << " mem_level " << mem_level;
      EXPECT_LE(d.memory(), buffers + kStateSlack) << "bits " << bits << " mem_level " << mem_level;
    }
    Inflater i(inflater(false, bits));
    EXPECT_EQ(i.memory(), 0u);
    Bytes out;
    Deflater d(deflater(false, bits));
    ASSERT_EQ(i.inflate_message(compress(d, text_like(1000, 61)), out), InflateError::none);
    EXPECT_GE(i.memory(), size_t{1} << bits);
    EXPECT_LE(i.memory(), (size_t{1} << bits) + kStateSlack);
  }
}

TEST(DeflateMemory, inflater_keeps_its_window_with_context_takeover) {
  Inflater i;
  EXPECT_TRUE(i.release());  // nothing allocated yet
  Bytes out;
  ASSERT_EQ(i.feed(kHelloCompressed, out), InflateError::none);
  EXPECT_FALSE(i.release());  // in the middle of a message
  ASSERT_EQ(i.finish(out), InflateError::none);
  EXPECT_FALSE(i.release());  // the window is the client's context
  EXPECT_GT(i.memory(), 0u);
  ASSERT_EQ(i.inflate_message(kHelloAgainTakeover, out), InflateError::none);
  EXPECT_EQ(out, "HelloHello");
}

TEST(DeflateMemory, inflater_releases_between_messages_without_context_takeover) {
  Inflater i(inflater(true));
  Bytes out;
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(i.inflate_message(kHelloCompressed, out), InflateError::none);
    EXPECT_GT(i.memory(), 0u);
    EXPECT_TRUE(i.release());
    EXPECT_EQ(i.memory(), 0u);
  }
  EXPECT_EQ(out, kHello + kHello + kHello);
}

TEST(DeflateMemory, objects_move_with_their_streams) {
  Deflater d;
  const Bytes first = compress(d, kHello);
  Deflater moved = std::move(d);
  EXPECT_EQ(compress(moved, kHello), kHelloAgainTakeover);
  Inflater i;
  Bytes out;
  ASSERT_EQ(i.inflate_message(first, out), InflateError::none);
  Inflater moved_i = std::move(i);
  ASSERT_EQ(moved_i.inflate_message(kHelloAgainTakeover, out), InflateError::none);
  EXPECT_EQ(out, "HelloHello");
}

TEST(DeflateErrors, map_to_close_codes_and_reasons) {
  EXPECT_EQ(close_code_for(InflateError::corrupt), CloseCode::invalid_payload);
  EXPECT_EQ(close_code_for(InflateError::too_big), CloseCode::message_too_big);
  EXPECT_EQ(close_code_for(InflateError::out_of_memory), CloseCode::internal_error);
  EXPECT_EQ(close_code_for(DeflateError::out_of_memory), CloseCode::internal_error);
  EXPECT_EQ(close_code_for(DeflateError::internal), CloseCode::internal_error);
  EXPECT_STREQ(describe(InflateError::corrupt), "invalid compressed data");
  EXPECT_STREQ(describe(InflateError::too_big), "inflated message too big");
  EXPECT_STREQ(describe(DeflateOutcome::malformed_header), "malformed Sec-WebSocket-Extensions header");
}

}  // namespace
}  // namespace windlass::proto
