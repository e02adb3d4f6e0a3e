// Micro-benchmarks for the request-head parser and the handshake helpers.
//
//   g++ -std=c++20 -O2 -Isrc bench/micro/http1_parser_bench.cpp
//       src/proto/http1_parser.cpp src/proto/ws_handshake.cpp
//       -lbenchmark -lbenchmark_main -lcrypto -lpthread -o /tmp/http1_parser_bench
//   /tmp/http1_parser_bench
//
// The request is the one Chromium sends to open a WebSocket (500 bytes, 12
// fields), so bytes/s here is what one upgrade costs the HttpServer.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "proto/http1_parser.hpp"
#include "proto/ws_handshake.hpp"

namespace {

using namespace windlass::proto;

const std::string kChromiumUpgrade =
    "GET /chat?room=lobby HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://example.com:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

// The whole head in one read, the usual case.
void BM_parse_chromium_upgrade(benchmark::State& state) {
  HttpRequestHead head;
  for (auto _ : state) {
    Http1Parser parser;
    const ParseStatus st = parser.parse(kChromiumUpgrade, head);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(head);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kChromiumUpgrade.size()));
}
BENCHMARK(BM_parse_chromium_upgrade);

// The head in `range(0)`-byte reads, each call given everything so far: the
// incremental scan should keep the cost close to a single call.
void BM_parse_chromium_upgrade_in_pieces(benchmark::State& state) {
  const size_t piece = static_cast<size_t>(state.range(0));
  HttpRequestHead head;
  for (auto _ : state) {
    Http1Parser parser;
    ParseStatus st = ParseStatus::need_more;
    for (size_t len = piece; st == ParseStatus::need_more; len += piece) {
      st = parser.parse(std::string_view(kChromiumUpgrade).substr(0, len), head);
    }
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(head);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kChromiumUpgrade.size()));
}
BENCHMARK(BM_parse_chromium_upgrade_in_pieces)->Arg(1)->Arg(16)->Arg(128);

// Parse plus every check and string the 101 answer needs.
void BM_full_upgrade(benchmark::State& state) {
  HttpRequestHead head;
  std::string response;
  const std::string supported[] = {"chat"};
  for (auto _ : state) {
    Http1Parser parser;
    parser.parse(kChromiumUpgrade, head);
    UpgradeRequest up;
    validate_upgrade(head, up);
    const std::string accept = compute_accept_key(up.key);
    build_accept_response(response, accept, select_subprotocol(up.protocols, supported), "");
    benchmark::DoNotOptimize(response.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_full_upgrade);

void BM_validate_upgrade(benchmark::State& state) {
  HttpRequestHead head;
  Http1Parser parser;
  parser.parse(kChromiumUpgrade, head);
  for (auto _ : state) {
    UpgradeRequest up;
    benchmark::DoNotOptimize(validate_upgrade(head, up));
    benchmark::DoNotOptimize(up);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_validate_upgrade);

void BM_compute_accept_key(benchmark::State& state) {
  for (auto _ : state) {
    std::string accept = compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    benchmark::DoNotOptimize(accept.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_compute_accept_key);

}  // namespace
