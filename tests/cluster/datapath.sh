#!/bin/bash
# tests/cluster/datapath.sh BUILD: the virtualized data path in the engine
# (issue 6): a vmengine over two Debian tgtd back ends added with
# `vmctl backend add`, a mirrored volume carved from them (`vmctl volume
# create --mirror 2`), verified writes from a host through the engine;
# one back end killed: the leg is recorded failed in the map, writes go on;
# restarted: the engine logs in again, resyncs and records the leg ok; both
# back-end LUNs then compare equal block for block and `vmio verify --check`
# finds every acknowledged write.
# Loopback only (127.0.0.1), one engine: the lab variant (engines and back
# ends in namespaces) is not written yet.
# Prints "datapath: N passed, N failed"; exit status non-zero on failure.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/../lib.sh"
t_init datapath

VMCTL=$BUILD/vmctl
VMIO=$BUILD/vmio
SIZE=$((32 << 20))
EXTENT=$((8 << 20))

t_port PA
t_port PB
t_port PE
IQN_A=$IQN_PREFIX:dp-a
IQN_B=$IQN_PREFIX:dp-b
truncate -s 64M "$T_DIR/a.img" "$T_DIR/b.img"

tgt_up() { # NAME PORT IQN FILE
	tgt_start "$1" "$2" && tgt_target "$1" 1 "$3" "$4"
}
if ! tgt_up ta "$PA" "$IQN_A" "$T_DIR/a.img" || ! tgt_up tb "$PB" "$IQN_B" "$T_DIR/b.img"; then
	t_fail "two tgtd back ends start"
	t_summary
	exit 1
fi
t_pass "two tgtd back ends start"

if ! vm_start "$BUILD" eng "$PE" ""; then
	t_fail "engine starts"
	t_summary
	exit 1
fi
export VMCTL_SOCKET=vmengine-test-eng-$PE
ctl() { timeout 30 "$VMCTL" "$@"; }

t_check "backend add A" "$VMCTL" backend add "127.0.0.1:$PA" "$IQN_A" --lun 1
t_check "backend add B" "$VMCTL" backend add "127.0.0.1:$PB" "$IQN_B" --lun 1
t_check_output "backend list shows both up" "up.*up" sh -c \
	"sleep 1; $VMCTL backend list | grep -c ' up ' | grep -q 2 && echo up up"
t_check "volume create --mirror 2" "$VMCTL" volume create vd "$SIZE" --mirror 2 --extent 8M
URL=$(vm_url "$PE" vd)
ok=0
for i in $(seq 1 50); do
	iscsi-ls "iscsi://127.0.0.1:$PE" 2>/dev/null | grep -q ":vd " && ok=1 && break
	sleep 0.2
done
[ $ok = 1 ] && t_pass "mirrored volume served" || t_fail "mirrored volume served"

J=$T_DIR/journal
t_check "verified writes through the engine" timeout 60 "$VMIO" verify "$URL" --writes 2000 \
	--qd 8 --journal "$J"

# Kill back end B: its leg fails, recorded in the map; writes go on.
PIDB=$(cat "$T_DIR/tb/pid")
kill -9 "$PIDB"
t_forget_pid "$PIDB" 2>/dev/null || true
t_check "writes go on with a back end dead" timeout 90 "$VMIO" verify "$URL" --writes 2000 \
	--qd 8 --journal "$J"
t_check_output "leg recorded failed in the map" "failed" sh -c \
	"for i in \$(seq 1 30); do $VMCTL volume show vd | grep -q 'leg 1: failed' && { echo failed; exit 0; }; sleep 0.2; done"

# Restart B: the engine logs in again, resyncs, records the leg ok.
if tgt_up tb "$PB" "$IQN_B" "$T_DIR/b.img"; then
	t_pass "back end B restarted"
else
	t_fail "back end B restarted"
fi
t_check_output "resync done, both legs ok" "ok" sh -c \
	"for i in \$(seq 1 300); do $VMCTL volume show vd | grep -q 'leg 1: ok' && { echo ok; exit 0; }; sleep 0.2; done; $VMCTL volume show vd >&2"
# Both legs hold the same bytes (extents at the same offsets on each LUN).
"$VMCTL" volume show vd >"$T_DIR/show.txt"
t_check "legs equal block for block" cmp -n "$SIZE" "$T_DIR/a.img" "$T_DIR/b.img"
t_check "vmio verify --check: nothing lost" timeout 60 "$VMIO" verify --check "$J" "$URL"
t_summary
