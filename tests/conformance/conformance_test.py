#!/usr/bin/python3
"""RFC 6455 conformance suite for a WebSocket echo server.

A raw-socket client plays the server-facing case families of the Autobahn
TestSuite's fuzzingclient (framing, ping/pong, reserved bits, reserved
opcodes, fragmentation, UTF-8, close handling, limits, auto-fragmentation)
against an echo server and checks the outcome RFC 6455 requires.  Python 3.11
standard library only.

Run:
    WINDLASS_ECHO_BIN=build/examples/echo/windlass-echo \
        /usr/bin/python3 tests/conformance/conformance_test.py [CASE-ID-PREFIX ...]
    /usr/bin/python3 tests/conformance/conformance_test.py --list   (cases only)

Environment:
    WINDLASS_ECHO_BIN               echo server binary; started as
                                    `BIN --host 127.0.0.1 --port 0`, must print
                                    `listening on 127.0.0.1:PORT` on stdout
    WINDLASS_CONFORMANCE_URL        host:port of a server already running
                                    (instead of starting one; skips the RSS and
                                    shutdown cases)
    WINDLASS_CONFORMANCE_REPORT     also write the report to this file
    WINDLASS_CONFORMANCE_JOBS       light cases run this many at a time (8)
    WINDLASS_CONFORMANCE_TIME_SCALE multiply every time budget (default 1,
                                    3 for an ASan build, 5 for TSan)
    WINDLASS_CONFORMANCE_MAX_RSS_MIB  peak RSS bound (200; 1024 under ASan)

Exit status 0 when every case passed, 1 otherwise.  The last line of the
report is `conformance: N passed, M failed`.
"""

import base64
import concurrent.futures
import hashlib
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
OP_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

KIB = 1024
MIB = 1024 * 1024
MAX_MESSAGE = 16 * MIB  # the echo server's configured limit: 16 MiB allowed, more -> 1009

# Close codes an endpoint may put on the wire (RFC 6455 7.4.1, 7.4.2 and the
# IANA registry: 1012-1014 were registered after the RFC).  1004, 1005, 1006
# and 1015 are reserved and must never appear in a Close frame.
def sendable_close_code(code):
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Fail(Exception):
    """The server's behaviour differs from what the case expects."""


class Timeout(Exception):
    """A wait ran past its deadline."""


# ---------------------------------------------------------------------------
# Frames, payloads, UTF-8


def mask_bytes(key, data):
    """XOR data with the 4-byte key (RFC 6455 5.3), fast for large payloads."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None, length_form=None):
    """Encode one client frame with arbitrary bits.

    length announces a payload length different from len(payload) (to send a
    frame header, or a frame's first bytes, only); length_form forces the 7-,
    16- or 64-bit length encoding ('7', '16', '64') even where it is not minimal.
    """
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length is None else length
    form = length_form or ("7" if n < 126 else "16" if n < 65536 else "64")
    mbit = 0x80 if mask else 0
    if form == "7":
        head = bytes([b0, mbit | n])
    elif form == "16":
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(key, payload)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def fragments(op, payload, size):
    """The message as data frames of at most size payload bytes."""
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for i, part in enumerate(parts):
        out.append(frame(op if i == 0 else OP_CONT, part, fin=i == len(parts) - 1))
    return b"".join(out)


def text_payload(n):
    """Valid UTF-8 of exactly n bytes mixing 1- to 4-byte sequences."""
    unit = "Hello, κόσμε! €𝄞 windlass·ünïcødé ".encode()
    reps = unit * (n // len(unit) + 2)
    i = n
    while i > 0 and (reps[i] & 0xC0) == 0x80:
        i -= 1
    return reps[:i] + b"x" * (n - i)


def binary_payload(n, seed=0):
    return random.Random(seed).randbytes(n)


def utf8_first_bad(data):
    """Index of the first byte that makes data's prefix invalid UTF-8, or None.

    RFC 3629 section 4, byte by byte: each second byte has its own range
    (E0 A0-BF, ED 80-9F, F0 90-BF, F4 80-8F), so overlongs, surrogates and
    code points above U+10FFFF are proven invalid at the earliest byte.  None
    means data is valid or a valid but truncated prefix.
    """
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF
        elif 0xE1 <= c <= 0xEC or 0xEE <= c <= 0xEF:
            need, lo, hi = 2, 0x80, 0xBF
        elif c == 0xED:
            need, lo, hi = 2, 0x80, 0x9F
        elif c == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            need, lo, hi = 3, 0x80, 0x8F
        else:
            return i
        for j in range(1, need + 1):
            if i + j >= n:
                return None
            d = data[i + j]
            if not ((lo <= d <= hi) if j == 1 else (0x80 <= d <= 0xBF)):
                return i + j
        i += need + 1
    return None


def utf8_valid(data):
    try:
        bytes(data).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def hexs(data, limit=12):
    s = " ".join(f"{b:02x}" for b in data[:limit])
    return s + (" ..." if len(data) > limit else "")


def split_writes(data, chunks, rng):
    if chunks is None or len(data) == 0:
        return [data]
    if chunks == "slow":
        chunks = 1
    if chunks == "random":
        out, i = [], 0
        top = max(2, min(len(data) // 4, 4096))
        while i < len(data):
            step = rng.randint(1, top)
            out.append(data[i:i + step])
            i += step
        return out
    return [data[i:i + chunks] for i in range(0, len(data), chunks)]


def chunk_label(chunks):
    if chunks is None:
        return "one write"
    if chunks == "slow":
        return "1-byte writes 1 ms apart"
    if chunks == "random":
        return "random write sizes"
    return f"{chunks}-byte writes"


# ---------------------------------------------------------------------------
# The raw client


class Conn:
    """One WebSocket client connection over a plain, non-blocking socket.

    Reading and writing share one select() loop: while a large write is
    blocked, whatever the server sends back is read into the buffer, so an
    echo of an earlier message never deadlocks against our own send.
    Items returned by next_item(): ('text'|'binary', payload) for a whole
    (reassembled) message, ('pong', payload), ('close', code|None, reason),
    ('end', 'eof'|'reset'|...) when the TCP connection is gone.  Anything the
    server sends that breaks RFC 6455 raises Fail at once.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.deadline = ctx.deadline
        self.rng = ctx.rng
        self.buf = bytearray()
        self.pos = 0
        self.rbuf = bytearray(256 * KIB)
        self.ended = None
        self.send_error = None
        self.frag_op = None
        self.frag_parts = []
        self.frames_in_last_message = 0
        self.close_seen = None
        self.sent_close = False
        self.server_pings = 0
        self.pending = []
        host, port = ctx.addr
        try:
            self.sock = socket.create_connection(ctx.addr, timeout=max(0.1, self.remaining()))
        except OSError as e:
            raise Fail(f"cannot connect to {host}:{port}: {e}")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.handshake()

    def remaining(self, deadline=None):
        d = self.deadline if deadline is None else min(deadline, self.deadline)
        return d - time.monotonic()

    # -- bytes in

    def _recv(self):
        try:
            n = self.sock.recv_into(self.rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, ConnectionAbortedError):
            self.ended = "reset"
            return
        except OSError as e:
            self.ended = f"error ({e})"
            return
        if n == 0:
            self.ended = "eof"
        else:
            self.buf += memoryview(self.rbuf)[:n]

    def _fill(self, deadline):
        """Wait for more bytes; False when the deadline passed first."""
        if self.ended:
            return True
        t = self.remaining(deadline)
        if t <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], t)
        if not r:
            return False
        self._recv()
        return True

    # -- bytes out

    def send(self, data, chunks=None):
        """Write data split into writes as chunks says (see split_writes).

        A send error (the server already closed) is remembered, not raised:
        the case goes on reading to see how the server ended the connection.
        """
        if self.send_error:
            return False
        for piece in split_writes(data, chunks, self.rng):
            if not self._send_all(piece):
                return False
            if chunks == "slow":
                time.sleep(0.001)
        return True

    def _send_all(self, data):
        mv = memoryview(data)
        off = 0
        while off < len(mv):
            try:
                off += self.sock.send(mv[off:off + (1 << 20)])
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                self.send_error = e.strerror or str(e)
                return False
            t = self.remaining()
            if t <= 0:
                raise Timeout(f"a write blocked: the server stopped reading ({off} of {len(mv)} bytes sent)")
            if self.ended or self._scan_for_close():
                # The server has closed or sent its close frame: the rest of
                # this write would never be read, so stop here.
                self.send_error = f"server closed first ({off} of {len(mv)} bytes of a write sent)"
                return False
            r, _, _ = select.select([self.sock], [self.sock], [], t)
            if r:
                self._recv()
        return True

    def _scan_for_close(self):
        """Parse what has arrived into pending items; True once a close is among them."""
        while True:
            f = self._parse_frame()
            if f is None:
                break
            item = self._on_frame(*f)
            if item is not None:
                self.pending.append(item)
        return self.close_seen is not None

    # -- handshake

    def handshake(self):
        host, port = self.ctx.addr
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n\r\n")
        self.send(req.encode())
        while b"\r\n\r\n" not in self.buf:
            if self.ended:
                raise Fail(f"handshake: connection {self.ended} before the response head ({bytes(self.buf[:80])!r})")
            if len(self.buf) > 16384:
                raise Fail("handshake: response head over 16 KiB")
            if not self._fill(None):
                raise Fail("handshake: no response head in time")
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        self.pos = 0
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[0] != "HTTP/1.1" or status[1] != "101":
            raise Fail(f"handshake: expected 'HTTP/1.1 101', got {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise Fail(f"handshake: malformed header line {line!r}")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        if [v.lower() for v in headers.get("upgrade", [])] != ["websocket"]:
            raise Fail(f"handshake: Upgrade header is {headers.get('upgrade')}")
        tokens = [t.strip().lower() for v in headers.get("connection", []) for t in v.split(",")]
        if "upgrade" not in tokens:
            raise Fail(f"handshake: Connection header is {headers.get('connection')}")
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != [accept]:
            raise Fail(f"handshake: Sec-WebSocket-Accept is {headers.get('sec-websocket-accept')}, expected {accept}")
        if "sec-websocket-extensions" in headers:
            raise Fail(f"handshake: server accepted extensions nobody offered: {headers['sec-websocket-extensions']}")
        if "sec-websocket-protocol" in headers:
            raise Fail(f"handshake: server chose a subprotocol nobody offered: {headers['sec-websocket-protocol']}")

    # -- frames in

    def _parse_frame(self):
        b, p = self.buf, self.pos
        avail = len(b) - p
        if avail < 2:
            return None
        b0, b1 = b[p], b[p + 1]
        n = b1 & 0x7F
        hl = 2
        if n == 126:
            if avail < 4:
                return None
            n = int.from_bytes(b[p + 2:p + 4], "big")
            hl = 4
            if n < 126:
                raise Fail(f"server frame uses a 16-bit length for {n} bytes (RFC 6455 5.2: minimal encoding)")
        elif n == 127:
            if avail < 10:
                return None
            n = int.from_bytes(b[p + 2:p + 10], "big")
            hl = 10
            if n < 65536:
                raise Fail(f"server frame uses a 64-bit length for {n} bytes (RFC 6455 5.2: minimal encoding)")
        masked = bool(b1 & 0x80)
        if masked:
            hl += 4
        if avail < hl + n:
            return None
        payload = bytes(b[p + hl:p + hl + n])
        if masked:
            payload = mask_bytes(bytes(b[p + hl - 4:p + hl]), payload)
        self.pos = p + hl + n
        if self.pos == len(b) or self.pos > 8 * MIB:
            del self.buf[:self.pos]
            self.pos = 0
        return (b0 >> 7) & 1, (b0 >> 4) & 7, b0 & 0xF, masked, payload

    def next_item(self, deadline=None):
        """The next message, pong, close or end of connection (see class doc)."""
        if self.pending:
            return self.pending.pop(0)
        while True:
            f = self._parse_frame()
            if f is None:
                if self.ended:
                    return ("end", self.ended)
                if not self._fill(deadline):
                    raise Timeout()
                continue
            item = self._on_frame(*f)
            if item is not None:
                return item

    def _on_frame(self, fin, rsv, op, masked, payload):
        name = OP_NAMES.get(op, f"opcode-{op:#x}")
        if self.close_seen is not None:
            raise Fail(f"server sent a {name} frame after its close frame (RFC 6455 5.5.1)")
        if masked:
            raise Fail(f"server sent a masked {name} frame (RFC 6455 5.1)")
        if rsv:
            raise Fail(f"server set RSV bits {rsv:03b} on a {name} frame with no extension negotiated (RFC 6455 5.2)")
        if op in (OP_TEXT, OP_BINARY):
            if self.frag_op is not None:
                raise Fail("server started a new message inside its own fragmented message (RFC 6455 5.4)")
            if fin:
                self.frames_in_last_message = 1
                return self._message(op, payload)
            self.frag_op, self.frag_parts = op, [payload]
            return None
        if op == OP_CONT:
            if self.frag_op is None:
                raise Fail("server sent a continuation frame with no message open (RFC 6455 5.4)")
            self.frag_parts.append(payload)
            if not fin:
                return None
            op, data = self.frag_op, b"".join(self.frag_parts)
            self.frames_in_last_message = len(self.frag_parts)
            self.frag_op, self.frag_parts = None, []
            return self._message(op, data)
        if op in (OP_CLOSE, OP_PING, OP_PONG):
            if not fin:
                raise Fail(f"server sent a fragmented {name} frame (RFC 6455 5.5)")
            if len(payload) > 125:
                raise Fail(f"server sent a {name} frame with a {len(payload)}-byte payload (RFC 6455 5.5)")
            if op == OP_CLOSE:
                if len(payload) == 1:
                    raise Fail("server sent a close frame with a 1-byte payload (RFC 6455 5.5.1)")
                code = struct.unpack("!H", payload[:2])[0] if payload else None
                reason = payload[2:]
                if code is not None and not sendable_close_code(code):
                    raise Fail(f"server sent close code {code}, which may not be sent (RFC 6455 7.4)")
                if not utf8_valid(reason):
                    raise Fail(f"server's close reason is not UTF-8: {hexs(reason)} (RFC 6455 5.5.1)")
                self.close_seen = ("close", code, reason)
                return self.close_seen
            if op == OP_PING:
                # A keepalive ping from the server.  Not answered: a pong
                # written now could land inside a frame the case is sending.
                self.server_pings += 1
                return None
            return ("pong", payload)
        raise Fail(f"server sent a frame with reserved opcode {op:#x}")

    def _message(self, op, data):
        if op == OP_TEXT:
            if not utf8_valid(data):
                raise Fail(f"server sent a text message that is not UTF-8 ({len(data)} bytes)")
            return ("text", data)
        return ("binary", data)


# ---------------------------------------------------------------------------
# Expectations


def describe(item):
    kind = item[0]
    if kind in ("text", "binary", "pong"):
        data = item[1]
        if len(data) <= 24:
            shown = repr(data.decode("utf-8", "replace")) if kind == "text" else hexs(data)
            return f"{kind} {len(data)} bytes [{shown}]"
        return f"{kind} {len(data)} bytes"
    if kind == "close":
        return fmt_close(item)
    if kind == "end":
        return f"TCP {item[1]}"
    return repr(item)


def fmt_close(item):
    _, code, reason = item
    if code is None:
        return "close (no code)"
    return f"close {code}" + (f" {reason.decode('utf-8', 'replace')!r}" if reason else "")


def fmt_codes(codes):
    return "/".join(str(c) for c in sorted(codes))


def diff_payload(want, got):
    if want == got:
        return ""
    n = min(len(want), len(got))
    i = next((k for k in range(0, n, 4096) if want[k:k + 4096] != got[k:k + 4096]), None)
    if i is not None:
        while want[i] == got[i]:
            i += 1
        return f"first difference at byte {i}"
    return f"lengths {len(want)} vs {len(got)}"


def same_item(a, b):
    return a[0] == b[0] and a[1] == b[1]


def read_items(conn, n_msgs, n_pongs=0, deadline=None):
    """Read until n_msgs messages and n_pongs pongs arrived; anything else fails."""
    msgs, pongs = [], []
    while len(msgs) < n_msgs or len(pongs) < n_pongs:
        try:
            item = conn.next_item(deadline)
        except Timeout:
            raise Fail(f"timed out waiting: {len(msgs)} of {n_msgs} echoes and {len(pongs)} of {n_pongs} pongs arrived")
        kind = item[0]
        if kind in ("text", "binary"):
            if len(msgs) == n_msgs:
                raise Fail(f"unexpected {describe(item)} (all {n_msgs} echoes already arrived)")
            msgs.append(item)
        elif kind == "pong":
            if len(pongs) == n_pongs:
                raise Fail(f"unexpected {describe(item)}")
            pongs.append(item)
        elif kind == "close":
            raise Fail(f"server sent {fmt_close(item)} after {len(msgs)} of {n_msgs} echoes, {len(pongs)} of {n_pongs} pongs")
        else:
            raise Fail(f"TCP connection {item[1]} without a close frame after {len(msgs)} of {n_msgs} echoes")
    return msgs, pongs


def compare(label, want, got):
    for i, (w, g) in enumerate(zip(want, got)):
        if not same_item(w, g):
            detail = diff_payload(w[1], g[1]) if w[0] == g[0] else ""
            raise Fail(f"{label} #{i + 1}: expected {describe(w)}, got {describe(g)}" + (f" ({detail})" if detail else ""))


def expect_echo(conn, want, pongs=(), close=True):
    """The server answers with exactly these messages (and pongs), then a clean close."""
    msgs, got_pongs = read_items(conn, len(want), len(pongs))
    compare("echo", want, msgs)
    compare("pong", list(pongs), got_pongs)
    if close:
        close_handshake(conn)


def close_handshake(conn, payload=None, accept=(1000,), allow_empty=False, deadline=None):
    """Send a close (1000 by default) and expect the close answer, then TCP close."""
    if payload is None:
        payload = close_payload(1000)
    conn.send(frame(OP_CLOSE, payload))
    conn.sent_close = True
    try:
        item = conn.next_item(deadline)
    except Timeout:
        raise Fail("no close frame in answer to ours")
    if item[0] != "close":
        raise Fail(f"expected the close answer, got {describe(item)}")
    code = item[1]
    if code is None and not allow_empty or code is not None and code not in accept:
        raise Fail(f"answered our close with {fmt_close(item)}, expected close {fmt_codes(accept)}")
    wait_tcp_close(conn)
    return item


def wait_tcp_close(conn):
    """After the close handshake the server must close the TCP connection (RFC 6455 7.1.1)."""
    wait = conn.ctx.close_wait
    try:
        item = conn.next_item(time.monotonic() + wait)
    except Timeout:
        raise Fail(f"server kept the TCP connection open {wait:.1f} s after the close handshake (RFC 6455 7.1.1)")
    if item[0] != "end":
        raise Fail(f"expected TCP close, got {describe(item)}")


def expect_close(conn, codes, may_first=(), deadline=None):
    """The server fails the connection: a close frame with one of codes.

    may_first lists, in order, answers to valid frames sent before the bad
    one; any prefix of it may arrive before the close, nothing else.  Then
    we answer the close as a client does and the server must close TCP.
    """
    got = []
    while True:
        try:
            item = conn.next_item(deadline)
        except Timeout:
            extra = f" ({len(got)} earlier answers arrived)" if got else ""
            raise Fail(f"no close frame in time (expected close {fmt_codes(codes)}){extra}")
        if item[0] == "close":
            break
        if item[0] == "end":
            raise Fail(f"TCP connection {item[1]} without a close frame (expected close {fmt_codes(codes)})")
        got.append(item)
        if len(got) > len(may_first) or not same_item(got[-1], may_first[len(got) - 1]):
            raise Fail(f"unexpected {describe(item)} before the close (expected close {fmt_codes(codes)})")
    if item[1] not in codes:
        raise Fail(f"expected close {fmt_codes(codes)}, got {fmt_close(item)}")
    conn.send(frame(OP_CLOSE, close_payload(item[1])))
    conn.sent_close = True
    wait_tcp_close(conn)
    return got


def expect_echo_or_close(conn, want, codes):
    """Either answer is allowed: the whole echo then a clean close, or close codes."""
    try:
        item = conn.next_item()
    except Timeout:
        raise Fail(f"neither an echo nor a close {fmt_codes(codes)} arrived")
    if item[0] == "close":
        if item[1] not in codes:
            raise Fail(f"expected the echo or close {fmt_codes(codes)}, got {fmt_close(item)}")
        conn.send(frame(OP_CLOSE, close_payload(item[1])))
        wait_tcp_close(conn)
        return f"server closed with {item[1]}"
    compare("echo", want[:1], [item])
    expect_echo(conn, want[1:])
    return "server echoed"


# ---------------------------------------------------------------------------
# Case registry

FAMILIES = {
    "1": "framing: payload length classes and write splits (RFC 6455 5.2, 5.6)",
    "2": "ping and pong (RFC 6455 5.5.2, 5.5.3)",
    "3": "reserved bits (RFC 6455 5.2)",
    "4": "reserved opcodes (RFC 6455 5.2)",
    "5": "fragmentation and masking (RFC 6455 5.1, 5.4, 5.5)",
    "6": "UTF-8 handling (RFC 6455 5.6, 8.1; RFC 3629)",
    "7": "close handling (RFC 6455 5.5.1, 7.1-7.4)",
    "9": "limits and large payloads (RFC 6455 10.4)",
    "10": "auto-fragmentation of echoes (RFC 6455 5.4)",
    "11": "server shutdown (RFC 6455 7.4.1 code 1001)",
}


class Case:
    def __init__(self, cid, title, expect, fn, budget, phase):
        self.id, self.title, self.expect, self.fn = cid, title, expect, fn
        self.budget, self.phase = budget, phase
        self.result, self.reason, self.elapsed = None, "", 0.0


CASES = []


def case(cid, title, expect, fn, budget=5.0, phase="light"):
    CASES.append(Case(cid, title, expect, fn, budget, phase))


class Ctx:
    """What a case function gets: connections with the case's deadline."""

    def __init__(self, suite, c):
        self.suite = suite
        self.addr = suite.addr
        self.deadline = min(time.monotonic() + c.budget * suite.scale, suite.global_deadline)
        self.close_wait = 2.0 * suite.scale
        self.fast_wait = 1.0 * suite.scale
        self.rng = random.Random(c.id)
        self.conns = []
        self.notes = []

    def conn(self):
        c = Conn(self)
        self.conns.append(c)
        return c

    def note(self, text):
        self.notes.append(text)

    def close_all(self):
        for c in self.conns:
            try:
                c.sock.close()
            except OSError:
                pass


def kind_of(op):
    return "text" if op == OP_TEXT else "binary"


def send_expect_echo(data, want, chunks=None, pongs=()):
    def fn(ctx):
        c = ctx.conn()
        c.send(data, chunks)
        expect_echo(c, want, pongs)
    return fn


def send_expect_close(data, codes, may_first=(), chunks=None):
    def fn(ctx):
        c = ctx.conn()
        c.send(data, chunks)
        got = expect_close(c, codes, may_first)
        if may_first:
            ctx.note(f"{len(got)} of {len(may_first)} earlier answers arrived before the close")
    return fn


def send_expect_echo_or_close(data, want, codes, chunks=None):
    def fn(ctx):
        c = ctx.conn()
        c.send(data, chunks)
        ctx.note(expect_echo_or_close(c, want, codes))
    return fn


def probe_many(ctx, probes, codes, deadline):
    """Each probe on its own connection, all at once; each must end in close codes."""
    conns = [(label, ctx.conn()) for label, _ in probes]
    for (label, c), (_, data) in zip(conns, probes):
        c.send(data)
    failures = []
    for label, c in conns:
        try:
            expect_close(c, codes, deadline=deadline)
        except (Fail, Timeout) as e:
            failures.append(f"[{label}] {e}")
    if failures:
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        raise Fail(f"{len(failures)} of {len(probes)} variants failed: " + "; ".join(failures[:3]) + more)
    ctx.note(f"{len(probes)} variants")


# ---------------------------------------------------------------------------
# 1 framing

LENGTHS = [0, 1, 2, 124, 125, 126, 127, 128, 255, 256, 1000, 4096, 65535, 65536, 65537, 131072]
CHUNK_LENGTHS = [0, 125, 126, 127, 128, 65535, 65536, 65537]
CHUNKINGS = [1, 7, 997, "random"]


def register_framing():
    for sub, op in ((1, OP_TEXT), (2, OP_BINARY)):
        for i, n in enumerate(LENGTHS, 1):
            p = text_payload(n) if op == OP_TEXT else binary_payload(n, n)
            case(f"1.{sub}.{i}", f"{kind_of(op)} {n} bytes, one write",
                 f"echoed as {kind_of(op)}, byte-exact; clean close",
                 send_expect_echo(frame(op, p), [(kind_of(op), p)]))
    for sub, op in ((3, OP_TEXT), (4, OP_BINARY)):
        i = 0
        for n in CHUNK_LENGTHS:
            p = text_payload(n) if op == OP_TEXT else binary_payload(n, n)
            for ch in CHUNKINGS:
                i += 1
                case(f"1.{sub}.{i}", f"{kind_of(op)} {n} bytes, {chunk_label(ch)}",
                     f"echoed as {kind_of(op)}, byte-exact; clean close",
                     send_expect_echo(frame(op, p), [(kind_of(op), p)], ch))
    i = 0
    for op in (OP_TEXT, OP_BINARY):
        for n in (0, 125, 126):
            i += 1
            p = text_payload(n) if op == OP_TEXT else binary_payload(n, n)
            case(f"1.5.{i}", f"{kind_of(op)} {n} bytes, {chunk_label('slow')}",
                 f"echoed as {kind_of(op)}, byte-exact",
                 send_expect_echo(frame(op, p), [(kind_of(op), p)], "slow"))
    three = [(OP_TEXT, b""), (OP_BINARY, binary_payload(126, 1)), (OP_TEXT, text_payload(65536))]
    case("1.6.1", "text 0, binary 126, text 65536 bytes in one write", "three echoes in order",
         send_expect_echo(b"".join(frame(op, p) for op, p in three), [(kind_of(op), p) for op, p in three]))
    many = [(OP_TEXT if n % 2 else OP_BINARY, text_payload(n) if n % 2 else binary_payload(n, n)) for n in range(100)]
    case("1.6.2", "100 messages of 0..99 bytes, text and binary alternating, in one write",
         "100 echoes in order", send_expect_echo(b"".join(frame(op, p) for op, p in many),
                                                [(kind_of(op), p) for op, p in many]))
    case("1.6.3", "the same 100 messages in random write sizes", "100 echoes in order",
         send_expect_echo(b"".join(frame(op, p) for op, p in many), [(kind_of(op), p) for op, p in many], "random"))
    # RFC 6455 5.2 makes the minimal length encoding a MUST for the sender but
    # does not say what the receiver does; either answer is fine, a hang is not.
    p5, p200 = b"Hello", binary_payload(200, 200)
    case("1.7.1", "text 5 bytes with a 16-bit length (non-minimal)", "echo, or close 1002",
         send_expect_echo_or_close(frame(OP_TEXT, p5, length_form="16"), [("text", p5)], {1002}))
    case("1.7.2", "binary 200 bytes with a 64-bit length (non-minimal)", "echo, or close 1002",
         send_expect_echo_or_close(frame(OP_BINARY, p200, length_form="64"), [("binary", p200)], {1002}))


# ---------------------------------------------------------------------------
# 2 ping / pong

def register_ping():
    p125 = text_payload(125)
    pbin = bytes(range(256))[:125]
    case("2.1", "ping without payload", "pong without payload",
         send_expect_echo(frame(OP_PING), [], pongs=[("pong", b"")]))
    case("2.2", "ping with 125-byte text payload", "pong with the identical payload",
         send_expect_echo(frame(OP_PING, p125), [], pongs=[("pong", p125)]))
    case("2.3", "ping with 125-byte binary payload (bytes 00..7c)", "pong with the identical payload",
         send_expect_echo(frame(OP_PING, pbin), [], pongs=[("pong", pbin)]))
    case("2.4", "ping with 126-byte payload", "close 1002, no pong",
         send_expect_close(frame(OP_PING, text_payload(126)), {1002}))
    case("2.5", "ping 125 bytes, 1-byte writes 1 ms apart", "pong with the identical payload",
         send_expect_echo(frame(OP_PING, pbin), [], pongs=[("pong", pbin)], chunks="slow"))
    case("2.6", "unsolicited pong without payload, then text", "pong ignored; text echoed",
         send_expect_echo(frame(OP_PONG) + frame(OP_TEXT, b"after pong"), [("text", b"after pong")]))
    case("2.7", "unsolicited pong with 125-byte payload, then text", "pong ignored; text echoed",
         send_expect_echo(frame(OP_PONG, p125) + frame(OP_TEXT, b"after pong"), [("text", b"after pong")]))
    case("2.8", "unsolicited pong, then ping 'ping-payload'", "only the pong for the ping",
         send_expect_echo(frame(OP_PONG, b"unsolicited") + frame(OP_PING, b"ping-payload"), [],
                          pongs=[("pong", b"ping-payload")]))
    ten = [f"payload-{i}".encode() for i in range(10)]
    case("2.9", "10 pings with payloads in one write", "10 pongs, payloads in order",
         send_expect_echo(b"".join(frame(OP_PING, p) for p in ten), [], pongs=[("pong", p) for p in ten]))
    case("2.10", "10 pings, 7-byte writes", "10 pongs, payloads in order",
         send_expect_echo(b"".join(frame(OP_PING, p) for p in ten), [], pongs=[("pong", p) for p in ten], chunks=7))

    def ten_then_close(ctx):
        c = ctx.conn()
        c.send(b"".join(frame(OP_PING, p) for p in ten) + frame(OP_CLOSE, close_payload(1000)))
        c.sent_close = True
        _, pongs = read_items(c, 0, 10)
        compare("pong", [("pong", p) for p in ten], pongs)
        try:
            item = c.next_item()
        except Timeout:
            raise Fail("no close answer after the 10 pongs")
        if item[0] != "close" or item[1] != 1000:
            raise Fail(f"expected close 1000 after the pongs, got {describe(item)}")
        wait_tcp_close(c)
    case("2.11", "10 pings then close 1000, one write",
         "10 pongs (the pings precede the close, RFC 6455 5.5.2), then close 1000, TCP close", ten_then_close)
    case("2.12", "text, ping, binary in one write", "echo text, pong, echo binary",
         send_expect_echo(frame(OP_TEXT, b"one") + frame(OP_PING, b"p") + frame(OP_BINARY, b"\x00two"),
                          [("text", b"one"), ("binary", b"\x00two")], pongs=[("pong", b"p")]))


# ---------------------------------------------------------------------------
# 3 reserved bits

def register_rsv():
    hello = frame(OP_TEXT, b"Hello")
    after = frame(OP_PING, b"after")
    first = [("text", b"Hello")]
    kinds = [
        ("text", lambda r: frame(OP_TEXT, b"reserved", rsv=r), (1, 2, 3, 4, 5, 6, 7)),
        ("binary", lambda r: frame(OP_BINARY, b"\x00\xff\x10", rsv=r), (1, 2, 4)),
        ("ping", lambda r: frame(OP_PING, b"ping", rsv=r), (1, 2, 4)),
        ("pong", lambda r: frame(OP_PONG, b"pong", rsv=r), (1, 2, 4)),
        ("close", lambda r: frame(OP_CLOSE, close_payload(1000), rsv=r), (1, 2, 4)),
        ("continuation", lambda r: frame(OP_TEXT, b"frag", fin=False) + frame(OP_CONT, b"ment", rsv=r), (1, 2, 4)),
    ]
    chunk_cycle = [None, 1, None, "slow"]
    i = 0
    for name, make, values in kinds:
        for r in values:
            ch = chunk_cycle[i % len(chunk_cycle)]
            i += 1
            case(f"3.{i}", f"valid text, {name} frame with RSV={r:03b}, ping; {chunk_label(ch)}",
                 "close 1002; the earlier text's echo may come first; no pong",
                 send_expect_close(hello + make(r) + after, {1002}, first, ch))


# ---------------------------------------------------------------------------
# 4 reserved opcodes

def register_opcodes():
    ops = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]
    for i, op in enumerate(ops, 1):
        case(f"4.1.{i}", f"frame with reserved opcode {op:#x}, no payload", "close 1002",
             send_expect_close(frame(op), {1002}))
    for i, op in enumerate(ops, 1):
        case(f"4.2.{i}", f"valid text, reserved opcode {op:#x} with payload, ping", "close 1002; echo may come first; no pong",
             send_expect_close(frame(OP_TEXT, b"Hello") + frame(op, b"reserved payload") + frame(OP_PING, b"after"),
                               {1002}, [("text", b"Hello")], 1 if i % 2 else None))


# ---------------------------------------------------------------------------
# 5 fragmentation and masking

def register_fragmentation():
    frag_text = frame(OP_TEXT, b"fragment1", fin=False) + frame(OP_CONT, b"fragment2")
    whole = [("text", b"fragment1fragment2")]
    with_ping = frame(OP_TEXT, b"fragment1", fin=False) + frame(OP_PING, b"ping-in-between") + frame(OP_CONT, b"fragment2")
    cont_fin = frame(OP_CONT, b"fragment1") + frame(OP_TEXT, b"fragment2", fin=False) + frame(OP_CONT, b"fragment3")
    cont_nofin = frame(OP_CONT, b"fragment1", fin=False) + frame(OP_TEXT, b"fragment2", fin=False) + frame(OP_CONT, b"fragment3")
    cases = [
        ("ping in 2 fragments", frame(OP_PING, b"ping", fin=False) + frame(OP_CONT, b"-frag"), "close 1002, no pong", {1002}, None),
        ("pong in 2 fragments", frame(OP_PONG, b"pong", fin=False) + frame(OP_CONT, b"-frag"), "close 1002", {1002}, None),
        ("close in 2 fragments", frame(OP_CLOSE, close_payload(1000), fin=False) + frame(OP_CONT, b"x"), "close 1002", {1002}, None),
    ]
    n = 0
    for title, data, expect, codes, ch in cases:
        n += 1
        case(f"5.{n}", title, expect, send_expect_close(data, codes, (), ch))
    for ch in (None, 1, "slow"):
        n += 1
        case(f"5.{n}", f"text in 2 fragments, {chunk_label(ch)}", "echoed whole as one text message",
             send_expect_echo(frag_text, whole, ch))
    for ch in (None, 1, "slow"):
        n += 1
        case(f"5.{n}", f"text in 2 fragments with a ping between, {chunk_label(ch)}", "pong, then the whole text",
             send_expect_echo(with_ping, whole, ch, pongs=[("pong", b"ping-in-between")]))
    for ch in (None, 1, "slow"):
        n += 1
        case(f"5.{n}", f"continuation (FIN) with no message open, then text/continuation; {chunk_label(ch)}",
             "close 1002, no echo", send_expect_close(cont_fin, {1002}, (), ch))
    for ch in (None, 1, "slow"):
        n += 1
        case(f"5.{n}", f"continuation (no FIN) with no message open, then text/continuation; {chunk_label(ch)}",
             "close 1002, no echo", send_expect_close(cont_nofin, {1002}, (), ch))
    n += 1
    case(f"5.{n}", "text in 2 fragments, then a stray continuation pair",
         "echo of the first message may come, then close 1002",
         send_expect_close(frag_text + frame(OP_CONT, b"fragment3", fin=False) + frame(OP_CONT, b"fragment4"),
                           {1002}, whole))
    n += 1
    case(f"5.{n}", "text (no FIN) followed by a new text frame", "close 1002, no echo",
         send_expect_close(frame(OP_TEXT, b"fragment1", fin=False) + frame(OP_TEXT, b"fragment2"), {1002}))
    n += 1
    case(f"5.{n}", "binary (no FIN) followed by a new text frame", "close 1002, no echo",
         send_expect_close(frame(OP_BINARY, b"\x01", fin=False) + frame(OP_TEXT, b"new"), {1002}))
    n += 1
    case(f"5.{n}", "text (no FIN) followed by a binary frame (no FIN)", "close 1002, no echo",
         send_expect_close(frame(OP_TEXT, b"open", fin=False) + frame(OP_BINARY, b"\x02", fin=False), {1002}))
    pieces = [b"fragment1", b"fragment2", b"fragment3", b"fragment4", b"fragment5"]
    five = b""
    for i, p in enumerate(pieces):
        five += frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == 4)
        if i < 4:
            five += frame(OP_PING, f"pongme {i}".encode())
    for ch in ("slow", 1):
        n += 1
        case(f"5.{n}", f"text in 5 fragments with a ping after each of the first 4, {chunk_label(ch)}",
             "4 pongs, then the whole text", send_expect_echo(five, [("text", b"".join(pieces))], ch,
                                                            pongs=[("pong", f"pongme {i}".encode()) for i in range(4)]))
    n += 1
    case(f"5.{n}", "binary in 2 fragments", "echoed whole as one binary message",
         send_expect_echo(frame(OP_BINARY, b"\x00\x01", fin=False) + frame(OP_CONT, b"\x02\x03"), [("binary", b"\x00\x01\x02\x03")]))
    hm = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    n += 1
    case(f"5.{n}", f"text of {len(hm)} bytes in 1-byte fragments (split inside characters)", "echoed whole",
         send_expect_echo(fragments(OP_TEXT, hm, 1), [("text", hm)]))
    bmany = binary_payload(1000, 5)
    n += 1
    case(f"5.{n}", "binary 1000 bytes in 1000 1-byte fragments", "echoed whole",
         send_expect_echo(fragments(OP_BINARY, bmany, 1), [("binary", bmany)]))
    n += 1
    case(f"5.{n}", "text fragments: empty, empty, 'x'", "echoed whole as 'x'",
         send_expect_echo(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False) + frame(OP_CONT, b"x"),
                          [("text", b"x")]))
    n += 1
    case(f"5.{n}", "text of empty fragments only", "echoed as an empty text message",
         send_expect_echo(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b""), [("text", b"")]))
    n += 1
    case(f"5.{n}", "text (no FIN), close 1000 in the middle of the message",
         "close 1000 (a close may interrupt a fragmented message); no echo of the partial message",
         lambda ctx: (lambda c: (c.send(frame(OP_TEXT, b"partial", fin=False)),
                                 close_handshake(c)))(ctx.conn()))
    # RFC 6455 5.1: a server MUST close the connection on an unmasked client frame.
    unmasked = [
        ("unmasked text frame", frame(OP_TEXT, b"Hello", mask=False), ()),
        ("unmasked binary frame", frame(OP_BINARY, b"\x00\x01", mask=False), ()),
        ("unmasked ping", frame(OP_PING, b"ping", mask=False), ()),
        ("unmasked close 1000", frame(OP_CLOSE, close_payload(1000), mask=False), ()),
        ("unmasked empty text frame", frame(OP_TEXT, b"", mask=False), ()),
        ("masked text (no FIN), unmasked continuation", frame(OP_TEXT, b"Hel", fin=False) + frame(OP_CONT, b"lo", mask=False), ()),
        ("masked text, then unmasked text", frame(OP_TEXT, b"Hello") + frame(OP_TEXT, b"Hello", mask=False), [("text", b"Hello")]),
    ]
    for title, data, first in unmasked:
        n += 1
        case(f"5.{n}", title, "close 1002" + ("; the earlier echo may come first" if first else ", no echo"),
             send_expect_close(data, {1002}, first))


# ---------------------------------------------------------------------------
# 6 UTF-8

VALID_TEXTS = [
    ("empty", ""),
    ("κόσμε", "κόσμε"),
    ("Hello-µ@ßöäüàá-UTF-8!!", "Hello-µ@ßöäüàá-UTF-8!!"),
    ("U+0000", "\x00"),
    ("U+007F, last 1-byte", "\x7f"),
    ("U+0080, first 2-byte", "\x80"),
    ("U+07FF, last 2-byte", "\u07ff"),
    ("U+0800, first 3-byte", "\u0800"),
    ("U+D7FF, below the surrogates", "\ud7ff"),
    ("U+E000, above the surrogates", "\ue000"),
    ("U+FDD0, noncharacter", "\ufdd0"),
    ("U+FEFF, byte order mark", "\ufeff"),
    ("U+FFFD, replacement character", "\ufffd"),
    ("U+FFFE, noncharacter", "\ufffe"),
    ("U+FFFF, last 3-byte", "\uffff"),
    ("U+10000, first 4-byte", "\U00010000"),
    ("U+1D11E, G clef", "\U0001d11e"),
    ("U+1FFFF, noncharacter", "\U0001ffff"),
    ("U+10FFFF, last code point", "\U0010ffff"),
]
BOUNDARIES = "a\x7f\x80\u07ff\u0800\ud7ff\ue000\ufffd\uffff\U00010000\U0010ffffz"

# (title, bytes) that are invalid UTF-8; utf8_first_bad finds the proof byte.
INVALID_TEXTS = [
    ("overlong U+0000 in 2 bytes", "c0 80"),
    ("overlong '/' in 2 bytes", "c0 af"),
    ("overlong U+007F in 2 bytes", "c1 bf"),
    ("overlong U+0000 in 3 bytes", "e0 80 80"),
    ("overlong U+07FF in 3 bytes", "e0 9f bf"),
    ("overlong U+0000 in 4 bytes", "f0 80 80 80"),
    ("overlong U+FFFF in 4 bytes", "f0 8f bf bf"),
    ("overlong U+0000 in 5 bytes", "f8 80 80 80 80"),
    ("overlong U+0000 in 6 bytes", "fc 80 80 80 80 80"),
    ("surrogate U+D800", "ed a0 80"),
    ("surrogate U+DB7F", "ed ad bf"),
    ("surrogate U+DB80", "ed ae 80"),
    ("surrogate U+DBFF", "ed af bf"),
    ("surrogate U+DC00", "ed b0 80"),
    ("surrogate U+DF80", "ed be 80"),
    ("surrogate U+DFFF", "ed bf bf"),
    ("surrogate pair U+D800 U+DC00 (CESU-8)", "ed a0 80 ed b0 80"),
    ("U+110000, above U+10FFFF", "f4 90 80 80"),
    ("U+1FFFFF, lead F7", "f7 bf bf bf"),
] + [(f"byte {b:02X}", f"{b:02x} 80 80 80") for b in range(0xF5, 0x100)] + [
    ("lone continuation 80", "80"),
    ("lone continuation BF", "bf"),
    ("continuation run 80 BF 80 BF", "80 bf 80 bf"),
    ("2-byte lead then ASCII", "c2 41"),
    ("3-byte lead, 1 continuation, then ASCII", "e2 82 41"),
    ("4-byte lead, 2 continuations, then ASCII", "f0 9f 98 41"),
    ("2-byte lead then a lead byte", "c3 c3 a9"),
    ("4-byte lead then a 2-byte character", "f0 c2 a9"),
    ("κόσμε, U+D800, 'edited' (Autobahn 6.4.1)", "ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64"),
    ("κόσμε, U+110000, 'edited' (Autobahn 6.4.2)", "ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90 80 80 65 64 69 74 65 64"),
]
# Invalid only because the message ends inside a character.
TRUNCATED_TEXTS = [
    ("truncated 2-byte character", "c2"),
    ("truncated 3-byte character after 1 byte", "e2"),
    ("truncated 3-byte character after 2 bytes", "e2 82"),
    ("truncated 4-byte character after 3 bytes", "f0 9f 98"),
    ("truncated U+10FFFF after 3 bytes", "f4 8f bf"),
    ("κόσμε then a truncated 2-byte character", "ce ba e1 bd b9 cf 83 ce bc ce b5 ce"),
]
KAPPA = "κ".encode()  # a valid 2-byte prefix, so splits fall inside a character too


def split2(op, data, s, last_fin=True):
    return frame(op, data[:s], fin=False) + frame(OP_CONT, data[s:], fin=last_fin)


def one_byte_frames(op, data, last_fin=True):
    out = []
    for i in range(len(data)):
        out.append(frame(op if i == 0 else OP_CONT, data[i:i + 1], fin=last_fin and i == len(data) - 1))
    return b"".join(out)


def register_utf8():
    for i, (title, s) in enumerate(VALID_TEXTS, 1):
        p = s.encode()
        case(f"6.1.{i}", f"valid text {title} ({hexs(p)})", "echoed byte-exact",
             send_expect_echo(frame(OP_TEXT, p), [("text", p)]))
    bp = BOUNDARIES.encode()
    case(f"6.1.{len(VALID_TEXTS) + 1}", f"valid text with every boundary code point ({len(bp)} bytes)", "echoed byte-exact",
         send_expect_echo(frame(OP_TEXT, bp), [("text", bp)]))

    def every_split(p):
        def fn(ctx):
            c = ctx.conn()
            msgs = []
            for s in range(len(p) + 1):
                msgs.append(split2(OP_TEXT, p, s))
            msgs.append(one_byte_frames(OP_TEXT, p))
            for s in range(1, len(p)):
                msgs.append(frame(OP_TEXT, p[:s], fin=False) + frame(OP_CONT, b"", fin=False) + frame(OP_CONT, p[s:]))
            c.send(b"".join(msgs))
            expect_echo(c, [("text", p)] * len(msgs))
            ctx.note(f"{len(msgs)} messages")
        return fn
    valid_frag = [("κόσμε", "κόσμε".encode()), ("Hello-µ@ßöäüàá-UTF-8!!", "Hello-µ@ßöäüàá-UTF-8!!".encode()),
                  ("every boundary code point", bp), ("U+10FFFF U+10000 U+0800", "\U0010ffff\U00010000\u0800".encode())]
    for i, (title, p) in enumerate(valid_frag, 1):
        case(f"6.2.{i}", f"valid text {title} split into 2 fragments at every byte, 1-byte fragments, and with an empty middle fragment",
             "each message echoed whole", every_split(p))

    inval = [(t, bytes.fromhex(h)) for t, h in INVALID_TEXTS]
    trunc = [(t, bytes.fromhex(h)) for t, h in TRUNCATED_TEXTS]
    for i, (title, p) in enumerate(inval + trunc, 1):
        case(f"6.3.{i}", f"invalid text in one frame: {title} ({hexs(p)})", "close 1007, no echo",
             send_expect_close(frame(OP_TEXT, p), {1007}))

    def fragmented_invalid(p):
        def fn(ctx):
            probes = [(f"split at {s}", split2(OP_TEXT, p, s)) for s in range(1, len(p))]
            probes.append(("1-byte fragments", one_byte_frames(OP_TEXT, p)))
            probe_many(ctx, probes, {1007}, None)
        return fn
    for i, (title, p) in enumerate(inval + trunc, 1):
        q = KAPPA + p
        case(f"6.4.{i}", f"'κ' + {title}, 2 fragments split at every byte and 1-byte fragments",
             "close 1007 on every variant, no echo", fragmented_invalid(q))

    # Fail fast (Autobahn 6.4.x): only the bytes up to the first one that
    # proves the text invalid are sent, in frames that leave the message open.
    # A server that validates as it reads closes with 1007 now; one that waits
    # for the end of the message never answers.
    def fail_fast_frames(q, k):
        def fn(ctx):
            pre = q[:k]
            probes = [("one open frame", frame(OP_TEXT, pre, fin=False))]
            probes += [(f"open frames split at {s}", split2(OP_TEXT, pre, s, last_fin=False)) for s in range(1, k)]
            probes.append(("open 1-byte frames", one_byte_frames(OP_TEXT, pre, last_fin=False)))
            probe_many(ctx, probes, {1007}, time.monotonic() + ctx.fast_wait)
        return fn

    def fail_fast_in_frame(q, k):
        def fn(ctx):
            full = q + b" and more text after the invalid byte"
            # The frame header announces the whole message; only its first k
            # payload bytes are sent.  Also as the second fragment of a message.
            probes = [("partial final frame", frame(OP_TEXT, q[:k], length=len(full)))]
            if k > 1:
                probes.append(("partial continuation", frame(OP_TEXT, q[:1], fin=False)
                               + frame(OP_CONT, q[1:k], length=len(full) - 1)))
            probe_many(ctx, probes, {1007}, time.monotonic() + ctx.fast_wait)
        return fn
    i = 0
    for title, p in inval:
        q = KAPPA + p
        k = utf8_first_bad(q) + 1
        i += 1
        case(f"6.5.{i}", f"fail-fast across frames: 'κ' + {title}, first {k} bytes in open frames (one, split at every byte, 1-byte)",
             "close 1007 while the message is still open (waits 1 s x time scale)", fail_fast_frames(q, k))
    i = 0
    for title, p in inval:
        q = KAPPA + p
        k = utf8_first_bad(q) + 1
        i += 1
        case(f"6.6.{i}", f"fail-fast inside a frame: 'κ' + {title}, frame announces more, only {k} payload bytes sent",
             "close 1007 while the frame is still incomplete (waits 1 s x time scale)", fail_fast_in_frame(q, k))

    def all_scalars(size):
        def fn(ctx):
            p = "".join(map(chr, range(0, 0xD800))).encode() + "".join(map(chr, range(0xE000, 0x110000))).encode()
            c = ctx.conn()
            c.send(frame(OP_TEXT, p) if size is None else fragments(OP_TEXT, p, size))
            expect_echo(c, [("text", p)])
        return fn
    case("6.7.1", "every Unicode scalar value U+0000..U+10FFFF in one text frame (4.3 MB)", "echoed byte-exact",
         all_scalars(None), budget=20, phase="heavy")
    case("6.7.2", "every Unicode scalar value in 4093-byte fragments (splits inside characters)", "echoed byte-exact",
         all_scalars(4093), budget=20, phase="heavy")

    def late_invalid(size):
        def fn(ctx):
            p = text_payload(MIB) + b"\xc0\x80"
            c = ctx.conn()
            c.send(frame(OP_TEXT, p) if size is None else fragments(OP_TEXT, p, size))
            expect_close(c, {1007})
        return fn
    case("6.8.1", "1 MiB valid text then C0 80 at the end, one frame", "close 1007, no echo",
         late_invalid(None), budget=20, phase="heavy")
    case("6.8.2", "1 MiB valid text then C0 80 at the end, 65536-byte fragments", "close 1007, no echo",
         late_invalid(65536), budget=20, phase="heavy")


# ---------------------------------------------------------------------------
# 7 close

def register_close():
    n = 0

    def close_with(payload, accept, allow_empty=False, chunks=None, before=b"", after=b""):
        def fn(ctx):
            c = ctx.conn()
            c.send(before + frame(OP_CLOSE, payload) + after, chunks)
            c.sent_close = True
            try:
                item = c.next_item()
            except Timeout:
                raise Fail("no close answer")
            if item[0] != "close":
                raise Fail(f"expected the close answer, got {describe(item)}")
            if item[1] is None and not allow_empty or item[1] is not None and item[1] not in accept:
                raise Fail(f"answered with {fmt_close(item)}, expected close {fmt_codes(accept)}")
            wait_tcp_close(c)
            ctx.note(f"answered {fmt_close(item)}")
        return fn
    basic = [
        ("close without payload", b"", "close with no code or 1000, then TCP close", True, None, b"", b""),
        ("close 1000", close_payload(1000), "close 1000, then TCP close", False, None, b"", b""),
        ("close 1000 with reason 'goodbye κόσμε'", close_payload(1000, "goodbye κόσμε".encode()), "close 1000", False, None, b"", b""),
        ("close 1000 with a 123-byte reason (125-byte payload)", close_payload(1000, text_payload(123)), "close 1000", False, None, b"", b""),
        ("close 1000 in 1-byte writes 1 ms apart", close_payload(1000), "close 1000", False, "slow", b"", b""),
        ("close 1000, then text in the same write", close_payload(1000), "close 1000; the text is not echoed", False, None, b"",
         frame(OP_TEXT, b"after close")),
        ("close 1000, then ping in the same write", close_payload(1000), "close 1000; no pong", False, None, b"",
         frame(OP_PING, b"after close")),
        ("close 1000, then a second close", close_payload(1000), "one close 1000 only", False, None, b"",
         frame(OP_CLOSE, close_payload(1001))),
        ("close 1000, then text written after a pause", close_payload(1000), "close 1000; the text is not echoed", False, None, b"", None),
    ]
    for title, payload, expect, allow_empty, ch, before, after in basic:
        n += 1
        if after is None:
            def delayed(ctx):
                c = ctx.conn()
                c.send(frame(OP_CLOSE, close_payload(1000)))
                c.sent_close = True
                time.sleep(0.05)
                c.send(frame(OP_TEXT, b"after close") + frame(OP_PING, b"after close"))
                try:
                    item = c.next_item()
                except Timeout:
                    raise Fail("no close answer")
                if item[0] != "close" or item[1] != 1000:
                    raise Fail(f"expected close 1000, got {describe(item)}")
                wait_tcp_close(c)
            case(f"7.1.{n}", title, expect, delayed)
        else:
            case(f"7.1.{n}", title, expect, close_with(payload, {1000}, allow_empty, ch, before, after))

    def text_then_close(ctx):
        c = ctx.conn()
        c.send(frame(OP_TEXT, b"before close") + frame(OP_CLOSE, close_payload(1000)))
        c.sent_close = True
        item = c.next_item()
        if item[0] == "text":
            compare("echo", [("text", b"before close")], [item])
            ctx.note("echo arrived before the close")
            item = c.next_item()
        if item[0] != "close" or item[1] != 1000:
            raise Fail(f"expected close 1000, got {describe(item)}")
        wait_tcp_close(c)
    n += 1
    case(f"7.1.{n}", "text then close 1000 in one write", "the echo may come, then close 1000, TCP close", text_then_close)

    def big_then_close(ctx):
        p = binary_payload(256 * KIB, 7)
        c = ctx.conn()
        c.send(frame(OP_BINARY, p) + frame(OP_CLOSE, close_payload(1000)) + frame(OP_PING, b"after close"))
        c.sent_close = True
        item = c.next_item()
        if item[0] == "binary":
            compare("echo", [("binary", p)], [item])
            ctx.note("echo arrived before the close")
            item = c.next_item()
        if item[0] != "close" or item[1] != 1000:
            raise Fail(f"expected close 1000, got {describe(item)}")
        wait_tcp_close(c)
    n += 1
    case(f"7.1.{n}", "binary 256 KiB, close 1000, ping, in one write", "the echo may come, then close 1000, no pong",
         big_then_close)

    malformed = [
        ("close with a 1-byte payload", frame(OP_CLOSE, b"\x03"), {1002}),
        ("close with a 126-byte payload (code 1000 + 124-byte reason)", frame(OP_CLOSE, close_payload(1000, text_payload(124))), {1002}),
        ("close with a 65535-byte payload", frame(OP_CLOSE, close_payload(1000, text_payload(65533))), {1002}),
    ]
    for i, (title, data, codes) in enumerate(malformed, 1):
        case(f"7.3.{i}", title, "close 1002", send_expect_close(data, codes))
    bad_reasons = [
        ("κόσμε, U+D800, 'edited' (Autobahn 7.5.1)", bytes.fromhex("cebae1bdb9cf83cebcceb5eda080656469746564")),
        ("overlong C0 80", b"reason \xc0\x80"),
        ("truncated at the end", b"reason \xce"),
        ("byte FF", b"\xff"),
    ]
    for i, (title, reason) in enumerate(bad_reasons, 1):
        case(f"7.5.{i}", f"close 1000 with an invalid UTF-8 reason: {title}", "close 1007",
             send_expect_close(frame(OP_CLOSE, close_payload(1000, reason)), {1007}))
    valid_codes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
    for i, code in enumerate(valid_codes, 1):
        case(f"7.7.{i}", f"close with valid code {code}", f"close {fmt_codes({1000, code})}, then TCP close",
             close_with(close_payload(code), {1000, code}))
    invalid_codes = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    for i, code in enumerate(invalid_codes, 1):
        case(f"7.9.{i}", f"close with invalid code {code}", "close 1002",
             send_expect_close(frame(OP_CLOSE, close_payload(code)), {1002}))

    def abrupt(ctx):
        c = ctx.conn()
        c.send(frame(OP_TEXT, b"x", length=1000)[:20])
        c.sock.close()
        c2 = ctx.conn()
        c2.send(frame(OP_TEXT, b"still alive"))
        expect_echo(c2, [("text", b"still alive")])
    case("7.11.1", "TCP closed by the client in the middle of a frame, then a new connection",
         "the server survives: the new connection echoes", abrupt)


# ---------------------------------------------------------------------------
# 9 limits and large payloads

SIZES = [("64 KiB", 64 * KIB), ("256 KiB", 256 * KIB), ("1 MiB", MIB), ("4 MiB", 4 * MIB), ("8 MiB", 8 * MIB), ("16 MiB", 16 * MIB)]
FRAG_SIZES = [("64 KiB", 64 * KIB, "64 B", 64), ("256 KiB", 256 * KIB, "256 B", 256), ("1 MiB", MIB, "1 KiB", KIB),
              ("4 MiB", 4 * MIB, "4 KiB", 4 * KIB), ("8 MiB", 8 * MIB, "64 KiB", 64 * KIB),
              ("16 MiB", 16 * MIB, "1 MiB", MIB), ("16 MiB", 16 * MIB, "4 MiB", 4 * MIB)]


def big_payload(op, n):
    return text_payload(n) if op == OP_TEXT else binary_payload(n, n)


def big_echo(op, n, frag=None, chunks=None):
    def fn(ctx):
        p = big_payload(op, n)
        c = ctx.conn()
        c.send(frame(op, p) if frag is None else fragments(op, p, frag), chunks)
        expect_echo(c, [(kind_of(op), p)])
        if c.frames_in_last_message > 1:
            ctx.note(f"echo came in {c.frames_in_last_message} frames")
    return fn


def register_limits(suite):
    for sub, op in ((1, OP_TEXT), (2, OP_BINARY)):
        for i, (label, n) in enumerate(SIZES, 1):
            case(f"9.{sub}.{i}", f"{kind_of(op)} {label} in one frame", "echoed byte-exact",
                 big_echo(op, n), budget=30, phase="heavy")
    for sub, op in ((3, OP_TEXT), (4, OP_BINARY)):
        for i, (label, n, flabel, f) in enumerate(FRAG_SIZES, 1):
            case(f"9.{sub}.{i}", f"{kind_of(op)} {label} in {flabel} fragments", "echoed whole, byte-exact",
                 big_echo(op, n, f), budget=30, phase="heavy")
    chops = [(OP_BINARY, MIB, 64), (OP_TEXT, 4 * MIB, KIB), (OP_BINARY, 16 * MIB, 64 * KIB)]
    for i, (op, n, ch) in enumerate(chops, 1):
        case(f"9.5.{i}", f"{kind_of(op)} {n // MIB} MiB in one frame, {ch}-byte writes", "echoed byte-exact",
             big_echo(op, n, None, ch), budget=30, phase="heavy")
    small = [(OP_TEXT, text_payload(16)) for _ in range(1000)]
    case("9.6.1", "1000 text messages of 16 bytes in one write", "1000 echoes in order",
         send_expect_echo(b"".join(frame(op, p) for op, p in small), [("text", p) for _, p in small]),
         budget=20, phase="heavy")
    smallb = [(OP_BINARY, binary_payload(64, i)) for i in range(1000)]
    case("9.6.2", "1000 binary messages of 64 bytes in random writes", "1000 echoes in order",
         send_expect_echo(b"".join(frame(op, p) for op, p in smallb), [("binary", p) for _, p in smallb], "random"),
         budget=20, phase="heavy")

    def over_one_frame(ctx):
        c = ctx.conn()
        c.send(frame(OP_BINARY, binary_payload(MAX_MESSAGE + 1, 1)))
        expect_close(c, {1009})
        if c.send_error:
            ctx.note(f"server closed before the payload was all sent ({c.send_error})")
    case("9.7.1", "binary 16 MiB + 1 byte in one frame", "close 1009, no echo", over_one_frame, budget=30, phase="heavy")

    def over_fragmented(ctx):
        c = ctx.conn()
        p = text_payload(4 * MIB)
        for i in range(4):
            c.send(frame(OP_TEXT if i == 0 else OP_CONT, p, fin=False))
        c.send(frame(OP_CONT, b"x"))
        expect_close(c, {1009})
    case("9.7.2", "text 16 MiB + 1 byte in fragments (4 x 4 MiB, then 1 byte)", "close 1009, no echo",
         over_fragmented, budget=30, phase="heavy")

    def header_only(data, codes):
        def fn(ctx):
            c = ctx.conn()
            c.send(data)
            expect_close(c, codes, deadline=time.monotonic() + ctx.fast_wait * 2)
            ctx.note(f"answered {fmt_close(c.close_seen)}")
        return fn
    case("9.7.3", "binary frame header announcing 16 MiB + 1, no payload sent",
         "close 1009 before the payload arrives (the limit is checked on the header)",
         header_only(frame(OP_BINARY, b"", length=MAX_MESSAGE + 1), {1009}))
    case("9.7.4", "frame header announcing 2^62 bytes, no payload sent", "close 1009 at once",
         header_only(frame(OP_BINARY, b"", length=1 << 62), {1009}))
    case("9.7.5", "frame header with the 64-bit length's top bit set (2^63), no payload sent",
         "close 1002 or 1009 at once (RFC 6455 5.2: the top bit MUST be 0)",
         header_only(frame(OP_BINARY, b"", length=1 << 63), {1002, 1009}))

    def over_by_header(ctx):
        c = ctx.conn()
        c.send(frame(OP_BINARY, binary_payload(15 * MIB, 3), fin=False))
        c.send(frame(OP_CONT, b"", length=2 * MIB))
        expect_close(c, {1009}, deadline=time.monotonic() + ctx.fast_wait * 4)
    case("9.7.6", "binary 15 MiB open fragment, then a continuation header announcing 2 MiB, no payload",
         "close 1009 before the continuation's payload arrives", over_by_header, budget=30, phase="heavy")

    if suite.managed:
        def rss(ctx):
            hwm = suite.peak_rss_kib()
            if hwm is None:
                raise Fail("cannot read VmHWM from /proc")
            suite.rss_line = f"server peak RSS (VmHWM): {hwm / 1024:.1f} MiB (bound {suite.max_rss_mib} MiB)"
            ctx.note(f"{hwm / 1024:.1f} MiB")
            if hwm > suite.max_rss_mib * 1024:
                raise Fail(f"peak RSS {hwm / 1024:.1f} MiB is over the {suite.max_rss_mib} MiB bound")
        case("9.8.1", "server peak RSS after every case above (VmHWM)", f"under {suite.max_rss_mib} MiB",
             rss, phase="post")


# ---------------------------------------------------------------------------
# 10 auto-fragmentation

def register_autofrag():
    p = text_payload(65536)
    b = binary_payload(65536, 10)
    big = text_payload(MIB)
    rows = [
        ("text 65536 bytes in one frame", OP_TEXT, p, None),
        ("text 65536 bytes in 1-byte fragments", OP_TEXT, p, 1),
        ("binary 65536 bytes in 1-byte fragments", OP_BINARY, b, 1),
        ("text 65536 bytes in 64-byte fragments", OP_TEXT, p, 64),
        ("text 1 MiB in 997-byte fragments (splits inside characters)", OP_TEXT, big, 997),
    ]
    for i, (title, op, payload, f) in enumerate(rows, 1):
        def fn(ctx, op=op, payload=payload, f=f):
            c = ctx.conn()
            c.send(frame(op, payload) if f is None else fragments(op, payload, f))
            expect_echo(c, [(kind_of(op), payload)])
            ctx.note(f"echo came in {c.frames_in_last_message} frame(s)")
        case(f"10.1.{i}", title, "echoed whole (the echo may be fragmented; reassembled)", fn,
             budget=20, phase="heavy")


# ---------------------------------------------------------------------------
# 11 shutdown

def register_shutdown(suite):
    if not suite.managed:
        return

    def sigterm(ctx):
        idle = ctx.conn()
        idle.send(frame(OP_TEXT, b"ready"))
        read_items(idle, 1)
        mid = ctx.conn()
        mid.send(frame(OP_TEXT, b"open message", fin=False))
        time.sleep(0.05)
        suite.proc.send_signal(signal.SIGTERM)
        errs = []
        for label, c in (("idle connection", idle), ("connection inside a fragmented message", mid)):
            try:
                expect_close(c, {1001})
            except (Fail, Timeout) as e:
                errs.append(f"[{label}] {e}")
        if errs:
            raise Fail("; ".join(errs))
    case("11.1", "SIGTERM with an idle connection and one inside a fragmented message",
         "both get close 1001, then TCP close", sigterm, budget=10, phase="final")

    def exits(ctx):
        rc = suite.wait_exit(10 * suite.scale)
        ctx.note(describe_exit(rc))
        if rc is None:
            raise Fail(f"server still running {10 * suite.scale:.0f} s after SIGTERM (killed)")
        if rc != 0:
            raise Fail(f"server {describe_exit(rc)} after SIGTERM")
        bad = suite.sanitizer_report()
        if bad:
            raise Fail(f"sanitizer report on stderr: {bad}")
    case("11.2", "server exit after SIGTERM", "exit status 0 within 10 s, no sanitizer report", exits,
         budget=20, phase="final")


# ---------------------------------------------------------------------------
# The run


class Suite:
    def __init__(self):
        self.proc = None
        self.managed = False  # True when this script starts (and may signal) the server
        self.addr = None
        self.scale = 1.0
        self.sanitizer = ""
        self.stderr_file = None
        self.max_rss_mib = 200
        self.rss_line = ""
        self.header = []
        self.global_deadline = float("inf")

    def start(self):
        url = os.environ.get("WINDLASS_CONFORMANCE_URL")
        if url:
            host, _, port = url.rpartition(":")
            if url.startswith("ws://"):
                host = host[5:]
            self.addr = (host or "127.0.0.1", int(port.strip("/")))
            self.scale = float(os.environ.get("WINDLASS_CONFORMANCE_TIME_SCALE", "1"))
            self.header.append(f"server: already running at {self.addr[0]}:{self.addr[1]} "
                               "(RSS and shutdown cases skipped)")
            return
        binary = os.environ.get("WINDLASS_ECHO_BIN")
        if not binary:
            raise SystemExit("set WINDLASS_ECHO_BIN (echo server binary) or WINDLASS_CONFORMANCE_URL (host:port)")
        try:
            with open(binary, "rb") as f:
                blob = f.read()
        except OSError as e:
            raise SystemExit(f"cannot read {binary}: {e}")
        if b"__asan_init" in blob:
            self.sanitizer = "ASan"
        elif b"__tsan_init" in blob:
            self.sanitizer = "TSan"
        default_scale = {"ASan": 3.0, "TSan": 5.0}.get(self.sanitizer, 1.0)
        self.scale = float(os.environ.get("WINDLASS_CONFORMANCE_TIME_SCALE", default_scale))
        # ASan's quarantine (256 MiB by default) and shadow memory inflate RSS.
        self.max_rss_mib = int(os.environ.get("WINDLASS_CONFORMANCE_MAX_RSS_MIB",
                                              1024 if self.sanitizer else 200))
        self.managed = True
        self.stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr_file)
        line = self._first_line(10 * self.scale)
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", line.strip()) if line is not None else None
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise SystemExit(f"server did not print 'listening on 127.0.0.1:PORT' (got {line!r}, "
                             f"exit {self.proc.returncode}); stderr:\n{self.stderr_tail()}")
        self.addr = ("127.0.0.1", int(m.group(1)))
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        self.header.append(f"server: {binary} (pid {self.proc.pid}{', ' + self.sanitizer if self.sanitizer else ''}) "
                           f"on {self.addr[0]}:{self.addr[1]}")

    def _first_line(self, timeout):
        fd = self.proc.stdout.fileno()
        data = b""
        end = time.monotonic() + timeout
        while b"\n" not in data:
            t = end - time.monotonic()
            if t <= 0:
                return None
            r, _, _ = select.select([fd], [], [], t)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return data.decode(errors="replace") or None
                data += chunk
        return data.split(b"\n", 1)[0].decode(errors="replace")

    def _drain_stdout(self):
        try:
            while os.read(self.proc.stdout.fileno(), 65536):
                pass
        except OSError:
            pass

    def stderr_tail(self, n=20):
        if self.stderr_file is None:
            return ""
        self.stderr_file.seek(0)
        lines = self.stderr_file.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def sanitizer_report(self):
        if self.stderr_file is None:
            return ""
        self.stderr_file.seek(0)
        text = self.stderr_file.read().decode(errors="replace")
        m = re.search(r"(ERROR: \w+Sanitizer.*|runtime error: .*|WARNING: ThreadSanitizer.*)", text)
        return m.group(1)[:200] if m else ""

    def peak_rss_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stop(self):
        """SIGTERM the server; a description of what went wrong, or ''."""
        if self.proc.poll() is not None:
            return f"server died during the run ({describe_exit(self.proc.returncode)})"
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(10 * self.scale)
        if rc is None:
            return f"server still running {10 * self.scale:.0f} s after SIGTERM (killed)"
        if rc != 0:
            return f"server {describe_exit(rc)} after SIGTERM"
        bad = self.sanitizer_report()
        return f"sanitizer report on stderr: {bad}" if bad else ""


def describe_exit(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        return f"killed by signal {-rc} ({signal.Signals(-rc).name})"
    return f"exit status {rc}"


def run_case(suite, c):
    if not suite.alive():
        c.result, c.reason = "FAIL", f"server not running ({describe_exit(suite.proc.returncode)})"
        return
    if time.monotonic() >= suite.global_deadline:
        c.result, c.reason = "FAIL", "not run: the suite's total time budget ran out"
        return
    ctx = Ctx(suite, c)
    t0 = time.monotonic()
    try:
        c.fn(ctx)
        c.result = "PASS"
        c.reason = "; ".join(ctx.notes)
    except Fail as e:
        c.result, c.reason = "FAIL", str(e)
    except Timeout as e:
        c.result, c.reason = "FAIL", f"timed out after {c.budget * suite.scale:.0f} s" + (f": {e}" if str(e) else "")
    except Exception:
        c.result, c.reason = "FAIL", "client error: " + traceback.format_exc(limit=3).strip().replace("\n", " | ")
    finally:
        ctx.close_all()
        c.elapsed = time.monotonic() - t0


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    suite = Suite()
    listing = "--list" in sys.argv[1:]
    if listing:
        suite.managed = True
    else:
        suite.start()
    register_framing()
    register_ping()
    register_rsv()
    register_opcodes()
    register_fragmentation()
    register_utf8()
    register_close()
    register_limits(suite)
    register_autofrag()
    register_shutdown(suite)
    selected = [c for c in CASES if not args or any(c.id == a or c.id.startswith(a + ".") for a in args)]
    if listing:
        for c in selected:
            print(f"{c.id}\t{c.title}\t{c.expect}")
        print(f"{len(selected)} cases")
        return 0
    jobs = int(os.environ.get("WINDLASS_CONFORMANCE_JOBS", "8"))
    t0 = time.monotonic()
    # ctest kills the run at 300 s; stop starting cases well before that so
    # a server that hangs every case still gets a report.
    suite.global_deadline = t0 + float(os.environ.get("WINDLASS_CONFORMANCE_TOTAL_BUDGET", "240"))

    light = [c for c in selected if c.phase == "light"]
    print(f"conformance: running {len(selected)} cases against {suite.addr[0]}:{suite.addr[1]}", file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(lambda c: run_case(suite, c), light))
    for phase in ("heavy", "post", "final"):
        for c in selected:
            if c.phase == phase:
                run_case(suite, c)
                if c.phase == "heavy":
                    print(f"  {c.result} {c.id} ({c.elapsed:.1f} s)", file=sys.stderr)
    stop_problem = ""
    if suite.proc is not None:
        if not any(c.phase == "final" for c in selected):
            stop_problem = suite.stop()
        elif suite.proc.poll() is None:
            suite.proc.kill()
            suite.proc.wait()
    elapsed = time.monotonic() - t0

    out = ["windlass RFC 6455 conformance suite", *suite.header,
           f"time scale {suite.scale:g}, {jobs} light cases at a time, {elapsed:.1f} s", ""]
    family = None
    for c in selected:
        fam = c.id.split(".")[0]
        if fam != family:
            family = fam
            out.append(f"{fam} {FAMILIES[fam]}")
        line = f"  {c.result}  {c.id}  {c.title} -- expect: {c.expect}"
        if c.reason:
            line += f"\n        {'reason' if c.result == 'FAIL' else 'note'}: {c.reason}"
        out.append(line)
    failed = [c for c in selected if c.result != "PASS"]
    passed = len(selected) - len(failed)
    out.append("")
    if suite.rss_line:
        out.append(suite.rss_line)
    if stop_problem:
        out.append(f"FAIL  server stop: {stop_problem}")
    if failed or stop_problem:
        if suite.proc is not None:
            out.append("server stderr (last lines):")
            out.extend("    " + l for l in suite.stderr_tail(15).splitlines())
        out.append(f"failed cases: {', '.join(c.id for c in failed) or '-'}")
    n_failed = len(failed) + (1 if stop_problem else 0)
    out.append(f"conformance: {passed} passed, {n_failed} failed")
    report = "\n".join(out) + "\n"
    sys.stdout.write(report)
    path = os.environ.get("WINDLASS_CONFORMANCE_REPORT")
    if path:
        with open(path, "w") as f:
            f.write(report)
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
