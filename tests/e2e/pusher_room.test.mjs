// The demo room (examples/chat/public/room.html) in headless Chromium:
// Laravel Echo 2 and pusher-js's web build, served by windlass-server
// with deploy/windlass.toml itself (what `make run` starts) from the
// repo's node_modules, the web app's side by examples/pusher/auth_server.php
// under `php -S`. Two pages (a desktop window and a phone) see each other
// join (Echo.join: here/joining/leaving), type (whisper) and talk
// (messages published by PHP with the sender left out); publish.php's
// message and an Echo.private().listen() event arrive; markup stays text;
// nothing is fetched from anywhere else. Then the page's two failures:
// libraries not installed, and no web app to authorize it.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set;
// needs Chromium, php-cli and npm ci. Screenshots go to the system temp
// folder (WINDLASS_SCREENSHOT_DIR overrides). By hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/e2e/pusher_room.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CHAT_PUBLIC, DEFAULT_CONFIG, External, HOST, STEP_TIMEOUT_MS, SOURCE_DIR, Server, freePort, launchChromium,
  serverBinary, which, watchdog,
} from '../support/harness.mjs';
import { request, startHub } from '../support/pusher.mjs';

watchdog(150_000);
const T = { timeout: 40_000 };
const PHP = which('php');
if (!PHP) throw new Error('php not installed (scripts/install-deps.sh --with-test installs php-cli)');
const PUBLISH = path.join(SOURCE_DIR, 'examples', 'pusher', 'publish.php');

const screenshot = (name) =>
  path.join(process.env.WINDLASS_SCREENSHOT_DIR || os.tmpdir(), `windlass-room-${name}.png`);

function php(args, env) {
  return new Promise((resolve) => {
    execFile(PHP, args, { env, timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

// A page with what went wrong on it recorded.
async function openRoom(browser, url, { name, viewport }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript((n) => localStorage.setItem('windlass-room-name', n), name);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const record = { name, page, context, dialogs: [], errors: [], requests: [] };
  page.on('dialog', (d) => { record.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (err) => record.errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') record.errors.push(`console: ${msg.text()}`); });
  page.on('request', (req) => record.requests.push(req.url()));
  await page.goto(url, { waitUntil: 'load' });
  return record;
}

const members = (page) => page.$$eval('#members li', (lis) => lis.map((li) => li.textContent));
const messages = (page, selector = '.msg') =>
  page.$$eval(`#log ${selector}`, (lis) => lis.map((li) => [li.dataset.who, li.textContent]));

describe('the demo room in Chromium', { timeout: 140_000 }, () => {
  let server;
  let phpServer;
  let browser;
  let env;
  let url;
  let ann;
  let bob;

  before(async () => {
    server = await new Server([serverBinary(), '--config', DEFAULT_CONFIG, '--threads', '2'],
      { name: 'windlass-server (deploy/windlass.toml)' }).start();
    const port = await freePort();
    env = { ...process.env, PUSHER_HOST: HOST, PUSHER_PORT: String(server.port) };
    phpServer = await new External([PHP, '-S', `${HOST}:${port}`, path.join(SOURCE_DIR, 'examples', 'pusher', 'auth_server.php')],
      { name: 'php -S auth_server.php', port, env, expectExit: null }).start();
    url = `${server.origin}/room.html?app=${encodeURIComponent(`http://${HOST}:${port}`)}`;
    browser = await launchChromium();
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (phpServer) await phpServer.stop();
    if (server) await server.stop();
  });

  function pages() {
    assert.ok(ann && bob, 'the two room pages did not open: see the first failure above');
    return [ann.page, bob.page];
  }

  it('has no HTML sinks and loads nothing from another site', () => {
    for (const file of ['room.html', 'room.js']) {
      const text = readFileSync(path.join(CHAT_PUBLIC, file), 'utf8');
      for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'srcdoc', 'eval(']) {
        assert.ok(!text.includes(sink), `${file} uses ${sink}`);
      }
      assert.ok(!/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(text), `${file} loads an external resource`);
    }
  });

  it('serves the libraries from node_modules and nothing else of the repository', T, async () => {
    for (const p of ['/node_modules/pusher-js/dist/web/pusher.min.js', '/node_modules/laravel-echo/dist/echo.iife.js']) {
      const r = await request(server.port, { path: p });
      assert.equal(r.status, 200, p);
      assert.match(r.headers['content-type'], /javascript/);
    }
    for (const p of ['/node_modules/pusher-js/package.json', '/node_modules/ws/index.js', '/deploy/windlass.toml',
      '/node_modules/laravel-echo/dist/../../../deploy/windlass.toml',
      '/node_modules/laravel-echo/dist/%2e%2e/%2e%2e/%2e%2e/deploy/windlass.toml',
      '/node_modules/pusher-js/dist/web/..%2f..%2f..%2f..%2fdeploy%2fwindlass.toml']) {
      const r = await request(server.port, { path: p });
      assert.equal(r.status, 404, `${p}: ${r.status} ${r.text.slice(0, 80)}`);
    }
  });

  it('shows who is here: each page sees both, itself marked', T, async () => {
    const first = await openRoom(browser, url, { name: 'Ann', viewport: { width: 1024, height: 700 } });
    await first.page.waitForSelector('#status[data-state="connected"]');
    await first.page.waitForFunction(() => document.querySelectorAll('#members li').length === 1);
    const second = await openRoom(browser, url, { name: 'Bob', viewport: { width: 390, height: 700 } });
    for (const p of [first.page, second.page]) {
      await p.waitForFunction(() => document.querySelectorAll('#members li').length === 2);
      assert.deepEqual(await members(p), ['Ann', 'Bob']);
      assert.equal(await p.isEnabled('#send'), true);
      assert.equal(await p.isHidden('#problem'), true, await p.textContent('#problem'));
    }
    assert.equal(await first.page.textContent('#members li.me'), 'Ann');
    const overflow = await second.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the room is ${overflow}px wider than a 390px screen`);
    assert.equal(await second.page.textContent('#members li.me'), 'Bob');
    await first.page.waitForFunction(() => [...document.querySelectorAll('#log .notice')]
      .some((li) => li.textContent === 'Bob joined'));
    [ann, bob] = [first, second];
  });

  it('shows the other typing (a whisper) and not oneself', T, async () => {
    const [a, b] = pages();
    await b.fill('#message', '');
    await b.type('#message', 'hel');
    await a.waitForFunction(() => document.querySelector('#typing').textContent === 'Bob is typing…');
    assert.equal(await b.textContent('#typing'), '');
  });

  it('delivers a message through PHP to the other page, once, as text', T, async () => {
    const [a, b] = pages();
    const text = 'hello <img src=x onerror=alert(1)> & <b>bold</b>';
    await b.fill('#message', text);
    await b.press('#message', 'Enter');
    await a.waitForFunction(() => document.querySelectorAll('#log .msg').length === 1);
    assert.deepEqual(await messages(a), [['Bob', text]]);
    assert.equal(await a.textContent('#typing'), '', 'still typing after the message arrived');
    // The sender shows its own message once: PHP left its socket_id out.
    await b.waitForTimeout(500);
    assert.deepEqual(await messages(b), [['Bob', text]]);
    assert.deepEqual(await messages(b, '.msg.mine'), [['Bob', text]]);
    assert.equal(await a.locator('#log img, #log b').count(), 0, 'markup was rendered');
    await a.screenshot({ path: screenshot('desktop') });
    await b.screenshot({ path: screenshot('phone') });
  });

  it('receives what publish.php sends to the room, and an Echo.private() event', T, async () => {
    const [a, b] = pages();
    const r = await php([PUBLISH, 'Deploy finished'], env);
    assert.equal(r.code, 0, r.stderr);
    for (const p of [a, b]) {
      await p.waitForFunction(() => [...document.querySelectorAll('#log .msg')]
        .some((li) => li.textContent === 'Deploy finished' && li.dataset.who === 'publish.php'));
    }
    // The page's Echo, as a Laravel page would use it for a user's own channel.
    const userId = await a.evaluate(() => sessionStorage.getItem('windlass-room-id'));
    await a.evaluate((id) => new Promise((resolve, reject) => {
      window.poked = [];
      window.echo.private(`user.${id}`)
        .listen('.poke', (e) => window.poked.push(e))
        .subscribed(resolve)
        .error((e) => reject(new Error(JSON.stringify(e))));
    }), userId);
    const r2 = await php([PUBLISH, `private-user.${userId}`, 'poke', '{"from":"the test"}'], env);
    assert.equal(r2.code, 0, r2.stderr);
    await a.waitForFunction(() => window.poked.length === 1);
    assert.deepEqual(await a.evaluate(() => window.poked[0]), { from: 'the test' });
    // Another user's private channel is refused by the web app.
    const refused = await b.evaluate((id) => new Promise((resolve) => {
      window.echo.private(`user.${id}`).subscribed(() => resolve('subscribed')).error((e) => resolve(e.status));
    }), userId);
    assert.equal(refused, 403);
  });

  it('sees the other leave', T, async () => {
    const [a] = pages();
    await bob.context.close();
    await a.waitForFunction(() => document.querySelectorAll('#members li').length === 1);
    assert.deepEqual(await members(a), ['Ann']);
    await a.waitForFunction(() => [...document.querySelectorAll('#log .notice')]
      .some((li) => li.textContent === 'Bob left'));
  });

  it('fetched only from windlass and the web app, with no errors or dialogs', () => {
    pages();
    const allowed = [server.origin, `http://${HOST}:${phpServer.port}`];
    for (const p of [ann, bob]) {
      const foreign = p.requests.filter((u) => !allowed.some((o) => u.startsWith(`${o}/`)) && !u.startsWith('data:'));
      assert.deepEqual(foreign, [], `${p.name} fetched from elsewhere`);
      // (The 403 of the private channel refused above is the browser's own report of it.)
      const errors = p.errors.filter((e) => !/status of 403 \(Forbidden\)/.test(e));
      assert.deepEqual(errors, [], `${p.name}: errors`);
      assert.deepEqual(p.dialogs, [], `${p.name}: dialogs`);
    }
  });

  it('says how to fix it when the libraries are not installed or the web app is not running', T, async () => {
    // A server that serves the page but not node_modules, as `make run` does before `npm ci`.
    const bare = await startHub({ routes: [{ path: '/*', component: 'static', root: CHAT_PUBLIC }] });
    try {
      const page = await openRoom(browser, `${bare.origin}/room.html`, { name: 'Cy', viewport: { width: 800, height: 500 } });
      await page.page.waitForSelector('#problem:not([hidden])');
      assert.match(await page.page.textContent('#problem'), /not in the repository's node_modules.*npm ci/);
      await page.page.screenshot({ path: screenshot('no-libraries') });
      await page.context.close();
    } finally {
      await bare.stop();
    }
    const noApp = `${server.origin}/room.html?app=${encodeURIComponent(`http://${HOST}:${await freePort()}`)}`;
    const page = await openRoom(browser, noApp, { name: 'Di', viewport: { width: 800, height: 500 } });
    await page.page.waitForSelector('#problem:not([hidden])');
    assert.match(await page.page.textContent('#problem'), /did not authorize the room.*php -S 127\.0\.0\.1:8000/);
    await page.page.screenshot({ path: screenshot('no-web-app') });
    await page.context.close();
  });
});
