/*
 * scsi_media_ut.c: SANITIZE OVERWRITE (pattern per block, passes, INVERT,
 * parameter checks), BLOCK ERASE (every block deallocated and zero),
 * EXIT FAILURE MODE, CRYPTO ERASE refused, NOT READY while a sanitize
 * runs, and READ DEFECT DATA(10/12) empty lists.
 */
#include "scsi_fixture_ext.h"

static void san_cdb(uint8_t *cdb, uint8_t sa, uint16_t len)
{
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_SANITIZE;
	cdb[1] = sa;
	put_be16(cdb + 7, len);
}

static void test_overwrite(void)
{
	uint8_t cdb[16], p[4 + 3];

	fx_reset_ext();
	memset(fx_vol.data, 'a', (size_t)FX_BLOCKS * FX_BS);
	p[0] = 2 | SANITIZE_OW_INVERT; /* two passes, inverted between */
	p[1] = 0;
	put_be16(p + 2, 3);
	p[4] = 0x01;
	p[5] = 0x02;
	p[6] = 0x03;
	san_cdb(cdb, SANITIZE_SA_OVERWRITE, sizeof(p));
	CU_ASSERT_EQUAL(fx_run(cdb, p, sizeof(p), sizeof(p)), 0);
	CU_ASSERT(fx_good());
	/* the pattern restarts at each block; the last pass is the inverted one */
	CU_ASSERT_EQUAL(fx_vol.data[0], 0xfe);
	CU_ASSERT_EQUAL(fx_vol.data[3], 0xfe);
	CU_ASSERT_EQUAL(fx_vol.data[FX_BS - 1], (uint8_t)~p[4 + (FX_BS - 1) % 3]);
	CU_ASSERT_EQUAL(fx_vol.data[FX_BS], 0xfe);
	CU_ASSERT_EQUAL(fx_vol.data[(size_t)FX_BLOCKS * FX_BS - FX_BS + 1], 0xfd);
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.sanitizing));

	/* OVERWRITE COUNT 0, pattern length 0 or too long: parameter list errors */
	p[0] = 0;
	CU_ASSERT_EQUAL(fx_run(cdb, p, sizeof(p), sizeof(p)), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	p[0] = 1;
	put_be16(p + 2, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, p, sizeof(p), sizeof(p)), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	put_be16(p + 2, 4);
	CU_ASSERT_EQUAL(fx_run(cdb, p, sizeof(p), sizeof(p)), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	/* PARAMETER LIST LENGTH must be 5 .. block length + 4 */
	san_cdb(cdb, SANITIZE_SA_OVERWRITE, 4);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 4), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	san_cdb(cdb, SANITIZE_SA_OVERWRITE, FX_BS + 5);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, FX_BS + 5), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
}

static void test_block_erase_and_others(void)
{
	uint8_t cdb[16];

	fx_reset_ext();
	memset(fx_vol.data, 'a', (size_t)FX_BLOCKS * FX_BS);
	san_cdb(cdb, SANITIZE_SA_BLOCK_ERASE, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_UNMAP);
	CU_ASSERT_EQUAL(fx_last_io.len, (uint64_t)FX_BLOCKS * FX_BS);
	CU_ASSERT(fx_vol.data[0] == 0 && fx_vol.data[(size_t)FX_BLOCKS * FX_BS - 1] == 0);
	CU_ASSERT(fx_hole[0] && fx_hole[FX_BLOCKS - 1]);
	/* a parameter list is refused; so are IMMED, CRYPTO ERASE and other actions */
	san_cdb(cdb, SANITIZE_SA_BLOCK_ERASE, 8);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 8), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	san_cdb(cdb, SANITIZE_SA_BLOCK_ERASE | SANITIZE_IMMED, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	san_cdb(cdb, SANITIZE_SA_CRYPTO_ERASE, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	san_cdb(cdb, SANITIZE_SA_EXIT_FAILURE, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());

	/* while a sanitize runs: NOT READY, but INQUIRY still answers */
	atomic_store(&fx_target.lu.sanitizing, true);
	memset(cdb, 0, 16);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1); /* TEST UNIT READY */
	CU_ASSERT(fx_check(SK_NOT_READY, ASC_LU_NOT_READY_SANITIZE));
	cdb[0] = SCSI_OP_INQUIRY;
	cdb[4] = 96;
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	atomic_store(&fx_target.lu.sanitizing, false);
}

static void test_read_defect_data(void)
{
	uint8_t cdb[16];

	fx_reset_ext();
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_READ_DEFECT_DATA_10;
	cdb[2] = RDD_PLIST | RDD_GLIST | 0x5;
	put_be16(cdb + 7, 64);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 4);
	CU_ASSERT_EQUAL(fx_buf[1], RDD_PLIST | RDD_GLIST | 0x5);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 2), 0);

	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_READ_DEFECT_DATA_12;
	cdb[1] = RDD_GLIST;
	put_be32(cdb + 6, 64);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(fx_t.data_len, 8);
	CU_ASSERT_EQUAL(fx_buf[1], RDD_GLIST);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 4), 0);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("scsi_media", fixture_init, fixture_fini);
	CU_add_test(s, "SANITIZE OVERWRITE", test_overwrite);
	CU_add_test(s, "SANITIZE BLOCK ERASE, others, NOT READY", test_block_erase_and_others);
	CU_add_test(s, "READ DEFECT DATA", test_read_defect_data);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
