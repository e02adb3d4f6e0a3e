#include "escape.hpp"

#include <cstdint>

namespace windlass::server {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u_escape(std::string& out, unsigned char c) {
  out += "\\u00";
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one
// (overlongs, surrogates and code points past U+10FFFF included).
size_t utf8_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xc2) return 0;
  if (n == 3) {
    uint32_t cp = ((c & 0x0fu) << 12) | ((b(1) & 0x3fu) << 6) | (b(2) & 0x3fu);
    if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  }
  if (n == 4) {
    uint32_t cp = ((c & 0x07u) << 18) | ((b(1) & 0x3fu) << 12) | ((b(2) & 0x3fu) << 6) | (b(3) & 0x3fu);
    if (cp < 0x10000 || cp > 0x10ffff) return 0;
  }
  return n;
}

// Shared by the JSON and quoted-logfmt escapes.
void append_escaped(std::string& out, std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = utf8_length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f)
          append_u_escape(out, c);
        else
          out += static_cast<char>(c);
    }
    ++i;
  }
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  append_escaped(out, s);
}

void append_logfmt_value(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '-';
    return;
  }
  bool bare = true;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) {
    out.append(s);
    return;
  }
  out += '"';
  append_escaped(out, s);
  out += '"';
}

void append_one_line(std::string& out, std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20 && c != '\t')
      append_u_escape(out, c);
    else
      out += static_cast<char>(c);
  }
}

bool redact_query_values(std::string& s, const std::vector<std::string>& names) {
  bool changed = false;
  for (size_t i = s.find_first_of("?&"); i != std::string::npos; i = s.find_first_of("?&", i + 1)) {
    size_t name_begin = i + 1;
    size_t eq = s.find('=', name_begin);
    if (eq == std::string::npos) break;
    std::string_view name(s.data() + name_begin, eq - name_begin);
    bool listed = false;
    for (const auto& n : names) listed = listed || iequal(name, n);
    if (!listed) continue;
    // The value ends where a query value, a quoted field or a line does.
    size_t end = s.find_first_of("&# \"\\\t\r\n", eq + 1);
    if (end == std::string::npos) end = s.size();
    s.replace(eq + 1, end - eq - 1, "REDACTED");
    changed = true;
  }
  return changed;
}

}  // namespace windlass::server
