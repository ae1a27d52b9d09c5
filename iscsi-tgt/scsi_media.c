/*
 * Media commands of the device server: SANITIZE (SBC-3 5.27: OVERWRITE,
 * BLOCK ERASE, EXIT FAILURE MODE), READ DEFECT DATA(10/12) (SBC-3 5.18,
 * 5.19), and the "sanitize in progress" state every other command checks.
 *
 * A volume has no media defects and no encryption key: the defect lists
 * are empty, and CRYPTO ERASE is not offered (it is absent from the table,
 * so it fails as an invalid service action; REPORT SUPPORTED OPERATION
 * CODES agrees). BLOCK ERASE deallocates the whole volume (unmapped blocks
 * read as zeros); OVERWRITE writes the initialization pattern over every
 * block, pass after pass, one chunk in flight at a time so host I/O to
 * other volumes keeps its share of the pool.
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

#define MEDIA_CHUNK   (1u << 20) /* OVERWRITE: bytes per write */
#define OW_HDR	      4u	 /* OVERWRITE parameter list header */
#define RDD10_HDR_LEN 4u
#define RDD12_HDR_LEN 8u

static uint32_t media_bs(const struct tgt_task *t)
{
	return vol_block_size(t->lu->vol);
}

static const char *media_peer(const struct tgt_task *t)
{
	return t->conn != NULL ? t->conn->peer : "-";
}

static const char *media_who(const struct tgt_task *t)
{
	return t->lu->target != NULL ? t->lu->target->iqn : vol_name(t->lu->vol);
}

/* ---- sanitize in progress ---- */

int tgt_media_check(struct tgt_task *t)
{
	/*
	 * SBC-3 4.11.2: while a sanitize operation is in progress the device
	 * server terminates every command but INQUIRY, REPORT LUNS and
	 * REQUEST SENSE (the commands that run without an LU, F_NO_LUN) with
	 * NOT READY / LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS.
	 */
	if (t->lu == NULL || t->cmd == NULL || (t->cmd->flags & TGT_SCSI_F_NO_LUN))
		return 0;
	if (likely(!atomic_load_explicit(&t->lu->sanitizing, memory_order_relaxed)))
		return 0;
	tgt_scsi_fail(t, SK_NOT_READY, ASC_LU_NOT_READY_SANITIZE);
	return 1;
}

/* ---- SANITIZE ---- */

int tgt_sanitize_prep(struct tgt_task *t)
{
	unsigned sa = t->cdb[1] & SCSI_SA_MASK;

	/*
	 * SBC-3 5.27.2: OVERWRITE carries a parameter list of 4 bytes plus an
	 * initialization pattern of 1 to logical-block-length bytes; "if the
	 * PARAMETER LIST LENGTH field is set to a value less than 5 or
	 * greater than the logical block length plus four ... INVALID FIELD
	 * IN CDB". BLOCK ERASE and EXIT FAILURE MODE take none: a non-zero
	 * length is refused the same way.
	 */
	if (sa == SANITIZE_SA_OVERWRITE) {
		if (t->xfer_len <= OW_HDR || t->xfer_len > media_bs(t) + OW_HDR) {
			tgt_task_invalid_field(t, 7, -1);
			return 1;
		}
		t->dir = TGT_DIR_OUT;
		return 0;
	}
	if (t->xfer_len != 0) {
		tgt_task_invalid_field(t, 7, -1);
		return 1;
	}
	t->dir = TGT_DIR_NONE;
	return 0;
}

static void media_param_invalid(struct tgt_task *t, uint16_t off)
{
	tgt_scsi_fail_field(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, off, -1);
	tgt_task_done(t);
}

/* The sanitize operation is over (status 0 or a negative errno). */
static void media_sanitize_end(struct tgt_task *t, int status)
{
	atomic_store(&t->lu->sanitizing, false);
	tgt_gate_end(t);
	if (status != 0) {
		log_err("%s: %s: SANITIZE failed at LBA %" PRIu64 ": %d", media_peer(t),
			media_who(t), t->lba, status);
		tgt_task_errno(t, status);
		tgt_task_done(t);
		return;
	}
	log_info("%s: %s: SANITIZE complete", media_peer(t), media_who(t));
	tgt_scsi_good(t);
}

static void media_overwrite_next(struct tgt_task *t);

static void media_overwrite_done(void *arg, int status)
{
	struct tgt_task *t = arg;

	if (status != 0) {
		util_buf_put(util_reactor_bufpool(util_reactor_self()), t->iov.iov_base,
			     MEDIA_CHUNK);
		media_sanitize_end(t, status);
		return;
	}
	t->lba += t->io.len / media_bs(t);
	media_overwrite_next(t);
}

/*
 * Write the next chunk of the current pass. t->lba: next block of the
 * pass; t->nblocks: passes left; the chunk in t->iov.iov_base.
 */
static void media_overwrite_next(struct tgt_task *t)
{
	uint32_t bs = media_bs(t);
	uint64_t cap = tgt_sbc_nblocks(t->lu);
	uint8_t *chunk = t->iov.iov_base;
	const uint8_t *param = t->buf;
	int rc;

	if (t->lba >= cap) {
		if (--t->nblocks == 0) {
			util_buf_put(util_reactor_bufpool(util_reactor_self()), chunk, MEDIA_CHUNK);
			media_sanitize_end(t, 0);
			return;
		}
		/* "INVERT ... the initialization pattern shall be inverted between passes". */
		if (param[0] & SANITIZE_OW_INVERT)
			for (uint32_t i = 0; i < MEDIA_CHUNK; i++)
				chunk[i] = (uint8_t)~chunk[i];
		t->lba = 0;
	}
	memset(&t->io, 0, sizeof(t->io));
	t->iov.iov_len = (size_t)UTIL_MIN((uint64_t)(MEDIA_CHUNK / bs), cap - t->lba) * bs;
	t->io.op = VOL_OP_WRITE;
	t->io.offset = t->lba * bs;
	t->io.len = t->iov.iov_len;
	t->io.iov = &t->iov;
	t->io.iovcnt = 1;
	t->io.cb = media_overwrite_done;
	t->io.cb_arg = t;
	rc = vol_submit(tgt_task_chan(t), t->lu->vol, &t->io);
	if (rc < 0) {
		util_buf_put(util_reactor_bufpool(util_reactor_self()), chunk, MEDIA_CHUNK);
		media_sanitize_end(t, rc);
	}
}

/* Check the OVERWRITE parameter list and build the chunk; 1: completed with an error. */
static int media_overwrite_start(struct tgt_task *t)
{
	const uint8_t *p = t->buf;
	uint32_t bs = media_bs(t);
	uint32_t plen = get_be16(p + 2);
	unsigned count = p[0] & SANITIZE_OW_COUNT_MASK;
	uint8_t *chunk;

	/*
	 * SBC-3 5.27.3: OVERWRITE COUNT 0, a TEST value other than 00b, an
	 * INITIALIZATION PATTERN LENGTH of 0, above the block length or past
	 * the parameter list: INVALID FIELD IN PARAMETER LIST.
	 */
	if (count == 0 || (p[0] & 0x60) != 0) {
		media_param_invalid(t, 0);
		return 1;
	}
	if (plen == 0 || plen > bs || plen > t->xfer_len - OW_HDR) {
		media_param_invalid(t, 2);
		return 1;
	}
	chunk = util_buf_get(util_reactor_bufpool(util_reactor_self()), MEDIA_CHUNK);
	if (chunk == NULL) {
		t->io.op = VOL_OP_WRITE;
		tgt_task_errno(t, -ENOMEM);
		tgt_task_done(t);
		return 1;
	}
	/* The pattern starts again at the first byte of every logical block. */
	for (uint32_t i = 0; i < MEDIA_CHUNK; i++)
		chunk[i] = p[OW_HDR + (i % bs) % plen];
	t->iov.iov_base = chunk;
	t->lba = 0;
	t->nblocks = count;
	return 0;
}

static void media_block_erase_done(void *arg, int status)
{
	media_sanitize_end(arg, status);
}

void tgt_sanitize(struct tgt_task *t)
{
	unsigned sa = t->cdb[1] & SCSI_SA_MASK;
	int rc;

	/*
	 * SBC-3 5.27: EXIT FAILURE MODE leaves the state a failed sanitize
	 * leaves behind. A failed sanitize here reports its error and leaves
	 * the LU usable (no failure mode), so there is nothing to exit.
	 */
	if (sa == SANITIZE_SA_EXIT_FAILURE) {
		tgt_scsi_good(t);
		return;
	}
	if (t->gate == 0 && sa == SANITIZE_SA_OVERWRITE && media_overwrite_start(t))
		return;
	if (t->gate == 0) {
		/*
		 * From here every other command of the LU gets NOT READY /
		 * SANITIZE IN PROGRESS; writes already in flight finish first
		 * (the gate admits us once they are done).
		 */
		atomic_store(&t->lu->sanitizing, true);
		log_info("%s: %s: SANITIZE %s started", media_peer(t), media_who(t),
			 sa == SANITIZE_SA_OVERWRITE ? "OVERWRITE" : "BLOCK ERASE");
	}
	if (tgt_gate_excl(t))
		return;
	if (sa == SANITIZE_SA_OVERWRITE) {
		media_overwrite_next(t);
		return;
	}
	/* BLOCK ERASE: deallocate every block; they read back as zeros (LBPRZ). */
	memset(&t->io, 0, sizeof(t->io));
	t->lba = 0;
	t->io.op = VOL_OP_UNMAP;
	t->io.offset = 0;
	t->io.len = vol_size(t->lu->vol);
	t->io.cb = media_block_erase_done;
	t->io.cb_arg = t;
	rc = vol_submit(tgt_task_chan(t), t->lu->vol, &t->io);
	if (rc < 0)
		media_sanitize_end(t, rc);
}

/* ---- READ DEFECT DATA ---- */

int tgt_read_defect_prep(struct tgt_task *t)
{
	t->dir = TGT_DIR_IN;
	return 0;
}

void tgt_read_defect(struct tgt_task *t)
{
	bool twelve = t->cdb[0] == SCSI_OP_READ_DEFECT_DATA_12;
	uint8_t req = twelve ? t->cdb[1] : t->cdb[2];
	uint8_t buf[RDD12_HDR_LEN];
	uint32_t len = twelve ? RDD12_HDR_LEN : RDD10_HDR_LEN;

	/*
	 * SBC-3 5.18 / 5.19: a volume has no primary or grown defects. Both
	 * lists requested are valid and empty (PLISTV / GLISTV set, DEFECT
	 * LIST LENGTH 0), in the format asked for: an empty list looks the
	 * same in every format.
	 */
	memset(buf, 0, sizeof(buf));
	buf[1] = req & (RDD_PLIST | RDD_GLIST | RDD_FORMAT_MASK);
	tgt_scsi_data_in(t, buf, len);
}
