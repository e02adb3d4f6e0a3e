#!/usr/bin/env bash
# Server instructions per echo round trip, counted by callgrind: a number
# that does not move with the machine's load, so a change in speed shows
# even on a busy or virtual machine.
#
#   bench/callgrind_echo.sh [WINDLASS_ECHO_BINARY]
#
# For each payload size the server runs twice under callgrind: once for a
# baseline (CONNECTIONS connections that upgrade and close: --count 0) and
# once with COUNT echo round trips per connection on top. Start-up,
# handshakes and shutdown are the same in both, so
#   (instructions of the second - instructions of the first) / (COUNT * CONNECTIONS)
# is what one round trip costs the server, system calls excluded (callgrind
# counts user-space instructions only).
#
# Environment (all optional):
#   BUILD        build directory (default build/release)
#   WINDLASS_ECHO LOAD   the binaries (default under BUILD)
#   PEER         also measure a peer of bench/peers in echo mode: beast or
#                websocketpp (node-ws works too, but counts V8's JIT)
#   PEER_CMD     or any other echo server as a command template, {port}
#                replaced by a free port; PEER_PORT if it has a fixed port
#                instead, PEER_NAME to label it
#   UWS_ECHO_BIN a uWebSockets EchoServer you built: PEER_CMD=$UWS_ECHO_BIN
#                PEER_PORT=9001 PEER_NAME=uws
#   SIZES        payload sizes (default "20 16384")
#   FORMATS      message types (default "text binary"; text costs the server
#                a UTF-8 check, RFC 6455 §8.1)
#   CONNECTIONS  default 10;  COUNT  round trips per connection, default 2000
#   OUT          directory for the callgrind files (default: a new temp dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$root/build/release}
WINDLASS_ECHO=${1:-${WINDLASS_ECHO:-$BUILD/examples/echo/windlass-echo}}
LOAD=${LOAD:-$BUILD/bench/load/windlass-load}
SIZES=${SIZES:-"20 16384"}
FORMATS=${FORMATS:-"text binary"}
CONNECTIONS=${CONNECTIONS:-10}
COUNT=${COUNT:-2000}
OUT=${OUT:-$(mktemp -d /tmp/windlass-callgrind.XXXXXX)}
case ${PEER:-} in
  "") ;;
  beast | websocketpp) PEER_CMD="$BUILD/bench/peers/windlass-peer-$PEER {port} echo" PEER_NAME=$PEER ;;
  node-ws) PEER_CMD="node $root/bench/peers/ws_server.mjs {port} echo" PEER_NAME=$PEER ;;
  *) echo "callgrind_echo: PEER is beast, websocketpp or node-ws" >&2; exit 1 ;;
esac
if [ -n "${UWS_ECHO_BIN:-}" ] && [ -z "${PEER_CMD:-}" ]; then
  PEER_CMD=$UWS_ECHO_BIN
  PEER_PORT=${PEER_PORT:-9001}
  PEER_NAME=${PEER_NAME:-uws}
fi
PEER_CMD=${PEER_CMD:-}
PEER_NAME=${PEER_NAME:-peer}

die() { echo "callgrind_echo: $*" >&2; exit 1; }
[ -x "$WINDLASS_ECHO" ] || die "no server binary at $WINDLASS_ECHO (run 'make build', or pass its path)"
[ -x "$LOAD" ] || die "no load generator at $LOAD (run 'make build', or set LOAD)"
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
mkdir -p "$OUT"

server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    if ! port_accepts "$port"; then echo "$port"; return; fi
  done
  die "no free port found"
}

# Starts `server` ("windlass" or the peer) under callgrind writing to the
# file $1; sets server_pid and server_port.
start_under_callgrind() {
  local server=$1 outfile=$2 log="$2.log" cmd
  if [ "$server" = windlass ]; then
    server_port=$(free_port)
    cmd="$(printf '%q' "$WINDLASS_ECHO") --host 127.0.0.1 --port $server_port --threads 1"
  elif [[ $PEER_CMD == *"{port}"* ]]; then
    server_port=$(free_port)
    cmd=${PEER_CMD//\{port\}/$server_port}
  else
    [ -n "${PEER_PORT:-}" ] || die "PEER_CMD has no {port}: set PEER_PORT to the port it listens on"
    server_port=$PEER_PORT
    cmd=$PEER_CMD
  fi
  # glibc copies blocks over 4 KiB with `rep movsb`, which callgrind counts
  # as one instruction per byte; moving the threshold out of reach makes it
  # use its vector loop, whose count reflects the real cost far better.
  GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295 \
    bash -c "exec valgrind --tool=callgrind --callgrind-out-file=$(printf '%q' "$outfile") $cmd" >"$log" 2>&1 &
  server_pid=$!
  # Valgrind starts programs slowly; a minute is plenty.
  for _ in $(seq 600); do
    port_accepts "$server_port" && return
    kill -0 "$server_pid" 2>/dev/null || die "$server exited under valgrind: $(tail -5 "$log")"
    sleep 0.1
  done
  die "$server did not accept connections under valgrind within 60 s"
}

# Runs one server under callgrind for one load, stops it with SIGTERM
# (callgrind writes its totals on any exit; SIGINT would not do, as
# non-interactive shells start background jobs with it ignored) and prints
# the instruction total.
instructions_for() {
  local server=$1 size=$2 format=$3 count=$4
  local outfile="$OUT/$server.$format$size.count$count.callgrind" binary=()
  [ "$format" = binary ] && binary=(--binary)
  start_under_callgrind "$server" "$outfile"
  "$LOAD" echo --port "$server_port" --connections "$CONNECTIONS" --size "$size" "${binary[@]}" \
    --count "$count" --json --quiet >"$outfile.load.json" || die "$server: load generator reported errors: $(cat "$outfile.load.json")"
  kill -TERM "$server_pid"
  for _ in $(seq 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server_pid" 2>/dev/null && die "$server did not exit within 30 s of SIGTERM"
  wait "$server_pid" || true
  server_pid=
  local total
  total=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$outfile" | head -1)
  [ -n "$total" ] || die "no instruction total in $outfile"
  echo "$total"
}

servers=(windlass)
[ -n "$PEER_CMD" ] && servers+=("$PEER_NAME")
echo "| server | payload | instructions per round trip | baseline (start, $CONNECTIONS handshakes, stop) |"
echo "|---|---:|---:|---:|"
for size in $SIZES; do
  for format in $FORMATS; do
    for server in "${servers[@]}"; do
      echo "callgrind_echo: $server, $size B $format: baseline, then $COUNT round trips x $CONNECTIONS connections" >&2
      base=$(instructions_for "$server" "$size" "$format" 0)
      loaded=$(instructions_for "$server" "$size" "$format" "$COUNT")
      per=$(( (loaded - base) / (COUNT * CONNECTIONS) ))
      printf '| %s | %s B %s | %s | %s |\n' "$server" "$size" "$format" "$per" "$base"
    done
  done
done
echo "callgrind_echo: callgrind files in $OUT (callgrind_annotate FILE for the breakdown)" >&2
