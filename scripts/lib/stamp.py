#!/usr/bin/env python3
"""stamp.py OUT: reads lines on stdin (a daemon's stderr) and writes each to OUT as
"MONOTONIC_NS LINE", stamped when read, flushed at once. Run it SCHED_FIFO above the daemon
and keep OUT on a tmpfs: then the pipe never fills and the daemon's writes never wait on it.
A process of its own, not a thread of the bench (the bench's threads share one interpreter
lock). It does nothing else."""

import os
import sys
import time

if len(sys.argv) != 2:
    sys.exit("usage: stamp.py OUT")
out = open(sys.argv[1], "ab", buffering=0)
inp = os.fdopen(sys.stdin.fileno(), "rb", buffering=0)
pending = b""
while True:
    chunk = inp.read(65536)
    if not chunk:
        break
    t = time.monotonic_ns()
    pending += chunk
    *lines, pending = pending.split(b"\n")
    if lines:
        out.write(b"".join(b"%d %s\n" % (t, line) for line in lines))
if pending:
    out.write(b"%d %s\n" % (time.monotonic_ns(), pending))
