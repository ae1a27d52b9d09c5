/*
 * scsi_media_ut.c: SANITIZE OVERWRITE (pattern per block, passes, INVERT,
 * parameter checks), BLOCK ERASE (every block deallocated and zero),
 * EXIT FAILURE MODE, CRYPTO ERASE (a deallocation too), NOT READY while a sanitize
 * runs, the background job (IMMED, progress indication in sense data and
 * REQUEST SENSE, an aborted command leaves the sanitize running, a second
 * SANITIZE refused), and READ DEFECT DATA(10/12) empty lists.
 */
#include "scsi_fixture_ext.h"

/*
 * ---- stubs: the engine services a sanitize job uses (struct tgt_scsi_ops):
 * the reactor's ticks, the target references, the service's work count ----
 */

static util_msg_fn fx_tick_fn;
static void *fx_tick_arg;
static int fx_ticks; /* live ticks */
static int fx_refs;  /* target references held */

static struct util_tick *md_tick_add(struct util_reactor *r, util_msg_fn fn, void *arg)
{
	CU_ASSERT_PTR_EQUAL(r, &fx_reactor_dummy);
	fx_tick_fn = fn;
	fx_tick_arg = arg;
	fx_ticks++;
	return (struct util_tick *)&fx_tick_fn;
}

static void md_tick_del(struct util_reactor *r, struct util_tick *t)
{
	(void)r;
	CU_ASSERT_PTR_EQUAL(t, (struct util_tick *)&fx_tick_fn);
	fx_tick_fn = NULL;
	fx_ticks--;
}

static void md_target_get(struct tgt_target *tg)
{
	CU_ASSERT_PTR_EQUAL(tg, &fx_target);
	fx_refs++;
}

static void md_target_put(struct tgt_target *tg)
{
	CU_ASSERT_PTR_EQUAL(tg, &fx_target);
	fx_refs--;
}

static void md_conn_gone(struct tgt *t)
{
	atomic_fetch_sub(&t->nconns, 1);
}

static const struct tgt_scsi_ops md_ops = {
    .tick_add = md_tick_add,
    .tick_del = md_tick_del,
    .target_get = md_target_get,
    .target_put = md_target_put,
    .conn_gone = md_conn_gone,
};
static struct tgt md_engine;
static struct tgt_conn md_conn = {.tgt = &md_engine, .peer = "127.0.0.1:1"};

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
	/* a parameter list is refused; so are reserved bits */
	san_cdb(cdb, SANITIZE_SA_BLOCK_ERASE, 8);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 8), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	cdb[1] = SANITIZE_SA_BLOCK_ERASE | 0x40; /* reserved bit */
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	/* CRYPTO ERASE: no key to change; every block deallocated, like BLOCK ERASE */
	memset(fx_vol.data, 'b', (size_t)FX_BLOCKS * FX_BS);
	memset(fx_hole, 0, sizeof(fx_hole));
	san_cdb(cdb, SANITIZE_SA_CRYPTO_ERASE, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_UNMAP);
	CU_ASSERT(fx_vol.data[0] == 0 && fx_hole[0] && fx_hole[FX_BLOCKS - 1]);
	san_cdb(cdb, SANITIZE_SA_CRYPTO_ERASE, 8);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 8), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	san_cdb(cdb, 0x04, 0); /* an undefined service action */
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

static bool fx_all_zero_holes(void)
{
	for (size_t i = 0; i < (size_t)FX_BLOCKS * FX_BS; i++)
		if (fx_vol.data[i] != 0)
			return false;
	for (unsigned b = 0; b < FX_BLOCKS; b++)
		if (!fx_hole[b])
			return false;
	return true;
}

static void fu_cdb(uint8_t *cdb, uint8_t b1)
{
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_FORMAT_UNIT;
	cdb[1] = b1;
}

/* FORMAT UNIT (SBC-3 5.3): a blank, deallocated medium; options this LU cannot honour refused. */
static void test_format_unit(void)
{
	uint8_t cdb[16], tur[16] = {0};
	uint8_t hdr[8] = {0};

	fx_reset_ext();
	/* FMTDATA 0: the defaults; every block deallocated and read back as zeros */
	memset(fx_vol.data, 'a', (size_t)FX_BLOCKS * FX_BS);
	fu_cdb(cdb, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_last_io.op, VOL_OP_UNMAP);
	CU_ASSERT_EQUAL(fx_last_io.len, (uint64_t)FX_BLOCKS * FX_BS);
	CU_ASSERT(fx_all_zero_holes());
	/* FMTDATA 1, short and long header, FOV with the (moot) defect options */
	memset(fx_vol.data, 'b', (size_t)FX_BLOCKS * FX_BS);
	memset(fx_hole, 0, sizeof(fx_hole));
	fu_cdb(cdb, FU_FMTDATA);
	CU_ASSERT_EQUAL(fx_run(cdb, hdr, 4, 4), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT(fx_all_zero_holes());
	fu_cdb(cdb, FU_FMTDATA | FU_LONGLIST);
	hdr[1] = FU_FOV | FU_DCRT | FU_DPRY;
	CU_ASSERT_EQUAL(fx_run(cdb, hdr, 8, 8), 0);
	CU_ASSERT(fx_good());

	/* refused: protection information, defect lists, patterns, options without FOV */
	fu_cdb(cdb, 0x40); /* FMTPINFO 01b */
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	fu_cdb(cdb, FU_FMTDATA);
	memset(hdr, 0, sizeof(hdr));
	hdr[3] = 8;				    /* DEFECT LIST LENGTH */
	CU_ASSERT_EQUAL(fx_run(cdb, hdr, 4, 4), 0); /* checked when it runs */
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	hdr[3] = 0;
	hdr[1] = FU_DCRT;			    /* FOV 0 */
	CU_ASSERT_EQUAL(fx_run(cdb, hdr, 4, 4), 0); /* checked when it runs */
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	hdr[1] = FU_FOV | FU_IP;
	CU_ASSERT_EQUAL(fx_run(cdb, hdr, 4, 4), 0); /* checked when it runs */
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	hdr[1] = 0;
	hdr[0] = 1;				    /* PROTECTION FIELD USAGE */
	CU_ASSERT_EQUAL(fx_run(cdb, hdr, 4, 4), 0); /* checked when it runs */
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	hdr[0] = 0;
	/* software write protect: DATA PROTECT */
	atomic_store(&fx_target.lu.swp, true);
	fu_cdb(cdb, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_DATA_PROTECT, ASC_WRITE_PROTECTED));
	atomic_store(&fx_target.lu.swp, false);

	/* IMMED: GOOD at once; NOT READY / FORMAT IN PROGRESS until it is done */
	memset(fx_vol.data, 'c', (size_t)FX_BLOCKS * FX_BS);
	memset(fx_hole, 0, sizeof(fx_hole));
	hdr[1] = FU_IMMED;
	fu_cdb(cdb, FU_FMTDATA);
	fixture_task(cdb, 16, false);
	fx_t.exp_xfer_len = 4;
	CU_ASSERT_EQUAL_FATAL(tgt_scsi_prepare(&fx_t), 0);
	fx_buf = malloc(4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_buf);
	memcpy(fx_buf, hdr, 4);
	fx_t.buf = fx_buf;
	fx_t.buf_len = 4;
	tgt_scsi_execute(&fx_t);
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT(fx_good());
	CU_ASSERT(atomic_load(&fx_target.lu.formatting));
	fixture_task(tur, 16, false);
	CU_ASSERT_EQUAL(tgt_scsi_prepare(&fx_t), 1);
	CU_ASSERT(fx_check(SK_NOT_READY, ASC_LU_NOT_READY_FORMAT));
	CU_ASSERT_EQUAL(fx_t.sense[15], SENSE_SKSV); /* with the progress indication */
	/* a SANITIZE meanwhile: NOT READY, FORMAT IN PROGRESS */
	san_cdb(cdb, SANITIZE_SA_BLOCK_ERASE, 0);
	fixture_task(cdb, 16, false);
	CU_ASSERT_EQUAL(tgt_scsi_prepare(&fx_t), 1);
	CU_ASSERT(fx_check(SK_NOT_READY, ASC_LU_NOT_READY_FORMAT));
	fx_drain_all();
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.sanitizing));
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.formatting));
	CU_ASSERT(fx_all_zero_holes());
	CU_ASSERT_EQUAL(fx_run(tur, NULL, 0, 0), 0);
	CU_ASSERT(fx_good());
}

/* Start a SANITIZE OVERWRITE of \p passes passes of 0x5a; do not drain. */
static void san_start(uint8_t extra_cdb1, unsigned passes)
{
	uint8_t cdb[16], p[4 + 1] = {(uint8_t)passes, 0, 0, 1, 0x5a};

	san_cdb(cdb, SANITIZE_SA_OVERWRITE | extra_cdb1, sizeof(p));
	fixture_task(cdb, 16, false);
	fx_target.lu.scsi_ops = &md_ops;    /* the engine's services: ticks, references */
	fx_t.conn = &md_conn;		    /* and the service's work count */
	atomic_store(&md_engine.nconns, 1); /* the task's own connection */
	fx_t.exp_xfer_len = sizeof(p);
	CU_ASSERT_EQUAL_FATAL(tgt_scsi_prepare(&fx_t), 0);
	fx_buf = malloc(sizeof(p));
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_buf);
	memcpy(fx_buf, p, sizeof(p));
	fx_t.buf = fx_buf;
	fx_t.buf_len = sizeof(p);
	tgt_scsi_execute(&fx_t);
}

/* TEST UNIT READY now: NOT READY / SANITIZE IN PROGRESS with \p progress (fixed format). */
static bool san_tur_progress(uint16_t progress)
{
	uint8_t cdb[16] = {0};

	fixture_task(cdb, 16, false);
	return tgt_scsi_prepare(&fx_t) == 1 && fx_check(SK_NOT_READY, ASC_LU_NOT_READY_SANITIZE) &&
	       fx_t.sense[15] == SENSE_SKSV && get_be16(fx_t.sense + 16) == progress;
}

static void test_background(void)
{
	uint8_t cdb[16];

	fx_reset_ext();
	memset(fx_vol.data, 'a', (size_t)FX_BLOCKS * FX_BS);
	/* IMMED: GOOD at once, the job runs on; one 1 MiB chunk per pass */
	san_start(SANITIZE_IMMED, 2);
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT(fx_good());
	CU_ASSERT(atomic_load(&fx_target.lu.sanitizing));
	CU_ASSERT_EQUAL(fx_ticks, 1);
	CU_ASSERT_EQUAL(fx_refs, 1);
	CU_ASSERT_EQUAL(atomic_load(&md_engine.nconns), 2); /* a shutdown waits for it */
	CU_ASSERT_EQUAL(fx_npending, 1);
	CU_ASSERT(san_tur_progress(0));
	fx_step(); /* pass 1 written: half way */
	CU_ASSERT_EQUAL(fx_vol.data[0], 0x5a);
	CU_ASSERT(san_tur_progress(0x8000));
	/* REQUEST SENSE (allowed) reports the same as parameter data */
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_REQUEST_SENSE;
	cdb[4] = 18;
	fixture_task(cdb, 16, false);
	CU_ASSERT_EQUAL(tgt_scsi_prepare(&fx_t), 0);
	fx_buf = malloc(18);
	fx_t.buf = fx_buf;
	fx_t.buf_len = 18;
	tgt_scsi_execute(&fx_t);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 18);
	CU_ASSERT(fx_buf[2] == SK_NOT_READY && fx_buf[12] == 0x04 && fx_buf[13] == 0x1b);
	CU_ASSERT(fx_buf[15] == SENSE_SKSV && get_be16(fx_buf + 16) == 0x8000);
	/* a second SANITIZE while one runs: NOT READY before it starts */
	san_cdb(cdb, SANITIZE_SA_BLOCK_ERASE, 0);
	fixture_task(cdb, 16, false);
	CU_ASSERT_EQUAL(tgt_scsi_prepare(&fx_t), 1);
	CU_ASSERT(fx_check(SK_NOT_READY, ASC_LU_NOT_READY_SANITIZE));
	fx_drain_all();
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.sanitizing));
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.sanitize_progress), 0);
	CU_ASSERT_EQUAL(fx_ticks, 0);
	CU_ASSERT_EQUAL(fx_refs, 0);
	CU_ASSERT_EQUAL(atomic_load(&md_engine.nconns), 1);
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	CU_ASSERT_EQUAL(fx_done, 0); /* nobody waits for an IMMED sanitize */
	memset(cdb, 0, 16);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 0); /* TEST UNIT READY is GOOD again */
	CU_ASSERT(fx_good());
}

static void test_abort_keeps_running(void)
{
	fx_reset_ext();
	/* IMMED 0: the command waits for the sanitize */
	san_start(0, 3);
	CU_ASSERT_EQUAL(fx_done, 0);
	fx_step();
	CU_ASSERT_EQUAL(fx_done, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_tick_fn);
	fx_tick_fn(fx_tick_arg); /* nothing to do */
	CU_ASSERT_EQUAL(fx_done, 0);
	/* ABORT TASK (or a reset, or the connection went): the command ends, the sanitize not */
	fx_t.flags |= TASK_F_ABORTED;
	fx_tick_fn(fx_tick_arg);
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT(atomic_load(&fx_target.lu.sanitizing));
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.sanitize_progress), 65536 / 3);
	fx_drain_all();
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.sanitizing));
	CU_ASSERT_EQUAL(fx_vol.data[(size_t)FX_BLOCKS * FX_BS - 1], 0x5a);
	CU_ASSERT_EQUAL(fx_ticks, 0);
	CU_ASSERT_EQUAL(fx_refs, 0);
	CU_ASSERT_EQUAL(fx_bufs_out, 0);

	/* a write error ends it: the waiting command gets MEDIUM ERROR */
	san_start(0, 1);
	fx_status = -EIO;
	fx_drain_all();
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_WRITE_ERROR));
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.sanitizing));
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	CU_ASSERT_EQUAL(fx_refs, 0);
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
	CU_add_test(s, "SANITIZE IMMED in the background, progress", test_background);
	CU_add_test(s, "SANITIZE goes on after its command is aborted", test_abort_keeps_running);
	CU_add_test(s, "FORMAT UNIT", test_format_unit);
	CU_add_test(s, "READ DEFECT DATA", test_read_defect_data);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
