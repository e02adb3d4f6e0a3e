#!/usr/bin/python3
"""Smoke test of the benchmark peers in bench/peers (echo and chat mode).

A peer that echoes wrongly or relays to the wrong clients would make
bench/side_by_side.sh compare against a broken server, so each built peer
(and the Node one) is started here in both modes and checked with Python's
`websockets` (Debian's python3-websockets, a strict client):

  echo: text, binary, empty and 16 MiB messages come back as sent;
  chat: with 3 clients, a message reaches the other two and not the sender;
  SIGTERM (echo) and SIGINT (chat) end the peer with exit code 0.

Run by ctest (bench.peers) with WINDLASS_PEER_BEAST_BIN and
WINDLASS_PEER_WEBSOCKETPP_BIN for the peers that are built and
WINDLASS_SOURCE_DIR; a peer without its variable is skipped.
"""

import asyncio
import os
import re
import select
import signal
import subprocess
import unittest

import websockets

STEP_TIMEOUT_S = 10
QUIET_S = 0.3
BIG = 16 << 20  # the peers' message size limit, as windlass-echo's
LISTENING = re.compile(rb"^listening on 127\.0\.0\.1:(\d+)\n$")


def peers():
    source = os.environ.get("WINDLASS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    found = {"node-ws": ["node", os.path.join(source, "bench", "peers", "ws_server.mjs")]}
    for name, var in [("beast", "WINDLASS_PEER_BEAST_BIN"), ("websocketpp", "WINDLASS_PEER_WEBSOCKETPP_BIN")]:
        found[name] = [os.environ[var]] if os.environ.get(var) else None
    return found


class Peer:
    """One peer process on a port of its choosing, stopped by a signal."""

    def __init__(self, argv, mode):
        self.proc = subprocess.Popen(argv + ["0", mode], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], STEP_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else b""
        m = LISTENING.match(line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"{argv} {mode}: expected 'listening on 127.0.0.1:PORT', got {line!r}")
        self.url = f"ws://127.0.0.1:{int(m.group(1))}/"

    def stop(self, sig):
        if self.proc.poll() is not None:
            raise AssertionError(f"the peer died early with {self.proc.returncode}")
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the peer was still running {STEP_TIMEOUT_S} s after {sig!r}") from None
        finally:
            self.proc.stdout.close()


async def step(awaitable):
    return await asyncio.wait_for(awaitable, STEP_TIMEOUT_S)


async def connect(url):
    return await step(websockets.connect(url, max_size=BIG, compression=None, open_timeout=STEP_TIMEOUT_S,
                                         close_timeout=STEP_TIMEOUT_S))


class PeerTest:
    """Mixed into one TestCase per peer; `name` picks the peer."""

    name = None

    def setUp(self):
        self.argv = peers()[self.name]
        if self.argv is None:
            self.skipTest(f"the {self.name} peer is not built")

    def test_echo_returns_each_message_as_sent(self):
        peer = Peer(self.argv, "echo")
        messages = ["hello", "ünïcødé 🚀", "", b"\x00\x01\xfe\xff", b"", bytes(range(256)) * 300,
                    "x" * 70000, b"\x5a" * BIG]

        async def body():
            ws = await connect(peer.url)
            for message in messages:
                await step(ws.send(message))
                got = await step(ws.recv())
                self.assertIs(type(got), type(message))
                self.assertEqual(len(got), len(message))
                self.assertEqual(got, message)
            await step(ws.close())
        try:
            asyncio.run(body())
        finally:
            self.assertEqual(peer.stop(signal.SIGTERM), 0)

    def test_chat_relays_to_every_other_client_and_not_the_sender(self):
        peer = Peer(self.argv, "chat")

        async def silent(ws):
            try:
                message = await asyncio.wait_for(ws.recv(), QUIET_S)
            except asyncio.TimeoutError:
                return
            self.fail(f"the sender got its own message back: {message[:40]!r}")

        async def body():
            a, b, c = [await connect(peer.url) for _ in range(3)]
            for sender, others, message in [(a, (b, c), "from a"), (b, (a, c), b"\x00from b\xff"),
                                            (c, (a, b), "y" * 100000)]:
                await step(sender.send(message))
                for ws in others:
                    self.assertEqual(await step(ws.recv()), message)
                await silent(sender)
            await step(c.close())
            await step(a.send("after c left"))
            self.assertEqual(await step(b.recv()), "after c left")
            await asyncio.gather(step(a.close()), step(b.close()))
        try:
            asyncio.run(body())
        finally:
            self.assertEqual(peer.stop(signal.SIGINT), 0)


class BeastTest(PeerTest, unittest.TestCase):
    name = "beast"


class WebsocketppTest(PeerTest, unittest.TestCase):
    name = "websocketpp"


class NodeWsTest(PeerTest, unittest.TestCase):
    name = "node-ws"


if __name__ == "__main__":
    unittest.main(verbosity=2)
