"""permessage-deflate (RFC 7692) against windlass-echo and windlass-chat.

Real peers: Debian's python3-websockets offers permessage-deflate by default;
a raw socket client plays the hostile cases (a decompression bomb, corrupt
data) that no honest library sends.

Run by ctest with WINDLASS_ECHO_BIN and WINDLASS_CHAT_BIN set; by hand:

    WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \
    WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat \
    /usr/bin/python3 tests/integration/deflate_test.py
"""
import asyncio
import os
import socket
import struct
import sys
import time
import unittest
import zlib

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402


def start(variable, *args):
    return wt.example(variable, *args).start()


def raw_deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]  # RFC 7692 §7.2.1: the tail is removed


class RawClient:
    def __init__(self, port, offer="permessage-deflate"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                        f"Sec-WebSocket-Extensions: {offer}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.s.recv(4096)
        self.head, self.buf = head.split(b"\r\n\r\n", 1)

    def send_frame(self, opcode, payload, rsv1=False):
        b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
        mask = b"\x01\x02\x03\x04"
        n = len(payload)
        hdr = bytes([b0, 0x80 | n]) if n < 126 else (
            bytes([b0, 0x80 | 126]) + struct.pack("!H", n) if n < 65536 else bytes([b0, 0x80 | 127]) + struct.pack("!Q", n))
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_close_code(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            while len(self.buf) >= 2:
                op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
                pos = 2
                if n == 126:
                    n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127:
                    n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
                if len(self.buf) < pos + n:
                    break
                payload, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
                if op == 8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        return None


class DeflateTest(unittest.TestCase):
    def echo_round_trips(self, mode):
        server = start("WINDLASS_ECHO_BIN", "--compression", mode)
        try:
            async def go():
                async with websockets.connect(server.url(), max_size=None) as ws:
                    ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
                    self.assertTrue(ext.startswith("permessage-deflate"), ext)
                    if mode == "shared":
                        self.assertIn("server_no_context_takeover", ext)
                    # Many messages through one context, all sizes, both kinds.
                    for i in range(200):
                        for msg in [f"message {i} " * (i % 50), bytes(range(256)) * (i % 5), "κόσμε" * i]:
                            await ws.send(msg)
                            self.assertEqual(await ws.recv(), msg)
                    big = os.urandom(300_000) + b"\x00" * 700_000
                    await ws.send(big)
                    self.assertEqual(await ws.recv(), big)
            wt.run_async(go())
        finally:
            server.stop()

    def test_echo_with_a_shared_compressor(self):
        self.echo_round_trips("shared")

    def test_echo_with_a_window_per_connection(self):
        self.echo_round_trips("per-connection")

    def test_decompression_bomb_is_refused_with_1009(self):
        server = start("WINDLASS_ECHO_BIN", "--compression", "shared", "--max-message-size", "1048576")
        try:
            c = RawClient(server.port)
            self.assertIn(b"permessage-deflate", c.head)
            bomb = raw_deflate(b"\x00" * (10 << 20))
            self.assertLess(len(bomb), 64 * 1024)
            c.send_frame(0x2, bomb, rsv1=True)
            self.assertEqual(c.read_close_code(), 1009)
            c.s.close()
        finally:
            server.stop()

    def test_corrupt_compressed_data_is_refused_with_1007(self):
        server = start("WINDLASS_ECHO_BIN", "--compression", "shared")
        try:
            c = RawClient(server.port)
            c.send_frame(0x1, b"\xff\xff\xff\xff garbage", rsv1=True)
            self.assertEqual(c.read_close_code(), 1007)
            c.s.close()
        finally:
            server.stop()

    def test_invalid_utf8_inside_compressed_text_is_refused_with_1007(self):
        server = start("WINDLASS_ECHO_BIN", "--compression", "shared")
        try:
            c = RawClient(server.port)
            c.send_frame(0x1, raw_deflate(b"ok \xed\xa0\x80 surrogate"), rsv1=True)
            self.assertEqual(c.read_close_code(), 1007)
            c.s.close()
        finally:
            server.stop()

    def test_rsv1_without_negotiation_is_a_protocol_error(self):
        server = start("WINDLASS_ECHO_BIN")  # compression off
        try:
            c = RawClient(server.port)
            self.assertNotIn(b"Sec-WebSocket-Extensions", c.head)
            c.send_frame(0x1, raw_deflate(b"hello"), rsv1=True)
            self.assertEqual(c.read_close_code(), 1002)
            c.s.close()
        finally:
            server.stop()

    def test_chat_broadcast_reaches_compressing_and_plain_clients(self):
        server = start("WINDLASS_CHAT_BIN", "--threads", "2")
        try:
            async def go():
                async with websockets.connect(server.url()) as a, \
                        websockets.connect(server.url()) as b, \
                        websockets.connect(server.url(), compression=None) as plain:
                    self.assertIn("permessage-deflate", b.response_headers.get("Sec-WebSocket-Extensions", ""))
                    self.assertIsNone(plain.response_headers.get("Sec-WebSocket-Extensions"))
                    await asyncio.sleep(0.2)
                    line = "a chat line long enough to be compressed " * 4
                    await a.send(line)
                    self.assertEqual(await asyncio.wait_for(b.recv(), 5), line)
                    self.assertEqual(await asyncio.wait_for(plain.recv(), 5), line)
            wt.run_async(go())
        finally:
            server.stop()


if __name__ == "__main__":
    wt.watchdog()
    wt.run_tests()
