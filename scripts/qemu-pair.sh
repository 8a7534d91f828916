#!/usr/bin/env bash
# The hapair pair on two emulated PCs (board/qemu-pair/README.md): two QEMU guests (TCG) with a
# real 16550 null-modem on ttyS1, an e1000 crossover on eth1, the service LAN on eth0 (a bridge
# in a lab network namespace with a client) and an Intel 6300ESB watchdog that resets the guest.
# With --ipmi each PC also has an IPMI BMC (OpenIPMI's ipmi_sim, QEMU's ipmi-bmc-extern) that
# powers its QEMU off and on, and the pair fences with fence_ipmilan (hapair-ipmi.conf); each
# node watches its own BMC's sensors and event log through /dev/ipmi0 (hapair's `ipmi`).
# Run as root. Only loopback and Unix sockets are used; no user-mode networking.
#
# With --drbd each PC has a second disk (virtio, /dev/vda) that DRBD (the Debian kernel's
# module, drbd-utils) replicates with protocol C over the crossover; the group is the DRBD
# resource, its ext4 file system, a record service (hapair-records) and the VIP
# (hapair-drbd.conf), and DRBD's fence-peer handler is `hapair drbd-fence-peer`.
#
# Usage: qemu-pair.sh COMMAND [--name NAME] [--busybox|--ipmi|--drbd] (NAME: 1-12 of [a-z0-9], default qp)
#   build                 install missing packages, unpack the kernel, build hapair (static)
#                         and the initramfs into target/qemu-pair/ (also done by up)
#   up                    build, then boot the pair (with --busybox: without hapair; with
#                         --ipmi: each QEMU started by its BMC, the pair fencing through it)
#   down                  stop what up started (by pid) and remove the namespaces and sockets
#   status                what runs; exit 0 up, 1 degraded, 3 not up
#   exec NODE CMD         run CMD in NODE's console shell (NODE alpha|beta), print its output
#   qmp NODE CMD [JSON]   one QMP command to NODE's QEMU
#   serial cut|restore    stop (start) the null-modem relay between the two ttyS1
#   xover cut|restore     take beta's crossover NIC link down (up) from QEMU, as a pulled cable
#   test                  up, the pair tests with hapair, down; then up --ipmi, the BMC tests
#                         (a sensor past critical, a SEL failure, the fence), down; then up
#                         --drbd, the data tests, down; prints the timings
#   test --ipmi           only the second part: up --ipmi, the BMC tests, down
#   test --drbd           only the third part: up --drbd, the data tests (a hang, the
#                         crossover cut, a planned handover, the resync), down
#   test --busybox        up without hapair, the infrastructure tests with busybox alone, down
#
# State lives in /run/hapair-qemu/NAME/: the sockets (NODE.con console, NODE.qmp, NODE.events
# a second QMP monitor, NODE.tty null-modem end), NODE.console.log (everything each console
# printed), NODE.events.log (QMP events with the host time), probe.log, pids, namespaces;
# with --ipmi also NODE.lan.conf, NODE.bmc.emu (its sensors and records), NODE.cpu-temp and
# NODE.12v (the sensors' raw readings, which the tests write), NODE.bmc.log (ipmi_sim's output)
# and NODE.power.log (each power on and off of NODE's QEMU). `test` keeps these logs (and the guests'
# /var/log/hapair.log) in target/qemu-pair/last-test/ (the --ipmi part in last-test/ipmi/).
set -Eeuo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BOARD=$REPO/board/qemu-pair
CACHE=${QEMU_PAIR_CACHE:-$REPO/target/qemu-pair}
STATE_ROOT=/run/hapair-qemu
NAME=qp
BUSYBOX_ONLY=0
IPMI=0
DRBD=0
DISK_MB=32                  # each PC's second disk in the DRBD mode
KPKG_PREFIX=linux-image-
XOVER_PORT=10694            # alpha's crossover UDP port in the lab namespace; beta's is +1
BMC_PORT=9002               # alpha's BMC system interface (ipmi-bmc-extern); beta's is +1
BMC_USER=hapair
VIP=192.0.2.100
T0=$(date +%s.%N)

die() { echo "qemu-pair: $*" >&2; exit 1; }
log() { printf 'qemu-pair: [%6.1fs] %s\n' "$(elapsed)" "$*" >&2; }
elapsed() { echo "$(date +%s.%N) - $T0" | bc; }
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
usage() { awk '/^# Usage:/,/infrastructure tests/' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

parse_args() {
    ARGS=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --name) [ $# -ge 2 ] || usage; NAME=$2; shift 2 ;;
            --busybox) BUSYBOX_ONLY=1; shift ;;
            --ipmi) IPMI=1; shift ;;
            --drbd) DRBD=1; shift ;;
            *) ARGS+=("$1"); shift ;;
        esac
    done
    [[ $NAME =~ ^[a-z0-9]{1,12}$ ]] || die "bad --name '$NAME' (1-12 of a-z0-9)"
    DIR=$STATE_ROOT/$NAME
}

# --- build ------------------------------------------------------------------------------------

install_packages() {
    local need=()
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
        need+=(busybox-static)
    command -v cpio >/dev/null || need+=(cpio)
    command -v depmod >/dev/null || need+=(kmod)
    command -v socat >/dev/null || need+=(socat)
    command -v bc >/dev/null || need+=(bc)
    command -v readelf >/dev/null || need+=(binutils)
    command -v ip >/dev/null || need+=(iproute2)
    command -v ping >/dev/null || need+=(iputils-ping)
    command -v python3 >/dev/null || need+=(python3)
    # The IPMI mode: the BMC simulator, the agent (and its ipmitool), and strace, which finds
    # the files the agent needs in the guest.
    [ -x /usr/bin/ipmi_sim ] || need+=(openipmi)
    [ -x /usr/sbin/fence_ipmilan ] || need+=(fence-agents)
    [ -x /usr/bin/ipmitool ] || need+=(ipmitool)
    command -v strace >/dev/null || need+=(strace)
    # The DRBD mode: drbd-utils and mke2fs for the guests (copied into the image).
    [ -x /usr/sbin/drbdadm ] || [ -x /sbin/drbdadm ] || need+=(drbd-utils)
    [ -x /usr/sbin/mke2fs ] || [ -x /sbin/mke2fs ] || need+=(e2fsprogs)
    [ "${#need[@]}" -eq 0 ] && return 0
    echo "qemu-pair: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# kernel_package: the versioned package linux-image-amd64 stands for ("" without apt lists).
kernel_package() {
    { apt-cache depends linux-image-amd64 2>/dev/null || true; } |
        awk '/Depends: linux-image-/ {print $2; exit}'
}

# The Debian kernel's package files only (the host does not boot it): downloaded once into the
# cache, unpacked, and its modules.dep made with depmod.
fetch_kernel() {
    mkdir -p "$CACHE"
    if [ ! -f "$CACHE/kernel.version" ]; then
        local pkg
        pkg=$(kernel_package)
        [ -n "$pkg" ] || { apt-get update -qq; pkg=$(kernel_package); }
        [ -n "$pkg" ] || die "cannot find the package behind linux-image-amd64"
        rm -rf "$CACHE/kernel" "$CACHE"/*.deb
        (cd "$CACHE" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") ||
            die "apt-get download $pkg failed"
        dpkg -x "$CACHE"/"$pkg"_*.deb "$CACHE/kernel"
        rm -f "$CACHE"/*.deb
        depmod -b "$CACHE/kernel" "${pkg#"$KPKG_PREFIX"}"
        echo "${pkg#"$KPKG_PREFIX"}" >"$CACHE/kernel.version"
    fi
    KVER=$(cat "$CACHE/kernel.version")
    KDIR=$CACHE/kernel/lib/modules/$KVER
    VMLINUZ=$CACHE/kernel/boot/vmlinuz-$KVER
    [ -f "$VMLINUZ" ] || die "no $VMLINUZ (remove $CACHE/kernel.version to fetch again)"
    [ -f "$CACHE/vmlinux-$KVER" ] || extract_vmlinux
    KERNEL=$VMLINUZ
    [ -s "$CACHE/vmlinux-$KVER" ] && KERNEL=$CACHE/vmlinux-$KVER
}

# Unpacking the xz-compressed kernel under TCG takes 10 s or more at every boot and reset.
# The uncompressed ELF vmlinux, which has a PVH entry note (CONFIG_PVH), is loaded by QEMU
# directly: the guest starts in the kernel proper. Without the note the bzImage is booted.
extract_vmlinux() {
    local out=$CACHE/vmlinux-$KVER
    python3 - "$VMLINUZ" "$out.new" <<'PY' || { : >"$out"; return 0; }
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit(1)
elf = lzma.LZMADecompressor().decompress(data[start:])
if elf[:4] != b"\x7fELF":
    sys.exit(1)
open(sys.argv[2], "wb").write(elf)
PY
    if command -v readelf >/dev/null && readelf -n "$out.new" | grep -q 'type: (0x00000012)'; then
        mv "$out.new" "$out"
    else
        rm -f "$out.new"
        : >"$out"
    fi
}

# A static binary (glibc, crt-static): no loader or libraries needed in the guest. When the
# toolchain cannot link it statically, the dynamic binary goes in with what ldd names.
build_hapair() {
    log "scripts/build-static (for the guest)"
    HAPAIR_BIN=$("$REPO/scripts/build-static")
    RECORDS_BIN=$("$REPO/scripts/build-static" hapair-records)
}

# modules_for NAME...: the module files NAME need, dependencies first, each once.
modules_for() {
    local want=("$@") seen=" " out=()
    resolve() {
        local path
        path=$(awk -v m="/$1.ko" 'index($1, m ":") || $1 ~ ("/" m ":$") {print $1}' \
            "$KDIR/modules.dep" | head -1)
        path=${path%:}
        [ -n "$path" ] || die "module $1 not in $KDIR/modules.dep"
        case "$seen" in *" $path "*) return ;; esac
        local dep
        for dep in $(awk -v p="$path:" '$1 == p {$1 = ""; print}' "$KDIR/modules.dep"); do
            dep=${dep##*/}
            resolve "${dep%%.ko*}"
        done
        seen="$seen$path "
        out+=("$path")
    }
    local m
    for m in "${want[@]}"; do resolve "$m"; done
    printf '%s\n' "${out[@]}"
}

build_initramfs() {
    local root=$CACHE/root
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,usr/sbin,etc/hapair,lib/modules,proc,sys,dev,run,tmp}
    # Whatever the builder's umask: hapair refuses a configuration file or an authkey
    # directory that group or others may write (SPEC §7.3).
    chmod 0755 "$root/etc/hapair"
    cp /bin/busybox "$root/bin/busybox"
    install -m 0755 "$BOARD/init" "$root/init"
    install -m 0755 "$BOARD/run" "$root/etc/hapair/run"
    install -m 0644 "$BOARD/hapair.conf" "$root/etc/hapair/hapair.conf"
    install -m 0644 "$BOARD/hapair-ipmi.conf" "$root/etc/hapair/hapair-ipmi.conf"
    install -m 0755 "$HAPAIR_BIN" "$root/usr/sbin/hapair"
    if ldd "$HAPAIR_BIN" >/dev/null 2>&1; then
        local lib
        for lib in $(ldd "$HAPAIR_BIN" | grep -o '/[^ ]*'); do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    fi
    # One key per build, the same on both nodes; /init installs it with mode 0600.
    (umask 077; "$HAPAIR_BIN" keygen >"$root/etc/hapair/authkey.in")
    local path
    : >"$root/lib/modules/load.list"
    for path in $(modules_for e1000 i6300esb); do
        cp "$KDIR/$path" "$root/lib/modules/${path##*/}"
        echo "${path##*/}" >>"$root/lib/modules/load.list"
    done
    # The kernel's IPMI device (the BMC's KCS interface, /dev/ipmi0): /init loads these only
    # in the IPMI mode (board.conf=ipmi), where QEMU has the isa-ipmi-kcs the driver finds.
    : >"$root/lib/modules/load-ipmi.list"
    for path in $(modules_for ipmi_msghandler ipmi_si ipmi_devintf); do
        cp "$KDIR/$path" "$root/lib/modules/${path##*/}"
        echo "${path##*/}" >>"$root/lib/modules/load-ipmi.list"
    done
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
        gzip -1 >"$CACHE/initramfs.cpio.gz.new"
    mv "$CACHE/initramfs.cpio.gz.new" "$CACHE/initramfs.cpio.gz"
    log "initramfs: $(du -h "$CACHE/initramfs.cpio.gz" | cut -f1)" \
        "modules: $(tr '\n' ' ' <"$root/lib/modules/load.list")" \
        "(IPMI mode: $(tr '\n' ' ' <"$root/lib/modules/load-ipmi.list"))"
    if [ "$DRBD" = 1 ]; then
        build_drbd_cpio
        cat "$CACHE/initramfs.cpio.gz" "$CACHE/drbd.cpio.gz" >"$CACHE/initramfs-drbd.cpio.gz"
        log "initramfs with drbd-utils: $(du -h "$CACHE/initramfs-drbd.cpio.gz" | cut -f1)"
    fi
    if [ "$IPMI" = 1 ]; then
        build_fence_cpio
        # The kernel unpacks concatenated archives in turn: the IPMI image is the plain one
        # plus the fence agent's files.
        cat "$CACHE/initramfs.cpio.gz" "$CACHE/fence.cpio.gz" >"$CACHE/initramfs-ipmi.cpio.gz"
        log "initramfs with fence_ipmilan: $(du -h "$CACHE/initramfs-ipmi.cpio.gz" | cut -f1)"
    fi
}

# fence_ipmilan in the guest (IPMI mode only: it quadruples the image, and unpacking it costs
# every boot under TCG). The agent is Debian's python3 with fence-agents' fencing.py, pycurl,
# and /usr/bin/ipmitool with their shared libraries: the files are whatever one run of the
# agent on this host opens, stats or executes (strace; a run that cannot reach a BMC goes
# through the same imports as one that can), symbolic links kept as links, modification times
# kept (python then uses the compiled .pyc as they are), plus the dynamic loader and
# /etc/ld.so.cache. No other /etc file of the host goes in (resolv.conf, hosts, ssl): /init
# writes hosts and nsswitch.conf. The BMC password is made once per build, the same for both
# BMCs: /etc/hapair/bmc-password prints it (root's, 0700, the agent's --password-script),
# and the host keeps it in $CACHE/bmc.password for the BMCs' lan.conf (16 characters: IPMI
# 2.0 allows 20, ipmi_sim's md5 user 16).
build_fence_cpio() {
    local root=$CACHE/fence-root trace=$CACHE/fence.trace path
    rm -rf "$root"
    mkdir -p "$root/etc/hapair"
    chmod 0755 "$root" "$root/etc" "$root/etc/hapair"
    unshare -n strace -f -qq -o "$trace" -e trace=openat,execve,stat,newfstatat,lstat \
        /usr/sbin/fence_ipmilan --lanplus --cipher=3 --ip=127.0.0.1 --username=x \
        --password=y --action=status >/dev/null 2>&1 || true
    add_traced() {
        local p=$1 target
        [ -e "$root$p" ] || [ -L "$root$p" ] && return 0
        mkdir -p "$root$(dirname "$p")"
        if [ -L "$p" ]; then
            target=$(readlink "$p")
            ln -s "$target" "$root$p"
            case $target in /*) ;; *) target=$(dirname "$p")/$target ;; esac
            add_traced "$(realpath -s -m "$target")"
        else
            cp -p "$p" "$root$p"
        fi
    }
    for path in $(sed -nE 's/^[0-9]+ +(openat|execve|stat|newfstatat|lstat)\((AT_FDCWD, )?"(\/[^"]+)".* = [0-9]+$/\3/p' \
            "$trace" | LC_ALL=C sort -u) /usr/bin/python3 /lib64/ld-linux-x86-64.so.2 \
            /etc/ld.so.cache; do
        case $path in
            /etc/ld.so.cache) ;;
            /etc/* | /usr/local/* | /proc/* | /sys/* | /dev/* | /tmp/* | /run/* | /root/*) continue ;;
            "$CACHE"/* | "$REPO"/*) continue ;;
            # Other packages' .pth hooks (google-auth's): the agent needs none of them.
            *.pth) continue ;;
            # Busybox is the guest's shell and tools: none of the host's.
            /bin/* | /sbin/* | /usr/sbin/*) [ "$path" = /usr/sbin/fence_ipmilan ] || continue ;;
            /usr/bin/*) case $path in /usr/bin/python3* | /usr/bin/ipmitool) ;; *) continue ;; esac ;;
        esac
        [ -f "$path" ] && add_traced "$path"
    done
    [ -f "$CACHE/bmc.password" ] ||
        (umask 077; od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$CACHE/bmc.password")
    (umask 077; printf '#!/bin/sh\necho %s\n' "$(cat "$CACHE/bmc.password")" \
        >"$root/etc/hapair/bmc-password")
    chmod 0700 "$root/etc/hapair/bmc-password"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 \
        >"$CACHE/fence.cpio.gz"
    log "fence_ipmilan for the guest: $(find "$root" -type f | wc -l) files," \
        "$(du -sh "$root" | cut -f1)"
}

# drbd-utils (drbdadm, drbdsetup, drbdmeta and their 8.4 back-ends under /usr/lib/drbd),
# mke2fs, the record service and the DRBD mode's files, with the shared libraries ldd names
# (DRBD mode only).
build_drbd_cpio() {
    local root=$CACHE/drbd-root path lib
    rm -rf "$root"
    mkdir -p "$root/etc/hapair" "$root/usr/lib/drbd" "$root/usr/sbin" "$root/srv/data" \
        "$root/var/lib/drbd" "$root/var/run/drbd"
    chmod 0755 "$root" "$root/etc" "$root/etc/hapair"
    local tools=()
    for path in drbdadm drbdsetup drbdmeta mke2fs; do
        tools+=("$(command -v "$path" || echo "/sbin/$path")")
    done
    for path in "${tools[@]}"; do
        install -m 0755 "$path" "$root/usr/sbin/${path##*/}"
    done
    ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
    # The kernel runs DRBD's handlers through /sbin/drbdadm (the module's usermode_helper).
    mkdir -p "$root/sbin"
    ln -s /usr/sbin/drbdadm "$root/sbin/drbdadm"
    for path in /usr/lib/drbd/drbdadm-84 /usr/lib/drbd/drbdsetup-84; do
        install -m 0755 "$path" "$root$path"
    done
    # drbdadm finds its 8.4 back-end on /lib/drbd (a directory of its own in the guest, where
    # /lib is not /usr/lib).
    mkdir -p "$root/lib"
    ln -s /usr/lib/drbd "$root/lib/drbd"
    for lib in $(ldd "${tools[@]}" /usr/lib/drbd/drbdadm-84 /usr/lib/drbd/drbdsetup-84 2>/dev/null |
            grep -o '/[^ ]*' | sort -u); do
        case $lib in /usr/lib/drbd/* | */sbin/*) continue ;; esac
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    # The modules: the second disk (virtio), DRBD and ext4 (crc32c_generic first: libcrc32c
    # wants a crc32c, a soft dependency depmod does not list). In this image only: unpacking costs
    # every boot under TCG).
    mkdir -p "$root/lib/modules"
    : >"$root/lib/modules/load-drbd.list"
    for path in $(modules_for virtio_pci virtio_blk crc32c_generic drbd ext4); do
        cp "$KDIR/$path" "$root/lib/modules/${path##*/}"
        echo "${path##*/}" >>"$root/lib/modules/load-drbd.list"
    done
    install -m 0755 "$RECORDS_BIN" "$root/usr/sbin/hapair-records"
    install -m 0644 "$BOARD/drbd.conf" "$root/etc/drbd.conf"
    install -m 0644 "$BOARD/hapair-drbd.conf" "$root/etc/hapair/hapair-drbd.conf"
    install -m 0755 "$BOARD/records-ctl" "$root/etc/hapair/records-ctl"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 \
        >"$CACHE/drbd.cpio.gz"
    log "drbd-utils for the guest: $(find "$root" -type f | wc -l) files, $(du -sh "$root" | cut -f1)"
}

cmd_build() {
    install_packages
    fetch_kernel
    build_hapair
    build_initramfs
}

# --- up / down --------------------------------------------------------------------------------

add_ns() {
    echo "$1" >>"$DIR/namespaces"   # recorded first, so that a failed up still cleans it
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# The service LAN: bridge br0 in the lab namespace with a tap per VM and the client's veth.
# The QEMUs themselves run in the lab namespace (their loopback carries the crossover).
make_lan() {
    add_ns "$NS_LAB"
    add_ns "$NS_CLIENT"
    ip -n "$NS_LAB" link add br0 type bridge
    ip -n "$NS_LAB" link set br0 up
    local node
    for node in alpha beta; do
        ip -n "$NS_LAB" tuntap add dev "tap-$node" mode tap
        ip -n "$NS_LAB" link set "tap-$node" master br0 up
    done
    ip -n "$NS_LAB" link add client type veth peer name lan0 netns "$NS_CLIENT"
    ip -n "$NS_LAB" link set client master br0 up
    ip -n "$NS_CLIENT" addr add 192.0.2.10/24 dev lan0
    ip -n "$NS_CLIENT" addr add 192.0.2.254/24 dev lan0   # the ping node
    ip -n "$NS_CLIENT" link set lan0 up
    if [ "$IPMI" = 1 ]; then
        # The BMCs' LAN interfaces, on the service LAN (a management LAN the nodes share).
        ip -n "$NS_LAB" addr add 192.0.2.201/24 dev br0
        ip -n "$NS_LAB" addr add 192.0.2.202/24 dev br0
    fi
}

# qemu_args NODE NUMBER: QEMU's command line for NODE into QEMU_ARGS. The crossover is a UDP
# socket pair on the lab namespace's loopback (alpha XOVER_PORT, beta XOVER_PORT+1):
# connectionless, so either QEMU may stop and start again (a BMC's power cycle) and the cable
# still works. The console log is appended to, across the QEMUs of one run.
qemu_args() {
    local node=$1 n=$2 append log=$DIR/$1.console.log initrd=$CACHE/initramfs.cpio.gz
    local mine=$((XOVER_PORT + n - 1)) peer=$((XOVER_PORT + 2 - n))
    append="$(cat "$BOARD/$node.cmdline")"
    [ "$BUSYBOX_ONLY" = 1 ] && append="$append board.hapair=0"
    # shellcheck disable=SC2054  # the commas are QEMU's option syntax
    QEMU_ARGS=(qemu-system-x86_64 -name "hq-$NAME-$node"
        -accel tcg -m 256 -smp 1 -nodefaults -no-user-config -display none
        -chardev "socket,id=con,path=$DIR/$node.con,server=on,wait=off,logfile=$log,logappend=on"
        -serial chardev:con
        -chardev "socket,id=nullmodem,path=$DIR/$node.tty,server=on,wait=off"
        -serial chardev:nullmodem
        -netdev "tap,id=lan,ifname=tap-$node,script=no,downscript=no"
        -device "e1000,netdev=lan,mac=52:54:00:00:0$n:01,addr=0x3"
        -netdev "socket,id=xover,udp=127.0.0.1:$peer,localaddr=127.0.0.1:$mine"
        -device "e1000,netdev=xover,mac=52:54:00:00:0$n:02,addr=0x4"
        -device i6300esb,addr=0x5 -action watchdog=reset
        -qmp "unix:$DIR/$node.qmp,server=on,wait=off"
        -chardev "socket,id=events,path=$DIR/$node.events,server=on,wait=off"
        -mon chardev=events,mode=control
        -pidfile "$DIR/$node.pid")
    if [ "$IPMI" = 1 ]; then
        # The BMC: ipmi_sim's system interface on the lab namespace's loopback; QEMU connects
        # (again after ipmi_sim restarts) and its ipmi-bmc-extern carries power off and reset
        # to the machine; the guest sees a KCS interface (no driver loaded).
        append="$append board.conf=ipmi"
        initrd=$CACHE/initramfs-ipmi.cpio.gz
        # shellcheck disable=SC2054
        QEMU_ARGS+=(-chardev "socket,id=ipmi0,host=127.0.0.1,port=$((BMC_PORT + n - 1)),reconnect=1"
            -device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0)
    fi
    if [ "$DRBD" = 1 ]; then
        # The second disk: a raw file per PC, kept across the guest's resets (QEMU's own);
        # the guest's flushes reach it (cache=writeback honours them).
        append="$append board.conf=drbd"
        initrd=$CACHE/initramfs-drbd.cpio.gz
        # shellcheck disable=SC2054
        QEMU_ARGS+=(-drive "file=$DIR/$node.disk,format=raw,if=virtio,cache=writeback")
    fi
    QEMU_ARGS+=(-kernel "$KERNEL" -initrd "$initrd" -append "$append")
}

# boot_vm NODE NUMBER: QEMU in the lab namespace, daemonized; with --ipmi, NODE's BMC instead,
# which starts QEMU itself (as its power on) and keeps it as its child.
boot_vm() {
    local node=$1 n=$2
    : >"$DIR/$node.console.log"
    qemu_args "$node" "$n"
    if [ "$IPMI" = 1 ]; then
        start_bmc "$node" "$n"
    else
        ip netns exec "$NS_LAB" "${QEMU_ARGS[@]}" -daemonize
    fi
    setsid python3 "$BOARD/vmctl.py" events "$DIR/$node.events" "$DIR/$node.events.log" \
        </dev/null >>"$DIR/$node.events.err" 2>&1 &
    echo $! >"$DIR/$node-events.pid"
}

# start_bmc NODE NUMBER: NODE's BMC, OpenIPMI's ipmi_sim in the lab namespace (the BMC has
# power of its own: it lives outside the guest). Its RMCP+ LAN interface listens on the
# service LAN, at 192.0.2.201 (alpha's) or .202 (beta's) on br0; its system interface (channel
# 15, codec VM) on 127.0.0.1:BMC_PORT(+1), where QEMU's ipmi-bmc-extern connects. In that mode
# ipmi_sim owns the machine: it runs `startcmd` (NODE.power: log, then QEMU in the foreground)
# at its start and at every power on; power is on while QEMU is connected; a power off sends
# the VM a power-off command (QEMU shuts the guest down and exits; SIGTERM after
# poweroff_wait s, SIGKILL kill_wait s later), a hard reset a reset command.
start_bmc() {
    local node=$1 n=$2 guid
    guid=$(printf '%s' "$node" | od -An -tx1 | tr -d ' \n')
    guid=$(printf '%-32s' "$guid" | tr ' ' 0)
    # shellcheck disable=SC2016  # the power script's own expansions
    {
        echo "#!/bin/bash"
        echo "# $node's power (ipmi_sim's startcmd, scripts/qemu-pair.sh start_bmc): QEMU as a"
        echo "# child, a SIGTERM passed on to it; one line per power on and per QEMU exit."
        echo "log=$(printf '%q' "$DIR/$node.power.log")"
        echo "echo \"\$(date +%s.%N) power-on\" >>\"\$log\""
        printf '%q ' "${QEMU_ARGS[@]}"
        echo '& qemu=$!'
        echo "trap 'kill -TERM \$qemu 2>/dev/null' TERM"
        echo 'wait $qemu; rc=$?'
        echo 'while kill -0 $qemu 2>/dev/null; do wait $qemu; rc=$?; done'
        echo "echo \"\$(date +%s.%N) power-off qemu-exit \$rc\" >>\"\$log\""
    } >"$DIR/$node.power"
    chmod 0755 "$DIR/$node.power"
    (umask 077; cat >"$DIR/$node.lan.conf" <<EOT
# $node's BMC (scripts/qemu-pair.sh start_bmc)
name "$node-bmc"
set_working_mc 0x20
  startlan 1
    addr 192.0.2.20$n 623
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid $guid
  endlan
  serial 15 127.0.0.1 $((BMC_PORT + n - 1)) codec VM
  startcmd "$DIR/$node.power"
  startnow true
  poweroff_wait 5
  kill_wait 2
  user 2 true "$BMC_USER" "$(cat "$CACHE/bmc.password")" admin 10 md5
EOT
)
    bmc_emu "$node"
    mkdir -p "$DIR/$node.bmc-state"
    : >"$DIR/$node.power.log"
    setsid ip netns exec "$NS_LAB" ipmi_sim -n -c "$DIR/$node.lan.conf" -f "$DIR/$node.bmc.emu" \
        -s "$DIR/$node.bmc-state" </dev/null >>"$DIR/$node.bmc.log" 2>&1 &
    echo $! >"$DIR/$node-bmc.pid"
}

# bmc_emu NODE: NODE's BMC's command file ($DIR/NODE.bmc.emu): the BMC with a SEL, the sensor
# records of board/qemu-pair/bmc.sdrs (compiled by sdrcomp, one main_sdr_add each), and their
# two sensors, whose raw readings ipmi_sim reads every second from a file the test writes:
# NODE.cpu-temp (degrees C; 45 at start) and NODE.12v (counts of 0.06 V; 200, 12 V). Each has
# the BMC's own thresholds, the same as its record's, so that Get Sensor Reading's status bits
# and the BMC's threshold events (logged in its SEL: CPU Temp's upper ones) agree with them.
bmc_emu() {
    local node=$1 emu=$DIR/$1.bmc.emu
    echo 45 >"$DIR/$node.cpu-temp"
    echo 200 >"$DIR/$node.12v"
    [ -s "$DIR/bmc.bsdr" ] || sdrcomp -r -o "$DIR/bmc.bsdr" "$BOARD/bmc.sdrs" ||
        die "sdrcomp cannot compile $BOARD/bmc.sdrs"
    {
        echo "mc_setbmc 0x20"
        echo "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02"
        echo "sel_enable 0x20 1000 0x0a"
        python3 - "$DIR/bmc.bsdr" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
i = 0
while i + 5 <= len(data):
    n = 5 + data[i + 4]
    print("main_sdr_add 0x20 " + " ".join(f"0x{b:02x}" for b in data[i:i + n]))
    i += n
PY
        echo "sensor_add 0x20 0 1 0x01 0x01 poll 1000 file \"$DIR/$node.cpu-temp\""
        echo "sensor_set_threshold 0x20 0 1 readable 111000 0x5a 0x50 0x46 0 0 0"
        echo "sensor_set_event_support 0x20 0 1 enable scanning per-state" \
            "000111111000000 000111111000000 000111111000000 000111111000000"
        echo "sensor_add 0x20 0 2 0x02 0x01 poll 1000 file \"$DIR/$node.12v\""
        echo "sensor_set_threshold 0x20 0 2 readable 010010 0 0xdc 0 0 0xb4 0"
        echo "sensor_set_event_support 0x20 0 2 enable scanning per-state" \
            "000000000000000 000000000000000 000000000000000 000000000000000"
        echo "mc_enable 0x20"
    } >"$emu"
}

# The null-modem cable: a relay joining the two ttyS1 sockets, so that it can be pulled. It
# connects again whenever a QEMU went away and came back (a BMC's power cycle); stopping the
# loop (its pid in relay.pid) stops the socat under way too.
serial_restore() {
    [ -f "$DIR/relay.pid" ] && pid_alive "$DIR/relay.pid" && return 0
    # shellcheck disable=SC2016
    setsid bash -c 'trap "kill \$relay 2>/dev/null; exit 0" TERM
        while :; do
            socat "UNIX-CONNECT:$1" "UNIX-CONNECT:$2" & relay=$!
            wait $relay
            sleep 0.2
        done' relay "$DIR/alpha.tty" "$DIR/beta.tty" </dev/null >>"$DIR/relay.log" 2>&1 &
    echo $! >"$DIR/relay.pid"
}

serial_cut() { stop_pid "$DIR/relay.pid"; }

# The client's probe of the VIP: one ping every 200 ms, each answer or miss timestamped.
start_probe() {
    ip netns exec "$NS_CLIENT" setsid ping -D -O -i 0.2 -W 0.2 "$VIP" \
        </dev/null >"$DIR/probe.log" 2>&1 &
    echo $! >"$DIR/probe.pid"
}

pid_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -qa -- "$DIR\|$VIP" "/proc/$pid/cmdline"
}

# Ends the process in the pid file, after checking it is still ours (its command line names
# this run's directory or the VIP).
stop_pid() {
    local file=$1 pid i
    pid_alive "$file" || { rm -f "$file"; return 0; }
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -f "$file"
}

cmd_down() {
    [ -d "$DIR" ] || return 0
    local f ns
    # The BMCs first, so that nothing powers a QEMU on again; then the QEMUs by their pid
    # files (with --ipmi, the BMC's child), whose exit ends their power scripts too.
    for f in probe records relay alpha-bmc beta-bmc alpha beta alpha-events beta-events; do
        stop_pid "$DIR/$f.pid"
    done
    if [ -f "$DIR/namespaces" ]; then
        while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$DIR/namespaces"
    fi
    rm -rf "$DIR"
}

load_env() {
    [ -f "$DIR/env" ] || die "pair '$NAME' is not up (no $DIR/env)"
    # shellcheck disable=SC1091
    . "$DIR/env"
    fetch_kernel
}

cmd_up() {
    cmd_build
    cmd_down
    mkdir -p "$DIR"
    local run
    run=$(printf '%05d' $$)
    NS_LAB=hq-$NAME-$run-lab
    NS_CLIENT=hq-$NAME-$run-client
    printf 'NS_LAB=%s\nNS_CLIENT=%s\nBUSYBOX_ONLY=%s\nIPMI=%s\nDRBD=%s\n' "$NS_LAB" \
        "$NS_CLIENT" "$BUSYBOX_ONLY" "$IPMI" "$DRBD" >"$DIR/env"
    if [ "$DRBD" = 1 ]; then
        local node
        for node in alpha beta; do truncate -s "${DISK_MB}M" "$DIR/$node.disk"; done
    fi
    make_lan
    BOOT_T0=$(now)
    boot_vm alpha 1
    boot_vm beta 2
    if [ "$IPMI" = 1 ]; then
        local node
        for node in alpha beta; do
            wait_file "$DIR/$node.pid" 10 ||
                die "$node's BMC did not start QEMU: $(cat "$DIR/$node.bmc.log")"
        done
    fi
    serial_restore
    start_probe
    log "booting alpha (pid $(cat "$DIR/alpha.pid")) and beta (pid $(cat "$DIR/beta.pid"))"
    wait_shell alpha 90
    wait_shell beta 90
    log "both shells answer $(since "$BOOT_T0")s after the start of QEMU"
}

# wait_file FILE SECONDS: until FILE exists and is not empty.
wait_file() {
    local _
    for _ in $(seq $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
    return 1
}

vm_exec() {
    local node=$1 timeout=$2
    shift 2
    python3 "$BOARD/vmctl.py" exec "$DIR/$node.con" "$timeout" "$*"
}

# wait_shell NODE SECONDS: until the console shell runs a command.
wait_shell() {
    local deadline=$(( $(date +%s) + $2 ))
    until vm_exec "$1" 3 true >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "$1: no shell on the console within $2 s"
        sleep 0.5
    done
}

# boots NODE: how many boots NODE's console has shown.
boots() { grep -c 'qemu-pair: boot node=' "$DIR/$1.console.log" || true; }

cmd_status() {
    [ -f "$DIR/env" ] || { echo "qemu-pair '$NAME': not up"; return 3; }
    . "$DIR/env"
    local bad=0 f
    local procs=(alpha beta relay probe)
    [ "${IPMI:-0}" = 1 ] && procs+=(alpha-bmc beta-bmc)
    for f in "${procs[@]}"; do
        if pid_alive "$DIR/$f.pid"; then
            echo "$f: running (pid $(cat "$DIR/$f.pid"))"
        else
            echo "$f: not running"; bad=1
        fi
    done
    echo "boots: alpha $(boots alpha), beta $(boots beta); namespaces: $NS_LAB $NS_CLIENT"
    return $bad
}

# --- main -------------------------------------------------------------------------------------

main() {
    parse_args "$@"
    set -- "${ARGS[@]}"
    [ $# -ge 1 ] || usage
    [ "$(id -u)" = 0 ] || die "run as root"
    local cmd=$1
    shift
    # A signal ends the script through `exit`, so that the EXIT traps of up and test clean up.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    case "$cmd" in
        build) cmd_build ;;
        up) trap 'rc=$?; [ "$rc" = 0 ] || cmd_down; exit $rc' EXIT; cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        exec) [ $# -ge 2 ] || usage; load_env; vm_exec "$1" 30 "${@:2}" ;;
        qmp) [ $# -ge 2 ] || usage; python3 "$BOARD/vmctl.py" qmp "$DIR/$1.qmp" "${@:2}" ;;
        serial) load_env; case "${1:-}" in cut) serial_cut ;; restore) serial_restore ;;
            *) usage ;; esac ;;
        xover) load_env; case "${1:-}" in cut) set_xover off ;; restore) set_xover on ;;
            *) usage ;; esac ;;
        test) . "$BOARD/tests.sh"; cmd_test ;;
        *) usage ;;
    esac
}

# set_xover on|off: beta's crossover NIC gets (loses) its link, as a plugged (pulled) cable.
set_xover() {
    local up=true
    [ "$1" = off ] && up=false
    python3 "$BOARD/vmctl.py" qmp "$DIR/beta.qmp" set_link "{\"name\":\"xover\",\"up\":$up}" \
        >/dev/null
}

main "$@"
