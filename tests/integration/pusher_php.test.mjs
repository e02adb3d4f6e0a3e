// PHP against the hub: examples/pusher/publish.php (the signed POST a
// Laravel app's pusher driver makes, with hash_hmac and nothing else) and
// examples/pusher/auth_server.php under `php -S` (the auth endpoint and
// the message endpoint of the demo room), with pusher-js receiving. The
// signatures are first checked against the verified vectors of
// shared/PUSHER-PROTOCOL.md.
//
// Run by ctest with WINDLASS_SERVER_BIN and WINDLASS_SOURCE_DIR set; needs
// php-cli (scripts/install-deps.sh --with-test installs it). By hand:
//
//   WINDLASS_SERVER_BIN=build/release/src/server/windlass-server node tests/integration/pusher_php.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import {
  External, HOST, QUIET_MS, SOURCE_DIR, freePort, sleep, waitUntil, which, watchdog,
} from '../support/harness.mjs';
import { DEMO, PusherJs, cleanup, fresh, request, startHub, waitCount } from '../support/pusher.mjs';

watchdog(120_000);
const T = { timeout: 30_000 };
const PHP = which('php');
const PUBLISH = path.join(SOURCE_DIR, 'examples', 'pusher', 'publish.php');
const AUTH_SERVER = path.join(SOURCE_DIR, 'examples', 'pusher', 'auth_server.php');
if (!PHP) throw new Error('php not installed (scripts/install-deps.sh --with-test installs php-cli)');

let server;
let phpServer;
let env;

// {code, stdout, stderr} of php with `args`.
function php(args, extraEnv = {}) {
  return new Promise((resolve) => {
    execFile(PHP, args, { env: { ...env, ...extraEnv }, timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

// Runs PHP code with publish.php's functions defined; its output.
async function withPublish(code) {
  const r = await php(['-r', `require ${JSON.stringify(PUBLISH)}; ${code}`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

// A pusher-js client whose auth endpoint is auth_server.php, as the demo page's is.
function roomClient(userId, name) {
  return new PusherJs(server, {
    channelAuthorization: { endpoint: `http://${HOST}:${phpServer.port}/broadcasting/auth`, transport: 'ajax',
      params: { user_id: userId, name } },
  });
}

describe('PHP: publish.php and auth_server.php', { timeout: 110_000 }, () => {
  before(async () => {
    server = await startHub({ apps: [{ ...DEMO, client_events: true }] });
    env = { ...process.env, PUSHER_APP_ID: DEMO.id, PUSHER_APP_KEY: DEMO.key, PUSHER_APP_SECRET: DEMO.secret,
      PUSHER_HOST: HOST, PUSHER_PORT: String(server.port), PUSHER_SCHEME: 'http' };
    const port = await freePort();
    phpServer = await new External([PHP, '-S', `${HOST}:${port}`, AUTH_SERVER], {
      name: 'php -S auth_server.php', port, env, expectExit: null,
    }).start();
  });
  after(async () => {
    await cleanup();
    if (phpServer) await phpServer.stop();
    if (server) await server.stop();
  });

  it('signs as the protocol\'s verified vectors say', T, async () => {
    const app = '["key"=>"278d425bdf160c739803","secret"=>"7ad3773142a6692b25b8","app_id"=>"3"]';
    const body = JSON.stringify({ name: 'foo', channels: ['project-3'], data: '{"some":"data"}' });
    const query = await withPublish(`echo pusher_signed_query(${app}, "POST", "/apps/3/events", ` +
      `${JSON.stringify(body).replaceAll('$', '\\$')}, [], 1353088179);`);
    const q = new URLSearchParams(query.trim());
    assert.equal(q.get('body_md5'), 'ec365a775a4cd0599faeb73354201b6f');
    assert.equal(q.get('auth_signature'), 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
    const priv = JSON.parse(await withPublish(
      `echo json_encode(pusher_authorize_channel(${app}, "private-foobar", "1234.1234"));`));
    assert.equal(priv.auth,
      '278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4');
    const pres = JSON.parse(await withPublish(
      `echo json_encode(pusher_authorize_presence(${app}, "presence-foobar", "1234.1234", 10, ["name" => "Mr. Channels"]));`));
    assert.equal(pres.channel_data, '{"user_id":10,"user_info":{"name":"Mr. Channels"}}');
    assert.equal(pres.auth,
      '278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80');
  });

  it('publishes from the command line to pusher-js subscribers, leaving out a socket_id', T, async () => {
    const name = fresh('orders-');
    const a = new PusherJs(server);
    const b = new PusherJs(server);
    await Promise.all([a.connected(), b.connected()]);
    const atA = a.record(await a.subscribe(name), 'OrderShipped');
    const atB = b.record(await b.subscribe(name), 'OrderShipped');
    const r = await php([PUBLISH, name, 'OrderShipped', '{"order":{"id":7},"note":"ünïcødé ✓ \\"quoted\\""}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /published OrderShipped/);
    await waitCount(atA, 1, 'the event at a');
    await waitCount(atB, 1, 'the event at b');
    assert.deepEqual(atA[0].data, { order: { id: 7 }, note: 'ünïcødé ✓ "quoted"' });
    const r2 = await php([PUBLISH, name, 'OrderShipped', '{"n":2}', a.socketId]);
    assert.equal(r2.code, 0, r2.stderr);
    await waitCount(atB, 2, 'the second event at b');
    await sleep(QUIET_MS);
    assert.equal(atA.length, 1, 'the socket_id left out got the event');
    await Promise.all([a.close(), b.close()]);
  });

  it('fails loudly with a wrong secret or no server', T, async () => {
    const wrong = await php([PUBLISH, 'x', 'y', '{}'], { PUSHER_APP_SECRET: 'nope' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /windlass answered 401/);
    const gone = await php([PUBLISH, 'x', 'y', '{}'], { PUSHER_PORT: String(await freePort()) });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /cannot reach windlass/);
    const usage = await php([PUBLISH]);
    assert.equal(usage.code, 2);
  });

  it('authorizes the room\'s presence and private channels through auth_server.php', T, async () => {
    const room = `presence-room.${fresh('r')}`;
    const ann = roomClient('ann', 'Ann');
    const bob = roomClient('bob', 'Bob');
    await Promise.all([ann.connected(), bob.connected()]);
    const annRoom = await ann.subscribe(room);
    const bobRoom = await bob.subscribe(room);
    assert.deepEqual(bobRoom.members.get('ann').info, { id: 'ann', name: 'Ann' });
    await waitUntil(() => annRoom.members.count === 2, 5000, 'bob among ann\'s members');
    await ann.subscribe('private-user.ann');
    // Someone else's private channel: the app says no (403), pusher-js reports it.
    const err = await ann.subscribe('private-user.bob').then(() => null, (e) => e);
    assert.ok(err, 'ann got bob\'s private channel');
    assert.equal(err.status.status, 403);
    // Whispers go from page to page without PHP.
    const typing = bob.record(bobRoom, 'client-typing');
    annRoom.trigger('client-typing', { name: 'Ann' });
    await waitCount(typing, 1, 'the whisper');
    assert.equal(typing[0].metadata.user_id, 'ann');
    await Promise.all([ann.close(), bob.close()]);
  });

  it('publishes a message from POST /messages to the others in the room, and from publish.php TEXT', T, async () => {
    const tag = fresh('t');
    const room = `presence-room.${tag}`;
    const ann = roomClient('ann', 'Ann');
    const bob = roomClient('bob', 'Bob');
    await Promise.all([ann.connected(), bob.connected()]);
    const atAnn = ann.record(await ann.subscribe(room), 'message.posted');
    const atBob = bob.record(await bob.subscribe(room), 'message.posted');
    const form = new URLSearchParams({ socket_id: ann.socketId, user_id: 'ann', name: 'Ann', room: tag,
      text: 'hello <b>bob</b>' }).toString();
    const res = await request(phpServer.port, { method: 'POST', path: '/messages', body: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 200, res.text);
    await waitCount(atBob, 1, 'the message at bob');
    assert.deepEqual(atBob[0].data, { name: 'Ann', user_id: 'ann', text: 'hello <b>bob</b>' });
    await sleep(QUIET_MS);
    assert.equal(atAnn.length, 0, 'the sender got its own message back');
    // The one-argument form goes to the default room.
    const lobby = roomClient('carl', 'Carl');
    await lobby.connected();
    const atLobby = lobby.record(await lobby.subscribe('presence-room.lobby'), 'message.posted');
    const r = await php([PUBLISH, 'Deploy finished']);
    assert.equal(r.code, 0, r.stderr);
    await waitCount(atLobby, 1, 'the message in the lobby');
    assert.deepEqual(atLobby[0].data, { name: 'publish.php', text: 'Deploy finished' });
    await Promise.all([ann.close(), bob.close(), lobby.close()]);
  });
});
