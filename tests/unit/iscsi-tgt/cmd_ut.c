/*
 * cmd_ut.c: SCSI Command, Data-In, Data-Out, R2T and SCSI Response of the
 * target (iscsi-tgt/cmd.c) seen from the wire: READ with phase-collapsed
 * status and residuals, WRITE with immediate, unsolicited and solicited
 * data, Data-Out errors, and CmdSN ordering and window (RFC 7143 4.2.2.1,
 * 11.3-11.8). Runs over tgt_fixture.h.
 */
#include "tgt_fixture.h"

#define OP_READ10  0x28
#define OP_WRITE10 0x2a

static struct fx_conn *start_session(uint32_t mrdsl, bool immediate, bool initial_r2t,
				     uint32_t first_burst, uint32_t max_burst)
{
	struct tgt_config cfg;
	struct fx_params p;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	p.mrdsl = mrdsl;
	p.immediate_data = immediate;
	p.initial_r2t = initial_r2t;
	p.first_burst = first_burst;
	p.max_burst = max_burst;
	return fx_session(&p);
}

static const uint8_t *vol_at(uint32_t lba)
{
	return fx_vols[0].data + (uint64_t)lba * FX_BS;
}

/* Expect a SCSI Response for \p itt; returns its status (0xff when absent). */
static uint8_t expect_rsp(struct fx_conn *c, uint32_t itt, struct fx_pdu *out)
{
	struct fx_pdu r;

	if (!fx_recv(c, &r))
		return 0xff;
	CU_ASSERT_EQUAL(fx_op(&r), ISCSI_OP_SCSI_RSP);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
	uint8_t st = fx_op(&r) == ISCSI_OP_SCSI_RSP ? fx_rsp_status(&r) : 0xfe;
	if (out)
		*out = r;
	else
		fx_pdu_free(&r);
	return st;
}

/*
 * RFC 7143 11.7.4 / 11.4: a command gets exactly one status; after a
 * Data-In with the S bit no SCSI Response may follow. A second status for
 * \p itt fails the test (and is consumed, so the next checks still run).
 */
static void assert_no_second_status(struct fx_conn *c, uint32_t itt)
{
	struct fx_pdu r;

	if (fx_quiet(c, 200))
		return;
	CU_ASSERT_TRUE_FATAL(fx_recv(c, &r));
	bool dup = fx_op(&r) == ISCSI_OP_SCSI_RSP && get_be32(r.hdr.bhs.itt) == itt;
	CU_ASSERT_FALSE(dup); /* BUG: status sent twice (see the report) */
	CU_ASSERT_TRUE(dup);  /* anything else would be unexpected too */
	fx_pdu_free(&r);
}

/* ---- READ ---- */

static void test_read_collapsed(void)
{
	struct fx_conn *c = start_session(4096, true, false, 65536, 262144);
	struct fx_pdu r;
	uint8_t cdb[16];
	uint32_t statsn = c->exp_statsn;

	fx_cdb_rw10(cdb, OP_READ10, 10, 24); /* 12288 bytes */
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 12288, cdb, NULL, 0, false);
	for (uint32_t i = 0; i < 3; i++) {
		FX_RECV_OP(c, &r, ISCSI_OP_DATA_IN);
		const struct iscsi_bhs_data_in *d = (const void *)r.hdr.raw;
		/* Our MaxRecvDataSegmentLength (4096) bounds every Data-In. */
		CU_ASSERT_EQUAL(r.len, 4096);
		CU_ASSERT_EQUAL(get_be32(d->itt), itt);
		CU_ASSERT_EQUAL(get_be32(d->ttt), ISCSI_RSVD_TAG);
		CU_ASSERT_EQUAL(get_be32(d->datasn), i);
		CU_ASSERT_EQUAL(get_be32(d->buffer_offset), i * 4096);
		CU_ASSERT(r.len == 4096 && memcmp(r.data, vol_at(10) + i * 4096, 4096) == 0);
		if (i < 2) {
			CU_ASSERT_EQUAL(d->flags, 0);
		} else {
			/* RFC 7143 11.7.4: GOOD status rides on the last Data-In (F and S). */
			CU_ASSERT_EQUAL(d->flags, ISCSI_FLAG_FINAL | ISCSI_DATA_STATUS);
			CU_ASSERT_EQUAL(d->status, 0);
			CU_ASSERT_EQUAL(get_be32(d->residual), 0);
			CU_ASSERT_EQUAL(get_be32(d->statsn), statsn);
		}
		fx_pdu_free(&r);
	}
	/* No separate SCSI Response follows. */
	assert_no_second_status(c, itt);
	fx_stop();
}

static void test_read_residuals(void)
{
	struct fx_conn *c = start_session(65536, true, false, 65536, 262144);
	struct fx_pdu r;
	uint8_t cdb[16];

	/* EDTL 8192 for 2048 bytes: underflow of 6144 (RFC 7143 11.4.5.1). */
	fx_cdb_rw10(cdb, OP_READ10, 0, 4);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 8192, cdb, NULL, 0, false);
	FX_RECV_OP(c, &r, ISCSI_OP_DATA_IN);
	const struct iscsi_bhs_data_in *d = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(get_be32(d->itt), itt);
	CU_ASSERT_EQUAL(r.len, 2048);
	CU_ASSERT_EQUAL(d->flags, ISCSI_FLAG_FINAL | ISCSI_DATA_STATUS | ISCSI_DATA_UNDERFLOW);
	CU_ASSERT_EQUAL(get_be32(d->residual), 6144);
	fx_pdu_free(&r);
	assert_no_second_status(c, itt);

	/* EDTL 1024 for 2048 bytes: only 1024 move, overflow of 1024. */
	itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 1024, cdb, NULL, 0, false);
	FX_RECV_OP(c, &r, ISCSI_OP_DATA_IN);
	d = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(get_be32(d->itt), itt);
	CU_ASSERT_EQUAL(r.len, 1024);
	CU_ASSERT(r.len == 1024 && memcmp(r.data, vol_at(0), 1024) == 0);
	CU_ASSERT_EQUAL(d->flags, ISCSI_FLAG_FINAL | ISCSI_DATA_STATUS | ISCSI_DATA_OVERFLOW);
	CU_ASSERT_EQUAL(get_be32(d->residual), 1024);
	fx_pdu_free(&r);
	assert_no_second_status(c, itt);

	/* A READ past the end: CHECK CONDITION in a SCSI Response, no data. */
	fx_cdb_rw10(cdb, OP_READ10, FX_BLOCKS - 1, 2);
	itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 1024, cdb, NULL, 0, false);
	CU_ASSERT_EQUAL(expect_rsp(c, itt, &r), SAM_STAT_CHECK_CONDITION);
	/* ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3 4.5) */
	CU_ASSERT_EQUAL(fx_rsp_sense(&r), 0x052100);
	fx_pdu_free(&r);
	fx_stop();
}

/* ---- WRITE ---- */

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 31 + (i >> 9));
}

static void test_write_immediate(void)
{
	struct fx_conn *c = start_session(65536, true, true, 65536, 262144);
	struct fx_pdu r;
	uint8_t cdb[16], buf[4096];

	fill(buf, sizeof(buf), 1);
	fx_cdb_rw10(cdb, OP_WRITE10, 100, 8);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 4096, cdb, buf, 4096, false);
	CU_ASSERT_EQUAL(expect_rsp(c, itt, &r), SAM_STAT_GOOD);
	const struct iscsi_bhs_scsi_rsp *h = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(h->flags, ISCSI_FLAG_FINAL);
	CU_ASSERT_EQUAL(h->response, ISCSI_RSP_CMD_COMPLETED);
	CU_ASSERT_EQUAL(get_be32(h->residual), 0);
	CU_ASSERT_EQUAL(get_be32(h->exp_datasn), 0); /* no R2T was needed */
	fx_pdu_free(&r);
	CU_ASSERT(memcmp(vol_at(100), buf, 4096) == 0);
	fx_stop();
}

/* InitialR2T=No: the first burst comes as unsolicited Data-Out (RFC 7143 11.7). */
static void test_write_unsolicited(void)
{
	struct fx_conn *c = start_session(65536, false, false, 8192, 262144);
	uint8_t cdb[16], buf[8192];

	fill(buf, sizeof(buf), 2);
	fx_cdb_rw10(cdb, OP_WRITE10, 200, 16);
	uint32_t itt = fx_cmd(c, ISCSI_CMD_WRITE, 8192, cdb, NULL, 0, false); /* F=0 */
	CU_ASSERT_TRUE(fx_quiet(c, 100));
	fx_data_out(c, itt, ISCSI_RSVD_TAG, 0, 0, buf, 4096, false);
	fx_data_out(c, itt, ISCSI_RSVD_TAG, 1, 4096, buf + 4096, 4096, true);
	CU_ASSERT_EQUAL(expect_rsp(c, itt, NULL), SAM_STAT_GOOD);
	CU_ASSERT(memcmp(vol_at(200), buf, 8192) == 0);
	fx_stop();
}

/* Read an R2T and check its fields; returns its TTT. */
static uint32_t expect_r2t(struct fx_conn *c, uint32_t itt, uint32_t r2tsn, uint32_t off,
			   uint32_t len)
{
	struct fx_pdu r;

	if (!fx_recv(c, &r)) {
		CU_FAIL("no R2T");
		return 0;
	}
	CU_ASSERT_EQUAL_FATAL(fx_op(&r), ISCSI_OP_R2T);
	const struct iscsi_bhs_r2t *h = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(h->flags, ISCSI_FLAG_FINAL);
	CU_ASSERT_EQUAL(get_be32(h->itt), itt);
	CU_ASSERT_NOT_EQUAL(get_be32(h->ttt), ISCSI_RSVD_TAG);
	CU_ASSERT_EQUAL(get_be32(h->r2tsn), r2tsn);
	CU_ASSERT_EQUAL(get_be32(h->buffer_offset), off);
	CU_ASSERT_EQUAL(get_be32(h->desired_len), len);
	CU_ASSERT_EQUAL(r.len, 0);
	uint32_t ttt = get_be32(h->ttt);
	fx_pdu_free(&r);
	return ttt;
}

/* Immediate data, then R2Ts for the rest, each at most MaxBurstLength (RFC 7143 11.8). */
static void test_write_immediate_then_r2t(void)
{
	struct fx_conn *c = start_session(65536, true, true, 4096, 8192);
	uint8_t cdb[16], buf[20480];

	fill(buf, sizeof(buf), 3);
	fx_cdb_rw10(cdb, OP_WRITE10, 300, 40);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 20480, cdb, buf, 4096, false);
	uint32_t ttt = expect_r2t(c, itt, 0, 4096, 8192);
	/* MaxOutstandingR2T=1: the next R2T waits for this burst. */
	CU_ASSERT_TRUE(fx_quiet(c, 100));
	fx_data_out(c, itt, ttt, 0, 4096, buf + 4096, 8192, true);
	ttt = expect_r2t(c, itt, 1, 12288, 8192);
	fx_data_out(c, itt, ttt, 0, 12288, buf + 12288, 4096, false);
	fx_data_out(c, itt, ttt, 1, 16384, buf + 16384, 4096, true);
	struct fx_pdu r;
	CU_ASSERT_EQUAL(expect_rsp(c, itt, &r), SAM_STAT_GOOD);
	/* RFC 7143 11.4.6: ExpDataSN of a write counts the R2Ts sent. */
	CU_ASSERT_EQUAL(get_be32(((struct iscsi_bhs_scsi_rsp *)(void *)r.hdr.raw)->exp_datasn), 2);
	fx_pdu_free(&r);
	CU_ASSERT(memcmp(vol_at(300), buf, sizeof(buf)) == 0);
	fx_stop();
}

/* InitialR2T=Yes, ImmediateData=No: everything is solicited. */
static void test_write_r2t(void)
{
	struct fx_conn *c = start_session(65536, false, true, 65536, 8192);
	uint8_t cdb[16], buf[20480];

	fill(buf, sizeof(buf), 4);
	fx_cdb_rw10(cdb, OP_WRITE10, 400, 40);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 20480, cdb, NULL, 0, false);
	uint32_t ttt0 = expect_r2t(c, itt, 0, 0, 8192);
	fx_data_out(c, itt, ttt0, 0, 0, buf, 4096, false);
	fx_data_out(c, itt, ttt0, 1, 4096, buf + 4096, 4096, true);
	uint32_t ttt1 = expect_r2t(c, itt, 1, 8192, 8192);
	fx_data_out(c, itt, ttt1, 0, 8192, buf + 8192, 8192, true);
	/* The last burst is what is left: 4096 < MaxBurstLength. */
	uint32_t ttt2 = expect_r2t(c, itt, 2, 16384, 4096);
	fx_data_out(c, itt, ttt2, 0, 16384, buf + 16384, 4096, true);
	struct fx_pdu r;
	CU_ASSERT_EQUAL(expect_rsp(c, itt, &r), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(get_be32(((struct iscsi_bhs_scsi_rsp *)(void *)r.hdr.raw)->exp_datasn), 3);
	fx_pdu_free(&r);
	CU_ASSERT(memcmp(vol_at(400), buf, sizeof(buf)) == 0);
	fx_stop();
}

/* RFC 7143 11.7.5: a DataSN gap cannot be recovered at ERL 0: the connection ends. */
static void test_write_datasn_error(void)
{
	struct fx_conn *c = start_session(65536, false, true, 65536, 8192);
	uint8_t cdb[16], buf[8192];

	fill(buf, sizeof(buf), 5);
	fx_cdb_rw10(cdb, OP_WRITE10, 500, 16);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 8192, cdb, NULL, 0, false);
	uint32_t ttt = expect_r2t(c, itt, 0, 0, 8192);
	fx_data_out(c, itt, ttt, 1, 0, buf, 4096, false); /* DataSN 1 where 0 is due */
	CU_ASSERT_TRUE(fx_wait_eof(c));
	/* Nothing of the command reached the volume as GOOD. */
	CU_ASSERT_EQUAL(fx_submits, 0);
	fx_stop();
}

/* A Data-Out naming no task: Reject "Invalid PDU field" (RFC 7143 11.17.1). */
static void test_data_out_unknown_ttt(void)
{
	struct fx_conn *c = start_session(65536, false, true, 65536, 8192);
	struct fx_pdu r;
	uint8_t buf[512] = {0};

	fx_data_out(c, 0x5555, 0x00120003, 0, 0, buf, sizeof(buf), true);
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	const struct iscsi_bhs_reject *rj = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(rj->reason, ISCSI_REJECT_INVALID_PDU_FIELD);
	CU_ASSERT_EQUAL(r.len, ISCSI_BHS_LEN);
	CU_ASSERT(r.len == ISCSI_BHS_LEN && r.data[0] == ISCSI_OP_DATA_OUT &&
		  get_be32(r.data + 16) == 0x5555);
	fx_pdu_free(&r);
	/* The data was drained: the stream is still in step. */
	CU_ASSERT_TRUE(fx_ping(c));

	/* The TTT of a finished task is stale too (its generation moved on). */
	uint8_t cdb[16];
	fx_cdb_rw10(cdb, OP_WRITE10, 600, 1);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 512, cdb, NULL, 0, false);
	uint32_t ttt = expect_r2t(c, itt, 0, 0, 512);
	fx_data_out(c, itt, ttt, 0, 0, buf, 512, true);
	CU_ASSERT_EQUAL(expect_rsp(c, itt, NULL), SAM_STAT_GOOD);
	fx_data_out(c, itt, ttt, 0, 0, buf, 512, true);
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	CU_ASSERT_EQUAL(r.hdr.raw[2], ISCSI_REJECT_INVALID_PDU_FIELD);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(c));
	fx_stop();
}

/* ---- data-out that does not cover the command (found by fuzz_pdu) ---- */

/*
 * Leave a pooled buffer of \p len bytes full of 0xa5 behind: a READ of a
 * range that holds it. A WRITE that stores bytes nobody sent stores these.
 */
static void leave_stale_buffer(struct fx_conn *c, uint32_t lba, uint32_t len)
{
	uint8_t cdb[16];
	struct fx_pdu r;

	memset(fx_vols[0].data + (uint64_t)lba * FX_BS, 0xa5, len);
	fx_cdb_rw10(cdb, OP_READ10, lba, (uint16_t)(len / FX_BS));
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, len, cdb, NULL, 0, false);
	while (fx_recv(c, &r)) {
		bool last = fx_op(&r) != ISCSI_OP_DATA_IN || (r.hdr.raw[1] & ISCSI_DATA_STATUS);
		CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
		fx_pdu_free(&r);
		if (last)
			break;
	}
}

/*
 * WRITE(10) of 8 blocks, ExpectedDataTransferLength one block, one block of
 * immediate data: FCP-4 9.4.2 a) as libiscsi's residual tests check: GOOD,
 * an overflow residual of 7 blocks, the first block written and the 7 others
 * untouched. The engine used to write all 8 from its buffer, 7 of them stale.
 */
static void test_write_edtl_short(void)
{
	struct fx_conn *c = start_session(65536, true, true, 65536, 262144);
	uint8_t cdb[16], buf[FX_BS], before[8 * FX_BS];
	struct fx_pdu r;

	leave_stale_buffer(c, 1000, sizeof(before));
	memcpy(before, vol_at(700), sizeof(before));
	fill(buf, sizeof(buf), 7);
	fx_cdb_rw10(cdb, OP_WRITE10, 700, 8);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, FX_BS, cdb, buf, FX_BS, false);
	CU_ASSERT_EQUAL(expect_rsp(c, itt, &r), SAM_STAT_GOOD);
	const struct iscsi_bhs_scsi_rsp *h = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(h->flags, ISCSI_FLAG_FINAL | ISCSI_RSP_OVERFLOW);
	CU_ASSERT_EQUAL(get_be32(h->residual), 7 * FX_BS);
	fx_pdu_free(&r);
	CU_ASSERT(memcmp(vol_at(700), buf, FX_BS) == 0);
	CU_ASSERT(memcmp(vol_at(701), before + FX_BS, 7 * FX_BS) == 0);
	fx_stop();
}

/*
 * WRITE(10) without the W bit: no data-out can come, so none may be stored,
 * and GOOD would claim a write that never happened: CHECK CONDITION,
 * INVALID FIELD IN COMMAND INFORMATION UNIT (FCP-4 9.4.2 b).
 */
static void test_write_no_wbit(void)
{
	struct fx_conn *c = start_session(65536, true, true, 65536, 262144);
	uint8_t cdb[16], before[4 * FX_BS];
	struct fx_pdu r;

	leave_stale_buffer(c, 1000, sizeof(before));
	memcpy(before, vol_at(720), sizeof(before));
	fx_cdb_rw10(cdb, OP_WRITE10, 720, 4);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL, sizeof(before), cdb, NULL, 0, false);
	CU_ASSERT_EQUAL(expect_rsp(c, itt, &r), SAM_STAT_CHECK_CONDITION);
	/* fixed format sense after the 2-byte SenseLength: key, ASC, ASCQ */
	CU_ASSERT(r.len >= 2 + 14 && (r.data[2 + 2] & 0x0f) == SK_ILLEGAL_REQUEST &&
		  r.data[2 + 12] == 0x0e && r.data[2 + 13] == 0x03);
	fx_pdu_free(&r);
	CU_ASSERT(memcmp(vol_at(720), before, sizeof(before)) == 0);
	CU_ASSERT_EQUAL(fx_submits, 1); /* the READ of leave_stale_buffer() only */
	fx_stop();
}

/* Immediate data beyond ExpectedDataTransferLength: a protocol error (Reject). */
static void test_write_imm_over_edtl(void)
{
	struct fx_conn *c = start_session(65536, true, true, 65536, 262144);
	uint8_t cdb[16], buf[2 * FX_BS], before[FX_BS];
	struct fx_pdu r;

	memcpy(before, vol_at(740), sizeof(before));
	fill(buf, sizeof(buf), 9);
	fx_cdb_rw10(cdb, OP_WRITE10, 740, 1);
	fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, FX_BS, cdb, buf, sizeof(buf), false);
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	CU_ASSERT_EQUAL(r.hdr.raw[2], ISCSI_REJECT_PROTOCOL_ERROR);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(c)); /* the data was drained: still in step */
	CU_ASSERT(memcmp(vol_at(740), before, sizeof(before)) == 0);
	CU_ASSERT_EQUAL(fx_submits, 0);
	fx_stop();
}

/*
 * Two Data-Out PDUs for the same first half of an R2T: 4096 bytes arrived,
 * half the range never did. DataPDUInOrder=Yes makes it a protocol error;
 * the engine used to count the bytes twice and write the missing half from
 * its stale buffer.
 */
static void test_data_out_overlap(void)
{
	struct fx_conn *c = start_session(65536, false, true, 65536, 8192);
	uint8_t cdb[16], buf[4096];

	fill(buf, sizeof(buf), 10);
	fx_cdb_rw10(cdb, OP_WRITE10, 760, 8);
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 4096, cdb, NULL, 0, false);
	uint32_t ttt = expect_r2t(c, itt, 0, 0, 4096);
	fx_data_out(c, itt, ttt, 0, 0, buf, 2048, false);
	fx_data_out(c, itt, ttt, 1, 0, buf, 2048, true); /* offset 0 again, not 2048 */
	CU_ASSERT_TRUE(fx_wait_eof(c));
	CU_ASSERT_EQUAL(fx_submits, 0);
	fx_stop();
}

/*
 * A Data-Out naming the TTT of a task that has all its data and executes:
 * no R2T is outstanding, so it names no transfer (Reject "Invalid PDU
 * field"); it used to be placed in the buffer the SCSI layer was writing.
 */
static void test_data_out_while_executing(void)
{
	struct fx_conn *c = start_session(65536, false, true, 65536, 8192);
	uint8_t cdb[16], buf[2 * FX_BS], junk[FX_BS];
	struct fx_pdu r;

	fill(buf, sizeof(buf), 11);
	memset(junk, 0xee, sizeof(junk));
	fx_hold = true;
	fx_cdb_rw10(cdb, OP_WRITE10, 780, 2);
	/* EDTL above the CDB's: the task buffer has room after the data. */
	uint32_t itt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 4096, cdb, NULL, 0, false);
	uint32_t ttt = expect_r2t(c, itt, 0, 0, sizeof(buf));
	fx_data_out(c, itt, ttt, 0, 0, buf, sizeof(buf), true);
	CU_ASSERT_TRUE(fx_quiet(c, 100)); /* executing, held */
	fx_data_out(c, itt, ttt, 0, sizeof(buf), junk, sizeof(junk), true);
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	CU_ASSERT_EQUAL(r.hdr.raw[2], ISCSI_REJECT_INVALID_PDU_FIELD);
	fx_pdu_free(&r);
	fx_release();
	CU_ASSERT_EQUAL(expect_rsp(c, itt, NULL), SAM_STAT_GOOD);
	CU_ASSERT(memcmp(vol_at(780), buf, sizeof(buf)) == 0);
	fx_stop();
}

/* ---- CmdSN (RFC 7143 4.2.2.1) ---- */

static const uint8_t tur[16]; /* TEST UNIT READY */

static void test_cmdsn_window(void)
{
	struct fx_conn *c = start_session(65536, true, false, 65536, 262144);
	struct fx_pdu r;
	uint32_t exp = c->exp_cmdsn, max = c->max_cmdsn;

	CU_ASSERT_EQUAL(exp, 1);
	CU_ASSERT_EQUAL(max, 8);
	/* Outside [ExpCmdSN, MaxCmdSN]: silently ignored. */
	fx_cmd_sn(c, 0x10, exp - 1, tur);
	fx_cmd_sn(c, 0x11, max + 1, tur);
	fx_cmd_sn(c, 0x12, exp + 1000, tur);
	CU_ASSERT_TRUE(fx_quiet(c, 200));

	/* Ahead of a gap: held; once the gap fills both run, in CmdSN order. */
	fx_cmd_sn(c, 0x21, exp + 1, tur);
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	fx_cmd_sn(c, 0x20, exp, tur);
	CU_ASSERT_EQUAL(expect_rsp(c, 0x20, NULL), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(expect_rsp(c, 0x21, &r), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(get_be32(((struct iscsi_bhs_scsi_rsp *)(void *)r.hdr.raw)->exp_cmdsn),
			exp + 2);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_quiet(c, 100));
	fx_stop();
}

/* MaxCmdSN moves only as tasks complete: the window is the queue depth. */
static void test_maxcmdsn_grows_on_completion(void)
{
	struct fx_conn *c = start_session(65536, true, false, 65536, 262144);
	struct fx_pdu r;
	uint8_t cdb[16];
	uint32_t itt[8];
	unsigned got = 0, extra = 0;

	fx_hold = true;
	fx_cdb_rw10(cdb, OP_READ10, 0, 1);
	for (unsigned i = 0; i < 8; i++)
		itt[i] = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 512, cdb, NULL, 0, false);
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	CU_ASSERT_EQUAL(fx_nio, 8);
	/* The window is full: an immediate ping shows ExpCmdSN 9 and MaxCmdSN still 8. */
	CU_ASSERT_TRUE(fx_ping(c));
	CU_ASSERT_EQUAL(c->exp_cmdsn, 9);
	CU_ASSERT_EQUAL(c->max_cmdsn, 8);

	fx_release();
	while (got < 8 && extra < 16 && fx_recv(c, &r)) {
		if (fx_op(&r) != ISCSI_OP_DATA_IN) {
			extra++; /* a second status: counted by test_read_* already */
			fx_pdu_free(&r);
			continue;
		}
		CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt[got]);
		/* Each completion gives its slot back in its own status PDU. */
		CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 32), 9 + got);
		CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 28), 9);
		got++;
		fx_pdu_free(&r);
	}
	CU_ASSERT_EQUAL(got, 8);
	CU_ASSERT_EQUAL(fx_submits, 8);
	fx_stop();
}

/*
 * RFC 7143 4.2.2.1: with MaxCmdSN = ExpCmdSN - 1 the window is closed, and
 * the target MUST silently ignore any non-immediate command outside
 * [ExpCmdSN, MaxCmdSN], the one numbered ExpCmdSN included.
 */
static void test_cmdsn_window_closed(void)
{
	struct fx_conn *c = start_session(65536, true, false, 65536, 262144);
	uint8_t cdb[16];

	fx_hold = true;
	fx_cdb_rw10(cdb, OP_READ10, 0, 1);
	for (unsigned i = 0; i < 8; i++)
		fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 512, cdb, NULL, 0, false);
	CU_ASSERT_TRUE(fx_ping(c));
	CU_ASSERT_EQUAL(c->exp_cmdsn, 9);
	CU_ASSERT_EQUAL(c->max_cmdsn, 8);
	/* CmdSN 9 = ExpCmdSN but beyond MaxCmdSN: ignored, never executed. */
	fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 512, cdb, NULL, 0, false);
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	CU_ASSERT_EQUAL(fx_submits, 8); /* BUG if 9: the closed window let it in */
	CU_ASSERT_TRUE(fx_ping(c));
	CU_ASSERT_EQUAL(c->exp_cmdsn, 9);
	fx_stop();
}

/*
 * A non-immediate NOP-Out takes a CmdSN like any request (RFC 7143 4.2.2.1:
 * CmdSN "is incremented by 1 for every non-immediate command"; the target
 * processes non-immediate requests in CmdSN order). A NOP-Out that arrives
 * ahead of a gap must count once the gap fills, else ExpCmdSN stops short of
 * it and every later command waits for a CmdSN that never comes again.
 */
static void test_cmdsn_nop_ahead_of_gap(void)
{
	struct fx_conn *c = start_session(65536, true, false, 65536, 262144);
	struct fx_pdu r;
	struct iscsi_bhs_nop h;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_NOP_OUT;
	h.flags = ISCSI_FLAG_FINAL;
	put_be32(h.itt, 0x31);
	put_be32(h.ttt, ISCSI_RSVD_TAG);
	put_be32(h.sn, 2); /* CmdSN 1 is still missing */
	CU_ASSERT_TRUE(fx_send(c, &h, NULL, 0));
	fx_cmd_sn(c, 0x30, 1, tur);
	fx_cmd_sn(c, 0x32, 3, tur);
	/* Whatever the order of the answers, the TEST UNIT READY with CmdSN 3 must complete. */
	bool got3 = false;
	for (unsigned i = 0; i < 3 && fx_recv(c, &r); i++) {
		got3 |= fx_op(&r) == ISCSI_OP_SCSI_RSP && get_be32(r.hdr.bhs.itt) == 0x32;
		fx_pdu_free(&r);
	}
	CU_ASSERT_TRUE(got3); /* BUG if it fails: ExpCmdSN stuck at the NOP-Out's CmdSN */
	fx_stop();
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("UT_LOG"))
		util_log_init("cmd_ut", true, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("tgt_cmd", NULL, NULL);
	if (!s || !CU_add_test(s, "READ phase-collapsed", test_read_collapsed) ||
	    !CU_add_test(s, "READ residuals", test_read_residuals) ||
	    !CU_add_test(s, "WRITE immediate data", test_write_immediate) ||
	    !CU_add_test(s, "WRITE unsolicited Data-Out", test_write_unsolicited) ||
	    !CU_add_test(s, "WRITE immediate then R2T", test_write_immediate_then_r2t) ||
	    !CU_add_test(s, "WRITE solicited by R2T", test_write_r2t) ||
	    !CU_add_test(s, "Data-Out DataSN error", test_write_datasn_error) ||
	    !CU_add_test(s, "Data-Out unknown TTT", test_data_out_unknown_ttt) ||
	    !CU_add_test(s, "WRITE with a short EDTL", test_write_edtl_short) ||
	    !CU_add_test(s, "WRITE without the W bit", test_write_no_wbit) ||
	    !CU_add_test(s, "immediate data over EDTL", test_write_imm_over_edtl) ||
	    !CU_add_test(s, "Data-Out overlapping", test_data_out_overlap) ||
	    !CU_add_test(s, "Data-Out while executing", test_data_out_while_executing) ||
	    !CU_add_test(s, "CmdSN window and gap", test_cmdsn_window) ||
	    !CU_add_test(s, "MaxCmdSN on completion", test_maxcmdsn_grows_on_completion) ||
	    !CU_add_test(s, "CmdSN window closed", test_cmdsn_window_closed) ||
	    !CU_add_test(s, "NOP-Out ahead of a CmdSN gap", test_cmdsn_nop_ahead_of_gap)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
