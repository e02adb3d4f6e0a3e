#!/usr/bin/python3
"""deny_io_uring.py PROGRAM ARGS...: runs PROGRAM under a seccomp filter that
refuses io_uring_setup, io_uring_enter and io_uring_register with EPERM, as
systemd does for a unit with `SystemCallFilter=~@aio` (or those three calls)
and `SystemCallErrorNumber=EPERM`, or as a container runtime's default
profile does. x86-64 only (the system call numbers are that ABI's)."""

import ctypes
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
NR_IO_URING = (425, 426, 427)  # io_uring_setup, io_uring_enter, io_uring_register
RET_ALLOW = 0x7FFF0000
RET_ERRNO_EPERM = 0x00050000 | 1
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def main():
    if platform.machine() != "x86_64":
        sys.exit("deny_io_uring.py: x86-64 only")
    prog = b"".join([
        insn(LD_W_ABS, 0, 0, 4),                   # 0: the architecture
        insn(JEQ_K, 0, 4, AUDIT_ARCH_X86_64),       # 1: another ABI: allow (6)
        insn(LD_W_ABS, 0, 0, 0),                    # 2: the system call number
        insn(JEQ_K, 3, 0, NR_IO_URING[0]),          # 3: refuse (7)
        insn(JEQ_K, 2, 0, NR_IO_URING[1]),          # 4
        insn(JEQ_K, 1, 0, NR_IO_URING[2]),          # 5
        insn(RET_K, 0, 0, RET_ALLOW),               # 6
        insn(RET_K, 0, 0, RET_ERRNO_EPERM),         # 7
    ])
    filters = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog) // 8, ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.exit(f"deny_io_uring.py: prctl: {os.strerror(ctypes.get_errno())}")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
