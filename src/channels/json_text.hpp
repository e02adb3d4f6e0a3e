// JSON text helpers that need no parser: the string escaper every encoder
// uses, a UTF-8 check, and a scanner that finds where a value ends in JSON
// text already validated (by simdjson). Pure: no I/O, no global.
//
// Escaper (RFC 8259 §7): '"' and '\' are escaped, control characters
// U+0000-U+001F become \b \f \n \r \t or \u00XX; everything else is copied
// as is ('/' and U+2028/U+2029 included: JSON allows them). Invalid UTF-8
// policy: the output is always well-formed UTF-8. Each maximal ill-formed
// subsequence of the input (Unicode §3.9, "U+FFFD substitution of maximal
// subparts", what browsers' TextDecoder does) becomes one U+FFFD. Text that
// came through one of this library's parsers is valid already (simdjson
// validates it), so the replacement only happens to bytes given directly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace windlass::channels {

// Appends `s` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

// Appends the characters between the quotes of `s`'s JSON string literal.
// With `levels` = 2 the result is escaped once more: the content of a
// string literal whose value is the content at level 1. Server events carry
// JSON inside a JSON string ("data":"{\"user_id\":\"1\"}"); a string within
// that nested JSON is written at level 2, the nested JSON's own structure at
// level 1.
void append_json_string_content(std::string& out, std::string_view s, int levels = 1);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

// Scanning valid JSON text. Each takes the position of a value's first
// byte (or of whitespace) and returns the position just past it. Only
// defined on text a JSON parser has accepted: it trusts the structure and
// never reads past text.size().
size_t skip_json_whitespace(std::string_view text, size_t pos) noexcept;
size_t skip_json_value(std::string_view text, size_t pos) noexcept;

// The raw text of the value of the `index`-th member (0-based, in document
// order) of the object that is the whole of `text`, or an empty view when
// it has fewer members. Same precondition: `text` is valid JSON and an object.
std::string_view json_object_member_value(std::string_view text, size_t index) noexcept;

// The raw text of up to `max` elements of the array that is the whole of
// `text`, into `out`; returns how many were stored. Same precondition.
size_t json_array_elements(std::string_view text, std::string_view* out, size_t max) noexcept;

}  // namespace windlass::channels
