#!/usr/bin/env bash
# Echo benchmark: windlass-echo (and optionally a peer server) under
# windlass-load, server pinned to one core and load generator to another,
# each workload repeated and the median reported as a markdown table.
#
#   bench/run_echo_bench.sh [WINDLASS_ECHO_BINARY]
#   bench/run_echo_bench.sh --table OUT/results.jsonl   (the table of an earlier run)
#
# Environment (all optional):
#   WINDLASS_ECHO  server binary, started as `BIN --host 127.0.0.1 --port 0`;
#                  it must print "listening on 127.0.0.1:PORT" when ready
#                  (default build/release/examples/echo/windlass-echo)
#   WINDLASS_ARGS  more arguments for it, e.g. "--log-level warn"
#   LOAD           load generator (default build/release/bench/load/windlass-load)
#   PEER_CMD       a peer echo server to measure side by side, as a command
#                  template: {port} is replaced by a free port, e.g.
#                  PEER_CMD='/opt/uWebSockets/EchoServer' PEER_PORT=9001 for
#                  a binary with a fixed port, or 'node echo.js {port}'.
#                  Build it yourself elsewhere; this script builds nothing.
#   UWS_ECHO_BIN   shorthand for PEER_CMD=$UWS_ECHO_BIN PEER_PORT=9001
#                  PEER_NAME=uWebSockets (its examples/EchoServer listens on 9001)
#   PEER_PORT      the port when PEER_CMD has no {port}
#   PEER_NAME      label for the peer (default: peer)
#   WORKLOADS      "CONNECTIONSxBYTES ..." (default "100x20 1000x20 100x16384 1000x16384")
#   DURATION WARMUP REPEATS   seconds measured, seconds of warmup, runs per
#                  cell (defaults 10, 2, 3; the median run is reported)
#   EXTRA=1        also measure idle memory per connection (IDLE_CONNECTIONS,
#                  default 10000, first, while each server is fresh) and
#                  handshakes/s (50 clients cycling connect-upgrade-close)
#   SERVER_CPU LOAD_CPU   cores to pin to (defaults 0 and 1)
#   OUT            directory for the raw JSON of every run (default: a new temp dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
WINDLASS_ECHO=${1:-${WINDLASS_ECHO:-$root/build/release/examples/echo/windlass-echo}}
LOAD=${LOAD:-$root/build/release/bench/load/windlass-load}
WORKLOADS=${WORKLOADS:-"100x20 1000x20 100x16384 1000x16384"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
OUT=${OUT:-$(mktemp -d /tmp/windlass-bench.XXXXXX)}
if [ -n "${UWS_ECHO_BIN:-}" ] && [ -z "${PEER_CMD:-}" ]; then
  PEER_CMD=$UWS_ECHO_BIN
  PEER_PORT=${PEER_PORT:-9001}
  PEER_NAME=${PEER_NAME:-uWebSockets}
fi
PEER_CMD=${PEER_CMD:-}
PEER_NAME=${PEER_NAME:-peer}

die() { echo "run_echo_bench: $*" >&2; exit 1; }

# The table: per server and workload, the median of each column over the
# repeats. Server CPU under 90 % means the server was not the bottleneck
# (the load generator or the machine was), so its rate undersells it; its
# work per server CPU-second is still a fair comparison.
print_table() {
  python3 - "$1" <<'PY'
import json, statistics, sys
from collections import OrderedDict

rows = OrderedDict()
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault((r["workload"], r["server"]), []).append(r["result"])

def med(runs, key, default=None):
    vals = [x[key] for x in runs if key in x]
    return statistics.median(vals) if vals else default

def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"

print("| workload | server | rate /s | p50 µs | p99 µs | server CPU | per server CPU-s | load gen CPU | errors | note |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
rates = {}
for (workload, server), runs in rows.items():
    mode = runs[0]["mode"]
    errors = sum(x["errors"]["total"] for x in runs)
    notes = []
    if mode == "idle":
        per = med(runs, "server_rss_per_connection")
        opened = med(runs, "opened")
        print(f"| {workload} | {server} | - | - | - | - | - | - | {errors} | "
              f"{fmt(per)} bytes of server VmRSS per connection ({fmt(opened)} open) |")
        continue
    rate_key = "handshakes_per_s" if mode == "handshake" else "messages_per_s"
    rate = med(runs, rate_key)
    rates[(workload, server)] = (rate, med(runs, "work_per_server_cpu_s"))
    cpu = med(runs, "server_cpu_pct")
    load_cpu = med(runs, "client_cpu_pct")
    if cpu is not None and cpu < 90:
        if load_cpu >= 90:
            notes.append("server under 90 % CPU and load generator over: the load generator was the limit")
        else:
            notes.append("neither process had a full core: the machine was busy")
    if any(x.get("failure") for x in runs):
        notes.append("FAILED: " + next(x["failure"] for x in runs if x.get("failure")))
    if any(x["nofile_capped"] for x in runs):
        notes.append(f"capped at {runs[0]['connections']} connections by RLIMIT_NOFILE")
    lat = lambda k: statistics.median(x["latency_us"][k] for x in runs)
    print(f"| {workload} | {server} | {fmt(rate)} | {fmt(lat('p50'))} | {fmt(lat('p99'))} | "
          f"{fmt(cpu)} % | {fmt(med(runs, 'work_per_server_cpu_s'))} | {fmt(med(runs, 'client_cpu_pct'))} % | "
          f"{errors} | {'; '.join(notes)} |")

servers = []
for _, s in rows:
    if s not in servers:
        servers.append(s)
if len(servers) > 1:
    print()
    print(f"| workload | {servers[0]} / {servers[1]}: rate | per server CPU-second |")
    print("|---|---:|---:|")
    ratio = lambda x, y: f"{x / y:.2f}" if x and y else "-"
    for workload in OrderedDict((w, 1) for w, _ in rows):
        a, b = rates.get((workload, servers[0])), rates.get((workload, servers[1]))
        if a and b:
            print(f"| {workload} | {ratio(a[0], b[0])} | {ratio(a[1], b[1])} |")
PY
}

if [ "${1:-}" = --table ]; then
  print_table "${2:?usage: run_echo_bench.sh --table RESULTS.jsonl}"
  exit
fi
[ -x "$WINDLASS_ECHO" ] || die "no server binary at $WINDLASS_ECHO (run 'make build', or pass its path)"
[ -x "$LOAD" ] || die "no load generator at $LOAD (run 'make build', or set LOAD)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
mkdir -p "$OUT"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
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

# Sets server_pid and server_port for windlass-echo, which picks its own
# port and says which on stdout.
start_windlass() {
  local log="$OUT/windlass-echo.log"
  # shellcheck disable=SC2086 # WINDLASS_ARGS is a list of words
  # One loop: the server is pinned to one core, and a second loop there would only contend.
  taskset -c "$SERVER_CPU" "$WINDLASS_ECHO" --host 127.0.0.1 --port 0 --threads 1 ${WINDLASS_ARGS:-} >"$log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    server_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$server_port" ] && return
    kill -0 "$server_pid" 2>/dev/null || die "windlass-echo exited: $(cat "$log")"
    sleep 0.1
  done
  die "windlass-echo did not say 'listening on' within 10 s: $(cat "$log")"
}

# Sets server_pid and server_port for the peer, started from its template
# through exec so that its pid is the server's own.
start_peer() {
  local log="$OUT/peer.log" cmd
  if [[ $PEER_CMD == *"{port}"* ]]; then
    server_port=$(free_port)
    cmd=${PEER_CMD//\{port\}/$server_port}
  else
    [ -n "${PEER_PORT:-}" ] || die "PEER_CMD has no {port}: set PEER_PORT to the port it listens on"
    server_port=$PEER_PORT
    cmd=$PEER_CMD
  fi
  port_accepts "$server_port" && die "port $server_port is already in use"
  taskset -c "$SERVER_CPU" bash -c "exec $cmd" >"$log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    port_accepts "$server_port" && return
    kill -0 "$server_pid" 2>/dev/null || die "$PEER_NAME exited: $(cat "$log")"
    sleep 0.1
  done
  die "$PEER_NAME did not accept connections on port $server_port within 10 s"
}

declare -A pid_of port_of
servers=(windlass)
start_windlass
pid_of[windlass]=$server_pid
port_of[windlass]=$server_port
if [ -n "$PEER_CMD" ]; then
  servers+=("$PEER_NAME")
  start_peer
  pid_of[$PEER_NAME]=$server_pid
  port_of[$PEER_NAME]=$server_port
fi

# One run of the load generator; its JSON line is appended to results.jsonl
# with the server and workload names. The load generator reads the server's
# utime+stime from /proc/PID/stat at the start and end of its measured
# window itself (--server-pid), so connect and warmup are not counted.
run_load() {
  local server=$1 label=$2
  shift 2
  local json
  if ! json=$(taskset -c "$LOAD_CPU" "$LOAD" "$@" --port "${port_of[$server]}" \
                --server-pid "${pid_of[$server]}" --json --quiet); then
    echo "run_echo_bench: $server $label: the load generator reported errors:" >&2
    echo "$json" >&2
  fi
  [[ $json == "{"* ]] || die "$server $label: no result from the load generator"
  kill -0 "${pid_of[$server]}" 2>/dev/null || die "$server died during $label"
  printf '{"server":"%s","workload":"%s","result":%s}\n' "$server" "$label" "$json" >>"$OUT/results.jsonl"
}

echo "run_echo_bench: servers: ${servers[*]}; raw results in $OUT/results.jsonl" >&2
if [ "${EXTRA:-0}" = 1 ]; then
  # First, while each server is fresh: memory its allocator kept from
  # earlier runs would hide the cost of new connections.
  for server in "${servers[@]}"; do
    echo "run_echo_bench: idle $IDLE_CONNECTIONS connections on $server" >&2
    run_load "$server" "idle ${IDLE_CONNECTIONS} conns" idle --connections "$IDLE_CONNECTIONS" \
      --duration 3
  done
fi
for workload in $WORKLOADS; do
  connections=${workload%x*}
  size=${workload#*x}
  # Interleaved (A B A B A B) so drift in the machine hits both alike.
  for rep in $(seq "$REPEATS"); do
    for server in "${servers[@]}"; do
      echo "run_echo_bench: $workload run $rep/$REPEATS on $server" >&2
      run_load "$server" "echo ${connections} conns ${size} B" echo --connections "$connections" \
        --size "$size" --duration "$DURATION" --warmup "$WARMUP"
    done
  done
done

if [ "${EXTRA:-0}" = 1 ]; then
  for rep in $(seq "$REPEATS"); do
    for server in "${servers[@]}"; do
      echo "run_echo_bench: handshakes run $rep/$REPEATS on $server" >&2
      run_load "$server" "handshake 50 concurrent" handshake --connections 50 \
        --duration "$DURATION" --warmup "$WARMUP"
    done
  done
fi

print_table "$OUT/results.jsonl"
