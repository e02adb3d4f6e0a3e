// The chat page over https:// and wss:// in headless Chromium: windlass-chat
// with a TLS listener and a certificate made by the test (openssl), two
// pages chatting through it, and the page's own wss:// URL in use.
//
// Run by ctest with WINDLASS_CHAT_BIN and WINDLASS_SOURCE_DIR set; by hand:
//
//   WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat node tests/e2e/chat_tls.test.mjs

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { CHAT_PUBLIC, example, launchChromium, makeCa, makeLeaf, tempDir, watchdog } from '../support/harness.mjs';

watchdog();

let server;
let browser;

before(async () => {
  // A CA and a certificate for 127.0.0.1 signed by it.
  const dir = tempDir('windlass-tls-');
  makeCa(dir);
  const { cert, key } = makeLeaf(dir, 'server');
  server = await example('WINDLASS_CHAT_BIN', ['--tls-port', '0', '--tls-cert', cert, '--tls-key', key,
    '--public', CHAT_PUBLIC], { name: 'windlass-chat (tls)', tls: true }).start();
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop(); // exit 0 after SIGTERM
});

it('two pages chat over wss:// through the TLS listener', async () => {
  // The test's own CA is not in Chromium's store: its certificate errors are
  // ignored for this context only, which still runs the real TLS handshake.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const url = `${server.tlsOrigin}/`;
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
