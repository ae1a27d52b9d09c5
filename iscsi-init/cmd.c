/*
 * cmd.c: the initiator's command state machine (RFC 7143 full feature phase).
 *
 * A task is QUEUED until the connection is up and the CmdSN window
 * (ExpCmdSN..MaxCmdSN, 4.2.2.1) has room, SENT with its immediate and
 * unsolicited data, fed Data-Out for each R2T, filled by Data-In straight
 * into the caller's buffers, and DONE on status. Connection loss puts the
 * SENT tasks back at the head of the queue in CmdSN order (ERL 0 recovery is
 * a new session, 7.1.5). Also here: NOP-In/Out, Async, Reject, TMF.
 */
#define UTIL_LOG_TAG "ini-cmd"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-init/ini_internal.h"

#define ITT_NOP		 0x80000004u
#define ITT_SPECIAL	 0x80000000u
#define SLOT_BITS	 10
#define UA_RETRIES	 10
#define BUSY_RETRIES	 100
#define ABORT_RETRIES	 3
#define SCSI_TASK_SIMPLE 1

_Static_assert(INI_MAX_TASKS <= (1u << SLOT_BITS), "slots fit the ITT");

int ini_tasks_init(struct ini_session *s)
{
	s->tasks = calloc(INI_MAX_TASKS, sizeof(*s->tasks));
	if (!s->tasks)
		return -ENOMEM;
	TAILQ_INIT(&s->free_tasks);
	TAILQ_INIT(&s->queued);
	TAILQ_INIT(&s->sent);
	for (unsigned i = 0; i < INI_MAX_TASKS; i++) {
		s->tasks[i].slot = (uint16_t)i;
		TAILQ_INSERT_TAIL(&s->free_tasks, &s->tasks[i], link);
	}
	SLIST_INIT(&s->free_tx);
	SLIST_INIT(&s->all_tx);
	return 0;
}

void ini_tasks_fini(struct ini_session *s)
{
	struct ini_txbuf *tb;

	while ((tb = SLIST_FIRST(&s->all_tx)) != NULL) {
		SLIST_REMOVE_HEAD(&s->all_tx, all_link);
		free(tb);
	}
	free(s->tasks);
	s->tasks = NULL;
}

struct ini_task *ini_task_get(struct ini_session *s)
{
	struct ini_task *t = TAILQ_FIRST(&s->free_tasks);
	uint16_t slot;

	if (!t)
		return NULL;
	TAILQ_REMOVE(&s->free_tasks, t, link);
	slot = t->slot;
	memset(t, 0, sizeof(*t));
	t->slot = slot;
	return t;
}

struct ini_txbuf *ini_txbuf_get(struct ini_session *s, struct ini_task *task)
{
	struct ini_txbuf *tb = SLIST_FIRST(&s->free_tx);

	if (tb) {
		SLIST_REMOVE_HEAD(&s->free_tx, free_link);
	} else {
		/* The pool grows to the peak in flight, then stays. */
		tb = malloc(sizeof(*tb));
		if (!tb)
			return NULL;
		SLIST_INSERT_HEAD(&s->all_tx, tb, all_link);
		s->ntx++;
	}
	memset(&tb->tp, 0, sizeof(tb->tp));
	tb->s = s;
	tb->task = task;
	if (task)
		task->tx_refs++;
	return tb;
}

void ini_send(struct ini_session *s, struct ini_txbuf *tb)
{
	s->ops->send(s, &tb->tp);
}

/* RFC 7143 4.2.2.1: take ExpCmdSN/MaxCmdSN only if MaxCmdSN >= ExpCmdSN - 1. */
void ini_update_sn(struct ini_session *s, const uint8_t *exp_p, const uint8_t *max_p)
{
	uint32_t exp = get_be32(exp_p), max = get_be32(max_p);

	if (sn_lt(max, exp - 1))
		return;
	if (sn_gt(exp, s->exp_cmdsn))
		s->exp_cmdsn = exp;
	if (sn_gt(max, s->max_cmdsn))
		s->max_cmdsn = max;
}

static void statsn_seen(struct ini_session *s, const uint8_t *statsn)
{
	uint32_t sn = get_be32(statsn);

	if (sn_ge(sn, s->exp_statsn))
		s->exp_statsn = sn + 1;
}

static struct ini_task *task_find(struct ini_session *s, uint32_t itt)
{
	struct ini_task *t;

	if (itt & ITT_SPECIAL)
		return NULL;
	t = &s->tasks[itt & ((1u << SLOT_BITS) - 1)];
	if (t->state == TASK_FREE || t->itt != itt)
		return NULL;
	return t;
}

/* ---- completion ---- */

static void task_finish(struct ini_session *s, struct ini_task *t)
{
	ini_cb cb = t->cb;
	void *arg = t->cb_arg;
	int rc = t->rc;

	if (t->req) {
		t->req->status = t->status;
		t->req->sense_key = t->sense_key;
		t->req->asc = t->asc;
		t->req->ascq = t->ascq;
		t->req->residual = t->residual;
	}
	t->state = TASK_FREE;
	TAILQ_INSERT_HEAD(&s->free_tasks, t, link);
	if (cb)
		cb(arg, rc);
}

/*
 * The caller's buffers may go once no queued PDU points into them: a target
 * may answer before it has read all of our Data-Out (an early CHECK CONDITION).
 */
void ini_task_complete(struct ini_session *s, struct ini_task *t, int rc)
{
	if (t->state == TASK_QUEUED) {
		TAILQ_REMOVE(&s->queued, t, link);
		s->nqueued--;
	} else if (t->state == TASK_SENT) {
		TAILQ_REMOVE(&s->sent, t, link);
		s->nsent--;
	}
	t->rc = rc;
	t->state = TASK_DONE;
	if (t->tx_refs == 0)
		task_finish(s, t);
}

static void task_tx_done(struct iscsi_txpdu *tp, void *arg)
{
	struct ini_txbuf *tb = arg;
	struct ini_session *s = tb->s;
	struct ini_task *t = tb->task;

	SLIST_INSERT_HEAD(&s->free_tx, tb, free_link);
	if (t && --t->tx_refs == 0 && t->state == TASK_DONE)
		task_finish(s, t);
}

static void task_requeue_head(struct ini_session *s, struct ini_task *t)
{
	if (t->state == TASK_SENT) {
		TAILQ_REMOVE(&s->sent, t, link);
		s->nsent--;
	}
	t->state = TASK_QUEUED;
	TAILQ_INSERT_HEAD(&s->queued, t, link);
	s->nqueued++;
	s->stats.retries++;
}

/* ---- sending ---- */

void ini_task_submit(struct ini_session *s, struct ini_task *t)
{
	t->itt = ((++s->itt_seq & 0x1fffffu) << SLOT_BITS) | t->slot;
	t->state = TASK_QUEUED;
	TAILQ_INSERT_TAIL(&s->queued, t, link);
	s->nqueued++;
	ini_cmd_kick(s);
}

/* Byte \p off of the task's data: the element and the bytes left in it. */
static void *task_data_at(const struct ini_task *t, uint32_t off, uint32_t *avail)
{
	for (int i = 0; i < t->iovcnt; i++) {
		if (off < t->iov[i].iov_len) {
			*avail = (uint32_t)(t->iov[i].iov_len - off);
			return (uint8_t *)t->iov[i].iov_base + off;
		}
		off -= (uint32_t)t->iov[i].iov_len;
	}
	*avail = 0;
	return NULL;
}

/*
 * Data-Out PDUs for [off, off + len) of a write (RFC 7143 11.7): each at most
 * the target's MaxRecvDataSegmentLength and cut at iovec boundaries so the
 * data goes from the caller's buffer; F on the last of the sequence.
 */
static int send_data_out(struct ini_session *s, struct ini_task *t, uint32_t ttt, uint32_t off,
			 uint32_t len)
{
	uint32_t max = s->params.peer_max_recv_dsl;
	uint32_t datasn = 0;

	while (len) {
		struct ini_txbuf *tb = ini_txbuf_get(s, t);
		struct iscsi_bhs_data_out *d;
		uint32_t avail, n;
		void *p;

		if (!tb)
			return -ENOMEM;
		p = task_data_at(t, off, &avail);
		n = UTIL_MIN(UTIL_MIN(len, max), avail);
		if (!p || n == 0) {
			task_tx_done(&tb->tp, tb);
			return -EINVAL;
		}
		d = (struct iscsi_bhs_data_out *)(void *)&tb->tp.hdr;
		d->opcode = ISCSI_OP_DATA_OUT;
		d->flags = n == len ? ISCSI_FLAG_FINAL : 0;
		ini_lun_encode(t->lun, d->lun);
		put_be32(d->itt, t->itt);
		put_be32(d->ttt, ttt);
		put_be32(d->exp_statsn, s->exp_statsn);
		put_be32(d->datasn, datasn++);
		put_be32(d->buffer_offset, off);
		tb->tp.data = p;
		tb->tp.data_len = n;
		tb->tp.done = task_tx_done;
		tb->tp.done_arg = tb;
		ini_send(s, tb);
		off += n;
		len -= n;
	}
	return 0;
}

static int send_tmf(struct ini_session *s, struct ini_task *t)
{
	struct ini_txbuf *tb = ini_txbuf_get(s, t);
	struct iscsi_bhs_tmf_req *req;

	if (!tb)
		return -ENOMEM;
	req = (struct iscsi_bhs_tmf_req *)(void *)&tb->tp.hdr;
	/* RFC 7143 11.5: TMF requests go as immediate commands, CmdSN not advanced. */
	req->opcode = ISCSI_OP_TMF_REQ | ISCSI_OP_IMMEDIATE;
	req->function = ISCSI_FLAG_FINAL | t->tmf_func;
	ini_lun_encode(t->lun, req->lun);
	put_be32(req->itt, t->itt);
	put_be32(req->rtt, t->tmf_rtt);
	put_be32(req->cmdsn, s->cmdsn);
	put_be32(req->exp_statsn, s->exp_statsn);
	put_be32(req->refcmdsn, t->tmf_refcmdsn);
	tb->tp.done = task_tx_done;
	tb->tp.done_arg = tb;
	t->cmdsn = s->cmdsn;
	ini_send(s, tb);
	return 0;
}

static int send_cmd(struct ini_session *s, struct ini_task *t)
{
	const struct iscsi_params *p = &s->params;
	struct ini_txbuf *tb = ini_txbuf_get(s, t);
	struct iscsi_bhs_scsi_cmd *c;
	uint32_t imm = 0, unsol = 0, avail = 0;
	void *imm_data = NULL;

	if (!tb)
		return -ENOMEM;
	t->data_in = 0;
	t->exp_datasn = 0;
	t->status = 0;
	t->sense_key = t->asc = t->ascq = 0;
	t->residual = 0;
	if (t->dir == INI_DIR_WRITE && t->xfer_len) {
		/* RFC 7143 13.11 and 13.14: immediate data up to FirstBurstLength. */
		uint32_t first = UTIL_MIN(t->xfer_len, p->first_burst);
		if (p->immediate_data) {
			imm_data = task_data_at(t, 0, &avail);
			imm = UTIL_MIN(UTIL_MIN(first, p->peer_max_recv_dsl), avail);
		}
		/* 13.10: with InitialR2T=No the rest of the first burst goes unsolicited. */
		if (!p->initial_r2t)
			unsol = first - imm;
	}
	c = (struct iscsi_bhs_scsi_cmd *)(void *)&tb->tp.hdr;
	c->opcode = ISCSI_OP_SCSI_CMD;
	c->flags = (unsol ? 0 : ISCSI_FLAG_FINAL) | SCSI_TASK_SIMPLE;
	if (t->dir == INI_DIR_READ)
		c->flags |= ISCSI_CMD_READ;
	else if (t->dir == INI_DIR_WRITE)
		c->flags |= ISCSI_CMD_WRITE;
	ini_lun_encode(t->lun, c->lun);
	put_be32(c->itt, t->itt);
	put_be32(c->exp_xfer_len, t->xfer_len);
	t->cmdsn = s->cmdsn++;
	put_be32(c->cmdsn, t->cmdsn);
	put_be32(c->exp_statsn, s->exp_statsn);
	memcpy(c->cdb, t->cdb, sizeof(c->cdb));
	tb->tp.data = imm ? imm_data : NULL;
	tb->tp.data_len = imm;
	tb->tp.done = task_tx_done;
	tb->tp.done_arg = tb;
	t->state = TASK_SENT;
	TAILQ_INSERT_TAIL(&s->sent, t, link);
	s->nsent++;
	t->attempts++;
	t->sent_ms = util_now_ms();
	t->unsol_sent = imm + unsol;
	ini_send(s, tb);
	if (unsol)
		return send_data_out(s, t, ISCSI_RSVD_TAG, imm, unsol);
	return 0;
}

void ini_cmd_kick(struct ini_session *s)
{
	struct ini_task *t;
	uint64_t now = 0;

	if (s->conn != CONN_FFP || (s->state != SESS_UP && s->state != SESS_PROBE))
		return;
	while ((t = TAILQ_FIRST(&s->queued)) != NULL) {
		int rc;

		if (t->not_before_ms) {
			if (!now)
				now = util_now_ms();
			if (now < t->not_before_ms)
				break; /* BUSY back-off: keep the order behind it too */
			t->not_before_ms = 0;
		}
		/* RFC 7143 4.2.2.1: never send CmdSN beyond MaxCmdSN. */
		if (t->kind == TASK_SCSI && sn_gt(s->cmdsn, s->max_cmdsn)) {
			s->stats.window_waits++;
			break;
		}
		TAILQ_REMOVE(&s->queued, t, link);
		s->nqueued--;
		if (t->kind == TASK_TMF) {
			t->state = TASK_SENT;
			TAILQ_INSERT_TAIL(&s->sent, t, link);
			s->nsent++;
			t->sent_ms = util_now_ms();
			rc = send_tmf(s, t);
		} else {
			rc = send_cmd(s, t);
		}
		if (rc < 0) {
			/* Out of memory for a PDU: the connection cannot go on coherently. */
			log_err("%s: cannot send a command: %s", s->host, strerror(-rc));
			ini_conn_fail(s, rc);
			return;
		}
	}
}

/* ---- connection loss and failure ---- */

static void tmf_task_done(struct ini_session *s, struct ini_task *t, int rc);

void ini_cmd_requeue_all(struct ini_session *s)
{
	struct ini_task *t;

	/* Tail first, each to the head: the queue keeps the CmdSN order. */
	while ((t = TAILQ_LAST(&s->sent, ini_task_list)) != NULL) {
		if (t->kind == TASK_TMF) {
			/* Reinstatement ends every task of the old session (RFC 7143 6.3.5). */
			tmf_task_done(s, t, 0);
		} else if (t->aborting) {
			ini_task_complete(s, t, -ECANCELED);
		} else if (t->attempts > s->cfg.cmd_retries) {
			log_warn("%s: command 0x%02x gave up after %u attempts", s->host, t->cdb[0],
				 t->attempts);
			ini_task_complete(s, t, -ETIMEDOUT);
		} else {
			task_requeue_head(s, t);
		}
	}
}

void ini_cmd_fail_all(struct ini_session *s, int rc)
{
	struct ini_task *t;

	while ((t = TAILQ_FIRST(&s->sent)) != NULL) {
		if (t->kind == TASK_TMF)
			tmf_task_done(s, t, rc);
		else
			ini_task_complete(s, t, rc);
	}
	while ((t = TAILQ_FIRST(&s->queued)) != NULL) {
		if (t->kind == TASK_TMF)
			tmf_task_done(s, t, rc);
		else
			ini_task_complete(s, t, rc);
	}
}

bool ini_cmd_check_timeouts(struct ini_session *s, uint64_t now)
{
	struct ini_task *t;

	TAILQ_FOREACH (t, &s->sent, link) {
		if (now - t->sent_ms >= s->cfg.cmd_timeout_ms) {
			s->stats.timeouts++;
			log_warn("%s: command 0x%02x (ITT 0x%x, CmdSN %u) timed out after %u ms",
				 s->host, t->cdb[0], t->itt, t->cmdsn, s->cfg.cmd_timeout_ms);
			return true;
		}
	}
	if (TAILQ_FIRST(&s->queued) && TAILQ_FIRST(&s->queued)->not_before_ms)
		ini_cmd_kick(s);
	return false;
}

/* ---- NOP (RFC 7143 11.18, 11.19) ---- */

static void nop_tx_done(struct iscsi_txpdu *tp, void *arg)
{
	struct ini_txbuf *tb = arg;

	SLIST_INSERT_HEAD(&tb->s->free_tx, tb, free_link);
}

static void nop_out(struct ini_session *s, uint32_t itt, uint32_t ttt, const uint8_t *lun,
		    const void *data, uint32_t len)
{
	struct ini_txbuf *tb = ini_txbuf_get(s, NULL);
	struct iscsi_bhs_nop *n;

	if (!tb)
		return;
	n = (struct iscsi_bhs_nop *)(void *)&tb->tp.hdr;
	n->opcode = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	n->flags = ISCSI_FLAG_FINAL;
	if (lun)
		memcpy(n->lun, lun, sizeof(n->lun));
	put_be32(n->itt, itt);
	put_be32(n->ttt, ttt);
	put_be32(n->sn, s->cmdsn);
	put_be32(n->exp_sn, s->exp_statsn);
	tb->tp.data = len ? data : NULL;
	tb->tp.data_len = len;
	tb->tp.done = nop_tx_done;
	tb->tp.done_arg = tb;
	ini_send(s, tb);
}

void ini_nop_ping(struct ini_session *s)
{
	/* An immediate NOP-Out with a real ITT asks for a NOP-In (11.18.1). */
	nop_out(s, ITT_NOP, ISCSI_RSVD_TAG, NULL, NULL, 0);
	s->nop_sent_ms = util_now_ms();
}

static int rx_nop_in(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_nop *n = (const void *)&pdu->hdr;
	uint32_t ttt = get_be32(n->ttt);

	ini_update_sn(s, n->exp_sn, n->max_cmdsn);
	if (get_be32(n->itt) == ITT_NOP) {
		statsn_seen(s, n->sn);
		s->nop_sent_ms = 0;
		return 0;
	}
	/* A ping from the target: answer with its TTT and data (11.18.2). */
	if (ttt != ISCSI_RSVD_TAG) {
		uint32_t len = UTIL_MIN(pdu->data_len, s->scratch_len);
		if (len)
			memcpy(s->nop_echo, pdu->data, len);
		nop_out(s, ISCSI_RSVD_TAG, ttt, n->lun, s->nop_echo, len);
	}
	return 0;
}

/* ---- Data-In, R2T, SCSI Response ---- */

int ini_rx_data_dst(struct ini_session *s, struct iscsi_pdu *pdu, void **dst)
{
	const struct iscsi_bhs_data_in *d = (const void *)&pdu->hdr;
	struct ini_task *t;
	uint32_t off, avail;
	void *p;

	s->rx_bounce_task = NULL;
	*dst = s->scratch;
	if (pdu->data_len > s->scratch_len)
		return -EPROTO;
	if (iscsi_bhs_opcode(&pdu->hdr.bhs) != ISCSI_OP_DATA_IN)
		return 0;
	t = task_find(s, get_be32(d->itt));
	if (!t || t->state != TASK_SENT || t->dir != INI_DIR_READ)
		return 0; /* stale or unknown: received and dropped */
	off = get_be32(d->buffer_offset);
	if (off > t->xfer_len || pdu->data_len > t->xfer_len - off) {
		log_warn("%s: Data-In beyond the expected transfer (ITT 0x%x)", s->host, t->itt);
		return -EPROTO;
	}
	p = task_data_at(t, off, &avail);
	if (p && avail >= pdu->data_len) {
		*dst = p; /* zero copy */
	} else {
		s->rx_bounce_task = t;
		s->rx_bounce_off = off;
	}
	return 0;
}

static void bounce_copy(struct ini_session *s, struct ini_task *t, const uint8_t *src, uint32_t off,
			uint32_t len)
{
	while (len) {
		uint32_t avail;
		uint8_t *p = task_data_at(t, off, &avail);
		uint32_t n = UTIL_MIN(len, avail);

		if (!p || !n)
			return;
		memcpy(p, src, n);
		src += n;
		off += n;
		len -= n;
	}
}

/* Decide what a finished SCSI command becomes: done, or retried. */
static void scsi_status(struct ini_session *s, struct ini_task *t)
{
	int rc = ini_scsi_result(t);

	if (rc == -EAGAIN && t->status == 0x02 && t->ua_retries++ < UA_RETRIES) {
		/* UNIT ATTENTION (SPC-4 5.14): reported once, the command itself did nothing. */
		log_info("%s: unit attention %02x/%02x, retrying 0x%02x", s->host, t->asc, t->ascq,
			 t->cdb[0]);
		task_requeue_head(s, t);
		return;
	}
	if (rc == -EAGAIN && t->status != 0x02 && t->busy_retries++ < BUSY_RETRIES) {
		/* BUSY / TASK SET FULL (SAM-5 5.3.1): try later, growing the pause. */
		unsigned ms = UTIL_MIN(10u << UTIL_MIN(t->busy_retries, 7u), 1000u);
		t->not_before_ms = util_now_ms() + ms;
		task_requeue_head(s, t);
		return;
	}
	if (rc == -EAGAIN)
		rc = t->status == 0x02 ? -EIO : -EBUSY;
	ini_task_complete(s, t, rc);
}

static int rx_data_in(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_data_in *d = (const void *)&pdu->hdr;
	struct ini_task *t = task_find(s, get_be32(d->itt));

	ini_update_sn(s, d->exp_cmdsn, d->max_cmdsn);
	if (!t || t->state != TASK_SENT || t->dir != INI_DIR_READ)
		return 0;
	/* RFC 7143 7.8: at ERL 0 a digest error is recovered by a new session. */
	if (pdu->ddigest_bad) {
		log_warn("%s: data digest error on Data-In", s->host);
		return -EPROTO;
	}
	if (get_be32(d->datasn) != t->exp_datasn) {
		log_warn("%s: Data-In DataSN %u, expected %u", s->host, get_be32(d->datasn),
			 t->exp_datasn);
		return -EPROTO;
	}
	t->exp_datasn++;
	if (s->rx_bounce_task == t)
		bounce_copy(s, t, pdu->data, s->rx_bounce_off, pdu->data_len);
	s->rx_bounce_task = NULL;
	t->data_in += pdu->data_len;
	if (d->flags & ISCSI_DATA_STATUS) {
		statsn_seen(s, d->statsn);
		t->status = d->status;
		if (d->flags & ISCSI_DATA_UNDERFLOW)
			t->residual = get_be32(d->residual);
		scsi_status(s, t);
	}
	return 0;
}

static int rx_r2t(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_r2t *r = (const void *)&pdu->hdr;
	struct ini_task *t = task_find(s, get_be32(r->itt));
	uint32_t off = get_be32(r->buffer_offset), len = get_be32(r->desired_len);

	ini_update_sn(s, r->exp_cmdsn, r->max_cmdsn);
	if (!t || t->state != TASK_SENT)
		return 0; /* the task completed already: nothing to send */
	/* RFC 7143 11.8.4: the R2T must stay inside the expected transfer. */
	if (t->dir != INI_DIR_WRITE || len == 0 || off > t->xfer_len || len > t->xfer_len - off) {
		log_warn("%s: bad R2T (offset %u, length %u of %u)", s->host, off, len,
			 t->xfer_len);
		return -EPROTO;
	}
	return send_data_out(s, t, get_be32(r->ttt), off, len);
}

static int rx_scsi_rsp(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_scsi_rsp *r = (const void *)&pdu->hdr;
	struct ini_task *t = task_find(s, get_be32(r->itt));

	statsn_seen(s, r->statsn);
	ini_update_sn(s, r->exp_cmdsn, r->max_cmdsn);
	if (!t || t->state != TASK_SENT || t->kind != TASK_SCSI)
		return 0;
	if (r->response != ISCSI_RSP_CMD_COMPLETED) {
		/* 11.4.3: target failure; the status byte is meaningless. */
		log_warn("%s: iSCSI response 0x%02x for 0x%02x", s->host, r->response, t->cdb[0]);
		ini_task_complete(s, t, -EIO);
		return 0;
	}
	t->status = r->status;
	if (r->flags & (ISCSI_RSP_UNDERFLOW))
		t->residual = get_be32(r->residual);
	/* 11.4.7: SenseLength (2 bytes) then the sense data. */
	if (pdu->data_len >= 2 && !pdu->ddigest_bad) {
		uint32_t slen = get_be16(pdu->data);
		if (slen <= pdu->data_len - 2)
			ini_sense_parse(t, (const uint8_t *)pdu->data + 2, slen);
	}
	scsi_status(s, t);
	return 0;
}

/* ---- TMF ---- */

static void tmf_task_done(struct ini_session *s, struct ini_task *t, int rc)
{
	struct ini_tmf_op *op = t->tmf_op;

	ini_task_complete(s, t, rc);
	if (rc < 0 && op->rc == 0)
		op->rc = rc;
	if (--op->pending == 0) {
		ini_cb cb = op->cb;
		void *arg = op->cb_arg;
		int orc = op->rc;

		free(op);
		cb(arg, orc);
	}
}

static int rx_tmf_rsp(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_tmf_rsp *r = (const void *)&pdu->hdr;
	struct ini_task *t = task_find(s, get_be32(r->itt)), *x, *tmp;
	bool ok = r->response == ISCSI_TMF_RSP_COMPLETE || r->response == ISCSI_TMF_RSP_NO_TASK;

	statsn_seen(s, r->statsn);
	ini_update_sn(s, r->exp_cmdsn, r->max_cmdsn);
	if (!t || t->kind != TASK_TMF || t->state != TASK_SENT)
		return 0;
	/*
	 * RFC 7143 11.5.1: after a successful ABORT TASK or LUN RESET the target
	 * sends no status for the affected tasks: end them here.
	 */
	TAILQ_FOREACH_SAFE (x, &s->sent, link, tmp) {
		if (x->kind != TASK_SCSI || x->lun != t->lun)
			continue;
		if (t->tmf_func == ISCSI_TMF_ABORT_TASK && x->itt != t->tmf_rtt)
			continue;
		if (ok)
			ini_task_complete(s, x, -ECANCELED);
		else
			x->aborting = false;
	}
	tmf_task_done(s, t, ok ? 0 : -EIO);
	return 0;
}

/* Queue one TMF task of \p op naming \p ref (ABORT TASK) or the whole LUN. */
static int tmf_queue(struct ini_session *s, struct ini_tmf_op *op, struct ini_task *ref)
{
	struct ini_task *t = ini_task_get(s);

	if (!t)
		return -ENOMEM;
	t->kind = TASK_TMF;
	t->lun = op->lun;
	t->tmf_func = op->func;
	t->tmf_op = op;
	t->tmf_rtt = ref ? ref->itt : ISCSI_RSVD_TAG;
	t->tmf_refcmdsn = ref ? ref->cmdsn : 0;
	t->itt = ((++s->itt_seq & 0x1fffffu) << SLOT_BITS) | t->slot;
	t->state = TASK_QUEUED;
	/* TMFs jump the queue: they are immediate (RFC 7143 11.5). */
	TAILQ_INSERT_HEAD(&s->queued, t, link);
	s->nqueued++;
	op->pending++;
	return 0;
}

void ini_tmf_run(struct ini_session *s, struct ini_tmf_op *op)
{
	struct ini_task *x, *tmp;
	int rc = 0;

	op->pending = 1; /* held while queueing */
	if (op->func == ISCSI_TMF_ABORT_TASK) {
		TAILQ_FOREACH (x, &s->sent, link) {
			if (x->kind != TASK_SCSI || x->lun != op->lun || x->aborting)
				continue;
			x->aborting = true;
			rc = tmf_queue(s, op, x);
			if (rc < 0)
				break;
		}
		/* Queued commands of the LUN never reached the target: end them here. */
		TAILQ_FOREACH_SAFE (x, &s->queued, link, tmp) {
			if (x->kind == TASK_SCSI && x->lun == op->lun)
				ini_task_complete(s, x, -ECANCELED);
		}
	} else {
		rc = tmf_queue(s, op, NULL);
	}
	if (rc < 0)
		op->rc = rc;
	ini_cmd_kick(s);
	if (--op->pending == 0) {
		ini_cb cb = op->cb;
		void *arg = op->cb_arg;

		rc = op->rc;
		free(op);
		cb(arg, rc);
	}
}

/* ---- Async, Reject, dispatch ---- */

static int rx_async(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_async *a = (const void *)&pdu->hdr;

	ini_update_sn(s, a->exp_cmdsn, a->max_cmdsn);
	switch (a->async_event) {
	case ISCSI_ASYNC_LOGOUT_REQUEST:
	case ISCSI_ASYNC_DROP_CONNECTION:
	case ISCSI_ASYNC_DROP_ALL:
		/*
		 * RFC 7143 11.9.1: the target wants the connection gone (a volume
		 * move, a shutdown). At ERL 0 we reconnect and resend what is
		 * outstanding; the new login may be redirected to the new owner.
		 */
		log_info("%s: async event %u: reconnecting", s->host, a->async_event);
		ini_conn_fail(s, -ECONNRESET);
		return -ECONNABORTED;
	default:
		return 0; /* SCSI events show again as UNIT ATTENTION */
	}
}

static int rx_reject(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_reject *r = (const void *)&pdu->hdr;
	const struct iscsi_bhs *bad = pdu->data;
	struct ini_task *t;

	statsn_seen(s, r->statsn);
	ini_update_sn(s, r->exp_cmdsn, r->max_cmdsn);
	log_warn("%s: Reject reason 0x%02x", s->host, r->reason);
	if (r->reason == ISCSI_REJECT_DATA_DIGEST)
		return -EPROTO; /* ERL 0: the session recovers */
	if (pdu->data_len < ISCSI_BHS_LEN || pdu->ddigest_bad)
		return 0;
	t = task_find(s, get_be32(bad->itt));
	if (t && t->state == TASK_SENT && t->kind == TASK_SCSI)
		ini_task_complete(s, t, -EPROTO);
	return 0;
}

int ini_rx_pdu(struct ini_session *s, struct iscsi_pdu *pdu)
{
	unsigned gen = s->conn_gen;
	uint8_t op = iscsi_bhs_opcode(&pdu->hdr.bhs);
	int rc;

	s->last_rx_ms = util_now_ms();
	if (s->conn == CONN_LOGIN) {
		if (op != ISCSI_OP_LOGIN_RSP) {
			log_err("%s: %s during login", s->host, iscsi_opcode_name(op));
			ini_conn_fail(s, -EPROTO);
			return -ECONNABORTED;
		}
		return ini_login_rx(s, pdu);
	}
	switch (op) {
	case ISCSI_OP_DATA_IN:
		rc = rx_data_in(s, pdu);
		break;
	case ISCSI_OP_SCSI_RSP:
		rc = rx_scsi_rsp(s, pdu);
		break;
	case ISCSI_OP_R2T:
		rc = rx_r2t(s, pdu);
		break;
	case ISCSI_OP_NOP_IN:
		rc = rx_nop_in(s, pdu);
		break;
	case ISCSI_OP_TMF_RSP:
		rc = rx_tmf_rsp(s, pdu);
		break;
	case ISCSI_OP_ASYNC_MSG:
		rc = rx_async(s, pdu);
		break;
	case ISCSI_OP_REJECT:
		rc = rx_reject(s, pdu);
		break;
	case ISCSI_OP_TEXT_RSP: {
		const struct iscsi_bhs_text *tr = (const void *)&pdu->hdr;
		statsn_seen(s, tr->sn);
		ini_update_sn(s, tr->exp_sn, tr->max_cmdsn);
		rc = ini_text_rx(s, pdu);
		break;
	}
	case ISCSI_OP_LOGOUT_RSP: {
		const struct iscsi_bhs_logout_rsp *lr = (const void *)&pdu->hdr;
		statsn_seen(s, lr->statsn);
		ini_logout_done(s);
		return -ECONNABORTED;
	}
	default:
		log_warn("%s: unexpected %s", s->host, iscsi_opcode_name(op));
		rc = -EPROTO;
		break;
	}
	if (s->conn_gen != gen)
		return -ECONNABORTED;
	if (rc < 0) {
		ini_conn_fail(s, rc);
		return -ECONNABORTED;
	}
	/* The window may have opened, or a retry is waiting. */
	if (TAILQ_FIRST(&s->queued))
		ini_cmd_kick(s);
	return s->conn_gen != gen ? -ECONNABORTED : 0;
}
