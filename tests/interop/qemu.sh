#!/bin/bash
# tests/interop/qemu.sh BUILD: QEMU as a real host of vmengine volumes, through
# its built-in libiscsi block driver (Debian qemu-block-extra), issue 5:
#   (a) qemu-img convert a 256 MiB image of random data to an iscsi:// URL
#       and back: the checksums must match (bit-exact round trip);
#   (b) a QEMU guest (TCG, no KVM needed) attaches a vmengine volume with
#       -drive file=iscsi://...,if=virtio and, from inside, reads a pattern
#       the host wrote and writes and reads back its own; after the guest
#       powers off, the host reads the volume with qemu-img and checks the
#       guest's pattern is there.
# The guest is the distribution kernel (/boot/vmlinuz-*, linux-image-amd64)
# with a small initramfs built here: static busybox, the virtio modules and
# an init script that prints its verdict on the serial console.
# Everything started is stopped by PID; the whole run is bounded (QEMU by
# QEMU_TIMEOUT seconds, every other command by T_CMD_TIMEOUT).
# Prints "qemu: N passed, N failed"; exit status non-zero on failure.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/../lib.sh"
t_init qemu
T_CMD_TIMEOUT=${T_CMD_TIMEOUT:-120}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-150}
IMG_MB=${QEMU_IMG_MB:-256}

SHM=/dev/shm/vmengine-qemu.$$
mkdir -p "$SHM"
T_EXTRA_DIRS="$T_EXTRA_DIRS $SHM"

# ---- prerequisites ----
missing=""
for c in qemu-img qemu-system-x86_64 cpio gzip sha256sum readelf; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
	# static: no program interpreter (the guest has no libc)
	if [ -x "$b" ] && ! readelf -l "$b" 2>/dev/null | grep -q 'program interpreter'; then
		BUSYBOX=$b
		break
	fi
done
[ -n "$BUSYBOX" ] || missing="$missing busybox-static"
KERNEL=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
KVER=${KERNEL#/boot/vmlinuz-}
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] && [ -f "/lib/modules/$KVER/modules.dep" ] ||
	missing="$missing linux-image-amd64"
if [ -n "$missing" ]; then
	t_fail "missing:$missing (deploy/deps.sh installs them)"
	t_summary
	exit 1
fi
# The iscsi protocol comes from qemu-block-extra (a loadable block module).
if ! qemu-img --help 2>/dev/null | grep -q 'Supported formats:.* iscsi'; then
	t_fail "qemu-img has no iscsi driver (install qemu-block-extra)"
	t_summary
	exit 1
fi

t_port port
if VM_POOL_DIR=$SHM/pool vm_start "$BUILD" vm "$port" \
	"{ name = \"img\"; size = \"${IMG_MB}M\"; }, { name = \"guest\"; size = \"64M\"; }"; then
	t_pass "vmengine started on 127.0.0.1:$port (volume files on /dev/shm)"
else
	t_fail "vmengine did not start"
	t_summary
	exit 1
fi
URL_IMG=$(vm_url "$port" img)
URL_GUEST=$(vm_url "$port" guest)
INITIATOR=iqn.2026-11.org.vmengine.test:qemu

# t_time VAR CMD...: t_check CMD, its duration in seconds ("12.3") into VAR.
t_time() {
	local var=$1 s ms
	shift
	s=$(date +%s%N)
	t_check "$@"
	ms=$((($(date +%s%N) - s) / 1000000))
	printf -v "$var" '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# ---- (a) qemu-img round trip ----
dd if=/dev/urandom of="$SHM/src.raw" bs=1M count="$IMG_MB" status=none
sum_src=$(sha256sum <"$SHM/src.raw" | cut -d' ' -f1)
# -n: the target exists (a LUN cannot be created); -t none: no host cache.
t_time up "qemu-img convert ${IMG_MB} MiB to $URL_IMG" \
	qemu-img convert -n -t none -f raw -O raw "$SHM/src.raw" "$URL_IMG"
t_time down "qemu-img convert $URL_IMG back to a file" \
	qemu-img convert -f raw -O raw "$URL_IMG" "$SHM/back.raw"
sum_back=$(sha256sum <"$SHM/back.raw" 2>/dev/null | cut -d' ' -f1)
if [ -n "$sum_back" ] && [ "$sum_src" = "$sum_back" ]; then
	t_pass "round trip bit-exact (sha256 $sum_src; to ${up}s, from ${down}s)"
else
	t_fail "round trip differs: sent $sum_src, got ${sum_back:-nothing}"
fi
t_check "qemu-img compare agrees" qemu-img compare -f raw -F raw "$SHM/src.raw" "$URL_IMG"
t_check_output "qemu-img info sees ${IMG_MB} MiB" "virtual size: .*\\($((IMG_MB * 1048576)) bytes\\)" \
	qemu-img info "$URL_IMG"
rm -f "$SHM/src.raw" "$SHM/back.raw"

# ---- (b) a QEMU guest on a vmengine volume ----
# Patterns: HOST (written by the host at 16 MiB before boot, read by the
# guest) and GUEST (written by the guest at 1 MiB, checked by the host).
PAT_MB=4
dd if=/dev/urandom of="$SHM/host.pat" bs=1M count=$PAT_MB status=none
dd if=/dev/urandom of="$SHM/guest.pat" bs=1M count=$PAT_MB status=none
truncate -s 64M "$SHM/guest.raw"
dd if="$SHM/host.pat" of="$SHM/guest.raw" bs=1M seek=16 conv=notrunc status=none
t_check "host writes its pattern to the guest volume" \
	qemu-img convert -n -t none -f raw -O raw "$SHM/guest.raw" "$URL_GUEST"
host_md5=$(md5sum <"$SHM/host.pat" | cut -d' ' -f1)
guest_md5=$(md5sum <"$SHM/guest.pat" | cut -d' ' -f1)

# The initramfs: busybox, the virtio modules (with their dependencies, in
# order), the guest's pattern and /init.
ROOT=$T_DIR/initramfs
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/mod"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in sh mount insmod dd cmp md5sum sleep cat echo poweroff sync ls head; do
	ln -s busybox "$ROOT/bin/$a"
done
cp "$SHM/guest.pat" "$ROOT/guest.pat"
moddeps() { # print MODULE's dependencies, then itself (paths relative to /lib/modules/KVER)
	local m line dep
	line=$(grep -E "/$1\\.ko(\\.[a-z]+)?:" "/lib/modules/$KVER/modules.dep" | head -n 1)
	[ -n "$line" ] || return 1
	for dep in $(printf '%s\n' "${line#*:}" | tr ' ' '\n' | tac); do
		m=$(basename "$dep")
		moddeps "${m%%.ko*}"
	done
	printf '%s\n' "${line%%:*}"
}
: >"$ROOT/mod/order"
for m in $( (moddeps virtio_pci && moddeps virtio_blk) | awk '!seen[$0]++'); do
	case $m in
	*.ko) cp "/lib/modules/$KVER/$m" "$ROOT/mod/" ;;
	*.ko.xz) xz -dc "/lib/modules/$KVER/$m" >"$ROOT/mod/$(basename "${m%.xz}")" ;;
	*.ko.zst) zstd -qdc "/lib/modules/$KVER/$m" >"$ROOT/mod/$(basename "${m%.zst}")" ;;
	*) continue ;;
	esac
	basename "${m%.ko*}.ko" >>"$ROOT/mod/order"
done
cat >"$ROOT/init" <<EOF
#!/bin/sh
# vmengine qemu test guest: attach the virtio disk, check, power off.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in \$(cat /mod/order); do insmod /mod/\$m; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
verdict=OK
if [ ! -b /dev/vda ]; then
	echo "VMENGINE-GUEST: no /dev/vda"
	verdict=FAIL
else
	echo "VMENGINE-GUEST: /dev/vda is \$(cat /sys/block/vda/size) sectors"
	got=\$(dd if=/dev/vda bs=1M skip=16 count=$PAT_MB iflag=direct 2>/dev/null | md5sum | cut -c1-32)
	[ "\$got" = "$host_md5" ] || { echo "VMENGINE-GUEST: host pattern read \$got"; verdict=FAIL; }
	dd if=/guest.pat of=/dev/vda bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null || verdict=FAIL
	echo 1 >/proc/sys/vm/drop_caches
	dd if=/dev/vda of=/back.pat bs=1M skip=1 count=$PAT_MB iflag=direct 2>/dev/null
	cmp /guest.pat /back.pat || { echo "VMENGINE-GUEST: read back differs"; verdict=FAIL; }
	sync
fi
echo "VMENGINE-GUEST-\$verdict"
poweroff -f
EOF
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$T_DIR/initrd.gz"
if [ -s "$T_DIR/initrd.gz" ] && [ -s "$ROOT/mod/order" ]; then
	t_pass "guest initramfs built ($(wc -l <"$ROOT/mod/order") modules, kernel $KVER)"
else
	t_fail "guest initramfs could not be built"
fi

CONSOLE=$T_DIR/console.log
start=$(date +%s)
# TCG: no KVM here. QEMU is our child, stopped by PID if it overstays.
qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 1 -m 256 \
	-display none -monitor none -serial "file:$CONSOLE" -no-reboot \
	-kernel "$KERNEL" -initrd "$T_DIR/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" \
	-iscsi "initiator-name=$INITIATOR" \
	-drive "file=$URL_GUEST,if=virtio,format=raw,cache=none" \
	>"$T_DIR/qemu.log" 2>&1 &
qpid=$!
T_PIDS="$T_PIDS $qpid"
i=0
while t_alive "$qpid" && [ "$i" -lt $((QEMU_TIMEOUT * 10)) ]; do
	sleep 0.1
	i=$((i + 1))
done
qrc=0
# Decide on the loop's own outcome: asking t_alive again can disagree with
# the check that ended the loop while the process is being reaped.
if [ "$i" -ge $((QEMU_TIMEOUT * 10)) ]; then
	t_kill_wait "$qpid" >/dev/null 2>&1 || true
	qrc=timeout
else
	t_forget_pid "$qpid"
	wait "$qpid" 2>/dev/null || qrc=$?
fi
secs=$(($(date +%s) - start))
if [ "$qrc" = 0 ]; then
	t_pass "QEMU guest ran and powered off in ${secs}s"
else
	t_fail "QEMU guest did not finish cleanly ($qrc after ${secs}s); qemu log:"
	tail -n 10 "$T_DIR/qemu.log" | sed 's/^/    | /'
fi
if grep -q 'VMENGINE-GUEST-OK' "$CONSOLE" 2>/dev/null; then
	t_pass "inside the guest: host pattern read, own pattern written and read back"
else
	t_fail "the guest did not report OK; console:"
	tail -n 15 "$CONSOLE" 2>/dev/null | sed 's/^/    | /'
fi
# From outside, after the guest is gone: the guest's writes are on the volume.
t_check "host reads the guest volume back" \
	qemu-img convert -f raw -O raw "$URL_GUEST" "$SHM/after.raw"
got=$(dd if="$SHM/after.raw" bs=1M skip=1 count=$PAT_MB status=none 2>/dev/null | md5sum | cut -d' ' -f1)
if [ "$got" = "$guest_md5" ]; then
	t_pass "outside the guest: its pattern is on the volume"
else
	t_fail "outside the guest: pattern at 1 MiB is $got, wanted $guest_md5"
fi
got=$(dd if="$SHM/after.raw" bs=1M skip=16 count=$PAT_MB status=none 2>/dev/null | md5sum | cut -d' ' -f1)
if [ "$got" = "$host_md5" ]; then
	t_pass "the host's pattern is untouched"
else
	t_fail "the host's pattern at 16 MiB changed"
fi

if vm_alive vm; then
	t_pass "engine alive after QEMU"
else
	t_fail "engine died; log: $(vm_log vm)"
fi
rc=0
vm_stop vm || rc=$?
if [ "$rc" -eq 0 ]; then
	t_pass "engine exits 0 on SIGTERM"
else
	t_fail "engine exit status $rc on SIGTERM"
fi
t_summary
