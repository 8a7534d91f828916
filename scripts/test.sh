#!/usr/bin/env bash
# The test command (README "Quick start"): installs what the tests need when it is missing,
# then runs the formatter check, clippy and the whole default test suite.
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
need gcc gcc            # tests/daemon_flood.rs builds scripts/lib/flood.c
# sysctl (tests/drivers_udp.rs, tests/health_ping.rs set namespace sysctls); systemd-analyze
# (tests/init_script.rs verifies the unit, and fails under CI=true without it); perl with
# Time::HiRes (tests/fixtures/marker.sh stamps the group's runs with CLOCK_MONOTONIC).
need sysctl procps
need systemd-analyze systemd
perl -MTime::HiRes -e 1 >/dev/null 2>&1 || need_pkgs+=(perl)
if [ ! -d /usr/lib/ocf/resource.d/heartbeat ]; then need_pkgs+=(resource-agents); fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "test.sh: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

echo "test.sh: cargo fmt --check"
cargo fmt --check
echo "test.sh: cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "test.sh: cargo test"
cargo test --all-targets "$@"

# The pair on two emulated PCs (real 8250 UARTs, e1000, i6300esb watchdog): about a minute
# once built. HAPAIR_SKIP_QEMU=1 leaves it out (e.g. on a machine without /dev/net/tun).
if [ "${HAPAIR_SKIP_QEMU:-0}" != 1 ]; then
    echo "test.sh: scripts/qemu-pair.sh test"
    scripts/qemu-pair.sh test
fi
