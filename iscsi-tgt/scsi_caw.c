/*
 * Atomic write commands of the device server: COMPARE AND WRITE (SBC-3
 * 5.2), ORWRITE(16) (SBC-3 5.12) and WRITE ATOMIC(16) (SBC-4 5.48), and the
 * per-LU write gate that makes them atomic.
 *
 * Sessions on different reactor threads share an LU, and a read-modify-
 * write must see no other write land between its read and its write. The
 * gate serialises briefly: an atomic command waits until no write of the LU
 * is in flight and then runs alone; writes that arrive meanwhile wait for
 * it. Ordinary writes pay one atomic increment and one load on the fast
 * path (Dekker-style with sequentially consistent atomics: a write that
 * finds no atomic command queued is seen in flight by the next one) and take
 * lu->lock only while an atomic command is queued or running.
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

/* t->gate */
enum gate_state {
	GATE_NONE,  /* holds nothing (first call of the handler) */
	GATE_WAIT,  /* queued on the LU */
	GATE_WRITE, /* admitted as a write */
	GATE_EXCL,  /* admitted as the LU's running atomic command */
};

#define CAW_MAX_BLOCKS 255u /* MAXIMUM COMPARE AND WRITE LENGTH (Block Limits byte 5) */

/* ---- the gate ---- */

static void gate_push(struct tgt_task **head, struct tgt_task **tail, struct tgt_task *t)
{
	t->gate_next = NULL;
	if (*tail != NULL)
		(*tail)->gate_next = t;
	else
		*head = t;
	*tail = t;
}

static struct tgt_task *gate_pop(struct tgt_task **head, struct tgt_task **tail)
{
	struct tgt_task *t = *head;

	if (t != NULL) {
		*head = t->gate_next;
		if (*head == NULL)
			*tail = NULL;
		t->gate_next = NULL;
	}
	return t;
}

/*
 * Under lu->lock: admit what may run now. The next atomic command once no
 * write is in flight; else, when no atomic command is left, every waiting
 * write. Admitted tasks are chained on \p run for gate_resume_all().
 */
static void gate_kick(struct tgt_lu *lu, struct tgt_task **run)
{
	struct tgt_task *t;

	if (!lu->gate_excl_running && lu->gate_excl_head != NULL &&
	    atomic_load(&lu->gate_writes) == 0) {
		t = gate_pop(&lu->gate_excl_head, &lu->gate_excl_tail);
		lu->gate_excl_running = true;
		t->gate = GATE_EXCL;
		t->gate_next = *run;
		*run = t;
		return;
	}
	if (atomic_load(&lu->gate_excl) != 0)
		return;
	while ((t = gate_pop(&lu->gate_wr_head, &lu->gate_wr_tail)) != NULL) {
		atomic_fetch_add(&lu->gate_writes, 1);
		t->gate = GATE_WRITE;
		t->gate_next = *run;
		*run = t;
	}
}

static void gate_resume(void *arg)
{
	struct tgt_task *t = arg;

	t->cmd->exec(t);
}

/* After dropping the lock: run each admitted task's handler on its own thread. */
static void gate_resume_all(struct tgt_task *run)
{
	while (run != NULL) {
		struct tgt_task *t = run;

		run = t->gate_next;
		t->gate_next = NULL;
		const struct tgt_scsi_ops *ops = tgt_scsi_ops_of(t);

		/* Without the engine's reactors (a unit test) it resumes right here. */
		if (ops != NULL && ops->send != NULL && t->gate_reactor != NULL &&
		    ops->send(t->gate_reactor, gate_resume, t) == 0)
			continue;
		if (t->gate_reactor != NULL && t->gate_reactor != util_reactor_self()) {
			/* Cannot reach its thread: nothing safe to do but say so. */
			log_err("write gate: cannot resume %s on its reactor: task stalled",
				t->cmd->name);
			continue;
		}
		gate_resume(t);
	}
}

int tgt_gate_write(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_task *run = NULL;

	if (t->gate == GATE_WRITE || t->gate == GATE_EXCL)
		return 0;
	atomic_fetch_add(&lu->gate_writes, 1);
	if (likely(atomic_load(&lu->gate_excl) == 0)) {
		t->gate = GATE_WRITE;
		return 0;
	}
	/* An atomic command is queued or running: wait for it under the lock. */
	pthread_mutex_lock(&lu->lock);
	atomic_fetch_sub(&lu->gate_writes, 1);
	if (atomic_load(&lu->gate_excl) == 0) {
		atomic_fetch_add(&lu->gate_writes, 1);
		t->gate = GATE_WRITE;
		pthread_mutex_unlock(&lu->lock);
		return 0;
	}
	t->gate = GATE_WAIT;
	t->gate_reactor = util_reactor_self();
	gate_push(&lu->gate_wr_head, &lu->gate_wr_tail, t);
	/* Our own count just dropped: the atomic command may start now. */
	gate_kick(lu, &run);
	pthread_mutex_unlock(&lu->lock);
	gate_resume_all(run);
	return 1;
}

int tgt_gate_excl(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_task *run = NULL;
	int queued = 1;

	if (t->gate == GATE_EXCL)
		return 0;
	pthread_mutex_lock(&lu->lock);
	atomic_fetch_add(&lu->gate_excl, 1);
	t->gate = GATE_WAIT;
	t->gate_reactor = util_reactor_self();
	gate_push(&lu->gate_excl_head, &lu->gate_excl_tail, t);
	gate_kick(lu, &run);
	if (run == t) {
		/* Admitted at once: go on in this call, no message needed. */
		run = NULL;
		queued = 0;
	}
	pthread_mutex_unlock(&lu->lock);
	gate_resume_all(run);
	return queued;
}

void tgt_gate_end(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_task *run = NULL;

	switch (t->gate) {
	case GATE_WRITE:
		t->gate = GATE_NONE;
		/* The last write out lets a queued atomic command in. */
		if (atomic_fetch_sub(&lu->gate_writes, 1) == 1 &&
		    atomic_load(&lu->gate_excl) != 0) {
			pthread_mutex_lock(&lu->lock);
			gate_kick(lu, &run);
			pthread_mutex_unlock(&lu->lock);
		}
		break;
	case GATE_EXCL:
		t->gate = GATE_NONE;
		pthread_mutex_lock(&lu->lock);
		lu->gate_excl_running = false;
		atomic_fetch_sub(&lu->gate_excl, 1);
		gate_kick(lu, &run);
		pthread_mutex_unlock(&lu->lock);
		break;
	default:
		return;
	}
	gate_resume_all(run);
}

/* ---- shared helpers ---- */

static uint32_t caw_bs(const struct tgt_task *t)
{
	return vol_block_size(t->lu->vol);
}

static const char *caw_peer(const struct tgt_task *t)
{
	return t->conn != NULL ? t->conn->peer : "-";
}

static bool caw_in_range(const struct tgt_task *t, uint64_t lba, uint64_t n)
{
	uint64_t cap = tgt_sbc_nblocks(t->lu);

	return lba <= cap && n <= cap - lba;
}

/* FUA in the CDB, or the write cache off: the write must be durable before GOOD. */
static bool caw_fua(const struct tgt_task *t)
{
	return (t->cdb[1] & SBC_FUA) || !atomic_load_explicit(&t->lu->wce, memory_order_relaxed);
}

/* scsi_step 1: iov_base is a scratch buffer of the pool (read back or OR result). */
static void caw_scratch_put(struct tgt_task *t)
{
	if (t->scsi_step == 1)
		util_buf_put(util_reactor_bufpool(util_reactor_self()), t->iov.iov_base,
			     (size_t)t->nblocks * caw_bs(t));
	t->scsi_step = 0;
}

/* Complete a command of this file: scratch back, gate released, status. */
static void caw_finish(struct tgt_task *t, int status)
{
	caw_scratch_put(t);
	tgt_gate_end(t);
	if (status != 0) {
		log_ratelimited(LOG_ERR, "%s: %s LBA %" PRIu64 " +%u failed: %d", caw_peer(t),
				t->cmd->name, t->lba, t->nblocks, status);
		tgt_task_errno(t, status);
		tgt_task_done(t);
		return;
	}
	tgt_scsi_good(t);
}

static int caw_submit(struct tgt_task *t, enum vol_op op, void *buf, vol_cb cb)
{
	int rc;

	memset(&t->io, 0, sizeof(t->io));
	t->iov.iov_base = buf;
	t->iov.iov_len = (size_t)t->nblocks * caw_bs(t);
	t->io.op = op;
	t->io.offset = t->lba * caw_bs(t);
	t->io.len = t->iov.iov_len;
	t->io.iov = &t->iov;
	t->io.iovcnt = 1;
	t->io.fua = op == VOL_OP_WRITE && caw_fua(t);
	t->io.cb = cb;
	t->io.cb_arg = t;
	rc = vol_submit(tgt_task_chan(t), t->lu->vol, &t->io);
	if (rc < 0)
		caw_finish(t, rc);
	return rc;
}

static void caw_write_done(void *arg, int status)
{
	caw_finish(arg, status);
}

/* Read the task's range into a scratch buffer, then \p cb (gate held). */
static void caw_read(struct tgt_task *t, vol_cb cb)
{
	size_t len = (size_t)t->nblocks * caw_bs(t);
	void *scratch = util_buf_get(util_reactor_bufpool(util_reactor_self()), len);

	if (scratch == NULL) {
		t->io.op = VOL_OP_READ;
		caw_finish(t, -ENOMEM);
		return;
	}
	t->scsi_step = 1;
	caw_submit(t, VOL_OP_READ, scratch, cb);
}

/* Decode LBA and count at \p lba_off (8 bytes); range and limit; 1: done. */
static int caw_prep_range(struct tgt_task *t, uint64_t lba, uint32_t n, uint16_t n_off,
			  uint32_t max)
{
	if (!caw_in_range(t, lba, n)) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 1;
	}
	if (n > max) {
		tgt_task_invalid_field(t, n_off, -1);
		return 1;
	}
	t->lba = lba;
	t->nblocks = n;
	t->xfer_len = n * caw_bs(t);
	t->dir = n ? TGT_DIR_OUT : TGT_DIR_NONE;
	return 0;
}

/* ---- COMPARE AND WRITE ---- */

int tgt_caw_prep(struct tgt_task *t)
{
	uint32_t n = t->cdb[13];
	uint32_t bs = caw_bs(t);

	if (caw_prep_range(t, get_be64(t->cdb + 2), n, 13, CAW_MAX_BLOCKS))
		return 1;
	/*
	 * SBC-3 5.2: the Data-Out Buffer holds the verify data then the write
	 * data, 2 x NUMBER OF LOGICAL BLOCKS blocks. NUMBER 0 transfers
	 * nothing and "shall not be considered an error"; but a 0 with a
	 * data-out of whole compare/write pairs is an 8-bit length that
	 * wrapped (a 256-block request): refused, not silently skipped. Any
	 * other ExpectedDataTransferLength mismatch is refused too: half of a
	 * compare buffer must never be taken for write data.
	 */
	if (n == 0) {
		if (t->exp_xfer_len >= 2 * bs) {
			tgt_task_invalid_field(t, 13, -1);
			return 1;
		}
		return 0;
	}
	if (t->exp_xfer_len != 2 * n * bs) {
		tgt_task_invalid_field(t, 13, -1);
		return 1;
	}
	t->xfer_len = 2 * n * bs;
	return 0;
}

static void caw_compared(void *arg, int status)
{
	struct tgt_task *t = arg;
	uint32_t len = t->nblocks * caw_bs(t);
	const uint8_t *have = t->iov.iov_base;
	const uint8_t *want = t->buf;

	if (status != 0) {
		caw_finish(t, status);
		return;
	}
	if (memcmp(want, have, len) != 0) {
		uint32_t off = 0;

		while (want[off] == have[off])
			off++;
		/*
		 * SBC-3 5.2: "... MISCOMPARE DURING VERIFY OPERATION ... the
		 * INFORMATION field ... set to the offset from the start of
		 * the Data-Out Buffer to the first byte of data that was not
		 * equal"; nothing is written.
		 */
		caw_scratch_put(t);
		tgt_gate_end(t);
		tgt_task_sense_info(t, SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY >> 8,
				    ASC_MISCOMPARE_DURING_VERIFY & 0xff, off);
		tgt_task_done(t);
		return;
	}
	caw_scratch_put(t);
	caw_submit(t, VOL_OP_WRITE, (uint8_t *)t->buf + len, caw_write_done);
}

void tgt_caw(struct tgt_task *t)
{
	if (t->nblocks == 0) {
		tgt_scsi_good(t);
		return;
	}
	if (tgt_gate_excl(t))
		return;
	caw_read(t, caw_compared);
}

/* ---- ORWRITE(16) ---- */

int tgt_orwrite_prep(struct tgt_task *t)
{
	return caw_prep_range(t, get_be64(t->cdb + 2), get_be32(t->cdb + 10), 10,
			      tgt_task_config(t)->max_xfer_blocks);
}

static void orwrite_read_done(void *arg, int status)
{
	struct tgt_task *t = arg;
	uint32_t len = t->nblocks * caw_bs(t);
	uint8_t *data = t->iov.iov_base;
	const uint8_t *in = t->buf;

	if (status != 0) {
		caw_finish(t, status);
		return;
	}
	/* SBC-3 5.12: the block written is the OR of the medium and the data-out. */
	for (uint32_t i = 0; i < len; i++)
		data[i] |= in[i];
	caw_submit(t, VOL_OP_WRITE, data, caw_write_done);
}

void tgt_orwrite(struct tgt_task *t)
{
	if (t->nblocks == 0) {
		tgt_scsi_good(t);
		return;
	}
	if (tgt_gate_excl(t))
		return;
	caw_read(t, orwrite_read_done);
}

/* ---- WRITE ATOMIC(16) ---- */

int tgt_write_atomic_prep(struct tgt_task *t)
{
	/*
	 * SBC-4 5.48: TRANSFER LENGTH in bytes 12..13, beyond the MAXIMUM
	 * ATOMIC TRANSFER LENGTH: INVALID FIELD IN CDB. The ATOMIC BOUNDARY
	 * (bytes 10..11) must be 0: the usage map refuses anything else.
	 */
	return caw_prep_range(t, get_be64(t->cdb + 2), get_be16(t->cdb + 12), 12,
			      tgt_task_config(t)->max_xfer_blocks);
}

void tgt_write_atomic(struct tgt_task *t)
{
	if (t->nblocks == 0) {
		tgt_scsi_good(t);
		return;
	}
	/* Alone on the LU: no other write can interleave with this one. */
	if (tgt_gate_excl(t))
		return;
	caw_submit(t, VOL_OP_WRITE, t->buf, caw_write_done);
}
