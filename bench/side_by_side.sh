#!/usr/bin/env bash
# Side by side: windlass and the peers of bench/peers (and uWebSockets, if you
# give its binary) under the same load generator. Each server runs on one
# thread pinned to SERVER_CPU, the load generator is pinned to LOAD_CPU, the
# runs of a workload are interleaved across servers (A B C A B C ...) so that
# drift in the machine hits them alike, and each workload gets a markdown
# table of medians with windlass's ratio to every peer.
#
#   bench/side_by_side.sh                          (make bench)
#   SERVERS="windlass beast" WORKLOADS="100x20 fanout1000x32" bench/side_by_side.sh
#   bench/side_by_side.sh --table OUT/results.jsonl   (the tables of an earlier run)
#
# Servers (SERVERS, default: every one available, in this order):
#   windlass     examples/echo and examples/chat (`--compression off`), with
#                `--threads 1 --max-connections SERVER_NOFILE --io epoll`
#   windlass-io_uring  the same binaries with `--io io_uring` (left out,
#                saying why, where this kernel or process cannot use it)
#   node-ws      node bench/peers/ws_server.mjs (needs node and npm ci's node_modules)
#   beast        BUILD/bench/peers/windlass-peer-beast (built when Boost is installed)
#   websocketpp  BUILD/bench/peers/windlass-peer-websocketpp (when websocketpp is)
#   windlass-baseline  the same binaries from BASELINE_BUILD, another build
#                directory of windlass (an earlier commit, say): before and
#                after a change, measured in one run
#   uws          $UWS_ECHO_BIN, a uWebSockets examples/EchoServer you built
#                yourself (we build no third-party code), listening on
#                UWS_PORT (default 9001); for the fan-out workloads,
#                $UWS_CHAT_BIN, a uWebSockets chat (every message to every
#                other client through a topic) on UWS_CHAT_PORT (default
#                UWS_PORT + 1); without it uws sits out fan-out
#
# Workloads (WORKLOADS, default all of these, run in this order):
#   idle         memory per idle connection: IDLE_CONNECTIONS (10000) held
#                open, each run on a freshly started server, first of all
#   CxB          echo: C connections, B-byte text messages, one in flight
#                each (100x20 1000x20 100x16384 1000x16384)
#   handshake    50 connections cycling connect -> upgrade -> close
#   fanoutNxK    the chat servers: N subscribers and one publisher writing
#                bursts of K 32-byte messages (N in 100 1000 10000, K 1 for
#                light and 32 for heavy), each burst when the last has
#                reached everyone; skipped with a message when the load
#                generator has no fanout mode
#   fanoutN@R    the same, paced: the publisher sends R messages a second
#                whatever the subscribers have received (steady chat traffic:
#                1000@1000, 5000@100, 10000@100)
#   EXTRA=0 leaves idle and handshake out of the default list.
#
# Other settings (environment, all optional):
#   DURATION WARMUP REPEATS  seconds measured, seconds of warmup, runs per
#                server and workload (defaults 10, 2, 3; medians reported)
#   SERVER_CPU LOAD_CPU      cores to pin to (defaults 0 and 1)
#   SERVER_NOFILE            servers' open-file limit (default 20000, enough
#                            for 10,000 connections; the load generator raises
#                            its own to its hard limit)
#   BUILD                    build directory (default build/release); the
#                            binaries WINDLASS_ECHO, WINDLASS_CHAT, LOAD and
#                            PEERS_DIR default to their places in it
#   WINDLASS_ARGS            more arguments for windlass-echo and windlass-chat
#   BASE                     the server the ratio columns divide by the
#                            others (default windlass-io_uring when it runs,
#                            else windlass)
#   SYSCALLS                 1 (default): after the timed runs, one more run
#                            of each server and workload with
#                            `windlass-load --count-syscalls` (perf's
#                            raw_syscalls:sys_enter tracepoint on the
#                            server, over the measured window), for the
#                            system calls per message column; kept out of
#                            the timed runs, where the tracepoint would
#                            tax the servers that make more calls. 0: none
#   OUT                      directory for the raw JSON lines (results.jsonl)
#                            and server logs (default: a new temp dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

# The tables: per workload, per server, the median of each column over the
# repeats. Server CPU under 90 % means the server was not the bottleneck (the
# load generator or the machine was), so its rate undersells it; its work per
# server CPU-second is still a fair comparison.
print_tables() {
  "$PYTHON" - "$1" "${BASE:-}" <<'PY'
import json, statistics, sys
from collections import OrderedDict

rows = OrderedDict()
syscalls = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("pass") == "syscalls":
        if r.get("result") and r["result"].get("server_syscalls_per_work") is not None:
            syscalls[(r["workload"], r["server"])] = r["result"]["server_syscalls_per_work"]
        continue
    rows.setdefault(r["workload"], OrderedDict()).setdefault(r["server"], []).append(r)
everyone = {s for servers in rows.values() for s in servers}
base_name = sys.argv[2] or ("windlass-io_uring" if "windlass-io_uring" in everyone else "windlass")

def med(runs, key):
    vals = [x[key] for x in runs if x.get(key) is not None]
    return statistics.median(vals) if vals else None

def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"

def per_unit_us(runs, key, unit):
    vals = [x[key] / x[unit] * 1e6 for x in runs if x.get(key) is not None and x.get(unit)]
    return statistics.median(vals) if vals else None

WHAT = {"echo": "messages/s, round-trip latency", "handshake": "upgrades/s, connect-to-101 latency",
        "fanout": "deliveries/s, publish-to-receipt latency"}
UNIT = {"echo": "message", "handshake": "handshake", "fanout": "delivery"}

for workload, servers in rows.items():
    results = {s: [x["result"] for x in runs if x.get("result")] for s, runs in servers.items()}
    failures = {s: [x["failed"] for x in runs if x.get("failed")] for s, runs in servers.items()}
    mode = next((r[0]["mode"] for r in results.values() if r), None)
    print(f"### {workload}" + (f" ({WHAT[mode]})" if mode in WHAT else ""))
    print()
    b = results.get(base_name, [])
    if mode == "idle":
        print(f"| server | bytes of VmRSS per connection | open | {base_name} ÷ it | errors | note |")
        print("|---|---:|---:|---:|---:|---|")
        base = med(b, "server_rss_per_connection")
    else:
        unit = UNIT.get(mode, "unit")
        print(f"| server | rate /s | p50 µs | p99 µs | server CPU | per server CPU-s "
              f"| {base_name} ÷ it: rate | {base_name} ÷ it: per CPU-s | user µs / {unit} "
              f"| system µs / {unit} | system calls / {unit} | load gen CPU | errors | note |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        base = (med(b, "handshakes_per_s" if mode == "handshake" else "messages_per_s"),
                med(b, "work_per_server_cpu_s"))
    for server, runs in results.items():
        notes = [f"FAILED: {f}" for f in failures[server]]
        notes += [f"FAILED: {x['failure']}" for x in runs if x.get("failure")]
        errors = sum(x["errors"]["total"] for x in runs)
        if any(x.get("nofile_capped") for x in runs):
            notes.append(f"capped at {runs[0]['connections']} connections by RLIMIT_NOFILE")
        if not runs:
            print(f"| {server} | " + " | ".join(["-"] * (4 if mode == "idle" else 12)) + f" | {'; '.join(notes)} |")
            continue
        mine = server == base_name
        if mode == "idle":
            per = med(runs, "server_rss_per_connection")
            print(f"| {server} | {fmt(per)} | {fmt(med(runs, 'opened'))} | "
                  f"{'-' if mine else ratio(base, per)} | {errors} | {'; '.join(notes)} |")
            continue
        units = "handshakes" if mode == "handshake" else "messages"
        rate = med(runs, "handshakes_per_s" if mode == "handshake" else "messages_per_s")
        per = med(runs, "work_per_server_cpu_s")
        cpu, load_cpu = med(runs, "server_cpu_pct"), med(runs, "client_cpu_pct")
        if cpu is not None and cpu < 90:
            notes.append("load generator at its limit" if load_cpu is not None and load_cpu >= 90
                         else "neither process used a full core: a busy machine, or each waiting on the other")
        lat = lambda k: statistics.median(x["latency_us"][k] for x in runs)
        sc = syscalls.get((workload, server))
        print(f"| {server} | {fmt(rate)} | {fmt(lat('p50'))} | {fmt(lat('p99'))} | {fmt(cpu)} % | {fmt(per)} | "
              f"{'-' if mine else ratio(base[0], rate)} | {'-' if mine else ratio(base[1], per)} | "
              f"{fmt(per_unit_us(runs, 'server_user_s', units), 2)} | "
              f"{fmt(per_unit_us(runs, 'server_system_s', units), 2)} | {fmt(sc, 3)} | "
              f"{fmt(load_cpu)} % | {errors} | {'; '.join(notes)} |")
    print()
PY
}

if [ "${1:-}" = --table ]; then
  print_tables "${2:?usage: side_by_side.sh --table RESULTS.jsonl}"
  exit
fi

BUILD=${BUILD:-$root/build/release}
WINDLASS_ECHO=${WINDLASS_ECHO:-$BUILD/examples/echo/windlass-echo}
WINDLASS_CHAT=${WINDLASS_CHAT:-$BUILD/examples/chat/windlass-chat}
LOAD=${LOAD:-$BUILD/bench/load/windlass-load}
IO_PROBE=${IO_PROBE:-$BUILD/tests/windlass-io-probe}
SYSCALLS=${SYSCALLS:-1}
PEERS_DIR=${PEERS_DIR:-$BUILD/bench/peers}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SERVER_NOFILE=${SERVER_NOFILE:-20000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
OUT=${OUT:-$(mktemp -d /tmp/windlass-side-by-side.XXXXXX)}
UWS_PORT=${UWS_PORT:-9001}
UWS_CHAT_PORT=${UWS_CHAT_PORT:-$((UWS_PORT + 1))}
if [ -z "${WORKLOADS:-}" ]; then
  WORKLOADS="100x20 1000x20 100x16384 1000x16384"
  [ "${EXTRA:-1}" = 0 ] || WORKLOADS="idle $WORKLOADS handshake"
  WORKLOADS+=" fanout100x1 fanout100x32 fanout1000x1 fanout1000x32 fanout10000x1 fanout10000x32"
  WORKLOADS+=" fanout1000@1000 fanout5000@100 fanout10000@100"
fi

die() { echo "side_by_side: $*" >&2; exit 1; }
say() { echo "side_by_side: $*" >&2; }

# Whether a server can run here; if not, prints why.
unavailable() {
  case $1 in
    windlass) [ -x "$WINDLASS_ECHO" ] && [ -x "$WINDLASS_CHAT" ] ||
                echo "no $WINDLASS_ECHO or $WINDLASS_CHAT (run 'make build', or set BUILD)" ;;
    windlass-io_uring)
      if ! [ -x "$WINDLASS_ECHO" ] || ! [ -x "$WINDLASS_CHAT" ]; then
        echo "no $WINDLASS_ECHO or $WINDLASS_CHAT (run 'make build', or set BUILD)"
      elif [ -x "$IO_PROBE" ] && ! "$IO_PROBE" >/dev/null; then
        "$IO_PROBE"
      fi ;;
    windlass-baseline) [ -n "${BASELINE_BUILD:-}" ] && [ -x "$BASELINE_BUILD/examples/echo/windlass-echo" ] &&
                         [ -x "$BASELINE_BUILD/examples/chat/windlass-chat" ] ||
                         echo "set BASELINE_BUILD to another windlass build directory" ;;
    node-ws) command -v node >/dev/null && [ -d "$root/node_modules/ws" ] ||
               echo "needs node and $root/node_modules/ws (scripts/install-deps.sh --with-test)" ;;
    beast | websocketpp) [ -x "$PEERS_DIR/windlass-peer-$1" ] ||
                           echo "no $PEERS_DIR/windlass-peer-$1 (is its library installed? see bench/peers/README.md)" ;;
    uws) [ -n "${UWS_ECHO_BIN:-}" ] && [ -x "$UWS_ECHO_BIN" ] ||
           echo "set UWS_ECHO_BIN to a uWebSockets EchoServer binary you built" ;;
    *) echo "unknown server (known: windlass windlass-io_uring windlass-baseline node-ws beast websocketpp uws)" ;;
  esac
}

if [ -n "${SERVERS:-}" ]; then
  read -ra servers <<<"$SERVERS"
  for s in "${servers[@]}"; do
    why=$(unavailable "$s")
    [ -z "$why" ] || die "$s: $why"
  done
else
  servers=()
  for s in windlass windlass-io_uring windlass-baseline node-ws beast websocketpp uws; do
    why=$(unavailable "$s")
    if [ -z "$why" ]; then servers+=("$s"); elif [ "$s" = windlass ]; then die "windlass: $why"; else say "leaving out $s: $why"; fi
  done
fi
[ -x "$LOAD" ] || die "no load generator at $LOAD (run 'make build', or set BUILD or LOAD)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
mkdir -p "$OUT"

declare -A pid_of port_of dead
cleanup() {
  for pid in "${pid_of[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts server $1 in mode $2 (echo or chat), pinned and with SERVER_NOFILE
# open files; sets pid_of and port_of. Every server but uWebSockets picks a
# free port and prints "listening on 127.0.0.1:PORT".
start_server() {
  local name=$1 mode=$2 cmd log="$OUT/$1.$2.log"
  case $name in
    windlass | windlass-io_uring | windlass-baseline)
      local b=$BUILD
      [ "$name" = windlass-baseline ] && b=$BASELINE_BUILD
      if [ "$name" != windlass-baseline ]; then
        if [ "$mode" = echo ]; then cmd=("$WINDLASS_ECHO"); else cmd=("$WINDLASS_CHAT" --compression off); fi
        if [ "$name" = windlass ]; then cmd+=(--io epoll); else cmd+=(--io io_uring); fi
      elif [ "$mode" = echo ]; then
        cmd=("$b/examples/echo/windlass-echo")
      else
        cmd=("$b/examples/chat/windlass-chat" --compression off)
      fi
      # Its default cap of 10,000 connections would refuse the publisher of
      # fanout10000xK with 503; the peers have no cap at all.
      # shellcheck disable=SC2206 # WINDLASS_ARGS is a list of words
      cmd+=(--host 127.0.0.1 --port 0 --threads 1 --max-connections "$SERVER_NOFILE" ${WINDLASS_ARGS:-}) ;;
    node-ws) cmd=(node "$root/bench/peers/ws_server.mjs" 0 "$mode") ;;
    beast | websocketpp) cmd=("$PEERS_DIR/windlass-peer-$name" 0 "$mode") ;;
    uws)
      local p=$UWS_PORT
      [ "$mode" = chat ] && p=$UWS_CHAT_PORT
      port_accepts "$p" && die "port $p (uWebSockets) is already in use"
      if [ "$mode" = echo ]; then cmd=("$UWS_ECHO_BIN"); else cmd=("$UWS_CHAT_BIN"); fi ;;
  esac
  # taskset and bash exec into the server, so $! is the server's own pid.
  # shellcheck disable=SC2016 # expanded by the inner bash
  taskset -c "$SERVER_CPU" bash -c 'ulimit -n "$0" 2>/dev/null || ulimit -n hard; exec "$@"' \
    "$SERVER_NOFILE" "${cmd[@]}" >"$log" 2>&1 &
  pid_of[$name]=$!
  dead[$name]=
  for _ in $(seq 150); do
    if [ "$name" = uws ]; then
      local p=$UWS_PORT
      [ "$mode" = chat ] && p=$UWS_CHAT_PORT
      port_accepts "$p" && port_of[$name]=$p && return
    else
      port_of[$name]=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
      [ -n "${port_of[$name]}" ] && return
    fi
    kill -0 "${pid_of[$name]}" 2>/dev/null || die "$name ($mode) exited: $(tail -5 "$log")"
    sleep 0.1
  done
  die "$name ($mode) was not listening within 15 s: $(tail -5 "$log")"
}

stop_server() {
  local pid=${pid_of[$1]}
  unset "pid_of[$1]"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null && say "$1 ignored SIGTERM for 10 s: killed"
  wait "$pid" 2>/dev/null || true
}

# One run of the load generator against server $1, labelled $2; its JSON
# line goes to results.jsonl with the server and workload names. The load
# generator reads the server's CPU time from /proc/PID/stat at the start and
# end of its measured window (--server-pid), so connecting and warmup are
# not counted. A server that dies is left out of the rest of its phase.
run_load() {
  local server=$1 label=$2 json failed= pass=${PASS:-timed}
  shift 2
  [ -z "${dead[$server]}" ] || return 0
  json=$(timeout $((DURATION + WARMUP + 180)) taskset -c "$LOAD_CPU" "$LOAD" "$@" --port "${port_of[$server]}" \
           --server-pid "${pid_of[$server]}" --json --quiet) || say "$server, $label: the load generator reported errors"
  if ! kill -0 "${pid_of[$server]}" 2>/dev/null; then
    failed="the server died"
    dead[$server]=1
  elif [[ $json != "{"* ]]; then
    failed="no result from the load generator"
  fi
  if [ -n "$failed" ]; then
    say "$server, $label: $failed"
    printf '{"server":"%s","workload":"%s","pass":"%s","failed":"%s"}\n' "$server" "$label" "$pass" "$failed" \
      >>"$OUT/results.jsonl"
  else
    printf '{"server":"%s","workload":"%s","pass":"%s","result":%s}\n' "$server" "$label" "$pass" "$json" \
      >>"$OUT/results.jsonl"
  fi
}

# Runs workload $1 (label) REPEATS times on every server in $servers_now,
# interleaved; the rest of the arguments go to the load generator.
interleaved() {
  local label=$1 rep server
  shift
  for rep in $(seq "$REPEATS"); do
    for server in "${servers_now[@]}"; do
      say "$label: run $rep/$REPEATS on $server"
      run_load "$server" "$label" "$@" --duration "$DURATION" --warmup "$WARMUP"
    done
  done
  if [ "$SYSCALLS" = 1 ]; then
    for server in "${servers_now[@]}"; do
      say "$label: counting $server's system calls"
      PASS=syscalls run_load "$server" "$label" "$@" --duration "$DURATION" --warmup "$WARMUP" --count-syscalls
    done
  fi
}

read -ra workloads <<<"$WORKLOADS"
idle=0 echo_like=() fanouts=()
for w in "${workloads[@]}"; do
  case $w in
    idle) idle=1 ;;
    handshake | [0-9]*x[0-9]*) echo_like+=("$w") ;;
    fanout[0-9]*x[0-9]* | fanout[0-9]*@[0-9]*) fanouts+=("$w") ;;
    *) die "unknown workload '$w' (idle, CONNECTIONSxBYTES, handshake, fanoutSUBSCRIBERSxBURST, fanoutSUBSCRIBERS@RATE)" ;;
  esac
done
if [ "${#fanouts[@]}" -gt 0 ] && ! "$LOAD" --help 2>&1 | grep -q fanout; then
  say "skipping fan-out: $LOAD has no fanout mode (windlass-load --help)"
  fanouts=()
fi

say "servers: ${servers[*]}; workloads: $WORKLOADS; ${DURATION}s + ${WARMUP}s warmup, $REPEATS runs each"
say "raw results in $OUT/results.jsonl; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

# Idle memory first, on servers started afresh for every run: memory an
# allocator kept from earlier runs would hide the cost of new connections.
if [ "$idle" = 1 ]; then
  for rep in $(seq "$REPEATS"); do
    for server in "${servers[@]}"; do
      say "idle $IDLE_CONNECTIONS conns: run $rep/$REPEATS on $server (fresh)"
      start_server "$server" echo
      run_load "$server" "idle $IDLE_CONNECTIONS conns" idle --connections "$IDLE_CONNECTIONS" --duration 3
      stop_server "$server"
    done
  done
fi

if [ "${#echo_like[@]}" -gt 0 ]; then
  servers_now=("${servers[@]}")
  for server in "${servers_now[@]}"; do start_server "$server" echo; done
  for w in "${echo_like[@]}"; do
    if [ "$w" = handshake ]; then
      interleaved "handshake 50 concurrent" handshake --connections 50
    else
      interleaved "echo ${w%x*} conns ${w#*x} B" echo --connections "${w%x*}" --size "${w#*x}"
    fi
  done
  for server in "${servers_now[@]}"; do stop_server "$server"; done
fi

if [ "${#fanouts[@]}" -gt 0 ]; then
  servers_now=()
  for server in "${servers[@]}"; do
    if [ "$server" = uws ] && { [ -z "${UWS_CHAT_BIN:-}" ] || [ ! -x "$UWS_CHAT_BIN" ]; }; then
      say "uws sits out fan-out: no UWS_CHAT_BIN"
    else
      servers_now+=("$server")
    fi
  done
  for server in "${servers_now[@]}"; do start_server "$server" chat; done
  for w in "${fanouts[@]}"; do
    n=${w#fanout}
    if [[ $w == *@* ]]; then
      n=${n%@*}
      r=${w#*@}
      interleaved "fanout $n subs at $r msg/s" fanout --connections "$n" --rate "$r" --size 32
    else
      n=${n%x*}
      k=${w#*x}
      interleaved "fanout $n subs burst $k" fanout --connections "$n" --burst "$k" --size 32
    fi
  done
  for server in "${servers_now[@]}"; do stop_server "$server"; done
fi

say "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
print_tables "$OUT/results.jsonl"
