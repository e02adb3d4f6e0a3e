// The chat page over https:// and wss:// in headless Chromium: windlass-chat
// with a TLS listener and a certificate made by the test (openssl), two
// pages chatting through it, and the page's own wss:// URL in use.
//
// Run by ctest with WINDLASS_CHAT_BIN and WINDLASS_SOURCE_DIR set.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const SOURCE_DIR = process.env.WINDLASS_SOURCE_DIR;
const CHAT = process.env.WINDLASS_CHAT_BIN;
const require = createRequire(path.join(SOURCE_DIR, 'package.json'));
const { chromium } = require('playwright-core');
const ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const dir = mkdtempSync(path.join(os.tmpdir(), 'windlass-tls-'));
let server;
let browser;

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

before(async () => {
  // A CA and a certificate for 127.0.0.1 signed by it.
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-subj', '/CN=windlass test CA', '-days', '2', '-out', 'ca.pem');
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key',
    '-subj', '/CN=127.0.0.1', '-out', 'server.csr');
  writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '7', '-days', '2',
    '-extfile', 'ext', '-out', 'server.pem');

  server = spawn(CHAT, ['--host', '127.0.0.1', '--port', '0', '--tls-port', '0', '--tls-cert',
    path.join(dir, 'server.pem'), '--tls-key', path.join(dir, 'server.key'),
    '--public', path.join(SOURCE_DIR, 'examples', 'chat', 'public')], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr.resume();
  server.exited = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
  const lines = readline.createInterface({ input: server.stdout });
  server.tlsPort = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no TLS listening line')), 15_000);
    lines.on('line', (line) => {
      const m = /^listening on 127\.0\.0\.1:(\d+) \(tls\)$/.exec(line.trim());
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    server.kill('SIGTERM');
    const code = await Promise.race([server.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
    assert.equal(code, 0, 'windlass-chat exits 0 after SIGTERM');
  }
  rmSync(dir, { recursive: true, force: true });
});

it('two pages chat over wss:// through the TLS listener', async () => {
  // The test's own CA is not in Chromium's store: its certificate errors are
  // ignored for this context only, which still runs the real TLS handshake.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const url = `https://127.0.0.1:${server.tlsPort}/`;
  const [a, b] = [await context.newPage(), await context.newPage()];
  const sockets = [];
  a.on('websocket', (ws) => sockets.push(ws.url()));
  for (const page of [a, b]) {
    await page.goto(url);
    await page.waitForSelector('#status[data-state="connected"]', { timeout: 10_000 });
  }
  assert.ok(sockets.some((u) => u.startsWith('wss://127.0.0.1:')), `the page used wss://: ${sockets}`);
  await a.fill('#message', 'hello over TLS');
  await a.click('#send');
  const got = b.locator('#log .msg.received').last();
  await got.waitFor({ timeout: 10_000 });
  assert.equal(await got.textContent(), 'hello over TLS');
  await context.close();
});
