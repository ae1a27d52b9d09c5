#!/bin/sh
# Run every CUnit binary given; each prints its CUnit run summary. Exits
# non-zero when a binary fails or reports a failed test, and ends with one
# line "unit: N passed, N failed" over all binaries.
set -u
passed=0
failed=0
status=0
for b in "$@"; do
	out=$("$b" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed -n 's/^ *tests *[0-9]* *[0-9]* *\([0-9]*\) *\([0-9]*\).*/\1 \2/p' >/tmp/ut.$$
	read -r p f </tmp/ut.$$ || { p=0; f=1; }
	rm -f /tmp/ut.$$
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		status=1
		printf '%s\n' "$out"
		echo "FAILED: $b (exit $rc)"
	else
		echo "ok: $b ($p tests)"
	fi
done
echo "unit: $passed passed, $failed failed"
exit $status
