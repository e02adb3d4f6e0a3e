// Text that came from a peer (a token's alg, a Location header, a body),
// made safe for one log line: control bytes become '?' (no forged lines,
// no terminal escapes) and the text is cut at `max` bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace windlass::detail {

inline std::string log_text(std::string_view s, size_t max = 200) {
  std::string out;
  const bool cut = s.size() > max;
  if (cut) s = s.substr(0, max);
  out.reserve(s.size() + 3);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (cut) out += "...";
  return out;
}

}  // namespace windlass::detail
