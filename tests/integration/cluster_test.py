#!/usr/bin/python3
"""Three windlass-server nodes and one redis-server, as one Pusher hub.

Each test starts its own redis-server and nodes (node ids 1, 2, 3, the
bridge's prefix set, two event loops each) and Pusher clients (protocol 7,
tests/support/pusher_client.py) connected straight to different nodes.
Checked:

- a publish through the signed HTTP API of one node reaches every
  subscriber on every node exactly once; `socket_id` leaves out one
  connection on another node and only it; client events cross nodes and
  never come back to their sender.
- presence is the cluster's: the member list of subscription_succeeded
  holds the members of every node; member_added and member_removed come
  once to each other subscriber; /channels, /channels/{name} and
  /channels/{name}/users answer the same on every node; a user with two
  connections on two nodes is one member, and closing one of them removes
  nothing.
- kill -9 of a node: its members (and only those who have no connection
  elsewhere) are removed within 10 s, member_removed coming once to each
  remaining subscriber; the member_removed and channel_vacated webhooks
  for them fire once.
- two deployments with different prefixes on one Redis, with the same app
  id, key and channel names, do not hear each other.
- webhooks (channel_occupied, channel_vacated, member_added,
  member_removed) fire once per cluster, not once per node.

The Redis outage, Redis Cluster, Laravel's broadcaster and nginx in front
are in cluster_*_test.py beside this file.

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/cluster_test.py
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

NODE_TIMEOUT_REQUIREMENT_S = 10  # a killed node's members are gone from the others within this


def start(n=3, **config):
    """A fresh redis-server and `n` nodes on it."""
    redis = wt.redis_server().start()
    cluster = pc.Cluster(f"redis://127.0.0.1:{redis.port}", n=n, **config).start()
    return redis, cluster


def removed(user):
    return lambda m: m["data"].get("user_id") == user


def added(user):
    return lambda m: m["data"].get("user_id") == user


class Delivery(unittest.TestCase):
    def setUp(self):
        self.redis, self.cluster = start(prefix="delivery:")

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()

    def test_publish_reaches_every_node_once_and_socket_id_excludes_across_nodes(self):
        async def run():
            p = self.cluster.ports
            clients = [await Client(p[i % 3], f"c{i}@node{i % 3 + 1}").connect() for i in range(6)]
            try:
                for c in clients:
                    await c.subscribe("news")
                    await c.subscribe("private-orders")
                # Every node publishes once; every client hears each exactly once.
                for i, port in enumerate(p):
                    pc.publish(port, ["news", "private-orders"], "update", {"from": i})
                for c in clients:
                    for i in range(3):
                        for ch in ("news", "private-orders"):
                            await c.wait_for("update", ch, where=lambda m, i=i: m["data"] == {"from": i})
                await pc.settle()
                for c in clients:
                    for i in range(3):
                        for ch in ("news", "private-orders"):
                            n = c.count("update", ch, where=lambda m, i=i: m["data"] == {"from": i})
                            self.assertEqual(n, 1, f"{c.name} got update {i} on {ch} {n} times")

                # socket_id: the connection named (on node 2) is left out, from node 1's API.
                excluded = clients[1]
                mark = [len(c.messages) for c in clients]
                pc.publish(p[0], ["news"], "not-for-c1", {"x": 1}, socket_id=excluded.socket_id)
                for c, since in zip(clients, mark):
                    if c is not excluded:
                        await c.wait_for("not-for-c1", "news", since=since)
                await pc.settle()
                self.assertEqual(excluded.count("not-for-c1"), 0, "the excluded socket got the event")
                for c in clients:
                    if c is not excluded:
                        self.assertEqual(c.count("not-for-c1"), 1, c.name)

                # A client event from node 3 reaches nodes 1 and 2, never its sender.
                sender = clients[2]
                await sender.send({"event": "client-typing", "channel": "private-orders", "data": {"who": "c2"}})
                for c in clients:
                    if c is not sender:
                        await c.wait_for("client-typing", "private-orders")
                await pc.settle()
                self.assertEqual(sender.count("client-typing"), 0)
                for c in clients:
                    if c is not sender:
                        self.assertEqual(c.count("client-typing"), 1, c.name)
            finally:
                await pc.close_all(clients)

        wt.run_async(run())


class Presence(unittest.TestCase):
    def setUp(self):
        self.redis, self.cluster = start(prefix="presence:")

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()

    def users(self, port, channel="presence-room"):
        status, body = pc.api_get(port, f"/channels/{channel}/users")
        self.assertEqual(status, 200, body)
        ids = [u["id"] for u in body["users"]]
        self.assertEqual(len(ids), len(set(ids)), f"a user listed twice: {ids}")
        return sorted(ids)

    def test_members_are_the_clusters(self):
        async def run():
            p = self.cluster.ports
            ch = "presence-room"
            alice = await Client(p[0], "alice@node1").connect()
            bob = await Client(p[1], "bob@node2").connect()
            carol = await Client(p[2], "carol@node3").connect()
            alice2 = await Client(p[1], "alice(2)@node2").connect()
            everyone = [alice, bob, carol, alice2]
            try:
                self.assertEqual(pc.members_of(await alice.subscribe(ch, "alice", {"name": "Alice"})),
                                 {"alice": {"name": "Alice"}})
                self.assertEqual(pc.members_of(await bob.subscribe(ch, "bob", {"name": "Bob"})),
                                 {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}})
                got = pc.members_of(await carol.subscribe(ch, "carol", {"name": "Carol"}))
                self.assertEqual(sorted(got), ["alice", "bob", "carol"])
                await alice.wait_for("pusher_internal:member_added", ch, added("bob"))
                await alice.wait_for("pusher_internal:member_added", ch, added("carol"))
                await bob.wait_for("pusher_internal:member_added", ch, added("carol"))

                # The HTTP API of every node answers for the whole cluster.
                for port in p:
                    self.assertEqual(self.users(port), ["alice", "bob", "carol"])
                    status, body = pc.api_get(port, "/channels", {"filter_by_prefix": "presence-",
                                                                  "info": "user_count"})
                    self.assertEqual((status, body), (200, {"channels": {ch: {"user_count": 3}}}))
                    status, body = pc.api_get(port, f"/channels/{ch}", {"info": "user_count"})
                    self.assertEqual((status, body), (200, {"occupied": True, "user_count": 3}))
                # Subscriber counts reach Redis once a heartbeat: wait for them.
                for port in p:
                    wt.wait_until(lambda port=port: pc.api_get(port, f"/channels/{ch}", {
                        "info": "subscription_count"})[1] == {"occupied": True, "subscription_count": 3},
                        f"subscription_count 3 on port {port}", timeout=6)

                # Alice again, on node 2: one member, announced to nobody.
                mark = [len(c.messages) for c in everyone]
                got = pc.members_of(await alice2.subscribe(ch, "alice", {"name": "Alice"}))
                self.assertEqual(sorted(got), ["alice", "bob", "carol"])
                for port in p:
                    self.assertEqual(self.users(port), ["alice", "bob", "carol"])
                # Her first connection leaves: she is still a member (node 2 has her).
                await alice.close()
                await pc.settle(1.0)
                for c, since in zip(everyone, mark):
                    self.assertEqual(c.count("pusher_internal:member_added", ch, added("alice"), since), 0, c.name)
                    self.assertEqual(c.count("pusher_internal:member_removed", ch, since=since), 0, c.name)
                for port in p:
                    self.assertEqual(self.users(port), ["alice", "bob", "carol"])
                # Her last one leaves: gone, told once to each of the others.
                await alice2.unsubscribe(ch)
                for c in (bob, carol):
                    await c.wait_for("pusher_internal:member_removed", ch, removed("alice"))
                await pc.settle()
                for c in (bob, carol):
                    self.assertEqual(c.count("pusher_internal:member_removed", ch, removed("alice")), 1, c.name)
                for port in p:
                    self.assertEqual(self.users(port), ["bob", "carol"])
                # Bob leaves by closing his connection.
                await bob.close()
                await carol.wait_for("pusher_internal:member_removed", ch, removed("bob"))
                await pc.settle()
                self.assertEqual(carol.count("pusher_internal:member_removed", ch, removed("bob")), 1)
                for port in p:
                    self.assertEqual(self.users(port), ["carol"])
                status, body = pc.api_get(p[0], "/channels")
                self.assertEqual((status, sorted(body["channels"])), (200, [ch]))
            finally:
                await pc.close_all(everyone)

        wt.run_async(run())


class NodeCrash(unittest.TestCase):
    def setUp(self):
        self.hooks = pc.WebhookSink()
        self.redis, self.cluster = start(prefix="crash:", apps=pc.app_toml(webhook=self.hooks.url))

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()
        self.hooks.close()

    def test_kill_9_removes_the_nodes_members_once_within_10_s(self):
        async def run():
            p = self.cluster.ports
            ch = "presence-room"
            alice = await Client(p[0], "alice@node1").connect()
            bob = await Client(p[1], "bob@node2").connect()
            dave = await Client(p[2], "dave@node3").connect()
            erin = await Client(p[2], "erin@node3").connect()
            frank3 = await Client(p[2], "frank@node3").connect()
            frank1 = await Client(p[0], "frank@node1").connect()
            clients = [alice, bob, dave, erin, frank3, frank1]
            try:
                for c, user in ((alice, "alice"), (bob, "bob"), (dave, "dave"), (erin, "erin"),
                                (frank3, "frank"), (frank1, "frank")):
                    await c.subscribe(ch, user, {"name": user})
                # A channel only node 3 has: vacated with it.
                await dave.subscribe("private-only-node3")
                for port in p:
                    self.assertEqual(sorted(u["id"] for u in pc.api_get(port, f"/channels/{ch}/users")[1]["users"]),
                                     ["alice", "bob", "dave", "erin", "frank"])
                wt.wait_until(lambda: len(self.hooks.named("channel_occupied", channel="private-only-node3")) == 1,
                              "channel_occupied for private-only-node3")
                mark = [len(c.messages) for c in (alice, bob, frank1)]

                self.cluster.nodes[2].kill()
                killed = time.monotonic()
                for c in (alice, bob, frank1):
                    for user in ("dave", "erin"):
                        m = await c.wait_for("pusher_internal:member_removed", ch, removed(user),
                                             timeout=NODE_TIMEOUT_REQUIREMENT_S + 2)
                        self.assertLessEqual(m["_at"] - killed, NODE_TIMEOUT_REQUIREMENT_S,
                                             f"{c.name}: {user} removed {m['_at'] - killed:.1f} s after the kill")
                # Another heartbeat for a second reaper to do it again, if it would.
                await pc.settle(2.5)
                for c, since in zip((alice, bob, frank1), mark):
                    for user in ("dave", "erin"):
                        self.assertEqual(c.count("pusher_internal:member_removed", ch, removed(user), since), 1,
                                         f"{c.name}: member_removed {user}")
                    # Frank still has node 1: not removed.
                    self.assertEqual(c.count("pusher_internal:member_removed", ch, removed("frank"), since), 0,
                                     c.name)
                for port in p[:2]:
                    self.assertEqual(sorted(u["id"] for u in pc.api_get(port, f"/channels/{ch}/users")[1]["users"]),
                                     ["alice", "bob", "frank"])
                    status, body = pc.api_get(port, "/channels")
                    self.assertEqual((status, sorted(body["channels"])), (200, [ch]))
                for user in ("dave", "erin"):
                    self.assertEqual(len(self.hooks.named("member_removed", channel=ch, user_id=user)), 1, user)
                self.assertEqual(self.hooks.named("member_removed", channel=ch, user_id="frank"), [])
                self.assertEqual(len(self.hooks.named("channel_vacated", channel="private-only-node3")), 1)
                self.assertEqual(self.hooks.named("channel_vacated", channel=ch), [])
                self.assertEqual(self.hooks.bad, [])
            finally:
                await pc.close_all(clients)

        wt.run_async(run())


    def test_restart_with_the_same_node_id_removes_what_the_dead_process_left(self):
        # systemd's Restart= and Supervisor's autorestart bring a killed node
        # back with its node id within a second or two, before the others
        # would reap it: the new process must clear what the old one left.
        async def run():
            p = self.cluster.ports
            ch = "presence-room"
            alice = await Client(p[0], "alice@node1").connect()
            bob = await Client(p[1], "bob@node2").connect()
            frank2 = await Client(p[1], "frank@node2").connect()
            frank1 = await Client(p[0], "frank@node1").connect()
            clients = [alice, bob, frank2, frank1]
            try:
                for c, user in ((alice, "alice"), (bob, "bob"), (frank2, "frank"), (frank1, "frank")):
                    await c.subscribe(ch, user)
                mark = len(alice.messages)
                node = self.cluster.nodes[1]
                node.kill()
                node.start(p[1])
                restarted = time.monotonic()
                await alice.wait_for("pusher_internal:member_removed", ch, removed("bob"), since=mark, timeout=5)
                self.assertLess(time.monotonic() - restarted, 3, "bob removed only by the node timeout")
                await pc.settle(1)
                self.assertEqual(alice.count("pusher_internal:member_removed", ch, since=mark), 1,
                                 "frank, still on node 1, was removed too")
                for port in p:
                    self.assertEqual(sorted(u["id"] for u in pc.api_get(port, f"/channels/{ch}/users")[1]["users"]),
                                     ["alice", "frank"])
                self.assertEqual(len(self.hooks.named("member_removed", channel=ch, user_id="bob")), 1)
                # Bob comes back through the restarted node: announced once.
                bob = await Client(p[1], "bob(again)@node2").connect()
                clients.append(bob)
                self.assertEqual(sorted(pc.members_of(await bob.subscribe(ch, "bob"))), ["alice", "bob", "frank"])
                await alice.wait_for("pusher_internal:member_added", ch, added("bob"), since=mark)
            finally:
                await pc.close_all(clients)

        wt.run_async(run())


class Prefixes(unittest.TestCase):
    def test_two_deployments_on_one_redis_do_not_hear_each_other(self):
        redis = wt.redis_server().start()
        url = f"redis://127.0.0.1:{redis.port}"
        # The same app id, key and secret in both: only the prefix tells them apart.
        blue = pc.Cluster(url, n=2, prefix="blue:", name="blue").start()
        green = pc.Cluster(url, n=2, prefix="green:", first_id=3, name="green").start()

        async def run():
            b = [await Client(port, f"blue@{port}").connect() for port in blue.ports]
            g = [await Client(port, f"green@{port}").connect() for port in green.ports]
            try:
                for i, c in enumerate(b):
                    await c.subscribe("news")
                    await c.subscribe("presence-room", f"blue-{i}")
                for i, c in enumerate(g):
                    await c.subscribe("news")
                    got = pc.members_of(await c.subscribe("presence-room", f"green-{i}"))
                    self.assertEqual(sorted(got), [f"green-{j}" for j in range(i + 1)])
                pc.publish(blue.ports[0], ["news"], "blue-news", {"n": 1})
                pc.publish(green.ports[1], ["news"], "green-news", {"n": 2})
                for c in b:
                    await c.wait_for("blue-news", "news")
                for c in g:
                    await c.wait_for("green-news", "news")
                await pc.settle()
                for c in b:
                    self.assertEqual((c.count("blue-news"), c.count("green-news")), (1, 0), c.name)
                    self.assertEqual(c.count("pusher_internal:member_added", where=lambda m: "green" in
                                             m["data"]["user_id"]), 0)
                for c in g:
                    self.assertEqual((c.count("blue-news"), c.count("green-news")), (0, 1), c.name)
                    self.assertEqual(c.count("pusher_internal:member_added", where=lambda m: "blue" in
                                             m["data"]["user_id"]), 0)
                for port in blue.ports:
                    self.assertEqual(sorted(u["id"] for u in pc.api_get(port, "/channels/presence-room/users")[1]
                                            ["users"]), ["blue-0", "blue-1"])
                for port in green.ports:
                    self.assertEqual(sorted(u["id"] for u in pc.api_get(port, "/channels/presence-room/users")[1]
                                            ["users"]), ["green-0", "green-1"])
            finally:
                await pc.close_all(b + g)

        try:
            wt.run_async(run())
        finally:
            blue.stop()
            green.stop()
            redis.terminate()


class Webhooks(unittest.TestCase):
    def setUp(self):
        self.hooks = pc.WebhookSink()
        self.redis, self.cluster = start(prefix="hooks:", apps=pc.app_toml(webhook=self.hooks.url))

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()
        self.hooks.close()

    def test_fire_once_per_cluster(self):
        hooks = self.hooks

        async def once(name, what, **fields):
            deadline = time.monotonic() + 5
            while not hooks.named(name, **fields):
                self.assertLess(time.monotonic(), deadline, f"no {name} webhook {fields} within 5 s")
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a duplicate from another node would come within this
            self.assertEqual(len(hooks.named(name, **fields)), 1, f"{what}: {hooks.named(name, **fields)}")

        async def run():
            p = self.cluster.ports
            ch, pub = "presence-hooks", "public-hooks"
            u1 = await Client(p[0], "u1@node1").connect()
            u2 = await Client(p[1], "u2@node2").connect()
            u1b = await Client(p[2], "u1(2)@node3").connect()
            clients = [u1, u2, u1b]
            try:
                await u1.subscribe(ch, "u1")
                await once("channel_occupied", "first subscriber", channel=ch)
                await once("member_added", "u1 joins", channel=ch, user_id="u1")
                await u2.subscribe(ch, "u2")
                await once("member_added", "u2 joins", channel=ch, user_id="u2")
                await u1b.subscribe(ch, "u1")
                for c in clients:
                    await c.subscribe(pub)
                await once("channel_occupied", "public channel on three nodes", channel=pub)
                await asyncio.sleep(0.5)
                self.assertEqual(len(hooks.named("channel_occupied", channel=ch)), 1)
                self.assertEqual(len(hooks.named("member_added", channel=ch, user_id="u1")), 1)

                for c in clients:
                    await c.unsubscribe(pub)
                await once("channel_vacated", "public channel left on three nodes", channel=pub)
                await u1.close()
                await asyncio.sleep(0.5)
                self.assertEqual(hooks.named("member_removed", channel=ch, user_id="u1"), [])
                await u2.close()
                await once("member_removed", "u2 leaves", channel=ch, user_id="u2")
                self.assertEqual(hooks.named("channel_vacated", channel=ch), [])
                await u1b.close()
                await once("member_removed", "u1's last connection leaves", channel=ch, user_id="u1")
                await once("channel_vacated", "last subscriber", channel=ch)
                await asyncio.sleep(0.5)
                self.assertEqual(len(hooks.named("channel_occupied", channel=ch)), 1)
                self.assertEqual(hooks.bad, [])
            finally:
                await pc.close_all(clients)

        wt.run_async(run())


if __name__ == "__main__":
    wt.run_tests()
