// Escaping for log lines: JSON strings, and logfmt-style values for the
// text format. Peer-supplied text (a close reason, X-Forwarded-For) goes
// through here, so a newline or a quote in it cannot forge a log line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace windlass::server {

// Appends `s` as the inside of a JSON string (RFC 8259 §7): quotes,
// backslashes and control characters escaped. Invalid UTF-8 bytes become
// U+FFFD, so every line stays valid JSON.
void append_json_escaped(std::string& out, std::string_view s);

// Appends `s` as a logfmt value: bare when it is non-empty and has no
// space, quote, '=' or control character; otherwise quoted, with the same
// escapes as JSON. Empty becomes "-" (a field that is always present).
void append_logfmt_value(std::string& out, std::string_view s);

// Replaces control characters (a newline in a message) by escapes so one
// log call is always one line.
void append_one_line(std::string& out, std::string_view s);

// In `s`, replaces the value of every "?name=" or "&name=" whose name is
// in `names` (ASCII case-insensitive) with "REDACTED". Returns false, and
// leaves `s` alone, when there was nothing to redact.
bool redact_query_values(std::string& s, const std::vector<std::string>& names);

}  // namespace windlass::server
