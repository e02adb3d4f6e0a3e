// The hub's HTTP API against the `pusher` Node server SDK 5 (what a Node
// app publishes with; the PHP SDK signs the same way, see pusher_php):
// events to one and many channels, socket_id exclusion, info, batches,
// channel listings and info, presence users, terminate_connections; and
// every refusal: wrong secret or key, a stale or future timestamp (a
// replay), unknown app, bodies and data over the limits, malformed JSON,
// and several calls on one kept-alive connection. The events are received
// by pusher-js subscribers, so a 200 means delivered, not only accepted.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; by hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/pusher_api.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { QUIET_MS, sleep, watchdog } from '../support/harness.mjs';
import {
  AuthServer, DEMO, PusherJs, api, cleanup, fresh, request, sample, scrape, sdkFor, startHub, waitCount,
} from '../support/pusher.mjs';

watchdog(120_000);
const T = { timeout: 30_000 };
const OTHER = { id: 'other-app', key: 'other-key', secret: 'other-secret' };
// An app whose limits are above Pusher's defaults.
const ROOMY = { id: 'roomy-app', key: 'roomy-key', secret: 'roomy-secret' };

let server;
let auth;
let sdk;

async function subscriber(channels, params = {}) {
  const c = new PusherJs(server, { auth, params });
  await c.connected();
  const subs = [];
  for (const name of channels) subs.push(await c.subscribe(name));
  return { c, subs };
}

// The status and body of a rejected SDK call.
async function refused(promise) {
  try {
    await promise;
  } catch (err) {
    return { status: err.status, body: err.body };
  }
  throw new Error('the call succeeded');
}

describe('the HTTP API with the pusher Node SDK', { timeout: 110_000 }, () => {
  before(async () => {
    server = await startHub({
      server: { max_body_size: '256KiB' },
      apps: [{ ...DEMO, client_events: true }, OTHER,
        { ...ROOMY, max_event_size: '64KiB', max_channels_per_event: 200, max_batch_events: 50 }],
    });
    auth = await new AuthServer().start();
    sdk = sdkFor(server);
  });
  after(async () => {
    await cleanup();
    if (server) await server.stop();
  });

  it('triggers an event on one channel: 200 {} and the subscriber gets it', T, async () => {
    const name = fresh('private-orders.');
    const { c, subs } = await subscriber([name]);
    const got = c.record(subs[0], 'OrderShipped');
    const res = await sdk.trigger(name, 'OrderShipped', { order: { id: 42, total: '9.99' }, note: 'ünïcødé ✓' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /application\/json/);
    assert.deepEqual(await res.json(), {});
    await waitCount(got, 1, 'the event');
    assert.deepEqual(got[0].data, { order: { id: 42, total: '9.99' }, note: 'ünïcødé ✓' });
    // A string is delivered as the string it is.
    await sdk.trigger(name, 'OrderShipped', 'just text');
    await waitCount(got, 2, 'the string event');
    assert.equal(got[1].data, 'just text');
    await c.close();
  });

  it('triggers one event on 100 channels at once, and refuses 101', T, async () => {
    const names = Array.from({ length: 100 }, () => fresh('fan-'));
    const { c, subs } = await subscriber(names);
    const got = subs.map((ch) => c.record(ch, 'ping'));
    const res = await sdk.trigger(names, 'ping', { all: true });
    assert.equal(res.status, 200);
    for (let i = 0; i < names.length; i++) await waitCount(got[i], 1, `the event on ${names[i]}`);
    // The SDK will not send 101; by hand, the server refuses it.
    assert.throws(() => sdk.trigger([...names, 'one-more'], 'ping', {}), /more than 100 channels/);
    const r = await api(server, 'POST', `/apps/${DEMO.id}/events`,
      { body: { name: 'ping', data: '{}', channels: [...names, 'one-more'] } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error, /too many channels|100/);
    await sleep(QUIET_MS);
    assert.ok(got.every((g) => g.length === 1), 'the refused event was delivered somewhere');
    await c.close();
  });

  it('leaves out the connection named by socket_id', T, async () => {
    const name = fresh('private-room.');
    const a = await subscriber([name]);
    const b = await subscriber([name]);
    const atA = a.c.record(a.subs[0], 'said');
    const atB = b.c.record(b.subs[0], 'said');
    await sdk.trigger(name, 'said', { text: 'to the others' }, { socket_id: a.c.socketId });
    await waitCount(atB, 1, 'the event at b');
    await sleep(QUIET_MS);
    assert.equal(atA.length, 0, 'the excluded connection got the event');
    // An unknown (well-formed) socket_id excludes nobody.
    await sdk.trigger(name, 'said', { text: 'to all' }, { socket_id: '999.999999' });
    await waitCount(atA, 1, 'the event at a');
    await waitCount(atB, 2, 'the second event at b');
    await Promise.all([a.c.close(), b.c.close()]);
  });

  it('answers info=subscription_count,user_count about each channel it published to', T, async () => {
    const pres = fresh('presence-team.');
    const pub = fresh('board-');
    const u1a = await subscriber([pres, pub], { user_id: 'u1' });
    const u1b = await subscriber([pres], { user_id: 'u1' });
    const u2 = await subscriber([pres], { user_id: 'u2' });
    const res = await sdk.trigger([pres, pub], 'note', {}, { info: 'subscription_count,user_count' });
    const body = await res.json();
    assert.deepEqual(body.channels[pres], { subscription_count: 3, user_count: 2 });
    assert.deepEqual(body.channels[pub], { subscription_count: 1 });
    await Promise.all([u1a.c.close(), u1b.c.close(), u2.c.close()]);
  });

  it('publishes a batch, with info where asked, and refuses more than 10 events', T, async () => {
    const [x, y] = [fresh('private-batch-x.'), fresh('private-batch-y.')];
    const { c, subs } = await subscriber([x, y]);
    const gx = c.record(subs[0], 'e');
    const gy = c.record(subs[1], 'e');
    const res = await sdk.triggerBatch([
      { channel: x, name: 'e', data: { n: 1 } },
      { channel: y, name: 'e', data: { n: 2 }, info: 'subscription_count' },
      { channel: x, name: 'e', data: { n: 3 }, socket_id: c.socketId },
    ]);
    const body = await res.json();
    assert.equal(body.batch.length, 3);
    assert.deepEqual(body.batch[1], { subscription_count: 1 });
    await waitCount(gx, 1, 'the batch event on x');
    await waitCount(gy, 1, 'the batch event on y');
    await sleep(QUIET_MS);
    assert.deepEqual(gx.map((g) => g.data.n), [1], 'the excluded batch event was delivered');
    const eleven = Array.from({ length: 11 }, (_, i) => ({ channel: x, name: 'e', data: { i } }));
    const r = await refused(sdk.triggerBatch(eleven));
    assert.ok([400, 413].includes(r.status), `${r.status} ${r.body}`);
    assert.match(JSON.parse(r.body).error, /batch/);
    await sleep(QUIET_MS);
    assert.equal(gx.length, 1, 'a refused batch was partly delivered');
    await c.close();
  });

  it('lists the app\'s occupied channels, by prefix, with user_count for presence', T, async () => {
    const tag = fresh('ls');
    const [p1, p2, pub] = [`presence-${tag}-a`, `presence-${tag}-b`, `${tag}-public`];
    const a = await subscriber([p1, p2, pub], { user_id: 'x' });
    const b = await subscriber([p1], { user_id: 'y' });
    // Another app's channel of the same name is not listed.
    const other = new PusherJs(server, { key: OTHER.key });
    await other.connected();
    await other.subscribe(pub);
    const all = await (await sdk.get({ path: '/channels' })).json();
    assert.ok(all.channels[p1] && all.channels[p2] && all.channels[pub], JSON.stringify(all));
    const otherList = await (await sdkFor(server, OTHER).get({ path: '/channels' })).json();
    assert.deepEqual(Object.keys(otherList.channels), [pub]);
    const pres = await (await sdk.get({ path: '/channels',
      params: { filter_by_prefix: `presence-${tag}`, info: 'user_count' } })).json();
    assert.deepEqual(pres.channels, { [p1]: { user_count: 2 }, [p2]: { user_count: 1 } });
    const r = await refused(sdk.get({ path: '/channels', params: { info: 'user_count' } }));
    assert.equal(r.status, 400, 'info=user_count without a presence- prefix');
    await Promise.all([a.c.close(), b.c.close(), other.close()]);
    // Gone when the last subscriber leaves.
    await sleep(200);
    const after = await (await sdk.get({ path: '/channels', params: { filter_by_prefix: `presence-${tag}` } })).json();
    assert.deepEqual(after.channels, {});
  });

  it('tells one channel\'s occupancy, counts and presence users', T, async () => {
    const pres = fresh('presence-desk.');
    const a = await subscriber([pres], { user_id: 'ann', user_info: '{"name":"Ann"}' });
    const b = await subscriber([pres], { user_id: 'bob' });
    const info = await (await sdk.get({ path: `/channels/${pres}`,
      params: { info: 'user_count,subscription_count' } })).json();
    assert.deepEqual(info, { occupied: true, subscription_count: 2, user_count: 2 });
    const users = await (await sdk.get({ path: `/channels/${pres}/users` })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['ann', 'bob']);
    const empty = await (await sdk.get({ path: `/channels/${fresh('nobody-')}` })).json();
    assert.deepEqual(empty, { occupied: false });
    let r = await refused(sdk.get({ path: `/channels/${fresh('public-')}`, params: { info: 'user_count' } }));
    assert.equal(r.status, 400, 'user_count of a channel that is not presence');
    r = await refused(sdk.get({ path: `/channels/${fresh('private-x.')}/users` }));
    assert.equal(r.status, 400, '/users of a channel that is not presence');
    r = await refused(sdk.get({ path: '/channels', params: { info: 'everything' } }));
    assert.equal(r.status, 400);
    await Promise.all([a.c.close(), b.c.close()]);
  });

  it('answers terminate_connections with 200 {}', T, async () => {
    const res = await sdk.terminateUserConnections('someone');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
  });

  it('refuses a wrong secret, a wrong key and an unsigned call with 401, and says why', T, async () => {
    const name = fresh('private-guarded.');
    const { c, subs } = await subscriber([name]);
    const got = c.record(subs[0], 'forged');
    const wrong = sdkFor(server, { ...DEMO, secret: 'not-the-secret' });
    let r = await refused(wrong.trigger(name, 'forged', {}));
    assert.equal(r.status, 401);
    assert.match(JSON.parse(r.body).error, /signature/);
    r = await refused(sdkFor(server, { ...DEMO, key: OTHER.key, secret: OTHER.secret }).trigger(name, 'forged', {}));
    assert.equal(r.status, 401, 'another app\'s key and secret for this app');
    const unsigned = await request(server.port, { method: 'POST', path: `/apps/${DEMO.id}/events`,
      body: JSON.stringify({ name: 'forged', data: '{}', channel: name }) });
    assert.ok([400, 401].includes(unsigned.status), `${unsigned.status} ${unsigned.text}`);
    assert.ok(unsigned.json?.error, `no reason in ${unsigned.text}`);
    await sleep(QUIET_MS);
    assert.equal(got.length, 0, 'a refused call was delivered');
    await c.close();
  });

  for (const [what, offset] of [['20 minutes ago (a replay)', -1200], ['20 minutes ahead', 1200]]) {
    it(`refuses a request signed right but ${what} with 401`, T, async () => {
      const name = fresh('private-replay.');
      const { c, subs } = await subscriber([name]);
      const got = c.record(subs[0], 'again');
      const body = { name: 'again', data: '{"n":1}', channel: name };
      const timestamp = Math.floor(Date.now() / 1000) + offset;
      const stale = await api(server, 'POST', `/apps/${DEMO.id}/events`, { body, timestamp });
      assert.equal(stale.status, 401, stale.text);
      assert.match(stale.json.error, /timestamp/);
      // The same request, signed now, goes through: only the clock differed.
      const fresh_ = await api(server, 'POST', `/apps/${DEMO.id}/events`, { body });
      assert.equal(fresh_.status, 200, fresh_.text);
      await waitCount(got, 1, 'the request signed now');
      await sleep(QUIET_MS);
      assert.equal(got.length, 1);
      await c.close();
    });
  }

  it('answers an unknown app with 404', T, async () => {
    const r = await refused(sdkFor(server, { ...DEMO, id: 'no-such-app' }).trigger('x', 'y', {}));
    assert.equal(r.status, 404);
    const bad = await api(server, 'GET', '/apps/no-such-app/channels');
    assert.equal(bad.status, 404);
    assert.ok(bad.json.error);
  });

  it('refuses data over max_event_size (10 KiB) and a body over max_body_size with 413', T, async () => {
    const name = fresh('private-big.');
    const { c, subs } = await subscriber([name]);
    const got = c.record(subs[0], 'big');
    // Exactly 10 KiB of data passes; one byte more does not.
    const ok = await sdk.trigger(name, 'big', 'x'.repeat(10 * 1024));
    assert.equal(ok.status, 200);
    await waitCount(got, 1, 'the 10 KiB event');
    assert.equal(got[0].data.length, 10 * 1024);
    const r = await refused(sdk.trigger(name, 'big', 'x'.repeat(10 * 1024 + 1)));
    assert.equal(r.status, 413, r.body);
    assert.match(JSON.parse(r.body).error, /larger than/);
    const huge = await api(server, 'POST', `/apps/${DEMO.id}/events`,
      { body: { name: 'big', data: 'x'.repeat(300 * 1024), channel: name } });
    assert.equal(huge.status, 413, huge.text);
    await sleep(QUIET_MS);
    assert.equal(got.length, 1, 'an event over the limits was delivered');
    await c.close();
  });

  it('honours an app\'s limits above Pusher\'s: 64 KiB of data, 200 channels, 50 events a batch', T, async () => {
    const roomy = sdkFor(server, ROOMY);
    const name = fresh('big-');
    const c = new PusherJs(server, { key: ROOMY.key });
    await c.connected();
    const got = c.record(await c.subscribe(name), 'big');
    const data = 'y'.repeat(64 * 1024);
    assert.equal((await roomy.trigger(name, 'big', data)).status, 200);
    await waitCount(got, 1, 'the 64 KiB event');
    assert.equal(got[0].data.length, data.length);
    let r = await refused(roomy.trigger(name, 'big', `${data}y`));
    assert.equal(r.status, 413, r.body);
    const many = Array.from({ length: 200 }, (_, i) => `${name}-${i}`);
    r = await api(server, 'POST', `/apps/${ROOMY.id}/events`,
      { app: ROOMY, body: { name: 'big', data: '{}', channels: [...many.slice(0, 199), name] } });
    assert.equal(r.status, 200, r.text);
    await waitCount(got, 2, 'the event sent to 200 channels');
    r = await api(server, 'POST', `/apps/${ROOMY.id}/events`,
      { app: ROOMY, body: { name: 'big', data: '{}', channels: [...many, name] } });
    assert.equal(r.status, 400, `201 channels: ${r.text}`);
    const batch = Array.from({ length: 50 }, (_, i) => ({ channel: name, name: 'big', data: String(i) }));
    assert.equal((await roomy.triggerBatch(batch)).status, 200);
    await waitCount(got, 52, 'the 50 events of the batch');
    r = await refused(roomy.triggerBatch([...batch, batch[0]]));
    assert.ok([400, 413].includes(r.status), `51 events: ${r.status} ${r.body}`);
    await c.close();
  });

  it('refuses malformed bodies with 400 and a reason', T, async () => {
    const cases = [
      ['{"name":"x","data":"{}","channel":', /JSON/i],
      ['[]', /object/],
      ['{"data":"{}","channel":"c"}', /name/],
      ['{"name":"x","channel":"c"}', /data/],
      ['{"name":"x","data":{"not":"a string"},"channel":"c"}', /data/],
      ['{"name":"x","data":"{}"}', /channel/],
      ['{"name":"x","data":"{}","channels":[]}', /channel/],
      ['{"name":"x","data":"{}","channel":"bad channel!"}', /channel/],
      ['{"name":"x","data":"{}","channel":"c","socket_id":"abc"}', /socket_id/],
      ['{"name":"x","name":"y","data":"{}","channel":"c"}', /duplicate/],
    ];
    for (const [body, reason] of cases) {
      const r = await api(server, 'POST', `/apps/${DEMO.id}/events`, { body });
      assert.equal(r.status, 400, `${body}: ${r.status} ${r.text}`);
      assert.match(r.json?.error ?? '', reason, `${body}: ${r.text}`);
    }
  });

  it('serves several calls on one kept-alive connection', T, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let sockets = 0;
    const createConnection = agent.createConnection.bind(agent);
    agent.createConnection = (...args) => { sockets += 1; return createConnection(...args); };
    try {
      const name = fresh('private-keepalive.');
      const { c, subs } = await subscriber([name]);
      const got = c.record(subs[0], 'n');
      const results = [];
      for (let i = 0; i < 5; i++) {
        results.push(await api(server, 'POST', `/apps/${DEMO.id}/events`,
          { body: { name: 'n', data: String(i), channel: name }, agent }));
        results.push(await api(server, 'GET', `/apps/${DEMO.id}/channels/${name}`, { agent }));
      }
      // A refusal does not cost the connection either.
      results.push(await api(server, 'POST', `/apps/${DEMO.id}/events`, { body: '{', agent }));
      results.push(await api(server, 'GET', `/apps/${DEMO.id}/channels`, { agent }));
      assert.deepEqual(results.map((r) => r.status), [...Array(10).fill(200), 400, 200]);
      assert.ok(results.slice(1).every((r) => r.reusedSocket), 'a call opened a new connection');
      assert.equal(sockets, 1);
      await waitCount(got, 5, 'the five events');
      assert.deepEqual(got.map((g) => g.data), [0, 1, 2, 3, 4]);
      // The SDK on a kept-alive agent too.
      const keep = sdkFor(server, DEMO, { agent });
      for (let i = 0; i < 3; i++) assert.equal((await keep.trigger(name, 'n', String(10 + i))).status, 200);
      assert.equal(sockets, 1);
      await c.close();
    } finally {
      agent.destroy();
    }
  });

  it('counts API calls per app and status in /metrics', T, async () => {
    const m = await scrape(server);
    for (const status of [200, 400, 401, 413]) {
      assert.ok(sample(m, 'windlass_channels_api_requests_total', { app: DEMO.id, status }) >= 1,
        `no API call with status ${status} counted`);
    }
    assert.ok(sample(m, 'windlass_channels_events_published_total', { app: DEMO.id }) >= 100);
    assert.ok(sample(m, 'windlass_channels_auth_failures_total', { app: DEMO.id }) >= 1);
  });
});
