#!/bin/bash
# tests/robust/run.sh BUILD [tgt]: robustness of the target against broken
# initiators. Starts a solo vmengine with one volume, runs
# BUILD/tests/tools/robust (every default case: truncated and lying PDUs,
# unknown opcodes, garbage before and after login, oversized data, a bad
# header digest), then checks that the engine is still alive and stops
# cleanly on SIGTERM. Then BUILD/tests/tools/fuzz_pdu fuzzes an ASan+UBSan
# engine with fixed seeds (fuzz_run below). Ends with "robust: N passed, N
# failed".
#
# With "tgt" as the second argument the same cases run against Debian's tgtd
# instead (LUN 1): a check of the tool's mechanics; tgtd does not meet every
# expectation (see the tool's comments), so failures there are information.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

BUILD=${1:?usage: $0 BUILD [tgt]}
PEER=${2:-vmengine}
BUILD=$(cd "$BUILD" && pwd)
TOOL=$BUILD/tests/tools/robust
VOL=robust
# Bound on every reaction the tool waits for (ms).
WAIT_MS=${ROBUST_WAIT_MS:-5000}

t_init robust
if [ ! -x "$TOOL" ]; then
	t_fail "robust tool missing: $TOOL (make $TOOL)"
	t_summary
	exit 1
fi

t_port port
if [ "$PEER" = tgt ]; then
	truncate -s 64M "$T_DIR/lun.img"
	if tgt_start tgt "$port" && tgt_target tgt 1 "$IQN_PREFIX:$VOL" "$T_DIR/lun.img"; then
		t_pass "tgtd started on 127.0.0.1:$port"
	else
		t_fail "tgtd did not start"
		t_summary
		exit 1
	fi
	lun=1
else
	if vm_start "$BUILD" vm "$port" "{ name = \"$VOL\"; size = \"64M\"; }"; then
		t_pass "vmengine started on 127.0.0.1:$port"
	else
		t_fail "vmengine did not start"
		t_summary
		exit 1
	fi
	lun=0
fi

# The tool prints one line per case and its own summary; fold its counts
# into ours (its summary line is renamed so that only one "robust:" line,
# the last, is printed).
out=$T_DIR/robust.out
rc=0
timeout -k 5 300 "$TOOL" -p "$port" -t "$IQN_PREFIX:$VOL" -l "$lun" -w "$WAIT_MS" >"$out" 2>&1 || rc=$?
sed -e 's/^robust: /robust-tool: /' "$out"
read -r p f < <(sed -n 's/^robust: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out" | tail -n 1) || true
if [ -z "${p:-}" ]; then
	t_fail "robust tool ended without a summary (exit $rc)"
else
	T_PASS=$((T_PASS + p))
	T_FAIL=$((T_FAIL + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		t_fail "robust tool exit status $rc"
	fi
fi

# ---- fuzz_pdu: seeded mutation fuzzing, against the ASan+UBSan daemon ----
# BUILD/tests/tools/fuzz_pdu sends malformed-looking traffic over several
# connections (see its header) while a well-behaved session checks that the
# engine serves, in time, with the right data. The daemon is the sanitizer
# build (make asan-daemon), built here if missing; the normal one otherwise.
# Fixed seeds, FUZZ_SECONDS each, one engine; any sanitizer report in its
# stderr fails. FUZZ_SEEDS / FUZZ_SECONDS widen a run by hand.
FUZZ_SEEDS=${FUZZ_SEEDS:-"1 2"}
FUZZ_SECONDS=${FUZZ_SECONDS:-12}
fuzz_run() {
	local repo fbuild tool=$BUILD/tests/tools/fuzz_pdu fport seed out frc log
	repo=$(cd "$here/../.." && pwd)
	fbuild=$repo/build-asan
	if [ ! -x "$tool" ]; then
		t_fail "fuzz tool missing: $tool (make $tool)"
		return
	fi
	# A no-op when up to date; after `make unit` only engine/ is left to compile.
	timeout 600 make -C "$repo" --no-print-directory asan-daemon >"$T_DIR/asan-build.log" 2>&1 || true
	if [ ! -x "$fbuild/vmengined" ]; then
		t_log "no ASan daemon (see $T_DIR/asan-build.log): fuzzing the normal build"
		fbuild=$BUILD
	fi
	t_port fport
	if ! ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} vm_start "$fbuild" fz "$fport" \
		"{ name = \"fuzz\"; size = \"64M\"; }, { name = \"check\"; size = \"16M\"; }"; then
		t_fail "engine for fuzzing did not start ($fbuild/vmengined)"
		return
	fi
	log=$(vm_log fz)
	for seed in $FUZZ_SEEDS; do
		out=$T_DIR/fuzz-$seed.out
		frc=0
		timeout -k 5 $((FUZZ_SECONDS + 60)) "$tool" -p "$fport" -t "$IQN_PREFIX:fuzz" \
			-k "$IQN_PREFIX:check" -s "$FUZZ_SECONDS" -S "$seed" -c 4 >"$out" 2>&1 || frc=$?
		if [ "$frc" -eq 0 ]; then
			t_pass "fuzz seed $seed ($(basename "$fbuild")/vmengined): $(tail -n 1 "$out" |
				sed 's/^fuzz_pdu: seed [^,]*, //')"
		else
			t_fail "fuzz seed $seed (exit $frc, $(basename "$fbuild")/vmengined)"
			t_show_tail "$out" 10
		fi
	done
	if vm_alive fz; then
		t_pass "engine alive after fuzzing"
	else
		t_fail "engine died while fuzzed"
	fi
	if grep -Eq 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$log"; then
		t_fail "sanitizer report in the engine's stderr ($log)"
		grep -E -A 30 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$log" |
			head -n 40 | sed 's/^/    | /'
	else
		t_pass "no sanitizer report in the engine's stderr"
	fi
	frc=0
	vm_stop fz || frc=$?
	if [ "$frc" -eq 0 ]; then
		t_pass "fuzzed engine exits 0 on SIGTERM"
	else
		t_fail "fuzzed engine exit status $frc on SIGTERM (its errors below, then its end)"
		grep -E '^[^ ]+ [^ ]+ [^ ]+ +(error|crit|alert|emerg) ' "$log" | tail -n 5 | sed 's/^/    | /'
		t_show_tail "$log" 10
	fi
}

if [ "$PEER" = tgt ]; then
	if tgt_stop tgt; then t_pass "tgtd stopped"; else t_fail "tgtd did not stop on delete system"; fi
else
	if vm_alive vm; then
		t_pass "engine alive after every case"
	else
		t_fail "engine died during the cases; log: $(vm_log vm)"
		t_show_tail "$(vm_log vm)" 30
	fi
	src=0
	vm_stop vm || src=$?
	if [ "$src" -eq 0 ]; then
		t_pass "engine exits 0 on SIGTERM"
	else
		t_fail "engine exit status $src on SIGTERM"
		t_show_tail "$(vm_log vm)" 30
	fi
	fuzz_run
fi
t_summary
