#!/usr/bin/python3
"""windlass-server, the binary operators deploy, end to end.

Covers the command line (--version, --check-config on good and bad files,
environment overrides and their precedence), the default config
(deploy/windlass.toml: the chat page and room at "/", echo at "/echo"),
per-route options, /metrics (every line parsed as exposition format 0.0.4,
counters that move, `promtool check metrics` when Prometheus is
installed), /healthz and /readyz, the JSON log format, the drain on
SIGTERM and systemd's notification protocol.

Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/server_test.py

Without WINDLASS_SERVER_BIN it looks in build/release, and
skips (exit 0, saying so) when there is no binary.
"""

import asyncio
import json
import os
import queue
import re
import shutil
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
from windlass_test import (CHAT_PUBLIC, DEFAULT_CONFIG, STEP_TIMEOUT_S, assert_silent, http_request,  # noqa: E402
                           run_async as run, server_env, step, toml_string, wait_until)

SERVER_BIN = wt.server_binary(required=False)


def setUpModule():
    if SERVER_BIN is None:
        raise unittest.SkipTest("windlass-server not built: set WINDLASS_SERVER_BIN "
                                "(ctest does) or build build/release")


def project_version():
    with open(os.path.join(wt.SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(windlass\s+VERSION\s+([0-9.]+)", f.read())
    assert m, "no project(windlass VERSION ...) in CMakeLists.txt"
    return m.group(1)


def run_cli(*args, env=None, cwd=None):
    return subprocess.run([SERVER_BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30, env=env if env is not None else server_env(), cwd=cwd)


async def connect(url, **kwargs):
    kwargs.setdefault("compression", None)
    return await step(websockets.connect(url, open_timeout=None, close_timeout=STEP_TIMEOUT_S, **kwargs),
                      f"connect to {url}")


# ---------------------------------------------------------------- metrics

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN)"
HELP_LINE = re.compile(rf"^# HELP ({METRIC_NAME}) (.*)$")
TYPE_LINE = re.compile(rf"^# TYPE ({METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$")
SAMPLE_LINE = re.compile(rf"^({METRIC_NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?,?\}})? ({VALUE})(?: -?[0-9]+)?$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def unescape_label(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_exposition(text):
    """Checks every line against the text format 0.0.4 and our naming
    rules; returns ({(name, frozenset(labels)): value}, {name: type})."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    samples, types, helps = {}, {}, set()
    for number, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {number}: {line!r}"
        if line.startswith("#"):
            m = HELP_LINE.match(line)
            if m:
                assert m.group(1) not in helps, f"second HELP for {m.group(1)}: {where}"
                helps.add(m.group(1))
                continue
            m = TYPE_LINE.match(line)
            assert m, f"a comment that is neither HELP nor TYPE: {where}"
            name, kind = m.groups()
            assert name not in types, f"second TYPE for {name}: {where}"
            assert not any(n == name for n, _ in samples), f"TYPE after samples of {name}: {where}"
            types[name] = kind
            continue
        m = SAMPLE_LINE.match(line)
        assert m, f"not a valid sample line: {where}"
        name, labels_text, value = m.groups()
        labels = frozenset((k, unescape_label(v)) for k, v in LABEL_PAIR.findall(labels_text or ""))
        assert (name, labels) not in samples, f"duplicate series: {where}"
        assert name in types, f"sample without a TYPE line: {where}"
        samples[(name, labels)] = float(value)
    for name, kind in types.items():
        assert name in helps, f"{name} has no HELP"
        assert name.startswith("windlass_") or name.startswith("process_"), f"unprefixed metric {name}"
        if kind == "counter":
            assert name.endswith("_total"), f"counter {name} does not end in _total"
        else:
            assert not name.endswith("_total"), f"{kind} {name} ends in _total"
    return samples, types


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)



class CommandLineTest(unittest.TestCase):
    """The flags that do not start a server."""

    def test_version_prints_the_project_version(self):
        r = run_cli("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), f"windlass-server {project_version()}")

    def test_help_mentions_every_flag(self):
        r = run_cli("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ["--config", "--check-config", "--version", "--host", "--port", "--threads",
                     "--log-level", "--log-format"]:
            self.assertIn(flag, r.stdout)

    def test_unknown_flag_is_a_usage_error(self):
        r = run_cli("--prot", "80")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--prot", r.stderr)

    def test_check_config_accepts_the_default_config(self):
        r = run_cli("--config", DEFAULT_CONFIG, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        self.assertTrue(lines[0].startswith("config ok: "), lines[0])
        for part in ["listen 127.0.0.1:8080", "/ chat", "/echo echo", "/* static", "metrics /metrics"]:
            self.assertIn(part, lines[0])

    def check_bad(self, text, pattern, env=None):
        """A config whose --check-config must fail with exit 1 and one
        line on stderr matching `pattern` (a regex; FILE stands for the
        config's path); returns that line."""
        path = wt.write_file(wt.temp_dir(), "bad.toml", text)
        r = run_cli("--config", path, "--check-config", env=env)
        self.assertEqual(r.returncode, 1, f"accepted:\n{text}\nstdout: {r.stdout}")
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        expected = "^windlass-server: config error: " + pattern.replace("FILE", re.escape(path))
        self.assertRegex(lines[0], expected)
        return lines[0]

    def test_unknown_key_is_an_error_with_its_line_and_a_suggestion(self):
        self.check_bad("# a comment\n\n[server]\nport = 8080\nprot = 9000\n",
                       r"FILE:5:1: server\.prot: unknown key \(did you mean 'port'\?\)$")

    def test_unknown_table_is_an_error(self):
        self.check_bad("[sever]\nport = 1\n", r"FILE:1:2: sever: unknown key \(did you mean 'server'\?\)$")

    def test_unknown_route_key_is_an_error(self):
        self.check_bad('[[route]]\npath = "/e"\ncomponent = "echo"\nping_interval_ms = 500\n',
                       r"FILE:4:1: route\[0\]\.ping_interval_ms: unknown key \(did you mean 'ping_interval'\?\)$")

    def test_wrong_type_is_an_error(self):
        self.check_bad('[server]\nport = "8080"\n', r"FILE:2:8: server\.port: expected an integer, got a string$")
        self.check_bad('[log]\naccess = "yes"\n', r"FILE:2:10: log\.access: expected true or false, got a string$")

    def test_bad_size_string_is_an_error(self):
        self.check_bad('[websocket]\nmax_message_size = "16 megs"\n',
                       r'FILE:2:20: websocket\.max_message_size: bad size "16 megs": .*"16MiB"')
        self.check_bad('[server]\nmax_send_queue = "16mb"\n', r'FILE:2:18: server\.max_send_queue: bad size "16mb"')

    def test_bad_duration_is_an_error(self):
        self.check_bad('[websocket]\nping_interval = "30"\n',
                       r'FILE:2:17: websocket\.ping_interval: bad duration "30": .*"30s"')

    def test_out_of_range_is_an_error(self):
        self.check_bad("[server]\nport = 70000\n", r"FILE:2:8: server\.port: 70000 is out of range \(0 to 65535\)$")
        self.check_bad('[server]\nmax_head_size = "4MiB"\n',
                       r"FILE:2:17: server\.max_head_size: 4MiB is out of range \(1KiB to 1MiB\)$")
        self.check_bad("[server]\nsweep_interval = 0\n", r"FILE:2:18: server\.sweep_interval: 0s is out of range")

    def test_bad_route_is_an_error(self):
        self.check_bad('[[route]]\npath = "/x"\ncomponent = "ecko"\n',
                       r'FILE:3:13: route\[0\]\.component: "ecko" is not one of .*\(did you mean \'echo\'\?\)$')
        self.check_bad('[[route]]\npath = "/x"\ncomponent = "static"\nroot = "no-such-dir"\n',
                       r"FILE:4:8: route\[0\]\.root: cannot use .*no-such-dir: No such file or directory$")
        self.check_bad('[[route]]\npath = "/x"\ncomponent = "static"\nroot = "."\nmax_message_size = 10\n',
                       r"FILE:5:20: route\[0\]\.max_message_size: applies only to WebSocket")
        self.check_bad('[route]\npath = "/x"\ncomponent = "echo"\n', r"FILE:1:1: route: expected an array of tables")
        self.check_bad('[[route]]\npth = "/x"\ncomponent = "echo"\n',
                       r"FILE:2:1: route\[0\]\.pth: unknown key \(did you mean 'path'\?\)$")
        self.check_bad('[[route]]\ncomponent = "echo"\n', r"FILE:1:1: route\[0\]: missing 'path'$")
        self.check_bad('[[route]]\npath = "/m"\ncomponent = "echo"\n[metrics]\npath = "/m"\n',
                       r'FILE:1: route\[0\]\.path "/m": is metrics\.path')

    def test_bad_app_history_is_an_error(self):
        app = '[[app]]\nid = "a"\nkey = "k"\nsecret = "s"\n'
        self.check_bad(app + '[[app.history]]\nchannels = "presence-room"\n',
                       r"FILE:6:12: app\[0\]\.history\[0\]\.channels: presence- and cache- channels keep no history")
        self.check_bad(app + '[[app.history]]\nchannels = "chat-"\nmessages = 0\n',
                       r"FILE:7:12: app\[0\]\.history\[0\]\.messages: 0 is out of range")
        self.check_bad(app + '[[app.history]]\nchannel = "chat-"\n',
                       r"FILE:6:1: app\[0\]\.history\[0\]\.channel: unknown key \(did you mean 'channels'\?\)$")
        self.check_bad(app + '[app.history]\nchannels = "chat-"\n', r"FILE:5:1: app\[0\]\.history: expected an array of tables")
        good = wt.write_file(wt.temp_dir(), "good.toml",
                             app + '[[app.history]]\nchannels = "chat-"\nmessages = 50\nmax_age = "1m"\n')
        r = run_cli("--config", good, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_route_auth_is_an_error(self):
        echo = '[[route]]\npath = "/c"\ncomponent = "echo"\n'
        self.check_bad('[[route]]\npath = "/x"\ncomponent = "static"\nroot = "."\nauth = "jwt"\n',
                       r"FILE:5:8: route\[0\]\.auth: applies only to WebSocket \(chat, echo\) routes")
        self.check_bad(echo + 'auth = "jwk"\n',
                       r'FILE:4:8: route\[0\]\.auth: "jwk" is not one of "jwt", "proxy" \(did you mean \'jwt\'\?\)$')
        self.check_bad(echo + 'auth = "jwt"\n',
                       r'FILE:1:1: route\[0\]: auth = "jwt" needs its options: a \[route\.jwt\] table')
        self.check_bad(echo + '[route.jwt]\nissuer = "i"\n',
                       r"FILE:4:1: route\[0\]\.jwt: applies only to auth = \"jwt\", and the route has no 'auth'$")
        self.check_bad(echo + 'auth = "jwt"\nproxy = { url = "http://127.0.0.1:1/" }\n',
                       r'FILE:5:9: route\[0\]\.proxy: applies only to auth = "proxy", not to auth = "jwt"$')
        self.check_bad(echo + 'auth = "proxy"\njwt = "x"\n', r'FILE:5:7: route\[0\]\.jwt: applies only to auth = "jwt"')
        self.check_bad(echo + 'auth = "jwt"\njwt = "x"\n',
                       r"FILE:5:7: route\[0\]\.jwt: expected a table \(\[route\.jwt\] after its \[\[route\]\], or jwt = \{ \.\.\. \}\), got a string$")

    def test_bad_route_jwt_is_an_error(self):
        head = '[[route]]\npath = "/c"\ncomponent = "chat"\nauth = "jwt"\n[route.jwt]\n'
        good = 'issuer = "https://app.test"\naudience = "chat"\n'
        secret = 'secret = "0123456789abcdef0123456789abcdef"\n'
        line = self.check_bad(head + good + 'secret = "short-secret"\n',
                              r"FILE:8:10: route\[0\]\.jwt\.secret: the HS256 secret has 12 bytes; it must have at least 32")
        self.assertNotIn("short-secret", line)
        line = self.check_bad(head + good + 'secret_env = "WINDLASS_TEST_JWT"\n',
                              r"FILE:8:14: route\[0\]\.jwt\.secret_env: the HS256 secret has 9 bytes",
                              env=server_env(WINDLASS_TEST_JWT="too-short"))
        self.assertNotIn("too-short", line)
        self.check_bad(head + good + 'secret_env = "WINDLASS_TEST_NOT_SET"\n',
                       r"FILE:8:14: route\[0\]\.jwt\.secret_env: the environment variable WINDLASS_TEST_NOT_SET is not set$")
        self.check_bad(head + good, r"FILE:5:1: route\[0\]\.jwt: missing 'secret' \(or 'secret_env'")
        self.check_bad(head + good + secret + 'secret_file = "s.txt"\n',
                       r"FILE:5:1: route\[0\]\.jwt: give one of 'secret', 'secret_env' and 'secret_file'$")
        self.check_bad(head + good + secret + 'public_key_file = "k.pem"\n',
                       r'FILE:9:19: route\[0\]\.jwt\.public_key_file: applies only to algorithm = "RS256", not to "HS256"$')
        self.check_bad(head + good + 'algorithm = "RS256"\n' + secret,
                       r'FILE:9:10: route\[0\]\.jwt\.secret: applies only to algorithm = "HS256", not to "RS256"$')
        self.check_bad(head + good + 'algorithm = "ES256"\n',
                       r'FILE:8:13: route\[0\]\.jwt\.algorithm: "ES256" is not one of "HS256", "RS256"')
        self.check_bad(head + good + 'algorithm = "RS256"\n',
                       r"FILE:5:1: route\[0\]\.jwt: missing 'public_key_file' \(or 'public_key', the PEM itself\)")
        d = wt.temp_dir()
        wt.write_file(d, "not-a-key.pem", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
        self.check_bad(head + good + 'algorithm = "RS256"\npublic_key_file = "no-such.pem"\n',
                       r"FILE:9:19: route\[0\]\.jwt\.public_key_file: .*no-such\.pem is not a file")
        path = wt.write_file(d, "rs.toml", head + good + 'algorithm = "RS256"\npublic_key_file = "not-a-key.pem"\n')
        r = run_cli("--config", path, "--check-config")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stderr, re.escape(path) + r":9:19: route\[0\]\.jwt\.public_key_file: not a PEM public key")
        self.check_bad(head + 'audience = "chat"\n' + secret,
                       r"FILE:5:1: route\[0\]\.jwt: missing 'issuer': required, the token's \"iss\" must equal it$")
        self.check_bad(head + good + secret + 'audiance = "x"\n',
                       r"FILE:9:1: route\[0\]\.jwt\.audiance: unknown key \(did you mean 'audience'\?\)$")
        self.check_bad(head + good + secret + 'sources = ["bearer", "header:x"]\n',
                       r'FILE:9:22: route\[0\]\.jwt\.sources: "header:x" is not "bearer", "query:NAME" or "cookie:NAME"')
        self.check_bad(head + good + secret + 'sources = ["cookie"]\n',
                       r'FILE:9:12: route\[0\]\.jwt\.sources: "cookie": expected "cookie:NAME"')
        self.check_bad(head + good + secret + 'sources = []\n',
                       r"FILE:9:11: route\[0\]\.jwt\.sources: is empty: no token could be found$")
        self.check_bad(head + good + secret + 'sources = ["query:t", "query:t"]\n',
                       r'FILE:9:23: route\[0\]\.jwt\.sources: "query:t" is listed twice$')
        self.check_bad(head + good + secret + 'leeway = "1500ms"\n',
                       r"FILE:9:10: route\[0\]\.jwt\.leeway: must be whole seconds")
        self.check_bad(head + good + secret + 'max_token_size = "16MiB"\n',
                       r"FILE:9:18: route\[0\]\.jwt\.max_token_size: 16MiB is out of range \(64B to 1MiB\)$")

    def test_bad_route_proxy_is_an_error(self):
        head = '[[route]]\npath = "/c"\ncomponent = "echo"\nauth = "proxy"\n[route.proxy]\n'
        url = 'url = "http://127.0.0.1:8000/ws-auth"\n'
        self.check_bad(head + 'method = "GET"\n', r"FILE:5:1: route\[0\]\.proxy: missing 'url'")
        self.check_bad(head + 'url = "ftp://x/"\n',
                       r'FILE:6:7: route\[0\]\.proxy\.url: "ftp://x/" is not an http:// or https:// URL$')
        self.check_bad(head + url + 'method = "PUT"\n',
                       r'FILE:7:10: route\[0\]\.proxy\.method: "PUT" is not one of "GET", "POST"')
        self.check_bad(head + url + 'timeout = "10s"\n',
                       r"FILE:7:11: route\[0\]\.proxy\.timeout: 10s is not under the handshake's deadline \(10s\)")
        self.check_bad(head + url + 'timeout = 0\n', r"FILE:7:11: route\[0\]\.proxy\.timeout: 0s is out of range")
        self.check_bad(head + url + 'forward_headers = ["Cookie", "X Session"]\n',
                       r'FILE:7:19: route\[0\]\.proxy\.forward_headers: "X Session" is not a header name$')
        self.check_bad(head + url + 'forward_headers = []\n',
                       r"FILE:7:19: route\[0\]\.proxy\.forward_headers: is empty while refuse_without_credentials is on")
        line = self.check_bad(head + url + 'headers = { "X Key" = "hush-hush" }\n',
                              r"FILE:7:23: route\[0\]\.proxy\.headers\.X Key: not a header name")
        self.assertNotIn("hush-hush", line)
        self.check_bad(head + url + 'headers_env = { X-Key = "WINDLASS_TEST_NOT_SET" }\n',
                       r"FILE:7:25: route\[0\]\.proxy\.headers_env\.X-Key: the environment variable WINDLASS_TEST_NOT_SET is not set$")
        self.check_bad(head + url + 'headers = "Accept: */*"\n',
                       r"FILE:7:11: route\[0\]\.proxy\.headers: expected a table of header names to values")
        self.check_bad(head + url + 'allow_ttl = "-1s"\n', r'FILE:7:13: route\[0\]\.proxy\.allow_ttl: bad duration "-1s"')
        self.check_bad(head + url + 'cache_entries = -1\n', r"FILE:7:17: route\[0\]\.proxy\.cache_entries: -1 is out of range")
        self.check_bad(head + url + '[route.proxy.client]\nmax_concurrent = 0\n',
                       r"FILE:8:18: route\[0\]\.proxy\.client\.max_concurrent: 0 is out of range \(1 to 10000\)$")
        self.check_bad(head + url + '[route.proxy.client]\nca_file = "no-such-ca.pem"\n',
                       r"FILE:8:11: route\[0\]\.proxy\.client\.ca_file: .*no-such-ca\.pem is not a file")
        self.check_bad(head + url + '[route.proxy.client]\nmax_conncurrent = 1\n',
                       r"FILE:8:1: route\[0\]\.proxy\.client\.max_conncurrent: unknown key \(did you mean 'max_concurrent'\?\)$")
        self.check_bad(head + url + 'secret = "x"\n', r"FILE:7:1: route\[0\]\.proxy\.secret: unknown key")

    def test_good_route_auth_passes_the_check(self):
        text = ('[[route]]\npath = "/j"\ncomponent = "chat"\nauth = "jwt"\n'
                'jwt = { secret_env = "WINDLASS_TEST_JWT", issuer = "https://app.test", audience = "chat", '
                'sources = ["bearer", "query:access_token", "cookie:jwt"], leeway = "10s", require_exp = false }\n'
                '[[route]]\npath = "/p"\ncomponent = "echo"\nauth = "proxy"\n'
                '[route.proxy]\nurl = "https://app.test/ws-auth"\nmethod = "POST"\ntimeout = "2s"\n'
                'forward_headers = ["Cookie"]\nforward_origin = false\nheaders = { Accept = "application/json" }\n'
                'headers_env = { X-Windlass-Key = "WINDLASS_TEST_KEY" }\nallow_ttl = "30s"\ndeny_ttl = 0\n'
                'cache_entries = 100\nmax_response_size = "4KiB"\nrefuse_without_credentials = false\n'
                '[route.proxy.client]\nmax_concurrent = 8\nmax_queued = 100\nproxy = "http://proxy.test:3128"\n')
        path = wt.write_file(wt.temp_dir(), "good.toml", text)
        secret, key = "a-jwt-secret-of-at-least-32-bytes-xyz", "the-shared-key-value"
        r = run_cli("--config", path, "--check-config", env=server_env(WINDLASS_TEST_JWT=secret, WINDLASS_TEST_KEY=key))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/j chat (auth jwt), /p echo (auth proxy)", r.stdout)
        self.assertNotIn(secret, r.stdout + r.stderr)
        self.assertNotIn(key, r.stdout + r.stderr)

    def test_toml_syntax_error_has_its_line(self):
        self.check_bad("[server]\nport = = 1\n", r"FILE:2:8: ")

    def test_environment_overrides_the_file_and_flags_override_the_environment(self):
        base = ["--config", DEFAULT_CONFIG, "--check-config"]
        r = run_cli(*base, env=server_env(WINDLASS_PORT="12345", WINDLASS_HOST="::1", WINDLASS_THREADS="3",
                                          WINDLASS_LOG_LEVEL="debug", WINDLASS_LOG_FORMAT="json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        for part in ["listen ::1:12345", "threads 3", "log debug json"]:
            self.assertIn(part, r.stdout)
        r = run_cli(*base, "--port", "23456", "--log-format", "text", env=server_env(WINDLASS_PORT="12345"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("listen 127.0.0.1:23456", r.stdout)
        self.assertIn("log info text", r.stdout)
        r = run_cli(*base, env=server_env(WINDLASS_PORT="eighty"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("WINDLASS_PORT=eighty: not a port number", r.stderr)
        r = run_cli(*base, "--log-level", "loud")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--log-level=loud: not a log level", r.stderr)

    def test_a_port_in_use_is_an_error(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            r = run_cli("--config", DEFAULT_CONFIG, "--port", str(port))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, rf"error cannot start listening: .*127\.0\.0\.1:{port}.*in use")

    def test_config_file_from_the_environment(self):
        r = run_cli("--check-config", env=server_env(WINDLASS_CONFIG=DEFAULT_CONFIG))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/echo echo", r.stdout)


class DefaultConfigTest(unittest.TestCase):
    """deploy/windlass.toml as shipped, on a free port."""

    @classmethod
    def setUpClass(cls):
        cls.server = wt.windlass_server(DEFAULT_CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.server.assert_alive()

    def scrape(self):
        status, headers, body = http_request(self.server.port, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers)
        return body.decode()

    def test_page_is_served_at_the_root(self):
        status, headers, body = http_request(self.server.port, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["Content-Type"])
        with open(os.path.join(CHAT_PUBLIC, "index.html"), "rb") as f:
            self.assertEqual(body, f.read())

    def test_chat_between_two_clients_at_the_root(self):
        async def body():
            alice = await connect(self.server.url("/"))
            bob = await connect(self.server.url("/"))
            try:
                await step(alice.send("hello from alice"), "alice sends")
                self.assertEqual(await step(bob.recv(), "bob receives"), "hello from alice")
                await assert_silent(alice, "the sender")
                await step(bob.send(b"\x00\x01binary"), "bob sends binary")
                self.assertEqual(await step(alice.recv(), "alice receives"), b"\x00\x01binary")
            finally:
                await alice.close()
                await bob.close()
        run(body())

    def test_echo_at_echo(self):
        async def body():
            ws = await connect(self.server.url("/echo"))
            try:
                for message in ["", "héllo", "x" * 70000, b"\xff\x00" * 100]:
                    await step(ws.send(message), "send")
                    self.assertEqual(await step(ws.recv(), "echo"), message)
            finally:
                await ws.close()
        run(body())

    def test_sighup_without_tls_is_logged_not_fatal(self):
        self.server.signal(signal.SIGHUP)
        wait_until(lambda: any("received SIGHUP" in l for l in self.server.stderr_lines()), "the SIGHUP line")
        self.assertEqual(http_request(self.server.port, "/healthz")[0], 200)

    def test_health_endpoints(self):
        status, headers, body = http_request(self.server.port, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        status, _, body = http_request(self.server.port, "/readyz")
        self.assertEqual((status, body), (200, b"ready\n"))
        status, headers, _ = http_request(self.server.port, "/healthz", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")

    def test_metrics_are_valid_exposition_format(self):
        samples, types = parse_exposition(self.scrape())
        self.assertEqual(metric(samples, "windlass_build_info", version=project_version()), 1)
        self.assertGreater(metric(samples, "process_resident_memory_bytes"), 1 << 20)
        threads = int(metric(samples, "windlass_threads"))
        self.assertGreaterEqual(threads, 1)
        loops = {dict(l)["loop"] for (n, l) in samples if n == "windlass_loop_lag_seconds"}
        self.assertEqual(loops, {str(i) for i in range(threads)})
        expected = {
            "windlass_connections_open": "gauge",
            "windlass_loop_connections_open": "gauge",
            "windlass_connections_accepted_total": "counter",
            "windlass_http_requests_total": "counter",
            "windlass_http_refused_total": "counter",
            "windlass_websocket_handshakes_total": "counter",
            "windlass_websocket_connections_open": "gauge",
            "windlass_websocket_messages_received_total": "counter",
            "windlass_websocket_received_bytes_total": "counter",
            "windlass_websocket_messages_sent_total": "counter",
            "windlass_websocket_sent_bytes_total": "counter",
            "windlass_websocket_closes_total": "counter",
            "windlass_websocket_close_codes_total": "counter",
            "windlass_send_queue_bytes": "gauge",
            "windlass_loop_lag_seconds": "gauge",
            "windlass_draining": "gauge",
            "process_resident_memory_bytes": "gauge",
        }
        for name, kind in expected.items():
            self.assertEqual(types.get(name), kind, name)
        self.assertEqual(metric(samples, "windlass_draining"), 0)

    @unittest.skipUnless(shutil.which("promtool"), "promtool not installed (Debian package prometheus)")
    def test_promtool_accepts_the_metrics(self):
        text = self.scrape()
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, f"promtool:\n{r.stdout}{r.stderr}")
        self.assertEqual((r.stdout + r.stderr).strip(), "", "promtool lint findings")

    def test_counters_move_after_traffic(self):
        before, _ = parse_exposition(self.scrape())

        async def traffic():
            ws = await connect(self.server.url("/echo"))
            for m in ["one", "two", "three"]:
                await step(ws.send(m), "send")
                await step(ws.recv(), "echo")
            after_open, _ = parse_exposition(self.scrape())
            self.assertEqual(metric(after_open, "windlass_websocket_connections_open", route="/echo",
                                    component="echo"), 1)
            await ws.close(1000)
            try:
                await connect(self.server.url("/no-such-endpoint"))
                self.fail("a WebSocket handshake at an unknown path succeeded")
            except websockets.exceptions.InvalidStatusCode as e:
                self.assertEqual(e.status_code, 404)
        run(traffic())

        def settled():
            after, _ = parse_exposition(self.scrape())
            closed = (metric(after, "windlass_websocket_closes_total", cause="peer_closed")
                      > metric(before, "windlass_websocket_closes_total", cause="peer_closed"))
            return after if closed else None
        after = wait_until(settled, "the close counted in windlass_websocket_closes_total")

        def grew(name, by=1, **labels):
            self.assertGreaterEqual(metric(after, name, **labels) - metric(before, name, **labels), by,
                                    f"{name}{labels}")
        grew("windlass_connections_accepted_total", 2)
        grew("windlass_http_requests_total", 2)
        grew("windlass_websocket_handshakes_total")
        grew("windlass_websocket_messages_received_total", 3)
        grew("windlass_websocket_received_bytes_total", len("onetwothree"))
        grew("windlass_websocket_messages_sent_total", 3)
        grew("windlass_websocket_sent_bytes_total", len("onetwothree"))
        grew("windlass_http_refused_total", status="404")
        grew("windlass_websocket_close_codes_total", code="1000")
        self.assertEqual(metric(after, "windlass_websocket_connections_open", route="/echo", component="echo"), 0)


class RouteOptionsTest(unittest.TestCase):
    """Per-route keys: subprotocols, max_message_size, topic."""

    def test_route_options_apply(self):
        path = wt.write_file(wt.temp_dir(), "routes.toml",
                             '[server]\nthreads = 2\nshutdown_timeout = "5s"\n'
                             '[websocket]\nmax_message_size = "4KiB"\n'
                             '[[route]]\npath = "/a"\ncomponent = "chat"\ntopic = "room"\n'
                             'subprotocols = ["chat.v2", "chat.v1"]\nmax_message_size = 1024\n'
                             '[[route]]\npath = "/b"\ncomponent = "chat"\ntopic = "room"\n'
                             '[[route]]\npath = "/e"\ncomponent = "echo"\n')
        server = wt.windlass_server(path).start()
        try:
            async def body():
                a = await connect(server.url("/a"), subprotocols=["chat.v1"])
                self.assertEqual(a.subprotocol, "chat.v1")
                b = await connect(server.url("/b"))
                self.assertIsNone(b.subprotocol)
                # Two routes, one topic: one room.
                await step(a.send("via a"), "send on /a")
                self.assertEqual(await step(b.recv(), "receive on /b"), "via a")
                # /e takes the [websocket] default (4 KiB), /a its own 1024.
                e = await connect(server.url("/e"))
                await step(e.send("y" * 4000), "4000 bytes to /e")
                self.assertEqual(len(await step(e.recv(), "echo of 4000")), 4000)
                await step(a.send("x" * 2000), "2000 bytes to /a")
                await step(a.wait_closed(), "/a closes")
                self.assertEqual(a.close_code, 1009)
                await b.close()
                await e.close()
            run(body())
        finally:
            server.stop()


class CompressionAndAccessTest(unittest.TestCase):
    """[websocket] compression and rate limits, and the [access] table."""

    def test_compression_rate_limit_and_access_rules_apply(self):
        path = wt.write_file(wt.temp_dir(), "access.toml",
                             '[server]\nthreads = 2\nshutdown_timeout = "5s"\n'
                             '[websocket]\ncompression = "shared"\nrate_limit_messages = 5\n'
                             '[access]\nallowed_origins = ["https://chat.example.com"]\n'
                             'trusted_proxies = ["127.0.0.1"]\nblocklist = ["203.0.113.0/24"]\n'
                             '[[route]]\npath = "/e"\ncomponent = "echo"\n'
                             '[[route]]\npath = "/plain"\ncomponent = "echo"\ncompression = "off"\n')
        server = wt.windlass_server(path).start()
        try:
            async def body():
                good = {"Origin": "https://chat.example.com"}
                ws = await connect(server.url("/e"), extra_headers=good, compression="deflate")
                self.assertIn("permessage-deflate", ws.response_headers.get("Sec-WebSocket-Extensions", ""))
                await step(ws.send("z" * 500), "compressed echo")
                self.assertEqual(await step(ws.recv(), "echo"), "z" * 500)
                # Five messages a second: the burst runs out, the server closes with 1008.
                for i in range(20):
                    try:
                        await ws.send(f"m{i}")
                    except websockets.ConnectionClosed:
                        break
                await step(ws.wait_closed(), "rate-limited close")
                self.assertEqual(ws.close_code, 1008)
                plain = await connect(server.url("/plain"), extra_headers=good, compression="deflate")
                self.assertIsNone(plain.response_headers.get("Sec-WebSocket-Extensions"))
                await plain.close()
                for headers, what in (({"Origin": "https://evil.example.net"}, "foreign origin"),
                                      (dict(good, **{"X-Forwarded-For": "203.0.113.9"}), "blocked client")):
                    with self.assertRaises(websockets.InvalidStatusCode) as cm:
                        await connect(server.url("/e"), extra_headers=headers)
                    self.assertEqual(cm.exception.status_code, 403, what)
            run(body())
        finally:
            server.stop()


class LogFormatTest(unittest.TestCase):

    def test_json_log_lines_and_access_fields(self):
        server = wt.windlass_server(DEFAULT_CONFIG, "--log-format", "json", "--threads", "2",
                                    env=server_env(WINDLASS_LOG_LEVEL="debug")).start()
        try:
            async def body():
                ws = await connect(server.url("/echo?token=s3cret-value"),
                                   extra_headers={"X-Forwarded-For": '203.0.113.7, "quoted"\\'})
                await step(ws.send("ping"), "send")
                await step(ws.recv(), "echo")
                await ws.close(4001, "bye\u00e9\nnext")
                try:
                    await connect(server.url("/nowhere"))
                except websockets.exceptions.InvalidStatusCode:
                    pass
            run(body())
            self.assertEqual(http_request(server.port, "/healthz")[0], 200)
            wait_until(lambda: any('"event":"close"' in l for l in server.stderr_lines()), "the close line")
        finally:
            server.stop()
        lines = server.stderr_lines()
        self.assertTrue(lines)
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                self.fail(f"not a JSON line: {line!r}")
        for r in records:
            for key in ["time", "level", "logger"]:
                self.assertIn(key, r)
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        access = [r for r in records if r["logger"] == "access"]
        by_event = {}
        for r in access:
            by_event.setdefault(r["event"], []).append(r)
        upgrade = next(r for r in by_event["upgrade"] if r["path"] == "/echo")
        for key in ["id", "remote", "remote_port", "forwarded_for", "method", "path", "status", "duration_ms"]:
            self.assertIn(key, upgrade)
        self.assertEqual(upgrade["status"], 101)
        self.assertEqual(upgrade["remote"], "127.0.0.1")
        self.assertEqual(upgrade["forwarded_for"], '203.0.113.7, "quoted"\\')
        close = next(r for r in by_event["close"] if r["id"] == upgrade["id"])
        self.assertEqual((close["code"], close["cause"], close["reason"]), (4001, "peer_closed", "bye\u00e9\nnext"))
        self.assertEqual((close["bytes_in"], close["bytes_out"]), (4, 4))
        self.assertGreaterEqual(close["duration_ms"], 0)
        refused = next(r for r in by_event["refused"] if r["path"] == "/nowhere")
        self.assertEqual(refused["status"], 404)
        self.assertTrue(refused["reason"])
        health = next(r for r in by_event["http"] if r["path"] == "/healthz")
        self.assertEqual(health["status"], 200)
        # Queries carry tokens: they never reach the log.
        self.assertNotIn("s3cret-value", "\n".join(lines))
        self.assertTrue(any(r["logger"] == "windlass" and r["msg"].startswith("listening on") for r in records))


class ShutdownTest(unittest.TestCase):

    def test_sigterm_drains_then_closes_with_1001(self):
        drain_s = 2.0
        path = wt.write_file(wt.temp_dir(), "drain.toml",
                             f'[server]\nthreads = 2\ndrain_delay = "{int(drain_s * 1000)}ms"\nshutdown_timeout = "5s"\n'
                             f'[[route]]\npath = "/echo"\ncomponent = "echo"\n'
                             f'[[route]]\npath = "/*"\ncomponent = "static"\nroot = {toml_string(CHAT_PUBLIC)}\n')
        server = wt.windlass_server(path).start()
        try:
            async def body():
                clients = [await connect(server.url("/echo")) for _ in range(3)]
                signalled_at = time.monotonic()
                server.signal(signal.SIGTERM)
                loop = asyncio.get_running_loop()

                def ready_status():
                    return http_request(server.port, "/readyz")[0]
                status = None
                while time.monotonic() - signalled_at < drain_s / 2:
                    status = await loop.run_in_executor(None, ready_status)
                    if status == 503:
                        break
                    await asyncio.sleep(0.05)
                self.assertEqual(status, 503, "/readyz did not turn 503 early in the drain")
                self.assertEqual((await loop.run_in_executor(None, http_request, server.port, "/healthz"))[0], 200)
                # Still serving the clients it has while it drains.
                for i, ws in enumerate(clients):
                    await step(ws.send(f"during drain {i}"), "send during the drain")
                    self.assertEqual(await step(ws.recv(), "echo during the drain"), f"during drain {i}")
                for ws in clients:
                    await step(ws.wait_closed(), "the server's close")
                    self.assertEqual(ws.close_code, 1001)
                self.assertGreaterEqual(time.monotonic() - signalled_at, drain_s * 0.9,
                                        "clients were closed before drain_delay passed")
            run(body())
            self.assertEqual(server.wait(), 0, server.stderr_text())
        finally:
            server.kill()
        # The text access log: a close line per client, cause shutdown.
        closes = [l for l in server.stderr_lines() if " access close " in l]
        self.assertEqual(len(closes), 3, server.stderr_text())
        for line in closes:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\S+ info access close id=\d+ remote=127\.0\.0\.1:\d+ "
                                   r"forwarded_for=- path=/echo code=1001 cause=shutdown reason=\S.* "
                                   r"duration_ms=[\d.]+ bytes_in=\d+ bytes_out=\d+$")


class SystemdNotifyTest(unittest.TestCase):
    """sd_notify(3) against a socket of our own, read as systemd reads it."""

    def test_ready_watchdog_status_and_stopping(self):
        d = wt.temp_dir()
        sock_path = os.path.join(d, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(0.2)
        messages = queue.Queue()
        done = threading.Event()

        # Read continuously, as systemd does: sd_notify's send blocks once
        # the socket's queue (net.unix.max_dgram_qlen, often 10) is full.
        def reader():
            while not done.is_set():
                try:
                    messages.put(sock.recv(4096).decode())
                except socket.timeout:
                    continue
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()

        def receive_until(predicate, what):
            got = []
            deadline = time.monotonic() + STEP_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    message = messages.get(timeout=0.1)
                except queue.Empty:
                    continue
                got.append(message)
                if predicate(message):
                    return got
            raise AssertionError(f"no {what} notification; got {got}")

        env = server_env(NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
        server = wt.windlass_server(DEFAULT_CONFIG, env=env).start()
        try:
            ready = receive_until(lambda m: "READY=1" in m, "READY=1")[-1].split("\n")
            self.assertIn(f"STATUS=listening on 127.0.0.1:{server.port}", ready)
            start = time.monotonic()
            receive_until(lambda m: m == "WATCHDOG=1", "first WATCHDOG=1")
            receive_until(lambda m: m == "WATCHDOG=1", "second WATCHDOG=1")
            # Pings every 200 ms (half of WATCHDOG_USEC): two come well within 2 s.
            self.assertLess(time.monotonic() - start, 2.0)
            server.signal(signal.SIGTERM)
            stopping = receive_until(lambda m: "STOPPING=1" in m, "STOPPING=1")[-1].split("\n")
            extend = [f for f in stopping if f.startswith("EXTEND_TIMEOUT_USEC=")]
            self.assertEqual(len(extend), 1, stopping)
            # drain_delay 5 s + shutdown_timeout 10 s + a margin.
            self.assertGreaterEqual(int(extend[0].split("=")[1]), 15_000_000)
            # The watchdog keeps pinging through the drain.
            receive_until(lambda m: m == "WATCHDOG=1", "WATCHDOG=1 while draining")
            self.assertEqual(server.wait(), 0, server.stderr_text())
        finally:
            server.kill()
            done.set()
            thread.join()
            sock.close()


if __name__ == "__main__":
    wt.watchdog()
    wt.run_tests()
