"""wss:// against windlass-echo's TLS listener, with Debian's python3-websockets.

The test makes its own CA and server certificates with the openssl command,
starts windlass-echo with a plain and a TLS listener side by side, and checks:
echo over wss:// (text, binary, 1 MiB), TLS 1.2 and 1.3, ALPN http/1.1, a
plain HTTP request on the TLS port answered in plain text, a client that does
not trust the certificate refused without harming others, and a certificate
reload on SIGHUP that keeps open connections and serves the new certificate
to new ones.
"""
import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

ECHO = os.environ.get("WINDLASS_ECHO_BIN")
LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)( \(tls\))?$")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, serial):
    """A server certificate for 127.0.0.1 signed by the test CA in d."""
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-subj", f"/CN=windlass-test-{serial}", "-out", f"{name}.csr", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", str(serial),
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not ECHO:
            raise unittest.SkipTest("WINDLASS_ECHO_BIN not set")
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-subj", "/CN=windlass test CA", "-days", "2", "-out", "ca.pem", cwd=d)
        make_cert(d, "server", 100)
        make_cert(d, "next", 200)
        cls.cert = os.path.join(d, "live.pem")
        cls.key = os.path.join(d, "live.key")
        os.link(os.path.join(d, "server.pem"), cls.cert)
        os.link(os.path.join(d, "server.key"), cls.key)
        cls.proc = subprocess.Popen(
            [ECHO, "--host", "127.0.0.1", "--port", "0", "--tls-port", "0", "--tls-cert", cls.cert,
             "--tls-key", cls.key, "--threads", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ports = {}
        deadline = time.time() + 15
        while len(ports) < 2 and time.time() < deadline:
            line = cls.proc.stdout.readline()
            if not line:
                break
            m = LISTENING.match(line.strip())
            if m:
                ports["tls" if m.group(2) else "plain"] = int(m.group(1))
        if len(ports) < 2:
            cls.proc.kill()
            raise RuntimeError(f"server did not report both listeners: {ports}")
        cls.port, cls.tls_port = ports["plain"], ports["tls"]
        cls.ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        try:
            rc = cls.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            rc = "timeout"
        cls.dir.cleanup()
        assert rc == 0, f"windlass-echo exited with {rc}: {cls.proc.stderr.read()[-2000:]}"

    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 30))

    def test_echo_over_wss(self):
        async def go():
            async with websockets.connect(f"wss://127.0.0.1:{self.tls_port}/", ssl=self.ctx,
                                          max_size=None, compression=None) as ws:
                for msg in ["hello over TLS", b"\x00\x01\x02" * 100, "κόσμε" * 10, "x" * (1 << 20)]:
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
                await ws.close(1000, "bye")
                self.assertEqual(ws.close_code, 1000)
        self.run_async(go())

    def test_plain_and_tls_listeners_side_by_side(self):
        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/", compression=None) as plain, \
                    websockets.connect(f"wss://127.0.0.1:{self.tls_port}/", ssl=self.ctx, compression=None) as tls:
                await plain.send("plain")
                await tls.send("tls")
                self.assertEqual(await plain.recv(), "plain")
                self.assertEqual(await tls.recv(), "tls")
        self.run_async(go())

    def handshake_with(self, ctx):
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return s.version(), s.selected_alpn_protocol(), s.getpeercert()

    def test_tls_versions_and_alpn(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=os.path.join(self.dir.name, "ca.pem"))
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
                d = self.dir.name
                os.replace(os.path.join(d, "next.pem"), self.cert)
                os.replace(os.path.join(d, "next.key"), self.key)
                self.proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 10
                while time.time() < deadline:
                    _, _, cert = self.handshake_with(self.ctx)
                    if "windlass-test-200" in str(cert["subject"]):
                        break
                    await asyncio.sleep(0.1)
                self.assertIn("windlass-test-200", str(cert["subject"]))
                await before.send("after")  # the connection opened before the reload lives on
                self.assertEqual(await before.recv(), "after")
        self.run_async(go())


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"tls_test: {result.testsRun - failed - len(result.skipped)} passed, {failed} failed")
    sys.exit(1 if failed else 0)
