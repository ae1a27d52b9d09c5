/*
 * scsi_lbp_ut.c: thin provisioning against the in-memory volume: UNMAP
 * parameter checks and deallocation (zeros afterwards), WRITE SAME with and
 * without UNMAP, 0 blocks to the end, the data-out length check, GET LBA
 * STATUS extents, and what READ CAPACITY(16) and the VPD pages report.
 */
#include "scsi_fixture_ext.h"

static void fill(uint64_t lba, uint32_t n, uint8_t v)
{
	memset(fx_vol.data + lba * FX_BS, v, (size_t)n * FX_BS);
}

static bool is(uint64_t lba, uint32_t n, uint8_t v)
{
	for (size_t i = 0; i < (size_t)n * FX_BS; i++)
		if (fx_vol.data[lba * FX_BS + i] != v)
			return false;
	return true;
}

static uint32_t unmap_list(uint8_t *p, const uint64_t *lba, const uint32_t *n, unsigned k)
{
	memset(p, 0, 8 + 16 * k);
	put_be16(p, (uint16_t)(6 + 16 * k));
	put_be16(p + 2, (uint16_t)(16 * k));
	for (unsigned i = 0; i < k; i++) {
		put_be64(p + 8 + 16 * i, lba[i]);
		put_be32(p + 16 + 16 * i, n[i]);
	}
	return 8 + 16 * k;
}

static void unmap_cdb(uint8_t *cdb, uint32_t len)
{
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_UNMAP;
	put_be16(cdb + 7, (uint16_t)len);
}

static void test_unmap(void)
{
	uint8_t cdb[16], p[8 + 16 * 3];
	uint64_t lba[3] = {0, 10, 100};
	uint32_t n[3] = {4, 0, 8};
	uint32_t len;

	fx_reset_ext();
	fill(0, 200, 'a');
	len = unmap_list(p, lba, n, 3);
	unmap_cdb(cdb, len);
	CU_ASSERT_EQUAL(fx_run(cdb, p, len, len), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT(is(0, 4, 0));
	CU_ASSERT(is(4, 96, 'a'));
	CU_ASSERT(is(100, 8, 0));
	CU_ASSERT(is(108, 10, 'a'));
	CU_ASSERT(fx_hole[0] && fx_hole[103] && !fx_hole[4]);
	CU_ASSERT_EQUAL(fx_submits, 2); /* the empty descriptor costs nothing */

	/* a descriptor beyond the end: nothing is deallocated */
	fill(0, 8, 'b');
	lba[2] = FX_BLOCKS - 2;
	n[2] = 3;
	len = unmap_list(p, lba, n, 3);
	CU_ASSERT_EQUAL(fx_run(cdb, p, len, len), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	CU_ASSERT(is(0, 8, 'b'));

	/* parameter list too short for the header; zero length is fine */
	unmap_cdb(cdb, 4);
	CU_ASSERT_EQUAL(fx_run(cdb, p, 4, 4), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	unmap_cdb(cdb, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	/* ANCHOR is not supported */
	unmap_cdb(cdb, 0);
	cdb[1] = 0x01;
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
}

static void ws_cdb(uint8_t *cdb, bool sixteen, uint64_t lba, uint32_t n, uint8_t flags)
{
	memset(cdb, 0, 16);
	cdb[0] = sixteen ? SCSI_OP_WRITE_SAME_16 : SCSI_OP_WRITE_SAME_10;
	cdb[1] = flags;
	if (sixteen) {
		put_be64(cdb + 2, lba);
		put_be32(cdb + 10, n);
	} else {
		put_be32(cdb + 2, (uint32_t)lba);
		put_be16(cdb + 7, (uint16_t)n);
	}
}

static void test_write_same(void)
{
	uint8_t cdb[16], blk[FX_BS];

	fx_reset_ext();
	fx_cfg.max_xfer_blocks = 4096;
	/* a pattern over more than one 1 MiB chunk would need > 2048 blocks: use all */
	for (unsigned i = 0; i < FX_BS; i++)
		blk[i] = (uint8_t)(i * 3 + 1);
	ws_cdb(cdb, true, 5, 300, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 5 * FX_BS, blk, FX_BS), 0);
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 304 * FX_BS, blk, FX_BS), 0);
	CU_ASSERT(is(305, 1, 0));

	/* zeros: WRITE ZEROES, one request */
	memset(blk, 0, FX_BS);
	ws_cdb(cdb, false, 5, 10, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_WRITE_ZEROES);
	CU_ASSERT(is(5, 10, 0));

	/* UNMAP bit: deallocated whatever the data */
	memset(blk, 0xff, FX_BS);
	ws_cdb(cdb, false, 100, 8, WS_UNMAP);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_UNMAP);
	CU_ASSERT(fx_hole[100] && fx_hole[107] && !fx_hole[108]);

	/* 0 blocks: to the end (WSNZ 0), within the maximum */
	ws_cdb(cdb, true, FX_BLOCKS - 16, 0, WS_UNMAP);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.len, 16 * FX_BS);
	/* 0 blocks from LBA 0: more than MAXIMUM WRITE SAME LENGTH */
	fx_cfg.max_xfer_blocks = 1024;
	ws_cdb(cdb, true, 0, 0, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	/* beyond the end, ANCHOR, and a data-out that is not one block */
	ws_cdb(cdb, false, FX_BLOCKS + 1, 0, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	ws_cdb(cdb, false, 0, 1, WS_ANCHOR | WS_UNMAP);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	ws_cdb(cdb, false, 0, 1, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, FX_BS / 2), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT_EQUAL(fx_run(cdb, blk, FX_BS, 2 * FX_BS), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
}

static void gls_cdb(uint8_t *cdb, uint64_t lba, uint32_t alloc)
{
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_SERVICE_ACTION_IN_16;
	cdb[1] = SCSI_SAI_GET_LBA_STATUS;
	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, alloc);
}

static void test_get_lba_status(void)
{
	uint8_t cdb[16];

	fx_reset_ext();
	for (unsigned b = 16; b < 32; b++)
		fx_hole[b] = true;
	gls_cdb(cdb, 10, 8 + 3 * 16);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 8 + 3 * 16);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 4 + 3 * 16);
	/* first descriptor starts at the requested LBA (SBC-4 5.8.2.3) */
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), 10);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 16), 6);
	CU_ASSERT_EQUAL(fx_buf[20], LBP_STATUS_MAPPED);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 24), 16);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 32), 16);
	CU_ASSERT_EQUAL(fx_buf[36], LBP_STATUS_DEALLOCATED);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 40), 32);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 48), FX_BLOCKS - 32);
	/* the last block is fine, the capacity is out of range */
	gls_cdb(cdb, FX_BLOCKS - 1, 24);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	gls_cdb(cdb, FX_BLOCKS, 24);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_reports(void)
{
	uint8_t cdb[16];

	fx_reset_ext();
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_SERVICE_ACTION_IN_16;
	cdb[1] = SCSI_SAI_READ_CAPACITY_16;
	put_be32(cdb + 10, 32);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(fx_buf[14] & (RC16_LBPME | RC16_LBPRZ), RC16_LBPME | RC16_LBPRZ);

	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_INQUIRY;
	cdb[1] = INQ_CDB_EVPD;
	cdb[2] = VPD_LB_PROVISIONING;
	cdb[4] = 64;
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(fx_buf[5], VPD_B2_LBPU | VPD_B2_LBPWS | VPD_B2_LBPWS10 | VPD_B2_LBPRZ);
	CU_ASSERT_EQUAL(fx_buf[6] & 0x07, VPD_B2_PROV_THIN);

	cdb[2] = VPD_BLOCK_LIMITS;
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(fx_buf[4] & VPD_B0_WSNZ, 0);
	CU_ASSERT_EQUAL(fx_buf[5], 255);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 24), LBP_MAX_UNMAP_DESC);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 28), 4096 / FX_BS);
	CU_ASSERT(fx_buf[32] & VPD_B0_UGAVALID);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 36), fx_cfg.max_xfer_blocks);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 44), fx_cfg.max_xfer_blocks);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("scsi_lbp", fixture_init, fixture_fini);
	CU_add_test(s, "UNMAP", test_unmap);
	CU_add_test(s, "WRITE SAME", test_write_same);
	CU_add_test(s, "GET LBA STATUS", test_get_lba_status);
	CU_add_test(s, "READ CAPACITY(16) and VPD", test_reports);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
