// The reusable simdjson DOM parser (see json_document.hpp).
#include "channels/json_document.hpp"

#include <algorithm>
#include <cstring>

namespace windlass::channels::detail {

namespace {
// What a parser gets at construction; it grows by doubling up to max_size,
// so a stream of small messages never holds memory for the largest one.
constexpr size_t kInitialCapacity = 1024;
}  // namespace

JsonDocument::JsonDocument(size_t max_size, size_t max_depth)
    : parser_(std::max<size_t>(max_size, 1)),
      max_size_(std::max<size_t>(max_size, 1)),
      max_depth_(max_depth) {}

JsonStatus JsonDocument::parse_copy(std::string_view text, simdjson::dom::element& root) {
  if (text.size() > max_size_) return JsonStatus::malformed;
  if (buffer_capacity_ < text.size() || !buffer_) {
    size_t want = std::max(kInitialCapacity, buffer_capacity_ * 2);
    want = std::min(std::max(want, text.size()), max_size_);
    buffer_.reset(new char[want + kJsonPadding]);
    buffer_capacity_ = want;
  }
  if (!text.empty()) std::memcpy(buffer_.get(), text.data(), text.size());
  std::memset(buffer_.get() + text.size(), 0, kJsonPadding);
  return run(buffer_.get(), text.size(), root);
}

JsonStatus JsonDocument::parse_in_place(std::string_view text, simdjson::dom::element& root) {
  if (text.size() > max_size_) return JsonStatus::malformed;
  return run(text.data(), text.size(), root);
}

JsonStatus JsonDocument::run(const char* p, size_t n, simdjson::dom::element& root) {
  text_ = std::string_view(p, n);
  // Grow the parser's tape and string buffer by doubling, so capacity is
  // allocated a few times in a parser's life, not once per new maximum.
  if (parser_.capacity() < n || parser_.max_depth() != max_depth_) {
    size_t want = std::max(kInitialCapacity, parser_.capacity() * 2);
    want = std::min(std::max(want, n), max_size_);
    if (parser_.allocate(want, max_depth_) != simdjson::SUCCESS) return JsonStatus::malformed;
  }
  const simdjson::error_code e = parser_.parse(p, n, false).get(root);
  switch (e) {
    case simdjson::SUCCESS: return JsonStatus::ok;
    case simdjson::UTF8_ERROR: return JsonStatus::invalid_utf8;
    case simdjson::DEPTH_ERROR: return JsonStatus::too_deep;
    default: return JsonStatus::malformed;
  }
}

}  // namespace windlass::channels::detail
