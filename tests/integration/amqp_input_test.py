#!/usr/bin/python3
"""RabbitMQ as an input: a real rabbitmq-server, a php-amqp publisher
(amqp_publish.php beside this file, publishing what Laravel's
broadcaster would), windlass-server with the demo [[app]] and [broker]
amqp_url, and Pusher-protocol subscribers over Python's `websockets`.

RabbitMQ runs as this test's own node on loopback ports of its own: its
own epmd (ERL_EPMD_PORT, started here in the foreground so nothing is
left behind), RABBITMQ_NODENAME=windlass-test-<pid>@localhost, its data
and logs in a temp dir, no plugins. The Debian package's service is never
used. It is stopped with SIGTERM (RabbitMQ's clean shutdown, what
`rabbitmqctl stop` asks for, without booting a second Erlang VM), then
killed if it lingers.

windlass reaches RabbitMQ through a TCP proxy in this script, which can
refuse connections (the node cut off from the broker: messages pile up
in its durable queue) and cut the open ones mid-stream (acks lost on the
wire: the broker redelivers what windlass already published).

Run by ctest with WINDLASS_SERVER_BIN set; by hand:

    WINDLASS_SERVER_BIN=build/dev/src/server/windlass-server /usr/bin/python3 tests/integration/amqp_input_test.py
"""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import HOST, STEP_TIMEOUT_S, assert_silent, run_async, step  # noqa: E402

PUBLISHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "amqp_publish.php")
RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"  # the scripts themselves: /usr/sbin's wrappers su to the rabbitmq user
EXCHANGE = "windlass"
APP_KEY = "app-key"
BOOT_TIMEOUT_S = 60   # a fresh node takes 8-20 s on a busy machine
CONNECT_TIMEOUT_S = 35  # windlass back on a returned broker, through its backoff (up to 30 s)


# ---------------------------------------------------------------------------
# RabbitMQ


class RabbitMQ:
    """One rabbitmq-server node with its own epmd, ports and directories.
    start() and stop() may be called again: the data directory stays, so
    durable queues and persistent messages survive a restart."""

    def __init__(self):
        self.dir = wt.temp_dir("windlass-rabbitmq-")
        self.port = wt.free_port()
        self.dist_port = wt.free_port()
        self.epmd_port = wt.free_port()
        wt.write_file(self.dir, "rabbitmq.conf",
                      f"listeners.tcp.1 = {HOST}:{self.port}\n"
                      "log.console = true\nlog.console.level = info\nlog.file = false\n")
        wt.write_file(self.dir, "enabled_plugins", "[].\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,  # the Erlang cookie goes here
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": f"windlass-test-{os.getpid()}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": HOST,
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
            # Distribution on loopback only; no busy-waiting schedulers
            # (they take CPU the other processes here need).
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none",
        }
        self.epmd = wt.External([wt.find_program("epmd") or "epmd", "-port", self.epmd_port, "-address", HOST],
                                "epmd", port=self.epmd_port, env=self.env, cwd=self.dir)
        self.server = wt.External([os.path.join(RABBITMQ_BIN, "rabbitmq-server")], "rabbitmq-server",
                                  port=self.port, env=self.env, cwd=self.dir, start_timeout=BOOT_TIMEOUT_S,
                                  stop_timeout=30, expect_exit=None)

    def start(self):
        if not self.epmd.alive():
            self.epmd.start()
        t = time.monotonic()
        self.server.start()
        print(f"rabbitmq-server listening after {time.monotonic() - t:.1f} s", file=sys.stderr, flush=True)
        return self

    def stop(self):
        """SIGTERM (a clean shutdown: persistent messages are on disk),
        then SIGKILL if it is still running after 30 s."""
        if self.server.alive():
            self.server.terminate()

    def close(self):
        self.stop()
        if self.epmd.alive():
            self.epmd.terminate(timeout=5)


def php(*args, timeout=30):
    r = subprocess.run(["php", PUBLISHER, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"amqp_publish.php {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stdout}{r.stderr}")
    return r.stdout.strip()


def publish(rabbit, messages):
    """Publishes `messages` (dicts: key, event, data, socket, or key, raw),
    persistent, and returns once the broker has confirmed them all."""
    path = os.path.join(rabbit.dir, f"batch-{time.monotonic_ns()}.jsonl")
    with open(path, "w") as f:
        for m in messages:
            f.write(json.dumps(m) + "\n")
    assert php("publish", HOST, rabbit.port, EXCHANGE, path) == str(len(messages))


def queue_depth(rabbit, queue):
    return int(php("count", HOST, rabbit.port, queue))


def event(key, name, data, socket_id=None, **extra):
    return {"key": key, "event": name, "data": data, "socket": socket_id, **extra}


# ---------------------------------------------------------------------------
# A proxy between windlass and RabbitMQ that can fail


class Proxy:
    """Relays 127.0.0.1:port to the broker. refuse(): new connections are
    reset at once (the broker unreachable); cut(): the open ones are reset
    in both directions now, whatever is in flight."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = False
        self.lock = threading.Lock()
        self.pairs = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _reset(s):
        """An RST now. SHUT_RD first: a pump thread blocked in recv() on it
        keeps the socket alive past close() until that recv returns."""
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        s.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                refusing = self.refusing
            if refusing:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection((HOST, self.upstream), timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, upstream in pairs:
            self._reset(client)
            self._reset(upstream)
        return len(pairs)

    def refuse(self, on=True):
        with self.lock:
            self.refusing = on
        if on:
            self.cut()

    def close(self):
        self.listener.close()
        self.cut()


# ---------------------------------------------------------------------------
# Pusher subscribers


class Subscriber:
    """A Pusher-protocol client (protocol 7) on the demo app's endpoint."""

    def __init__(self, ws, socket_id):
        self.ws = ws
        self.socket_id = socket_id

    @classmethod
    async def connect(cls, server, *channels):
        ws = await step(websockets.connect(server.url(f"/app/{APP_KEY}?protocol=7"), open_timeout=STEP_TIMEOUT_S,
                                           close_timeout=2, max_queue=None), "connect to the hub")
        hello = json.loads(await step(ws.recv(), "pusher:connection_established"))
        assert hello["event"] == "pusher:connection_established", hello
        sub = cls(ws, json.loads(hello["data"])["socket_id"])
        for c in channels:
            await sub.subscribe(c)
        return sub

    async def subscribe(self, channel):
        await self.ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
        reply = json.loads(await step(self.ws.recv(), f"subscription to {channel}"))
        assert reply["event"] == "pusher_internal:subscription_succeeded" and reply["channel"] == channel, reply

    async def next_event(self, what="an event", timeout=STEP_TIMEOUT_S):
        """The next message that is not a ping: {"event", "channel", "data"}."""
        while True:
            m = json.loads(await step(self.ws.recv(), what, timeout))
            if m["event"] == "pusher:ping":
                await self.ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
                continue
            return m

    async def events(self, n, what="events", timeout=30):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: {len(out)} of {n} arrived within {timeout} s")
            out.append(await self.next_event(what, left))
        return out

    async def close(self):
        await asyncio.gather(step(self.ws.close(), "close"), return_exceptions=True)


# ---------------------------------------------------------------------------
# windlass-server


def config_text(amqp_url, queue, extra=""):
    return "\n".join([
        "[server]", f'host = "{HOST}"', "port = 0", "threads = 2", 'drain_delay = "0s"', 'shutdown_timeout = "2s"', "",
        "[log]", 'level = "info"', "access = false", "",
        "[[app]]", 'id = "app-id"', f'key = "{APP_KEY}"', 'secret = "app-secret"', "",
        "[broker]", f"amqp_url = {wt.toml_string(amqp_url)}", f"amqp_queue = {wt.toml_string(queue)}", extra, "",
    ])


def log_count(server, pattern):
    return len(re.findall(pattern, server.log_text()))


def wait_log(server, pattern, count=1, timeout=CONNECT_TIMEOUT_S):
    wt.wait_until(lambda: log_count(server, pattern) >= count,
                  f"{count} log line(s) matching {pattern!r}\n{server.stderr_text()}", timeout)


def metric(server, name):
    return wt.scrape_metric(server.port, name) or 0


class AmqpInputTest(unittest.TestCase):
    """windlass-server consuming its own queue of a real RabbitMQ."""

    @classmethod
    def setUpClass(cls):
        wt.require_programs("php", "epmd", os.path.join(RABBITMQ_BIN, "rabbitmq-server"))
        r = subprocess.run(["php", "-m"], capture_output=True, text=True)
        if "amqp" not in r.stdout.split():
            print("SKIP: the php amqp extension (php-amqp) is not installed")
            sys.exit(0)
        cls.rabbit = RabbitMQ().start()
        cls.proxy = Proxy(cls.rabbit.port)
        cls.queue = f"windlass.test-{os.getpid()}"
        cls.dir = wt.temp_dir()
        cls.config = wt.write_file(cls.dir, "windlass.toml",
                                   config_text(f"amqp://guest:guest@{HOST}:{cls.proxy.port}/%2f", cls.queue))
        cls.server = wt.windlass_server(cls.config)
        cls.start_server()

    @classmethod
    def start_server(cls):
        cls.server.start()
        wait_log(cls.server, r"amqp: connected to", 1)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server.alive():
                cls.server.stop()
        finally:
            cls.proxy.close()
            cls.rabbit.close()

    def setUp(self):
        self.server.assert_alive("before the test")
        self.assertEqual(metric(self.server, "windlass_amqp_connected"), 1, self.server.stderr_text())

    def tearDown(self):
        self.server.assert_alive()
        self.assertNotIn("ERROR: ThreadSanitizer", self.server.log_text())
        self.assertNotIn("ERROR: AddressSanitizer", self.server.log_text())

    # -- the normal path

    def test_events_reach_subscribers_with_their_name_and_data(self):
        async def body():
            a = await Subscriber.connect(self.server, "orders")
            b = await Subscriber.connect(self.server, "orders")
            other = await Subscriber.connect(self.server, "invoices")
            publish(self.rabbit, [event("orders", "order.shipped", {"id": 1, "to": "Zoë"}),
                                  event("orders", "order.paid", {"id": 2})])
            for sub in (a, b):
                first, second = await sub.events(2)
                self.assertEqual(first["event"], "order.shipped")
                self.assertEqual(first["channel"], "orders")
                # data goes as a JSON string, as Laravel's Pusher driver sends it
                self.assertIsInstance(first["data"], str)
                self.assertEqual(json.loads(first["data"]), {"id": 1, "to": "Zoë"})
                self.assertEqual((second["event"], json.loads(second["data"])), ("order.paid", {"id": 2}))
            await assert_silent(other.ws, "a subscriber of another channel")
            for s in (a, b, other):
                await s.close()
        run_async(body())

    def test_the_socket_in_the_payload_is_left_out(self):
        async def body():
            sender = await Subscriber.connect(self.server, "chat-room")
            other = await Subscriber.connect(self.server, "chat-room")
            publish(self.rabbit, [event("chat-room", "message.posted", {"text": "hi"}, sender.socket_id)])
            got = await other.next_event("the event, at the other subscriber")
            self.assertEqual((got["event"], json.loads(got["data"])), ("message.posted", {"text": "hi"}))
            await assert_silent(sender.ws, "the socket the payload names")
            await sender.close()
            await other.close()
        run_async(body())

    def test_poison_messages_are_rejected_without_requeue_and_the_next_ones_pass(self):
        async def body():
            sub = await Subscriber.connect(self.server, "poison")
            rejected = metric(self.server, "windlass_amqp_messages_rejected_total")
            publish(self.rabbit, [
                {"key": "poison", "raw": "{not json"},
                event("bad channel!", "order.shipped", {"id": 1}),  # not a valid channel name
                {"key": "poison", "raw": json.dumps({"data": {}})},  # no event
                {"key": "poison", "raw": json.dumps({"event": "big", "data": "x" * 70000})},  # over 64 KiB
                event("poison", "after.the.poison", {"ok": True}),
            ])
            got = await sub.next_event("the message after the poison")
            self.assertEqual((got["event"], json.loads(got["data"])), ("after.the.poison", {"ok": True}))
            wt.wait_until(lambda: metric(self.server, "windlass_amqp_messages_rejected_total") == rejected + 4,
                          "4 more rejected messages", 10)
            log = self.server.log_text()
            self.assertIn('amqp: rejected a message with routing key "poison": payload is not JSON', log)
            self.assertRegex(log, r'amqp: rejected a message with routing key "bad channel!": channel "bad channel!"')
            self.assertRegex(log, r"amqp: rejected a message of \d+ bytes with routing key \"poison\": larger than")
            # Rejected, not requeued: nothing comes back, the queue is empty.
            await assert_silent(sub.ws, "the subscriber, after the poison")
            self.assertEqual(metric(self.server, "windlass_amqp_messages_rejected_total"), rejected + 4)
            self.assertEqual(log_count(self.server, r"payload is not JSON"), 1, "a poison message came back")
            self.assertEqual(queue_depth(self.rabbit, self.queue), 0)
            await sub.close()
        run_async(body())

    def test_metrics_and_the_connect_line(self):
        self.assertRegex(self.server.log_text(),
                         rf'amqp: connected to amqp://guest@{HOST}:{self.proxy.port}/%2F: consuming queue '
                         rf'"{self.queue}" bound to topic exchange "{EXCHANGE}" with "#" \(prefetch 100\)')
        self.assertNotIn("guest:guest", self.server.log_text(), "the password must not be logged")
        self.assertEqual(wt.scrape_metric(self.server.port, "windlass_amqp_connected", {"queue": self.queue}), 1)
        since = metric(self.server, "windlass_amqp_state_since_seconds")
        self.assertLess(abs(since - time.time()), 600)
        before = metric(self.server, "windlass_amqp_messages_delivered_total")
        publish(self.rabbit, [event("metrics-only", "counted", {})])
        wt.wait_until(lambda: metric(self.server, "windlass_amqp_messages_delivered_total") == before + 1,
                      "delivered_total counting the message", 10)
        self.assertEqual(metric(self.server, "windlass_amqp_messages_in_flight"), 0)

    # -- failures

    def test_messages_queued_while_windlass_is_stopped_are_delivered_after_it_starts(self):
        async def body():
            self.server.stop()  # SIGTERM: exit 0, the queue stays
            self.assertIn(f'amqp: stopped consuming queue "{self.queue}"', self.server.log_text())
            self.proxy.refuse()  # and while it starts, the broker is out of reach
            publish(self.rabbit, [event("backlog", "queued", {"n": n}) for n in range(40)])
            self.assertEqual(queue_depth(self.rabbit, self.queue), 40)
            self.server.start()
            wait_log(self.server, r"amqp: cannot connect to ")
            sub = await Subscriber.connect(self.server, "backlog")
            self.proxy.refuse(False)
            got = await sub.events(40, "the backlog")
            self.assertEqual([json.loads(e["data"])["n"] for e in got], list(range(40)))
            await assert_silent(sub.ws, "the subscriber, after the backlog")
            self.assertEqual(queue_depth(self.rabbit, self.queue), 0)
            self.assertRegex(self.server.log_text(), r"amqp: connected to .* consuming queue")
            await sub.close()
        try:
            run_async(body())
        finally:
            self.proxy.refuse(False)
            if not self.server.alive():
                self.start_server()

    def test_a_cut_connection_loses_nothing_and_repeats_nothing(self):
        n = 3000

        async def body():
            sub = await Subscriber.connect(self.server, "stream")
            reconnects = metric(self.server, "windlass_amqp_reconnects_total")
            lines = log_count(self.server, r"amqp: reconnected to ")
            publisher = threading.Thread(
                target=publish, args=(self.rabbit, [event("stream", "tick", {"seq": i}) for i in range(n)]))
            publisher.start()
            seen = []
            cuts = 0
            # Cut the connection twice while the stream flows: acks on the
            # wire are lost, and the broker redelivers what windlass took.
            for cut_at in (n // 5, n // 2):
                while len(seen) < cut_at:
                    seen.append(json.loads((await sub.next_event("the stream"))["data"])["seq"])
                cuts += self.proxy.cut()
                wait_log(self.server, r"amqp: reconnected to ", lines + cuts)
            while len(seen) < n:
                seen.append(json.loads((await sub.next_event("the stream", timeout=20))["data"])["seq"])
            publisher.join(30)
            await assert_silent(sub.ws, "the subscriber, after the stream", 1.0)
            self.assertEqual(cuts, 2)
            dupes = sorted({s for s in seen if seen.count(s) > 1})
            self.assertEqual(dupes, [], "published twice")
            self.assertEqual(sorted(seen), list(range(n)), "lost")
            self.assertEqual(metric(self.server, "windlass_amqp_reconnects_total"), reconnects + 2)
            self.assertEqual(queue_depth(self.rabbit, self.queue), 0)
            print(f"redeliveries skipped so far: {metric(self.server, 'windlass_amqp_redeliveries_skipped_total')}",
                  file=sys.stderr)
            await sub.close()
        run_async(body(), timeout=120)
        self.assertRegex(self.server.log_text(), r"amqp: disconnected from \S+: .*; reconnecting in \d")

    def test_a_deleted_queue_is_declared_again(self):
        async def body():
            sub = await Subscriber.connect(self.server, "redeclared")
            php("delete-queue", HOST, self.rabbit.port, self.queue)
            wait_log(self.server, rf'amqp: disconnected from \S+: the broker cancelled the consumer \(was the queue '
                                  rf'"{re.escape(self.queue)}" deleted\?\)')
            wt.wait_until(lambda: metric(self.server, "windlass_amqp_connected") == 1, "windlass back",
                          CONNECT_TIMEOUT_S)
            publish(self.rabbit, [event("redeclared", "again", {})])
            self.assertEqual((await sub.next_event("the event on the new queue"))["event"], "again")
            await sub.close()
        run_async(body())

    def test_an_exchange_of_another_type_is_a_clear_error_retried(self):
        php("declare-exchange", HOST, self.rabbit.port, "windlass-fanout", "fanout")
        d = wt.temp_dir()
        config = wt.write_file(d, "windlass.toml", config_text(f"amqp://guest:guest@{HOST}:{self.rabbit.port}/%2f",
                                                               f"windlass.wrong-{os.getpid()}",
                                                               'amqp_exchange = "windlass-fanout"'))
        other = wt.windlass_server(config, name="windlass-server-wrong-exchange").start()
        try:
            wait_log(other, r"amqp: cannot connect to \S+: declaring the exchange: the broker closed the channel: "
                            r"406 PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'windlass-fanout'.*; "
                            r"retrying in \d", 2)
            self.assertEqual(metric(other, "windlass_amqp_connected"), 0)
            self.assertGreaterEqual(metric(other, "windlass_amqp_connect_failures_total"), 2)
            other.assert_alive()
        finally:
            other.stop()

    def test_a_rabbitmq_restart_delivers_what_was_queued_durably_and_nothing_twice(self):
        async def body():
            sub = await Subscriber.connect(self.server, "restart")
            publish(self.rabbit, [event("restart", "before", {"n": n}) for n in range(5)])
            got = await sub.events(5, "the events before the restart")
            self.assertEqual([e["event"] for e in got], ["before"] * 5)
            await sub.close()

            # Published while windlass does not consume; then the broker
            # restarts with them on disk.
            self.server.stop()
            publish(self.rabbit, [event("restart", "during", {"n": n}) for n in range(20)])
            self.rabbit.stop()
            self.rabbit.start()
            self.assertEqual(queue_depth(self.rabbit, self.queue), 20, "the persistent messages survived")
            self.proxy.refuse()  # until a subscriber is there to see them
            self.server.start()
            wait_log(self.server, r"amqp: cannot connect to ")
            sub = await Subscriber.connect(self.server, "restart")
            self.proxy.refuse(False)
            got = await sub.events(20, "the events queued across the restart", CONNECT_TIMEOUT_S)
            self.assertEqual([(e["event"], json.loads(e["data"])["n"]) for e in got],
                             [("during", n) for n in range(20)])
            await assert_silent(sub.ws, "the subscriber: nothing twice", 1.0)

            # A broker that goes away under a live connection, and comes back.
            self.rabbit.stop()
            wait_log(self.server, r"amqp: disconnected from \S+: the broker closed the connection: 320 "
                                  r"CONNECTION_FORCED")
            self.assertEqual(metric(self.server, "windlass_amqp_connected"), 0)
            self.rabbit.start()
            wait_log(self.server, r"amqp: reconnected to ", 1, CONNECT_TIMEOUT_S)
            self.assertRegex(self.server.log_text(),
                             r"amqp: reconnected to amqp://guest@\S+ after \d+(\.\d)?m?s \(\d+ failed attempts?\): "
                             rf'consuming queue "{self.queue}" again')
            publish(self.rabbit, [event("restart", "after", {"n": 0})])
            got = await sub.next_event("the event after the second restart")
            self.assertEqual(got["event"], "after")
            await assert_silent(sub.ws, "the subscriber: nothing twice", 1.0)
            self.assertEqual(metric(self.server, "windlass_amqp_reconnects_total"), 1)
            await sub.close()
        try:
            run_async(body(), timeout=150)
        finally:
            self.proxy.refuse(False)
            if not self.rabbit.server.alive():
                self.rabbit.start()
            if not self.server.alive():
                self.start_server()
            wt.wait_until(lambda: metric(self.server, "windlass_amqp_connected") == 1, "windlass reconnected",
                          CONNECT_TIMEOUT_S)


class AmqpConfigTest(unittest.TestCase):
    """[broker]'s keys and WINDLASS_AMQP_URL, through --check-config: no broker needed."""

    def check(self, text, **env):
        d = wt.temp_dir()
        path = wt.write_file(d, "windlass.toml", text)
        r = subprocess.run([wt.server_binary(), "--config", path, "--check-config"], capture_output=True, text=True,
                           timeout=30, env=wt.server_env(**env))
        return r.returncode, (r.stdout + r.stderr).strip()

    def test_the_summary_names_the_broker_without_its_password(self):
        code, out = self.check(config_text("amqp://app:hunter2@127.0.0.1:5673/%2f", "windlass.web-1"))
        self.assertEqual(code, 0, out)
        self.assertIn("amqp amqp://app@127.0.0.1:5673/%2F exchange windlass queue windlass.web-1 -> app app-id", out)
        self.assertNotIn("hunter2", out)

    def test_the_environment_sets_the_url_and_overrides_the_file(self):
        text = config_text("amqp://a:b@127.0.0.1:1/%2f", "q").replace('amqp_url = "amqp://a:b@127.0.0.1:1/%2f"', "")
        code, out = self.check(text)
        self.assertEqual(code, 0, out)
        self.assertNotIn("amqp amqp://", out, "no URL: no input")
        code, out = self.check(text, WINDLASS_AMQP_URL="amqp://env:s3cret@10.0.0.5/vh")
        self.assertEqual(code, 0, out)
        self.assertIn("amqp amqp://env@10.0.0.5:5672/vh", out)
        self.assertNotIn("s3cret", out)
        code, out = self.check(text, WINDLASS_AMQP_URL="amqps://env:s3cret@10.0.0.5/vh")
        self.assertEqual(code, 1)
        self.assertIn("WINDLASS_AMQP_URL: amqps:// (TLS) is not supported", out)
        self.assertNotIn("s3cret", out)

    def test_mistakes_are_named_with_their_key(self):
        base = config_text("amqp://127.0.0.1/%2f", "q")
        cases = [
            (base.replace("amqp://127.0.0.1/%2f", "amqp://u:pw@127.0.0.1/"), r"broker\.amqp_url: empty vhost"),
            (base.replace("amqp://127.0.0.1/%2f", "rabbit:5672"), r"broker\.amqp_url: not an AMQP URL"),
            (base.replace('amqp_queue = "q"', 'amqp_queue = "amq.mine"'), r'broker\.amqp_queue: "amq\.mine" starts'),
            (base + 'amqp_exchange = ""\n', r"broker\.amqp_exchange: \"\" must not be empty"),
            (base + "amqp_prefetch = 0\n", r"broker\.amqp_prefetch: 0 is out of range \(1 to 65535\)"),
            (base + 'amqp_app = "app-di"\n', r"broker\.amqp_app: \"app-di\" is not the id of an \[\[app\]\] "
                                             r"\(did you mean 'app-id'\?\)"),
            (base + "amqp_prefech = 5\n", r"broker\.amqp_prefech: unknown key \(did you mean 'amqp_prefetch'\?\)"),
            (base + '[[app]]\nid = "two"\nkey = "k2"\nsecret = "s2"\n',
             r'broker\.amqp_url: there are 2 \[\[app\]\]s \("app-id", "two"\): name the one'),
            ("\n".join(line for line in base.splitlines() if not line.startswith(("id =", "key =", "secret =", "[[app]]"))),
             r"broker\.amqp_url: RabbitMQ messages are published to a channels app, and no \[\[app\]\]"),
        ]
        for text, pattern in cases:
            with self.subTest(pattern=pattern):
                code, out = self.check(text)
                self.assertEqual(code, 1, out)
                self.assertRegex(out, pattern)
                self.assertNotIn("pw@", out)

    def test_two_apps_and_amqp_app_is_fine(self):
        text = config_text("amqp://127.0.0.1/%2f", "q", 'amqp_app = "two"') + \
            '[[app]]\nid = "two"\nkey = "k2"\nsecret = "s2"\n'
        code, out = self.check(text)
        self.assertEqual(code, 0, out)
        self.assertIn("-> app two", out)


if __name__ == "__main__":
    wt.watchdog(280)
    wt.run_tests()
