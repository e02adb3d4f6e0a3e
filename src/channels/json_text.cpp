// JSON string escaping, UTF-8 checking and raw value scanning (see
// json_text.hpp).
#include "channels/json_text.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace windlass::channels {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHigh = 0x8080808080808080ull;

uint64_t load8(const char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// A high bit set in each byte of `x` equal to `c`, plus possibly some
// false positives above a true one: exact as an "any" test.
constexpr uint64_t bytes_equal(uint64_t x, uint8_t c) noexcept {
  const uint64_t v = x ^ (kOnes * c);
  return (v - kOnes) & ~v & kHigh;
}

// True when none of 8 bytes needs escaping or UTF-8 decoding: all are
// printable ASCII other than '"' and '\'.
constexpr bool plain8(uint64_t x) noexcept {
  const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
  return ((x & kHigh) | below_space | bytes_equal(x, '"') | bytes_equal(x, '\\')) == 0;
}

constexpr bool plain_byte(unsigned char c) noexcept {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// Length of the well-formed UTF-8 sequence at s[i] (s[i] >= 0x80), or 0
// with `bad` set to the length of the maximal ill-formed subpart to
// replace (at least 1). Table 3-7 of the Unicode standard.
size_t utf8_sequence(std::string_view s, size_t i, size_t& bad) noexcept {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = b(i);
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;  // no overlongs
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;  // no overlongs
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    bad = 1;
    return 0;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) break;
    const unsigned char c = b(i + k);
    if (c < lo || c > hi) break;
    lo = 0x80;
    hi = 0xBF;
  }
  if (k <= need) {
    bad = k;
    return 0;
  }
  return need + 1;
}

// Appends the escape for one byte that needs it at level 1, or that
// escape escaped again at level 2.
void append_escape(std::string& out, unsigned char c, int levels) {
  char seq[6];
  size_t n = 2;
  seq[0] = '\\';
  switch (c) {
    case '"': seq[1] = '"'; break;
    case '\\': seq[1] = '\\'; break;
    case '\b': seq[1] = 'b'; break;
    case '\f': seq[1] = 'f'; break;
    case '\n': seq[1] = 'n'; break;
    case '\r': seq[1] = 'r'; break;
    case '\t': seq[1] = 't'; break;
    default: {
      constexpr char kHex[] = "0123456789abcdef";
      seq[1] = 'u';
      seq[2] = '0';
      seq[3] = '0';
      seq[4] = kHex[c >> 4];
      seq[5] = kHex[c & 0x0f];
      n = 6;
    }
  }
  if (levels <= 1) {
    out.append(seq, n);
    return;
  }
  // Only '\' and '"' occur in an escape and need escaping again.
  for (size_t k = 0; k < n; ++k) {
    if (seq[k] == '\\' || seq[k] == '"') {
      append_escape(out, static_cast<unsigned char>(seq[k]), levels - 1);
    } else {
      out.push_back(seq[k]);
    }
  }
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

void append_json_string_content(std::string& out, std::string_view s, int levels) {
  const size_t n = s.size();
  const char* p = s.data();
  size_t i = 0;
  size_t run = 0;  // start of the bytes copied as they are
  while (i < n) {
    // Eight plain bytes at a time: the usual case for ids, names and most
    // payload text.
    while (i + 8 <= n && plain8(load8(p + i))) i += 8;
    if (i >= n) break;
    const auto c = static_cast<unsigned char>(p[i]);
    if (plain_byte(c)) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t bad = 0;
      const size_t len = utf8_sequence(s, i, bad);
      if (len != 0) {
        i += len;
        continue;
      }
      out.append(p + run, i - run);
      out.append(kReplacement);
      i += bad;
      run = i;
      continue;
    }
    out.append(p + run, i - run);
    append_escape(out, c, levels);
    ++i;
    run = i;
  }
  out.append(p + run, n - run);
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  append_json_string_content(out, s, 1);
  out.push_back('"');
}

bool is_valid_utf8(std::string_view s) noexcept {
  size_t i = 0;
  while (i < s.size()) {
    while (i + 8 <= s.size() && (load8(s.data() + i) & kHigh) == 0) i += 8;
    if (i >= s.size()) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t len = utf8_sequence(s, i, bad);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

size_t skip_json_whitespace(std::string_view text, size_t pos) noexcept {
  while (pos < text.size()) {
    const char c = text[pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    ++pos;
  }
  return pos;
}

namespace {

// `pos` is just past an opening quote; returns the position past the
// closing one. Skips eight bytes at a time while none is '"' or '\'.
size_t skip_string_body(std::string_view text, size_t pos) noexcept {
  const size_t n = text.size();
  while (pos < n) {
    while (pos + 8 <= n) {
      const uint64_t x = load8(text.data() + pos);
      if ((bytes_equal(x, '"') | bytes_equal(x, '\\')) != 0) break;
      pos += 8;
    }
    if (pos >= n) break;
    const char c = text[pos];
    if (c == '"') return pos + 1;
    // An escape is a backslash and at least one more byte, never a quote
    // that ends the string.
    pos += c == '\\' ? 2 : 1;
  }
  return n;
}

}  // namespace

size_t skip_json_value(std::string_view text, size_t pos) noexcept {
  const size_t n = text.size();
  pos = skip_json_whitespace(text, pos);
  if (pos >= n) return n;
  const char first = text[pos];
  if (first == '"') return skip_string_body(text, pos + 1);
  if (first == '{' || first == '[') {
    size_t depth = 0;
    while (pos < n) {
      const char c = text[pos];
      if (c == '"') {
        pos = skip_string_body(text, pos + 1);
        continue;
      }
      ++pos;
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return pos;
      }
    }
    return n;
  }
  // A number, true, false or null: up to the next delimiter.
  while (pos < n) {
    const char c = text[pos];
    if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r') break;
    ++pos;
  }
  return pos;
}

std::string_view json_object_member_value(std::string_view text, size_t index) noexcept {
  size_t pos = skip_json_whitespace(text, 0);
  if (pos >= text.size() || text[pos] != '{') return {};
  ++pos;
  for (size_t member = 0;; ++member) {
    pos = skip_json_whitespace(text, pos);
    if (pos >= text.size() || text[pos] != '"') return {};  // '}' : no more members
    pos = skip_string_body(text, pos + 1);                  // the key
    pos = skip_json_whitespace(text, pos);
    if (pos >= text.size() || text[pos] != ':') return {};
    const size_t start = skip_json_whitespace(text, pos + 1);
    const size_t end = skip_json_value(text, start);
    if (member == index) return text.substr(start, end - start);
    pos = skip_json_whitespace(text, end);
    if (pos >= text.size() || text[pos] != ',') return {};
    ++pos;
  }
}

size_t json_array_elements(std::string_view text, std::string_view* out, size_t max) noexcept {
  size_t pos = skip_json_whitespace(text, 0);
  if (pos >= text.size() || text[pos] != '[') return 0;
  pos = skip_json_whitespace(text, pos + 1);
  if (pos < text.size() && text[pos] == ']') return 0;
  size_t count = 0;
  while (count < max && pos < text.size()) {
    const size_t start = skip_json_whitespace(text, pos);
    const size_t end = skip_json_value(text, start);
    out[count++] = text.substr(start, end - start);
    pos = skip_json_whitespace(text, end);
    if (pos >= text.size() || text[pos] != ',') break;
    ++pos;
  }
  return count;
}

}  // namespace windlass::channels
