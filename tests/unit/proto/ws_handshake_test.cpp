// Tests for the server side of the RFC 6455 opening handshake.
#include "proto/ws_handshake.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <utility>

namespace windlass::proto {
namespace {

// The RFC 6455 §1.3 / §4.2.2 example.
constexpr const char* kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// A parsed request and the buffer its views point into.
struct Parsed {
  explicit Parsed(std::string text) : bytes(std::move(text)) {
    Http1Parser parser;
    status = parser.parse(bytes, head);
  }
  std::string bytes;
  HttpRequestHead head;
  ParseStatus status;
};

// A valid upgrade request with one line swapped in or out: `drop` removes
// the line that starts with it, `add` appends lines.
std::string upgrade_request(const std::string& drop = "", const std::string& add = "",
                            const std::string& request_line = "GET /chat HTTP/1.1") {
  const std::array<std::string, 6> lines = {
      "Host: server.example.com",   "Upgrade: websocket",
      "Connection: Upgrade",        std::string("Sec-WebSocket-Key: ") + kRfcKey,
      "Origin: http://example.com", "Sec-WebSocket-Version: 13",
  };
  std::string out = request_line + "\r\n";
  for (const std::string& line : lines) {
    if (!drop.empty() && line.rfind(drop, 0) == 0) continue;
    out += line + "\r\n";
  }
  return out + add + "\r\n";
}

HandshakeError validate(const std::string& request) {
  const Parsed p(request);
  EXPECT_EQ(p.status, ParseStatus::done) << request;
  UpgradeRequest u;
  return validate_upgrade(p.head, u);
}

TEST(WsHandshake, accept_key_matches_the_rfc6455_example) {
  EXPECT_EQ(compute_accept_key(kRfcKey), kRfcAccept);
}

TEST(WsHandshake, accept_key_is_28_characters_for_any_key) {
  EXPECT_EQ(compute_accept_key("").size(), 28u);
  EXPECT_EQ(compute_accept_key(std::string(1000, 'k')).size(), 28u);
  EXPECT_NE(compute_accept_key("AAAAAAAAAAAAAAAAAAAAAA=="), kRfcAccept);
}

TEST(WsHandshake, accepts_the_rfc6455_example_request) {
  const Parsed p(upgrade_request("",
                                 "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                 "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
  ASSERT_EQ(p.status, ParseStatus::done);
  UpgradeRequest u;
  ASSERT_EQ(validate_upgrade(p.head, u), HandshakeError::none);
  EXPECT_EQ(u.key, kRfcKey);
  EXPECT_EQ(u.protocols, "chat, superchat");
  EXPECT_EQ(u.extensions, "permessage-deflate");
  EXPECT_EQ(u.origin, "http://example.com");
  EXPECT_EQ(compute_accept_key(u.key), kRfcAccept);
  EXPECT_EQ(http_status_for(HandshakeError::none), 101);
}

TEST(WsHandshake, accepts_firefox_style_connection_list_and_mixed_case) {
  EXPECT_EQ(validate(upgrade_request("Connection", "Connection: keep-alive, Upgrade\r\n")),
            HandshakeError::none);
  EXPECT_EQ(validate(upgrade_request("Upgrade", "upgrade: WebSocket\r\n")), HandshakeError::none);
  EXPECT_EQ(validate(upgrade_request("Connection", "CONNECTION: UPGRADE\r\n")), HandshakeError::none);
}

TEST(WsHandshake, finds_tokens_in_repeated_list_headers) {
  EXPECT_EQ(validate(upgrade_request("Connection",
                                     "Connection: keep-alive\r\n"
                                     "Connection: Upgrade\r\n")),
            HandshakeError::none);
  EXPECT_EQ(validate(upgrade_request("Upgrade", "Upgrade: h2c\r\nUpgrade: websocket\r\n")),
            HandshakeError::none);
}

TEST(WsHandshake, leaves_missing_optional_fields_empty) {
  const Parsed p(upgrade_request("Origin"));
  UpgradeRequest u;
  u.origin = "stale";
  ASSERT_EQ(validate_upgrade(p.head, u), HandshakeError::none);
  EXPECT_EQ(u.origin, "");
  EXPECT_EQ(u.protocols, "");
  EXPECT_EQ(u.extensions, "");
}

TEST(WsHandshake, accepts_http11_and_later_1x) {
  EXPECT_EQ(validate(upgrade_request("", "", "GET / HTTP/1.2")), HandshakeError::none);
  EXPECT_EQ(validate(upgrade_request("", "", "GET http://server.example.com/chat HTTP/1.1")),
            HandshakeError::none);
}

TEST(WsHandshake, rejects_method_not_get) {
  EXPECT_EQ(validate(upgrade_request("", "", "POST /chat HTTP/1.1")), HandshakeError::method_not_get);
  EXPECT_EQ(validate(upgrade_request("", "", "get /chat HTTP/1.1")), HandshakeError::method_not_get);
  EXPECT_EQ(http_status_for(HandshakeError::method_not_get), 405);
}

TEST(WsHandshake, rejects_http10) {
  EXPECT_EQ(validate(upgrade_request("", "", "GET /chat HTTP/1.0")), HandshakeError::http_version);
  EXPECT_EQ(http_status_for(HandshakeError::http_version), 400);
}

TEST(WsHandshake, rejects_missing_host) {
  EXPECT_EQ(validate(upgrade_request("Host")), HandshakeError::missing_host);
  EXPECT_EQ(validate(upgrade_request("Host", "Host:\r\n")), HandshakeError::missing_host);
  EXPECT_EQ(validate(upgrade_request("", "Host: other.example.com\r\n")), HandshakeError::missing_host);
  EXPECT_EQ(http_status_for(HandshakeError::missing_host), 400);
}

TEST(WsHandshake, rejects_not_upgrade) {
  EXPECT_EQ(validate(upgrade_request("Upgrade")), HandshakeError::not_upgrade);
  EXPECT_EQ(validate(upgrade_request("Upgrade", "Upgrade: h2c\r\n")), HandshakeError::not_upgrade);
  EXPECT_EQ(validate(upgrade_request("Upgrade", "Upgrade: websockets\r\n")), HandshakeError::not_upgrade);
  EXPECT_EQ(http_status_for(HandshakeError::not_upgrade), 426);
}

TEST(WsHandshake, rejects_missing_connection_upgrade) {
  EXPECT_EQ(validate(upgrade_request("Connection")), HandshakeError::missing_connection_upgrade);
  EXPECT_EQ(validate(upgrade_request("Connection", "Connection: keep-alive\r\n")),
            HandshakeError::missing_connection_upgrade);
  EXPECT_EQ(validate(upgrade_request("Connection", "Connection: upgradex\r\n")),
            HandshakeError::missing_connection_upgrade);
  EXPECT_EQ(http_status_for(HandshakeError::missing_connection_upgrade), 400);
}

TEST(WsHandshake, rejects_bad_version) {
  const char* const bad[] = {"",
                             "Sec-WebSocket-Version: 8\r\n",
                             "Sec-WebSocket-Version: 13, 8\r\n",
                             "Sec-WebSocket-Version: 013\r\n",
                             "Sec-WebSocket-Version:\r\n",
                             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n"};
  for (const char* add : bad) {
    EXPECT_EQ(validate(upgrade_request("Sec-WebSocket-Version", add)), HandshakeError::bad_version) << add;
  }
  EXPECT_EQ(http_status_for(HandshakeError::bad_version), 426);
}

TEST(WsHandshake, rejects_bad_key) {
  const char* const bad[] = {
      "",
      "Sec-WebSocket-Key:\r\n",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n",    // 23 characters
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n",  // 25 characters
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAA\r\n",   // no padding
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ=A=\r\n",   // padding in the wrong place
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=A\r\n",   // broken padding
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n",   // not a base64 character
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n",   // base64url is not base64
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\n",   // decodes to 17 bytes
      ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),  // repeated
  };
  for (const char* add : bad) {
    EXPECT_EQ(validate(upgrade_request("Sec-WebSocket-Key", add)), HandshakeError::bad_key) << add;
  }
  EXPECT_EQ(http_status_for(HandshakeError::bad_key), 400);
}

TEST(WsHandshake, accepts_any_key_of_22_base64_characters_and_padding) {
  EXPECT_EQ(validate(upgrade_request("Sec-WebSocket-Key", "Sec-WebSocket-Key: ++++//++09azAZ++++++++==\r\n")),
            HandshakeError::none);
}

TEST(WsHandshake, checks_in_rfc_order) {
  // Everything wrong: the method is reported first.
  EXPECT_EQ(validate("POST / HTTP/1.0\r\n\r\n"), HandshakeError::method_not_get);
  EXPECT_EQ(validate("GET / HTTP/1.0\r\n\r\n"), HandshakeError::http_version);
  EXPECT_EQ(validate("GET / HTTP/1.1\r\n\r\n"), HandshakeError::missing_host);
  EXPECT_EQ(validate("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), HandshakeError::not_upgrade);
  EXPECT_EQ(validate("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
            HandshakeError::missing_connection_upgrade);
  EXPECT_EQ(validate("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                     "Sec-WebSocket-Key: x\r\n\r\n"),
            HandshakeError::bad_version);
  EXPECT_EQ(validate("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n"),
            HandshakeError::bad_key);
}

TEST(WsHandshake, wants_websocket_looks_only_at_upgrade) {
  EXPECT_TRUE(wants_websocket(Parsed("POST / HTTP/1.0\r\nUpgrade: WebSocket\r\n\r\n").head));
  EXPECT_TRUE(wants_websocket(Parsed("GET / HTTP/1.1\r\nUpgrade: h2c, websocket\r\n\r\n").head));
  EXPECT_FALSE(wants_websocket(Parsed("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n").head));
  EXPECT_FALSE(wants_websocket(Parsed("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n").head));
}

TEST(WsHandshake, every_error_has_a_status_and_a_reason) {
  const HandshakeError all[] = {HandshakeError::method_not_get,
                                HandshakeError::http_version,
                                HandshakeError::missing_host,
                                HandshakeError::not_upgrade,
                                HandshakeError::missing_connection_upgrade,
                                HandshakeError::bad_version,
                                HandshakeError::bad_key};
  const int want[] = {405, 400, 400, 426, 400, 426, 400};
  for (size_t i = 0; i < std::size(all); ++i) {
    EXPECT_EQ(http_status_for(all[i]), want[i]) << describe(all[i]);
    EXPECT_STRNE(describe(all[i]), describe(HandshakeError::none));
  }
}

// --- subprotocols ------------------------------------------------------------

TEST(WsHandshake, select_subprotocol_follows_the_servers_preference) {
  const std::string supported[] = {"v2.chat", "chat"};
  EXPECT_EQ(select_subprotocol("chat, v2.chat", supported), "v2.chat");
  EXPECT_EQ(select_subprotocol("chat", supported), "chat");
  EXPECT_EQ(select_subprotocol("superchat, chat", supported), "chat");
}

TEST(WsHandshake, select_subprotocol_trims_ows_and_matches_exactly) {
  const std::string supported[] = {"chat"};
  EXPECT_EQ(select_subprotocol(" \tchat\t ,x", supported), "chat");
  EXPECT_EQ(select_subprotocol(",,chat,,", supported), "chat");
  EXPECT_EQ(select_subprotocol("Chat", supported), "");
  EXPECT_EQ(select_subprotocol("chatty, cha", supported), "");
  EXPECT_EQ(select_subprotocol("c hat", supported), "");
}

TEST(WsHandshake, select_subprotocol_returns_empty_when_nothing_matches) {
  const std::string supported[] = {"chat", ""};
  EXPECT_EQ(select_subprotocol("", supported), "");
  EXPECT_EQ(select_subprotocol(",, ,", supported), "");
  EXPECT_EQ(select_subprotocol("mqtt", supported), "");
  EXPECT_EQ(select_subprotocol("chat", {}), "");
}

// --- the 101 response --------------------------------------------------------------

TEST(WsHandshake, builds_the_minimal_accept_response) {
  std::string out = "left over from before";
  const std::string& r = build_accept_response(out, kRfcAccept, "", "");
  EXPECT_EQ(&r, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "\r\n");
}

TEST(WsHandshake, builds_an_accept_response_with_protocol_and_extensions) {
  std::string out;
  build_accept_response(out, kRfcAccept, "chat", "permessage-deflate; server_no_context_takeover");
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: chat\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            "\r\n");
  build_accept_response(out, kRfcAccept, "", "permessage-deflate");
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            "\r\n");
}

TEST(WsHandshake, the_response_parses_back_as_a_101_head) {
  // A round trip through our own parser's header rules: every line is a
  // valid field line and the head ends with one empty line.
  std::string out;
  build_accept_response(out, compute_accept_key(kRfcKey), "chat", "permessage-deflate");
  const std::string as_request = "GET / HTTP/1.1\r\n" + out.substr(out.find("\r\n") + 2);
  const Parsed p(as_request);
  ASSERT_EQ(p.status, ParseStatus::done);
  EXPECT_EQ(p.head.header("Sec-WebSocket-Accept"), kRfcAccept);
  EXPECT_EQ(p.head.header_count, 5u);
}

}  // namespace
}  // namespace windlass::proto
