#!/bin/bash
# tests/cluster/failover-mirror.sh BUILD: failover of a mirrored volume on
# back-end storage in the three-node lab (issue 6, done-when 1 and 2).
# Three engines with service addresses (LAB_SERVICE: node N's portal is
# 10.77.0.(100+N), held by the owner of its volumes) and two back ends, each
# in its own namespace (deploy/lab backend): b1, a Debian tgtd, and b2, a solo
# vmengine. Both are added with `vmctl backend add`; a volume mirrored on them
# (`--mirror 2`) is owned by n1; `vmio verify --reconnect` writes continuously
# from the host namespace to n1's service address, and
#   1. n1 is killed (kill -9, engine and Corosync): its partner takes the
#      volume and the address over; I/O resumes at the same address; the
#      longest I/O pause is printed; the new owner resyncs only the regions
#      of the dead owner's replicated write intent (fewer than the volume's),
#      not a whole leg; `vmio verify --check` finds 0 lost or torn, and both
#      legs compare equal block for block;
#   2. the back end tgtd is killed under load: its leg is recorded failed and
#      writes go on degraded, and `vmctl backend list` on the owner shows b1
#      FAILED for the owner; restarted: the leg is resynced and recorded ok;
#      both legs (the two back-end files) compare equal block for block, and
#      every engine's `backend list` shows b1 up on all three engines;
#   3. the owner is partitioned instead: it fences itself, the majority takes
#      over after having both back ends refuse it (its persistent reservation
#      key is gone from them, PR IN READ KEYS); no write is accepted by two
#      engines at once, so the verifier finds no divergence, and the legs
#      compare equal once resynced; healed, it registers its key again.
# Case 3 depends on case 2 having been noticed by the engines that do not own
# the volume: their sessions to tgtd died while idle, and only the session
# state callback (iscsi-init) fails such a back end so it is logged in again;
# without it the takeover would resync from a dead leg.
# Prints one line per check and "failover-mirror: N passed, N failed".
set -u

BUILD=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB="$ROOT/deploy/lab"
export LAB_DIR LAB_SERVICE=1 LAB_FENCE_MS=${LAB_FENCE_MS:-500}
LAB_DIR=$(mktemp -d /tmp/vmfm.XXXXXX)
export LAB_BUILD=$BUILD
RUN_LIMIT=${RUN_LIMIT:-600}
IQN=iqn.2026-11.org.vmengine
VOL=fm
URL="iscsi://10.77.0.101/$IQN:$VOL/0"
VSIZE=$((64 << 20)) # the volume: 8 extents of 8 MiB per leg
IO_SIZE=16M         # what vmio writes and checks
IO_LIMIT=300
PASS=0
FAIL=0
WATCHDOG=""
VMIO_PID=""

. "$(dirname "$0")/lib.sh"
trap lab_cleanup EXIT
trap 'echo "failover-mirror: interrupted or over the time limit"; exit 1' INT TERM

if [ "$(id -u)" -ne 0 ] || ! command -v corosync >/dev/null || ! command -v tgtd >/dev/null ||
	[ ! -x "$BUILD/vmio" ]; then
	echo "failover-mirror: skipped (needs root, corosync, tgtd and vmio)"
	echo "failover-mirror: 0 passed, 0 failed"
	exit 0
fi
lab_watchdog
owned_by() { # owned_by ASKED NODE
	[ "$(owner_of "$1")" = "$2" ]
}
not_owned_by() {
	local o
	o=$(owner_of "$1")
	[ -n "$o" ] && [ "$o" != "$2" ]
}
legs_ok() { # legs_ok NODE: both legs ok in the map
	[ "$(vmctl "$1" volume show $VOL 2>/dev/null | grep -c 'leg [01]: ok')" -eq 2 ]
}
leg_failed() { # leg_failed NODE LEG
	vmctl "$1" volume show $VOL 2>/dev/null | grep -q "leg $2: failed"
}
backends_up() { # backends_up NODE: this engine is logged in to both back ends
	[ "$(vmctl "$1" backend list 2>/dev/null | grep -c ' up ')" -eq 2 ]
}
# has_key PORTAL TARGET LUN KEY: the back end's PR IN READ KEYS lists KEY
# (asked from the host namespace; the asking session registers nothing).
has_key() {
	timeout 20 "$LAB" exec host "$BUILD/tests/tools/pr_aptpl" "iscsi://$1/$2/$3" \
		"$IQN.test:keys" keys 2>/dev/null | grep -qx "$4"
}
not_has_key() { ! has_key "$@"; }

# legs_equal: the volume's bytes on both back ends (first allocations on
# fresh LUNs, so every extent is at the same offset on each) are the same.
legs_equal() {
	cmp -n "$VSIZE" "$FILE1" "$FILE2"
}

# ---- 0. lab, back ends, mirrored volume ----
if ! timeout 60 "$LAB" up 3 >/dev/null; then
	ko "lab up"
	echo "failover-mirror: $PASS passed, $FAIL failed"
	exit 1
fi
ok "lab up (3 engines, service addresses 10.77.0.101-103, fence_ms $LAB_FENCE_MS)"
B1=$(timeout 60 "$LAB" backend b1 tgtd 128M) && ok "back end b1 (tgtd) at ${B1%% *}" ||
	ko "back end b1 (tgtd) starts"
B2=$(timeout 60 "$LAB" backend b2 vmengine 128M) && ok "back end b2 (solo vmengine) at ${B2%% *}" ||
	ko "back end b2 (solo vmengine) starts"
if [ -z "${B1:-}" ] || [ -z "${B2:-}" ]; then
	echo "failover-mirror: $PASS passed, $FAIL failed"
	exit 1
fi
set -- $B1
P1=${1:-} T1=${2:-} L1=${3:-} FILE1=${4:-/nonexistent}
set -- $B2
P2=${1:-} T2=${2:-} L2=${3:-} FILE2=${4:-/nonexistent}
for n in 1 2 3; do
	wait_for "n$n quorate and in sync with 3 members" 30 synced n$n 3
done
check "vmctl backend add b1 (tgtd)" vmctl n1 backend add "$P1" "$T1" --lun "$L1"
check "vmctl backend add b2 (vmengine)" vmctl n1 backend add "$P2" "$T2" --lun "$L2"
for n in 1 2 3; do
	wait_for "n$n is logged in to both back ends" 20 backends_up n$n
done
check "create $VOL --mirror 2 on n1" vmctl n1 volume create $VOL $VSIZE --mirror 2 --extent 8M --owner n1
if ! vmctl n1 volume show $VOL >/dev/null 2>&1; then
	echo "failover-mirror: $PASS passed, $FAIL failed"
	exit 1
fi
vmctl n1 volume show $VOL | sed 's/^/     /'
partner=$(vmctl n1 --json volume show $VOL | grep -o '"partner":[0-9]*' | cut -d: -f2)
check "$VOL has a partner (node $partner)" test -n "$partner" -a "$partner" != 0
wait_for "discovery at n2 lists $VOL at 10.77.0.101" 10 sh -c \
	"'$LAB' exec host iscsi-ls iscsi://10.77.0.2 | grep -q '$VOL Portal:10.77.0.101:3260'"

out=$(timeout 60 "$LAB" exec host vmio --json verify "$URL" --size $IO_SIZE --qd 4 --writes 10000 2>/dev/null)
secs=$(echo "$out" | grep -o '"seconds":[0-9.]*' | cut -d: -f2)
WRITES=$(awk -v s="${secs:-1}" 'BEGIN { n = int(10000 / s * 25); if (n < 10000) n = 10000; if (n > 5000000) n = 5000000; print n }')
echo "     calibration: 10000 writes in ${secs:-?} s; $WRITES writes per run"
check "legs equal after the first writes" legs_equal

# ---- 1. kill -9 the owner ----
resync_line_found() { [ -n "$(resync_line)" ]; }
J1=$LAB_DIR/j1
start_io "$J1" "$WRITES"
sleep 3
running "before the kill"
"$LAB" kill n1
killed=$(date +%s.%N)
wait_for "n$partner takes $VOL over" 20 owned_by n$partner "$partner"
wait_for "n$partner holds n1's service address 10.77.0.101" 10 holds n$partner 10.77.0.101
echo "     takeover $(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the kill (Corosync detection + 2 x fence_ms)"
end_io "$J1" "kill -9 of the owner"
KILL_PAUSE=$LAST_PAUSE
check "the longest I/O pause after kill -9 is under 5 s ($KILL_PAUSE ms)" \
	awk -v p="$KILL_PAUSE" 'BEGIN { exit !(p < 5000) }'
# The new owner copies only the regions of n1's replicated write intent
# (those vmio was writing), not a whole leg: "resync N of M regions".
resync_line() {
	grep -o "$VOL: resync [0-9]* of [0-9]* regions from the replicated map" \
		"$LAB_DIR/n$partner/engine.log" | tail -n 1
}
wait_for "the new owner resyncs from the replicated map" 10 resync_line_found
rl=$(resync_line)
rn=$(echo "$rl" | awk '{ print $3 }')
rm_=$(echo "$rl" | awk '{ print $5 }')
echo "     ${rl:-no replicated-map line in the log of n$partner}"
check "the new owner resyncs only the replicated regions (${rn:-?} of ${rm_:-?}, fewer than all)" \
	test -n "$rn" -a -n "$rm_" -a "${rn:-0}" -gt 0 -a "${rn:-0}" -lt "${rm_:-0}"
wait_for "both legs ok again after the takeover" 60 legs_ok n$partner
check_journal "$J1" "after kill -9"
check "legs equal block for block after the takeover" legs_equal
"$LAB" start n1
wait_for "n1 back in sync with 3 members" 40 synced n1 3
wait_for "n1 logged in to both back ends again" 20 backends_up n1

# ---- 2. the back end tgtd killed, then restarted ----
O=$partner
J2=$LAB_DIR/j2
start_io "$J2" "$WRITES"
sleep 3
running "before killing tgtd"
"$LAB" kill b1
if wait_for "a leg is recorded failed (degraded)" 30 sh -c \
	"'$LAB' exec n$O vmctl volume show $VOL | grep -q 'leg [01]: failed'"; then
	vmctl n$O volume show $VOL | grep 'leg' | sed 's/^/     /'
fi
# b1_row NODE: b1's line of `vmctl backend list` on NODE (STATE: NODE's
# own view; ENGINES: every member's, "n1:up n2:up n3:FAILED").
b1_row() {
	vmctl "$1" backend list 2>/dev/null | grep " $P1 "
}
b1_failed_on_owner() {
	b1_row n$O | grep -qE " failed +(n[0-9]:[A-Za-z?]+ )*n$O:FAILED( |\$)"
}
b1_up_everywhere() { # b1_up_everywhere NODE: NODE shows b1 up on all three engines
	b1_row "$1" | grep -qE " up +n1:up n2:up n3:up\$"
}
if wait_for "backend list on the owner n$O: b1 FAILED for n$O" 10 b1_failed_on_owner; then
	b1_row n$O | sed 's/^/     /'
else
	vmctl n$O backend list | sed 's/^/     | /'
fi
sleep 2
running "while degraded"
check "tgtd restarted (same disk)" timeout 60 "$LAB" start b1
wait_for "the leg is resynced and recorded ok" 90 legs_ok n$O
end_io "$J2" "tgtd killed and restarted under load"
check "the owner resynced after the restart" grep -q "$VOL: resync done" "$LAB_DIR/n$O/engine.log"
check_journal "$J2" "after the tgtd restart"
check "legs equal block for block after the resync" legs_equal
for n in 1 2 3; do
	wait_for "n$n logged in to both back ends again" 30 backends_up n$n
done
# Load reports (every 3 s) carry each engine's view to the others.
for n in 1 2 3; do
	if ! wait_for "backend list on n$n: b1 up on n1, n2 and n3" 20 b1_up_everywhere n$n; then
		vmctl n$n backend list | sed 's/^/     | /'
	fi
done

# ---- 3. partition the owner ----
X=$O
J3=$LAB_DIR/j3
start_io "$J3" "$WRITES"
sleep 3
running "before the partition"
"$LAB" partition n$X
others=$(for n in 1 2 3; do [ $n != "$X" ] && echo $n; done)
set -- $others
wait_for "n$X fences itself" 20 grep -q "fenced in" "$LAB_DIR/n$X/engine.log"
check "n$X dropped 10.77.0.101" not_holds n$X 10.77.0.101
wait_for "the majority (n$1, n$2) takes $VOL over" 20 not_owned_by n$1 "$X"
Y=$(owner_of n$1)
wait_for "n$Y holds 10.77.0.101" 10 holds n$Y 10.77.0.101
# The back ends refuse the partitioned engine before the new owner serves:
# its registrations are gone (PREEMPT AND ABORT), the new owner's remain.
KX=$(printf '0x564d4500000000%02x' "$X")
KY=$(printf '0x564d4500000000%02x' "$Y")
check "n$Y fenced n$X off both back ends before serving" \
	test "$(grep -c "key $KX fenced off" "$LAB_DIR/n$Y/engine.log")" -ge 2
check "b1 (tgtd) lists n$Y's key" has_key "$P1" "$T1" "$L1" "$KY"
check "b1 (tgtd) no longer lists n$X's key" not_has_key "$P1" "$T1" "$L1" "$KX"
check "b2 (vmengine) lists n$Y's key" has_key "$P2" "$T2" "$L2" "$KY"
check "b2 (vmengine) no longer lists n$X's key" not_has_key "$P2" "$T2" "$L2" "$KX"
end_io "$J3" "partition of the owner"
"$LAB" heal
wait_for "n$X back in sync with 3 members" 40 synced n$X 3
wait_for "n$X registered on b1 again (quorum back)" 20 has_key "$P1" "$T1" "$L1" "$KX"
wait_for "n$X registered on b2 again" 20 has_key "$P2" "$T2" "$L2" "$KX"
check "n$X serves no longer and holds no 10.77.0.101" not_holds n$X 10.77.0.101
wait_for "both legs ok again after the takeover" 60 legs_ok n$Y
check_journal "$J3" "after the partition (no divergence)"
check "legs equal block for block after the partition" legs_equal

echo "failover-mirror: kill -9 pause ${KILL_PAUSE} ms"
echo "failover-mirror: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
