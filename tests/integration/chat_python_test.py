#!/usr/bin/python3
"""The chat and echo examples against Python's `websockets` client.

`websockets` (Debian's python3-websockets) is a strict peer: it fails the
connection on a masked server frame, a reserved bit, bad UTF-8 in a text
frame or a malformed close frame, so every exchange here also checks the
server's framing. Each server is started on 127.0.0.1 with --port 0 and
stopped with SIGTERM, which must end it with exit code 0.

Run by ctest with WINDLASS_CHAT_BIN, WINDLASS_ECHO_BIN and
WINDLASS_SOURCE_DIR set; by hand:

    WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat \
    WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/chat_python_test.py
"""

import asyncio
import os
import signal
import sys
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import STEP_TIMEOUT_S, assert_silent, run_async as run, step  # noqa: E402

CHAT_MAX_MESSAGE = 64 * 1024


async def connect(url, **kwargs):
    kwargs.setdefault("open_timeout", STEP_TIMEOUT_S)
    kwargs.setdefault("close_timeout", STEP_TIMEOUT_S)
    return await step(websockets.connect(url, **kwargs), f"connect to {url}")


async def recv(ws, what="a message"):
    return await step(ws.recv(), f"receive {what}")


async def close_all(*sockets):
    await asyncio.gather(*(step(ws.close(), "close") for ws in sockets), return_exceptions=True)


def chat_server(public, name="windlass-chat"):
    return wt.example("WINDLASS_CHAT_BIN", "--public", public, name=name)


class ChatTest(unittest.TestCase):
    """windlass-chat: every text message goes to every other client."""

    @classmethod
    def setUpClass(cls):
        cls.public = wt.CHAT_PUBLIC
        cls.server = chat_server(cls.public).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.server.assert_alive()

    async def clients(self, n):
        return [await connect(self.server.url()) for _ in range(n)]

    def test_message_from_one_client_reaches_every_other_client_but_not_the_sender(self):
        async def body():
            a, b, c = await self.clients(3)
            try:
                await step(a.send("hello from a"), "send")
                self.assertEqual(await recv(b), "hello from a")
                self.assertEqual(await recv(c), "hello from a")
                await assert_silent(a, "the sender")
                # A marker from b is the next thing a sees: nothing of its
                # own was queued ahead of it.
                await step(b.send("marker from b"), "send")
                self.assertEqual(await recv(a), "marker from b")
                self.assertEqual(await recv(c), "marker from b")
                await assert_silent(b, "the sender")
            finally:
                await close_all(a, b, c)
        run(body())

    def test_unicode_text_arrives_unchanged(self):
        samples = [
            "héllo wörld",
            "你好，世界",
            "🚀🦀 emoji outside the BMP 𝄞",
            "ﺎﻠﺳﻼﻣ ﻊﻠﻴﻜﻣ — right to left",
            "e\u0301 combining, \u200b zero width, \ufeff BOM, \u0000 NUL",
            "\U0010ffff last code point",
        ]

        async def body():
            a, b = await self.clients(2)
            try:
                for text in samples:
                    await step(a.send(text), "send")
                    got = await recv(b, repr(text))
                    self.assertIsInstance(got, str)
                    self.assertEqual(got, text)
            finally:
                await close_all(a, b)
        run(body())

    def test_a_client_leaving_does_not_disturb_the_others(self):
        async def body():
            a, b, c, d = await self.clients(4)
            try:
                await step(c.close(1000, "leaving"), "close")
                self.assertEqual(c.close_code, 1000)
                # d vanishes without a close frame, as a crashed tab would.
                d.transport.abort()
                await step(d.wait_closed(), "abort")
                await asyncio.sleep(0.1)
                await step(a.send("still here?"), "send")
                self.assertEqual(await recv(b), "still here?")
                await step(b.send("yes"), "send")
                self.assertEqual(await recv(a), "yes")
                e = await connect(self.server.url())
                try:
                    await step(e.send("newcomer"), "send")
                    self.assertEqual(await recv(a), "newcomer")
                    self.assertEqual(await recv(b), "newcomer")
                finally:
                    await close_all(e)
            finally:
                await close_all(a, b)
        run(body())

    def test_fifty_messages_in_a_row_arrive_in_order(self):
        async def body():
            a, b = await self.clients(2)
            try:
                sent = [f"message {i:02d}" for i in range(50)]
                for text in sent:
                    await step(a.send(text), "send")
                got = [await recv(b, f"message {i}") for i in range(50)]
                self.assertEqual(got, sent)
            finally:
                await close_all(a, b)
        run(body())

    def test_message_at_the_size_limit_is_relayed_and_one_byte_more_closes_with_1009(self):
        async def body():
            a, b = await self.clients(2)
            try:
                at_limit = "x" * CHAT_MAX_MESSAGE
                await step(a.send(at_limit), "send")
                self.assertEqual(await recv(b, "a 64 KiB message"), at_limit)
                await step(a.send("y" * (CHAT_MAX_MESSAGE + 1)), "send")
                with self.assertRaises(websockets.ConnectionClosed):
                    await recv(a, "the close frame")
                self.assertEqual(a.close_code, 1009)
                await assert_silent(b, "the other client")
            finally:
                await close_all(a, b)
        run(body())

    def test_plain_get_serves_the_chat_page_on_the_websocket_path(self):
        with open(os.path.join(self.public, "index.html"), "rb") as f:
            expected = f.read()
        status, headers, body = wt.http_request(self.server.port, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers.get("Content-Type", ""))
        self.assertEqual(body, expected)


class StaticFilesTest(unittest.TestCase):
    """--public: files are served by path, and only from inside that folder."""

    @classmethod
    def setUpClass(cls):
        public = wt.temp_dir("windlass-public-")
        wt.write_file(public, "index.html", "<!doctype html><title>t</title>index\n")
        wt.write_file(public, "hello.txt", "hello, static\n")
        cls.server = chat_server(public, "windlass-chat (static)").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def get(self, path):
        status, _, body = wt.http_request(self.server.port, path)
        return status, body

    def test_serves_other_files_by_path(self):
        self.assertEqual(self.get("/hello.txt"), (200, b"hello, static\n"))

    def test_missing_file_is_404(self):
        status, _ = self.get("/no-such-file.txt")
        self.assertEqual(status, 404)

    def test_paths_outside_the_public_folder_are_refused(self):
        for path in ["/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                     "/..%2f..%2f..%2f..%2fetc%2fpasswd"]:
            with self.subTest(path=path):
                status, body = self.get(path)
                self.assertGreaterEqual(status, 400, path)
                self.assertLess(status, 500, path)
                self.assertNotIn(b"root:", body)


class EchoTest(unittest.TestCase):
    """windlass-echo against a strict client: sizes at every length boundary."""

    SIZES = [0, 125, 126, 65535, 65536, 1 << 20]

    @classmethod
    def setUpClass(cls):
        cls.server = wt.example("WINDLASS_ECHO_BIN", name="windlass-echo").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.server.assert_alive()

    def echo_sizes(self, compression):
        async def body():
            ws = await connect(self.server.url(), max_size=4 << 20, compression=compression)
            try:
                for size in self.SIZES:
                    text = "".join(chr(ord("a") + i % 26) for i in range(size))
                    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
                    with self.subTest(kind="text", size=size):
                        await step(ws.send(text), f"send text of {size}")
                        got = await recv(ws, f"echo of text of {size}")
                        self.assertIsInstance(got, str)
                        self.assertEqual(len(got), size)
                        self.assertEqual(got, text)
                    with self.subTest(kind="binary", size=size):
                        await step(ws.send(data), f"send binary of {size}")
                        got = await recv(ws, f"echo of binary of {size}")
                        self.assertIsInstance(got, bytes)
                        self.assertEqual(len(got), size)
                        self.assertEqual(got, data)
            finally:
                await close_all(ws)
        run(body())

    def test_echoes_text_and_binary_at_every_length_boundary(self):
        self.echo_sizes(compression=None)

    def test_echoes_with_permessage_deflate_offered(self):
        # Whether or not the server accepts the offer, the echo must match.
        self.echo_sizes(compression="deflate")

    def test_echoes_multibyte_text(self):
        async def body():
            ws = await connect(self.server.url(), compression=None)
            try:
                text = "ünïcødé 你好 🚀 " * 5000
                await step(ws.send(text), "send")
                self.assertEqual(await recv(ws), text)
            finally:
                await close_all(ws)
        run(body())

    def test_reassembles_a_fragmented_message(self):
        async def body():
            ws = await connect(self.server.url(), compression=None)
            try:
                await step(ws.send(["frag-1 ", "frag-2 ", "", "frag-3 🚀"]), "send fragments")
                self.assertEqual(await recv(ws), "frag-1 frag-2 frag-3 🚀")
                await step(ws.send([b"\x00\x01", b"\x02" * 70000, b"\xff"]), "send fragments")
                self.assertEqual(await recv(ws), b"\x00\x01" + b"\x02" * 70000 + b"\xff")
            finally:
                await close_all(ws)
        run(body())

    def test_ping_gets_a_pong_with_the_same_payload(self):
        async def body():
            ws = await connect(self.server.url(), compression=None)
            try:
                for payload in [b"", b"are you there?", bytes(range(125))]:
                    pong = await step(ws.ping(payload), "send ping")
                    await step(pong, f"pong for {payload[:16]!r}")
                # The connection is still good for data afterwards.
                await step(ws.send("after ping"), "send")
                self.assertEqual(await recv(ws), "after ping")
            finally:
                await close_all(ws)
        run(body())

    def test_close_1000_with_reason_gets_a_clean_close_1000(self):
        async def body():
            ws = await connect(self.server.url(), compression=None)
            await step(ws.send("one message first"), "send")
            self.assertEqual(await recv(ws), "one message first")
            await step(ws.close(1000, "bye"), "close handshake")
            await step(ws.wait_closed(), "TCP close")
            self.assertIsNotNone(ws.close_rcvd, "the server sent no close frame")
            self.assertEqual(ws.close_rcvd.code, 1000)
            self.assertEqual(ws.close_code, 1000)
        run(body())


class ShutdownTest(unittest.TestCase):
    """SIGTERM: every client gets close 1001, then the process exits 0."""

    def test_sigterm_closes_every_client_with_1001_and_exits_0(self):
        server = chat_server(wt.CHAT_PUBLIC, "windlass-chat (shutdown)").start()

        async def body():
            sockets = [await connect(server.url()) for _ in range(3)]
            server.signal(signal.SIGTERM)
            self.signalled = True
            for ws in sockets:
                with self.assertRaises(websockets.ConnectionClosed):
                    await recv(ws, "the close frame")
                self.assertIsNotNone(ws.close_rcvd, "no close frame before the TCP close")
                self.assertEqual(ws.close_rcvd.code, 1001)
        self.signalled = False
        try:
            run(body())
        finally:
            # A second SIGTERM during shutdown is a different scenario: only
            # send one if the test failed before sending its own.
            server.stop(signal_it=not self.signalled)


if __name__ == "__main__":
    wt.watchdog()
    wt.run_tests()
