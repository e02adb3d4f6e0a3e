#!/usr/bin/env bash
# Where a server's CPU goes under an echo load, by kind of work: one
# `perf record -e cpu-clock -g` of the server over the load generator's
# measured window, its samples sorted into the kinds the io_uring issue
# (issue 12) names. For windlass on each of its backends (and uWebSockets
# when UWS_ECHO_BIN is given), in one run, pinned as side_by_side.sh pins.
#
#   bench/profile.sh                                  # 1000 connections, 20 B
#   CONNECTIONS=100 SIZE=16384 bench/profile.sh
#   UWS_ECHO_BIN=/path/EchoServer UWS_PORT=9001 bench/profile.sh
#
# The kinds (bench/profile_classify.py has the symbol patterns):
#   tcp/ip        the kernel's TCP and loopback work: skb, ACKs, congestion
#                 control, waking the peer (no server avoids it)
#   copies        copying payload between user memory and socket buffers
#   readiness     epoll and poll machinery: ep_poll_callback, ep_item_poll,
#                 tcp_poll, sock_poll; io_uring's own poll arming and wakeups
#   syscall       system-call entry and exit, descriptor lookups, the VFS
#                 read/write plumbing around the socket calls
#   io_uring      submission, task work, completion posting, provided buffers
#   sched         scheduling, wake-ups, idle
#   user          the server's own code (and libc, libstdc++)
#   other kernel  the rest
#
# Settings: SERVER_CPU LOAD_CPU (0 1), CONNECTIONS (1000), SIZE (20),
# DURATION (5), WARMUP (2), BUILD (build/release), SERVERS ("windlass
# windlass-io_uring", plus uws with UWS_ECHO_BIN), OUT (a new temp dir:
# perf data and the reports). Needs perf (linux-perf) and root or
# perf_event_paranoid <= 1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-$root/build/release}
ECHO=${WINDLASS_ECHO:-$BUILD/examples/echo/windlass-echo}
LOAD=${LOAD:-$BUILD/bench/load/windlass-load}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CONNECTIONS=${CONNECTIONS:-1000}
SIZE=${SIZE:-20}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
UWS_PORT=${UWS_PORT:-9001}
OUT=${OUT:-$(mktemp -d /tmp/windlass-profile.XXXXXX)}
if [ -z "${SERVERS:-}" ]; then
  SERVERS="windlass windlass-io_uring"
  [ -n "${UWS_ECHO_BIN:-}" ] && SERVERS+=" uws"
fi
command -v perf >/dev/null || { echo "profile: perf not found (apt-get install linux-perf)" >&2; exit 1; }
mkdir -p "$OUT"

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

for server in $SERVERS; do
  log="$OUT/$server.log"
  case $server in
    windlass) cmd=("$ECHO" --host 127.0.0.1 --port 0 --threads 1 --io epoll --max-connections 20000) ;;
    windlass-io_uring) cmd=("$ECHO" --host 127.0.0.1 --port 0 --threads 1 --io io_uring --max-connections 20000) ;;
    uws) cmd=("$UWS_ECHO_BIN") ;;
    *) echo "profile: unknown server $server" >&2; exit 1 ;;
  esac
  # shellcheck disable=SC2016 # expanded by the inner bash
  taskset -c "$SERVER_CPU" bash -c 'ulimit -n 20000 2>/dev/null || true; exec "$@"' _ "${cmd[@]}" >"$log" 2>&1 &
  pid=$!
  port=
  for _ in $(seq 100); do
    if [ "$server" = uws ]; then
      (exec 3<>"/dev/tcp/127.0.0.1/$UWS_PORT") 2>/dev/null && port=$UWS_PORT
    else
      port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
    fi
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "profile: $server did not start: $(tail -3 "$log")" >&2; exit 1; }
  echo "profile: $server: $CONNECTIONS connections x $SIZE B, ${WARMUP}s warmup, ${DURATION}s recorded" >&2
  taskset -c "$LOAD_CPU" "$LOAD" echo --port "$port" --connections "$CONNECTIONS" --size "$SIZE" \
    --duration $((DURATION + 2)) --warmup "$WARMUP" --server-pid "$pid" --json --quiet >"$OUT/$server.json" &
  load=$!
  # The recording starts a second into the measured window and ends a
  # second before it does: no connecting, no closing in the profile.
  sleep $((WARMUP + 2))
  perf record -q -e cpu-clock -g -p "$pid" -o "$OUT/$server.perf.data" -- sleep "$DURATION" 2>/dev/null
  wait "$load"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  perf report -i "$OUT/$server.perf.data" --stdio --no-children --sort dso,sym -g none -t ';' \
    >"$OUT/$server.report" 2>/dev/null
done

"$PYTHON" "$root/bench/profile_classify.py" "$OUT" $SERVERS
echo "profile: perf data and reports in $OUT" >&2
