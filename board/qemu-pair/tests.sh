# The tests of `scripts/qemu-pair.sh test` (sourced by it; uses its functions and variables).
# `test --busybox` checks the emulated hardware with busybox alone; `test` runs the pair with
# hapair on it (`fence watchdog`), then boots it again with --ipmi (each PC powered by its BMC,
# `fence_ipmilan`) for the BMC fence test; `test --ipmi` runs only that part. Every wait polls
# a condition against a deadline; the timings are printed, and each hang's takeover must also
# keep a loose bound derived from the configuration (`takeover_bound`, `ipmi_takeover_bound`).
# Whatever happens, the trap takes everything down again.

TIMINGS=()

# The prefix of the timing lines of the part under way ("ipmi " for the --ipmi boot).
PART=''

# note WHAT SECONDS: one line of the closing timing table.
note() {
    TIMINGS+=("$(printf '%-72s %6ss' "$PART$1" "$2")")
    log "$PART$1: $2 s"
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

# conf_word WORD N: the Nth word of the line of the guests' configuration (board/qemu-pair/
# hapair.conf, or hapair-ipmi.conf with --ipmi) that starts with WORD (the last such line).
conf_word() {
    local conf=$BOARD/hapair.conf
    [ "$IPMI" = 1 ] && conf=$BOARD/hapair-ipmi.conf
    [ "$DRBD" = 1 ] && conf=$BOARD/hapair-drbd.conf
    awk -v w="$1" -v n="$2" '$1 == w { v = $n } END { print v }' "$conf"
}

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

# The guest's command that prints the pid of `hapair run` alone: `pidof hapair` also names the
# agents the daemon runs as `hapair drbd-agent` (the DRBD mode's monitor every 2 s).
DAEMON_PID='for p in $(pidof hapair); do tr "\\0" " " </proc/$p/cmdline | grep -q "hapair run" && echo $p; done; true'

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
    local wd_ms
    wd_ms=$(echo "$(secs "$(conf_word watchdog 4)") * 1000 / 1" | bc)
    wait_status alpha 120 peer_alive=true serial=up ucast=up wd_armed=true wd_timeout_ms="$wd_ms"
    wait_status beta 60 peer_alive=true serial=up ucast=up wd_armed=true wd_timeout_ms="$wd_ms"
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

# took_over_within WHAT SURVIVOR SECONDS BOUND WHY: the takeover, SECONDS after the SIGSTOP,
# came within its BOUND (WHY names its parts).
took_over_within() {
    [ "$(echo "$3 <= $4" | bc)" = 1 ] ||
        fail "$1: $2 took over $3 s after SIGSTOP, over its bound of $4 s ($5)"
}

# The hang test. One loop watches everything at once, so each step's time is when it was
# first seen: the survivor's verdict and takeover (its status), the i6300esb firing (QEMU's
# WATCHDOG event), the new kernel (the hung node's console).
test_hang() {
    local hung=$ACTIVE survivor t0 before pid words deadline
    local t_dead='' t_fired='' t_kernel='' t_active='' t_up='' held=''
    survivor=$(other "$hung")
    before=$(kernels "$hung")
    pid=$(vm_exec "$hung" 10 "$DAEMON_PID") || fail "$hung: no hapair"
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
    took_over_within hang "$survivor" "$t_active" "$(takeover_bound)" \
        "deadtime + watchdog + margin + start + slack"
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

# --- the pair fenced through its BMCs (--ipmi) ---------------------------------------------------

# test_ipmi_status: each node's fence line, as hapair would run it but with --action=status,
# reaches its peer's BMC: the real fence_ipmilan in the guest, `peer-bmc` from /etc/hosts, the
# password from the password script, RMCP+ to ipmi_sim on the service LAN.
test_ipmi_status() {
    local node out t0
    for node in alpha beta; do
        t0=$(now)
        out=$(vm_exec "$node" 60 \
            '$(sed -n "s/^fence //p" /etc/hapair/hapair.conf) --action=status 2>&1') ||
            fail "$node: fence_ipmilan --action=status against $(other "$node")'s BMC: $out"
        case "$out" in *"Status: ON"*) ;; *) fail "$node: fence_ipmilan status: $out" ;; esac
        note "fence_ipmilan --action=status in $node -> 'Status: ON'" "$(since "$t0")"
    done
}

# ipmi_takeover_bound: the most a survivor may take, from its peer's hang to active with the
# VIP, under `fence CMD`: deadtime, fence_delay, the agent's reboot (power off, 2 s, power on,
# 2 s, its polls: 10 s allowed under TCG), the group's start (2 s), plus 10 s of slack.
ipmi_takeover_bound() {
    local deadtime delay
    deadtime=$(secs "$(conf_word deadtime 2)")
    delay=$(secs "$(conf_word fence_delay 2)")
    echo "$deadtime + $delay + 10 + 2 + 10" | bc
}

# power_after NODE WHAT SINCE: seconds from SINCE to NODE's first power-on or power-off
# (WHAT) line after it in NODE.power.log (written by the BMC's startcmd), "" when none yet.
power_after() {
    awk -v e="$2" -v t="$3" '$2 == e && $1 >= t { printf "%.1f\n", $1 - t; exit }' \
        "$DIR/$1.power.log" 2>/dev/null
}

# The hang, fenced by the BMC: the active node's hapair gets SIGSTOP; the survivor's hapair
# runs fence_ipmilan (in the survivor guest) against the hung node's BMC, which powers the
# hung node's QEMU off (QEMU exits) and on (a new QEMU, a new kernel); the survivor takes the
# group once the agent reports success. One loop watches everything, as in test_hang.
test_ipmi_hang() {
    local hung=$ACTIVE survivor t0 pid words deadline qemu_before
    local t_dead='' t_fence='' t_done='' t_off='' t_on='' t_qemu='' t_boot='' t_active='' now_t
    local fence_words=''
    survivor=$(other "$hung")
    local boots_before
    boots_before=$(boots "$hung")
    qemu_before=$(cat "$DIR/$hung.pid")
    pid=$(vm_exec "$hung" 10 "$DAEMON_PID") || fail "$hung: no hapair"
    t0=$(now)
    vm_exec "$hung" 10 "kill -STOP $pid" || fail "$hung: kill -STOP"
    log "hang: hapair (pid $pid in $hung, QEMU pid $qemu_before) stopped with SIGSTOP"
    deadline=$(( $(date +%s) + 120 ))
    while [ -z "$t_dead" ] || [ -z "$t_done" ] || [ -z "$t_off" ] || [ -z "$t_on" ] ||
        [ -z "$t_qemu" ] || [ -z "$t_boot" ] || [ -z "$t_active" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "ipmi hang: dead '$t_dead' fence done" \
            "'$t_done' power off '$t_off' on '$t_on' QEMU '$t_qemu' boot '$t_boot' takeover" \
            "'$t_active' (seconds after SIGSTOP)"
        now_t=$(now)
        words=" $(summary "$survivor") "
        [ -n "$t_off" ] || t_off=$(power_after "$hung" power-off "$t0")
        [ -n "$t_on" ] || t_on=$(power_after "$hung" power-on "$t0")
        if [ -z "$t_qemu" ] && [ -s "$DIR/$hung.pid" ] && [ "$(cat "$DIR/$hung.pid")" != "$qemu_before" ] &&
            pid_alive "$DIR/$hung.pid"; then
            t_qemu=$(since "$t0")
        fi
        [ -n "$t_boot" ] || [ "$(boots "$hung")" -le "$boots_before" ] || t_boot=$(since "$t0")
        case "$words" in *" peer_alive=false "*) [ -n "$t_dead" ] || t_dead=$(since "$t0") ;; esac
        if [ -z "$t_done" ]; then
            case "$words" in *" fence_ok="*)
                # The run's start and end from the status: `ago` and `took` before the poll.
                fence_words=$words
                local ago took
                ago=$(echo "$words" | sed -n 's/.* fence_ago_ms=\([0-9]*\) .*/\1/p')
                took=$(echo "$words" | sed -n 's/.* fence_took_ms=\([0-9]*\) .*/\1/p')
                t_done=$(printf '%.1f' "$(echo "$now_t - $t0 - $ago / 1000" | bc -l)")
                t_fence=$(printf '%.1f' "$(echo "$t_done - $took / 1000" | bc -l)")
                ;;
            esac
        fi
        case "$words" in *" state=active "*" vip=running "*)
            if [ -z "$t_active" ]; then
                t_active=$(since "$t0")
                # The BMC's power off is logged when the hung node's QEMU has exited.
                [ -n "$(power_after "$hung" power-off "$t0")" ] ||
                    fail "$survivor took the VIP before $hung's BMC powered it off"
            fi ;;
        esac
        sleep 0.2
    done
    note "hang: SIGSTOP -> $survivor sees $hung dead (status)" "$t_dead"
    note "hang: SIGSTOP -> $survivor starts fence_ipmilan (status: fence.last)" "$t_fence"
    note "hang: SIGSTOP -> $hung's BMC: power off, its QEMU exited (power log)" "$t_off"
    note "hang: SIGSTOP -> QEMU got the BMC's power off (SHUTDOWN event)" \
        "$(event_after "$hung" SHUTDOWN "$t0")"
    note "hang: SIGSTOP -> $hung's BMC: power on, a new QEMU (power log)" "$t_on"
    note "hang: SIGSTOP -> the new QEMU's pid file (pid $(cat "$DIR/$hung.pid"))" "$t_qemu"
    note "hang: SIGSTOP -> fence_ipmilan succeeded (status: fence.last)" "$t_done"
    note "hang: SIGSTOP -> $hung's console shows a new boot" "$t_boot"
    note "hang: SIGSTOP -> $survivor active with the VIP (status)" "$t_active"
    case "$fence_words" in *" fence_ok=true "*" fence_output=Success:_Rebooted "*) ;;
        *) fail "$survivor: the fence did not succeed:$fence_words" ;; esac
    log "$survivor: fence.last:$(echo "$fence_words" | grep -o ' fence_[a-z_]*=[^ ]*' | tr -d '\n')"
    # The order that makes the takeover safe, from the host's own records.
    [ "$(echo "$t_fence < $t_off && $t_off < $t_on && $t_off <= $t_active" | bc)" = 1 ] ||
        fail "ipmi hang: out of order: fence $t_fence, power off $t_off, on $t_on, takeover $t_active"
    [ -z "$(event_after "$hung" WATCHDOG "$t0")" ] ||
        fail "$hung: the i6300esb fired: the reset was not (only) the BMC's"
    took_over_within "ipmi hang" "$survivor" "$t_active" "$(ipmi_takeover_bound)" \
        "deadtime + fence_delay + agent + start + slack"
    wait_probe 30
    note "hang: the power off -> the client's first answer from $survivor" \
        "$(first_answer_after "$(echo "$t0 + $t_off" | bc)")"
    # Never twice: no duplicate answer to the client's probe (two hosts with the VIP).
    ! grep -q 'DUP!' "$DIR/probe.log" || fail "the client got duplicate answers from the VIP"
    wait_status "$survivor" 120 peer_alive=true serial=up ucast=up
    expect_status "$survivor" state=active vip=running
    wait_status "$hung" 30 state=standby peer_state=active vip=stopped
    note "hang: SIGSTOP -> $hung rebooted, back as standby (peer alive)" "$(since "$t0")"
    note "hang: longest silence of the client's probe from SIGSTOP on" \
        "$(python3 "$BOARD/vmctl.py" gap "$DIR/probe.log" "$t0" | cut -d' ' -f1)"
    ! grep -q "power-off" "$DIR/$survivor.power.log" || fail "$survivor was powered off too"
    log "$hung's power log: $(tr '\n' ';' <"$DIR/$hung.power.log")"
    ACTIVE=$survivor
}

# --- the BMC's own view (--ipmi, hapair's `ipmi` source) -----------------------------------------

# word WORDS KEY: the value of KEY=VALUE in a summary, "" when absent.
word() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# node_number NODE: 1 for alpha, 2 for beta (its BMC is 192.0.2.20N).
node_number() { [ "$1" = alpha ] && echo 1 || echo 2; }

# bmc_ipmitool NODE ARGS...: ipmitool against NODE's BMC over RMCP+ from the lab namespace,
# as an operator's console would (the password from its file, never on the command line).
bmc_ipmitool() {
    local node=$1
    shift
    ip netns exec "$NS_LAB" ipmitool -I lanplus -C 3 -H "192.0.2.20$(node_number "$node")" \
        -U "$BMC_USER" -f "$CACHE/bmc.password" "$@"
}

# test_ipmi_ready: both nodes read their BMC's two sensors through /dev/ipmi0, healthy.
test_ipmi_ready() {
    local node
    for node in alpha beta; do
        wait_status "$node" 60 ipmi=reachable ipmi_sensors=2 health=ok
        expect_status "$node" ipmi_CPU_Temp=45.0 ipmi_12V=12.0 sel_latched=false
    done
    note "BMC: both nodes read CPU Temp 45 C and 12V 12 V through /dev/ipmi0" \
        "$(since "$BOOT_T0")"
}

# moves_before VICTIM: VICTIM's handovers and its peer's failovers, before a fault, into
# HANDOVERS_BEFORE and FAILOVERS_BEFORE.
moves_before() {
    HANDOVERS_BEFORE=$(word "$(summary "$1")" handovers)
    FAILOVERS_BEFORE=$(word "$(summary "$(other "$1")")" failovers)
    if [ -z "$HANDOVERS_BEFORE" ] || [ -z "$FAILOVERS_BEFORE" ]; then
        fail "no counters in status"
    fi
}

# ipmi_handover WHAT VICTIM REASON T0: after a fault of VICTIM's BMC at T0, watches both
# nodes until VICTIM is unhealthy for ipmi (status) and its peer active with the VIP, checks
# that it was a handover (VICTIM counts one more than `moves_before` saw, the peer no failover
# more) and that the human status of VICTIM says REASON; notes the times and the client's
# longest silence.
ipmi_handover() {
    local what=$1 victim=$2 reason=$3 t0=$4 peer words deadline
    local t_unhealthy='' t_active=''
    peer=$(other "$victim")
    deadline=$(( $(date +%s) + 60 ))
    while [ -z "$t_unhealthy" ] || [ -z "$t_active" ]; do
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "$what: unhealthy '$t_unhealthy' handover '$t_active' (seconds after the fault)"
        if [ -z "$t_unhealthy" ]; then
            words=" $(summary "$victim") "
            case "$words" in *" health=unhealthy health_sources=ipmi "*)
                t_unhealthy=$(since "$t0") ;;
            esac
        fi
        if [ -z "$t_active" ]; then
            words=" $(summary "$peer") "
            case "$words" in *" state=active "*" vip=running "*) t_active=$(since "$t0") ;; esac
        fi
        if [ -z "$t_unhealthy" ] || [ -z "$t_active" ]; then sleep 0.2; fi
    done
    note "$what -> $victim unhealthy, status names ipmi" "$t_unhealthy"
    note "$what -> $peer active with the VIP (handover)" "$t_active"
    vm_exec "$victim" 10 'hapair status' | grep -qF -- "- $reason" ||
        fail "$victim: the human status does not say '$reason'"
    wait_status "$victim" 30 state=standby vip=stopped "handovers=$((HANDOVERS_BEFORE + 1))"
    expect_status "$peer" "failovers=$FAILOVERS_BEFORE"
    wait_probe 30
    note "$what -> longest silence of the client's probe" \
        "$(python3 "$BOARD/vmctl.py" gap "$DIR/probe.log" "$t0" | cut -d' ' -f1)"
}

# test_ipmi_sensor: the active node's BMC reads its CPU past the critical threshold of the
# sensor's record (85 C over 80 C): hapair reads it through /dev/ipmi0, the node is unhealthy
# (after 3 readings, 2 s apart) and hands the group over; back at 45 C the node is healthy
# again (by the hysteresis) and, auto_failback off, the group stays with the peer.
test_ipmi_sensor() {
    local hot=$ACTIVE t0
    moves_before "$hot"
    t0=$(now)
    echo 85 >"$DIR/$hot.cpu-temp"
    log "ipmi: $hot's BMC reads CPU Temp 85 C (critical 80 C)"
    ipmi_handover "BMC sensor: CPU Temp 85 C in $hot's BMC" "$hot" \
        "ipmi CPU Temp: above upper critical 80.0 C" "$t0"
    expect_status "$hot" ipmi_CPU_Temp=85.0 sel_latched=false
    t0=$(now)
    echo 45 >"$DIR/$hot.cpu-temp"
    wait_status "$hot" 60 health=ok ipmi_CPU_Temp=45.0
    note "BMC sensor: CPU Temp back to 45 C -> $hot healthy (3 readings back)" "$(since "$t0")"
    # The BMC logged CPU Temp's threshold events; the live reading judges them, no latch.
    expect_status "$hot" sel_latched=false state=standby
    ACTIVE=$(other "$hot")
    expect_status "$ACTIVE" state=active vip=running
}

# test_ipmi_sel: an uncorrectable memory error in the active node's SEL (Add SEL Entry through
# the BMC's LAN interface, as BIOS or an operator would log it: memory, sensor 9, DIMM 3)
# latches the node unhealthy: it hands the group over and stays unhealthy, across a restart
# of hapair, until `hapair cleanup`.
test_ipmi_sel() {
    local victim=$ACTIVE t0 id
    moves_before "$victim"
    t0=$(now)
    id=$(bmc_ipmitool "$victim" raw 0x0a 0x44 0x00 0x00 0x02 0x00 0x00 0x00 0x00 0x01 0x00 \
        0x04 0x0c 0x09 0x6f 0xa1 0xff 0x03) || fail "$victim's BMC: Add SEL Entry failed"
    log "ipmi: $victim's BMC logged an uncorrectable ECC error (record$id)"
    ipmi_handover "BMC SEL: uncorrectable ECC in $victim's BMC" "$victim" \
        "ipmi SEL: memory #9: uncorrectable ECC" "$t0"
    sleep 5
    expect_status "$victim" health=unhealthy sel_latched=true
    log "$victim's BMC's SEL: $(bmc_ipmitool "$victim" sel list | tr '\n' ';')"
    # A restart of hapair (SIGTERM; init starts it again) judges the log from the position
    # kept in the statedir, before the failure: it holds again.
    local pid new='' deadline
    pid=$(vm_exec "$victim" 10 "$DAEMON_PID") || fail "$victim: no hapair"
    t0=$(now)
    vm_exec "$victim" 10 "kill $pid" >/dev/null || fail "$victim: kill hapair"
    deadline=$(( $(date +%s) + 30 ))
    until [ -n "$new" ] && [ "$new" != "$pid" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$victim: hapair did not start again"
        sleep 0.2
        new=$(vm_exec "$victim" 10 "$DAEMON_PID" 2>/dev/null) || new=''
    done
    wait_status "$victim" 60 state=standby health=unhealthy sel_latched=true
    note "BMC SEL: hapair restarted in $victim -> unhealthy again (the failure holds)" \
        "$(since "$t0")"
    t0=$(now)
    vm_exec "$victim" 10 'hapair cleanup' >/dev/null || fail "$victim: hapair cleanup"
    wait_status "$victim" 30 health=ok sel_latched=false
    note "BMC SEL: hapair cleanup -> $victim healthy" "$(since "$t0")"
    ACTIVE=$(other "$victim")
    expect_status "$ACTIVE" state=active vip=running
}

# --- data that survives the failover (--drbd) -----------------------------------------------------

# The rows of the closing table: scenario, records acknowledged before the fault, records
# found after, lost, the client's longest gap, verdict.
RECORD_ROWS=()

# drbd_setup: the first boot of a new pair, as an operator sets DRBD up: both disks have new
# metadata and are connected (Inconsistent/Inconsistent); the initial sync of two empty disks
# is skipped (new-current-uuid --clear-bitmap: both UpToDate), alpha makes the ext4 file
# system once, and hapair, held until now (/run/hapair-hold), starts on both.
drbd_setup() {
    local node deadline=$(( $(date +%s) + 60 ))
    for node in alpha beta; do
        until vm_exec "$node" 10 'grep -q " 0: cs:Connected" /proc/drbd' >/dev/null 2>&1; do
            [ "$(date +%s)" -lt "$deadline" ] || fail "$node: DRBD r0 never connected over eth1"
            sleep 0.5
        done
    done
    vm_exec alpha 60 'drbdadm -- --clear-bitmap new-current-uuid r0 &&
        drbdadm primary r0 && mkfs.ext4 -q /dev/drbd0 && drbdadm secondary r0' >/dev/null ||
        fail "alpha: the first setup of DRBD r0 failed"
    for node in alpha beta; do
        vm_exec "$node" 10 'grep " 0:" /proc/drbd' | grep -q 'ds:UpToDate/UpToDate' ||
            fail "$node: r0 not UpToDate/UpToDate after the setup"
        vm_exec "$node" 10 'rm -f /run/hapair-hold' >/dev/null
    done
    log "drbd: r0 connected over eth1, UpToDate on both, ext4 made; hapair released"
}

# The client on the LAN: numbered records through the VIP without pause, each
# acknowledgement logged (hapair-records client; its log is records.log).
start_records() {
    ip netns exec "$NS_CLIENT" setsid "$RECORDS_BIN" client "$VIP" 7000 "$DIR/records.log" \
        </dev/null >>"$DIR/records.err" 2>&1 &
    echo $! >"$DIR/records.pid"
}

epoch_ms() { date +%s%3N; }

# has_words " WORDS " WORD...: every WORD is one of WORDS (a summary, spaces around it).
has_words() {
    local words=$1 word
    shift
    for word in "$@"; do
        case "$words" in *" $word "*) ;; *) return 1 ;; esac
    done
}

# acks: the records the client has had acknowledged so far.
acks() { if [ -f "$DIR/records.log" ]; then wc -l <"$DIR/records.log"; else echo 0; fi; }

# records_check SCENARIO SINCE_MS: every record acknowledged so far is on the service's disk
# now (a dump through the VIP); one row of the table, the client's longest gap from SINCE_MS.
records_check() {
    local what=$1 since=$2 out acked before found lost gap verdict=pass
    # Let the client write a little more through whoever serves now.
    local n0
    n0=$(acks)
    local deadline=$(( $(date +%s) + 30 ))
    until [ "$(acks)" -gt $((n0 + 20)) ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$what: the client's records are not acknowledged"
        sleep 0.2
    done
    out=$(ip netns exec "$NS_CLIENT" "$RECORDS_BIN" verify "$VIP" 7000 "$DIR/records.log" "$since") ||
        verdict=FAIL
    read -r _ acked _ before _ found _ lost _ gap <<<"$(echo "$out" | head -1)"
    RECORD_ROWS+=("$(printf '%-58s %6s %6s %6s %5s %7.1fs  %s' "$what" "$before" "$acked" \
        "$found" "$lost" "$(echo "$gap / 1000" | bc -l)" "$verdict")")
    log "records after '$what': $out"
    [ "$verdict" = pass ] || fail "$what: acknowledged records lost: $out"
}

print_records() {
    echo "qemu-pair: records (acked before the fault, acked in all, found on the disk after, lost," \
        "the client's longest gap from the fault on)"
    printf '  %-58s %6s %6s %6s %5s %8s  %s\n' scenario before acked found lost gap verdict
    printf '  %s\n' "${RECORD_ROWS[@]}"
}

# drbd_ready NODE: NODE is Primary with its disk and the peer's UpToDate, connected, serving.
drbd_ready() {
    wait_status "$1" 120 state=active vip=running res_records=running drbd_role=Primary \
        drbd_cs=Connected drbd_disk=UpToDate drbd_peer_disk=UpToDate
    wait_status "$(other "$1")" 60 state=standby drbd_role=Secondary drbd_disk=UpToDate \
        health=ok
}

# (3) A planned handover: standby on the Primary demotes it; the peer promotes, mounts,
# serves; no record lost.
test_drbd_handover() {
    local from=$ACTIVE to t0 since
    to=$(other "$from")
    since=$(epoch_ms)
    t0=$(now)
    vm_exec "$from" 20 'hapair standby' >/dev/null || fail "$from: hapair standby"
    wait_status "$to" 60 state=active vip=running res_records=running drbd_role=Primary
    note "handover: standby on $from -> $to Primary, mounted, serving" "$(since "$t0")"
    expect_status "$from" state=standby drbd_role=Secondary drbd_disk=UpToDate
    records_check "(3) planned handover $from -> $to" "$since"
    vm_exec "$from" 20 'hapair online' >/dev/null || fail "$from: hapair online"
    ACTIVE=$to
    drbd_ready "$ACTIVE"
}

# (1) The Primary's kernel hangs (hapair stopped, the i6300esb resets it); the survivor
# promotes its copy, mounts and serves: every record acknowledged before is there. Then (4)
# the old Primary comes back and resyncs from the survivor, which its status shows.
test_drbd_hang() {
    local hung=$ACTIVE survivor t0 pid since words deadline t_active='' held='' fired='' seen=''
    survivor=$(other "$hung")
    pid=$(vm_exec "$hung" 10 "$DAEMON_PID") || fail "$hung: no hapair"
    since=$(epoch_ms)
    t0=$(now)
    vm_exec "$hung" 10 "kill -STOP $pid" || fail "$hung: kill -STOP"
    deadline=$(( $(date +%s) + 90 ))
    while [ -z "$t_active" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "drbd hang: $survivor never served"
        [ -n "$fired" ] || fired=$(event_after "$hung" WATCHDOG "$t0")
        # Hold the reset PC (its POST), as in the plain hang test, until the takeover.
        if [ -n "$fired" ] && [ -z "$held" ]; then
            python3 "$BOARD/vmctl.py" qmp "$DIR/$hung.qmp" stop >/dev/null || fail "QMP stop"
            held=1
        fi
        words=" $(summary "$survivor") "
        if has_words "$words" state=active res_records=running vip=running; then
            t_active=$(since "$t0")
            [ -n "$fired" ] || fail "$survivor served before $hung's watchdog fired"
        fi
    done
    case "$words" in *" drbd_role=Primary "*) ;; *) fail "$survivor active but not Primary:$words" ;; esac
    note "hang: SIGSTOP on $hung -> $survivor Primary, mounted, serving" "$t_active"
    records_check "(1) $hung hangs, the i6300esb resets it" "$since"
    # (4) The old Primary boots again and resyncs from the survivor.
    t0=$(now)
    python3 "$BOARD/vmctl.py" qmp "$DIR/$hung.qmp" cont >/dev/null || fail "$hung: QMP cont"
    wait_shell "$hung" 120
    deadline=$(( $(date +%s) + 180 ))
    while :; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "drbd resync: $hung never UpToDate (last:$words)"
        words=" $(summary "$hung") "
        case "$words" in
            *" drbd_cs=SyncTarget "* | *" drbd_cs=PausedSyncT "*)
                [ -n "$seen" ] || log "drbd resync: $hung:$words"
                seen="$seen $(echo "$words" | grep -o 'drbd_sync=[^ ]*')" ;;
        esac
        has_words "$words" drbd_cs=Connected drbd_disk=UpToDate drbd_peer_disk=UpToDate && break
        sleep 0.3
    done
    [ -n "$seen" ] || fail "drbd resync: $hung's status never showed the resync (SyncTarget)"
    note "resync: $hung back -> SyncTarget in its status ($(echo "$seen" | wc -w) reads:$(echo "$seen" | tr ' ' '\n' | sed -n '2p;$p' | tr '\n' ' '))" "$(since "$t0")"
    wait_status "$hung" 30 state=standby health=ok drbd_role=Secondary
    # The survivor's view follows (DRBD may run a second, short resync after the first).
    wait_status "$survivor" 120 state=active drbd_role=Primary drbd_peer_disk=UpToDate
    ACTIVE=$survivor
}

# (2) The crossover (DRBD's link) is cut while the serial heartbeat works: the Primary's DRBD
# runs its fence-peer handler, hapair has the peer outdate its disk over the null-modem, and
# the Primary goes on. Then the Primary hangs: the Secondary, outdated, never promotes (the
# group stays down, its status says why) until the old Primary is back and serves again.
test_drbd_xover() {
    local primary=$ACTIVE secondary t0 since words deadline pid fired='' held='' wait_s
    secondary=$(other "$primary")
    since=$(epoch_ms)
    t0=$(now)
    set_xover off
    wait_status "$secondary" 60 drbd_disk=Outdated health=unhealthy health_sources=drbd \
        peer_alive=true serial=up
    note "xover cut -> $secondary outdated by $primary's fence-peer (over serial)" "$(since "$t0")"
    vm_exec "$primary" 10 'grep "fence-peer answered" /var/log/hapair.log | tail -1' |
        grep -q 'answered 4' || fail "$primary: no fence-peer answer 4 in its log"
    expect_status "$primary" state=active drbd_role=Primary drbd_disk=UpToDate
    records_check "(2a) crossover cut: $secondary outdated, $primary serves" "$since"
    # The Primary hangs now: the outdated Secondary must not take the group.
    pid=$(vm_exec "$primary" 10 "$DAEMON_PID") || fail "$primary: no hapair"
    since=$(epoch_ms)
    t0=$(now)
    vm_exec "$primary" 10 "kill -STOP $pid" || fail "$primary: kill -STOP"
    wait_s=$(echo "$(takeover_bound) + 10" | bc | cut -d. -f1)
    deadline=$(( $(date +%s) + wait_s ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ -n "$fired" ] || fired=$(event_after "$primary" WATCHDOG "$t0")
        if [ -n "$fired" ] && [ -z "$held" ]; then
            python3 "$BOARD/vmctl.py" qmp "$DIR/$primary.qmp" stop >/dev/null || fail "QMP stop"
            held=1
        fi
        words=" $(summary "$secondary") "
        case "$words" in *" state=active "* | *" state=starting "* | *" drbd_role=Primary "*)
            fail "$secondary, outdated, took the group:$words" ;;
        esac
        sleep 0.3
    done
    [ -n "$fired" ] || fail "$primary's watchdog never fired"
    expect_status "$secondary" peer_alive=false state=standby drbd_disk=Outdated \
        health_sources=drbd
    local why
    why=$(vm_exec "$secondary" 10 'hapair status' | grep -m1 'drbd r0 disk') ||
        fail "$secondary: status does not say why"
    note "xover+hang: $secondary stays down ${wait_s}s after the hang (status: $(echo "$why" | xargs))" "$(since "$t0")"
    RECORD_ROWS+=("$(printf '%-58s %6s %6s %6s %5s %8s  %s' \
        "(2b) then $primary hangs: $secondary never promoted" - - - - - pass)")
    # The old Primary comes back, still cut off from DRBD's link: it serves again.
    t0=$(now)
    python3 "$BOARD/vmctl.py" qmp "$DIR/$primary.qmp" cont >/dev/null || fail "QMP cont"
    wait_status "$primary" 180 state=active vip=running res_records=running drbd_role=Primary
    note "xover+hang: $primary rebooted -> Primary and serving again" "$(since "$t0")"
    records_check "(2c) $primary back, serves (crossover still cut)" "$since"
    t0=$(now)
    set_xover on
    wait_status "$secondary" 180 drbd_cs=Connected drbd_disk=UpToDate health=ok
    note "xover restored -> $secondary resynced, UpToDate, healthy" "$(since "$t0")"
    ACTIVE=$primary
}

# test_drbd: the DRBD pair: first setup, up, then the four scenarios with the client writing
# through the VIP all along.
test_drbd() {
    drbd_setup
    test_pair_up
    drbd_ready "$ACTIVE"
    start_records
    records_check "start: $ACTIVE serves" "$(epoch_ms)"
    test_drbd_handover
    test_drbd_hang
    test_drbd_xover
    touch "$DIR/records.stop"
}

# keep_logs DIR: the run's evidence into DIR (target/qemu-pair/last-test/, last-test/ipmi/)
# before the teardown.
keep_logs() {
    local keep=$1 node
    rm -rf "$keep"
    mkdir -p "$keep"
    cp "$DIR"/*.log "$DIR"/*.lan.conf "$keep/" 2>/dev/null || true
    for node in alpha beta; do
        vm_exec "$node" 10 'cat /var/log/hapair.log' >"$keep/$node.hapair.log" 2>/dev/null || true
    done
    printf '%s\n' "${TIMINGS[@]}" >"$keep/timings.txt"
    log "logs kept in $keep"
}

# test_plain: the pair with `fence watchdog`: up, hang, cables.
test_plain() {
    test_pair_up
    test_hang
    cable_test "serial (null-modem relay stopped)" serial serial_cut serial_restore
    cable_test "crossover (beta's e1000 link down)" ucast "set_xover off" "set_xover on"
    local failovers
    failovers=$(vm_exec "$ACTIVE" 10 'hapair status --json' | grep -o '"failovers":[0-9]*')
    log "$ACTIVE: $failovers (the hang's takeover only)"
}

# test_ipmi: the pair fenced through its BMCs: up, each node's agent reaches the peer's BMC;
# each node watches its own BMC (`ipmi`): a CPU past its critical temperature, then an
# uncorrectable memory error in the SEL, each hands the group over; then the hang fenced by
# power; the links come back after the power cycle.
test_ipmi() {
    test_pair_up
    test_ipmi_status
    test_ipmi_ready
    test_ipmi_sensor
    test_ipmi_sel
    test_ipmi_hang
}

# run_part ipmi|drbd: the pair booted again in that mode, and its tests.
run_part() {
    IPMI=0
    DRBD=0
    case $1 in
        ipmi) IPMI=1 ;;
        drbd) DRBD=1 ;;
    esac
    PART="$1 "
    KEEP=$CACHE/last-test/$1
    cmd_up
    note "up: QEMU start -> both console shells answer" "$(since "$BOOT_T0")"
    "test_$1"
    PART=''
}

cmd_test() {
    local t0
    t0=$(now)
    KEEP=$CACHE/last-test
    rm -rf "$KEEP"
    trap 'rc=$?; keep_logs "$KEEP"; cmd_down; [ "$rc" = 0 ] || log "test failed (exit $rc)"; exit $rc' \
        EXIT
    local parts=() part booted=0
    if [ "$IPMI" = 1 ]; then
        parts=(ipmi)
    elif [ "$DRBD" = 1 ]; then
        parts=(drbd)
    else
        cmd_up
        note "up: QEMU start -> both console shells answer" "$(since "$BOOT_T0")"
        if [ "$BUSYBOX_ONLY" = 1 ]; then
            test_busybox
        else
            test_plain
            # Then the pair again: each PC powered by its BMC; then with replicated data.
            parts=(ipmi drbd)
            booted=1
        fi
    fi
    for part in "${parts[@]}"; do
        if [ "$booted" = 1 ]; then
            keep_logs "$KEEP"
            cmd_down
        fi
        run_part "$part"
        booted=1
    done
    note "total, build included" "$(since "$t0")"
    print_timings
    [ "${#RECORD_ROWS[@]}" = 0 ] || print_records
    echo "qemu-pair: test passed"
}
