"""The Pusher side of the hub's Python tests: a protocol 7 client, the HTTP
API's signer, a webhook receiver, and a windlass-server cluster (nodes
sharing one Redis) to run them against.

Beside windlass_test.py, for the tests that speak Pusher (the cluster
tests); imported the same way:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
    import windlass_test as wt  # noqa: E402
    import pusher_client as pc  # noqa: E402

The pieces:

- `Client`: one WebSocket connection speaking protocol 7 (what pusher-js
  does on the wire): connection_established and the socket_id, subscribe to
  public, private and presence channels with the signatures an auth
  endpoint would give, client events, and a log of everything received, so
  a test can wait for an event and then count how often it came.
  `reconnect=True` makes it reconnect as pusher-js does (at once, then
  with a growing delay) and subscribe again to what it had.
- `api_get()`, `api_post()`, `publish()`: the HTTP API, signed as the
  Pusher SDKs sign it.
- `WebhookSink`: an HTTP server on 127.0.0.1 that records the webhooks it
  receives (checking their signature).
- `Cluster`: windlass-server nodes with one [[app]] each (or several), a
  Redis URL, a node id and a prefix each, started and stopped with the
  harness's Server.

Standard library and python3-websockets only.
"""

import asyncio
import hashlib
import hmac
import http.client
import http.server
import json
import socket
import threading
import time
import urllib.parse

import websockets

import windlass_test as wt

APP_ID, APP_KEY, APP_SECRET = "cluster-app", "cluster-key", "cluster-secret"
HOST = wt.HOST


# ---------------------------------------------------------------------------
# Signatures


def sign(secret, text):
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def channel_auth(key, secret, socket_id, channel, channel_data=None):
    """The "auth" of a pusher:subscribe to a private or presence channel, as
    an auth endpoint (Laravel's /broadcasting/auth) returns it."""
    text = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{key}:{sign(secret, text)}"


def signed_path(method, path, key, secret, params=None, body=b""):
    """`path` with the signed query of the Pusher HTTP API."""
    q = {k: str(v) for k, v in (params or {}).items()}
    q.update(auth_key=key, auth_timestamp=str(int(time.time())), auth_version="1.0")
    if body:
        q["body_md5"] = hashlib.md5(body).hexdigest()
    to_sign = "&".join(f"{k}={q[k]}" for k in sorted(q))
    signature = sign(secret, f"{method}\n{path}\n{to_sign}")
    query = "&".join(f"{k}={urllib.parse.quote(q[k], safe='')}" for k in sorted(q))
    return f"{path}?{query}&auth_signature={signature}"


def _http(port, method, path, body=None, timeout=wt.STEP_TIMEOUT_S):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def api_get(port, path, params=None, app_id=APP_ID, key=APP_KEY, secret=APP_SECRET):
    """(status, parsed JSON or raw bytes) of a signed GET /apps/{id}{path}."""
    status, body = _http(port, "GET", signed_path("GET", f"/apps/{app_id}{path}", key, secret, params))
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def api_post(port, path, payload, app_id=APP_ID, key=APP_KEY, secret=APP_SECRET):
    body = json.dumps(payload).encode()
    status, answer = _http(port, "POST", signed_path("POST", f"/apps/{app_id}{path}", key, secret, body=body), body)
    try:
        return status, json.loads(answer)
    except ValueError:
        return status, answer


def publish(port, channels, name, data, socket_id=None, **app):
    """POST /events: `data` (any JSON value) goes as a JSON string, as the
    SDKs send it. Fails the test unless answered 200."""
    payload = {"name": name, "channels": list(channels), "data": json.dumps(data)}
    if socket_id:
        payload["socket_id"] = socket_id
    status, answer = api_post(port, "/events", payload, **app)
    assert status == 200, f"POST /events on port {port} answered {status}: {answer!r}"
    return answer


# ---------------------------------------------------------------------------
# The client


class Client:
    """One Pusher connection to ws://HOST:`port`/app/`key` (protocol 7).

    Every message received is appended to `messages` as a dict with `data`
    decoded from its JSON string when it is one; `wait_for()` waits for one
    that matches, `count()` counts them. With `reconnect`, a lost
    connection is opened again (at once, then after 0.1, 0.2, 0.4... s, at
    most 1 s apart, as pusher-js does) and every channel subscribed again;
    `connections` counts the connections made."""

    def __init__(self, port, name, key=APP_KEY, secret=APP_SECRET, reconnect=False):
        self.port = port
        self.name = name
        self.key = key
        self.secret = secret
        self.reconnect = reconnect
        self.messages = []
        self.socket_id = None
        self.connections = 0
        self.ws = None
        self.channels = {}           # channel -> (user_id, user_info) or None
        self._changed = asyncio.Event()
        self._task = None
        self._closing = False
        self.closed = asyncio.Event()

    def url(self):
        return f"ws://{HOST}:{self.port}/app/{self.key}?protocol=7&client=windlass-test&version=1.0"

    async def connect(self):
        """Connects and waits for the socket_id; starts the reader."""
        await self._open()
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _open(self):
        self.ws = await wt.step(websockets.connect(self.url(), open_timeout=wt.STEP_TIMEOUT_S, ping_interval=None,
                                                   max_size=2**20), f"{self.name}: connect to port {self.port}")
        first = json.loads(await wt.step(self.ws.recv(), f"{self.name}: connection_established"))
        assert first["event"] == "pusher:connection_established", f"{self.name}: first message {first}"
        self.socket_id = json.loads(first["data"])["socket_id"]
        self.connections += 1
        self.closed.clear()

    async def _run(self):
        delay = 0.0
        while True:
            try:
                async for raw in self.ws:
                    self._record(raw)
            except websockets.ConnectionClosed:
                pass
            self.closed.set()
            if self._closing or not self.reconnect:
                return
            while not self._closing:
                if delay:
                    await asyncio.sleep(delay)
                delay = min(1.0, max(0.1, delay * 2))
                try:
                    await self._open()
                except (OSError, AssertionError, asyncio.TimeoutError, websockets.WebSocketException):
                    continue
                delay = 0.0
                for channel, member in list(self.channels.items()):
                    await self._send_subscribe(channel, member)
                break

    def _record(self, raw):
        m = json.loads(raw)
        if isinstance(m.get("data"), str):
            try:
                m["data"] = json.loads(m["data"])
            except ValueError:
                pass
        m["_at"] = time.monotonic()
        m["_conn"] = self.connections
        self.messages.append(m)
        if m.get("event") == "pusher:ping":
            asyncio.ensure_future(self.send({"event": "pusher:pong", "data": {}}))
        self._changed.set()

    async def send(self, message):
        await self.ws.send(json.dumps(message))

    async def _send_subscribe(self, channel, member):
        data = {"channel": channel}
        if channel.startswith("presence-"):
            user_id, user_info = member
            channel_data = json.dumps({"user_id": user_id, "user_info": user_info})
            data["channel_data"] = channel_data
            data["auth"] = channel_auth(self.key, self.secret, self.socket_id, channel, channel_data)
        elif channel.startswith("private-"):
            data["auth"] = channel_auth(self.key, self.secret, self.socket_id, channel)
        try:
            await self.send({"event": "pusher:subscribe", "data": data})
        except websockets.ConnectionClosed:
            pass

    async def subscribe(self, channel, user_id=None, user_info=None, wait=True):
        """Subscribes (presence channels need `user_id`); returns the data of
        pusher_internal:subscription_succeeded (for presence: the member
        list), or None without `wait`."""
        member = (str(user_id), user_info or {}) if channel.startswith("presence-") else None
        self.channels[channel] = member
        start = len(self.messages)
        await self._send_subscribe(channel, member)
        if not wait:
            return None
        m = await self.wait_for("pusher_internal:subscription_succeeded", channel, since=start,
                                what=f"subscription_succeeded on {channel}")
        return m["data"]

    async def unsubscribe(self, channel):
        self.channels.pop(channel, None)
        await self.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})

    def matches(self, event, channel=None, where=None, since=0):
        return [m for m in self.messages[since:]
                if m.get("event") == event and (channel is None or m.get("channel") == channel)
                and (where is None or where(m))]

    def count(self, event, channel=None, where=None, since=0):
        return len(self.matches(event, channel, where, since))

    async def wait_for(self, event, channel=None, where=None, since=0, timeout=wt.STEP_TIMEOUT_S, what=None):
        """The first message since index `since` with this event (and
        channel, and `where(m)`), waiting up to `timeout` s for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matches(event, channel, where, since)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                tail = [(m.get("event"), m.get("channel"), m.get("data")) for m in self.messages[-8:]]
                raise AssertionError(f"{self.name}: no {what or event} within {timeout} s "
                                     f"(last messages: {tail})")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass

    async def close(self):
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (asyncio.TimeoutError, websockets.WebSocketException):
                self._task.cancel()


def members_of(subscription_data):
    """{user_id: user_info} of a presence subscription_succeeded's data."""
    p = subscription_data["presence"]
    assert p["count"] == len(p["ids"]) == len(p["hash"]), f"inconsistent presence data: {p}"
    assert sorted(p["ids"]) == sorted(p["hash"]), f"ids and hash differ: {p}"
    return dict(p["hash"])


async def settle(seconds=wt.QUIET_S):
    """Gives late duplicates time to arrive before a test counts."""
    await asyncio.sleep(seconds)


async def close_all(clients):
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


# ---------------------------------------------------------------------------
# Webhooks


class WebhookSink:
    """An HTTP server on 127.0.0.1:`port` (free) recording every webhook
    POST: `events` is the list of (received at, event dict), in order. A
    POST with a wrong X-Pusher-Signature is recorded in `bad` and answered
    401."""

    def __init__(self, secret=APP_SECRET, key=APP_KEY):
        sink = self
        self.events = []
        self.bad = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = (self.headers.get("X-Pusher-Key") == key
                      and hmac.compare_digest(self.headers.get("X-Pusher-Signature", ""),
                                              hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()))
                with sink.lock:
                    if ok:
                        for e in json.loads(body)["events"]:
                            sink.events.append((time.monotonic(), e))
                    else:
                        sink.bad.append(body)
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{HOST}:{self.port}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, name, **fields):
        with self.lock:
            return [e for _, e in self.events
                    if e.get("name") == name and all(e.get(k) == v for k, v in fields.items())]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Redis, for what a test checks there


def _resp(args):
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out += f"${len(b)}\r\n".encode() + b + b"\r\n"
    return out


def _read_reply(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise AssertionError(f"unexpected reply from redis: {line!r}")


def redis_command(url_or_port, *args, timeout=wt.STEP_TIMEOUT_S):
    """One command to the Redis at `url_or_port` (redis://127.0.0.1:PORT,
    redis-cluster://127.0.0.1:PORT,..., or a port), its reply decoded
    (strings, integers, lists, None). A Cluster's MOVED is followed."""
    port = url_or_port
    if isinstance(url_or_port, str):
        port = int(url_or_port.split("://", 1)[-1].split(",")[0].rsplit(":", 1)[1].split("/")[0])
    for _ in range(3):
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(_resp(args))
            with s.makefile("rb") as f:
                try:
                    return _read_reply(f)
                except AssertionError as e:
                    moved = str(e).split("redis error: MOVED ", 1)
                    if len(moved) != 2:
                        raise
                    port = int(moved[1].rsplit(":", 1)[1])
    raise AssertionError(f"redis: {args[0]} moved more than twice")


# ---------------------------------------------------------------------------
# A cluster of windlass-server nodes


def app_toml(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, webhook=None, extra=""):
    lines = ["[[app]]", f'id = "{app_id}"', f'key = "{key}"', f'secret = "{secret}"', "client_events = true", extra]
    if webhook:
        lines += ["[[app.webhook]]", f'url = "{webhook}"',
                  'events = ["channel_occupied", "channel_vacated", "member_added", "member_removed"]']
    return "\n".join(lines) + "\n"


def node_config(directory, name, redis_url, prefix="windlass:", apps=None, webhook_delay="0s", threads=2,
                broker_extra=""):
    """A windlass-server config for one node: the hub with `apps` (TOML
    from app_toml(); one app by default), a bridge to `redis_url` with
    `prefix` (and the [broker] lines `broker_extra`); no routes of its
    own. Returns its path."""
    text = f"""[server]
host = "{HOST}"
port = 0
threads = {threads}
drain_delay = "0s"
shutdown_timeout = "3s"

[log]
level = "info"
access = false

[broker]
redis_url = "{redis_url}"
prefix = "{prefix}"
{broker_extra}

[channels]
webhook_delay = "{webhook_delay}"
{apps if apps is not None else app_toml()}
"""
    return wt.write_file(directory, f"{name}.toml", text)


class Cluster:
    """`n` windlass-server nodes sharing `redis_url`, node ids 1..n (or
    `first_id`...), each with its own config from node_config() (node i
    with the [broker] lines `broker_extra[i]`, if any). `nodes` are harness
    Servers; every one is killed at exit if a test leaves it."""

    def __init__(self, redis_url, n=3, prefix="windlass:", first_id=1, name="node", broker_extra=(), **config):
        self.dir = wt.temp_dir("windlass-cluster-")
        self.redis_url = redis_url
        self.prefix = prefix
        self.nodes = []
        for i in range(n):
            node_name = f"{name}{first_id + i}"
            extra = broker_extra[i] if i < len(broker_extra) else ""
            conf = node_config(self.dir, node_name, redis_url, prefix=prefix, broker_extra=extra, **config)
            server = wt.windlass_server(conf, name=node_name,
                                        env=wt.server_env(WINDLASS_NODE_ID=str(first_id + i)))
            self.nodes.append(server)

    def start(self):
        for s in self.nodes:
            s.start()
        for s in self.nodes:
            self.wait_joined(s)
        return self

    def wait_joined(self, server, timeout=wt.START_TIMEOUT_S):
        """Waits until `server`'s bridge is connected and its hub has
        registered in Redis (its first heartbeat: its alive key is set).
        Before that, the hub answers presence from its own view."""
        wt.wait_until(lambda: wt.scrape_metric(server.port, "windlass_redis_connected") == 1,
                      f"{server.name} connected to Redis", timeout=timeout)
        node_id = server.env["WINDLASS_NODE_ID"]
        wt.wait_until(lambda: redis_command(self.redis_url, "EXISTS", f"{self.prefix}node:{node_id}:alive") == 1,
                      f"{server.name} registered in Redis", timeout=timeout)

    @property
    def ports(self):
        return [s.port for s in self.nodes]

    def stop(self):
        for s in self.nodes:
            if s.alive():
                s.terminate()

