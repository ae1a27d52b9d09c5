#!/bin/bash
# tests/run-system.sh BUILD: the system tests in sequence (interop, robust,
# conformance), each with its own engine, ports and temp dir. Prints each
# script's output and its final "NAME: N passed, N failed" line, then
# "system: N passed, N failed" over all of them (a script that ends without
# its line counts as one failure). Exits non-zero when anything failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:?usage: $0 BUILD}
# Every script bounds its own waits; this outer bound only catches a script
# that hangs anyway.
SCRIPT_TIMEOUT=${SYSTEM_SCRIPT_TIMEOUT:-1800}

passed=0
failed=0
status=0
lines=""
# NAME:SCRIPT — NAME is the prefix of the script's summary line.
SCRIPTS=${SYSTEM_SCRIPTS:-"interop:interop/run.sh initiator:interop/initiator.sh
	robust:robust/run.sh conformance:conformance/run.sh aptpl:conformance/aptpl.sh
	mirror:interop/mirror.sh fence:interop/fence.sh qemu:interop/qemu.sh cluster:cluster/run.sh
	datapath:cluster/datapath.sh failover:cluster/failover.sh
	failover-mirror:cluster/failover-mirror.sh"}
for entry in $SCRIPTS; do
	name=${entry%%:*}
	s=${entry#*:}
	if [ ! -x "$here/$s" ]; then
		continue
	fi
	echo "=== $name"
	out=$(mktemp "${TMPDIR:-/tmp}/vmengine-system.XXXXXX")
	rc=0
	timeout -k 10 "$SCRIPT_TIMEOUT" "$here/$s" "$BUILD" 2>&1 | tee "$out" || true
	rc=${PIPESTATUS[0]}
	line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$out" | tail -n 1)
	rm -f "$out"
	if [ -z "$line" ]; then
		line="$name: 0 passed, 1 failed (no summary, exit $rc)"
		failed=$((failed + 1))
		status=1
	else
		p=$(echo "$line" | sed 's/^[^:]*: \([0-9]*\) passed.*/\1/')
		f=$(echo "$line" | sed 's/.* \([0-9]*\) failed$/\1/')
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			failed=$((failed + 1))
			line="$line (but exit $rc)"
		fi
		[ "$rc" -ne 0 ] || [ "$f" -ne 0 ] && status=1
	fi
	lines="$lines$line
"
done
echo "=== summary"
printf '%s' "$lines"
echo "system: $passed passed, $failed failed"
exit $status
