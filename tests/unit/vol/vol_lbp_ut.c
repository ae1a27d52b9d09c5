/*
 * vol_lbp_ut.c: vol_get_lba_status() on a real sparse file: a fresh volume
 * is one hole, written ranges are mapped, punched ranges are holes again,
 * run lengths stop at the caller's limit and at the end of the volume, and
 * bad arguments are refused. Needs a /tmp with hole support (tmpfs, ext4,
 * xfs, btrfs).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vol/vol_internal.h"

#define SIZE (1024u * 1024u)
#define BS   512u

static char dir[64], path[96];
static struct vol *v;

static void put(uint64_t off, uint64_t len)
{
	char *buf = malloc(len);

	memset(buf, 'x', len);
	CU_ASSERT_EQUAL(pwrite(v->fd_buf, buf, len, (off_t)off), (ssize_t)len);
	free(buf);
}

static void test_status(void)
{
	uint64_t len;
	bool mapped;

	CU_ASSERT_EQUAL_FATAL(vol_open_file("lbp", path, SIZE, BS, &v), 0);
	/* a fresh sparse volume: one hole to the end */
	len = SIZE;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 0, &len, &mapped), 0);
	CU_ASSERT_FALSE(mapped);
	CU_ASSERT_EQUAL(len, SIZE);
	/* data at [64K, 128K): mapped there, hole before and after */
	put(65536, 65536);
	len = SIZE;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 0, &len, &mapped), 0);
	CU_ASSERT_FALSE(mapped);
	CU_ASSERT_EQUAL(len, 65536);
	len = SIZE;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 65536 + BS, &len, &mapped), 0);
	CU_ASSERT_TRUE(mapped);
	CU_ASSERT_EQUAL(len, 65536 - BS);
	len = SIZE;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 131072, &len, &mapped), 0);
	CU_ASSERT_FALSE(mapped);
	CU_ASSERT_EQUAL(len, SIZE - 131072);
	/* the caller's limit */
	len = 4096;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 65536, &len, &mapped), 0);
	CU_ASSERT_TRUE(mapped);
	CU_ASSERT_EQUAL(len, 4096);
	/* punch [64K, 96K): a hole again */
	CU_ASSERT_EQUAL(fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 32768),
			0);
	len = SIZE;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 65536, &len, &mapped), 0);
	CU_ASSERT_FALSE(mapped);
	CU_ASSERT_EQUAL(len, 32768);
	/* bad arguments */
	len = SIZE;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, SIZE, &len, &mapped), -EINVAL);
	len = 0;
	CU_ASSERT_EQUAL(vol_get_lba_status(v, 0, &len, &mapped), -EINVAL);
	vol_close(v);
}

int main(void)
{
	CU_pSuite s;
	int failures;

	snprintf(dir, sizeof(dir), "/tmp/vol_lbp_ut.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/v.img", dir);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("vol_lbp", NULL, NULL);
	CU_add_test(s, "provisioning status", test_status);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	unlink(path);
	rmdir(dir);
	return failures ? 1 : 0;
}
