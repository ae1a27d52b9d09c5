/*
 * map_ut.c: the map model: each change's rules, determinism of the digest,
 * the protobuf form's validation, and persistence, including the clear
 * errors for a truncated or corrupt map file (never a silent empty map).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster.h"

static char dir[64];

static int apply(struct clu_map *m, Vm__ChangeOp op, const char *name, uint64_t size,
		 const char *iqn)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = op;
	c.name = (char *)name;
	c.size = size;
	c.block_size = 512;
	c.owner = 1;
	c.partner = 2;
	if (iqn)
		c.iqn = (char *)iqn;
	return clu_map_apply(m, &c);
}

#define IQN1 "iqn.2026-01.org.example:h1"
#define IQN2 "iqn.2026-01.org.example:h2"

static void test_apply_rules(void)
{
	struct clu_map m;

	clu_map_init(&m);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "b", 1 << 20, NULL), 0);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, NULL), 0);
	CU_ASSERT_EQUAL(m.version, 2);
	CU_ASSERT_STRING_EQUAL(m.vols[0].name, "a"); /* sorted */
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, NULL), -EEXIST);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "Bad", 1 << 20, NULL), -EINVAL);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "c", 1000, NULL), -EINVAL);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "c", 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_DELETE, "zz", 0, NULL), -ENOENT);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_RESIZE, "a", 512, NULL), -EINVAL);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_RESIZE, "a", 1 << 20, NULL), -EALREADY);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_RESIZE, "a", 2 << 20, NULL), 0);
	CU_ASSERT_EQUAL(clu_map_find(&m, "a")->size, 2 << 20);
	CU_ASSERT_EQUAL(m.version, 3); /* rejected changes leave the version alone */
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__ACL_ALLOW, "a", 0, "bogus"), -EINVAL);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__ACL_ALLOW, "a", 0, IQN1), 0);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__ACL_ALLOW, "a", 0, IQN1), -EALREADY);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__ACL_ALLOW, "a", 0, IQN2), 0);
	CU_ASSERT_EQUAL(clu_map_find(&m, "a")->nallow, 2);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__ACL_DENY, "a", 0, IQN1), 0);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__ACL_DENY, "a", 0, IQN2), 0);
	/* Denying the last host keeps the volume closed, not open to all. */
	CU_ASSERT_EQUAL(clu_map_find(&m, "a")->nallow, 0);
	CU_ASSERT_TRUE(clu_map_find(&m, "a")->restricted);
	Vm__MapChange c = VM__MAP_CHANGE__INIT;
	c.op = VM__CHANGE_OP__CHAP_SET;
	c.name = "a";
	c.chap_user = "u";
	c.chap_secret = "short";
	CU_ASSERT_EQUAL(clu_map_apply(&m, &c), -EINVAL);
	c.chap_secret = "a-secret-of-16by";
	CU_ASSERT_EQUAL(clu_map_apply(&m, &c), 0);
	CU_ASSERT_STRING_EQUAL(clu_map_find(&m, "a")->chap_secret, "a-secret-of-16by");
	c.op = (Vm__ChangeOp)99;
	CU_ASSERT_EQUAL(clu_map_apply(&m, &c), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(apply(&m, VM__CHANGE_OP__VOLUME_DELETE, "a", 0, NULL), 0);
	CU_ASSERT_PTR_NULL(clu_map_find(&m, "a"));
	CU_ASSERT_EQUAL(clu_map_owned(&m, 1, NULL), 1);
	clu_map_clear(&m);
}

static void test_pb_roundtrip(void)
{
	struct clu_map m, n;
	Vm__Map pb;

	clu_map_init(&m);
	clu_map_init(&n);
	apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, NULL);
	apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "b", 4 << 20, NULL);
	apply(&m, VM__CHANGE_OP__ACL_ALLOW, "b", 0, IQN1);
	CU_ASSERT_EQUAL_FATAL(clu_map_to_pb(&m, &pb), 0);
	CU_ASSERT_EQUAL(clu_map_from_pb(&n, &pb), 0);
	CU_ASSERT_EQUAL(n.version, m.version);
	CU_ASSERT_EQUAL(clu_map_digest(&n), clu_map_digest(&m));
	/* Out of order (or duplicate) names are refused, the target untouched. */
	Vm__Volume *tmp = pb.volumes[0];
	pb.volumes[0] = pb.volumes[1];
	pb.volumes[1] = tmp;
	struct clu_map before;
	clu_map_copy(&before, &n);
	CU_ASSERT_EQUAL(clu_map_from_pb(&n, &pb), -EBADMSG);
	CU_ASSERT_EQUAL(clu_map_digest(&n), clu_map_digest(&before));
	pb.volumes[1] = pb.volumes[0];
	pb.volumes[0] = tmp;
	clu_map_pb_free(&pb);
	clu_map_clear(&before);
	apply(&n, VM__CHANGE_OP__VOLUME_RESIZE, "a", 2 << 20, NULL);
	CU_ASSERT_NOT_EQUAL(clu_map_digest(&n), clu_map_digest(&m));
	clu_map_clear(&m);
	clu_map_clear(&n);
}

static void write_file(const char *name, const void *buf, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL((size_t)write(fd, buf, len), len);
	close(fd);
}

static size_t read_file(const char *name, uint8_t *buf, size_t cap)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	ssize_t n = read(fd, buf, cap);
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

static void test_persistence(void)
{
	struct clu_map m, n;
	char err[512];
	bool found;
	uint8_t good[4096];

	clu_map_init(&m);
	clu_map_init(&n);
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(found); /* first start: empty, version 0 */
	apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, NULL);
	apply(&m, VM__CHANGE_OP__VOLUME_CREATE, "b", 1 << 20, NULL);
	CU_ASSERT_EQUAL(clu_map_save(&m, dir), 0);
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(found);
	CU_ASSERT_EQUAL(n.version, 2);
	CU_ASSERT_EQUAL(clu_map_digest(&n), clu_map_digest(&m));
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s/map.pb.tmp", dir);
	CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0); /* renamed away */

	size_t len = read_file(CLU_MAP_FILE, good, sizeof(good));
	CU_ASSERT_FATAL(len > PROTO_ENV_LEN);
	/* Truncated: clear error naming the file, no silent empty map. */
	write_file(CLU_MAP_FILE, good, len - 3);
	err[0] = '\0';
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "corrupt map file"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, CLU_MAP_FILE));
	/* Shorter than the envelope. */
	write_file(CLU_MAP_FILE, good, 5);
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), -EBADMSG);
	/* Empty file. */
	write_file(CLU_MAP_FILE, good, 0);
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), -EBADMSG);
	/* One flipped bit in the payload: the CRC catches it. */
	good[len - 1] ^= 0x10;
	write_file(CLU_MAP_FILE, good, len);
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), -EBADMSG);
	good[len - 1] ^= 0x10;
	/* Not a map file at all (another envelope type). */
	good[7] = PROTO_LOAD_REPORT;
	write_file(CLU_MAP_FILE, good, len);
	CU_ASSERT_EQUAL(clu_map_load(&n, dir, &found, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a map file"));
	/* The map loaded before the failures is still the good one. */
	CU_ASSERT_EQUAL(n.version, 2);
	clu_map_clear(&m);
	clu_map_clear(&n);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/map_ut.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	util_log_init("map_ut", false, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("map", NULL, NULL);
	CU_add_test(s, "apply rules", test_apply_rules);
	CU_add_test(s, "protobuf form and digest", test_pb_roundtrip);
	CU_add_test(s, "persistence, truncated and corrupt files", test_persistence);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	util_log_fini();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		failed++;
	return failed ? 1 : 0;
}
