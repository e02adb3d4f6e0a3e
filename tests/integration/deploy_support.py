"""What the deploy_*_test.py scripts share: finding windlass-server, free
ports, a config file for it, starting and stopping its processes (and any
other program the test runs) in their own process groups, plain HTTP GETs.

Every process started here is registered; `stop_everything()` (called at
exit, and from each test's tearDown) kills whatever is still running, so a
failed assertion never leaves a server, nginx or supervisord behind.
"""

import atexit
import faulthandler
import http.client
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 15

LISTENING = re.compile(r"^listening on (\S+):(\d+)( \(tls\))?$")

SOURCE_DIR = os.environ.get("WINDLASS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_PUBLIC = os.path.join(SOURCE_DIR, "examples", "chat", "public")
DEPLOY_DIR = os.path.join(SOURCE_DIR, "deploy")


def bound_runtime(seconds):
    """After `seconds`, dumps every thread's stack, stops every process
    started here and exits with 1: a hang fails the test with a trace
    instead of waiting for ctest's timeout. SIGTERM and SIGINT also stop
    the processes before exiting."""
    def expire():
        print(f"\n{os.path.basename(sys.argv[0])}: still running after {seconds} s, giving up", file=sys.stderr)
        faulthandler.dump_traceback(all_threads=True)
        stop_everything()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()

    def on_signal(signo, _frame):
        stop_everything()
        os._exit(128 + signo)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def server_binary():
    """WINDLASS_SERVER_BIN, else the usual build directories."""
    env = os.environ.get("WINDLASS_SERVER_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise SystemExit(f"WINDLASS_SERVER_BIN={env} is not an executable file")
        return os.path.abspath(env)
    for build in ("build/release", "build/h11"):
        path = os.path.join(SOURCE_DIR, build, "src", "server", "windlass-server")
        if os.access(path, os.X_OK):
            return path
    raise SystemExit("windlass-server not found: set WINDLASS_SERVER_BIN or build build/release")


def require_programs(*names):
    """Returns {name: path}; exits 0 with a skip message naming what is
    missing (scripts/install-deps.sh --with-test installs all of them)."""
    found = {}
    missing = []
    for name in names:
        path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing:
        print(f"SKIP: not installed: {', '.join(missing)} (scripts/install-deps.sh --with-test installs them)")
        sys.exit(0)
    return found


def free_port():
    """A port free on 127.0.0.1 now. Whoever binds it next wins; the tests
    that need a fixed port bind it within milliseconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(argv, cwd):
    r = subprocess.run(["openssl"] + argv, cwd=cwd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(argv)} failed:\n{r.stdout}{r.stderr}")


def make_ca(directory):
    """A throwaway CA (P-256, one day): returns the path of ca.crt."""
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=windlass test CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
             directory)
    return os.path.join(directory, "ca.crt")


def make_leaf(directory, name, common_name="127.0.0.1"):
    """A server certificate for 127.0.0.1 signed by make_ca's CA: returns
    the paths of NAME.crt and NAME.key."""
    with open(os.path.join(directory, f"{name}.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}"], directory)
    _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
              "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext"], directory)
    return os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")


def toml_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_server_config(directory, name="windlass.toml", *, port=0, drain_delay="0s",
                        shutdown_timeout="5s", ping_interval=None, threads=1, access_log=True, tls=None,
                        extra_routes=""):
    """A windlass-server config serving what deploy/windlass.toml serves
    (the chat page and room at "/", echo at "/echo"), on 127.0.0.1."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"threads = {threads}",
        f'drain_delay = "{drain_delay}"',
        f'shutdown_timeout = "{shutdown_timeout}"',
        "",
        "[log]",
        'level = "info"',
        f"access = {'true' if access_log else 'false'}",
        "",
    ]
    if tls is not None:
        # tls = (certificate, key): a TLS listener on a free port beside the plain one.
        lines += ["[tls]", f"certificate = {toml_string(tls[0])}", f"private_key = {toml_string(tls[1])}",
                  "port = 0", ""]
    if ping_interval is not None:
        lines += ["[websocket]", f'ping_interval = "{ping_interval}"', ""]
    lines += [
        "[[route]]", 'path = "/"', 'component = "chat"', "",
        "[[route]]", 'path = "/echo"', 'component = "echo"', "",
        "[[route]]", 'path = "/*"', 'component = "static"', f"root = {toml_string(CHAT_PUBLIC)}", "",
        extra_routes,
    ]
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


# ---------------------------------------------------------------------------
# Processes

_children = []


def _kill_group(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def stop_everything():
    while _children:
        _kill_group(_children.pop())


atexit.register(stop_everything)


def spawn(argv, *, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=None, **kwargs):
    """Popen in a new session (its own process group), registered for
    cleanup."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                            start_new_session=True, **kwargs)
    _children.append(proc)
    return proc


class Server:
    """One windlass-server: started, its port read from the "listening on"
    line, stopped with SIGTERM. stderr (the log and the access log) goes to
    a file that tests read."""

    def __init__(self, config, name="windlass-server", log_dir=None, extra_args=(), env=None):
        self.config = config
        self.name = name
        self.extra_args = list(extra_args)
        self.env = env
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="windlass-log-")
        self.log_path = None
        self.proc = None
        self.port = None
        self.starts = 0
        self._lines = queue.Queue()

    def start(self, port=0):
        self.launch(port)
        self.port = self.wait_listening()
        if port:
            assert self.port == port, f"{self.name}: asked for port {port}, got {self.port}"
        return self

    def launch(self, port=0, wrapper=()):
        """Starts the process without waiting for it to listen. `wrapper`
        is a command the server runs under (strace)."""
        self.starts += 1
        self.log_path = os.path.join(self.log_dir, f"{self.name}.{self.starts}.log")
        argv = list(wrapper) + [server_binary(), "--config", self.config, "--host", "127.0.0.1",
                                "--port", str(port)] + self.extra_args
        with open(self.log_path, "wb") as log:
            self.proc = spawn(argv, stdout=subprocess.PIPE, stderr=log, env=self.env)
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines), daemon=True).start()
        return self

    def wait_listening(self, timeout=START_TIMEOUT_S, tls=False):
        """The port of the next "listening on" line; it must be the TLS
        listener's ("(tls)") if `tls`, the plain one's otherwise."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"{self.name}: no 'listening on' line within {timeout} s\n{self.log()}")
        if line is None:
            raise AssertionError(f"{self.name} exited with {self.proc.wait()} before it was listening\n{self.log()}")
        m = LISTENING.match(line.rstrip("\r\n"))
        if not m or bool(m.group(3)) != tls:
            raise AssertionError(f"{self.name}: unexpected line on stdout: {line!r}\n{self.log()}")
        return int(m.group(2))

    @staticmethod
    def _pump(stream, lines):
        with stream:
            for raw in stream:
                lines.put(raw.decode("utf-8", "replace"))
        lines.put(None)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signo):
        self.proc.send_signal(signo)

    def wait_exit(self, timeout=STOP_TIMEOUT_S):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} still running {timeout} s after SIGTERM\n{self.log()}")

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM; expects exit 0."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        assert code == 0, f"{self.name} exited with {code} after SIGTERM, expected 0\n{self.log()}"

    def kill(self):
        if self.proc is not None:
            _kill_group(self.proc)

    def log(self, tail=6000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-tail:]
        except (OSError, TypeError):
            return ""


# ---------------------------------------------------------------------------
# HTTP

def http_get(port, path, timeout=5, host="127.0.0.1"):
    """(status, body as text) of a plain GET."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, http.client.HTTPException) as e:
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s: {what}" + (f" (last error: {last_error})" if last_error else ""))


def metric(port, name, labels=None):
    """The value of one sample of /metrics, summed over samples whose
    labels include `labels`; None when the family is absent."""
    status, body = http_get(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    total = None
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if labels and any(got.get(k) != v for k, v in labels.items()):
            continue
        total = (total or 0) + float(m.group(4))
    return total
