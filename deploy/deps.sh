#!/bin/sh
# Install the Debian 12 packages that vmengine's build and tests need.
# Idempotent: when every package is present it only runs dpkg-query and exits.
# apt-get update runs only when something is missing.
set -eu

# Build: compiler, pkg-config, libraries of DESIGN.md.
BUILD="build-essential pkg-config clang-format libqb-dev libconfig-dev libaio-dev \
libcunit1-dev libssl-dev libcpg-dev libquorum-dev libvotequorum-dev libcmap-dev \
libcorosync-common-dev libprotobuf-c-dev protobuf-c-compiler"
# Test peers: Debian's tgt (reference target), libiscsi tools (clients, conformance).
# QEMU host (tests/interop/qemu.sh): its libiscsi block driver, qemu-img, and a
# tiny guest booted from the distribution kernel with a busybox initramfs.
TEST="tgt libiscsi-bin libiscsi-dev procps iproute2 corosync \
qemu-system-x86 qemu-block-extra qemu-utils busybox-static linux-image-amd64"

want="$BUILD $TEST"
[ "${1:-}" = "--build-only" ] && want="$BUILD"

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# tgt's package starts a tgtd service; tests run their own tgtd on their own ports.
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
