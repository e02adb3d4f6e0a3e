#!/usr/bin/python3
"""bench/profile_classify.py on a made-up perf report: every sampled
symbol lands in its kind, the shares become microseconds per message from
the load generator's JSON, the kernel's fixed part is summed, and the TCP
segments per message come from profile.sh's .segments file (and the row is
left out when no server has one)."""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

REPORT = """# To display the perf.data header info, please use --header/--header-only options.
#
# Overhead;Shared Object      ;Symbol
 40.00%  ;[kernel.kallsyms]  ;[k] tcp_ack
 10.00%  ;[kernel.kallsyms]  ;[k] _copy_to_iter
 20.00%  ;[kernel.kallsyms]  ;[k] sock_poll
  5.00%  ;[kernel.kallsyms]  ;[k] do_syscall_64
  5.00%  ;[kernel.kallsyms]  ;[k] some_unlisted_kernel_function
 20.00%  ;echo-server        ;[.] main
"""


def run(out, servers):
    r = subprocess.run([sys.executable, os.path.join(HERE, "profile_classify.py"), out, *servers],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def row(text, name):
    for line in text.splitlines():
        if line.startswith(f"| {name} |"):
            return [c.strip() for c in line.strip().strip("|").split("|")][1:]
    raise AssertionError(f"no row {name!r} in:\n{text}")


def main():
    with tempfile.TemporaryDirectory() as out:
        for server in ("a", "b"):
            with open(os.path.join(out, f"{server}.report"), "w") as f:
                f.write(REPORT)
        # 2 server CPU-seconds over 1,000,000 messages: 2 µs per message.
        result = {"server_cpu_s": 2.0, "messages": 1_000_000, "messages_per_s": 200_000.0,
                  "work_per_server_cpu_s": 500_000.0}
        for server in ("a", "b"):
            with open(os.path.join(out, f"{server}.json"), "w") as f:
                json.dump(result, f)

        text = run(out, ["a", "b"])
        assert row(text, "tcp/ip") == ["40.0 % (0.80 µs)"] * 2, text
        assert row(text, "copies") == ["10.0 % (0.20 µs)"] * 2, text
        assert row(text, "readiness") == ["20.0 % (0.40 µs)"] * 2, text
        assert row(text, "syscall") == ["5.0 % (0.10 µs)"] * 2, text
        assert row(text, "other kernel") == ["5.0 % (0.10 µs)"] * 2, text
        assert row(text, "user") == ["20.0 % (0.40 µs)"] * 2, text
        assert row(text, "server CPU per message") == ["2.00 µs (500,000 per CPU-s)"] * 2, text
        # tcp/ip + copies + sched + other kernel
        assert row(text, "of which tcp/ip, copies, sched, other kernel") == ["55.0 % (1.10 µs)"] * 2, text
        assert "TCP segments" not in text, text

        # 5 s at 200,000 messages/s with 2,010,000 segments: 2.01 per message.
        with open(os.path.join(out, "a.segments"), "w") as f:
            f.write("1000000 3010000 100.0 105.0\n")
        text = run(out, ["a", "b"])
        assert row(text, "TCP segments per message (both ways)") == ["2.010", "-"], text
    print("profile_classify: ok")


if __name__ == "__main__":
    main()
