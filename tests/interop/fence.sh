#!/bin/bash
# tests/interop/fence.sh BUILD: engines fence each other off a shared back
# end with persistent reservations (vol_backend_pr(), issue 6: no write from
# a partitioned owner may land after its volumes were taken over).
# tests/tools/be_fence plays two engines on one LUN (two initiator names,
# two keys, both registered at login): A fences B, B's next write is refused
# with RESERVATION CONFLICT while A still writes, fencing again is harmless,
# and B writes again once it registers. Run against the two kinds of back
# end the lab uses: a Debian tgtd LUN and a solo vmengine volume.
# Prints "fence: N passed, N failed"; exit status non-zero on failure.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/../lib.sh"
t_init fence

TOOL=$BUILD/tests/tools/be_fence
if [ ! -x "$TOOL" ]; then
	echo "fence: $TOOL is missing (run make)" >&2
	exit 1
fi

# run_tool NAME URL: every step of the tool as one check.
run_tool() {
	local out line
	out=$(timeout -k 5 60 "$TOOL" "$2" 2>"$T_DIR/$1.err")
	echo "$out" | grep -q "^ok b-writes-again$" || {
		echo "--- be_fence on $1 (stderr):"
		tail -n 20 "$T_DIR/$1.err"
	}
	for step in open b-writes a-fences-b b-refused a-writes a-fences-b-again b-registers \
		b-writes-again; do
		line=$(echo "$out" | grep -E "^(ok|err) $step(:|$)" | head -n 1)
		case $line in
		ok*) t_pass "$1: $step" ;;
		"") t_fail "$1: $step (not reached)" ;;
		*) t_fail "$1: $line" ;;
		esac
	done
}

SHM=/dev/shm/vmengine-fence.$$
mkdir -p "$SHM"
T_EXTRA_DIRS="$T_EXTRA_DIRS $SHM"
truncate -s 64M "$SHM/lun.img"
t_port PT
IQN_T=$IQN_PREFIX:fence-tgt
if tgt_start tf "$PT" && tgt_target tf 1 "$IQN_T" "$SHM/lun.img"; then
	t_pass "tgtd back end starts"
	run_tool tgtd "iscsi://127.0.0.1:$PT/$IQN_T/1"
else
	t_fail "tgtd back end starts"
fi

t_port PV
if vm_start "$BUILD" vf "$PV" '{ name = "fence"; size = "64M"; }'; then
	t_pass "vmengine back end starts"
	run_tool vmengine "$(vm_url "$PV" fence)"
	vm_alive vf && t_pass "vmengine alive afterwards" || t_fail "vmengine alive afterwards"
else
	t_fail "vmengine back end starts"
fi
t_summary
