/*
 * The small PDU families of the full feature phase: NOP-Out/NOP-In both
 * ways, Logout, Text (SendTargets, multi-PDU responses) and Task Management
 * (RFC 7143 11.5, 11.6, 11.10, 11.11, 11.14, 11.15, 11.18, 11.19).
 */
#define UTIL_LOG_TAG "ffp"
#include <errno.h>
#include <stdlib.h>

#include "iscsi-tgt/tgt_internal.h"

/*
 * A non-immediate request in CmdSN order advances ExpCmdSN. Requests other
 * than SCSI commands are not held back for a gap: they are answered at once.
 */
static bool cmdsn_accept(struct tgt_conn *c, const struct iscsi_pdu *pdu, uint32_t cmdsn)
{
	int order = tgt_conn_cmdsn_check(c, cmdsn, iscsi_bhs_immediate(&pdu->hdr.bhs));

	if (order < 0) {
		log_ratelimited(LOG_INFO, "%s: %s CmdSN %u outside the window, ignored", c->peer,
				iscsi_opcode_name(pdu->hdr.bhs.opcode), cmdsn);
		return false;
	}
	if (order == 0 && !iscsi_bhs_immediate(&pdu->hdr.bhs)) {
		/* Answered at once: the window slot is free again right away. */
		c->sess->exp_cmdsn++;
		c->sess->max_cmdsn++;
		tgt_conn_cmdsn_advanced(c);
	} else if (order > 0) {
		/*
		 * Ahead of a gap (RFC 7143 4.2.2.1). These requests carry no
		 * data to order against, so they are answered now; their CmdSN
		 * is remembered so that ExpCmdSN steps over it when the gap
		 * fills. With no room to remember it, the request is ignored
		 * (the initiator retries it).
		 */
		struct tgt_session *s = c->sess;
		if (s->nahead == UTIL_ARRAY_SIZE(s->ahead)) {
			log_ratelimited(LOG_INFO, "%s: too many requests ahead of CmdSN %u",
					c->peer, s->exp_cmdsn);
			return false;
		}
		s->ahead[s->nahead++] = cmdsn;
	}
	return true;
}

/* ---- NOP ---- */

int tgt_nop_out_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_nop *h = (const void *)pdu->hdr.raw;
	uint32_t itt = get_be32(h->itt);

	if (itt == ISCSI_RSVD_TAG) {
		/* An answer to our NOP-In ping (RFC 7143 11.18.2): no response. */
		if (get_be32(h->ttt) == c->nop_ttt)
			c->nop_sent_ms = 0;
		return 0;
	}
	if (!cmdsn_accept(c, pdu, get_be32(h->sn)))
		return 0;
	struct tgt_txbuf *tb = tgt_txbuf_get(c);
	if (!tb)
		return -ENOMEM;
	struct iscsi_bhs_nop *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_NOP_IN;
	r->flags = ISCSI_FLAG_FINAL;
	memcpy(r->lun, h->lun, sizeof(r->lun));
	put_be32(r->itt, itt);
	put_be32(r->ttt, ISCSI_RSVD_TAG);
	tgt_conn_fill_sn(c, r, true);
	if (pdu->data_len) {
		/* Ping data is echoed (11.19.4); the receive buffer is reused, so copy. */
		void *copy = util_buf_get(util_reactor_bufpool(c->w->reactor), pdu->data_len);
		if (!copy) {
			tgt_conn_send(c, tb);
			return 0;
		}
		memcpy(copy, pdu->data, pdu->data_len);
		tb->pdu.data = copy;
		tb->pdu.data_len = pdu->data_len;
		tb->own = copy;
		tb->own_len = pdu->data_len;
	}
	tgt_conn_send(c, tb);
	return 0;
}

void tgt_nop_ping(struct tgt_conn *c)
{
	struct tgt_txbuf *tb = tgt_txbuf_get(c);

	if (!tb)
		return;
	struct iscsi_bhs_nop *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_NOP_IN;
	r->flags = ISCSI_FLAG_FINAL;
	put_be32(r->itt, ISCSI_RSVD_TAG);
	c->nop_ttt = (c->nop_ttt + 1) & 0x7fffffff;
	put_be32(r->ttt, c->nop_ttt);
	tgt_conn_fill_sn(c, r, false);
	c->nop_sent_ms = util_now_ms();
	tgt_conn_send(c, tb);
}

/* ---- Logout ---- */

void tgt_logout_maybe_respond(struct tgt_conn *c)
{
	/* RFC 7143 11.14: the response follows the completion of the connection's tasks. */
	if (!c->logout_pending || c->tasks_busy > 0)
		return;
	/*
	 * The nexus ends with this response: its SPC-2 reservation goes before
	 * the initiator, told it is logged out, sends on another session.
	 */
	if (c->sess && c->sess->itl.lu)
		tgt_pr_nexus_gone(&c->sess->itl);
	struct tgt_txbuf *tb = tgt_txbuf_get(c);
	if (!tb) {
		tgt_conn_close(c, "out of memory");
		return;
	}
	struct iscsi_bhs_logout_rsp *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_LOGOUT_RSP;
	r->flags = ISCSI_FLAG_FINAL;
	r->response = 0;
	put_be32(r->itt, c->logout_itt);
	tgt_conn_fill_sn(c, r, true);
	c->logout_pending = false;
	tgt_conn_send(c, tb);
}

int tgt_logout_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_logout_req *h = (const void *)pdu->hdr.raw;
	uint8_t reason = h->flags & ISCSI_LOGOUT_REASON_MASK;

	if (!cmdsn_accept(c, pdu, get_be32(h->cmdsn)))
		return 0;
	if (reason == ISCSI_LOGOUT_REMOVE_FOR_RECOV) {
		/* ERL 0: connection recovery is not supported (response 2). */
		struct tgt_txbuf *tb = tgt_txbuf_get(c);
		if (!tb)
			return -ENOMEM;
		struct iscsi_bhs_logout_rsp *r = (void *)tb->pdu.hdr.raw;
		r->opcode = ISCSI_OP_LOGOUT_RSP;
		r->flags = ISCSI_FLAG_FINAL;
		r->response = 2;
		put_be32(r->itt, get_be32(h->itt));
		tgt_conn_fill_sn(c, r, true);
		tgt_conn_send(c, tb);
		return 0;
	}
	log_info("%s: logout (reason %u)", c->peer, reason);
	c->state = CONN_LOGOUT;
	c->logout_pending = true;
	c->logout_itt = get_be32(h->itt);
	tgt_logout_maybe_respond(c);
	return 0;
}

/* ---- Text ---- */

static void text_send_chunk(struct tgt_conn *c, uint32_t itt)
{
	const struct iscsi_params *p = &c->sess->params;
	uint32_t left = c->text_rsp.len - c->text_sent;
	uint32_t n = UTIL_MIN(left, p->peer_max_recv_dsl);
	struct tgt_txbuf *tb = tgt_txbuf_get(c);

	if (!tb) {
		tgt_conn_close(c, "out of memory");
		return;
	}
	struct iscsi_bhs_text *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_TEXT_RSP;
	put_be32(r->itt, itt);
	if (n < left) {
		/* RFC 7143 11.11.2: C=1, F=0 and a TTT to continue with. */
		r->flags = ISCSI_TEXT_CONTINUE;
		c->text_ttt = (c->text_ttt + 1) & 0x7fffffff;
		put_be32(r->ttt, c->text_ttt);
	} else {
		r->flags = ISCSI_FLAG_FINAL;
		put_be32(r->ttt, ISCSI_RSVD_TAG);
	}
	tgt_conn_fill_sn(c, r, true);
	if (n) {
		void *copy = util_buf_get(util_reactor_bufpool(c->w->reactor), n);
		if (!copy) {
			tgt_conn_close(c, "out of memory");
			return;
		}
		memcpy(copy, c->text_rsp.buf + c->text_sent, n);
		tb->pdu.data = copy;
		tb->pdu.data_len = n;
		tb->own = copy;
		tb->own_len = n;
	}
	c->text_sent += n;
	tgt_conn_send(c, tb);
}

int tgt_text_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_text *h = (const void *)pdu->hdr.raw;
	uint32_t itt = get_be32(h->itt);
	uint32_t ttt = get_be32(h->ttt);
	struct iscsi_kv kv[ISCSI_TEXT_MAX_KV];
	size_t n = 0;

	if (!cmdsn_accept(c, pdu, get_be32(h->sn)))
		return 0;
	if (ttt != ISCSI_RSVD_TAG) {
		/* The initiator asks for the rest of a long response. */
		if (ttt != c->text_ttt || c->text_sent >= c->text_rsp.len) {
			tgt_conn_reject(c, pdu, ISCSI_REJECT_INVALID_PDU_FIELD);
			return 0;
		}
		text_send_chunk(c, itt);
		return 0;
	}
	if (c->text_req.len + pdu->data_len > 64 * 1024) {
		iscsi_text_reset(&c->text_req);
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return 0;
	}
	if (iscsi_text_append_raw(&c->text_req, pdu->data, pdu->data_len) < 0)
		return -ENOMEM;
	iscsi_text_reset(&c->text_rsp);
	c->text_sent = 0;
	if (h->flags & ISCSI_TEXT_CONTINUE) {
		/* Request text continues: an empty answer asks for more (11.10.2). */
		text_send_chunk(c, itt);
		return 0;
	}
	char empty[1] = "";
	int rc = iscsi_text_parse(c->text_req.len ? c->text_req.buf : empty, c->text_req.len, kv,
				  UTIL_ARRAY_SIZE(kv), &n);
	iscsi_text_reset(&c->text_req);
	if (rc < 0) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kv[i].key, "SendTargets") == 0) {
			rc = tgt_sendtargets(c->tgt, c, kv[i].val, &c->text_rsp);
		} else if (strncmp(kv[i].key, "X-", 2) == 0 || strncmp(kv[i].key, "X#", 2) == 0) {
			rc = iscsi_text_add(&c->text_rsp, kv[i].key, "NotUnderstood");
		} else {
			/* Login-only keys may not be renegotiated here (RFC 7143 6.2). */
			rc = iscsi_text_add(&c->text_rsp, kv[i].key, "Reject");
		}
		if (rc < 0)
			return -ENOMEM;
	}
	text_send_chunk(c, itt);
	return 0;
}

/* ---- Task Management (RFC 7143 11.5, SAM-5 7) ---- */

static void tmf_respond(struct tgt_conn *c, uint32_t itt, uint8_t response)
{
	struct tgt_txbuf *tb = tgt_txbuf_get(c);

	if (!tb) {
		tgt_conn_close(c, "out of memory");
		return;
	}
	struct iscsi_bhs_tmf_rsp *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_TMF_RSP;
	r->flags = ISCSI_FLAG_FINAL;
	r->response = response;
	put_be32(r->itt, itt);
	tgt_conn_fill_sn(c, r, true);
	tgt_conn_send(c, tb);
	if (c->tmf_function == ISCSI_TMF_TARGET_COLD_RESET)
		c->state = CONN_LOGOUT; /* closes once the response is out */
}

void tgt_tmf_task_finished(struct tgt_task *t)
{
	struct tgt_conn *c = t->conn;

	t->flags &= ~TASK_F_TMF_WAITER;
	if (c->tmf_active && c->tmf_wait && --c->tmf_wait == 0) {
		c->tmf_active = false;
		tmf_respond(c, c->tmf_itt, ISCSI_TMF_RSP_COMPLETE);
	}
}

/* Abort \p t: now when it is outside the SCSI layer, else when it leaves it. */
static void tmf_abort(struct tgt_conn *c, struct tgt_task *t)
{
	t->flags |= TASK_F_ABORTED;
	if (t->flags & TASK_F_EXECUTING) {
		t->flags |= TASK_F_TMF_WAITER;
		c->tmf_wait++;
	} else if (t->txpdus_pending == 0) {
		tgt_task_release(t);
	}
}

static void tmf_abort_lun(struct tgt_conn *c, const struct iscsi_bhs_tmf_req *h, bool any_lun)
{
	struct tgt_task *t, *tmp;

	TAILQ_FOREACH_SAFE (t, &c->active, link, tmp)
		if (any_lun || memcmp(t->cdb_lun, h->lun, 8) == 0)
			tmf_abort(c, t);
	TAILQ_FOREACH_SAFE (t, &c->waiting, link, tmp)
		if (any_lun || memcmp(t->cdb_lun, h->lun, 8) == 0)
			tmf_abort(c, t);
}

int tgt_tmf_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_tmf_req *h = (const void *)pdu->hdr.raw;
	uint8_t fn = h->function & 0x7f;
	uint32_t itt = get_be32(h->itt);
	struct tgt_session *s = c->sess;
	struct tgt_lu *lu = s->target ? &s->target->lu : NULL;
	bool lun_ok = lu && h->lun[0] == 0 && h->lun[1] == lu->lun;

	if (!cmdsn_accept(c, pdu, get_be32(h->cmdsn)))
		return 0;
	if (s->discovery || c->tmf_active) {
		tgt_conn_reject(c, pdu,
				s->discovery ? ISCSI_REJECT_PROTOCOL_ERROR
					     : ISCSI_REJECT_OUT_OF_RESOURCES);
		return 0;
	}
	c->tmf_function = fn;
	c->tmf_itt = itt;
	c->tmf_wait = 0;
	switch (fn) {
	case ISCSI_TMF_ABORT_TASK: {
		struct tgt_task *t = tgt_task_by_itt(c, get_be32(h->rtt));
		if (!t) {
			/*
			 * RFC 7143 11.5.1: a task never received (RefCmdSN in
			 * the window and before the TMF's own CmdSN) counts as
			 * received and aborted: "Function complete". A task
			 * already answered does not exist any more.
			 */
			uint32_t ref = get_be32(h->refcmdsn);
			bool unseen = sn_ge(ref, s->exp_cmdsn) && sn_le(ref, s->max_cmdsn) &&
				      sn_lt(ref, get_be32(h->cmdsn));
			tmf_respond(c, itt,
				    unseen ? ISCSI_TMF_RSP_COMPLETE : ISCSI_TMF_RSP_NO_TASK);
			return 0;
		}
		tmf_abort(c, t);
		break;
	}
	case ISCSI_TMF_ABORT_TASK_SET:
	case ISCSI_TMF_CLEAR_TASK_SET:
		if (!lun_ok) {
			tmf_respond(c, itt, ISCSI_TMF_RSP_NO_LUN);
			return 0;
		}
		tmf_abort_lun(c, h, false);
		break;
	case ISCSI_TMF_LUN_RESET:
		if (!lun_ok) {
			tmf_respond(c, itt, ISCSI_TMF_RSP_NO_LUN);
			return 0;
		}
		tmf_abort_lun(c, h, false);
		/* SAM-5 6.3.3: every nexus, the issuer too, learns of the reset by a unit
		 * attention. */
		tgt_pr_lu_reset(lu);
		tgt_lu_ua_raise(lu, TGT_UA_LUN_RESET, NULL);
		break;
	case ISCSI_TMF_TARGET_WARM_RESET:
	case ISCSI_TMF_TARGET_COLD_RESET:
		tmf_abort_lun(c, h, true);
		if (lu) {
			tgt_pr_lu_reset(lu);
			tgt_lu_ua_raise(lu, TGT_UA_RESET, NULL);
		}
		if (fn == ISCSI_TMF_TARGET_COLD_RESET && s->target)
			tgt_target_cold_reset(c->tgt, s->target, s);
		break;
	case ISCSI_TMF_CLEAR_ACA:
		tmf_respond(c, itt, ISCSI_TMF_RSP_NOT_SUPPORTED);
		return 0;
	case ISCSI_TMF_TASK_REASSIGN:
		/* ERL 0: allegiance reassignment is not supported (11.6.1). */
		tmf_respond(c, itt, ISCSI_TMF_RSP_NO_REASSIGN);
		return 0;
	default:
		tmf_respond(c, itt, ISCSI_TMF_RSP_REJECTED);
		return 0;
	}
	if (c->tmf_wait) {
		c->tmf_active = true;
		return 0;
	}
	tmf_respond(c, itt, ISCSI_TMF_RSP_COMPLETE);
	return 0;
}
