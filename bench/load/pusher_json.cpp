#include "pusher_json.hpp"

namespace windlass::load {
namespace {

constexpr int kMaxDepth = 32;

class Reader {
 public:
  explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  const char* object(PusherEvent& out) {
    skip_ws();
    if (!eat('{')) return "not a JSON object";
    skip_ws();
    if (eat('}')) return finish();
    for (;;) {
      skip_ws();
      key_.clear();
      if (!string(key_)) return error_ ? error_ : "a member name is not a valid string";
      skip_ws();
      if (!eat(':')) return "no ':' after a member name";
      skip_ws();
      std::string* target = nullptr;
      bool* seen = nullptr;
      if (key_ == "event") {
        target = &out.event;
        seen = &out.has_event;
      } else if (key_ == "channel") {
        target = &out.channel;
        seen = &out.has_channel;
      } else if (key_ == "data") {
        target = &out.data;
        seen = &out.has_data;
      }
      if (seen != nullptr) {
        if (*seen) return "a member appears twice";
        *seen = true;
      }
      if (p_ < end_ && *p_ == '"') {
        std::string scratch;
        if (!string(target != nullptr ? *target : scratch))
          return error_ ? error_ : "a string value is invalid";
        if (seen == &out.has_data) out.data_is_string = true;
      } else {
        const char* start = p_;
        if (!value(1)) return error_ ? error_ : "a value is invalid";
        if (seen == &out.has_event || seen == &out.has_channel) return "event or channel is not a string";
        if (target != nullptr) target->assign(start, static_cast<size_t>(p_ - start));
      }
      skip_ws();
      if (eat(',')) continue;
      if (eat('}')) return finish();
      return "no ',' or '}' after a member";
    }
  }

 private:
  const char* finish() {
    skip_ws();
    return p_ == end_ ? nullptr : "bytes after the object";
  }

  void skip_ws() noexcept {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool eat(char c) noexcept {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  bool literal(std::string_view word) noexcept {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    return true;
  }

  static int hex(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(uint32_t& out) noexcept {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex(p_[i]);
      if (h < 0) return false;
      out = (out << 4) | static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
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
  }

  // A string at p_ (which is '"'), decoded into `out`.
  bool string(std::string& out) {
    if (!eat('"')) return false;
    for (;;) {
      const char* run = p_;
      while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) ++p_;
      out.append(run, static_cast<size_t>(p_ - run));
      if (p_ == end_) return fail("a string is not terminated");
      const char c = *p_++;
      if (c == '"') return true;
      if (c != '\\') return fail("a control character in a string");
      if (p_ == end_) return fail("a string is not terminated");
      switch (*p_++) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return fail("a bad \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("a lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (!literal("\\u") || !hex4(low) || low < 0xDC00 || low > 0xDFFF) {
              return fail("a high surrogate without its low half");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return fail("an unknown escape");
      }
    }
  }

  bool digits() noexcept {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ > start;
  }

  bool number() noexcept {
    eat('-');
    if (eat('0')) {
      // no leading zeros
    } else if (p_ < end_ && *p_ >= '1' && *p_ <= '9') {
      digits();
    } else {
      return fail("a bad number");
    }
    if (eat('.') && !digits()) return fail("a bad number");
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (!eat('+')) eat('-');
      if (!digits()) return fail("a bad number");
    }
    return true;
  }

  // Any value at p_, validated and skipped.
  bool value(int depth) {
    if (depth > kMaxDepth) return fail("nested too deep");
    if (p_ == end_) return fail("a value is missing");
    switch (*p_) {
      case '"': {
        scratch_.clear();
        return string(scratch_);
      }
      case '{': {
        ++p_;
        skip_ws();
        if (eat('}')) return true;
        for (;;) {
          skip_ws();
          scratch_.clear();
          if (p_ == end_ || *p_ != '"' || !string(scratch_))
            return fail("a member name is not a valid string");
          skip_ws();
          if (!eat(':')) return fail("no ':' after a member name");
          skip_ws();
          if (!value(depth + 1)) return false;
          skip_ws();
          if (eat(',')) continue;
          if (eat('}')) return true;
          return fail("no ',' or '}' in an object");
        }
      }
      case '[': {
        ++p_;
        skip_ws();
        if (eat(']')) return true;
        for (;;) {
          skip_ws();
          if (!value(depth + 1)) return false;
          skip_ws();
          if (eat(',')) continue;
          if (eat(']')) return true;
          return fail("no ',' or ']' in an array");
        }
      }
      case 't': return literal("true") || fail("a bad literal");
      case 'f': return literal("false") || fail("a bad literal");
      case 'n': return literal("null") || fail("a bad literal");
      default: return number();
    }
  }

  bool fail(const char* why) noexcept {
    if (error_ == nullptr) error_ = why;
    return false;
  }

  const char* p_;
  const char* end_;
  const char* error_ = nullptr;
  std::string key_;
  std::string scratch_;
};

}  // namespace

const char* parse_pusher_event(std::string_view text, PusherEvent& out) {
  out.clear();
  Reader reader(text);
  return reader.object(out);
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
}

}  // namespace windlass::load
