#!/usr/bin/python3
"""Laravel's Redis broadcaster (BROADCAST_DRIVER=redis) into a two-node
windlass cluster: tests/integration/laravel_broadcast.php, Debian's
php-illuminate-broadcasting and php-illuminate-redis (Laravel 8.83) on
php-redis, PUBLISHes as a Laravel app does; both windlass-server nodes
have `[broker] laravel = true` and the default `laravel_prefix`
("laravel_database_", Laravel's default Redis prefix).

Checked, with Pusher clients on both nodes (tests/support/pusher_client.py):

- an event broadcast to `private-orders.1` and the public `orders` reaches
  every subscriber on both nodes exactly once (each node consumes the
  broadcast itself and does not carry it to the other), with the event
  name as Laravel gives it (a class name with backslashes) and the payload
  as its data;
- with `socket` (what `->toOthers()` adds), that connection — on either
  node — gets nothing and every other one gets it once; the data carries
  "socket" too, as Laravel puts it there;
- a broadcast under another prefix reaches nobody.

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/cluster_laravel_test.py
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
import pusher_client as pc  # noqa: E402
from pusher_client import Client  # noqa: E402

PROGRAMS = wt.require_programs("redis-server", "php")
wt.watchdog(90)

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "laravel_broadcast.php")
EVENT = "App\\Events\\OrderShipped"
CHANNELS = ["private-orders.1", "orders"]


def php_ready():
    """None, or why php cannot run the script here (a skip)."""
    r = subprocess.run([PROGRAMS["php"], "-r", "exit(extension_loaded('redis') && "
                        "stream_resolve_include_path('Illuminate/Broadcasting/autoload.php') && "
                        "stream_resolve_include_path('Illuminate/Redis/autoload.php') ? 0 : 1);"],
                       capture_output=True, timeout=30)
    return None if r.returncode == 0 else "php-redis, php-illuminate-broadcasting or php-illuminate-redis missing"


def broadcast(redis_port, data, socket=None, prefix=None, channels=CHANNELS):
    argv = [PROGRAMS["php"], SCRIPT, "--port", str(redis_port), "--event", EVENT, "--data", data]
    for ch in channels:
        argv += ["--channel", ch]
    if socket:
        argv += ["--socket", socket]
    if prefix:
        argv += ["--prefix", prefix]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"laravel_broadcast.php failed ({r.returncode}):\n{r.stdout}{r.stderr}"


class Laravel(unittest.TestCase):
    def setUp(self):
        why = php_ready()
        if why:
            self.skipTest(why)
        self.redis = wt.redis_server().start()
        self.cluster = pc.Cluster(f"redis://127.0.0.1:{self.redis.port}", n=2, prefix="app1:",
                                  broker_extra=["laravel = true"] * 2).start()

    def tearDown(self):
        self.cluster.stop()
        self.redis.terminate()

    def test_broadcasts_reach_both_nodes_once_and_socket_excludes(self):
        p = self.cluster.ports

        async def run():
            clients = [await Client(p[i // 2], f"c{i}@node{i // 2 + 1}").connect() for i in range(4)]
            try:
                for c in clients:
                    for ch in CHANNELS:
                        await c.subscribe(ch)

                broadcast(self.redis.port, '{"id":1,"total":"9.99","items":[1,2]}')
                for c in clients:
                    for ch in CHANNELS:
                        m = await c.wait_for(EVENT, ch)
                        self.assertEqual(m["data"], {"id": 1, "total": "9.99", "items": [1, 2]}, c.name)
                await pc.settle()
                for c in clients:
                    for ch in CHANNELS:
                        self.assertEqual(c.count(EVENT, ch), 1, f"{c.name} on {ch}")

                # toOthers(), from a client of node 2, then of node 1.
                for n, sender in ((2, clients[2]), (3, clients[1])):
                    marks = [len(c.messages) for c in clients]
                    broadcast(self.redis.port, f'{{"id":{n}}}', socket=sender.socket_id)
                    for c, since in zip(clients, marks):
                        if c is sender:
                            continue
                        for ch in CHANNELS:
                            m = await c.wait_for(EVENT, ch, since=since)
                            self.assertEqual(m["data"], {"id": n, "socket": sender.socket_id}, c.name)
                    await pc.settle()
                    for c, since in zip(clients, marks):
                        for ch in CHANNELS:
                            self.assertEqual(c.count(EVENT, ch, since=since), 0 if c is sender else 1,
                                             f"{c.name} on {ch}, sender {sender.name}")

                marks = [len(c.messages) for c in clients]
                broadcast(self.redis.port, '{"id":4}', prefix="other_database_")
                await pc.settle(1.0)
                for c, since in zip(clients, marks):
                    self.assertEqual(c.count(EVENT, since=since), 0, c.name)
            finally:
                await pc.close_all(clients)

        wt.run_async(run())


if __name__ == "__main__":
    wt.run_tests()
