#!/bin/bash
# tests/interop/initiator.sh BUILD: iscsi-init (through vmio) against Debian's
# tgtd and against vmengine (issue 3):
#   - login without and with CHAP (one-way, mutual) and CRC32C digests,
#     SendTargets discovery, refusals of wrong secrets,
#   - write/read/verify 1 GiB on a tmpfs-backed LUN,
#   - the checker proves it can fail: a dropped write and a corrupted block,
#   - tgtd killed (SIGKILL) and restarted with the same LUN mid-run: no error
#     reaches vmio, no acknowledged write is lost,
#   - vmio bench vs libiscsi's iscsi-perf, 4 KiB random reads, queue depth 32,
#     same target, same run: the ratio is printed; on a shared machine a timed
#     figure is no pass/fail matter, so the 90% bound is asserted only with
#     INI_PERF=1 (INI_SKIP_PERF=1 skips the measurement).
# Prints "initiator: N passed, N failed"; exit status non-zero on failure.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/../lib.sh"
t_init initiator
T_CMD_TIMEOUT=${T_CMD_TIMEOUT:-60}

VMIO=$BUILD/vmio
SHM=/dev/shm/vmengine-initiator.$$
mkdir -p "$SHM"
ini_cleanup() {
	t_cleanup
	rm -rf "$SHM"
}
trap ini_cleanup EXIT
trap 'ini_cleanup; trap - EXIT; exit 130' INT TERM

if [ ! -x "$VMIO" ]; then
	echo "initiator: $VMIO is missing (run make)" >&2
	exit 1
fi

# ---- tgtd ----
# lib.sh uses the port as tgtd's control index (-C), which tgtd limits to
# below 32768: draw ports until one fits.
t_port TPORT
while [ "$TPORT" -ge 32768 ]; do
	t_port TPORT || exit 1
done
TIQN=$IQN_PREFIX:ini-tgt
CIQN=$IQN_PREFIX:ini-chap
truncate -s 1G "$SHM/tgt.img"
truncate -s 64M "$SHM/chap.img"

tgt_setup() {
	tgt_start tgt "$TPORT" &&
		tgt_target tgt 1 "$TIQN" "$SHM/tgt.img" &&
		tgt_target tgt 2 "$CIQN" "$SHM/chap.img" &&
		tgt_adm tgt --op new --mode account --user inituser --password initsecret123 &&
		tgt_adm tgt --op new --mode account --user tgtuser --password tgtsecret456 &&
		tgt_adm tgt --op bind --mode account --tid 2 --user inituser &&
		tgt_adm tgt --op bind --mode account --tid 2 --user tgtuser --outgoing &&
		tgt_adm tgt --op update --mode target --tid 2 --name HeaderDigest --value CRC32C &&
		tgt_adm tgt --op update --mode target --tid 2 --name DataDigest --value CRC32C
}

if ! tgt_setup; then
	t_fail "tgtd starts with its targets"
	t_summary
	exit 1
fi
TURL=iscsi://127.0.0.1:$TPORT/$TIQN/1
CURL="iscsi://inituser%initsecret123@127.0.0.1:$TPORT/$CIQN/1"
MUTUAL="target_user=tgtuser&target_password=tgtsecret456"

t_check_output "tgt: login, LUN probe (REPORT LUNS, INQUIRY, READ CAPACITY)" \
	"lun 1: type 0, 2097152 blocks of 512 bytes" "$VMIO" info "$TURL"
t_check_output "tgt: SendTargets discovery" "$TIQN" "$VMIO" discover "iscsi://127.0.0.1:$TPORT"
t_check_output "tgt: write/read/verify 1 GiB" " 1024 units checked: 1024 ok, 0 lost" \
	"$VMIO" verify "$TURL" --fill --bs 1m --qd 8
t_check_output "tgt: random 4 KiB writes verified" "0 lost, 0 torn, 0 corrupt" \
	"$VMIO" verify "$TURL" --writes 20000 --qd 32
t_check_fails "tgt: CHAP target refuses a login without CHAP" "$VMIO" info "iscsi://127.0.0.1:$TPORT/$CIQN/1"
t_check_fails_output "tgt: CHAP target refuses a wrong secret" "Permission denied" \
	"$VMIO" info "iscsi://inituser%wrongsecret99@127.0.0.1:$TPORT/$CIQN/1?digest=crc32c"
t_check_output "tgt: CHAP one-way + CRC32C digests" "0 lost, 0 torn, 0 corrupt" \
	"$VMIO" verify "$CURL?digest=crc32c" --writes 3000 --bs 64k
t_check_output "tgt: mutual CHAP + CRC32C digests" "0 lost, 0 torn, 0 corrupt" \
	"$VMIO" verify "$CURL?digest=crc32c&$MUTUAL" --writes 3000
t_check_fails_output "tgt: mutual CHAP with a wrong target secret is refused" "Permission denied" \
	"$VMIO" info "$CURL?digest=crc32c&target_user=tgtuser&target_password=notthesecret1"
t_check_fails_output "tgt: digests required but refused by the target" "cannot log in" \
	"$VMIO" info "$TURL?digest=crc32c"

# The checker must be able to fail.
J=$T_DIR/drop.jrn
t_check_fails_output "verify: a dropped acknowledged write is reported" "1 lost" \
	"$VMIO" verify "$TURL" --size 1m --writes 2000 --journal "$J" --test-drop-writes 1
t_check_fails_output "verify --check: the dropped write is reported from the journal" "1 lost" \
	"$VMIO" verify --check "$J" "$TURL"
J=$T_DIR/corrupt.jrn
t_check "verify: 2000 writes over 16 units" \
	"$VMIO" verify "$TURL" --size 64k --writes 2000 --journal "$J"
t_check "verify --check: intact before the corruption" "$VMIO" verify --check "$J" "$TURL"
printf 'garbage' | dd of="$SHM/tgt.img" bs=1 seek=$((3 * 4096 + 700)) conv=notrunc 2>/dev/null
t_check_fails_output "verify --check: a corrupted block is reported" "unit 3 .*corrupt" \
	"$VMIO" verify --check "$J" "$TURL"

# tgtd killed and restarted mid-run: the library reconnects and resends.
J=$T_DIR/crash.jrn
"$VMIO" verify "$TURL" --size 256m --writes 150000 --qd 16 --reconnect --journal "$J" \
	>"$T_DIR/crash.out" 2>"$T_DIR/crash.err" &
vpid=$!
T_PIDS="$T_PIDS $vpid"
sleep 2
tpid=$(cat "$T_DIR/tgt/pid")
kill -KILL "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
t_forget_pid "$tpid"
sleep 1
if tgt_setup; then
	t_pass "tgtd restarted with the same LUN"
else
	t_fail "tgtd restarted with the same LUN"
fi
i=0
while t_alive "$vpid" && [ "$i" -lt 900 ]; do
	sleep 0.1
	i=$((i + 1))
done
rc=0
if t_alive "$vpid"; then
	kill -KILL "$vpid"
	rc=124
fi
wait "$vpid" 2>/dev/null || rc=$?
t_forget_pid "$vpid"
if [ "$rc" -eq 0 ] && grep -q "0 lost, 0 torn, 0 corrupt" "$T_DIR/crash.out" &&
	grep -Eq "reconnects [1-9]" "$T_DIR/crash.out"; then
	t_pass "tgt killed mid-run: no error, no lost write ($(tail -n 1 "$T_DIR/crash.out"))"
else
	t_fail "tgt killed mid-run (exit $rc)"
	tail -n 20 "$T_DIR/crash.out" "$T_DIR/crash.err" | sed 's/^/    | /'
fi
t_check_output "verify --check after the crash: every acknowledged write is there" \
	"0 lost, 0 torn, 0 corrupt" "$VMIO" verify --check "$J" "$TURL"

# vmio bench against libiscsi's iscsi-perf on the same target.
if [ "${INI_SKIP_PERF:-0}" != 1 ] && command -v iscsi-perf >/dev/null; then
	perf=$(timeout 30 iscsi-perf -m 32 -b 8 -r -t 5 "$TURL" 2>&1 | tr '\r' '\n' |
		sed -n 's/^iops average \([0-9]*\).*/\1/p' | tail -n 1)
	vm=$(timeout 30 "$VMIO" bench "$TURL" --rw randread --bs 4k --qd 32 --time 5s --json 2>/dev/null |
		sed -n 's/.*"iops":\([0-9]*\).*/\1/p')
	if [ -z "$perf" ] || [ -z "$vm" ]; then
		t_fail "bench: no figure (vmio ${vm:-?}, iscsi-perf ${perf:-?})"
	elif [ "${INI_PERF:-0}" != 1 ]; then
		echo "bench: vmio $vm IOPS vs iscsi-perf $perf IOPS (4k randread, qd 32):" \
			"ratio $((vm * 100 / perf))%"
	elif [ $((vm * 100)) -ge $((perf * 90)) ]; then
		t_pass "bench: vmio $vm IOPS vs iscsi-perf $perf IOPS (4k randread, qd 32)"
	else
		t_fail "bench: vmio $vm IOPS vs iscsi-perf $perf IOPS (want >= 90%)"
	fi
fi
tgt_stop tgt >/dev/null 2>&1

# ---- vmengine ----
if [ -x "$BUILD/vmengined" ]; then
	t_port VPORT
	VM_POOL_DIR=$SHM/pool
	# vm_start() gives the engine its own vmctl socket name.
	VM_ISCSI_EXTRA="digests = ( \"crc32c\", \"none\" );"
	export VM_POOL_DIR VM_ISCSI_EXTRA
	vols='{ name = "ini"; size = "1G"; },
	  { name = "inichap"; size = "64M"; chap = { user = "host1"; secret = "secret-of-12+"; mutual_user = "tgt"; mutual_secret = "other-secret12"; }; }'
	if vm_start "$BUILD" vm "$VPORT" "$vols"; then
		VURL=$(vm_url "$VPORT" ini)
		VCURL="iscsi://host1%secret-of-12+@127.0.0.1:$VPORT/$IQN_PREFIX:inichap/0"
		# The portal accepts before the configured volumes are exported:
		# wait (bounded) until discovery lists them.
		i=0
		while ! timeout 10 "$VMIO" discover "iscsi://127.0.0.1:$VPORT" 2>/dev/null |
			grep -q "$IQN_PREFIX:ini\$" && [ "$i" -lt 50 ]; do
			sleep 0.2
			i=$((i + 1))
		done
		t_check_output "vmengine: login, LUN probe" "lun 0: type 0, 2097152 blocks" \
			"$VMIO" info "$VURL"
		t_check_output "vmengine: SendTargets discovery" "$IQN_PREFIX:inichap" \
			"$VMIO" discover "iscsi://127.0.0.1:$VPORT"
		t_check_output "vmengine: write/read/verify 1 GiB" " 1024 units checked: 1024 ok" \
			"$VMIO" verify "$VURL" --fill --bs 1m --qd 8
		t_check_output "vmengine: CRC32C digests, random writes" "0 lost, 0 torn, 0 corrupt" \
			"$VMIO" verify "$VURL?digest=crc32c" --writes 20000 --qd 32
		t_check_output "vmengine: CHAP one-way" "0 lost, 0 torn, 0 corrupt" \
			"$VMIO" verify "$VCURL" --writes 2000
		t_check_fails "vmengine: wrong CHAP secret refused" \
			"$VMIO" info "iscsi://host1%wrong-secret-1@127.0.0.1:$VPORT/$IQN_PREFIX:inichap/0"
		t_check_output "vmengine: mutual CHAP + digests" "0 lost, 0 torn, 0 corrupt" \
			"$VMIO" verify "$VCURL?digest=crc32c&target_user=tgt&target_password=other-secret12" \
			--writes 2000
		vm_stop vm >/dev/null 2>&1
	else
		t_fail "vmengine starts"
	fi
else
	t_fail "vmengine: $BUILD/vmengined is missing"
fi

t_summary
