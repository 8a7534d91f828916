#!/usr/bin/env python3
"""execstamp.py FILE PROGRAM [ARG...]: writes the CLOCK_REALTIME ns of this moment to FILE,
then execs PROGRAM (same pid, same scheduling class). For the benches' "exec to first frame":
the stamp is taken after the interpreter's start-up, immediately before execv.
It does nothing else."""

import os
import sys

if len(sys.argv) < 3:
    sys.exit("usage: execstamp.py FILE PROGRAM [ARG...]")
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"%d\n" % __import__("time").clock_gettime_ns(__import__("time").CLOCK_REALTIME))
os.close(fd)
os.execvp(sys.argv[2], sys.argv[2:])
