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
#   WORKLOAD=fanout1000@1000 UWS_CHAT_BIN=/path/ChatServer bench/profile.sh
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
# Two more rows: the part of each message's CPU that is tcp/ip, copies,
# sched and other kernel (what the same bytes over the same sockets cost
# the kernel whatever the server; what is left is the server's to cut),
# and the TCP segments the machine sent per message over the recording
# (/proc/net/snmp; 2.0 for an echo whose ACKs all ride on data).
#
# WORKLOAD: echo (default: CONNECTIONS x SIZE), or a fan-out as
# side_by_side.sh names it, on the chat servers (examples/chat, and
# UWS_CHAT_BIN on UWS_CHAT_PORT, default UWS_PORT + 1): fanoutN@R (N
# subscribers, R 32-byte messages a second) or fanoutNxK (bursts of K, each
# when the last has reached everyone); a "message" is then one delivery.
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
CHAT=${WINDLASS_CHAT:-$BUILD/examples/chat/windlass-chat}
LOAD=${LOAD:-$BUILD/bench/load/windlass-load}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CONNECTIONS=${CONNECTIONS:-1000}
SIZE=${SIZE:-20}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
UWS_PORT=${UWS_PORT:-9001}
UWS_CHAT_PORT=${UWS_CHAT_PORT:-$((UWS_PORT + 1))}
WORKLOAD=${WORKLOAD:-echo}
case $WORKLOAD in
  echo)
    server_cmd=("$ECHO") uws_bin=${UWS_ECHO_BIN:-} uws_port=$UWS_PORT
    load_args=(echo --connections "$CONNECTIONS" --size "$SIZE")
    what="$CONNECTIONS connections x $SIZE B" ;;
  fanout[0-9]*@[0-9]*)
    n=${WORKLOAD#fanout} n=${n%@*} r=${WORKLOAD#*@}
    server_cmd=("$CHAT" --compression off) uws_bin=${UWS_CHAT_BIN:-} uws_port=$UWS_CHAT_PORT
    load_args=(fanout --connections "$n" --rate "$r" --size 32)
    what="$n subscribers at $r msg/s" ;;
  fanout[0-9]*x[0-9]*)
    n=${WORKLOAD#fanout} n=${n%x*} k=${WORKLOAD#*x}
    server_cmd=("$CHAT" --compression off) uws_bin=${UWS_CHAT_BIN:-} uws_port=$UWS_CHAT_PORT
    load_args=(fanout --connections "$n" --burst "$k" --size 32)
    what="$n subscribers, bursts of $k" ;;
  *) echo "profile: unknown WORKLOAD '$WORKLOAD' (echo, fanoutN@R, fanoutNxK)" >&2; exit 1 ;;
esac
OUT=${OUT:-$(mktemp -d /tmp/windlass-profile.XXXXXX)}
if [ -z "${SERVERS:-}" ]; then
  SERVERS="windlass windlass-io_uring"
  [ -n "$uws_bin" ] && SERVERS+=" uws"
fi
command -v perf >/dev/null || { echo "profile: perf not found (apt-get install linux-perf)" >&2; exit 1; }
mkdir -p "$OUT"
# Tcp: OutSegs of /proc/net/snmp (the second Tcp: line holds the values).
tcp_out_segments() {
  awk '$1 == "Tcp:" { if (++n == 1) { for (i = 2; i <= NF; i++) if ($i == "OutSegs") c = i } else print $c }' /proc/net/snmp
}

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

for server in $SERVERS; do
  log="$OUT/$server.log"
  case $server in
    windlass | windlass-io_uring)
      io=epoll
      [ "$server" = windlass-io_uring ] && io=io_uring
      cmd=("${server_cmd[@]}" --host 127.0.0.1 --port 0 --threads 1 --io "$io" --max-connections 20000) ;;
    uws)
      [ -n "$uws_bin" ] || { echo "profile: uws needs UWS_ECHO_BIN (echo) or UWS_CHAT_BIN (fan-out)" >&2; exit 1; }
      cmd=("$uws_bin") ;;
    *) echo "profile: unknown server $server" >&2; exit 1 ;;
  esac
  # shellcheck disable=SC2016 # expanded by the inner bash
  taskset -c "$SERVER_CPU" bash -c 'ulimit -n 20000 2>/dev/null || true; exec "$@"' _ "${cmd[@]}" >"$log" 2>&1 &
  pid=$!
  port=
  for _ in $(seq 100); do
    if [ "$server" = uws ]; then
      (exec 3<>"/dev/tcp/127.0.0.1/$uws_port") 2>/dev/null && port=$uws_port
    else
      port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
    fi
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "profile: $server did not start: $(tail -3 "$log")" >&2; exit 1; }
  echo "profile: $server: $what, ${WARMUP}s warmup, ${DURATION}s recorded" >&2
  taskset -c "$LOAD_CPU" "$LOAD" "${load_args[@]}" --port "$port" \
    --duration $((DURATION + 2)) --warmup "$WARMUP" --server-pid "$pid" --json --quiet >"$OUT/$server.json" &
  load=$!
  # The recording starts a second into the measured window and ends a
  # second before it does: no connecting, no closing in the profile.
  sleep $((WARMUP + 2))
  # The machine's TCP segments sent over the same window (both directions
  # of loopback: the clients' and the server's), to tell extra ACKs or
  # split writes from work done per segment. Read beside perf, not around
  # it: perf takes a while to write its data after the window.
  (
    before=$(tcp_out_segments) start=$(date +%s.%N)
    sleep "$DURATION"
    echo "$before $(tcp_out_segments) $start $(date +%s.%N)"
  ) >"$OUT/$server.segments" &
  segments=$!
  perf record -q -e cpu-clock -g -p "$pid" -o "$OUT/$server.perf.data" -- sleep "$DURATION" 2>/dev/null
  wait "$segments"
  wait "$load"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  perf report -i "$OUT/$server.perf.data" --stdio --no-children --sort dso,sym -g none -t ';' \
    >"$OUT/$server.report" 2>/dev/null
done

# shellcheck disable=SC2086 # SERVERS is a list of words
"$PYTHON" "$root/bench/profile_classify.py" "$OUT" $SERVERS
echo "profile: perf data and reports in $OUT" >&2
