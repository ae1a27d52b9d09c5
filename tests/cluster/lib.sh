# tests/cluster/lib.sh: helpers shared by the lab tests (sourced, not run).
# The sourcing script sets LAB (deploy/lab), RUN_LIMIT (seconds), PASS=0,
# FAIL=0 and WATCHDOG="", and calls lab_watchdog once its traps are set.

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
