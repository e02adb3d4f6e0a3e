// History and recovery with pusher-js 8 (its Node build), through the few
// lines of client code docs/history.md gives: the client keeps the last
// stream_offset of each channel from the raw frames and adds it to the
// pusher:subscribe pusher-js sends again when it reconnects. Checked: every
// event of a history channel carries a stream_offset; a client that was
// disconnected while events were published gets each of them once, in
// order, with subscription_succeeded saying "recovered"; one away longer
// than the history reaches is told "too_old" and gets none of the old ones.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; by hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/pusher_history.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QUIET_MS, sleep, waitUntil, watchdog } from '../support/harness.mjs';
import { DEMO, PusherJs, cleanup, fresh, sdkFor, startHub, waitCount } from '../support/pusher.mjs';

watchdog(60_000);
const T = { timeout: 30_000 };

// docs/history.md's client code, as a user would paste it.
function withRecovery(pusher) {
  const offsets = {};
  pusher.connection.bind('connected', () => {
    pusher.connection.connection.transport.bind('message', (frame) => {
      try {
        const m = JSON.parse(frame.data);
        if (m.channel && m.stream_offset) offsets[m.channel] = m.stream_offset;
      } catch (_) { /* not JSON */ }
    });
  });
  const send = pusher.send_event.bind(pusher);
  pusher.send_event = (name, data, channel) => {
    if (name === 'pusher:subscribe' && offsets[data.channel]) data = { ...data, stream_offset: offsets[data.channel] };
    return send(name, data, channel);
  };
  return offsets;
}

let server;
let sdk;

describe('history and recovery with pusher-js', { timeout: 50_000 }, () => {
  before(async () => {
    server = await startHub({
      apps: [{ ...DEMO, history: [{ channels: 'feed-', messages: 50, max_age: '5m' },
        { channels: 'short-', messages: 3, max_age: '5m' }] }],
    });
    sdk = sdkFor(server);
  });
  after(async () => {
    await cleanup();
    await server?.stop();
  });

  it('brings a reconnecting client every event it missed, once and in order', T, async () => {
    const name = fresh('feed-');
    const a = new PusherJs(server);
    const offsets = withRecovery(a.pusher);
    await a.connected();
    const ch = await a.subscribe(name);
    const succeeded = a.record(ch, 'pusher:subscription_succeeded');
    const got = a.record(ch, 'tick');
    for (let i = 0; i < 5; i += 1) await sdk.trigger(name, 'tick', { i });
    await waitCount(got, 5, 'the first five');
    assert.match(offsets[name] ?? '', /^\d+-\d+$/, 'events carry a stream_offset');
    a.pusher.disconnect();
    await waitUntil(() => a.state === 'disconnected', 5000, 'disconnected');
    for (let i = 5; i < 15; i += 1) await sdk.trigger(name, 'tick', { i });
    a.pusher.connect();
    await waitCount(got, 15, 'the ten missed');
    await sleep(QUIET_MS);
    assert.deepEqual(got.map((e) => e.data.i), [...Array(15).keys()], 'each once, in order');
    assert.equal(succeeded.length, 1, 'one subscription_succeeded after the reconnect');
    assert.equal(succeeded[0].data.recovery, 'recovered');
    assert.match(succeeded[0].data.stream_offset, /^\d+-\d+$/);
    await sdk.trigger(name, 'tick', { i: 15 });
    await waitCount(got, 16, 'a live event');
    await a.close();
  });

  it('says too_old to a client away longer than the history reaches', T, async () => {
    const name = fresh('short-');
    const a = new PusherJs(server);
    withRecovery(a.pusher);
    await a.connected();
    const ch = await a.subscribe(name);
    const succeeded = a.record(ch, 'pusher:subscription_succeeded');
    const got = a.record(ch, 'tick');
    await sdk.trigger(name, 'tick', { i: 0 });
    await waitCount(got, 1, 'the first');
    a.pusher.disconnect();
    await waitUntil(() => a.state === 'disconnected', 5000, 'disconnected');
    for (let i = 1; i < 10; i += 1) await sdk.trigger(name, 'tick', { i });
    a.pusher.connect();
    await waitCount(succeeded, 1, 'subscription_succeeded after the reconnect');
    assert.equal(succeeded[0].data.recovery, 'too_old');
    await sleep(QUIET_MS);
    assert.equal(got.length, 1, 'nothing replayed after too_old');
    await sdk.trigger(name, 'tick', { i: 10 });
    await waitCount(got, 2, 'a live event');
    assert.equal(got[1].data.i, 10);
    await a.close();
  });
});
