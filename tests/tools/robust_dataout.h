/*
 * robust_dataout.h: part of robust.c (included once, in order): the data-out accounting cases: a
 * WRITE never stores bytes nobody sent; a NOP-Out flood
 */

/* ---- data-out accounting: a WRITE never stores bytes nobody sent ---- */

#define BLK	  512
#define DO_LBA	  100 /* the blocks the cases write */
#define STALE_LBA 200 /* blocks read just before, so pooled buffers hold them */
#define DO_BLOCKS 8
#define PAT_OLD	  0x11
#define PAT_NEW	  0x22
#define PAT_STALE 0x5a

/*
 * One SCSI command on \p c: \p imm as immediate data, Data-In gathered into
 * \p in. Returns 1 with *status, 2 for a Reject, 0 when the target closed,
 * or a negative errno. R2Ts are not answered: the callers send no command
 * that needs one.
 */
static int scsi_io(struct conn *c, const uint8_t *cdb, uint8_t flags, uint32_t edtl,
		   const void *imm, uint32_t imm_len, uint8_t *in, uint32_t in_len, uint8_t *status)
{
	int64_t deadline = now_ms() + g_opt.wait_ms;
	struct iscsi_bhs_scsi_cmd cmd;
	struct rpdu rsp;
	int rc;

	rsp.data = malloc(RX_DATA_MAX);
	if (rsp.data == NULL)
		return -ENOMEM;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = ISCSI_OP_SCSI_CMD;
	cmd.flags = flags;
	put_lun(cmd.lun, g_opt.lun);
	put_be32(cmd.itt, ++c->itt);
	put_be32(cmd.exp_xfer_len, edtl);
	put_be32(cmd.cmdsn, c->cmdsn++);
	put_be32(cmd.exp_statsn, c->exp_statsn);
	memcpy(cmd.cdb, cdb, 16);
	rc = send_pdu(c, &cmd, imm, imm_len);
	while (rc == 0) {
		const struct iscsi_bhs_data_in *d = (const void *)rsp.h.raw;
		uint8_t op;

		rc = wait_answer(c, c->itt, &rsp, deadline);
		if (rc <= 0)
			break;
		op = rsp.h.bhs.opcode & ISCSI_OP_MASK;
		if (op == ISCSI_OP_REJECT) {
			rc = 2;
			break;
		}
		if (op == ISCSI_OP_DATA_IN) {
			uint32_t off = get_be32(d->buffer_offset);

			if (in && off <= in_len && rsp.dlen <= in_len - off)
				memcpy(in + off, rsp.data, rsp.dlen);
			if (!(d->flags & ISCSI_DATA_STATUS))
				continue;
			*status = d->status;
			c->exp_statsn = get_be32(d->statsn) + 1;
			rc = 1;
			break;
		}
		if (op == ISCSI_OP_SCSI_RSP) {
			const struct iscsi_bhs_scsi_rsp *sr = (const void *)rsp.h.raw;

			*status = sr->status;
			c->exp_statsn = get_be32(sr->statsn) + 1;
			rc = 1;
			break;
		}
		if (op == ISCSI_OP_R2T) {
			why("unexpected R2T");
			rc = -EPROTO;
			break;
		}
	}
	free(rsp.data);
	return rc;
}

static void rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, blocks);
}

/*
 * Blocks DO_LBA.. hold PAT_OLD, blocks STALE_LBA.. PAT_STALE, and a READ of
 * the latter has just returned its buffer to the target's pool: a WRITE that
 * executes with bytes the initiator never sent stores PAT_STALE.
 */
static int do_prepare(struct conn *c)
{
	uint8_t buf[DO_BLOCKS * BLK], cdb[16], st = 0xff;
	int rc;

	memset(buf, PAT_OLD, sizeof(buf));
	rw10(cdb, 0x2a, DO_LBA, DO_BLOCKS);
	rc = scsi_io(c, cdb, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1, sizeof(buf), buf, sizeof(buf),
		     NULL, 0, &st);
	if (rc == 1 && st == SCSI_STATUS_GOOD) {
		memset(buf, PAT_STALE, sizeof(buf));
		rw10(cdb, 0x2a, STALE_LBA, DO_BLOCKS);
		rc = scsi_io(c, cdb, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1, sizeof(buf), buf,
			     sizeof(buf), NULL, 0, &st);
	}
	if (rc == 1 && st == SCSI_STATUS_GOOD) {
		rw10(cdb, 0x28, STALE_LBA, DO_BLOCKS);
		rc = scsi_io(c, cdb, ISCSI_FLAG_FINAL | ISCSI_CMD_READ | 1, sizeof(buf), NULL, 0,
			     buf, sizeof(buf), &st);
	}
	if (rc != 1 || st != SCSI_STATUS_GOOD) {
		why("preparing the blocks: rc %d status 0x%02x", rc, st);
		return -EIO;
	}
	return 0;
}

/*
 * On a fresh session: every byte of blocks DO_LBA.. is PAT_OLD or PAT_NEW
 * (what was there, or what the initiator sent), never PAT_STALE.
 */
static int do_verify(void)
{
	uint8_t buf[DO_BLOCKS * BLK], cdb[16], st = 0xff;
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	memset(buf, 0xee, sizeof(buf));
	rw10(cdb, 0x28, DO_LBA, DO_BLOCKS);
	for (int tries = 0; tries < 3; tries++) {
		rc = scsi_io(&c, cdb, ISCSI_FLAG_FINAL | ISCSI_CMD_READ | 1, sizeof(buf), NULL, 0,
			     buf, sizeof(buf), &st);
		if (rc != 1 || st != SCSI_STATUS_CHECK)
			break; /* a unit attention (CHECK CONDITION) is retried */
	}
	logout(&c);
	if (rc != 1 || st != SCSI_STATUS_GOOD) {
		why("reading the blocks back: rc %d status 0x%02x", rc, st);
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(buf); i++) {
		if (buf[i] != PAT_OLD && buf[i] != PAT_NEW) {
			why("byte %zu of the written range holds 0x%02x: data the initiator never "
			    "sent was stored",
			    i, buf[i]);
			return -EIO;
		}
	}
	return 0;
}

/*
 * The bad command's outcome: a Reject, a close, CHECK CONDITION, or with
 * \p good_ok GOOD (the command ran on the data that was sent).
 */
static int do_refused(int rc, uint8_t st, const char *what, bool good_ok)
{
	if (rc == 1 && st == SCSI_STATUS_GOOD && !good_ok) {
		why("%s completed with GOOD", what);
		return -1;
	}
	if (rc < 0 && rc != -ECONNRESET) {
		why("%s: %s", what, strerror(-rc));
		return rc;
	}
	if (rc == 2)
		snprintf(g_seen, sizeof(g_seen), "Reject");
	else if (rc == 0)
		snprintf(g_seen, sizeof(g_seen), "closed");
	else
		snprintf(g_seen, sizeof(g_seen), "status 0x%02x, nothing stale stored", st);
	return 0;
}

/*
 * WRITE(10) of 8 blocks with ExpectedDataTransferLength 512 and 512 bytes of
 * immediate data: the other 3584 bytes never come. FCP-4 9.4.2 lets the
 * target write only what was sent (GOOD, overflow residual) or refuse
 * (CHECK CONDITION); it must never store 3584 bytes of whatever its buffer
 * held.
 */
static int case_write_edtl_short(void)
{
	uint8_t data[BLK], cdb[16], st = 0xff;
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	rc = do_prepare(&c);
	if (rc == 0) {
		memset(data, PAT_NEW, sizeof(data));
		rw10(cdb, 0x2a, DO_LBA, DO_BLOCKS);
		rc = scsi_io(&c, cdb, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1, BLK, data, BLK, NULL,
			     0, &st);
		rc = do_refused(rc, st, "WRITE with a short ExpectedDataTransferLength", true);
	}
	logout(&c);
	return rc ? rc : do_verify();
}

/* WRITE(10) of 8 blocks without the W bit: no data-out comes, none may be stored. */
static int case_write_no_wbit(void)
{
	uint8_t cdb[16], st = 0xff;
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	rc = do_prepare(&c);
	if (rc == 0) {
		rw10(cdb, 0x2a, DO_LBA, DO_BLOCKS);
		rc = scsi_io(&c, cdb, ISCSI_FLAG_FINAL | 1, DO_BLOCKS * BLK, NULL, 0, NULL, 0, &st);
		rc = do_refused(rc, st, "WRITE without the W bit", true);
	}
	logout(&c);
	return rc ? rc : do_verify();
}

/*
 * WRITE(10) of 1 block, ExpectedDataTransferLength 512, with 1024 bytes of
 * immediate data: more than the command moves (RFC 7143 11.3.5 bounds
 * immediate data by the expected length). A protocol error.
 */
static int case_imm_over_edtl(void)
{
	uint8_t data[2 * BLK], cdb[16], st = 0xff;
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	rc = do_prepare(&c);
	if (rc == 0) {
		memset(data, PAT_NEW, sizeof(data));
		rw10(cdb, 0x2a, DO_LBA, 1);
		rc = scsi_io(&c, cdb, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1, BLK, data,
			     sizeof(data), NULL, 0, &st);
		rc = do_refused(rc, st, "immediate data beyond ExpectedDataTransferLength", false);
	}
	logout(&c);
	return rc ? rc : do_verify();
}

/*
 * WRITE(10) of 8 blocks answered by its R2T with two Data-Out PDUs for the
 * same first 2048 bytes: 4096 bytes arrived, half of the range never did.
 * With DataPDUInOrder=Yes (the only value the target accepts) the offsets
 * must follow each other (RFC 7143 13.19): a protocol error.
 */
static int case_dataout_overlap(void)
{
	uint8_t data[DO_BLOCKS * BLK / 2], st = 0xff;
	struct iscsi_bhs_scsi_cmd cmd;
	struct iscsi_bhs_data_out d;
	struct rpdu rsp = {.data = NULL};
	struct conn c;
	uint32_t ttt;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	rc = do_prepare(&c);
	if (rc != 0)
		goto out;
	rsp.data = malloc(RX_DATA_MAX);
	if (rsp.data == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = ISCSI_OP_SCSI_CMD;
	cmd.flags = ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1;
	put_lun(cmd.lun, g_opt.lun);
	put_be32(cmd.itt, ++c.itt);
	put_be32(cmd.exp_xfer_len, DO_BLOCKS * BLK);
	put_be32(cmd.cmdsn, c.cmdsn++);
	put_be32(cmd.exp_statsn, c.exp_statsn);
	rw10(cmd.cdb, 0x2a, DO_LBA, DO_BLOCKS);
	rc = send_pdu(&c, &cmd, NULL, 0);
	if (rc == 0)
		rc = wait_answer(&c, c.itt, &rsp, now_ms() + g_opt.wait_ms);
	if (rc <= 0 || (rsp.h.bhs.opcode & ISCSI_OP_MASK) != ISCSI_OP_R2T) {
		why("no R2T for a WRITE without data (rc %d)", rc);
		rc = -EPROTO;
		goto out;
	}
	ttt = get_be32(((const struct iscsi_bhs_r2t *)(void *)rsp.h.raw)->ttt);
	memset(data, PAT_NEW, sizeof(data));
	for (uint32_t sn = 0; sn < 2 && rc >= 0; sn++) {
		memset(&d, 0, sizeof(d));
		d.opcode = ISCSI_OP_DATA_OUT;
		d.flags = sn == 1 ? ISCSI_FLAG_FINAL : 0;
		put_lun(d.lun, g_opt.lun);
		put_be32(d.itt, c.itt);
		put_be32(d.ttt, ttt);
		put_be32(d.exp_statsn, c.exp_statsn);
		put_be32(d.datasn, sn);
		put_be32(d.buffer_offset, 0);
		rc = send_pdu(&c, &d, data, sizeof(data));
	}
	if (rc == -EPIPE || rc == -ECONNRESET) {
		rc = do_refused(0, st, "overlapping Data-Out", false);
		goto out;
	}
	rc = wait_answer(&c, c.itt, &rsp, now_ms() + g_opt.wait_ms);
	if (rc == 1) {
		uint8_t op = rsp.h.bhs.opcode & ISCSI_OP_MASK;

		st = ((const struct iscsi_bhs_scsi_rsp *)(void *)rsp.h.raw)->status;
		rc = op == ISCSI_OP_REJECT ? 2 : op == ISCSI_OP_SCSI_RSP ? 1 : -EPROTO;
	} else if (rc == -ETIMEDOUT) {
		/* Not executed, nothing answered: fine as long as nothing was stored. */
		rc = 2;
	}
	rc = do_refused(rc, st, "overlapping Data-Out", false);
out:
	free(rsp.data);
	logout(&c);
	return rc ? rc : do_verify();
}

/*
 * NOP-Out pings with full data segments, immediate (outside the CmdSN
 * window), while never reading the NOP-Ins: the target must stop reading
 * (TCP backpressure) instead of keeping a copy of every echo. It used to
 * hold up to 4096 of them, 1 GiB per connection, then drop the connection
 * with ENOMEM. Passes when sending blocks before FLOOD_MAX bytes.
 */
#define FLOOD_MAX (128u << 20)
static int case_nop_flood(void)
{
	struct iscsi_bhs_nop n;
	struct timeval tv = {.tv_sec = 2};
	uint64_t sent = 0;
	uint8_t *data;
	struct conn c;
	int small = 4096;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	data = calloc(1, c.peer_mrdsl);
	if (data == NULL) {
		conn_close(&c);
		return -ENOMEM;
	}
	rc = 0;
	while (sent < FLOOD_MAX && rc == 0) {
		memset(&n, 0, sizeof(n));
		n.opcode = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
		n.flags = ISCSI_FLAG_FINAL;
		put_be32(n.itt, ++c.itt);
		put_be32(n.ttt, ISCSI_RSVD_TAG);
		put_be32(n.sn, c.cmdsn);
		put_be32(n.exp_sn, c.exp_statsn);
		rc = send_pdu(&c, &n, data, c.peer_mrdsl);
		if (rc == 0)
			sent += ISCSI_BHS_LEN + c.peer_mrdsl;
	}
	free(data);
	conn_close(&c);
	if (rc == -EAGAIN || rc == -EWOULDBLOCK) {
		snprintf(g_seen, sizeof(g_seen), "target stopped reading after %" PRIu64 " KiB",
			 sent >> 10);
		return 0;
	}
	if (rc == 0)
		why("sent %" PRIu64 " MiB of pings without the target pausing", sent >> 20);
	else
		why("closed after %" PRIu64 " MiB: %s", sent >> 20, strerror(-rc));
	return -1;
}

struct rcase {
	const char *name;
	int (*fn)(void);
	bool by_default;
	const char *expect;
};
