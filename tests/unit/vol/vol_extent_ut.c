/*
 * vol_extent_ut.c: volume descriptions and first-fit extent allocation:
 * legs on distinct back ends, the emptiest first, exact extent counts,
 * -ENOSPC without side effects, release and claim (rebuilding free space
 * from a map).
 */
#include <CUnit/Basic.h>
#include <errno.h>

#include "vol/vol.h"

#define MIB (1024ull * 1024ull)

static void test_space_init(void)
{
	struct vol_space sp;

	CU_ASSERT_EQUAL(vol_space_init(&sp, 10 * MIB + 5, 4 * MIB), 0);
	CU_ASSERT_EQUAL(sp.nextents, 2); /* partial extents are not usable */
	CU_ASSERT_EQUAL(sp.nfree, 2);
	vol_space_fini(&sp);
	CU_ASSERT_EQUAL(vol_space_init(&sp, 10 * MIB, 0), -EINVAL);
}

static void test_create_mirror(void)
{
	struct vol_space sp[3];
	struct vol_desc d, d2;

	CU_ASSERT_EQUAL(vol_space_init(&sp[0], 16 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_space_init(&sp[1], 32 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_space_init(&sp[2], 24 * MIB, MIB), 0);
	/* 5.5 MiB: 6 extents per leg; legs on the two emptiest disks. */
	CU_ASSERT_EQUAL(vol_desc_create(&d, "m1", 11 * MIB / 2, 512, MIB, MIB / 4, 2, sp, 3), 0);
	CU_ASSERT_EQUAL(d.nlegs, 2);
	CU_ASSERT_EQUAL(d.legs[0].nextents, 6);
	CU_ASSERT_EQUAL(d.legs[0].extents[0].backend, 1);
	CU_ASSERT_EQUAL(d.legs[1].extents[0].backend, 2);
	CU_ASSERT_EQUAL(d.legs[0].extents[5].offset, 5 * MIB);
	CU_ASSERT_EQUAL(sp[1].nfree, 26);
	CU_ASSERT_EQUAL(sp[2].nfree, 18);
	CU_ASSERT_EQUAL(sp[0].nfree, 16);

	/* Next volume: emptiest are now 1 (26) and 2 (18): first fit after
	 * the first volume's extents. */
	CU_ASSERT_EQUAL(vol_desc_create(&d2, "m2", 2 * MIB, 512, MIB, MIB, 2, sp, 3), 0);
	CU_ASSERT_EQUAL(d2.legs[0].extents[0].backend, 1);
	CU_ASSERT_EQUAL(d2.legs[0].extents[0].offset, 6 * MIB);
	CU_ASSERT_EQUAL(d2.legs[1].extents[0].backend, 2);

	/* Release the first: its extents are reused first. */
	vol_desc_release(&d, sp, 3);
	CU_ASSERT_EQUAL(sp[1].nfree, 30);
	vol_desc_free(&d);
	CU_ASSERT_EQUAL(vol_desc_create(&d, "m3", MIB, 512, MIB, MIB, 1, sp, 3), 0);
	CU_ASSERT_EQUAL(d.legs[0].extents[0].backend, 1);
	CU_ASSERT_EQUAL(d.legs[0].extents[0].offset, 0);

	vol_desc_free(&d);
	vol_desc_free(&d2);
	for (int i = 0; i < 3; i++)
		vol_space_fini(&sp[i]);
}

static void test_nospace(void)
{
	struct vol_space sp[2];
	struct vol_desc d;

	CU_ASSERT_EQUAL(vol_space_init(&sp[0], 8 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_space_init(&sp[1], 4 * MIB, MIB), 0);
	/* Two legs of 5 extents: disk 1 cannot hold one; nothing is taken. */
	CU_ASSERT_EQUAL(vol_desc_create(&d, "big", 5 * MIB, 512, MIB, MIB, 2, sp, 2), -ENOSPC);
	CU_ASSERT_EQUAL(sp[0].nfree, 8);
	CU_ASSERT_EQUAL(sp[1].nfree, 4);
	/* A mirror needs two disks even when one has room for both legs. */
	CU_ASSERT_EQUAL(vol_desc_create(&d, "two", MIB, 512, MIB, MIB, 2, sp, 1), -ENOSPC);
	CU_ASSERT_EQUAL(sp[0].nfree, 8);
	/* Bad geometry. */
	CU_ASSERT_EQUAL(vol_desc_create(&d, "g", MIB, 512, MIB, 3 * 512, 1, sp, 2), -EINVAL);
	CU_ASSERT_EQUAL(vol_desc_create(&d, "g", 1000, 512, MIB, MIB, 1, sp, 2), -EINVAL);
	CU_ASSERT_EQUAL(vol_desc_create(&d, "g", MIB, 512, MIB, MIB, 3, sp, 2), -EINVAL);
	vol_space_fini(&sp[0]);
	vol_space_fini(&sp[1]);
}

static void test_claim(void)
{
	struct vol_space sp[2], fresh[2];
	struct vol_desc d;

	CU_ASSERT_EQUAL(vol_space_init(&sp[0], 8 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_space_init(&sp[1], 8 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_desc_create(&d, "c", 3 * MIB, 512, MIB, MIB, 2, sp, 2), 0);
	/* Rebuild free space from the description alone (a map load). */
	CU_ASSERT_EQUAL(vol_space_init(&fresh[0], 8 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_space_init(&fresh[1], 8 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(vol_desc_claim(&d, fresh, 2), 0);
	CU_ASSERT_EQUAL(fresh[0].nfree, sp[0].nfree);
	CU_ASSERT_EQUAL(fresh[1].nfree, sp[1].nfree);
	CU_ASSERT_EQUAL(memcmp(fresh[0].used, sp[0].used, 1), 0);
	/* Claiming twice is a conflict (two volumes on one extent). */
	CU_ASSERT_EQUAL(vol_desc_claim(&d, fresh, 2), -EEXIST);
	/* An index beyond the table is refused, and nothing is taken. */
	vol_desc_release(&d, fresh, 2);
	CU_ASSERT_EQUAL(fresh[0].nfree, 8);
	CU_ASSERT_EQUAL(vol_desc_claim(&d, fresh, 1), -EINVAL);
	CU_ASSERT_EQUAL(fresh[0].nfree, 8);
	vol_desc_free(&d);
	for (int i = 0; i < 2; i++) {
		vol_space_fini(&sp[i]);
		vol_space_fini(&fresh[i]);
	}
}

int main(void)
{
	CU_pSuite s;
	int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("vol_extent", NULL, NULL);
	CU_add_test(s, "space init", test_space_init);
	CU_add_test(s, "mirror placement, first fit, release", test_create_mirror);
	CU_add_test(s, "no space, bad geometry", test_nospace);
	CU_add_test(s, "claim rebuilds free space", test_claim);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
