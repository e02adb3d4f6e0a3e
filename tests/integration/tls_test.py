"""wss:// against windlass-echo's TLS listener, with Debian's python3-websockets.

The test makes its own CA and server certificates with the openssl command,
starts windlass-echo with a plain and a TLS listener side by side, and checks:
echo over wss:// (text, binary, 1 MiB), TLS 1.2 and 1.3, ALPN http/1.1, a
plain HTTP request on the TLS port answered in plain text, a client that does
not trust the certificate refused without harming others, and a certificate
reload on SIGHUP that keeps open connections and serves the new certificate
to new ones.

Run by ctest with WINDLASS_ECHO_BIN set; by hand:

    WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \
    /usr/bin/python3 tests/integration/tls_test.py
"""
import asyncio
import os
import signal
import socket
import ssl
import sys
import time
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.dir = wt.temp_dir("windlass-tls-")
        cls.ca = wt.make_ca(d)
        cert, key = wt.make_leaf(d, "server", common_name="windlass-test-100")
        cls.next_cert, cls.next_key = wt.make_leaf(d, "next", common_name="windlass-test-200")
        cls.cert = os.path.join(d, "live.pem")
        cls.key = os.path.join(d, "live.key")
        os.link(cert, cls.cert)
        os.link(key, cls.key)
        cls.server = wt.example("WINDLASS_ECHO_BIN", "--tls-port", "0", "--tls-cert", cls.cert,
                                "--tls-key", cls.key, "--threads", "2", name="windlass-echo (tls)",
                                tls=True).start()
        cls.port, cls.tls_port = cls.server.port, cls.server.tls_port
        cls.ctx = ssl.create_default_context(cafile=cls.ca)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_echo_over_wss(self):
        async def go():
            async with websockets.connect(f"wss://127.0.0.1:{self.tls_port}/", ssl=self.ctx,
                                          max_size=None, compression=None) as ws:
                for msg in ["hello over TLS", b"\x00\x01\x02" * 100, "κόσμε" * 10, "x" * (1 << 20)]:
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
                await ws.close(1000, "bye")
                self.assertEqual(ws.close_code, 1000)
        wt.run_async(go(), 30)

    def test_plain_and_tls_listeners_side_by_side(self):
        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/", compression=None) as plain, \
                    websockets.connect(f"wss://127.0.0.1:{self.tls_port}/", ssl=self.ctx, compression=None) as tls:
                await plain.send("plain")
                await tls.send("tls")
                self.assertEqual(await plain.recv(), "plain")
                self.assertEqual(await tls.recv(), "tls")
        wt.run_async(go(), 30)

    def handshake_with(self, ctx):
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return s.version(), s.selected_alpn_protocol(), s.getpeercert()

    def test_tls_versions_and_alpn(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=self.ca)
            ctx.minimum_version = ctx.maximum_version = version
            ctx.set_alpn_protocols(["http/1.1"])
            got, alpn, _ = self.handshake_with(ctx)
            self.assertEqual(got, {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
            self.assertEqual(alpn, "http/1.1")

    def test_plain_http_on_the_tls_port_gets_a_plain_answer(self):
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:100])
        self.assertIn(b"use https:// or wss://", data)

    def test_untrusting_client_is_refused_and_others_are_unharmed(self):
        with self.assertRaises(ssl.SSLError):
            self.handshake_with(ssl.create_default_context())  # system CAs: ours is not among them
        self.test_echo_over_wss()

    def test_sighup_reloads_the_certificate_without_dropping_connections(self):
        async def go():
            async with websockets.connect(f"wss://127.0.0.1:{self.tls_port}/", ssl=self.ctx,
                                          compression=None) as before:
                await before.send("before")
                self.assertEqual(await before.recv(), "before")
                _, _, cert = self.handshake_with(self.ctx)
                self.assertIn("windlass-test-100", str(cert["subject"]))
                os.replace(self.next_cert, self.cert)
                os.replace(self.next_key, self.key)
                self.server.signal(signal.SIGHUP)
                deadline = time.time() + 10
                while time.time() < deadline:
                    _, _, cert = self.handshake_with(self.ctx)
                    if "windlass-test-200" in str(cert["subject"]):
                        break
                    await asyncio.sleep(0.1)
                self.assertIn("windlass-test-200", str(cert["subject"]))
                await before.send("after")  # the connection opened before the reload lives on
                self.assertEqual(await before.recv(), "after")
        wt.run_async(go(), 30)


if __name__ == "__main__":
    wt.watchdog()
    wt.run_tests()
