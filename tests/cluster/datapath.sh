#!/bin/bash
# tests/cluster/datapath.sh BUILD: the virtualized data path in the engine
# (issue 6): a vmengine over two Debian tgtd back ends added with
# `vmctl backend add`, a mirrored volume carved from them (`vmctl volume
# create --mirror 2`), verified writes from a host through the engine;
# one back end killed: the leg is recorded failed in the map, writes go on;
# restarted: the engine logs in again, resyncs and records the leg ok; both
# back-end LUNs then compare equal block for block and `vmio verify --check`
# finds every acknowledged write. Then `vmctl volume resize` grows the
# mirrored volume (and a local-file one) online: a host session held across
# the resize (resize_probe.c, on libiscsi) stays up, its next command gets
# the CAPACITY DATA HAS CHANGED unit attention and READ CAPACITY 16 shows the
# new size; writes across the grown volume verify and the legs stay equal.
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

# vf: a local-file volume from the config (made before any back end exists).
if ! vm_start "$BUILD" eng "$PE" '{ name = "vf"; size = "16M"; }'; then
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

# ---- online resize: the host's session stays up across it ----
PROBE=$BUILD/tests/cluster/resize_probe
mkdir -p "$(dirname "$PROBE")"
if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
	-o "$PROBE" "$(dirname "$0")/resize_probe.c" -liscsi; then
	t_fail "resize_probe builds (needs libiscsi-dev)"
	t_summary
	exit 1
fi

# resize_online VOLUME BYTES: a session opened before `vmctl volume resize`
# is still the same session after it, gets 2A/09 once, and reads BYTES.
resize_online() {
	local vol=$1 bytes=$2 out=$T_DIR/probe-$1.out go=$T_DIR/go-$1 pid rc=0 i
	"$PROBE" "$(vm_url "$PE" "$vol")" "$go" "$bytes" >"$out" 2>&1 &
	pid=$!
	T_PIDS="$T_PIDS $pid"
	for i in $(seq 1 100); do
		grep -q '^ready' "$out" && break
		sleep 0.1
	done
	t_check "$vol: vmctl volume resize $bytes" "$VMCTL" volume resize "$vol" "$bytes"
	# The host's next command goes once the engine has grown the volume.
	for i in $(seq 1 100); do
		grep -q "$vol: grew from" "$(vm_log eng)" && break
		sleep 0.1
	done
	touch "$go"
	wait "$pid" || rc=$?
	t_forget_pid "$pid"
	if [ "$rc" -eq 0 ] && grep -q '^ua 6/2a09' "$out"; then
		t_pass "$vol: session kept, unit attention 2A/09, new capacity ($(grep '^after' "$out"))"
	else
		t_fail "$vol: session kept, unit attention 2A/09, new capacity (exit $rc)"
		sed 's/^/    | /' "$out"
		grep -E "$vol|grow" "$(vm_log eng)" | tail -n 10 | sed 's/^/    | /'
	fi
}
SIZE2=$((48 << 20))
# Host writes in flight on another session while the volume grows.
"$VMIO" verify "$URL" --writes 8000 --qd 16 --journal "$T_DIR/journal-load" \
	>"$T_DIR/load.out" 2>&1 &
LOAD=$!
T_PIDS="$T_PIDS $LOAD"
resize_online vd "$SIZE2"
rc=0
wait "$LOAD" || rc=$?
t_forget_pid "$LOAD"
if [ "$rc" -eq 0 ]; then
	t_pass "writes in flight during the grow all succeed"
else
	t_fail "writes in flight during the grow all succeed (exit $rc)"
	tail -n 5 "$T_DIR/load.out" | sed 's/^/    | /'
fi
# A journal covers the units of the size it was made for: a new one.
J2=$T_DIR/journal2
t_check "verified writes across the grown volume" timeout 60 "$VMIO" verify "$URL" \
	--writes 3000 --qd 8 --journal "$J2"
t_check "grown legs equal block for block" cmp -n "$SIZE2" "$T_DIR/a.img" "$T_DIR/b.img"
t_check "vmio verify --check after the resize" timeout 60 "$VMIO" verify --check "$J2" "$URL"
resize_online vf $((24 << 20))
t_check_output "local-file volume's file grew" "^$((24 << 20))\$" stat -c %s "$T_DIR/eng/pool/vf.vol"
t_summary
