#!/usr/bin/python3
"""deploy/cluster/ as shipped: redis-server with redis.conf, three
windlass-server nodes from one windlass.toml under a real supervisord with
the Supervisor group of supervisor.conf, nginx with nginx.conf in front;
and windlass@.service through `systemd-analyze verify`.

The files are rendered into a temporary folder, changing only what ties
them to a real host: ports (Redis's, nginx's listen, the nodes' 808N
becomes PPPPN for a free PPPP1-PPPP3), absolute paths (the binary, the
config, the secret file, log files) and Supervisor's `user=` (the test
may not have that account). Everything else is the file as shipped, and
each substitution must find its line, so a file that changes shape fails
here instead of going untested.

Checked:
- the Pusher clients (tests/support/pusher_client.py, reconnecting as
  pusher-js does: at once, then with backoff) connect through nginx and
  all land on one node (sticky: `hash $remote_addr consistent`); the HTTP
  API through nginx reaches them once;
- kill -9 of that node: every client is connected again through nginx to
  a live node, subscribed again, and receives a publish within 5 s;
- presence after that: no ghost (a member whose only connection was on
  the killed node, and who did not come back, is removed — told once to
  an observer on another node) and no duplicate (each user once in
  /users on every node, and in a new subscriber's list); an observer
  sees no member leave without coming back;
- Supervisor restarts the killed node with its node id; once back, it
  answers with the same members (it cleared what its previous process left).

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/cluster_deploy_test.py
"""

import os
import random
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
import pusher_client as pc  # noqa: E402
from pusher_client import Client  # noqa: E402

PROGRAMS = wt.require_programs("redis-server", "nginx", "supervisord", "supervisorctl")
wt.watchdog(120)

CLUSTER_DIR = os.path.join(wt.DEPLOY_DIR, "cluster")
APP = {"app_id": "my-app", "key": "my-app-key", "secret": "a-secret-for-the-test"}
PREFIX = "myapp:"
RECONNECTED_WITHIN_S = 5
REAPED_WITHIN_S = 10
CH = "presence-room"


def read(name):
    with open(os.path.join(CLUSTER_DIR, name)) as f:
        return f.read()


def substitute(text, pattern, repl, count, what):
    new, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == count, f"expected {count} {what} in the shipped file, found {n}: did the file change shape?"
    return new


def node_port_prefix():
    """PPPP such that PPPP1, PPPP2 and PPPP3 are free ports."""
    for _ in range(200):
        prefix = random.randint(2000, 6000)
        ports = [prefix * 10 + i for i in (1, 2, 3)]
        if all(not wt.port_open(p) and _bindable(p) for p in ports):
            return prefix, ports
    raise AssertionError("no three free ports PPPP1-PPPP3")


def _bindable(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind((wt.HOST, port))
            return True
        except OSError:
            return False


class Stack:
    def __init__(self):
        self.dir = wt.temp_dir("windlass-cluster-deploy-")
        os.chmod(self.dir, 0o755)  # nginx's worker runs unprivileged when the master is root
        d = self.dir
        self.redis_port = wt.free_port()
        prefix, self.node_ports = node_port_prefix()
        self.nginx_port = wt.free_port()

        redis_conf = read("redis.conf")
        redis_conf = substitute(redis_conf, r"^port 6379$", f"port {self.redis_port}", 1, "port 6379")
        redis_conf = substitute(redis_conf, r"^bind 127\.0\.0\.1 -::1$", "bind 127.0.0.1", 1, "bind")
        redis_conf += f"\ndir {d}\n"
        wt.write_file(d, "redis.conf", redis_conf)

        toml = read("windlass.toml")
        toml = substitute(toml, r'^redis_url = "redis://127\.0\.0\.1:6379"$',
                          f'redis_url = "redis://127.0.0.1:{self.redis_port}"', 1, "redis_url")
        toml = substitute(toml, r'^secret_file = "/etc/windlass/app\.secret"', 'secret_file = "app.secret"', 1,
                          "secret_file")
        wt.write_file(d, "app.secret", APP["secret"] + "\n")
        self.config = wt.write_file(d, "cluster.toml", toml)

        sup = read("supervisor.conf")
        sup = substitute(sup, r"^command=/usr/bin/windlass-server --config /etc/windlass/cluster\.toml$",
                         f"command={wt.server_binary()} --config {self.config}", 1, "command")
        sup = substitute(sup, r'WINDLASS_PORT="808%\(process_num\)d"', f'WINDLASS_PORT="{prefix}%(process_num)d"',
                         1, "WINDLASS_PORT")
        sup = substitute(sup, r"^user=windlass\n", "", 1, "user=")
        sup = substitute(sup, r"/var/log/supervisor/", f"{d}/", 2, "log paths")
        sock = os.path.join(d, "supervisor.sock")
        self.supervisor_conf = wt.write_file(d, "supervisord.conf", f"""[supervisord]
nodaemon=true
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}
minfds=4096

[unix_http_server]
file={sock}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sock}

{sup}""")

        ngx = read("nginx.conf")
        servers = iter(self.node_ports)
        ngx = substitute(ngx, r"^(\s*)server 127\.0\.0\.1:808[123]( max_fails=0);$",
                         lambda m: f"{m.group(1)}server 127.0.0.1:{next(servers)}{m.group(2)};", 3, "upstream servers")
        ngx = substitute(ngx, r"^\s*listen 80;$", f"    listen 127.0.0.1:{self.nginx_port};", 1, "listen 80")
        ngx = substitute(ngx, r"^\s*listen \[::\]:80;\n", "", 1, "listen [::]:80")
        wt.write_file(d, "windlass-cluster.conf", ngx)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, "temp", sub), exist_ok=True)
        self.nginx_conf = wt.write_file(d, "nginx.conf", f"""
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/temp/client_body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    include {d}/windlass-cluster.conf;
}}
""")

        self.redis = wt.External([PROGRAMS["redis-server"], os.path.join(d, "redis.conf")], "redis-server",
                                 port=self.redis_port,
                                 ready=lambda: pc.redis_command(self.redis_port, "PING") == "PONG").start()
        self.supervisord = wt.supervisord(self.supervisor_conf, env=wt.server_env()).start()
        for i, port in enumerate(self.node_ports, 1):
            self.wait_node(i, port)
        self.nginx = wt.nginx(self.nginx_conf, d, port=self.nginx_port,
                              ready=lambda: wt.http_status(self.nginx_port, "/readyz") == 200).start()

    def wait_node(self, node_id, port, timeout=wt.START_TIMEOUT_S):
        wt.wait_until(lambda: wt.http_status(port, "/readyz") == 200, f"node {node_id} ready on {port}"
                      f"\n{self.status()}", timeout=timeout)
        wt.wait_until(lambda: pc.redis_command(self.redis_port, "EXISTS", f"{PREFIX}node:{node_id}:alive") == 1,
                      f"node {node_id} registered in Redis", timeout=timeout)

    def status(self):
        return wt.supervisorctl(self.supervisor_conf, "status")[1]

    def pid_of(self, node_id):
        code, out = wt.supervisorctl(self.supervisor_conf, "pid", f"windlass:windlass-node-{node_id}")
        assert code == 0 and out.isdigit(), f"supervisorctl pid: {code} {out}"
        return int(out)

    def close(self):
        for p in (self.nginx, self.supervisord, self.redis):
            p.kill()


def users(port):
    status, body = pc.api_get(port, f"/channels/{CH}/users", **APP)
    assert status == 200, (status, body)
    ids = [u["id"] for u in body["users"]]
    assert len(ids) == len(set(ids)), f"a member listed twice on port {port}: {ids}"
    return sorted(ids)


class ClusterBehindNginx(unittest.TestCase):
    def setUp(self):
        self.stack = Stack()

    def tearDown(self):
        self.stack.close()

    def test_kill_9_the_node_holding_the_clients(self):
        s = self.stack
        key, secret = APP["key"], APP["secret"]

        async def run():
            members = [Client(s.nginx_port, f"u{i}", key, secret, reconnect=True) for i in (1, 2, 3)]
            quitter = Client(s.nginx_port, "quitter", key, secret)
            for i, c in enumerate(members + [quitter]):
                await c.connect()
                await c.subscribe("news")
                await c.subscribe(CH, c.name)
            nodes = {c.socket_id.split(".")[0] for c in members + [quitter]}
            self.assertEqual(len(nodes), 1, f"clients from one address spread over nodes {nodes}: not sticky")
            held = int(nodes.pop())
            other = next(i for i in (1, 2, 3) if i != held)
            observer = await Client(s.node_ports[other - 1], f"observer@node{other}", key, secret).connect()
            await observer.subscribe(CH, "observer")
            everyone = members + [quitter, observer]
            try:
                pc.publish(s.nginx_port, ["news"], "before", {}, **APP)
                for c in members + [quitter]:
                    await c.wait_for("before", "news")
                await pc.settle()
                for c in members + [quitter]:
                    self.assertEqual(c.count("before"), 1, c.name)
                self.assertEqual(users(s.nginx_port), ["observer", "quitter", "u1", "u2", "u3"])

                mark = len(observer.messages)
                os.kill(s.pid_of(held), signal.SIGKILL)
                killed = time.monotonic()
                for c in members:
                    for ch in ("news", CH):
                        await c.wait_for("pusher_internal:subscription_succeeded", ch,
                                         lambda m: m["_conn"] == 2, timeout=RECONNECTED_WITHIN_S,
                                         what=f"a subscription to {ch} after reconnecting")
                    self.assertNotEqual(c.socket_id.split(".")[0], str(held))
                n = 0
                while not all(c.count("after", where=lambda m: m["_conn"] == 2) for c in members):
                    n += 1
                    pc.publish(s.nginx_port, ["news"], "after", {"n": n}, **APP)
                    await pc.settle(0.2)
                    self.assertLess(time.monotonic() - killed, RECONNECTED_WITHIN_S,
                                    "reconnected clients not receiving: "
                                    + ", ".join(c.name for c in members if not c.count("after")))
                print(f"\nevery client back and receiving {time.monotonic() - killed:.2f} s after the kill",
                      file=sys.stderr)

                await observer.wait_for("pusher_internal:member_removed", CH,
                                        lambda m: m["data"]["user_id"] == "quitter", since=mark,
                                        timeout=REAPED_WITHIN_S)
                self.assertLessEqual(time.monotonic() - killed, REAPED_WITHIN_S)
                want = ["observer", "u1", "u2", "u3"]
                for port in [s.nginx_port] + [p for i, p in enumerate(s.node_ports, 1) if i != held]:
                    self.assertEqual(users(port), want, f"port {port}")
                # Supervisor brings the node back with its id; it knows no ghost either.
                s.wait_node(held, s.node_ports[held - 1], timeout=10)
                late = await Client(s.node_ports[held - 1], f"late@node{held}", key, secret).connect()
                everyone.append(late)
                self.assertEqual(sorted(pc.members_of(await late.subscribe(CH, "late"))), sorted(want + ["late"]))
                await pc.settle(1)
                self.assertEqual(users(s.node_ports[held - 1]), sorted(want + ["late"]))
                removed_q = observer.count("pusher_internal:member_removed", CH,
                                           lambda m: m["data"]["user_id"] == "quitter", since=mark)
                self.assertEqual(removed_q, 1, "member_removed quitter")
                churn = []
                for c in members:
                    gone = observer.count("pusher_internal:member_removed", CH,
                                          lambda m, u=c.name: m["data"]["user_id"] == u, since=mark)
                    back = observer.count("pusher_internal:member_added", CH,
                                          lambda m, u=c.name: m["data"]["user_id"] == u, since=mark)
                    self.assertEqual(gone, back, f"{c.name}: removed {gone} times, added back {back} times")
                    churn += [c.name] * gone
                if churn:
                    print(f"members told gone and back while reconnecting: {churn}", file=sys.stderr)
            finally:
                await pc.close_all(everyone)

        wt.run_async(run(), timeout=60)


class Files(unittest.TestCase):
    def test_the_config_checks(self):
        d = wt.temp_dir()
        toml = substitute(read("windlass.toml"), r'^secret_file = "/etc/windlass/app\.secret"',
                          'secret_file = "app.secret"', 1, "secret_file")
        wt.write_file(d, "app.secret", "s\n")
        conf = wt.write_file(d, "cluster.toml", toml)
        r = subprocess.run([wt.server_binary(), "--config", conf, "--check-config"], capture_output=True, text=True,
                           timeout=30, env=wt.server_env(WINDLASS_NODE_ID="2", WINDLASS_PORT="8082"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("listen 127.0.0.1:8082", r.stdout)
        self.assertIn("redis redis://127.0.0.1:6379", r.stdout)

    def test_the_template_unit_verifies(self):
        analyze = wt.find_program("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze not installed")
        d = wt.temp_dir()
        unit = substitute(read("windlass@.service"), r"/usr/bin/windlass-server", wt.server_binary(), 2,
                          "ExecStartPre/ExecStart")
        self.assertIn("Environment=WINDLASS_NODE_ID=%i", unit)
        path = wt.write_file(d, "windlass@2.service", unit)
        r = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"systemd-analyze verify failed:\n{r.stdout}{r.stderr}")
        self.assertEqual((r.stdout + r.stderr).strip(), "", "systemd-analyze verify warned")


if __name__ == "__main__":
    wt.run_tests()
