/*
 * SCSI Command PDUs and their data: task allocation, CmdSN ordering,
 * immediate / unsolicited / solicited (R2T) data-out straight into the task
 * buffer, Data-In with phase-collapsed status, SCSI Response with sense and
 * residuals (RFC 7143 11.3-11.8).
 */
#define UTIL_LOG_TAG "cmd"
#include <errno.h>
#include <stdlib.h>

#include "iscsi-tgt/tgt_internal.h"

/*
 * Tasks beyond the CmdSN window: immediate commands, and tasks whose status
 * is queued (their window slot is already returned) but not yet written.
 */
#define TASK_SPARE(qd) ((qd) + 16)

int tgt_cmd_tasks_init(struct tgt_conn *c)
{
	unsigned n = c->tgt->cfg.queue_depth + TASK_SPARE(c->tgt->cfg.queue_depth);

	c->tasks = calloc(n, sizeof(*c->tasks));
	if (!c->tasks)
		return -ENOMEM;
	c->ntasks = n;
	for (unsigned i = n; i-- > 0;) {
		c->tasks[i].index = (uint16_t)i;
		c->tasks[i].next_free = c->task_free;
		c->task_free = &c->tasks[i];
	}
	return 0;
}

void tgt_cmd_tasks_free(struct tgt_conn *c)
{
	free(c->tasks);
	c->tasks = NULL;
	c->task_free = NULL;
	c->ntasks = 0;
}

static struct util_bufpool *conn_pool(struct tgt_conn *c)
{
	return util_reactor_bufpool(c->w->reactor);
}

struct vol_chan *tgt_task_chan(const struct tgt_task *t)
{
	return t->conn->w->chan;
}

const struct tgt_config *tgt_task_config(const struct tgt_task *t)
{
	return &t->conn->tgt->cfg;
}

static struct tgt_task *task_get(struct tgt_conn *c)
{
	struct tgt_task *t = c->task_free;

	if (!t)
		return NULL;
	c->task_free = t->next_free;
	uint16_t gen = t->gen, index = t->index;
	memset(t, 0, sizeof(*t));
	t->gen = gen;
	t->index = index;
	t->flags = TASK_F_INUSE;
	t->conn = c;
	c->tasks_busy++;
	return t;
}

/*
 * Give back the task's CmdSN window slot. Done when its status is queued, so
 * that the response itself carries the larger MaxCmdSN; the task stays
 * allocated until its PDUs are written, which the spare tasks cover.
 */
static void task_window_release(struct tgt_task *t)
{
	if ((t->flags & TASK_F_WINDOW) && t->conn->sess) {
		t->flags &= ~TASK_F_WINDOW;
		t->conn->sess->max_cmdsn++;
	}
}

void tgt_task_release(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;

	if (!(t->flags & TASK_F_INUSE))
		return;
	if (t->flags & TASK_F_WAITING)
		TAILQ_REMOVE(&c->waiting, t, link);
	else
		TAILQ_REMOVE(&c->active, t, link);
	if (t->buf)
		util_buf_put(conn_pool(c), t->buf, t->buf_len);
	task_window_release(t);
	t->buf = NULL;
	t->flags = 0;
	t->gen++;
	t->next_free = c->task_free;
	c->task_free = t;
	c->tasks_busy--;
	if (c->logout_pending && c->state != CONN_CLOSING)
		tgt_logout_maybe_respond(c);
}

static void task_maybe_release(struct tgt_task *t)
{
	if (t->txpdus_pending == 0 && !(t->flags & TASK_F_EXECUTING) &&
	    (t->flags & (TASK_F_RSP_QUEUED | TASK_F_ABORTED)))
		tgt_task_release(t);
}

void tgt_task_tx_done(struct tgt_task *t)
{
	t->txpdus_pending--;
	task_maybe_release(t);
}

struct tgt_task *tgt_task_by_itt(struct tgt_conn *c, uint32_t itt)
{
	struct tgt_task *t;

	TAILQ_FOREACH (t, &c->active, link)
		if (t->itt == itt)
			return t;
	TAILQ_FOREACH (t, &c->waiting, link)
		if (t->itt == itt)
			return t;
	return NULL;
}

/* SAM-5 4.6: single-level LUN, peripheral or flat addressing. */
static bool lun_decode(const uint8_t *l, uint64_t *lun)
{
	for (int i = 2; i < 8; i++)
		if (l[i])
			return false;
	switch (l[0] >> 6) {
	case 0:
		if (l[0] & 0x3f)
			return false;
		*lun = l[1];
		return true;
	case 1:
		*lun = ((uint64_t)(l[0] & 0x3f) << 8) | l[1];
		return true;
	default:
		return false;
	}
}

/* ---- responses ---- */

static void task_send_r2ts(struct tgt_task *t);
static void task_try_execute(struct tgt_task *t);

static void residual(const struct tgt_task *t, uint8_t *flags, uint32_t *count)
{
	uint32_t done;

	switch (t->dir) {
	case TGT_DIR_IN:
		done = t->data_len;
		break;
	case TGT_DIR_OUT:
		/* What the CDB asked for, even when only part of it was run. */
		done = t->xfer_cdb ? t->xfer_cdb : t->xfer_len;
		break;
	default:
		done = 0;
		break;
	}
	*flags = 0;
	*count = 0;
	/* RFC 7143 11.4.5: residuals are relative to ExpectedDataTransferLength. */
	if (done < t->exp_xfer_len) {
		*flags = ISCSI_RSP_UNDERFLOW;
		*count = t->exp_xfer_len - done;
	} else if (done > t->exp_xfer_len) {
		*flags = ISCSI_RSP_OVERFLOW;
		*count = done - t->exp_xfer_len;
	}
}

static void task_send_status(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;
	struct tgt_txbuf *tb = tgt_txbuf_get(c);
	uint8_t rflags;
	uint32_t rcount;

	if (!tb) {
		tgt_conn_close(c, "out of memory for a SCSI Response");
		return;
	}
	struct iscsi_bhs_scsi_rsp *r = (void *)tb->pdu.hdr.raw;
	residual(t, &rflags, &rcount);
	r->opcode = ISCSI_OP_SCSI_RSP;
	r->flags = ISCSI_FLAG_FINAL | rflags;
	r->response = ISCSI_RSP_CMD_COMPLETED;
	r->status = t->status;
	put_be32(r->itt, t->itt);
	task_window_release(t);
	tgt_conn_fill_sn(c, r, true);
	/* RFC 7143 11.4.6: the R2T and Data-In PDUs sent for the command. */
	put_be32(r->exp_datasn, t->dir == TGT_DIR_IN ? t->datasn : t->r2tsn);
	put_be32(r->residual, rcount);
	if (t->sense_len) {
		/* RFC 7143 11.4.7: SenseLength (2 bytes) then the sense data. */
		put_be16(t->rsp_data, t->sense_len);
		memcpy(t->rsp_data + 2, t->sense, t->sense_len);
		tb->pdu.data = t->rsp_data;
		tb->pdu.data_len = 2u + t->sense_len;
	}
	tb->task = t;
	t->flags |= TASK_F_RSP_QUEUED;
	tgt_conn_send(c, tb);
}

static void task_send_data_in(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;
	const struct iscsi_params *p = &c->sess->params;
	uint32_t total = UTIL_MIN(t->data_len, t->exp_xfer_len);
	uint32_t seg = UTIL_MIN(p->peer_max_recv_dsl, p->max_burst);
	uint32_t off = 0, burst = 0;
	/* Phase collapse (RFC 7143 11.7.4): status rides on the last Data-In when GOOD. */
	bool collapse = t->status == SAM_STAT_GOOD && t->sense_len == 0;

	while (off < total) {
		struct tgt_txbuf *tb = tgt_txbuf_get(c);
		if (!tb) {
			tgt_conn_close(c, "out of memory for Data-In");
			return;
		}
		uint32_t n = UTIL_MIN(seg, total - off);
		n = UTIL_MIN(n, p->max_burst - burst);
		struct iscsi_bhs_data_in *d = (void *)tb->pdu.hdr.raw;
		d->opcode = ISCSI_OP_DATA_IN;
		put_be32(d->itt, t->itt);
		put_be32(d->ttt, ISCSI_RSVD_TAG);
		put_be32(d->datasn, t->datasn++);
		put_be32(d->buffer_offset, off);
		off += n;
		burst += n;
		bool last = off == total;
		if (last || burst == p->max_burst) {
			d->flags |= ISCSI_FLAG_FINAL;
			burst = 0;
		}
		if (last && collapse) {
			uint8_t rflags;
			uint32_t rcount;
			residual(t, &rflags, &rcount);
			d->flags |= ISCSI_DATA_STATUS | rflags;
			d->status = t->status;
			put_be32(d->residual, rcount);
			task_window_release(t);
			tgt_conn_fill_sn(c, d, true);
			t->flags |= TASK_F_RSP_QUEUED;
		} else {
			tgt_conn_fill_sn(c, d, false);
		}
		tb->pdu.data = (uint8_t *)t->buf + off - n;
		tb->pdu.data_len = n;
		tb->task = t;
		/*
		 * Once the PDU with the status is out, its done callback may
		 * release the task: nothing below may touch it then.
		 */
		tgt_conn_send(c, tb);
		if (c->state == CONN_CLOSING)
			return;
	}
	/* RFC 7143 11.7.4: with the S bit set, no SCSI Response follows. */
	if (!collapse)
		task_send_status(t);
}

/* The task's outcome is known: answer the initiator. */
static void task_respond(struct tgt_task *t)
{
	if (t->flags & TASK_F_ABORTED) {
		task_maybe_release(t);
		return;
	}
	if (t->dir == TGT_DIR_IN && t->data_len && t->exp_xfer_len && t->status == SAM_STAT_GOOD)
		task_send_data_in(t);
	else
		task_send_status(t);
}

void tgt_task_done(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;

	t->flags &= ~TASK_F_EXECUTING;
	t->flags |= TASK_F_SCSI_DONE;
	c->scsi_inflight--;
	if (c->state == CONN_CLOSING) {
		t->flags |= TASK_F_ABORTED;
		task_maybe_release(t);
		tgt_conn_task_left(c);
		return;
	}
	if (t->flags & TASK_F_TMF_WAITER)
		tgt_tmf_task_finished(t);
	task_respond(t);
}

/* ---- data-out bookkeeping ---- */

static bool task_data_complete(const struct tgt_task *t)
{
	return (t->flags & TASK_F_UNSOL_DONE) && t->data_received >= t->data_expected &&
	       t->r2t_outstanding == 0;
}

static void task_try_execute(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;

	if (!(t->flags & TASK_F_ORDERED) || !task_data_complete(t) ||
	    (t->flags & (TASK_F_EXECUTING | TASK_F_RSP_QUEUED | TASK_F_ABORTED)))
		return;
	if (t->flags & TASK_F_SCSI_DONE) {
		/* prepare() already decided; the data-out was only drained. */
		task_respond(t);
		return;
	}
	t->flags |= TASK_F_EXECUTING;
	c->scsi_inflight++;
	tgt_scsi_execute(t);
}

/* Solicit the rest of the data-out, MaxOutstandingR2T bursts at a time (RFC 7143 11.8). */
static void task_send_r2ts(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;
	const struct iscsi_params *p = &c->sess->params;

	while (t->r2t_offset < t->data_expected && t->r2t_outstanding < p->max_outstanding_r2t) {
		struct tgt_txbuf *tb = tgt_txbuf_get(c);
		if (!tb) {
			tgt_conn_close(c, "out of memory for R2T");
			return;
		}
		uint32_t n = UTIL_MIN(p->max_burst, t->data_expected - t->r2t_offset);
		struct iscsi_bhs_r2t *r = (void *)tb->pdu.hdr.raw;
		r->opcode = ISCSI_OP_R2T;
		r->flags = ISCSI_FLAG_FINAL;
		put_be64(r->lun, 0);
		memcpy(r->lun, t->cdb_lun, sizeof(r->lun));
		put_be32(r->itt, t->itt);
		put_be32(r->ttt, t->ttt);
		tgt_conn_fill_sn(c, r, false);
		put_be32(r->r2tsn, t->r2tsn++);
		put_be32(r->buffer_offset, t->r2t_offset);
		put_be32(r->desired_len, n);
		t->r2t_offset += n;
		t->r2t_outstanding++;
		tb->task = t;
		tgt_conn_send(c, tb);
	}
}

/* Unsolicited data is complete: solicit the rest or go. */
static void task_unsol_done(struct tgt_task *t)
{
	t->flags |= TASK_F_UNSOL_DONE;
	t->r2t_offset = UTIL_MAX(t->r2t_offset, t->data_received);
	if (!(t->flags & TASK_F_SCSI_DONE))
		task_send_r2ts(t);
	task_try_execute(t);
}

void tgt_task_start(struct tgt_task *t)
{
	t->flags |= TASK_F_ORDERED;
	task_try_execute(t);
}

/* ---- SCSI Command PDU ---- */

/*
 * Less data-out than the CDB writes: no W bit, or ExpectedDataTransferLength
 * short of the transfer length. The rest of the task buffer must never reach
 * the medium: it holds stale bytes of earlier commands, other volumes' data
 * among them. FCP-4 9.4.2 (which libiscsi's residual tests follow) allows
 * a) running the command on the data sent only, or b) refusing it with
 * INVALID FIELD IN COMMAND INFORMATION UNIT; either with the overflow
 * residual of the full transfer length. A plain WRITE (or WRITE AND VERIFY)
 * with the W bit is cut to the whole blocks sent (a); anything else is
 * refused (b).
 */
static void data_out_short(struct tgt_task *t)
{
	uint32_t bs = t->nblocks ? t->xfer_len / t->nblocks : 0;

	t->xfer_cdb = t->xfer_len;
	/*
	 * Without the W bit no residual can tell the initiator that nothing
	 * was written (EDTL may well match the CDB): refused.
	 */
	switch (t->pdu_write ? t->cdb[0] : -1) {
	case SCSI_OP_WRITE_6:
	case SCSI_OP_WRITE_10:
	case SCSI_OP_WRITE_12:
	case SCSI_OP_WRITE_16:
	case SCSI_OP_WRITE_AND_VERIFY_10:
	case SCSI_OP_WRITE_AND_VERIFY_12:
	case SCSI_OP_WRITE_AND_VERIFY_16:
		if (bs && t->nblocks * bs == t->xfer_len && t->data_expected % bs == 0) {
			t->nblocks = t->data_expected / bs;
			t->xfer_len = t->data_expected;
			return;
		}
		break;
	default:
		break;
	}
	tgt_task_sense(t, SK_ILLEGAL_REQUEST, 0x0e,
		       0x03); /* INVALID FIELD IN COMMAND INFORMATION UNIT */
	t->flags |= TASK_F_SCSI_DONE;
}

static struct tgt_task *cmd_begin(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_scsi_cmd *h = (const void *)pdu->hdr.raw;
	struct tgt_session *s = c->sess;
	bool immediate = iscsi_bhs_immediate(&pdu->hdr.bhs);
	uint32_t cmdsn = get_be32(h->cmdsn);
	uint32_t itt = get_be32(h->itt);
	struct tgt_task *t;

	if (s->discovery) {
		/* RFC 7143 4.3: a discovery session carries no SCSI commands. */
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return NULL;
	}
	if (c->state == CONN_LOGOUT) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_WAITING_FOR_LOGOUT);
		return NULL;
	}
	int order = tgt_conn_cmdsn_check(c, cmdsn, immediate);
	if (order < 0) {
		/* RFC 7143 4.2.2.1: outside the window, silently ignored. */
		log_ratelimited(LOG_INFO, "%s: CmdSN %u outside [%u, %u], ignored", c->peer, cmdsn,
				s->exp_cmdsn, s->max_cmdsn);
		return NULL;
	}
	if (itt == ISCSI_RSVD_TAG || tgt_task_by_itt(c, itt)) {
		tgt_conn_reject(c, pdu,
				itt == ISCSI_RSVD_TAG ? ISCSI_REJECT_PROTOCOL_ERROR
						      : ISCSI_REJECT_TASK_IN_PROGRESS);
		return NULL;
	}
	/* Data with neither the W bit nor an expected length is malformed (11.3.1). */
	if (pdu->data_len && (!(h->flags & ISCSI_CMD_WRITE) || get_be32(h->exp_xfer_len) == 0)) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return NULL;
	}
	/*
	 * Immediate data only when negotiated, and within both the expected
	 * length and FirstBurstLength (RFC 7143 13.11, 13.14). Beyond them the
	 * task buffer does not hold the data, and counting it as received would
	 * let the command store bytes the initiator never sent.
	 */
	if (pdu->data_len &&
	    (!s->params.immediate_data ||
	     pdu->data_len > UTIL_MIN(get_be32(h->exp_xfer_len), s->params.first_burst))) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return NULL;
	}
	t = task_get(c);
	if (!t) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_OUT_OF_RESOURCES);
		return NULL;
	}
	t->itt = itt;
	t->cmdsn = cmdsn;
	t->ttt = ((uint32_t)t->gen << 16) | t->index;
	t->exp_xfer_len = get_be32(h->exp_xfer_len);
	t->pdu_read = h->flags & ISCSI_CMD_READ;
	t->pdu_write = h->flags & ISCSI_CMD_WRITE;
	memcpy(t->cdb_lun, h->lun, sizeof(t->cdb_lun));
	if (immediate)
		t->flags |= TASK_F_IMMEDIATE;
	if (!(h->flags & ISCSI_FLAG_FINAL))
		t->flags |= TASK_F_UNSOL_MORE;
	memcpy(t->cdb, h->cdb, 16);
	t->cdb_len = 16;
	/* RFC 7143 11.2.2.3: an Extended CDB AHS (type 1) carries bytes 16 and up. */
	if (pdu->ahs_len >= 4 && (pdu->ahs[2] & 0x3f) == 1) {
		uint16_t alen = get_be16(pdu->ahs);
		if (alen > 1 && alen - 1u <= TGT_CDB_MAX - 16u && alen + 3u <= pdu->ahs_len) {
			memcpy(t->cdb + 16, pdu->ahs + 4, alen - 1u);
			t->cdb_len = (uint16_t)(16 + alen - 1);
		}
	}
	t->target = s->target;
	if (lun_decode(h->lun, &t->lun) && s->target && t->lun == s->target->lu.lun) {
		t->lu = &s->target->lu;
		t->itl = &s->itl;
	}
	TAILQ_INSERT_TAIL(&c->active, t, link);

	if (t->pdu_read && t->pdu_write) {
		/* Bidirectional commands are not supported. */
		tgt_task_invalid_field(t, 0, 7);
		t->flags |= TASK_F_SCSI_DONE;
	} else if (tgt_scsi_prepare(t) != 0) {
		t->flags |= TASK_F_SCSI_DONE;
	}
	if (!(t->flags & TASK_F_SCSI_DONE)) {
		uint32_t len = t->xfer_len;
		if (t->dir == TGT_DIR_OUT) {
			/* Unsolicited data may reach FirstBurstLength even beyond the CDB's. */
			len = UTIL_MAX(len, UTIL_MIN(t->exp_xfer_len, s->params.first_burst));
			t->data_expected = UTIL_MIN(t->xfer_len, t->exp_xfer_len);
			if (!t->pdu_write)
				t->data_expected = 0;
			if (t->data_expected < t->xfer_len)
				data_out_short(t);
			if (t->flags & TASK_F_SCSI_DONE)
				len = 0;
		}
		if (len) {
			t->buf = util_buf_get(conn_pool(c), len);
			if (!t->buf) {
				tgt_task_sense(t, SK_HARDWARE_ERROR, 0x55,
					       0x03); /* insufficient resources */
				t->flags |= TASK_F_SCSI_DONE;
			} else {
				t->buf_len = len;
			}
		}
	}
	if (t->flags & TASK_F_SCSI_DONE)
		t->data_expected = 0;

	/*
	 * A non-immediate command holds one slot of the CmdSN window until it
	 * is released; only then does MaxCmdSN move (RFC 7143 4.2.2.1), so the
	 * initiator never has more than queue_depth commands outstanding.
	 */
	if (!immediate)
		t->flags |= TASK_F_WINDOW;
	if (order == 0) {
		t->flags |= TASK_F_ORDERED;
		if (!immediate)
			s->exp_cmdsn++;
	} else {
		TAILQ_REMOVE(&c->active, t, link);
		TAILQ_INSERT_TAIL(&c->waiting, t, link);
		t->flags |= TASK_F_WAITING;
	}
	return t;
}

int tgt_cmd_data_dst(struct tgt_conn *c, struct iscsi_pdu *pdu, void **dst)
{
	struct tgt_task *t = cmd_begin(c, pdu);

	c->rx_task = t;
	/* Data nobody wants (rejected, failed, or beyond the buffer) is drained. */
	if (t && t->buf && pdu->data_len <= t->buf_len && !(t->flags & TASK_F_SCSI_DONE))
		*dst = t->buf;
	else
		*dst = c->rxbuf;
	return 0;
}

int tgt_cmd_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	struct tgt_task *t = pdu->data_len ? c->rx_task : cmd_begin(c, pdu);
	bool ordered_now;

	c->rx_task = NULL;
	if (!t)
		return 0;
	if (pdu->ddigest_bad) {
		/* RFC 7143 7.8.1: discard the command and Reject; the initiator retries. */
		tgt_conn_reject(c, pdu, ISCSI_REJECT_DATA_DIGEST);
		t->flags |= TASK_F_ABORTED;
		task_maybe_release(t);
		return 0;
	}
	if (pdu->data_len && !(t->flags & TASK_F_SCSI_DONE)) {
		t->data_received = UTIL_MIN(pdu->data_len, t->data_expected);
		t->data_next = pdu->data_len;
	}
	ordered_now = t->flags & TASK_F_ORDERED;
	if (!(t->flags & TASK_F_UNSOL_MORE))
		task_unsol_done(t);
	if (ordered_now)
		tgt_conn_cmdsn_advanced(c);
	return 0;
}

/* ---- Data-Out ---- */

static struct tgt_task *data_out_task(struct tgt_conn *c, const struct iscsi_bhs_data_out *h)
{
	uint32_t ttt = get_be32(h->ttt);
	uint32_t itt = get_be32(h->itt);

	if (ttt == ISCSI_RSVD_TAG) {
		struct tgt_task *t = tgt_task_by_itt(c, itt);
		return t && (t->flags & TASK_F_UNSOL_MORE) && !(t->flags & TASK_F_UNSOL_DONE)
			   ? t
			   : NULL;
	}
	uint32_t idx = ttt & 0xffff;
	if (idx >= c->ntasks)
		return NULL;
	struct tgt_task *t = &c->tasks[idx];
	/*
	 * Solicited data only while an R2T is outstanding: every task has a
	 * TTT, and a READ or a WRITE already executing must not have its
	 * buffer written under the SCSI layer.
	 */
	if (!(t->flags & TASK_F_INUSE) || t->ttt != ttt || t->itt != itt || !t->r2t_outstanding)
		return NULL;
	return t;
}

int tgt_data_out_dst(struct tgt_conn *c, struct iscsi_pdu *pdu, void **dst)
{
	const struct iscsi_bhs_data_out *h = (const void *)pdu->hdr.raw;
	struct tgt_task *t = data_out_task(c, h);
	uint32_t off = get_be32(h->buffer_offset);

	c->rx_task = t;
	*dst = c->rxbuf;
	/*
	 * An aborted task may be released while its data is still arriving
	 * (when its last queued PDU is written): its buffer would be back in
	 * the pool, another task's. Its data is drained instead.
	 */
	if (t && t->buf && !(t->flags & (TASK_F_SCSI_DONE | TASK_F_ABORTED)) && off <= t->buf_len &&
	    pdu->data_len <= t->buf_len - off)
		*dst = (uint8_t *)t->buf + off;
	return 0;
}

int tgt_data_out_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_data_out *h = (const void *)pdu->hdr.raw;
	struct tgt_task *t = pdu->data_len ? c->rx_task : data_out_task(c, h);
	uint32_t off = get_be32(h->buffer_offset);
	bool solicited = get_be32(h->ttt) != ISCSI_RSVD_TAG;

	c->rx_task = NULL;
	if (t && (!(t->flags & TASK_F_INUSE) || (t->flags & TASK_F_ABORTED))) {
		/* Aborted (and maybe released since its header came): the data is discarded. */
		return 0;
	}
	if (!t) {
		/* RFC 7143 11.7.4: no task with this ITT/TTT. */
		tgt_conn_reject(c, pdu, ISCSI_REJECT_INVALID_PDU_FIELD);
		return 0;
	}
	if (pdu->ddigest_bad) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_DATA_DIGEST);
		return 0;
	}
	if (!(t->flags & TASK_F_SCSI_DONE) &&
	    (off > t->buf_len || pdu->data_len > t->buf_len - off)) {
		/* Beyond what the command moves: a protocol error (RFC 7143 11.7.5). */
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return 0;
	}
	/*
	 * RFC 7143 11.7.5: DataSN counts the Data-Out PDUs of one sequence
	 * from 0. A gap or a repeat cannot be recovered at ERL 0: the data
	 * placement can no longer be trusted, so the connection goes and the
	 * command never completes with GOOD.
	 */
	if (c->sess->params.max_outstanding_r2t == 1 && get_be32(h->datasn) != t->datasn) {
		log_warn("%s: Data-Out DataSN %u, expected %u (itt 0x%08x)", c->peer,
			 get_be32(h->datasn), t->datasn, t->itt);
		return -EPROTO;
	}
	/*
	 * DataPDUInOrder and DataSequenceInOrder are Yes (the target accepts no
	 * other value): every Data-Out starts where the previous data ended
	 * (RFC 7143 13.19, 13.20). A repeat or overlap would count bytes twice
	 * and leave part of the buffer unwritten yet executed; a gap likewise.
	 */
	if (!(t->flags & TASK_F_SCSI_DONE) && off != t->data_next) {
		log_warn("%s: Data-Out offset %u, expected %u (itt 0x%08x)", c->peer, off,
			 t->data_next, t->itt);
		return -EPROTO;
	}
	t->data_next += pdu->data_len;
	t->datasn++;
	t->data_received += pdu->data_len;
	if (h->flags & ISCSI_FLAG_FINAL) {
		t->datasn = 0;
		if (solicited) {
			if (t->r2t_outstanding)
				t->r2t_outstanding--;
			if (!(t->flags & TASK_F_SCSI_DONE))
				task_send_r2ts(t);
			task_try_execute(t);
		} else {
			task_unsol_done(t);
		}
	}
	return 0;
}
