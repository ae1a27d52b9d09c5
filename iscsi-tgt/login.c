/*
 * Login phase of a target connection (RFC 7143 6): security stage with CHAP,
 * operational negotiation from the shared key table, multi-PDU text (C bit),
 * login status codes, and the hand-off to the full feature phase with a new
 * or reinstated session.
 */
#define UTIL_LOG_TAG "login"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "iscsi-tgt/tgt_internal.h"

#define LOGIN_PDU_MAX  8192 /* RFC 7143 6.1: login data segments stay within 8192 bytes */
#define LOGIN_TEXT_MAX (64 * 1024)

struct tgt_login {
	struct iscsi_negot negot;
	struct iscsi_chap chap;
	bool started; /* the first Login Request was seen */
	bool authed;  /* security stage passed (or not required) */
	bool need_chap;
	bool failed; /* a failure response was queued: close after it */
	int stage;   /* CSG of the last request */
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
	uint32_t itt;
	uint32_t cmdsn;
	struct tgt_target *target;
	bool discovery;
	struct iscsi_chap_cred cred;
	struct iscsi_text req; /* request text gathered over PDUs with the C bit */
	struct iscsi_text rsp; /* response text, possibly sent over several PDUs */
	uint32_t rsp_sent;
	uint8_t rsp_flags; /* T/CSG/NSG of the response being sent */
	bool negot_ready;  /* login_first() done */
	bool tpgt_sent;
	bool to_ffp;		 /* the response being sent ends the login */
	unsigned reinstate_wait; /* old sessions still closing: the final response waits */
};

void tgt_login_free(struct tgt_conn *c)
{
	struct tgt_login *l = c->login;

	if (!l)
		return;
	if (l->target && !(c->sess && c->sess->target == l->target))
		tgt_target_put(l->target);
	iscsi_text_free(&l->req);
	iscsi_text_free(&l->rsp);
	free(l);
	c->login = NULL;
}

static struct tgt_login *login_get(struct tgt_conn *c)
{
	if (!c->login) {
		c->login = calloc(1, sizeof(*c->login));
		if (c->login) {
			iscsi_text_init(&c->login->req);
			iscsi_text_init(&c->login->rsp);
		}
	}
	return c->login;
}

static void login_send(struct tgt_conn *c, uint8_t flags, uint16_t status, const void *data,
		       uint32_t len, void *own, uint32_t own_len)
{
	struct tgt_login *l = c->login;
	struct tgt_txbuf *tb = tgt_txbuf_get(c);

	if (!tb) {
		util_buf_put(util_reactor_bufpool(c->w->reactor), own, own_len);
		tgt_conn_close(c, "out of memory");
		return;
	}
	struct iscsi_bhs_login_rsp *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_LOGIN_RSP;
	r->flags = flags;
	r->version_max = ISCSI_VERSION;
	r->version_active = ISCSI_VERSION;
	memcpy(r->isid, l->isid, sizeof(r->isid));
	put_be16(r->tsih, (flags & ISCSI_LOGIN_TRANSIT) &&
				  (flags & ISCSI_LOGIN_NSG_MASK) == ISCSI_STAGE_FULL_FEATURE &&
				  c->sess
			      ? c->sess->tsih
			      : l->tsih);
	put_be32(r->itt, l->itt);
	put_be32(r->statsn, c->statsn++);
	/* No session yet: the window is the login's CmdSN (RFC 7143 11.13.4). */
	put_be32(r->exp_cmdsn, c->sess ? c->sess->exp_cmdsn : l->cmdsn);
	put_be32(r->max_cmdsn, c->sess ? c->sess->max_cmdsn : l->cmdsn);
	r->status_class = (uint8_t)(status >> 8);
	r->status_detail = (uint8_t)status;
	tb->pdu.data = data;
	tb->pdu.data_len = len;
	tb->own = own;
	tb->own_len = own_len;
	tgt_conn_send(c, tb);
}

/* Answer with a login failure and close once it is written (RFC 7143 11.13.5). */
static int login_fail(struct tgt_conn *c, uint16_t status, const char *why)
{
	struct tgt_login *l = c->login;

	void *data = NULL;
	uint32_t len = l->rsp.len;

	if (status == ISCSI_LS_TARGET_MOVED_TEMP || status == ISCSI_LS_TARGET_MOVED_PERM)
		log_info("%s: login redirected (0x%04x)", c->peer, status);
	else
		log_warn("%s: login failed (0x%04x): %s", c->peer, status, why);
	l->failed = true;
	/* Only a redirect carries text with a failure status. */
	if (status >> 8 == 1 && len) {
		data = util_buf_get(util_reactor_bufpool(c->w->reactor), len);
		if (data)
			memcpy(data, l->rsp.buf, len);
	}
	login_send(c, 0, status, data, data ? len : 0, data, len);
	/*
	 * conn_flush closes once the queue drains. Until then nothing more is
	 * read: the connection has no session, so a later PDU must never reach
	 * the full feature phase handlers (a SCSI Command sent after a failed
	 * login, while the initiator did not read, crashed the engine).
	 */
	c->state = CONN_LOGOUT;
	c->rx_stopped = true;
	return 1; /* stop reading */
}

static void login_enter_ffp(struct tgt_conn *c);

/* Send the next chunk of l->rsp (at most LOGIN_PDU_MAX), C bit when more remains. */
static void login_send_rsp(struct tgt_conn *c)
{
	struct tgt_login *l = c->login;
	uint32_t left = l->rsp.len - l->rsp_sent;
	uint32_t n = UTIL_MIN(left, (uint32_t)LOGIN_PDU_MAX);
	uint8_t flags = l->rsp_flags;
	void *copy = NULL;

	if (n < left)
		flags =
		    (flags & ~ISCSI_LOGIN_TRANSIT & ~ISCSI_LOGIN_NSG_MASK) | ISCSI_LOGIN_CONTINUE;
	if (n) {
		/* The response text buffer is reused; the PDU keeps its own copy. */
		copy = util_buf_get(util_reactor_bufpool(c->w->reactor), n);
		if (!copy) {
			tgt_conn_close(c, "out of memory");
			return;
		}
		memcpy(copy, l->rsp.buf + l->rsp_sent, n);
	}
	l->rsp_sent += n;
	login_send(c, flags, ISCSI_LS_SUCCESS, copy, n, copy, n);
	if (l->to_ffp && l->rsp_sent == l->rsp.len && c->state == CONN_LOGIN)
		login_enter_ffp(c);
}

static bool chap_lookup(void *arg, const char *user, struct iscsi_chap_cred *cred)
{
	struct tgt_login *l = arg;

	if (strcmp(user, l->cred.user) != 0)
		return false;
	*cred = l->cred;
	return true;
}

/* First request: who is logging in to what (RFC 7143 6.3, 13.4-13.6, 13.21). */
static int login_first(struct tgt_conn *c, struct tgt_login *l, const struct iscsi_kv *kv, size_t n)
{
	struct tgt *t = c->tgt;
	const char *ini = iscsi_kv_get(kv, n, "InitiatorName");
	const char *type = iscsi_kv_get(kv, n, "SessionType");
	const char *tname = iscsi_kv_get(kv, n, "TargetName");

	if (!ini || !ini[0])
		return login_fail(c, ISCSI_LS_MISSING_PARAMETER, "no InitiatorName");
	/* A space or a control character would reach logs, ACLs and the APTPL file. */
	if (!iscsi_name_ok(ini, strlen(ini)))
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "malformed InitiatorName");
	if (type && strcmp(type, "Discovery") == 0) {
		l->discovery = true;
	} else if (type && strcmp(type, "Normal") != 0) {
		return login_fail(c, ISCSI_LS_SESSION_TYPE_UNSUPP, "unknown SessionType");
	}
	if (l->tsih != 0) {
		/* MaxConnections is 1: a second connection to a session is refused. */
		return login_fail(c, ISCSI_LS_SESSION_DOES_NOT_EXIST,
				  "adding a connection to a session is not supported");
	}
	if (l->discovery) {
		l->cred = t->cfg.discovery_chap;
	} else {
		if (!tname || !tname[0])
			return login_fail(c, ISCSI_LS_MISSING_PARAMETER, "no TargetName");
		char redirect[64] = "";
		uint16_t admit = 0;
		pthread_rwlock_rdlock(&t->targets_lock);
		l->target = tgt_target_find(t, tname);
		if (l->target) {
			tgt_target_get(l->target); /* dropped by the session or tgt_login_free() */
			l->cred = l->target->chap;
			admit = tgt_target_admit(l->target, ini);
			snprintf(redirect, sizeof(redirect), "%s", l->target->redirect);
		}
		pthread_rwlock_unlock(&t->targets_lock);
		if (!l->target) {
			log_info("%s: no target %s", c->peer, tname);
			return login_fail(c, ISCSI_LS_NOT_FOUND, "target not found");
		}
		if (admit == ISCSI_LS_TARGET_MOVED_TEMP) {
			/* RFC 7143 11.13.5: the answer carries the TargetAddress to use. */
			log_info("%s: %s is served at %s: redirecting", c->peer, tname, redirect);
			iscsi_text_reset(&l->rsp);
			if (iscsi_text_add(&l->rsp, "TargetAddress", "%s,1", redirect) < 0)
				return -ENOMEM;
			return login_fail(c, admit, "target moved");
		}
		if (admit)
			return login_fail(c, admit, "initiator not allowed by the volume's ACL");
	}
	l->need_chap = l->cred.user[0] != '\0';

	struct iscsi_negot_policy pol;
	memset(&pol, 0, sizeof(pol));
	pol.allow_digest_none = t->cfg.digest_none;
	pol.allow_digest_crc32c = t->cfg.digest_crc32c;
	pol.auth_none = !l->need_chap;
	pol.auth_chap = l->need_chap;
	iscsi_params_default(&pol.limits);
	pol.limits.max_recv_dsl = t->cfg.max_recv_dsl;
	pol.limits.max_burst = t->cfg.max_burst;
	pol.limits.first_burst = UTIL_MIN(t->cfg.first_burst, t->cfg.max_burst);
	pol.limits.immediate_data = t->cfg.immediate_data;
	pol.limits.initial_r2t = t->cfg.initial_r2t;
	pol.limits.max_outstanding_r2t = t->cfg.max_outstanding_r2t;
	pol.limits.max_connections = 1;
	pol.limits.error_recovery_level = 0;
	pol.limits.default_time2wait = 2;
	pol.limits.default_time2retain = 0; /* ERL 0: nothing to retain */
	pol.limits.target_portal_group_tag = 1;
	iscsi_negot_init(&l->negot, ISCSI_ROLE_TARGET, &pol);
	return 0;
}

/* Build the session and switch the connection to the full feature phase. */
static int login_complete(struct tgt_conn *c, struct tgt_login *l)
{
	struct tgt_session *s = calloc(1, sizeof(*s));
	const struct iscsi_params *p = &l->negot.result;

	if (!s)
		return login_fail(c, ISCSI_LS_OUT_OF_RESOURCES, "out of memory");
	s->tgt = c->tgt;
	s->target = l->target;
	s->discovery = l->discovery;
	s->conn = c;
	memcpy(s->isid, l->isid, sizeof(s->isid));
	s->params = *p;
	s->exp_cmdsn = l->cmdsn;
	s->max_cmdsn = l->cmdsn + c->tgt->cfg.queue_depth - 1;
	c->sess = s;
	c->cid = l->cid;
	if (tgt_cmd_tasks_init(c) < 0)
		return login_fail(c, ISCSI_LS_OUT_OF_RESOURCES, "out of memory for tasks");
	tgt_session_register(s);
	if (s->target) {
		struct tgt_lu *lu = &s->target->lu;
		s->itl.lu = lu;
		s->itl.sess = s;
		/*
		 * No power-on attention for a new nexus: the engine did not
		 * power on for it, and initiators such as libiscsi's tools fail
		 * their first TEST UNIT READY on a surprise attention (as LIO
		 * and tgt, we raise attentions only for events).
		 */
		atomic_init(&s->itl.ua, 0);
		pthread_mutex_lock(&lu->lock);
		LIST_INSERT_HEAD(&lu->itls, &s->itl, lu_link);
		pthread_mutex_unlock(&lu->lock);
		/* RFC 7143 6.3.5: same initiator, ISID and target: the old session ends. */
		l->reinstate_wait = tgt_session_reinstate(c->tgt, s, c);
	}
	log_notice("%s: %s session %u for %s%s%s (digests %s/%s, MaxRecvDSL %u, burst %u/%u)",
		   c->peer, s->discovery ? "discovery" : "normal", s->tsih, p->initiator_name,
		   s->target ? " to " : "", s->target ? s->target->iqn : "",
		   p->header_digest ? "CRC32C" : "None", p->data_digest ? "CRC32C" : "None",
		   p->peer_max_recv_dsl, p->first_burst, p->max_burst);
	return 0;
}

/* After the final Login Response is queued: digests and limits of the new phase. */
static void login_enter_ffp(struct tgt_conn *c)
{
	const struct iscsi_params *p = &c->sess->params;

	c->state = CONN_FULL_FEATURE;
	c->tx.hdigest = p->header_digest;
	c->tx.ddigest = p->data_digest;
	c->rx.hdigest = p->header_digest;
	c->rx.ddigest = p->data_digest;
	c->rx.max_data = c->tgt->cfg.max_recv_dsl;
	tgt_login_free(c);
}

int tgt_login_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_login_req *req = (const void *)pdu->hdr.raw;
	struct tgt_login *l = login_get(c);
	struct iscsi_kv kv[ISCSI_TEXT_MAX_KV];
	size_t n = 0;
	int rc;

	if (!l)
		return -ENOMEM;
	if (l->failed)
		return 1;
	uint8_t csg = (req->flags & ISCSI_LOGIN_CSG_MASK) >> ISCSI_LOGIN_CSG_SHIFT;
	uint8_t nsg = req->flags & ISCSI_LOGIN_NSG_MASK;
	bool transit = req->flags & ISCSI_LOGIN_TRANSIT;
	bool cont = req->flags & ISCSI_LOGIN_CONTINUE;

	if (!l->started) {
		l->started = true;
		memcpy(l->isid, req->isid, sizeof(l->isid));
		l->tsih = get_be16(req->tsih);
		l->cid = get_be16(req->cid);
		l->cmdsn = get_be32(req->cmdsn);
		c->statsn = get_be32(req->exp_statsn);
		l->stage = csg;
		/* RFC 7143 11.12.4: we speak version 0x00 only. */
		if (req->version_min > ISCSI_VERSION)
			return login_fail(c, ISCSI_LS_UNSUPPORTED_VERSION, "unsupported version");
	} else if (memcmp(l->isid, req->isid, sizeof(l->isid)) != 0 ||
		   l->tsih != get_be16(req->tsih)) {
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "ISID or TSIH changed during login");
	}
	l->itt = get_be32(req->itt);
	if (pdu->ddigest_bad)
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "data digest error");
	if (transit && cont)
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "both T and C bits set");
	if (csg == ISCSI_STAGE_FULL_FEATURE || csg == 2 || (transit && (nsg == 2 || nsg <= csg)))
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "invalid stage transition");
	if (csg < l->stage)
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "stage went backwards");
	l->stage = csg;

	/* More of our previous response remains: an empty request asks for it. */
	if (l->rsp_sent < l->rsp.len) {
		login_send_rsp(c);
		return 0;
	}

	/* Gather request text split over PDUs with the C bit (RFC 7143 11.12.3). */
	if (pdu->data_len) {
		if (l->req.len + pdu->data_len > LOGIN_TEXT_MAX)
			return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "login text too long");
		if (iscsi_text_append_raw(&l->req, pdu->data, pdu->data_len) < 0)
			return -ENOMEM;
	}
	if (cont) {
		/* RFC 7143 6.2: answer an empty response until the text is whole. */
		l->rsp_flags = (uint8_t)(csg << ISCSI_LOGIN_CSG_SHIFT);
		login_send(c, l->rsp_flags, ISCSI_LS_SUCCESS, NULL, 0, NULL, 0);
		return 0;
	}
	char empty[1] = "";
	rc = iscsi_text_parse(l->req.len ? l->req.buf : empty, l->req.len, kv, UTIL_ARRAY_SIZE(kv),
			      &n);
	if (rc < 0)
		return login_fail(c, ISCSI_LS_INITIATOR_ERROR, "malformed login text");
	if (!l->negot_ready) {
		rc = login_first(c, l, kv, n);
		if (rc)
			return rc;
		l->negot_ready = true;
	}
	iscsi_text_reset(&l->rsp);
	l->rsp_sent = 0;

	static const char *const skip[] = {"SendTargets", NULL};
	rc = iscsi_negot_respond(&l->negot, csg, kv, n, skip, &l->rsp);
	if (rc > 0)
		return login_fail(c, (uint16_t)rc, "negotiation failed");
	if (rc < 0)
		return rc;

	if (!l->need_chap) {
		l->authed = true;
	} else if (csg == ISCSI_STAGE_SECURITY) {
		bool chap_keys = false;
		for (size_t i = 0; i < n; i++)
			chap_keys |= strncmp(kv[i].key, "CHAP_", 5) == 0;
		if (iscsi_kv_get(kv, n, "AuthMethod") &&
		    l->negot.result.auth_method != ISCSI_AUTH_CHAP)
			return login_fail(c, ISCSI_LS_AUTH_FAILED, "initiator does not offer CHAP");
		if (l->negot.result.auth_method == ISCSI_AUTH_CHAP && !l->authed &&
		    (chap_keys || l->chap.state != ISCSI_CHAP_START)) {
			rc = iscsi_chap_target_step(&l->chap, kv, n, chap_lookup, l, &l->rsp);
			if (rc == ISCSI_CHAP_OK)
				l->authed = true;
			else if (rc > 0)
				return login_fail(c, (uint16_t)rc, "CHAP authentication failed");
			else if (rc < 0)
				return rc;
		}
		if (transit && !l->authed && l->negot.result.auth_method != ISCSI_AUTH_CHAP)
			return login_fail(c, ISCSI_LS_AUTH_FAILED, "CHAP required");
	} else if (!l->authed) {
		/* Skipping the security stage is allowed only without CHAP (RFC 7143 6.3). */
		return login_fail(c, ISCSI_LS_AUTH_FAILED, "CHAP required");
	}
	/* The target states its portal group tag in its first answer (RFC 7143 13.9). */
	if (l->target && !l->tpgt_sent) {
		l->tpgt_sent = true;
		if (iscsi_text_add(&l->rsp, "TargetPortalGroupTag", "1") < 0)
			return -ENOMEM;
	}

	uint8_t flags = (uint8_t)(csg << ISCSI_LOGIN_CSG_SHIFT);
	/* While CHAP runs the target refuses to transit: T=0 (RFC 7143 6.2). */
	if (transit && l->authed) {
		flags |= ISCSI_LOGIN_TRANSIT | nsg;
		l->to_ffp = nsg == ISCSI_STAGE_FULL_FEATURE;
	}
	if (l->to_ffp) {
		/* RFC 7143 13.12: the target declares its MaxRecvDataSegmentLength. */
		if (iscsi_negot_declare(&l->negot, &l->rsp) < 0)
			return -ENOMEM;
		rc = login_complete(c, l);
		if (rc)
			return rc;
	}
	iscsi_text_reset(&l->req);
	l->rsp_flags = flags;
	if (l->reinstate_wait) {
		log_info("%s: waiting for %u reinstated session(s) to end", c->peer,
			 l->reinstate_wait);
		return 0;
	}
	login_send_rsp(c);
	return 0;
}

void tgt_login_reinstated(struct tgt_conn *c)
{
	struct tgt_login *l = c->login;

	if (!l || !l->reinstate_wait || --l->reinstate_wait)
		return;
	login_send_rsp(c);
}
