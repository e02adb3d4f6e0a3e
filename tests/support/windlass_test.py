"""What every Python test of windlass needs around its checks: the
binaries from the environment, processes started and always stopped, ports,
temporary folders, time bounds and the unittest runner.

A test script imports it by its own path, the same way everywhere (ctest
runs `/usr/bin/python3 <script>` from the build folder):

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
    import windlass_test as wt  # noqa: E402

(from bench/load and bench/peers: "..", "..", "tests", "support").

The pieces:

- `env(name)`: a variable ctest sets, or exit with a message naming it;
  `executable()`, `server_binary()`, `find_program()`, `require_programs()`
  (a skip when one is missing), `sanitizer()`, `server_env()`.
- `watchdog(seconds)`: past `seconds`, every thread's stack is dumped, every
  process started here is killed and the script exits 1, so a hang fails
  with a trace before ctest's timeout; SIGTERM and SIGINT also kill them.
- `Process`: a child in its own process group (a new session), its stdout
  read line by line and its stderr written to a file for as long as it
  runs, so a chatty child never blocks; `stop()` signals it and checks the
  exit code, `kill()` reaches its whole group and any descendant that left
  it. Every one is killed at exit.
- `Server`: a windlass program (an example, windlass-server, a benchmark
  peer) whose ports come from its "listening on HOST:PORT" and
  "listening on HOST:PORT (tls)" lines; `example()`, `windlass_server()`,
  and `server_config()` for a config like deploy/windlass.toml.
- `External`: any other program, ready when its port accepts and/or a check
  passes; `redis_server()`, `nginx()`, `supervisord()`.
- `free_port()`, `wait_port()`, `temp_dir()` (removed at exit; kept with
  WINDLASS_KEEP_TEMP=1), `write_file()`, `wait_until()`, `http_request()`,
  `scrape_metric()`, `make_ca()`/`make_leaf()`, and for asyncio tests
  `run_async()`, `step()` and `assert_silent()`.
- `run_tests()`: unittest with verbosity 2 on stdout, then a last line
  `NAME: N passed, M failed, K skipped` and the exit status.

Standard library only: the conformance suite runs without `websockets`.
"""

import asyncio
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
import unittest

# ctest kills a test at 300 s (bench smoke tests at 60 s): watchdogs fire before.
WATCHDOG_S = 240
START_TIMEOUT_S = 15     # a process is listening / ready
STOP_TIMEOUT_S = 20      # a process exits after its stop signal (servers drain up to 10 s)
STEP_TIMEOUT_S = 10      # any one connect / send / receive / HTTP request
QUIET_S = 0.5            # how long "nothing arrives" is watched for

HOST = "127.0.0.1"
LISTENING = re.compile(r"^listening on (\S+):(\d+)( \(tls\))?$")

SOURCE_DIR = os.environ.get("WINDLASS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_PUBLIC = os.path.join(SOURCE_DIR, "examples", "chat", "public")
DEPLOY_DIR = os.path.join(SOURCE_DIR, "deploy")
DEFAULT_CONFIG = os.path.join(DEPLOY_DIR, "windlass.toml")

_NAME = os.path.splitext(os.path.basename(sys.argv[0] or "test"))[0]


# ---------------------------------------------------------------------------
# The environment


def env(name):
    """The value of `name`, which ctest sets; exits with a message saying so
    when it is not set."""
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{_NAME}: {name} is not set (ctest sets it; see the script's docstring)")
    return value


def executable(name):
    """env(name), which must be an executable file."""
    path = env(name)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{_NAME}: {name}={path} is not an executable file")
    return path


def server_binary(required=True):
    """windlass-server: WINDLASS_SERVER_BIN (an executable file), else
    build/release of the source tree. When there is neither: exit with a
    message saying so, or None if not `required`."""
    if os.environ.get("WINDLASS_SERVER_BIN"):
        return os.path.abspath(executable("WINDLASS_SERVER_BIN"))
    path = os.path.join(SOURCE_DIR, "build", "release", "src", "server", "windlass-server")
    if os.access(path, os.X_OK):
        return path
    if required:
        raise SystemExit(f"{_NAME}: windlass-server not found: set WINDLASS_SERVER_BIN or build build/release")
    return None


def _require_io_backend():
    """The io_uring.* copies of the tests run with WINDLASS_IO=io_uring: where
    this kernel or process cannot use io_uring, the script says why and exits
    77, which ctest reports as a skip."""
    if os.environ.get("WINDLASS_IO") != "io_uring" or not os.environ.get("WINDLASS_IO_PROBE_BIN"):
        return
    probe = subprocess.run([os.environ["WINDLASS_IO_PROBE_BIN"]], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        print(f"SKIP: {probe.stdout.strip() or 'io_uring unavailable'}")
        sys.exit(77)


_require_io_backend()


def find_program(name):
    """The path of program `name` on PATH or in /usr/sbin and /sbin, or None."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def require_programs(*names):
    """{name: path}; when one is missing, says which and exits 0 (a skip):
    scripts/install-deps.sh --with-test installs all of them."""
    found = {name: find_program(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        print(f"SKIP: not installed: {', '.join(missing)} (scripts/install-deps.sh --with-test installs them)")
        sys.exit(0)
    return found


def sanitizer(binary):
    """"ASan", "TSan", "UBSan" for a sanitizer build of `binary`, else ""."""
    with open(binary, "rb") as f:
        blob = f.read()
    for marker, name in ((b"__asan_init", "ASan"), (b"__tsan_init", "TSan"), (b"__ubsan_handle_", "UBSan")):
        if marker in blob:
            return name
    return ""


def server_env(**overrides):
    """The test's environment for windlass-server, without what would change
    its configuration (WINDLASS_* other than the paths ctest sets, and
    systemd's NOTIFY_SOCKET and WATCHDOG_*), plus `overrides`."""
    keep = ("WINDLASS_SOURCE_DIR", "WINDLASS_SERVER_BIN", "WINDLASS_IO")  # WINDLASS_IO: the backend under test
    out = {k: v for k, v in os.environ.items()
           if not (k.startswith("WINDLASS_") and k not in keep)
           and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    out.update(overrides)
    return out


# ---------------------------------------------------------------------------
# Cleanup and the watchdog

_processes = []        # every Process started, for kill_all()
_temp_dirs = []
_lock = threading.RLock()  # re-entrant: the signal handler may run while the main thread holds it


def kill_all():
    """Kills every process started here that still runs (SIGKILL to its
    group and its descendants)."""
    with _lock:
        processes = list(_processes)
    for p in processes:
        p.kill()


def _remove_temp_dirs():
    if os.environ.get("WINDLASS_KEEP_TEMP"):
        for d in _temp_dirs:
            print(f"{_NAME}: kept {d}", file=sys.stderr)
        return
    for d in _temp_dirs:
        shutil.rmtree(d, ignore_errors=True)


def _at_exit():
    kill_all()
    _remove_temp_dirs()


atexit.register(_at_exit)


def watchdog(seconds=WATCHDOG_S):
    """After `seconds`: every thread's stack on stderr, every process killed,
    exit 1. faulthandler exits on its own 10 s later should this thread not
    get to run. SIGTERM and SIGINT kill the processes before exiting."""
    def expire():
        print(f"\n{_NAME}: still running after {seconds} s, giving up; every thread's stack:",
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        with _lock:
            running = [p for p in _processes if p.alive()]
        for p in running:
            print(f"{p.name} (pid {p.pid}) was still running\n{p.stderr_text(2000)}", file=sys.stderr)
        sys.stderr.flush()
        _at_exit()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    faulthandler.dump_traceback_later(seconds + 10, exit=True)

    def on_signal(signo, _frame):
        _at_exit()
        os._exit(128 + signo)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def temp_dir(prefix=None):
    """A new folder, removed when the script exits (kept with
    WINDLASS_KEEP_TEMP=1, for a look after a failure)."""
    d = tempfile.mkdtemp(prefix=prefix or f"windlass-{_NAME}-")
    _temp_dirs.append(d)
    return d


_log_dir = None
_log_count = 0


def _log_path(name):
    """A new file for one process's output: NN-NAME.log in one folder."""
    global _log_dir, _log_count
    with _lock:
        if _log_dir is None:
            _log_dir = temp_dir(f"windlass-{_NAME}-logs-")
        _log_count += 1
        n = _log_count
    return os.path.join(_log_dir, f"{n:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.log")


# ---------------------------------------------------------------------------
# Processes


def describe_exit(code):
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exit status {code}"


def _signame(signo):
    return signal.Signals(signo).name


def descendants(pid):
    """Every live descendant of `pid` (from /proc)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


_DEFAULT = object()


class Process:
    """One child process: started in its own session (so its own process
    group), stdout read line by line for as long as it runs, stderr (with
    stdout too, if `merge_output`) in a log file. `start()` may be called
    again after it exited (a restart): a new log file each time.

    `stop()` sends `stop_signal` and expects exit code `expect_exit`
    (None: any) within `stop_timeout`; a process that does not exit is
    killed and the test fails with its log."""

    def __init__(self, argv, name=None, *, env=None, cwd=None, stop_signal=signal.SIGTERM,
                 start_timeout=START_TIMEOUT_S, stop_timeout=STOP_TIMEOUT_S, expect_exit=0,
                 merge_output=False):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.expect_exit = expect_exit
        self.merge_output = merge_output
        self.proc = None
        self.log_path = None
        self.stdout_lines = []    # every stdout line so far (not with merge_output)
        self._lines = queue.Queue()

    # -- life

    def launch(self, extra_args=()):
        """Starts the process without waiting for it to be ready."""
        self.log_path = _log_path(self.name)
        self.stdout_lines = []
        self._lines = queue.Queue()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv + [str(a) for a in extra_args], stdin=subprocess.DEVNULL,
                stdout=log if self.merge_output else subprocess.PIPE, stderr=log, env=self.env,
                cwd=self.cwd, start_new_session=True)
        with _lock:
            if self not in _processes:
                _processes.append(self)
        if not self.merge_output:
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines, self.stdout_lines),
                             daemon=True).start()
        return self

    def start(self):
        """launch(), then wait_ready(); returns self."""
        self.launch()
        self.wait_ready()
        return self

    def wait_ready(self):
        """Subclasses wait for what says the process serves."""

    @staticmethod
    def _pump(stream, lines, kept):
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace")
                kept.append(line)
                lines.put(line)
        lines.put(None)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self, when="during the test"):
        if not self.alive():
            raise AssertionError(f"{self.name} died {when} "
                                 f"({describe_exit(self.proc.poll() if self.proc else None)})\n"
                                 + self.stderr_text())

    def signal(self, signo=signal.SIGTERM):
        self.proc.send_signal(signo)

    def wait(self, timeout=None, after=None):
        """The exit code; a process still running after `timeout` is killed
        and the test fails."""
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} still running {timeout} s after "
                                 f"{after or _signame(self.stop_signal)}\n" + self.stderr_text()) from None

    def terminate(self, timeout=None, signo=None):
        """Sends the stop signal, waits: the exit code, or None when it had
        to be killed. Never fails the test itself."""
        if self.proc.poll() is None:
            self.proc.send_signal(signo or self.stop_signal)
        try:
            return self.proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stop(self, timeout=None, expect=_DEFAULT, signal_it=True, signo=None):
        """Sends `signo` (the stop signal) unless `signal_it` is false (the
        test sent it), then expects exit code `expect` (default: the
        `expect_exit` given; None: any). Returns the exit code. A process
        that already ended before it was stopped fails the test."""
        if self.proc is None:
            return None
        signo = signo or self.stop_signal
        if signal_it:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} ended with {describe_exit(self.proc.returncode)} "
                                     "before it was stopped\n" + self.stderr_text(20000))
            self.proc.send_signal(signo)
        code = self.wait(timeout, after=_signame(signo))
        expect = self.expect_exit if expect is _DEFAULT else expect
        if expect is not None and code != expect:
            raise AssertionError(f"{self.name} ended with {describe_exit(code)} after {_signame(signo)}, "
                                 f"expected {describe_exit(expect)}\n" + self.stderr_text(20000))
        return code

    def kill(self):
        """SIGKILL to the process's group and to any descendant that left it
        (supervisord puts its programs in groups of their own)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        family = descendants(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in family:
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # -- output

    def next_line(self, timeout):
        """The next stdout line (without its newline); None at the end of
        the output; fails the test after `timeout` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no line on stdout within {timeout} s\n"
                                 + self.stderr_text()) from None
        return None if line is None else line.rstrip("\r\n")

    def log_text(self):
        """Everything the process wrote to stderr (and stdout, if merged)."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def stderr_lines(self):
        return self.log_text().splitlines()

    def stderr_text(self, limit=8000):
        """The end of the log, headed with the process's name, for failure
        messages."""
        what = "output" if self.merge_output else "stderr"
        return f"--- {self.name} {what} (last {limit} chars) ---\n{self.log_text()[-limit:]}"

    # -- /proc

    def fds(self):
        """How many descriptors the process holds."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def status_kib(self, field):
        """A kB field of /proc/PID/status (VmRSS, VmHWM, ...)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def rss_kib(self):
        return self.status_kib("VmRSS")


class Server(Process):
    """A windlass program that prints "listening on HOST:PORT" (and
    "listening on HOST:PORT (tls)" after it, for a TLS listener) on stdout
    once it serves: the examples, windlass-server, the benchmark peers.

    With `listen_args`, start(port) adds `--host HOST --port PORT`. `tls`:
    a TLS line is expected too; `plain=False`: only that one. Any other
    line on stdout before those fails the start."""

    def __init__(self, argv, name=None, *, host=HOST, listen_args=True, tls=False, plain=True, **kwargs):
        super().__init__(argv, name, **kwargs)
        self.host = host
        self.listen_args = listen_args
        self.tls = tls
        self.plain = plain
        self.port = None
        self.tls_port = None

    def launch(self, port=0):
        extra = ["--host", self.host, "--port", port] if self.listen_args else []
        return super().launch(extra)

    def start(self, port=0):
        """Starts, reads the listening lines; with a `port`, it must be that one."""
        self.launch(port)
        if self.plain:
            self.wait_listening()
            if port:
                assert self.port == port, f"{self.name}: asked for port {port}, got {self.port}"
        if self.tls:
            self.wait_listening(tls=True)
        return self

    def wait_listening(self, timeout=None, tls=False):
        """The port of the next stdout line, which must be the plain
        listener's (or the TLS one's if `tls`); sets port or tls_port."""
        timeout = self.start_timeout if timeout is None else timeout
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"{self.name}: no 'listening on' line within {timeout} s\n"
                                 + self.stderr_text()) from None
        if line is None:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                code = self.proc.returncode
            raise AssertionError(f"{self.name} ended with {describe_exit(code)} before it was listening\n"
                                 + self.stderr_text())
        m = LISTENING.match(line.rstrip("\r\n"))
        if not m or bool(m.group(3)) != tls or (self.host and m.group(1) != self.host):
            self.kill()
            want = f"listening on {self.host or 'HOST'}:PORT{' (tls)' if tls else ''}"
            raise AssertionError(f"{self.name}: unexpected line on stdout: {line!r}, expected {want!r}\n"
                                 + self.stderr_text())
        port = int(m.group(2))
        if tls:
            self.tls_port = port
        else:
            self.port = port
        return port

    @property
    def addr(self):
        return (self.host or HOST, self.port)

    def url(self, path="/", scheme="ws"):
        """ws://HOST:PORT/path; scheme "wss" or "https" take the TLS port."""
        port = self.tls_port if scheme in ("wss", "https") else self.port
        return f"{scheme}://{self.host or HOST}:{port}{path}"


def example(variable, *args, name=None, **kwargs):
    """A Server for the binary in env(variable) (WINDLASS_ECHO_BIN,
    WINDLASS_CHAT_BIN) with `args`; start() adds --host and --port."""
    binary = env(variable)
    return Server([binary, *args], name or os.path.basename(binary), **kwargs)


def windlass_server(config, *args, name="windlass-server", env=None, wrapper=(), **kwargs):
    """A Server for windlass-server with `--config config` and `args`, in
    server_env() unless `env` is given; `wrapper` is a command it runs
    under (strace). start() adds --host and --port."""
    return Server([*wrapper, server_binary(), "--config", config, *args], name,
                  env=server_env() if env is None else env, **kwargs)


def toml_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_file(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def server_config(directory, name="windlass.toml", *, port=0, drain_delay="0s", shutdown_timeout="5s",
                  ping_interval=None, threads=1, access_log=True, tls=None, extra_routes=""):
    """A windlass-server config in `directory` serving what
    deploy/windlass.toml serves (the chat page and room at "/", echo at
    "/echo") on 127.0.0.1; `tls` = (certificate, key) adds a TLS listener
    on a free port beside the plain one. Returns its path."""
    lines = [
        "[server]", f'host = "{HOST}"', f"port = {port}", f"threads = {threads}",
        f'drain_delay = "{drain_delay}"', f'shutdown_timeout = "{shutdown_timeout}"', "",
        "[log]", 'level = "info"', f"access = {'true' if access_log else 'false'}", "",
    ]
    if tls is not None:
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
    return write_file(directory, name, "\n".join(lines))


# ---------------------------------------------------------------------------
# Other programs a test runs beside windlass


class External(Process):
    """A program that is not ours: ready when `port` on 127.0.0.1 accepts
    (if given) and `ready()` returns true (if given), within
    `start_timeout`. Its stdout and stderr go to one log file."""

    def __init__(self, argv, name=None, *, port=None, ready=None, merge_output=True, **kwargs):
        super().__init__(argv, name, merge_output=merge_output, **kwargs)
        self.port = port
        self.ready = ready

    def wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        last_error = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} ended with {describe_exit(self.proc.returncode)} before "
                                     "it was ready\n" + self.stderr_text())
            try:
                if (self.port is None or port_open(self.port)) and (self.ready is None or self.ready()):
                    return
            except (OSError, http.client.HTTPException) as e:
                last_error = e
            if time.monotonic() > deadline:
                self.kill()
                what = f"port {self.port}" if self.port else "its readiness check"
                raise AssertionError(f"{self.name}: not ready within {self.start_timeout} s ({what})"
                                     + (f", last error: {last_error}" if last_error else "") + "\n"
                                     + self.stderr_text())
            time.sleep(0.05)


def _program(name):
    path = find_program(name)
    if path is None:
        raise unittest.SkipTest(f"{name} not installed (scripts/install-deps.sh --with-test installs it)")
    return path


def redis_server(port=None, *args, directory=None, **kwargs):
    """An External redis-server on 127.0.0.1:`port` (a free one by
    default), no persistence, its files in a temp dir; ready when it
    answers PING. The port is `.port`. Skips the test when redis-server
    is not installed."""
    port = port or free_port()
    directory = directory or temp_dir("windlass-redis-")

    def pong():
        with socket.create_connection((HOST, port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    return External([_program("redis-server"), "--port", port, "--bind", HOST, "--save", "",
                     "--appendonly", "no", "--dir", directory, *args],
                    "redis-server", port=port, ready=pong, cwd=directory, **kwargs)


def nginx(conf, prefix, *, ready=None, port=None, **kwargs):
    """An External nginx in the foreground with prefix `prefix` and config
    `conf`; stopped with SIGQUIT (finish requests, then exit)."""
    return External([_program("nginx"), "-p", prefix, "-c", conf, "-g", "daemon off;"], "nginx",
                    port=port, ready=ready, stop_signal=signal.SIGQUIT, **kwargs)


def supervisorctl(conf, *args, timeout=15):
    """(exit code, stdout + stderr) of supervisorctl -c conf args."""
    r = subprocess.run([_program("supervisorctl"), "-c", conf, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).strip()


def supervisord(conf, *, ready=None, **kwargs):
    """An External supervisord in the foreground (-n) with config `conf`;
    ready when `ready()` says so, by default when supervisorctl gets an
    answer. kill() reaches its programs too, though each runs in a
    process group of its own."""
    return External([_program("supervisord"), "-n", "-c", conf], "supervisord",
                    ready=ready or (lambda: supervisorctl(conf, "pid")[0] == 0), **kwargs)


# ---------------------------------------------------------------------------
# Ports, polling, HTTP


def free_port():
    """A port free on 127.0.0.1 now. Whoever binds it next wins; the tests
    that need a fixed port bind it within milliseconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port, timeout=START_TIMEOUT_S, host=HOST):
    """Waits until host:port accepts a TCP connection."""
    wait_until(lambda: port_open(port, host), f"{host}:{port} accepting connections", timeout)


def wait_until(predicate, what, timeout=5.0, interval=0.05):
    """Polls predicate() until it returns something true, and returns that;
    OSError and HTTP errors count as "not yet". Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, http.client.HTTPException) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def http_request(port, path, method="GET", headers=None, host=HOST, timeout=STEP_TIMEOUT_S, context=None):
    """(status, {header: value}, body bytes) of one request; HTTPS with an
    ssl `context`."""
    if context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def http_status(port, path, **kwargs):
    return http_request(port, path, **kwargs)[0]


def scrape_metric(port, name, labels=None):
    """The value of metric `name` from GET /metrics, summed over the samples
    whose labels include `labels`; None when the family is absent."""
    status, _, body = http_request(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    total = None
    for line in body.decode().splitlines():
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


# ---------------------------------------------------------------------------
# Certificates


def _openssl(argv, cwd):
    r = subprocess.run(["openssl", *argv], cwd=cwd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(argv)} failed:\n{r.stdout}{r.stderr}")


def make_ca(directory):
    """A throwaway CA (P-256, two days) in `directory`: the path of ca.crt."""
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=windlass test CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
             directory)
    return os.path.join(directory, "ca.crt")


def make_leaf(directory, name, common_name="127.0.0.1"):
    """A server certificate for 127.0.0.1 and localhost signed by make_ca's
    CA in `directory`: the paths of NAME.crt and NAME.key."""
    write_file(directory, f"{name}.ext",
               "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
               "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}"], directory)
    _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
              "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext"], directory)
    return os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")


# ---------------------------------------------------------------------------
# asyncio


def run_async(coro, timeout=60):
    """Runs one test's coroutine, bounded by `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def step(awaitable, what, timeout=STEP_TIMEOUT_S):
    """One awaited step, bounded: a hang fails with what was awaited."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout} s: {what}") from None


async def assert_silent(ws, who, quiet=QUIET_S):
    """Nothing arrives on `ws` (anything with an async recv()) for `quiet` s."""
    try:
        message = await asyncio.wait_for(ws.recv(), quiet)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"{who} received {message[:80]!r}, expected nothing")


# ---------------------------------------------------------------------------
# The runner


def run_tests(name=None):
    """unittest.main over the __main__ module (its command line: -k PATTERN,
    test names), verbosity 2 on stdout; then every process is killed, the
    last line is `NAME: N passed, M failed, K skipped`, and the exit status
    is 0 only when every test passed and at least one ran."""
    name = name or _NAME
    prog = unittest.main(module="__main__", argv=sys.argv, exit=False,
                         testRunner=unittest.TextTestRunner(verbosity=2, stream=sys.stdout))
    kill_all()
    result = prog.result
    # A test with failing subtests appears once per subtest: count tests.
    failed_ids = {getattr(t, "test_case", t).id() for t, _ in result.failures + result.errors}
    failed_ids |= {t.id() for t in result.unexpectedSuccesses}
    failed = len(failed_ids)
    passed = max(0, result.testsRun - failed - len(result.skipped))
    print(f"{name}: {passed} passed, {failed} failed, {len(result.skipped)} skipped", flush=True)
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
