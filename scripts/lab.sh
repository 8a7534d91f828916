#!/usr/bin/env bash
# The hapair namespace lab: two nodes, a client, a bridged service LAN, a crossover cable and a
# serial null-modem, all on one machine, for the end-to-end tests, the benchmarks and the demo.
# Run as root. It does not start hapair itself, and never assigns the VIP.
#
# Usage: lab.sh COMMAND [--name NAME]      (NAME: 1-12 of [a-z0-9], default "lab")
#   up                       build the lab (first removing leftovers of an earlier NAME run)
#   up --routed [--delay D] [--jitter J] [--loss L]   the routed lab instead (below): two
#                            sites joined by a router over impaired WAN links, a name server;
#                            D J L: the alpha<->beta path, each direction (default 40ms
#                            10ms 1%, or $LAB_WAN_DELAY $LAB_WAN_JITTER $LAB_WAN_LOSS)
#   wan D J L                routed lab: change the WAN's delay, jitter and loss (0ms 0ms 0%:
#                            a clean path)
#   down                     remove everything the lab made: namespaces (and any process still
#                            in them), the serial relay, the state directory
#   status                   what exists; exit 0 up, 1 degraded, 3 not up
#   env                      print the lab's shell variables (source-able, see below)
#   exec NODE CMD...         run CMD in NODE's namespace (NODE: alpha, beta, client; routed
#                            lab also router, dns, wan)
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
#   LAB_NAME LAB_MODE(flat) LAB_RUN LAB_DIR LAB_NS_ALPHA LAB_NS_BETA LAB_NS_CLIENT LAB_NS_LAN
#   LAB_TTY_ALPHA LAB_TTY_BETA LAB_VIP4 LAB_VIP4_2 LAB_VIP6 LAB_MAC_ALPHA LAB_MAC_BETA
#
# What `up --routed` makes instead (a two-site pair: README "A routed pair"; no VIP, no LAN
# shared by the nodes):
#   namespaces  hlab-NAME-RUN-alpha, -beta, -client, -router, -dns, -lan (the WAN: where the
#               nodes' site cables end; `cut lan NODE` pulls NODE's cable there)
#   site A      alpha lan0 192.0.2.1/24 2001:db8:a::1/64, gateway router 192.0.2.254 (:fe)
#   site B      beta lan0 203.0.113.2/24 2001:db8:b::2/64, gateway router 203.0.113.254 (:fe)
#   core        bridge br0 in -router, 198.51.100.128/25 2001:db8:c::/64: router .254 (::fe),
#               client 198.51.100.200 (::200), name server 198.51.100.253 (::53)
#   WAN         each site's cable passes the WAN namespace, which delays and drops frames in
#               each direction: half the path's figures per site (20ms +- 5ms, 0.5 % by
#               default), so alpha<->beta sees D +- J and about L. By tc netem on bridges
#               where the kernel has sch_netem (LAB_WAN_IMPL=netem), else by a relay
#               (scripts/lib/wan.py, LAB_WAN_IMPL=relay, pid in wan.pid, figures in wan.conf)
#   routes      each namespace routes the lab's other subnets via the router, nothing else
#   name server named (BIND) in -dns, authoritative for pair.example, RFC 2136 updates of
#               svc.pair.example signed with the TSIG key in tsig.key (nsupdate -k format;
#               hmac-sha256, name hapair-lab); the name has no record until a node adds it
#   crossover, serial   as above (the fast link of a mixed pair)
#   LAB_MODE(routed) LAB_NS_ROUTER LAB_NS_DNS LAB_ADDR_ALPHA LAB_ADDR_BETA LAB_ADDR6_ALPHA
#   LAB_ADDR6_BETA LAB_GW_ALPHA LAB_GW_BETA LAB_CLIENT4 LAB_CLIENT6 LAB_DNS4 LAB_DNS6
#   LAB_DNS_ZONE LAB_DNS_NAME LAB_DNS_KEY LAB_WAN LAB_WAN_IMPL, beside the names above but
#   the VIPs
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
        lan|wan) echo "$LAB_NS_LAN" ;;
        router|dns) [ "${LAB_MODE:-flat}" = routed ] || die "no '$1' in a flat lab (up --routed)"
                    if [ "$1" = router ]; then echo "$LAB_NS_ROUTER"; else echo "$LAB_NS_DNS"; fi ;;
        *) die "unknown node '$1' (alpha, beta, client; routed: router, dns, wan)" ;;
    esac
}

# --- up ---------------------------------------------------------------------------------------

add_ns() {
    echo "$1" >>"$DIR/namespaces"   # recorded first, so that a failed up still cleans it
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# bridge_port BRIDGE_NS PREFIX NAME NS ADDR4 ADDR6: NS's lan0, plugged into port NAME of br0
# in BRIDGE_NS, with ADDR4/PREFIX and ADDR6/64.
bridge_port() {
    ip -n "$4" link add lan0 type veth peer name "$3" netns "$1"
    ip -n "$1" link set "$3" master br0 up
    ip -n "$4" link set lan0 up
    ip -n "$4" addr add "$5/$2" dev lan0
    ip -n "$4" addr add "$6/64" dev lan0 nodad
}

# lan_port NODE NS ADDR4 ADDR6: NODE's lan0, plugged into bridge port NODE.
lan_port() { bridge_port "$LAB_NS_LAN" 24 "$@"; }

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

# env_common MODE: the variables of both modes (the head of $DIR/env).
env_common() {
    cat <<EOF
LAB_NAME=$NAME
LAB_MODE=$1
LAB_RUN=$LAB_RUN
LAB_DIR=$DIR
LAB_NS_ALPHA=$LAB_NS_ALPHA
LAB_NS_BETA=$LAB_NS_BETA
LAB_NS_CLIENT=$LAB_NS_CLIENT
LAB_NS_LAN=$LAB_NS_LAN
LAB_TTY_ALPHA=$DIR/alpha-tty
LAB_TTY_BETA=$DIR/beta-tty
LAB_MAC_ALPHA=$(mac_of "$LAB_NS_ALPHA" lan0)
LAB_MAC_BETA=$(mac_of "$LAB_NS_BETA" lan0)
EOF
}

write_env() {
    env_common flat >"$DIR/env.tmp"
    cat >>"$DIR/env.tmp" <<EOF
LAB_VIP4=192.0.2.100
LAB_VIP4_2=192.0.2.101
LAB_VIP6=2001:db8::100
EOF
    mv "$DIR/env.tmp" "$DIR/env"
}

# The lab's directory, fresh, and the run's names; a failed up from here on cleans up.
begin_up() {
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
}

# The crossover cable between alpha and beta.
crossover() {
    ip -n "$LAB_NS_ALPHA" link add xover0 type veth peer name xover0 netns "$LAB_NS_BETA"
    ip -n "$LAB_NS_ALPHA" addr add 198.51.100.1/30 dev xover0
    ip -n "$LAB_NS_BETA" addr add 198.51.100.2/30 dev xover0
    ip -n "$LAB_NS_ALPHA" link set xover0 up
    ip -n "$LAB_NS_BETA" link set xover0 up
}

cmd_up() {
    if [ "${1:-}" = --routed ]; then
        shift
        cmd_up_routed "$@"
        return
    fi
    [ $# -eq 0 ] || usage
    command -v socat >/dev/null || die "socat is not installed (apt-get install socat)"
    begin_up
    local ns
    for ns in "$LAB_NS_LAN" "$LAB_NS_ALPHA" "$LAB_NS_BETA" "$LAB_NS_CLIENT"; do add_ns "$ns"; done
    ip -n "$LAB_NS_LAN" link add br0 type bridge forward_delay 0 stp_state 0
    ip -n "$LAB_NS_LAN" link set br0 up
    lan_port alpha "$LAB_NS_ALPHA" 192.0.2.1 2001:db8::1
    lan_port beta "$LAB_NS_BETA" 192.0.2.2 2001:db8::2
    lan_port client "$LAB_NS_CLIENT" 192.0.2.10 2001:db8::10
    crossover
    start_relay
    write_env
    trap - ERR
    log "lab '$NAME' up (run $LAB_RUN)"
    cat "$DIR/env"
}

# --- up --routed -----------------------------------------------------------------------------

# ms_of 40ms|40|0.04s: whole milliseconds; pct_of 1%|1: a percentage (up to 2 decimals).
ms_of() {
    case "$1" in
        *ms) [[ ${1%ms} =~ ^[0-9]+$ ]] && echo "${1%ms}" && return ;;
        *s) [[ ${1%s} =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
                awk -v s="${1%s}" 'BEGIN { printf "%d", s * 1000 }' && return ;;
        *) [[ $1 =~ ^[0-9]+$ ]] && echo "$1" && return ;;
    esac
    die "bad duration '$1' (40ms, 0.04s)"
}
pct_of() {
    if [[ ${1%\%} =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v p="${1%\%}" 'BEGIN { exit !(p <= 100) }'
    then
        echo "${1%\%}"
    else
        die "bad loss '$1' (1%, 0.5%)"
    fi
}

# wan_figures D J L: "DELAY JITTER LOSS" of one site's cable, each direction (ms ms %): half
# the path's delay and jitter, and the loss that, met twice, is L.
wan_figures() {
    local d j l
    d=$(ms_of "$1") j=$(ms_of "$2") l=$(pct_of "$3")
    awk -v d="$d" -v j="$j" -v l="$l" \
        'BEGIN { printf "%g %g %.4f\n", d / 2, j / 2, 100 * (1 - sqrt(1 - l / 100)) }'
}

# netem_usable: the kernel has sch_netem (tried on a dummy device in a namespace of our own).
netem_usable() {
    local ns="${PREFIX}netem-probe-$$" ok=1
    ip netns add "$ns" 2>/dev/null || return 1
    ip -n "$ns" link add nprobe0 type dummy 2>/dev/null &&
        tc -n "$ns" qdisc add dev nprobe0 root netem delay 1ms 2>/dev/null && ok=0
    ip netns del "$ns" 2>/dev/null || true
    return $ok
}

# site_cable NODE NS ROUTER_PORT ADDR4/P ADDR6/P GW4 GW6: NODE's lan0, whose cable ends in the
# WAN namespace as port NODE; the router's ROUTER_PORT ends there as port r-NODE.
site_cable() {
    local node=$1 ns=$2 rport=$3
    ip -n "$ns" link add lan0 type veth peer name "$node" netns "$LAB_NS_LAN"
    ip -n "$LAB_NS_ROUTER" link add "$rport" type veth peer name "r-$node" netns "$LAB_NS_LAN"
    ip -n "$ns" link set lan0 up
    ip -n "$ns" addr add "$4" dev lan0
    ip -n "$ns" addr add "$5" dev lan0 nodad
    ip -n "$LAB_NS_ROUTER" link set "$rport" up
    ip -n "$LAB_NS_ROUTER" addr add "$6/${4#*/}" dev "$rport"
    ip -n "$LAB_NS_ROUTER" addr add "$7/${5#*/}" dev "$rport" nodad
    ip -n "$LAB_NS_LAN" link set "$node" up
    ip -n "$LAB_NS_LAN" link set "r-$node" up
}

# core_port NAME NS ADDR4 ADDR6: NS's lan0 on the router's core bridge, port NAME; routes to
# the sites via the router.
core_port() {
    bridge_port "$LAB_NS_ROUTER" 25 "$@"
    lab_routes "$2" 198.51.100.254 2001:db8:c::fe 192.0.2.0/24 203.0.113.0/24 -- \
        2001:db8:a::/64 2001:db8:b::/64
}

# lab_routes NS GW4 GW6 NET4... -- NET6...: routes to the lab's other subnets, no default.
lab_routes() {
    local ns=$1 gw4=$2 gw6=$3 net v6=0
    shift 3
    for net in "$@"; do
        if [ "$net" = -- ]; then v6=1; continue; fi
        if [ $v6 = 0 ]; then
            ip -n "$ns" route add "$net" via "$gw4"
        else
            ip -n "$ns" -6 route add "$net" via "$gw6"
        fi
    done
}

# wan_apply: the figures of wan.conf on the WAN's four directions (netem), or to the relay.
wan_apply() {
    local d j l port
    read -r d j l <"$DIR/wan.conf"
    if [ "$LAB_WAN_IMPL" = netem ]; then
        for port in alpha r-alpha beta r-beta; do
            tc -n "$LAB_NS_LAN" qdisc replace dev "$port" root netem \
                delay "${d}ms" "${j}ms" loss "${l}%"
        done
    elif [ -f "$DIR/wan.pid" ]; then
        kill -HUP "$(cat "$DIR/wan.pid")"
    fi
}

# wan_links: the WAN namespace joins each node's port to its router port: two bridges with
# netem on every port, or the relay.
wan_links() {
    ip netns exec "$LAB_NS_LAN" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1
    if [ "$LAB_WAN_IMPL" = netem ]; then
        local node
        for node in alpha beta; do
            ip -n "$LAB_NS_LAN" link add "br-$node" type bridge forward_delay 0 stp_state 0
            ip -n "$LAB_NS_LAN" link set "$node" master "br-$node"
            ip -n "$LAB_NS_LAN" link set "r-$node" master "br-$node"
            ip -n "$LAB_NS_LAN" link set "br-$node" up
        done
        wan_apply
        return
    fi
    local chrt=()
    # The relay is the network: ahead of the daemons (SCHED_FIFO 60, as the bench's probes).
    chrt -f 60 true 2>/dev/null && chrt=(chrt -f 60)
    setsid ip netns exec "$LAB_NS_LAN" "${chrt[@]}" python3 "$(dirname "$0")/lib/wan.py" \
        "$DIR/wan.conf" alpha:r-alpha beta:r-beta </dev/null >>"$DIR/wan.log" 2>&1 &
    echo $! >"$DIR/wan.pid"
}

# The name server: BIND's named in the dns namespace, authoritative for pair.example,
# updates of svc.pair.example allowed with the lab's TSIG key. (Knot 3.2 left about one
# update in twenty unanswered for a second here; named answers each at once.)
start_dns() {
    local d=$DIR/dns secret
    mkdir -p "$d"
    secret=$(head -c 32 /dev/urandom | base64)
    (umask 077; cat >"$DIR/tsig.key" <<EOF
key "hapair-lab" {
	algorithm hmac-sha256;
	secret "$secret";
};
EOF
    )
    cat >"$d/named.conf" <<EOF
options {
    directory "$d";
    pid-file "$d/named.pid";
    listen-on port 53 { 198.51.100.253; };
    listen-on-v6 port 53 { 2001:db8:c::53; };
    recursion no;
    dnssec-validation no;
    notify no;
};
controls { };
include "$DIR/tsig.key";
zone "pair.example" {
    type primary;
    file "$d/pair.example.zone";
    update-policy { grant hapair-lab name svc.pair.example. A AAAA; };
};
EOF
    cat >"$d/pair.example.zone" <<EOF
\$ORIGIN pair.example.
\$TTL 60
@   SOA ns hostmaster 1 3600 600 86400 1
@   NS  ns
ns  A   198.51.100.253
ns  AAAA 2001:db8:c::53
EOF
    setsid ip netns exec "$LAB_NS_DNS" named -g -c "$d/named.conf" </dev/null \
        >>"$DIR/named.log" 2>&1 &
    echo $! >"$DIR/named.pid"
    for _ in $(seq 1 500); do
        ip netns exec "$LAB_NS_DNS" dig +short +time=1 +tries=1 @198.51.100.253 \
            pair.example SOA 2>/dev/null | grep -q hostmaster && return 0
        running "$(cat "$DIR/named.pid")" || die "named exited: $(tail -n 3 "$DIR/named.log")"
        sleep 0.01
    done
    die "named did not answer within 5 s: $(tail -n 3 "$DIR/named.log")"
}

write_env_routed() {
    env_common routed >"$DIR/env.tmp"
    cat >>"$DIR/env.tmp" <<EOF
LAB_NS_ROUTER=$LAB_NS_ROUTER
LAB_NS_DNS=$LAB_NS_DNS
LAB_ADDR_ALPHA=192.0.2.1
LAB_ADDR_BETA=203.0.113.2
LAB_ADDR6_ALPHA=2001:db8:a::1
LAB_ADDR6_BETA=2001:db8:b::2
LAB_GW_ALPHA=192.0.2.254
LAB_GW_BETA=203.0.113.254
LAB_CLIENT4=198.51.100.200
LAB_CLIENT6=2001:db8:c::200
LAB_DNS4=198.51.100.253
LAB_DNS6=2001:db8:c::53
LAB_DNS_ZONE=pair.example
LAB_DNS_NAME=svc.pair.example
LAB_DNS_KEY=$DIR/tsig.key
LAB_WAN="$LAB_WAN"
LAB_WAN_IMPL=$LAB_WAN_IMPL
EOF
    mv "$DIR/env.tmp" "$DIR/env"
}

cmd_up_routed() {
    local delay=${LAB_WAN_DELAY:-40ms} jitter=${LAB_WAN_JITTER:-10ms} loss=${LAB_WAN_LOSS:-1%}
    while [ $# -gt 0 ]; do
        case "$1" in
            --delay) [ $# -ge 2 ] || usage; delay=$2; shift 2 ;;
            --jitter) [ $# -ge 2 ] || usage; jitter=$2; shift 2 ;;
            --loss) [ $# -ge 2 ] || usage; loss=$2; shift 2 ;;
            *) usage ;;
        esac
    done
    local tool
    for tool in socat named dig python3; do
        command -v "$tool" >/dev/null ||
            die "$tool is not installed (apt-get install socat bind9 bind9-dnsutils python3)"
    done
    local figures
    figures=$(wan_figures "$delay" "$jitter" "$loss")
    begin_up
    LAB_NS_ROUTER=$PREFIX$LAB_RUN-router
    LAB_NS_DNS=$PREFIX$LAB_RUN-dns
    LAB_WAN="$delay $jitter $loss"
    LAB_WAN_IMPL=relay
    netem_usable && LAB_WAN_IMPL=netem
    echo "$figures" >"$DIR/wan.conf"
    local ns
    for ns in "$LAB_NS_LAN" "$LAB_NS_ROUTER" "$LAB_NS_ALPHA" "$LAB_NS_BETA" "$LAB_NS_CLIENT" \
        "$LAB_NS_DNS"; do
        add_ns "$ns"
    done
    ip netns exec "$LAB_NS_ROUTER" sysctl -q -w net.ipv4.ip_forward=1 \
        net.ipv6.conf.all.forwarding=1
    ip -n "$LAB_NS_ROUTER" link add br0 type bridge forward_delay 0 stp_state 0
    ip -n "$LAB_NS_ROUTER" link set br0 up
    ip -n "$LAB_NS_ROUTER" addr add 198.51.100.254/25 dev br0
    ip -n "$LAB_NS_ROUTER" addr add 2001:db8:c::fe/64 dev br0 nodad
    site_cable alpha "$LAB_NS_ALPHA" sitea 192.0.2.1/24 2001:db8:a::1/64 192.0.2.254 2001:db8:a::fe
    site_cable beta "$LAB_NS_BETA" siteb 203.0.113.2/24 2001:db8:b::2/64 203.0.113.254 \
        2001:db8:b::fe
    lab_routes "$LAB_NS_ALPHA" 192.0.2.254 2001:db8:a::fe 203.0.113.0/24 198.51.100.128/25 -- \
        2001:db8:b::/64 2001:db8:c::/64
    lab_routes "$LAB_NS_BETA" 203.0.113.254 2001:db8:b::fe 192.0.2.0/24 198.51.100.128/25 -- \
        2001:db8:a::/64 2001:db8:c::/64
    core_port client "$LAB_NS_CLIENT" 198.51.100.200 2001:db8:c::200
    core_port dns "$LAB_NS_DNS" 198.51.100.253 2001:db8:c::53
    wan_links
    crossover
    start_relay
    start_dns
    write_env_routed
    trap - ERR
    log "routed lab '$NAME' up (run $LAB_RUN; WAN $LAB_WAN by $LAB_WAN_IMPL)"
    cat "$DIR/env"
}

cmd_wan() {
    load_env
    [ "${LAB_MODE:-flat}" = routed ] || die "lab '$NAME' is not routed (up --routed)"
    [ $# -eq 3 ] || usage
    wan_figures "$1" "$2" "$3" >"$DIR/wan.conf"
    wan_apply
    sed -i "s/^LAB_WAN=.*/LAB_WAN=\"$1 $2 $3\"/" "$DIR/env"
    log "WAN now $1 $2 $3 (alpha<->beta, each direction)"
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
    local bad=0 node ns nodes=(alpha beta client lan)
    local kind=
    [ "${LAB_MODE:-flat}" = routed ] && nodes+=(router dns) && kind="routed "
    echo "${kind}lab '$NAME' run $LAB_RUN ($DIR)"
    for node in "${nodes[@]}"; do
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
    if [ "${LAB_MODE:-flat}" = routed ]; then
        if running "$(cat "$DIR/named.pid" 2>/dev/null)"; then
            echo "  name server: named pid $(cat "$DIR/named.pid"), $LAB_DNS4 (zone $LAB_DNS_ZONE)"
        else
            echo "  name server: named NOT RUNNING"
            bad=1
        fi
        echo "  WAN: $LAB_WAN alpha<->beta by $LAB_WAN_IMPL; per site cable $(cat "$DIR/wan.conf")"
        if [ "$LAB_WAN_IMPL" = relay ] && ! running "$(cat "$DIR/wan.pid" 2>/dev/null)"; then
            echo "  WAN relay NOT RUNNING"
            bad=1
        fi
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
        up) cmd_up "$@" ;;
        wan) cmd_wan "$@" ;;
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
