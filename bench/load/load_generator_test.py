"""Smoke test of the load generator (bench/load) against the examples.

windlass-load is what the benchmark tables rest on, so this checks that
its modes do real work and that their checks bite: fanout against
windlass-chat (one publisher, 50 subscribers, bursts of 8), fanout against
windlass-echo (which sends a message back to its sender, so the run must
fail), fanout against a small relay here that loses or corrupts one message
(each must fail the run), and a counted echo run against windlass-echo.

Registered by bench/CMakeLists.txt as bench.load_generator, with the
binaries in WINDLASS_LOAD_BIN, WINDLASS_CHAT_BIN and WINDLASS_ECHO_BIN; by
hand:

    WINDLASS_LOAD_BIN=build/release/bench/load/windlass-load \\
    WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat \\
    WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \\
    /usr/bin/python3 bench/load/load_generator_test.py
"""
import base64
import hashlib
import json
import os
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
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


if __name__ == "__main__":
    wt.watchdog(50)  # ctest's timeout for this test is 60 s
    wt.run_tests()
