// A topic's history in Redis: one Stream per topic, written and read by two
// Lua scripts so that the append, its trimming and the publish to the other
// nodes are one atomic step, and a read sees exactly what a live
// subscriber would not. The stream ids are the offsets (history.hpp).
//
//   key      "<channel>~h" when the channel has a {hash tag}, else
//            "{<channel>}~h": the key and the channel hash to one slot, so
//            in a Redis Cluster the script may SPUBLISH on it. A channel
//            for which that cannot hold (an unbalanced '{') keeps no
//            history (history_key() is empty).
//   append   creates the stream if it is missing by adding and deleting
//            one entry, so that its max-deleted-entry-id is its creation
//            id (older offsets are then too old); XADD * with one field,
//            "t" or "b" (the kind) = payload; XDEL of what is over
//            max_messages or older than max_age (XDEL, not XTRIM: Redis 7.0's
//            trimming leaves max-deleted-entry-id behind, and that is what
//            tells a recovery that something after its offset is gone);
//            PEXPIRE of twice max_age plus a minute; then (S)PUBLISH of
//            head + len(id) + id + payload on the channel. Returns the id.
//   read     the same creation and age trim, then from XINFO STREAM:
//            no offset -> fresh at last-generated-id; an offset above it ->
//            invalid_offset; below max-deleted-entry-id -> too_old; else
//            recovered with XRANGE (offset +.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>

#include "windlass/history.hpp"

namespace windlass::redis {

// The stream key of a channel's history; empty when none can be kept.
std::string history_key(std::string_view channel);

struct LuaScript {
  std::string_view source;
  std::string sha1;  // hex
  explicit LuaScript(std::string_view src);
  // EVALSHA's arguments (the first element is "EVALSHA"); EVAL's when
  // `eval` (Redis answered NOSCRIPT: it did not have the script yet).
  std::vector<std::string> call(const std::vector<std::string>& keys, const std::vector<std::string>& args,
                                bool eval) const;
};

const LuaScript& append_script();
const LuaScript& read_script();

// ARGV of the append script.
std::vector<std::string> append_args(std::string_view head, std::string_view payload, bool binary,
                                     const HistoryOptions& options, bool sharded);
// ARGV of the read script.
std::vector<std::string> read_args(const std::optional<StreamOffset>& since, const HistoryOptions& options);
// The read script's reply; `error` says what was wrong with it.
HistoryRead parse_read_reply(const redisReply& reply, std::string& error);

}  // namespace windlass::redis
