#!/usr/bin/env bash
# The test command (README "Quick start"): installs what the tests need when it is missing,
# then runs the formatter check, clippy, the whole default test suite and the fuzz targets
# (built, then each run for a few seconds over its corpus: README "Fuzzing").
# Run as root: the integration tests build network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
need ip iproute2
need tc iproute2
need ping iputils-ping
need socat socat
need iptables iptables
need python3 python3
need bc bc
need gcc gcc            # tests/daemon/daemon_flood.rs builds scripts/lib/flood.c
# tests/daemon/e2e_drbd.rs runs each daemon in a mount namespace of its own (unshare, mount)
# and its stand-in drbdadm takes a lock (flock).
need unshare util-linux
need flock util-linux
# sysctl (tests/drivers/drivers_udp.rs, tests/drivers/health_ping.rs set namespace sysctls);
# systemd-analyze (tests/daemon/init_script.rs verifies the unit, and fails under CI=true
# without it); perl with Time::HiRes (tests/fixtures/marker.sh stamps the group's runs with
# CLOCK_MONOTONIC).
need sysctl procps
need systemd-analyze systemd
perl -MTime::HiRes -e 1 >/dev/null 2>&1 || need_pkgs+=(perl)
need c++ g++ # cargo fuzz builds libFuzzer, which is C++
# The Debian package (tests/daemon/deb_package.rs): lintian judges it, debootstrap makes the fresh
# root it is installed into, man renders its pages, strip trims the binary (scripts/build-deb).
need lintian lintian
need debootstrap debootstrap
need man man-db
need strip binutils
if [ ! -d /usr/lib/ocf/resource.d/heartbeat ]; then need_pkgs+=(resource-agents); fi
# The routed lab (scripts/lab.sh up --routed, tests/daemon/e2e_routed.rs): BIND's named as
# the name server, nsupdate and dig for board/two-site/dns-record and the client. (Debian
# starts named.service on install unless policy-rc.d forbids it; the lab runs its own named.)
need named bind9
need nsupdate bind9-dnsutils
need dig bind9-dnsutils
# tests/fence_ipmi.rs: a BMC per node (OpenIPMI's ipmi_sim), the real fence agent and the
# IPMI client it drives (fence-agents is one package on Debian 12: all agents).
need ipmi_sim openipmi
need ipmitool ipmitool
[ -x /usr/sbin/fence_ipmilan ] || need_pkgs+=(fence-agents)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "test.sh: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# The fresh Debian root of tests/daemon/deb_package.rs, made once (a minute or two) and cached in
# /var/cache/hapair-test/, so that the test itself takes seconds.
echo "test.sh: scripts/deb-test-root"
scripts/deb-test-root >/dev/null

echo "test.sh: cargo fmt --check"
cargo fmt --check
echo "test.sh: cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "test.sh: cargo test"
cargo test --all-targets "$@"

# The fuzz targets (tests/fuzz/, README "Fuzzing"), so that none of them rots: cargo-fuzz on
# the stable toolchain, where RUSTC_BOOTSTRAP=1 lets it pass its -Z flags (the address
# sanitizer and the coverage instrumentation); no nightly is needed. Each target then runs for
# a few seconds, its committed corpus first, new inputs going to a scratch directory (the
# committed corpus is never written); a crash fails the script and leaves its input in
# tests/fuzz/artifacts/TARGET/. HAPAIR_SKIP_FUZZ=1 leaves this out, except under CI=true,
# where a missing tool is a failure, never a skip.
fuzz_seconds="${HAPAIR_FUZZ_SECONDS:-5}"
if [ "${HAPAIR_SKIP_FUZZ:-0}" = 1 ] && [ "${CI:-}" != true ]; then
    echo "test.sh: fuzz targets skipped (HAPAIR_SKIP_FUZZ=1)"
else
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "test.sh: installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    export RUSTC_BOOTSTRAP=1
    echo "test.sh: cargo fuzz build --fuzz-dir tests/fuzz"
    cargo fuzz build --fuzz-dir tests/fuzz
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    targets="$(cargo fuzz list --fuzz-dir tests/fuzz)"
    [ -n "$targets" ] || { echo "test.sh: no fuzz targets" >&2; exit 1; }
    for target in $targets; do
        echo "test.sh: cargo fuzz run $target (${fuzz_seconds} s)"
        mkdir "$scratch/$target"
        cargo fuzz run --fuzz-dir tests/fuzz "$target" "$scratch/$target" \
            "tests/fuzz/corpus/$target" -- -max_total_time="$fuzz_seconds" 2>"$scratch/$target.log" \
            || { tail -n 40 "$scratch/$target.log"; exit 1; }
        grep -E '^#[0-9]+[[:space:]]+DONE' "$scratch/$target.log" || true
    done
    unset RUSTC_BOOTSTRAP
fi

# The pair on two emulated PCs (real 8250 UARTs, e1000, i6300esb watchdog), booted three
# times: plain, with BMCs (IPMI), with DRBD on a second disk: about four minutes once built.
# It installs what it needs itself (qemu-system-x86, openipmi, drbd-utils, e2fsprogs, ...).
# HAPAIR_SKIP_QEMU=1 leaves it out (e.g. on a machine without /dev/net/tun).
if [ "${HAPAIR_SKIP_QEMU:-0}" != 1 ]; then
    echo "test.sh: scripts/qemu-pair.sh test"
    scripts/qemu-pair.sh test
fi
