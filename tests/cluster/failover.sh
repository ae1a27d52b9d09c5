#!/bin/bash
# tests/cluster/failover.sh BUILD: failover in the three-node lab (issue 6):
# a shared pool (LAB_SHARED: one directory for every engine, as a cluster
# filesystem would be) and per-node service addresses (LAB_SERVICE: node N's
# portal is 10.77.0.(100+N), held by the owner of its volumes). A volume owned
# by n1; `vmio verify --reconnect` writes continuously from the host namespace
# to n1's service address, and
#   1. n1's engine and Corosync are killed (kill -9): the partner takes the
#      volume and the address over; I/O resumes at the same address; the
#      longest I/O pause is printed; `vmio verify --check` finds 0 lost or torn;
#   2. n1 comes back as a partner (it does not take its address back);
#   3. the owner is partitioned instead: it fences itself (sessions closed,
#      address dropped, within fence_ms), the others take over; the verifier
#      finds no divergence;
#   4. `vmctl volume move` back to n1 under load: no failed I/O, pause printed.
# Prints one line per check and "failover: N passed, N failed".
set -u

BUILD=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB="$ROOT/deploy/lab"
export LAB_DIR LAB_SHARED=1 LAB_SERVICE=1 LAB_FENCE_MS=${LAB_FENCE_MS:-500}
LAB_DIR=$(mktemp -d /tmp/vmfo.XXXXXX)
export LAB_BUILD=$BUILD
RUN_LIMIT=${RUN_LIMIT:-420}
IQN=iqn.2026-11.org.vmengine
VOL=fo
URL="iscsi://10.77.0.101/$IQN:$VOL/0"
IO_SIZE=16M # what vmio writes and checks
IO_LIMIT=200
PASS=0
FAIL=0
WATCHDOG=""
VMIO_PID=""

. "$(dirname "$0")/lib.sh"
trap lab_cleanup EXIT
trap 'echo "failover: interrupted or over the time limit"; exit 1' INT TERM

if [ "$(id -u)" -ne 0 ] || ! command -v corosync >/dev/null || [ ! -x "$BUILD/vmio" ]; then
	echo "failover: skipped (needs root, corosync and vmio)"
	echo "failover: 0 passed, 0 failed"
	exit 0
fi
lab_watchdog

# ---- 0. lab with a shared pool and service addresses ----
if ! timeout 60 "$LAB" up 3 >/dev/null; then
	ko "lab up"
	echo "failover: $PASS passed, $FAIL failed"
	exit 1
fi
ok "lab up (3 engines, shared pool, service addresses 10.77.0.101-103, fence_ms $LAB_FENCE_MS)"
for n in 1 2 3; do
	wait_for "n$n quorate and in sync with 3 members" 30 synced n$n 3
done
for n in 1 2 3; do
	wait_for "n$n holds its service address 10.77.0.10$n" 10 holds n$n 10.77.0.10$n
done
check "create $VOL on n1" vmctl n1 volume create $VOL 64M --owner n1
partner=$(vmctl n1 --json volume show $VOL | grep -o '"partner":[0-9]*' | cut -d: -f2)
check "$VOL has a partner (node $partner)" test -n "$partner" -a "$partner" != 0
check "one pool file, shared by all engines" test -f "$LAB_DIR/shared/$VOL.vol"
wait_for "discovery at n2 lists $VOL at 10.77.0.101" 10 sh -c \
	"'$LAB' exec host iscsi-ls iscsi://10.77.0.2 | grep -q '$VOL Portal:10.77.0.101:3260'"

# Size the runs: about 25 s of writes at the measured rate (each run must
# outlast its event; running() checks that it did).
out=$(timeout 60 "$LAB" exec host vmio --json verify "$URL" --size $IO_SIZE --qd 4 --writes 20000 2>/dev/null)
secs=$(echo "$out" | grep -o '"seconds":[0-9.]*' | cut -d: -f2)
WRITES=$(awk -v s="${secs:-1}" 'BEGIN { n = int(20000 / s * 25); if (n < 20000) n = 20000; if (n > 5000000) n = 5000000; print n }')
echo "     calibration: 20000 writes in ${secs:-?} s; $WRITES writes per run"

# ---- 1. kill -9 the owner ----
J1=$LAB_DIR/j1
start_io "$J1" "$WRITES"
sleep 3
running "before the kill"
"$LAB" kill n1
killed=$(date +%s.%N)
wait_for "n$partner takes $VOL over" 20 sh -c "[ \"\$('$LAB' exec n$partner vmctl --json volume show $VOL | grep -o '\"owner\":[0-9]*')\" = '\"owner\":$partner' ]"
wait_for "n$partner holds n1's service address 10.77.0.101" 10 holds n$partner 10.77.0.101
echo "     takeover $(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the kill (Corosync detection + 2 x fence_ms)"
end_io "$J1" "kill -9 of the owner"
KILL_PAUSE=$LAST_PAUSE
check "the longest I/O pause after kill -9 is under 5 s ($KILL_PAUSE ms)" \
	awk -v p="$KILL_PAUSE" 'BEGIN { exit !(p < 5000) }'
check_journal "$J1" "after kill -9"

# ---- 2. n1 returns as a partner ----
"$LAB" start n1
wait_for "n1 back in sync with 3 members" 40 synced n1 3
sleep 1
check "n1 did not take its address back" not_holds n1 10.77.0.101
check "n$partner still owns $VOL" sh -c "[ '$(owner_of n1)' = '$partner' ]"

# ---- 3. partition the owner ----
X=$partner
J2=$LAB_DIR/j2
start_io "$J2" "$WRITES"
sleep 3
running "before the partition"
"$LAB" partition n$X
others=$(for n in 1 2 3; do [ $n != "$X" ] && echo $n; done)
set -- $others
wait_for "n$X fences itself" 20 grep -q "fenced in" "$LAB_DIR/n$X/engine.log"
check "n$X dropped 10.77.0.101" not_holds n$X 10.77.0.101
fence_line=$(grep "fenced in" "$LAB_DIR/n$X/engine.log" | tail -1)
echo "     n$X: ${fence_line#*failover*: }"
wait_for "the majority (n$1, n$2) takes $VOL over" 20 sh -c \
	"o=\$('$LAB' exec n$1 vmctl --json volume show $VOL | grep -o '\"owner\":[0-9]*' | cut -d: -f2); [ -n \"\$o\" ] && [ \"\$o\" != $X ]"
Y=$(owner_of n$1)
wait_for "n$Y holds 10.77.0.101" 10 holds n$Y 10.77.0.101
end_io "$J2" "partition of the owner"
"$LAB" heal
wait_for "n$X back in sync with 3 members" 40 synced n$X 3
check "n$X serves no longer and holds no 10.77.0.101" not_holds n$X 10.77.0.101
check_journal "$J2" "after the partition (no divergence)"

# ---- 4. volume move under load ----
J3=$LAB_DIR/j3
start_io "$J3" "$WRITES"
sleep 3
running "before the move"
check "vmctl volume move $VOL n1 (from n$Y)" vmctl n$Y volume move $VOL n1
wait_for "n1 holds 10.77.0.101 again" 10 holds n1 10.77.0.101
end_io "$J3" "volume move under load"
check "n1 owns $VOL" sh -c "[ '$(owner_of n2)' = 1 ]"
check "n$Y asked the host to log out (Async Message)" grep -q "$VOL: moved to node 1: asked [1-9]" "$LAB_DIR/n$Y/engine.log"
check_journal "$J3" "after the move"

echo "failover: kill -9 pause ${KILL_PAUSE} ms, move pause ${LAST_PAUSE} ms"
echo "failover: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
