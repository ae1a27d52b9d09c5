#!/bin/bash
# tests/interop/mirror.sh BUILD: the vol/ data path over two Debian tgtd back
# ends (issue 6): a two-leg RAID1 volume built by tests/tools/vol_mirror on
# iSCSI LUNs reached through iscsi-init;
#   - verified writes reach both legs (the LUN files compare equal),
#   - one tgtd killed (SIGKILL): the leg fails, writes go on degraded with
#     no error and no lost acknowledged write, the legs now differ,
#   - tgtd restarted: the back end logs in again, a paced resync copies only
#     the dirty regions while more writes run, the leg is in sync again,
#   - the two LUN files compare equal block for block, and everything
#     acknowledged reads back.
# Prints "mirror: N passed, N failed"; exit status non-zero on failure.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/../lib.sh"
t_init mirror

TOOL=$BUILD/tests/tools/vol_mirror
SHM=/dev/shm/vmengine-mirror.$$
mkdir -p "$SHM"
T_EXTRA_DIRS="$T_EXTRA_DIRS $SHM"
SIZE=$((64 << 20))
EXTENT=$((8 << 20))
REGION=$((1 << 20))
RESYNC_RATE=$((8 << 20)) # bytes/s: 16 MiB take 2 s, so writes overlap the resync

if [ ! -x "$TOOL" ]; then
	echo "mirror: $TOOL is missing (run make)" >&2
	exit 1
fi

t_port PA
t_port PB
IQN_A=$IQN_PREFIX:mirror-a
IQN_B=$IQN_PREFIX:mirror-b
truncate -s 128M "$SHM/a.img" "$SHM/b.img"

tgt_up() { # NAME PORT IQN FILE
	tgt_start "$1" "$2" && tgt_target "$1" 1 "$3" "$4"
}
if ! tgt_up ta "$PA" "$IQN_A" "$SHM/a.img" || ! tgt_up tb "$PB" "$IQN_B" "$SHM/b.img"; then
	t_fail "two tgtd back ends start"
	t_summary
	exit 1
fi
t_pass "two tgtd back ends start"

# The tool reads commands on its stdin and answers each with one line.
mkfifo "$T_DIR/cmd"
"$TOOL" "iscsi://127.0.0.1:$PA/$IQN_A/1" "iscsi://127.0.0.1:$PB/$IQN_B/1" \
	"$SIZE" "$EXTENT" "$REGION" <"$T_DIR/cmd" >"$T_DIR/out" 2>"$T_DIR/err" &
MPID=$!
T_PIDS="$T_PIDS $MPID"
exec 3>"$T_DIR/cmd"
NREAD=0

# reply: wait (at most $1 s) for the next "ok"/"err" line of the tool; it
# goes in $REPLY_LINE. Event lines are kept in $T_DIR/out for later checks.
reply() {
	local limit=$1 i=0 line
	while [ "$i" -lt $((limit * 10)) ]; do
		while [ "$(wc -l <"$T_DIR/out")" -gt "$NREAD" ]; do
			NREAD=$((NREAD + 1))
			line=$(sed -n "${NREAD}p" "$T_DIR/out")
			case $line in
			ok* | err*)
				REPLY_LINE=$line
				return 0
				;;
			esac
		done
		t_alive "$MPID" || break
		sleep 0.1
		i=$((i + 1))
	done
	REPLY_LINE="(no answer)"
	return 1
}

# step DESC REGEX CMD [TIMEOUT]: send CMD, expect an "ok" answer matching REGEX.
step() {
	local desc=$1 re=$2 cmd=$3 limit=${4:-60}
	[ -n "$cmd" ] && echo "$cmd" >&3
	if reply "$limit" && [[ $REPLY_LINE == ok* ]] && printf '%s\n' "$REPLY_LINE" | grep -Eq -- "$re"; then
		t_pass "$desc ($REPLY_LINE)"
	else
		t_fail "$desc: $REPLY_LINE"
		tail -n 15 "$T_DIR/err" | sed 's/^/    | /'
	fi
}

legs_equal() {
	cmp -s -n "$SIZE" "$SHM/a.img" "$SHM/b.img"
}

step "mirrored volume opened over both LUNs" "two legs" ""
step "extent map: leg 0 on A, leg 1 on B" "map" "map" 5
if grep -q "^leg 0 backend 0 offset 0$" "$T_DIR/out" &&
	grep -q "^leg 1 backend 1 offset $((SIZE - EXTENT))$" "$T_DIR/out"; then
	t_pass "each leg has its $((SIZE / EXTENT)) extents on its own back end"
else
	t_fail "extent placement"
fi
step "4000 verified writes on both legs" "writes 4000 failed 0" "write 4000 1"
step "read back: no mismatch" " 0 mismatches" "verify"
if legs_equal; then t_pass "legs equal block for block"; else t_fail "legs equal after mirrored writes"; fi

# ---- back end B dies ----
tpid=$(cat "$T_DIR/tb/pid")
kill -KILL "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
t_forget_pid "$tpid"
t0=$(date +%s%N)
# Degraded writes stay in the first 16 MiB: 16 dirty regions of 64.
step "writes go on with back end B killed (degraded)" "writes 3000 failed 0" "write 3000 2 $((16 << 20))" 120
t1=$(date +%s%N)
t_log "degraded write phase took $(((t1 - t0) / 1000000)) ms (includes the failure detection)"
if grep -q "^event leg 1 failed" "$T_DIR/out"; then t_pass "leg 1 reported FAILED"; else t_fail "no leg failure event"; fi
step "status: leg 1 failed, exactly the 16 written regions dirty" "leg0 ok leg1 failed dirty 16 of 64" "status" 5
step "degraded read back: no mismatch" " 0 mismatches" "verify"
if legs_equal; then t_fail "legs differ while degraded (the check can fail)"; else t_pass "legs differ while degraded (the check can fail)"; fi

# ---- back end B returns ----
rm -f "/var/run/tgtd/socket.$PB" "/var/run/tgtd/socket.$PB.lock"
if tgt_up tb "$PB" "$IQN_B" "$SHM/b.img"; then t_pass "tgtd B restarted"; else t_fail "tgtd B restarted"; fi
ok=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
	echo "reopen 1" >&3
	reply 30 || break
	if [[ $REPLY_LINE == ok* ]]; then
		ok=1
		break
	fi
	sleep 1
done
if [ "$ok" = 1 ]; then t_pass "back end B logged in again"; else t_fail "back end B reopen: $REPLY_LINE"; fi
step "resync of leg 1 started (paced)" "started" "resync 1 $RESYNC_RATE" 5
step "2000 writes during the resync" "writes 2000 failed 0" "write 2000 3" 120
step "status during/after the writes" "leg1 (resync|ok)" "status" 5
step "resync finished, only the 16 dirty regions copied" "in sync, 16 regions copied" "wait" 120
step "status: both legs ok, no dirty region" "leg0 ok leg1 ok dirty 0 " "status" 5
step "read back after resync: no mismatch" " 0 mismatches" "verify"
grep -E "resync leg 1: in sync" "$T_DIR/out" | sed 's/^/    /'

echo "quit" >&3
exec 3>&-
i=0
while t_alive "$MPID" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
t_kill_wait "$MPID" >/dev/null 2>&1 || true
if legs_equal; then t_pass "legs equal block for block after the resync"; else
	t_fail "legs differ after the resync"
	cmp -n "$SIZE" "$SHM/a.img" "$SHM/b.img" | head -n 3 | sed 's/^/    | /'
fi
t_summary
