#!/usr/bin/python3
"""Three windlass-server nodes while their redis-server stops and comes back
on the same port (without persistence, so it comes back empty).

Checked, with Pusher clients on every node (tests/support/pusher_client.py):

- while Redis is away (about 8 s: the bridges' reconnection backoff
  reaches its ceiling), each node's own delivery never stops: a publish
  through a node's HTTP API reaches that node's subscribers at once, each
  once; the publishes for other nodes wait in the bridge's outbox
  (windlass_redis_outbox > 0) and none is ever delivered twice;
- new clients are accepted and subscribed meanwhile, presence included
  (from the node's own view);
- /readyz says the cluster is split: 200 with the reason by default, 503
  on the node with `fail_readiness_when_split = true`;
  windlass_redis_connected is 0 and windlass_redis_split_since_seconds
  the time Redis was lost;
- once Redis is back, cross-node delivery works again within 5 s, from
  every node to every node, for the clients that stayed and those that
  came during the outage; the reconnect is counted;
- presence is whole again (each node wrote its members back): every node's
  /users lists the members of every node, old and new, and not the one
  who left during the outage; a new subscriber gets that list; nobody who
  stayed was told member_removed;
- after that, kill -9 of a node still removes its members from the others
  within 10 s: the node's list of topics was written back too.

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/cluster_outage_test.py
"""

import asyncio
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
import pusher_client as pc  # noqa: E402
from pusher_client import Client  # noqa: E402

wt.require_programs("redis-server")
wt.watchdog(150)

BACK_WITHIN_S = 5        # cross-node delivery after Redis returns
REAPED_WITHIN_S = 10     # a killed node's members removed from the others
CH = "presence-room"


def user_ids(port):
    status, body = pc.api_get(port, f"/channels/{CH}/users")
    assert status == 200, (status, body)
    return sorted(u["id"] for u in body["users"])


class RedisOutage(unittest.TestCase):
    def setUp(self):
        self.redis_port = wt.free_port()
        self.redis = wt.redis_server(self.redis_port).start()
        self.cluster = pc.Cluster(f"redis://127.0.0.1:{self.redis_port}", prefix="outage:",
                                  broker_extra=["", "", "fail_readiness_when_split = true"]).start()

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()

    def test_local_delivery_goes_on_and_the_cluster_heals(self):
        p = self.cluster.ports

        async def run():
            # Two clients per node on "news"; the first of each is a presence member.
            old = [[await Client(p[i], f"n{i + 1}{x}").connect() for x in "ab"] for i in range(3)]
            for i, (a, b) in enumerate(old):
                for c in (a, b):
                    await c.subscribe("news")
                await a.subscribe(CH, f"p{i + 1}")
            leaver = await Client(p[1], "leaver@node2").connect()
            await leaver.subscribe(CH, "gone")
            everyone = [c for pair in old for c in pair]
            pc.publish(p[0], ["news"], "before", {})
            for c in everyone:
                await c.wait_for("before", "news")
            self.assertEqual(user_ids(p[2]), ["gone", "p1", "p2", "p3"])

            self.redis.stop()
            for s in self.cluster.nodes:
                wt.wait_until(lambda s=s: wt.scrape_metric(s.port, "windlass_redis_connected") == 0,
                              f"{s.name} saying Redis is lost", timeout=5)
                since = wt.scrape_metric(s.port, "windlass_redis_split_since_seconds")
                self.assertLess(abs(since - time.time()), 30, f"{s.name}: split since {since}")
            status, _, body = wt.http_request(p[0], "/readyz")
            self.assertEqual(status, 200, body)
            self.assertIn(b"split", body)
            status, _, body = wt.http_request(p[2], "/readyz")
            self.assertEqual(status, 503, body)
            self.assertIn(b"split", body)

            # Local delivery, on every node, every 1.5 s for 6 s: long enough
            # for the bridges' reconnection backoff to reach its ceiling.
            for k in range(4):
                for i in range(3):
                    pc.publish(p[i], ["news"], "during", {"k": k, "node": i})
                for i, pair in enumerate(old):
                    for c in pair:
                        await c.wait_for("during", "news", lambda m, k=k, i=i: m["data"] == {"k": k, "node": i},
                                         timeout=1, what=f"local publish {k} of node {i + 1} during the outage")
                await asyncio.sleep(1.5)
            self.assertGreater(wt.scrape_metric(p[0], "windlass_redis_outbox"), 0)
            # Leaving and arriving during the outage.
            await leaver.close()
            for c in (old[1][0],):  # a presence member on the same node
                await c.wait_for("pusher_internal:member_removed", CH, lambda m: m["data"]["user_id"] == "gone")
            new = []
            for i in range(3):
                c = await Client(p[i], f"q{i + 1}@node{i + 1}").connect()
                new.append(c)
                await c.subscribe("news")
                got = pc.members_of(await c.subscribe(CH, f"q{i + 1}"))
                self.assertIn(f"q{i + 1}", got)
                self.assertIn(f"p{i + 1}", got)
                pc.publish(p[i], ["news"], "hello-new", {"node": i})
                await c.wait_for("hello-new", "news", lambda m, i=i: m["data"]["node"] == i, timeout=1)
            everyone += new

            self.redis = wt.redis_server(self.redis_port).start()
            back = time.monotonic()
            # Probes from every node until every client hears all three.
            def missing(c):
                return [i for i in range(3) if not c.count("probe", where=lambda m, i=i: m["data"]["from"] == i)]
            n = 0
            while True:
                n += 1
                for i in range(3):
                    pc.publish(p[i], ["news"], "probe", {"n": n, "from": i})
                await asyncio.sleep(0.2)
                if not any(missing(c) for c in everyone):
                    break
                self.assertLess(time.monotonic() - back, BACK_WITHIN_S, "cross-node delivery not back: " + ", ".join(
                    f"{c.name} without probes from node(s) {[i + 1 for i in missing(c)]}" for c in everyone
                    if missing(c)))
            print(f"\ncross-node delivery back {time.monotonic() - back:.2f} s after Redis", file=sys.stderr)
            for s in self.cluster.nodes:
                wt.wait_until(lambda s=s: wt.scrape_metric(s.port, "windlass_redis_connected") == 1,
                              f"{s.name}: windlass_redis_connected 1", timeout=1)
                self.assertGreaterEqual(wt.scrape_metric(s.port, "windlass_redis_reconnects_total"), 1, s.name)
                self.assertEqual(wt.scrape_metric(s.port, "windlass_redis_split_since_seconds"), 0, s.name)
            self.assertEqual(wt.http_request(p[2], "/readyz")[0], 200)

            mark = [len(c.messages) for c in everyone]
            pc.publish(p[1], ["news"], "after", {})
            for c in everyone:
                await c.wait_for("after", "news", since=mark[everyone.index(c)])
            await pc.settle()
            for c in everyone:
                self.assertEqual(c.count("after"), 1, c.name)
                # Nothing twice: what waited in an outbox came at most once more.
                for k in range(4):
                    for i in range(3):
                        self.assertLessEqual(c.count("during", where=lambda m, k=k, i=i: m["data"] ==
                                                     {"k": k, "node": i}), 1, c.name)

            want = ["p1", "p2", "p3", "q1", "q2", "q3"]
            for port in p:
                wt.wait_until(lambda port=port: user_ids(port) == want, f"the members on port {port}: "
                              f"{user_ids(port)}", timeout=BACK_WITHIN_S)
            late = await Client(p[0], "late@node1").connect()
            everyone.append(late)
            self.assertEqual(sorted(pc.members_of(await late.subscribe(CH, "late"))), sorted(want + ["late"]))
            for c in everyone:
                self.assertEqual(c.count("pusher_internal:member_removed", where=lambda m: m["data"]["user_id"] !=
                                         "gone"), 0, c.name)

            # Node 3 dies: its members go from the others, which proves it
            # wrote its topics back after Redis lost them.
            observers = [old[0][0], old[1][0], late]
            mark = [len(c.messages) for c in observers]
            self.cluster.nodes[2].kill()
            killed = time.monotonic()
            for c, since in zip(observers, mark):
                for user in ("p3", "q3"):
                    await c.wait_for("pusher_internal:member_removed", CH, lambda m, u=user: m["data"]["user_id"] == u,
                                     since=since, timeout=REAPED_WITHIN_S + 2)
            self.assertLessEqual(time.monotonic() - killed, REAPED_WITHIN_S)
            for port in p[:2]:
                self.assertEqual(user_ids(port), ["late", "p1", "p2", "q1", "q2"])
            await pc.close_all(everyone)

        wt.run_async(run(), timeout=90)


if __name__ == "__main__":
    wt.run_tests()
