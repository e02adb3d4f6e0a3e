// What every Node test of windlass needs around its checks: the binaries
// from the environment, processes started and always stopped, ports,
// temporary folders, time bounds and headless Chromium. A test imports it
// by its relative path: `import { ... } from '../support/harness.mjs';`.
//
// - env(name): a variable ctest sets, or an error naming it; serverBinary(),
//   which(), requireFromRepo (the repo's node_modules: NODE_PATH does not
//   apply to ESM imports).
// - watchdog(ms): past `ms`, every process started here is killed and the
//   script exits 1, before ctest's timeout; SIGINT and SIGTERM kill them too.
// - Process: a child in its own process group, stdout read line by line and
//   stderr kept for failure messages for as long as it runs, stop() signals
//   it and checks the exit code, kill() reaches its group and any descendant
//   that left it. Everything still running is killed when the script exits.
// - Server: a windlass program whose ports come from its "listening on
//   HOST:PORT" and "listening on HOST:PORT (tls)" lines; example().
// - External: any other program, ready when its port accepts and/or a check
//   passes; redisServer(), supervisord(), supervisorctl().
// - launchChromium(): Debian's Chromium through playwright-core.
// - withTimeout(), sleep(), waitUntil(), freePort(), waitPort(), tempDir(),
//   makeCa()/makeLeaf().

import { execFile, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const WATCHDOG_MS = 240_000; // ctest kills a test at 300 s
export const START_TIMEOUT_MS = 15_000;
export const STOP_TIMEOUT_MS = 20_000; // servers drain up to 10 s
export const STEP_TIMEOUT_MS = 10_000;
export const QUIET_MS = 500;
export const HOST = '127.0.0.1';
export const LISTENING = /^listening on (\S+):(\d+)( \(tls\))?$/;

export const SOURCE_DIR = process.env.WINDLASS_SOURCE_DIR ||
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHAT_PUBLIC = path.join(SOURCE_DIR, 'examples', 'chat', 'public');
export const DEPLOY_DIR = path.join(SOURCE_DIR, 'deploy');
export const DEFAULT_CONFIG = path.join(DEPLOY_DIR, 'windlass.toml');
export const requireFromRepo = createRequire(path.join(SOURCE_DIR, 'package.json'));

export const CHROMIUM = process.env.WINDLASS_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const NAME = path.basename(process.argv[1] ?? 'test').replace(/\.test\.mjs$|\.mjs$/, '');
const OUTPUT_KEPT = 64_000; // characters of a process's output kept in memory

// ---------------------------------------------------------------------------
// The environment

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${NAME}: ${name} is not set (ctest sets it; see the test's header comment)`);
  return value;
}

// The io_uring.* copies of the tests run with WINDLASS_IO=io_uring: where
// this kernel or process cannot use io_uring, the script says why and exits
// 77, which ctest reports as a skip.
if (process.env.WINDLASS_IO === 'io_uring' && process.env.WINDLASS_IO_PROBE_BIN) {
  try {
    execFileSync(process.env.WINDLASS_IO_PROBE_BIN, { stdio: 'pipe', timeout: 30_000 });
  } catch (e) {
    console.log(`SKIP: ${String(e.stdout ?? '').trim() || 'io_uring unavailable'}`);
    process.exit(77);
  }
}

export function executable(p) {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
}

// The path of `name` on PATH or in /usr/bin and /usr/sbin, or null.
export function which(name) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    if (dir && executable(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

// windlass-server, absolute: WINDLASS_SERVER_BIN, else build/release.
export function serverBinary() {
  if (process.env.WINDLASS_SERVER_BIN) return path.resolve(process.env.WINDLASS_SERVER_BIN);
  const p = path.join(SOURCE_DIR, 'build', 'release', 'src', 'server', 'windlass-server');
  if (executable(p)) return p;
  throw new Error('windlass-server not found: set WINDLASS_SERVER_BIN or build build/release');
}

// ---------------------------------------------------------------------------
// Time

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `predicate` (sync or async) until it returns something truthy, and
// returns that; a throw counts as "not yet". Fails after `ms`.
export async function waitUntil(predicate, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await predicate();
      if (v) return v;
    } catch (err) { last = err; }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms: ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

// ---------------------------------------------------------------------------
// Cleanup and the watchdog

const processes = new Set();
const trackedPids = new Set();
const tempDirs = [];

function killPid(pid) {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

function processGroup(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch { return 0; }
}

// Every live descendant of `pid` (from /proc).
export function descendants(pid) {
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const parent = todo.pop();
    let tasks = [];
    try { tasks = readdirSync(`/proc/${parent}/task`); } catch { continue; }
    for (const tid of tasks) {
      let kids = [];
      try {
        kids = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
      } catch { continue; }
      out.push(...kids);
      todo.push(...kids);
    }
  }
  return out;
}

// A process this script did not start but must not leave behind (a program
// supervisord runs, which survives supervisord's death): killed at exit.
export function trackPid(pid) { trackedPids.add(pid); }

export function killAll() {
  for (const p of processes) p.kill();
  for (const pid of trackedPids) {
    if (processGroup(pid) === pid) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    killPid(pid);
  }
}

process.on('exit', () => {
  killAll();
  for (const d of tempDirs) {
    if (process.env.WINDLASS_KEEP_TEMP) console.error(`${NAME}: kept ${d}`);
    else rmSync(d, { recursive: true, force: true });
  }
});

// After `ms`: every process killed, exit 1, well before ctest's timeout.
// SIGINT and SIGTERM kill the processes before exiting.
export function watchdog(ms = WATCHDOG_MS) {
  const timer = setTimeout(() => {
    console.error(`${NAME}: still running after ${ms / 1000} s, giving up`);
    for (const p of processes) {
      if (p.alive()) console.error(`${p.name} (pid ${p.pid}) was still running\n${p.stderrText(2000)}`);
    }
    process.exit(1); // the exit handler kills everything
  }, ms);
  timer.unref();
  for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]]) {
    process.on(signal, () => process.exit(128 + number));
  }
}

// A new folder, removed when the script exits (kept with WINDLASS_KEEP_TEMP=1).
export function tempDir(prefix = `windlass-${NAME}-`) {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

// ---------------------------------------------------------------------------
// Processes

export function describeExit(result) {
  if (!result) return 'still running';
  if (result.error) return `failed to start (${result.error})`;
  if (result.signal) return `killed by ${result.signal}`;
  return `exit status ${result.code}`;
}

// One child process in its own process group (detached), stdout read line
// by line, stderr (and stdout, with mergeOutput) kept for failure messages.
// `stop()` sends `stopSignal` and expects exit code `expectExit` (null: any)
// within `stopTimeout`; one that does not exit is killed and the test fails.
export class Process {
  constructor(argv, options = {}) {
    this.argv = argv.map(String);
    this.name = options.name ?? path.basename(this.argv[0]);
    this.env = options.env;
    this.cwd = options.cwd;
    this.stopSignal = options.stopSignal ?? 'SIGTERM';
    this.startTimeout = options.startTimeout ?? START_TIMEOUT_MS;
    this.stopTimeout = options.stopTimeout ?? STOP_TIMEOUT_MS;
    this.expectExit = options.expectExit === undefined ? 0 : options.expectExit;
    this.mergeOutput = options.mergeOutput ?? false;
    this.child = null;
    this.output = '';
    this.stdoutLines = [];
  }

  // Starts the process without waiting for it to be ready.
  launch(extraArgs = []) {
    const [bin, ...rest] = this.argv;
    const child = spawn(bin, [...rest, ...extraArgs.map(String)], {
      stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: this.env, cwd: this.cwd,
    });
    this.child = child;
    this.output = '';
    this.stdoutLines = [];
    const queue = [];
    const waiters = [];
    let ended = false;
    const deliver = (line) => {
      const waiter = waiters.shift();
      if (waiter) waiter(line); else queue.push(line);
    };
    const end = () => {
      if (ended) return;
      ended = true;
      for (const waiter of waiters.splice(0)) waiter(null);
      queue.push(null);
    };
    this.nextLine = (ms, what = `${this.name}: a line on stdout`) =>
      (queue.length ? Promise.resolve(queue.shift())
        : withTimeout(new Promise((resolve) => waiters.push(resolve)), ms, what));
    processes.add(this);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => { processes.delete(this); resolve({ code, signal }); });
      child.on('error', (err) => { processes.delete(this); end(); resolve({ code: null, signal: null, error: err.message }); });
    });
    const keep = (text) => { this.output = (this.output + text).slice(-OUTPUT_KEPT); };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', keep);
    // Read stdout for the life of the process, so a chatty one never blocks.
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      this.stdoutLines.push(line);
      if (this.mergeOutput) keep(`${line}\n`);
      deliver(line);
    });
    lines.on('close', end);
    return this;
  }

  async start() {
    this.launch();
    await this.waitReady();
    return this;
  }

  async waitReady() {}

  get pid() { return this.child.pid; }

  alive() { return Boolean(this.child) && this.child.exitCode === null && this.child.signalCode === null; }

  assertAlive(when = 'during the test') {
    if (!this.alive()) {
      throw new Error(`${this.name} died ${when} (${describeExit(this.child && {
        code: this.child.exitCode, signal: this.child.signalCode })})\n${this.stderrText()}`);
    }
  }

  signal(name = 'SIGTERM') { this.child.kill(name); }

  // {code, signal} once it exits; still running after `ms`: killed, and a failure.
  async wait(ms = this.stopTimeout, after = this.stopSignal) {
    try {
      return await withTimeout(this.exited, ms, `${this.name} exit after ${after}`);
    } catch (err) {
      this.kill();
      throw new Error(`${err.message}\n${this.stderrText()}`);
    }
  }

  // Sends `signo` (the stop signal) unless `signal` is false (the test sent
  // it), then expects exit code `expect` (default: expectExit; null: any).
  // One that ended before it was stopped fails the test.
  async stop({ signal = true, expect = this.expectExit, timeout = this.stopTimeout, signo = this.stopSignal } = {}) {
    if (!this.child) return null;
    if (signal) {
      if (!this.alive()) {
        const result = await this.exited;
        throw new Error(`${this.name} ended (${describeExit(result)}) before it was stopped\n${this.stderrText(20_000)}`);
      }
      this.child.kill(signo);
    }
    const result = await this.wait(timeout, signo);
    if (expect !== null && !(result.code === expect && result.signal === null)) {
      throw new Error(`${this.name} ended (${describeExit(result)}) after ${signo}, expected exit status ${expect}\n` +
        this.stderrText(20_000));
    }
    return result;
  }

  // SIGKILL to the group and to any descendant that left it (supervisord
  // puts its programs in groups of their own).
  kill() {
    if (!this.alive()) return;
    const family = descendants(this.child.pid);
    try { process.kill(-this.child.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const pid of family) {
      if (processGroup(pid) === pid) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
      killPid(pid);
    }
  }

  // The end of the output, headed with the name, for failure messages.
  stderrText(limit = 8000) {
    return `--- ${this.name} ${this.mergeOutput ? 'output' : 'stderr'} (last ${limit} chars) ---\n` +
      this.output.slice(-limit);
  }
}

// A windlass program that prints "listening on HOST:PORT" (then "listening
// on HOST:PORT (tls)" for a TLS listener) once it serves. With `listenArgs`
// (the default), start({port}) adds --host HOST --port PORT. `tls`: a TLS
// line is expected too; `plain: false`: only that one.
export class Server extends Process {
  constructor(argv, options = {}) {
    super(argv, options);
    this.host = options.host ?? HOST;
    this.listenArgs = options.listenArgs ?? true;
    this.tls = options.tls ?? false;
    this.plain = options.plain ?? true;
    this.port = 0;
    this.tlsPort = 0;
  }

  async start({ port = 0 } = {}) {
    this.launch(this.listenArgs ? ['--host', this.host, '--port', port] : []);
    if (this.plain) {
      await this.waitListening();
      if (port && this.port !== port) throw new Error(`${this.name}: asked for port ${port}, got ${this.port}`);
    }
    if (this.tls) await this.waitListening({ tls: true });
    return this;
  }

  // The port of the next stdout line, which must be the plain listener's
  // (or the TLS one's, with `tls`).
  async waitListening({ tls = false, timeout = this.startTimeout } = {}) {
    let line;
    try {
      line = await this.nextLine(timeout, `${this.name} 'listening on' line`);
    } catch (err) {
      this.kill();
      throw new Error(`${err.message}\n${this.stderrText()}`);
    }
    if (line === null) {
      const result = await withTimeout(this.exited, 5000, `${this.name} exit`).catch(() => null);
      throw new Error(`${this.name} ended (${describeExit(result)}) before it was listening\n${this.stderrText()}`);
    }
    const m = LISTENING.exec(line.trimEnd());
    if (!m || Boolean(m[3]) !== tls || (this.host && m[1] !== this.host)) {
      this.kill();
      throw new Error(`${this.name}: unexpected line on stdout: ${JSON.stringify(line)}, expected ` +
        `"listening on ${this.host || 'HOST'}:PORT${tls ? ' (tls)' : ''}"\n${this.stderrText()}`);
    }
    const port = Number(m[2]);
    if (tls) this.tlsPort = port; else this.port = port;
    return port;
  }

  get url() { return this.wsUrl('/'); }

  wsUrl(urlPath = '/') { return `ws://${this.host || HOST}:${this.port}${urlPath}`; }

  get origin() { return `http://${this.host || HOST}:${this.port}`; }

  get tlsOrigin() { return `https://${this.host || HOST}:${this.tlsPort}`; }
}

// A Server for the binary in env(variable) (WINDLASS_CHAT_BIN, WINDLASS_ECHO_BIN).
export function example(variable, args = [], options = {}) {
  const bin = env(variable);
  return new Server([bin, ...args], { name: path.basename(bin), ...options });
}

// ---------------------------------------------------------------------------
// Other programs a test runs beside windlass

export function portOpen(port, host = HOST) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.setTimeout(1000);
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

export async function waitPort(port, ms = START_TIMEOUT_MS, host = HOST) {
  await waitUntil(() => portOpen(port, host), ms, `${host}:${port} accepting connections`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A program that is not ours: ready when `port` on 127.0.0.1 accepts (if
// given) and `ready()` returns something truthy (if given), within
// `startTimeout`. Its stdout and stderr are kept together.
export class External extends Process {
  constructor(argv, options = {}) {
    super(argv, { mergeOutput: true, ...options });
    this.port = options.port ?? null;
    this.ready = options.ready ?? null;
  }

  async waitReady() {
    const deadline = Date.now() + this.startTimeout;
    let last;
    for (;;) {
      if (!this.alive()) {
        const result = await withTimeout(this.exited, 5000, `${this.name} exit`).catch(() => null);
        throw new Error(`${this.name} ended (${describeExit(result)}) before it was ready\n${this.stderrText()}`);
      }
      try {
        if ((this.port === null || await portOpen(this.port)) && (this.ready === null || await this.ready())) return;
      } catch (err) { last = err; }
      if (Date.now() > deadline) {
        this.kill();
        throw new Error(`${this.name}: not ready within ${this.startTimeout} ms ` +
          `(${this.port ? `port ${this.port}` : 'its readiness check'})${last ? `, last error: ${last.message}` : ''}\n` +
          this.stderrText());
      }
      await sleep(50);
    }
  }
}

function program(name) {
  const p = which(name);
  if (!p) throw new Error(`${name} not installed (scripts/install-deps.sh --with-test installs it)`);
  return p;
}

// A started redis-server on 127.0.0.1 (`port`, or a free one: `.port`), no
// persistence, its files in a temp dir; ready when it answers PING.
export async function redisServer({ port, args = [], ...options } = {}) {
  const p = port ?? await freePort();
  const dir = tempDir('windlass-redis-');
  const pong = () => new Promise((resolve) => {
    const socket = net.connect({ port: p, host: HOST });
    socket.setTimeout(2000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
  return new External([program('redis-server'), '--port', p, '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir, ...args], { name: 'redis-server', port: p, ready: pong, cwd: dir, ...options }).start();
}

// {code, out} of `supervisorctl -c conf args`.
export function supervisorctl(conf, ...args) {
  return new Promise((resolve) => {
    execFile(program('supervisorctl'), ['-c', conf, ...args], { timeout: 15_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, out: `${stdout}${stderr}`.trim() }));
  });
}

// A started supervisord in the foreground (-n) with config `conf`, ready
// when `ready()` says so (by default: supervisorctl gets an answer).
// `softNofile` starts it with that soft open-file limit. kill() reaches its
// programs too, though each runs in a process group of its own.
export function supervisord(conf, { softNofile, ready, ...options } = {}) {
  const bin = program('supervisord');
  const argv = softNofile
    ? ['/bin/sh', '-c', `ulimit -Sn ${Number(softNofile)} && exec "$0" -n -c "$1"`, bin, conf]
    : [bin, '-n', '-c', conf];
  return new External(argv, {
    name: 'supervisord', ready: ready ?? (async () => (await supervisorctl(conf, 'pid')).code === 0), ...options,
  }).start();
}

// ---------------------------------------------------------------------------
// Certificates

function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
}

// A throwaway CA (P-256, two days) in `dir`: the path of ca.crt.
export function makeCa(dir) {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.crt', '-days', '2', '-subj', '/CN=windlass test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  return path.join(dir, 'ca.crt');
}

// A server certificate for 127.0.0.1 and localhost signed by makeCa's CA in
// `dir`: {cert, key} paths.
export function makeLeaf(dir, name, commonName = '127.0.0.1') {
  writeFileSync(path.join(dir, `${name}.ext`), 'basicConstraints=critical,CA:FALSE\n' +
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', `/CN=${commonName}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

// ---------------------------------------------------------------------------
// The browser

// Headless Chromium (WINDLASS_CHROMIUM or /usr/bin/chromium) through
// playwright-core from the repo's node_modules.
export async function launchChromium(options = {}) {
  const { chromium } = requireFromRepo('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000, ...options });
}
