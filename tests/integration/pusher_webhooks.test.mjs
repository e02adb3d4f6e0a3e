// The hub's webhooks and its per-app metrics. A receiver in this process
// plays the web app: it checks X-Pusher-Key and X-Pusher-Signature (HMAC-
// SHA256 of the body under the app's secret, by hand and by the pusher
// SDK's own WebHook check) and records the events of every POST.
// channel_occupied/channel_vacated and member_added/member_removed (the
// leaving ones held back by webhook_delay, so a quick return fires
// nothing), client_event and cache_miss, per-target event filters, batching
// and retries after a 500; then the families of /metrics, moved by a known
// amount of traffic.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; by hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/pusher_webhooks.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitUntil, watchdog } from '../support/harness.mjs';
import {
  AuthServer, DEMO, PusherJs, RawClient, WebhookReceiver, cleanup, fresh, hmac, sample, scrape, sdkFor, startHub,
  waitCount,
} from '../support/pusher.mjs';

watchdog(120_000);
const T = { timeout: 30_000 };
const DELAY_MS = 1000; // channels.webhook_delay
const SETTLE_MS = DELAY_MS + 700; // the delay, the 100 ms flush and some room

const FLAKY = { id: 'flaky-app', key: 'flaky-key', secret: 'flaky-secret' };   // receiver answers 500, 500, 200
const DOWN = { id: 'down-app', key: 'down-key', secret: 'down-secret' };       // receiver always answers 500
const PICKY = { id: 'picky-app', key: 'picky-key', secret: 'picky-secret' };   // channel_occupied only
const METRIC = { id: 'metric-app', key: 'metric-key', secret: 'metric-secret' }; // for the metrics test alone

let server;
let hooks;
let flaky;
let down;
let picky;
let auth;
let sdk;

describe('webhooks', { timeout: 110_000 }, () => {
  before(async () => {
    hooks = await new WebhookReceiver(DEMO).start();
    flaky = await new WebhookReceiver(FLAKY, { statuses: [500, 500] }).start();
    down = await new WebhookReceiver(DOWN, { statuses: Array(10).fill(500) }).start();
    picky = await new WebhookReceiver(PICKY).start();
    const mhooks = await new WebhookReceiver(METRIC).start();
    server = await startHub({
      channels: { webhook_delay: `${DELAY_MS}ms`, webhook_retries: 2, webhook_timeout: '2s' },
      apps: [
        { ...DEMO, client_events: true, webhooks: [{ url: hooks.url }] },
        { ...FLAKY, webhooks: [{ url: flaky.url, events: ['channel_occupied'] }] },
        { ...DOWN, webhooks: [{ url: down.url, events: ['channel_occupied'] }] },
        { ...PICKY, webhooks: [{ url: picky.url, events: ['channel_occupied'] }] },
        { ...METRIC, client_events: true, webhooks: [{ url: mhooks.url }] },
      ],
    });
    auth = await new AuthServer().start();
    sdk = sdkFor(server);
  });
  after(async () => {
    await cleanup();
    if (server) await server.stop();
  });

  it('signs every POST: X-Pusher-Key and X-Pusher-Signature over the body', T, async () => {
    const name = fresh('signed-');
    const c = new PusherJs(server);
    await c.connected();
    await c.subscribe(name);
    await hooks.waitFor('channel_occupied', name);
    const post = hooks.posts.find((p) => p.body.includes(name));
    assert.equal(post.method, 'POST');
    assert.match(post.headers['content-type'], /application\/json/);
    assert.equal(post.headers['x-pusher-key'], DEMO.key);
    assert.equal(post.headers['x-pusher-signature'], hmac(DEMO.secret, post.body));
    assert.ok(post.sdkValid, 'the pusher SDK\'s WebHook check refused it');
    const body = JSON.parse(post.body);
    assert.ok(Math.abs(body.time_ms - Date.now()) < 5000, `time_ms ${body.time_ms}`);
    assert.ok(hooks.posts.every((p) => p.validKey && p.validSignature), 'a POST was signed wrong');
    await c.close();
  });

  it('sends channel_occupied at once and channel_vacated after webhook_delay', T, async () => {
    const name = fresh('vacate-');
    const c = new PusherJs(server);
    await c.connected();
    const t0 = Date.now();
    await c.subscribe(name);
    const [occupied] = await hooks.waitFor('channel_occupied', name);
    assert.ok(occupied.at - t0 < DELAY_MS, `channel_occupied took ${occupied.at - t0} ms`);
    const left = Date.now();
    c.pusher.unsubscribe(name);
    const [vacated] = await hooks.waitFor('channel_vacated', name, 5000);
    const waited = vacated.at - left;
    assert.ok(waited >= DELAY_MS - 50 && waited < DELAY_MS + 1500, `channel_vacated after ${waited} ms`);
    assert.equal(hooks.matching('channel_occupied', name).length, 1);
    await c.close();
  });

  it('fires nothing for a quick resubscribe, nor for a page reload', T, async () => {
    const name = fresh('reload-');
    const a = new PusherJs(server);
    await a.connected();
    await a.subscribe(name);
    await hooks.waitFor('channel_occupied', name);
    a.pusher.unsubscribe(name);
    await sleep(200);
    await a.subscribe(name);
    // A reload: the connection goes, another comes, within the delay.
    await a.close();
    const b = new PusherJs(server);
    await b.connected();
    await b.subscribe(name);
    await sleep(SETTLE_MS);
    assert.equal(hooks.matching('channel_vacated', name).length, 0, 'channel_vacated for a quick return');
    assert.equal(hooks.matching('channel_occupied', name).length, 1, 'channel_occupied again for a quick return');
    await b.close();
    await hooks.waitFor('channel_vacated', name, 5000);
  });

  it('sends member_added once per user and member_removed after the delay, when the last connection leaves', T, async () => {
    const name = fresh('presence-hooks.');
    const params = { user_id: 'carol', user_info: '{"name":"Carol"}' };
    const c1 = new PusherJs(server, { auth, params });
    const c2 = new PusherJs(server, { auth, params });
    await Promise.all([c1.connected(), c2.connected()]);
    await c1.subscribe(name);
    await c2.subscribe(name);
    const [added] = await hooks.waitFor('member_added', name);
    assert.equal(added.user_id, 'carol');
    await c1.close();
    await sleep(SETTLE_MS);
    assert.equal(hooks.matching('member_removed', name).length, 0, 'member_removed while carol stays');
    assert.equal(hooks.matching('member_added', name).length, 1);
    await c2.close();
    const [removed] = await hooks.waitFor('member_removed', name, 5000);
    assert.equal(removed.user_id, 'carol');
    // Back within the delay: neither event.
    const d1 = new PusherJs(server, { auth, params: { user_id: 'dave' } });
    await d1.connected();
    await d1.subscribe(name);
    await hooks.waitFor('member_added', name, undefined, 2);
    await d1.close();
    const d2 = new PusherJs(server, { auth, params: { user_id: 'dave' } });
    await d2.connected();
    await d2.subscribe(name);
    await sleep(SETTLE_MS);
    assert.equal(hooks.matching('member_removed', name).filter((e) => e.user_id === 'dave').length, 0);
    assert.equal(hooks.matching('member_added', name).filter((e) => e.user_id === 'dave').length, 1);
    await d2.close();
  });

  it('sends client_event with the event, its data, the sender\'s socket_id and user_id', T, async () => {
    const name = fresh('presence-whisper.');
    const a = new PusherJs(server, { auth, params: { user_id: 'erin' } });
    const b = new PusherJs(server, { auth, params: { user_id: 'frank' } });
    await Promise.all([a.connected(), b.connected()]);
    const ach = await a.subscribe(name);
    await b.subscribe(name);
    ach.trigger('client-typing', { typing: true });
    const [e] = await hooks.waitFor('client_event', name);
    assert.equal(e.event, 'client-typing');
    assert.deepEqual(JSON.parse(e.data), { typing: true });
    assert.equal(e.socket_id, a.socketId);
    assert.equal(e.user_id, 'erin');
    await Promise.all([a.close(), b.close()]);
  });

  it('sends cache_miss for a cache channel with nothing cached', T, async () => {
    const name = fresh('cache-empty-');
    const raw = await RawClient.connect(server);
    raw.subscribe(name, '');
    await raw.next('pusher:cache_miss');
    const [miss] = await hooks.waitFor('cache_miss', name);
    assert.equal(miss.channel, name);
    // Once something is cached, no more misses.
    await sdk.trigger(name, 'now', { cached: true });
    const raw2 = await RawClient.connect(server);
    raw2.subscribe(name, '');
    await raw2.next('now');
    await sleep(500);
    assert.equal(hooks.matching('cache_miss', name).length, 1);
    await Promise.all([raw.close(), raw2.close()]);
  });

  it('batches the events of one moment into one POST', T, async () => {
    const names = Array.from({ length: 5 }, () => fresh('batch-'));
    const raw = await RawClient.connect(server);
    for (const n of names) raw.subscribe(n, '');
    for (const n of names) await hooks.waitFor('channel_occupied', n);
    const posts = new Set(names.map((n) => hooks.posts.findIndex((p) => p.body.includes(`"${n}"`))));
    assert.ok(posts.size < names.length, `five subscriptions in one go took ${posts.size} POSTs`);
    await raw.close();
  });

  it('sends a target only the events it asked for', T, async () => {
    const name = fresh('picky-');
    const c = new PusherJs(server, { key: PICKY.key });
    await c.connected();
    await c.subscribe(name);
    await picky.waitFor('channel_occupied', name);
    c.pusher.unsubscribe(name);
    await sleep(SETTLE_MS);
    assert.deepEqual([...new Set(picky.events.map((e) => e.name))], ['channel_occupied']);
    assert.ok(picky.posts.every((p) => p.validSignature && p.headers['x-pusher-key'] === PICKY.key));
    await c.close();
  });

  it('retries a POST answered 500, with backoff, and sends the same body', T, async () => {
    const name = fresh('flaky-');
    const c = new PusherJs(server, { key: FLAKY.key });
    await c.connected();
    await c.subscribe(name);
    await flaky.waitFor('channel_occupied', name, 8000);
    const tries = flaky.posts.filter((p) => p.body.includes(name));
    assert.deepEqual(tries.map((p) => p.status), [500, 500, 200]);
    assert.ok(tries.every((p) => p.body === tries[0].body && p.validSignature), 'a retry changed the POST');
    const gaps = [tries[1].at - tries[0].at, tries[2].at - tries[1].at];
    assert.ok(gaps[0] >= 900 && gaps[1] >= 1900, `retried after ${gaps.join(' and ')} ms; expected 1 s, then 2 s`);
    const m = await scrape(server);
    assert.equal(sample(m, 'windlass_channels_webhooks_sent_total', { app: FLAKY.id }), 1);
    assert.equal(sample(m, 'windlass_channels_webhooks_failed_total', { app: FLAKY.id }), 0);
    await c.close();
  });

  it('gives up after webhook_retries and counts the failure', T, async () => {
    const name = fresh('down-');
    const c = new PusherJs(server, { key: DOWN.key });
    await c.connected();
    await c.subscribe(name);
    await waitUntil(async () => sample(await scrape(server), 'windlass_channels_webhooks_failed_total',
      { app: DOWN.id }) === 1, 8000, 'the failed webhook counted');
    assert.equal(down.posts.filter((p) => p.body.includes(name)).length, 3, 'one try and two retries');
    await sleep(1500);
    assert.equal(down.posts.filter((p) => p.body.includes(name)).length, 3, 'tried again past webhook_retries');
    await c.close();
  });

  it('moves the per-app families of /metrics', T, async () => {
    const m0 = await scrape(server);
    const s = (m, name, labels = {}) => sample(m, name, { app: METRIC.id, ...labels });
    const metricAuth = await new AuthServer(METRIC).start();
    const metricSdk = sdkFor(server, METRIC);
    const name = fresh('presence-metrics.');
    const a = new PusherJs(server, { key: METRIC.key, auth: metricAuth, params: { user_id: 'm1' } });
    const b = new PusherJs(server, { key: METRIC.key, auth: metricAuth, params: { user_id: 'm2' } });
    await Promise.all([a.connected(), b.connected()]);
    const ach = await a.subscribe(name);
    await b.subscribe(name);
    await a.subscribe(fresh('plain-'));
    ach.trigger('client-x', { n: 1 });
    ach.trigger('client-x', { n: 2 });
    await metricSdk.trigger(name, 'server-event', {});
    await b.subscribe(fresh('private-ok.'));
    const raw = await RawClient.connect(server, METRIC.key);
    raw.subscribe('private-forged', `${METRIC.key}:${'0'.repeat(64)}`);
    await raw.next('pusher:subscription_error');
    await waitUntil(async () => s(await scrape(server), 'windlass_channels_webhooks_sent_total') >
      s(m0, 'windlass_channels_webhooks_sent_total'), 5000, 'a webhook counted as sent');
    const m1 = await scrape(server);
    const moved = (name_, labels) => s(m1, name_, labels) - s(m0, name_, labels);
    assert.equal(s(m1, 'windlass_channels_connections'), 3);
    assert.equal(moved('windlass_channels_connections_total'), 3);
    assert.equal(s(m1, 'windlass_channels_channels'), 3, 'the presence, public and private channels; not the refused one');
    assert.equal(s(m1, 'windlass_channels_presence_members'), 2);
    assert.equal(moved('windlass_channels_client_events_total'), 2);
    // Two client events, one API event, and member_added for each of a and b (published to the
    // channel, whoever is there).
    assert.equal(moved('windlass_channels_events_published_total'), 5);
    assert.ok(moved('windlass_channels_messages_received_total') >= 6, 'subscribes and client events');
    assert.equal(moved('windlass_channels_api_requests_total', { status: 200 }), 1);
    assert.equal(moved('windlass_channels_auth_failures_total'), 1);
    await Promise.all([a.close(), b.close(), raw.close(), metricAuth.close()]);
    await waitUntil(async () => s(await scrape(server), 'windlass_channels_connections') === 0, 5000,
      'the connections gauge back to 0');
    const m2 = await scrape(server);
    assert.equal(s(m2, 'windlass_channels_channels'), 0);
    assert.equal(s(m2, 'windlass_channels_presence_members'), 0);
    // The families are there with their HELP and TYPE.
    for (const family of ['windlass_channels_connections', 'windlass_channels_api_requests_total',
      'windlass_channels_closes_total', 'windlass_channels_webhooks_dropped_total']) {
      assert.match(m2, new RegExp(`^# TYPE ${family} (gauge|counter)$`, 'm'), family);
    }
  });
});
