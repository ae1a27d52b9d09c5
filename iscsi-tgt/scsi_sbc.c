/*
 * SCSI block commands (SBC-3) of the device server: READ CAPACITY,
 * READ/WRITE 6/10/12/16, VERIFY and WRITE AND VERIFY 10/12/16, PRE-FETCH,
 * SYNCHRONIZE CACHE and START STOP UNIT, over the volume's vol_submit().
 *
 * I/O runs on the task's own vol_io/iovec (no allocation per command);
 * only VERIFY with BYTCHK and WRITE AND VERIFY borrow a scratch buffer from
 * the reactor's pool for the data they read back. Completions run later on
 * the same reactor thread and finish the task there.
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

/* multi-step commands: t->scsi_step */
enum sbc_step {
	SBC_STEP_IO,	 /* the command's own read or write */
	SBC_STEP_VERIFY, /* reading back into the scratch buffer to compare */
};

uint64_t tgt_sbc_nblocks(const struct tgt_lu *lu)
{
	return vol_size(lu->vol) / vol_block_size(lu->vol);
}

static uint32_t sbc_bs(const struct tgt_task *t)
{
	return vol_block_size(t->lu->vol);
}

/* For log lines: the initiator's address, then the target. */
static const char *sbc_peer(const struct tgt_task *t)
{
	return t->conn != NULL ? t->conn->peer : "-";
}

static const char *sbc_who(const struct tgt_task *t)
{
	return t->lu->target != NULL ? t->lu->target->iqn : vol_name(t->lu->vol);
}

/* The BYTCHK field of VERIFY / WRITE AND VERIFY (SBC-3 5.26, 5.30). */
static unsigned sbc_bytchk(const struct tgt_task *t)
{
	return (t->cdb[1] & SBC_BYTCHK_MASK) >> SBC_BYTCHK_SHIFT;
}

/* Offset of the TRANSFER LENGTH (or equivalent) field, for field pointers. */
static uint16_t sbc_len_off(unsigned cdb_len)
{
	switch (cdb_len) {
	case 6:
		return 4;
	case 10:
		return 7;
	case 12:
		return 6;
	default:
		return 10;
	}
}

/* LOGICAL BLOCK ADDRESS and length of the READ/WRITE-family layouts. */
static void sbc_decode(const struct tgt_task *t, uint64_t *lba, uint32_t *n)
{
	const uint8_t *cdb = t->cdb;

	switch (t->cmd->cdb_len) {
	case 6:
		*lba = get_be24(cdb + 1) & 0x1fffff;
		*n = cdb[4];
		break;
	case 10:
		*lba = get_be32(cdb + 2);
		*n = get_be16(cdb + 7);
		break;
	case 12:
		*lba = get_be32(cdb + 2);
		*n = get_be32(cdb + 6);
		break;
	default:
		*lba = get_be64(cdb + 2);
		*n = get_be32(cdb + 10);
		break;
	}
}

/*
 * SBC-3 4.5: "If the LBA plus the transfer length exceeds the capacity
 * of the medium, ... LOGICAL BLOCK ADDRESS OUT OF RANGE". Written so that
 * no sum can wrap (LBA FFFFFFFFFFFFFFFFh + 1 is out of range, not 0).
 */
static int sbc_check_range(struct tgt_task *t, uint64_t lba, uint64_t n)
{
	uint64_t cap = tgt_sbc_nblocks(t->lu);

	if (lba > cap || n > cap - lba) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 1;
	}
	return 0;
}

/*
 * SBC-3 6.5.3: a transfer above the MAXIMUM TRANSFER LENGTH of the Block
 * Limits page is "terminated ... INVALID FIELD IN CDB". Also keeps
 * xfer_len (bytes) within 32 bits.
 */
static int sbc_check_limit(struct tgt_task *t, uint32_t n)
{
	uint64_t bytes = (uint64_t)n * sbc_bs(t);

	if (n > tgt_task_config(t)->max_xfer_blocks || bytes > UINT32_MAX) {
		tgt_task_invalid_field(t, sbc_len_off(t->cmd->cdb_len), -1);
		return 1;
	}
	return 0;
}

/* Decode and check a command that names a block range; 1: done (sense set). */
static int sbc_prep_range(struct tgt_task *t, bool limit)
{
	uint64_t lba;
	uint32_t n;

	sbc_decode(t, &lba, &n);
	/* SBC-3 5.13: READ(6)/WRITE(6) "TRANSFER LENGTH ... zero ... 256 blocks". */
	if (t->cmd->cdb_len == 6 && n == 0)
		n = 256;
	if (sbc_check_range(t, lba, n))
		return 1;
	if (limit && sbc_check_limit(t, n))
		return 1;
	t->lba = lba;
	t->nblocks = n;
	return 0;
}

/* Submit one I/O of the task; on a refusal complete it with the error. */
static int sbc_submit(struct tgt_task *t, enum vol_op op, void *buf, uint32_t len, bool fua,
		      vol_cb cb)
{
	int rc;

	memset(&t->io, 0, sizeof(t->io));
	t->iov.iov_base = buf;
	t->iov.iov_len = len;
	t->io.op = op;
	t->io.offset = t->lba * sbc_bs(t);
	t->io.len = len;
	if (op == VOL_OP_READ || op == VOL_OP_WRITE) {
		t->io.iov = &t->iov;
		t->io.iovcnt = 1;
	}
	t->io.fua = fua;
	t->io.cb = cb;
	t->io.cb_arg = t;
	rc = vol_submit(tgt_task_chan(t), t->lu->vol, &t->io);
	if (rc < 0) {
		log_ratelimited(LOG_ERR, "%s: %s: %s LBA %" PRIu64 " +%u not submitted: %d",
				sbc_peer(t), sbc_who(t), t->cmd->name, t->lba, t->nblocks, rc);
		tgt_task_errno(t, rc);
	}
	return rc;
}

/* A volume error: log it (rate limited) and complete with its sense. */
static void sbc_io_failed(struct tgt_task *t, int status)
{
	log_ratelimited(LOG_ERR, "%s: %s: %s LBA %" PRIu64 " +%u failed: %d", sbc_peer(t),
			sbc_who(t), t->cmd->name, t->lba, t->nblocks, status);
	tgt_task_errno(t, status);
	tgt_task_done(t);
}

/* ---- READ / WRITE ---- */

int tgt_sbc_rw_prep(struct tgt_task *t)
{
	if (sbc_prep_range(t, true))
		return 1;
	/* SBC-3 5.11: a TRANSFER LENGTH of 0 moves nothing "and shall not be considered an error".
	 */
	t->xfer_len = t->nblocks * sbc_bs(t);
	return 0;
}

static void sbc_rw_done(void *arg, int status)
{
	struct tgt_task *t = arg;

	tgt_gate_end(t); /* a write leaves the LU's write gate (scsi_caw.c) */
	if (status != 0) {
		sbc_io_failed(t, status);
		return;
	}
	if (t->io.op == VOL_OP_READ)
		t->data_len = t->xfer_len;
	tgt_scsi_good(t);
}

void tgt_sbc_rw(struct tgt_task *t)
{
	bool write = t->dir == TGT_DIR_OUT;
	bool fua = false;

	if (t->nblocks == 0) {
		tgt_scsi_good(t);
		return;
	}
	/*
	 * SBC-3 5.31: FUA "the device server shall write the logical blocks
	 * to the medium" before completing; with the write cache disabled
	 * (WCE 0) every write must be. DPO is a cache hint we ignore; a READ
	 * with FUA reads the volume anyway (no read cache above it).
	 */
	if (write) {
		fua = !atomic_load_explicit(&t->lu->wce, memory_order_relaxed);
		if (t->cmd->cdb_len != 6 && (t->cdb[1] & SBC_FUA))
			fua = true;
		/* Wait while an atomic command owns the LU; called again once admitted. */
		if (tgt_gate_write(t))
			return;
	}
	if (sbc_submit(t, write ? VOL_OP_WRITE : VOL_OP_READ, t->buf, t->xfer_len, fua,
		       sbc_rw_done) < 0) {
		tgt_gate_end(t);
		tgt_task_done(t);
	}
}

/* ---- VERIFY and WRITE AND VERIFY ---- */

int tgt_sbc_verify_prep(struct tgt_task *t)
{
	unsigned bytchk = sbc_bytchk(t);

	/* SBC-3 5.26: BYTCHK 10b is reserved. */
	if (bytchk == 2) {
		tgt_task_invalid_field(t, 1, 2);
		return 1;
	}
	if (sbc_prep_range(t, true))
		return 1;
	/*
	 * BYTCHK 00b: medium verification, no data-out. 01b: the data-out
	 * holds every block to compare. 11b: one block, compared with each
	 * block of the range.
	 */
	t->dir = bytchk == SBC_BYTCHK_NONE || t->nblocks == 0 ? TGT_DIR_NONE : TGT_DIR_OUT;
	if (t->dir == TGT_DIR_NONE)
		t->xfer_len = 0;
	else
		t->xfer_len = bytchk == SBC_BYTCHK_ONE ? sbc_bs(t) : t->nblocks * sbc_bs(t);
	return 0;
}

int tgt_sbc_write_verify_prep(struct tgt_task *t)
{
	unsigned bytchk = sbc_bytchk(t);

	/* Only 00b (verify the medium) and 01b (compare what was written). */
	if (bytchk != SBC_BYTCHK_NONE && bytchk != SBC_BYTCHK_ALL) {
		tgt_task_invalid_field(t, 1, 2);
		return 1;
	}
	if (sbc_prep_range(t, true))
		return 1;
	t->xfer_len = t->nblocks * sbc_bs(t);
	return 0;
}

/*
 * Find the first byte where \p have (the medium) differs from \p want (the
 * data-out); \p one: \p want is one block expected in every block.
 */
static bool sbc_compare(const uint8_t *want, const uint8_t *have, uint32_t len, uint32_t bs,
			bool one, uint64_t *off)
{
	uint32_t step = one ? bs : len;

	for (uint32_t base = 0; base < len; base += step) {
		if (memcmp(want, have + base, step) == 0)
			continue;
		for (uint32_t i = 0; i < step; i++) {
			if (want[i] != have[base + i]) {
				*off = base + i;
				return false;
			}
		}
	}
	return true;
}

static void sbc_verify_done(void *arg, int status)
{
	struct tgt_task *t = arg;
	void *scratch = t->iov.iov_base;
	uint32_t len = (uint32_t)t->iov.iov_len;
	uint64_t off = 0;
	bool same;

	if (status != 0) {
		util_buf_put(util_reactor_bufpool(util_reactor_self()), scratch, len);
		sbc_io_failed(t, status);
		return;
	}
	same = sbc_compare(t->buf, scratch, len, sbc_bs(t), sbc_bytchk(t) == SBC_BYTCHK_ONE, &off);
	util_buf_put(util_reactor_bufpool(util_reactor_self()), scratch, len);
	if (same) {
		tgt_scsi_good(t);
		return;
	}
	/*
	 * SBC-3 5.26: "... MISCOMPARE DURING VERIFY OPERATION. In the sense
	 * data the INFORMATION field shall be set to the offset from the start
	 * of the Data-Out Buffer to the first byte of data that was not equal".
	 */
	log_debug("%s: %s: %s LBA %" PRIu64 " +%u: miscompare at byte %" PRIu64, sbc_peer(t),
		  sbc_who(t), t->cmd->name, t->lba, t->nblocks, off);
	tgt_task_sense_info(t, SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY >> 8,
			    ASC_MISCOMPARE_DURING_VERIFY & 0xff, off);
	tgt_task_done(t);
}

/* Read the task's range into a scratch buffer and compare it in sbc_verify_done(). */
static void sbc_verify_read(struct tgt_task *t)
{
	uint32_t len = t->nblocks * sbc_bs(t);
	struct util_bufpool *bp = util_reactor_bufpool(util_reactor_self());
	void *scratch = util_buf_get(bp, len);

	if (scratch == NULL) {
		t->io.op = VOL_OP_READ;
		tgt_task_errno(t, -ENOMEM);
		tgt_task_done(t);
		return;
	}
	t->scsi_step = SBC_STEP_VERIFY;
	if (sbc_submit(t, VOL_OP_READ, scratch, len, false, sbc_verify_done) < 0) {
		util_buf_put(bp, scratch, len);
		tgt_task_done(t);
	}
}

void tgt_sbc_verify(struct tgt_task *t)
{
	/*
	 * BYTCHK 00b: the volume has no medium defects to find beyond what a
	 * read would report, and the range is already checked: GOOD.
	 */
	if (t->nblocks == 0 || sbc_bytchk(t) == SBC_BYTCHK_NONE) {
		tgt_scsi_good(t);
		return;
	}
	sbc_verify_read(t);
}

static void sbc_write_verify_done(void *arg, int status)
{
	struct tgt_task *t = arg;

	tgt_gate_end(t);
	if (status != 0) {
		sbc_io_failed(t, status);
		return;
	}
	if (sbc_bytchk(t) == SBC_BYTCHK_NONE) {
		tgt_scsi_good(t);
		return;
	}
	sbc_verify_read(t);
}

void tgt_sbc_write_verify(struct tgt_task *t)
{
	if (t->nblocks == 0) {
		tgt_scsi_good(t);
		return;
	}
	/*
	 * SBC-3 5.30: the blocks are written to the medium, then verified:
	 * the write is forced durable so the read-back sees the medium.
	 */
	t->scsi_step = SBC_STEP_IO;
	if (tgt_gate_write(t))
		return;
	if (sbc_submit(t, VOL_OP_WRITE, t->buf, t->xfer_len, true, sbc_write_verify_done) < 0) {
		tgt_gate_end(t);
		tgt_task_done(t);
	}
}

/* ---- PRE-FETCH, SYNCHRONIZE CACHE ---- */

int tgt_sbc_prefetch_prep(struct tgt_task *t)
{
	/* No data moves: the MAXIMUM TRANSFER LENGTH does not apply. */
	return sbc_prep_range(t, false);
}

void tgt_sbc_prefetch(struct tgt_task *t)
{
	/*
	 * SBC-3 5.8: with no cache to load, "the device server shall
	 * complete the command with GOOD status" (CONDITION MET would claim
	 * the blocks now sit in a cache). IMMED changes nothing here.
	 */
	tgt_scsi_good(t);
}

int tgt_sbc_sync_prep(struct tgt_task *t)
{
	uint64_t lba;
	uint32_t n;

	sbc_decode(t, &lba, &n);
	/* SBC-3 5.22: NUMBER OF LOGICAL BLOCKS 0: from LBA to the last block. */
	if (sbc_check_range(t, lba, n))
		return 1;
	t->lba = lba;
	t->nblocks = n;
	return 0;
}

static void sbc_sync_done(void *arg, int status)
{
	struct tgt_task *t = arg;

	if (status != 0) {
		sbc_io_failed(t, status);
		return;
	}
	tgt_scsi_good(t);
}

/* Flush the volume; GOOD once every completed write is durable. */
static void sbc_flush(struct tgt_task *t)
{
	if (sbc_submit(t, VOL_OP_FLUSH, NULL, 0, false, sbc_sync_done) < 0)
		tgt_task_done(t);
}

void tgt_sbc_sync(struct tgt_task *t)
{
	/*
	 * The volume flushes as a whole, which covers any range. IMMED 1
	 * would allow GOOD before the flush; we flush first anyway so that a
	 * GOOD always means durable.
	 */
	t->lba = 0;
	sbc_flush(t);
}

/* ---- READ CAPACITY ---- */

int tgt_sbc_read_capacity10_prep(struct tgt_task *t)
{
	/* SBC-3 5.15: "If the PMI bit is zero and the LBA field is not zero". */
	if (!(t->cdb[8] & RC10_PMI) && get_be32(t->cdb + 2) != 0) {
		tgt_task_invalid_field(t, 2, -1);
		return 1;
	}
	t->xfer_len = RC10_DATA_LEN;
	return 0;
}

void tgt_sbc_read_capacity10(struct tgt_task *t)
{
	uint64_t last = tgt_sbc_nblocks(t->lu) - 1;
	uint8_t buf[RC10_DATA_LEN];

	/* "... exceeds the maximum value ... set to FFFF_FFFFh": use (16). */
	put_be32(buf, last >= UINT32_MAX ? UINT32_MAX : (uint32_t)last);
	put_be32(buf + 4, sbc_bs(t));
	tgt_scsi_data_in(t, buf, sizeof(buf));
}

void tgt_sbc_read_capacity16(struct tgt_task *t)
{
	uint8_t buf[RC16_DATA_LEN];

	if (!(t->cdb[14] & RC10_PMI) && get_be64(t->cdb + 2) != 0) {
		tgt_task_invalid_field(t, 2, -1);
		tgt_task_done(t);
		return;
	}
	/*
	 * SBC-3 5.16: no protection information (P_TYPE, PROT_EN 0);
	 * LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 0, a logical block is a
	 * physical block of the volume; LBPME/LBPRZ from scsi_lbp.c.
	 */
	memset(buf, 0, sizeof(buf));
	put_be64(buf, tgt_sbc_nblocks(t->lu) - 1);
	put_be32(buf + 8, sbc_bs(t));
	tgt_lbp_read_capacity16(t, buf);
	tgt_scsi_data_in(t, buf, sizeof(buf));
}

/* ---- START STOP UNIT ---- */

void tgt_sbc_start_stop(struct tgt_task *t)
{
	uint8_t b4 = t->cdb[4];
	unsigned pc = b4 >> SSU_PC_SHIFT;

	/*
	 * SBC-3 5.25 POWER CONDITION: 0h START_VALID, 1h ACTIVE, 2h IDLE,
	 * 3h STANDBY, 5h (obsolete), 7h LU_CONTROL, Ah FORCE_IDLE_0,
	 * Bh FORCE_STANDBY_0; the others are reserved. A volume has no
	 * power states: a valid condition is accepted and changes nothing.
	 */
	switch (pc) {
	case 0x0:
	case 0x1:
	case 0x2:
	case 0x3:
	case 0x5:
	case 0x7:
	case 0xa:
	case 0xb:
		break;
	default:
		tgt_task_invalid_field(t, 4, 7);
		tgt_task_done(t);
		return;
	}
	if (pc != 0) {
		/* "If the POWER CONDITION field is not 0h, ... START and LOEJ ... ignored". */
		tgt_scsi_good(t);
		return;
	}
	/* LOEJ asks to load or eject a removable medium; ours is not (RMB 0). */
	if (b4 & SSU_LOEJ) {
		tgt_task_invalid_field(t, 4, 1);
		tgt_task_done(t);
		return;
	}
	/* Stopping: "if the NO_FLUSH bit is zero, ... write all cached data". */
	if (!(b4 & SSU_START) && !(b4 & SSU_NO_FLUSH)) {
		t->lba = 0;
		sbc_flush(t);
		return;
	}
	tgt_scsi_good(t);
}
