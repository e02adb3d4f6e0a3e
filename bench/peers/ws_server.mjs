// A benchmark peer: echo or chat over Node's `ws` (the package the tests
// already install from package-lock.json).
//
//   node bench/peers/ws_server.mjs PORT echo|chat
//
// echo: every message goes back to its sender as it came (text or binary).
// chat: every message goes to every other connected client, as
// examples/chat does. Node is single-threaded; compression off as in the
// other servers; 127.0.0.1 only.
import { WebSocketServer, WebSocket } from 'ws';

const [port, mode] = [Number(process.argv[2]), process.argv[3]];
if (!Number.isInteger(port) || !['echo', 'chat'].includes(mode)) {
  console.error('usage: node ws_server.mjs PORT echo|chat');
  process.exit(2);
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});
server.on('connection', (ws) => {
  if (mode === 'echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  // chat: server.clients is the set of open connections `ws` tracks for us.
  ws.on('message', (data, isBinary) => {
    for (const client of server.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
server.on('listening', () => console.log(`listening on 127.0.0.1:${server.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
