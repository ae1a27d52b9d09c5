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
# `vmctl backend list` shows each back end's state on this engine (STATE and
# ENGINES columns, --json "engines"); a resize or create that the back ends
# have no room for says so ("no space on the back ends ...", exit 1) and
# changes nothing; `vmctl volume show --watch` on a pipe during a resync
# prints one line a second with a growing percentage and exits 0 at its end.
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
# Room for vd (32M, then 48M) and the 128M volume of the --watch check.
truncate -s 256M "$T_DIR/a.img" "$T_DIR/b.img"

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
t_check_output "backend list: each back end up on this engine (ENGINES eng:up)" "^2\$" sh -c \
	"$VMCTL backend list | grep -cE ' up +eng:up\$'"
t_check_output "backend list --json: an object per engine" \
	'"engines":\[\{"node":1,"name":"eng","state":"up","size":268435456,"age_s":0,"local":true\}\]' \
	"$VMCTL" --json backend list
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

# ---- no room on the back ends: the message says so, nothing changes ----
# RC CMD...: one line "exit=N OUTPUT" (CMD's exit status, its stdout and stderr).
RC=$T_DIR/rc.sh
printf '#!/bin/sh\nout=$("$@" 2>&1)\necho "exit=$? $out"\n' >"$RC"
chmod +x "$RC"
t_check_output "resize beyond the back ends: 'no space on the back ends', exit 1" \
	"^exit=1 vmctl: no space on the back ends for 976M more \\(growing vd to 1G\\): back end [0-9]+ \\(leg 0\\) has 208M free\$" \
	"$RC" "$VMCTL" volume resize vd 1G
t_check_output "vd keeps its size after the refused resize" '"size":50331648,' "$VMCTL" --json volume show vd
t_check_output "create beyond the back ends: 'no space on the back ends', exit 1" \
	"^exit=1 vmctl: no space on the back ends for a 1G volume with 2 leg\\(s\\) on distinct back ends \\(free: back end [0-9]+ 208M, back end [0-9]+ 208M\\)\$" \
	"$RC" "$VMCTL" volume create big 1G --mirror 2
t_check_fails "no volume big after the refused create" "$VMCTL" volume show big

# ---- volume show --watch on a pipe during a resync ----
# vw: 128 regions of 1M; writes while back end B is dead make most of them
# dirty, so the resync after B's restart copies ~128M at 32M/s: about 4 s.
t_check "volume create vw 128M --mirror 2" "$VMCTL" volume create vw 128M --mirror 2
URLW=$(vm_url "$PE" vw)
for i in $(seq 1 50); do
	iscsi-ls "iscsi://127.0.0.1:$PE" 2>/dev/null | grep -q ":vw " && break
	sleep 0.2
done
PIDB=$(cat "$T_DIR/tb/pid")
kill -9 "$PIDB"
t_forget_pid "$PIDB" 2>/dev/null || true
t_check "writes to vw with back end B dead" timeout 90 "$VMIO" verify "$URLW" --writes 3000 \
	--qd 8 --journal "$T_DIR/journal-w"
t_check_output "vw: leg 1 recorded failed" "failed" sh -c \
	"for i in \$(seq 1 30); do $VMCTL volume show vw | grep -q 'leg 1: failed' && { echo failed; exit 0; }; sleep 0.2; done"
t_check_output "backend list: B FAILED on this engine" "FAILED" sh -c \
	"$VMCTL backend list | grep ' 127.0.0.1:$PB ' | grep -E ' failed +eng:FAILED\$'"
if tgt_up tb "$PB" "$IQN_B" "$T_DIR/b.img"; then
	t_pass "back end B restarted"
else
	t_fail "back end B restarted"
fi
t_check_output "vw: the resync starts" "resync" sh -c \
	"for i in \$(seq 1 100); do $VMCTL volume show vw | grep -q '^resync \[' && { echo resync; exit 0; }; sleep 0.1; done"
W=$T_DIR/watch.out
rc=0
timeout -k 5 120 "$VMCTL" volume show vw --watch >"$W" 2>&1 || rc=$?
sed 's/^/     | /' "$W"
# Percentages of the progress lines, in order; then the last line.
pcts=$(grep -oE '\] [0-9]+% ' "$W" | grep -oE '[0-9]+')
n=$(echo "$pcts" | grep -c .)
if [ "$rc" -eq 0 ] && [ "$n" -ge 2 ] &&
	echo "$pcts" | awk 'NR > 1 && $1 < p { bad = 1 } { p = $1 } END { exit bad }' &&
	[ "$(echo "$pcts" | tail -n 1)" -gt "$(echo "$pcts" | head -n 1)" ] &&
	tail -n 1 "$W" | grep -q '^vw: no resync running; leg 0 ok, leg 1 ok$'; then
	t_pass "volume show --watch (not a terminal): $n progress lines, $(echo $pcts | tr ' ' '>')%, exit 0 at the end"
else
	t_fail "volume show --watch (not a terminal): exit $rc, $n progress lines ($(echo $pcts))"
fi
t_check "--watch without a resync: one line, exit 0" sh -c \
	"[ \"\$('$VMCTL' volume show vw --watch | wc -l)\" -eq 1 ]"
t_check_output "--watch with another command: usage, exit 2" "^exit=2 vmctl: --watch goes with volume show" \
	"$RC" "$VMCTL" volume list --watch
t_check_output "backend list: B up again on this engine" "^2\$" sh -c \
	"$VMCTL backend list | grep -cE ' up +eng:up\$'"
t_check "legs of vd and vw equal block for block" cmp -n $((176 << 20)) "$T_DIR/a.img" "$T_DIR/b.img"
t_check "vmio verify --check vw: nothing lost" timeout 60 "$VMIO" verify --check "$T_DIR/journal-w" "$URLW"
t_summary
