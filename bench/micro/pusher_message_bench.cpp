// Micro-benchmarks of the Pusher hub's pure cores: what one subscribe, one
// client event and one API publish cost before any socket is touched.
//
//   cmake --build build/dev --target pusher_message_bench
//   build/dev/bench/micro/pusher_message_bench
//
// An API publish is parsed, verified and encoded once however many
// subscribers it has; BM_api_publish is that whole once-per-publish cost.
#include <benchmark/benchmark.h>

#include <string>

#include "channels/api_request.hpp"
#include "channels/client_message.hpp"
#include "channels/json_text.hpp"
#include "channels/presence.hpp"
#include "channels/server_message.hpp"
#include "channels/signature.hpp"

namespace {

namespace ch = windlass::channels;

constexpr std::string_view kKey = "278d425bdf160c739803";
constexpr std::string_view kSecret = "7ad3773142a6692b25b8";

const std::string kPrivateSubscribe =
    R"({"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4","channel":"private-foobar"}})";
const std::string kPresenceSubscribe =
    R"({"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80",)"
    R"("channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}","channel":"presence-foobar"}})";
const std::string kClientEvent =
    R"({"event":"client-typing","channel":"private-chat.1","data":{"user":"ann","typing":true}})";
const std::string kApiQuery =
    "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0"
    "&body_md5=ec365a775a4cd0599faeb73354201b6f"
    "&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
const std::string kApiBody = R"({"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"})";

void BM_parse_subscribe(benchmark::State& state) {
  ch::ClientMessageParser parser;
  ch::ClientMessage m;
  for (auto _ : state) {
    const auto e = parser.parse(kPrivateSubscribe, m);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kPrivateSubscribe.size()));
}
BENCHMARK(BM_parse_subscribe);

// The same without the copy into the parser's padded buffer.
void BM_parse_subscribe_padded(benchmark::State& state) {
  ch::ClientMessageParser parser;
  ch::ClientMessage m;
  std::string padded = kPrivateSubscribe;
  padded.reserve(padded.size() + ch::kJsonPadding);
  for (auto _ : state) {
    const auto e = parser.parse_padded(std::string_view(padded.data(), kPrivateSubscribe.size()), m);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kPrivateSubscribe.size()));
}
BENCHMARK(BM_parse_subscribe_padded);

// A private subscribe as the hub handles it: parse, then verify the auth.
void BM_private_subscribe_verified(benchmark::State& state) {
  ch::ClientMessageParser parser;
  ch::AppSigner signer(kKey, kSecret);
  ch::ClientMessage m;
  for (auto _ : state) {
    parser.parse(kPrivateSubscribe, m);
    const auto e = signer.verify_channel(m.channel_info.type, m.auth, "1234.1234", m.channel, m.channel_data);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_private_subscribe_verified);

// A presence subscribe: parse, verify, parse the member, encode member_added.
void BM_presence_subscribe_verified(benchmark::State& state) {
  ch::ClientMessageParser parser;
  ch::PresenceParser presence;
  ch::AppSigner signer(kKey, kSecret);
  ch::ClientMessage m;
  ch::PresenceMember member;
  std::string out;
  for (auto _ : state) {
    parser.parse(kPresenceSubscribe, m);
    const auto e = signer.verify_channel(m.channel_info.type, m.auth, "1234.1234", m.channel, m.channel_data);
    presence.parse_channel_data(m.channel_data, member);
    out.clear();
    ch::append_member_added(out, m.channel, {member.user_id, member.user_info});
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_presence_subscribe_verified);

void BM_parse_client_event(benchmark::State& state) {
  ch::ClientMessageParser parser;
  ch::ClientMessage m;
  for (auto _ : state) {
    const auto e = parser.parse(kClientEvent, m);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kClientEvent.size()));
}
BENCHMARK(BM_parse_client_event);

// HMAC-SHA256 of a private channel's string, one-shot against prepared.
void BM_hmac_one_shot(benchmark::State& state) {
  ch::Sha256Hex out;
  for (auto _ : state) {
    ch::hmac_sha256_hex(kSecret, "1234.1234:private-foobar", out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_hmac_one_shot);

void BM_hmac_prepared(benchmark::State& state) {
  ch::AppSigner signer(kKey, kSecret);
  ch::Sha256Hex out;
  for (auto _ : state) {
    signer.sign_private("1234.1234", "private-foobar", out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_hmac_prepared);

// The protocol page's example request: query parsing, timestamp, body MD5
// and the signature.
void BM_verify_api_request(benchmark::State& state) {
  ch::ApiRequestVerifier verifier;
  ch::AppSigner signer(kKey, kSecret);
  const ch::ApiRequest request{"POST", "/apps/3/events", kApiQuery, kApiBody};
  for (auto _ : state) {
    const auto e = verifier.verify(request, signer, 1353088179);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_verify_api_request);

void BM_parse_api_events(benchmark::State& state) {
  ch::ApiBodyParser parser;
  for (auto _ : state) {
    const auto e = parser.parse_events(kApiBody);
    benchmark::DoNotOptimize(e);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kApiBody.size()));
}
BENCHMARK(BM_parse_api_events);

// Everything an API publish costs once: path, verification, body, the
// channel event's bytes.
void BM_api_publish(benchmark::State& state) {
  ch::ApiRequestVerifier verifier;
  ch::ApiBodyParser parser;
  ch::AppSigner signer(kKey, kSecret);
  ch::ApiPath path;
  std::string out;
  const ch::ApiRequest request{"POST", "/apps/3/events", kApiQuery, kApiBody};
  for (auto _ : state) {
    ch::parse_api_path(request.method, request.path, path);
    verifier.verify(request, signer, 1353088179);
    parser.parse_events(request.body);
    const ch::ApiEvent& ev = parser.events()[0];
    out.clear();
    ch::append_channel_event_json(out, ev.name, ev.channels[0], ev.data_json);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_api_publish);

// A channel event whose data (range(0) bytes of JSON text) is escaped into
// a JSON string, as append_channel_event does; and the same data copied as
// the raw literal the API body carried (append_channel_event_json).
std::string json_payload(size_t n) {
  std::string s;
  while (s.size() < n) s += R"({"id":12345,"text":"hello world","ok":true},)";
  s.resize(n);
  return s;
}

void BM_encode_channel_event(benchmark::State& state) {
  const std::string data = json_payload(static_cast<size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out.clear();
    ch::append_channel_event(out, "my-event", "private-chat.1", data);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(data.size()));
}
BENCHMARK(BM_encode_channel_event)->Arg(20)->Arg(1024)->Arg(10240);

void BM_encode_channel_event_raw(benchmark::State& state) {
  std::string literal;
  ch::append_json_string(literal, json_payload(static_cast<size_t>(state.range(0))));
  std::string out;
  for (auto _ : state) {
    out.clear();
    ch::append_channel_event_json(out, "my-event", "private-chat.1", literal);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(literal.size()));
}
BENCHMARK(BM_encode_channel_event_raw)->Arg(20)->Arg(1024)->Arg(10240);

}  // namespace
