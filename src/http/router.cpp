#include "http/router.hpp"

namespace windlass::detail {

std::optional<RoutePattern> RoutePattern::compile(std::string pattern, std::string& error) {
  RoutePattern p;
  if (pattern.empty() || pattern[0] != '/') {
    error = "route \"" + pattern + "\": a pattern starts with '/'";
    return std::nullopt;
  }
  // Split after the leading '/': "/" is one empty literal segment, as the
  // path "/" is.
  std::string_view rest = std::string_view(pattern).substr(1);
  size_t captures = 0;
  bool dynamic = false;
  for (;;) {
    const size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (seg == "*") {
      if (!last) {
        error = "route \"" + pattern + "\": \"*\" may only be the last segment";
        return std::nullopt;
      }
      p.segments_.push_back(Segment{Kind::rest, "*"});
      p.rank_.push_back(1);
      dynamic = true;
      ++captures;
    } else if (!seg.empty() && seg[0] == ':') {
      std::string name(seg.substr(1));
      if (name.empty()) {
        error = "route \"" + pattern + "\": a parameter needs a name (\":key\")";
        return std::nullopt;
      }
      for (const auto& s : p.segments_) {
        if (s.kind == Kind::param && s.text == name) {
          error = "route \"" + pattern + "\": parameter \":" + name + "\" appears twice";
          return std::nullopt;
        }
      }
      p.segments_.push_back(Segment{Kind::param, std::move(name)});
      p.rank_.push_back(2);
      dynamic = true;
      ++captures;
    } else {
      p.segments_.push_back(Segment{Kind::literal, std::string(seg)});
      p.rank_.push_back(3);
    }
    if (last) break;
    rest = rest.substr(slash + 1);
  }
  if (captures > RouteParams::kMax) {
    error = "route \"" + pattern + "\": more than " + std::to_string(RouteParams::kMax) + " captures";
    return std::nullopt;
  }
  p.exact_ = !dynamic;
  p.text_ = std::move(pattern);
  return p;
}

bool RoutePattern::match(std::string_view path, RouteParams& params) const noexcept {
  if (path.empty() || path[0] != '/') return false;
  std::string_view rest = path.substr(1);
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    if (s.kind == Kind::rest) {
      params.add(s.text, rest);
      return true;
    }
    const size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    const bool path_ends = slash == std::string_view::npos;
    if (s.kind == Kind::literal) {
      if (seg != s.text) return false;
    } else {
      if (seg.empty()) return false;
      params.add(s.text, seg);
    }
    const bool pattern_ends = i + 1 == segments_.size();
    if (pattern_ends) return path_ends;
    if (path_ends) return false;
    rest = rest.substr(slash + 1);
  }
  return false;
}

}  // namespace windlass::detail
