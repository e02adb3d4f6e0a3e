// The channels hub against pusher-js 8 (its Node build) and raw WebSocket
// clients: connecting, every kind of channel with an auth endpoint signed
// by the `pusher` server SDK, refused signatures, presence members, client
// events and their limits, liveness both ways, every close code the hub
// sends, sign-in and terminate_connections, cache channels, and a graceful
// restart that pusher-js rides through.
//
// Each windlass-server is started on 127.0.0.1 with a config written to a
// temp dir (two event loops, so presence and events cross loops) and
// stopped with SIGTERM, which must end it with exit code 0.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set
// (pusher-js, pusher and ws are installed in <repo>/node_modules by npm ci);
// by hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/pusher_js.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { QUIET_MS, sleep, tempDir, waitUntil, watchdog } from '../support/harness.mjs';
import {
  AuthServer, DEMO, PusherJs, RawClient, cleanup, errorCode, fresh, hmac, scrape, sample, sdkFor, startHub, waitCount,
} from '../support/pusher.mjs';

watchdog(120_000);
const T = { timeout: 30_000 };

// The apps of the main server, each with the one setting its tests need.
const QUIET = { id: 'quiet-app', key: 'quiet-key', secret: 'quiet-secret-from-env' }; // client events off
const SMALL = { id: 'small-app', key: 'small-key', secret: 'small-secret-from-file' }; // presence limits
const TINY = { id: 'tiny-app', key: 'tiny-key', secret: 'tiny-secret' };                // 2 connections
const OFF = { id: 'off-app', key: 'off-key', secret: 'off-secret' };                    // disabled
const GUARDED = { id: 'guarded-app', key: 'guarded-key', secret: 'guarded-secret' };    // allowed_origins
const ROOMY = { id: 'roomy-app', key: 'roomy-key', secret: 'roomy-secret' };             // larger limits

let server;
let auth;
let sdk;

async function mainServer() {
  const dir = tempDir('windlass-hub-');
  writeFileSync(path.join(dir, 'small.secret'), `${SMALL.secret}\n`);
  return startHub({
    dir,
    channels: { activity_timeout: '120s' },
    apps: [
      { ...DEMO, client_events: true },
      { id: QUIET.id, key: QUIET.key, secret_env: 'WINDLASS_TEST_QUIET_SECRET', client_events: false },
      { id: SMALL.id, key: SMALL.key, secret_file: 'small.secret', client_events: true, max_presence_members: 2,
        max_user_info_size: 64 },
      { ...TINY, max_connections: 2 },
      { ...OFF, enabled: false },
      { ...GUARDED, allowed_origins: ['https://good.example'] },
      { ...ROOMY, client_events: true, max_event_size: '32KiB', max_user_info_size: '8KiB' },
    ],
  }, { env: { WINDLASS_TEST_QUIET_SECRET: QUIET.secret } });
}

function client(options = {}) {
  return new PusherJs(server, { auth, ...options });
}

async function connected(options) {
  const c = client(options);
  await c.connected();
  return c;
}

describe('pusher-js against windlass-server', { timeout: 110_000 }, () => {
  before(async () => {
    server = await mainServer();
    auth = await new AuthServer().start();
    sdk = sdkFor(server);
  });
  after(async () => {
    await cleanup();
    if (server) await server.stop();
  });

  it('connects with a socket_id the server SDKs accept', T, async () => {
    const [a, b] = [await connected(), await connected()];
    assert.match(a.socketId, /^\d+\.\d+$/);
    assert.match(b.socketId, /^\d+\.\d+$/);
    assert.notEqual(a.socketId, b.socketId);
    const raw = await RawClient.connect(server);
    assert.match(raw.socketId, /^\d+\.\d+$/);
    assert.equal(raw.activityTimeout, 120);
    // pusher-http-php's own check of a socket_id is the same regex.
    assert.doesNotThrow(() => sdk.authorizeChannel(a.socketId, 'private-x'));
    await Promise.all([a.close(), b.close(), raw.close()]);
  });

  it('delivers API events on a public channel, and none after unsubscribing', T, async () => {
    const name = fresh('news-');
    const a = await connected();
    const ch = await a.subscribe(name);
    const got = a.record(ch, 'headline');
    await sdk.trigger(name, 'headline', { text: 'hello' });
    await waitCount(got, 1, 'the event');
    assert.deepEqual(got[0].data, { text: 'hello' });
    a.pusher.unsubscribe(name);
    await sleep(100);
    await sdk.trigger(name, 'headline', { text: 'again' });
    await sleep(QUIET_MS);
    assert.equal(got.length, 1, 'an event arrived after unsubscribing');
    await a.close();
  });

  it('subscribes to a private channel through the auth endpoint', T, async () => {
    const name = fresh('private-orders.');
    const before = auth.requests.length;
    const a = await connected();
    const ch = await a.subscribe(name);
    const req = auth.requests.slice(before).find((r) => r.params.channel_name === name);
    assert.ok(req, 'pusher-js did not call the auth endpoint');
    assert.equal(req.params.socket_id, a.socketId);
    const got = a.record(ch, 'shipped');
    await sdk.trigger(name, 'shipped', { id: 7 });
    await waitCount(got, 1, 'the private event');
    assert.deepEqual(got[0].data, { id: 7 });
    await a.close();
  });

  for (const mode of ['wrong-secret', 'empty']) {
    it(`refuses a private subscription with a ${mode} signature, and sends it nothing`, T, async () => {
      const name = fresh('private-secret.');
      const a = await connected({ params: { mode } });
      const err = await a.subscribe(name).then(() => null, (e) => e);
      assert.ok(err, 'the subscription succeeded');
      assert.equal(err.status.type, 'AuthError');
      assert.equal(err.status.status, 401);
      const got = a.record(a.pusher.channel(name), 'leak');
      await sdk.trigger(name, 'leak', { secret: true });
      await sleep(QUIET_MS);
      assert.equal(got.length, 0, 'an event of a refused channel arrived');
      assert.equal(a.state, 'connected', 'a refused subscription closed the connection');
      await a.close();
    });
  }

  it('refuses private and presence subscriptions signed wrong, by hand', T, async () => {
    const raw = await RawClient.connect(server);
    const sign = (text, secret = DEMO.secret) => `${DEMO.key}:${hmac(secret, text)}`;
    const cases = [
      ['private-a', undefined, undefined],                                     // no auth at all
      ['private-b', 'not-even-a-pair', undefined],
      ['private-c', `${DEMO.key}:${'0'.repeat(64)}`, undefined],
      ['private-d', `quiet-key:${hmac(DEMO.secret, `${raw.socketId}:private-d`)}`, undefined], // another key
      ['private-e', sign(`${raw.socketId}:private-other`), undefined],         // another channel's
      ['private-f', sign(`1.1:private-f`), undefined],                         // another socket's
      ['presence-g', sign(`${raw.socketId}:presence-g:{"user_id":"1"}`), '{"user_id":"2"}'], // channel_data changed
      ['presence-h', sign(`${raw.socketId}:presence-h`), undefined],           // no channel_data
    ];
    for (const [channel, authValue, data] of cases) {
      raw.subscribe(channel, authValue, data);
      const m = await raw.next((x) => x.channel === channel);
      assert.equal(m.event, 'pusher:subscription_error', `${channel}: ${JSON.stringify(m)}`);
      assert.equal(m.data.type, 'AuthError', channel);
      assert.ok([400, 401].includes(m.data.status), `${channel}: status ${m.data.status}`);
    }
    // The right signature works on the same connection afterwards.
    raw.subscribe('private-z', sign(`${raw.socketId}:private-z`));
    assert.equal((await raw.next((x) => x.channel === 'private-z')).event, 'pusher_internal:subscription_succeeded');
    const m = await scrape(server);
    assert.ok(sample(m, 'windlass_channels_auth_failures_total', { app: DEMO.id }) >= cases.length);
    await raw.close();
  });

  it('decrypts private-encrypted events the SDK encrypted', T, async () => {
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    const encAuth = await new AuthServer(DEMO, { encryptionMasterKeyBase64: masterKey }).start();
    const encSdk = sdkFor(server, DEMO, { encryptionMasterKeyBase64: masterKey });
    const name = fresh('private-encrypted-vault.');
    const a = await connected({ auth: encAuth });
    const ch = await a.subscribe(name);
    const got = a.record(ch, 'opened');
    const raw = await RawClient.connect(server);
    raw.subscribe(name, `${DEMO.key}:${hmac(DEMO.secret, `${raw.socketId}:${name}`)}`);
    await raw.next('pusher_internal:subscription_succeeded');
    await encSdk.trigger(name, 'opened', { code: 1234 });
    await waitCount(got, 1, 'the decrypted event');
    assert.deepEqual(got[0].data, { code: 1234 });
    // What the server carried is ciphertext.
    const wire = await raw.next('opened');
    assert.ok(!wire.data.includes('1234') && JSON.parse(wire.data).ciphertext, `plaintext on the wire: ${wire.data}`);
    // Client events are refused on encrypted channels, by the server too.
    a.pusher.send_event('client-peek', { x: 1 }, name);
    assert.equal(errorCode(await a.errorWith(4009)), 4009);
    await raw.assertNone('client-peek', 'the other subscriber');
    await Promise.all([a.close(), raw.close(), encAuth.close()]);
  });

  it('keeps one presence member per user_id over several connections', T, async () => {
    const name = fresh('presence-room.');
    const alice = { user_id: 'alice', user_info: JSON.stringify({ name: 'Alice' }) };
    const watcher = await connected({ params: { user_id: 'watcher', user_info: '{"name":"W"}' } });
    const wch = await watcher.subscribe(name);
    const added = watcher.record(wch, 'pusher:member_added');
    const removed = watcher.record(wch, 'pusher:member_removed');
    const a1 = await connected({ params: alice });
    const a1ch = await a1.subscribe(name);
    await waitCount(added, 1, 'member_added for alice');
    assert.equal(added[0].data.id, 'alice');
    assert.deepEqual(added[0].data.info, { name: 'Alice' });
    const a2 = await connected({ params: alice });
    const a2ch = await a2.subscribe(name);
    assert.equal(a2ch.members.count, 2);
    assert.deepEqual(a2ch.members.get('watcher').info, { name: 'W' });
    assert.equal(a2ch.members.me.id, 'alice');
    assert.equal(a1ch.members.count, 2);
    await sleep(QUIET_MS);
    assert.equal(added.length, 1, 'a second connection of alice was announced again');
    const users = await sdk.get({ path: `/channels/${name}/users` }).then((r) => r.json());
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['alice', 'watcher']);
    await a1.close();
    await sleep(QUIET_MS);
    assert.equal(removed.length, 0, 'alice was removed while her other connection stays');
    await a2.close();
    await waitCount(removed, 1, 'member_removed for alice');
    assert.equal(removed[0].data.id, 'alice');
    await sleep(QUIET_MS);
    assert.equal(removed.length, 1);
    assert.equal(wch.members.count, 1);
    await watcher.close();
  });

  it('refuses a presence member past max_presence_members, and user_info over its size', T, async () => {
    const name = fresh('presence-full.');
    const user = (id, info = { n: id }) => ({ key: SMALL.key, auth: smallAuth,
      params: { user_id: id, user_info: JSON.stringify(info) } });
    const smallAuth = await new AuthServer(SMALL).start();
    const [u1, u2, u3, u1again, big] = await Promise.all(
      [user('u1'), user('u2'), user('u3'), user('u1'), user('u4', { bio: 'x'.repeat(100) })]
        .map((o) => connected(o)));
    await u1.subscribe(name);
    await u2.subscribe(name);
    const err = await u3.subscribe(name).then(() => null, (e) => e);
    assert.ok(err, 'a third member joined a channel of two');
    assert.equal(err.status.type, 'LimitReached');
    // Another connection of a member is no new member.
    const again = await u1again.subscribe(name);
    assert.equal(again.members.count, 2);
    const tooBig = await big.subscribe(fresh('presence-big.')).then(() => null, (e) => e);
    assert.ok(tooBig, 'user_info of 100+ bytes was accepted with max_user_info_size = 64');
    assert.equal(tooBig.status.type, 'LimitReached');
    await Promise.all([u1, u2, u3, u1again, big, smallAuth].map((c) => c.close()));
  });

  it('relays client events to the others on private and presence channels, never back', T, async () => {
    const priv = fresh('private-chat.');
    const pres = fresh('presence-chat.');
    const a = await connected({ params: { user_id: 'ann', user_info: '{}' } });
    const b = await connected({ params: { user_id: 'bob', user_info: '{}' } });
    const [apriv, bpriv, apres, bpres] = [await a.subscribe(priv), await b.subscribe(priv),
      await a.subscribe(pres), await b.subscribe(pres)];
    const atPriv = a.record(apriv, 'client-typing');
    const btPriv = b.record(bpriv, 'client-typing');
    const btPres = b.record(bpres, 'client-typing');
    const atPres = a.record(apres, 'client-typing');
    assert.equal(apriv.trigger('client-typing', { typing: true }), true);
    await waitCount(btPriv, 1, 'the private client event');
    assert.deepEqual(btPriv[0].data, { typing: true });
    apres.trigger('client-typing', { typing: 'yes' });
    await waitCount(btPres, 1, 'the presence client event');
    assert.deepEqual(btPres[0].data, { typing: 'yes' });
    assert.equal(btPres[0].metadata.user_id, 'ann', 'a presence client event names its sender');
    await sleep(QUIET_MS);
    assert.equal(atPriv.length + atPres.length, 0, 'a client event came back to its sender');
    assert.equal(a.errors.length, 0, JSON.stringify(a.errors));
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses client events on public channels, unsubscribed channels and apps without them', T, async () => {
    const pub = fresh('public-');
    const a = await connected();
    const b = await connected();
    const bch = await b.subscribe(pub);
    await a.subscribe(pub);
    const got = b.record(bch, 'client-nope');
    a.pusher.channel(pub).trigger('client-nope', {});
    await a.errorWith(4009);
    // A private channel it never subscribed to.
    const priv = fresh('private-elsewhere.');
    const bpriv = await b.subscribe(priv);
    const got2 = b.record(bpriv, 'client-nope');
    a.errors.length = 0;
    a.pusher.send_event('client-nope', {}, priv);
    await a.errorWith(4009);
    // An app with client_events = false.
    const quietAuth = await new AuthServer(QUIET).start();
    const q1 = await connected({ key: QUIET.key, auth: quietAuth });
    const q2 = await connected({ key: QUIET.key, auth: quietAuth });
    const qname = fresh('private-quiet.');
    const q1ch = await q1.subscribe(qname);
    const q2ch = await q2.subscribe(qname);
    const got3 = q2.record(q2ch, 'client-nope');
    q1ch.trigger('client-nope', {});
    await q1.errorWith(4009);
    await sleep(QUIET_MS);
    assert.equal(got.length + got2.length + got3.length, 0, 'a refused client event was delivered');
    for (const c of [a, q1]) assert.equal(c.state, 'connected', 'a refused client event closed the connection');
    await Promise.all([a, b, q1, q2, quietAuth].map((c) => c.close()));
  });

  it('honours an app\'s limits above Pusher\'s: 32 KiB client events, 8 KiB user_info', T, async () => {
    const roomyAuth = await new AuthServer(ROOMY).start();
    const name = fresh('presence-roomy.');
    const info = { bio: 'b'.repeat(6000) };
    const a = await connected({ key: ROOMY.key, auth: roomyAuth,
      params: { user_id: 'a', user_info: JSON.stringify(info) } });
    const b = await connected({ key: ROOMY.key, auth: roomyAuth, params: { user_id: 'b' } });
    const ach = await a.subscribe(name);
    const bch = await b.subscribe(name);
    assert.deepEqual(bch.members.get('a').info, info);
    const got = b.record(bch, 'client-essay');
    ach.trigger('client-essay', { text: 'e'.repeat(30 * 1024) });
    await waitCount(got, 1, 'a 30 KiB client event');
    assert.equal(got[0].data.text.length, 30 * 1024);
    // Past the app's limit, the event is refused and the connection stays.
    ach.trigger('client-essay', { text: 'e'.repeat(33 * 1024) });
    assert.equal(errorCode(await a.errorWith(4200)), 4200);
    await sleep(QUIET_MS);
    assert.equal(got.length, 1);
    assert.equal(a.state, 'connected');
    await Promise.all([a.close(), b.close(), roomyAuth.close()]);
  });

  it('closes a client past 10 client events a second with 4301, and pusher-js stays away', T, async () => {
    const name = fresh('private-flood.');
    const a = await connected();
    const b = await connected();
    const ach = await a.subscribe(name);
    const got = b.record(await b.subscribe(name), 'client-spam');
    for (let i = 0; i < 15; i++) ach.trigger('client-spam', { i });
    await a.errorWith(4301);
    await waitUntil(() => a.state === 'disconnected', 5000, 'pusher-js disconnected after 4301');
    await sleep(1500);
    assert.equal(a.state, 'disconnected', 'pusher-js reconnected after 4301');
    // A bucket of 10, refilled at 10 a second: a burst gets 10, plus one for
    // each 100 ms the server took to read it (more than 200 ms only on a
    // crawling sanitizer build).
    assert.ok(got.length >= 10 && got.length <= 12, `${got.length} of 15 relayed; the budget is 10 a second`);
    assert.deepEqual(got.map((g) => g.data.i), [...Array(got.length).keys()], 'relayed out of order');
    assert.equal(b.state, 'connected');
    const m = await scrape(server);
    assert.ok(sample(m, 'windlass_channels_closes_total', { app: DEMO.id, code: 4301 }) >= 1);
    await Promise.all([a.close(), b.close()]);
  });

  it('answers pusher:ping with pusher:pong', T, async () => {
    const raw = await RawClient.connect(server);
    raw.send({ event: 'pusher:ping', data: {} });
    const pong = await raw.next('pusher:pong');
    assert.deepEqual(pong.data, {});
    await raw.close();
  });

  it('closes an unknown key with 4001, and pusher-js does not retry', T, async () => {
    const raw = await RawClient.open(server, '/app/no-such-key?protocol=7');
    const err = await raw.next('pusher:error');
    assert.equal(err.data.code, 4001);
    assert.equal((await raw.waitClosed()).code, 4001);
    const p = client({ key: 'no-such-key' });
    await p.errorWith(4001);
    await waitUntil(() => p.state === 'disconnected', 5000, 'pusher-js gave up');
    await sleep(1500);
    // (pusher-js was 'connecting' already when its first state_change could be bound.)
    assert.deepEqual(p.states, ['disconnected'], `pusher-js tried again: ${p.states.join(' → ')}`);
    await p.close();
  });

  for (const [query, code] of [['', 4008], ['?protocol=', 4008], ['?client=js', 4008], ['?protocol=6', 4007],
    ['?protocol=8', 4007], ['?protocol=7x', 4007]]) {
    it(`closes /app/{key}${query} with ${code}`, T, async () => {
      const raw = await RawClient.open(server, `/app/${DEMO.key}${query}`);
      const err = await raw.next('pusher:error');
      assert.equal(err.data.code, code);
      assert.equal((await raw.waitClosed()).code, code);
      assert.ok(!raw.messages.some((m) => m.event === 'pusher:connection_established'));
    });
  }

  it('closes a disabled app with 4003', T, async () => {
    const raw = await RawClient.open(server, `/app/${OFF.key}?protocol=7`);
    assert.equal((await raw.next('pusher:error')).data.code, 4003);
    assert.equal((await raw.waitClosed()).code, 4003);
    const p = client({ key: OFF.key });
    await p.errorWith(4003);
    await p.close();
  });

  it('closes a connection past the app quota with 4004, and admits one once another leaves', T, async () => {
    const [a, b] = [await RawClient.connect(server, TINY.key), await RawClient.connect(server, TINY.key)];
    const c = await RawClient.open(server, `/app/${TINY.key}?protocol=7`);
    assert.equal((await c.next('pusher:error')).data.code, 4004);
    assert.equal((await c.waitClosed()).code, 4004);
    const p = client({ key: TINY.key });
    await p.errorWith(4004);
    await p.close();
    await a.close();
    await waitUntil(async () => sample(await scrape(server), 'windlass_channels_connections', { app: TINY.id }) === 1,
      5000, 'the quota counted the closed connection out');
    const d = await RawClient.connect(server, TINY.key);
    assert.match(d.socketId, /^\d+\.\d+$/);
    await Promise.all([b.close(), d.close()]);
  });

  it('closes an origin the app does not allow with 4009', T, async () => {
    const bad = await RawClient.open(server, `/app/${GUARDED.key}?protocol=7`, { origin: 'https://evil.example' });
    assert.equal((await bad.next('pusher:error')).data.code, 4009);
    assert.equal((await bad.waitClosed()).code, 4009);
    const good = await RawClient.connect(server, GUARDED.key, { origin: 'https://good.example' });
    assert.match(good.socketId, /^\d+\.\d+$/);
    await good.close();
  });

  it('signs users in, and terminate_connections closes every connection of that user only', T, async () => {
    const u9a = await connected({ params: { user_id: 'u9' } });
    const u9b = await connected({ params: { user_id: 'u9' } });
    const u10 = await connected({ params: { user_id: 'u10' } });
    for (const c of [u9a, u9b, u10]) c.pusher.signin();
    for (const c of [u9a, u9b, u10]) {
      await waitUntil(() => c.messages.find((m) => m.event === 'pusher:signin_success'), 5000, 'signin_success');
    }
    const success = u9a.messages.find((m) => m.event === 'pusher:signin_success');
    assert.equal(JSON.parse(success.data.user_data).id, 'u9');
    await sdk.terminateUserConnections('u9');
    await u9a.errorWith(4009);
    await u9b.errorWith(4009);
    await waitUntil(() => u9a.state === 'disconnected' && u9b.state === 'disconnected', 5000, 'both u9 connections closed');
    await sleep(QUIET_MS);
    assert.equal(u10.state, 'connected', 'another user was terminated too');
    assert.equal(u10.errors.filter((e) => errorCode(e) === 4009).length, 0);
    await Promise.all([u9a.close(), u9b.close(), u10.close()]);
  });

  // Disabled: the hub has no server-to-user channels. After signin_success
  // pusher-js subscribes to "#server-to-user-<id>" (for the SDKs'
  // sendToUser, which publishes there through /events); the hub refuses
  // the name ('#' is outside the channel alphabet: pusher:error 4200
  // "invalid channel name", one 'error' event at every sign-in) and the
  // API refuses sendToUser with 400. The fix is not small: a channel kind
  // in channel_name (the pure core), a subscribe check that the connection
  // is signed in as that user, and the API accepting such a channel.
  it('gives a signed-in pusher-js its #server-to-user channel, and sendToUser reaches it',
    { ...T, skip: 'the hub has no #server-to-user- channels yet (see the comment above)' }, async () => {
      const c = await connected({ params: { user_id: 'u11' } });
      const got = [];
      c.pusher.user.bind('notice', (data) => got.push(data));
      c.pusher.signin();
      await waitUntil(() => c.messages.find((m) => m.event === 'pusher_internal:subscription_succeeded' &&
        m.channel === '#server-to-user-u11'), 5000, 'the server-to-user subscription');
      assert.equal(c.errors.length, 0, JSON.stringify(c.errors));
      await sdk.sendToUser('u11', 'notice', { hello: 'u11' });
      await waitCount(got, 1, 'the event sent to the user');
      assert.deepEqual(got[0], { hello: 'u11' });
      // Nobody else may subscribe to it.
      const raw = await RawClient.connect(server);
      raw.subscribe('#server-to-user-u11', '');
      assert.notEqual((await raw.next((m) => m.channel === '#server-to-user-u11' || m.event === 'pusher:error')).event,
        'pusher_internal:subscription_succeeded');
      await Promise.all([c.close(), raw.close()]);
    });

  it('refuses a sign-in signed wrong, keeping the connection', T, async () => {
    const raw = await RawClient.connect(server);
    const userData = JSON.stringify({ id: 'mallory' });
    raw.send({ event: 'pusher:signin', data: { user_data: userData,
      auth: `${DEMO.key}:${hmac('not-the-secret', `${raw.socketId}::user::${userData}`)}` } });
    assert.equal((await raw.next('pusher:error')).data.code, 4009);
    await raw.assertNone('pusher:signin_success', 'a wrong sign-in');
    raw.send({ event: 'pusher:signin', data: { user_data: userData,
      auth: `${DEMO.key}:${hmac(DEMO.secret, `${raw.socketId}::user::${userData}`)}` } });
    const ok = await raw.next('pusher:signin_success');
    assert.equal(JSON.parse(ok.data).user_data, userData);
    // Terminating a user that is not signed in anywhere is fine, and touches nobody.
    await sdk.terminateUserConnections('nobody');
    await raw.assertNone(undefined, 'terminating another user');
    await raw.close();
  });

  it('replays the last event of a cache channel to a new subscriber, and says cache_miss when there is none', T, async () => {
    const cached = fresh('cache-weather.');
    await sdk.trigger(cached, 'forecast', { sky: 'grey' });
    await sdk.trigger(cached, 'forecast', { sky: 'blue' });
    const a = await connected();
    const ch = a.pusher.subscribe(cached);
    const got = a.record(ch, 'forecast');
    const misses = a.record(ch, 'pusher:cache_miss');
    await waitCount(got, 1, 'the cached event');
    assert.deepEqual(got[0].data, { sky: 'blue' });
    const empty = fresh('private-cache-empty.');
    const ech = a.pusher.subscribe(empty);
    const emptyMisses = a.record(ech, 'pusher:cache_miss');
    await waitCount(emptyMisses, 1, 'pusher:cache_miss');
    await sleep(QUIET_MS);
    assert.equal(got.length, 1);
    assert.equal(misses.length, 0);
    await a.close();
  });
});

describe('liveness: activity_timeout 2 s, pong_timeout 1 s', { timeout: 60_000 }, () => {
  let live;
  before(async () => { live = await startHub({ channels: { activity_timeout: '2s', pong_timeout: '1s' } }); });
  after(async () => {
    await cleanup();
    if (live) await live.stop();
  });

  it('pings a quiet client and closes it with 4201 when it never answers', T, async () => {
    const silent = await RawClient.connect(live);
    const polite = await RawClient.connect(live);
    assert.equal(silent.activityTimeout, 2);
    const ping = await polite.next('pusher:ping', 5000);
    assert.ok(ping.at - polite.messages[0].at >= 1900, 'pinged before activity_timeout');
    polite.send({ event: 'pusher:pong', data: {} });
    await silent.next('pusher:ping', 5000);
    assert.equal((await silent.next('pusher:error', 5000)).data.code, 4201);
    const closed = await silent.waitClosed(5000);
    assert.equal(closed.code, 4201);
    const quiet = closed.at - silent.messages[0].at;
    assert.ok(quiet >= 2900 && quiet < 5000, `closed after ${quiet} ms, expected activity + pong timeouts (3 s)`);
    // The one that answered is still served.
    polite.send({ event: 'pusher:ping', data: {} });
    await polite.next('pusher:pong');
    assert.equal(polite.closeInfo, undefined);
    await polite.close();
  });

  it('keeps pusher-js connected: it pings after the server\'s activity_timeout and gets pongs', T, async () => {
    const p = new PusherJs(live);
    const id = await p.connected();
    await sleep(5000);
    assert.equal(p.state, 'connected');
    assert.equal(p.socketId, id, 'pusher-js reconnected');
    assert.ok(p.messages.filter((m) => m.event === 'pusher:pong').length >= 1, 'no pusher:pong reached pusher-js');
    assert.equal(p.errors.length, 0, JSON.stringify(p.errors));
    await p.close();
  });
});

describe('graceful restart', { timeout: 60_000 }, () => {
  // The new process is started first, on the same port (SO_REUSEPORT), as
  // a handover restart does: SIGTERM then closes the old one's listener
  // before its clients get 4200 ("reconnect now"), so pusher-js's immediate
  // retry reaches the new one. (Had nothing been listening, pusher-js would
  // wait out its 15 s connect timeout before the next try.) One event loop
  // each, so the listener is closed before the first 4200 is sent.
  it('closes pusher-js with 4200 on SIGTERM; it reconnects at once to the new server and resubscribes', T, async () => {
    const options = { server: { threads: 2 } };
    const first = await startHub(options, { name: 'windlass-server (old)' });
    let second;
    try {
      const p = new PusherJs(first);
      await p.connected();
      const name = fresh('updates-');
      const ch = await p.subscribe(name);
      const got = p.record(ch, 'tick');
      second = await startHub(options, { port: first.port, name: 'windlass-server (new)' });
      const t0 = Date.now();
      first.signal('SIGTERM');
      await p.errorWith(4200);
      // (Socket ids restart with the process: "0.1" may come back; the state history tells.)
      await waitUntil(() => p.state === 'connected' && p.states.filter((s) => s === 'connected').length === 2, 10_000,
        `pusher-js back on the new server (states ${p.states.join(' → ')})`);
      const took = Date.now() - t0;
      assert.ok(took < 3000, `pusher-js took ${took} ms to reconnect after 4200`);
      await first.stop({ signal: false });
      const sdk2 = sdkFor(second);
      await waitUntil(async () => {
        const info = await sdk2.get({ path: `/channels/${name}`, params: { info: 'subscription_count' } }).then((r) => r.json());
        return info.subscription_count === 1;
      }, 5000, 'pusher-js resubscribed');
      await sdk2.trigger(name, 'tick', { n: 1 });
      await waitCount(got, 1, 'an event from the new server');
      assert.deepEqual(got[0].data, { n: 1 });
      await p.close();
    } finally {
      await cleanup();
      if (first.alive()) await first.stop();
      if (second) await second.stop();
    }
  });
});
