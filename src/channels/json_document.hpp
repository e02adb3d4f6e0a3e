// The library's one use of simdjson: a reusable DOM parser with a padded
// copy buffer. Internal to windlass_channels_core: public headers only
// forward-declare it, so users never compile simdjson.h.
//
// Why the DOM API and not On-Demand: the DOM parser validates the whole
// document (structure, UTF-8, numbers, escapes) before anything is read, so
// a message is accepted or refused as a whole. On-Demand validates what it
// visits, and client event data is forwarded to other clients as raw text:
// it must be proved valid JSON, not skipped over.
//
// Not thread-safe; the views it hands out are valid until the next parse.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <memory>
#include <string_view>

#include "channels/json_padding.hpp"

namespace windlass::channels::detail {

static_assert(kJsonPadding == simdjson::SIMDJSON_PADDING, "kJsonPadding must match simdjson's padding");

enum class JsonStatus : uint8_t {
  ok,
  invalid_utf8,
  too_deep,
  malformed,
};

class JsonDocument {
 public:
  // `max_size`: the largest text it will parse (callers check their limit
  // before calling); `max_depth`: simdjson's nesting limit, which counts
  // each object and array as a level and the values inside a non-empty one
  // as one more: "{}" has depth 1, {"a":1} and {"a":{}} depth 2.
  JsonDocument(size_t max_size, size_t max_depth);

  // Copies `text` into the document's own padded buffer (grown once, up to
  // max_size + padding, and kept), then parses the copy.
  JsonStatus parse_copy(std::string_view text, simdjson::dom::element& root);
  // Parses `text` where it is: the caller promises kJsonPadding readable
  // bytes after text.end() (their values do not matter).
  JsonStatus parse_in_place(std::string_view text, simdjson::dom::element& root);

  // The text last parsed (the copy, or the caller's bytes): raw values
  // found by json_object_member_value point into it.
  std::string_view text() const noexcept { return text_; }

 private:
  JsonStatus run(const char* p, size_t n, simdjson::dom::element& root);

  simdjson::dom::parser parser_;
  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
  size_t max_size_;
  size_t max_depth_;
  std::string_view text_;
};

// Small helpers over DOM elements.
inline bool get_string(simdjson::dom::element e, std::string_view& out) noexcept {
  return e.get_string().get(out) == simdjson::SUCCESS;
}

}  // namespace windlass::channels::detail
