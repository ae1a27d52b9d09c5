# tests/lib.sh: shared helpers of the system tests (sourced by bash scripts).
#
# - a per-test temp dir and one cleanup trap that stops every process the
#   test started (by PID, never by name) and removes the dir,
# - free loopback ports picked per run, waiting for a port to accept,
# - start/stop a solo vmengine from a generated config,
# - start/stop Debian's tgtd with targets and file-backed LUNs,
# - pass/fail counters and the final line "NAME: N passed, N failed" that
#   CI parses.
#
# Usage:
#   . "$(dirname "$0")/../lib.sh"
#   t_init interop              # temp dir in $T_DIR, trap installed
#   t_port port                  # a free port into $port, never twice per run
#   vm_start "$BUILD" vm1 "$port" '{ name = "a"; size = "64M"; }'
#   t_check "inquiry answers" iscsi-inq "$url"
#   t_summary                    # prints the line; returns 1 when a check failed
#
# Every command that talks to a target runs under `timeout` so that a hung
# target fails the test instead of hanging CI.

T_NAME=${T_NAME:-test}
T_PASS=0
T_FAIL=0
T_DIR=""
T_PIDS=""  # every PID started through this file, for the cleanup trap
T_PORTS="" # ports handed out by t_port in this run
T_TGTS=""  # tgtd instances (names) still running
T_EXTRA_DIRS="" # more dirs the cleanup removes (e.g. on /dev/shm), always
T_KEEP=${T_KEEP:-0}
# Bounded waits (seconds).
T_READY_TIMEOUT=${T_READY_TIMEOUT:-10}
T_STOP_TIMEOUT=${T_STOP_TIMEOUT:-10}
T_CMD_TIMEOUT=${T_CMD_TIMEOUT:-30}
IQN_PREFIX=${IQN_PREFIX:-iqn.2026-11.org.vmengine}

t_log() {
	printf '%s: %s\n' "$T_NAME" "$*"
}

# ---- counters ----
t_pass() {
	T_PASS=$((T_PASS + 1))
	printf 'ok   %s\n' "$*"
}

t_fail() {
	T_FAIL=$((T_FAIL + 1))
	printf 'FAIL %s\n' "$*"
}

# t_check DESC CMD...: one assertion that CMD exits 0 (under a timeout).
# CMD's output is shown only on failure.
t_check() {
	local desc=$1 out rc
	shift
	rc=0
	out=$(timeout -k 5 "$T_CMD_TIMEOUT" "$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		t_pass "$desc"
	else
		t_fail "$desc (exit $rc: $*)"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
	fi
	return 0
}

# t_check_fails DESC CMD...: one assertion that CMD exits non-zero (not by timeout).
t_check_fails() {
	local desc=$1 out rc
	shift
	rc=0
	out=$(timeout -k 5 "$T_CMD_TIMEOUT" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ]; then
		t_pass "$desc"
	else
		t_fail "$desc (exit $rc, expected a refusal: $*)"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
	fi
	return 0
}

# t_check_output DESC REGEX CMD...: CMD exits 0 and its output matches the
# extended REGEX (grep -E).
t_check_output() {
	local desc=$1 re=$2 out rc
	shift 2
	rc=0
	out=$(timeout -k 5 "$T_CMD_TIMEOUT" "$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -Eq -- "$re"; then
		t_pass "$desc"
	else
		t_fail "$desc (exit $rc, wanted /$re/: $*)"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
	fi
	return 0
}

# t_check_fails_output DESC REGEX CMD...: CMD fails (not by timeout) and
# its output matches REGEX.
t_check_fails_output() {
	local desc=$1 re=$2 out rc
	shift 2
	rc=0
	out=$(timeout -k 5 "$T_CMD_TIMEOUT" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] &&
		printf '%s\n' "$out" | grep -Eq -- "$re"; then
		t_pass "$desc"
	else
		t_fail "$desc (exit $rc, wanted a failure with /$re/: $*)"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
	fi
	return 0
}

# Print the final line; return 1 when something failed.
t_summary() {
	echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}

# ---- temp dir and cleanup ----
t_init() {
	T_NAME=$1
	T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmengine-$T_NAME.XXXXXX")
	trap t_cleanup EXIT
	trap 't_cleanup; trap - EXIT; exit 130' INT TERM
}

# Stop every process still recorded, then remove the temp dir (kept, without
# its big image files, when a check failed or T_KEEP=1, so logs can be read).
t_cleanup() {
	local pid name d
	for name in $T_TGTS; do
		tgt_stop "$name" >/dev/null 2>&1 || true
	done
	for pid in $T_PIDS; do
		t_kill_wait "$pid" >/dev/null 2>&1 || true
	done
	T_PIDS=""
	for d in $T_EXTRA_DIRS; do
		rm -rf "$d"
	done
	T_EXTRA_DIRS=""
	[ -n "$T_DIR" ] && [ -d "$T_DIR" ] || return 0
	if [ "$T_FAIL" -ne 0 ] || [ "$T_KEEP" = 1 ]; then
		find "$T_DIR" -type f -size +1M -delete 2>/dev/null || true
		echo "$T_NAME: logs kept in $T_DIR" >&2
	else
		rm -rf "$T_DIR"
	fi
	T_DIR=""
}

# t_alive PID: the process runs (a zombie child does not count).
t_alive() {
	kill -0 "$1" 2>/dev/null || return 1
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	Z*) return 1 ;;
	esac
	return 0
}

t_forget_pid() {
	local p out=""
	for p in $T_PIDS; do
		[ "$p" = "$1" ] || out="$out $p"
	done
	T_PIDS=$out
}

# t_kill_wait PID: SIGTERM, wait up to T_STOP_TIMEOUT, then SIGKILL.
# Returns the exit status of the process (137 when it had to be killed).
# The process must be a child of this shell.
t_kill_wait() {
	local pid=$1 i=0 rc=0
	t_forget_pid "$pid"
	kill -0 "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null || rc=$?
		return "$rc"
	}
	kill -TERM "$pid" 2>/dev/null || true
	while t_alive "$pid"; do
		if [ "$i" -ge $((T_STOP_TIMEOUT * 10)) ]; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			return 137
		fi
		sleep 0.1
		i=$((i + 1))
	done
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# ---- ports ----
t_port_free() {
	! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# t_port VAR: set VAR to a free TCP port. The search starts at a point
# derived from the PID of the shell so that two runs at once start far apart,
# and never repeats a port this run already handed out (it may not be
# listening yet). Not a $(...) function: the list must survive the call.
t_port() {
	local base p n=0
	# 20000-31999: above the usual services and below 32768, the limit of
	# tgtd's -C, which takes the port number as its control socket index.
	base=$((20000 + ($$ * 37) % 12000))
	p=$base
	while [ "$n" -lt 2000 ]; do
		case " $T_PORTS " in
		*" $p "*) ;;
		*)
			if t_port_free "$p"; then
				T_PORTS="$T_PORTS $p"
				printf -v "$1" '%s' "$p"
				return 0
			fi
			;;
		esac
		p=$((p + 1))
		[ "$p" -ge 32000 ] && p=20000
		n=$((n + 1))
	done
	echo "t_port: no free port" >&2
	return 1
}

# t_port_accepts PORT: one connect attempt to 127.0.0.1:PORT.
t_port_accepts() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# t_wait_port PORT PID: poll until the port accepts, at most T_READY_TIMEOUT
# seconds; fails early when PID exits.
t_wait_port() {
	local port=$1 pid=$2 i=0
	while ! t_port_accepts "$port"; do
		if ! t_alive "$pid"; then
			echo "process $pid exited before port $port accepted" >&2
			return 1
		fi
		if [ "$i" -ge $((T_READY_TIMEOUT * 10)) ]; then
			echo "port $port did not accept within ${T_READY_TIMEOUT}s" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# ---- vmengine ----
# Per-engine files live in $T_DIR/NAME/: vmengine.conf, stderr.log, pid.
#
# vm_start BUILD NAME PORT VOLUMES: VOLUMES is the libconfig list body, e.g.
#   '{ name = "a"; size = "64M"; }, { name = "b"; size = "1G"; }'
# Extra lines for the iscsi group come from $VM_ISCSI_EXTRA, a pool dir other
# than $T_DIR/NAME/pool from $VM_POOL_DIR, a second portal (same engine, for
# multipath) from $VM_PORT2.
vm_start() {
	local build=$1 name=$2 port=$3 vols=$4 d pid
	d=$T_DIR/$name
	mkdir -p "$d/state"
	local pool=${VM_POOL_DIR:-$d/pool}
	mkdir -p "$pool"
	cat >"$d/vmengine.conf" <<EOF
# Generated by tests/lib.sh for $T_NAME.
node_name = "$name";
state_dir = "$d/state";
log = { debug = ${VM_DEBUG:-false}; syslog = false; };
reactors = ${VM_REACTORS:-0};
iscsi = {
  portals = ( "127.0.0.1:$port"${VM_PORT2:+, \"127.0.0.1:$VM_PORT2\"} );
  node_prefix = "$IQN_PREFIX";
  ${VM_ISCSI_EXTRA:-}
};
pool = { dir = "$pool"; };
volumes = ( $vols );
# The vmctl socket is an abstract unix socket, one name per network
# namespace: each test engine gets its own so that it never meets another.
cluster = { ctl_socket = "vmengine-test-$name-$port"; };
EOF
	if [ ! -x "$build/vmengined" ]; then
		echo "vm_start: $build/vmengined is missing (run make)" >&2
		return 1
	fi
	"$build/vmengined" -c "$d/vmengine.conf" >"$d/stderr.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/pid"
	T_PIDS="$T_PIDS $pid"
	if ! t_wait_port "$port" "$pid" || ! vm_wait_targets "$port" "$pid" "$vols"; then
		echo "--- $name log ($d/stderr.log):" >&2
		tail -n 40 "$d/stderr.log" >&2
		return 1
	fi
}

# vm_wait_targets PORT PID VOLUMES: the engine listens before it serves its
# volumes (they come from its map, filled asynchronously), so readiness is
# "SendTargets discovery lists every configured volume", polled for at most
# T_READY_TIMEOUT seconds.
vm_wait_targets() {
	local port=$1 pid=$2 vols=$3 names n i=0 list missing
	names=$(printf '%s\n' "$vols" | grep -o 'name *= *"[^"]*"' | sed 's/.*"\(.*\)"/\1/')
	while :; do
		list=$(timeout -s KILL 5 iscsi-ls "iscsi://127.0.0.1:$port" 2>/dev/null || true)
		missing=""
		for n in $names; do
			printf '%s\n' "$list" | grep -q "^Target:$IQN_PREFIX:$n " || missing="$missing $n"
		done
		[ -z "$missing" ] && return 0
		if ! t_alive "$pid"; then
			echo "engine $pid exited before serving:$missing" >&2
			return 1
		fi
		if [ "$i" -ge $((T_READY_TIMEOUT * 10)) ]; then
			echo "engine on port $port does not list:$missing (after ${T_READY_TIMEOUT}s)" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

vm_pid() {
	cat "$T_DIR/$1/pid"
}

# vm_alive NAME: the engine process still runs.
vm_alive() {
	local pid
	pid=$(vm_pid "$1") || return 1
	t_alive "$pid"
}

# vm_stop NAME: SIGTERM and wait; returns the engine's exit status.
vm_stop() {
	local pid rc=0
	pid=$(vm_pid "$1") || return 1
	t_kill_wait "$pid" || rc=$?
	return "$rc"
}

vm_log() {
	echo "$T_DIR/$1/stderr.log"
}

# vm_url PORT VOLUME: the libiscsi URL of a volume (LUN 0).
vm_url() {
	echo "iscsi://127.0.0.1:$1/$IQN_PREFIX:$2/0"
}

# ---- tgtd ----
# tgt_start NAME PORT: a foreground tgtd on 127.0.0.1:PORT. Its control
# socket index (-C) is the port number, which is free by construction, so two
# tests' tgtds never share a control socket. Files in $T_DIR/NAME/.
tgt_start() {
	local name=$1 port=$2 d pid i=0
	d=$T_DIR/$name
	mkdir -p "$d"
	if ! command -v tgtd >/dev/null; then
		echo "tgt_start: tgtd is not installed (apt-get install tgt)" >&2
		return 1
	fi
	echo "$port" >"$d/ctl"
	: >"$d/tids"
	tgtd -f -C "$port" --iscsi portal="127.0.0.1:$port" >"$d/stderr.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/pid"
	T_PIDS="$T_PIDS $pid"
	T_TGTS="$T_TGTS $name"
	if ! t_wait_port "$port" "$pid"; then
		tail -n 20 "$d/stderr.log" >&2
		return 1
	fi
	# The portal may accept before the control socket is ready.
	while ! tgtadm -C "$port" --op show --mode sys >/dev/null 2>&1; do
		if [ "$i" -ge $((T_READY_TIMEOUT * 10)) ]; then
			echo "tgtd control socket $port not ready" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

tgt_adm() {
	local name=$1
	shift
	timeout 10 tgtadm -C "$(cat "$T_DIR/$name/ctl")" --lld iscsi "$@"
}

# tgt_target NAME TID IQN FILE: target TID with LUN 1 backed by FILE (tgt's
# LUN 0 is its controller), open to every initiator.
tgt_target() {
	local name=$1 tid=$2 iqn=$3 file=$4
	echo "$tid" >>"$T_DIR/$name/tids"
	tgt_adm "$name" --op new --mode target --tid "$tid" -T "$iqn" &&
		tgt_adm "$name" --op new --mode logicalunit --tid "$tid" --lun 1 -b "$file" &&
		tgt_adm "$name" --op bind --mode target --tid "$tid" -I ALL
}

# tgt_stop NAME: tgtd 1.0.85 ignores SIGTERM; it exits on "delete system",
# which it accepts once its targets are gone. SIGTERM/SIGKILL after
# T_STOP_TIMEOUT remain the fallback. Returns 0 when tgtd exited by itself.
tgt_stop() {
	local name=$1 d pid ctl tid i=0 out=""
	d=$T_DIR/$name
	for i in $T_TGTS; do
		[ "$i" = "$name" ] || out="$out $i"
	done
	T_TGTS=$out
	pid=$(cat "$d/pid") || return 1
	ctl=$(cat "$d/ctl")
	if t_alive "$pid"; then
		for tid in $(cat "$d/tids"); do
			tgt_adm "$name" --op delete --mode target --tid "$tid" --force >/dev/null 2>&1 || true
		done
		timeout 10 tgtadm -C "$ctl" --op delete --mode system >/dev/null 2>&1 || true
		i=0
		while t_alive "$pid" && [ "$i" -lt $((T_STOP_TIMEOUT * 10)) ]; do
			sleep 0.1
			i=$((i + 1))
		done
	fi
	if t_alive "$pid"; then
		t_kill_wait "$pid" || true
		rm -f "/var/run/tgtd/socket.$ctl" "/var/run/tgtd/socket.$ctl.lock"
		return 1
	fi
	t_forget_pid "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "/var/run/tgtd/socket.$ctl" "/var/run/tgtd/socket.$ctl.lock"
	return 0
}

# ---- conformance (libiscsi's iscsi-test-cu) ----
# conf_parse LOG: one "Suite.Test RESULT" line per test found in an
# iscsi-test-cu log, RESULT being passed, failed or skipped. CUnit's basic
# mode prints "  Test: NAME ..." then the test's own lines, then "passed" or
# "FAILED" (on the same line when the test printed nothing). A test counts as
#   failed  when CUnit says FAILED, when the test printed "[FAILED]" (some
#           tests report a failed step without a CUnit assertion, e.g.
#           WriteSame10.UnmapVPD), or when no result follows (a crash or hang);
#   skipped when it printed SKIPPED anywhere, even if CUnit says passed;
#   passed  otherwise.
# A suite's teardown prints after its last test's result, on the same line
# ("passed    [FAILED] PRIN command ..."); that text counts for the last test,
# which is how the reference counts for tgt (157/11/62) were made.
conf_parse() {
	awk '
	function flush() {
		if (name == "") return
		if (res != "passed" || failmsg) st = "failed"
		else if (skipped) st = "skipped"
		else st = "passed"
		print name, st
		name = ""
	}
	/^Suite: / { flush(); suite = substr($0, 8); next }
	/^  Test: / {
		flush()
		line = substr($0, 9)
		i = index(line, " ...")
		name = suite "." (i ? substr(line, 1, i - 1) : line)
		gsub(/[ \t]/, "_", name)
		res = ""; skipped = 0; failmsg = 0
	}
	/^Run Summary:/ { flush(); done = 1 }
	done { next }
	name != "" {
		if ($0 ~ /SKIPPED/) skipped = 1
		if ($0 ~ /\[FAILED\]/) failmsg = 1
		if ($0 ~ /(^|\.)(passed|FAILED)([ \t]|$)/)
			res = ($0 ~ /(^|\.)passed([ \t]|$)/) ? "passed" : "FAILED"
	}
	END { flush() }
	' "$1"
}

# conf_all_tests: every test of the ALL family as "Suite.Test", one per line.
conf_all_tests() {
	iscsi-test-cu -l 2>/dev/null | sed -n 's/^ALL\.\([^.]*\.[^.]*\)$/\1/p'
}

# conf_expected FILE: the test names listed in FILE ("#" comments and blank
# lines ignored; an "ALL." prefix is accepted).
conf_expected() {
	sed -e 's/#.*//' -e 's/[[:space:]]//g' -e 's/^ALL\.//' "$1" | grep -v '^$' || true
}

# conf_counts RESULTS TOTAL: print "P passed / F failed / S skipped of TOTAL"
# (tests missing from RESULTS count as failed: "not run").
conf_counts() {
	local res=$1 total=$2 p f s n
	p=$(grep -c ' passed$' "$res" || true)
	f=$(grep -c ' failed$' "$res" || true)
	s=$(grep -c ' skipped$' "$res" || true)
	n=$((total - p - f - s))
	[ "$n" -lt 0 ] && n=0
	printf '%s passed / %s failed / %s skipped of %s' "$p" "$((f + n))" "$s" "$total"
	[ "$n" -gt 0 ] && printf ' (%s not run)' "$n"
	printf '\n'
}

# ---- misc ----
# t_show_tail FILE N: the last N lines of FILE, indented, ending in a newline.
t_show_tail() {
	[ -f "$1" ] || return 0
	tail -n "$2" "$1" | sed 's/^/    | /'
	[ -z "$(tail -c 1 "$1")" ] || echo
}

# Seconds since the epoch (for durations).
t_now() {
	date +%s
}
