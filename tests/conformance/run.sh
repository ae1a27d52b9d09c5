#!/bin/bash
# tests/conformance/run.sh BUILD: libiscsi's SCSI/iSCSI conformance suite
# (iscsi-test-cu, Debian libiscsi-bin) against a solo vmengine.
#
# Runs `iscsi-test-cu --dataloss --allow-sanitize -t ALL URL1 URL2` (two
# portals of one engine, so the MultipathIO suite runs) under a hard timeout, keeps the
# full log in BUILD/tests/conformance/, and counts per test: passed (without
# any SKIPPED or [FAILED] line), failed, skipped. Then:
#   - every test listed in expected-pass.txt must have passed;
#   - tests that passed but are not listed are printed as "newly passing";
#   - the engine must be alive at the end and exit 0 on SIGTERM;
#   - the suite must finish before the timeout (a hang fails this test,
#     it never hangs CI).
# Environment: CONF_SIZE (volume size, default 64M: the results against tgt
# are the same at 16M, 64M and 1G, and smaller is faster), CONF_TIMEOUT
# (seconds, default 1200), CONF_TESTS (default ALL; another selection only
# checks the listed tests that it runs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

BUILD=${1:?usage: $0 BUILD}
BUILD=$(cd "$BUILD" && pwd)
SIZE=${CONF_SIZE:-64M}
TIMEOUT=${CONF_TIMEOUT:-1200}
TESTS=${CONF_TESTS:-ALL}
EXPECTED=${CONF_EXPECTED:-$here/expected-pass.txt}
VOL=conformance
OUT=$BUILD/tests/conformance

t_init conformance
mkdir -p "$OUT"
LOG=$OUT/iscsi-test-cu.log
RES=$OUT/results.txt
if ! command -v iscsi-test-cu >/dev/null; then
	t_fail "iscsi-test-cu missing (apt-get install libiscsi-bin)"
	t_summary
	exit 1
fi

t_port port
t_port port2
# Two portals of one engine: the MultipathIO suite runs over both (issue 5).
# Sanitize.Reset needs a SANITIZE still running ~5 s after it starts: at
# 8 MiB/s a 64M volume takes 8 s.
if VM_ISCSI_EXTRA="sanitize_rate_mib = 8;" VM_PORT2=$port2 vm_start "$BUILD" vm "$port" "{ name = \"$VOL\"; size = \"$SIZE\"; }"; then
	t_pass "vmengine started on 127.0.0.1:$port and :$port2 with a $SIZE volume"
else
	t_fail "vmengine did not start"
	t_summary
	exit 1
fi

url=$(vm_url "$port" "$VOL")
url2=$(vm_url "$port2" "$VOL")
cmd="iscsi-test-cu --dataloss --allow-sanitize -t $TESTS $url $url2"
echo "command: timeout $TIMEOUT $cmd"
start=$(t_now)
rc=0
timeout -k 10 "$TIMEOUT" iscsi-test-cu --dataloss --allow-sanitize -t "$TESTS" "$url" "$url2" \
	>"$LOG" 2>&1 || rc=$?
secs=$(($(t_now) - start))
conf_parse "$LOG" >"$RES"
if [ "$TESTS" = ALL ]; then
	total=$(conf_all_tests | wc -l)
else
	total=$(wc -l <"$RES")
fi
echo "iscsi-test-cu: $(conf_counts "$RES" "$total") in ${secs}s (exit $rc)"
echo "log: $LOG"

if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	t_fail "iscsi-test-cu did not finish within ${TIMEOUT}s (hang?); last lines:"
	t_show_tail "$LOG" 5
else
	t_pass "iscsi-test-cu finished in ${secs}s"
fi
if vm_alive vm; then
	t_pass "engine alive after the suite"
else
	t_fail "engine died during the suite; log: $(vm_log vm)"
	t_show_tail "$(vm_log vm)" 30
fi

# The expected list: each listed test must have passed.
n_expected=0
while read -r t; do
	n_expected=$((n_expected + 1))
	r=$(awk -v t="$t" '$1 == t { print $2 }' "$RES")
	if [ "$r" = passed ]; then
		t_pass "expected pass: $t"
	elif [ -z "$r" ] && [ "$TESTS" != ALL ]; then
		echo "not in this run: $t"
	else
		t_fail "expected pass: $t is ${r:-missing from the log}"
	fi
done < <(conf_expected "$EXPECTED")
echo "expected-pass list: $n_expected test(s)"
newly=$(awk '$2 == "passed" { print $1 }' "$RES" |
	grep -vxF -f <(conf_expected "$EXPECTED"; echo '#none#') || true)
if [ -n "$newly" ]; then
	echo "newly passing (not in expected-pass.txt): $(echo "$newly" | wc -l)"
	echo "$newly" | sed 's/^/newly passing: /'
	echo "(to list them all: awk '\$2 == \"passed\" { print \$1 }' $RES)"
fi

src=0
vm_stop vm || src=$?
if [ "$src" -eq 0 ]; then
	t_pass "engine exits 0 on SIGTERM"
else
	t_fail "engine exit status $src on SIGTERM"
	t_show_tail "$(vm_log vm)" 30
fi
t_summary
