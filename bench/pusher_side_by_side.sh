#!/usr/bin/env bash
# Side by side for the Pusher protocol: windlass-server's channels hub and,
# when you give the command that starts it, Soketi, under the same load
# generator (windlass-load pusher and pusher-idle). Each server runs on one
# core (SERVER_CPU), the load generator on another (LOAD_CPU); the runs of a
# workload are interleaved across servers (A B A B ...), and each workload
# gets a markdown table of medians with windlass's ratio to every peer.
#
#   bench/pusher_side_by_side.sh                      (windlass alone)
#   SOKETI_CMD='/path/to/rig/soketi/start-soketi.sh' bench/pusher_side_by_side.sh
#   bench/pusher_side_by_side.sh --table OUT/results.jsonl   (the tables of an earlier run)
#
# A sibling of side_by_side.sh rather than more of it: other servers (a
# configured windlass-server, not the examples; Soketi, not the echo/chat
# peers), another protocol and other columns (API publishes, deliveries,
# the API connections each publish needed).
#
# Servers (SERVERS, default: windlass, and soketi when SOKETI_CMD is set):
#   windlass   BUILD/src/server/windlass-server with a config written to OUT:
#              the demo app (app-id / app-key / app-secret), one event loop
#              (threads = 1: it is pinned to one core), max_connections
#              15000, no access log, log level warn
#   soketi     whatever SOKETI_CMD says, run by bash with SOKETI_PORT in its
#              environment (default 6001): it must start a Pusher server on
#              127.0.0.1:SOKETI_PORT with the same demo app, in the
#              foreground or in the background (Soketi's rig script
#              backgrounds it). We carry none of Soketi's code and no step
#              that installs it. The server's pid is the one listening on
#              the port (ss -ltnp), or the one in SOKETI_PID_FILE if set; it
#              must already be free (uWebSockets.js binds with SO_REUSEPORT:
#              a second server on a busy port would silently share it). It is
#              stopped with SIGTERM (Soketi drains for up to ~10 s).
#
# Workloads (WORKLOADS, default: idle rate1000x20x1 rate1000x20x4
# rate10000x2x1 rate10000x4x4 max1000 max10000):
#   idle          memory per idle connection subscribed to one public channel:
#                 IDLE_CONNECTIONS (10000) held, on a freshly started server
#                 each run, first of all
#   rateNxRxB     N subscribers of one channel; R API publishes a second in
#                 bursts of B, over B API connections (so a burst's calls are
#                 in flight together); a steady load Soketi can keep
#   maxN          N subscribers; unthrottled: MAX_LANES (8) API connections,
#                 each with a call in flight, at most WINDOW (64) publishes
#                 not yet received by every subscriber
#   Every event carries SIZE (100) bytes of data (JSON text with its sequence
#   numbers and send time) and is checked by every subscriber.
#
# Other settings (environment, all optional):
#   DURATION WARMUP REPEATS  seconds measured, seconds of warmup, runs per
#                server and workload (defaults 5, 1, 3; medians reported)
#   SERVER_CPU LOAD_CPU      cores to pin to (defaults 0 and 1)
#   SERVER_NOFILE            servers' open-file limit (default 20000; the load
#                            generator raises its own soft limit to the hard one)
#   BUILD                    build directory (default build/release); WINDLASS_SERVER
#                            and LOAD default to their places in it
#   OUT                      directory for results.jsonl, the servers' logs and
#                            windlass's config (default: a new temp dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

# The tables: per workload, per server, the median of each column over the
# repeats.
print_tables() {
  "$PYTHON" - "$1" <<'PY'
import json, statistics, sys
from collections import OrderedDict

rows = OrderedDict()
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["workload"], OrderedDict()).setdefault(r["server"], []).append(r)

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"

for workload, servers in rows.items():
    results = {s: [x["result"] for x in runs if x.get("result")] for s, runs in servers.items()}
    failures = {s: [x["failed"] for x in runs if x.get("failed")] for s, runs in servers.items()}
    mode = next((r[0]["mode"] for r in results.values() if r), None)
    print(f"#### {workload}")
    print()
    if mode == "pusher-idle":
        print("| server | bytes of VmRSS per subscribed connection | subscribed | windlass ÷ it | errors | note |")
        print("|---|---:|---:|---:|---:|---|")
        base = med(x.get("server_rss_per_connection") for x in results.get("windlass", []))
    else:
        print("| server | API publishes/s (due) | deliveries/s | p50 µs | p99 µs | server CPU "
              "| deliveries per server CPU-s | windlass ÷ it | API connections per publish "
              "| load gen CPU | errors | note |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        base = med(x.get("work_per_server_cpu_s") for x in results.get("windlass", []))
    for server, runs in results.items():
        notes = [f"FAILED: {f}" for f in failures[server]]
        notes += [f"FAILED: {x['failure']}" for x in runs if x.get("failure")]
        errors = sum(x["errors"]["total"] for x in runs)
        if any(x.get("nofile_capped") for x in runs):
            notes.append(f"capped at {runs[0]['connections']} connections by RLIMIT_NOFILE")
        mine = server == "windlass"
        if not runs:
            print(f"| {server} | " + " | ".join(["-"] * (4 if mode == "pusher-idle" else 11))
                  + f" | {'; '.join(notes)} |")
            continue
        if mode == "pusher-idle":
            per = med(x.get("server_rss_per_connection") for x in runs)
            close = med(x["pusher"].get("close_seconds") for x in runs)
            if close is not None and close > 5:
                notes.append(f"took {close:.0f} s to close the subscribers")
            print(f"| {server} | {fmt(per)} | {fmt(med(x['pusher']['subscribers'] for x in runs))} | "
                  f"{'-' if mine else ratio(base, per)} | {errors} | {'; '.join(notes)} |")
            continue
        p = [x["pusher"] for x in runs]
        secs = [x["seconds"] for x in runs]
        publishes = med(q["publishes_per_s"] for q in p)
        due = med(q["publishes_due"] / s if s else None for q, s in zip(p, secs))
        per = med(x.get("work_per_server_cpu_s") for x in runs)
        cpu, load_cpu = med(x.get("server_cpu_pct") for x in runs), med(x.get("client_cpu_pct") for x in runs)
        connects = med(q["api_connects_per_publish"] for q in p)
        # A burst due at the window's last instant is sent, not yet answered:
        # behind by more than a burst is what "not kept" means.
        behind = med(q["publishes_due"] - q["publishes_sent"] for q in p)
        if p[0]["rate"] > 0 and behind > p[0]["burst"]:
            notes.append(f"did not keep the rate ({fmt(behind)} publishes behind)")
        close = med(q.get("close_seconds") for q in p)
        if close is not None and close > 5:
            notes.append(f"took {close:.0f} s to close the subscribers")
        if cpu is not None and cpu < 90 and p[0]["rate"] == 0:
            notes.append("load generator at its limit" if load_cpu is not None and load_cpu >= 90
                         else "neither process used a full core: each waiting on the other, or a busy machine")
        lat = lambda k: med(x["latency_us"][k] for x in runs)
        rate_text = fmt(publishes, 1) + (f" ({fmt(due, 1)})" if p[0]["rate"] > 0 else "")
        print(f"| {server} | {rate_text} | {fmt(med(x['messages_per_s'] for x in runs))} | {fmt(lat('p50'))} | "
              f"{fmt(lat('p99'))} | {fmt(cpu)} % | {fmt(per)} | {'-' if mine else ratio(base, per)} | "
              f"{fmt(connects, 2)} | {fmt(load_cpu)} % | {errors} | {'; '.join(notes)} |")
    print()
PY
}

if [ "${1:-}" = --table ]; then
  print_tables "${2:?usage: pusher_side_by_side.sh --table RESULTS.jsonl}"
  exit
fi

BUILD=${BUILD:-$root/build/release}
WINDLASS_SERVER=${WINDLASS_SERVER:-$BUILD/src/server/windlass-server}
LOAD=${LOAD:-$BUILD/bench/load/windlass-load}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPEATS=${REPEATS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SERVER_NOFILE=${SERVER_NOFILE:-20000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
MAX_LANES=${MAX_LANES:-8}
WINDOW=${WINDOW:-64}
SIZE=${SIZE:-100}
SOKETI_PORT=${SOKETI_PORT:-6001}
WORKLOADS=${WORKLOADS:-idle rate1000x20x1 rate1000x20x4 rate10000x2x1 rate10000x4x4 max1000 max10000}
OUT=${OUT:-$(mktemp -d /tmp/windlass-pusher-side-by-side.XXXXXX)}

die() { echo "pusher_side_by_side: $*" >&2; exit 1; }
say() { echo "pusher_side_by_side: $*" >&2; }

if [ -n "${SERVERS:-}" ]; then
  read -ra servers <<<"$SERVERS"
else
  servers=(windlass)
  if [ -n "${SOKETI_CMD:-}" ]; then servers+=(soketi); else say "leaving out soketi: set SOKETI_CMD to the command that starts it"; fi
fi
for s in "${servers[@]}"; do
  case $s in
    windlass) [ -x "$WINDLASS_SERVER" ] || die "no $WINDLASS_SERVER (build the windlass-server target, or set BUILD)" ;;
    soketi) [ -n "${SOKETI_CMD:-}" ] || die "soketi: set SOKETI_CMD to the command that starts it" ;;
    *) die "unknown server '$s' (windlass, soketi)" ;;
  esac
done
[ -x "$LOAD" ] || die "no load generator at $LOAD (build the windlass-load target, or set BUILD or LOAD)"
[[ $("$LOAD" --help) == *pusher-idle* ]] || die "$LOAD has no pusher modes"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v ss >/dev/null || [ -n "${SOKETI_PID_FILE:-}" ] || die "ss not found (iproute2); or set SOKETI_PID_FILE"
mkdir -p "$OUT"

# windlass-server's config: the demo app, one loop, room for 10,000
# subscribers and the API connections.
cat >"$OUT/windlass.toml" <<EOF
[server]
host = "127.0.0.1"
port = 0
threads = 1
max_connections = 15000
drain_delay = "0s"
shutdown_timeout = "5s"

[log]
level = "warn"
access = false

[[app]]
id = "app-id"
key = "app-key"
secret = "app-secret"
EOF

declare -A pid_of port_of wrapper_of dead
cleanup() {
  for s in "${!pid_of[@]}"; do kill "${pid_of[$s]}" 2>/dev/null || true; done
  for s in "${!wrapper_of[@]}"; do kill "${wrapper_of[$s]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

listener_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' | head -1
}

# Starts server $1 pinned to SERVER_CPU with SERVER_NOFILE open files; sets
# pid_of (the process listening) and port_of.
start_server() {
  local name=$1 log="$OUT/$1.log"
  case $name in
    windlass)
      # taskset and bash exec into the server, so $! is the server's own pid.
      # shellcheck disable=SC2016 # expanded by the inner bash
      taskset -c "$SERVER_CPU" bash -c 'ulimit -n "$0" 2>/dev/null || ulimit -n hard; exec "$@"' \
        "$SERVER_NOFILE" "$WINDLASS_SERVER" --config "$OUT/windlass.toml" >"$log" 2>&1 &
      pid_of[$name]=$!
      for _ in $(seq 150); do
        port_of[$name]=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
        [ -n "${port_of[$name]}" ] && break
        kill -0 "${pid_of[$name]}" 2>/dev/null || die "windlass-server exited: $(tail -5 "$log")"
        sleep 0.1
      done
      [ -n "${port_of[$name]}" ] || die "windlass-server was not listening within 15 s: $(tail -5 "$log")"
      ;;
    soketi)
      port_accepts "$SOKETI_PORT" && die "port $SOKETI_PORT is already in use (another Soketi?): set SOKETI_PORT"
      [ -z "${SOKETI_PID_FILE:-}" ] || rm -f "$SOKETI_PID_FILE"
      # shellcheck disable=SC2016 # expanded by the inner bash
      SOKETI_PORT=$SOKETI_PORT taskset -c "$SERVER_CPU" \
        bash -c 'ulimit -n "$0" 2>/dev/null || ulimit -n hard; eval "$1"' "$SERVER_NOFILE" "$SOKETI_CMD" \
        >"$log" 2>&1 &
      wrapper_of[$name]=$!
      port_of[$name]=$SOKETI_PORT
      local pid=
      for _ in $(seq 300); do
        if port_accepts "$SOKETI_PORT"; then
          if [ -n "${SOKETI_PID_FILE:-}" ]; then pid=$(cat "$SOKETI_PID_FILE" 2>/dev/null || true); else pid=$(listener_pid "$SOKETI_PORT"); fi
          [ -n "$pid" ] && break
        fi
        sleep 0.1
      done
      [ -n "$pid" ] || die "soketi was not listening on $SOKETI_PORT within 30 s: $(tail -5 "$log")"
      pid_of[$name]=$pid
      local mask
      mask=$(taskset -pc "$pid" 2>/dev/null | sed 's/.*: //')
      [ "$mask" = "$SERVER_CPU" ] || say "warning: soketi (pid $pid) may run on CPUs $mask, not $SERVER_CPU"
      ;;
  esac
  dead[$name]=
}

stop_server() {
  local pid=${pid_of[$1]}
  unset "pid_of[$1]"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null && say "$1 ignored SIGTERM for 20 s: killed"
  # Only our own children can be waited for: windlass-server itself, and the
  # shell that ran SOKETI_CMD (Soketi's rig script has exited long since).
  if [ -n "${wrapper_of[$1]:-}" ]; then
    kill "${wrapper_of[$1]}" 2>/dev/null || true
    wait "${wrapper_of[$1]}" 2>/dev/null || true
    unset "wrapper_of[$1]"
  else
    wait "$pid" 2>/dev/null || true
  fi
  # A port still held (TIME_WAIT does not count: ss -l lists listeners only)
  # would be shared with the next start.
  if [ "$1" = soketi ]; then
    for _ in $(seq 100); do port_accepts "$SOKETI_PORT" || break; sleep 0.1; done
  fi
}

# One run of the load generator against server $1, labelled $2; its JSON
# line goes to results.jsonl with the server and workload names.
run_load() {
  local server=$1 label=$2 json failed=
  shift 2
  [ -z "${dead[$server]}" ] || return 0
  json=$(timeout $((${DURATION%.*} + ${WARMUP%.*} + 240)) taskset -c "$LOAD_CPU" "$LOAD" "$@" --port "${port_of[$server]}" \
           --server-pid "${pid_of[$server]}" --size "$SIZE" --json --quiet) ||
    say "$server, $label: the load generator reported errors"
  if ! kill -0 "${pid_of[$server]}" 2>/dev/null; then
    failed="the server died"
    dead[$server]=1
  elif [[ $json != "{"* ]]; then
    failed="no result from the load generator"
  fi
  if [ -n "$failed" ]; then
    say "$server, $label: $failed"
    printf '{"server":"%s","workload":"%s","failed":"%s"}\n' "$server" "$label" "$failed" >>"$OUT/results.jsonl"
  else
    printf '{"server":"%s","workload":"%s","result":%s}\n' "$server" "$label" "$json" >>"$OUT/results.jsonl"
  fi
}

read -ra workloads <<<"$WORKLOADS"
idle=0 publish=()
for w in "${workloads[@]}"; do
  case $w in
    idle) idle=1 ;;
    rate[0-9]*x[0-9]*x[0-9]* | max[0-9]*) publish+=("$w") ;;
    *) die "unknown workload '$w' (idle, rateNxRxB, maxN)" ;;
  esac
done

say "servers: ${servers[*]}; workloads: $WORKLOADS; ${DURATION}s + ${WARMUP}s warmup, $REPEATS runs each"
say "raw results in $OUT/results.jsonl; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

# Idle memory first, on servers started afresh for every run: memory an
# allocator kept from earlier runs would hide the cost of new connections.
if [ "$idle" = 1 ]; then
  for rep in $(seq "$REPEATS"); do
    for server in "${servers[@]}"; do
      say "idle $IDLE_CONNECTIONS subscribed: run $rep/$REPEATS on $server (fresh)"
      start_server "$server"
      run_load "$server" "idle $IDLE_CONNECTIONS subscribed conns" pusher-idle --connections "$IDLE_CONNECTIONS" \
        --duration 3
      stop_server "$server"
    done
  done
fi

if [ "${#publish[@]}" -gt 0 ]; then
  for server in "${servers[@]}"; do start_server "$server"; done
  for w in "${publish[@]}"; do
    if [[ $w == max* ]]; then
      n=${w#max}
      label="api max $n subs ($MAX_LANES API conns, window $WINDOW)"
      args=(pusher --connections "$n" --api-connections "$MAX_LANES" --window "$WINDOW")
    else
      IFS=x read -r n r b <<<"${w#rate}"
      label="api rate $n subs $r/s burst $b"
      args=(pusher --connections "$n" --rate "$r" --burst "$b" --api-connections "$b")
    fi
    for rep in $(seq "$REPEATS"); do
      for server in "${servers[@]}"; do
        say "$label: run $rep/$REPEATS on $server"
        run_load "$server" "$label" "${args[@]}" --duration "$DURATION" --warmup "$WARMUP"
      done
    done
  done
  for server in "${servers[@]}"; do stop_server "$server"; done
fi

say "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
print_tables "$OUT/results.jsonl"
