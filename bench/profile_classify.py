#!/usr/bin/python3
"""profile_classify.py OUT SERVER...: the table bench/profile.sh prints.

Reads OUT/SERVER.report (`perf report --no-children --sort dso,sym -g none
-t ';'`) and OUT/SERVER.json (the load generator's result for the same
run), sorts every sampled symbol into a kind of work by the patterns below
(first match wins; unmatched kernel symbols are "other kernel"), and prints
one markdown table: the share of the server's samples per kind, and that
share as microseconds of server CPU per message (the run's server CPU
seconds over its messages). With OUT/SERVER.segments (profile.sh: the
machine's TCP OutSegs before and after the recording, and its start and
end times) it adds the TCP segments sent per message, both directions."""

import json
import os
import re
import sys

KINDS = [
    # The readiness machinery: epoll, the poll callbacks it drives, and
    # io_uring's own poll arming and wake-ups (a receive or send that waits
    # for its socket). Counted wherever it runs: a wake-up of the peer's
    # epoll lands in the server's profile when the server's send runs the
    # peer's receive path.
    ("readiness", r"^(ep_|do_epoll|__x64_sys_epoll|__do_sys_epoll|epoll_|tcp_poll|sock_poll|unix_poll"
                  r"|__pollwait|poll_freewait|io_poll|__io_poll|io_arm_poll|__io_arm_poll|io_async_wake"
                  r"|io_pollfree|add_wait_queue|remove_wait_queue|__wake_up_sync|ep_poll_callback)"),
    # Entry and exit of a system call, descriptor lookups, the VFS plumbing
    # of read/write/sendto/recvfrom around the socket's own code.
    ("syscall", r"^(entry_SYSCALL|do_syscall_64|syscall_exit|syscall_return|__x64_sys_|__do_sys_"
                r"|exit_to_user_mode|syscall_enter|__fdget|fdget|__fget|fget|fput|__fput|ksys_|vfs_read"
                r"|vfs_write|rw_verify_area|security_file_permission|bpf_lsm_file_permission|apparmor_file_permission"
                r"|new_sync_read|new_sync_write|sock_read_iter|sock_write_iter|__sys_sendto|__sys_recvfrom"
                r"|__sys_sendmsg|___sys_sendmsg|__sys_recvmsg|import_single_range|import_ubuf|sockfd_lookup"
                r"|__audit_|audit_|fsnotify|__fsnotify|entry_|native_irq_return)"),
    ("io_uring", r"^(io_|__io_|tctx_|io_uring|__se_sys_io_uring|__do_sys_io_uring|__x64_sys_io_uring)"),
    ("copies", r"^(copy_user|_copy_to_iter|_copy_from_iter|copy_page_|rep_movs|__memcpy|memcpy|memmove"
               r"|skb_copy_datagram|simple_copy_to_iter|__skb_datagram_iter|copyin|copyout|csum_partial_copy)"),
    ("sched", r"^(schedule|__schedule|try_to_wake_up|ttwu_|pick_next|finish_task_switch|enqueue_|dequeue_"
              r"|update_curr|update_load|__update_load|select_task_rq|check_preempt|resched|psi_|cpuidle|"
              r"default_idle|do_idle|native_safe_halt|__wake_up|autoremove_wake_function|default_wake_function"
              r"|wake_up_|hrtimer_|__hrtimer|schedule_hrtimeout|put_prev_task|set_next_entity|pv_native_safe_halt)"),
    # The socket layer and TCP/IP over loopback, on both sides: sending runs
    # the peer's receive path too (softirq in the sender's context), the
    # peer's own readiness callback included.
    ("tcp/ip", r"^(tcp_|__tcp|__sock_sendmsg|sock_sendmsg|sock_recvmsg|security_socket_|ip_|__ip|ipv4_|inet_|__inet|sk_|__sk_|sock_def|sock_wfree|sock_rfree|skb_|__skb"
               r"|kfree_skb|__kfree_skb|consume_skb|__alloc_skb|alloc_skb|__build_skb|loopback|__dev_queue_xmit"
               r"|dev_queue_xmit|dev_hard_start_xmit|netif_|__netif|net_rx_action|process_backlog|__napi|napi_"
               r"|__local_bh_enable|do_softirq|__do_softirq|handle_softirqs|irq_exit|validate_xmit|eth_|dst_"
               r"|nf_|raw_local_deliver|sch_direct_xmit|__qdisc|qdisc_|rb_|bbr_|cubictcp|tcp4_|neigh_|lock_sock"
               r"|release_sock|__release_sock|mod_timer|__mod_timer|sk_reset_timer|inet6_|ip6_|tcp6_|page_frag"
               r"|skb_page_frag|kmem_cache|__kmem_cache|kmalloc|__kmalloc|kfree|___slab|__slab|slab_|memcg|"
               r"__memcg|mem_cgroup|refill_stock|obj_cgroup|ktime_get|read_tsc|__check_object_size|check_heap)"),
]
COMPILED = [(kind, re.compile(p)) for kind, p in KINDS]
ORDER = ["tcp/ip", "copies", "readiness", "syscall", "io_uring", "sched", "other kernel", "user"]


def classify(dso, sym):
    if "[k]" not in sym:
        return "user"
    name = sym.split("]", 1)[1].strip()
    for kind, pattern in COMPILED:
        if pattern.search(name):
            return kind
    return "other kernel"


def read_report(path):
    shares = {k: 0.0 for k in ORDER}
    top = {}
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(";")]
            if len(parts) < 3 or not parts[0].endswith("%"):
                continue
            pct = float(parts[0].rstrip("%"))
            kind = classify(parts[1], parts[2])
            shares[kind] += pct
            top.setdefault(kind, []).append((pct, parts[2].split("]", 1)[-1].strip()))
    return shares, top


# The kinds of work a server's own design does not change: the same bytes
# over the same sockets cost the kernel this much whoever asks.
FIXED = ("tcp/ip", "copies", "sched", "other kernel")


def segments_per_message(out, server, result):
    try:
        with open(os.path.join(out, f"{server}.segments")) as f:
            before, after, start, end = (float(x) for x in f.read().split())
        return f"{(after - before) / (result['messages_per_s'] * (end - start)):.3f}"
    except (OSError, KeyError, ValueError, TypeError, ZeroDivisionError):
        return "-"


def main():
    out, servers = sys.argv[1], sys.argv[2:]
    rows = []
    for server in servers:
        report = os.path.join(out, f"{server}.report")
        if not os.path.exists(report):
            continue
        shares, top = read_report(report)
        try:
            with open(os.path.join(out, f"{server}.json")) as f:
                result = json.load(f)
            us_per_msg = result["server_cpu_s"] / result["messages"] * 1e6
        except (OSError, KeyError, ValueError, ZeroDivisionError):
            us_per_msg = None
        rows.append((server, shares, top, us_per_msg, result if us_per_msg else None))
    print("| kind | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for kind in ORDER:
        cells = []
        for _, shares, _, us, _ in rows:
            cell = f"{shares[kind]:.1f} %"
            if us is not None:
                cell += f" ({shares[kind] / 100 * us:.2f} µs)"
            cells.append(cell)
        print(f"| {kind} | " + " | ".join(cells) + " |")
    cells = []
    for _, _, _, us, result in rows:
        cells.append("-" if us is None else f"{us:.2f} µs ({result['work_per_server_cpu_s']:,.0f} per CPU-s)")
    print("| server CPU per message | " + " | ".join(cells) + " |")
    # What no server's design removes: the kernel's own work per message.
    cells = []
    for _, shares, _, us, _ in rows:
        fixed = sum(shares[k] for k in FIXED)
        cells.append(f"{fixed:.1f} %" + ("" if us is None else f" ({fixed / 100 * us:.2f} µs)"))
    print("| of which " + ", ".join(FIXED) + " | " + " | ".join(cells) + " |")
    cells = [segments_per_message(out, server, result) for server, _, _, _, result in rows]
    if any(c != "-" for c in cells):
        print("| TCP segments per message (both ways) | " + " | ".join(cells) + " |")
    print()
    for server, _, top, _, _ in rows:
        print(f"{server}: the heaviest symbols of each kind")
        for kind in ORDER:
            syms = sorted(top.get(kind, []), reverse=True)[:6]
            if syms:
                print(f"  {kind}: " + ", ".join(f"{name} {pct:.1f}%" for pct, name in syms))
        print()


if __name__ == "__main__":
    main()
