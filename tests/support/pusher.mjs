// What the Pusher-protocol tests share, on top of harness.mjs: a
// windlass-server with [channels] and [[app]]s written to a temp dir, the
// web app's side a Pusher client needs (an auth endpoint that signs with the
// `pusher` server SDK, a webhook receiver that checks signatures), a raw
// WebSocket client for what pusher-js hides (close codes, pings), pusher-js
// itself (its Node build, which bundles its own WebSocket client), and
// /metrics. A test imports it by its relative path:
// `import { ... } from '../support/pusher.mjs';`.
//
// - hubConfig() / startHub(): the TOML and the started server (.port, .api()).
// - AuthServer: POST /pusher/auth, /broadcasting/auth, /pusher/user-auth.
// - WebhookReceiver: records each POST, whether its X-Pusher-Key and
//   X-Pusher-Signature are right, and answers the statuses it is told to.
// - RawClient: a `ws` client with a queue of parsed messages.
// - PusherJs: a pusher-js client with its states, errors and events recorded.
// - scrape() / sample(): /metrics, parsed.
// - cleanup(): every client and HTTP server made here, closed (call it in after()).
// Everything listens on 127.0.0.1 only, on ports the kernel picks.

import crypto from 'node:crypto';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  HOST, QUIET_MS, STEP_TIMEOUT_MS, Server, requireFromRepo, serverBinary, sleep, tempDir, waitUntil, withTimeout,
} from './harness.mjs';

export const WebSocket = requireFromRepo('ws');
export const Pusher = requireFromRepo('pusher-js'); // dist/node: its own WebSocket (faye-websocket) inside
export const PusherSdk = requireFromRepo('pusher');

// The demo app of deploy/windlass.toml.
export const DEMO = { id: 'app-id', key: 'app-key', secret: 'app-secret' };

const live = new Set(); // things cleanup() closes

export async function cleanup() {
  const all = [...live];
  live.clear();
  await Promise.allSettled(all.map((x) => x.close()));
}

let counter = 0;
// A channel name no other test of this process uses.
export function fresh(prefix) {
  counter += 1;
  return `${prefix}${process.pid}-${counter}`;
}

// ---------------------------------------------------------------------------
// The server

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v); // a TOML basic string: the same escapes
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  throw new Error(`hubConfig: cannot write ${JSON.stringify(v)}`);
}

function tomlTable(header, obj) {
  const lines = [header];
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined) lines.push(`${k} = ${tomlValue(v)}`);
  }
  return lines.join('\n');
}

// The TOML of a windlass-server with the hub: `apps` are [[app]] tables
// (a `webhooks` member becomes its [[app.webhook]]s), `channels` the
// [channels] table, `routes` extra [[route]]s.
export function hubConfig({ server = {}, channels = {}, apps = [DEMO], routes = [], log = {} } = {}) {
  const parts = [
    tomlTable('[server]', { host: HOST, port: 0, threads: 2, drain_delay: 0, shutdown_timeout: '5s', ...server }),
    tomlTable('[log]', { level: 'info', ...log }),
    tomlTable('[channels]', channels),
  ];
  for (const { webhooks = [], ...app } of apps) {
    parts.push(tomlTable('[[app]]', app));
    for (const w of webhooks) parts.push(tomlTable('[[app.webhook]]', w));
  }
  for (const r of routes) parts.push(tomlTable('[[route]]', r));
  return `${parts.join('\n\n')}\n`;
}

// A started windlass-server for hubConfig(options), its config in a temp
// dir (`.dir`, `.configPath`). `port`: that port (a restart), else a free one.
export async function startHub(options = {}, { port = 0, name = 'windlass-server', env } = {}) {
  const dir = options.dir ?? tempDir('windlass-hub-');
  const configPath = path.join(dir, 'windlass.toml');
  writeFileSync(configPath, options.toml ?? hubConfig(options));
  const server = new Server([serverBinary(), '--config', configPath], {
    name, env: env ? { ...process.env, ...env } : undefined,
  });
  await server.start({ port });
  server.dir = dir;
  server.configPath = configPath;
  return server;
}

// The `pusher` server SDK pointed at a started hub.
export function sdkFor(server, app = DEMO, options = {}) {
  return new PusherSdk({
    appId: app.id, key: app.key, secret: app.secret, host: HOST, port: String(server.port), useTLS: false,
    timeout: STEP_TIMEOUT_MS, ...options,
  });
}

// ---------------------------------------------------------------------------
// Signing by hand, for requests no SDK would make (a stale timestamp)

export const hmac = (secret, text) => crypto.createHmac('sha256', secret).update(text).digest('hex');
export const md5 = (text) => crypto.createHash('md5').update(text).digest('hex');

// The signed query of a request to the HTTP API, as Pusher's SDKs build it.
export function signedQuery({ method, path: p, body = '', params = {}, app = DEMO, timestamp }) {
  const q = {
    ...params, auth_key: app.key, auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  if (body) q.body_md5 = md5(body);
  const sorted = Object.keys(q).sort().map((k) => `${k.toLowerCase()}=${q[k]}`).join('&');
  const signature = hmac(app.secret, `${method}\n${p}\n${sorted}`);
  const enc = Object.keys(q).sort().map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(q[k])}`).join('&');
  return `${enc}&auth_signature=${signature}`;
}

// {status, headers, text, json, reusedSocket} of one HTTP request.
export function request(port, { method = 'GET', path: p = '/', body, headers = {}, agent } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path: p, agent, headers: {
      ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
      ...headers,
    } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  }), STEP_TIMEOUT_MS, `${method} ${p}`);
}

// A signed API call: {status, json, text, ...}.
export function api(server, method, p, { body, params, app = DEMO, timestamp, agent } = {}) {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const q = signedQuery({ method, path: p, body: text, params, app, timestamp });
  return request(server.port, { method, path: `${p}?${q}`, body: method === 'POST' ? text : undefined, agent });
}

// ---------------------------------------------------------------------------
// The web app's auth endpoint

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => resolve(body));
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve(server.address().port));
  });
}

// What a web app's /pusher/auth (pusher-js), /broadcasting/auth (Laravel
// Echo) and /pusher/user-auth do, signed by the `pusher` SDK's
// authorizeChannel and authenticateUser. Who the user is comes from the
// form's own params (pusher-js's channelAuthorization.params): `user_id`,
// `user_info` (JSON); `mode` picks a failure: `wrong-secret` (signed with
// another secret), `empty` ({"auth":""}), `forbidden` (403, as an app
// refusing the user answers).
export class AuthServer {
  constructor(app = DEMO, { encryptionMasterKeyBase64 } = {}) {
    this.app = app;
    const common = { appId: app.id, key: app.key, host: HOST, useTLS: false, encryptionMasterKeyBase64 };
    this.sdk = new PusherSdk({ ...common, secret: app.secret });
    this.wrong = new PusherSdk({ ...common, secret: `${app.secret}-but-wrong` });
    this.requests = [];
    this.http = http.createServer((req, res) => { this.handle(req, res).catch((err) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err.stack ?? err));
    }); });
  }

  async start() {
    this.port = await listen(this.http);
    live.add(this);
    return this;
  }

  url(p) { return `http://${HOST}:${this.port}${p}`; }

  async handle(req, res) {
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*' };
    if (req.method === 'OPTIONS') { res.writeHead(204, cors); res.end(); return; }
    const params = Object.fromEntries(new URLSearchParams(await readBody(req)));
    this.requests.push({ path: req.url, params });
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json', ...cors });
      res.end(JSON.stringify(body));
    };
    if (params.mode === 'forbidden') return reply(403, { message: 'not yours' });
    const signer = params.mode === 'wrong-secret' ? this.wrong : this.sdk;
    const userId = params.user_id ?? 'anonymous';
    const userInfo = params.user_info ? JSON.parse(params.user_info) : {};
    if (req.url.startsWith('/pusher/user-auth') || req.url.startsWith('/broadcasting/user-auth')) {
      return reply(200, signer.authenticateUser(params.socket_id, { id: userId, user_info: userInfo }));
    }
    const channel = params.channel_name;
    if (params.mode === 'empty') return reply(200, { auth: '' });
    if (channel.startsWith('presence-')) {
      return reply(200, signer.authorizeChannel(params.socket_id, channel, { user_id: userId, user_info: userInfo }));
    }
    return reply(200, signer.authorizeChannel(params.socket_id, channel));
  }

  close() {
    return new Promise((resolve) => { this.http.closeAllConnections?.(); this.http.close(() => resolve()); });
  }
}

// ---------------------------------------------------------------------------
// Webhooks

// Records every webhook POST: `.posts` ({headers, body, validKey,
// validSignature, sdkValid, status}), `.events` (each event with the
// post's time_ms and arrival time). `statuses` are answered in order, then
// 200.
export class WebhookReceiver {
  constructor(app = DEMO, { statuses = [] } = {}) {
    this.app = app;
    this.statuses = [...statuses];
    this.posts = [];
    this.events = [];
    this.sdk = new PusherSdk({ appId: app.id, key: app.key, secret: app.secret, host: HOST, useTLS: false });
    this.http = http.createServer(async (req, res) => {
      const body = await readBody(req);
      const status = this.statuses.length ? this.statuses.shift() : 200;
      const post = {
        at: Date.now(), method: req.method, path: req.url, headers: req.headers, body, status,
        validKey: req.headers['x-pusher-key'] === app.key,
        validSignature: req.headers['x-pusher-signature'] === hmac(app.secret, body),
        sdkValid: this.sdk.webhook({ headers: req.headers, rawBody: body }).isValid(),
      };
      this.posts.push(post);
      if (status >= 200 && status < 300) {
        let parsed;
        try { parsed = JSON.parse(body); } catch { parsed = { events: [] }; }
        for (const e of parsed.events ?? []) this.events.push({ ...e, time_ms: parsed.time_ms, at: post.at });
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status < 300 ? 'ok' : 'no');
    });
  }

  async start() {
    this.port = await listen(this.http);
    live.add(this);
    return this;
  }

  get url() { return `http://${HOST}:${this.port}/pusher/webhook`; }

  matching(name, channel) {
    return this.events.filter((e) => e.name === name && (channel === undefined || e.channel === channel));
  }

  async waitFor(name, channel, ms = STEP_TIMEOUT_MS, count = 1) {
    return waitUntil(() => {
      const found = this.matching(name, channel);
      return found.length >= count ? found : null;
    }, ms, `webhook ${name}${channel ? ` for ${channel}` : ''} (have ${JSON.stringify(this.events.map((e) => e.name))})`);
  }

  close() {
    return new Promise((resolve) => { this.http.closeAllConnections?.(); this.http.close(() => resolve()); });
  }
}

// ---------------------------------------------------------------------------
// A raw WebSocket client: parsed messages in a queue, the close code

export class RawClient {
  static async open(server, urlPath = `/app/${DEMO.key}?protocol=7`, options = {}) {
    const c = new RawClient(new WebSocket(`ws://${HOST}:${server.port}${urlPath}`, { perMessageDeflate: false, ...options }));
    await withTimeout(new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('error', reject);
      c.ws.once('unexpected-response', (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    }), STEP_TIMEOUT_MS, `connect to ${urlPath}`);
    return c;
  }

  // Opens, then waits for connection_established: the client, with .socketId.
  static async connect(server, key = DEMO.key, options) {
    const c = await RawClient.open(server, `/app/${key}?protocol=7&client=js&version=8.6.0&flash=false`, options);
    const hello = await c.next('pusher:connection_established');
    const data = JSON.parse(hello.data);
    c.socketId = data.socket_id;
    c.activityTimeout = data.activity_timeout;
    return c;
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = []; // every message, parsed, in order of arrival
    this.taken = new Set();
    this.waiters = [];
    ws.on('message', (data) => {
      let m;
      try { m = JSON.parse(data.toString('utf8')); } catch { m = { unparsed: data.toString('utf8') }; }
      m.at = Date.now();
      this.messages.push(m);
      for (const w of [...this.waiters]) w();
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8'), at: Date.now() };
        for (const w of [...this.waiters]) w();
        resolve(this.closeInfo);
      });
    });
    live.add(this);
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  // The first message not yet taken whose event is `event` (a string) or
  // that passes `event` (a function); waits up to `ms`.
  next(event, ms = STEP_TIMEOUT_MS) {
    const test = typeof event === 'function' ? event : (m) => m.event === event;
    return withTimeout(new Promise((resolve, reject) => {
      const look = () => {
        const i = this.messages.findIndex((m, idx) => !this.taken.has(idx) && test(m));
        if (i >= 0) {
          this.taken.add(i);
          this.waiters = this.waiters.filter((w) => w !== look);
          resolve(this.messages[i]);
        } else if (this.closeInfo) {
          this.waiters = this.waiters.filter((w) => w !== look);
          reject(new Error(`closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${event}`));
        }
      };
      this.waiters.push(look);
      look();
    }), ms, `message ${typeof event === 'string' ? event : 'matching'}`);
  }

  subscribe(channel, auth, channelData) {
    const data = { channel };
    if (auth !== undefined) data.auth = auth;
    if (channelData !== undefined) data.channel_data = channelData;
    this.send({ event: 'pusher:subscribe', data });
  }

  // Nothing matching `event` (or nothing at all) arrives within QUIET_MS.
  async assertNone(event, what, ms = QUIET_MS) {
    await sleep(ms);
    const test = event === undefined ? () => true : typeof event === 'function' ? event : (m) => m.event === event;
    const got = this.messages.filter((m, i) => !this.taken.has(i) && test(m));
    if (got.length) throw new Error(`${what}: expected nothing, got ${JSON.stringify(got[0])}`);
  }

  waitClosed(ms = STEP_TIMEOUT_MS) { return withTimeout(this.closed, ms, 'close'); }

  close() {
    live.delete(this);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------
// pusher-js

// The close or error code in one of pusher-js's 'error' events, which come
// as {type:'PusherError', data:{code}} or wrapped in {type:'WebSocketError', error}.
export function errorCode(e) {
  return e?.data?.code ?? e?.error?.data?.code ?? null;
}

// A pusher-js client of a started hub. `auth`: an AuthServer, whose
// /pusher/auth and /pusher/user-auth it calls with `params`.
export class PusherJs {
  constructor(server, { key = DEMO.key, auth, params = {}, endpoint = '/pusher/auth', ...options } = {}) {
    this.states = [];
    this.errors = [];
    this.messages = []; // every message pusher-js handed to its connection, in order
    this.pusher = new Pusher(key, {
      cluster: 'mt1', wsHost: HOST, wsPort: server.port, forceTLS: false, enabledTransports: ['ws'],
      channelAuthorization: auth ? { endpoint: auth.url(endpoint), transport: 'ajax', params } : undefined,
      userAuthentication: auth ? { endpoint: auth.url('/pusher/user-auth'), transport: 'ajax', params } : undefined,
      ...options,
    });
    const c = this.pusher.connection;
    this.sockets = new Set();
    c.bind('state_change', (s) => {
      this.states.push(s.current);
      const socket = c.connection?.transport?.socket;
      if (socket) this.sockets.add(socket);
      if (s.current === 'disconnected') setTimeout(() => this.unrefCloseTimers(), 0);
    });
    c.bind('error', (e) => this.errors.push(e));
    c.bind('message', (m) => this.messages.push({ ...m, at: Date.now() }));
    live.add(this);
  }

  get state() { return this.pusher.connection.state; }
  get socketId() { return this.pusher.connection.socket_id; }

  // Waits for the `connected` state; the socket_id.
  async connected(ms = STEP_TIMEOUT_MS) {
    await waitUntil(() => this.state === 'connected', ms, `pusher-js connected (states ${this.states.join(' → ')})`);
    return this.socketId;
  }

  // Subscribes and waits for the outcome: the channel, or a throw with the
  // subscription error pusher-js reported ({type, error, status}).
  subscribe(name, ms = STEP_TIMEOUT_MS) {
    const channel = this.pusher.subscribe(name);
    return withTimeout(new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', () => resolve(channel));
      channel.bind('pusher:subscription_error', (status) => {
        const err = new Error(`subscription to ${name} failed: ${JSON.stringify(status)}`);
        err.status = status;
        reject(err);
      });
    }), ms, `subscription to ${name}`);
  }

  // Records every `event` on `channel` ({data, metadata, at}) in the array returned.
  record(channel, event) {
    const got = [];
    channel.bind(event, (data, metadata) => got.push({ data, metadata, at: Date.now() }));
    return got;
  }

  // Waits for pusher-js to report an error with `code`.
  async errorWith(code, ms = STEP_TIMEOUT_MS) {
    return waitUntil(() => this.errors.find((e) => errorCode(e) === code), ms,
      `pusher-js error ${code} (have ${JSON.stringify(this.errors.map(errorCode))})`);
  }

  // When the server refuses a connection (4009, 4301, ...), pusher-js's
  // Node build closes its already-closed faye-websocket once more, which
  // arms a 30 s close timer that nothing clears: it would keep Node up
  // after the last test. The timer of a closed socket does nothing.
  unrefCloseTimers() {
    for (const socket of this.sockets) {
      if (socket.readyState === 3 && socket._closeTimer) socket._closeTimer.unref();
    }
  }

  close() {
    live.delete(this);
    if (this.state !== 'disconnected') {
      try { this.pusher.disconnect(); } catch { /* already */ }
    }
    setTimeout(() => this.unrefCloseTimers(), 0);
    return Promise.resolve();
  }
}

// Waits until `array` has `n` entries, returns it.
export function waitCount(array, n, what, ms = STEP_TIMEOUT_MS) {
  return waitUntil(() => (array.length >= n ? array : null), ms, `${what} (have ${array.length} of ${n})`);
}

// ---------------------------------------------------------------------------
// /metrics

export async function scrape(server) {
  const res = await request(server.port, { path: '/metrics' });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text;
}

// The value of the sample `name{labels}` (labels matched as a subset), or 0.
export function sample(text, name, labels = {}) {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === String(v))) {
      total += Number(m[4]);
      found = true;
    }
  }
  return found ? total : 0;
}
