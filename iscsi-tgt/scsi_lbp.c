/*
 * Logical block provisioning (SBC-3 4.7) of the device server: UNMAP,
 * WRITE SAME(10/16) with and without the UNMAP bit, GET LBA STATUS, and
 * what READ CAPACITY(16), the Block Limits and the Logical Block
 * Provisioning VPD pages say about them.
 *
 * A volume is thin provisioned: UNMAP deallocates (VOL_OP_UNMAP punches a
 * hole in the local-file pool) and a deallocated block reads back as zeros
 * (LBPRZ 1), which vol promises even where the filesystem cannot punch. GET
 * LBA STATUS asks vol where the holes are.
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

/* Limits reported in the Block Limits VPD page and enforced here. */
#define LBP_MAX_UNMAP_DESC 1024u      /* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */
#define LBP_MAX_BYTES	   (1u << 30) /* UNMAP and WRITE SAME per command: 1 GiB */
#define LBP_GRANULE	   4096u      /* filesystem allocation unit a hole is made of */
#define LBP_WS_CHUNK	   (1u << 20) /* WRITE SAME of a pattern: bytes per write */
#define LBP_STATUS_DESC	   16u	      /* GET LBA STATUS descriptor */
#define LBP_STATUS_MAX	   64u	      /* descriptors per GET LBA STATUS */
#define UNMAP_HDR	   8u
#define UNMAP_DESC	   16u

/* Maximum COMPARE AND WRITE length and atomic transfer limits (scsi_caw.c). */
#define CAW_MAX_BLOCKS 255u

static uint32_t lbp_bs(const struct tgt_task *t)
{
	return vol_block_size(t->lu->vol);
}

static uint32_t lbp_max_blocks(const struct tgt_task *t)
{
	/* libiscsi's Block Limits check takes more than 2^20 blocks as bogus. */
	return UTIL_MIN(LBP_MAX_BYTES / lbp_bs(t), 1u << 20);
}

/*
 * MAXIMUM WRITE SAME LENGTH: what the largest WRITE may carry, so that one
 * WRITE SAME of a pattern never takes longer than the longest WRITE.
 */
static uint32_t lbp_max_ws(const struct tgt_task *t)
{
	return tgt_task_config(t)->max_xfer_blocks;
}

static const char *lbp_peer(const struct tgt_task *t)
{
	return t->conn != NULL ? t->conn->peer : "-";
}

/* SBC-3 4.5: LBA + count beyond the capacity: LBA OUT OF RANGE (no wrap). */
static bool lbp_in_range(const struct tgt_task *t, uint64_t lba, uint64_t n)
{
	uint64_t cap = tgt_sbc_nblocks(t->lu);

	return lba <= cap && n <= cap - lba;
}

/* Writes are forced durable while the write cache is off (WCE 0). */
static bool lbp_fua(const struct tgt_task *t)
{
	return !atomic_load_explicit(&t->lu->wce, memory_order_relaxed);
}

/* Submit \p op over blocks [lba, lba + n) on the task's own vol_io. */
static int lbp_submit(struct tgt_task *t, enum vol_op op, uint64_t lba, uint64_t n, void *buf,
		      vol_cb cb)
{
	uint32_t bs = lbp_bs(t);
	int rc;

	memset(&t->io, 0, sizeof(t->io));
	t->io.op = op;
	t->io.offset = lba * bs;
	t->io.len = n * bs;
	if (op == VOL_OP_WRITE) {
		t->iov.iov_base = buf;
		t->iov.iov_len = (size_t)t->io.len;
		t->io.iov = &t->iov;
		t->io.iovcnt = 1;
		t->io.fua = lbp_fua(t);
	}
	t->io.cb = cb;
	t->io.cb_arg = t;
	rc = vol_submit(tgt_task_chan(t), t->lu->vol, &t->io);
	if (rc < 0) {
		log_ratelimited(LOG_ERR, "%s: %s LBA %" PRIu64 " +%" PRIu64 " not submitted: %d",
				lbp_peer(t), t->cmd->name, lba, n, rc);
		tgt_task_errno(t, rc);
	}
	return rc;
}

/* Finish a write-type command: release the gate, then complete. */
static void lbp_finish(struct tgt_task *t, int status)
{
	tgt_gate_end(t);
	if (status != 0) {
		log_ratelimited(LOG_ERR, "%s: %s LBA %" PRIu64 " +%u failed: %d", lbp_peer(t),
				t->cmd->name, t->lba, t->nblocks, status);
		tgt_task_errno(t, status);
		tgt_task_done(t);
		return;
	}
	tgt_scsi_good(t);
}

/* ---- UNMAP (SBC-3 5.28) ---- */

int tgt_lbp_unmap_prep(struct tgt_task *t)
{
	/* The parameter list is checked once it has arrived (tgt_lbp_unmap). */
	t->dir = t->xfer_len ? TGT_DIR_OUT : TGT_DIR_NONE;
	return 0;
}

static void lbp_param_invalid(struct tgt_task *t, uint32_t off)
{
	tgt_scsi_fail_field(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, (uint16_t)off, -1);
	tgt_task_done(t);
}

/*
 * Check every descriptor before deallocating anything, so that a bad one
 * leaves the medium untouched. Returns the number of descriptors, or -1
 * when \p t has been completed with the error.
 */
static int lbp_unmap_check(struct tgt_task *t)
{
	const uint8_t *p = t->buf;
	uint32_t len = t->xfer_len, ndesc, bdlen;
	uint64_t total = 0;

	/*
	 * "If the PARAMETER LIST LENGTH field is set to zero, then no data
	 * shall be transferred"; 1..7 bytes cannot hold the header: PARAMETER
	 * LIST LENGTH ERROR.
	 */
	if (len < UNMAP_HDR) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		tgt_task_done(t);
		return -1;
	}
	/* "If the BLOCK DESCRIPTOR DATA LENGTH ... is not a multiple of 16,
	 * then the last ... partial descriptor shall be ignored"; descriptors
	 * beyond the parameter list cannot be read. */
	bdlen = get_be16(p + 2);
	ndesc = UTIL_MIN(bdlen, len - UNMAP_HDR) / UNMAP_DESC;
	if (ndesc > LBP_MAX_UNMAP_DESC) {
		lbp_param_invalid(t, 2);
		return -1;
	}
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *d = p + UNMAP_HDR + i * UNMAP_DESC;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);

		if (!lbp_in_range(t, lba, n)) {
			tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
			tgt_task_done(t);
			return -1;
		}
		/* Beyond MAXIMUM UNMAP LBA COUNT: INVALID FIELD IN PARAMETER LIST. */
		total += n;
		if (total > lbp_max_blocks(t)) {
			lbp_param_invalid(t, UNMAP_HDR + i * UNMAP_DESC + 8);
			return -1;
		}
	}
	return (int)ndesc;
}

static void lbp_unmap_next(struct tgt_task *t);

static void lbp_unmap_done(void *arg, int status)
{
	struct tgt_task *t = arg;

	if (status != 0) {
		lbp_finish(t, status);
		return;
	}
	t->scsi_step++;
	lbp_unmap_next(t);
}

/* Deallocate descriptor scsi_step, one request at a time; skip empty ones. */
static void lbp_unmap_next(struct tgt_task *t)
{
	const uint8_t *p = t->buf;
	uint32_t ndesc = UTIL_MIN(get_be16(p + 2), t->xfer_len - UNMAP_HDR) / UNMAP_DESC;

	while (t->scsi_step < ndesc) {
		const uint8_t *d = p + UNMAP_HDR + t->scsi_step * UNMAP_DESC;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);

		if (n == 0) {
			t->scsi_step++;
			continue;
		}
		t->lba = lba;
		t->nblocks = n;
		if (lbp_submit(t, VOL_OP_UNMAP, lba, n, NULL, lbp_unmap_done) < 0) {
			tgt_gate_end(t);
			tgt_task_done(t);
		}
		return;
	}
	lbp_finish(t, 0);
}

void tgt_lbp_unmap(struct tgt_task *t)
{
	int ndesc;

	/* gate 0: first call; a call after the gate admitted the task skips the checks. */
	if (t->gate == 0) {
		/* "If the PARAMETER LIST LENGTH field is set to zero ... not ... an error". */
		if (t->xfer_len == 0) {
			tgt_scsi_good(t);
			return;
		}
		ndesc = lbp_unmap_check(t);
		if (ndesc < 0)
			return;
		if (ndesc == 0) {
			tgt_scsi_good(t);
			return;
		}
		t->scsi_step = 0;
	}
	if (tgt_gate_write(t))
		return;
	lbp_unmap_next(t);
}

/* ---- WRITE SAME (SBC-3 5.42, 5.43) ---- */

int tgt_lbp_write_same_prep(struct tgt_task *t)
{
	bool sixteen = t->cdb[0] == SCSI_OP_WRITE_SAME_16;
	uint64_t lba = sixteen ? get_be64(t->cdb + 2) : get_be32(t->cdb + 2);
	uint32_t n = sixteen ? get_be32(t->cdb + 10) : get_be16(t->cdb + 7);
	uint16_t n_off = sixteen ? 10 : 7;
	uint32_t bs = lbp_bs(t);

	if (!lbp_in_range(t, lba, n)) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 1;
	}
	/*
	 * SBC-3 5.42: NUMBER OF LOGICAL BLOCKS 0 (WSNZ 0 in the Block Limits
	 * page) means every block from the LBA to the last one. Above the
	 * MAXIMUM WRITE SAME LENGTH: "... INVALID FIELD IN CDB".
	 */
	if (n == 0)
		n = (uint32_t)UTIL_MIN(tgt_sbc_nblocks(t->lu) - lba, (uint64_t)UINT32_MAX);
	if (n > lbp_max_ws(t)) {
		tgt_task_invalid_field(t, n_off, -1);
		return 1;
	}
	/*
	 * The data-out is exactly one logical block. An initiator announcing
	 * a different length (RFC 7143 ExpectedDataTransferLength) would have
	 * us replicate a truncated or misframed block: refuse it up front.
	 */
	if (t->exp_xfer_len != bs) {
		tgt_task_invalid_field(t, n_off, -1);
		return 1;
	}
	t->lba = lba;
	t->nblocks = n;
	t->xfer_len = bs;
	t->dir = TGT_DIR_OUT;
	return 0;
}

static void lbp_ws_io_done(void *arg, int status)
{
	lbp_finish(arg, status);
}

static void lbp_ws_pattern_next(struct tgt_task *t);

static void lbp_ws_pattern_done(void *arg, int status)
{
	struct tgt_task *t = arg;
	struct util_bufpool *bp = util_reactor_bufpool(util_reactor_self());

	if (status != 0 || t->scsi_step >= t->nblocks) {
		util_buf_put(bp, t->iov.iov_base, LBP_WS_CHUNK);
		lbp_finish(t, status);
		return;
	}
	lbp_ws_pattern_next(t);
}

/* Write the next chunk of the replicated block; scsi_step: blocks done. */
static void lbp_ws_pattern_next(struct tgt_task *t)
{
	uint32_t per = LBP_WS_CHUNK / lbp_bs(t);
	uint32_t n = UTIL_MIN(per, t->nblocks - t->scsi_step);
	void *chunk = t->iov.iov_base;
	uint64_t lba = t->lba + t->scsi_step;

	t->scsi_step += n;
	if (lbp_submit(t, VOL_OP_WRITE, lba, n, chunk, lbp_ws_pattern_done) < 0) {
		util_buf_put(util_reactor_bufpool(util_reactor_self()), chunk, LBP_WS_CHUNK);
		tgt_gate_end(t);
		tgt_task_done(t);
	}
}

static bool lbp_all_zero(const uint8_t *p, uint32_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

void tgt_lbp_write_same(struct tgt_task *t)
{
	uint32_t bs = lbp_bs(t);
	struct util_bufpool *bp;
	uint8_t *chunk;

	/* 0 blocks at the capacity: nothing left to write. */
	if (t->nblocks == 0) {
		tgt_scsi_good(t);
		return;
	}
	if (tgt_gate_write(t))
		return;
	/*
	 * UNMAP 1: "the device server ... shall perform an unmap operation".
	 * We always can (LBPWS, LBPWS10) and unmapped blocks read as zeros,
	 * so the whole range is deallocated in one request.
	 */
	if (t->cdb[1] & WS_UNMAP) {
		if (lbp_submit(t, VOL_OP_UNMAP, t->lba, t->nblocks, NULL, lbp_ws_io_done) < 0) {
			tgt_gate_end(t);
			tgt_task_done(t);
		}
		return;
	}
	/* A block of zeros: zero the range without moving data (blocks stay allocated). */
	if (lbp_all_zero(t->buf, bs)) {
		if (lbp_submit(t, VOL_OP_WRITE_ZEROES, t->lba, t->nblocks, NULL, lbp_ws_io_done) <
		    0) {
			tgt_gate_end(t);
			tgt_task_done(t);
		}
		return;
	}
	/* Any other pattern: replicate it into a scratch chunk and write chunk by chunk. */
	bp = util_reactor_bufpool(util_reactor_self());
	chunk = util_buf_get(bp, LBP_WS_CHUNK);
	if (chunk == NULL) {
		t->io.op = VOL_OP_WRITE;
		tgt_task_errno(t, -ENOMEM);
		lbp_finish(t, -ENOMEM);
		return;
	}
	for (uint32_t off = 0; off < LBP_WS_CHUNK; off += bs)
		memcpy(chunk + off, t->buf, bs);
	t->iov.iov_base = chunk;
	t->scsi_step = 0;
	lbp_ws_pattern_next(t);
}

/* ---- GET LBA STATUS (SBC-3 5.17) ---- */

int tgt_lbp_get_lba_status_prep(struct tgt_task *t)
{
	uint64_t lba = get_be64(t->cdb + 2);

	/* "If the specified starting LBA exceeds the capacity of the medium". */
	if (lba >= tgt_sbc_nblocks(t->lu)) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 1;
	}
	t->lba = lba;
	return 0;
}

void tgt_lbp_get_lba_status(struct tgt_task *t)
{
	uint8_t buf[8 + LBP_STATUS_MAX * LBP_STATUS_DESC];
	uint32_t bs = lbp_bs(t);
	uint64_t cap = tgt_sbc_nblocks(t->lu);
	uint64_t lba = t->lba;
	uint32_t room, n = 0;

	/*
	 * As many descriptors as the allocation length holds (at least one:
	 * the parameter data always carries the first, SBC-3 5.17.2). "The
	 * LBA STATUS LOGICAL BLOCK ADDRESS field in the first ... descriptor
	 * shall contain the value specified in the STARTING LOGICAL BLOCK
	 * ADDRESS field"; each next one starts where the previous ends.
	 */
	room = t->xfer_len > 8 ? (t->xfer_len - 8) / LBP_STATUS_DESC : 0;
	room = UTIL_MAX(1u, UTIL_MIN(room, LBP_STATUS_MAX));
	memset(buf, 0, sizeof(buf));
	while (n < room && lba < cap) {
		uint8_t *d = buf + 8 + n * LBP_STATUS_DESC;
		/* NUMBER OF LOGICAL BLOCKS is 32 bits: longer runs take two descriptors. */
		uint64_t len = UTIL_MIN(cap - lba, (uint64_t)UINT32_MAX) * bs;
		bool mapped = true;
		int rc = vol_get_lba_status(t->lu->vol, lba * bs, &len, &mapped);

		if (rc < 0) {
			log_ratelimited(LOG_ERR, "%s: GET LBA STATUS at %" PRIu64 ": %d",
					lbp_peer(t), lba, rc);
			t->io.op = VOL_OP_READ;
			tgt_task_errno(t, rc);
			tgt_task_done(t);
			return;
		}
		put_be64(d, lba);
		put_be32(d + 8, (uint32_t)(len / bs));
		d[12] = mapped ? LBP_STATUS_MAPPED : LBP_STATUS_DEALLOCATED;
		lba += len / bs;
		n++;
	}
	put_be32(buf, 4 + n * LBP_STATUS_DESC);
	tgt_scsi_data_in(t, buf, 8 + n * LBP_STATUS_DESC);
}

/* ---- what the LU reports ---- */

void tgt_lbp_read_capacity16(const struct tgt_task *t, uint8_t *buf)
{
	(void)t;
	/*
	 * SBC-3 5.16: LBPME 1 (logical block provisioning management is on:
	 * UNMAP and WRITE SAME deallocate), LBPRZ 1 (a deallocated block reads
	 * as zeros). LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT stays 0: the
	 * 4 KiB allocation unit is reported as the unmap granularity instead.
	 */
	buf[14] |= RC16_LBPME | RC16_LBPRZ;
}

void tgt_lbp_block_limits(const struct tgt_task *t, uint8_t *p)
{
	uint32_t bs = lbp_bs(t);
	uint32_t gran = bs < LBP_GRANULE ? LBP_GRANULE / bs : 1;
	uint32_t max_xfer = tgt_task_config(t)->max_xfer_blocks;

	/* SBC-3 6.5.3 / SBC-4 6.6.4 Block Limits. */
	p[4] = 0;			/* WSNZ 0: WRITE SAME of 0 blocks reaches the last block */
	p[5] = (uint8_t)CAW_MAX_BLOCKS; /* MAXIMUM COMPARE AND WRITE LENGTH */
	put_be32(p + 20, lbp_max_blocks(t));  /* MAXIMUM UNMAP LBA COUNT */
	put_be32(p + 24, LBP_MAX_UNMAP_DESC); /* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */
	put_be32(p + 28, gran);		      /* OPTIMAL UNMAP GRANULARITY */
	put_be32(p + 32, 0);		      /* UGAVALID, alignment 0 */
	p[32] |= VPD_B0_UGAVALID;
	put_be64(p + 36, lbp_max_ws(t)); /* MAXIMUM WRITE SAME LENGTH */
	/*
	 * SBC-4 WRITE ATOMIC: up to the transfer limit, any alignment and
	 * granularity (the write gate makes any length atomic).
	 */
	put_be32(p + 44, max_xfer); /* MAXIMUM ATOMIC TRANSFER LENGTH */
	put_be32(p + 48, 1);	    /* ATOMIC ALIGNMENT */
	put_be32(p + 52, 1);	    /* ATOMIC TRANSFER LENGTH GRANULARITY */
}

uint32_t tgt_lbp_vpd_b2(const struct tgt_task *t, uint8_t *p)
{
	(void)t;
	/*
	 * SBC-3 6.5.4: UNMAP (LBPU), WRITE SAME(16) and (10) with UNMAP
	 * (LBPWS, LBPWS10), deallocated blocks read as zeros (LBPRZ), no
	 * anchored state (ANC_SUP 0), no provisioning group descriptor (DP 0);
	 * PROVISIONING TYPE 010b: thin provisioned.
	 */
	memset(p + 4, 0, VPD_LBP_LEN);
	p[5] = VPD_B2_LBPU | VPD_B2_LBPWS | VPD_B2_LBPWS10 | VPD_B2_LBPRZ;
	p[6] = VPD_B2_PROV_THIN;
	return 4 + VPD_LBP_LEN;
}
