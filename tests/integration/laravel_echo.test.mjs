// Laravel Echo 2 (on pusher-js 8, in Node) against the hub, configured as
// a Laravel app's resources/js/echo.js is for Reverb or Pusher, pointed at
// windlass: Echo.private().listen() with Laravel's event namespace,
// Echo.join() presence (here, joining, leaving), whisper and
// listenForWhisper, .error() for a channel the app refuses, socketId() for
// toOthers(), encryptedPrivate(). The auth endpoint is /broadcasting/auth,
// signed by the pusher SDK as Laravel's broadcaster signs it; events come
// from the SDK as Laravel's pusher driver sends them. The browser side is
// tests/e2e/pusher_room.test.mjs.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; by hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/laravel_echo.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HOST, QUIET_MS, SOURCE_DIR, STEP_TIMEOUT_MS, sleep, waitUntil, watchdog } from '../support/harness.mjs';
import { AuthServer, DEMO, Pusher, cleanup, fresh, sdkFor, startHub } from '../support/pusher.mjs';

watchdog(120_000);
const T = { timeout: 30_000 };
// Echo's ES module: its "require" build (dist/echo.common.js) cannot be
// loaded by Node, the package being "type": "module".
const { default: Echo } = await import(
  pathToFileURL(path.join(SOURCE_DIR, 'node_modules', 'laravel-echo', 'dist', 'echo.js')).href);
const MASTER_KEY = Buffer.alloc(32, 3).toString('base64');

let server;
let auth;
let sdk;
const echoes = [];

// An Echo as resources/js/echo.js makes it, for `user` (sent as an auth
// param: this test's auth endpoint believes it, a Laravel app has a session).
function echo(user, broadcaster = 'reverb') {
  const e = new Echo({
    broadcaster,
    key: DEMO.key,
    ...(broadcaster === 'pusher' ? { cluster: 'mt1' } : {}),
    wsHost: HOST,
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    authEndpoint: auth.url('/broadcasting/auth'),
    auth: { headers: {}, params: { user_id: user.id, user_info: JSON.stringify(user.info ?? {}) } },
    Pusher,
  });
  echoes.push(e);
  return e;
}

async function connected(e) {
  await waitUntil(() => e.connectionStatus() === 'connected', STEP_TIMEOUT_MS, 'Echo connected');
  return e;
}

function received(list, n, what) {
  return waitUntil(() => (list.length >= n ? list : null), STEP_TIMEOUT_MS, `${what} (${list.length} of ${n})`);
}

function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribed(resolve);
    channel.error((err) => reject(new Error(`subscription failed: ${JSON.stringify(err)}`)));
  });
}

describe('Laravel Echo 2 against windlass-server', { timeout: 110_000 }, () => {
  before(async () => {
    server = await startHub({ apps: [{ ...DEMO, client_events: true }] });
    auth = await new AuthServer(DEMO, { encryptionMasterKeyBase64: MASTER_KEY }).start();
    sdk = sdkFor(server, DEMO, { encryptionMasterKeyBase64: MASTER_KEY });
  });
  after(async () => {
    for (const e of echoes) e.disconnect();
    await cleanup();
    if (server) await server.stop();
  });

  for (const broadcaster of ['reverb', 'pusher']) {
    it(`listens on a private channel (broadcaster '${broadcaster}'), Laravel's namespace and a leading dot`, T, async () => {
      const e = await connected(echo({ id: 1 }, broadcaster));
      assert.match(e.socketId(), /^\d+\.\d+$/);
      const name = fresh('orders.');
      const shipped = [];
      const custom = [];
      const ch = e.private(name)
        .listen('OrderShipped', (data) => shipped.push(data))
        .listen('.order.refunded', (data) => custom.push(data));
      await subscribed(ch);
      // What Laravel's pusher driver sends for `broadcast(new OrderShipped($order))`.
      await sdk.trigger(`private-${name}`, 'App\\Events\\OrderShipped', { order: { id: 1 }, socket: null });
      await sdk.trigger(`private-${name}`, 'order.refunded', { amount: 5 });
      await received(shipped, 1, 'OrderShipped');
      await received(custom, 1, '.order.refunded');
      assert.deepEqual(shipped[0].order, { id: 1 });
      assert.deepEqual(custom[0], { amount: 5 });
      e.leave(name);
      await sleep(100);
      await sdk.trigger(`private-${name}`, 'App\\Events\\OrderShipped', { order: { id: 2 } });
      await sleep(QUIET_MS);
      assert.equal(shipped.length, 1, 'an event after Echo.leave()');
    });
  }

  it('leaves out the sender with toOthers() (its socketId())', T, async () => {
    const [a, b] = [await connected(echo({ id: 2 })), await connected(echo({ id: 3 }))];
    const name = fresh('feed.');
    const atA = [];
    const atB = [];
    const ca = a.private(name).listen('.posted', (d) => atA.push(d));
    const cb = b.private(name).listen('.posted', (d) => atB.push(d));
    await Promise.all([subscribed(ca), subscribed(cb)]);
    await sdk.trigger(`private-${name}`, 'posted', { text: 'hi' }, { socket_id: a.socketId() });
    await received(atB, 1, 'the event at b');
    await sleep(QUIET_MS);
    assert.equal(atA.length, 0, 'toOthers() reached the sender');
  });

  it('joins a presence channel: here, joining, leaving — once per user', T, async () => {
    const room = fresh('room.');
    const log = [];
    const ann = await connected(echo({ id: 'ann', info: { name: 'Ann' } }));
    let annHere = null;
    ann.join(room)
      .here((users) => { annHere = users; })
      .joining((user) => log.push(['joining', user.name]))
      .leaving((user) => log.push(['leaving', user.name]));
    await waitUntil(() => annHere, STEP_TIMEOUT_MS, 'here() for ann');
    assert.deepEqual(annHere, [{ name: 'Ann' }]);
    const bob1 = await connected(echo({ id: 'bob', info: { name: 'Bob' } }));
    let bobHere = null;
    bob1.join(room).here((users) => { bobHere = users; });
    await waitUntil(() => bobHere, STEP_TIMEOUT_MS, 'here() for bob');
    assert.deepEqual(bobHere.map((u) => u.name).sort(), ['Ann', 'Bob']);
    await waitUntil(() => log.length === 1, STEP_TIMEOUT_MS, 'joining at ann');
    // Bob in a second tab: no second joining.
    const bob2 = await connected(echo({ id: 'bob', info: { name: 'Bob' } }));
    let bob2Here = null;
    bob2.join(room).here((users) => { bob2Here = users; });
    await waitUntil(() => bob2Here, STEP_TIMEOUT_MS, 'here() for bob\'s second tab');
    assert.equal(bob2Here.length, 2);
    bob1.leave(room);
    await sleep(QUIET_MS);
    assert.deepEqual(log, [['joining', 'Bob']], 'bob left while his other tab stays');
    bob2.disconnect();
    await waitUntil(() => log.length === 2, STEP_TIMEOUT_MS, 'leaving at ann');
    assert.deepEqual(log, [['joining', 'Bob'], ['leaving', 'Bob']]);
  });

  it('whispers to the others on the channel, never back to the whisperer', T, async () => {
    const room = fresh('chat.');
    const [a, b, c] = [await connected(echo({ id: 'a', info: { name: 'A' } })),
      await connected(echo({ id: 'b', info: { name: 'B' } })), await connected(echo({ id: 'c' }))];
    const heard = { a: [], b: [], c: [] };
    const chans = {};
    for (const [k, e] of Object.entries({ a, b })) {
      chans[k] = e.join(room).listenForWhisper('typing', (d) => heard[k].push(d));
      await subscribed(chans[k]);
    }
    const priv = fresh('dm.');
    const pc = c.private(priv).listenForWhisper('typing', (d) => heard.c.push(d));
    const pa = a.private(priv);
    await Promise.all([subscribed(pc), subscribed(pa)]);
    chans.a.whisper('typing', { name: 'A' });
    pa.whisper('typing', { name: 'A', where: 'dm' });
    await received(heard.b, 1, 'the presence whisper at b');
    await received(heard.c, 1, 'the private whisper at c');
    assert.deepEqual(heard.b[0], { name: 'A' });
    assert.deepEqual(heard.c[0], { name: 'A', where: 'dm' });
    await sleep(QUIET_MS);
    assert.equal(heard.a.length, 0, 'a heard its own whisper');
  });

  it('reports a channel the app refuses to .error()', T, async () => {
    const e = await connected(echo({ id: 9 }));
    const errors = [];
    e.private(fresh('secret.')).error((err) => errors.push(err));
    // The same app signing with a wrong secret (a misconfigured PUSHER_APP_SECRET).
    const wrong = new Echo({ broadcaster: 'reverb', key: DEMO.key, wsHost: HOST, wsPort: server.port,
      forceTLS: false, enabledTransports: ['ws'], authEndpoint: auth.url('/broadcasting/auth'),
      auth: { headers: {}, params: { user_id: '9', mode: 'wrong-secret' } }, Pusher });
    echoes.push(wrong);
    await connected(wrong);
    const wrongErrors = [];
    wrong.private(fresh('secret.')).error((err) => wrongErrors.push(err));
    const forbidden = new Echo({ broadcaster: 'reverb', key: DEMO.key, wsHost: HOST, wsPort: server.port,
      forceTLS: false, enabledTransports: ['ws'], authEndpoint: auth.url('/broadcasting/auth'),
      auth: { headers: {}, params: { mode: 'forbidden' } }, Pusher });
    echoes.push(forbidden);
    await connected(forbidden);
    const forbiddenErrors = [];
    forbidden.private(fresh('secret.')).error((err) => forbiddenErrors.push(err));
    await received(wrongErrors, 1, 'the refused signature');
    await received(forbiddenErrors, 1, 'the app\'s 403');
    assert.equal(wrongErrors[0].type, 'AuthError');
    assert.equal(wrongErrors[0].status, 401);
    assert.equal(forbiddenErrors[0].status, 403);
    assert.equal(errors.length, 0, JSON.stringify(errors));
  });

  it('decrypts an encryptedPrivate() channel', T, async () => {
    const e = await connected(echo({ id: 11 }));
    const name = fresh('vault.');
    const got = [];
    const ch = e.encryptedPrivate(name).listen('.opened', (d) => got.push(d));
    await subscribed(ch);
    await sdk.trigger(`private-encrypted-${name}`, 'opened', { code: 42 });
    await received(got, 1, 'the decrypted event');
    assert.deepEqual(got[0], { code: 42 });
  });
});
