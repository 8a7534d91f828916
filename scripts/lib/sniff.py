#!/usr/bin/env python3
"""sniff.py IFACE...: prints every IPv4 UDP or VRRP (protocol 112) frame seen on the given
interfaces of the current network namespace, one line each:

    REALTIME_NS IFACE in|out SRC DST PROTO/PORT

REALTIME_NS is the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME), so a busy
sniffer does not shift the figures. "out" is a frame this namespace sent on IFACE (an
AF_PACKET tap sees both directions). Prints "ready" once the sockets are open. Receives only;
it never sends. Python 3 standard library only.
"""

import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: sniff.py IFACE...")
    socks = {}
    for iface in sys.argv[1:]:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((iface, ETH_P_ALL))
        socks[s.fileno()] = (s, iface)
    print("ready", flush=True)
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    out = sys.stdout
    while True:
        for fd, _ in poller.poll():
            sock, iface = socks[fd]
            data, anc, _, addr = sock.recvmsg(128, socket.CMSG_SPACE(16))
            if len(data) < 34 or data[12:14] != b"\x08\x00":
                continue
            proto = data[23]
            if proto == 17 and len(data) >= 38:
                what = "udp/%d" % struct.unpack("!H", data[36:38])[0]
            elif proto == 112:
                what = "vrrp"
            else:
                continue
            t = 0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    t = sec * 1_000_000_000 + nsec
            direction = "out" if addr[2] == PACKET_OUTGOING else "in"
            out.write("%d %s %s %s %s %s\n" % (t, iface, direction, socket.inet_ntoa(data[26:30]),
                                               socket.inet_ntoa(data[30:34]), what))
            out.flush()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
