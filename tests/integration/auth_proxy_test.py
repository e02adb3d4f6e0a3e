#!/usr/bin/python3
"""AuthProxy in front of a real PHP session, end to end.

A PHP application (`php -S`, the built-in server) with two scripts: login.php
starts a session and puts the user in it; auth.php answers 200
{"user_id": ...} when the session has a user, 401 otherwise — what
docs/authentication.md tells a web application to add. A windlass server
(tests/integration/auth_server.cpp) has one AuthProxy route, "/ws", that
asks auth.php with the handshake's Cookie header, and greets each
connection with the user id it was given.

Checks: with the PHPSESSID cookie of a login, 101 and "hello <user>"; with
no cookie, 401 without PHP being asked; with a cookie of no session, PHP's
401; with PHP stopped, 503.

Run by ctest with WINDLASS_AUTH_SERVER_BIN set; by hand:

    WINDLASS_AUTH_SERVER_BIN=build/dev/tests/windlass-auth-test-server \\
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/auth_proxy_test.py

Skips (exit 0, saying so) when php is not installed.
"""

import asyncio
import os
import re
import sys
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import STEP_TIMEOUT_S, run_async as run, step  # noqa: E402

LOGIN_PHP = r"""<?php
session_start();
$_SESSION['user'] = $_GET['user'] ?? 'ada';
header('Content-Type: text/plain');
echo "logged in as {$_SESSION['user']}\n";
"""

# Read-only: read_and_close releases the session's lock at once, so checks
# for one user's many tabs do not queue behind each other.
AUTH_PHP = r"""<?php
session_start(['read_and_close' => true]);
if (!isset($_SESSION['user'])) {
    http_response_code(401);
    exit;
}
header('Content-Type: application/json');
echo json_encode(['user_id' => $_SESSION['user']]);
"""


class PhpApp:
    """`php -S` serving login.php and auth.php, sessions in a temp dir."""

    def __init__(self):
        self.root = wt.temp_dir("windlass-auth-php-")
        sessions = os.path.join(self.root, "sessions")
        os.mkdir(sessions)
        wt.write_file(self.root, "login.php", LOGIN_PHP)
        wt.write_file(self.root, "auth.php", AUTH_PHP)
        self.port = wt.free_port()
        self.proc = wt.External(
            [wt.find_program("php"), "-n", "-d", f"session.save_path={sessions}", "-d", "session.use_strict_mode=1",
             "-S", f"{wt.HOST}:{self.port}", "-t", self.root],
            "php", port=self.port)

    def start(self):
        self.proc.start()

    def stop(self):
        self.proc.stop(expect=None)

    def login(self, user):
        """The PHPSESSID cookie ("PHPSESSID=...") of a new session for `user`."""
        status, headers, body = wt.http_request(self.port, f"/login.php?user={user}")
        assert status == 200, f"login.php answered {status}: {body!r}"
        cookie = headers.get("Set-Cookie", "")
        m = re.match(r"(PHPSESSID=[^;]+)", cookie)
        assert m, f"login.php set no PHPSESSID cookie: {headers}"
        return m.group(1)


PHP = None
SERVER = None


def setUpModule():
    global PHP, SERVER
    if wt.find_program("php") is None:
        raise unittest.SkipTest("php not installed (scripts/install-deps.sh --with-test installs php-cli)")
    wt.watchdog()
    PHP = PhpApp()
    PHP.start()
    binary = wt.executable("WINDLASS_AUTH_SERVER_BIN")
    SERVER = wt.Server([binary, "--auth-url", f"http://{wt.HOST}:{PHP.port}/auth.php", "--threads", "2"],
                       "auth-server")
    SERVER.start()


def tearDownModule():
    if SERVER is not None and SERVER.alive():
        SERVER.stop()
    if PHP is not None and PHP.proc.alive():
        PHP.stop()


async def connect(headers):
    return await step(websockets.connect(SERVER.url("/ws"), extra_headers=headers, open_timeout=None,
                                         close_timeout=STEP_TIMEOUT_S, compression=None),
                      f"connect with {sorted(headers)}")


async def greeting(cookie):
    """The first message of a connection opened with `cookie`."""
    ws = await connect({"Cookie": cookie})
    try:
        return await step(ws.recv(), "the greeting")
    finally:
        await ws.close()


async def handshake_status(url, headers):
    """The HTTP status of a refused handshake; fails if it was accepted."""
    try:
        ws = await step(websockets.connect(url, extra_headers=headers, open_timeout=None, compression=None),
                        f"connect to {url}")
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    raise AssertionError(f"{url}: the handshake was accepted")


class AuthProxyWithPhp(unittest.TestCase):
    def setUp(self):
        if not PHP.proc.alive():
            PHP.start()

    def test_a_logged_in_session_opens_and_its_user_reaches_the_component(self):
        cookie = PHP.login("ada")

        async def go():
            ws = await connect({"Cookie": cookie})
            try:
                self.assertEqual(await step(ws.recv(), "the greeting"), "hello ada")
                await ws.send("ping")
                self.assertEqual(await step(ws.recv(), "the echo"), "ping")
            finally:
                await ws.close()
            # A second tab: the answer is cached, and the user is the same.
            self.assertEqual(await greeting(cookie), "hello ada")
        run(go())

    def test_two_users_each_get_their_own_id(self):
        ada, bob = PHP.login("ada2"), PHP.login("bob")

        async def go():
            self.assertEqual(await asyncio.gather(greeting(ada), greeting(bob)), ["hello ada2", "hello bob"])
        run(go())

    def test_without_a_cookie_it_is_401(self):
        self.assertEqual(run(handshake_status(SERVER.url("/ws"), {})), 401)
        self.assertIn("none of Cookie, Authorization in the request", SERVER.log_text())

    def test_a_cookie_without_a_session_is_phps_401(self):
        status = run(handshake_status(SERVER.url("/ws"), {"Cookie": "PHPSESSID=nosuchsession0123456789"}))
        self.assertEqual(status, 401)
        wt.wait_until(lambda: "auth.php answered 401" in SERVER.log_text(), "the proxy's log line for PHP's 401")

    def test_php_stopped_is_503(self):
        cookie = PHP.login("carol")  # never checked yet: nothing cached for it
        PHP.stop()
        self.assertEqual(run(handshake_status(SERVER.url("/ws"), {"Cookie": cookie})), 503)
        wt.wait_until(lambda: "connection refused" in SERVER.log_text(), "the proxy's log line saying why")


if __name__ == "__main__":
    wt.run_tests()
