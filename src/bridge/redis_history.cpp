#include "bridge/redis_history.hpp"

#include <openssl/evp.h>

#include "bridge/redis_client.hpp"
#include "bridge/redis_link.hpp"

namespace windlass::redis {

std::string history_key(std::string_view channel) {
  std::string key;
  const size_t open = channel.find('{');
  const size_t close = open == std::string_view::npos ? open : channel.find('}', open + 1);
  if (open != std::string_view::npos && close != std::string_view::npos && close > open + 1) {
    key = std::string(channel) + "~h";  // the channel's own tag
  } else {
    key = "{" + std::string(channel) + "}~h";
  }
  if (hash_slot(key) != hash_slot(channel)) return {};
  return key;
}

namespace {

// Shared by both scripts: KEYS[1] is the stream; `age` and `ttl` are set.
// Creates it if it is missing (one entry added and deleted: the creation
// id becomes its max-deleted-entry-id) and deletes what is older than age.
#define WL_HISTORY_PRELUDE                                                                  \
  "local k = KEYS[1]\n"                                                                     \
  "if redis.call('EXISTS', k) == 0 then\n"                                                  \
  "  redis.call('XDEL', k, redis.call('XADD', k, '*', 'c', ''))\n"                          \
  "end\n"                                                                                   \
  "redis.call('PEXPIRE', k, ttl)\n"                                                         \
  "local t = redis.call('TIME')\n"                                                          \
  "local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - age\n"        \
  "if cutoff > 0 then\n"                                                                    \
  "  local old = redis.call('XRANGE', k, '-', '(' .. string.format('%d', cutoff) .. '-0',\n" \
  "                         'COUNT', 1000)\n"                                               \
  "  for _, e in ipairs(old) do redis.call('XDEL', k, e[1]) end\n"                          \
  "end\n"

// ARGV: head, payload, kind field ("t"/"b"), max_messages, max_age ms, ttl ms, sharded ("1"/"0").
constexpr std::string_view kAppend =
    "local max, age, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    WL_HISTORY_PRELUDE
    "local id = redis.call('XADD', k, '*', ARGV[3], ARGV[2])\n"
    "local over = redis.call('XLEN', k) - max\n"
    "if over > 0 then\n"
    "  for _, e in ipairs(redis.call('XRANGE', k, '-', '+', 'COUNT', over)) do redis.call('XDEL', k, e[1]) end\n"
    "end\n"
    "redis.call(ARGV[7] == '1' and 'SPUBLISH' or 'PUBLISH', KEYS[2],\n"
    "           ARGV[1] .. string.char(#id) .. id .. ARGV[2])\n"
    "return id\n";

// ARGV: since ("" for none), max_messages, max_age ms, ttl ms.
constexpr std::string_view kRead =
    "local since, max, age, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    WL_HISTORY_PRELUDE
    "local info = redis.call('XINFO', 'STREAM', k)\n"
    "local last, deleted = '0-0', '0-0'\n"
    "for i = 1, #info, 2 do\n"
    "  if info[i] == 'last-generated-id' then last = info[i + 1]\n"
    "  elseif info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end\n"
    "end\n"
    "if since == '' then return {'fresh', last} end\n"
    "local function less(a, b)\n"
    "  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"
    "  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n"
    "  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)\n"
    "  return am < bm or (am == bm and as < bs)\n"
    "end\n"
    "if less(last, since) then return {'invalid', last} end\n"
    "if less(since, deleted) then return {'too_old', last} end\n"
    "local out = {'recovered', last}\n"
    "for _, e in ipairs(redis.call('XRANGE', k, '(' .. since, '+', 'COUNT', max + 1)) do\n"
    "  out[#out + 1] = e[1]\n"
    "  out[#out + 1] = e[2][1]\n"
    "  out[#out + 1] = e[2][2]\n"
    "end\n"
    "return out\n";

#undef WL_HISTORY_PRELUDE

std::string sha1_hex(std::string_view s) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), digest, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count() > 0 ? ms.count() : 1);
}

std::string ttl_text(const HistoryOptions& options) {
  return std::to_string(2 * (options.max_age.count() > 0 ? options.max_age.count() : 1) + 60'000);
}

}  // namespace

LuaScript::LuaScript(std::string_view src) : source(src), sha1(sha1_hex(src)) {}

std::vector<std::string> LuaScript::call(const std::vector<std::string>& keys, const std::vector<std::string>& args,
                                         bool eval) const {
  std::vector<std::string> out;
  out.reserve(3 + keys.size() + args.size());
  out.emplace_back(eval ? "EVAL" : "EVALSHA");
  out.emplace_back(eval ? std::string(source) : sha1);
  out.push_back(std::to_string(keys.size()));
  out.insert(out.end(), keys.begin(), keys.end());
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

const LuaScript& append_script() {
  static const LuaScript script(kAppend);
  return script;
}

const LuaScript& read_script() {
  static const LuaScript script(kRead);
  return script;
}

std::vector<std::string> append_args(std::string_view head, std::string_view payload, bool binary,
                                     const HistoryOptions& options, bool sharded) {
  return {std::string(head),
          std::string(payload),
          binary ? "b" : "t",
          std::to_string(options.max_messages),
          ms_text(options.max_age),
          ttl_text(options),
          sharded ? "1" : "0"};
}

std::vector<std::string> read_args(const std::optional<StreamOffset>& since, const HistoryOptions& options) {
  return {since ? since->str() : std::string(), std::to_string(options.max_messages), ms_text(options.max_age),
          ttl_text(options)};
}

HistoryRead parse_read_reply(const redisReply& reply, std::string& error) {
  HistoryRead read;
  read.outcome = RecoveryOutcome::unavailable;
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 2 || (reply.elements - 2) % 3 != 0) {
    error = "the history read answered something else than its script returns";
    return read;
  }
  const std::string_view outcome = reply_string(*reply.element[0]);
  const auto position = StreamOffset::parse(reply_string(*reply.element[1]));
  if (!position) {
    error = "the history's position is not an offset";
    return read;
  }
  read.position = *position;
  if (outcome == "fresh") {
    read.outcome = RecoveryOutcome::fresh;
  } else if (outcome == "invalid") {
    read.outcome = RecoveryOutcome::invalid_offset;
  } else if (outcome == "too_old") {
    read.outcome = RecoveryOutcome::too_old;
  } else if (outcome == "recovered") {
    read.outcome = RecoveryOutcome::recovered;
    for (size_t i = 2; i + 2 < reply.elements; i += 3) {
      const auto offset = StreamOffset::parse(reply_string(*reply.element[i]));
      if (!offset) {
        error = "a history entry's id is not an offset";
        read.outcome = RecoveryOutcome::unavailable;
        read.missed.clear();
        return read;
      }
      HistoryEntry e;
      e.offset = *offset;
      e.kind = reply_string(*reply.element[i + 1]) == "b" ? MessageKind::binary : MessageKind::text;
      e.payload = std::string(reply_string(*reply.element[i + 2]));
      read.missed.push_back(std::move(e));
    }
  } else {
    error = "unknown history outcome \"" + std::string(outcome) + "\"";
    read.outcome = RecoveryOutcome::unavailable;
  }
  return read;
}

}  // namespace windlass::redis
