#!/usr/bin/env bash
# The hapair demo (README "Quick start"), as root on a fresh machine: installs what is missing
# (iproute2, socat, iputils-ping, python3), builds the release binary, brings up the namespace
# lab (scripts/lab.sh), starts a pair (alpha and beta, board/lab/hapair.conf), shows both
# nodes' status, then shows a client's view of the service address 192.0.2.100 while the
# active node dies (SIGKILL plus all its cables pulled): which node answers, the gap in ms,
# and the client's ARP entry moving to the survivor. Then the dead node comes back
# (auto_failback as the configuration says) and the lab is torn down, also on failure or ^C.
#
# --active-active (board/lab/active-active.conf, SPEC §7.1): two resource groups, web (VIP
# 192.0.2.100) at home on alpha and db (192.0.2.101) at home on beta, each node active for its
# own. Waits until each group runs on its home (status --json: groups[].owner), shows both
# nodes, and two clients, one per VIP. alpha dies: beta holds both groups, and db's client saw
# no gap. alpha comes back: web fails back to it, db stays. Then `hapair move db` on beta
# hands db to alpha while web stays (web's client sees no gap), and `hapair online` on beta
# brings db home again.
#
# Usage: scripts/demo.sh [--config FILE | --active-active]  (default board/lab/hapair.conf)
# The client's view comes from scripts/lib/probe.py: a UDP responder in each node's namespace
# answers with its node name (on any of its addresses); a prober in the client's namespace
# asks a VIP every 5 ms.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

NAME=demo
CONF=board/lab/hapair.conf
PORT=7007
BIN=target/release/hapair
PIDS=()
PROBER=
PID_ALPHA=
PID_BETA=
PROBER_DB=
ACTIVE_ACTIVE=

usage() { echo "usage: $0 [--config FILE | --active-active]" >&2; exit 2; }
case "${1:-}" in
    --config) [ $# -eq 2 ] || usage; CONF=$2 ;;
    --active-active) [ $# -eq 1 ] || usage; CONF=board/lab/active-active.conf ACTIVE_ACTIVE=1 ;;
    "") ;;
    *) usage ;;
esac

START=$(date +%s%N)
BOLD='' PLAIN=''
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
say() {
    printf '\n%s[%6.2f s] %s%s\n' "$BOLD" "$(( ($(date +%s%N) - START) / 1000000 ))e-3" "$*" \
        "$PLAIN"
}
note() { echo "           $*"; }
die() { echo "demo.sh: $*" >&2; exit 1; }

install_missing() {
    local pkgs=()
    command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
    command -v socat >/dev/null 2>&1 || pkgs+=(socat)
    command -v ping >/dev/null 2>&1 || pkgs+=(iputils-ping)
    command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        say "Installing ${pkgs[*]}"
        command -v apt-get >/dev/null || die "please install: ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
    command -v cargo >/dev/null ||
        die "cargo is missing: install Rust (https://rustup.rs), then run this again"
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "${LAB_DIR:-}" ] && [ $rc -ne 0 ]; then
        echo "demo.sh: failed; the daemons' last words:" >&2
        tail -n 15 "$LAB_DIR"/alpha.log "$LAB_DIR"/beta.log >&2 2>/dev/null || true
    fi
    scripts/lab.sh down --name "$NAME" >/dev/null 2>&1 || true
    [ $rc -eq 0 ] && say "Lab torn down. That was hapair."
    exit $rc
}

# wait_for SECONDS WHAT CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
    local secs=$1 what=$2 i
    shift 2
    for i in $(seq 1 $((secs * 20))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "timed out after ${secs}s waiting for $what"
}

hp() { local node=$1; shift; "$BIN" "$@" -c "$CONF" --cmdline "$LAB_DIR/$node.cmdline"; }
state_is() { hp "$1" status --json | grep -q "^{\"node\":\"$1\",\"state\":\"$2\""; }
peer_alive() { hp "$1" status --json | grep -q '"alive":true'; }
settled_at() {
    local other=beta
    [ "$1" = beta ] && other=alpha
    state_is "$1" active && state_is "$other" standby && peer_alive "$1"
}
settled_either() { settled_at alpha || settled_at beta; }
# neigh [VIP]: the client's ARP entry for VIP (default the VIP), MACs named.
neigh() {
    ip -n "$LAB_NS_CLIENT" neigh show "${1:-$LAB_VIP4}" dev lan0 |
        sed "s/$LAB_MAC_ALPHA/& (alpha)/I; s/$LAB_MAC_BETA/& (beta)/I"
}
# neigh_is MAC [VIP]
neigh_is() { neigh "${2:-$LAB_VIP4}" | grep -qi "lladdr $1"; }

start_node() {
    local node=$1 ns
    ns=$([ "$node" = alpha ] && echo "$LAB_NS_ALPHA" || echo "$LAB_NS_BETA")
    ip netns exec "$ns" "$BIN" run -c "$CONF" --cmdline "$LAB_DIR/$node.cmdline" \
        </dev/null >>"$LAB_DIR/$node.log" 2>&1 &
    eval "PID_${node^^}=$!"
    PIDS+=($!)
    disown $!   # no "Killed" job notice from bash when the demo kills it
}

setup() {
    [ "$(id -u)" = 0 ] || die "run as root (it builds network namespaces): sudo $0"
    install_missing
    say "Building hapair (cargo build --release)"
    cargo build --release --quiet
    say "Bringing up the lab: namespaces alpha, beta, client; LAN, crossover cable, serial line"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    scripts/lab.sh up --name "$NAME" >/dev/null
    eval "$(scripts/lab.sh --name "$NAME" env)"
    note "service LAN 192.0.2.0/24: alpha .1 ($LAB_MAC_ALPHA), beta .2 ($LAB_MAC_BETA),"
    if [ -n "$ACTIVE_ACTIVE" ]; then
        note "client .10; the VIPs are $LAB_VIP4 (web) and $LAB_VIP4_2 (db); crossover"
        note "198.51.100.0/30; serial: a pty pair"
    else
        note "client .10; the VIP is $LAB_VIP4; crossover 198.51.100.0/30; serial: a pty pair"
    fi
    (umask 077; "$BIN" keygen >"$LAB_DIR/authkey")
    # The daemons run as root and the file holds commands they run: hapair refuses one that
    # is not root's or that others may write (SPEC §7.3), as a user's checkout may be. They
    # read a copy of root's.
    install -m 0644 "$CONF" "$LAB_DIR/hapair.conf"
    CONF_FROM=$CONF CONF=$LAB_DIR/hapair.conf
    local node tty
    for node in alpha beta; do
        tty=$([ $node = alpha ] && echo "$LAB_TTY_ALPHA" || echo "$LAB_TTY_BETA")
        echo "hapair.node=$node hapair.serial=$tty hapair.control=$LAB_DIR/$node.sock" \
            "hapair.statedir=$LAB_DIR/$node hapair.authkey=$LAB_DIR/authkey" \
            "hapair.ping=192.0.2.10" >"$LAB_DIR/$node.cmdline"
    done
    ip netns exec "$LAB_NS_ALPHA" python3 scripts/lib/probe.py serve alpha $PORT & PIDS+=($!)
    ip netns exec "$LAB_NS_BETA" python3 scripts/lib/probe.py serve beta $PORT & PIDS+=($!)
}

ns_of() { [ "$1" = alpha ] && echo "$LAB_NS_ALPHA" || echo "$LAB_NS_BETA"; }
mac_of() { [ "$1" = alpha ] && echo "$LAB_MAC_ALPHA" || echo "$LAB_MAC_BETA"; }
pid_of() { [ "$1" = alpha ] && echo "$PID_ALPHA" || echo "$PID_BETA"; }

show_status() {
    say "hapair status, from $1:"
    hp "$1" status | sed 's/^/    /'
}

# The active node dies: SIGKILL and every cable pulled; the client watches the VIP move.
death_of() {
    local dead=$1 survivor=$2
    say "Killing $dead: SIGKILL to its daemon, and all its cables pulled (LAN, crossover, serial)"
    kill -USR1 "$PROBER"
    kill -KILL "$(pid_of "$dead")"
    scripts/lab.sh cut lan "$dead" --name "$NAME" 2>/dev/null
    scripts/lab.sh cut xover "$dead" --name "$NAME" 2>/dev/null
    scripts/lab.sh cut serial --name "$NAME" 2>/dev/null
    wait_for 30 "$survivor active" state_is "$survivor" active
    wait_for 10 "the client's entry at $survivor's MAC" neigh_is "$(mac_of "$survivor")"
    sleep 0.5   # let the reader see a steady state (not a wait for a condition)
    say "The client's ARP entry for the VIP now: $survivor's MAC, from its gratuitous ARP"
    neigh | sed 's/^/    /'
    show_status "$survivor"
}

# The dead node reboots (its VIP gone), its cables go back in, its daemon starts.
return_of() {
    local node=$1
    say "$node comes back: rebooted (its VIP gone), cables plugged in, daemon started"
    ip -n "$(ns_of "$node")" addr del "$LAB_VIP4/24" dev lan0 2>/dev/null || true
    scripts/lab.sh restore lan "$node" --name "$NAME" 2>/dev/null
    scripts/lab.sh restore xover "$node" --name "$NAME" 2>/dev/null
    scripts/lab.sh restore serial --name "$NAME" 2>/dev/null
    start_node "$node"
    wait_for 30 "$node to see its peer" peer_alive "$node"
    wait_for 30 "the pair to settle" settled_either
    sleep 1
    if grep -Eq '^auto_failback +on' "$CONF"; then
        note "auto_failback on: the VIP goes back to the home node when it is healthy"
    else
        note "auto_failback off: the survivor keeps the VIP, $node waits as standby"
    fi
    show_status "$node"
}

main() {
    setup
    say "Starting the pair with $CONF_FROM (home alpha)"
    start_node alpha
    start_node beta
    wait_for 30 "one node active, the other standby" settled_either
    local active=alpha standby=beta
    if settled_at beta; then active=beta standby=alpha; fi
    note "$active holds the VIP (the home node wins unless it is not yet healthy, e.g. its"
    note "first ping to 192.0.2.10 has not come back)"
    show_status "$active"
    show_status "$standby"

    say "The client asks $LAB_VIP4:$PORT who it is, every 5 ms (live below, client's clock)"
    ip netns exec "$LAB_NS_CLIENT" python3 -u scripts/lib/probe.py watch "$LAB_VIP4" $PORT &
    PROBER=$!
    PIDS+=("$PROBER")
    wait_for 10 "an answer from $active" neigh_is "$(mac_of "$active")"
    sleep 0.5
    say "The client's ARP entry for the VIP: $active's MAC"
    neigh | sed 's/^/    /'

    death_of "$active" "$standby"
    return_of "$active"
    say "The client's ARP entry for the VIP:"
    neigh | sed 's/^/    /'
    say "What the client saw:"
    kill -TERM "$PROBER"
    wait "$PROBER" 2>/dev/null || true
}

# --- active/active (--active-active) ------------------------------------------------------

# groups_of NODE: every group as NODE sees it, "NAME=OWNER/STATE ..." in file order (OWNER: the
# node that holds it, - for nobody; STATE: NODE's own state of it), from status --json.
groups_of() {
    hp "$1" status --json | python3 -c '
import json, sys
print(" ".join("%s=%s/%s" % (g["name"], g["owner"] or "-", g["state"])
               for g in json.load(sys.stdin)["groups"]))'
}
groups_are() { [ "$(groups_of "$1")" = "$2" ]; }
role_for() { [ "$1" = "$2" ] && echo active || echo standby; }
# placed WEB DB: both nodes alive and agreeing that web runs on WEB and db on DB, each group
# active where it runs and standby on the other node.
placed() {
    local web=$1 db=$2 node
    for node in alpha beta; do
        peer_alive "$node" || return 1
        groups_are "$node" "web=$web/$(role_for "$node" "$web") db=$db/$(role_for "$node" "$db")" ||
            return 1
    done
}
neighs() { neigh "$LAB_VIP4" | sed 's/^/    web: /'; neigh "$LAB_VIP4_2" | sed 's/^/    db:  /'; }

# start_prober VAR LABEL VIP: a client prober of VIP whose lines carry LABEL; its pid in VAR.
start_prober() {
    ip netns exec "$LAB_NS_CLIENT" python3 -u scripts/lib/probe.py watch "$3" $PORT \
        --label "$2" &
    eval "$1=$!"
    PIDS+=($!)
}

# stop_prober PID: its summary, then it is gone.
stop_prober() {
    kill -TERM "$1"
    wait "$1" 2>/dev/null || true
}

main_active_active() {
    setup
    say "Starting the pair with $CONF_FROM: group web (VIP $LAB_VIP4) at home on alpha,"
    note "group db (VIP $LAB_VIP4_2) at home on beta, both auto_failback on"
    start_node alpha
    start_node beta
    wait_for 30 "each group on its home node (web on alpha, db on beta)" placed alpha beta
    note "each node is active for its own group (status --json: groups[].owner)"
    show_status alpha
    show_status beta

    say "Two clients ask who answers every 5 ms: one $LAB_VIP4 (web), one $LAB_VIP4_2 (db)"
    start_prober PROBER "web client" "$LAB_VIP4"
    start_prober PROBER_DB "db client " "$LAB_VIP4_2"
    wait_for 10 "an answer from alpha for web" neigh_is "$LAB_MAC_ALPHA" "$LAB_VIP4"
    wait_for 10 "an answer from beta for db" neigh_is "$LAB_MAC_BETA" "$LAB_VIP4_2"
    sleep 0.5
    say "The client's ARP entries: web's VIP at alpha's MAC, db's at beta's"
    neighs

    say "Killing alpha: SIGKILL to its daemon, and all its cables pulled (LAN, crossover, serial)"
    kill -USR1 "$PROBER" "$PROBER_DB"
    kill -KILL "$PID_ALPHA"
    scripts/lab.sh cut lan alpha --name "$NAME" 2>/dev/null
    scripts/lab.sh cut xover alpha --name "$NAME" 2>/dev/null
    scripts/lab.sh cut serial --name "$NAME" 2>/dev/null
    wait_for 30 "beta to hold both groups" groups_are beta "web=beta/active db=beta/active"
    wait_for 10 "the client's entry for web at beta's MAC" neigh_is "$LAB_MAC_BETA" "$LAB_VIP4"
    sleep 0.5   # let the reader see a steady state (not a wait for a condition)
    say "beta holds both groups; db's client, answered by beta all along, since the fault:"
    kill -USR2 "$PROBER_DB"
    sleep 0.2
    neighs
    show_status beta

    say "alpha comes back: rebooted (its VIP gone), cables plugged in, daemon started"
    ip -n "$LAB_NS_ALPHA" addr del "$LAB_VIP4/24" dev lan0 2>/dev/null || true
    scripts/lab.sh restore lan alpha --name "$NAME" 2>/dev/null
    scripts/lab.sh restore xover alpha --name "$NAME" 2>/dev/null
    scripts/lab.sh restore serial --name "$NAME" 2>/dev/null
    start_node alpha
    wait_for 30 "alpha to see its peer" peer_alive alpha
    wait_for 30 "web back on alpha, db still on beta" placed alpha beta
    wait_for 10 "the client's entry for web at alpha's MAC" neigh_is "$LAB_MAC_ALPHA" "$LAB_VIP4"
    sleep 0.5
    note "auto_failback on: web went back home to alpha; db did not move"
    neighs
    show_status alpha

    say "On beta: hapair move db (db goes to alpha; web stays where it runs)"
    kill -RTMIN "$PROBER" "$PROBER_DB"
    hp beta move db | sed 's/^/    /'
    wait_for 30 "db on alpha, web still on alpha" placed alpha alpha
    wait_for 10 "the client's entry for db at alpha's MAC" neigh_is "$LAB_MAC_ALPHA" "$LAB_VIP4_2"
    sleep 0.5
    say "db moved to alpha; web's client, answered by alpha all along, since the move:"
    kill -USR2 "$PROBER"
    sleep 0.2
    neighs
    show_status beta

    say "On beta: hapair online (the move ends; db goes home to beta by auto_failback)"
    kill -RTMIN "$PROBER_DB"
    hp beta online | sed 's/^/    /'
    wait_for 30 "db back on beta, web on alpha" placed alpha beta
    wait_for 10 "the client's entry for db at beta's MAC" neigh_is "$LAB_MAC_BETA" "$LAB_VIP4_2"
    sleep 0.5
    neighs
    show_status alpha
    show_status beta

    say "What the web client ($LAB_VIP4) saw:"
    stop_prober "$PROBER"
    say "What the db client ($LAB_VIP4_2) saw:"
    stop_prober "$PROBER_DB"
}

if [ -n "$ACTIVE_ACTIVE" ]; then main_active_active; else main; fi
