/*
 * The copy manager of the SCSI device server: EXTENDED COPY (LID1) with
 * block-to-block segment descriptors between the volumes of this engine,
 * and RECEIVE COPY RESULTS (COPY STATUS, OPERATING PARAMETERS), SPC-4 6.4
 * and 6.18.
 *
 * A copy source or destination (CSCD) is named by an identification
 * descriptor (type E4h) holding the NAA designator that the Device
 * Identification VPD page reports for a volume; it resolves to the task's
 * own LU or to any other target of the engine the initiator may access.
 * Data moves chunk by chunk through one scratch buffer of the reactor's
 * pool (which also holds the copy's state, so nothing is allocated per
 * command), with vol_submit() reads and writes whose completions drive the
 * next step: the reactor is never blocked.
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "iscsi-tgt/scsi_internal.h"

/* Limits reported by OPERATING PARAMETERS (SPC-4 6.18.4). */
#define XCOPY_MAX_CSCDS	   8
#define XCOPY_MAX_SEGMENTS 32
#define XCOPY_MAX_DESC_LIST                                                                        \
	(XCOPY_MAX_CSCDS * XCOPY_CSCD_LEN + XCOPY_MAX_SEGMENTS * XCOPY_SEG_B2B_LEN)
#define XCOPY_OP_PARAMS_LEN 46 /* 44-byte page + the two descriptor type codes */

/* One pooled buffer: the copy's state in its first page, then the data. */
#define XCOPY_BUF_LEN	UTIL_BUF_MAX_POOLED
#define XCOPY_CTX_ROOM	4096u
#define XCOPY_CHUNK_MAX (XCOPY_BUF_LEN - XCOPY_CTX_ROOM)

struct xcopy_cscd {
	struct vol *vol;       /* NULL: not reachable */
	struct tgt_target *tg; /* reference held (another target's LU), or NULL */
	uint32_t block_len;    /* DISK BLOCK LENGTH of the descriptor */
	uint16_t off;	       /* in the parameter list, for sense data */
	uint8_t periph;	       /* PERIPHERAL DEVICE TYPE */
	bool nul;
};

struct xcopy_seg {
	uint64_t src_lba, dst_lba;
	uint32_t off; /* in the parameter list */
	uint16_t src, dst;
	uint16_t nblocks;
	bool dc;
};

struct xcopy_ctx {
	struct tgt_task *t;
	struct xcopy_cscd cscd[XCOPY_MAX_CSCDS];
	struct xcopy_seg seg[XCOPY_MAX_SEGMENTS];
	unsigned ncscd, nseg;
	struct tgt_xcopy_held *held; /* NULL: results are not held */
	/* the segment being processed */
	unsigned cur;
	struct vol *src, *dst;
	uint64_t src_off, dst_off, len; /* bytes */
	uint64_t done;			/* bytes of it copied */
	bool active;			/* set up by xcopy_segment_start() */
	bool backward;			/* overlapping, destination after source */
	uint32_t chunk;			/* bytes of the chunk in flight */
	uint64_t bytes;			/* transfer count of the whole command */
	uint8_t *data;
};
_Static_assert(sizeof(struct xcopy_ctx) <= XCOPY_CTX_ROOM, "copy state fits its page");

/* ---- sense ---- */

static bool xcopy_desc_sense(const struct tgt_task *t)
{
	return atomic_load_explicit(&t->lu->d_sense, memory_order_relaxed);
}

/*
 * CHECK CONDITION / COPY ABORTED for an error while processing segment
 * \p seg (SPC-4 6.4.4 "errors detected during processing of segment
 * descriptors"): the COMMAND-SPECIFIC INFORMATION field holds the number
 * of the segment, and a segment pointer (SPC-4 4.5.2.4.6) names the field
 * of the segment descriptor at fault.
 */
static void xcopy_abort_sense(struct tgt_task *t, uint16_t code, unsigned seg, int field)
{
	struct tgt_sense_args a = {.key = SK_COPY_ABORTED, .code = code};
	bool desc = xcopy_desc_sense(t);

	if (field >= 0) {
		a.sks_valid = true;
		a.sks[0] = SENSE_SKSV | SENSE_SKS_SD;
		put_be16(a.sks + 1, (uint16_t)field);
	}
	t->status = SAM_STAT_CHECK_CONDITION;
	t->data_len = 0;
	t->sense_len = tgt_scsi_sense_build(t->sense, desc, &a);
	if (!desc)
		put_be32(t->sense + 8, seg);
}

/* ILLEGAL REQUEST with \p code and a field pointer into the parameter list. */
static void xcopy_param_fail(struct tgt_task *t, uint16_t code, uint32_t off, int bit)
{
	tgt_scsi_fail_field(t, code, false, (uint16_t)UTIL_MIN(off, UINT16_MAX), bit);
}

/* ---- EXTENDED COPY: parameter list ---- */

int tgt_xcopy_prep(struct tgt_task *t)
{
	/*
	 * SPC-4 6.4.1: a PARAMETER LIST LENGTH of zero is not an error and
	 * moves nothing. A list shorter than its header, or longer than the
	 * header plus the MAXIMUM DESCRIPTOR LIST LENGTH we report (and no
	 * inline data, MAXIMUM INLINE DATA LENGTH 0), cannot be valid:
	 * PARAMETER LIST LENGTH ERROR before any data is transferred.
	 */
	if (t->xfer_len != 0 &&
	    (t->xfer_len < XCOPY_HDR_LEN || t->xfer_len > XCOPY_HDR_LEN + XCOPY_MAX_DESC_LIST)) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		return 1;
	}
	return 0;
}

/* Decode the CSCD descriptor list; 0, or 1 with sense set. */
static int xcopy_parse_cscds(struct tgt_task *t, struct xcopy_ctx *x, uint32_t tdll)
{
	const uint8_t *p = t->buf;

	/* SPC-4 6.4.3.4: "TOO MANY TARGET DESCRIPTORS" beyond our count. */
	if (tdll > XCOPY_MAX_CSCDS * XCOPY_CSCD_LEN) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_TOO_MANY_CSCDS);
		return 1;
	}
	for (uint32_t off = XCOPY_HDR_LEN; off < XCOPY_HDR_LEN + tdll; off += XCOPY_CSCD_LEN) {
		struct xcopy_cscd *c = &x->cscd[x->ncscd];
		const uint8_t *d = p + off;

		/*
		 * SPC-4 6.4.5.1: "If the copy manager does not support the
		 * CSCD descriptor type code, ... UNSUPPORTED TARGET
		 * DESCRIPTOR TYPE CODE". Only identification descriptors.
		 */
		if (d[0] != XCOPY_CSCD_ID) {
			xcopy_param_fail(t, ASC_UNSUPPORTED_CSCD_TYPE, off, -1);
			return 1;
		}
		if (XCOPY_HDR_LEN + tdll - off < XCOPY_CSCD_LEN) {
			xcopy_param_fail(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, 2, -1);
			return 1;
		}
		/*
		 * LU ID TYPE (byte 1 bits 7..6) is not checked: it qualifies
		 * the LU IDENTIFIER field of the older CSCD types, which an
		 * identification descriptor does not have; SPC-4 devices
		 * ignore it (SPC-3 had it reserved).
		 */
		/* The designation descriptor: 4 header bytes + at most 20. */
		if (d[7] > 20) {
			xcopy_param_fail(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, off + 7, -1);
			return 1;
		}
		memset(c, 0, sizeof(*c));
		c->off = (uint16_t)off;
		c->nul = (d[1] & XCOPY_CSCD_NUL) != 0;
		c->periph = d[1] & 0x1f;
		if (c->periph == SCSI_TYPE_DISK)
			c->block_len = get_be24(d + 29);
		x->ncscd++;
	}
	return 0;
}

/* Decode the segment descriptor list; 0, or 1 with sense set. */
static int xcopy_parse_segments(struct tgt_task *t, struct xcopy_ctx *x, uint32_t start,
				uint32_t sdll)
{
	const uint8_t *p = t->buf;
	uint32_t end = start + sdll;

	for (uint32_t off = start; off < end;) {
		struct xcopy_seg *s;
		const uint8_t *d = p + off;

		if (x->nseg == XCOPY_MAX_SEGMENTS) {
			tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_TOO_MANY_SEGMENTS);
			return 1;
		}
		if (end - off < 4) {
			tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
			return 1;
		}
		/* SPC-4 6.4.6.1: "UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE". */
		if (d[0] != XCOPY_SEG_B2B) {
			xcopy_param_fail(t, ASC_UNSUPPORTED_SEGMENT_TYPE, off, -1);
			return 1;
		}
		if (get_be16(d + 2) != XCOPY_SEG_B2B_LEN - 4) {
			xcopy_param_fail(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, off + 2, -1);
			return 1;
		}
		if (end - off < XCOPY_SEG_B2B_LEN) {
			tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
			return 1;
		}
		s = &x->seg[x->nseg++];
		s->off = off;
		s->dc = (d[1] & XCOPY_SEG_DC) != 0;
		s->src = get_be16(d + 4);
		s->dst = get_be16(d + 6);
		s->nblocks = get_be16(d + 10);
		s->src_lba = get_be64(d + 12);
		s->dst_lba = get_be64(d + 20);
		off += XCOPY_SEG_B2B_LEN;
	}
	return 0;
}

/*
 * May the initiator of \p t reach the LU of \p tg through a copy? Only
 * when it could log in to that target itself without other credentials:
 * served here (no redirect), its ACL admits the initiator, and either no
 * CHAP or the same CHAP secret the session proved. Under targets_lock.
 */
static bool xcopy_target_reachable(const struct tgt_task *t, const struct tgt_target *tg)
{
	const struct tgt_target *own = t->lu->target;
	const struct tgt_scsi_ops *ops = tgt_scsi_ops_of(t);
	const char *ini = t->conn->sess != NULL ? t->conn->sess->params.initiator_name : "";

	if (ops == NULL || ops->target_admit == NULL || ops->target_admit(tg, ini) != 0)
		return false;
	if (tg->chap.user[0] == '\0')
		return true;
	return own != NULL && strcmp(own->chap.user, tg->chap.user) == 0 &&
	       strcmp(own->chap.secret, tg->chap.secret) == 0;
}

/*
 * Find the volume whose NAA designator is \p desig: the task's own LU
 * first, then the engine's other targets (SPC-4 6.4.5.6: the copy manager
 * "shall use the designator to identify the logical unit").
 */
static void xcopy_resolve(struct tgt_task *t, struct xcopy_cscd *c, const uint8_t *desig)
{
	struct tgt *engine = t->conn != NULL ? t->conn->tgt : NULL;
	const struct tgt_scsi_ops *ops = tgt_scsi_ops_of(t);
	struct tgt_target *tg;

	/* Binary code set, LU association, NAA, the 16 bytes of vol_id(). */
	if ((desig[0] & 0x0f) != DESIG_CODESET_BINARY || (desig[1] & 0x30) != DESIG_ASSOC_LU ||
	    (desig[1] & 0x0f) != DESIG_TYPE_NAA || desig[3] != VOL_ID_LEN)
		return;
	if (memcmp(vol_id(t->lu->vol), desig + 4, VOL_ID_LEN) == 0) {
		c->vol = t->lu->vol;
		return;
	}
	/* Without the engine's target list (a unit test): the task's own LU only. */
	if (engine == NULL || ops == NULL || ops->target_get == NULL || ops->target_put == NULL)
		return;
	pthread_rwlock_rdlock(&engine->targets_lock);
	TAILQ_FOREACH (tg, &engine->targets, link) {
		if (tg->lu.vol == NULL || memcmp(vol_id(tg->lu.vol), desig + 4, VOL_ID_LEN) != 0)
			continue;
		if (xcopy_target_reachable(t, tg)) {
			ops->target_get(tg);
			c->tg = tg;
			c->vol = tg->lu.vol;
		}
		break;
	}
	pthread_rwlock_unlock(&engine->targets_lock);
}

static void xcopy_release(struct xcopy_ctx *x)
{
	for (unsigned i = 0; i < x->ncscd; i++) {
		if (x->cscd[i].tg != NULL) /* taken through the same ops */
			tgt_scsi_ops_of(x->t)->target_put(x->cscd[i].tg);
		x->cscd[i].tg = NULL;
	}
}

/* ---- held results (per I_T nexus) ---- */

static struct tgt_xcopy_held *xcopy_held_find(struct tgt_itl *itl, uint8_t list_id)
{
	for (unsigned i = 0; i < TGT_XCOPY_HELD; i++)
		if (itl->xcopy[i].status != 0 && itl->xcopy[i].list_id == list_id)
			return &itl->xcopy[i];
	return NULL;
}

/* A slot for \p list_id: its old one, a free one, or the oldest finished one. */
static struct tgt_xcopy_held *xcopy_held_take(struct tgt_itl *itl, uint8_t list_id)
{
	struct tgt_xcopy_held *h = xcopy_held_find(itl, list_id);

	for (unsigned i = 0; h == NULL && i < TGT_XCOPY_HELD; i++)
		if (itl->xcopy[i].status == 0)
			h = &itl->xcopy[i];
	for (unsigned i = 0; i < TGT_XCOPY_HELD; i++) {
		struct tgt_xcopy_held *o = &itl->xcopy[i];

		if (h == NULL && o->status != RCR_STATUS_IN_PROGRESS + 1)
			h = o;
		else if (h != NULL && h->status != 0 && h->list_id != list_id &&
			 o->status != RCR_STATUS_IN_PROGRESS + 1 && o->seq < h->seq)
			h = o;
	}
	if (h == NULL)
		return NULL;
	memset(h, 0, sizeof(*h));
	h->list_id = list_id;
	h->status = RCR_STATUS_IN_PROGRESS + 1;
	h->seq = ++itl->xcopy_seq;
	return h;
}

/* ---- EXTENDED COPY: data movement ---- */

/* Complete an EXTENDED COPY: leave the LU's write gate (a no-op when not in it), answer. */
static void xcopy_done(struct tgt_task *t)
{
	tgt_gate_end(t);
	tgt_task_done(t);
}

static void xcopy_finish(struct xcopy_ctx *x)
{
	struct tgt_task *t = x->t;

	if (x->held != NULL) {
		x->held->status =
		    (t->status == SAM_STAT_GOOD ? RCR_STATUS_GOOD : RCR_STATUS_ERROR) + 1;
		x->held->segments = (uint16_t)x->cur;
		x->held->bytes = x->bytes;
	}
	if (t->status != SAM_STAT_GOOD)
		log_debug("%s: %s: EXTENDED COPY stopped in segment %u after %" PRIu64 " bytes",
			  t->conn != NULL ? t->conn->peer : "-", vol_name(t->lu->vol), x->cur,
			  x->bytes);
	xcopy_release(x);
	util_buf_put(util_reactor_bufpool(util_reactor_self()), x, XCOPY_BUF_LEN);
	xcopy_done(t);
}

static void xcopy_step(struct xcopy_ctx *x);

/* COPY ABORTED for a failed read or write of segment x->cur. */
static void xcopy_io_failed(struct xcopy_ctx *x, bool reading, int err)
{
	uint16_t code;

	switch (err) {
	case -EINVAL:
		code = ASC_LBA_OUT_OF_RANGE;
		break;
	case -ENOSPC:
		code = ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT;
		break;
	case -EIO:
	case -ENODATA:
		code = reading ? ASC_UNRECOVERED_READ_ERROR : ASC_WRITE_ERROR;
		break;
	default:
		code = ASC_INTERNAL_TARGET_FAILURE;
		break;
	}
	log_warn("%s: EXTENDED COPY segment %u: %s failed: %s", vol_name(x->t->lu->vol), x->cur,
		 reading ? "read" : "write", strerror(-err));
	xcopy_abort_sense(x->t, code, x->cur, -1);
	xcopy_finish(x);
}

/* Offset of the current chunk within the segment. */
static uint64_t xcopy_chunk_pos(const struct xcopy_ctx *x)
{
	return x->backward ? x->len - x->done - x->chunk : x->done;
}

static int xcopy_submit(struct xcopy_ctx *x, enum vol_op op, struct vol *v, uint64_t off, vol_cb cb)
{
	struct tgt_task *t = x->t;

	memset(&t->io, 0, sizeof(t->io));
	t->iov.iov_base = x->data;
	t->iov.iov_len = x->chunk;
	t->io.op = op;
	t->io.offset = off + xcopy_chunk_pos(x);
	t->io.len = x->chunk;
	t->io.iov = &t->iov;
	t->io.iovcnt = 1;
	t->io.cb = cb;
	t->io.cb_arg = x;
	return vol_submit(tgt_task_chan(t), v, &t->io);
}

static void xcopy_write_done(void *arg, int status)
{
	struct xcopy_ctx *x = arg;

	if (status != 0) {
		xcopy_io_failed(x, false, status);
		return;
	}
	x->done += x->chunk;
	x->bytes += x->chunk;
	xcopy_step(x);
}

static void xcopy_read_done(void *arg, int status)
{
	struct xcopy_ctx *x = arg;
	int rc;

	if (status != 0) {
		xcopy_io_failed(x, true, status);
		return;
	}
	rc = xcopy_submit(x, VOL_OP_WRITE, x->dst, x->dst_off, xcopy_write_done);
	if (rc < 0)
		xcopy_io_failed(x, false, rc);
}

/*
 * Check segment x->cur and set up its copy; 0, or 1 when the command ended
 * (sense set). The checks SPC-4 asks while processing the segment: the
 * CSCD indexes exist and are reachable block devices, the ranges fit
 * both devices, and the length is whole blocks on both sides.
 */
static int xcopy_segment_start(struct xcopy_ctx *x)
{
	const struct xcopy_seg *s = &x->seg[x->cur];
	const struct xcopy_cscd *src, *dst;
	uint32_t sbs, dbs;
	uint64_t scap, dcap, sblocks, dblocks;

	if (s->src >= x->ncscd || s->dst >= x->ncscd) {
		xcopy_abort_sense(x->t, ASC_COPY_TARGET_UNREACHABLE, x->cur,
				  s->src >= x->ncscd ? 4 : 6);
		return 1;
	}
	src = &x->cscd[s->src];
	dst = &x->cscd[s->dst];
	/* NUL (SPC-4 6.4.5.1): "the CSCD descriptor ... shall not be used". */
	if (src->vol == NULL || dst->vol == NULL) {
		xcopy_abort_sense(x->t, ASC_COPY_TARGET_UNREACHABLE, x->cur,
				  src->vol == NULL ? 4 : 6);
		return 1;
	}
	if (src->periph != SCSI_TYPE_DISK || dst->periph != SCSI_TYPE_DISK) {
		xcopy_abort_sense(x->t, ASC_INCORRECT_COPY_TARGET, x->cur,
				  src->periph != SCSI_TYPE_DISK ? 4 : 6);
		return 1;
	}
	/*
	 * SPC-4 7.5.8: a destination whose SWP is set takes no write; the
	 * copy stops here with the destination's WRITE PROTECTED.
	 */
	if (atomic_load(dst->tg != NULL ? &dst->tg->lu.swp : &x->t->lu->swp)) {
		xcopy_abort_sense(x->t, ASC_WRITE_PROTECTED, x->cur, 6);
		return 1;
	}
	sbs = vol_block_size(src->vol);
	dbs = vol_block_size(dst->vol);
	/*
	 * SPC-4 6.4.6.5: with DC zero the NUMBER OF BLOCKS counts source
	 * blocks, with DC one destination blocks; the other side must take a
	 * whole number of its own blocks (CAT only matters for residues a
	 * block-to-block copy never keeps).
	 */
	x->len = (uint64_t)s->nblocks * (s->dc ? dbs : sbs);
	if (x->len % sbs != 0 || x->len % dbs != 0) {
		xcopy_abort_sense(x->t, ASC_UNEXPECTED_INEXACT_SEG, x->cur, 10);
		return 1;
	}
	sblocks = x->len / sbs;
	dblocks = x->len / dbs;
	scap = vol_size(src->vol) / sbs;
	dcap = vol_size(dst->vol) / dbs;
	/*
	 * Beyond either capacity: COPY ABORTED naming the LBA field; the
	 * segments before this one stay copied (SEGMENTS PROCESSED says so).
	 */
	if (s->src_lba > scap || sblocks > scap - s->src_lba) {
		xcopy_abort_sense(x->t, ASC_NO_ADDITIONAL_SENSE, x->cur, 12);
		return 1;
	}
	if (s->dst_lba > dcap || dblocks > dcap - s->dst_lba) {
		xcopy_abort_sense(x->t, ASC_NO_ADDITIONAL_SENSE, x->cur, 20);
		return 1;
	}
	x->src = src->vol;
	x->dst = dst->vol;
	x->src_off = s->src_lba * sbs;
	x->dst_off = s->dst_lba * dbs;
	x->done = 0;
	/* Overlap on one volume with the destination ahead: copy from the end. */
	x->backward =
	    x->src == x->dst && x->dst_off > x->src_off && x->dst_off < x->src_off + x->len;
	return 0;
}

/* Copy the next chunk, start the next segment, or finish. */
static void xcopy_step(struct xcopy_ctx *x)
{
	struct tgt_task *t = x->t;
	int rc;

	/* Aborted by a task management function: stop between chunks. */
	while (!(t->flags & TASK_F_ABORTED)) {
		if (x->active && x->done == x->len) {
			x->active = false;
			x->cur++;
		}
		if (!x->active) {
			if (x->cur == x->nseg) {
				t->status = SAM_STAT_GOOD;
				t->sense_len = 0;
				xcopy_finish(x);
				return;
			}
			if (xcopy_segment_start(x)) {
				xcopy_finish(x);
				return;
			}
			x->active = true;
			continue; /* NUMBER OF BLOCKS 0 moves nothing */
		}
		x->chunk = (uint32_t)UTIL_MIN(x->len - x->done, (uint64_t)XCOPY_CHUNK_MAX);
		rc = xcopy_submit(x, VOL_OP_READ, x->src, x->src_off, xcopy_read_done);
		if (rc < 0)
			xcopy_io_failed(x, true, rc);
		return;
	}
	tgt_scsi_fail(t, SK_ABORTED_COMMAND, ASC_NO_ADDITIONAL_SENSE);
	xcopy_finish(x);
}

void tgt_xcopy(struct tgt_task *t)
{
	struct util_bufpool *bp = util_reactor_bufpool(util_reactor_self());
	const uint8_t *p = t->buf;
	struct xcopy_ctx *x;
	uint32_t tdll, sdll, inl;
	uint8_t list_id, usage;

	if (t->xfer_len == 0) {
		tgt_scsi_good(t);
		return;
	}
	/*
	 * The copy writes the LU: like any write it goes through the write
	 * gate (scsi_caw.c), or a COMPARE AND WRITE would not be atomic
	 * against it and a SANITIZE could start while it still writes, its
	 * data outliving the sanitize. Admitted now, or queued: the gate calls
	 * this handler again once admitted. A copy into another target's LU
	 * is not gated on that LU.
	 */
	if (tgt_gate_write(t))
		return;
	list_id = p[0];
	usage = (p[1] >> XCOPY_LIST_ID_USAGE_SHIFT) & 0x3;
	tdll = get_be16(p + 2);
	sdll = get_be32(p + 8);
	inl = get_be32(p + 12);
	/*
	 * SPC-4 6.4.3.1: descriptor lists that run past the parameter list
	 * are a PARAMETER LIST LENGTH ERROR; so are lists longer than the
	 * MAXIMUM DESCRIPTOR LIST LENGTH (6.18.4).
	 */
	if ((uint64_t)XCOPY_HDR_LEN + tdll + sdll + inl > t->xfer_len ||
	    (uint64_t)tdll + sdll > XCOPY_MAX_DESC_LIST) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		xcopy_done(t);
		return;
	}
	/* MAXIMUM INLINE DATA LENGTH is 0: no segment type here uses any. */
	if (inl != 0) {
		xcopy_param_fail(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, 12, -1);
		xcopy_done(t);
		return;
	}
	/* LIST ID USAGE 01b is reserved; 11b (no list identifier) wants LIST IDENTIFIER 0. */
	if (usage == 0x1 || (usage == XCOPY_LIST_ID_NONE && list_id != 0)) {
		xcopy_param_fail(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, usage == 0x1 ? 1 : 0,
				 usage == 0x1 ? 4 : -1);
		xcopy_done(t);
		return;
	}

	x = util_buf_get(bp, XCOPY_BUF_LEN);
	if (x == NULL) {
		tgt_task_errno(t, -ENOMEM);
		xcopy_done(t);
		return;
	}
	memset(x, 0, sizeof(*x));
	x->t = t;
	x->data = (uint8_t *)x + XCOPY_CTX_ROOM;
	if (xcopy_parse_cscds(t, x, tdll) ||
	    xcopy_parse_segments(t, x, XCOPY_HDR_LEN + tdll, sdll)) {
		x->ncscd = 0; /* no references taken yet */
		goto fail;
	}
	for (unsigned i = 0; i < x->ncscd; i++) {
		struct xcopy_cscd *c = &x->cscd[i];

		if (c->nul)
			continue;
		xcopy_resolve(t, c, p + c->off + 4);
		/* The DISK BLOCK LENGTH must be the device's (SPC-4 6.4.5.2). */
		if (c->vol != NULL && c->periph == SCSI_TYPE_DISK &&
		    c->block_len != vol_block_size(c->vol)) {
			xcopy_param_fail(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, c->off + 29u, -1);
			goto fail;
		}
	}
	/*
	 * SPC-4 6.4.3.2: a LIST IDENTIFIER that duplicates one of a copy
	 * still in progress on this I_T nexus: OPERATION IN PROGRESS.
	 */
	if (usage != XCOPY_LIST_ID_NONE && t->itl != NULL) {
		struct tgt_xcopy_held *h = xcopy_held_find(t->itl, list_id);

		if (h != NULL && h->status == RCR_STATUS_IN_PROGRESS + 1) {
			tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_OPERATION_IN_PROGRESS);
			goto fail;
		}
	}
	if (usage == XCOPY_LIST_ID_HOLD && t->itl != NULL) {
		x->held = xcopy_held_take(t->itl, list_id);
		if (x->held == NULL) { /* every slot busy with a running copy */
			tgt_task_errno(t, -EAGAIN);
			goto fail;
		}
	}
	xcopy_step(x);
	return;

fail:
	xcopy_release(x);
	util_buf_put(bp, x, XCOPY_BUF_LEN);
	xcopy_done(t);
}

/* ---- RECEIVE COPY RESULTS ---- */

void tgt_xcopy_copy_status(struct tgt_task *t)
{
	struct tgt_xcopy_held *h = t->itl != NULL ? xcopy_held_find(t->itl, t->cdb[2]) : NULL;
	uint8_t buf[RCR_COPY_STATUS_LEN];
	uint64_t count;
	uint8_t units = 0;

	/*
	 * SPC-4 6.18.3: "If ... no EXTENDED COPY command with the specified
	 * LIST IDENTIFIER ... the copy manager shall terminate the command
	 * with ... INVALID FIELD IN CDB".
	 */
	if (h == NULL) {
		tgt_task_invalid_field(t, 2, -1);
		tgt_task_done(t);
		return;
	}
	/* TRANSFER COUNT UNITS: bytes, KiB, MiB, ... whatever makes it fit. */
	for (count = h->bytes; count > UINT32_MAX; count >>= 10)
		units++;
	memset(buf, 0, sizeof(buf));
	put_be32(buf, RCR_COPY_STATUS_LEN - 4);
	buf[4] = h->status - 1;
	put_be16(buf + 5, h->segments);
	buf[7] = units;
	put_be32(buf + 8, (uint32_t)count);
	tgt_scsi_data_in(t, buf, sizeof(buf));
}

void tgt_xcopy_op_params(struct tgt_task *t)
{
	uint8_t buf[XCOPY_OP_PARAMS_LEN];
	uint32_t bs = vol_block_size(t->lu->vol);

	/* SPC-4 6.18.4 OPERATING PARAMETERS, LID1 format. */
	memset(buf, 0, sizeof(buf));
	put_be32(buf, XCOPY_OP_PARAMS_LEN - 4);
	buf[4] = 0x01; /* SNLID: LIST ID USAGE 11b is supported */
	put_be16(buf + 8, XCOPY_MAX_CSCDS);
	put_be16(buf + 10, XCOPY_MAX_SEGMENTS);
	put_be32(buf + 12, XCOPY_MAX_DESC_LIST);
	/* MAXIMUM SEGMENT LENGTH: what a 16-bit NUMBER OF BLOCKS can say. */
	put_be32(buf + 16, UINT16_MAX * bs);
	/* MAXIMUM INLINE DATA LENGTH, HELD DATA LIMIT, stream size: 0. */
	put_be16(buf + 34, 64);		      /* TOTAL CONCURRENT COPIES */
	buf[36] = TGT_XCOPY_HELD;	      /* MAXIMUM CONCURRENT COPIES */
	buf[37] = (uint8_t)__builtin_ctz(bs); /* DATA SEGMENT GRANULARITY (log 2) */
	buf[43] = 2;			      /* IMPLEMENTED DESCRIPTOR LIST LENGTH */
	buf[44] = XCOPY_SEG_B2B;
	buf[45] = XCOPY_CSCD_ID;
	tgt_scsi_data_in(t, buf, sizeof(buf));
}
