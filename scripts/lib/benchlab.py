"""Shared parts of scripts/bench-footprint and scripts/bench-load (Python 3 standard library).

- BenchLab: scripts/lab.sh up/down without the client probes of bench-failover, and a
  spawn() that runs a command in a node's namespace, optionally SCHED_FIFO (chrt) and
  optionally through execstamp.py (the CLOCK_REALTIME ns of the daemon's exec, in a file).
- HapairPair / KeepalivedPair: bench-failover's Hapair and Keepalived classes, reused as they
  are (loaded from scripts/bench-failover), on a BenchLab.
- FloorPair: scripts/lib/floor.c, the least a symmetric heartbeat costs (no daemon at all).
- HeartbeatPair: heartbeat 3.0.6 (Debian) in v1 mode, one per node namespace, each in a
  mount and UTS namespace of its own so that both see their own /etc/ha.d, /var/lib/heartbeat
  and /run and their own host name (board/lab/heartbeat/).
- Sniffer: sniff.py in a namespace, frames with kernel receive timestamps.
- proc_sample(): memory, CPU, processes and threads of a set of pids, from /proc.
- ensure_packages(): apt-get install with services kept from starting.

It never sends a frame itself, and ends only processes it started (by pid) or, through
`lab.sh down`, what runs inside the lab's own namespaces.
"""

import importlib.machinery
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "scripts/lib")
LAB = os.path.join(ROOT, "scripts/lab.sh")
NODES = ("alpha", "beta")
VIP = "192.0.2.100"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LAN = {"alpha": "192.0.2.1", "beta": "192.0.2.2"}
XOVER = {"alpha": "198.51.100.1", "beta": "198.51.100.2"}
# Addresses of the nodes on each link, for telling senders apart in sniffed frames.
ADDR = {"192.0.2.1": ("alpha", "lan"), "192.0.2.2": ("beta", "lan"),
        "198.51.100.1": ("alpha", "xover"), "198.51.100.2": ("beta", "xover")}


def _load_failover():
    path = os.path.join(ROOT, "scripts/bench-failover")
    loader = importlib.machinery.SourceFileLoader("bench_failover", path)
    spec = importlib.util.spec_from_loader("bench_failover", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


FAILOVER = _load_failover()


cleanup_on_sigterm = FAILOVER.cleanup_on_sigterm


def log(prog, text):
    print("%s: %s" % (prog, text), file=sys.stderr, flush=True)


def run(argv, check=True, **kw):
    return subprocess.run(argv, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def uptime():
    with open("/proc/loadavg") as f:
        return "load average " + " ".join(f.read().split()[:3])


def ensure_packages(prog, packages):
    """apt-get install the missing packages; their services must not start (a policy-rc.d
    that exits 101 while installing, unless one is there already) and are checked after."""
    missing = [p for p in packages
               if run(["dpkg-query", "-W", "-f=${Status}", p], check=False).stdout
               != "install ok installed"]
    if not missing:
        return
    log(prog, "installing " + " ".join(missing))
    policy = "/usr/sbin/policy-rc.d"
    ours = not os.path.exists(policy)
    if ours:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# bench: no service starts during the install\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
                       + missing, check=True, env=env)
    finally:
        if ours:
            os.unlink(policy)
    for name in ("keepalived", "heartbeat"):
        pid = run(["pidof", name], check=False).stdout.split()
        # Started by the install (outside any lab namespace): stop the service, not by name.
        if pid and shutil.which("systemctl") and os.path.exists("/run/systemd/system"):
            run(["systemctl", "stop", name], check=False)
        if pid:
            log(prog, "warning: %s runs outside the lab (pids %s)" % (name, " ".join(pid)))


def normal_scheduling():
    """In a child before exec: SCHED_OTHER, whatever the bench itself runs at (bench-load
    runs SCHED_FIFO); a chrt in the command line then sets what the child should have."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class BenchLab:
    """A lab (scripts/lab.sh) for one tool; the interface bench-failover's classes use."""

    def __init__(self, name, rt=None):
        self.name, self.rt = name, rt  # rt: SCHED_FIFO priority of the daemons, or None
        run([LAB, "up", "--name", name])
        env = run([LAB, "env", "--name", name]).stdout
        self.env = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
        self.dir = self.env["LAB_DIR"]
        self.ns = {"alpha": self.env["LAB_NS_ALPHA"], "beta": self.env["LAB_NS_BETA"],
                   "client": self.env["LAB_NS_CLIENT"], "lan": self.env["LAB_NS_LAN"]}
        self.procs = []
        self.stamps = {}  # node -> file with the CLOCK_REALTIME ns of the last daemon exec

    def spawn(self, where, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, rt=None):
        """As bench-failover's Lab.spawn; a daemon (rt="daemon") is exec'd through
        execstamp.py and gets SCHED_FIFO only when this lab was made with rt."""
        if rt == "daemon":
            stamp = os.path.join(self.dir, "%s-%d.stamp" % (where, len(self.procs)))
            self.stamps[where] = stamp
            argv = ["python3", os.path.join(LIB, "execstamp.py"), stamp] + list(argv)
            if self.rt:
                argv = ["chrt", "-f", str(self.rt)] + argv
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[where]] + list(argv),
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                text=True, preexec_fn=normal_scheduling)
        self.procs.append(proc)
        return proc

    def exec_ns(self, node):
        """CLOCK_REALTIME ns of the node daemon's exec, or None."""
        try:
            with open(self.stamps[node]) as f:
                return int(f.read().strip())
        except (KeyError, OSError, ValueError):
            return None

    def last_answer(self):
        return (0, None)

    def has_vip(self, node):
        out = run(["ip", "-n", self.ns[node], "-br", "addr", "show", "dev", "lan0"]).stdout
        return (" " + VIP + "/") in out

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        run([LAB, "down", "--name", self.name], check=False)


def hapair_bin():
    return FAILOVER.BIN


class HapairPair(FAILOVER.Hapair):
    """bench-failover's Hapair; stderr may go to a pipe (for the trace log) instead."""

    def __init__(self, lab, conf, env=None, pipe=False, binary=None, one_link=None):
        """one_link: "bcast" keeps only the `bcast lan0` link (like for like with
        keepalived's one VRRP advert on the LAN), "ucast" only the crossover; either way
        no serial line and no ping node."""
        self.env, self.pipe, self.binary = env, pipe, binary
        if not one_link:
            super().__init__(lab, conf)
            return
        self.lab, self.procs = lab, {}
        drop = {"serial", "ping", "ucast", "bcast"} - {one_link}
        with open(os.path.join(ROOT, "board/lab", conf)) as f:
            keep = [line for line in f if line.split()[:1] not in [[d] for d in drop]]
        self.conf = os.path.join(lab.dir, "one-link.conf")
        with open(self.conf, "w") as f:
            os.fchmod(f.fileno(), 0o644)  # hapair refuses one that others may write
            f.writelines(keep)
        key = os.path.join(lab.dir, "authkey")
        with open(key, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(run([self.binary or FAILOVER.BIN, "keygen"]).stdout)
        for node in NODES:
            with open(self.cmdline(node), "w") as f:
                f.write("hapair.node=%s hapair.control=%s/%s.sock hapair.statedir=%s/%s "
                        "hapair.authkey=%s\n" % (node, lab.dir, node, lab.dir, node, key))
        for node in NODES:
            self.start(node)

    def start(self, node):
        if not self.pipe and self.env is None and self.binary is None \
                and not self.conf.endswith("one-link.conf"):
            return super().start(node)
        argv = [self.binary or FAILOVER.BIN, "run", "-c", self.conf, "--cmdline",
                self.cmdline(node)]
        if self.env:
            argv = ["env"] + ["%s=%s" % kv for kv in self.env.items()] + argv
        err = subprocess.PIPE if self.pipe else open(
            os.path.join(self.lab.dir, node + ".log"), "a")
        self.procs[node] = self.lab.spawn(node, argv, stderr=err, rt="daemon")

    def pids(self, node):
        return descendants(daemon_pid(self.procs[node].pid))


class KeepalivedPair(FAILOVER.Keepalived):
    def pids(self, node):
        return descendants(daemon_pid(self.procs[node].pid))

    def log_path(self, node):
        return self.path(node, "log")


class FloorPair:
    """scripts/lib/floor.c on each node's lan0: a broadcast of hapair's frame size every
    keepalive and a read of the peer's, nothing else (bench-footprint's "floor" column; with
    timer_only, one wake per keepalive: "floor-1")."""

    FRAME_LEN = 126  # hapair's heartbeat datagram (src/wire/frame.rs FRAME_LEN_V3)

    def __init__(self, lab, keepalive_ms, timer_only=False, crossover=False):
        """crossover: unicast to the peer on xover0 instead of broadcasting on lan0."""
        binary = os.path.join(lab.dir, "floor")
        run(["gcc", "-O2", "-o", binary, os.path.join(LIB, "floor.c")])
        self.procs = {}
        for node, peer in (("alpha", "beta"), ("beta", "alpha")):
            if crossover:
                iface, own, to = "xover0", XOVER[node], XOVER[peer]
            else:
                iface, own, to = "lan0", LAN[node], "192.0.2.255"
            argv = [binary, iface, own, to, "694", str(keepalive_ms),
                    str(self.FRAME_LEN)] + (["timer-only"] if timer_only else [])
            self.procs[node] = lab.spawn(node, argv, rt="daemon")

    def pids(self, node):
        return [self.procs[node].pid]

    def close(self):
        sigterm_all(self.procs.values())


def daemon_pid(pid):
    """The process that `ip netns exec [chrt] python3 execstamp.py` became: all of them
    exec, so it is the spawned pid itself."""
    return pid


def descendants(pid):
    """pid and every process below it (from /proc/*/stat ppid)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists("/proc/%d" % p):
            out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k.strip()] = v.strip()
    except OSError:
        pass
    return out


def kb(value):
    return int(value.split()[0]) if value else 0


def proc_sample(pids):
    """Sums over pids: rss/hwm/pss kB, cpu ticks (utime+stime, and each), on-CPU ns (schedstat
    of every thread), processes, threads, context switches (the process's, not its threads')."""
    s = {"rss": 0, "hwm": 0, "pss": 0, "ticks": 0, "uticks": 0, "sticks": 0, "ns": 0,
         "procs": 0, "threads": 0, "switches": 0}
    for pid in pids:
        st = read_kv("/proc/%d/status" % pid)
        if not st:
            continue
        s["procs"] += 1
        s["rss"] += kb(st.get("VmRSS"))
        s["hwm"] += kb(st.get("VmHWM"))
        s["threads"] += int(st.get("Threads", "0"))
        s["switches"] += int(st.get("voluntary_ctxt_switches", "0"))
        s["switches"] += int(st.get("nonvoluntary_ctxt_switches", "0"))
        s["pss"] += kb(read_kv("/proc/%d/smaps_rollup" % pid).get("Pss"))
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            s["ticks"] += int(fields[11]) + int(fields[12])
            s["uticks"] += int(fields[11])
            s["sticks"] += int(fields[12])
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    s["ns"] += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return s


def file_sizes(binary):
    """(size of the binary, size with the shared libraries it loads, without the C
    runtime: libc, libm, libgcc_s, the loader, the vDSO)."""
    size = os.path.getsize(binary)
    total = size
    base = ("libc.so", "libm.so", "libgcc_s.so", "ld-linux", "linux-vdso")
    for line in run(["ldd", binary], check=False).stdout.splitlines():
        parts = line.split("=>")
        if len(parts) != 2 or any(b in parts[0] for b in base):
            continue
        path = parts[1].split("(")[0].strip()
        if os.path.exists(path):
            total += os.path.getsize(os.path.realpath(path))
    return size, total


class Sniffer:
    """sniff.py in a namespace: lines "REALTIME_NS IFACE DIR SRC DST PROTO", collected."""

    def __init__(self, lab, where, ifaces, rt=None):
        argv = ["python3", "-u", os.path.join(LIB, "sniff.py")] + list(ifaces)
        if rt:
            argv = ["chrt", "-f", str(rt)] + argv
        self.frames = []  # (ns, iface, dir, src)
        self.lock = threading.Lock()
        self.proc = lab.spawn(where, argv, stdout=subprocess.PIPE)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(10):
            raise RuntimeError("sniff.py did not start in " + where)

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0] == "ready":
                self.ready.set()
            elif len(parts) == 6:
                with self.lock:
                    self.frames.append((int(parts[0]), parts[1], parts[2], parts[3]))

    def snapshot(self):
        with self.lock:
            return list(self.frames)


class LineStamper:
    """A daemon's stderr through stamp.py (a process of its own, SCHED_FIFO `rt`) into
    `path` on the lab's tmpfs; lines() reads back (CLOCK_MONOTONIC ns at read, line)."""

    def __init__(self, lab, pipe, path, rt=None):
        argv = ["python3", os.path.join(LIB, "stamp.py"), path]
        if rt:
            argv = ["chrt", "-f", str(rt)] + argv
        self.path = path
        self.proc = subprocess.Popen(argv, stdin=pipe, stdout=subprocess.DEVNULL,
                                     preexec_fn=normal_scheduling)
        lab.procs.append(self.proc)
        pipe.close()  # the stamper holds the read end now

    def lines(self, keep=None):
        out = []
        try:
            with open(self.path, errors="replace") as f:
                for line in f:
                    t, _, text = line.rstrip("\n").partition(" ")
                    if keep is None or any(k in text for k in keep):
                        out.append((int(t), text))
        except (OSError, ValueError):
            pass
        return out


class HeartbeatPair:
    """heartbeat 3.0.6 in v1 mode (haresources: IPaddr of the VIP on lan0), one per node.

    Each runs as `ip netns exec NS unshare -m -u sh -c ...`: its own host name (heartbeat
    names itself after uname -n), and bind mounts of per-node copies over /etc/ha.d (ha.cf,
    haresources, authkeys from board/lab/heartbeat/, plus the package's scripts) and
    /var/lib/heartbeat, and a tmpfs over /run (pid file, API sockets, resource state).
    """

    label = "heartbeat"

    def __init__(self, lab, keepalive, deadtime, warntime, initdead):
        self.lab = lab
        self.procs = {}
        src = os.path.join(ROOT, "board/lab/heartbeat")
        with open(os.path.join(src, "ha.cf")) as f:
            template = f.read()
        for node in NODES:
            top = os.path.join(lab.dir, "hb-" + node)
            etc, var = os.path.join(top, "etc"), os.path.join(top, "lib")
            shutil.copytree("/etc/ha.d", etc, symlinks=True)
            shutil.copytree("/var/lib/heartbeat", var, symlinks=True)
            peer_ip = "198.51.100.2" if node == "alpha" else "198.51.100.1"
            text = (template.replace("@KEEPALIVE@", keepalive)
                    .replace("@DEADTIME@", deadtime).replace("@WARNTIME@", warntime)
                    .replace("@INITDEAD@", initdead).replace("@PEER_XOVER@", peer_ip)
                    .replace("@TTY@", os.path.realpath(lab.env["LAB_TTY_" + node.upper()])))
            with open(os.path.join(etc, "ha.cf"), "w") as f:
                f.write(text)
            shutil.copy(os.path.join(src, "haresources"), os.path.join(etc, "haresources"))
            shutil.copy(os.path.join(src, "authkeys"), os.path.join(etc, "authkeys"))
            os.chmod(os.path.join(etc, "authkeys"), 0o600)
            run(["chown", "-R", "hacluster:haclient", var])
        for node in NODES:
            self.start(node)

    def start(self, node):
        top = os.path.join(self.lab.dir, "hb-" + node)
        script = (
            "set -e; hostname %(node)s; mount --bind %(top)s/etc /etc/ha.d; "
            "mount --bind %(top)s/lib /var/lib/heartbeat; mount -t tmpfs tmpfs /run; "
            "mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm "
            "/run/resource-agents /run/lock; chown -R hacluster:haclient /run/heartbeat /run/crm; "
            "exec \"$@\"" % {"node": node, "top": top})
        argv = ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", script, "sh",
                "/usr/libexec/heartbeat/heartbeat"]
        logf = open(os.path.join(top, "stderr.log"), "a")
        # spawn() puts execstamp.py (and chrt) in front of argv: the stamp is unshare's exec,
        # a few ms before heartbeat's own.
        self.procs[node] = self.lab.spawn(node, argv, stdout=logf, stderr=logf, rt="daemon")

    def log_path(self, node):
        return os.path.join(self.lab.dir, "hb-" + node, "lib", "ha-log")

    def pids(self, node):
        """heartbeat's processes: it daemonizes, so those in the node's namespace whose
        executable is heartbeat's (the IPaddr scripts that come and go are not counted)."""
        out = run(["ip", "netns", "pids", self.lab.ns[node]], check=False).stdout.split()
        found = []
        for pid in out:
            try:
                if os.readlink("/proc/%s/exe" % pid) == "/usr/libexec/heartbeat/heartbeat":
                    found.append(int(pid))
            except OSError:
                pass
        return sorted(found)

    def close(self):
        """SIGTERM to each master control process (it stops its children and releases the
        VIP); whatever is left goes with `lab.sh down`."""
        for node in NODES:
            pids = self.pids(node)
            if pids:
                try:
                    os.kill(pids[0], signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(self.pids(n) for n in NODES):
            time.sleep(0.1)


def sigterm_all(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
