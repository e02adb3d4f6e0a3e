#!/usr/bin/python3
"""deploy/nginx/windlass.conf and windlass-tls.conf under Debian's real
nginx, with two real windlass-server instances behind them.

The two files are rendered into a temporary nginx prefix: the listen
directives move to free ports on 127.0.0.1, the upstream lines point at the
two instances, the certificate paths at a throwaway CA's certificate, and
proxy_read_timeout/proxy_send_timeout shrink from 75 s to 3 s (the
instances ping every second instead of every 30 s: the same ratio, in a
test's time). Everything else is the file as shipped.

Checked:
- the page, /healthz and /metrics through the plain and the TLS listener;
  TLS 1.2 and 1.3 both work; HSTS is sent.
- chat over wss:// and ws:// through nginx: with ip_hash every client from
  127.0.0.1 lands on the same instance (the chat room is per process), so
  they all see each other's messages; repeated connections stay there.
- the instance's access log shows nginx's address as remote and the
  client's address (after what the client itself sent) as forwarded_for.
- an idle WebSocket outlives proxy_read_timeout because the server's pings
  keep it moving.
- a rolling restart (item 9): SIGTERM the instance holding the clients
  (1 s drain, /readyz 503), every client gets 1001, reconnects through nginx
  to the other instance; restart it, SIGTERM the other; at the end every
  client is connected and exchanges messages with all the others.

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/deploy_nginx_test.py
"""

import asyncio
import os
import re
import signal
import ssl
import sys
import time
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import STEP_TIMEOUT_S  # noqa: E402

wt.require_programs("nginx", "openssl")
wt.watchdog(85)

NGINX_DIR = os.path.join(wt.DEPLOY_DIR, "nginx")
PING_INTERVAL = "1s"  # the instances' websocket.ping_interval in this test
PROXY_TIMEOUT = "3s"  # proxy_read_timeout / proxy_send_timeout in this test
DRAIN = "1s"


def substitute(text, pattern, repl, count, what):
    new, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == count, f"expected {count} {what} in the template, found {n}: did the file change shape?"
    return new


def render_nginx(directory, plain_port, tls_port, upstreams, cert, key):
    """nginx.conf in `directory` including both templates, rewritten as the
    module docstring says."""
    with open(os.path.join(NGINX_DIR, "windlass.conf")) as f:
        plain = f.read()
    with open(os.path.join(NGINX_DIR, "windlass-tls.conf")) as f:
        tls = f.read()

    servers = iter(upstreams)
    plain = substitute(plain, r"^(\s*)server 127\.0\.0\.1:\d+(.*);$",
                       lambda m: f"{m.group(1)}server 127.0.0.1:{next(servers)}{m.group(2)};", 2, "upstream servers")
    plain = substitute(plain, r"^\s*listen 80;$", f"    listen 127.0.0.1:{plain_port};", 1, "listen 80")
    plain = substitute(plain, r"^\s*listen \[::\]:80;\n", "", 1, "listen [::]:80")
    tls = substitute(tls, r"^\s*listen 443 ssl;$", f"    listen 127.0.0.1:{tls_port} ssl;", 1, "listen 443 ssl")
    tls = substitute(tls, r"^\s*listen \[::\]:443 ssl;\n", "", 1, "listen [::]:443 ssl")
    tls = substitute(tls, r"^(\s*)ssl_certificate\s+\S+;$", rf"\g<1>ssl_certificate {cert};", 1, "ssl_certificate")
    tls = substitute(tls, r"^(\s*)ssl_certificate_key\s+\S+;$", rf"\g<1>ssl_certificate_key {key};", 1,
                     "ssl_certificate_key")
    for name in ("plain", "tls"):
        text = plain if name == "plain" else tls
        text = substitute(text, r"^(\s*)proxy_(read|send)_timeout 75s;$", rf"\g<1>proxy_\g<2>_timeout {PROXY_TIMEOUT};",
                          2, "proxy_read_timeout/proxy_send_timeout 75s")
        if name == "plain":
            plain = text
        else:
            tls = text
    with open(os.path.join(directory, "windlass.conf"), "w") as f:
        f.write(plain)
    with open(os.path.join(directory, "windlass-tls.conf"), "w") as f:
        f.write(tls)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(directory, "temp", sub), exist_ok=True)
    conf = os.path.join(directory, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/temp/client_body;
    proxy_temp_path {directory}/temp/proxy;
    fastcgi_temp_path {directory}/temp/fastcgi;
    uwsgi_temp_path {directory}/temp/uwsgi;
    scgi_temp_path {directory}/temp/scgi;
    include {directory}/windlass.conf;
    include {directory}/windlass-tls.conf;
}}
""")
    return conf


class Stack:
    """Two instances and nginx in front of them, all in one temp dir."""

    def __init__(self):
        self.tmp = wt.temp_dir("windlass-nginx-")
        # nginx's worker runs as an unprivileged user when the master is root.
        os.chmod(self.tmp, 0o755)
        self.ca = wt.make_ca(self.tmp)
        cert, key = wt.make_leaf(self.tmp, "server")
        # /quiet: an echo route that never pings, the control for the
        # proxy_read_timeout test.
        self.config = wt.server_config(self.tmp, drain_delay=DRAIN, shutdown_timeout="5s",
                                       ping_interval=PING_INTERVAL, threads=2,
                                       extra_routes='[[route]]\npath = "/quiet"\ncomponent = "echo"\n'
                                                    'ping_interval = 0\n')
        self.instances = [wt.windlass_server(self.config, name=n).start() for n in ("a", "b")]
        self.plain_port, self.tls_port = wt.free_port(), wt.free_port()
        conf = render_nginx(self.tmp, self.plain_port, self.tls_port, [s.port for s in self.instances], cert, key)
        self.nginx = wt.nginx(conf, self.tmp, ready=lambda: wt.http_status(self.plain_port, "/healthz") == 200)
        try:
            self.nginx.start()
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- nginx ---\n{self.nginx_output()}") from None

    def nginx_output(self):
        out = self.nginx.log_text()[-3000:]
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                out += f.read()[-3000:]
        except OSError:
            pass
        return out

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.plain_port}/"

    @property
    def wss_url(self):
        return f"wss://127.0.0.1:{self.tls_port}/"

    def ssl_context(self, max_version=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if max_version:
            ctx.maximum_version = max_version
        return ctx

    def connect(self, secure, path="/", headers=None, max_version=None):
        if secure:
            return websockets.connect(self.wss_url.rstrip("/") + path, ssl=self.ssl_context(max_version),
                                      open_timeout=STEP_TIMEOUT_S, ping_interval=None, extra_headers=headers)
        return websockets.connect(self.ws_url.rstrip("/") + path, open_timeout=STEP_TIMEOUT_S, ping_interval=None,
                                  extra_headers=headers)

    def open_websockets(self):
        """{instance name: windlass_websocket_connections_open}, asked of
        each instance directly."""
        return {s.name: int(wt.scrape_metric(s.port, "windlass_websocket_connections_open") or 0)
                for s in self.instances if s.alive()}

    def stop(self):
        try:
            if self.nginx.alive():
                self.nginx.terminate(timeout=5)  # SIGQUIT, graceful: finish requests, then exit
            for s in self.instances:
                if s.alive():
                    s.stop()
        finally:
            wt.kill_all()


async def recv(ws, timeout=STEP_TIMEOUT_S):
    return await asyncio.wait_for(ws.recv(), timeout)


class NginxProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_page_health_and_metrics_through_both_listeners(self):
        s = self.stack
        status, _, body = wt.http_request(s.plain_port, "/")
        self.assertEqual(status, 200)
        self.assertIn(b'id="status"', body)
        status, headers, body = wt.http_request(s.tls_port, "/", context=s.ssl_context())
        self.assertEqual(status, 200)
        self.assertIn(b'id="status"', body)
        self.assertIn("max-age=", headers.get("Strict-Transport-Security", ""))
        self.assertEqual(wt.http_status(s.tls_port, "/readyz", context=s.ssl_context()), 200)
        # /metrics is allowed from 127.0.0.1 only; this test is 127.0.0.1.
        status, _, body = wt.http_request(s.plain_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"windlass_connections_open", body)

    def test_wss_speaks_tls_1_2_and_1_3(self):
        s = self.stack

        async def version(max_version):
            async with s.connect(True, "/echo", max_version=max_version) as ws:
                await ws.send("tls")
                self.assertEqual(await recv(ws), "tls")
                return ws.transport.get_extra_info("ssl_object").version()

        self.assertEqual(asyncio.run(version(ssl.TLSVersion.TLSv1_2)), "TLSv1.2")
        self.assertEqual(asyncio.run(version(None)), "TLSv1.3")

    def test_chat_over_wss_and_ws_on_one_sticky_instance(self):
        s = self.stack
        # Connections of the tests before may take a moment to be counted out.
        wt.wait_until(lambda: sum(s.open_websockets().values()) == 0, "no WebSocket open on either instance", 5)

        async def counts_become(predicate, what):
            deadline = time.monotonic() + 5
            while not predicate(counts := s.open_websockets()):
                self.assertLess(time.monotonic(), deadline, f"{what}: {counts}")
                await asyncio.sleep(0.05)
            return counts

        async def scenario():
            # Two browsers over TLS, one over plain HTTP; one of them behind
            # a proxy of its own that already set X-Forwarded-For.
            a = await s.connect(True, headers={"X-Forwarded-For": "203.0.113.7"})
            b = await s.connect(True)
            c = await s.connect(False)
            try:
                await a.send("from a over wss")
                self.assertEqual(await recv(b), "from a over wss")
                self.assertEqual(await recv(c), "from a over wss")
                await c.send("from c over ws")
                self.assertEqual(await recv(a), "from c over ws")
                self.assertEqual(await recv(b), "from c over ws")
                # ip_hash: one instance holds all three, the other none.
                counts = await counts_become(lambda c: sorted(c.values()) == [0, 3], "not sticky")
                home = max(counts, key=counts.get)
                # Five more connections, through either listener: same instance.
                extra = [await s.connect(i % 2 == 0, "/echo") for i in range(5)]
                await counts_become(lambda c: c[home] == 8 and sum(c.values()) == 8, "repeated connections moved")
                for ws in extra:
                    await ws.close()
                return home
            finally:
                for ws in (a, b, c):
                    await ws.close()

        home = asyncio.run(scenario())
        server = next(x for x in s.instances if x.name == home)
        # The instance sees nginx as the peer and the client in X-Forwarded-For.
        log = wt.wait_until(lambda: (lambda t: t if t.count("access close") >= 3 else None)(server.log_text()),
                            "access log lines for the closes", 5)
        upgrades = [l for l in log.splitlines() if "access upgrade" in l]
        self.assertTrue(upgrades, log)
        for line in upgrades:
            self.assertRegex(line, r" remote=127\.0\.0\.1:\d+ ", line)
        self.assertTrue(any(re.search(r' forwarded_for="203\.0\.113\.7, 127\.0\.0\.1" ', l) for l in upgrades),
                        "no access line with the client's own X-Forwarded-For and nginx's addition:\n"
                        + "\n".join(upgrades))
        self.assertTrue(any(" forwarded_for=127.0.0.1 " in l for l in upgrades),
                        "no access line with X-Forwarded-For set by nginx:\n" + "\n".join(upgrades))

    def test_idle_websocket_outlives_proxy_read_timeout(self):
        s = self.stack

        async def idle():
            async with s.connect(True, "/echo") as wss, s.connect(False, "/echo") as ws, \
                       s.connect(False, "/quiet") as quiet:
                # Nothing from the clients for longer than proxy_read_timeout
                # (3 s): only the server's pings (every 1 s) move.
                await asyncio.sleep(4.5)
                for conn in (wss, ws):
                    await conn.send("still here")
                    self.assertEqual(await recv(conn), "still here")
                # Without pings nginx cut the connection: the timeout is real.
                with self.assertRaises(websockets.ConnectionClosed):
                    await quiet.send("anyone?")
                    await recv(quiet)

        asyncio.run(idle())


class Client:
    """A chat client with a reconnect loop, as a browser page has: it
    records every close code and how long it was away."""

    def __init__(self, stack, index, secure):
        self.stack = stack
        self.name = f"client{index}"
        self.secure = secure
        self.ws = None
        self.connected = asyncio.Event()
        self.opens = 0
        self.closes = []      # close codes received
        self.outages = []     # seconds from a close to the next open
        self.received = []
        self.stopping = False

    async def run(self):
        backoff = 0.05
        down_since = None
        while not self.stopping:
            try:
                ws = await self.stack.connect(self.secure)
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake):
                # 502 from nginx while no instance is live, or refused.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            backoff = 0.05
            if down_since is not None:
                self.outages.append(time.monotonic() - down_since)
            self.ws = ws
            self.opens += 1
            self.connected.set()
            try:
                async for message in ws:
                    self.received.append(message)
            except websockets.ConnectionClosed:
                pass
            self.connected.clear()
            self.ws = None
            if not self.stopping:
                self.closes.append(ws.close_code)
                down_since = time.monotonic()


class RollingRestartTest(unittest.TestCase):
    def setUp(self):
        self.stack = Stack()

    def tearDown(self):
        self.stack.stop()

    def test_no_client_is_lost_for_good(self):
        s = self.stack
        asyncio.run(self.rolling(s))

    async def rolling(self, s):
        clients = [Client(s, i, secure=i % 2 == 0) for i in range(6)]
        tasks = [asyncio.create_task(c.run()) for c in clients]
        loop = asyncio.get_running_loop()

        async def all_connected(what, opens, budget=STEP_TIMEOUT_S):
            """Every client has opened `opens` connections and is connected."""
            deadline = time.monotonic() + budget
            while not all(c.opens >= opens and c.connected.is_set() for c in clients):
                if time.monotonic() > deadline:
                    raise AssertionError(f"not every client connected {what} within {budget} s: "
                                         + ", ".join(f"{c.name}: {c.opens} opens, closes {c.closes}" for c in clients)
                                         + "\n--- nginx ---\n" + s.nginx_output())
                await asyncio.sleep(0.02)

        async def holder(expect_count):
            """The instance holding every client (metrics, asked directly)."""
            deadline = time.monotonic() + STEP_TIMEOUT_S
            while True:
                counts = await loop.run_in_executor(None, s.open_websockets)
                full = [n for n, v in counts.items() if v == expect_count]
                if full and sum(counts.values()) == expect_count:
                    return next(x for x in s.instances if x.name == full[0])
                if time.monotonic() > deadline:
                    raise AssertionError(f"clients not all on one instance: {counts}")
                await asyncio.sleep(0.1)

        async def stop(server):
            """SIGTERM with clients on it: draining (/readyz 503), then 1001 and exit 0."""
            server.signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            status = await loop.run_in_executor(None, wt.http_status, server.port, "/readyz")
            self.assertEqual(status, 503, f"{server.name} is not draining")
            code = await loop.run_in_executor(None, server.wait, 15)
            self.assertEqual(code, 0, server.stderr_text())

        async def start(server):
            await loop.run_in_executor(None, server.start, server.port)
            status = await loop.run_in_executor(None, wt.http_status, server.port, "/readyz")
            self.assertEqual(status, 200)

        try:
            await all_connected("at first", 1)
            first = await holder(len(clients))
            other = next(x for x in s.instances if x is not first)
            t0 = time.monotonic()
            await stop(first)
            # Everyone went over to the other instance, through nginx. (The
            # check comes before the restart: ip_hash would take a client
            # that reconnects late back to the first.)
            await all_connected("after the first instance stopped", 2)
            self.assertIs(await holder(len(clients)), other)
            await start(first)
            t1 = time.monotonic()
            await stop(other)
            await all_connected("after the second instance stopped", 3)
            self.assertIs(await holder(len(clients)), first)
            await start(other)
            t2 = time.monotonic()

            for c in clients:
                self.assertEqual(c.closes, [1001, 1001], f"{c.name}: close codes {c.closes}")
                self.assertEqual(len(c.outages), 2, c.name)
            worst = max(max(c.outages) for c in clients)
            self.assertLess(worst, 8, "a client was away too long")

            # Every client talks to every other: all connected, one room.
            for c in clients:
                await c.ws.send(f"hello from {c.name}")
            deadline = time.monotonic() + STEP_TIMEOUT_S
            want = {f"hello from {c.name}" for c in clients}
            for c in clients:
                while set(c.received) < want - {f"hello from {c.name}"}:
                    self.assertLess(time.monotonic(), deadline, f"{c.name} got only {c.received}")
                    await asyncio.sleep(0.05)
            print(f"# rolling restart: {len(clients)} clients, each back within {worst:.2f} s "
                  f"(first stop+restart {t1 - t0:.1f} s, second {t2 - t1:.1f} s)")
        finally:
            for c in clients:
                c.stopping = True
                if c.ws is not None:
                    await c.ws.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    wt.run_tests()
