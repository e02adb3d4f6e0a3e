// JSON string escaping, UTF-8 checking and raw value scanning (see
// json_text.hpp).
#include "channels/json_text.hpp"

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// A high bit in each byte of `x` that needs escaping or UTF-8 decoding:
// anything but printable ASCII other than '"' and '\'. Exact in its lowest
// set bit (the first such byte), which is all the callers use.
constexpr uint64_t special8(uint64_t x) noexcept {
  const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
  return (x & kHigh) | below_space | bytes_equal(x, '"') | bytes_equal(x, '\\');
}

// The index of the first byte flagged in a mask of high bits.
inline size_t first_flagged(uint64_t mask) noexcept {
  return static_cast<size_t>(__builtin_ctzll(mask)) / 8;
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

// One escape sequence, at most 7 bytes (level 2 of a \u00XX escape).
struct Escape {
  char text[8];
  uint8_t length;
};

// The level-1 escape of `c`, or that escape escaped again (level 2): only
// '\' and '"' occur in an escape, and each becomes a backslash pair.
constexpr Escape make_escape(unsigned char c, int levels) {
  Escape e{{}, 2};
  e.text[0] = '\\';
  switch (c) {
    case '"': e.text[1] = '"'; break;
    case '\\': e.text[1] = '\\'; break;
    case '\b': e.text[1] = 'b'; break;
    case '\f': e.text[1] = 'f'; break;
    case '\n': e.text[1] = 'n'; break;
    case '\r': e.text[1] = 'r'; break;
    case '\t': e.text[1] = 't'; break;
    default: {
      constexpr char kHex[] = "0123456789abcdef";
      e.text[1] = 'u';
      e.text[2] = '0';
      e.text[3] = '0';
      e.text[4] = kHex[c >> 4];
      e.text[5] = kHex[c & 0x0f];
      e.length = 6;
    }
  }
  if (levels == 1) return e;
  Escape twice{{}, 0};
  for (size_t k = 0; k < e.length; ++k) {
    const char ch = e.text[k];
    if (ch == '\\' || ch == '"') twice.text[twice.length++] = '\\';
    twice.text[twice.length++] = ch;
  }
  return twice;
}

// Escapes for the 34 bytes that need one, at levels 1 and 2.
struct EscapeTable {
  Escape level[2][256];
};
constexpr EscapeTable make_escape_table() {
  EscapeTable t{};
  for (int c = 0; c < 256; ++c) {
    if (c < 0x20 || c == '"' || c == '\\') {
      t.level[0][c] = make_escape(static_cast<unsigned char>(c), 1);
      t.level[1][c] = make_escape(static_cast<unsigned char>(c), 2);
    }
  }
  return t;
}
constexpr EscapeTable kEscapes = make_escape_table();

// Collects output in a stack buffer appended to the string in large
// pieces, so a byte or an escape is a store, not a call into std::string.
// room(k) guarantees k writable bytes at cursor().
class Writer {
 public:
  explicit Writer(std::string& out) noexcept : out_(out) {}
  ~Writer() { flush(); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  char* room(size_t k) {
    if (n_ + k > sizeof buf_) flush();
    return buf_ + n_;
  }
  void advance(size_t k) noexcept { n_ += k; }
  void put(const char* p, size_t len) {
    if (len > sizeof buf_ - n_) {
      flush();
      if (len >= sizeof buf_) {
        out_.append(p, len);
        return;
      }
    }
    std::memcpy(buf_ + n_, p, len);
    n_ += len;
  }

 private:
  void flush() {
    out_.append(buf_, n_);
    n_ = 0;
  }

  std::string& out_;
  char buf_[1024];
  size_t n_ = 0;
};

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

namespace {

// A sequence starting with a byte >= 0x80: copied when well-formed, its
// maximal ill-formed subpart replaced by U+FFFD otherwise.
size_t copy_utf8(std::string_view s, size_t i, Writer& w) {
  size_t bad = 0;
  const size_t len = utf8_sequence(s, i, bad);
  if (len != 0) {
    w.put(s.data() + i, len);
    return i + len;
  }
  w.put(kReplacement.data(), kReplacement.size());
  return i + bad;
}

// Handles the byte at s[i], which needs a look (an ASCII byte that must be
// escaped, or a byte >= 0x80), and returns the position after what it used.
// The escape is inline: JSON text has a quote every few bytes.
inline size_t escape_one(std::string_view s, size_t i, const Escape* escapes, Writer& w) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) [[likely]] {
    const Escape& e = escapes[c];
    std::memcpy(w.room(8), e.text, 8);
    w.advance(e.length);
    return i + 1;
  }
  return copy_utf8(s, i, w);
}

}  // namespace

void append_json_string_content(std::string& out, std::string_view s, int levels) {
  const Escape* escapes = kEscapes.level[levels <= 1 ? 0 : 1];
  const size_t n = s.size();
  const char* p = s.data();
  Writer w(out);
  size_t i = 0;
  // Each block is copied whole, then only the part before its first byte
  // that needs a look is kept; that byte is handled and the next block
  // starts right after it. Ids, names and most payload text are long runs
  // of plain ASCII; JSON text has a quote every few bytes.
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  while (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w.room(16)), v);
    // A signed compare: below 0x20 catches control characters and, as
    // negative numbers, every byte >= 0x80.
    const __m128i special = _mm_or_si128(
        _mm_cmplt_epi8(v, space), _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
    if (mask == 0) {
      w.advance(16);
      i += 16;
      continue;
    }
    const auto k = static_cast<size_t>(__builtin_ctz(mask));
    w.advance(k);
    i = escape_one(s, i + k, escapes, w);
  }
#endif
  while (i + 8 <= n) {
    const uint64_t x = load8(p + i);
    std::memcpy(w.room(8), &x, 8);
    const uint64_t m = special8(x);
    if (m == 0) {
      w.advance(8);
      i += 8;
      continue;
    }
    const size_t k = first_flagged(m);
    w.advance(k);
    i = escape_one(s, i + k, escapes, w);
  }
  while (i < n) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (plain_byte(c)) {
      *w.room(1) = static_cast<char>(c);
      w.advance(1);
      ++i;
    } else {
      i = escape_one(s, i, escapes, w);
    }
  }
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
// closing one. Jumps eight bytes at a time to the next '"' or '\'.
size_t skip_string_body(std::string_view text, size_t pos) noexcept {
  const size_t n = text.size();
  const char* p = text.data();
  while (pos < n) {
    while (pos + 8 <= n) {
      const uint64_t x = load8(p + pos);
      const uint64_t m = bytes_equal(x, '"') | bytes_equal(x, '\\');
      if (m != 0) {
        pos += first_flagged(m);
        break;
      }
      pos += 8;
    }
    if (pos >= n) break;
    const char c = p[pos];
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
