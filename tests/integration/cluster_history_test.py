#!/usr/bin/python3
"""History and recovery across nodes: two windlass-server nodes and one
redis-server, a channel prefix with [[app.history]].

A Pusher client (protocol 7, tests/support/pusher_client.py, which sends
the last stream_offset it saw when it subscribes again) is cut off in the
middle of a burst of 1,000 events published through the HTTP API, and
comes back on the *other* node: it gets every event exactly once and in
order (what it missed first, from the history in Redis, then the live
ones), and subscription_succeeded says "recovered". When more was
published while it was away than the history keeps, it says "too_old"
(the client reloads) and live events still come. A channel without
history is not touched: no stream_offset in its events.

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \\
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/cluster_history_test.py
"""

import asyncio
import concurrent.futures
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
import pusher_client as pc  # noqa: E402
from pusher_client import Client  # noqa: E402

wt.require_programs("redis-server")
wt.watchdog(120)

BURST = 1000
HISTORY = """[[app.history]]
channels = "chat-"
messages = 2000
max_age = "5m"
[[app.history]]
channels = "private-small-"
messages = 10
max_age = "5m"
"""


def dead_port():
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(client, channel, name="msg"):
    return [m for m in client.messages if m.get("event") == name and m.get("channel") == channel]


class History(unittest.TestCase):
    def setUp(self):
        self.redis = wt.redis_server().start()
        self.cluster = pc.Cluster(f"redis://127.0.0.1:{self.redis.port}", n=2, prefix="history:",
                                  apps=pc.app_toml(extra=HISTORY)).start()

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()

    def test_a_client_cut_off_in_a_burst_comes_back_on_the_other_node_with_every_event_once_in_order(self):
        p = self.cluster.ports

        async def run():
            c = await Client(p[0], "mover", reconnect=True, recover=True).connect()
            first = await c.subscribe("chat-room")
            self.assertEqual(first.get("recovery"), "fresh", first)
            self.assertIn("stream_offset", first)
            loop = asyncio.get_running_loop()

            def burst():
                for i in range(BURST):
                    pc.publish(p[1], ["chat-room"], "msg", i)

            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                publishing = loop.run_in_executor(pool, burst)
                await c.wait_for("msg", "chat-room", where=lambda m: m["data"] == 300, what="event 300")
                # Cut off in the middle of the burst, and kept away (its
                # reconnects refused) until the burst is over, so that what
                # it missed can only come from the history.
                c.port = dead_port()
                await c.ws.close()
                await wt.step(publishing, "the burst", timeout=60)
            cut_at = len(events(c, "chat-room"))
            self.assertLess(cut_at, BURST, "the client was cut off before the burst ended")
            # Back on the other node, from its last offset.
            c.port = p[1]
            await c.wait_for("msg", "chat-room", where=lambda m: m["data"] == BURST - 1, timeout=20,
                             what="the burst's last event")
            await pc.settle(0.5)
            got = [m["data"] for m in events(c, "chat-room")]
            self.assertEqual(got, list(range(BURST)), "every event once, in order")
            self.assertGreaterEqual(c.connections, 2)
            again = [m for m in c.messages if m["event"] == "pusher_internal:subscription_succeeded"
                     and m["_conn"] == c.connections]
            self.assertEqual(len(again), 1)
            self.assertEqual(again[0]["data"].get("recovery"), "recovered", again[0])
            self.assertEqual(sum(1 for m in events(c, "chat-room") if m["_conn"] == c.connections), BURST - cut_at,
                             "what was missed came on the new connection")
            offsets = [m["stream_offset"] for m in events(c, "chat-room")]
            self.assertEqual(len(set(offsets)), BURST, "each event has its own offset")
            await c.close()

        asyncio.run(run())

    def test_too_old_when_the_history_no_longer_reaches_back_and_no_offsets_without_history(self):
        p = self.cluster.ports

        async def run():
            c = await Client(p[0], "away", reconnect=False, recover=True).connect()
            await c.subscribe("private-small-room")
            await c.subscribe("plain")
            pc.publish(p[1], ["private-small-room", "plain"], "msg", "before")
            await c.wait_for("msg", "private-small-room", what="the first event")
            await c.wait_for("msg", "plain", what="the plain channel's event")
            plain = events(c, "plain")[0]
            self.assertNotIn("stream_offset", plain, "a channel without history is as before")
            await c.close()
            for i in range(30):
                pc.publish(p[0], ["private-small-room"], "msg", str(i))
            back = Client(p[1], "back", recover=True)
            back.offsets = dict(c.offsets)
            await back.connect()
            data = await back.subscribe("private-small-room")
            self.assertEqual(data.get("recovery"), "too_old", data)
            await pc.settle(0.3)
            self.assertEqual(events(back, "private-small-room"), [], "nothing replayed after too_old")
            pc.publish(p[0], ["private-small-room"], "msg", "live")
            m = await back.wait_for("msg", "private-small-room", what="a live event after too_old")
            self.assertEqual(m["data"], "live")
            # An offset that is not one: invalid_offset, and live events still come.
            odd = Client(p[0], "odd", recover=True)
            odd.offsets = {"chat-x": "banana"}
            await odd.connect()
            self.assertEqual((await odd.subscribe("chat-x")).get("recovery"), "invalid_offset")
            await close_all([back, odd])

        async def close_all(clients):
            for cl in clients:
                await cl.close()

        asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
