/*
 * scsi_sbc_ut.c: the SCSI device server's block commands against an
 * in-memory volume: range checks at the last block, READ(6) length 0,
 * the transfer limit, WRITE/READ round trips with FUA, VERIFY and WRITE
 * AND VERIFY compares and miscompare offsets, volume errors, PRE-FETCH,
 * SYNCHRONIZE CACHE, START STOP UNIT and READ CAPACITY.
 */
#include "scsi_fixture.h"

/* A READ/WRITE-family CDB of \p len bytes for \p lba / \p n blocks. */
static void make_cdb(uint8_t *cdb, uint8_t op, unsigned len, uint64_t lba, uint32_t n)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	switch (len) {
	case 6:
		put_be24(cdb + 1, (uint32_t)lba & 0x1fffff);
		cdb[4] = (uint8_t)n;
		break;
	case 10:
		put_be32(cdb + 2, (uint32_t)lba);
		put_be16(cdb + 7, (uint16_t)n);
		break;
	case 12:
		put_be32(cdb + 2, (uint32_t)lba);
		put_be32(cdb + 6, n);
		break;
	default:
		put_be64(cdb + 2, lba);
		put_be32(cdb + 10, n);
		break;
	}
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_lba_range_last_block(void)
{
	uint8_t cdb[16];

	/* the last block is fine, one more is out of range */
	make_cdb(cdb, SCSI_OP_READ_10, 10, FX_BLOCKS - 1, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	make_cdb(cdb, SCSI_OP_READ_10, 10, FX_BLOCKS - 1, 2);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	make_cdb(cdb, SCSI_OP_WRITE_16, 16, FX_BLOCKS, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	/* 0 blocks at the capacity moves nothing; one past it is out of range */
	make_cdb(cdb, SCSI_OP_READ_10, 10, FX_BLOCKS, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);
	make_cdb(cdb, SCSI_OP_READ_10, 10, FX_BLOCKS + 1, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	/* no wrap-around: LBA 2^64-1 + 1 block */
	make_cdb(cdb, SCSI_OP_READ_16, 16, UINT64_MAX, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	make_cdb(cdb, SCSI_OP_READ_12, 12, 0x80000000u, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_read6_zero_means_256(void)
{
	uint8_t cdb[16];

	make_cdb(cdb, SCSI_OP_READ_6, 6, 10, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.nblocks, 256);
	CU_ASSERT_EQUAL(fx_t.xfer_len, 256 * FX_BS);
	CU_ASSERT_EQUAL(fx_t.data_len, 256 * FX_BS);
	CU_ASSERT_EQUAL(fx_last_io.offset, 10 * FX_BS);
	/* 21-bit LBA */
	make_cdb(cdb, SCSI_OP_READ_6, 6, FX_BLOCKS - 256, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	make_cdb(cdb, SCSI_OP_READ_6, 6, FX_BLOCKS - 255, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_transfer_limit(void)
{
	uint8_t cdb[16];

	fx_cfg.max_xfer_blocks = 64;
	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 0, 64);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 0, 65);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, -1, 7));
	make_cdb(cdb, SCSI_OP_READ_16, 16, 0, 65);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_field(true, -1, 10));
	/* PRE-FETCH and SYNCHRONIZE CACHE move no data: no limit */
	make_cdb(cdb, SCSI_OP_PRE_FETCH_10, 10, 0, 1000);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	make_cdb(cdb, SCSI_OP_SYNCHRONIZE_CACHE_16, 16, 0, 1000);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
}

static void test_protect_fields_refused(void)
{
	uint8_t cdb[16];

	make_cdb(cdb, SCSI_OP_READ_10, 10, 0, 1);
	cdb[1] = 0x20; /* RDPROTECT 001b */
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_field(true, 5, 1));
	make_cdb(cdb, SCSI_OP_WRITE_12, 12, 0, 1);
	cdb[1] = 0xe0;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_field(true, 7, 1));
	make_cdb(cdb, SCSI_OP_VERIFY_16, 16, 0, 1);
	cdb[1] = 0x40 | 0x02;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_field(true, 6, 1));
}

static void test_write_read_round_trip(void)
{
	uint8_t cdb[16], data[3 * FX_BS];

	fill(data, sizeof(data), 3);
	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 5, 3);
	fixture_task(cdb, 16, false);
	CU_ASSERT_EQUAL_FATAL(tgt_scsi_prepare(&fx_t), 0);
	CU_ASSERT_EQUAL(fx_t.dir, TGT_DIR_OUT);
	CU_ASSERT_EQUAL(fx_t.xfer_len, sizeof(data));
	CU_ASSERT_EQUAL(fx_t.lba, 5);
	CU_ASSERT_EQUAL(fx_t.nblocks, 3);
	fx_buf = malloc(sizeof(data));
	memcpy(fx_buf, data, sizeof(data));
	fx_t.buf = fx_buf;
	tgt_scsi_execute(&fx_t);
	/* completion comes from the volume's queue, never inline */
	CU_ASSERT_EQUAL(fx_done, 0);
	CU_ASSERT_EQUAL(fx_npending, 1);
	fixture_drain();
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 0);
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 5 * FX_BS, data, sizeof(data)), 0);
	CU_ASSERT_FALSE(fx_last_io.fua); /* WCE on, no FUA */

	make_cdb(cdb, SCSI_OP_READ_16, 16, 5, 3);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.dir, TGT_DIR_IN);
	CU_ASSERT_EQUAL(fx_t.data_len, sizeof(data));
	CU_ASSERT_EQUAL(memcmp(fx_buf, data, sizeof(data)), 0);

	/* 12-byte and 6-byte forms reach the same blocks */
	make_cdb(cdb, SCSI_OP_READ_12, 12, 6, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT_EQUAL(memcmp(fx_buf, data + FX_BS, FX_BS), 0);
	make_cdb(cdb, SCSI_OP_READ_6, 6, 7, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT_EQUAL(memcmp(fx_buf, data + 2 * FX_BS, FX_BS), 0);
}

static void test_write_fua(void)
{
	uint8_t cdb[16], data[FX_BS] = {1};

	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 0, 1);
	cdb[1] = SBC_FUA | SBC_DPO;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_TRUE(fx_last_io.fua);
	/* write cache off: every write is forced */
	atomic_store(&fx_target.lu.wce, false);
	make_cdb(cdb, SCSI_OP_WRITE_6, 6, 0, 1);
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT_TRUE(fx_last_io.fua);
	atomic_store(&fx_target.lu.wce, true);
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT_FALSE(fx_last_io.fua);
}

static void test_zero_length_moves_nothing(void)
{
	uint8_t cdb[16];

	make_cdb(cdb, SCSI_OP_WRITE_16, 16, 0, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.xfer_len, 0);
	CU_ASSERT_EQUAL(fx_submits, 0);
}

static void test_volume_errors(void)
{
	uint8_t cdb[16];

	make_cdb(cdb, SCSI_OP_READ_10, 10, 0, 1);
	fx_status = -EIO;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR));
	CU_ASSERT_EQUAL(fx_t.data_len, 0);
	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 0, 1);
	fx_status = -ENOSPC;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_check(SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT));
	/* refused at submission: completed once, with the error */
	fx_status = 0;
	fx_submit_rc = -EINVAL;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	fx_submit_rc = -ENOMEM;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_BUSY);
}

/* ---- VERIFY / WRITE AND VERIFY ---- */

static void test_verify_bytchk(void)
{
	uint8_t cdb[16], data[4 * FX_BS];

	fill(data, sizeof(data), 9);
	memcpy(fx_vol.data + 100 * FX_BS, data, sizeof(data));

	/* BYTCHK 01b, same data: GOOD */
	make_cdb(cdb, SCSI_OP_VERIFY_10, 10, 100, 4);
	cdb[1] = SBC_BYTCHK_ALL << SBC_BYTCHK_SHIFT;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT_EQUAL(fx_t.dir, TGT_DIR_OUT);
	CU_ASSERT_EQUAL(fx_t.xfer_len, sizeof(data));
	CU_ASSERT(fx_good());

	/* one byte differs: MISCOMPARE, INFORMATION = its offset */
	data[1234] ^= 0x58;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_check(SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY));
	CU_ASSERT_EQUAL(fx_t.sense[0], 0xf0); /* VALID */
	CU_ASSERT_EQUAL(get_be32(fx_t.sense + 3), 1234);

	/* the same in descriptor format, through VERIFY(16) */
	atomic_store(&fx_target.lu.d_sense, true);
	make_cdb(cdb, SCSI_OP_VERIFY_16, 16, 100, 4);
	cdb[1] = SBC_BYTCHK_ALL << SBC_BYTCHK_SHIFT;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_check(SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY));
	CU_ASSERT_EQUAL(fx_t.sense[8], SENSE_DESC_INFORMATION);
	CU_ASSERT_EQUAL(get_be64(fx_t.sense + 12), 1234);
	atomic_store(&fx_target.lu.d_sense, false);

	/* BYTCHK 00b: no data-out, nothing compared */
	make_cdb(cdb, SCSI_OP_VERIFY_12, 12, 100, 4);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT_EQUAL(fx_t.dir, TGT_DIR_NONE);
	CU_ASSERT_EQUAL(fx_t.xfer_len, 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);

	/* BYTCHK 10b is reserved */
	cdb[1] = 2 << SBC_BYTCHK_SHIFT;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_field(true, 2, 1));

	/* beyond the end */
	make_cdb(cdb, SCSI_OP_VERIFY_10, 10, FX_BLOCKS - 1, 2);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_verify_one_block_against_all(void)
{
	uint8_t cdb[16], block[FX_BS];

	fill(block, sizeof(block), 1);
	for (int i = 0; i < 3; i++)
		memcpy(fx_vol.data + (200 + i) * FX_BS, block, FX_BS);
	make_cdb(cdb, SCSI_OP_VERIFY_10, 10, 200, 3);
	cdb[1] = SBC_BYTCHK_ONE << SBC_BYTCHK_SHIFT;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, block, sizeof(block), false), 0);
	CU_ASSERT_EQUAL(fx_t.xfer_len, FX_BS); /* one block of data-out */
	CU_ASSERT(fx_good());
	/* the third block differs at byte 17 */
	fx_vol.data[(202 * FX_BS) + 17] ^= 1;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, block, sizeof(block), false), 0);
	CU_ASSERT(fx_check(SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY));
	CU_ASSERT_EQUAL(get_be32(fx_t.sense + 3), 2 * FX_BS + 17);
}

static void test_verify_read_error_returns_scratch(void)
{
	uint8_t cdb[16], data[FX_BS] = {0};

	make_cdb(cdb, SCSI_OP_VERIFY_10, 10, 0, 1);
	cdb[1] = SBC_BYTCHK_ALL << SBC_BYTCHK_SHIFT;
	fx_status = -EIO;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR));
	fx_status = 0;
	fx_submit_rc = -EIO;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_CHECK_CONDITION);
	/* fixture_run_ex() asserted that no scratch buffer leaked */
}

static void test_write_and_verify(void)
{
	uint8_t cdb[16], data[2 * FX_BS];

	fill(data, sizeof(data), 77);
	make_cdb(cdb, SCSI_OP_WRITE_AND_VERIFY_10, 10, 300, 2);
	cdb[1] = SBC_BYTCHK_ALL << SBC_BYTCHK_SHIFT;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 300 * FX_BS, data, sizeof(data)), 0);
	CU_ASSERT_EQUAL(fx_submits, 2); /* the write, then the read-back */
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_READ);

	/* BYTCHK 0: the write only, forced to the medium */
	make_cdb(cdb, SCSI_OP_WRITE_AND_VERIFY_16, 16, 400, 2);
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 1);
	CU_ASSERT_TRUE(fx_last_io.fua);
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 400 * FX_BS, data, sizeof(data)), 0);

	/* BYTCHK 11b is not defined for WRITE AND VERIFY here */
	make_cdb(cdb, SCSI_OP_WRITE_AND_VERIFY_12, 12, 0, 1);
	cdb[1] = SBC_BYTCHK_ONE << SBC_BYTCHK_SHIFT;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));

	/* a failed write */
	make_cdb(cdb, SCSI_OP_WRITE_AND_VERIFY_10, 10, 0, 1);
	fx_status = -EIO;
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, FX_BS, false), 0);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_WRITE_ERROR));
}

/* ---- PRE-FETCH, SYNCHRONIZE CACHE, START STOP UNIT ---- */

static void test_prefetch(void)
{
	uint8_t cdb[16];

	make_cdb(cdb, SCSI_OP_PRE_FETCH_10, 10, FX_BLOCKS - 1, 1);
	cdb[1] = SBC_IMMED;
	cdb[6] = 3; /* GROUP NUMBER */
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good()); /* GOOD, not CONDITION MET */
	make_cdb(cdb, SCSI_OP_PRE_FETCH_16, 16, FX_BLOCKS - 1, 2);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_synchronize_cache(void)
{
	uint8_t cdb[16];

	make_cdb(cdb, SCSI_OP_SYNCHRONIZE_CACHE_10, 10, 0, 0);
	cdb[1] = SBC_IMMED | SBC_SYNC_NV;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 1);
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_FLUSH);
	fx_status = -EIO;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_WRITE_ERROR));
	fx_status = 0;
	make_cdb(cdb, SCSI_OP_SYNCHRONIZE_CACHE_16, 16, FX_BLOCKS + 1, 0);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_start_stop_unit(void)
{
	uint8_t cdb[16] = {SCSI_OP_START_STOP_UNIT, SSU_IMMED, 0, 0, SSU_LOEJ};

	/* LOEJ on a medium that is not removable */
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, 1, 4));
	cdb[4] = SSU_START;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);
	/* stop: the cache is flushed first, unless NO_FLUSH */
	cdb[4] = 0;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 1);
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_FLUSH);
	cdb[4] = SSU_NO_FLUSH;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);
	/* a power condition ignores LOEJ; a reserved one is refused */
	cdb[4] = 0x3 << SSU_PC_SHIFT | SSU_LOEJ;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	cdb[4] = 0x4 << SSU_PC_SHIFT;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_field(true, 7, 4));
}

/* ---- READ CAPACITY ---- */

static void test_read_capacity(void)
{
	uint8_t rc10[16] = {SCSI_OP_READ_CAPACITY_10};
	uint8_t rc16[16] = {SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16};

	CU_ASSERT_EQUAL(fixture_run(rc10, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 8);
	CU_ASSERT_EQUAL(get_be32(fx_buf), FX_BLOCKS - 1);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 4), FX_BS);
	/* LBA without PMI */
	rc10[5] = 1;
	CU_ASSERT_EQUAL(fixture_run(rc10, 16), 1);
	CU_ASSERT(fx_field(true, -1, 2));
	rc10[5] = 0;

	put_be32(rc16 + 10, 32);
	CU_ASSERT_EQUAL(fixture_run(rc16, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 32);
	CU_ASSERT_EQUAL(get_be64(fx_buf), FX_BLOCKS - 1);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 8), FX_BS);
	CU_ASSERT_EQUAL(fx_buf[12], 0);	   /* no protection */
	CU_ASSERT_EQUAL(fx_buf[13], 0);	   /* LBPPBE 0 */
	CU_ASSERT_EQUAL(fx_buf[14], 0xc0); /* LBPME and LBPRZ: thin, unmapped reads zeros */
	/* allocation lengths 0..15 are no error, the data is truncated */
	for (uint32_t len = 0; len < 16; len++) {
		put_be32(rc16 + 10, len);
		CU_ASSERT_EQUAL(fixture_run(rc16, 16), 0);
		CU_ASSERT(fx_good());
		CU_ASSERT_EQUAL(fx_t.data_len, len);
	}

	/* more blocks than 32 bits hold: READ CAPACITY(10) says FFFFFFFFh */
	fx_vol.size = (1ull << 33) * FX_BS;
	CU_ASSERT_EQUAL(fixture_run(rc10, 16), 0);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 0xffffffffu);
	put_be32(rc16 + 10, 32);
	CU_ASSERT_EQUAL(fixture_run(rc16, 16), 0);
	CU_ASSERT_EQUAL(get_be64(fx_buf), (1ull << 33) - 1);
	/* exactly 2^32 blocks: the last LBA FFFFFFFFh does not fit either */
	fx_vol.size = (1ull << 32) * FX_BS;
	CU_ASSERT_EQUAL(fixture_run(rc10, 16), 0);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 0xffffffffu);
	fx_vol.size = (uint64_t)FX_BLOCKS * FX_BS;
}

static void test_4k_volume(void)
{
	uint8_t cdb[16], data[4096];

	fx_vol.bs = 4096;
	fx_vol.size = (uint64_t)FX_BLOCKS * FX_BS; /* 256 blocks of 4 KiB */
	fill(data, sizeof(data), 5);
	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 255, 1);
	CU_ASSERT_EQUAL(fixture_run_ex(cdb, 16, data, sizeof(data), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.offset, 255ull * 4096);
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 255 * 4096, data, sizeof(data)), 0);
	make_cdb(cdb, SCSI_OP_WRITE_10, 10, 256, 1);
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"LBA range at the last block", test_lba_range_last_block},
	    {"READ(6) length 0 is 256", test_read6_zero_means_256},
	    {"transfer limit", test_transfer_limit},
	    {"protection fields refused", test_protect_fields_refused},
	    {"WRITE then READ round trip", test_write_read_round_trip},
	    {"WRITE FUA and WCE", test_write_fua},
	    {"zero length moves nothing", test_zero_length_moves_nothing},
	    {"volume errors", test_volume_errors},
	    {"VERIFY BYTCHK", test_verify_bytchk},
	    {"VERIFY one block against all", test_verify_one_block_against_all},
	    {"VERIFY read error", test_verify_read_error_returns_scratch},
	    {"WRITE AND VERIFY", test_write_and_verify},
	    {"PRE-FETCH", test_prefetch},
	    {"SYNCHRONIZE CACHE", test_synchronize_cache},
	    {"START STOP UNIT", test_start_stop_unit},
	    {"READ CAPACITY", test_read_capacity},
	    {"4 KiB blocks", test_4k_volume},
	};
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite_with_setup_and_teardown("scsi_sbc", fixture_init, fixture_fini,
						 fixture_reset, NULL);
	if (s == NULL)
		return 1;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tests); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
