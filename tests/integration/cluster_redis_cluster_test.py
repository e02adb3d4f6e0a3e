#!/usr/bin/python3
"""Two windlass-server nodes on a real Redis Cluster: three masters
(redis-server --cluster-enabled yes on loopback ports, joined by
`redis-cli --cluster create ... --cluster-replicas 0`), no replicas.

Checked, with Pusher clients on both nodes (tests/support/pusher_client.py):

- the nodes take the cluster URL (redis-cluster://a,b: two of the three
  seeds; the third master is found from the slot map);
- publishes through either node's HTTP API reach every subscriber on both
  nodes exactly once, on channels whose slots are spread over all three
  masters, and each channel is a *shard* channel on the master that owns
  its slot (PUBSUB SHARDCHANNELS there): sharded pub/sub, not PUBLISH
  broadcast to every master;
- presence across the nodes: the member list, member_added and
  member_removed once, the HTTP API's /users; the keys of a channel's
  state share one hash slot (they are touched by one script);
- kill -9 of a node: its members are removed within 10 s (the reaper's
  script runs on the shard of each channel).

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/cluster_redis_cluster_test.py
"""

import os
import random
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
import pusher_client as pc  # noqa: E402
from pusher_client import Client  # noqa: E402

PROGRAMS = wt.require_programs("redis-server", "redis-cli")
wt.watchdog(120)

PREFIX = "rc:"
CHANNELS = [f"news-{i}" for i in range(12)]


def crc16(data):
    """CRC16-CCITT (XMODEM), the Cluster's key hash."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """The hash slot of `key`, {hash tags} included."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc16(key.encode()) % 16384


def free_cluster_port():
    """A port free on 127.0.0.1 whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        ok = True
        for p in (port, port + 10000):
            with socket.socket() as s:
                try:
                    s.bind((wt.HOST, p))
                except OSError:
                    ok = False
        if ok:
            return port
    raise AssertionError("no free pair of ports for a Redis Cluster node")


def redis_cli(*args, timeout=30):
    r = subprocess.run([PROGRAMS["redis-cli"], *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError(f"redis-cli {' '.join(map(str, args))} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


class RedisCluster(unittest.TestCase):
    def setUp(self):
        self.ports = [free_cluster_port() for _ in range(3)]
        self.masters = []
        for port in self.ports:
            d = wt.temp_dir("windlass-redis-cluster-")
            self.masters.append(wt.redis_server(port, "--cluster-enabled", "yes", "--cluster-config-file",
                                                os.path.join(d, "nodes.conf"), "--cluster-node-timeout", "5000",
                                                directory=d).start())
        redis_cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "0",
                  "--cluster-yes")
        for port in self.ports:
            wt.wait_until(lambda port=port: "cluster_state:ok" in redis_cli("-p", port, "cluster", "info"),
                          f"Redis Cluster node {port} ok", timeout=15)
        # Which master owns which slot range, from the cluster itself.
        self.owner = []  # (first slot, last slot, port)
        for start, end, master, *_ in pc.redis_command(self.ports[0], "CLUSTER", "SLOTS"):
            self.owner.append((start, end, int(master[1])))
        url = f"redis-cluster://127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"
        self.cluster = pc.Cluster(url, n=2, prefix=PREFIX).start()

    def tearDown(self):
        self.cluster.stop()
        for m in self.masters:
            m.terminate()

    def master_of(self, key):
        slot = key_slot(key)
        for start, end, port in self.owner:
            if start <= slot <= end:
                return port
        raise AssertionError(f"slot {slot} has no master")

    def test_delivery_and_presence_over_sharded_pubsub(self):
        p = self.cluster.ports
        channels = {ch: self.master_of(f"{PREFIX}{pc.APP_ID}:{ch}") for ch in CHANNELS}
        self.assertEqual(len(set(channels.values())), 3, f"channels not spread over the masters: {channels}")

        async def run():
            clients = [await Client(p[i % 2], f"c{i}@node{i % 2 + 1}").connect() for i in range(4)]
            try:
                for c in clients:
                    for ch in CHANNELS:
                        await c.subscribe(ch)
                # Each channel is a shard channel of its own master, and of no other.
                for ch, port in channels.items():
                    name = f"{PREFIX}{pc.APP_ID}:{ch}"
                    wt.wait_until(lambda: name in pc.redis_command(port, "PUBSUB", "SHARDCHANNELS"),
                                  f"{name} a shard channel on {port}", timeout=5)
                    for other in self.ports:
                        if other != port:
                            self.assertNotIn(name, pc.redis_command(other, "PUBSUB", "SHARDCHANNELS"))
                    self.assertNotIn(name, pc.redis_command(port, "PUBSUB", "CHANNELS"))
                for i, ch in enumerate(CHANNELS):
                    pc.publish(p[i % 2], [ch], "update", {"ch": ch})
                for c in clients:
                    for ch in CHANNELS:
                        await c.wait_for("update", ch)
                await pc.settle()
                for c in clients:
                    for ch in CHANNELS:
                        self.assertEqual(c.count("update", ch), 1, f"{c.name} on {ch}")
                # socket_id exclusion across the nodes.
                pc.publish(p[0], [CHANNELS[0]], "not-for-c1", {}, socket_id=clients[1].socket_id)
                for c in (clients[0], clients[2], clients[3]):
                    await c.wait_for("not-for-c1")
                await pc.settle()
                self.assertEqual(clients[1].count("not-for-c1"), 0)

                # Presence, over the shards.
                ch = "presence-room"
                alice, bob = await Client(p[0], "alice@node1").connect(), await Client(p[1], "bob@node2").connect()
                carol = await Client(p[1], "carol@node2").connect()
                clients += [alice, bob, carol]
                await alice.subscribe(ch, "alice")
                self.assertEqual(sorted(pc.members_of(await bob.subscribe(ch, "bob"))), ["alice", "bob"])
                await alice.wait_for("pusher_internal:member_added", ch)
                for port in p:
                    status, body = pc.api_get(port, f"/channels/{ch}/users")
                    self.assertEqual((status, sorted(u["id"] for u in body["users"])), (200, ["alice", "bob"]))
                    status, body = pc.api_get(port, "/channels", {"filter_by_prefix": "presence-",
                                                                  "info": "user_count"})
                    self.assertEqual((status, body), (200, {"channels": {ch: {"user_count": 2}}}))
                # One channel's keys, one slot.
                presence_key = f"{PREFIX}{{{pc.APP_ID}:{ch}}}:presence"
                subs_key = f"{PREFIX}{{{pc.APP_ID}:{ch}}}:subs"
                self.assertEqual(key_slot(presence_key), key_slot(subs_key))
                self.assertEqual(pc.redis_command(self.ports[0], "HLEN", presence_key), 2)
                await carol.subscribe(ch, "carol")
                await alice.wait_for("pusher_internal:member_added", ch, lambda m: m["data"]["user_id"] == "carol")

                # Node 2 dies: bob and carol go, alice is told once each, within 10 s.
                mark = len(alice.messages)
                self.cluster.nodes[1].kill()
                killed = time.monotonic()
                for user in ("bob", "carol"):
                    await alice.wait_for("pusher_internal:member_removed", ch,
                                         lambda m, u=user: m["data"]["user_id"] == u, since=mark, timeout=12)
                self.assertLessEqual(time.monotonic() - killed, 10)
                await pc.settle(1)
                self.assertEqual(alice.count("pusher_internal:member_removed", ch, since=mark), 2)
                status, body = pc.api_get(p[0], f"/channels/{ch}/users")
                self.assertEqual((status, body), (200, {"users": [{"id": "alice"}]}))
            finally:
                await pc.close_all(clients)

        wt.run_async(run())


if __name__ == "__main__":
    wt.run_tests()
