#!/usr/bin/env bash
# The hapair namespace lab: two nodes, a client, a bridged service LAN, a crossover cable and a
# serial null-modem, all on one machine, for the end-to-end tests, the benchmarks and the demo.
# Run as root. It does not start hapair itself, and never assigns the VIP.
#
# Usage: lab.sh COMMAND [--name NAME]      (NAME: 1-12 of [a-z0-9], default "lab")
#   up                       build the lab (first removing leftovers of an earlier NAME run)
#   down                     remove everything the lab made: namespaces (and any process still
#                            in them), the serial relay, the state directory
#   status                   what exists; exit 0 up, 1 degraded, 3 not up
#   env                      print the lab's shell variables (source-able, see below)
#   exec NODE CMD...         run CMD in NODE's namespace (NODE: alpha, beta, client)
#   cut lan|xover NODE [--loss]   pull NODE's cable: the far end goes down, so NODE loses
#                            carrier and stays admin up; with --loss instead drop everything
#                            NODE sends on it (one-way; netem, or a zero-length pfifo)
#   restore lan|xover NODE   plug it back (link up, netem removed)
#   cut serial | serial cut  stop the relay: the ptys hang up (EIO) and their links vanish
#   restore serial | serial restore   start a new relay; the links point at the new ptys
#
# What `up` makes (RUN is a fresh run id, so names are unique per run):
#   namespaces  hlab-NAME-RUN-alpha, -beta, -client, -lan (the switch)
#   LAN         bridge br0 in -lan, ports alpha, beta, client; 192.0.2.0/24 and 2001:db8::/64
#               alpha lan0 192.0.2.1  2001:db8::1 | beta lan0 192.0.2.2  2001:db8::2
#               client lan0 192.0.2.10 2001:db8::10 | VIP 192.0.2.100, 2001:db8::100 (not set)
#               a second VIP for two resource groups (active/active): 192.0.2.101 (not set)
#   crossover   alpha xover0 198.51.100.1/30 <-> beta xover0 198.51.100.2/30
#   serial      /run/hapair-lab/NAME/alpha-tty <-> beta-tty (socat pty relay, pid in relay.pid)
# State lives in /run/hapair-lab/NAME/: env (the variables below), namespaces, relay.pid.
#   LAB_NAME LAB_RUN LAB_DIR LAB_NS_ALPHA LAB_NS_BETA LAB_NS_CLIENT LAB_NS_LAN
#   LAB_TTY_ALPHA LAB_TTY_BETA LAB_VIP4 LAB_VIP4_2 LAB_VIP6 LAB_MAC_ALPHA LAB_MAC_BETA
set -Eeuo pipefail

STATE_ROOT=/run/hapair-lab
NAME=lab

die() { echo "lab.sh: $*" >&2; exit 1; }
log() { echo "lab.sh: $*" >&2; }

usage() { awk '/^# Usage:/,/serial restore/' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Pulls --name NAME out of the arguments; the rest stay in ARGS.
parse_args() {
    ARGS=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --name) [ $# -ge 2 ] || usage; NAME=$2; shift 2 ;;
            --name=*) NAME=${1#--name=}; shift ;;
            *) ARGS+=("$1"); shift ;;
        esac
    done
    [[ $NAME =~ ^[a-z0-9]{1,12}$ ]] || die "bad --name '$NAME' (1-12 of a-z0-9)"
    DIR=$STATE_ROOT/$NAME
    PREFIX=hlab-$NAME-
}

load_env() {
    [ -f "$DIR/env" ] || die "lab '$NAME' is not up (no $DIR/env)"
    # shellcheck disable=SC1091
    . "$DIR/env"
}

ns_of() {
    case "$1" in
        alpha) echo "$LAB_NS_ALPHA" ;;
        beta) echo "$LAB_NS_BETA" ;;
        client) echo "$LAB_NS_CLIENT" ;;
        lan) echo "$LAB_NS_LAN" ;;
        *) die "unknown node '$1' (alpha, beta, client)" ;;
    esac
}

# --- up ---------------------------------------------------------------------------------------

add_ns() {
    echo "$1" >>"$DIR/namespaces"   # recorded first, so that a failed up still cleans it
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# lan_port NODE NS ADDR4 ADDR6: NODE's lan0, plugged into bridge port NODE.
lan_port() {
    ip -n "$2" link add lan0 type veth peer name "$1" netns "$LAB_NS_LAN"
    ip -n "$LAB_NS_LAN" link set "$1" master br0 up
    ip -n "$2" link set lan0 up
    ip -n "$2" addr add "$3/24" dev lan0
    ip -n "$2" addr add "$4/64" dev lan0 nodad
}

start_relay() {
    rm -f "$DIR/alpha-tty" "$DIR/beta-tty"
    # In a session of its own, so that closing the terminal lab.sh ran in does not hang it up;
    # setsid does not fork here (a background job is no group leader), so $! is socat's pid.
    setsid socat -d pty,raw,echo=0,link="$DIR/alpha-tty" pty,raw,echo=0,link="$DIR/beta-tty" \
        </dev/null >>"$DIR/relay.log" 2>&1 &
    local pid=$! i
    echo "$pid" >"$DIR/relay.pid"
    for i in $(seq 1 500); do
        [ -e "$DIR/alpha-tty" ] && [ -e "$DIR/beta-tty" ] && return 0
        # Not relay_alive: until setsid has exec'd socat, the child is still called bash.
        running "$pid" || die "serial relay exited: $(tail -n 3 "$DIR/relay.log" 2>/dev/null)"
        sleep 0.01
    done
    die "serial relay made no ptys within 5 s"
}

# The recorded relay is alive and is still our socat (the pid was not reused).
relay_alive() {
    local pid
    pid=$(cat "$DIR/relay.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = socat ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "link=$DIR/alpha-tty"
}

# The process exists and is not a zombie (whoever reaps it may not be quick).
running() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

stop_relay() {
    if relay_alive; then
        local pid
        pid=$(cat "$DIR/relay.pid")
        kill "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 500); do
            running "$pid" || break
            sleep 0.01
        done
        running "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/relay.pid" "$DIR/alpha-tty" "$DIR/beta-tty"
}

mac_of() { ip -n "$1" -br link show dev "$2" | awk '{print $3}'; }

write_env() {
    cat >"$DIR/env.tmp" <<EOF
LAB_NAME=$NAME
LAB_RUN=$LAB_RUN
LAB_DIR=$DIR
LAB_NS_ALPHA=$LAB_NS_ALPHA
LAB_NS_BETA=$LAB_NS_BETA
LAB_NS_CLIENT=$LAB_NS_CLIENT
LAB_NS_LAN=$LAB_NS_LAN
LAB_TTY_ALPHA=$DIR/alpha-tty
LAB_TTY_BETA=$DIR/beta-tty
LAB_VIP4=192.0.2.100
LAB_VIP4_2=192.0.2.101
LAB_VIP6=2001:db8::100
LAB_MAC_ALPHA=$(mac_of "$LAB_NS_ALPHA" lan0)
LAB_MAC_BETA=$(mac_of "$LAB_NS_BETA" lan0)
EOF
    mv "$DIR/env.tmp" "$DIR/env"
}

cmd_up() {
    command -v socat >/dev/null || die "socat is not installed (apt-get install socat)"
    if [ -d "$DIR" ] || [ -n "$(our_namespaces)" ]; then
        log "removing leftovers of an earlier '$NAME' lab"
        cmd_down >/dev/null
    fi
    mkdir -p "$DIR"
    # Whatever the caller's umask: hapair refuses an authkey directory (and a statedir) that
    # group or others may write (SPEC §7.3), and the lab keeps its keys here.
    chmod 0755 "$DIR"
    trap 'log "up failed; cleaning up"; cmd_down >/dev/null 2>&1 || true' ERR
    LAB_RUN=$(printf '%04x%04x' $RANDOM $RANDOM)
    LAB_NS_ALPHA=$PREFIX$LAB_RUN-alpha
    LAB_NS_BETA=$PREFIX$LAB_RUN-beta
    LAB_NS_CLIENT=$PREFIX$LAB_RUN-client
    LAB_NS_LAN=$PREFIX$LAB_RUN-lan
    local ns
    for ns in "$LAB_NS_LAN" "$LAB_NS_ALPHA" "$LAB_NS_BETA" "$LAB_NS_CLIENT"; do add_ns "$ns"; done
    ip -n "$LAB_NS_LAN" link add br0 type bridge forward_delay 0 stp_state 0
    ip -n "$LAB_NS_LAN" link set br0 up
    lan_port alpha "$LAB_NS_ALPHA" 192.0.2.1 2001:db8::1
    lan_port beta "$LAB_NS_BETA" 192.0.2.2 2001:db8::2
    lan_port client "$LAB_NS_CLIENT" 192.0.2.10 2001:db8::10
    ip -n "$LAB_NS_ALPHA" link add xover0 type veth peer name xover0 netns "$LAB_NS_BETA"
    ip -n "$LAB_NS_ALPHA" addr add 198.51.100.1/30 dev xover0
    ip -n "$LAB_NS_BETA" addr add 198.51.100.2/30 dev xover0
    ip -n "$LAB_NS_ALPHA" link set xover0 up
    ip -n "$LAB_NS_BETA" link set xover0 up
    start_relay
    write_env
    trap - ERR
    log "lab '$NAME' up (run $LAB_RUN)"
    cat "$DIR/env"
}

# --- down -------------------------------------------------------------------------------------

# Namespaces of any run of this NAME: recorded ones and any with our prefix.
our_namespaces() {
    {
        cat "$DIR/namespaces" 2>/dev/null || true
        ip netns list 2>/dev/null | awk '{print $1}' | grep -F -- "$PREFIX" || true
    } | sort -u
}

cmd_down() {
    [ -d "$DIR" ] && stop_relay
    local ns pid
    for ns in $(our_namespaces); do
        # Whatever still runs in the lab's namespaces was started in the lab (by its user):
        # end it by pid, or the namespace would outlive `ip netns del`.
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$DIR"
    log "lab '$NAME' down"
}

# --- status -----------------------------------------------------------------------------------

cmd_status() {
    if [ ! -f "$DIR/env" ]; then
        echo "lab '$NAME': not up"
        return 3
    fi
    load_env
    local bad=0 node ns
    echo "lab '$NAME' run $LAB_RUN ($DIR)"
    for node in alpha beta client lan; do
        ns=$(ns_of "$node")
        if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
            echo "  $node: netns $ns"
            ip -n "$ns" -br addr show | grep -v '^lo ' | sed 's/^/    /'
        else
            echo "  $node: netns $ns MISSING"
            bad=1
        fi
    done
    if relay_alive; then
        echo "  serial: relay pid $(cat "$DIR/relay.pid"): $LAB_TTY_ALPHA <-> $LAB_TTY_BETA"
    else
        echo "  serial: relay not running (cut)"
        bad=1
    fi
    return $bad
}

# --- cut and restore --------------------------------------------------------------------------

# cut_target lan|xover NODE: prints "NODE_NS NODE_DEV FAR_NS FAR_DEV": NODE's end of the
# cable and the far end (the switch port for the LAN).
cut_target() {
    case "$1" in
        lan) echo "$(ns_of "$2") lan0 $LAB_NS_LAN $2" ;;
        xover) [ "$2" = alpha ] || [ "$2" = beta ] || die "xover joins alpha and beta only"
               echo "$(ns_of "$2") xover0 $(ns_of "$2") xover0" ;;
        *) die "unknown link '$1' (lan, xover, serial)" ;;
    esac
}

cmd_cut() {
    local what=${1:-} node=${2:-} mode=${3:-}
    load_env
    if [ "$what" = serial ]; then stop_relay; log "serial cut"; return 0; fi
    [ -n "$node" ] || usage
    local node_ns node_dev far_ns far_dev
    read -r node_ns node_dev far_ns far_dev <<<"$(cut_target "$what" "$node")"
    if [ "$mode" = --loss ]; then
        if ! tc -n "$node_ns" qdisc replace dev "$node_dev" root netem loss 100% 2>/dev/null; then
            # No sch_netem in this kernel: a queue of length 0 drops every frame too (the
            # sender sees ENOBUFS instead of silence).
            tc -n "$node_ns" qdisc replace dev "$node_dev" root pfifo limit 0
        fi
    elif [ "$what" = lan ]; then
        ip -n "$far_ns" link set "$far_dev" down     # the switch port: NODE loses carrier
    else
        # The peer's end: NODE sees carrier loss, like a pulled cable, and stays admin up.
        local peer=beta
        [ "$node" = beta ] && peer=alpha
        ip -n "$(ns_of "$peer")" link set xover0 down
    fi
    log "$what $node cut${mode:+ ($mode)}"
}

cmd_restore() {
    local what=${1:-} node=${2:-}
    load_env
    if [ "$what" = serial ]; then
        relay_alive || start_relay
        log "serial restored"
        return 0
    fi
    [ -n "$node" ] || usage
    local node_ns node_dev far_ns far_dev
    read -r node_ns node_dev far_ns far_dev <<<"$(cut_target "$what" "$node")"
    tc -n "$node_ns" qdisc del dev "$node_dev" root 2>/dev/null || true
    if [ "$what" = lan ]; then
        ip -n "$far_ns" link set "$far_dev" up
    else
        ip -n "$LAB_NS_ALPHA" link set xover0 up
        ip -n "$LAB_NS_BETA" link set xover0 up
    fi
    log "$what $node restored"
}

main() {
    parse_args "$@"
    set -- "${ARGS[@]+"${ARGS[@]}"}"
    [ $# -ge 1 ] || usage
    [ "$(id -u)" = 0 ] || die "run as root"
    local cmd=$1
    shift
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) load_env; cat "$DIR/env" ;;
        exec) [ $# -ge 2 ] || usage; load_env; local ns; ns=$(ns_of "$1"); shift
              exec ip netns exec "$ns" "$@" ;;
        cut) cmd_cut "$@" ;;
        restore) cmd_restore "$@" ;;
        serial) case "${1:-}" in
                    cut) cmd_cut serial ;;
                    restore) cmd_restore serial ;;
                    *) usage ;;
                esac ;;
        *) usage ;;
    esac
}

main "$@"
