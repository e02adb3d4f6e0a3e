// A peer for side-by-side echo benchmarks: Node's `ws` (the package the
// tests already install), echoing every message as it came, compression
// off as windlass-echo has it.
//
//   node bench/load/peer_ws_echo.mjs PORT
//   PEER_CMD='node bench/load/peer_ws_echo.mjs {port}' PEER_NAME=node-ws bench/run_echo_bench.sh
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 9001);
const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('listening', () => console.log(`listening on 127.0.0.1:${server.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
