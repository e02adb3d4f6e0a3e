#!/usr/bin/python3
"""windlass-server's `auth` on [[route]]s, end to end, with real clients.

One windlass-server with four WebSocket routes:

- /jwt (echo, auth = "jwt"): HS256 tokens signed here with hmac and
  base64 (no PyJWT), read from ?access_token= or the "jwt" cookie;
- /rs (echo, auth = "jwt", RS256): a key pair made with openssl, tokens
  signed with `openssl dgst -sign`, the bearer header or the query;
- /proxy (chat, auth = "proxy"): AuthProxy asking a small http.server in
  this process, which answers from the forwarded Cookie: 200 with a user,
  401, 403, 500, or too late (past the route's 500 ms timeout);
- /cached (echo, auth = "proxy", answers cached): the same endpoint;
- /open (echo): no auth, to show the others' checks stay on their routes.

Checks: a good token (query or cookie) opens the route and echoes; no
token, a bad signature, an expired one, another audience, "alg": "none"
are 401 with WWW-Authenticate; RS256 tokens verify with the public key
file and an HS256 token keyed with that public key's text does not; the endpoint's 200 lets the handshake
through with the cookie, the client address, the URI and the shared key
(headers_env) forwarded, 401/403 are passed on, a 500 is 503, no answer in
time 504, no cookie 401 without asking; a cached answer is not asked
again. The JWT secret and the shared key never appear in the log.

Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; by hand:

    WINDLASS_SERVER_BIN=build/release/src/server/windlass-server \\
    WINDLASS_SOURCE_DIR=$PWD /usr/bin/python3 tests/integration/server_auth_test.py

Without WINDLASS_SERVER_BIN it looks in build/release, and skips (exit 0,
saying so) when there is no binary.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import windlass_test as wt  # noqa: E402
from windlass_test import STEP_TIMEOUT_S, run_async as run, server_env, step  # noqa: E402

SERVER_BIN = wt.server_binary(required=False)

JWT_SECRET = "test-secret-of-more-than-32-bytes-0123456789"
PROXY_KEY = "shared-key-the-endpoint-checks-5f0c"
ISSUER = "https://app.test"
AUDIENCE = "chat"
PROXY_TIMEOUT_S = 0.5


# ---------------------------------------------------------------- tokens

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims, secret=JWT_SECRET, header=None):
    """An HS256 JWS (RFC 7515 compact form) of `claims`."""
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def make_rs256_token(claims, key_file):
    """An RS256 JWS of `claims`, signed by openssl with the private key `key_file`."""
    header = {"alg": "RS256", "typ": "JWT"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file], input=signing_input.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return signing_input + "." + b64url(r.stdout)


def claims(**overrides):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "iat": now, "exp": now + 300}
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


# ---------------------------------------------------------------- the web application

class AuthEndpoint:
    """The web application's check, answering from the Cookie header:
    session=ada or session=bob -> 200 {"user_id": ...}; session=banned ->
    403; session=broken -> 500; session=slow -> 200 after twice the
    route's timeout; anything else -> 401. Records every request."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with endpoint.lock:
                    endpoint.requests.append({"path": self.path, "headers": dict(self.headers.items())})
                if self.headers.get("X-Windlass-Key") != PROXY_KEY:
                    return self.answer(403, b"")
                cookie = self.headers.get("Cookie", "")
                session = dict(p.strip().split("=", 1) for p in cookie.split(";") if "=" in p).get("session")
                if session in ("ada", "bob"):
                    return self.answer(200, json.dumps({"user_id": session}).encode(), "application/json")
                if session == "banned":
                    return self.answer(403, b"")
                if session == "broken":
                    return self.answer(500, b"oops")
                if session == "slow":
                    time.sleep(PROXY_TIMEOUT_S * 2)
                    return self.answer(200, b'{"user_id":"late"}', "application/json")
                return self.answer(401, b"")

            def answer(self, status, body, content_type="text/plain"):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # windlass stopped waiting (the slow case)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((wt.HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def last(self):
        with self.lock:
            return self.requests[-1]


# ---------------------------------------------------------------- the server

ENDPOINT = None
SERVER = None
KEYS = None  # (private key file, public key file) of the RS256 route


def config(endpoint_port, public_key_file):
    url = wt.toml_string(f"http://{wt.HOST}:{endpoint_port}/ws-auth")
    return f"""
[server]
host = "{wt.HOST}"
port = 0
threads = 2
shutdown_timeout = "5s"

[[route]]
path = "/jwt"
component = "echo"
auth = "jwt"

[route.jwt]
algorithm = "HS256"
secret_env = "TEST_JWT_SECRET"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
sources = ["query:access_token", "cookie:jwt"]
leeway = "5s"

[[route]]
path = "/rs"
component = "echo"
auth = "jwt"
jwt = {{ algorithm = "RS256", public_key_file = {wt.toml_string(public_key_file)}, issuer = "{ISSUER}", audience = "{AUDIENCE}" }}

[[route]]
path = "/proxy"
component = "chat"
auth = "proxy"

[route.proxy]
url = {url}
timeout = "{int(PROXY_TIMEOUT_S * 1000)}ms"
forward_headers = ["Cookie"]
headers_env = {{ X-Windlass-Key = "TEST_PROXY_KEY" }}
allow_ttl = 0
deny_ttl = 0

[[route]]
path = "/cached"
component = "echo"
auth = "proxy"
proxy = {{ url = {url}, headers_env = {{ X-Windlass-Key = "TEST_PROXY_KEY" }}, allow_ttl = "1m" }}

[[route]]
path = "/open"
component = "echo"
"""


def server_environment():
    return server_env(TEST_JWT_SECRET=JWT_SECRET, TEST_PROXY_KEY=PROXY_KEY)


def setUpModule():
    global ENDPOINT, SERVER, KEYS
    if SERVER_BIN is None:
        raise unittest.SkipTest("windlass-server not built: set WINDLASS_SERVER_BIN "
                                "(ctest does) or build build/release")
    if wt.find_program("openssl") is None:
        raise unittest.SkipTest("openssl not installed (the RS256 route's key is made with it)")
    wt.watchdog()
    d = wt.temp_dir()
    KEYS = (os.path.join(d, "issuer.key"), os.path.join(d, "issuer.pem"))
    for argv in (["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", KEYS[0]],
                 ["pkey", "-in", KEYS[0], "-pubout", "-out", KEYS[1]]):
        r = subprocess.run(["openssl", *argv], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    ENDPOINT = AuthEndpoint()
    ENDPOINT.start()
    path = wt.write_file(d, "auth.toml", config(ENDPOINT.port, KEYS[1]))
    SERVER = wt.windlass_server(path, env=server_environment()).start()


def tearDownModule():
    if SERVER is not None and SERVER.alive():
        SERVER.stop()
    if ENDPOINT is not None:
        ENDPOINT.stop()


async def connect(path, headers=None):
    return await step(websockets.connect(SERVER.url(path), extra_headers=headers or {}, open_timeout=None,
                                         close_timeout=STEP_TIMEOUT_S, compression=None),
                      f"connect to {path}")


async def refused(path, headers=None):
    """(status, headers) of a refused handshake; fails if it was accepted."""
    try:
        ws = await connect(path, headers)
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code, e.headers
    await ws.close()
    raise AssertionError(f"{path}: the handshake was accepted")


async def echoes(path, headers=None):
    ws = await connect(path, headers)
    try:
        await step(ws.send("ping"), "send")
        return await step(ws.recv(), "echo")
    finally:
        await ws.close()


class JwtRouteTest(unittest.TestCase):

    def tearDown(self):
        SERVER.assert_alive()

    def test_a_good_token_in_the_query_or_the_cookie_opens_the_route(self):
        token = make_token(claims())
        self.assertEqual(run(echoes(f"/jwt?access_token={token}")), "ping")
        self.assertEqual(run(echoes("/jwt", {"Cookie": f"theme=dark; jwt={token}"})), "ping")
        # An audience list holding ours is fine too.
        self.assertEqual(run(echoes("/jwt?access_token=" + make_token(claims(aud=["billing", AUDIENCE])))), "ping")

    def test_bad_tokens_are_refused_with_401(self):
        now = int(time.time())
        cases = {
            "no token": "/jwt",
            "bad signature": "/jwt?access_token=" + make_token(claims(), secret="another-secret-of-32-bytes-at-least!!"),
            "expired": "/jwt?access_token=" + make_token(claims(exp=now - 60)),
            "30 s past exp, leeway 5 s": "/jwt?access_token=" + make_token(claims(exp=now - 30)),
            "not yet valid": "/jwt?access_token=" + make_token(claims(nbf=now + 60)),
            "another audience": "/jwt?access_token=" + make_token(claims(aud="billing")),
            "another issuer": "/jwt?access_token=" + make_token(claims(iss="https://evil.test")),
            "no expiry": "/jwt?access_token=" + make_token(claims(exp=None)),
            "alg none": "/jwt?access_token=" + make_token(claims(), header={"alg": "none", "typ": "JWT"}),
            "garbage": "/jwt?access_token=not.a.token",
            # Bearer is not among this route's sources: as good as no token.
            "a bearer header": ("/jwt", {"Authorization": "Bearer " + make_token(claims())}),
        }
        for what, target in cases.items():
            with self.subTest(what):
                path, headers = target if isinstance(target, tuple) else (target, None)
                status, response_headers = run(refused(path, headers))
                self.assertEqual(status, 401)
                self.assertTrue(response_headers.get("WWW-Authenticate", "").startswith("Bearer"), response_headers)
        self.assertEqual(run(echoes("/jwt?access_token=" + make_token(claims(exp=now - 2)))), "ping",
                         "2 s past exp is within the 5 s leeway")

    def test_rs256_with_the_issuers_public_key(self):
        self.assertEqual(run(echoes("/rs", {"Authorization": "Bearer " + make_rs256_token(claims(), KEYS[0])})),
                         "ping")
        self.assertEqual(run(echoes("/rs?access_token=" + make_rs256_token(claims(), KEYS[0]))), "ping")
        with open(KEYS[1]) as f:
            public_pem = f.read()
        # Algorithm confusion: an HS256 token keyed with the public key's PEM text.
        confused = make_token(claims(), secret=public_pem)
        expired = make_rs256_token(claims(exp=int(time.time()) - 120), KEYS[0])
        for what, token in (("HS256 keyed with the public key", confused), ("expired", expired),
                            ("HS256 with the route's secret", make_token(claims()))):
            with self.subTest(what):
                self.assertEqual(run(refused("/rs", {"Authorization": "Bearer " + token}))[0], 401)

    def test_refusals_are_logged_with_the_reason_and_without_the_secret(self):
        run(refused("/jwt?access_token=" + make_token(claims(aud="billing"))))
        wt.wait_until(lambda: any("wrong token audience" in line for line in SERVER.stderr_lines()),
                      "the jwt refusal's log line")
        text = "\n".join(SERVER.stderr_lines())
        self.assertNotIn(JWT_SECRET, text)
        self.assertNotIn(PROXY_KEY, text)
        self.assertIn(f"route /jwt: auth jwt (HS256, issuer {ISSUER}, audience {AUDIENCE})", text)
        self.assertIn(f"route /proxy: auth proxy (GET http://{wt.HOST}:{ENDPOINT.port}/ws-auth, timeout 500ms)", text)

    def test_routes_without_auth_are_untouched(self):
        self.assertEqual(run(echoes("/open")), "ping")

    def test_refusals_are_counted_by_status(self):
        before = wt.scrape_metric(SERVER.port, "windlass_http_refused_total", {"status": "401"}) or 0
        run(refused("/jwt"))
        wt.wait_until(lambda: (wt.scrape_metric(SERVER.port, "windlass_http_refused_total", {"status": "401"}) or 0)
                      > before, "the 401 counted in windlass_http_refused_total")


class ProxyRouteTest(unittest.TestCase):

    def tearDown(self):
        SERVER.assert_alive()

    def test_the_endpoints_200_lets_the_handshake_through_with_what_was_forwarded(self):
        async def body():
            before = ENDPOINT.count()
            ada = await connect("/proxy?room=1", {"Cookie": "session=ada", "X-Not-Forwarded": "x"})
            asked = ENDPOINT.last()
            self.assertEqual(ENDPOINT.count(), before + 1)
            self.assertEqual(asked["path"], "/ws-auth")
            h = asked["headers"]
            self.assertEqual(h.get("Cookie"), "session=ada")
            self.assertEqual(h.get("X-Windlass-Key"), PROXY_KEY)
            self.assertEqual(h.get("X-Original-URI"), "/proxy?room=1")
            self.assertEqual(h.get("X-Forwarded-For"), "127.0.0.1")
            self.assertNotIn("X-Not-Forwarded", h)
            # headers_env adds to the default headers (Accept: application/json).
            self.assertEqual(h.get("Accept"), "application/json")
            bob = await connect("/proxy", {"Cookie": "session=bob"})
            try:
                await step(ada.send("hi bob"), "ada sends")
                self.assertEqual(await step(bob.recv(), "bob receives"), "hi bob")
            finally:
                await ada.close()
                await bob.close()
        run(body())

    def test_the_endpoints_refusals_and_failures(self):
        cases = [("session=nobody", 401), ("session=banned", 403), ("session=broken", 503)]
        for cookie, expected in cases:
            with self.subTest(cookie):
                before = ENDPOINT.count()
                self.assertEqual(run(refused("/proxy", {"Cookie": cookie}))[0], expected)
                self.assertEqual(ENDPOINT.count(), before + 1)

    def test_no_answer_in_time_is_504(self):
        start = time.monotonic()
        status, _ = run(refused("/proxy", {"Cookie": "session=slow"}))
        elapsed = time.monotonic() - start
        self.assertEqual(status, 504)
        self.assertGreaterEqual(elapsed, PROXY_TIMEOUT_S * 0.9)
        self.assertLess(elapsed, PROXY_TIMEOUT_S * 2, "the 504 came after the endpoint's late answer")
        wt.wait_until(lambda: any("auth proxy:" in line and "/proxy" in line for line in SERVER.stderr_lines()),
                      "the auth proxy's log line")

    def test_no_cookie_is_401_without_asking(self):
        before = ENDPOINT.count()
        self.assertEqual(run(refused("/proxy"))[0], 401)
        self.assertEqual(ENDPOINT.count(), before)

    def test_a_cached_answer_is_not_asked_again(self):
        before = ENDPOINT.count()
        self.assertEqual(run(echoes("/cached", {"Cookie": "session=ada; n=cached"})), "ping")
        self.assertEqual(run(echoes("/cached", {"Cookie": "session=ada; n=cached"})), "ping")
        self.assertEqual(ENDPOINT.count(), before + 1, "the second handshake asked again")
        # /proxy caches nothing (allow_ttl = 0): asked each time.
        before = ENDPOINT.count()
        for _ in range(2):
            run(refused("/proxy", {"Cookie": "session=nobody"}))
        self.assertEqual(ENDPOINT.count(), before + 2)


class CheckConfigTest(unittest.TestCase):

    def test_check_config_names_the_auth_and_never_prints_the_secrets(self):
        path = wt.write_file(wt.temp_dir(), "auth.toml", config(1, KEYS[1]))
        r = subprocess.run([SERVER_BIN, "--config", path, "--check-config"], capture_output=True, text=True,
                           timeout=30, env=server_environment())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/jwt echo (auth jwt)", r.stdout)
        self.assertIn("/proxy chat (auth proxy)", r.stdout)
        self.assertIn("/open echo,", r.stdout)
        self.assertNotIn(JWT_SECRET, r.stdout + r.stderr)
        self.assertNotIn(PROXY_KEY, r.stdout + r.stderr)


if __name__ == "__main__":
    wt.run_tests()
