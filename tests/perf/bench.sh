#!/bin/bash
# tests/perf/bench.sh BUILD: vmengine against Debian's tgtd, measured in the
# same run by the same client on the same machine (make bench; not part of
# make test).
#
# Both targets serve a file of the same size on tmpfs (/dev/shm), so the
# medium is memory and the figures compare the targets' own paths: the
# engine's pool dir is put on /dev/shm (it creates its volume file there),
# tgtd gets a file there. Both are written once end to end first, so that
# neither reads holes. Then, per figure, runs alternate between the two
# (vmengine first in odd rounds, tgt first in even rounds) to spread the
# noise of a shared machine evenly, and the median of the rounds is printed:
#   4 KiB random read and write IOPS at queue depth 1 and 64,
#   128 KiB sequential read and write MB/s (queue depth BENCH_SEQ_QD).
#
# The client is one variable, BENCH_CLIENT: "vmio" (the default: BUILD/vmio,
# the project's own initiator) or "iobench" (tests/perf/iobench.c on
# libiscsi's async API, built here with cc; a cross-check that the numbers
# are not an artefact of our own client; it needs Debian libiscsi-dev, a
# test-only dependency the product never links). Both print one JSON line
# per run.
#
# Environment: BENCH_SIZE (1G), BENCH_SECS (5 per run), BENCH_ROUNDS (3),
# BENCH_SEQ_QD (8), BENCH_CLIENT (vmio), BENCH_SHM (/dev/shm).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

BUILD=${1:?usage: $0 BUILD}
BUILD=$(cd "$BUILD" && pwd)
SIZE=${BENCH_SIZE:-1G}
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SEQ_QD=${BENCH_SEQ_QD:-8}
CLIENT=${BENCH_CLIENT:-vmio}
SHM=${BENCH_SHM:-/dev/shm}
VOL=bench

t_init bench
T_CMD_TIMEOUT=$((SECS * 3 + 60))

# ---- the client ----
IOBENCH=$BUILD/tests/perf/iobench
build_iobench() {
	if [ ! -e /usr/include/iscsi/iscsi.h ]; then
		echo "bench: libiscsi-dev is missing (deploy/deps.sh installs it)" >&2
		return 1
	fi
	mkdir -p "$(dirname "$IOBENCH")"
	${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
		-Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
		-Wno-format-nonliteral -o "$IOBENCH" "$here/iobench.c" -liscsi
}

# client_run URL MODE BS QD SECS: one JSON line on stdout.
client_run() {
	local url=$1 mode=$2 bs=$3 qd=$4 secs=$5
	case $CLIENT in
	iobench)
		timeout -k 5 "$T_CMD_TIMEOUT" "$IOBENCH" -m "$mode" -b "$bs" -q "$qd" -t "$secs" "$url" </dev/null
		;;
	vmio)
		if [ "$mode" = fill ]; then
			mode=write # vmio has no fill: write sequentially for as long
		fi
		timeout -k 5 "$T_CMD_TIMEOUT" "$BUILD/vmio" bench "$url" --rw "$mode" --bs "$bs" \
			--qd "$qd" --time "${secs}s" --json </dev/null
		;;
	*)
		echo "bench: unknown BENCH_CLIENT $CLIENT (iobench or vmio)" >&2
		return 2
		;;
	esac
}

# json_num JSON KEY: a top-level number of the client's JSON line.
json_num() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\\([0-9.]*\\).*/\\1/p" | head -n 1
}

case $CLIENT in
iobench)
	if build_iobench; then
		t_pass "iobench built ($IOBENCH)"
	else
		t_fail "iobench did not build"
		t_summary
		exit 1
	fi
	;;
vmio)
	[ -x "$BUILD/vmio" ] || {
		t_fail "$BUILD/vmio missing"
		t_summary
		exit 1
	}
	;;
esac

# ---- the two targets ----
shm=$(mktemp -d "$SHM/vmengine-bench.XXXXXX")
T_EXTRA_DIRS="$T_EXTRA_DIRS $shm"
mkdir -p "$shm/pool"
t_port vport
t_port tport
if VM_POOL_DIR=$shm/pool vm_start "$BUILD" vm "$vport" "{ name = \"$VOL\"; size = \"$SIZE\"; }"; then
	t_pass "vmengine on 127.0.0.1:$vport, pool on $shm/pool"
else
	t_fail "vmengine did not start"
	t_summary
	exit 1
fi
truncate -s "$SIZE" "$shm/tgt.img"
if tgt_start tgt "$tport" && tgt_target tgt 1 "$IQN_PREFIX:$VOL" "$shm/tgt.img"; then
	t_pass "tgtd on 127.0.0.1:$tport, LUN 1 = $shm/tgt.img"
else
	t_fail "tgtd did not start"
	t_summary
	exit 1
fi
URL_VM=$(vm_url "$vport" "$VOL")
URL_TGT=iscsi://127.0.0.1:$tport/$IQN_PREFIX:$VOL/1

# ---- fill both ----
for who in vm tgt; do
	url=$URL_VM
	[ "$who" = tgt ] && url=$URL_TGT
	if out=$(client_run "$url" fill 1048576 8 "$((SECS * 4))" 2>&1); then
		t_pass "$who filled: $(json_num "$out" mbps) MB/s"
	else
		t_fail "$who fill: $out"
	fi
done

# ---- the figures ----
# name mode bs qd metric
FIGURES="4k-randread-qd1 randread 4096 1 iops
4k-randread-qd64 randread 4096 64 iops
4k-randwrite-qd1 randwrite 4096 1 iops
4k-randwrite-qd64 randwrite 4096 64 iops
128k-read-qd$SEQ_QD read 131072 $SEQ_QD mbps
128k-write-qd$SEQ_QD write 131072 $SEQ_QD mbps"

RES=$T_DIR/results # lines: figure who value
: >"$RES"
measure() { # measure FIGURE WHO URL MODE BS QD METRIC
	local out v
	if out=$(client_run "$3" "$4" "$5" "$6" "$SECS" 2>&1); then
		v=$(json_num "$out" "$7")
		echo "$1 $2 $v" >>"$RES"
		echo "  $1 $2: $v $7"
	else
		t_fail "$1 on $2: $out"
	fi
}
echo "client: $CLIENT, $SECS s per run, $ROUNDS round(s), volume $SIZE on tmpfs"
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r"
	while read -r fig mode bs qd metric; do
		if [ $((r % 2)) -eq 1 ]; then
			measure "$fig" vm "$URL_VM" "$mode" "$bs" "$qd" "$metric"
			measure "$fig" tgt "$URL_TGT" "$mode" "$bs" "$qd" "$metric"
		else
			measure "$fig" tgt "$URL_TGT" "$mode" "$bs" "$qd" "$metric"
			measure "$fig" vm "$URL_VM" "$mode" "$bs" "$qd" "$metric"
		fi
	done <<<"$FIGURES"
done

if vm_alive vm; then t_pass "engine alive after the runs"; else t_fail "engine died"; fi
src=0
vm_stop vm || src=$?
if [ "$src" -eq 0 ]; then
	t_pass "engine exits 0 on SIGTERM"
else
	t_fail "engine exit status $src"
fi
tgt_stop tgt || true

# ---- the table ----
echo
printf '%-22s %12s %12s %8s\n' "figure" "vmengine" "tgt" "ratio"
while read -r fig mode bs qd metric; do
	awk -v f="$fig" -v m="$metric" '
	function median(a, n,    i, j, x) {
		if (n == 0) return 0
		for (i = 2; i <= n; i++) {
			x = a[i]
			for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
			a[j + 1] = x
		}
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$1 == f && $2 == "vm" { vv[++vn] = $3 + 0 }
	$1 == f && $2 == "tgt" { tv[++tn] = $3 + 0 }
	END {
		u = (m == "iops") ? " IOPS" : " MB/s"
		v = median(vv, vn); t = median(tv, tn)
		r = (t > 0) ? sprintf("%.2f", v / t) : "-"
		printf "%-22s %12.1f %12.1f %8s\n", f u, v, t, r
	}' "$RES"
done <<<"$FIGURES"
echo "(median of $ROUNDS run(s) of ${SECS}s each; ratio = vmengine / tgt; tgt $(tgtd --version 2>/dev/null || echo '?'))"
t_summary
