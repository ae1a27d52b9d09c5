/*
 * tgt_ut.c: the target service's control calls (tgt.c) seen from hosts'
 * sessions: a capacity change raises CAPACITY DATA HAS CHANGED (2A/09) once
 * on every nexus of the volume's LU, sessions stay up, and READ CAPACITY (16)
 * then reports the new size. Runs on the connection fixture (tgt_fixture.h):
 * raw PDUs over socketpairs, one reactor driven by the test thread.
 */
#include "tgt_fixture.h"

static const uint8_t tur[16] = {0x00};

/* TEST UNIT READY; returns status << 24 | sense key/ASC/ASCQ. */
static uint32_t tur_result(struct fx_conn *c)
{
	struct fx_pdu r;
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL, 0, tur, NULL, 0, false);

	if (!fx_recv(c, &r))
		return 0xffffffff;
	CU_ASSERT_EQUAL(fx_op(&r), ISCSI_OP_SCSI_RSP);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
	uint32_t v = (uint32_t)fx_rsp_status(&r) << 24 | fx_rsp_sense(&r);
	fx_pdu_free(&r);
	return v;
}

/* READ CAPACITY (16): the number of blocks, or 0 on any error. */
static uint64_t capacity16(struct fx_conn *c)
{
	uint8_t cdb[16] = {0x9e, 0x10};
	struct fx_pdu r;
	uint64_t blocks = 0;

	put_be32(&cdb[10], 32);
	fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 32, cdb, NULL, 0, false);
	if (!fx_recv(c, &r))
		return 0;
	if (fx_op(&r) == ISCSI_OP_DATA_IN && r.len >= 12)
		blocks = get_be64(r.data) + 1;
	fx_pdu_free(&r);
	/* A Data-In without the status bit is followed by a SCSI Response. */
	if (blocks && fx_quiet(c, 50) == false) {
		if (fx_recv(c, &r))
			fx_pdu_free(&r);
	}
	return blocks;
}

static void test_capacity_changed(void)
{
	struct tgt_config cfg;
	struct fx_params p;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *a = fx_session(&p);
	struct fx_conn *b = fx_connect();
	b->isid[5] = 2;
	CU_ASSERT_EQUAL_FATAL(fx_login(b, &p, NULL), ISCSI_LS_SUCCESS);
	CU_ASSERT_EQUAL(tur_result(a), 0);
	CU_ASSERT_EQUAL(tur_result(b), 0);
	CU_ASSERT_EQUAL(capacity16(a), FX_BLOCKS);

	/* The volume grew (what vol_file_grow() / vol_virt_grow() do). */
	fx_vols[0].size = 2ull * FX_BLOCKS * FX_BS;
	tgt_target_capacity_changed(fx_tgt, "vol1");
	tgt_target_capacity_changed(fx_tgt, "no-such-volume"); /* ignored */
	/* CHECK CONDITION, UNIT ATTENTION, CAPACITY DATA HAS CHANGED, once per nexus. */
	CU_ASSERT_EQUAL(tur_result(a), 0x02062a09);
	CU_ASSERT_EQUAL(tur_result(a), 0);
	CU_ASSERT_EQUAL(tur_result(b), 0x02062a09);
	CU_ASSERT_EQUAL(tur_result(b), 0);
	/* Same sessions, the new size. */
	CU_ASSERT_EQUAL(capacity16(a), 2ull * FX_BLOCKS);
	CU_ASSERT_EQUAL(capacity16(b), 2ull * FX_BLOCKS);
	CU_ASSERT_TRUE(fx_ping(a));
	CU_ASSERT_TRUE(fx_ping(b));
	fx_stop();
	fx_vols[0].size = (uint64_t)FX_BLOCKS * FX_BS;
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("UT_LOG"))
		util_log_init("tgt_ut", true, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("tgt", NULL, NULL);
	if (!s || !CU_add_test(s, "capacity changed: unit attention on every nexus",
			       test_capacity_changed)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
