#!/bin/bash
# tests/cluster/run.sh BUILD: the three-node lab, end to end (issue 4, "Done when"
# 1, 2 and 4):
#   - a volume created on node 1 is listed by nodes 2 and 3 at the same map version;
#   - discovery through any engine lists it at the owner's portal, a login that
#     reaches another engine is redirected to the owner, writes through it land on
#     the owner and read back intact (vmio verify);
#   - node 3 killed, changes on the survivors, node 3 restarted: it adopts the map
#     before it serves;
#   - all three stopped and started again: the map is intact;
#   - node 1 partitioned away: no quorum, changes refused; the others go on; heal;
#   - bad input: vmctl arguments (exit 2), errors (exit 1, one line), a truncated and
#     a corrupt map file (the engine refuses to start), unknown / oversized /
#     corrupt CPG messages (dropped and counted, the cluster goes on).
# Prints one line per check and "cluster: N passed, N failed". Every wait is
# bounded and the whole run is capped (RUN_LIMIT seconds, default 540); the lab
# is torn down on any exit, its logs printed when a check failed.
set -u

BUILD=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB="$ROOT/deploy/lab"
export LAB_DIR
LAB_DIR=$(mktemp -d /tmp/vmlab.XXXXXX)
export LAB_BUILD=$BUILD
RUN_LIMIT=${RUN_LIMIT:-540}
IQN=iqn.2026-11.org.vmengine
PASS=0
FAIL=0
WATCHDOG=""

. "$(dirname "$0")/lib.sh"
trap lab_cleanup EXIT
trap 'echo "cluster: interrupted or over the time limit"; exit 1' INT TERM

if [ "$(id -u)" -ne 0 ] || ! command -v corosync >/dev/null; then
	echo "cluster: skipped (needs root and corosync)"
	echo "cluster: 0 passed, 0 failed"
	exit 0
fi
lab_watchdog
version_of() {
	vmctl "$1" --json cluster status 2>/dev/null | grep -o '"version":[0-9]*' | head -1 | cut -d: -f2
}
no_quorum() {
	vmctl "$1" --json cluster status 2>/dev/null | grep -q '"quorate":false'
}
same_map() { # same_map A B: identical JSON volume lists (version included)
	local a b
	a=$(vmctl "$1" --json volume list) || return 1
	b=$(vmctl "$2" --json volume list) || return 1
	[ "$a" = "$b" ]
}
has_volume() {
	vmctl "$1" --json volume list | grep -q "\"name\":\"$2\""
}
engine_dead() {
	! kill -0 "$(cat "$LAB_DIR/n$1/engine.pid" 2>/dev/null || echo 0)" 2>/dev/null
}
# expect_exit CODE DESC CMD...: CMD exits with CODE and prints one line on stderr.
expect_exit() {
	local code=$1 desc=$2 rc err
	shift 2
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq "$code" ] && [ -n "$err" ]; then
		ok "$desc (exit $rc: $(echo "$err" | head -1))"
	else
		ko "$desc: exit $rc, stderr '$err'"
	fi
}

# ---- 1. up, create on n1, listed on n2 and n3 at the same version ----
if ! timeout 60 "$LAB" up 3 >/dev/null; then
	ko "lab up"
	echo "cluster: $PASS passed, $FAIL failed"
	exit 1
fi
ok "lab up (3 namespaces, 3 Corosyncs, 3 engines)"
for n in 1 2 3; do
	wait_for "n$n quorate and in sync with 3 members" 30 synced n$n 3
done
check "create vol-a on n1" vmctl n1 volume create vol-a 64M
check "create vol-b on n2 (placed on the least loaded)" vmctl n2 volume create vol-b 32M
check "n2 lists vol-a" has_volume n2 vol-a
check "n3 lists vol-a" has_volume n3 vol-a
check "n1, n2 and n3 report the same map version" \
	sh -c "[ '$(version_of n1)' = '$(version_of n2)' ] && [ '$(version_of n2)' = '$(version_of n3)' ] && [ '$(version_of n1)' = 2 ]"
check "n1 and n3 have the same map" same_map n1 n3

# ---- 2. discovery through any engine, redirect to the owner, write on the owner ----
owner=$(vmctl n1 --json volume show vol-a | grep -o '"owner":[0-9]*' | cut -d: -f2)
other=$((owner % 3 + 1))
for n in 1 2 3; do
	check "discovery via n$n lists vol-a at its owner's portal 10.77.0.$owner" \
		sh -c "'$LAB' exec host iscsi-ls iscsi://10.77.0.$n | grep -q 'vol-a Portal:10.77.0.$owner:3260'"
done
check "a login to vol-a on non-owner n$other is redirected and answers INQUIRY" \
	on host iscsi-inq "iscsi://10.77.0.$other/$IQN:vol-a/0"
check "n$other logged the redirect" grep -q "vol-a is served at 10.77.0.$owner:3260: redirecting" \
	"$LAB_DIR/n$other/engine.log"
check "WRITE(10) through n$other (redirected to the owner)" \
	on host iscsi-test-cu --dataloss -t ALL.Write10.Simple "iscsi://10.77.0.$other/$IQN:vol-a/0"
check "the written data is in the owner's pool file" \
	sh -c "od -An -tx1 -N512 '$LAB_DIR/n$owner/pool/vol-a.vol' | grep -qv '^ *\(00 \)*00$'"
check "READ CAPACITY(16) through n$other gives the owner's 64 MiB volume" sh -c \
	"'$LAB' exec host iscsi-readcapacity16 iscsi://10.77.0.$other/$IQN:vol-a/0 | grep -q 'BLOCK ADDRESS:131071$'"
if [ -x "$BUILD/vmio" ]; then
	# vmio (our initiator) writes a journal of checksummed units and reads them back.
	check "vmio through n$other (redirected): writes read back intact from the owner" \
		on host vmio verify "iscsi://10.77.0.$other/$IQN:vol-a/0" --writes 200 --size 8M
else
	ko "no $BUILD/vmio for the write/read-back check"
fi
check "the non-owner's stub holds no data" \
	sh -c "[ \$(du -k '$LAB_DIR/n$other/state/stub/vol-a.vol' | cut -f1) -eq 0 ]"

# ---- 3. kill n3, change on the survivors, restart n3: catches up before serving ----
"$LAB" kill n3
wait_for "n1 sees 2 members after n3's crash" 20 synced n1 2
check "create vol-c on n1 without n3" vmctl n1 volume create vol-c 16M
check "create vol-d on n2 without n3" vmctl n2 volume create vol-d 16M
check "delete vol-c on n2 without n3" vmctl n2 volume delete vol-c
check "allow a host on vol-d" vmctl n1 host allow vol-d iqn.2026-01.org.example:h1
v_before=$(version_of n1)
"$LAB" start n3
wait_for "n3 back, in sync with 3 members" 30 synced n3 3
check "n3 caught up: same map as n1 (v$v_before)" same_map n1 n3
check "n3 has vol-d and no vol-c" sh -c "vmctl() { '$LAB' exec n3 vmctl \"\$@\"; }; \
	vmctl --json volume list | grep -q '\"vol-d\"' && ! vmctl --json volume list | grep -q '\"vol-c\"'"
check "n3 adopted the map before serving" sh -c "
	log='$LAB_DIR/n3/engine.log'
	a=\$(grep -n 'adopted the map' \"\$log\" | tail -1 | cut -d: -f1)
	s=\$(grep -n \"serving the map's volumes\" \"\$log\" | tail -1 | cut -d: -f1)
	[ -n \"\$a\" ] && [ -n \"\$s\" ] && [ \"\$a\" -lt \"\$s\" ]"

# ---- 4. stop all, start all: the map is intact ----
map_before=$(vmctl n1 --json volume list)
for n in 1 2 3; do "$LAB" stop n$n; done
for n in 1 2 3; do "$LAB" start n$n; done
for n in 1 2 3; do
	wait_for "n$n in sync after the whole-cluster restart" 40 synced n$n 3
done
check "the map survived the restart (n1)" sh -c "[ '$(vmctl n1 --json volume list)' = '$map_before' ]"
check "n2 and n3 agree" same_map n2 n3

# ---- 5. partition n1: no quorum, changes refused; the others go on; heal ----
"$LAB" partition n1
wait_for "n1 reports no quorum" 20 no_quorum n1
expect_exit 1 "n1 refuses a change without quorum" vmctl n1 volume create vol-e 16M
check "n1's refusal says why" sh -c "'$LAB' exec n1 vmctl volume create vol-e 16M 2>&1 | grep -q 'no quorum'"
wait_for "n2 and n3 go on with 2 members" 20 synced n2 2
check "create vol-f on n2 during the partition" vmctl n2 volume create vol-f 16M
"$LAB" heal
wait_for "n1 back in sync with 3 members" 30 synced n1 3
check "n1 has vol-f after healing" has_volume n1 vol-f
check "n1 and n2 have the same map after healing" same_map n1 n2

# ---- 6. bad input ----
expect_exit 2 "vmctl without arguments" vmctl n1
expect_exit 2 "vmctl volume create without a size" vmctl n1 volume create x
expect_exit 2 "vmctl volume create with a bad size" vmctl n1 volume create x lots
expect_exit 2 "vmctl unknown command" vmctl n1 volume frobnicate x
expect_exit 2 "vmctl unknown option" vmctl n1 volume list --bogus
expect_exit 1 "unknown volume" vmctl n1 volume show nosuch
expect_exit 1 "name taken" vmctl n2 volume create vol-a 16M
expect_exit 1 "size not a multiple of the block size" vmctl n1 volume create x 1000
expect_exit 1 "bad volume name" vmctl n1 volume create Bad_Name 16M
expect_exit 1 "unknown owner" vmctl n1 volume create x 16M --owner n9
expect_exit 1 "resize to a smaller size" vmctl n1 volume resize vol-a 1M
expect_exit 1 "host allow with a bad IQN" vmctl n1 host allow vol-a not-an-iqn
check "--owner places a volume on the named node" sh -c \
	"'$LAB' exec n1 vmctl --json volume create vol-g 16M --owner n3 | grep -q '\"owner\":3'"

# Unknown, oversized and corrupt CPG messages: dropped and counted on every node.
check "inject an unknown message type" vmctl n1 debug bad-message unknown
check "inject an oversized message" vmctl n1 debug bad-message oversized
check "inject a corrupt message" vmctl n1 debug bad-message corrupt
for n in 2 3; do
	wait_for "n$n dropped and counted all three" 10 sh -c \
		"'$LAB' exec n$n vmctl --json cluster status | grep -q '\"dropped\":3,\"dropped_unknown\":1,\"dropped_oversized\":1,\"dropped_malformed\":1'"
done
check "the cluster still applies changes" vmctl n3 volume delete vol-g

# A truncated, then a corrupt map file: the engine refuses to start, never an empty map.
"$LAB" stop n2
map="$LAB_DIR/n2/state/map.pb"
cp "$map" "$map.good"
size=$(stat -c %s "$map")
head -c $((size - 7)) "$map.good" >"$map"
"$LAB" start n2
wait_for "n2 refuses to start on a truncated map" 10 engine_dead 2
check "n2 said why (truncated)" grep -q "corrupt map file" "$LAB_DIR/n2/engine.log"
cp "$map.good" "$map"
printf 'garbage' | dd of="$map" bs=1 seek=20 conv=notrunc 2>/dev/null
"$LAB" start n2
wait_for "n2 refuses to start on a corrupt map" 10 engine_dead 2
check "the corrupt map file was left for the operator" test -s "$map"
cp "$map.good" "$map"
"$LAB" start n2
wait_for "n2 starts on the restored map and rejoins" 30 synced n2 3
check "n2's map equals n1's" same_map n1 n2

# ---- 7. down removes everything ----
tag=vl$(printf '%s' "$LAB_DIR" | cksum | cut -c1-5)
pids=$(cat "$LAB_DIR"/n*/*.pid 2>/dev/null | tr '\n' ' ')
"$LAB" down >/dev/null 2>&1
check "lab down removed its namespaces" sh -c "! ip netns list | grep -q '^$tag-'"
check "lab down stopped its processes" sh -c "for p in $pids; do ! kill -0 \$p 2>/dev/null || exit 1; done"

echo "cluster: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
