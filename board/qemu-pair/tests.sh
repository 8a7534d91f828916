# The tests of `scripts/qemu-pair.sh test` (sourced by it; uses its functions and variables).
# `test --busybox` checks the emulated hardware with busybox alone; `test` runs the pair with
# hapair on it. Every wait polls a condition against a deadline; the timings are printed, and
# the hang's takeover must also keep a loose bound derived from board/qemu-pair/hapair.conf
# (`takeover_bound`). Whatever happens, the trap takes everything down again.

TIMINGS=()

# note WHAT SECONDS: one line of the closing timing table.
note() {
    TIMINGS+=("$(printf '%-58s %6ss' "$1" "$2")")
    log "$1: $2 s"
}

print_timings() {
    echo "qemu-pair: timings (host $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    printf '  %s\n' "${TIMINGS[@]}"
}

fail() { log "FAIL: $*"; exit 1; }

# secs DURATION: a configuration duration (200ms, 2s, 1m, or bare seconds) in seconds.
secs() {
    case $1 in
        *ms) echo "scale=3; ${1%ms} / 1000" | bc ;;
        *s) echo "${1%s}" ;;
        *m) echo "${1%m} * 60" | bc ;;
        *) echo "$1" ;;
    esac
}

# conf_word WORD N: the Nth word of the line of board/qemu-pair/hapair.conf that starts with
# WORD (the last such line).
conf_word() { awk -v w="$1" -v n="$2" '$1 == w { v = $n } END { print v }' "$BOARD/hapair.conf"; }

# takeover_bound: the most a survivor may take, from its peer's hang to active with the VIP,
# under `fence watchdog` (SPEC §3, L1): deadtime, then the peer's watchdog timeout plus the
# core's margin (deadtime + 2 x the slowest link's interval + 2 x keepalive, with the serial
# line's interval taken as keepalive), then the group's start (2 s under emulation), plus
# 10 s of slack for a TCG guest on a busy host. Loose, but a takeover that takes ten times
# too long fails.
takeover_bound() {
    local keepalive deadtime watchdog
    keepalive=$(secs "$(conf_word keepalive 2)")
    deadtime=$(secs "$(conf_word deadtime 2)")
    watchdog=$(secs "$(conf_word watchdog 4)")
    echo "$deadtime + $watchdog + $deadtime + 4 * $keepalive + 2 + 10" | bc
}

# kernels NODE: how many kernels NODE's console has shown starting (one per boot or reset).
kernels() { grep -ac 'Linux version' "$DIR/$1.console.log" || true; }

# wait_kernels NODE COUNT SECONDS
wait_kernels() {
    local deadline=$(( $(date +%s) + $3 ))
    until [ "$(kernels "$1")" -ge "$2" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$1: no new boot within $3 s"
        sleep 0.2
    done
}

# summary NODE: NODE's status as KEY=VALUE words (vmctl.py summary), "" when it gives none.
summary() {
    vm_exec "$1" 10 'hapair status --json' 2>/dev/null |
        python3 "$BOARD/vmctl.py" summary 2>/dev/null || true
}

# wait_status NODE SECONDS WORD...: until NODE's status has every WORD (e.g. state=active).
wait_status() {
    local node=$1 deadline=$(( $(date +%s) + $2 )) words word ok
    shift 2
    while :; do
        words=" $(summary "$node") "
        ok=1
        for word in "$@"; do
            case "$words" in *" $word "*) ;; *) ok=0 ;; esac
        done
        [ "$ok" = 1 ] && { LAST_STATUS=$words; return 0; }
        [ "$(date +%s)" -lt "$deadline" ] || fail "$node: status never showed '$*' (last:$words)"
        sleep 0.2
    done
}

# expect_status NODE WORD...: NODE's status has every WORD now.
expect_status() {
    local node=$1 words word
    shift
    words=" $(summary "$node") "
    for word in "$@"; do
        case "$words" in *" $word "*) ;; *) fail "$node: expected $word, status:$words" ;; esac
    done
    log "$node:$words"
}

# --- busybox alone: the hardware ---------------------------------------------------------------

test_nullmodem() {
    local from=$1 to=$2 word
    word=nullmodem-$from-$RANDOM
    vm_exec "$to" 10 \
        'stty -F /dev/ttyS1 115200 raw -echo; rm -f /tmp/rx; (cat /dev/ttyS1 >/tmp/rx &)' >/dev/null
    vm_exec "$from" 10 "stty -F /dev/ttyS1 115200 raw -echo; echo $word >/dev/ttyS1" >/dev/null
    local deadline=$(( $(date +%s) + 10 ))
    until vm_exec "$to" 10 "grep -q $word /tmp/rx" >/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "null-modem $from -> $to: '$word' not received"
        sleep 0.2
    done
    vm_exec "$to" 10 'kill $(pidof cat) 2>/dev/null; true' >/dev/null
    log "null-modem $from -> $to: '$word' arrived on the 8250 UART"
}

test_busybox() {
    vm_exec alpha 10 'grep -q "^1: uart:16550A" /proc/tty/driver/serial' ||
        fail "alpha: ttyS1 is not a 16550A"
    vm_exec beta 10 'grep -q i6300 /sys/class/watchdog/watchdog0/identity' ||
        fail "beta: no i6300esb watchdog"
    test_nullmodem alpha beta
    test_nullmodem beta alpha
    vm_exec alpha 20 'ping -c 2 -W 5 198.51.100.2' >/dev/null || fail "crossover: no ping"
    log "crossover: alpha pings beta's eth1 over the e1000 socket link"
    ip netns exec "$NS_CLIENT" ping -c 2 -W 5 192.0.2.1 >/dev/null || fail "client: no alpha"
    ip netns exec "$NS_CLIENT" ping -c 2 -W 5 192.0.2.2 >/dev/null || fail "client: no beta"
    log "service LAN: the client pings alpha and beta through the lab bridge"
    local before t0
    before=$(kernels beta)
    t0=$(now)
    # Set the timeout to 5 s, pet once, then not for a minute: the i6300esb must reset beta.
    vm_exec beta 10 'watchdog -T 5 -t 60 /dev/watchdog' || fail "beta: busybox watchdog"
    local deadline=$(( $(date +%s) + 60 )) fired=''
    until [ -n "$fired" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "beta: the watchdog never fired"
        sleep 0.2
        fired=$(event_after beta WATCHDOG "$t0")
    done
    note "busybox: watchdog armed (5 s, no pets) -> i6300esb fires (WATCHDOG)" "$fired"
    wait_kernels beta $((before + 1)) 60
    note "busybox: watchdog armed -> beta's console shows a new kernel" "$(since "$t0")"
    wait_shell beta 90
    note "busybox: watchdog armed -> beta's shell answers again" "$(since "$t0")"
}

# --- the pair with hapair ----------------------------------------------------------------------

# other NODE: the other node.
other() { [ "$1" = alpha ] && echo beta || echo alpha; }

test_pair_up() {
    local t0=$BOOT_T0 node active=
    wait_status alpha 120 peer_alive=true serial=up ucast=up wd_armed=true wd_timeout_ms=6000
    wait_status beta 60 peer_alive=true serial=up ucast=up wd_armed=true wd_timeout_ms=6000
    note "boot: QEMU start -> both see the peer on ttyS1 and eth1" "$(since "$t0")"
    local deadline=$(( $(date +%s) + 60 ))
    while [ -z "$active" ]; do
        for node in alpha beta; do
            case " $(summary "$node") " in *" state=active "*vip=running*) active=$node ;; esac
        done
        [ -n "$active" ] || [ "$(date +%s)" -lt "$deadline" ] || fail "nobody took the VIP"
        [ -n "$active" ] || sleep 0.2
    done
    note "boot: QEMU start -> $active active with the VIP" "$(since "$t0")"
    expect_status "$(other "$active")" state=standby peer_state=active vip=stopped
    for node in alpha beta; do
        vm_exec "$node" 10 'grep "^1: uart:16550A" /proc/tty/driver/serial' |
            grep -q 'tx:[1-9].*rx:[1-9]' || fail "$node: no traffic through the 8250 ttyS1"
    done
    log "both ttyS1 (16550A, 8250 driver) carry frames both ways"
    wait_probe 30
    note "boot: QEMU start -> the client's probe answered" "$(since "$t0")"
    ACTIVE=$active
}

# wait_probe SECONDS: until the client's probe of the VIP has an answer newer than its start.
wait_probe() {
    local t0 deadline=$(( $(date +%s) + $1 ))
    t0=$(date +%s)
    until python3 "$BOARD/vmctl.py" gap "$DIR/probe.log" "$t0" | grep -qv 'answers=0'; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "the client's probe of $VIP gets no answer"
        sleep 0.2
    done
}

# event_after NODE EVENT SINCE: seconds from SINCE (host epoch) to NODE's first QMP EVENT
# after it, "" when none yet.
event_after() {
    awk -v e="$2" -v t="$3" '$2 == e && $1 >= t { printf "%.1f\n", $1 - t; exit }' \
        "$DIR/$1.events.log" 2>/dev/null
}

# first_answer_after SINCE: seconds from SINCE to the client's first answer from the VIP.
first_answer_after() {
    sed -n 's/^\[\([0-9.]*\)\] [0-9]* bytes from.*/\1/p' "$DIR/probe.log" |
        awk -v t="$1" '$1 >= t { printf "%.1f\n", $1 - t; exit }'
}

# The hang test. One loop watches everything at once, so each step's time is when it was
# first seen: the survivor's verdict and takeover (its status), the i6300esb firing (QEMU's
# WATCHDOG event), the new kernel (the hung node's console).
test_hang() {
    local hung=$ACTIVE survivor t0 before pid words deadline
    local t_dead='' t_fired='' t_kernel='' t_active='' t_up='' held=''
    survivor=$(other "$hung")
    before=$(kernels "$hung")
    pid=$(vm_exec "$hung" 10 'pidof hapair') || fail "$hung: no hapair"
    t0=$(now)
    vm_exec "$hung" 10 "kill -STOP $pid" || fail "$hung: kill -STOP"
    log "hang: hapair (pid $pid in $hung) stopped with SIGSTOP"
    deadline=$(( $(date +%s) + 90 ))
    while [ -z "$t_dead" ] || [ -z "$t_fired" ] || [ -z "$t_kernel" ] || [ -z "$t_active" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "hang: dead '$t_dead' watchdog '$t_fired'" \
            "kernel '$t_kernel' takeover '$t_active' (seconds after SIGSTOP)"
        words=" $(summary "$survivor") "
        [ -n "$t_fired" ] || t_fired=$(event_after "$hung" WATCHDOG "$t0")
        # A PC takes tens of seconds from a watchdog reset to a running daemon; QEMU boots
        # its kernel straight away and would have the hung node back in about six, racing
        # the survivor's fence wait (W + M after deadtime). Hold the reset node like a POST
        # until the survivor has taken over.
        if [ -n "$t_fired" ] && [ -z "$held" ] && [ -z "$t_active" ]; then
            python3 "$BOARD/vmctl.py" qmp "$DIR/$hung.qmp" stop >/dev/null || fail "$hung: QMP stop"
            held=1
        fi
        case "$words" in *" peer_alive=false "*) [ -n "$t_dead" ] || t_dead=$(since "$t0") ;; esac
        case "$words" in *" state=active "*" vip=running "*)
            if [ -z "$t_active" ]; then
                t_active=$(since "$t0")
                [ -n "$t_fired" ] || fail "$survivor took the VIP before $hung's watchdog fired"
            fi ;;
        esac
        if [ -n "$t_active" ] && [ "$held" = 1 ]; then
            python3 "$BOARD/vmctl.py" qmp "$DIR/$hung.qmp" cont >/dev/null || fail "$hung: QMP cont"
            held=2
        fi
        [ -n "$t_kernel" ] || [ "$(kernels "$hung")" -le "$before" ] || t_kernel=$(since "$t0")
    done
    note "hang: SIGSTOP -> $survivor sees $hung dead (status)" "$t_dead"
    note "hang: SIGSTOP -> i6300esb fires, QEMU resets $hung (WATCHDOG event)" "$t_fired"
    note "hang: SIGSTOP -> $hung's console shows a new kernel (held until the takeover)" \
        "$t_kernel"
    note "hang: SIGSTOP -> $survivor active with the VIP (status)" "$t_active"
    local bound
    bound=$(takeover_bound)
    [ "$(echo "$t_active <= $bound" | bc)" = 1 ] ||
        fail "hang: $survivor took over ${t_active} s after SIGSTOP, over its bound of" \
            "${bound} s (deadtime + watchdog + margin + start + slack)"
    wait_probe 30
    note "hang: the reset -> the client's first answer from $survivor" \
        "$(first_answer_after "$(echo "$t0 + $t_fired" | bc)")"
    wait_status "$survivor" 120 peer_alive=true serial=up ucast=up
    t_up=$(since "$t0")
    expect_status "$survivor" state=active vip=running
    wait_status "$hung" 30 state=standby peer_state=active vip=stopped
    note "hang: SIGSTOP -> $hung rebooted, back as standby (peer alive)" "$t_up"
    note "hang: longest silence of the client's probe from SIGSTOP on" \
        "$(python3 "$BOARD/vmctl.py" gap "$DIR/probe.log" "$t0" | cut -d' ' -f1)"
    ACTIVE=$survivor
}

# cable_test WHAT MEDIUM CUT RESTORE: pull a cable, the medium goes down, nothing moves;
# plug it back, the medium comes up.
cable_test() {
    local what=$1 medium=$2 standby t0
    standby=$(other "$ACTIVE")
    t0=$(now)
    $3
    wait_status "$ACTIVE" 30 "$medium=down"
    wait_status "$standby" 30 "$medium=down"
    note "$what cut -> $medium down in both nodes' status" "$(since "$t0")"
    expect_status "$ACTIVE" state=active peer_alive=true vip=running
    expect_status "$standby" state=standby peer_alive=true peer_state=active
    t0=$(now)
    $4
    wait_status "$ACTIVE" 30 "$medium=up"
    wait_status "$standby" 30 "$medium=up"
    note "$what restored -> $medium up in both nodes' status" "$(since "$t0")"
    expect_status "$ACTIVE" state=active vip=running
}

# keep_logs: the run's evidence into target/qemu-pair/last-test/ before the teardown.
keep_logs() {
    local keep=$CACHE/last-test node
    rm -rf "$keep"
    mkdir -p "$keep"
    cp "$DIR"/*.log "$keep/" 2>/dev/null || true
    for node in alpha beta; do
        vm_exec "$node" 10 'cat /var/log/hapair.log' >"$keep/$node.hapair.log" 2>/dev/null || true
    done
    printf '%s\n' "${TIMINGS[@]}" >"$keep/timings.txt"
    log "logs kept in $keep"
}

cmd_test() {
    local t0
    t0=$(now)
    trap 'rc=$?; keep_logs; cmd_down; [ "$rc" = 0 ] || log "test failed (exit $rc)"; exit $rc' \
        EXIT
    cmd_up
    note "up: QEMU start -> both console shells answer" "$(since "$BOOT_T0")"
    if [ "$BUSYBOX_ONLY" = 1 ]; then
        test_busybox
    else
        test_pair_up
        test_hang
        cable_test "serial (null-modem relay stopped)" serial serial_cut serial_restore
        cable_test "crossover (beta's e1000 link down)" ucast "set_xover off" "set_xover on"
        local failovers
        failovers=$(vm_exec "$ACTIVE" 10 'hapair status --json' | grep -o '"failovers":[0-9]*')
        log "$ACTIVE: $failovers (the hang's takeover only)"
    fi
    note "total, build included" "$(since "$t0")"
    print_timings
    echo "qemu-pair: test passed"
}
