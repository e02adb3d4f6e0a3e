#!/usr/bin/python3
"""RFC 6455 conformance suite for a WebSocket echo server.

A raw-socket client plays the server-facing case families of the Autobahn
TestSuite's fuzzingclient (framing, ping/pong, reserved bits, reserved
opcodes, fragmentation, UTF-8, close handling, limits, auto-fragmentation)
against an echo server and checks the outcome RFC 6455 requires; families
12-14 do the same for permessage-deflate (RFC 7692) against more echo servers
it starts with --compression shared and per-connection.  Python 3.11
standard library only (zlib does the client's DEFLATE).

Run:
    WINDLASS_ECHO_BIN=build/examples/echo/windlass-echo \
        /usr/bin/python3 tests/conformance/conformance_test.py [CASE-ID-PREFIX ...]
    /usr/bin/python3 tests/conformance/conformance_test.py --list   (cases only)

Environment:
    WINDLASS_ECHO_BIN               echo server binary; started as
                                    `BIN --host 127.0.0.1 --port 0`, must print
                                    `listening on 127.0.0.1:PORT` on stdout;
                                    also with `--compression shared`,
                                    `--compression per-connection`, and the
                                    latter with `--max-message-size 1048576`
    WINDLASS_CONFORMANCE_COMPRESSION  servers for families 12-14: a list of
                                    off, shared, per-connection (all three by
                                    default); with WINDLASS_CONFORMANCE_URL,
                                    `any` runs them against that server with
                                    RFC 7692 expectations only
    WINDLASS_CONFORMANCE_URL        host:port of a server already running
                                    (instead of starting one; skips the RSS and
                                    shutdown cases)
    WINDLASS_CONFORMANCE_REPORT     also write the report to this file
    WINDLASS_CONFORMANCE_JOBS       light cases run this many at a time (8)
    WINDLASS_CONFORMANCE_TIME_SCALE multiply every time budget (default 1,
                                    3 for an ASan build, 5 for TSan)
    WINDLASS_CONFORMANCE_MAX_RSS_MIB  peak RSS bound (200; 1024 under ASan)

Case ids of families 12-14 end in the server they run against
(12.1.1/shared, 12.1.1/per-connection); an argument selects a case id, a
prefix of one (12.1 or 12.1.1), or a server (/shared).

Exit status 0 when every case passed, 1 otherwise.  The last line of the
report is `conformance: N passed, M failed`.
"""

import base64
import concurrent.futures
import functools
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import describe_exit  # noqa: E402

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
# permessage-deflate (RFC 7692), the client's side

PMD = "permessage-deflate"
TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.1: the sender removes it, the receiver appends it again
PMD_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
              "server_max_window_bits", "client_max_window_bits")
WINDOW_BITS_RE = re.compile(r"[89]|1[0-5]")  # RFC 7692 7.1.2: 8..15, no leading zeros
TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_extension_list(value):
    """A Sec-WebSocket-Extensions value (RFC 6455 9.1) as [(name, [(param, value or None)])].

    Quoted-string values are unescaped; empty list elements are skipped
    (RFC 9110 5.6.1).  ValueError when the value breaks the grammar.
    """
    s, n = value, len(value)
    i = 0
    out = []

    def ows(i):
        while i < n and s[i] in " \t":
            i += 1
        return i

    def token(i):
        j = i
        while j < n and s[j] in TCHAR:
            j += 1
        return s[i:j], j

    while True:
        i = ows(i)
        if i >= n:
            return out
        if s[i] == ",":
            i += 1
            continue
        name, i = token(i)
        if not name:
            raise ValueError(f"no extension name at {s[i:]!r}")
        params = []
        out.append((name, params))
        while True:
            i = ows(i)
            if i >= n:
                return out
            if s[i] == ",":
                i += 1
                break
            if s[i] != ";":
                raise ValueError(f"expected ';' or ',' at {s[i:]!r}")
            i = ows(i + 1)
            param, i = token(i)
            if not param:
                raise ValueError(f"no parameter name at {s[i:]!r}")
            i = ows(i)
            val = None
            if i < n and s[i] == "=":
                i = ows(i + 1)
                if i < n and s[i] == '"':
                    i += 1
                    chars = []
                    while True:
                        if i >= n:
                            raise ValueError("unterminated quoted-string")
                        if s[i] == '"':
                            i += 1
                            break
                        if s[i] == "\\":
                            if i + 1 >= n:
                                raise ValueError("unterminated quoted-pair")
                            i += 1
                        chars.append(s[i])
                        i += 1
                    val = "".join(chars)
                else:
                    val, i = token(i)
                    if not val:
                        raise ValueError(f"no parameter value at {s[i:]!r}")
            params.append((param, val))


def pmd_offer_problem(params):
    """Why RFC 7692 section 7 says a server MUST decline this offer, or None."""
    seen = set()
    for name, val in params:
        if name in seen:
            return f"{name} twice"
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if val is not None:
                return f"{name} with a value"
        elif name == "server_max_window_bits":
            if val is None or not WINDOW_BITS_RE.fullmatch(val):
                return f"server_max_window_bits={val}" if val is not None else "server_max_window_bits without a value"
        elif name == "client_max_window_bits":
            if val is not None and not WINDOW_BITS_RE.fullmatch(val):
                return f"client_max_window_bits={val}"
        else:
            return f"unknown parameter {name}"
    return None


def pmd_mismatch(offer, resp):
    """Why resp (a response's parameters) cannot accept this valid offer (RFC 7692 7.1), or None."""
    if "server_no_context_takeover" in offer and "server_no_context_takeover" not in resp:
        return "the offer has server_no_context_takeover and the response lacks it (7.1.1.1)"
    if "server_max_window_bits" in offer:
        if "server_max_window_bits" not in resp:
            return "the offer has server_max_window_bits and the response lacks it (7.1.2.1)"
        if int(resp["server_max_window_bits"]) > int(offer["server_max_window_bits"]):
            return (f"server_max_window_bits={resp['server_max_window_bits']} is larger than the offered "
                    f"{offer['server_max_window_bits']} (7.1.2.1)")
    if "client_max_window_bits" in resp:
        if "client_max_window_bits" not in offer:
            return "the response has client_max_window_bits and the offer did not (7.1.2.2: MUST NOT)"
        if offer["client_max_window_bits"] is not None and \
                int(resp["client_max_window_bits"]) > int(offer["client_max_window_bits"]):
            return (f"client_max_window_bits={resp['client_max_window_bits']} is larger than the offered "
                    f"{offer['client_max_window_bits']} (7.1.2.2)")
    return None


class PmdParams:
    """What a permessage-deflate response puts in force (RFC 7692 7.1)."""

    def __init__(self, offer, resp, index):
        self.offer, self.resp, self.index = offer, resp, index
        self.server_nct = "server_no_context_takeover" in resp
        self.client_nct = "client_no_context_takeover" in resp
        self.server_bits = int(resp.get("server_max_window_bits") or 15)
        # Our compressor's window: the response's limit, and our own hint if
        # the offer carried one (7.1.2.2).
        bits = int(resp.get("client_max_window_bits") or 15)
        if offer.get("client_max_window_bits"):
            bits = min(bits, int(offer["client_max_window_bits"]))
        self.client_bits = bits
        # 7.1.1.2: a client that offered client_no_context_takeover resets
        # whatever the response says.
        self.client_resets = self.client_nct or "client_no_context_takeover" in offer

    def describe(self):
        return (f"server window {self.server_bits} bits{', no context takeover' if self.server_nct else ''}, "
                f"client window {self.client_bits} bits{', no context takeover' if self.client_resets else ''}")


def check_pmd_response(offer_lines, resp_lines):
    """The response's Sec-WebSocket-Extensions checked against our offers (RFC 7692 5, 7).

    None when the server declined; otherwise the PmdParams of the first valid
    offer the response is an acceptance of.  Fail when the response is one a
    client MUST fail the connection for (7: unknown, duplicate or invalid
    parameters; a response no offer allows) or names an extension we cannot
    speak.
    """
    if not resp_lines:
        return None
    shown = ", ".join(repr(v) for v in resp_lines)
    if len(resp_lines) > 1:
        raise Fail(f"handshake: {len(resp_lines)} Sec-WebSocket-Extensions lines in the response: {shown}")
    try:
        exts = parse_extension_list(resp_lines[0])
    except ValueError as e:
        raise Fail(f"handshake: malformed Sec-WebSocket-Extensions in the response {shown}: {e}")
    try:
        offers = parse_extension_list(", ".join(offer_lines))
    except ValueError:
        raise Fail(f"handshake: the server accepted {shown} from an offer that breaks RFC 6455 9.1's grammar")
    if len(exts) != 1:
        raise Fail(f"handshake: the response names {len(exts)} extensions: {shown}")
    name, params = exts[0]
    if name != PMD:
        raise Fail(f"handshake: the server accepted {name!r}, "
                   + ("which was not offered" if name not in {n for n, _ in offers} else "which this client cannot speak"))
    resp = {}
    for param, val in params:
        if param not in PMD_PARAMS:
            raise Fail(f"handshake: unknown parameter {param!r} in the response {shown} (RFC 7692 7)")
        if param in resp:
            raise Fail(f"handshake: {param} twice in the response {shown} (RFC 7692 7)")
        if param.endswith("context_takeover") and val is not None:
            raise Fail(f"handshake: {param} with a value in the response {shown} (RFC 7692 7.1.1)")
        if param.endswith("window_bits") and (val is None or not WINDOW_BITS_RE.fullmatch(val)):
            raise Fail(f"handshake: invalid {param} in the response {shown}: a value 8..15 is required (RFC 7692 7.1.2)")
        resp[param] = val
    reasons = []
    for index, (oname, oparams) in enumerate(offers):
        if oname != PMD:
            continue
        problem = pmd_offer_problem(oparams)
        if problem is not None:
            reasons.append(f"offer {index + 1} must be declined ({problem})")
            continue
        why = pmd_mismatch(dict(oparams), resp)
        if why is None:
            return PmdParams(dict(oparams), resp, index)
        reasons.append(f"offer {index + 1}: {why}")
    raise Fail(f"handshake: the response {shown} accepts none of the offers: " + "; ".join(reasons))


def fmt_pmd(params):
    """A parameter dict as it would be written after 'permessage-deflate'."""
    if params is None:
        return "no extension"
    parts = [PMD] + [k if v is None else f"{k}={v}" for k, v in sorted(params.items(), key=lambda kv: PMD_PARAMS.index(kv[0]))]
    return "; ".join(parts)


def inflate_run(d, src, strict):
    """Feed src to the decompressor d; (output, rest after the stream's end or None).

    strict lets zlib write one output byte per call, so every back-reference
    has to reach into its window (2^bits bytes): in a single large call
    zlib also copies from the output of that same call, and a distance
    larger than the window would pass unnoticed.
    """
    if not strict:
        out = d.decompress(src)
        return out, (d.unused_data if d.eof else None)
    parts, i, tail = [], 0, b""
    while not d.eof:
        if not tail and i < len(src):
            tail, i = src[i:i + 64], i + 64
        before = len(tail)
        o = d.decompress(tail, 1)
        tail = d.unconsumed_tail
        if o:
            parts.append(o)
        elif not tail and i >= len(src):
            break
        elif tail and len(tail) == before:
            raise zlib.error("no progress")
    # At the end of the stream unused_data holds what was left of the last
    # call's input (unconsumed_tail may still repeat it).
    return b"".join(parts), ((d.unused_data + src[i:]) if d.eof else None)


class PmdInflater:
    """The receiver of one direction: a raw-deflate decompressor kept across messages.

    A message that ends the DEFLATE stream (a block with BFINAL set, RFC 7692
    7.2.3.4) is followed by a fresh decompressor, as the sender had to reset.
    """

    def __init__(self, bits):
        self.bits = bits
        self.d = None

    def message(self, data, strict):
        src = data + TAIL
        parts = []
        while True:
            if self.d is None:
                self.d = zlib.decompressobj(-self.bits)
            out, rest = inflate_run(self.d, src, strict)
            parts.append(out)
            if rest is None:
                return b"".join(parts)
            self.d = None
            if rest == TAIL or rest == b"":
                return b"".join(parts)
            if not rest.endswith(TAIL):
                raise zlib.error(f"{len(rest)} bytes after the end of the DEFLATE stream")
            src = rest


def pmd_frames(op, z, frag=None):
    """A compressed message: RSV1 on its first frame only (RFC 7692 6.1), split into frag-byte frames."""
    if frag is None:
        return frame(op, z, rsv=4)
    parts = [z[i:i + frag] for i in range(0, len(z), frag)] or [b""]
    return b"".join(frame(op if k == 0 else OP_CONT, part, fin=k == len(parts) - 1, rsv=4 if k == 0 else 0)
                    for k, part in enumerate(parts))


def deflate_once(data, bits=15, level=6, flush=zlib.Z_SYNC_FLUSH):
    """data compressed from an empty window, the sync flush's tail removed."""
    c = zlib.compressobj(level, zlib.DEFLATED, -max(9, bits))
    z = c.compress(data) + c.flush(flush)
    return z[:-4] if flush == zlib.Z_SYNC_FLUSH else z


@functools.lru_cache(maxsize=None)
def zeros_block():
    """1 MiB of zeros deflated after a full flush: it needs no earlier data, so it can be repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    c.compress(bytes(MIB))
    c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)
    assert block.endswith(TAIL)
    return block


def deflated_zeros(n):
    """The payload of a compressed message of n zero bytes (a 'decompression bomb'), made cheaply."""
    whole, rest = divmod(n, MIB)
    z = zeros_block() * whole
    if rest or not z:
        z += deflate_once(bytes(rest), level=9) + TAIL
    return z[:-4]


def utf8_cut(buf, n):
    """The first n bytes of valid UTF-8 buf, still valid: a character cut at the end becomes '.' padding."""
    if len(buf) <= n:
        return buf + b"." * (n - len(buf))
    i = n
    while i > 0 and (buf[i] & 0xC0) == 0x80:
        i -= 1
    return buf[:i] + b"." * (n - i)


PROSE_WORDS = ("the of and to in is was that for on with as by at from it this be are have not but what all were "
               "when we there can an your which their said if do will each about how up out them then she many "
               "some so these would other into has more her two like him see time could no make than first "
               "socket message frame server client window deflate stream buffer latency throughput "
               "κόσμε λόγος ἀρχή naïve café façade Straße über señor jalapeño smörgåsbord "
               "東京 数据 压缩 窗口 сообщение данные сервер €5 £3 ¥100 𝄞 😀 ✓").split()


@functools.lru_cache(maxsize=None)
def corpus(kind):
    """640 KiB of one kind of payload, deterministic; text kinds are valid UTF-8."""
    rng = random.Random(kind)
    size = 640 * KIB
    if kind == "art":
        out = text_payload(size)
    elif kind == "json":
        recs, n = [], 0
        while n < size:
            rec = {"id": len(recs), "user": f"user-{rng.randrange(5000)}",
                   "name": " ".join(rng.choice(PROSE_WORDS) for _ in range(rng.randint(1, 3))),
                   "score": round(rng.random() * 1000, 3), "active": rng.random() < 0.5,
                   "tags": rng.sample(PROSE_WORDS[:60], rng.randint(0, 4)),
                   "geo": {"lat": round(rng.uniform(-90, 90), 5), "lon": round(rng.uniform(-180, 180), 5)}}
            line = json.dumps(rec, ensure_ascii=False)
            recs.append(line)
            n += len(line.encode()) + 2
        out = ("[" + ",\n".join(recs) + "]").encode()
    elif kind == "prose":
        weights = [1.0 / (k + 1) for k in range(len(PROSE_WORDS))]
        words = rng.choices(PROSE_WORDS, weights, k=size // 4)
        out = " ".join(words).encode()
    elif kind == "struct":
        recs = bytearray()
        t = 1_700_000_000_000
        k = 0
        while len(recs) < size:
            t += rng.randint(1, 50)
            recs += struct.pack("<IQhHd8s", k, t, rng.randint(-300, 300), rng.choice((200, 204, 301, 404, 500)),
                                round(rng.random() * 100, 2), rng.choice((b"GET\0\0\0\0\0", b"POST\0\0\0\0", b"PUT\0\0\0\0\0")))
            k += 1
        out = bytes(recs)
    else:
        out = rng.randbytes(size)
    return out[:size] if kind in ("struct", "random") else utf8_cut(out, size)


def sample(kind, n, i):
    """Message i of n bytes cut from the kind's corpus at an offset of its own."""
    c = corpus(kind)
    off = (i * 104_729 + n * 31) % (len(c) - n - 8) if n else 0
    if kind in ("struct", "random"):
        return c[off:off + n]
    while (c[off] & 0xC0) == 0x80:
        off += 1
    return utf8_cut(c[off:off + n + 8], n)


def window_probe(bits_list, seed="probe"):
    """Binary data whose repeats sit just inside and just outside each window size.

    A 48-byte random block recurs at distances around 2^bits - 262 (zlib's
    longest match distance for that window), just under 2^bits, and past it,
    so a compressor using a larger window than agreed reaches too far back.
    """
    rng = random.Random(seed)
    out = bytearray()
    for bits in sorted(set(bits_list)):
        if bits >= 15:
            continue
        w = 1 << max(bits, 8)
        for d in (w - 300, w - 262, w - 16, w + 64, w + 300, 2 * w):
            if d < 96:
                continue
            blk = rng.randbytes(48)
            out += blk + rng.randbytes(d - 48) + blk
    return bytes(out)


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

    def __init__(self, ctx, offer=None, addr=None):
        self.ctx = ctx
        self.addr = addr or ctx.addr
        # Sec-WebSocket-Extensions lines to send (a string or a list of
        # lines); None sends none and then no extension may come back.
        self.offer = [offer] if isinstance(offer, str) else offer
        self.ext_response = []     # the response's Sec-WebSocket-Extensions lines
        self.pmd = None            # PmdParams when permessage-deflate is in force
        self.deflater = None       # our compressor, kept across messages (context takeover)
        self.inflater = None       # the server's messages, one decompressor across messages
        self.msg_rsv1 = False      # RSV1 on the first frame of the message being received
        self.compressed = []       # per data message received: did it come with RSV1?
        self.wire = []             # per data message received: (payload bytes on the wire, sha1 of them)
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
        host, port = self.addr
        try:
            self.sock = socket.create_connection(self.addr, timeout=max(0.1, self.remaining()))
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
        host, port = self.addr
        key = base64.b64encode(os.urandom(16)).decode()
        ext = "".join(f"Sec-WebSocket-Extensions: {line}\r\n" for line in self.offer or ())
        req = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n{ext}\r\n")
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
        if self.offer is None:
            if "sec-websocket-extensions" in headers:
                raise Fail(f"handshake: server accepted extensions nobody offered: {headers['sec-websocket-extensions']}")
        else:
            self.ext_response = headers.get("sec-websocket-extensions", [])
            self.pmd = check_pmd_response(self.offer, self.ext_response)
            if self.pmd is not None:
                self.inflater = PmdInflater(self.pmd.server_bits)
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
            if self.pmd is None:
                raise Fail(f"server set RSV bits {rsv:03b} on a {name} frame with no extension negotiated (RFC 6455 5.2)")
            if rsv != 4:
                raise Fail(f"server set RSV bits {rsv:03b} on a {name} frame; permessage-deflate defines only RSV1 "
                           "(RFC 6455 5.2, RFC 7692 6)")
            if op not in (OP_TEXT, OP_BINARY):
                raise Fail(f"server set RSV1 on a {name} frame; permessage-deflate allows it only on the first "
                           "frame of a data message (RFC 7692 6, 6.1)")
        if op in (OP_TEXT, OP_BINARY):
            if self.frag_op is not None:
                raise Fail("server started a new message inside its own fragmented message (RFC 6455 5.4)")
            self.msg_rsv1 = rsv == 4
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
        compressed, self.msg_rsv1 = self.msg_rsv1, False
        if self.pmd is not None:
            self.compressed.append(compressed)
            self.wire.append((len(data), hashlib.sha1(data).hexdigest()))
        if compressed:
            data = self._inflate(data)
        if op == OP_TEXT:
            if not utf8_valid(data):
                raise Fail(f"server sent a text message that is not UTF-8 ({len(data)} bytes)")
            return ("text", data)
        return ("binary", data)

    # -- permessage-deflate

    def _inflate(self, data):
        """A compressed message from the server, inflated as RFC 7692 7.2.2 says.

        Decoded with exactly the agreed server window (strictly: see
        inflate_run).  With context takeover one decompressor reads all the
        server's messages; with server_no_context_takeover every message must
        also inflate on its own, from an empty window, and a decompressor kept
        across messages must read them too.
        """
        p, n = self.pmd, len(self.compressed)
        strict = p.server_bits < 15
        try:
            if p.server_nct:
                out = PmdInflater(p.server_bits).message(data, strict)
            else:
                out = self.inflater.message(data, strict)
        except zlib.error as e:
            how = "on its own (server_no_context_takeover: from an empty window)" if p.server_nct else \
                "with the decompressor kept across the server's messages (context takeover)"
            raise Fail(f"server's compressed message #{n} ({len(data)} bytes, {hexs(data)}) does not inflate "
                       f"with the agreed {p.server_bits}-bit window {how}: {e}")
        if p.server_nct:
            try:
                kept = self.inflater.message(data, False)
            except zlib.error as e:
                raise Fail(f"server's compressed message #{n} inflates on its own but not with a decompressor "
                           f"kept across its messages: {e}")
            if kept != out:
                raise Fail(f"server's compressed message #{n} inflates differently on its own and with a "
                           "decompressor kept across messages")
        return out

    def deflate(self, data, takeover=True, level=6):
        """data compressed as a permessage-deflate message payload (RFC 7692 7.2.1).

        With takeover (and unless client_no_context_takeover is in force) one
        compressor is kept across our messages, so they may refer to earlier
        ones; otherwise every message starts from an empty window.  The window
        is the agreed client_max_window_bits (8 runs as 9, whose matches reach
        at most 250 bytes back, inside an 8-bit window).
        """
        p = self.pmd
        if not data:
            return b"\x00"  # RFC 7692 7.2.3.6
        if takeover and not p.client_resets:
            if self.deflater is None:
                self.deflater = zlib.compressobj(level, zlib.DEFLATED, -max(9, p.client_bits))
            c = self.deflater
        else:
            c = zlib.compressobj(level, zlib.DEFLATED, -max(9, p.client_bits))
        z = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        assert z.endswith(TAIL), "zlib's sync flush did not end in 00 00 ff ff"
        return z[:-4]


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
    "12": "permessage-deflate, different payloads (RFC 7692 6, 7.2)",
    "13": "permessage-deflate, negotiation parameters (RFC 7692 5, 7, 7.1)",
    "14": "permessage-deflate, framing, failures and limits (RFC 7692 6, 7.2; RFC 6455 5.2, 7.4.1)",
}


class Case:
    def __init__(self, cid, title, expect, fn, budget, phase, target=None):
        self.id, self.title, self.expect, self.fn = cid, title, expect, fn
        self.budget, self.phase = budget, phase
        self.target = target  # the Server it runs against; None: the main one
        self.result, self.reason, self.elapsed = None, "", 0.0


CASES = []


def case(cid, title, expect, fn, budget=5.0, phase="light", target=None):
    CASES.append(Case(cid, title, expect, fn, budget, phase, target))


class Ctx:
    """What a case function gets: connections with the case's deadline."""

    def __init__(self, suite, c):
        self.suite = suite
        self.target = c.target or suite.main
        self.addr = self.target.addr
        self.mode = self.target.mode      # the server's --compression (or 'any')
        self.windlass = suite.managed     # windlass-specific expectations apply
        self.deadline = min(time.monotonic() + c.budget * suite.scale, suite.global_deadline)
        self.close_wait = 2.0 * suite.scale
        self.fast_wait = 1.0 * suite.scale
        self.rng = random.Random(c.id)
        self.conns = []
        self.notes = []

    def conn(self, offer=None):
        c = Conn(self, offer)
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
                # 64 KiB in 1-byte writes is 65,000 sends from this (Python)
                # client: give it time on a busy machine; the server is not slow.
                case(f"1.{sub}.{i}", f"{kind_of(op)} {n} bytes, {chunk_label(ch)}",
                     f"echoed as {kind_of(op)}, byte-exact; clean close",
                     send_expect_echo(frame(op, p), [(kind_of(op), p)], ch),
                     budget=20.0 if ch == 1 and n > 4096 else 5.0)
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
# 12-14 permessage-deflate (RFC 7692)
#
# Run against each server the suite starts with --compression (shared,
# per-connection: case ids end in /shared, /per-connection), a few against
# the plain server (/off), and against WINDLASS_CONFORMANCE_URL when
# WINDLASS_CONFORMANCE_COMPRESSION=any (/any; RFC checks only, none of the
# windlass-specific expectations).

BROWSER_OFFER = "permessage-deflate; client_max_window_bits"  # what Chrome and Firefox send
MIN_SIZE = 64  # windlass's CompressionOptions::min_size: shorter messages are sent uncompressed
HELLO = ("text", b"Hello")


def expected_for(mode, pc):
    """windlass's response for a target: pc is the per-connection answer; shared adds server_no_context_takeover."""
    if pc is None or mode == "off":
        return None
    if mode == "shared":
        return {"server_no_context_takeover": None, **pc}
    return dict(pc)


def expect_pmd(ctx, c, pc, must_decline=False):
    """The negotiation's outcome: declined when RFC 7692 7 says MUST; windlass's exact answer when managed."""
    got = c.pmd.resp if c.pmd is not None else None
    shown = ", ".join(repr(v) for v in c.ext_response) or "no Sec-WebSocket-Extensions"
    if must_decline and got is not None:
        raise Fail(f"the server accepted an offer it MUST decline (RFC 7692 7): answered {shown}")
    if ctx.windlass:
        want = expected_for(ctx.mode, pc)
        if got != want:
            raise Fail(f"answered {shown}, expected {fmt_pmd(want)}")


def pmd_conn(ctx, offer=BROWSER_OFFER, pc=None):
    """A connection on which permessage-deflate must be in force (windlass: answered as pc says)."""
    c = ctx.conn(offer=offer)
    if c.pmd is None:
        shown = ", ".join(c.ext_response) or "no Sec-WebSocket-Extensions"
        raise Fail(f"permessage-deflate was not negotiated for the offer {offer!r} ({shown})")
    expect_pmd(ctx, c, pc if pc is not None else {})
    return c


def pmd_build(c, msgs, takeover=True):
    """Wire bytes for msgs [(op, payload, how)] and the expected (messages, pongs).

    how: 'z' compressed, ('frag', n) compressed in n fragments, ('fragsize', b)
    compressed in b-byte fragments, 'plain' uncompressed (RSV1 clear), 'ping'.
    Without permessage-deflate in force everything is sent plain.
    """
    data, want, pongs = [], [], []
    for op, payload, how in msgs:
        if how == "ping":
            data.append(frame(OP_PING, payload))
            pongs.append(("pong", payload))
            continue
        if how == "plain" or c.pmd is None:
            data.append(frame(op, payload))
        else:
            z = c.deflate(payload, takeover)
            frag = None
            if isinstance(how, tuple):
                frag = max(1, -(-len(z) // how[1])) if how[0] == "frag" else how[1]
            data.append(pmd_frames(op, z, frag))
        want.append((kind_of(op), payload))
    return b"".join(data), want, pongs


def check_min_size(ctx, c, want, first):
    """windlass compresses exactly the echoes of MIN_SIZE bytes or more."""
    if not ctx.windlass or c.pmd is None:
        return
    for k, (_, payload) in enumerate(want):
        flag = c.compressed[first + k]
        if flag != (len(payload) >= MIN_SIZE):
            raise Fail(f"echo #{k + 1} ({len(payload)} bytes) came {'compressed' if flag else 'uncompressed'}; "
                       f"windlass compresses the messages of {MIN_SIZE} bytes or more, and only those")


def wire_note(c, want, first):
    n = len(want)
    if c.pmd is None or n == 0:
        return "no compression"
    raw = sum(len(p) for _, p in want)
    wire = sum(w for w, _ in c.wire[first:first + n])
    comp = sum(c.compressed[first:first + n])
    return f"{n} echoes, {raw} bytes in {wire} on the wire, {comp} compressed; {c.pmd.describe()}"


def pmd_echo(ctx, c, msgs, takeover=True, chunks=None):
    """Send msgs, expect their echoes (inflated, byte-exact) and pongs in order, then a clean close."""
    data, want, pongs = pmd_build(c, msgs, takeover)
    first = len(c.compressed)
    c.send(data, chunks)
    expect_echo(c, want, pongs)
    check_min_size(ctx, c, want, first)
    ctx.note(wire_note(c, want, first))
    return want


def size_label(n):
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB" if n >= KIB and n % KIB == 0 else f"{n} B"


PMD_KINDS = [
    (1, "artificial text (a repeated UTF-8 phrase)", OP_TEXT, "art"),
    (2, "JSON records (UTF-8)", OP_TEXT, "json"),
    (3, "prose in several scripts (UTF-8)", OP_TEXT, "prose"),
    (4, "binary records (compressible)", OP_BINARY, "struct"),
    (5, "random binary (incompressible)", OP_BINARY, "random"),
]
PMD_SIZES = [(16, 100), (64, 100), (256, 100), (KIB, 64), (4 * KIB, 32), (16 * KIB, 16), (64 * KIB, 8), (128 * KIB, 4)]
ECHO_EXPECT = ("echoed in order, byte-exact after inflating with the agreed window (one decompressor across the "
               "server's messages; each alone too with server_no_context_takeover); windlass compresses the "
               f"echoes of {MIN_SIZE} B or more; clean close")


def mixed_msgs(seed, n):
    rng = random.Random(seed)
    kinds = [("art", OP_TEXT), ("json", OP_TEXT), ("prose", OP_TEXT), ("struct", OP_BINARY), ("random", OP_BINARY)]
    msgs = []
    for k in range(n):
        kind, op = rng.choice(kinds)
        size = rng.choice((0, 1, 15, 63, 64, 65, 200, 1000, 5000, 20000, 65536))
        how = rng.choice(("z", "z", "z", "plain", ("frag", rng.choice((2, 3, 7)))))
        msgs.append((op, sample(kind, size, k), how))
        if k % 10 == 9:
            msgs.append((OP_PING, f"ping {k}".encode(), "ping"))
    return msgs


def register_pmd_payloads(t):
    sfx = t.suffix
    for sub, title, op, kind in PMD_KINDS:
        for half, takeover in ((0, True), (1, False)):
            for i, (n, count) in enumerate(PMD_SIZES, 1):
                def fn(ctx, op=op, kind=kind, n=n, count=count, takeover=takeover):
                    c = pmd_conn(ctx)
                    pmd_echo(ctx, c, [(op, sample(kind, n, k), "z") for k in range(count)], takeover)
                how = "one compressor kept across messages (client context takeover)" if takeover else \
                    "a fresh compressor per message (no client context takeover)"
                case(f"12.{sub}.{half * len(PMD_SIZES) + i}{sfx}",
                     f"{count} x {title} of {size_label(n)}, offer '{BROWSER_OFFER}', {how}",
                     ECHO_EXPECT, fn, budget=15, target=t)

    def mixed(takeover):
        def fn(ctx):
            c = pmd_conn(ctx)
            pmd_echo(ctx, c, mixed_msgs(f"mixed{takeover}", 120), takeover)
        return fn
    case(f"12.6.1{sfx}", "120 messages of mixed kinds and sizes (0 B-64 KiB): compressed with context takeover, "
         "plain (RSV1 clear) and compressed in 2-7 fragments, a ping after every 10th, in one write",
         "echoes and pongs in order, byte-exact; " + ECHO_EXPECT.split("; ", 1)[1], mixed(True), budget=15, target=t)
    case(f"12.6.2{sfx}", "the same mix with a fresh compressor per message, in random write sizes",
         "echoes and pongs in order, byte-exact", lambda ctx: pmd_echo(ctx, pmd_conn(ctx), mixed_msgs("mixedF", 120),
                                                                      False, "random"), budget=15, target=t)

    def interleaved(ctx):
        conns = [pmd_conn(ctx) for _ in range(8)]
        for r in range(12):
            sent = []
            for j, c in enumerate(conns):
                p = sample("prose", 1500 + 100 * j, r * 8 + j)
                c.send(pmd_frames(OP_TEXT, c.deflate(p)))
                sent.append(p)
            for j, (c, p) in enumerate(zip(conns, sent)):
                msgs, _ = read_items(c, 1)
                compare(f"round {r + 1}, connection {j + 1}: echo", [("text", p)], msgs)
        for c in conns:
            close_handshake(c)
        ctx.note(conns[0].pmd.describe())
    case(f"12.6.3{sfx}", "8 connections, 12 rounds: each sends a compressed text, then every echo is read",
         "every echo inflates with its own connection's context, byte-exact (the server keeps windows apart, "
         "or resets a shared compressor between messages)", interleaved, budget=15, target=t)

    def repeated(ctx):
        c = pmd_conn(ctx)
        p = sample("json", 8192, 7)
        pmd_echo(ctx, c, [(OP_TEXT, p, "z")] * 20)
        sizes = [w for w, _ in c.wire]
        ctx.note(f"echo sizes on the wire: {sizes[0]}, then {min(sizes[1:])}-{max(sizes[1:])} bytes")
        if not ctx.windlass:
            return
        if c.pmd.server_nct:
            if len({h for _, h in c.wire}) != 1:
                raise Fail(f"with server_no_context_takeover every echo of the same message should be the same bytes "
                           f"(the shared compressor starts each from an empty window); sizes {sizes}")
        elif max(sizes[1:]) * 4 > sizes[0]:
            raise Fail(f"with context takeover the repeated echoes should refer to the first one; sizes {sizes}")
    case(f"12.6.4{sfx}", "the same 8 KiB JSON text 20 times, compressed with context takeover",
         "20 exact echoes; windlass per-connection: echoes 2-20 under 1/4 of the first (context takeover); "
         "shared: all 20 echoes the same bytes (no context takeover)", repeated, target=t)


# (title, offer, per-connection answer or None when declined, RFC 7692 7 says MUST decline)
NEGOTIATIONS = [
    ("13.1", "parameters without values", [
        ("permessage-deflate", {}, False),
        ("permessage-deflate; client_max_window_bits", {}, False),
        ("permessage-deflate; server_no_context_takeover", {"server_no_context_takeover": None}, False),
        ("permessage-deflate; client_no_context_takeover", {"client_no_context_takeover": None}, False),
        ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
         {"server_no_context_takeover": None, "client_no_context_takeover": None}, False),
        ("permessage-deflate; client_max_window_bits; server_no_context_takeover; client_no_context_takeover",
         {"server_no_context_takeover": None, "client_no_context_takeover": None}, False),
        ("permessage-deflate;server_no_context_takeover", {"server_no_context_takeover": None}, False),
        ('permessage-deflate; server_max_window_bits="10"; client_max_window_bits="12"',
         {"server_max_window_bits": "10", "client_max_window_bits": "12"}, False),
    ]),
    ("13.2", "server_max_window_bits", [
        (f"permessage-deflate; server_max_window_bits={b}", {"server_max_window_bits": str(b)}, False)
        for b in range(8, 16)]),
    ("13.3", "client_max_window_bits", [
        (f"permessage-deflate; client_max_window_bits={b}", {"client_max_window_bits": str(b)} if b < 15 else {}, False)
        for b in range(8, 16)]),
    ("13.4", "both windows and context takeover", [
        ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=15", {"server_max_window_bits": "9"}, False),
        ("permessage-deflate; server_max_window_bits=15; client_max_window_bits=9",
         {"server_max_window_bits": "15", "client_max_window_bits": "9"}, False),
        ("permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
         {"server_max_window_bits": "8", "client_max_window_bits": "8"}, False),
        ("permessage-deflate; server_max_window_bits=12; client_max_window_bits=10; client_no_context_takeover",
         {"client_no_context_takeover": None, "server_max_window_bits": "12", "client_max_window_bits": "10"}, False),
        ("permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_no_context_takeover; "
         "client_max_window_bits=9", {"server_no_context_takeover": None, "client_no_context_takeover": None,
                                      "server_max_window_bits": "10", "client_max_window_bits": "9"}, False),
        ("permessage-deflate; server_max_window_bits=11; client_max_window_bits", {"server_max_window_bits": "11"}, False),
        ("permessage-deflate; server_no_context_takeover; server_max_window_bits=8",
         {"server_no_context_takeover": None, "server_max_window_bits": "8"}, False),
    ]),
    ("13.5", "several offers (RFC 7692 5: in order of preference)", [
        ("permessage-deflate; foo, permessage-deflate; server_max_window_bits=10", {"server_max_window_bits": "10"}, False),
        ("permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits=9",
         {"client_max_window_bits": "9"}, False),
        ("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12, permessage-deflate",
         {"server_max_window_bits": "12", "client_max_window_bits": "12"}, False),
        ("permessage-deflate; client_no_context_takeover; client_max_window_bits=8, "
         "permessage-deflate; client_max_window_bits, permessage-deflate",
         {"client_no_context_takeover": None, "client_max_window_bits": "8"}, False),
        ("x-webkit-deflate-frame; no_context_takeover, permessage-deflate; client_max_window_bits=10",
         {"client_max_window_bits": "10"}, False),
        ("permessage-deflate; foo, permessage-deflate; bar=1", None, True),
        ("foo-extension, bar-extension; x=1", None, False),
        (["permessage-deflate; server_max_window_bits=11", "permessage-deflate"], {"server_max_window_bits": "11"}, False),
        (["permessage-deflate; foo", "permessage-deflate; server_max_window_bits=11"],
         {"server_max_window_bits": "11"}, False),
        (["x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits"], {}, False),
    ]),
]
# Offers RFC 7692 7 says a server MUST decline: each alone (no extension, the
# connection works uncompressed), then followed by a plain valid offer.
INVALID_OFFERS = [
    "foo", "foo=bar", "server_no_context_takeover; server_no_context_takeover",
    "client_no_context_takeover; client_no_context_takeover",
    "server_max_window_bits=10; server_max_window_bits=10", "client_max_window_bits; client_max_window_bits=10",
    "server_max_window_bits", "server_max_window_bits=7", "server_max_window_bits=16", "server_max_window_bits=0",
    "server_max_window_bits=010", 'server_max_window_bits=""', "server_max_window_bits=abc",
    "server_max_window_bits=9.5", "server_max_window_bits=-9", "client_max_window_bits=7",
    "client_max_window_bits=16", "client_max_window_bits=08", "server_no_context_takeover=1",
    'client_no_context_takeover="x"',
]
# Headers that break RFC 6455 9.1's grammar (windlass: all declined), and odd but valid ones.
MALFORMED_OFFERS = [
    ("permessage-deflate;;", None),
    ('permessage-deflate; server_max_window_bits="10', None),
    ("permessage-deflate; =10", None),
    ("permessage-deflate; server_max_window_bits=10 11", None),
    ("permessage-deflate client_max_window_bits", None),
    (", , permessage-deflate ,", {}),
    ("permessage-deflate ;\tclient_max_window_bits=10 ", {"client_max_window_bits": "10"}),
]


def pmd_round_trip(ctx, c):
    """Compressed and plain messages over an agreed (or declined) permessage-deflate.

    The window probes repeat data just inside and just outside both agreed
    windows, so a compressor that uses more than it agreed, or an inflater
    with less than it agreed, shows.
    """
    p = c.pmd
    probe = window_probe([p.server_bits, p.client_bits]) if p else b""
    probe = probe or sample("random", 2000, 9)
    msgs = [
        (OP_TEXT, b"plain short text", "plain"),
        (OP_TEXT, b"short compressed", "z"),
        (OP_TEXT, sample("prose", 3000, 1), "z"),
        (OP_TEXT, sample("prose", 3000, 1), "z"),
        (OP_BINARY, probe, "z"),
        (OP_TEXT, b"", "z"),
        (OP_BINARY, sample("random", 1000, 2), "z"),
        (OP_TEXT, sample("json", 20000, 3), ("frag", 3)),
        (OP_BINARY, probe, "plain"),
        (OP_PING, b"after the messages", "ping"),
    ]
    pmd_echo(ctx, c, msgs)


def register_pmd_params(t):
    sfx = t.suffix
    rt = "; echoes byte-exact, the server's inflated with exactly the agreed window"

    def negotiate(offer, pc, must_decline):
        def fn(ctx):
            c = ctx.conn(offer=offer)
            expect_pmd(ctx, c, pc, must_decline)
            pmd_round_trip(ctx, c)
        return fn

    def show(offer):
        return " + ".join(f"'{line}'" for line in offer) + " (two header lines)" if isinstance(offer, list) else f"'{offer}'"

    for prefix, title, rows in NEGOTIATIONS:
        for i, (offer, pc, must_decline) in enumerate(rows, 1):
            if t.mode == "off":
                if prefix != "13.1" or i > 3:
                    continue
                expect = "no extension (compression off); echoes byte-exact"
            elif t.mode == "any":
                expect = ("declined (RFC 7692 7: MUST)" if must_decline else "any valid answer (RFC 7692 7)") + rt
            else:
                expect = f"answers '{fmt_pmd(expected_for(t.mode, pc))}'" + rt
            case(f"{prefix}.{i}{sfx}", f"{title}: offer {show(offer)}", expect, negotiate(offer, pc, must_decline),
                 budget=10, target=t)
    if t.mode == "off":
        return

    def invalid(params):
        def fn(ctx):
            alone = f"{PMD}; {params}"
            c = ctx.conn(offer=alone)
            expect_pmd(ctx, c, None, must_decline=True)
            pmd_round_trip(ctx, c)
            c2 = ctx.conn(offer=alone + f", {PMD}")
            expect_pmd(ctx, c2, {})
            pmd_round_trip(ctx, c2)
        return fn
    for i, params in enumerate(INVALID_OFFERS, 1):
        case(f"13.6.{i}{sfx}", f"invalid offer '{PMD}; {params}', alone and followed by '{PMD}'",
             "alone: no extension (RFC 7692 7: MUST decline), echoes work uncompressed; followed by a valid "
             f"offer: that one is accepted{' (windlass)' if t.mode != 'any' else ''}", invalid(params), budget=10, target=t)
    if t.mode == "any":
        return
    for i, (offer, pc) in enumerate(MALFORMED_OFFERS, 1):
        expect = ("status 101 and no extension: windlass declines a header that breaks RFC 6455 9.1's grammar "
                  "as a whole" if pc is None else f"answers '{fmt_pmd(expected_for(t.mode, pc))}'") + "; echoes work"
        case(f"13.7.{i}{sfx}", f"Sec-WebSocket-Extensions {offer!r}", expect, negotiate(offer, pc, False),
             budget=10, target=t)


def register_pmd_off(t):
    """A compression-off server: RSV1 stays a protocol error after an offer (13.1.1-3/off decline it)."""
    def rsv1(ctx):
        c = ctx.conn(offer=BROWSER_OFFER)
        expect_pmd(ctx, c, None)
        c.send(frame(OP_TEXT, RFC_HELLO, rsv=4))
        expect_close(c, {1002})
    case(f"14.3.1{t.suffix}", "offer declined by a server with compression off, then a compressed 'Hello' (RSV1)",
         "close 1002 (RFC 6455 5.2: RSV1 with no extension negotiated), no echo", rsv1, target=t)


RFC_HELLO = bytes.fromhex("f248cdc9c90700")  # RFC 7692 7.2.3.1


def register_pmd_framing(t, suite):
    sfx = t.suffix
    windlass = t.mode in ("shared", "per-connection")

    def raw(data, want, pongs=(), offer=BROWSER_OFFER, chunks=None):
        def fn(ctx):
            c = pmd_conn(ctx, offer)
            c.send(data, chunks)
            expect_echo(c, want, pongs)
        return fn

    def raw_close(data, codes, may_first=(), offer=BROWSER_OFFER, pc=None):
        def fn(ctx):
            c = pmd_conn(ctx, offer, pc)
            c.send(data if not callable(data) else data(c))
            got = expect_close(c, codes, may_first)
            if may_first:
                ctx.note(f"{len(got)} of {len(may_first)} earlier answers arrived before the close")
        return fn

    # 14.1 the examples of RFC 7692 7.2.3 byte for byte, and other senders' output
    examples = [
        ("'Hello' compressed, one frame (RFC 7692 7.2.3.1)", frame(OP_TEXT, RFC_HELLO, rsv=4), [HELLO]),
        ("'Hello' compressed, 2 fragments f2 48 cd | c9 c9 07 00 (7.2.3.1)",
         frame(OP_TEXT, bytes.fromhex("f248cd"), fin=False, rsv=4) + frame(OP_CONT, bytes.fromhex("c9c90700")), [HELLO]),
        ("two 'Hello', the second f2 00 11 00 00 refers to the first (7.2.3.2, shared LZ77 window)",
         frame(OP_TEXT, RFC_HELLO, rsv=4) + frame(OP_TEXT, bytes.fromhex("f200110000"), rsv=4), [HELLO, HELLO]),
        ("'Hello' in a stored block 00 05 00 fa ff ... 00 (7.2.3.3)",
         frame(OP_TEXT, bytes.fromhex("000500faff48656c6c6f00"), rsv=4), [HELLO]),
        ("'Hello' in a block with BFINAL set, f3 48 cd c9 c9 07 00 00 (7.2.3.4), then 'Hello' from an empty window",
         frame(OP_TEXT, bytes.fromhex("f348cdc9c9070000"), rsv=4) + frame(OP_TEXT, RFC_HELLO, rsv=4), [HELLO, HELLO]),
        ("'Hello' in two DEFLATE blocks (7.2.3.5)", frame(OP_TEXT, bytes.fromhex("f24805000000ffffcac9c90700"), rsv=4),
         [HELLO]),
        ("empty message, payload 00 (7.2.3.6)", frame(OP_TEXT, b"\x00", rsv=4), [("text", b"")]),
        ("binary 'Hello' compressed, then the same uncompressed, then compressed again",
         frame(OP_BINARY, RFC_HELLO, rsv=4) + frame(OP_BINARY, b"Hello") + frame(OP_BINARY, RFC_HELLO, rsv=4),
         [("binary", b"Hello")] * 3),
    ]
    for i, (title, data, want) in enumerate(examples, 1):
        case(f"14.1.{i}{sfx}", title, "echoed as the inflated message(s); clean close", raw(data, want), target=t)
    n = len(examples)

    def senders(ctx):
        c = pmd_conn(ctx)
        prose = [sample("prose", 4096 + 1000 * k, 40 + k) for k in range(5)]
        msgs = []
        # stored blocks only (level 0), 100 KiB
        big = sample("prose", 100 * KIB, 50)
        msgs.append((OP_TEXT, big, deflate_once(big, level=0)))
        # zlib strategies from a fresh compressor each
        for k, strategy in enumerate((zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE, zlib.Z_FIXED)):
            co = zlib.compressobj(9, zlib.DEFLATED, -15, 9, strategy)
            msgs.append((OP_TEXT, prose[k], (co.compress(prose[k]) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]))
        # a message ending in a final block (Z_FINISH: BFINAL set, no sync flush tail)
        msgs.append((OP_TEXT, prose[4], deflate_once(prose[4], flush=zlib.Z_FINISH)))
        # one message of three sync-flushed parts
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        parts = prose[0][:1000], prose[0][1000:3000], prose[0][3000:]
        z = b"".join(co.compress(part) + co.flush(zlib.Z_SYNC_FLUSH) for part in parts)[:-4]
        msgs.append((OP_TEXT, prose[0], z))
        # full flushes between messages of one compressor
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        for k in range(3):
            msgs.append((OP_TEXT, prose[k], (co.compress(prose[k]) + co.flush(zlib.Z_FULL_FLUSH))[:-4]))
        c.send(b"".join(frame(op, z, rsv=4) for op, _, z in msgs))
        expect_echo(c, [("text", p) for _, p, _ in msgs])
        ctx.note(f"{len(msgs)} messages")
    n += 1
    case(f"14.1.{n}{sfx}", "other compressors' output: stored blocks (level 0, 100 KiB); filtered, Huffman-only, "
         "RLE and fixed-code strategies; a final block (Z_FINISH); three sync-flushed parts in one message; "
         "full flushes", "every message echoed as sent", senders, budget=10, target=t)

    def empty_rsv1(ctx):
        c = pmd_conn(ctx)
        c.send(frame(OP_TEXT, b"", rsv=4))
        ctx.note(expect_echo_or_close(c, [("text", b"")], {1007}))
        if ctx.windlass and ctx.notes[-1] != "server echoed":
            raise Fail("windlass reads an empty compressed payload as the empty message (as ws and websockets do)")
    n += 1
    case(f"14.1.{n}{sfx}", "text with RSV1 and an empty payload (not what 7.2.3.6 sends, which is 00)",
         "an empty text echo (windlass), or close 1007", empty_rsv1, target=t)

    # 14.2 compressed messages in fragments: RSV1 on the first frame only (RFC 7692 6.1)
    prose64 = sample("prose", 64 * KIB, 60)
    text4 = sample("art", 4 * KIB, 61)
    prose1m = sample("prose", 512 * KIB, 62) * 2
    rnd = sample("random", 256 * KIB, 63)

    def frag(payload, op=OP_TEXT, split=None, size=None, pings=False, chunks=None, empty_ends=False):
        def fn(ctx):
            c = pmd_conn(ctx)
            z = c.deflate(payload)
            if split is not None:
                cuts = [z[k * len(z) // split:(k + 1) * len(z) // split] for k in range(split)]
            else:
                cuts = [z[k:k + size] for k in range(0, len(z), size)]
            if empty_ends:
                cuts = [b""] + cuts + [b""]
            data, pongs = b"", []
            for k, part in enumerate(cuts):
                data += frame(op if k == 0 else OP_CONT, part, fin=k == len(cuts) - 1, rsv=4 if k == 0 else 0)
                if pings and k < len(cuts) - 1:
                    data += frame(OP_PING, f"between {k}".encode())
                    pongs.append(("pong", f"between {k}".encode()))
            c.send(data, chunks)
            expect_echo(c, [(kind_of(op), payload)], pongs)
            ctx.note(f"{len(z)} compressed bytes in {len(cuts)} frames")
        return fn
    frags = [
        ("text 64 KiB compressed, 2 fragments", frag(prose64, split=2)),
        ("text 4 KiB compressed, 1-byte fragments", frag(text4, size=1)),
        ("text 1 MiB compressed, 997-byte fragments", frag(prose1m, size=997)),
        ("text 64 KiB compressed, 3 fragments with a ping between each", frag(prose64, split=3, pings=True)),
        ("text 4 KiB compressed, 3 fragments between an empty first and an empty last fragment (RSV1 on the empty first)",
         frag(text4, split=3, empty_ends=True)),
        ("binary 256 KiB random compressed, 4 KiB fragments", frag(rnd, op=OP_BINARY, size=4 * KIB)),
        ("text 300 B compressed, 5 fragments, 1-byte writes 1 ms apart", frag(sample("art", 300, 64), split=5, chunks="slow")),
    ]
    for i, (title, fn) in enumerate(frags, 1):
        case(f"14.2.{i}{sfx}", title, "echoed whole, byte-exact (and the pongs)", fn, budget=15, target=t)

    def frag_mix(ctx):
        c = pmd_conn(ctx)
        a, b, p = sample("json", 6000, 70), sample("json", 6000, 71), sample("art", 3000, 72)
        data = pmd_frames(OP_TEXT, c.deflate(a), 1000) + fragments(OP_TEXT, p, 700) + pmd_frames(OP_TEXT, c.deflate(b), 333)
        c.send(data)
        expect_echo(c, [("text", a), ("text", p), ("text", b)])
    case(f"14.2.{len(frags) + 1}{sfx}", "compressed fragmented text, plain fragmented text, compressed fragmented text "
         "(context takeover across them)", "three echoes, byte-exact", frag_mix, target=t)

    # 14.3 RSV bits with permessage-deflate
    start = 1
    rsv_cases = [
        ("compressed text (no FIN, RSV1), continuation with RSV1",
         lambda c: frame(OP_TEXT, RFC_HELLO[:3], fin=False, rsv=4) + frame(OP_CONT, RFC_HELLO[3:], rsv=4), ()),
        ("plain text (no FIN), continuation with RSV1",
         lambda c: frame(OP_TEXT, b"Hel", fin=False) + frame(OP_CONT, b"lo", rsv=4), ()),
        ("ping with RSV1", lambda c: frame(OP_PING, b"ping", rsv=4), ()),
        ("pong with RSV1", lambda c: frame(OP_PONG, b"pong", rsv=4), ()),
        ("close 1000 with RSV1", lambda c: frame(OP_CLOSE, close_payload(1000), rsv=4), ()),
        ("compressed text with RSV1 and RSV2", lambda c: frame(OP_TEXT, RFC_HELLO, rsv=6), ()),
        ("compressed text with RSV1 and RSV3", lambda c: frame(OP_TEXT, RFC_HELLO, rsv=5), ()),
        ("text with RSV2", lambda c: frame(OP_TEXT, b"Hello", rsv=2), ()),
        ("compressed 'Hello', ping with RSV1, ping",
         lambda c: frame(OP_TEXT, RFC_HELLO, rsv=4) + frame(OP_PING, b"rsv", rsv=4) + frame(OP_PING, b"after"), [HELLO]),
        ("compressed text (no FIN), ping with RSV1 between its fragments",
         lambda c: frame(OP_TEXT, RFC_HELLO[:3], fin=False, rsv=4) + frame(OP_PING, b"x", rsv=4) + frame(OP_CONT, RFC_HELLO[3:]), ()),
    ]
    for i, (title, make, first) in enumerate(rsv_cases, start):
        case(f"14.3.{i}{sfx}", title, "close 1002 (RFC 7692 6, 6.1: RSV1 only on the first frame of a data message)"
             + ("; the earlier echo may come first" if first else ", no echo") + ", no pong",
             raw_close(make, {1002}, first), target=t)
    i += 1

    def no_offer(ctx):
        c = ctx.conn()
        c.send(frame(OP_TEXT, RFC_HELLO, rsv=4))
        expect_close(c, {1002})
    case(f"14.3.{i}{sfx}", "no offer, then a compressed 'Hello' (RSV1)",
         "close 1002 (RFC 6455 5.2: RSV1 with no extension negotiated)", no_offer, target=t)
    i += 1

    def declined(ctx):
        c = ctx.conn(offer=f"{PMD}; foo")
        expect_pmd(ctx, c, None, must_decline=True)
        c.send(frame(OP_TEXT, RFC_HELLO, rsv=4))
        expect_close(c, {1002})
    case(f"14.3.{i}{sfx}", f"offer '{PMD}; foo' (declined), then a compressed 'Hello' (RSV1)",
         "close 1002 (RFC 6455 5.2)", declined, target=t)

    # 14.4 data that does not inflate
    rng = random.Random("garbage")
    while True:
        garbage = bytes([0x05 | (rng.randrange(32) << 3)]) + rng.randbytes(63)  # BTYPE 10: a dynamic-Huffman header
        try:
            zlib.decompressobj(-15).decompress(garbage + TAIL)
        except zlib.error:
            break
    text2k = sample("prose", 2000, 80)
    half = deflate_once(text2k)[:len(deflate_once(text2k)) // 2]
    # (title, frames, answers that may come first, RFC 7692 leaves the outcome open)
    corrupt = [
        ("block type 11 (reserved): payload 07 00", frame(OP_TEXT, b"\x07\x00", rsv=4), (), False),
        ("stored block whose LEN and NLEN disagree: 00 05 00 00 00 'Hello'",
         frame(OP_TEXT, bytes.fromhex("0005000000") + b"Hello", rsv=4), (), False),
        ("a back-reference before the start of the stream: f2 00 11 00 00 as the first message",
         frame(OP_TEXT, bytes.fromhex("f200110000"), rsv=4), (), False),
        (f"64 bytes of garbage with a dynamic-Huffman block header ({hexs(garbage, 6)})",
         frame(OP_BINARY, garbage, rsv=4), (), False),
        ("the first half of a compressed 2000-byte text (ends inside a block, so the 00 00 ff ff tail does not "
         "complete an empty stored block)", frame(OP_TEXT, half, rsv=4), (), True),
        ("'Hello' in a final block, then ff ff (an invalid block after it)",
         frame(OP_TEXT, bytes.fromhex("f348cdc9c90700ffff"), rsv=4), (), True),
        ("compressed 'Hello', then a fragmented message whose second fragment is garbage",
         frame(OP_TEXT, RFC_HELLO, rsv=4) + frame(OP_TEXT, RFC_HELLO[:4], fin=False, rsv=4) + frame(OP_CONT, b"\xff\xff\xff"),
         [HELLO], False),
    ]

    def lenient(data):
        def fn(ctx):
            c = pmd_conn(ctx)
            c.send(data)
            try:
                item = c.next_item()
            except Timeout:
                raise Fail("neither a message nor a close arrived")
            if item[0] == "close":
                if item[1] not in (1002, 1007, 1011):
                    raise Fail(f"expected close 1002/1007/1011 or a message, got {fmt_close(item)}")
                c.send(frame(OP_CLOSE, close_payload(item[1])))
                wait_tcp_close(c)
            else:
                close_handshake(c)
            ctx.note(f"answered {describe(item)}")
        return fn
    for i, (title, data, first, open_) in enumerate(corrupt, 1):
        if t.mode == "any":
            if open_:
                case(f"14.4.{i}{sfx}", title, "RFC 7692 leaves it open: a message (whatever it inflated to) or close "
                     "1002/1007/1011", lenient(data), target=t)
            else:
                case(f"14.4.{i}{sfx}", title, "close 1002, 1007 or 1011" + ("; the earlier echo may come first" if first else ""),
                     raw_close(data, {1002, 1007, 1011}, first), target=t)
            continue
        expect = "close 1007 (windlass: data that does not inflate is invalid payload data, RFC 6455 7.4.1)" + \
                 ("; the earlier echo may come first" if first else ", no echo")
        case(f"14.4.{i}{sfx}", title, expect, raw_close(data, {1007}, first), target=t)
    i = len(corrupt)
    if windlass:
        cnct = f"{PMD}; client_no_context_takeover"
        i += 1
        case(f"14.4.{i}{sfx}", f"offer '{cnct}' (agreed), then two 'Hello', the second referring to the first "
             "(f2 00 11 00 00)", "the first echoed, then close 1007: windlass resets its inflater for every message "
             "under client_no_context_takeover (7.1.1.2)",
             raw_close(frame(OP_TEXT, RFC_HELLO, rsv=4) + frame(OP_TEXT, bytes.fromhex("f200110000"), rsv=4),
                       {1007}, [HELLO], cnct, {"client_no_context_takeover": None}), target=t)
        far = sample("random", 1000, 81)

        def beyond(c):
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            first = (co.compress(far) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
            second = (co.compress(far[:300]) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
            return frame(OP_BINARY, first, rsv=4) + frame(OP_BINARY, second, rsv=4)
        i += 1
        case(f"14.4.{i}{sfx}", f"offer '{PMD}; client_max_window_bits=9' (agreed), then a random 1000-byte binary "
             "and a message that repeats its start, 1000 bytes back (past the 512-byte window)",
             "the first echoed, then close 1007: windlass inflates with exactly the agreed client window",
             raw_close(beyond, {1007}, [("binary", far)], f"{PMD}; client_max_window_bits=9",
                       {"client_max_window_bits": "9"}), target=t)

    # 14.5 UTF-8 inside compressed text: checked after inflating
    valid_big = sample("prose", 512 * KIB, 90) * 2

    def two_parts(a, b, valid):
        def fn(ctx):
            c = pmd_conn(ctx)
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            z1 = co.compress(a) + co.flush(zlib.Z_SYNC_FLUSH)
            z2 = (co.compress(b) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
            data = frame(OP_TEXT, z1, fin=False, rsv=4) + frame(OP_CONT, z2)
            c.send(data)
            if valid:
                expect_echo(c, [("text", a + b)])
            else:
                expect_close(c, {1007})
        return fn

    def bad_text(payload, op=OP_TEXT, before=None):
        def fn(ctx):
            c = pmd_conn(ctx)
            data = b""
            if before is not None:
                data = pmd_frames(OP_TEXT, c.deflate(before))
            data += pmd_frames(op, c.deflate(payload))
            c.send(data)
            if op == OP_BINARY:
                expect_echo(c, [("binary", payload)])
            else:
                expect_close(c, {1007}, [("text", before)] if before is not None else ())
        return fn
    utf8 = [
        ("compressed text 'Hello ' C0 80 ' world' (overlong)", "close 1007, no echo", bad_text(b"Hello \xc0\x80 world")),
        ("compressed 2000 bytes of prose with a surrogate ED A0 80 in the middle", "close 1007, no echo",
         bad_text(text2k[:1000] + b"\xed\xa0\x80" + text2k[1000:])),
        ("compressed text ending in CE (a truncated character)", "close 1007, no echo", bad_text("κόσμε".encode() + b"\xce")),
        ("compressed 1 MiB of valid prose with C0 80 at the end", "close 1007, no echo", bad_text(valid_big + b"\xc0\x80")),
        ("valid compressed text, then compressed text with FF", "the first echo may come, then close 1007",
         bad_text(b"bad \xff", before=b"good text")),
        ("compressed binary with invalid UTF-8 (C0 80 FF)", "echoed byte-exact (binary is not UTF-8 checked)",
         bad_text(b"\xc0\x80\xff binary", OP_BINARY)),
        ("compressed text in 2 sync-flushed fragments, U+1D11E split between them (F0 9D | 84 9E)",
         "echoed whole (the character is complete once inflated)", two_parts(b"abc\xf0\x9d", b"\x84\x9edef", True)),
        ("compressed text in 2 sync-flushed fragments, F0 9D | 41 (the character never completes)",
         "close 1007, no echo", two_parts(b"abc\xf0\x9d", b"Adef", False)),
    ]
    for i, (title, expect, fn) in enumerate(utf8, 1):
        case(f"14.5.{i}{sfx}", title, expect, fn, budget=10, target=t)

    # 14.6 limits: the inflated size counts (16 MiB in the echo server)
    def bomb(n, frag=None, write_chunks=None):
        def fn(ctx):
            c = pmd_conn(ctx)
            z = deflated_zeros(n)
            c.send(pmd_frames(OP_BINARY, z, frag), write_chunks)
            t0 = time.monotonic()
            expect_close(c, {1009}, deadline=t0 + 2 * ctx.fast_wait)
            ctx.note(f"{len(z)} compressed bytes; close {time.monotonic() - t0:.2f} s after the last write"
                     + (f"; {c.send_error}" if c.send_error else ""))
        return fn

    def exact(n, op=OP_BINARY):
        def fn(ctx):
            c = pmd_conn(ctx)
            if op == OP_BINARY:
                z, p = deflated_zeros(n), bytes(n)
            else:
                p = sample("prose", 512 * KIB, 91) * (n // (512 * KIB))
                z = c.deflate(p, takeover=False)
            c.send(frame(op, z, rsv=4))
            expect_echo(c, [(kind_of(op), p)])
            ctx.note(f"{len(z)} compressed bytes, echo {c.wire[-1][0]} bytes on the wire")
        return fn
    limits = [
        ("binary: 32 MiB of zeros compressed (33 KB), one frame", "close 1009 within 2 s (x time scale) of the last byte",
         bomb(32 * MIB)),
        ("binary: 1 GiB of zeros compressed (1 MB), one frame", "close 1009 within 2 s, maybe before all of it is sent",
         bomb(1024 * MIB)),
        ("binary: 32 MiB of zeros compressed, in 1 KiB fragments", "close 1009 within 2 s", bomb(32 * MIB, KIB)),
        ("binary: 16 MiB of zeros compressed: exactly the limit once inflated", "echoed byte-exact",
         exact(MAX_MESSAGE)),
        ("binary: 16 MiB + 1 byte of zeros compressed", "close 1009", bomb(MAX_MESSAGE + 1)),
        ("text: 8 MiB of prose compressed, one frame", "echoed byte-exact", exact(8 * MIB, OP_TEXT)),
    ]
    if t.mode == "any":
        limits = limits[:3]
    for i, (title, expect, fn) in enumerate(limits, 1):
        case(f"14.6.{i}{sfx}", title, expect, fn, budget=30, phase="heavy", target=t)



def register_pmd_server_checks(t, suite):
    sfx = t.suffix
    if t.proc_managed:
        def rss(ctx):
            hwm = t.peak_rss_kib()
            if hwm is None:
                raise Fail("cannot read VmHWM from /proc")
            ctx.note(f"{hwm / 1024:.1f} MiB")
            if hwm > suite.max_rss_mib * 1024:
                raise Fail(f"peak RSS {hwm / 1024:.1f} MiB is over the {suite.max_rss_mib} MiB bound")
        case(f"14.8.1{sfx}", "server peak RSS after every case above (VmHWM)", f"under {suite.max_rss_mib} MiB",
             rss, phase="post", target=t)
        case(f"14.8.2{sfx}", "server exit after SIGTERM", "exit status 0 within 10 s, no sanitizer report",
             server_exit(t, suite), budget=20, phase="final", target=t)


def server_exit(srv, suite):
    def fn(ctx):
        problem = srv.stop()
        if problem:
            raise Fail(problem)
        ctx.note("exit status 0")
    return fn


def register_bomb_server(t, suite):
    """A server with a 1 MiB limit: decompression bombs cost it at most about that much memory."""
    def bombs(ctx):
        base = t.peak_rss_kib()
        conns = [pmd_conn(ctx, BROWSER_OFFER, {}) for _ in range(4)]
        z = deflated_zeros(256 * MIB)
        for c in conns:
            c.send(frame(OP_BINARY, z, rsv=4))
        for c in conns:
            expect_close(c, {1009})
        hwm = t.peak_rss_kib()
        grew = (hwm - base) / 1024
        ctx.note(f"{len(z)} compressed bytes each; peak RSS {base / 1024:.1f} -> {hwm / 1024:.1f} MiB")
        if grew > t.bomb_bound_mib:
            raise Fail(f"peak RSS grew {grew:.1f} MiB for 4 bombs against a 1 MiB limit (bound {t.bomb_bound_mib} MiB)")
    case("14.7.1", "server with --max-message-size 1048576: 4 connections at once, each 256 MiB of zeros compressed "
         "(260 KB) in one frame", f"each gets close 1009; the server's peak RSS grows less than {t.bomb_bound_mib} MiB",
         bombs, budget=20, phase="heavy", target=t)

    def at_limit(ctx):
        c = pmd_conn(ctx, BROWSER_OFFER, {})
        c.send(frame(OP_BINARY, deflated_zeros(MIB), rsv=4))
        expect_echo(c, [("binary", bytes(MIB))])
        c = pmd_conn(ctx, BROWSER_OFFER, {})
        c.send(frame(OP_BINARY, deflated_zeros(MIB + 1), rsv=4))
        expect_close(c, {1009})
    case("14.7.2", "the same server: 1 MiB of zeros compressed, then 1 MiB + 1 byte on another connection",
         "the first echoed, the second close 1009", at_limit, budget=10, phase="heavy", target=t)
    case("14.7.3", "the same server: exit after SIGTERM", "exit status 0 within 10 s, no sanitizer report",
         server_exit(t, suite), budget=20, phase="final", target=t)


def register_compression(suite):
    """Families 12, 13 and 14, each against every server in turn (so the report keeps families together)."""
    targets = suite.pmd_targets
    for t in targets:
        if t.mode != "off":
            register_pmd_payloads(t)
    for t in targets:
        register_pmd_params(t)
    for t in targets:
        if t.mode == "off":
            register_pmd_off(t)
        else:
            register_pmd_framing(t, suite)
    if suite.bomb_server is not None:
        register_bomb_server(suite.bomb_server, suite)
    for t in targets:
        if t.mode != "off":
            register_pmd_server_checks(t, suite)


# ---------------------------------------------------------------------------
# The run


class Server(wt.Server):
    """An echo server: one this script starts (proc_managed), or one already running."""

    addr = None  # (host, port); set by hand for a server already running

    def __init__(self, name, mode, args=(), suffix=""):
        super().__init__([], name)  # the binary is known once the suite is configured
        self.mode = mode          # its --compression: off, shared, per-connection; 'any' for a running server
        self.args = list(args)
        self.suffix = suffix      # appended to the ids of the compression cases run against it
        self.proc_managed = True
        self.bomb_bound_mib = 0
        self.header = ""

    def start(self, binary, scale, sanitizer):
        self.argv = [binary, *self.args]
        self.start_timeout = 10 * scale
        try:
            super().start()
        except AssertionError as e:
            raise SystemExit(f"server {self.name} did not start: {e}") from None
        self.addr = ("127.0.0.1", self.port)
        label = "server" if self.name == "main" else f"server {self.name}"
        self.header = (f"{label}: {' '.join([binary, *self.args])} (pid {self.proc.pid}"
                       f"{', ' + sanitizer if sanitizer else ''}) on {self.addr[0]}:{self.addr[1]}")

    def stderr_tail(self, n=20):
        return "\n".join(self.log_text().splitlines()[-n:])

    def sanitizer_report(self):
        m = re.search(r"(ERROR: \w+Sanitizer.*|runtime error: .*|WARNING: ThreadSanitizer.*)", self.log_text())
        return m.group(1)[:200] if m else ""

    def peak_rss_kib(self):
        try:
            return self.status_kib("VmHWM")
        except (OSError, AssertionError):
            return None

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def wait_exit(self, timeout):
        """The exit status, or None when still running after `timeout` (then killed)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stop(self, scale=None):
        """SIGTERM the server; a description of what went wrong, or ''."""
        scale = scale or SCALE[0]
        if self.proc.poll() is not None:
            return f"server died during the run ({describe_exit(self.proc.returncode)})"
        rc = self.terminate(10 * scale)
        if rc is None:
            return f"server still running {10 * scale:.0f} s after SIGTERM (killed)"
        if rc != 0:
            return f"server {describe_exit(rc)} after SIGTERM"
        bad = self.sanitizer_report()
        return f"sanitizer report on stderr: {bad}" if bad else ""


SCALE = [1.0]  # the suite's time scale, for Server.stop()


class Suite:
    def __init__(self):
        self.main = Server("main", "off", suffix="/off")
        self.managed = False  # True when this script starts (and may signal) the server
        self.scale = 1.0
        self.sanitizer = ""
        self.binary = None
        self.max_rss_mib = 200
        self.rss_line = ""
        self.header = []
        self.global_deadline = float("inf")
        self.pmd_targets = []   # servers the compression families (12-14) run against
        self.extra = []         # servers started besides the main one
        self.bomb_server = None

    # The main server, as the cases of families 1-11 use it.
    proc = property(lambda self: self.main.proc)
    addr = property(lambda self: self.main.addr)

    def configure(self, listing=False):
        """Reads the environment; decides which servers there are (none started yet)."""
        url = os.environ.get("WINDLASS_CONFORMANCE_URL")
        if url:
            host, _, port = url.rpartition(":")
            if url.startswith("ws://"):
                host = host[5:]
            self.main.addr = (host or "127.0.0.1", int(port.strip("/")))
            self.main.proc_managed = False
            self.scale = float(os.environ.get("WINDLASS_CONFORMANCE_TIME_SCALE", "1"))
            SCALE[0] = self.scale
            self.header.append(f"server: already running at {self.main.addr[0]}:{self.main.addr[1]} "
                               "(RSS and shutdown cases skipped)")
            modes = [m for m in os.environ.get("WINDLASS_CONFORMANCE_COMPRESSION", "").split(",") if m.strip()]
            if "any" in modes:
                self.main.mode, self.main.suffix = "any", "/any"
                self.pmd_targets = [self.main]
            return
        self.managed = True
        modes = [m.strip() for m in os.environ.get("WINDLASS_CONFORMANCE_COMPRESSION",
                                                   "off,shared,per-connection").split(",") if m.strip()]
        for m in modes:
            if m not in ("off", "shared", "per-connection"):
                raise SystemExit(f"WINDLASS_CONFORMANCE_COMPRESSION: unknown mode {m!r} (off, shared, per-connection)")
        binary = os.environ.get("WINDLASS_ECHO_BIN")
        if binary:
            try:
                kind = wt.sanitizer(binary)
            except OSError as e:
                raise SystemExit(f"cannot read {binary}: {e}")
            self.sanitizer = kind if kind in ("ASan", "TSan") else ""
        elif not listing:
            raise SystemExit("set WINDLASS_ECHO_BIN (echo server binary) or WINDLASS_CONFORMANCE_URL (host:port)")
        self.binary = binary
        default_scale = {"ASan": 3.0, "TSan": 5.0}.get(self.sanitizer, 1.0)
        self.scale = float(os.environ.get("WINDLASS_CONFORMANCE_TIME_SCALE", default_scale))
        SCALE[0] = self.scale
        # ASan's quarantine (256 MiB by default) and shadow memory inflate RSS.
        self.max_rss_mib = int(os.environ.get("WINDLASS_CONFORMANCE_MAX_RSS_MIB",
                                              1024 if self.sanitizer else 200))
        for m in modes:
            if m == "off":
                self.pmd_targets.append(self.main)
            else:
                srv = Server(m, m, ["--compression", m], "/" + m)
                self.pmd_targets.append(srv)
                self.extra.append(srv)
        if any(m != "off" for m in modes):
            self.bomb_server = Server("bomb", "per-connection",
                                      ["--compression", "per-connection", "--max-message-size", "1048576"])
            # Four inflated messages of 1 MiB, zlib's windows and buffers; ASan
            # keeps freed memory in quarantine.
            self.bomb_server.bomb_bound_mib = 96 if self.sanitizer else 24
            self.extra.append(self.bomb_server)

    def start(self, needed):
        """Starts the main server and the extra servers in needed."""
        if not self.managed:
            return
        for srv in [self.main] + [s for s in self.extra if s in needed]:
            srv.start(self.binary, self.scale, self.sanitizer)
            self.header.append(srv.header)

    def started(self):
        return [s for s in [self.main] + self.extra if s.proc is not None]

    # The main server's process, for families 9 and 11.
    def stderr_tail(self, n=20):
        return self.main.stderr_tail(n)

    def sanitizer_report(self):
        return self.main.sanitizer_report()

    def peak_rss_kib(self):
        return self.main.peak_rss_kib()

    def alive(self):
        return self.main.alive()

    def wait_exit(self, timeout):
        return self.main.wait_exit(timeout)

    def stop(self):
        return self.main.stop(self.scale)


def run_case(suite, c):
    srv = c.target or suite.main
    if not srv.alive():
        c.result, c.reason = "FAIL", f"server not running ({describe_exit(srv.proc.returncode)})"
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


def selects(c, a):
    """Whether command-line argument a picks case c: a case id or a prefix of one
    ('6.5', '12.1.3', '12.1.3/shared'), or a server suffix ('/shared')."""
    return (c.id == a or c.id.startswith(a + ".") or c.id.startswith(a + "/")
            or (a.startswith("/") and c.id.endswith(a)))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    suite = Suite()
    listing = "--list" in sys.argv[1:]
    suite.configure(listing)
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
    register_compression(suite)
    selected = [c for c in CASES if not args or any(selects(c, a) for a in args)]
    if listing:
        for c in selected:
            print(f"{c.id}\t{c.title}\t{c.expect}")
        print(f"{len(selected)} cases")
        return 0
    # ctest kills the run at 300 s; stop starting cases well before that so
    # a server that hangs every case still gets a report, and give up (with
    # every thread's stack) before ctest does.
    budget = float(os.environ.get("WINDLASS_CONFORMANCE_TOTAL_BUDGET", "240"))
    wt.watchdog(budget + 40)
    suite.start({c.target for c in selected if c.target is not None})
    jobs = int(os.environ.get("WINDLASS_CONFORMANCE_JOBS", "8"))
    t0 = time.monotonic()
    suite.global_deadline = t0 + budget

    light = [c for c in selected if c.phase == "light"]
    print(f"conformance: running {len(selected)} cases against {suite.addr[0]}:{suite.addr[1]}"
          + "".join(f", {s.name} on port {s.addr[1]}" for s in suite.extra if s.addr), file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(lambda c: run_case(suite, c), light))
    for phase in ("heavy", "post", "final"):
        for c in selected:
            if c.phase == phase:
                run_case(suite, c)
                if c.phase == "heavy":
                    print(f"  {c.result} {c.id} ({c.elapsed:.1f} s)", file=sys.stderr)
    stop_problems = []
    if suite.proc is not None:
        if not any(c.phase == "final" and c.target is None for c in selected):
            problem = suite.stop()
            if problem:
                stop_problems.append(("server stop", problem))
        else:
            suite.main.kill()
    for srv in suite.extra:
        if srv.proc is not None and srv.proc.returncode is None:
            problem = srv.stop(suite.scale)
            if problem:
                stop_problems.append((f"server stop ({srv.name})", problem))
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
    for label, problem in stop_problems:
        out.append(f"FAIL  {label}: {problem}")
    if failed or stop_problems:
        for srv in suite.started():
            if srv is suite.main:
                out.append("server stderr (last lines):")
            else:
                out.append(f"server {srv.name} stderr (last lines):")
            out.extend("    " + l for l in srv.stderr_tail(15).splitlines())
        out.append(f"failed cases: {', '.join(c.id for c in failed) or '-'}")
    n_failed = len(failed) + len(stop_problems)
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
