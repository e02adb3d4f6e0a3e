#!/usr/bin/python3
"""deploy/systemd/windlass.service, checked with systemd's own tools, and
the sd_notify protocol spoken by the real windlass-server.

systemd is not PID 1 here (nor in most CI containers), so the unit is not
started. What is checked instead:

- `systemd-analyze verify` accepts the unit (a copy whose ExecStart points
  at the built binary, since verify requires the program to exist), with
  no warning at all: a misspelt directive is only a warning to systemd.
- `systemd-analyze security --offline` rates its exposure low.
- the settings the server relies on are there, and TimeoutStopSec leaves
  room for the drain configured in deploy/windlass.toml.
- the server, run with NOTIFY_SOCKET pointing at a datagram socket this
  test binds, sends READY=1 once it serves, WATCHDOG=1 at half of
  WATCHDOG_USEC, STOPPING=1 on SIGTERM, all from its main PID (NotifyAccess=main).
- SIGHUP (ExecReload) loads a renewed TLS certificate, and every client
  stays connected.
- every system call it makes and every socket family it opens, through a
  whole life with plain and TLS clients, sd_notify, a reload and a stop
  with clients connected, are allowed by the unit's SystemCallFilter= and
  RestrictAddressFamilies=, and nothing maps memory writable and
  executable (MemoryDenyWriteExecute=) (strace). On either loop backend
  (WINDLASS_IO): the unit's @system-service includes @aio, so io_uring's
  io_uring_setup, io_uring_enter and io_uring_register are allowed.
- under a stricter filter that refuses io_uring with EPERM (what
  `SystemCallFilter=~@aio` with the unit's SystemCallErrorNumber=EPERM
  does, or a container's default seccomp profile), `io = "auto"` falls back
  to epoll with one log line saying why, and serves; `io = "io_uring"`
  refuses to start, saying why (tests/support/deny_io_uring.py).

Run by ctest; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/deploy_systemd_test.py
"""

import array
import asyncio
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import DEFAULT_CONFIG, START_TIMEOUT_S  # noqa: E402

UNIT = os.path.join(wt.DEPLOY_DIR, "systemd", "windlass.service")
INSTALLED_BINARY = "/usr/bin/windlass-server"

PROGRAMS = wt.require_programs("systemd-analyze", "strace", "openssl")
SERVER_BIN = wt.server_binary()
wt.watchdog(85)


def parse_unit(path):
    """[(section, key, value)] in order; systemd allows a key more than once."""
    entries = []
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, _, value = line.partition("=")
            entries.append((section, key.strip(), value.strip()))
    return entries


def parse_duration_ms(value):
    """A windlass duration (integer milliseconds or "1m30s", "500ms")."""
    if isinstance(value, int):
        return value
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    parts = re.findall(r"(\d+)(ms|s|m|h)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"cannot parse duration {value!r}"
    return sum(int(n) * units[u] for n, u in parts)


def parse_systemd_seconds(value):
    """TimeoutStopSec=45, 45s, 1min 30s, ..."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0
    for n, u in re.findall(r"(\d+)\s*([a-z]*)", value):
        total += int(n) * units[u]
    return total


def drain_budget_ms():
    """drain_delay + shutdown_timeout of deploy/windlass.toml (or the
    built-in defaults if the file is not there)."""
    drain, shutdown = 0, 10_000
    if os.path.exists(DEFAULT_CONFIG):
        with open(DEFAULT_CONFIG, "rb") as f:
            server = tomllib.load(f).get("server", {})
        drain = parse_duration_ms(server.get("drain_delay", drain))
        shutdown = parse_duration_ms(server.get("shutdown_timeout", shutdown))
    return drain + shutdown


def unit_copy(directory):
    """The unit with the built binary in place of /usr/bin/windlass-server."""
    binary = os.path.join(directory, "windlass-server")
    os.symlink(SERVER_BIN, binary)
    with open(UNIT) as f:
        text = f.read()
    assert INSTALLED_BINARY in text
    path = os.path.join(directory, "windlass.service")
    with open(path, "w") as f:
        f.write(text.replace(INSTALLED_BINARY, binary))
    return path


class NotifySocket:
    """The receiving end of sd_notify(3): a Unix datagram socket whose
    messages carry the sender's credentials. A thread reads it at once, as
    systemd does: a full socket queue would block the server's event loop
    in sd_notify (docs/configuration.md)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.messages = queue.Queue()
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.closing.is_set():
            try:
                data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            pid = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = array.array("i", payload[:12])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.put((fields, pid))

    def receive(self, timeout):
        """(fields dict, sender pid), or None after `timeout` seconds."""
        try:
            return self.messages.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return None

    def wait_for(self, key, timeout, seen=None):
        """The first message containing `key`; every message on the way is
        appended to `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.receive(deadline - time.monotonic())
            if got is None:
                raise AssertionError(f"no {key}= notification within {timeout} s; got {seen}")
            if seen is not None:
                seen.append(got)
            if key in got[0]:
                return got

    def close(self):
        self.closing.set()
        self.thread.join(timeout=2)
        self.sock.close()


class UnitFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = wt.temp_dir("windlass-systemd-")
        self.entries = parse_unit(UNIT)

    def values(self, key, section="Service"):
        return [v for s, k, v in self.entries if s == section and k == key]

    def value(self, key, section="Service"):
        got = self.values(key, section)
        self.assertTrue(got, f"{key}= is missing from [{section}]")
        return got[-1]

    def test_verify_passes_without_warnings(self):
        path = unit_copy(self.tmp)
        r = subprocess.run([PROGRAMS["systemd-analyze"], "verify", "--man=no", path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, f"systemd-analyze verify failed:\n{r.stdout}{r.stderr}")
        self.assertEqual((r.stdout + r.stderr).strip(), "", "systemd-analyze verify warned")

    def test_verify_catches_a_misspelt_directive(self):
        # The check above is only as good as verify's eye: a typo must show.
        path = unit_copy(self.tmp)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("LockPersonality=", "LockPersonalty="))
        r = subprocess.run([PROGRAMS["systemd-analyze"], "verify", "--man=no", path],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("LockPersonalty", r.stdout + r.stderr)

    def test_security_exposure_is_low(self):
        path = unit_copy(self.tmp)
        r = subprocess.run([PROGRAMS["systemd-analyze"], "security", "--offline=yes", "--no-pager", path],
                           capture_output=True, text=True, timeout=30)
        m = re.search(r"Overall exposure level for windlass\.service: (\d+\.\d+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, f"no exposure level in:\n{r.stdout}{r.stderr}")
        print(f"# systemd-analyze security: exposure {m.group(1)} (0 best, 10 worst)")
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)

    def test_has_the_settings_the_server_relies_on(self):
        self.assertEqual(self.value("Type"), "notify")
        self.assertEqual(self.value("NotifyAccess"), "main")
        self.assertEqual(self.value("ExecStart"), f"{INSTALLED_BINARY} --config /etc/windlass/windlass.toml")
        self.assertIn("-HUP $MAINPID", self.value("ExecReload"))
        self.assertEqual(self.value("Restart"), "on-failure")
        self.assertEqual(self.value("WatchdogSec"), "30")
        self.assertEqual(self.value("LimitNOFILE"), "1048576")
        self.assertEqual(self.value("CapabilityBoundingSet"), "")
        self.assertTrue(self.values("DynamicUser") == ["yes"] or self.values("User"), "no DynamicUser= or User=")
        for key, want in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"),
                          ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
                          ("ProtectControlGroups", "yes"), ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                          ("RestrictNamespaces", "yes"), ("LockPersonality", "yes"),
                          ("MemoryDenyWriteExecute", "yes"), ("SystemCallArchitectures", "native")]:
            self.assertEqual(self.value(key), want, key)
        self.assertEqual(self.values("SystemCallFilter")[0], "@system-service")

    def test_stop_timeout_outlasts_the_drain(self):
        stop_s = parse_systemd_seconds(self.value("TimeoutStopSec"))
        budget_s = drain_budget_ms() / 1000
        self.assertGreater(stop_s, budget_s + 5,
                           f"TimeoutStopSec={stop_s}s leaves no margin over drain_delay + shutdown_timeout "
                           f"= {budget_s}s in {DEFAULT_CONFIG}")

    def test_check_config_accepts_a_valid_file_and_refuses_a_typo(self):
        # ExecStartPre runs --check-config: exit 0 for a good file, 1 with
        # the file and line for a bad one.
        good = wt.server_config(self.tmp)
        r = subprocess.run([SERVER_BIN, "--config", good, "--check-config"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("config ok:"), r.stdout)
        bad = wt.write_file(self.tmp, "bad.toml", "[server]\nprot = 8080\n")
        r = subprocess.run([SERVER_BIN, "--config", bad, "--check-config"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.toml:2", r.stderr)
        if os.path.exists(DEFAULT_CONFIG):
            # The shipped config is valid too (its static root may point at
            # an installed path; only then is a missing directory forgiven).
            r = subprocess.run([SERVER_BIN, "--config", DEFAULT_CONFIG, "--check-config"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                self.assertRegex(r.stderr, r"root: cannot use /(usr|var|opt|srv)/", r.stderr)


class NotifyProtocolTest(unittest.TestCase):
    """The real binary against a NOTIFY_SOCKET this test owns."""

    def setUp(self):
        self.tmp = wt.temp_dir("windlass-notify-")
        self.notify = NotifySocket(self.tmp)
        self.config = wt.server_config(self.tmp, drain_delay="1s", shutdown_timeout="3s", threads=2)

    def tearDown(self):
        wt.kill_all()
        self.notify.close()

    def start(self, **env_extra):
        env = wt.server_env(NOTIFY_SOCKET=self.notify.path, **env_extra)
        # Not Server.start(): READY=1 is awaited first, then the line.
        return wt.windlass_server(self.config, env=env).launch()

    def test_ready_watchdog_stopping(self):
        server = self.start(WATCHDOG_USEC="400000")
        seen = []
        fields, pid = self.notify.wait_for("READY", START_TIMEOUT_S, seen)
        self.assertEqual(fields["READY"], "1")
        self.assertEqual(pid, server.proc.pid, "READY=1 must come from the main PID (NotifyAccess=main)")
        # READY=1 means serving: the line is printed and the port answers,
        # without any retry.
        port = server.wait_listening(timeout=1)
        self.assertIn(f"listening on 127.0.0.1:{port}", fields.get("STATUS", ""))
        self.assertEqual(wt.http_status(port, "/healthz"), 200)
        self.assertEqual(wt.http_status(port, "/readyz"), 200)

        # WATCHDOG_USEC=0.4 s: a ping every 0.2 s from the main PID.
        started = time.monotonic()
        pings = []
        while time.monotonic() - started < 1.5:
            got = self.notify.receive(1.5 - (time.monotonic() - started))
            if got and "WATCHDOG" in got[0]:
                self.assertEqual(got[0]["WATCHDOG"], "1")
                self.assertEqual(got[1], server.proc.pid)
                pings.append(time.monotonic())
        self.assertGreaterEqual(len(pings), 4, f"expected a WATCHDOG=1 every 0.2 s, got {len(pings)} in 1.5 s")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 0.4, f"a watchdog gap reached WATCHDOG_USEC: {gaps}")

        sigterm_at = time.monotonic()
        server.signal(signal.SIGTERM)
        fields, pid = self.notify.wait_for("STOPPING", 2, [])
        self.assertEqual(fields["STOPPING"], "1")
        self.assertEqual(pid, server.proc.pid)
        # systemd is asked to wait for the drain and the closing.
        self.assertGreaterEqual(int(fields.get("EXTEND_TIMEOUT_USEC", "0")), (1 + 3) * 1_000_000)
        # Draining: still alive, no longer ready.
        self.assertEqual(wt.http_status(port, "/readyz"), 503)
        self.assertEqual(wt.http_status(port, "/healthz"), 200)
        self.assertEqual(server.wait(10), 0, server.stderr_text())
        took = time.monotonic() - sigterm_at
        self.assertGreaterEqual(took, 0.9, "exited before drain_delay (1 s) was over")
        print(f"# READY=1, {len(pings)} WATCHDOG=1 in 1.5 s, STOPPING=1; exit 0 {took:.2f} s after SIGTERM")

    def test_no_watchdog_pings_without_watchdog_usec(self):
        server = self.start()
        self.notify.wait_for("READY", START_TIMEOUT_S, [])
        server.wait_listening(timeout=1)
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            got = self.notify.receive(left)
            if got:
                self.assertNotIn("WATCHDOG", got[0])
        server.stop()

    def test_sighup_reloads_the_certificate_and_keeps_every_client(self):
        # ExecReload sends SIGHUP after a certificate renewal. An unhandled
        # SIGHUP would kill the server: `systemctl reload` would be an
        # outage that Restart=on-failure merely papers over.
        ca = wt.make_ca(self.tmp)
        cert, key = wt.make_leaf(self.tmp, "first", common_name="first")
        self.config = wt.server_config(self.tmp, tls=(cert, key))
        server = self.start()
        self.notify.wait_for("READY", START_TIMEOUT_S, [])
        port = server.wait_listening(timeout=1)
        tls_port = server.wait_listening(timeout=1, tls=True)
        context = ssl.create_default_context(cafile=ca)

        def common_name(ws):
            subject = ws.transport.get_extra_info("ssl_object").getpeercert()["subject"]
            return dict(x[0] for x in subject)["commonName"]

        async def scenario():
            async with websockets.connect(f"wss://127.0.0.1:{tls_port}/echo", ssl=context, open_timeout=5) as old, \
                       websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=5) as plain:
                self.assertEqual(common_name(old), "first")
                # A renewal: new files moved into place, as certbot does.
                new_cert, new_key = wt.make_leaf(self.tmp, "second", common_name="second")
                os.replace(new_cert, cert)
                os.replace(new_key, key)
                server.signal(signal.SIGHUP)
                deadline = time.monotonic() + 5
                while True:
                    async with websockets.connect(f"wss://127.0.0.1:{tls_port}/echo", ssl=context,
                                                  open_timeout=5) as fresh:
                        if common_name(fresh) == "second":
                            await fresh.send("new")
                            self.assertEqual(await asyncio.wait_for(fresh.recv(), 5), "new")
                            break
                    self.assertLess(time.monotonic(), deadline, "SIGHUP did not load the new certificate\n"
                                    + server.stderr_text())
                    await asyncio.sleep(0.1)
                # Connections made before the reload carry on.
                for ws in (old, plain):
                    await ws.send("still here")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "still here")

        asyncio.run(scenario())
        server.assert_alive("of SIGHUP")
        server.stop()


def syscall_groups():
    """{"@name": set of entries} from `systemd-analyze syscall-filter`."""
    out = subprocess.run([PROGRAMS["systemd-analyze"], "syscall-filter", "--no-pager"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), set())
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.add(line.strip())
    return groups


def expand(name, groups):
    if not name.startswith("@"):
        return {name}
    out = set()
    for entry in groups[name]:
        out |= expand(entry, groups)
    return out


class SandboxFitTest(unittest.TestCase):
    """strace the server through a whole life (start, page, WebSocket chat
    and echo over ws:// and wss://, metrics, sd_notify, SIGHUP, SIGTERM with
    clients connected) and check the unit's sandbox would have let every
    call through."""

    def setUp(self):
        # A sanitizer's runtime makes system calls of its own and
        # LeakSanitizer cannot run under ptrace, so strace would say nothing
        # about the shipped binary.
        if wt.sanitizer(SERVER_BIN):
            self.skipTest("sanitizer build: the syscall check runs in the release stage")
        self.tmp = wt.temp_dir("windlass-strace-")

    def tearDown(self):
        wt.kill_all()

    def test_every_syscall_and_socket_family_is_allowed(self):
        groups = syscall_groups()
        filters = [v for s, k, v in parse_unit(UNIT) if s == "Service" and k == "SystemCallFilter"]
        allowed = set()
        for f in filters:
            names = set()
            for word in f.lstrip("~").split():
                names |= expand(word, groups)
            if f.startswith("~"):
                allowed -= names
            else:
                allowed |= names
        allowed |= expand("@default", groups)  # always permitted by systemd

        ca = wt.make_ca(self.tmp)
        cert, key = wt.make_leaf(self.tmp, "server")
        config = wt.server_config(self.tmp, threads=2, drain_delay="0s", shutdown_timeout="2s", tls=(cert, key))
        trace = os.path.join(self.tmp, "trace")
        # strace runs the server: the PID is strace's, the server its child.
        # sd_notify too, as under systemd: READY, WATCHDOG, STATUS, STOPPING.
        notify = NotifySocket(self.tmp)
        self.addCleanup(notify.close)
        env = wt.server_env(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="200000")
        server = wt.windlass_server(config, env=env, wrapper=[PROGRAMS["strace"], "-f", "-qq", "-o", trace]).launch()
        port = server.wait_listening(timeout=30)
        tls_port = server.wait_listening(timeout=5, tls=True)
        with open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children") as f:
            server_pid = int(f.read().split()[0])  # strace's child; strace itself would detach on signals
        for path, want in [("/", 200), ("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/nope", 404)]:
            self.assertEqual(wt.http_status(port, path), want, path)

        async def clients():
            a = await websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=10)
            b = await websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=10)
            e = await websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10, compression=None)
            t = await websockets.connect(f"wss://127.0.0.1:{tls_port}/echo", open_timeout=10,
                                         ssl=ssl.create_default_context(cafile=ca))
            await a.send("hello")
            self.assertEqual(await asyncio.wait_for(b.recv(), 10), "hello")
            for ws in (e, t):
                await ws.send(b"\x00" * 100_000)
                self.assertEqual(len(await asyncio.wait_for(ws.recv(), 10)), 100_000)
            # systemctl reload: the certificate is read again.
            os.kill(server_pid, signal.SIGHUP)
            await asyncio.sleep(0.3)
            await t.send("after reload")
            self.assertEqual(await asyncio.wait_for(t.recv(), 10), "after reload")
            # SIGTERM with clients still connected: the closing path runs too.
            os.kill(server_pid, signal.SIGTERM)
            for ws in (a, b, e, t):
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 15)
                self.assertEqual(ws.close_code, 1001)

        asyncio.run(clients())
        self.assertEqual(server.wait(20), 0, server.stderr_text())
        kinds = set()
        while (got := notify.receive(0.01)) is not None:
            kinds |= set(got[0])
        self.assertLessEqual({"READY", "WATCHDOG", "STOPPING"}, kinds)

        used, families, wx = set(), set(), []
        with open(trace) as f:
            for line in f:
                m = re.match(r"^\d+\s+(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()", line)
                if not m:
                    continue
                name = m.group(1) or m.group(2)
                used.add(name)
                fam = re.match(r"^\d+\s+socket\((AF_[A-Z0-9]+)", line)
                if fam:
                    families.add(fam.group(1))
                if name in ("mmap", "mprotect", "pkey_mprotect") and "PROT_WRITE" in line and "PROT_EXEC" in line:
                    wx.append(line.strip())
        used.discard("execve")  # strace's exec of the server, before any sandbox applies
        backend = os.environ.get("WINDLASS_IO", "auto")
        waits = {"epoll": {"epoll_wait", "epoll_pwait"}, "io_uring": {"io_uring_enter"}}.get(
            backend, {"epoll_wait", "epoll_pwait", "io_uring_enter"})
        self.assertTrue(used & waits, f"no {' or '.join(sorted(waits))} in the trace (WINDLASS_IO={backend})")
        denied = sorted(used - allowed)
        self.assertEqual(denied, [], f"system calls outside SystemCallFilter=: {denied}")
        self.assertIn("AF_UNIX", families, "sd_notify did not run")
        self.assertLessEqual(families, {"AF_INET", "AF_INET6", "AF_UNIX"},
                             "socket families outside RestrictAddressFamilies=")
        self.assertEqual(wx, [], "writable+executable mappings would fail under MemoryDenyWriteExecute=")
        print(f"# {len(used)} distinct system calls, all within the filter; socket families {sorted(families)}")


class SeccompFallbackTest(unittest.TestCase):
    """A filter that refuses io_uring (EPERM): auto takes epoll and says why;
    io_uring insists and does not start."""

    DENY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "deny_io_uring.py")

    def setUp(self):
        if os.uname().machine != "x86_64":
            self.skipTest("deny_io_uring.py knows x86-64's system call numbers only")
        self.tmp = wt.temp_dir("windlass-seccomp-")

    def tearDown(self):
        wt.kill_all()

    def env(self, io):
        env = wt.server_env()
        env["WINDLASS_IO"] = io
        return env

    def test_auto_falls_back_to_epoll_with_one_line_saying_why(self):
        config = wt.server_config(self.tmp, threads=2, drain_delay="0s", shutdown_timeout="2s")
        server = wt.windlass_server(config, env=self.env("auto"), wrapper=["/usr/bin/python3", self.DENY]).launch()
        port = server.wait_listening(timeout=START_TIMEOUT_S)
        self.assertEqual(wt.http_status(port, "/healthz"), 200)

        async def echo():
            async with websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10) as ws:
                await ws.send("still served")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "still served")

        asyncio.run(echo())
        server.stop()
        log = server.stderr_text()
        fallbacks = [line for line in log.splitlines() if "io_uring unavailable" in line]
        self.assertEqual(len(fallbacks), 1, log)  # once per process, not once per loop
        self.assertIn("io_uring_setup: Operation not permitted", fallbacks[0])
        self.assertIn("using epoll", fallbacks[0])
        self.assertRegex(log, r"2 event loops on epoll")

    def test_io_uring_insisted_on_refuses_to_start(self):
        config = wt.server_config(self.tmp)
        server = wt.windlass_server(config, env=self.env("io_uring"), wrapper=["/usr/bin/python3", self.DENY]).launch()
        self.assertNotEqual(server.wait(START_TIMEOUT_S), 0)
        self.assertIn("io_uring_setup: Operation not permitted", server.stderr_text())


if __name__ == "__main__":
    wt.run_tests()
