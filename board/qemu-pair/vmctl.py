#!/usr/bin/env python3
"""Talks to a qemu-pair guest (scripts/qemu-pair.sh) over its Unix sockets.

  vmctl.py exec CONSOLE_SOCKET TIMEOUT_S COMMAND
      Runs COMMAND in the shell on the guest's console (ttyS0), prints its output and exits
      with its exit status; 124 when no answer came within TIMEOUT_S (the shell not up yet,
      or the guest hung), 125 when the socket cannot be reached.
  vmctl.py summary < STATUS_JSON
      Prints `hapair status --json` as one line of KEY=VALUE words for the test script:
      state peer_alive peer_state serial ucast (up|down) wd_armed wd_timeout_ms vip (the
      state of the ip resource), and the fence's: fence_mode, fence_delay_left_ms (while a
      fence command waits its delay), fence_ok fence_ago_ms fence_took_ms fence_output (its
      last run, the output's blanks as _; absent before the first); health (ok|unhealthy),
      health_sources (the sources its reasons name: ipmi,errors; - when none), handovers,
      failovers; with an `ipmi` source: ipmi (reachable|unreachable), ipmi_sensors (how
      many), ipmi_NAME (each sensor's reading, the name's blanks as _), sel_latched,
      sel_failures.
  vmctl.py gap PROBE_LOG [SINCE]
      The longest silence in a `ping -D -O` log, the time between two answers in seconds,
      counting only answers from SINCE (seconds since the epoch) on, and the answer count.
  vmctl.py qmp QMP_SOCKET COMMAND [JSON_ARGUMENTS]
      Runs one QMP command, prints the "return" value as JSON; exit 1 on a QMP error.
  vmctl.py events QMP_SOCKET LOG
      Appends every QMP event (WATCHDOG, RESET, SHUTDOWN, ...) to LOG as "HOST_EPOCH_SECONDS
      EVENT DATA": the host's own record of when a guest was reset. When QEMU closes the
      socket it logs "CLOSED {}" and connects again as soon as a new QEMU listens there (a
      BMC's power on relaunches QEMU), logging "CONNECTED {}"; it runs until killed.

It is a tiny expect: it brackets the command with markers and waits for the closing one. The
console echoes what is typed, so the markers are written split ("@@QP""END") and only the
shell's output joins them. It does not keep a session: one connection per command.
"""

import json
import re
import socket
import sys
import time
import uuid

BEGIN = "@@QPBEGIN"
END_RE = re.compile(r"@@QPEND:(\d+)")


def console_exec(path, timeout, command):
    deadline = time.monotonic() + timeout
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError as error:
        print(f"vmctl: {path}: {error}", file=sys.stderr)
        return 125
    tag = uuid.uuid4().hex[:8]
    begin = f"{BEGIN}{tag}"
    line = (
        f'echo "@@QP""BEGIN{tag}"; {command}; echo "@@QP""END:$?"\n'
    )
    # Ctrl-U first: throw away anything half-typed on the line by an earlier client.
    sock.sendall(b"\x15" + line.encode())
    received = ""
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            break
        received += chunk.decode("utf-8", "replace")
        start = received.find(begin + "\r\n")
        if start < 0:
            start = received.find(begin + "\n")
        if start < 0:
            continue
        body = received[start + len(begin):]
        match = END_RE.search(body)
        if match:
            sock.close()
            sys.stdout.write(body[: match.start()].replace("\r", "").lstrip("\n"))
            return int(match.group(1))
    sock.close()
    print(f"vmctl: {path}: no answer to {command!r} within {timeout}s", file=sys.stderr)
    return 124


def qmp(path, command, arguments):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    stream = sock.makefile("rwb")

    def call(message):
        stream.write(json.dumps(message).encode() + b"\n")
        stream.flush()
        while True:
            reply = json.loads(stream.readline())
            if "return" in reply or "error" in reply:
                return reply

    json.loads(stream.readline())  # the greeting
    call({"execute": "qmp_capabilities"})
    message = {"execute": command}
    if arguments:
        message["arguments"] = json.loads(arguments)
    reply = call(message)
    sock.close()
    if "error" in reply:
        print(f"vmctl: qmp {command}: {reply['error']}", file=sys.stderr)
        return 1
    print(json.dumps(reply["return"]))
    return 0


def summary(text):
    status = json.loads(text)
    words = {"state": status["state"]}
    peer = status["peer"]
    words["peer_alive"] = str(peer["alive"]).lower()
    words["peer_state"] = peer["state"]
    for link in peer["links"]:
        medium = link["medium"].split()[0]
        words[medium] = "up" if link["up"] else "down"
    health = status["health"]
    words["health"] = "ok" if health["ok"] else "unhealthy"
    # The sources named by the reasons (each begins with its source: "ipmi CPU Temp: ...").
    sources = sorted({reason.split()[0] for reason in health["reasons"] if reason})
    words["health_sources"] = ",".join(sources) or "-"
    watchdog = health["watchdog"]
    words["wd_armed"] = str(watchdog["armed"]).lower()
    words["wd_timeout_ms"] = watchdog["timeout_ms"]
    ipmi = health.get("ipmi")
    if ipmi is not None:
        words["ipmi"] = "reachable" if ipmi["reachable"] else "unreachable"
        words["ipmi_sensors"] = len(ipmi["sensors"])
        for sensor in ipmi["sensors"]:
            # ipmi_CPU_Temp=45.0, ipmi_12V=12.0 (none: no reading)
            name = "_".join(sensor["name"].split())
            value = sensor["value"]
            words[f"ipmi_{name}"] = "none" if value is None else f"{float(value):.1f}"
        words["sel_latched"] = str(ipmi["sel"]["latched"]).lower()
        words["sel_failures"] = ipmi["sel"]["failures"]
    counters = status["counters"]
    words["handovers"] = counters["handovers"]
    words["failovers"] = counters["failovers"]
    for resource in status["resources"]:
        if resource["kind"] == "ip":
            words["vip"] = resource["state"]
        else:
            words[f"res_{resource['name']}"] = resource["state"]
    for drbd in status.get("drbd", []):
        # drbd_cs=Connected drbd_role=Primary drbd_disk=UpToDate drbd_sync=- (DRBD mode)
        words["drbd_cs"] = drbd["connection"]
        words["drbd_role"] = drbd["role"]
        words["drbd_peer_role"] = drbd["peer_role"]
        words["drbd_disk"] = drbd["disk"]
        words["drbd_peer_disk"] = drbd["peer_disk"]
        synced = drbd["synced_percent"]
        words["drbd_sync"] = "-" if synced is None else synced
    fence = status["fence"]
    words["fence_mode"] = fence["mode"]
    if fence["delay_left_ms"] is not None:
        words["fence_delay_left_ms"] = fence["delay_left_ms"]
    last = fence["last"]
    if last is not None:
        words["fence_ok"] = str(last["ok"]).lower()
        words["fence_ago_ms"] = last["ago_ms"]
        words["fence_took_ms"] = last["took_ms"]
        words["fence_output"] = "_".join(str(last["output"]).split()) or "-"
    return " ".join(f"{key}={value}" for key, value in words.items())


def gap(path, since):
    """The longest time between two answers in a `ping -D -O` log, and the answer count."""
    answers = []
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line)
            if match and float(match.group(1)) >= since:
                answers.append(float(match.group(1)))
    longest = max((b - a for a, b in zip(answers, answers[1:])), default=0.0)
    return f"{longest:.1f} answers={len(answers)}"


def events(path, log_path):
    with open(log_path, "a", encoding="utf-8") as log:

        def write(event, data):
            log.write(f"{time.time():.3f} {event} {json.dumps(data)}\n")
            log.flush()

        connected = False
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(path)
                stream = sock.makefile("rwb")
                json.loads(stream.readline())  # the greeting
                stream.write(b'{"execute": "qmp_capabilities"}\n')
                stream.flush()
                connected = True
                write("CONNECTED", {})
                for line in stream:
                    message = json.loads(line)
                    if "event" in message:
                        write(message["event"], message.get("data", {}))
            except (OSError, ValueError):
                pass
            sock.close()
            if connected:
                write("CLOSED", {})
                connected = False
            time.sleep(0.1)


def main(argv):
    if argv == ["summary"]:
        try:
            print(summary(sys.stdin.read()))
            return 0
        except (ValueError, KeyError, TypeError) as error:
            print(f"vmctl: summary: not a status: {error}", file=sys.stderr)
            return 1
    if len(argv) in (2, 3) and argv[0] == "gap":
        print(gap(argv[1], float(argv[2]) if len(argv) == 3 else 0.0))
        return 0
    if len(argv) == 4 and argv[0] == "exec":
        return console_exec(argv[1], float(argv[2]), argv[3])
    if len(argv) == 3 and argv[0] == "events":
        try:
            return events(argv[1], argv[2])
        except OSError as error:
            print(f"vmctl: events {argv[1]}: {error}", file=sys.stderr)
            return 125
    if len(argv) in (3, 4) and argv[0] == "qmp":
        try:
            return qmp(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
        except (OSError, ValueError) as error:
            print(f"vmctl: qmp {argv[1]}: {error}", file=sys.stderr)
            return 125
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
