#!/usr/bin/env bash
# Cross-node fan-out (issue 11): three windlass-server nodes and one Redis
# of the benchmark's own; the subscribers of one public channel spread
# evenly over the three nodes; signed HTTP API events published to node 1
# at a fixed rate. Reports deliveries per second, publish-to-receipt
# latency (p50, p99), loss, and what went through Redis per publish,
# measured from Redis itself: PUBLISH commands (INFO commandstats), the
# subscribers of the channel's Redis topic (PUBSUB NUMSUB: one per node
# with subscribers, whatever the number of clients) and Redis's output
# bytes (INFO stats total_net_output_bytes), beside the nodes' own
# windlass_redis_published_total / windlass_redis_received_total.
#
#   bench/cluster_fanout.sh
#   WORKLOADS="1000x50 10000x5" REPEATS=5 NICE=-15 bench/cluster_fanout.sh
#   bench/cluster_fanout.sh --table OUT/results.jsonl   (the table of an earlier run)
#
# One windlass-load process holds every subscriber (client i connects to
# node (i mod 3) + 1: --spread) and the publisher's API connection to node
# 1, so one clock times publish and receipt, and every subscriber checks
# that each event arrives once, in order and intact (a gap, a repeat or a
# publish not received everywhere within 10 s fails the run: "loss" is
# those errors, and must be 0).
#
# What it starts, all stopped on exit (also on failure or ^C):
#   redis-server  on a free loopback port (never the system service), no
#                 persistence, noeviction
#   3 nodes       BUILD/src/server/windlass-server, node ids 1-3, one event
#                 loop each (threads = 1), a [broker] prefix of this run's
#                 own (cluster-fanout-PID:), the demo app, log level warn
#   windlass-load pusher --port NODE1 --spread NODE1,NODE2,NODE3
#
# Pinning (2 cores here): Redis and the three nodes share SERVER_CPU (0),
# the load generator has LOAD_CPU (1) to itself; its cost per delivery is
# close to a node's, so it gets a core of its own.
#
# Workloads (WORKLOADS, default "1000x50 10000x5 1000x100 10000x10": 50,000
# and 100,000 deliveries a second): NxR is N subscribers,
# R API publishes a second (in bursts of BURST, default 1, over BURST API
# connections). Every event carries SIZE (100) bytes of data.
#
# Other settings (environment, all optional):
#   DURATION WARMUP REPEATS  seconds measured, seconds of warmup, runs per
#                            workload (defaults 10, 2, 3; medians reported)
#   SERVER_CPU LOAD_CPU      cores (defaults 0 and 1)
#   NOFILE                   soft open-file limit for everything started
#                            (default 20000; at most the hard limit)
#   NICE                     run everything started at this niceness, and
#                            give this session's autogroup the same (the
#                            kernel shares CPU between sessions first, so a
#                            plain nice does nothing against another
#                            session's build); restored on exit. Default 0;
#                            e.g. -15 on a machine busy with builds
#   WAIT_UNTIL               HH:MM (UTC): first wait while side_by_side.sh or
#                            pusher_side_by_side.sh runs, at most until then
#   BUILD                    build directory (default build/release);
#                            WINDLASS_SERVER and LOAD default to their places
#   REDIS_SERVER REDIS_CLI   default: redis-server, redis-cli from PATH
#   OUT                      directory for results.jsonl, logs and configs
#                            (default: a new temp dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

print_table() {
  "$PYTHON" - "$1" <<'PY'
import json, statistics, sys
from collections import OrderedDict

runs = OrderedDict()
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault(r["workload"], []).append(r)

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"

print("| subscribers (per node) | API publishes/s (due) | deliveries/s | p50 µs | p99 µs | lost "
      "| Redis PUBLISH per publish | Redis subscribers of the topic | Redis bytes out per publish "
      "| received per publish on nodes 1 / 2 / 3 | nodes + Redis CPU | deliveries per nodes + Redis CPU-s "
      "| load gen CPU | errors | runs | note |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for workload, rs in runs.items():
    ok = [r for r in rs if r.get("result")]
    notes = [f"FAILED: {r['failed']}" for r in rs if r.get("failed")]
    notes += [f"FAILED: {r['result']['failure']}" for r in ok if r["result"].get("failure")]
    if not ok:
        print(f"| {workload} | " + " | ".join(["-"] * 13) + f" | {len(rs)} | {'; '.join(notes)} |")
        continue
    res = [r["result"] for r in ok]
    p = [x["pusher"] for x in res]
    if any(x.get("nofile_capped") for x in res):
        notes.append(f"capped at {res[0]['connections']} connections by RLIMIT_NOFILE")
    behind = med(q["publishes_due"] - q["publishes_sent"] for q in p)
    if behind is not None and behind > p[0]["burst"]:
        notes.append(f"did not keep the rate ({fmt(behind)} publishes behind)")
    subs = med(q["subscribers"] for q in p)
    spread = res[0].get("spread") or []
    per_node = "/".join(str(s["connections"]) for s in spread)
    due = med(q["publishes_due"] / x["seconds"] if x["seconds"] else None for q, x in zip(p, res))
    lost = sum(x["errors"]["delivery"] for x in res)
    errors = sum(x["errors"]["total"] for x in res)
    red = [r["redis"] for r in ok]
    recv = [med(r["nodes"][i]["received_per_publish"] for r in ok) for i in range(3)]
    cpu = med(x.get("server_cpu_pct") for x in res)
    load = med(r.get("loadavg") for r in ok)
    if load is not None and load > 2.5:
        notes.append(f"machine busy: load average {load:.1f} on 2 cores")
    print(f"| {fmt(subs)} ({per_node}) | {fmt(med(q['publishes_per_s'] for q in p), 1)} ({fmt(due, 1)}) "
          f"| {fmt(med(x['messages_per_s'] for x in res))} | {fmt(med(x['latency_us']['p50'] for x in res))} "
          f"| {fmt(med(x['latency_us']['p99'] for x in res))} | {lost} "
          f"| {fmt(med(r['publish_per_publish'] for r in red), 3)} "
          f"| {fmt(med(r['topic_subscribers'] for r in red))} "
          f"| {fmt(med(r['out_bytes_per_publish'] for r in red))} "
          f"| {' / '.join(fmt(v, 2) for v in recv)} | {fmt(cpu)} % "
          f"| {fmt(med(x.get('work_per_server_cpu_s') for x in res))} "
          f"| {fmt(med(x.get('client_cpu_pct') for x in res))} % | {errors} | {len(ok)} | {'; '.join(notes)} |")
print()
print("CPU, nodes 1 / 2 / 3 / Redis (% of a core, medians):")
for workload, rs in runs.items():
    each = [r["result"].get("server_cpu_s_each") for r in rs if r.get("result")]
    each = [(e, r["result"]["seconds"]) for e, r in zip(each, [r for r in rs if r.get("result")]) if e]
    if each:
        cols = [med(100 * e[i] / s for e, s in each) for i in range(len(each[0][0]))]
        print(f"- {workload}: " + " / ".join(f"{fmt(c)} %" for c in cols))

# What must hold in every run: no failure and no error (so nothing lost),
# one PUBLISH per API publish, and the topic subscribed once per node.
problems = []
for workload, rs in runs.items():
    for k, r in enumerate(rs, 1):
        where = f"{workload}, run {k}"
        if r.get("failed"):
            problems.append(f"{where}: {r['failed']}")
            continue
        x, red = r["result"], r["redis"]
        if x.get("failure"):
            problems.append(f"{where}: {x['failure']}")
        if x["errors"]["total"]:
            problems.append(f"{where}: {x['errors']['total']} errors ({x['errors']['delivery']} deliveries)")
        if red["publish_calls"] != red["publishes"]:
            problems.append(f"{where}: {red['publish_calls']} PUBLISH for {red['publishes']} API publishes")
        if red["topic_subscribers"] != len(r["nodes"]):
            problems.append(f"{where}: the topic had {red['topic_subscribers']} subscribers in Redis, "
                            f"not one per node ({len(r['nodes'])})")
if problems:
    print()
    print("CHECKS FAILED:")
    for p in problems:
        print(f"- {p}")
    sys.exit(1)
PY
}

if [ "${1:-}" = --table ]; then
  print_table "${2:?usage: cluster_fanout.sh --table RESULTS.jsonl}"
  exit
fi

BUILD=${BUILD:-$root/build/release}
WINDLASS_SERVER=${WINDLASS_SERVER:-$BUILD/src/server/windlass-server}
LOAD=${LOAD:-$BUILD/bench/load/windlass-load}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NOFILE=${NOFILE:-20000}
NICE=${NICE:-0}
SIZE=${SIZE:-100}
BURST=${BURST:-1}
WORKLOADS=${WORKLOADS:-1000x50 10000x5 1000x100 10000x10}
OUT=${OUT:-$(mktemp -d /tmp/windlass-cluster-fanout.XXXXXX)}
NODES=3
PREFIX="cluster-fanout-$$:"
APP_ID=app-id
CHANNEL=bench

die() { echo "cluster_fanout: $*" >&2; exit 1; }
say() { echo "cluster_fanout: $*" >&2; }

[ -x "$WINDLASS_SERVER" ] || die "no $WINDLASS_SERVER (build the windlass-server target, or set BUILD)"
[ -x "$LOAD" ] || die "no load generator at $LOAD (build the windlass-load target, or set BUILD or LOAD)"
[[ $("$LOAD" --help) == *--spread* ]] || die "$LOAD has no --spread (rebuild windlass-load)"
command -v "$REDIS_SERVER" >/dev/null || die "no $REDIS_SERVER (apt-get install redis-server; or set REDIS_SERVER)"
command -v "$REDIS_CLI" >/dev/null || die "no $REDIS_CLI (apt-get install redis-tools; or set REDIS_CLI)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v curl >/dev/null || die "curl not found"
read -ra workloads <<<"$WORKLOADS"
for w in "${workloads[@]}"; do [[ $w =~ ^[0-9]+x[0-9.]+$ ]] || die "unknown workload '$w' (NxR: N subscribers, R publishes/s)"; done
mkdir -p "$OUT"

declare -a node_pid node_port
redis_pid='' load_pid='' sampler='' autogroup_nice=''
cleanup() {
  local p
  for p in $load_pid $sampler; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${node_pid[@]}" $redis_pid; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=
    for p in "${node_pid[@]}" $redis_pid; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in "${node_pid[@]}" $redis_pid; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$autogroup_nice" ] || echo "$autogroup_nice" >/proc/$$/autogroup 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The open-file limit of everything started here (nodes, Redis, the load
# generator, which raises its own soft limit to the hard one anyway).
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$NOFILE" ]; then
  say "the hard open-file limit is $hard: NOFILE=$NOFILE lowered to it"
  NOFILE=$hard
fi
ulimit -Sn "$NOFILE"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE: not a number: $NICE"
# Everything started from here on inherits it (renice of this shell).
if [ "$NICE" != 0 ]; then
  renice -n "$NICE" -p $$ >/dev/null || die "renice -n $NICE failed (lowering it needs root)"
  if [ -w /proc/$$/autogroup ]; then
    autogroup_nice=$(sed -n 's/.* nice \(-\{0,1\}[0-9]*\)$/\1/p' /proc/$$/autogroup)
    echo "$NICE" >/proc/$$/autogroup || die "could not set the autogroup's nice to $NICE"
  fi
fi

if [ -n "${WAIT_UNTIL:-}" ]; then
  until_s=$(date -u -d "$WAIT_UNTIL" +%s) || die "WAIT_UNTIL: not a time: $WAIT_UNTIL"
  # The brackets keep pgrep from matching a command line that merely quotes the names.
  while others=$(pgrep -f '[s]ide_by_side\.sh|[p]usher_side_by_side\.sh' | tr '\n' ' '); do
    if [ "$(date -u +%s)" -ge "$until_s" ]; then
      say "other benchmarks still running at $WAIT_UNTIL UTC (pids ${others% }): measuring anyway"
      echo "{\"note\":\"other benchmarks were running: pids ${others% }\"}" >"$OUT/notes.json"
      break
    fi
    say "waiting: another benchmark is running (pids ${others% })"
    sleep 20
  done
fi


port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free loopback port: the kernel's pick for a bound socket, released at once.
free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rcli_raw() { "$REDIS_CLI" -h 127.0.0.1 -p "$redis_port" "$@"; }

# Redis: our own, pinned with the nodes; taskset and redis-server exec, so
# $! is Redis itself.
redis_port=$(free_port)
port_accepts "$redis_port" && die "port $redis_port is in use"
taskset -c "$SERVER_CPU" "$REDIS_SERVER" --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --maxmemory-policy noeviction --daemonize no --logfile "$OUT/redis.log" --dir "$OUT" \
  >"$OUT/redis.out" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
  [ "$(rcli_raw PING 2>/dev/null)" = PONG ] && break
  kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited: $(tail -5 "$OUT/redis.log" "$OUT/redis.out")"
  sleep 0.1
done
[ "$(rcli_raw PING 2>/dev/null)" = PONG ] || die "redis-server did not answer on $redis_port within 10 s"

for i in $(seq "$NODES"); do
  cat >"$OUT/node$i.toml" <<EOF
[server]
host = "127.0.0.1"
port = 0
threads = 1
node_id = $i
max_connections = 15000
drain_delay = "0s"
shutdown_timeout = "5s"

[log]
level = "warn"
access = false

[broker]
redis_url = "redis://127.0.0.1:$redis_port"
prefix = "$PREFIX"

[[app]]
id = "$APP_ID"
key = "app-key"
secret = "app-secret"
EOF
  taskset -c "$SERVER_CPU" "$WINDLASS_SERVER" --config "$OUT/node$i.toml" >"$OUT/node$i.log" 2>&1 &
  node_pid[i]=$!
done
for i in $(seq "$NODES"); do
  for _ in $(seq 150); do
    node_port[i]=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$OUT/node$i.log" | head -1)
    [ -n "${node_port[i]}" ] && break
    kill -0 "${node_pid[i]}" 2>/dev/null || die "node $i exited: $(tail -5 "$OUT/node$i.log")"
    sleep 0.1
  done
  [ -n "${node_port[i]}" ] || die "node $i was not listening within 15 s: $(tail -5 "$OUT/node$i.log")"
done

metric() {  # metric PORT NAME: its value in /metrics (unlabelled), or empty
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
# Joined: the bridge connected and the node's first heartbeat in Redis.
for i in $(seq "$NODES"); do
  for _ in $(seq 100); do
    [ "$(metric "${node_port[i]}" windlass_redis_connected)" = 1 ] &&
      [ "$(rcli_raw EXISTS "${PREFIX}node:$i:alive")" = 1 ] && break
    sleep 0.1
  done
  [ "$(rcli_raw EXISTS "${PREFIX}node:$i:alive")" = 1 ] || die "node $i did not join the cluster within 10 s"
done
say "redis on $redis_port (pid $redis_pid), nodes on ${node_port[*]} (pids ${node_pid[*]}), prefix $PREFIX"
say "pinned: redis and nodes on CPU $SERVER_CPU, windlass-load on CPU $LOAD_CPU; open files $(ulimit -Sn); nice $(nice), $(cut -d' ' -f2- /proc/$$/autogroup 2>/dev/null)"
say "workloads: $WORKLOADS; ${DURATION}s + ${WARMUP}s warmup, $REPEATS runs each; raw results in $OUT/results.jsonl"
say "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

topic="$PREFIX$APP_ID:$CHANNEL"
# Redis's counters and the nodes' as one JSON object.
snapshot() {
  local info nodes="" i
  info=$(rcli_raw INFO stats commandstats)
  # This reply leaves Redis after its counters were read: the next
  # snapshot's output bytes hold it, so it is taken off there ("$N\r\n...\r\n").
  local reply=$((${#info} + 10))
  info=$(tr -d '\r' <<<"$info")
  for i in $(seq "$NODES"); do
    nodes+="${nodes:+,}{\"published\":$(metric "${node_port[i]}" windlass_redis_published_total),"
    nodes+="\"received\":$(metric "${node_port[i]}" windlass_redis_received_total)}"
  done
  local publish commands out
  publish=$(sed -n 's/^cmdstat_publish:calls=\([0-9]*\),.*/\1/p' <<<"$info")
  commands=$(sed -n 's/^total_commands_processed:\([0-9]*\)$/\1/p' <<<"$info")
  out=$(sed -n 's/^total_net_output_bytes:\([0-9]*\)$/\1/p' <<<"$info")
  echo "{\"publish\":${publish:-0},\"commands\":${commands:-0},\"out_bytes\":${out:-0},\"reply\":$reply,\"nodes\":[$nodes]}"
}

servers_pids=$(IFS=,; echo "${node_pid[*]},$redis_pid")
spread=$(IFS=,; echo "${node_port[*]}")
for w in "${workloads[@]}"; do
  n=${w%x*} rate=${w#*x}
  label="$n subs, $rate/s"
  for rep in $(seq "$REPEATS"); do
    say "$label: run $rep/$REPEATS"
    before=$(snapshot)
    # The topic's subscribers in Redis, sampled while the run goes on (the
    # nodes unsubscribe when their last client leaves at the end).
    : >"$OUT/numsub"
    (while :; do rcli_raw PUBSUB NUMSUB "$topic" 2>/dev/null | sed -n 2p >>"$OUT/numsub"; sleep 0.5; done) &
    sampler=$!
    failed=
    # In the background, so that an interrupted run stops it too (cleanup).
    timeout $((${DURATION%.*} + ${WARMUP%.*} + 240)) taskset -c "$LOAD_CPU" "$LOAD" pusher \
      --port "${node_port[1]}" --spread "$spread" --connections "$n" --rate "$rate" --burst "$BURST" \
      --api-connections "$BURST" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" \
      --server-pid "$servers_pids" --json --quiet >"$OUT/run.json" 2>>"$OUT/load.log" &
    load_pid=$!
    wait "$load_pid" || say "$label: the load generator reported errors (see $OUT/load.log)"
    load_pid=
    json=$(cat "$OUT/run.json")
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    sampler=
    # Let the last echoes and heartbeats land before reading the counters.
    sleep 0.3
    after=$(snapshot)
    for i in $(seq "$NODES"); do kill -0 "${node_pid[i]}" 2>/dev/null || failed="node $i died"; done
    kill -0 "$redis_pid" 2>/dev/null || failed="redis died"
    [ -n "$failed" ] || [[ $json == "{"* ]] || failed="no result from the load generator"
    if [ -n "$failed" ]; then
      say "$label: $failed"
      printf '{"workload":"%s","failed":"%s"}\n' "$label" "$failed" >>"$OUT/results.jsonl"
      [[ $failed == *died* ]] && die "$failed: see $OUT"
      continue
    fi
    numsub=$(sort -n "$OUT/numsub" | tail -1)
    "$PYTHON" - "$label" "$json" "$before" "$after" "${numsub:-0}" "$(cut -d' ' -f1 /proc/loadavg)" \
      >>"$OUT/results.jsonl" <<'PY'
import json, sys
label, result, before, after = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
numsub, loadavg = int(sys.argv[5]), float(sys.argv[6])
# Every API publish of the run (probes and warmup included) against the
# counters over the whole run: heartbeats and the INFO calls themselves are
# in total_commands_processed and the output bytes, not in PUBLISH.
publishes = result["pusher"]["api_requests"]
d = lambda k: after[k] - before[k]
per = lambda v: v / publishes if publishes else None
redis = {"publishes": publishes, "publish_calls": d("publish"), "publish_per_publish": per(d("publish")),
         "commands_per_publish": per(d("commands")),
         "out_bytes_per_publish": per(d("out_bytes") - before["reply"]),
         "topic_subscribers": numsub}
nodes = [{"published_per_publish": per(a["published"] - b["published"]),
          "received_per_publish": per(a["received"] - b["received"])}
         for a, b in zip(after["nodes"], before["nodes"])]
print(json.dumps({"workload": label, "loadavg": loadavg, "result": result, "redis": redis, "nodes": nodes}))
PY
  done
done

say "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
print_table "$OUT/results.jsonl"
