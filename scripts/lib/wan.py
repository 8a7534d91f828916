#!/usr/bin/env python3
"""The routed lab's WAN links (scripts/lab.sh up --routed) where the kernel has no sch_netem:
an Ethernet relay that delays and drops frames as `tc qdisc ... netem delay D J loss L` would.

Usage: wan.py CONF LEG [LEG...]        (run inside the lab's WAN namespace, as root)
  LEG   IF_A:IF_B, two interfaces of this namespace, each a veth whose other end is a cable
        end (a node's lan0, a router port): every frame that arrives on one leaves on the
        other, after its delay, unless it is lost.
  CONF  a file of three numbers, "DELAY_MS JITTER_MS LOSS_PERCENT", applied to each frame in
        each direction (the delay is drawn uniformly in DELAY ± JITTER, like netem's default;
        frames may overtake each other, as under netem). Read at start and again on SIGHUP
        (lab.sh wan ... writes it and signals).

The namespace holds no address and forwards nothing itself, so its kernel drops what the relay
reads, and the relay is the only path. Frames a local socket sent through a veth may carry a
checksum the kernel has not filled in yet (PACKET_AUXDATA says TP_STATUS_CSUMNOTREADY): the
relay completes the UDP and TCP checksum, as the NIC would, before it sends them on (a frame
sent by a packet socket is checked by its receiver). A leg whose interface is down (lab.sh cut)
drops what is due on it. Python 3 standard library only; it sends nowhere but the legs.
"""

import heapq
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 8
FRAME_MAX = 65536
FRAMES_PER_WAKE = 64


def read_conf(path):
    with open(path) as f:
        delay, jitter, loss = (float(w) for w in f.read().split()[:3])
    return delay / 1e3, jitter / 1e3, loss / 100.0


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def complete_checksum(frame):
    """The frame with its UDP or TCP checksum computed (over IPv4 or IPv6, no VLAN, no IPv6
    extension header: what the lab sends); anything else unchanged."""
    if len(frame) < 14:
        return frame
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = 14
    if ethertype == 0x0800 and len(frame) >= ip + 20:
        ihl = (frame[ip] & 0x0F) * 4
        proto = frame[ip + 9]
        total = struct.unpack_from("!H", frame, ip + 2)[0]
        l4, l4_len = ip + ihl, total - ihl
        pseudo = frame[ip + 12:ip + 20] + struct.pack("!BBH", 0, proto, l4_len)
    elif ethertype == 0x86DD and len(frame) >= ip + 40:
        proto = frame[ip + 6]
        l4, l4_len = ip + 40, struct.unpack_from("!H", frame, ip + 4)[0]
        pseudo = frame[ip + 8:ip + 40] + struct.pack("!IxxxB", l4_len, proto)
    else:
        return frame
    at = {17: 6, 6: 16}.get(proto)
    if at is None or l4 + l4_len > len(frame) or l4_len < at + 2:
        return frame
    buf = bytearray(frame)
    struct.pack_into("!H", buf, l4 + at, 0)
    value = 0xFFFF - csum16(pseudo + bytes(buf[l4:l4 + l4_len]))
    if proto == 17 and value == 0:
        value = 0xFFFF  # UDP: 0 means "no checksum"
    struct.pack_into("!H", buf, l4 + at, value)
    return bytes(buf)


def open_leg_end(ifname):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    conf_path = sys.argv[1]
    state = {"conf": read_conf(conf_path), "reload": False}
    signal.signal(signal.SIGHUP, lambda *_: state.update(reload=True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out_of = {}  # fd -> (socket to read, socket to send on)
    for leg in sys.argv[2:]:
        a, b = leg.split(":")
        sa, sb = open_leg_end(a), open_leg_end(b)
        out_of[sa.fileno()] = (sa, sb)
        out_of[sb.fileno()] = (sb, sa)
    rng = random.Random()
    due = []  # (monotonic s, count, socket, frame)
    count = 0
    aux_space = socket.CMSG_SPACE(struct.calcsize("IIIHHHH"))
    while True:
        if state["reload"]:
            state["reload"] = False
            try:
                state["conf"] = read_conf(conf_path)
            except (OSError, ValueError):
                pass  # keep the old figures
        delay, jitter, loss = state["conf"]
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
        try:
            ready, _, _ = select.select(list(out_of), [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            sock, out = out_of[fd]
            for _ in range(FRAMES_PER_WAKE):
                try:
                    frame, anc, _, addr = sock.recvmsg(FRAME_MAX, aux_space)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # ENETDOWN while the cable is cut
                if addr[2] == PACKET_OUTGOING or rng.random() < loss:
                    continue
                for level, kind, data in anc:
                    if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 4:
                        if struct.unpack_from("I", data)[0] & TP_STATUS_CSUMNOTREADY:
                            frame = complete_checksum(frame)
                at = now + max(0.0, delay + rng.uniform(-jitter, jitter))
                count += 1
                heapq.heappush(due, (at, count, out, frame))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, out, frame = heapq.heappop(due)
            try:
                out.send(frame)
            except OSError:
                pass  # the far end's cable is cut, or a frame too big for it: lost


if __name__ == "__main__":
    main()
