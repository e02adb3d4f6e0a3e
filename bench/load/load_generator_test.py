"""Smoke test of the load generator (bench/load) against the examples.

windlass-load is what the benchmark tables rest on, so this checks that
its modes do real work and that their checks bite: fanout against
windlass-chat (one publisher, 50 subscribers, bursts of 8), fanout against
windlass-echo (which sends a message back to its sender, so the run must
fail), fanout against a small relay here that loses or corrupts one message
(each must fail the run), a counted echo run against windlass-echo, and
the pusher modes against windlass-server's channels hub: a small run,
unthrottled and at a rate, must deliver every event and report no error;
a wrong secret (the API answers 401) and a second publisher on the same
channel (events the run did not send) must each fail the run; pusher-idle
must weigh the server's memory.

Registered by bench/CMakeLists.txt as bench.load_generator, with the
binaries in WINDLASS_LOAD_BIN, WINDLASS_CHAT_BIN, WINDLASS_ECHO_BIN and
WINDLASS_SERVER_BIN; by hand:

    WINDLASS_LOAD_BIN=build/release/bench/load/windlass-load \\
    WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat \\
    WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \\
    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \\
    /usr/bin/python3 bench/load/load_generator_test.py
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support"))
import windlass_test as wt  # noqa: E402

SUBSCRIBERS = 50
BURST = 8

# Registered only where windlass-load is built: a missing binary is a
# broken setup, never a reason to pass.
LOAD = wt.executable("WINDLASS_LOAD_BIN")
CHAT = wt.executable("WINDLASS_CHAT_BIN")
ECHO = wt.executable("WINDLASS_ECHO_BIN")


def start_server(path, *args):
    """A server on a free port; its stderr (a line per connection for the
    chat) goes to a file, shown when a test fails; stop() expects exit 0."""
    return wt.Server([path, *args], start_timeout=10, stop_timeout=10).start()


class FaultyRelay:
    """A chat relay on a free port (every data message to every other
    client, as examples/chat does) that spoils the relayed message number
    `at` (counting from 0, probes included) for one recipient: "drop" leaves
    it out, "corrupt" changes its last byte. Minimal RFC 6455: unfragmented
    client frames, close answered and the socket closed."""

    def __init__(self, fault, at):
        self.fault, self.at, self.relayed = fault, at, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ)
        self.clients = {}  # socket -> its unread input
        self.upgraded = set()
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=10)
        for c in list(self.clients):
            c.close()
        self.listener.close()

    def serve(self):
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.05):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    self.clients[conn] = bytearray()
                    self.sel.register(conn, selectors.EVENT_READ)
                else:
                    self.on_readable(key.fileobj)

    def drop_client(self, c):
        self.sel.unregister(c)
        del self.clients[c]
        self.upgraded.discard(c)
        c.close()

    def on_readable(self, c):
        data = c.recv(65536)
        if not data:
            self.drop_client(c)
            return
        buf = self.clients[c]
        buf += data
        if c not in self.upgraded:
            if b"\r\n\r\n" not in buf:
                return
            head, _, rest = bytes(buf).partition(b"\r\n\r\n")
            key = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.upgraded.add(c)
            buf[:] = rest
        while len(buf) >= 2:
            n, at = buf[1] & 0x7F, 2
            if n == 126:
                n, at = (struct.unpack("!H", buf[2:4])[0], 4) if len(buf) >= 4 else (None, 0)
            elif n == 127:
                n, at = (struct.unpack("!Q", buf[2:10])[0], 10) if len(buf) >= 10 else (None, 0)
            if n is None or len(buf) < at + 4 + n:
                return
            mask = buf[at:at + 4]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[at + 4:at + 4 + n]))
            opcode = buf[0] & 0x0F
            del buf[:at + 4 + n]
            if opcode == 8:
                c.sendall(bytes([0x88, len(payload)]) + payload)
                self.drop_client(c)
                return
            if opcode in (1, 2):
                self.relay(c, opcode, payload)

    def relay(self, sender, opcode, payload):
        spoil = self.relayed == self.at
        self.relayed += 1
        for c in self.clients:
            if c is sender or c not in self.upgraded:
                continue
            p = payload
            if spoil:
                spoil = False
                if self.fault == "drop":
                    continue
                p = payload[:-1] + bytes([payload[-1] ^ 1])
            c.sendall(struct.pack("!BB", 0x80 | opcode, len(p)) + p)


def run_load(*args):
    """Runs windlass-load with --json; returns (exit code, report, stderr)."""
    done = subprocess.run([LOAD, *args, "--json", "--quiet"], capture_output=True, text=True, timeout=30)
    return parse_report(done)


def parse_report(done):
    """(exit code, report, stderr) of a finished windlass-load --json."""
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"windlass-load printed no JSON (exit {done.returncode}): "
                             f"{done.stdout!r} {done.stderr!r}")
    return done.returncode, report, done.stderr


class FanoutTest(unittest.TestCase):
    def test_chat_delivers_every_message_to_every_subscriber(self):
        chat = start_server(CHAT, "--compression", "off", "--threads", "2")
        try:
            rc, r, err = run_load("fanout", "--port", str(chat.port), "--connections", str(SUBSCRIBERS),
                                  "--size", "32", "--burst", str(BURST), "--duration", "1",
                                  "--warmup", "0.5", "--server-pid", str(chat.pid))
        finally:
            chat.stop()
        context = f"report {r}, load stderr {err!r}"
        self.assertEqual(rc, 0, context)
        self.assertIsNone(r["failure"], context)
        self.assertEqual(r["errors"]["total"], 0, context)
        self.assertEqual((r["mode"], r["subscribers"], r["connections"], r["burst"], r["size"]),
                         ("fanout", SUBSCRIBERS, SUBSCRIBERS, BURST, 32), context)
        deliveries, published = r["messages"], r["messages_sent"]
        self.assertGreater(published, 0, context)
        self.assertGreater(deliveries, 0, context)
        # Each message reaches every subscriber; only the bursts in flight at
        # the window's two edges are counted on one side and not the other.
        self.assertLessEqual(abs(deliveries - SUBSCRIBERS * published), SUBSCRIBERS * BURST, context)
        self.assertGreater(r["latency_us"]["p99"], 0, context)
        self.assertGreaterEqual(r["latency_us"]["p99"], r["latency_us"]["p50"], context)
        self.assertIn("work_per_server_cpu_s", r, context)
        # 50 subscribers and the publisher, each closed cleanly.
        self.assertEqual(r["server_close_codes"], {"1000": SUBSCRIBERS + 1}, context)

    def test_a_server_that_echoes_to_the_sender_fails_the_run(self):
        echo = start_server(ECHO)
        try:
            rc, r, err = run_load("fanout", "--port", str(echo.port), "--connections", "5", "--size", "16",
                                  "--duration", "1", "--warmup", "0")
        finally:
            echo.stop()
        self.assertEqual(rc, 1, f"report {r}")
        self.assertGreater(r["errors"]["delivery"], 0, f"report {r}")
        self.assertIn("publisher received a message", r["failure"] or "", f"report {r}")

    def run_against_faulty_relay(self, fault):
        # Bursts of 8: message 20 is in the middle of the third burst, so the
        # next messages of that burst reveal a loss at once.
        relay = FaultyRelay(fault, at=20)
        try:
            rc, r, err = run_load("fanout", "--port", str(relay.port), "--connections", "5", "--size", "32",
                                  "--burst", "8", "--duration", "3", "--warmup", "0")
        finally:
            relay.stop()
        self.assertEqual(rc, 1, f"report {r}")
        self.assertEqual(r["errors"]["delivery"], 1, f"report {r}")
        return r["failure"] or ""

    def test_a_lost_message_fails_the_run(self):
        self.assertIn("a message is missing", self.run_against_faulty_relay("drop"))

    def test_a_corrupted_message_fails_the_run(self):
        self.assertIn("the filler differs", self.run_against_faulty_relay("corrupt"))

    def test_size_below_the_header_is_refused(self):
        done = subprocess.run([LOAD, "fanout", "--port", "9", "--size", "15"], capture_output=True, text=True,
                              timeout=10)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--size 16 or more", done.stderr)


class EchoTest(unittest.TestCase):
    def test_counted_echo(self):
        echo = start_server(ECHO)
        try:
            rc, r, err = run_load("echo", "--port", str(echo.port), "--connections", "50", "--count", "50")
        finally:
            echo.stop()
        context = f"report {r}, load stderr {err!r}"
        self.assertEqual(rc, 0, context)
        self.assertIsNone(r["failure"], context)
        self.assertEqual(r["errors"]["total"], 0, context)
        self.assertEqual((r["opened"], r["handshakes"]), (50, 50), context)
        self.assertEqual((r["messages_sent"], r["messages"]), (50 * 50, 50 * 50), context)
        self.assertGreater(r["latency_us"]["p99"], 0, context)
        self.assertEqual(r["server_close_codes"], {"1000": 50}, context)


def start_hub(threads=2):
    """windlass-server with the channels hub and its demo app (app-id,
    app-key, app-secret) and nothing else, on a free port."""
    directory = wt.temp_dir("pusher-load")
    config = wt.write_file(directory, "windlass.toml", "\n".join([
        "[server]", f'host = "{wt.HOST}"', "port = 0", f"threads = {threads}", 'drain_delay = "0s"',
        'shutdown_timeout = "5s"', "",
        "[log]", 'level = "warn"', "access = false", "",
        "[[app]]", 'id = "app-id"', 'key = "app-key"', 'secret = "app-secret"', "",
    ]))
    return wt.windlass_server(config, start_timeout=10, stop_timeout=10).start()


def publish(port, channel, name, data, app_id="app-id", key="app-key", secret="app-secret"):
    """POSTs one event to the hub's HTTP API, signed here (independently of
    the load generator's signer); returns (status, body)."""
    body = json.dumps({"name": name, "channel": channel, "data": data})
    query = (f"auth_key={key}&auth_timestamp={int(time.time())}&auth_version=1.0"
             f"&body_md5={hashlib.md5(body.encode()).hexdigest()}")
    path = f"/apps/{app_id}/events"
    signature = hmac.new(secret.encode(), f"POST\n{path}\n{query}".encode(), hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection(wt.HOST, port, timeout=10)
    try:
        conn.request("POST", f"{path}?{query}&auth_signature={signature}", body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class PusherTest(unittest.TestCase):
    SUBSCRIBERS = 40
    LANES = 2

    def assert_clean(self, rc, r, err):
        context = f"report {r}, load stderr {err!r}"
        self.assertEqual(rc, 0, context)
        self.assertIsNone(r["failure"], context)
        self.assertEqual(r["errors"]["total"], 0, context)
        return context

    def check_publish_run(self, rc, r, err, window):
        context = self.assert_clean(rc, r, err)
        p = r["pusher"]
        self.assertEqual((r["mode"], p["subscribers"], p["api_connections"]),
                         ("pusher", self.SUBSCRIBERS, self.LANES), context)
        self.assertGreater(p["publishes"], 0, context)
        # Every event reaches every subscriber; only those in flight at the
        # window's two edges are counted on one side and not the other.
        self.assertLessEqual(abs(p["deliveries"] - self.SUBSCRIBERS * p["publishes"]),
                             self.SUBSCRIBERS * (window + self.LANES), context)
        self.assertEqual(r["messages"], p["deliveries"], context)
        self.assertGreater(r["latency_us"]["p50"], 0, context)
        self.assertGreaterEqual(r["latency_us"]["p99"], r["latency_us"]["p50"], context)
        self.assertIn("work_per_server_cpu_s", r, context)
        # windlass keeps the API connections: one each for the whole run.
        self.assertEqual((p["api_connects"], p["api_closed_by_server"]), (self.LANES, 0), context)
        self.assertGreaterEqual(p["probes"], 1, context)
        self.assertEqual(r["server_close_codes"], {"1000": self.SUBSCRIBERS}, context)
        return p

    def test_unthrottled_publishes_reach_every_subscriber(self):
        hub = start_hub()
        try:
            rc, r, err = run_load("pusher", "--port", str(hub.port), "--connections", str(self.SUBSCRIBERS),
                                  "--api-connections", str(self.LANES), "--window", "16", "--duration", "1",
                                  "--warmup", "0.3", "--server-pid", str(hub.pid))
        finally:
            hub.stop()
        p = self.check_publish_run(rc, r, err, 16)
        self.assertEqual((p["rate"], p["window"]), (0, 16), f"report {r}")

    def test_publishes_at_a_rate_in_bursts(self):
        hub = start_hub()
        try:
            rc, r, err = run_load("pusher", "--port", str(hub.port), "--connections", str(self.SUBSCRIBERS),
                                  "--api-connections", str(self.LANES), "--rate", "100", "--burst", "4",
                                  "--size", "300", "--duration", "1", "--warmup", "0.2",
                                  "--server-pid", str(hub.pid))
        finally:
            hub.stop()
        p = self.check_publish_run(rc, r, err, 8)
        context = f"report {r}"
        self.assertEqual((p["burst"], p["size"]), (4, 300), context)
        # 100 a second in bursts of 4 every 40 ms: the schedule is kept.
        self.assertTrue(90 <= p["publishes_due"] <= 112, context)
        self.assertLessEqual(abs(p["publishes_sent"] - p["publishes_due"]), 8, context)

    def test_a_wrong_secret_fails_the_run(self):
        hub = start_hub()
        try:
            rc, r, err = run_load("pusher", "--port", str(hub.port), "--connections", "5", "--app-secret",
                                  "not-the-secret", "--duration", "1", "--warmup", "0")
        finally:
            hub.stop()
        self.assertEqual(rc, 1, f"report {r}")
        self.assertGreaterEqual(r["errors"]["api"], 1, f"report {r}")
        self.assertIn("the API answered 401", r["failure"] or "", f"report {r}")

    def test_an_event_the_run_did_not_send_fails_it(self):
        # A third party publishes on the run's channel an event shaped like
        # the run's own (an id it has already delivered): the subscribers
        # must not count it.
        hub = start_hub()
        try:
            run = subprocess.Popen([LOAD, "pusher", "--port", str(hub.port), "--connections", "5", "--rate", "50",
                                    "--duration", "3", "--warmup", "0", "--json", "--quiet"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(1.5)
                data = '{"id":1,"lane":0,"seq":1,"t":1,"pad":"' + "b" * 60 + '"}'
                self.assertEqual(len(data), 100)
                status, body = publish(hub.port, "bench", "bench-event", data)
                self.assertEqual(status, 200, body)
                out, errors = run.communicate(timeout=30)
            finally:
                if run.poll() is None:
                    run.kill()
        finally:
            hub.stop()
        rc, r, _ = parse_report(subprocess.CompletedProcess(run.args, run.returncode, out, errors))
        self.assertEqual(rc, 1, f"report {r}")
        # One error per subscriber that received it; the first ends the run.
        self.assertEqual(r["errors"]["delivery"], 5, f"report {r}")
        self.assertIn("delivery error on subscriber", r["failure"] or "", f"report {r}")

    def test_pusher_idle_weighs_subscribed_connections(self):
        hub = start_hub(threads=1)
        try:
            rc, r, err = run_load("pusher-idle", "--port", str(hub.port), "--connections", "200",
                                  "--duration", "0.5", "--server-pid", str(hub.pid))
        finally:
            hub.stop()
        context = self.assert_clean(rc, r, err)
        self.assertEqual((r["mode"], r["opened"], r["pusher"]["subscribers"]), ("pusher-idle", 200, 200), context)
        self.assertIn("server_rss_per_connection", r, context)
        self.assertGreater(r["server_rss_after"], 0, context)

    def test_bad_pusher_options_are_refused(self):
        for args, why in ((["--size", "99"], "--size 100 or more"), (["--channel", "private-x"], "bad value"),
                          (["--binary"], "not part of the Pusher protocol")):
            done = subprocess.run([LOAD, "pusher", "--port", "9", *args], capture_output=True, text=True,
                                  timeout=10)
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertIn(why, done.stderr)


if __name__ == "__main__":
    wt.watchdog(50)  # ctest's timeout for this test is 60 s
    wt.run_tests()
