// deploy/supervisor/windlass.conf under a real supervisord, with the chat
// page open in Debian's Chromium (playwright-core).
//
// supervisord runs in the foreground (-n) with everything in a temporary
// directory: its socket, pid file, logs and the program's logs. The
// [program:windlass] section is the shipped one with three changes: the
// command points at the built binary and a test config on a fixed free
// port, the log files move to the temp dir, and `user=` goes (the test has
// no windlass account). Checked:
//
// - the program starts and serves the page; two pages chat;
// - kill -9 of the server: supervisord starts it again, both pages
//   reconnect by themselves within 5 s and chat again;
// - minfds in [supervisord] reaches the server's open-file limit;
// - `supervisorctl stop`: SIGTERM, the drain, exit 0 ("stopped", not
//   "killed"), within stopwaitsecs.
//
// Run by ctest (WINDLASS_SOURCE_DIR, NODE_PATH; WINDLASS_SERVER_BIN if set);
// by hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/deploy_supervisor.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CHAT_PUBLIC, CHROMIUM, DEFAULT_CONFIG, DEPLOY_DIR, START_TIMEOUT_MS, STEP_TIMEOUT_MS, freePort, launchChromium,
  serverBinary, supervisorctl, supervisord as startSupervisord, tempDir, trackPid, waitUntil, watchdog, which,
} from '../support/harness.mjs';

const RECONNECT_BUDGET_MS = 5_000;
const DRAIN_MS = 1_000;

// The whole file must finish well within ctest's budget.
watchdog(85_000);

const TEMPLATE = path.join(DEPLOY_DIR, 'supervisor', 'windlass.conf');

const missing = [[which('supervisord'), 'supervisord'], [which('supervisorctl'), 'supervisorctl'],
  [existsSync(CHROMIUM) ? CHROMIUM : null, CHROMIUM]].filter(([p]) => !p).map(([, n]) => n);
const SKIP = missing.length
  ? `not installed: ${missing.join(', ')} (scripts/install-deps.sh --with-test installs them)` : false;

async function httpStatus(port, urlPath) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(3000) });
  await res.arrayBuffer();
  return res.status;
}

// "5s", "1m30s", 500 (ms) -> milliseconds.
function durationMs(v) {
  if (typeof v === 'number') return v;
  const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, n, u] of String(v).matchAll(/(\d+)(ms|s|m|h)/g)) total += Number(n) * units[u];
  return total;
}

// drain_delay + shutdown_timeout in deploy/windlass.toml (the built-in
// defaults if it is absent or does not say): two keys, no TOML parser.
function drainBudgetMs() {
  let drain = 0;
  let shutdown = 10_000;
  if (existsSync(DEFAULT_CONFIG)) {
    const text = readFileSync(DEFAULT_CONFIG, 'utf8');
    const section = text.split(/^(?=\[)/m).find((chunk) => chunk.startsWith('[server]')) ?? '';
    const value = (key) => {
      const m = new RegExp(`^\\s*${key}\\s*=\\s*(?:"([^"]*)"|(\\d+))`, 'm').exec(section);
      if (!m) return undefined;
      return m[1] !== undefined ? durationMs(m[1]) : Number(m[2]);
    };
    drain = value('drain_delay') ?? drain;
    shutdown = value('shutdown_timeout') ?? shutdown;
  }
  return drain + shutdown;
}

// The [program:windlass] section of the template as [key, value] pairs.
function programSection() {
  const lines = readFileSync(TEMPLATE, 'utf8').split('\n');
  const out = [];
  let inside = false;
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith('[')) { inside = line === '[program:windlass]'; continue; }
    if (!inside || !line || line.startsWith(';') || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// supervisord and its program. The harness kills supervisord and whatever
// runs under it at exit, also after a failure; a program it started and lost
// track of is tracked by its pid.

let supervisord;
let tmp;

function ctl(...args) {
  return supervisorctl(path.join(tmp, 'supervisord.conf'), ...args);
}

async function programPid() {
  const { out } = await ctl('pid', 'windlass');
  const pid = Number(out);
  if (!Number.isInteger(pid) || pid <= 0) return 0;
  trackPid(pid);
  return pid;
}

async function running() {
  const { out } = await ctl('status', 'windlass');
  return /\bRUNNING\b/.test(out) ? out : null;
}

function supervisordLog() {
  try { return readFileSync(path.join(tmp, 'supervisord.log'), 'utf8'); } catch { return ''; }
}

function programLog(stream) {
  try { return readFileSync(path.join(tmp, `windlass.${stream}.log`), 'utf8'); } catch { return ''; }
}

function nofileSoftLimit(pid) {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(limits);
  return Number(m[1]);
}

// ---------------------------------------------------------------------------
// Pages

async function openChat(browser, origin, name) {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const record = { name, page, errors: [] };
  page.on('pageerror', (err) => record.errors.push(`pageerror: ${err.message}`));
  await page.goto(origin + '/', { waitUntil: 'load' });
  return record;
}

function waitForState(page, state, timeout = STEP_TIMEOUT_MS) {
  return page.waitForSelector(`#status[data-state="${state}"]`, { state: 'attached', timeout });
}

async function send(page, text) {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
  await page.waitForFunction(() => document.querySelector('#message').value === '');
}

async function waitForNth(page, selector, count) {
  await page.waitForFunction(([sel, n]) => document.querySelectorAll(`#log ${sel}`).length >= n,
    [selector, count]);
  return page.$$eval(`#log ${selector}`, (els, n) => els[n - 1].textContent, count);
}

// ---------------------------------------------------------------------------

describe('windlass-server under supervisord', { timeout: 80_000, skip: SKIP }, () => {
  let port;
  let browser;
  let one;
  let two;
  let minfds;
  const program = SKIP ? [] : programSection();
  const setting = (key) => program.find(([k]) => k === key)?.[1];

  before(async () => {
    tmp = tempDir('windlass-supervisor-');
    port = await freePort();
    const config = path.join(tmp, 'windlass.toml');
    writeFileSync(config, [
      '[server]', 'host = "127.0.0.1"', `port = ${port}`, 'threads = 1',
      `drain_delay = "${DRAIN_MS}ms"`, 'shutdown_timeout = "5s"', '',
      '[[route]]', 'path = "/"', 'component = "chat"', '',
      '[[route]]', 'path = "/echo"', 'component = "echo"', '',
      '[[route]]', 'path = "/*"', 'component = "static"', `root = ${JSON.stringify(CHAT_PUBLIC)}`, '',
    ].join('\n'));

    // Supervisor must raise the limit itself: start it with a low soft
    // limit, ask for as much as the hard limit allows (65536 in production).
    const hard = Number(execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 65536;
    minfds = Math.min(65536, hard);

    const rewritten = program.flatMap(([key, value]) => {
      if (key === 'user') return [];
      if (key === 'command') {
        assert.match(value, /^\/usr\/bin\/windlass-server --config \/etc\/windlass\/windlass\.toml$/);
        return [`command=${serverBinary()} --config ${config}`];
      }
      if (key === 'stdout_logfile') return [`stdout_logfile=${path.join(tmp, 'windlass.out.log')}`];
      if (key === 'stderr_logfile') return [`stderr_logfile=${path.join(tmp, 'windlass.err.log')}`];
      return [`${key}=${value}`];
    });
    const conf = path.join(tmp, 'supervisord.conf');
    writeFileSync(conf, [
      '[unix_http_server]', `file=${path.join(tmp, 'supervisor.sock')}`, 'chmod=0700', '',
      '[supervisord]', `logfile=${path.join(tmp, 'supervisord.log')}`, `pidfile=${path.join(tmp, 'supervisord.pid')}`,
      `childlogdir=${tmp}`, `minfds=${minfds}`, 'nodaemon=true', '',
      '[rpcinterface:supervisor]', 'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface', '',
      '[supervisorctl]', `serverurl=unix://${path.join(tmp, 'supervisor.sock')}`, '',
      '[program:windlass]', ...rewritten, '',
    ].join('\n'));

    // Ready once the program is RUNNING (supervisorctl status windlass).
    supervisord = await startSupervisord(conf, { softNofile: 1024, ready: running }).catch((err) => {
      throw new Error(`${err.message}\n--- supervisord.log ---\n${supervisordLog()}\n--- program stderr ---\n` +
        programLog('err'));
    });
    await waitUntil(async () => (await httpStatus(port, '/healthz')) === 200, START_TIMEOUT_MS, '/healthz');

    browser = await launchChromium();
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    // SIGTERM: supervisord stops its program, then exits 0.
    if (supervisord) await supervisord.stop({ timeout: 15_000 });
  });

  function pages() {
    assert.ok(one && two, 'the two chat pages did not open: see the first failure above');
    return [one, two];
  }

  it('ships the settings the server relies on', () => {
    assert.equal(setting('autorestart'), 'true');
    assert.equal(setting('stopsignal'), 'TERM');
    assert.ok(Number(setting('startsecs')) >= 1, 'startsecs');
    const budget = drainBudgetMs();
    assert.ok(Number(setting('stopwaitsecs')) * 1000 > budget + 5000,
      `stopwaitsecs=${setting('stopwaitsecs')} leaves no margin over drain_delay + shutdown_timeout = ${budget} ms`);
    assert.ok(setting('stdout_logfile') && setting('stderr_logfile'), 'log files');
    assert.match(readFileSync(TEMPLATE, 'utf8'), /minfds=65536/, 'the minfds note');
  });

  it('serves the chat page, and two pages talk', async () => {
    const origin = `http://127.0.0.1:${port}`;
    const first = await openChat(browser, origin, 'one');
    const second = await openChat(browser, origin, 'two');
    for (const p of [first, second]) await waitForState(p.page, 'connected');
    [one, two] = [first, second];
    await send(one.page, 'hello via supervisor');
    assert.equal(await waitForNth(two.page, '.msg.received', 1), 'hello via supervisor');
  });

  it('raises the open-file limit to minfds', async () => {
    const pid = await programPid();
    assert.ok(pid > 0);
    assert.equal(nofileSoftLimit(pid), minfds, 'the server inherits supervisord\'s raised soft limit');
  });

  it('restarts the server after kill -9, and the pages reconnect by themselves within 5 s', async () => {
    pages();
    const oldPid = await programPid();
    const killed = Date.now();
    process.kill(oldPid, 'SIGKILL');

    // Both pages see the drop; then the restarted server takes them back.
    await Promise.all(pages().map((p) => p.page.waitForFunction(
      () => document.querySelector('#status').dataset.state !== 'connected', null, { timeout: RECONNECT_BUDGET_MS })));
    await Promise.all(pages().map((p) => waitForState(p.page, 'connected', RECONNECT_BUDGET_MS - (Date.now() - killed))));
    const took = Date.now() - killed;
    assert.ok(took <= RECONNECT_BUDGET_MS, `reconnected after ${took} ms`);

    const newPid = await programPid();
    assert.ok(newPid > 0 && newPid !== oldPid, `a new server process (old ${oldPid}, new ${newPid})`);
    // supervisord says RUNNING only once the new process has lived startsecs
    // (2 s), which can be after the pages are back: wait for it, bounded.
    let state = null;
    for (let waited = 0; waited < 10_000 && !state; waited += 200) {
      state = await running();
      if (!state) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(state, 'supervisorctl status: RUNNING');
    assert.match(supervisordLog(), /exited: windlass \(terminated by SIGKILL; not expected\)/);
    assert.equal(programLog('out').match(/^listening on 127\.0\.0\.1:\d+$/gm)?.length, 2,
      `two "listening on" lines in the program's stdout log:\n${programLog('out')}`);
    console.log(`# kill -9 ${oldPid} -> new server ${newPid}; both pages connected again ${took} ms after the kill`);
    const at = (what) => {
      const lines = supervisordLog().split('\n').filter((l) => l.includes(what));
      const m = /^(\S+ \S+),(\d+)/.exec(lines[lines.length - 1] ?? '');
      return m ? Date.parse(m[1].replace(' ', 'T')) + Number(m[2]) : NaN;
    };
    console.log(`# supervisord noticed the exit and spawned again ${at(`spawned: 'windlass' with pid ${newPid}`) -
      at('exited: windlass (terminated by SIGKILL')} ms later`);

    await send(two.page, 'back after kill -9');
    assert.equal(await waitForNth(one.page, '.msg.received', 1), 'back after kill -9');
    await send(one.page, 'and the other way');
    assert.equal(await waitForNth(two.page, '.msg.received', 2), 'and the other way');
  });

  it('stops with SIGTERM: drains, closes 1001, exits 0 within stopwaitsecs', async () => {
    pages();
    const started = Date.now();
    const { code, out } = await ctl('stop', 'windlass');
    const took = Date.now() - started;
    assert.equal(code, 0, out);
    assert.match(out, /windlass: stopped/);
    assert.ok(took >= DRAIN_MS - 100, `stopped after ${took} ms, before the ${DRAIN_MS} ms drain was over`);
    assert.ok(took < Number(setting('stopwaitsecs')) * 1000, `took ${took} ms`);
    assert.match(supervisordLog(), /stopped: windlass \(exit status 0\)/,
      `supervisord.log:\n${supervisordLog()}`);
    assert.doesNotMatch(supervisordLog(), /killing 'windlass'.*SIGKILL/);
    for (const p of pages()) {
      await p.page.waitForFunction(() => document.querySelector('#status').dataset.state !== 'connected');
      // The page says why: the server's 1001 close reason reached it.
      await p.page.waitForFunction(() => /Server going away/.test(document.querySelector('#log').textContent));
      assert.deepEqual(p.errors, [], `${p.name}: page errors`);
    }
    console.log(`# supervisorctl stop: exit status 0 after ${took} ms (drain ${DRAIN_MS} ms)`);
  });
});
