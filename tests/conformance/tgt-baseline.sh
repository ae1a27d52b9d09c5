#!/bin/bash
# tests/conformance/tgt-baseline.sh [BUILD]: the conformance suite of
# tests/conformance/run.sh against Debian's tgtd instead of vmengine, counted
# the same way, as the reference to compare vmengine's counts with. tgt's
# LUN 0 is its controller, so the URL ends in /1; the LUN is a file of the
# same size as the engine's volume. The log goes to BUILD/tests/conformance/
# (BUILD defaults to ./build). Informational: exits non-zero only when tgtd
# cannot start or the suite hangs.
# Measured with tgt 1.0.85 and libiscsi 1.19: 157 passed / 11 failed /
# 62 skipped of 230, in about 55 s (64M LUN).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

BUILD=${1:-build}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
SIZE=${CONF_SIZE:-64M}
TIMEOUT=${CONF_TIMEOUT:-1200}
OUT=$BUILD/tests/conformance

t_init tgt-baseline
mkdir -p "$OUT"
LOG=$OUT/tgt-iscsi-test-cu.log
RES=$OUT/tgt-results.txt
for c in tgtd iscsi-test-cu; do
	command -v "$c" >/dev/null || {
		t_fail "$c missing (deploy/deps.sh installs tgt and libiscsi-bin)"
		t_summary
		exit 1
	}
done

t_port port
truncate -s "$SIZE" "$T_DIR/lun.img"
iqn=$IQN_PREFIX:tgt-baseline
if tgt_start tgt "$port" && tgt_target tgt 1 "$iqn" "$T_DIR/lun.img"; then
	t_pass "tgtd $(tgtd --version 2>/dev/null || true) started on 127.0.0.1:$port"
else
	t_fail "tgtd did not start"
	t_summary
	exit 1
fi

url=iscsi://127.0.0.1:$port/$iqn/1
echo "command: timeout $TIMEOUT iscsi-test-cu --dataloss -t ALL $url"
start=$(t_now)
rc=0
timeout -k 10 "$TIMEOUT" iscsi-test-cu --dataloss -t ALL "$url" >"$LOG" 2>&1 || rc=$?
secs=$(($(t_now) - start))
conf_parse "$LOG" >"$RES"
echo "tgt iscsi-test-cu: $(conf_counts "$RES" "$(conf_all_tests | wc -l)") in ${secs}s (exit $rc)"
echo "log: $LOG"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	t_fail "iscsi-test-cu did not finish within ${TIMEOUT}s"
else
	t_pass "iscsi-test-cu finished in ${secs}s"
fi
if tgt_stop tgt; then t_pass "tgtd stopped"; else t_fail "tgtd had to be killed"; fi
t_summary
