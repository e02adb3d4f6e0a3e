// Utf8Validator (RFC 3629, as RFC 6455 §8.1 requires): tables of valid and
// invalid sequences, the exact byte at which invalid input fails, and a
// differential check against a plain reference decoder on random input.
#include "proto/utf8_validator.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace windlass::proto {
namespace {

// The reference: reads code points the long way and, after every byte of a
// multi-byte sequence, asks whether some continuation could still complete
// it into a scalar value that is not overlong (RFC 3629 §3), not a surrogate
// and not above U+10FFFF. It is slow and plain on purpose.
struct Reference {
  size_t fail_at = std::string::npos;  // first byte proving the input invalid
  bool complete = true;                // valid and ends on a boundary
};

bool can_complete(uint32_t bits, int remaining, uint32_t min) {
  const uint32_t lo = bits << (6 * remaining);
  const uint32_t hi = lo | ((1u << (6 * remaining)) - 1);
  const uint32_t from = std::max(lo, min);
  const uint32_t to = std::min(hi, 0x10FFFFu);
  if (from > to) return false;
  // Some value in [from, to] must lie outside the surrogates D800..DFFF.
  return from < 0xD800 || to > 0xDFFF;
}

Reference reference(const std::string& s) {
  Reference r;
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int need;
    uint32_t bits;
    uint32_t min;
    if ((b & 0xE0) == 0xC0) {
      need = 1, bits = b & 0x1Fu, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      need = 2, bits = b & 0x0Fu, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      need = 3, bits = b & 0x07u, min = 0x10000;
    } else {
      r.fail_at = i;
      r.complete = false;
      return r;
    }
    if (!can_complete(bits, need, min)) {
      r.fail_at = i;
      r.complete = false;
      return r;
    }
    ++i;
    for (int k = need - 1; k >= 0; --k, ++i) {
      if (i == s.size()) {
        r.complete = false;
        return r;
      }
      const auto c = static_cast<uint8_t>(s[i]);
      if ((c & 0xC0) != 0x80 || !can_complete((bits << 6) | (c & 0x3Fu), k, min)) {
        r.fail_at = i;
        r.complete = false;
        return r;
      }
      bits = (bits << 6) | (c & 0x3Fu);
    }
  }
  return r;
}

// Index of the byte at which feeding one byte at a time first fails.
size_t fail_index(const std::string& s) {
  Utf8Validator v;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!v.feed(std::string_view(s).substr(i, 1))) return i;
  }
  return std::string::npos;
}

std::string encode(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

TEST(Utf8Validator, accepts_valid_sequences) {
  const std::string valid[] = {
      "",
      "a",
      "plain ascii text that is longer than one word",
      std::string("\x00", 1),
      "\x7F",
      "\xC2\x80",                                      // U+0080, smallest two-byte
      "\xDF\xBF",                                      // U+07FF
      "\xE0\xA0\x80",                                  // U+0800, smallest three-byte
      "\xED\x9F\xBF",                                  // U+D7FF, just below the surrogates
      "\xEE\x80\x80",                                  // U+E000, just above them
      "\xEF\xBF\xBF",                                  // U+FFFF
      "\xF0\x90\x80\x80",                              // U+10000, smallest four-byte
      "\xF4\x8F\xBF\xBF",                              // U+10FFFF, the largest
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",  // "kosme" in Greek (Autobahn 6.2)
      "\xE2\x82\xAC and \xF0\x9F\x98\x80 in \xC3\xA9 text",
  };
  for (const std::string& s : valid) {
    SCOPED_TRACE(testing::PrintToString(s));
    EXPECT_TRUE(is_valid_utf8(s));
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s));
    EXPECT_TRUE(v.complete());
    EXPECT_FALSE(v.failed());
    EXPECT_EQ(fail_index(s), std::string::npos);
  }
}

struct Invalid {
  std::string bytes;
  size_t fail_at;  // the first byte that proves it invalid
  const char* why;
};

TEST(Utf8Validator, rejects_invalid_sequences_at_the_first_byte_that_proves_them_invalid) {
  const Invalid invalid[] = {
      {"\x80", 0, "lone continuation byte"},
      {"\xBF", 0, "lone continuation byte"},
      {"abc\x80", 3, "continuation after ASCII"},
      {"\xC0\x80", 0, "C0 only starts overlong forms"},
      {"\xC1\xBF", 0, "C1 only starts overlong forms"},
      {"\xE0\x80\x80", 1, "overlong U+0000 in three bytes"},
      {"\xE0\x9F\xBF", 1, "overlong U+07FF in three bytes"},
      {"\xF0\x80\x80\x80", 1, "overlong U+0000 in four bytes"},
      {"\xF0\x8F\xBF\xBF", 1, "overlong U+FFFF in four bytes"},
      {"\xED\xA0\x80", 1, "surrogate U+D800"},
      {"\xED\xBF\xBF", 1, "surrogate U+DFFF"},
      {"\xED\xA0\x80\xED\xB0\x80", 1, "CESU-8 surrogate pair"},
      {"\xF4\x90\x80\x80", 1, "U+110000, above the last code point"},
      {"\xF5\x80\x80\x80", 0, "F5 can only start values above U+10FFFF"},
      {"\xF7\xBF\xBF\xBF", 0, "F7"},
      {"\xF8\x88\x80\x80\x80", 0, "five-byte form"},
      {"\xFC\x84\x80\x80\x80\x80", 0, "six-byte form"},
      {"\xFE", 0, "FE is never UTF-8"},
      {"\xFF", 0, "FF is never UTF-8"},
      {"\xC2\x41", 1, "two-byte sequence cut by ASCII"},
      {"\xC2\xC2\x80", 1, "lead byte where a continuation belongs"},
      {"\xE2\x82\x41", 2, "three-byte sequence cut by ASCII"},
      {"\xF0\x9F\x98\x41", 3, "four-byte sequence cut by ASCII"},
      {"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\x80", 12, "extra continuation byte"},
      {"0123456789abcdef\xFF", 16, "invalid byte after two ASCII words"},
  };
  for (const Invalid& c : invalid) {
    SCOPED_TRACE(c.why);
    EXPECT_FALSE(is_valid_utf8(c.bytes));
    EXPECT_EQ(fail_index(c.bytes), c.fail_at);
    EXPECT_EQ(reference(c.bytes).fail_at, c.fail_at) << "the reference disagrees with the table";
    Utf8Validator v;
    EXPECT_FALSE(v.feed(c.bytes));
    EXPECT_TRUE(v.failed());
    EXPECT_FALSE(v.complete());
  }
}

TEST(Utf8Validator, treats_a_truncated_sequence_as_incomplete_not_invalid) {
  for (const std::string s : {"\xC2", "\xE2\x82", "\xF0\x9F\x98", "ab\xE0\xA0", "\xF4\x8F"}) {
    SCOPED_TRACE(testing::PrintToString(s));
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s));
    EXPECT_FALSE(v.complete());
    EXPECT_FALSE(v.failed());
    EXPECT_FALSE(is_valid_utf8(s));
  }
}

TEST(Utf8Validator, completes_a_sequence_across_feeds) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xF0"));
  EXPECT_TRUE(v.feed("\x9F\x98"));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\x80"));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, stays_failed_until_reset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed("\xFF"));
  EXPECT_FALSE(v.feed("a"));
  EXPECT_FALSE(v.feed(""));
  EXPECT_TRUE(v.failed());
  v.reset();
  EXPECT_FALSE(v.failed());
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("a"));
}

TEST(Utf8Validator, reset_forgets_a_partial_sequence) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xE2\x82"));
  v.reset();
  EXPECT_TRUE(v.complete());
  EXPECT_FALSE(v.feed("\xAC"));
}

TEST(Utf8Validator, accepts_every_scalar_value_and_rejects_every_surrogate) {
  Utf8Validator v;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const std::string s = encode(cp);
    v.reset();
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (surrogate) {
      ASSERT_EQ(fail_index(s), 1u) << cp;
    } else {
      ASSERT_TRUE(v.feed(s) && v.complete()) << cp;
    }
  }
}

TEST(Utf8Validator, agrees_with_the_reference_on_every_two_byte_input) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s = {static_cast<char>(a), static_cast<char>(b)};
      const Reference r = reference(s);
      ASSERT_EQ(fail_index(s), r.fail_at) << a << " " << b;
      Utf8Validator v;
      ASSERT_EQ(v.feed(s) && v.complete(), r.complete) << a << " " << b;
    }
  }
}

TEST(Utf8Validator, finds_a_non_ascii_byte_at_every_position_of_the_ascii_fast_path) {
  for (size_t at = 0; at < 40; ++at) {
    std::string s(48, 'x');
    s[at] = '\xFF';
    EXPECT_EQ(fail_index(s), at);
    Utf8Validator v;
    EXPECT_FALSE(v.feed(s));
    s.replace(at, 1, "\xC3\xA9");
    EXPECT_TRUE(is_valid_utf8(s)) << at;
    s[at + 1] = 'y';
    EXPECT_FALSE(is_valid_utf8(s)) << at;
  }
}

// Random text drawn mostly from bytes that matter to UTF-8 (lead and
// continuation bytes near the edges of each range), with ASCII runs.
std::string random_text(std::mt19937& rng) {
  static constexpr uint8_t kInteresting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
                                             0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
                                             0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFE, 0xFF};
  std::string s;
  const size_t n = rng() % 40;
  for (size_t i = 0; i < n; ++i) {
    switch (rng() % 4) {
      case 0: s += static_cast<char>(kInteresting[rng() % sizeof kInteresting]); break;
      case 1: s += static_cast<char>(rng() & 0xFF); break;
      case 2: s += encode(static_cast<uint32_t>(rng() % 0x110000)); break;
      default: s.append(rng() % 20, 'a'); break;
    }
  }
  return s;
}

TEST(Utf8Validator, agrees_with_the_reference_on_random_input) {
  std::mt19937 rng(42);
  for (int round = 0; round < 20000; ++round) {
    const std::string s = random_text(rng);
    const Reference r = reference(s);
    SCOPED_TRACE(testing::PrintToString(s));
    ASSERT_EQ(fail_index(s), r.fail_at);
    Utf8Validator v;
    ASSERT_EQ(v.feed(s), r.fail_at == std::string::npos);
    ASSERT_EQ(v.complete(), r.complete);
    ASSERT_EQ(is_valid_utf8(s), r.complete);
  }
}

TEST(Utf8Validator, gives_the_same_answer_for_any_split) {
  std::mt19937 rng(99);
  for (int round = 0; round < 5000; ++round) {
    const std::string s = random_text(rng);
    Utf8Validator whole;
    const bool whole_ok = whole.feed(s);
    Utf8Validator split;
    bool split_ok = true;
    size_t at = 0;
    while (at < s.size()) {
      const size_t n = 1 + rng() % 17;
      split_ok = split.feed(std::string_view(s).substr(at, n)) && split_ok;
      at += n;
    }
    ASSERT_EQ(whole_ok, split_ok) << testing::PrintToString(s);
    ASSERT_EQ(whole.complete(), split.complete()) << testing::PrintToString(s);
    ASSERT_EQ(whole.failed(), split.failed()) << testing::PrintToString(s);
  }
}

}  // namespace
}  // namespace windlass::proto
