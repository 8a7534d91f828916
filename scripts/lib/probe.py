#!/usr/bin/env python3
"""The client's view of the service address, for scripts/demo.sh and scripts/bench-failover.

Two small programs in one file (Python 3 standard library only):

  probe.py serve NAME PORT
      A UDP responder: answers every datagram on PORT (IPv4 and IPv6, any local address)
      with "NAME SEQ", SEQ being the request's text. Run one in each node's namespace: only
      the node that holds the VIP gets the client's packets for it.

  probe.py watch ADDR PORT [--interval-ms 5] [--raw] [--label TEXT]
      The prober: sends one datagram to ADDR:PORT every interval (its text: a sequence
      number) and reads the answers.
      Human form (default): prints who answers, and every change of answering node or silence
      with the measured gap in ms; SIGUSR1 marks "fault now" (SIGRTMIN: "handover now") and
      the next answer from another node is reported as time since the mark; SIGUSR2 prints
      what was seen since the mark (or the start): answers, by whom, the longest gap between
      two answers and the probes left unanswered; SIGINT/SIGTERM print a summary and exit 0.
      --label TEXT names the prober on every line instead of "client" (two probers on one
      terminal).
      --raw: one line per answer, "MONOTONIC_NS NODE SEQ", for programs (CLOCK_MONOTONIC is
      the same in every namespace, so a caller can compare it with its own clock; SEQ is the
      probe's sequence number, so a caller can count the probes left unanswered).

  probe.py watch-name NAME SERVER PORT [--interval-ms 5] [--raw] [--label TEXT]
      The prober of a routed pair (scripts/lab.sh up --routed), whose service moves by its
      DNS name: every interval it asks SERVER (the zone's name server, directly: no cache)
      for NAME's A record, and sends the probe to the address of the latest answer; no
      record, no probe. Otherwise as `watch`.

It never sends anywhere but ADDR:PORT (prober), SERVER:53 and the addresses SERVER names
(watch-name), or back to a sender (responder).
"""

import argparse
import select
import signal
import socket
import struct
import sys
import time

REPLY_MAX = 256


def serve(name, port):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    while True:
        try:
            data, peer = sock.recvfrom(REPLY_MAX)
        except InterruptedError:
            continue
        try:
            sock.sendto(name.encode() + b" " + data[:64], peer)
        except OSError:
            pass  # the client's side may be unreachable for a moment; it asks again


def open_prober(addr):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


def watch(addr, port, interval_ms, raw, label):
    sock = open_prober(addr)
    interval = interval_ms / 1000.0
    state = Watcher(raw, interval_ms, label)
    signal.signal(signal.SIGUSR1, lambda *_: state.mark("fault", "fault injected"))
    signal.signal(signal.SIGRTMIN, lambda *_: state.mark("handover", "handover asked"))
    signal.signal(signal.SIGUSR2, lambda *_: state.report_since_mark())
    signal.signal(signal.SIGTERM, lambda *_: state.stop())
    signal.signal(signal.SIGINT, lambda *_: state.stop())
    seq = 0
    next_send = time.monotonic()
    while not state.stopping:
        now = time.monotonic()
        if now >= next_send:
            seq += 1
            try:
                sock.sendto(str(seq).encode(), (addr, port))
            except OSError:
                pass  # no route or neighbour yet: the next probe tries again
            next_send += interval
            if next_send < now:
                next_send = now + interval
        try:
            ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        except InterruptedError:
            continue
        if ready:
            drain(sock, state)
        state.check_silence()
    state.summary()


def dns_query(qid, name):
    """A query for NAME's A record, recursion not desired (the server is authoritative)."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.strip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + qname + b"\0" + struct.pack("!HH", 1, 1)


def dns_skip_name(msg, at):
    while True:
        n = msg[at]
        if n & 0xC0 == 0xC0:
            return at + 2
        if n == 0:
            return at + 1
        at += 1 + n


def dns_answer(msg, qid):
    """The first A record's address in an answer to query `qid`, "" for an answer without
    one (no such name), None for anything else (another id, a malformed message)."""
    try:
        rid, flags, qd, an = struct.unpack_from("!HHHH", msg)
        if rid != qid or not flags & 0x8000:
            return None
        at = 12
        for _ in range(qd):
            at = dns_skip_name(msg, at) + 4
        for _ in range(an):
            at = dns_skip_name(msg, at)
            rtype, _, _, rdlen = struct.unpack_from("!HHIH", msg, at)
            at += 10
            if rtype == 1 and rdlen == 4:
                return socket.inet_ntoa(msg[at:at + 4])
            at += rdlen
        return ""
    except (struct.error, IndexError):
        return None


def watch_name(name, server, port, interval_ms, raw, label):
    """`watch`, with the address from NAME's A record at SERVER, asked every interval."""
    sock = open_prober("0.0.0.0")
    dns = open_prober("0.0.0.0")
    interval = interval_ms / 1000.0
    state = Watcher(raw, interval_ms, label)
    signal.signal(signal.SIGTERM, lambda *_: state.stop())
    signal.signal(signal.SIGINT, lambda *_: state.stop())
    seq, qid, addr = 0, 0, ""
    next_send = time.monotonic()
    while not state.stopping:
        now = time.monotonic()
        if now >= next_send:
            qid = (qid + 1) & 0xFFFF
            try:
                dns.sendto(dns_query(qid, name), (server, 53))
            except OSError:
                pass
            if addr:
                seq += 1
                try:
                    sock.sendto(str(seq).encode(), (addr, port))
                except OSError:
                    pass
            next_send += interval
            if next_send < now:
                next_send = now + interval
        try:
            ready, _, _ = select.select([sock, dns], [], [],
                                        max(0.0, next_send - time.monotonic()))
        except InterruptedError:
            continue
        if dns in ready:
            while True:
                try:
                    got = dns_answer(dns.recv(512), qid)
                except (BlockingIOError, InterruptedError, OSError):
                    break
                if got is not None:
                    addr = got
        if sock in ready:
            drain(sock, state)
        state.check_silence()
    state.summary()


def drain(sock, state):
    while True:
        try:
            data = sock.recv(REPLY_MAX)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # an ICMP error from an earlier probe: nothing to read
        parts = data.split(b" ", 2)
        node = parts[0].decode(errors="replace") or "?"
        try:
            seq = int(parts[1]) if len(parts) > 1 else None
        except ValueError:
            seq = None
        state.answer(time.monotonic_ns(), node, seq)


class Watcher:
    """What the prober has seen, and the human report of it."""

    def __init__(self, raw, interval_ms, label="client"):
        self.raw = raw
        self.label = label
        self.silence_ns = int(interval_ms * 10 * 1e6)  # ten probes unanswered: say so
        self.start_ns = time.monotonic_ns()
        self.node = None
        self.last_ns = None
        self.silent = False
        self.fault_ns = None
        self.mark_kind = "start"
        self.answers = 0
        self.stopping = False
        self.gaps = []
        self.last_seq = None
        # Since the last mark (or the start): answers, by whom, the longest time between
        # two answers (the one that straddles the mark included), probes skipped in sequence.
        self.since_ns = self.start_ns
        self.since_answers = 0
        self.since_nodes = []
        self.since_gap_ms = 0.0
        self.since_unanswered = 0

    def stamp(self, t_ns):
        return "    %s %8.3f s" % (self.label, (t_ns - self.start_ns) / 1e9)

    def say(self, text):
        if not self.raw:
            print(text, flush=True)

    def mark(self, kind, text):
        self.fault_ns = time.monotonic_ns()
        self.mark_kind = kind
        self.since_ns = self.fault_ns
        self.since_answers = 0
        self.since_nodes = []
        self.since_gap_ms = 0.0
        self.since_unanswered = 0
        self.say("%s  -- %s --" % (self.stamp(self.fault_ns), text))

    def report_since_mark(self):
        now = time.monotonic_ns()
        ago = (now - self.since_ns) / 1e9
        who = " then ".join(self.since_nodes) or "nobody"
        self.say("%s  since the %s (%.3f s ago): %d answers, from %s; longest gap between two "
                 "answers %.1f ms; probes unanswered: %d" % (
                     self.stamp(now), self.mark_kind, ago, self.since_answers, who,
                     self.since_gap_ms, self.since_unanswered))

    def stop(self):
        self.stopping = True

    def check_silence(self):
        now = time.monotonic_ns()
        if self.last_ns is not None and not self.silent and now - self.last_ns > self.silence_ns:
            self.silent = True
            self.say("%s  no answer (last from %s)" % (self.stamp(now), self.node))

    def answer(self, t_ns, node, seq=None):
        self.answers += 1
        if self.raw:
            sys.stdout.write("%d %s %s\n" % (t_ns, node, "-" if seq is None else seq))
            sys.stdout.flush()
        self.since_answers += 1
        if not self.since_nodes or self.since_nodes[-1] != node:
            self.since_nodes.append(node)
        if self.last_ns is not None:
            self.since_gap_ms = max(self.since_gap_ms, (t_ns - self.last_ns) / 1e6)
        if seq is not None:
            if self.last_seq is not None and seq > self.last_seq:
                self.since_unanswered += seq - self.last_seq - 1
            self.last_seq = max(seq, self.last_seq or 0)
        if self.node is None:
            self.say("%s  answered by %s" % (self.stamp(t_ns), node))
        elif node != self.node or self.silent:
            gap_ms = (t_ns - self.last_ns) / 1e6
            self.gaps.append((self.node, node, gap_ms))
            text = "%s  answered by %s after %.1f ms without an answer" % (
                self.stamp(t_ns), node, gap_ms)
            if self.fault_ns is not None and node != self.node:
                text += " (%.1f ms after the %s)" % ((t_ns - self.fault_ns) / 1e6,
                                                     self.mark_kind)
                self.fault_ns = None
            self.say(text)
        self.node = node
        self.last_ns = t_ns
        self.silent = False

    def summary(self):
        if self.raw:
            return
        self.say("%s  prober done: %d answers" % (self.stamp(time.monotonic_ns()), self.answers))
        for old, new, gap in self.gaps:
            self.say("      %s -> %s: %.1f ms without an answer" % (old, new, gap))


def main():
    parser = argparse.ArgumentParser(description="UDP responder and prober for the VIP")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("name")
    p.add_argument("port", type=int)
    p = sub.add_parser("watch")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--interval-ms", type=float, default=5.0)
    p.add_argument("--raw", action="store_true")
    p.add_argument("--label", default="client")
    p = sub.add_parser("watch-name")
    p.add_argument("name")
    p.add_argument("server")
    p.add_argument("port", type=int)
    p.add_argument("--interval-ms", type=float, default=5.0)
    p.add_argument("--raw", action="store_true")
    p.add_argument("--label", default="client")
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args.name, args.port)
    elif args.cmd == "watch-name":
        watch_name(args.name, args.server, args.port, args.interval_ms, args.raw, args.label)
    else:
        watch(args.addr, args.port, args.interval_ms, args.raw, args.label)


if __name__ == "__main__":
    main()
