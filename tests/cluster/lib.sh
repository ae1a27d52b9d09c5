# tests/cluster/lib.sh: helpers shared by the lab tests (sourced, not run).
# The sourcing script sets LAB (deploy/lab), LAB_DIR, RUN_LIMIT (seconds),
# PASS=0, FAIL=0, WATCHDOG="" and VMIO_PID="", sets `trap lab_cleanup EXIT`
# and calls lab_watchdog. The volume helpers use VOL (the volume's name); the
# load helpers use URL (where vmio connects), IO_SIZE (how much it writes and
# checks) and IO_LIMIT (seconds one vmio run may take).

# The EXIT trap: stops the watchdog and the load, prints the tails of the
# engines' and back ends' logs when a check failed or the run broke off,
# takes the lab down and removes LAB_DIR.
lab_cleanup() {
	local rc=$? f
	[ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
	[ -n "${VMIO_PID:-}" ] && kill "$VMIO_PID" 2>/dev/null
	if [ "$FAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
		for f in "$LAB_DIR"/n*/engine.log "$LAB_DIR"/b*/daemon.log; do
			[ -f "$f" ] && { echo "---- $f (tail)"; tail -n 30 "$f"; }
		done
	fi
	"$LAB" down >/dev/null 2>&1
	rm -rf "$LAB_DIR"
}

# The whole run is bounded: the watchdog ends it (and the trap cleans up). Its
# output goes nowhere so that a pipe reading the script never waits for it.
lab_watchdog() {
	(
		trap 'kill "$sp" 2>/dev/null; exit 0' TERM
		sleep "$RUN_LIMIT" &
		sp=$!
		wait "$sp" && kill -TERM $$
	) >/dev/null 2>&1 &
	WATCHDOG=$!
}

ok() {
	PASS=$((PASS + 1))
	echo "ok   $*"
}
ko() {
	FAIL=$((FAIL + 1))
	echo "FAIL $*"
}
# check DESC CMD...: CMD (a command or a function of the script) must exit 0.
# Every command that talks to the lab runs under a timeout (see on()).
check() {
	local desc=$1 out
	shift
	out=$(mktemp "${TMPDIR:-/tmp}/vmlab-check.XXXXXX")
	if "$@" >"$out" 2>&1; then
		ok "$desc"
	else
		ko "$desc: $(tail -c 600 "$out")"
	fi
	rm -f "$out"
}
# wait_for DESC SECONDS CMD...: poll CMD every 0.25 s.
wait_for() {
	local desc=$1 secs=$2 i
	shift 2
	for i in $(seq 1 $((secs * 4))); do
		if "$@" >/dev/null 2>&1; then
			ok "$desc"
			return 0
		fi
		sleep 0.25
	done
	ko "$desc (not within ${secs}s)"
	return 1
}
on() { # on NODE CMD...: run in a node's namespace
	local n=$1
	shift
	timeout -k 5 30 "$LAB" exec "$n" "$@"
}

# ---- the cluster and its volumes, as a node's vmctl sees them ----
vmctl() { # vmctl NODE ARGS...
	local n=$1
	shift
	on "$n" vmctl "$@"
}
synced() { # synced NODE MEMBERS: quorate, in sync, MEMBERS members
	local s
	s=$(vmctl "$1" --json cluster status 2>/dev/null) || return 1
	echo "$s" | grep -q '"quorate":true,"state":"synced"' || return 1
	[ "$(echo "$s" | grep -o '"node":[0-9]*' | wc -l)" -eq $(($2 + 1)) ]
}
owner_of() { # owner_of NODE: the owner of VOL as NODE's map says
	vmctl "$1" --json volume show "$VOL" 2>/dev/null | grep -o '"owner":[0-9]*' | cut -d: -f2
}
holds() { # holds NODE ADDR: the service address is on NODE's interface
	on "$1" ip -4 -o addr show dev eth0 | grep -q " $2/32 "
}
not_holds() {
	! holds "$@"
}

# ---- the host's load: vmio verify through URL ----
start_io() { # start_io JOURNAL WRITES: vmio verify in the background
	timeout -k 5 "$IO_LIMIT" "$LAB" exec host vmio --reconnect --timeout-ms 3000 --json verify \
		"$URL" --size "$IO_SIZE" --qd 4 --writes "$2" --journal "$1" >"$1.out" 2>"$1.err" &
	VMIO_PID=$!
}
end_io() { # end_io JOURNAL DESC: wait for vmio, check it had no failed I/O, print the pause
	local j=$1 desc=$2 out pause rc
	wait "$VMIO_PID"
	rc=$?
	VMIO_PID=""
	out=$(cat "$j.out")
	pause=$(echo "$out" | grep -o '"max_pause_ms":[0-9.]*' | cut -d: -f2)
	echo "     $desc: $(echo "$out" | grep -o '"writes":[0-9]*'), longest I/O pause ${pause:-?} ms, $(echo "$out" | grep -o '"reconnects":[0-9]*')"
	if [ "$rc" -eq 0 ] && echo "$out" | grep -q '"errors":0' && echo "$out" | grep -q '"lost":0,"torn":0,"corrupt":0'; then
		ok "$desc: no failed I/O, every write read back (pause ${pause} ms)"
	else
		ko "$desc: vmio exit $rc: $out $(tail -c 400 "$j.err")"
	fi
	LAST_PAUSE=${pause:-0}
}
running() { # running DESC: the load still runs when the event happens
	if kill -0 "$VMIO_PID" 2>/dev/null; then ok "$1: the load is running"; else ko "$1: the load ended too early"; fi
}
check_journal() { # check_journal JOURNAL DESC: every acknowledged write reads back
	local out
	out=$(timeout -k 5 120 "$LAB" exec host vmio --json verify --check "$1" "$URL" 2>&1)
	if echo "$out" | grep -q '"lost":0,"torn":0,"corrupt":0' && echo "$out" | grep -q '"errors":0'; then
		ok "$2: vmio verify --check: 0 lost, 0 torn ($(echo "$out" | grep -o '"checked":[0-9]*'))"
	else
		ko "$2: vmio verify --check: $out"
	fi
}
