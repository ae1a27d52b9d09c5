#!/bin/bash
# tests/conformance/aptpl.sh [BUILD]: persistent reservations survive an
# engine restart when APTPL is set (SPC-4 5.12.4; issue 5, done-when 2).
#
# Starts a solo engine, registers a key with APTPL and takes a WRITE
# EXCLUSIVE reservation (tests/tools/pr_aptpl), stops the engine by PID,
# starts it again on the same state directory and checks that PERSISTENT
# RESERVE IN / READ RESERVATION still shows the key and type; then clears
# it and checks that the cleared state survives a restart too.
# Prints "aptpl: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
TOOL=$BUILD/tests/tools/pr_aptpl
KEY=0x00000000a5a5f00d
INIT=iqn.2026-11.org.vmengine.test:aptpl-host

t_init aptpl
if [ ! -x "$TOOL" ]; then
	echo "aptpl: $TOOL is missing (make $BUILD/tests/tools/pr_aptpl)" >&2
	t_fail "pr_aptpl tool built"
	t_summary
	exit 1
fi
VM_POOL_DIR=$(mktemp -d /dev/shm/vmengine-aptpl.XXXXXX)
T_EXTRA_DIRS="$T_EXTRA_DIRS $VM_POOL_DIR"
export VM_POOL_DIR
t_port port
vols='{ name = "aptpl"; size = "256M"; }'
url=$(vm_url "$port" aptpl)
want=$(printf 'reserved 0x%016x 1' "$KEY")

restart() {
	vm_stop vm1 || true
	vm_start "$BUILD" vm1 "$port" "$vols"
}

if ! vm_start "$BUILD" vm1 "$port" "$vols"; then
	t_fail "engine starts"
	t_summary
	exit 1
fi
t_check_output "clean start: no reservation" "^none$" "$TOOL" "$url" "$INIT" read
t_check "register (APTPL) and reserve WRITE EXCLUSIVE" "$TOOL" "$url" "$INIT" reserve "$KEY"
t_check_output "READ RESERVATION shows it" "^$want\$" "$TOOL" "$url" "$INIT" read
t_check "state file written" bash -c "ls '$T_DIR'/vm1/state/pr-* >/dev/null"

if restart; then
	t_pass "engine restarts"
	t_check_output "after restart: READ RESERVATION still shows it" "^$want\$" \
		"$TOOL" "$url" "$INIT" read
	t_check_output "another initiator reads it too" "^$want\$" "$TOOL" "$url" "$INIT-2" read
	t_check "clear (APTPL)" "$TOOL" "$url" "$INIT" clear "$KEY"
	t_check_output "cleared" "^none$" "$TOOL" "$url" "$INIT" read
else
	t_fail "engine restarts"
fi
if restart; then
	t_check_output "after a second restart: still cleared" "^none$" "$TOOL" "$url" "$INIT" read
else
	t_fail "engine restarts again"
fi
vm_stop vm1 || true
t_summary
