// The chat page in a real browser: Debian's Chromium driven by playwright-core.
//
// Two pages (a desktop window and a phone-sized one) open the page that
// windlass-chat serves at `/`, talk to each other through the server, show
// hostile text as text, and reconnect by themselves after the server is
// restarted on the same port.
//
// Run by ctest with WINDLASS_CHAT_BIN and WINDLASS_SOURCE_DIR set;
// playwright-core is installed in <repo>/node_modules by npm ci. Screenshots
// go to the system temp folder (WINDLASS_SCREENSHOT_DIR overrides), never the repo.
// By hand:
//
//   WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat node tests/e2e/chat_page.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHAT_PUBLIC, STEP_TIMEOUT_MS, example, launchChromium, watchdog } from '../support/harness.mjs';

const RECONNECT_BUDGET_MS = 10_000;

watchdog();

function chatServer() {
  return example('WINDLASS_CHAT_BIN', ['--public', CHAT_PUBLIC], { name: 'windlass-chat' });
}

// ---------------------------------------------------------------------------
// Pages, with everything a test wants to assert on afterwards recorded.

async function openChat(browser, origin, viewport, name) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const record = { name, page, context, dialogs: [], errors: [], foreign: [], sockets: [] };
  page.on('dialog', (dialog) => {
    record.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => record.errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') record.errors.push(`console: ${msg.text()}`); });
  page.on('request', (req) => {
    if (!req.url().startsWith(origin + '/') && !req.url().startsWith('data:')) record.foreign.push(req.url());
  });
  page.on('websocket', (ws) => record.sockets.push(ws.url()));
  await page.goto(origin + '/', { waitUntil: 'load' });
  return record;
}

function waitForState(page, state, timeout = STEP_TIMEOUT_MS) {
  return page.waitForSelector(`#status[data-state="${state}"]`, { state: 'attached', timeout });
}

async function send(page, text, how) {
  await page.fill('#message', text);
  if (how === 'click') await page.click('#send');
  else await page.press('#message', 'Enter');
  await page.waitForFunction(() => document.querySelector('#message').value === '');
}

// Waits until #log holds `count` elements matching `selector` and returns
// the textContent of the last one.
async function waitForNth(page, selector, count) {
  await page.waitForFunction(([sel, n]) => document.querySelectorAll(`#log ${sel}`).length >= n,
    [selector, count]);
  return page.$$eval(`#log ${selector}`, (els, n) => els[n - 1].textContent, count);
}

function screenshotPath(name) {
  return path.join(process.env.WINDLASS_SCREENSHOT_DIR || os.tmpdir(), `windlass-chat-${name}.png`);
}

// ---------------------------------------------------------------------------

describe('chat page in Chromium', { timeout: 180_000 }, () => {
  let server;
  let browser;
  let one;
  let two;

  before(async () => {
    server = await chatServer().start();
    browser = await launchChromium();
  });

  // The steps build on each other; after a failed step, say so plainly
  // instead of failing on an undefined page.
  function pages() {
    assert.ok(one && two, 'the two chat pages did not open: see the first failure above');
    return [one, two];
  }

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  it('has no HTML sinks in its source', () => {
    const html = readFileSync(path.join(CHAT_PUBLIC, 'index.html'), 'utf8');
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'srcdoc']) {
      assert.ok(!html.includes(sink), `index.html uses ${sink}`);
    }
    assert.ok(!/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(html), 'index.html loads an external resource');
  });

  it('opens in two pages and connects to its own origin', async () => {
    const first = await openChat(browser, server.origin, { width: 1024, height: 700 }, 'desktop');
    const second = await openChat(browser, server.origin, { width: 390, height: 700 }, 'phone');
    for (const p of [first, second]) {
      await waitForState(p.page, 'connected');
      assert.equal(await p.page.textContent('#status'), 'Connected');
      assert.equal(await p.page.isEnabled('#send'), true, 'send is enabled once connected');
      assert.deepEqual(p.sockets, [`ws://127.0.0.1:${server.port}/`]);
    }
    [one, two] = [first, second];
  });

  it('is labelled for assistive technology and fits a phone', async () => {
    const { page } = pages()[1];
    assert.equal(await page.getAttribute('#log', 'aria-live'), 'polite');
    assert.equal(await page.getAttribute('#status', 'role'), 'status');
    // The input has a real label, found the way a screen reader user would.
    assert.equal(await page.getByLabel('Message', { exact: true }).getAttribute('id'), 'message');
    assert.equal(await page.getByRole('button', { name: 'Send' }).getAttribute('id'), 'send');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than a 390px screen`);
  });

  it('delivers a message from one page to the other', async () => {
    pages();
    await send(one.page, 'hello from one', 'enter');
    assert.equal(await waitForNth(one.page, '.msg.sent', 1), 'hello from one');
    assert.equal(await waitForNth(two.page, '.msg.received', 1), 'hello from one');
    // The server does not echo to the sender: one shows it only as sent.
    assert.equal(await one.page.locator('#log .msg.received').count(), 0);
  });

  it('shows received markup as literal text', async () => {
    pages();
    const hostile = '<img src=x onerror=alert(1)>';
    await send(two.page, hostile, 'click');
    assert.equal(await waitForNth(one.page, '.msg.received', 1), hostile);
    assert.equal(await waitForNth(two.page, '.msg.sent', 1), hostile);
    // Give a would-be onerror handler time to fire before looking.
    await one.page.waitForTimeout(500);
    for (const p of [one, two]) {
      assert.equal(await p.page.locator('#log img').count(), 0, `${p.name}: an <img> reached #log`);
      assert.deepEqual(p.dialogs, [], `${p.name}: a dialog fired`);
    }
    await one.page.screenshot({ path: screenshotPath('desktop') });
    await two.page.screenshot({ path: screenshotPath('phone') });
  });

  it('reconnects by itself when the server restarts on the same port', async () => {
    pages();
    const port = server.port;
    await server.stop();
    for (const p of [one, two]) {
      await p.page.waitForFunction(() => document.querySelector('#status').dataset.state !== 'connected');
      assert.equal(await p.page.isDisabled('#send'), true, `${p.name}: send is disabled while down`);
    }
    await one.page.screenshot({ path: screenshotPath('reconnecting') });
    // Stay down long enough for a few refused attempts, so the backoff grows.
    await one.page.waitForTimeout(1500);

    server = await chatServer().start({ port });
    const restarted = Date.now();
    await Promise.all([one, two].map((p) => waitForState(p.page, 'connected', RECONNECT_BUDGET_MS)));
    console.log(`# both pages reconnected ${Date.now() - restarted} ms after the restart`);

    await send(two.page, 'back again', 'enter');
    assert.equal(await waitForNth(one.page, '.msg.received', 2), 'back again');
    await send(one.page, 'welcome back', 'click');
    assert.equal(await waitForNth(two.page, '.msg.received', 2), 'welcome back');
  });

  it('raised no page errors and loaded nothing from elsewhere', () => {
    for (const p of pages()) {
      // A CSP violation or a script error would show up here.
      assert.deepEqual(p.errors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(e)), [],
        `${p.name}: errors on the page`);
      assert.deepEqual(p.foreign, [], `${p.name}: requests to another origin`);
      assert.deepEqual(p.dialogs, [], `${p.name}: dialogs`);
    }
  });
});
