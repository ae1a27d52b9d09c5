#!/bin/bash
# tests/perf/bench-virt.sh BUILD: the virtualized data path against the back
# end it sits on, measured in the same run by the same client (make bench,
# after bench.sh; issue 6).
#
#   virt:   host -> vmengine -> tgtd   (a volume with --mirror 1 on a back end
#                                      added with `vmctl backend add`)
#   direct: host -> tgtd               (a LUN of the same tgtd, same size)
#   mirror2 (BENCH_VIRT_MIRROR2=1, the default): host -> vmengine -> two
#           tgtds, a volume with --mirror 2 (every write goes to both).
#
# Every LUN is a file on tmpfs (/dev/shm), so the medium is memory and the
# ratio virt/direct is the cost of the extra hop: the engine receives the
# host's command, maps it to its extent and issues it to the back end as an
# initiator, then answers the host. Each volume is written end to end first
# so that nothing reads holes; runs alternate between the paths (the order
# rotates per round) and the median of the rounds is printed, with ratios
# against the direct path: 4 KiB random read and write at QD 1 and 64, and
# 128 KiB sequential read and write at QD BENCH_SEQ_QD. The client is vmio.
#
# Environment: BENCH_VIRT_SIZE (512M), BENCH_SECS (5), BENCH_ROUNDS (3),
# BENCH_SEQ_QD (8), BENCH_VIRT_MIRROR2 (1), BENCH_SHM (/dev/shm).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

BUILD=${1:?usage: $0 BUILD}
BUILD=$(cd "$BUILD" && pwd)
SIZE=${BENCH_VIRT_SIZE:-512M}
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SEQ_QD=${BENCH_SEQ_QD:-8}
MIRROR2=${BENCH_VIRT_MIRROR2:-1}
SHM=${BENCH_SHM:-/dev/shm}
EXTENT=64M

t_init bench-virt
T_CMD_TIMEOUT=$((SECS * 3 + 60))
VMCTL=$BUILD/vmctl
for b in vmio vmctl vmengined; do
	[ -x "$BUILD/$b" ] || {
		t_fail "$BUILD/$b missing (run make)"
		t_summary
		exit 1
	}
done
bytes=$(numfmt --from=iec "$SIZE")

# run URL MODE BS QD SECS: vmio's JSON line on stdout.
run() {
	timeout -k 5 "$T_CMD_TIMEOUT" "$BUILD/vmio" bench "$1" --rw "$2" --bs "$3" --qd "$4" \
		--time "${5}s" --json </dev/null
}
json_num() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\\([0-9.]*\\).*/\\1/p" | head -n 1
}

# ---- back ends: one tgtd (two if MIRROR2), every LUN a tmpfs file ----
shm=$(mktemp -d "$SHM/vmengine-bench-virt.XXXXXX")
T_EXTRA_DIRS="$T_EXTRA_DIRS $shm"
t_port pa
t_port pb
t_port pe
# The back-end LUN holds the volume's extents: twice the volume leaves room.
truncate -s $((bytes * 2)) "$shm/be-a.img" "$shm/be-b.img"
truncate -s "$bytes" "$shm/direct.img"
if tgt_start ta "$pa" && tgt_target ta 1 "$IQN_PREFIX:be-a" "$shm/be-a.img" &&
	tgt_target ta 2 "$IQN_PREFIX:direct" "$shm/direct.img"; then
	t_pass "tgtd on 127.0.0.1:$pa (back end and direct LUN on $shm)"
else
	t_fail "tgtd did not start"
	t_summary
	exit 1
fi
if [ "$MIRROR2" = 1 ]; then
	if tgt_start tb "$pb" && tgt_target tb 1 "$IQN_PREFIX:be-b" "$shm/be-b.img"; then
		t_pass "second tgtd on 127.0.0.1:$pb"
	else
		t_fail "second tgtd did not start"
		MIRROR2=0
	fi
fi

# ---- the engine: back ends added, volumes carved from them ----
if ! vm_start "$BUILD" eng "$pe" ""; then
	t_fail "vmengine did not start"
	t_summary
	exit 1
fi
export VMCTL_SOCKET=vmengine-test-eng-$pe
t_check "backend add A" "$VMCTL" backend add "127.0.0.1:$pa" "$IQN_PREFIX:be-a" --lun 1
[ "$MIRROR2" = 1 ] && t_check "backend add B" "$VMCTL" backend add "127.0.0.1:$pb" \
	"$IQN_PREFIX:be-b" --lun 1
t_check "volume create --mirror 1" "$VMCTL" volume create bv1 "$bytes" --mirror 1 \
	--extent "$EXTENT"
[ "$MIRROR2" = 1 ] && t_check "volume create --mirror 2" "$VMCTL" volume create bv2 "$bytes" \
	--mirror 2 --extent "$EXTENT"
want="bv1"
[ "$MIRROR2" = 1 ] && want="bv1 bv2"
for v in $want; do
	ok=0
	for i in $(seq 1 100); do
		iscsi-ls "iscsi://127.0.0.1:$pe" 2>/dev/null | grep -q ":$v " && ok=1 && break
		sleep 0.1
	done
	[ $ok = 1 ] && t_pass "$v served" || t_fail "$v served"
done

PATHS="direct iscsi://127.0.0.1:$pa/$IQN_PREFIX:direct/1
virt $(vm_url "$pe" bv1)"
[ "$MIRROR2" = 1 ] && PATHS="$PATHS
mirror2 $(vm_url "$pe" bv2)"

# ---- fill ----
while read -r who url; do
	if out=$(run "$url" write 1048576 8 "$((SECS * 4))" 2>&1); then
		t_pass "$who filled: $(json_num "$out" mbps) MB/s"
	else
		t_fail "$who fill: $out"
	fi
done <<<"$PATHS"

# ---- the figures ----
FIGURES="4k-randread-qd1 randread 4096 1 iops
4k-randread-qd64 randread 4096 64 iops
4k-randwrite-qd1 randwrite 4096 1 iops
4k-randwrite-qd64 randwrite 4096 64 iops
128k-read-qd$SEQ_QD read 131072 $SEQ_QD mbps
128k-write-qd$SEQ_QD write 131072 $SEQ_QD mbps"
RES=$T_DIR/results
: >"$RES"
npaths=$(printf '%s\n' "$PATHS" | wc -l)
echo "client: vmio, $SECS s per run, $ROUNDS round(s), volumes of $SIZE on tmpfs"
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r"
	while read -r fig mode bs qd metric; do
		# Rotate the order per round: no path always runs first.
		for k in $(seq 0 $((npaths - 1))); do
			line=$(printf '%s\n' "$PATHS" | sed -n "$(((k + r) % npaths + 1))p")
			who=${line%% *}
			url=${line#* }
			if out=$(run "$url" "$mode" "$bs" "$qd" "$SECS" 2>&1); then
				v=$(json_num "$out" "$metric")
				echo "$fig $who $v" >>"$RES"
				echo "  $fig $who: $v $metric"
			else
				t_fail "$fig on $who: $out"
			fi
		done
	done <<<"$FIGURES"
done

if vm_alive eng; then t_pass "engine alive after the runs"; else t_fail "engine died"; fi
vm_stop eng || true
tgt_stop ta || true
[ "$MIRROR2" = 1 ] && { tgt_stop tb || true; }

# ---- the table ----
echo
hdr2=""
[ "$MIRROR2" = 1 ] && hdr2=$(printf '%12s %8s' "mirror2" "ratio")
printf '%-26s %12s %12s %8s %s\n' "figure" "direct tgt" "virt" "ratio" "$hdr2"
while read -r fig mode bs qd metric; do
	awk -v f="$fig" -v m="$metric" -v m2="$MIRROR2" '
	function median(a, n,    i, j, x) {
		if (n == 0) return 0
		for (i = 2; i <= n; i++) {
			x = a[i]
			for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
			a[j + 1] = x
		}
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$1 == f && $2 == "direct" { d[++dn] = $3 + 0 }
	$1 == f && $2 == "virt" { v[++vn] = $3 + 0 }
	$1 == f && $2 == "mirror2" { w[++wn] = $3 + 0 }
	END {
		u = (m == "iops") ? " IOPS" : " MB/s"
		D = median(d, dn); V = median(v, vn); W = median(w, wn)
		r = (D > 0) ? sprintf("%.2f", V / D) : "-"
		printf "%-26s %12.1f %12.1f %8s", f u, D, V, r
		if (m2 == 1)
			printf " %12.1f %8s", W, (D > 0) ? sprintf("%.2f", W / D) : "-"
		printf "\n"
	}' "$RES"
done <<<"$FIGURES"
echo "(median of $ROUNDS run(s) of ${SECS}s each; ratio = through the engine / tgtd directly;"
echo " the engine adds a hop: host -> engine -> tgtd instead of host -> tgtd)"
t_summary
