/*
 * Media commands of the device server: SANITIZE (SBC-3 5.27: OVERWRITE,
 * BLOCK ERASE, EXIT FAILURE MODE), READ DEFECT DATA(10/12) (SBC-3 5.18,
 * 5.19), and the "sanitize in progress" state every other command checks.
 *
 * A volume has no media defects: the defect lists are empty. BLOCK ERASE
 * deallocates the whole volume (unmapped blocks read as zeros). A volume
 * is not encrypted, so CRYPTO ERASE has no key to change; what it promises
 * the host, that no user data can be read back (SBC-3 4.11.1), is what a
 * deallocation of every block gives, so it does the same as BLOCK ERASE
 * (Block Device Characteristics: WACEREQ 01b, reads return zeros).
 * OVERWRITE writes the initialization pattern over every block, pass
 * after pass, one chunk in flight at a time.
 *
 * A sanitize is a job of the logical unit, not of the command that started
 * it: SBC-3 4.11 has it go on through task management functions, resets
 * and the loss of the I_T nexus, and with IMMED set the command returns at
 * once while the job runs in the background. The job lives on the reactor
 * of the connection that started it, holds a reference on its target, and
 * counts as a connection of the service so that an engine shutdown waits
 * for its I/O in flight (it then stops between two chunks).
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

#define MEDIA_CHUNK   (1u << 20) /* OVERWRITE: bytes per write */
#define OW_HDR	      4u	 /* OVERWRITE parameter list header */
#define RDD10_HDR_LEN 4u
#define RDD12_HDR_LEN 8u
/*
 * OVERWRITE pace, bytes per second. A sanitize rewrites the whole volume;
 * unpaced it would take the pool's bandwidth from every other volume of
 * the engine (and of the cluster's back end) for as long as it runs. SBC-3
 * sets no time limit (the host polls with REQUEST SENSE, whose progress
 * indication says how far it is), so it runs as background maintenance
 * at a bounded rate, the way disks and arrays run theirs.
 */
#define MEDIA_RATE_DEFAULT (256ull << 20) /* iscsi.sanitize_rate_mib in the configuration */

/* A running sanitize of one LU. */
struct media_job {
	struct tgt_task gate; /* its place in the LU's write gate (scsi_caw.c) */
	struct tgt_lu *lu;
	struct tgt_target *ref;		/* reference held on the LU's target, or NULL */
	struct tgt *tgt;		/* the service it counts in (nconns), or NULL */
	const struct tgt_scsi_ops *ops; /* the engine's services, or NULL (no ticks, no ref) */
	struct util_reactor *reactor;
	struct vol_chan *chan;
	struct util_tick *tick;
	struct tgt_task *waiter; /* IMMED 0: the command, until answered or aborted */
	struct vol_io io;
	struct iovec iov;
	uint8_t *chunk; /* OVERWRITE: the pattern, MEDIA_CHUNK bytes */
	uint64_t lba, cap;
	uint64_t written; /* bytes, for the pace */
	uint64_t start_ns;
	unsigned passes, pass; /* OVERWRITE COUNT and the current pass (0-based) */
	unsigned sa;
	bool format; /* a FORMAT UNIT (deallocates like BLOCK ERASE) */
	bool invert;
	bool admitted; /* the gate let it in */
	bool io_busy;
	bool paused; /* ahead of its pace: the tick resumes it */
	bool ending;
	char peer[64];
	char who[ISCSI_NAME_MAX];
};

static uint32_t media_bs(const struct tgt_task *t)
{
	return vol_block_size(t->lu->vol);
}

/* ---- sanitize in progress ---- */

bool tgt_media_sense(const struct tgt_lu *lu, struct tgt_sense_args *a)
{
	if (lu == NULL || likely(!atomic_load_explicit(&lu->sanitizing, memory_order_relaxed)))
		return false;
	/*
	 * SPC-4 4.5.2.4.4: the sense-key specific field of NOT READY carries
	 * the PROGRESS INDICATION, the fraction done in 1/65536ths.
	 */
	memset(a, 0, sizeof(*a));
	a->key = SK_NOT_READY;
	a->code =
	    atomic_load(&lu->formatting) ? ASC_LU_NOT_READY_FORMAT : ASC_LU_NOT_READY_SANITIZE;
	a->sks_valid = true;
	a->sks[0] = SENSE_SKSV;
	put_be16(a->sks + 1, (uint16_t)atomic_load(&lu->sanitize_progress));
	return true;
}

int tgt_media_check(struct tgt_task *t)
{
	struct tgt_sense_args a;

	/*
	 * SBC-3 4.11.2: while a sanitize operation is in progress the device
	 * server terminates every command but INQUIRY, REPORT LUNS and
	 * REQUEST SENSE (the commands that run without an LU, F_NO_LUN) with
	 * NOT READY / LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS.
	 */
	if (t->lu == NULL || t->cmd == NULL || (t->cmd->flags & TGT_SCSI_F_NO_LUN))
		return 0;
	if (likely(!tgt_media_sense(t->lu, &a)))
		return 0;
	t->status = SAM_STAT_CHECK_CONDITION;
	t->data_len = 0;
	t->sense_len = tgt_scsi_sense_build(
	    t->sense, atomic_load_explicit(&t->lu->d_sense, memory_order_relaxed), &a);
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

/* Check the OVERWRITE parameter list; 1: completed with an error. */
static int media_overwrite_check(struct tgt_task *t)
{
	const uint8_t *p = t->buf;
	uint32_t plen = get_be16(p + 2);

	/*
	 * SBC-3 5.27.3: OVERWRITE COUNT 0, a TEST value other than 00b, an
	 * INITIALIZATION PATTERN LENGTH of 0, above the block length or past
	 * the parameter list: INVALID FIELD IN PARAMETER LIST.
	 */
	if ((p[0] & SANITIZE_OW_COUNT_MASK) == 0 || (p[0] & 0x60) != 0) {
		media_param_invalid(t, 0);
		return 1;
	}
	if (plen == 0 || plen > media_bs(t) || plen > t->xfer_len - OW_HDR) {
		media_param_invalid(t, 2);
		return 1;
	}
	return 0;
}

static const char *media_job_name(const struct media_job *j)
{
	return j->format ? "FORMAT UNIT" : "SANITIZE";
}

/* The job is over (status 0 or a negative errno): answer, release, free. */
static void media_job_end(struct media_job *j, int status)
{
	struct tgt_task *w = j->waiter;

	j->ending = true;
	j->waiter = NULL;
	if (j->admitted)
		tgt_gate_end(&j->gate);
	atomic_store(&j->lu->sanitize_progress, 0);
	atomic_store(&j->lu->formatting, false);
	atomic_store(&j->lu->sanitizing, false);
	if (status == 0)
		log_info("%s: %s: %s complete", j->peer, j->who, media_job_name(j));
	else if (status != -ECANCELED) /* a shutdown: said already */
		log_err("%s: %s: %s failed at LBA %" PRIu64 " of pass %u: %d", j->peer, j->who,
			media_job_name(j), j->lba, j->pass + 1, status);
	if (w != NULL) {
		if (status == 0) {
			tgt_scsi_good(w);
		} else {
			w->io.op = VOL_OP_WRITE;
			tgt_task_errno(w, status);
			tgt_task_done(w);
		}
	}
	if (j->tick != NULL)
		j->ops->tick_del(j->reactor, j->tick);
	if (j->chunk != NULL)
		util_buf_put(util_reactor_bufpool(j->reactor), j->chunk, MEDIA_CHUNK);
	if (j->ref != NULL)
		j->ops->target_put(j->ref);
	if (j->tgt != NULL)
		j->ops->conn_gone(j->tgt);
	free(j);
}

/*
 * IMMED 0 and the command was aborted (ABORT TASK, a reset, the connection
 * went): the command ends without status, the sanitize goes on (SBC-3 4.11).
 */
static void media_job_check_waiter(struct media_job *j)
{
	struct tgt_task *w = j->waiter;

	if (w == NULL || !(w->flags & TASK_F_ABORTED))
		return;
	j->waiter = NULL;
	log_info("%s: %s: SANITIZE command aborted; the sanitize goes on", j->peer, j->who);
	tgt_scsi_good(w); /* no response: the connection drops an aborted task's status */
}

static bool media_job_stopping(const struct media_job *j)
{
	return j->tgt != NULL && atomic_load(&j->tgt->stopping);
}

/* Within its pace: the configured rate since the start, plus one chunk of credit. */
static bool media_job_on_pace(const struct media_job *j)
{
	uint64_t rate = j->tgt && j->tgt->cfg.sanitize_mib_s
			    ? (uint64_t)j->tgt->cfg.sanitize_mib_s << 20
			    : MEDIA_RATE_DEFAULT;
	uint64_t ns = util_now_ns() - j->start_ns;
	uint64_t allowed = (uint64_t)((unsigned __int128)ns * rate / 1000000000u);

	return j->tick == NULL || j->written < allowed + MEDIA_CHUNK;
}

static void media_job_progress(struct media_job *j)
{
	uint64_t total = (uint64_t)j->passes * j->cap;
	uint64_t done = (uint64_t)j->pass * j->cap + j->lba;
	uint64_t frac = total != 0 ? (uint64_t)((unsigned __int128)done * 65536u / total) : 0;

	atomic_store(&j->lu->sanitize_progress, (unsigned)UTIL_MIN(frac, (uint64_t)65535));
}

static void media_job_next(struct media_job *j);

static void media_job_io_done(void *arg, int status)
{
	struct media_job *j = arg;

	j->io_busy = false;
	if (status != 0) {
		media_job_end(j, status);
		return;
	}
	if (j->sa != SANITIZE_SA_OVERWRITE) {
		media_job_end(j, 0);
		return;
	}
	j->lba += j->io.len / vol_block_size(j->lu->vol);
	j->written += j->io.len;
	media_job_progress(j);
	media_job_check_waiter(j);
	media_job_next(j);
}

static void media_job_submit(struct media_job *j, enum vol_op op, uint64_t offset, uint64_t len)
{
	int rc;

	memset(&j->io, 0, sizeof(j->io));
	j->io.op = op;
	j->io.offset = offset;
	j->io.len = len;
	if (op == VOL_OP_WRITE) {
		j->iov.iov_base = j->chunk;
		j->iov.iov_len = (size_t)len;
		j->io.iov = &j->iov;
		j->io.iovcnt = 1;
	}
	j->io.cb = media_job_io_done;
	j->io.cb_arg = j;
	j->io_busy = true;
	rc = vol_submit(j->chan, j->lu->vol, &j->io);
	if (rc < 0) {
		j->io_busy = false;
		media_job_end(j, rc);
	}
}

/* Issue the next piece of work, or finish. Never with I/O in flight. */
static void media_job_next(struct media_job *j)
{
	uint32_t bs = vol_block_size(j->lu->vol);

	if (media_job_stopping(j)) {
		log_warn("%s: %s: %s interrupted by the engine shutdown", j->peer, j->who,
			 media_job_name(j));
		media_job_end(j, -ECANCELED);
		return;
	}
	if (j->sa != SANITIZE_SA_OVERWRITE) {
		/* BLOCK / CRYPTO ERASE: deallocate every block; they read back as zeros (LBPRZ). */
		media_job_submit(j, VOL_OP_UNMAP, 0, vol_size(j->lu->vol));
		return;
	}
	if (j->lba >= j->cap) {
		if (++j->pass == j->passes) {
			media_job_end(j, 0);
			return;
		}
		/* "INVERT ... the initialization pattern shall be inverted between passes". */
		if (j->invert)
			for (uint32_t i = 0; i < MEDIA_CHUNK; i++)
				j->chunk[i] = (uint8_t)~j->chunk[i];
		j->lba = 0;
	}
	if (!media_job_on_pace(j)) {
		j->paused = true;
		return;
	}
	media_job_submit(j, VOL_OP_WRITE, j->lba * bs,
			 UTIL_MIN((uint64_t)(MEDIA_CHUNK / bs), j->cap - j->lba) * bs);
}

static void media_job_tick(void *arg)
{
	struct media_job *j = arg;

	media_job_check_waiter(j);
	if (!j->paused || j->io_busy || j->ending)
		return;
	if (!media_job_stopping(j) && !media_job_on_pace(j))
		return;
	j->paused = false;
	media_job_next(j);
}

/* The gate admitted the job: no write of the LU is in flight any more. */
static void media_job_admitted(struct tgt_task *gate)
{
	struct media_job *j = UTIL_CONTAINER_OF(gate, struct media_job, gate);

	j->admitted = true;
	j->start_ns = util_now_ns();
	media_job_next(j);
}

/* What the gate calls back when it admits a queued job. */
static const struct tgt_scsi_cmd media_gate_cmd = {
    .name = "SANITIZE (background)",
    .exec = media_job_admitted,
};

/* Build the job of \p t; NULL when out of memory. */
static struct media_job *media_job_new(struct tgt_task *t, unsigned sa)
{
	struct util_reactor *r = util_reactor_self();
	struct media_job *j = calloc(1, sizeof(*j));
	const uint8_t *p = t->buf;
	uint32_t bs = media_bs(t);

	if (j == NULL)
		return NULL;
	if (sa == SANITIZE_SA_OVERWRITE) {
		uint32_t plen = get_be16(p + 2);

		j->chunk = util_buf_get(util_reactor_bufpool(r), MEDIA_CHUNK);
		if (j->chunk == NULL) {
			free(j);
			return NULL;
		}
		/* The pattern starts again at the first byte of every logical block. */
		for (uint32_t i = 0; i < MEDIA_CHUNK; i++)
			j->chunk[i] = p[OW_HDR + (i % bs) % plen];
		j->passes = p[0] & SANITIZE_OW_COUNT_MASK;
		j->invert = (p[0] & SANITIZE_OW_INVERT) != 0;
	} else {
		j->passes = 1;
	}
	/* Without the engine's ticks (a unit test) the job runs unpaced. */
	j->ops = tgt_scsi_ops_of(t);
	if (j->ops != NULL && j->ops->tick_add != NULL)
		j->tick = j->ops->tick_add(r, media_job_tick, j);
	j->lu = t->lu;
	j->reactor = r;
	j->chan = tgt_task_chan(t);
	j->cap = tgt_sbc_nblocks(t->lu);
	j->sa = sa;
	j->gate.lu = t->lu;
	j->gate.cmd = &media_gate_cmd;
	snprintf(j->peer, sizeof(j->peer), "%s", t->conn != NULL ? t->conn->peer : "-");
	snprintf(j->who, sizeof(j->who), "%s",
		 t->lu->target != NULL ? t->lu->target->iqn : vol_name(t->lu->vol));
	if (t->lu->target != NULL && j->ops != NULL && j->ops->target_get != NULL) {
		j->ops->target_get(t->lu->target);
		j->ref = t->lu->target;
	}
	/*
	 * Counted like a connection: tgt_shutdown() waits for nconns to reach
	 * 0. Never from 0 here: the task's own connection is counted.
	 */
	if (t->conn != NULL && j->ops != NULL && j->ops->conn_gone != NULL) {
		j->tgt = t->conn->tgt;
		atomic_fetch_add(&j->tgt->nconns, 1);
	}
	return j;
}

static void media_start(struct tgt_task *t, unsigned sa, bool immed, bool format);

void tgt_sanitize(struct tgt_task *t)
{
	unsigned sa = t->cdb[1] & SCSI_SA_MASK;
	bool immed = (t->cdb[1] & SANITIZE_IMMED) != 0;

	/*
	 * SBC-3 5.27: EXIT FAILURE MODE leaves the state a failed sanitize
	 * leaves behind. A failed sanitize here reports its error and leaves
	 * the LU usable (no failure mode), so there is nothing to exit.
	 */
	if (sa == SANITIZE_SA_EXIT_FAILURE) {
		tgt_scsi_good(t);
		return;
	}
	if (sa == SANITIZE_SA_OVERWRITE && media_overwrite_check(t))
		return;
	media_start(t, sa, immed, false);
}

/*
 * Start the media job of \p t (checked): SANITIZE service action \p sa, or
 * a FORMAT UNIT (\p format: a BLOCK ERASE under another name and sense).
 */
static void media_start(struct tgt_task *t, unsigned sa, bool immed, bool format)
{
	struct media_job *j;

	/* One job per LU: another that won the race makes this one NOT READY. */
	if (atomic_exchange(&t->lu->sanitizing, true)) {
		tgt_scsi_fail(t, SK_NOT_READY,
			      atomic_load(&t->lu->formatting) ? ASC_LU_NOT_READY_FORMAT
							      : ASC_LU_NOT_READY_SANITIZE);
		tgt_task_done(t);
		return;
	}
	atomic_store(&t->lu->formatting, format);
	atomic_store(&t->lu->sanitize_progress, 0);
	j = media_job_new(t, sa);
	if (j == NULL) {
		atomic_store(&t->lu->formatting, false);
		atomic_store(&t->lu->sanitizing, false);
		t->io.op = VOL_OP_WRITE;
		tgt_task_errno(t, -ENOMEM);
		tgt_task_done(t);
		return;
	}
	j->format = format;
	log_info("%s: %s: %s started%s", j->peer, j->who, t->cmd->name,
		 immed ? " in the background" : "");
	/*
	 * SBC-3 5.27.1 / 5.3: with IMMED set, status returns once the CDB and
	 * the parameter list are checked; without, when the job is done. From
	 * here every other command of the LU gets NOT READY / SANITIZE (or
	 * FORMAT) IN PROGRESS; writes already in flight finish first (the gate
	 * admits the job once they are done).
	 */
	if (immed)
		tgt_scsi_good(t);
	else
		j->waiter = t;
	if (tgt_gate_excl(&j->gate) == 0)
		media_job_admitted(&j->gate);
}

/* ---- FORMAT UNIT ---- */

int tgt_format_unit_prep(struct tgt_task *t)
{
	/*
	 * SBC-3 5.3: no protection information here (INQUIRY PROTECT 0), so
	 * FMTPINFO other than 00b is an INVALID FIELD IN CDB. FMTDATA 1: a
	 * parameter list header of 4 bytes, or 8 with LONGLIST; this device
	 * server takes no defect list and no initialization pattern, so the
	 * header is all it reads (a longer list is refused by its lengths).
	 */
	if (t->cdb[1] & FU_FMTPINFO_MASK) {
		tgt_task_invalid_field(t, 1, 7);
		return 1;
	}
	if (!(t->cdb[1] & FU_FMTDATA)) {
		t->dir = TGT_DIR_NONE;
		t->xfer_len = 0;
		return 0;
	}
	t->dir = TGT_DIR_OUT;
	t->xfer_len = (t->cdb[1] & FU_LONGLIST) ? 8 : 4;
	return 0;
}

/*
 * FORMAT UNIT: the volume has no defects to manage and no physical format
 * to change; what a host asks of it is a blank medium. As for SANITIZE
 * BLOCK ERASE every block is deallocated, so it reads back as zeros
 * (LBPRZ) and a thin volume gives its space back.
 */
void tgt_format_unit(struct tgt_task *t)
{
	const uint8_t *p = t->buf;
	bool immed = false;

	if (t->cdb[1] & FU_FMTDATA) {
		bool longlist = (t->cdb[1] & FU_LONGLIST) != 0;
		uint32_t dll = longlist ? get_be32(p + 4) : get_be16(p + 2);

		/* PROTECTION FIELD USAGE: only 000b without protection information. */
		if (p[0] & FU_PFU_MASK) {
			media_param_invalid(t, 0);
			return;
		}
		/*
		 * FOV 0: DPRY, DCRT, STPF and IP "shall be set to zero"; with FOV
		 * 1 the defect options are moot (no defects), but an
		 * initialization pattern (IP) is not supported.
		 */
		if ((!(p[1] & FU_FOV) && (p[1] & (FU_DPRY | FU_DCRT | FU_STPF | FU_IP))) ||
		    (p[1] & FU_IP)) {
			media_param_invalid(t, 1);
			return;
		}
		if (dll != 0) {
			media_param_invalid(t, longlist ? 4 : 2);
			return;
		}
		immed = (p[1] & FU_IMMED) != 0;
	}
	media_start(t, SANITIZE_SA_BLOCK_ERASE, immed, true);
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
