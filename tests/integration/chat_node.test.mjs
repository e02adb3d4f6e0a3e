// The chat and echo examples against Node's `ws` client.
//
// Each server is started on 127.0.0.1 with --port 0 and stopped with SIGTERM,
// which must end it with exit code 0. Every wait has a timeout, and a child
// process left behind by a failure is killed when this process exits.
//
// Run by ctest with WINDLASS_CHAT_BIN, WINDLASS_ECHO_BIN and
// WINDLASS_SOURCE_DIR set (`ws` is installed in <repo>/node_modules by npm ci);
// by hand:
//
//   WINDLASS_CHAT_BIN=build/release/examples/chat/windlass-chat \
//   WINDLASS_ECHO_BIN=build/release/examples/echo/windlass-echo \
//   node tests/integration/chat_node.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHAT_PUBLIC, QUIET_MS, STEP_TIMEOUT_MS, example, requireFromRepo, sleep, watchdog, withTimeout,
} from '../support/harness.mjs';

const TEST_TIMEOUT_MS = 60_000;

watchdog();
const WebSocket = requireFromRepo('ws');

// ---------------------------------------------------------------------------
// A client that queues what it receives, so a test reads messages in order.

class Client {
  static async open(url, options = {}) {
    const client = new Client(new WebSocket(url, { perMessageDeflate: false, ...options }));
    await withTimeout(new Promise((resolve, reject) => {
      client.ws.once('open', resolve);
      client.ws.once('error', reject);
      client.ws.once('unexpected-response', (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    }), STEP_TIMEOUT_MS, `connect to ${url}`);
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.errors = [];
    ws.on('message', (data, isBinary) => {
      const message = { data: isBinary ? data : data.toString('utf8'), isBinary };
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(message);
      else this.queue.push(message);
    });
    ws.on('error', (err) => { this.errors.push(err); });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        const info = { code, reason: reason.toString('utf8') };
        for (const waiter of this.waiters.splice(0)) {
          waiter.reject(new Error(`connection closed (${code}) while waiting for a message`));
        }
        resolve(info);
      });
    });
  }

  send(data, options) {
    return withTimeout(new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => (err ? reject(err) : resolve()));
    }), STEP_TIMEOUT_MS, 'send');
  }

  next(what = 'a message', ms = STEP_TIMEOUT_MS) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`connection not open while waiting for ${what}`));
    }
    let waiter;
    const p = new Promise((resolve, reject) => { waiter = { resolve, reject }; this.waiters.push(waiter); });
    return withTimeout(p, ms, `receive ${what}`).catch((err) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw err;
    });
  }

  async nextText(what) {
    const message = await this.next(what);
    assert.equal(message.isBinary, false, `${what} should be a text message`);
    return message.data;
  }

  async assertSilent(who) {
    await sleep(QUIET_MS);
    assert.equal(this.queue.length, 0,
      `${who} received ${JSON.stringify(this.queue[0]?.data?.toString().slice(0, 80))}, expected nothing`);
  }

  close(code, reason) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, reason);
    }
    return withTimeout(this.closed, STEP_TIMEOUT_MS, 'close handshake');
  }
}

async function closeAll(...clients) {
  await Promise.allSettled(clients.map((c) => c.close()));
}

function chatServer(name = 'windlass-chat') {
  return example('WINDLASS_CHAT_BIN', ['--public', CHAT_PUBLIC], { name });
}

// ---------------------------------------------------------------------------

describe('windlass-chat with ws clients', { timeout: 4 * TEST_TIMEOUT_MS }, () => {
  let server;
  before(async () => { server = await chatServer().start(); });
  after(async () => { if (server) await server.stop(); });

  const opts = { timeout: TEST_TIMEOUT_MS };

  it('sends a message from one client to every other client but not the sender', opts, async () => {
    const [a, b, c] = [await Client.open(server.url), await Client.open(server.url),
      await Client.open(server.url)];
    try {
      await a.send('hello from a');
      assert.equal(await b.nextText('the message at b'), 'hello from a');
      assert.equal(await c.nextText('the message at c'), 'hello from a');
      await a.assertSilent('the sender');
      // The next thing a sees is b's marker: nothing of its own came first.
      await b.send('marker from b');
      assert.equal(await a.nextText('the marker at a'), 'marker from b');
      assert.equal(await c.nextText('the marker at c'), 'marker from b');
      await b.assertSilent('the sender');
      assert.ok(server.alive());
    } finally {
      await closeAll(a, b, c);
    }
  });

  it('passes unicode text through unchanged', opts, async () => {
    const samples = ['héllo wörld', '你好，世界', '🚀🦀 outside the BMP 𝄞',
      'ﺎﻠﺳﻼﻣ — right to left', 'e\u0301 combining, \u200b zero width, \u0000 NUL',
      '\u{10ffff} last code point'];
    const [a, b] = [await Client.open(server.url), await Client.open(server.url)];
    try {
      for (const text of samples) {
        await a.send(text);
        assert.equal(await b.nextText(JSON.stringify(text)), text);
      }
    } finally {
      await closeAll(a, b);
    }
  });

  it('keeps serving the others when clients leave, cleanly or not', opts, async () => {
    const [a, b, c, d] = [await Client.open(server.url), await Client.open(server.url),
      await Client.open(server.url), await Client.open(server.url)];
    try {
      assert.equal((await c.close(1000, 'leaving')).code, 1000);
      d.ws.terminate(); // gone without a close frame, as a crashed tab would be
      await withTimeout(d.closed, STEP_TIMEOUT_MS, 'terminate');
      await sleep(100);
      await a.send('still here?');
      assert.equal(await b.nextText('the message at b'), 'still here?');
      await b.send('yes');
      assert.equal(await a.nextText('the reply at a'), 'yes');
      const e = await Client.open(server.url);
      try {
        await e.send('newcomer');
        assert.equal(await a.nextText('the newcomer at a'), 'newcomer');
        assert.equal(await b.nextText('the newcomer at b'), 'newcomer');
      } finally {
        await closeAll(e);
      }
    } finally {
      await closeAll(a, b);
    }
  });

  it('delivers fifty messages in a row in order', opts, async () => {
    const [a, b] = [await Client.open(server.url), await Client.open(server.url)];
    try {
      const sent = Array.from({ length: 50 }, (_, i) => `message ${String(i).padStart(2, '0')}`);
      await Promise.all(sent.map((text) => a.send(text)));
      const got = [];
      for (let i = 0; i < sent.length; i++) got.push(await b.nextText(`message ${i}`));
      assert.deepEqual(got, sent);
    } finally {
      await closeAll(a, b);
    }
  });

  it('echoes a client close code 4000', opts, async () => {
    const a = await Client.open(server.url);
    const { code } = await a.close(4000, 'custom');
    assert.equal(code, 4000);
  });
});

describe('windlass-echo with ws clients', { timeout: 4 * TEST_TIMEOUT_MS }, () => {
  let server;
  before(async () => { server = await example('WINDLASS_ECHO_BIN', [], { name: 'windlass-echo' }).start(); });
  after(async () => { if (server) await server.stop(); });

  const opts = { timeout: TEST_TIMEOUT_MS };
  const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];

  for (const perMessageDeflate of [false, true]) {
    it(`echoes text and binary up to 1 MiB (permessage-deflate ${perMessageDeflate ? 'offered' : 'off'})`,
      opts, async () => {
        const ws = await Client.open(server.url, { perMessageDeflate });
        try {
          for (const size of SIZES) {
            const text = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
            await ws.send(text);
            const t = await ws.next(`text of ${size}`);
            assert.equal(t.isBinary, false, `text of ${size} came back as binary`);
            assert.equal(t.data.length, size);
            assert.ok(t.data === text, `text of ${size} came back changed`);

            const bin = Buffer.alloc(size);
            for (let i = 0; i < size; i++) bin[i] = (i * 7 + 3) & 0xff;
            await ws.send(bin, { binary: true });
            const m = await ws.next(`binary of ${size}`);
            assert.equal(m.isBinary, true, `binary of ${size} came back as text`);
            assert.equal(m.data.length, size);
            assert.ok(Buffer.compare(m.data, bin) === 0, `binary of ${size} came back changed`);
          }
        } finally {
          await closeAll(ws);
        }
      });
  }

  it('answers a ping with a pong carrying the same payload', opts, async () => {
    const ws = await Client.open(server.url);
    try {
      for (const payload of [Buffer.alloc(0), Buffer.from('are you there?'), Buffer.alloc(125, 0x5a)]) {
        const pong = new Promise((resolve) => ws.ws.once('pong', resolve));
        ws.ws.ping(payload);
        const got = await withTimeout(pong, STEP_TIMEOUT_MS, 'pong');
        assert.ok(Buffer.compare(got, payload) === 0, 'pong payload differs from the ping');
      }
      await ws.send('after ping');
      assert.equal(await ws.nextText('the echo'), 'after ping');
    } finally {
      await closeAll(ws);
    }
  });

  it('echoes a client close code 4000', opts, async () => {
    const ws = await Client.open(server.url);
    const { code } = await ws.close(4000, 'custom');
    assert.equal(code, 4000);
  });

  it('echoes a client close code 1000 with a reason', opts, async () => {
    const ws = await Client.open(server.url);
    const { code } = await ws.close(1000, 'bye');
    assert.equal(code, 1000);
  });
});

describe('shutdown', { timeout: 2 * TEST_TIMEOUT_MS }, () => {
  for (const [name, make] of [
    ['windlass-chat', () => chatServer('windlass-chat (shutdown)')],
    ['windlass-echo', () => example('WINDLASS_ECHO_BIN', [], { name: 'windlass-echo (shutdown)' })],
  ]) {
    it(`${name}: SIGTERM closes every client with 1001 and exits 0`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const server = await make().start();
      let signalled = false;
      try {
        const clients = [];
        for (let i = 0; i < 3; i++) clients.push(await Client.open(server.url));
        server.signal('SIGTERM');
        signalled = true;
        for (const c of clients) {
          const { code } = await withTimeout(c.closed, STEP_TIMEOUT_MS, 'close after SIGTERM');
          assert.equal(code, 1001, 'expected close 1001 (going away); 1006 means no close frame');
        }
      } finally {
        await server.stop({ signal: !signalled });
      }
    });
  }
});
