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
WINDLASS_SOURCE_DIR; a peer without its variable is skipped. By hand:

    WINDLASS_PEER_BEAST_BIN=build/release/bench/peers/windlass-peer-beast \
    WINDLASS_PEER_WEBSOCKETPP_BIN=build/release/bench/peers/windlass-peer-websocketpp \
    /usr/bin/python3 bench/peers/peers_test.py
"""

import asyncio
import os
import signal
import sys
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import STEP_TIMEOUT_S  # noqa: E402

QUIET_S = 0.3
BIG = 16 << 20  # the peers' message size limit, as windlass-echo's


def peers():
    found = {"node-ws": ["node", os.path.join(wt.SOURCE_DIR, "bench", "peers", "ws_server.mjs")]}
    for name, var in [("beast", "WINDLASS_PEER_BEAST_BIN"), ("websocketpp", "WINDLASS_PEER_WEBSOCKETPP_BIN")]:
        found[name] = [os.environ[var]] if os.environ.get(var) else None
    return found


def start_peer(argv, mode):
    """One peer process on a port of its choosing (`PEER 0 MODE`), stopped by a signal."""
    return wt.Server(argv + ["0", mode], f"{os.path.basename(argv[-1])} {mode}", listen_args=False,
                     start_timeout=STEP_TIMEOUT_S, stop_timeout=STEP_TIMEOUT_S).start()


async def step(awaitable):
    return await wt.step(awaitable, "a step")


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
        peer = start_peer(self.argv, "echo")
        messages = ["hello", "ünïcødé 🚀", "", b"\x00\x01\xfe\xff", b"", bytes(range(256)) * 300,
                    "x" * 70000, b"\x5a" * BIG]

        async def body():
            ws = await connect(peer.url())
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
            peer.stop(signo=signal.SIGTERM)

    def test_chat_relays_to_every_other_client_and_not_the_sender(self):
        peer = start_peer(self.argv, "chat")

        async def silent(ws):
            try:
                message = await asyncio.wait_for(ws.recv(), QUIET_S)
            except asyncio.TimeoutError:
                return
            self.fail(f"the sender got its own message back: {message[:40]!r}")

        async def body():
            a, b, c = [await connect(peer.url()) for _ in range(3)]
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
            peer.stop(signo=signal.SIGINT)


class BeastTest(PeerTest, unittest.TestCase):
    name = "beast"


class WebsocketppTest(PeerTest, unittest.TestCase):
    name = "websocketpp"


class NodeWsTest(PeerTest, unittest.TestCase):
    name = "node-ws"


if __name__ == "__main__":
    wt.watchdog(50)  # ctest's timeout for this test is 60 s
    wt.run_tests()
