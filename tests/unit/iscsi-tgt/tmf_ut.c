/*
 * tmf_ut.c: Task Management Function requests of the target
 * (iscsi-tgt/misc.c, RFC 7143 11.5-11.6, SAM-5 7): ABORT TASK of an
 * answered, a running and a never-received task; LOGICAL UNIT RESET and the
 * unit attention it leaves on every I_T nexus; TARGET WARM and COLD RESET
 * (the latter closes every session); functions not supported at
 * ErrorRecoveryLevel 0. Runs over tgt_fixture.h.
 */
#include "tgt_fixture.h"

static const uint8_t tur[16]; /* TEST UNIT READY */

static struct fx_conn *start(void)
{
	struct tgt_config cfg;
	struct fx_params p;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	return fx_session(&p);
}

/* Another I_T nexus to the same target: same initiator, another ISID. */
static struct fx_conn *second_nexus(void)
{
	struct fx_params p;
	struct fx_conn *b = fx_connect();

	fx_params_default(&p);
	b->isid[5] = 2;
	CU_ASSERT_EQUAL_FATAL(fx_login(b, &p, NULL), ISCSI_LS_SUCCESS);
	return b;
}

/* Wait for the TMF response to \p itt; returns its Response field (0xfe: none). */
static uint8_t tmf_response(struct fx_conn *c, uint32_t itt)
{
	struct fx_pdu r;

	if (!fx_recv(c, &r))
		return 0xfe;
	CU_ASSERT_EQUAL(fx_op(&r), ISCSI_OP_TMF_RSP);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
	CU_ASSERT_EQUAL(r.hdr.bhs.flags, ISCSI_FLAG_FINAL);
	uint8_t resp = fx_op(&r) == ISCSI_OP_TMF_RSP ? r.hdr.raw[2] : 0xfd;
	fx_pdu_free(&r);
	return resp;
}

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

/* RFC 7143 11.5.1: a task already answered does not exist any more. */
static void test_abort_finished_task(void)
{
	struct fx_conn *c = start();
	struct fx_pdu r;
	uint32_t cmdsn = c->cmdsn;

	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL, 0, tur, NULL, 0, false);
	FX_RECV_OP(c, &r, ISCSI_OP_SCSI_RSP);
	fx_pdu_free(&r);
	uint32_t titt = fx_tmf(c, ISCSI_TMF_ABORT_TASK, 0, itt, cmdsn);
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_NO_TASK);
	CU_ASSERT_TRUE(fx_ping(c));
	fx_stop();
}

/* A task inside the SCSI layer: the answer waits for it, and it gets no status. */
static void test_abort_running_task(void)
{
	struct fx_conn *c = start();
	uint8_t cdb[16];
	uint32_t cmdsn = c->cmdsn;

	fx_hold = true;
	fx_cdb_rw10(cdb, 0x28, 0, 8);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 4096, cdb, NULL, 0, false);
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	CU_ASSERT_EQUAL(fx_nio, 1);
	uint32_t titt = fx_tmf(c, ISCSI_TMF_ABORT_TASK, 0, itt, cmdsn);
	/* SAM-5 7.2: "function complete" only once the task has ended. */
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	fx_release();
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_COMPLETE);
	/* No Data-In or SCSI Response for the aborted task (RFC 7143 4.2.3.3 / 11.5.1). */
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	/* Its CmdSN window slot came back: the next command runs. */
	CU_ASSERT_EQUAL(tur_result(c), 0);
	fx_stop();
}

/*
 * RFC 7143 11.5.1: a task whose CmdSN is in the window but was never
 * received counts as received and aborted: "Function complete".
 */
static void test_abort_unseen_task(void)
{
	struct fx_conn *c = start();
	uint32_t cmdsn = c->cmdsn;

	/* The TMF takes CmdSN+1 as if CmdSN had been used by the lost command. */
	c->cmdsn = cmdsn + 1;
	uint32_t titt = fx_tmf(c, ISCSI_TMF_ABORT_TASK, 0, 0x7777, cmdsn);
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_COMPLETE);
	fx_stop();
}

/* SAM-5 6.3.3 / 7.7: after a LOGICAL UNIT RESET every nexus gets 29/03 once. */
static void test_lun_reset_unit_attention(void)
{
	struct fx_conn *a = start();
	struct fx_conn *b = second_nexus();
	CU_ASSERT_EQUAL(tur_result(a), 0);
	CU_ASSERT_EQUAL(tur_result(b), 0);

	uint32_t titt = fx_tmf(a, ISCSI_TMF_LUN_RESET, 0, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(a, titt), ISCSI_TMF_RSP_COMPLETE);
	/* CHECK CONDITION, UNIT ATTENTION, BUS DEVICE RESET FUNCTION OCCURRED. */
	CU_ASSERT_EQUAL(tur_result(a), 0x02062903);
	CU_ASSERT_EQUAL(tur_result(b), 0x02062903);
	/* Reported once per nexus. */
	CU_ASSERT_EQUAL(tur_result(a), 0);
	CU_ASSERT_EQUAL(tur_result(b), 0);

	/* A LUN that does not exist: "LUN does not exist" (RFC 7143 11.6.1). */
	titt = fx_tmf(a, ISCSI_TMF_LUN_RESET, 3, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(a, titt), ISCSI_TMF_RSP_NO_LUN);
	CU_ASSERT_EQUAL(tur_result(b), 0);
	fx_stop();
}

/*
 * RFC 7143 11.5.1: after TARGET COLD RESET the target closes all of its
 * connections, the issuer's once its response is out; a warm reset closes
 * none and leaves 29/00 on every nexus.
 */
static void test_target_resets(void)
{
	struct fx_conn *a = start();
	struct fx_conn *b = second_nexus();

	uint32_t titt = fx_tmf(a, ISCSI_TMF_TARGET_WARM_RESET, 0, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(a, titt), ISCSI_TMF_RSP_COMPLETE);
	CU_ASSERT_EQUAL(tur_result(a), 0x02062900); /* POWER ON, RESET, OR BUS DEVICE RESET */
	CU_ASSERT_EQUAL(tur_result(b), 0x02062900);
	CU_ASSERT_TRUE(fx_ping(b));

	titt = fx_tmf(a, ISCSI_TMF_TARGET_COLD_RESET, 0, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(a, titt), ISCSI_TMF_RSP_COMPLETE);
	CU_ASSERT_TRUE(fx_wait_eof(a));
	CU_ASSERT_TRUE(fx_wait_eof(b));
	fx_stop();
}

/* Functions outside ErrorRecoveryLevel 0 and ACA. */
static void test_tmf_unsupported(void)
{
	struct fx_conn *c = start();

	uint32_t titt = fx_tmf(c, ISCSI_TMF_TASK_REASSIGN, 0, 0x10, 0);
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_NO_REASSIGN);
	titt = fx_tmf(c, ISCSI_TMF_CLEAR_ACA, 0, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_NOT_SUPPORTED);
	titt = fx_tmf(c, 0x55, 0, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_REJECTED);
	/* ABORT TASK SET with nothing outstanding completes at once. */
	titt = fx_tmf(c, ISCSI_TMF_ABORT_TASK_SET, 0, ISCSI_RSVD_TAG, 0);
	CU_ASSERT_EQUAL(tmf_response(c, titt), ISCSI_TMF_RSP_COMPLETE);
	CU_ASSERT_TRUE(fx_ping(c));
	fx_stop();
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("UT_LOG"))
		util_log_init("tmf_ut", true, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("tgt_tmf", NULL, NULL);
	if (!s || !CU_add_test(s, "ABORT TASK of a finished task", test_abort_finished_task) ||
	    !CU_add_test(s, "ABORT TASK of a running task", test_abort_running_task) ||
	    !CU_add_test(s, "ABORT TASK of an unseen task", test_abort_unseen_task) ||
	    !CU_add_test(s, "LUN RESET unit attention", test_lun_reset_unit_attention) ||
	    !CU_add_test(s, "target warm and cold reset", test_target_resets) ||
	    !CU_add_test(s, "unsupported functions", test_tmf_unsupported)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
