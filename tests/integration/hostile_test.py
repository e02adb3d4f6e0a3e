#!/usr/bin/python3
"""windlass-echo against hostile clients, while an honest client keeps talking.

Each test starts its own windlass-echo, attacks it one way (slowloris heads,
a peer that never reads, absurd frame lengths, ten thousand dropped
connections, half-open peers, ping floods, garbage instead of HTTP, resets
in the middle of a frame) and checks three things:

  - the attack gets the precise answer the code promises (an HTTP status, a
    close code, a log line with the reason) within a bounded time;
  - an honest client (Python `websockets`, a strict peer, in its own thread)
    doing echo round trips throughout the attack sees every message come
    back intact, each within RTT_LIMIT_S;
  - afterwards the server's descriptors (/proc/PID/fd) are back at their
    baseline and its memory (VmRSS) near it, with baseline, peak and after
    printed; SIGTERM then ends the server with exit code 0 (an ASan build
    exits non-zero on a leak or an error report).

Run by ctest with WINDLASS_ECHO_BIN set; by hand:

    WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \
    /usr/bin/python3 tests/integration/hostile_test.py [-k PATTERN]

Memory bounds are checked only against a plain build: under ASan the
allocator keeps freed memory in quarantine and adds shadow memory, so the
numbers are printed but only a loose ceiling applies.
"""

import asyncio
import base64
import errno
import os
import random
import re
import resource
import select
import selectors
import signal
import socket
import statistics
import struct
import sys
import threading
import time
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import STEP_TIMEOUT_S, STOP_TIMEOUT_S  # noqa: E402

RTT_LIMIT_S = 2.0            # an honest round trip during an attack
SWEEP_MS = 100               # --sweep-ms for every server here
FD_SLACK = 2                 # descriptors allowed above baseline afterwards
SETTLE_S = 15                # how long closes may take to finish
MiB = 1 << 20
KiB = 1 << 10

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def log(msg):
    print(f"    {msg}", flush=True)


# ------------------------------------------------------------------ server


class Server(wt.Server):
    """One windlass-echo, watched through /proc and its log."""

    def __init__(self, flags, name):
        # A fixed mmap threshold (glibc otherwise raises it to the size of
        # the largest block freed) makes every block of 128 KiB or more, such
        # as a queued 1 MiB echo, go back to the kernel when it is freed, so
        # VmRSS after an attack says what the server still holds rather than
        # what glibc kept for later. No effect on an ASan build's allocator.
        env = dict(os.environ)
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * KiB))
        binary = wt.env("WINDLASS_ECHO_BIN")
        super().__init__([binary, "--sweep-ms", str(SWEEP_MS), *flags], name, env=env)
        self.asan = wt.sanitizer(binary) == "ASan"

    def settled_rss_kib(self, duration=0.3):
        """The lowest VmRSS seen over `duration`: a single reading can catch a
        buffer just before it is freed (or an honest echo in flight)."""
        lowest = self.rss_kib()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            time.sleep(0.02)
            lowest = min(lowest, self.rss_kib())
        return lowest

    def fd_limit(self):
        with open(f"/proc/{self.proc.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def count_log(self, pattern):
        return len(re.findall(pattern, self.log_text()))

    def wait_log(self, pattern, count=1, timeout=5.0):
        """Waits until `pattern` occurs `count` times in the log; returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.count_log(pattern)
            if n >= count or time.monotonic() >= deadline:
                return n
            time.sleep(0.02)

    def wait_fds(self, at_most, timeout=SETTLE_S):
        """Waits until the descriptor count is <= at_most; returns the last count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.fds()
            if n <= at_most or time.monotonic() >= deadline:
                return n
            time.sleep(0.05)


class Sampler:
    """Polls the server's VmRSS and descriptor count to record their peaks."""

    def __init__(self, server, period=0.01):
        self.server = server
        self.period = period
        self.peak_rss = server.rss_kib()
        self.peak_fds = server.fds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.server.rss_kib())
                self.peak_fds = max(self.peak_fds, self.server.fds())
            except (OSError, AssertionError):
                return  # the process is gone; the test will say why
            self._stop.wait(self.period)

    def stop(self):
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------ honest client


class Honest:
    """A strict `websockets` client doing echo round trips in its own thread
    (its own event loop), so the attack code never delays it. Every message
    must come back unchanged; each round trip is timed."""

    SIZES = [0, 1, 17, 125, 126, 1000, 4096, 65535, 65536, 100_000]

    def __init__(self, server, seed):
        self.server = server
        self.rng = random.Random(seed)
        self.rtts = []
        self.errors = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self):
        self._thread.start()
        if not self.ready.wait(STEP_TIMEOUT_S):
            raise AssertionError(f"honest client not ready: {self.errors}")
        if self.errors:
            raise AssertionError(f"honest client failed to start: {self.errors}")
        return self

    async def _main(self):
        try:
            async with websockets.connect(self.server.url(), compression=None, max_size=4 * MiB,
                                          open_timeout=STEP_TIMEOUT_S, close_timeout=STEP_TIMEOUT_S,
                                          ping_interval=None) as ws:
                n = 0
                while not self._stop.is_set():
                    size = self.rng.choice(self.SIZES)
                    if n % 2:
                        payload = self.rng.randbytes(size)
                    else:
                        payload = "".join(self.rng.choice("abcxyz é€🚀") for _ in range(size // 4))
                    t0 = time.monotonic()
                    await asyncio.wait_for(ws.send(payload), STEP_TIMEOUT_S)
                    got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
                    self.rtts.append(time.monotonic() - t0)
                    if got != payload:
                        self.errors.append(f"round trip {n}: echo differs ({len(payload)} sent)")
                        return
                    n += 1
                    if n >= 3:
                        self.ready.set()
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(ws.close(1000, "done"), STEP_TIMEOUT_S)
                if ws.close_code != 1000:
                    self.errors.append(f"close handshake ended with {ws.close_code}")
        except BaseException as e:  # noqa: BLE001 - every failure is reported
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            self.ready.set()

    def stop(self):
        self._stop.set()
        self._thread.join(STEP_TIMEOUT_S * 3)
        if self._thread.is_alive():
            self.errors.append("honest client thread did not finish")

    def summary(self):
        if not self.rtts:
            return "no round trips"
        ms = sorted(r * 1000 for r in self.rtts)
        return (f"{len(ms)} round trips, median {statistics.median(ms):.1f} ms, "
                f"max {ms[-1]:.1f} ms")


# ------------------------------------------------------------------ raw WebSocket pieces


def upgrade_request(path="/", key=None):
    key = key or base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, length=None, key=None):
    """A client frame (masked). `length` overrides the announced length."""
    key = key if key is not None else os.urandom(4)
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + key + mask_bytes(payload, key)


def close_frame(code, reason=b""):
    return frame(0x8, struct.pack(">H", code) + reason)


class Closed(Exception):
    """The server closed the TCP connection (EOF or reset) while a frame was awaited."""


class Raw:
    """A blocking raw socket speaking just enough WebSocket to misbehave."""

    def __init__(self, server, rcvbuf=None, timeout=STEP_TIMEOUT_S):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(server.addr)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            data = self.sock.recv(256 * KiB)
        except ConnectionResetError:
            raise Closed("reset") from None
        if not data:
            raise Closed("eof")
        self.buf += data

    def read_head(self):
        """Reads an HTTP response head; returns (status, head text)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        text = head.decode("latin-1")
        return int(text.split(" ", 2)[1]), text

    def handshake(self):
        self.send(upgrade_request())
        status, head = self.read_head()
        if status != 101:
            raise AssertionError(f"handshake refused: {head!r}")
        return self

    def recv_frame(self):
        """Returns (fin, opcode, payload) of the next server frame (unmasked)."""
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server sent a masked frame")
        n, at = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        while len(self.buf) < at + n:
            self._fill()
        payload = self.buf[at:at + n]
        self.buf = self.buf[at + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_close(self):
        """Reads frames up to a close frame; returns (code, reason)."""
        while True:
            _, op, payload = self.recv_frame()
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                return code, payload[2:].decode("utf-8", "replace")

    def read_to_end(self, timeout=STEP_TIMEOUT_S):
        """Reads until the server closes. Returns (bytes, 'eof'|'reset'|'timeout')."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.buf, "timeout"
            self.sock.settimeout(left)
            try:
                self._fill()
            except Closed as e:
                return self.buf, str(e)
            except socket.timeout:
                return self.buf, "timeout"

    def reset(self):
        """Closes with SO_LINGER 0: the kernel sends RST, not FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


# ------------------------------------------------------------------ the tests


class HostileTest(unittest.TestCase):
    """Each test: a fresh server, an honest client, one attack, then the checks."""

    def start_attack(self, label, *flags):
        """Starts a server and an honest client; takes the baseline."""
        self.label = label
        self.server = Server(flags, f"windlass-echo ({label})").start()
        self.addCleanup(self.server.kill)
        self.honest = Honest(self.server, seed=sum(label.encode())).start()
        self.addCleanup(self.honest.stop)
        time.sleep(0.05)
        # The baseline includes the honest client's descriptor and the pages
        # its round trips touched (the loop's receive buffer among them).
        self.base_fds = self.server.fds()
        self.base_rss = self.server.rss_kib()
        self.sampler = Sampler(self.server)
        self.addCleanup(self.sampler.stop)
        log(f"server pid {self.server.proc.pid}{' (ASan build)' if self.server.asan else ''}, "
            f"flags {' '.join(flags) or '(defaults)'}; baseline {self.base_fds} fds, "
            f"{self.base_rss} KiB RSS")
        return self.server

    def finish(self, peak_rss_bound_kib=None, after_rss_bound_kib=8 * 1024):
        """Ends the attack: the honest client's record, descriptors and
        memory back near baseline, then a clean SIGTERM exit.
        `after_rss_bound_kib` None: the test checks retained memory itself."""
        server = self.server
        self.assertTrue(server.alive(), f"the server died during the attack\n{server.stderr_text()}")
        t0 = time.monotonic()
        fds_after = server.wait_fds(self.base_fds)
        settle = time.monotonic() - t0
        self.sampler.stop()
        rss_after = server.settled_rss_kib()
        self.sampler.peak_rss = max(self.sampler.peak_rss, rss_after)
        # A few more round trips after the attack, then a clean close.
        want = len(self.honest.rtts) + 3
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while len(self.honest.rtts) < want and not self.honest.errors and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        self.honest.stop()
        log(f"honest client: {self.honest.summary()}")
        log(f"fds: baseline {self.base_fds}, peak {self.sampler.peak_fds}, after {fds_after} "
            f"(settled in {settle:.2f} s)")
        log(f"RSS KiB: baseline {self.base_rss}, peak {self.sampler.peak_rss} "
            f"(+{self.sampler.peak_rss - self.base_rss}), after {rss_after} "
            f"(+{rss_after - self.base_rss})")
        self.assertEqual(self.honest.errors, [], "the honest client failed")
        self.assertGreaterEqual(len(self.honest.rtts), 6, "the honest client barely ran")
        self.assertLess(max(self.honest.rtts), RTT_LIMIT_S,
                        f"an honest round trip took {max(self.honest.rtts):.2f} s")
        self.assertLessEqual(fds_after, self.base_fds + FD_SLACK,
                             f"descriptor leak: {fds_after} open {SETTLE_S} s after the attack, "
                             f"baseline {self.base_fds}\n{server.stderr_text()}")
        if not server.asan:
            if peak_rss_bound_kib is not None:
                self.assertLess(self.sampler.peak_rss - self.base_rss, peak_rss_bound_kib,
                                "peak memory during the attack above its bound")
            if after_rss_bound_kib is not None:
                self.assertLess(rss_after - self.base_rss, after_rss_bound_kib,
                                "memory not back near baseline after the attack")
        else:
            # ASan's quarantine keeps up to 256 MiB of freed memory resident;
            # only a ceiling that unbounded growth would break is checked.
            if peak_rss_bound_kib is not None:
                self.assertLess(self.sampler.peak_rss - self.base_rss,
                                4 * peak_rss_bound_kib + 256 * 1024,
                                "peak memory during the attack above its (ASan) bound")
        t0 = time.monotonic()
        server.stop()
        log(f"SIGTERM: exit 0 in {time.monotonic() - t0:.2f} s")

    # -------------------------------------------------------------- 1. slowloris

    def test_01_slowloris_heads_get_408_at_the_header_timeout(self):
        timeout_s = 1.0
        server = self.start_attack("slowloris", "--header-timeout-ms", str(int(timeout_s * 1000)))
        head = upgrade_request()
        # Half the clients trickle single bytes, half whole header lines, as
        # the original slowloris did; each sends something every 200 ms and
        # never finishes the head before the deadline.
        lines = [b"GET / HTTP/1.1\r\n"] + [f"X-Slow-{i}: {'a' * 8}\r\n".encode() for i in range(50)]
        clients = []
        for i in range(8):
            s = socket.create_connection(server.addr, timeout=STEP_TIMEOUT_S)
            s.setblocking(False)
            pieces = [head[j:j + 1] for j in range(len(head))] if i % 2 == 0 else lines
            clients.append({"sock": s, "pieces": pieces, "sent": 0, "t0": time.monotonic(),
                            "got": b"", "done": None, "how": None})
        deadline = time.monotonic() + 3 * timeout_s + 5
        next_send = time.monotonic()
        while time.monotonic() < deadline and any(c["done"] is None for c in clients):
            now = time.monotonic()
            if now >= next_send:
                for c in clients:
                    if c["done"] is None and not c["got"] and c["sent"] < len(c["pieces"]):
                        try:
                            c["sock"].send(c["pieces"][c["sent"]])
                            c["sent"] += 1
                        except OSError:
                            pass  # the server is already closing; the read below tells
                next_send = now + 0.2
            readable, _, _ = select_readable([c["sock"] for c in clients if c["done"] is None],
                                             max(0.0, min(0.05, next_send - time.monotonic())))
            for s in readable:
                c = next(c for c in clients if c["sock"] is s)
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data, c["how"] = b"", "reset"
                if data:
                    c["got"] += data
                else:
                    c["done"] = time.monotonic() - c["t0"]
                    c["how"] = c["how"] or "eof"
        for c in clients:
            c["sock"].close()
        for i, c in enumerate(clients):
            status = c["got"].split(b"\r\n", 1)[0].decode("latin-1")
            when = "never" if c["done"] is None else f"after {c['done']:.3f} s"
            log(f"slowloris {i} ({'bytes' if i % 2 == 0 else 'lines'}): sent {c['sent']} pieces, "
                f"got {status!r} then {c['how']} {when}")
            self.assertIsNotNone(c["done"], f"slowloris {i} never closed")
            self.assertTrue(status.startswith("HTTP/1.1 408 "), f"slowloris {i}: {c['got'][:200]!r}")
            self.assertEqual(c["how"], "eof", f"slowloris {i}: closed by {c['how']}, not after the 408")
            # Not before the deadline; by the deadline plus a sweep or two
            # (and scheduling slack on a loaded machine).
            self.assertGreaterEqual(c["done"], timeout_s - 0.05)
            self.assertLess(c["done"], timeout_s + 2 * SWEEP_MS / 1000 + 1.0)
        self.assertEqual(server.wait_log(r"-> 408 \(request head not received in time\)", 8), 8,
                         server.stderr_text())
        self.finish(peak_rss_bound_kib=4 * 1024)

    # -------------------------------------------------------------- 2. never reads

    def test_02_client_that_never_reads_is_dropped_as_a_slow_consumer(self):
        cap = 4 * MiB
        server = self.start_attack("never reads", "--max-send-queue", str(cap))
        message = frame(0x2, random.Random(2).randbytes(MiB))
        # Three such clients one after the other: the memory left after each
        # must not grow (what glibc keeps of freed 1 MiB blocks is reused).
        retained = []
        for round_ in range(3):
            # A small receive buffer keeps the kernel from absorbing the
            # echoes for us, so the server's own queue is what fills.
            c = Raw(server, rcvbuf=16 * KiB).handshake()
            sent, outcome, t0 = 0, "still open", time.monotonic()
            for _ in range(64):  # 64 MiB of echoes is far beyond any bound here
                try:
                    c.send(message)
                except (ConnectionResetError, BrokenPipeError) as e:
                    outcome = type(e).__name__
                    break
                except socket.timeout:
                    outcome = "send timed out"
                    break
                sent += 1
            n = server.wait_log(r"slow consumer", round_ + 1, timeout=5)
            elapsed = time.monotonic() - t0
            c.close()
            server.wait_fds(self.base_fds)
            retained.append(server.settled_rss_kib() - self.base_rss)
            log(f"round {round_}: sent {sent} x 1 MiB without reading, then {outcome}; "
                f"'slow consumer' logged after {elapsed:.2f} s; RSS then +{retained[-1]} KiB")
            self.assertEqual(n, round_ + 1, f"no slow-consumer line\n{server.stderr_text()}")
            self.assertIn(outcome, ("ConnectionResetError", "BrokenPipeError"))
        for line in server.log_text().splitlines():
            if "slow consumer" in line:
                log(f"server: {line}")
        if not server.asan:
            self.assertLess(retained[2] - retained[1], 2 * 1024, "memory grows with each client")
        # The queue (<= cap), the message being reassembled (1 MiB) and the
        # read buffer: bounded by the cap, not by what the client sent. The
        # allocator may keep what the queue used, but no more.
        self.finish(peak_rss_bound_kib=(2 * cap + 8 * MiB) // KiB)

    # -------------------------------------------------------------- 3. absurd lengths

    def test_03_frame_lengths_of_2_63_and_2_62_are_refused_without_allocating(self):
        server = self.start_attack("frame lengths")  # echo's max message size: 16 MiB
        cases = [
            ("length 2^63 (top bit set)", frame(0x2, length=1 << 63), 1002),
            ("length 2^62", frame(0x2, length=1 << 62), 1009),
            ("text, length 2^62", frame(0x1, length=1 << 62), 1009),
            ("length 2^64-1", frame(0x2, length=(1 << 64) - 1), 1002),
            ("16 MiB + 1", frame(0x2, length=16 * MiB + 1), 1009),
            # The limit counts the whole message: a first fragment is fine,
            # the continuation that announces 2^62 more is not.
            ("fragment then 2^62", frame(0x2, b"x" * 1000, fin=False) + frame(0x0, length=1 << 62),
             1009),
        ]
        for what, data, want in cases:
            with self.subTest(what):
                rss0 = server.rss_kib()
                c = Raw(server).handshake()
                t0 = time.monotonic()
                c.send(data + os.urandom(4096))  # some payload behind the header
                code, reason = c.recv_close()
                _, how = c.read_to_end()
                c.close()
                log(f"{what}: close {code} ({reason}) then {how} in "
                    f"{(time.monotonic() - t0) * 1000:.1f} ms; RSS {rss0} -> {server.rss_kib()} KiB")
                self.assertEqual(code, want)
                self.assertEqual(how, "eof")
        # 64 MiB announced and 8 MiB really sent: refused at the header, the
        # payload is drained and dropped, never buffered.
        rss0 = server.rss_kib()
        c = Raw(server).handshake()
        payload = os.urandom(8 * MiB)
        sender = threading.Thread(target=lambda: suppress_send(c, frame(0x2, length=64 * MiB) + payload))
        sender.start()
        code, reason = c.recv_close()
        sender.join(STEP_TIMEOUT_S)
        _, how = c.read_to_end()
        c.close()
        log(f"64 MiB announced, 8 MiB sent: close {code} ({reason}) then {how}; RSS {rss0} -> "
            f"peak {self.sampler.peak_rss} KiB")
        self.assertEqual(code, 1009)
        self.assertEqual(server.count_log(r"closing with 1009"), 5)
        self.assertEqual(server.count_log(r"closing with 1002"), 2)
        # Nothing close to the announced sizes (or even to the 8 MiB sent).
        self.finish(peak_rss_bound_kib=4 * 1024)

    # -------------------------------------------------------------- 4. 10,000 dropped

    def test_04_ten_thousand_connections_dropped_without_a_close_frame(self):
        server = self.start_attack("10k dropped", "--max-connections", "20000")
        wanted = 10_000
        mine = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        theirs = server.fd_limit()
        count = min(wanted, mine - 100, theirs - self.base_fds - 100)
        log(f"fd limits: this process {mine}, server {theirs}")
        if count < wanted:
            log(f"NOTE: capped at {count} connections by the descriptor limits (wanted {wanted})")
        # Two rounds: the first shows the cost of 10k connections; the second
        # that nothing is left behind by the first (glibc keeps the small
        # freed blocks of round one in its heap and reuses them, so RSS after
        # a round stays above the cold baseline, but must not grow).
        retained = []
        for round_ in range(2):
            # Kinds, by i % 10: 0-6 full handshake; 7 TCP only; 8 half a
            # request head; 9 handshake then half a frame. Even i close (FIN),
            # odd i reset (SO_LINGER 0).
            t0 = time.monotonic()
            socks, kinds = open_many(server, count, batch=500)
            t_open = time.monotonic() - t0
            # Every connection is accepted once the batches are done: wait for it.
            total = server.fds()
            deadline = time.monotonic() + SETTLE_S
            while total < self.base_fds + count and time.monotonic() < deadline:
                time.sleep(0.05)
                total = server.fds()
            rss_open = server.rss_kib()
            log(f"round {round_}: opened {count} connections ({kinds}) in {t_open:.2f} s; "
                f"server fds {total}, RSS {rss_open} KiB "
                f"(+{(rss_open - self.base_rss) * 1024 // count} bytes per connection)")
            self.assertEqual(total, self.base_fds + count, "not every connection reached the server")
            t1 = time.monotonic()
            for i, s in enumerate(socks):
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            after = server.wait_fds(self.base_fds)
            retained.append(server.settled_rss_kib() - self.base_rss)
            log(f"round {round_}: dropped them (half FIN, half RST): server fds {after} after "
                f"{time.monotonic() - t1:.2f} s; RSS +{retained[-1]} KiB over baseline")
            self.assertEqual(after, self.base_fds, "descriptors left after the drop")
        self.assertTrue(server.alive())
        if not server.asan:
            self.assertLess(retained[1] - retained[0], 2 * 1024, "memory grows with each round")
        self.finish(peak_rss_bound_kib=count * 8, after_rss_bound_kib=None)

    # -------------------------------------------------------------- 5. half-open

    def test_05_half_open_clients_are_closed_by_the_keepalive(self):
        ping_ms, pong_ms = 300, 300
        server = self.start_attack("half-open", "--ping-interval-ms", str(ping_ms),
                                   "--pong-timeout-ms", str(pong_ms))
        # An idle client that answers pings (websockets does) must survive.
        idle_result = {}
        idle = threading.Thread(target=lambda: asyncio.run(idle_client(server, 2.0, idle_result)))
        idle.start()
        silent = []   # never read anything, not even the 101
        deaf = []     # read, but never answer a ping
        t0 = time.monotonic()
        for _ in range(6):
            s = Raw(server, rcvbuf=16 * KiB)
            s.send(upgrade_request())
            silent.append(s)
        for _ in range(6):
            deaf.append(Raw(server).handshake())
        results = []
        lock = threading.Lock()

        def read_deaf(c):
            pings, start = 0, time.monotonic()
            try:
                while True:
                    _, op, _ = c.recv_frame()
                    pings += op == 0x9
            except Closed as e:
                with lock:
                    results.append((pings, str(e), time.monotonic() - start))
            except socket.timeout:
                with lock:
                    results.append((pings, "timeout", time.monotonic() - start))

        readers = [threading.Thread(target=read_deaf, args=(c,)) for c in deaf]
        for r in readers:
            r.start()
        n = server.wait_log(r"keepalive timeout", 12, timeout=10)
        t_all = time.monotonic() - t0
        for r in readers:
            r.join(STEP_TIMEOUT_S)
        bound = (ping_ms + pong_ms + 3 * SWEEP_MS) / 1000 + 1.0
        log(f"{n} 'keepalive timeout' lines, the last {t_all:.2f} s after the first connect "
            f"(bound {bound:.2f} s)")
        for pings, how, took in results:
            log(f"deaf client: {pings} ping(s) seen, then {how} after {took:.2f} s")
        for s in silent:
            s.close()
        for c in deaf:
            c.close()
        idle.join(STEP_TIMEOUT_S)
        log(f"idle client answering pings: {idle_result}")
        self.assertEqual(n, 12, server.stderr_text())
        self.assertLess(t_all, bound)
        self.assertEqual(len(results), 6)
        for pings, how, took in results:
            self.assertGreaterEqual(pings, 1, "a ping should come before the keepalive close")
            self.assertIn(how, ("eof", "reset"))
            self.assertGreaterEqual(took, (ping_ms + pong_ms) / 1000 - 0.05)
            self.assertLess(took, bound)
        self.assertEqual(idle_result.get("outcome"), "ok", idle_result)
        self.finish()

    # -------------------------------------------------------------- 6. ping floods

    def test_06_ping_flood_without_reading_is_answered_or_dropped_within_the_cap(self):
        cap = MiB
        server = self.start_attack("ping flood", "--max-send-queue", str(cap))
        count, size = 100_000, 64
        pings = [frame(0x9, b"%063d." % i) for i in range(count)]
        c = Raw(server)
        c.handshake()
        sent, outcome, t0 = 0, "all sent", time.monotonic()
        for i in range(0, count, 1000):
            try:
                c.send(b"".join(pings[i:i + 1000]))
            except (ConnectionResetError, BrokenPipeError) as e:
                outcome = type(e).__name__
                break
            sent = i + 1000
        t_send = time.monotonic() - t0
        # Now read: either every pong, in order, or a dropped connection.
        pongs, how = 0, None
        try:
            while pongs < count:
                _, op, payload = c.recv_frame()
                if op != 0xA or payload != b"%063d." % pongs:
                    self.fail(f"frame {pongs}: opcode {op}, payload {payload[:20]!r}")
                pongs += 1
            how = "all answered"
        except Closed as e:
            how = f"closed ({e})"
        except socket.timeout:
            how = "stalled"
        c.close()
        slow = server.wait_log(r"slow consumer", 1, timeout=1 if how == "all answered" else 5)
        log(f"{size}-byte pings: {sent} sent in {t_send:.2f} s ({outcome}), then {pongs} pongs "
            f"read: {how}; slow-consumer lines: {slow}")
        if how != "all answered":
            self.assertEqual(slow, 1, f"dropped without a slow-consumer line\n{server.stderr_text()}")
            self.assertTrue(how.startswith("closed"), how)
        # Pings that do get read are answered in order, none lost.
        c = Raw(server).handshake()
        n = 10_000
        writer = threading.Thread(
            target=lambda: c.send(b"".join(frame(0x9, struct.pack(">I", i) + b"p" * (i % 100))
                                           for i in range(n))))
        t1 = time.monotonic()
        writer.start()
        for i in range(n):
            _, op, payload = c.recv_frame()
            self.assertEqual((op, payload), (0xA, struct.pack(">I", i) + b"p" * (i % 100)),
                             f"pong {i}")
        writer.join(STEP_TIMEOUT_S)
        c.send(close_frame(1000))
        code, _ = c.recv_close()
        self.assertEqual(code, 1000)
        self.assertEqual(c.read_to_end()[1], "eof")
        c.close()
        log(f"reading client: {n} pongs in order in {time.monotonic() - t1:.2f} s")
        self.finish(peak_rss_bound_kib=(4 * cap + 8 * MiB) // KiB)

    # -------------------------------------------------------------- 7. garbage

    def test_07_garbage_instead_of_a_request_head_is_refused_at_once(self):
        server = self.start_attack("garbage")  # header timeout 10 s: a 408 would be a failure
        rng = random.Random(7)
        cases = [
            ("random bytes", rng.randbytes(4096), 400),
            ("TLS ClientHello", tls_client_hello(), 400),
            ("SSH banner", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", 400),
            ("NUL bytes", b"\0" * 1024, 400),
            ("CRLF flood", b"\r\n" * 100_000, 400),
            ("LF flood", b"\n" * 100_000, 400),
            ("CRLFCRLF then a request", b"\r\n\r\n" * 3 + upgrade_request(), 400),
            ("bare CR", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            ("1 MiB header line",
             b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * MiB + b"\r\n\r\n", 431),
            ("1 MiB request target", b"GET /" + b"a" * MiB + b" HTTP/1.1\r\n\r\n", 431),
            ("1 MiB without a newline", b"a" * MiB, 431),
        ]
        for what, data, want in cases:
            with self.subTest(what):
                c = Raw(server)
                t0 = time.monotonic()
                sender = threading.Thread(target=suppress_send, args=(c, data))
                sender.start()
                try:
                    status, _ = c.read_head()
                except Closed as e:
                    self.fail(f"{what}: closed ({e}) without a response")
                body, how = c.read_to_end()
                took = time.monotonic() - t0
                sender.join(STEP_TIMEOUT_S)
                c.close()
                log(f"{what} ({len(data)} bytes): {status} {body.strip().decode()!r}, then {how}, "
                    f"{took * 1000:.1f} ms")
                self.assertEqual(status, want)
                self.assertEqual(how, "eof")
                self.assertLess(took, 2.0)
        for status in (400, 431, 505):
            expected = sum(1 for _, _, want in cases if want == status)
            self.assertEqual(server.count_log(rf"-> {status} \("), expected, server.stderr_text())
        self.finish(peak_rss_bound_kib=4 * 1024)

    # -------------------------------------------------------------- extras

    def test_08_handshake_messages_and_close_in_one_write(self):
        server = self.start_attack("pipelined")
        texts = [f"pipelined {i} ✓".encode() for i in range(10)]
        data = upgrade_request() + b"".join(frame(0x1, t) for t in texts) + \
            frame(0x2, b"\x00" * 70_000) + close_frame(1000, b"bye")
        for split in ("one write", "byte by byte"):
            with self.subTest(split):
                c = Raw(server)
                if split == "one write":
                    c.send(data)
                else:
                    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for i in range(0, len(upgrade_request()) + 200):
                        c.send(data[i:i + 1])
                    c.send(data[len(upgrade_request()) + 200:])
                status, _ = c.read_head()
                self.assertEqual(status, 101)
                got = [c.recv_frame() for _ in range(11)]
                self.assertEqual([(op, p) for _, op, p in got],
                                 [(1, t) for t in texts] + [(2, b"\x00" * 70_000)])
                code, reason = c.recv_close()
                self.assertEqual(code, 1000)
                self.assertEqual(c.read_to_end()[1], "eof")
                c.close()
                log(f"{split}: 101, 11 echoes, close {code}, then EOF")
        self.finish()

    def test_09_resets_mid_handshake_and_mid_frame(self):
        server = self.start_attack("resets")
        head = upgrade_request()
        n = 0
        for i in range(60):
            c = Raw(server)
            kind = i % 4
            if kind == 0:
                c.send(head[:len(head) // 2])                        # mid-head
            elif kind == 1:
                c.handshake()
                c.send(frame(0x2, os.urandom(100_000))[:50_000])   # mid-payload
            elif kind == 2:
                c.handshake()
                c.send(frame(0x2, b"abc", length=1 << 20)[:5])      # mid-header
            else:
                c.handshake()
                c.send(frame(0x1, b"x" * 200_000) * 5)             # echoes unread
            time.sleep(0.005)
            c.reset()
            n += 1
        after = server.wait_fds(self.base_fds)
        log(f"{n} connections reset mid-head, mid-header, mid-payload and with echoes pending; "
            f"fds {after}")
        self.finish()

    def test_10_closing_client_that_never_reads_is_not_kept_forever(self):
        # A client that stops reading, then ends the session (a close frame,
        # or a protocol error), and keeps the TCP connection open. Its echoes
        # are queued behind a full socket, so the server's close can never
        # flush. Every other state has a deadline (header timeout, keepalive,
        # close timeout, linger); this one must too, or the descriptor and the
        # queued bytes are held for as long as the client likes.
        cap = 16 * MiB
        server = self.start_attack("closing, never reads", "--max-send-queue", str(cap),
                                   "--ping-interval-ms", "300", "--pong-timeout-ms", "300")
        clients = []
        for ending in (close_frame(1000, b"bye"), bytes([0x82, 0x05]) + b"hello"):  # unmasked: 1002
            c = Raw(server, rcvbuf=16 * KiB).handshake()
            message = frame(0x2, os.urandom(MiB))
            for _ in range(8):   # ~8 MiB of echoes: far more than the sockets hold, under the cap
                c.send(message)
            c.send(ending)
            clients.append(c)
        queued = server.rss_kib()
        # The close timeout (5 s) plus the linger timeout (2 s) plus sweeps is
        # the longest any closing socket should live.
        bound = 5 + 2 + 1
        t0 = time.monotonic()
        after = server.wait_fds(self.base_fds, timeout=bound)
        log(f"2 clients closed their side without reading; server RSS {queued} KiB "
            f"(+{queued - self.base_rss}); fds {after} after {time.monotonic() - t0:.2f} s "
            f"(baseline {self.base_fds}, bound {bound} s)")
        still = after - self.base_fds
        if still > 0:
            # Show what it costs before failing: the memory still held, and
            # SIGTERM, which cannot close these politely either and waits for
            # the server's whole shutdown deadline.
            held = server.rss_kib() - self.base_rss
            self.honest.stop()
            t1 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(STOP_TIMEOUT_S)
            took = time.monotonic() - t1
            for c in clients:
                c.close()
            lines = [line for line in server.log_text().splitlines()
                     if "1002" in line or "shut" in line or "SIGTERM" in line]
            log(f"still held: {still} connection(s), +{held} KiB RSS; SIGTERM then took "
                f"{took:.2f} s (exit {code})")
            for line in lines:
                log(f"server: {line}")
            self.fail(f"{still} closing connection(s) still held after {bound} s (+{held} KiB "
                      "RSS): no deadline covers a close whose queue cannot flush")
        for c in clients:
            c.close()
        self.finish()


def select_readable(socks, timeout):
    if not socks:
        time.sleep(timeout)
        return [], [], []
    return select.select(socks, [], [], timeout)


def suppress_send(raw, data):
    """Sends what the server takes; the server may close before it all goes."""
    try:
        raw.send(data)
    except OSError:
        pass


def tls_client_hello():
    """A TLS 1.2/1.3 ClientHello record, as a browser pointed at ws:// with wss:// would send."""
    body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) +
            b"\x00\x08\x13\x01\x13\x02\xc0\x2b\xc0\x2f" + b"\x01\x00")
    sni = b"localhost"
    ext = struct.pack(">HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


async def idle_client(server, idle_s, result):
    """Connects, stays idle for idle_s (answering the server's pings, as
    websockets does by itself), then checks one echo still works."""
    try:
        async with websockets.connect(server.url(), compression=None, ping_interval=None,
                                      open_timeout=STEP_TIMEOUT_S) as ws:
            await asyncio.sleep(idle_s)
            await asyncio.wait_for(ws.send("still here"), STEP_TIMEOUT_S)
            got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
            result["outcome"] = "ok" if got == "still here" else f"wrong echo {got!r}"
    except BaseException as e:  # noqa: BLE001
        result["outcome"] = f"{type(e).__name__}: {e}"


def open_many(server, count, batch):
    """Opens `count` connections, `batch` at a time, with non-blocking
    connects; returns the sockets (all still open) and a tally of kinds."""
    socks = []
    tally = {"handshake": 0, "tcp only": 0, "half head": 0, "half frame": 0}
    head = upgrade_request()
    partial_frame = frame(0x2, b"y" * 1000)[:300]
    for start in range(0, count, batch):
        sel = selectors.DefaultSelector()
        pending = 0
        for i in range(start, min(start + batch, count)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(server.addr)
            if err not in (0, errno.EINPROGRESS):
                raise AssertionError(f"connect {i}: {os.strerror(err)}")
            kind = i % 10
            state = {"i": i, "kind": kind, "buf": b""}
            sel.register(s, selectors.EVENT_WRITE, state)
            socks.append(s)
            pending += 1
        deadline = time.monotonic() + 30
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"batch at {start}: {pending} connections still pending")
            for key, events in sel.select(timeout=1):
                s, st = key.fileobj, key.data
                if events & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise AssertionError(f"connect {st['i']}: {os.strerror(err)}")
                    if st["kind"] == 7:
                        tally["tcp only"] += 1
                    elif st["kind"] == 8:
                        s.send(head[:40])
                        tally["half head"] += 1
                    else:
                        s.send(head)
                        sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    sel.unregister(s)
                    pending -= 1
                elif events & selectors.EVENT_READ:
                    data = s.recv(4096)
                    if not data:
                        raise AssertionError(f"connection {st['i']} closed during the handshake")
                    st["buf"] += data
                    if b"\r\n\r\n" in st["buf"]:
                        if not st["buf"].startswith(b"HTTP/1.1 101 "):
                            raise AssertionError(f"connection {st['i']}: {st['buf'][:100]!r}")
                        if st["kind"] == 9:
                            s.send(partial_frame)
                            tally["half frame"] += 1
                        else:
                            tally["handshake"] += 1
                        sel.unregister(s)
                        pending -= 1
        sel.close()
    return socks, tally


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


if __name__ == "__main__":
    wt.watchdog()
    # Before any server starts, so that each inherits the raised soft limit.
    soft, hard = raise_fd_limit()
    print(f"hostile_test: RLIMIT_NOFILE {soft}/{hard} (servers inherit it)", flush=True)
    wt.run_tests()
