/*
 * login.c: the initiator side of login (RFC 7143 6, 11.12, 11.13), driven by
 * Login Responses on the reactor: security stage (AuthMethod, CHAP one-way or
 * mutual), operational stage (keys offered from the shared negotiation table),
 * redirection, then SendTargets discovery (11.10) and Logout (11.14).
 */
#define UTIL_LOG_TAG "ini-login"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-init/ini_internal.h"

#define ITT_LOGIN     0x80000001u
#define ITT_TEXT      0x80000002u
#define ITT_LOGOUT    0x80000003u
#define MAX_REDIRECTS 4
#define LOGIN_KV_MAX  128

static bool use_chap(const struct ini_session *s)
{
	return s->cfg.chap.user[0] != '\0';
}

static void login_policy(const struct ini_session *s, struct iscsi_negot_policy *p)
{
	const struct ini_config *c = &s->cfg;
	struct iscsi_params *l = &p->limits;
	bool digests = c->header_digest || c->data_digest;

	memset(p, 0, sizeof(*p));
	/*
	 * The shared policy has one digest choice for both keys: asking for
	 * either digest requires CRC32C on both (see the report on iscsi.h).
	 */
	p->allow_digest_none = !digests;
	p->allow_digest_crc32c = digests;
	p->prefer_digest_crc32c = digests;
	p->auth_chap = use_chap(s);
	p->auth_none = !use_chap(s);
	iscsi_params_default(l);
	l->session_type = s->discovery ? ISCSI_SESSION_DISCOVERY : ISCSI_SESSION_NORMAL;
	snprintf(l->initiator_name, sizeof(l->initiator_name), "%s", c->initiator_name);
	if (!s->discovery)
		snprintf(l->target_name, sizeof(l->target_name), "%s", c->target_name);
	l->max_recv_dsl = c->max_recv_dsl;
	/* We can send unsolicited and immediate data: ask for both. */
	l->initial_r2t = false;
	l->immediate_data = true;
	l->max_burst = 16776192;
	l->first_burst = 262144;
	l->max_outstanding_r2t = 16;
	/* ERL 0 (RFC 7143 7.1.5): recovery is a new session, so nothing to retain. */
	l->error_recovery_level = 0;
	l->default_time2wait = 0;
	l->default_time2retain = 0;
	l->max_connections = 1;
}

static void login_tx_done(struct iscsi_txpdu *tp, void *arg)
{
	struct ini_txbuf *tb = arg;
	struct ini_session *s = tb->s;

	SLIST_INSERT_HEAD(&s->free_tx, tb, free_link);
}

/* Send the Login Request built in s->login.out. */
static int login_send(struct ini_session *s, bool transit, int nsg)
{
	struct ini_login *l = &s->login;
	struct ini_txbuf *tb = ini_txbuf_get(s, NULL);
	struct iscsi_bhs_login_req *req;

	if (!tb)
		return -ENOMEM;
	req = (struct iscsi_bhs_login_req *)(void *)&tb->tp.hdr;
	req->opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	req->flags = (uint8_t)((l->stage << ISCSI_LOGIN_CSG_SHIFT) & ISCSI_LOGIN_CSG_MASK);
	if (transit)
		req->flags |= ISCSI_LOGIN_TRANSIT | (uint8_t)(nsg & ISCSI_LOGIN_NSG_MASK);
	req->version_max = ISCSI_VERSION;
	req->version_min = ISCSI_VERSION;
	memcpy(req->isid, s->isid, sizeof(req->isid));
	/* RFC 7143 6.3.5: TSIH 0 with the old ISID reinstates the session. */
	put_be16(req->tsih, 0);
	put_be32(req->itt, l->itt);
	put_be16(req->cid, 0);
	put_be32(req->cmdsn, s->cmdsn);
	put_be32(req->exp_statsn, s->exp_statsn);
	tb->tp.data = l->out.len ? l->out.buf : NULL;
	tb->tp.data_len = l->out.len;
	tb->tp.done = login_tx_done;
	tb->tp.done_arg = tb;
	l->transit_sent = transit;
	ini_send(s, tb);
	return 0;
}

int ini_login_start(struct ini_session *s)
{
	struct ini_login *l = &s->login;
	struct iscsi_negot_policy pol;
	int rc;

	login_policy(s, &pol);
	iscsi_negot_init(&l->negot, ISCSI_ROLE_INITIATOR, &pol);
	memset(&l->chap, 0, sizeof(l->chap));
	l->chap_started = false;
	l->stage = ISCSI_STAGE_SECURITY;
	l->itt = ITT_LOGIN;
	iscsi_text_reset(&l->out);
	iscsi_text_reset(&l->in);
	s->exp_statsn = 0;
	s->conn = CONN_LOGIN;
	rc = iscsi_negot_offer(&l->negot, ISCSI_STAGE_SECURITY, &l->out);
	if (rc < 0)
		return rc;
	/* Without CHAP the security stage is one round: AuthMethod=None, T=1. */
	if (!use_chap(s))
		return login_send(s, true, ISCSI_STAGE_OPERATIONAL);
	return login_send(s, false, 0);
}

/* "host:port,tpgt", "[v6]:port,tpgt" or "host" (RFC 7143 13.8). */
static int parse_target_address(const char *v, char *host, size_t hsize, uint16_t *port)
{
	const char *end, *p;
	size_t len;

	*port = INI_DEFAULT_PORT;
	if (v[0] == '[') {
		end = strchr(v, ']');
		if (!end)
			return -EINVAL;
		len = (size_t)(end - v - 1);
		v++;
		p = end + 1;
	} else {
		p = v + strcspn(v, ":,");
		len = (size_t)(p - v);
	}
	if (len == 0 || len >= hsize)
		return -EINVAL;
	memcpy(host, v, len);
	host[len] = '\0';
	if (*p == ':') {
		unsigned long n = strtoul(p + 1, NULL, 10);
		if (n == 0 || n > 65535)
			return -EINVAL;
		*port = (uint16_t)n;
	}
	return 0;
}

/* RFC 7143 11.13.5: map a login status to the errno of ini.h. */
static int login_status_errno(unsigned status)
{
	switch (status) {
	case ISCSI_LS_AUTH_FAILED:
	case ISCSI_LS_AUTHZ_FAILED:
		return -EACCES;
	case ISCSI_LS_NOT_FOUND:
	case ISCSI_LS_TARGET_REMOVED:
		return -ENOENT;
	default:
		return (status >> 8) == 3 ? -EAGAIN : -EPROTO;
	}
}

static int login_redirect(struct ini_session *s, unsigned status, const struct iscsi_kv *kv,
			  size_t n)
{
	struct ini_login *l = &s->login;
	const char *addr = iscsi_kv_get(kv, n, "TargetAddress");

	if (!addr || parse_target_address(addr, l->redirect_host, sizeof(l->redirect_host),
					  &l->redirect_port) < 0) {
		log_err("%s: redirection without a valid TargetAddress", s->host);
		return -EPROTO;
	}
	if (++l->redirects > MAX_REDIRECTS) {
		log_err("%s: more than %d redirections", s->host, MAX_REDIRECTS);
		return -ELOOP;
	}
	log_info("%s:%u: target moved %s to %s", s->host, (unsigned)s->port,
		 status == ISCSI_LS_TARGET_MOVED_PERM ? "permanently" : "temporarily", addr);
	/* Permanently: later recoveries go to the new portal too. */
	if (status == ISCSI_LS_TARGET_MOVED_PERM) {
		snprintf(s->cfg.host, sizeof(s->cfg.host), "%s", l->redirect_host);
		s->cfg.port = l->redirect_port;
	}
	return 1;
}

/* One complete Login Response (all C-bit pieces gathered in l->in). */
static int login_step(struct ini_session *s, const struct iscsi_bhs_login_rsp *rsp)
{
	struct ini_login *l = &s->login;
	struct iscsi_kv kv[LOGIN_KV_MAX];
	size_t n = 0;
	unsigned status = ISCSI_LOGIN_STATUS(rsp->status_class, rsp->status_detail);
	bool transit = (rsp->flags & ISCSI_LOGIN_TRANSIT) != 0;
	int nsg = rsp->flags & ISCSI_LOGIN_NSG_MASK;
	int rc;

	/* Room for the NUL iscsi_text_parse() may add. */
	if (iscsi_text_append_raw(&l->in, "", 1) < 0)
		return -ENOMEM;
	l->in.len--;
	if (l->in.len && iscsi_text_parse(l->in.buf, l->in.len, kv, LOGIN_KV_MAX, &n) < 0) {
		log_err("%s: malformed login response text", s->host);
		return -EPROTO;
	}
	if (status == ISCSI_LS_TARGET_MOVED_TEMP || status == ISCSI_LS_TARGET_MOVED_PERM)
		return login_redirect(s, status, kv, n);
	if (status != ISCSI_LS_SUCCESS) {
		log_err("%s:%u: login to %s rejected: status 0x%04x", s->host, (unsigned)s->port,
			s->discovery ? "discovery" : s->cfg.target_name, status);
		return login_status_errno(status);
	}
	if (rsp->version_active != ISCSI_VERSION)
		return -EPROTO;
	s->tsih = get_be16(rsp->tsih);

	iscsi_text_reset(&l->out);
	if (l->stage == ISCSI_STAGE_SECURITY) {
		rc = iscsi_negot_accept(&l->negot, ISCSI_STAGE_SECURITY, kv, n, &l->out);
		if (rc < 0)
			return rc;
		if (use_chap(s)) {
			if (l->negot.result.auth_method != ISCSI_AUTH_CHAP) {
				log_err("%s: target refused CHAP", s->host);
				return -EACCES;
			}
			/* RFC 7143 12.1.3: CHAP_A, then CHAP_N/R (+I/C), then the mutual answer. */
			rc = iscsi_chap_initiator_step(&l->chap, l->chap_started ? kv : NULL,
						       l->chap_started ? n : 0, &s->cfg.chap,
						       &l->out);
			l->chap_started = true;
			if (rc == -EACCES || rc == -EPROTO || rc == -EINVAL)
				return rc == -EPROTO ? -EPROTO : -EACCES;
			if (rc < 0 && rc != ISCSI_CHAP_OK)
				return rc;
		}
		if (!transit || nsg != ISCSI_STAGE_OPERATIONAL) {
			bool ready = !use_chap(s) || l->chap.state == ISCSI_CHAP_DONE ||
				     l->chap.state == ISCSI_CHAP_CHALLENGE;
			return login_send(s, ready, ISCSI_STAGE_OPERATIONAL);
		}
		if (use_chap(s) && l->chap.state != ISCSI_CHAP_DONE) {
			/* Leaving security without authenticating itself (mutual). */
			log_err("%s: target skipped mutual CHAP", s->host);
			return -EACCES;
		}
		l->stage = ISCSI_STAGE_OPERATIONAL;
		iscsi_text_reset(&l->out);
		rc = iscsi_negot_offer(&l->negot, ISCSI_STAGE_OPERATIONAL, &l->out);
		if (rc < 0)
			return rc;
		return login_send(s, true, ISCSI_STAGE_FULL_FEATURE);
	}

	rc = iscsi_negot_accept(&l->negot, ISCSI_STAGE_OPERATIONAL, kv, n, &l->out);
	if (rc < 0)
		return rc;
	if (transit && nsg == ISCSI_STAGE_FULL_FEATURE) {
		s->params = l->negot.result;
		s->conn = CONN_FFP;
		return 0;
	}
	rc = iscsi_negot_offer(&l->negot, ISCSI_STAGE_OPERATIONAL, &l->out);
	if (rc < 0)
		return rc;
	return login_send(s, true, ISCSI_STAGE_FULL_FEATURE);
}

int ini_login_rx(struct ini_session *s, struct iscsi_pdu *pdu)
{
	struct ini_login *l = &s->login;
	const struct iscsi_bhs_login_rsp *rsp = (const void *)&pdu->hdr;
	int rc;

	if (s->conn != CONN_LOGIN || get_be32(rsp->itt) != l->itt) {
		log_err("%s: unexpected Login Response", s->host);
		ini_conn_fail(s, -EPROTO);
		return -ECONNABORTED;
	}
	s->exp_statsn = get_be32(rsp->statsn) + 1;
	ini_update_sn(s, rsp->exp_cmdsn, rsp->max_cmdsn);
	if (s->cmdsn == 0 || sn_lt(s->cmdsn, get_be32(rsp->exp_cmdsn)))
		s->cmdsn = get_be32(rsp->exp_cmdsn);
	if (pdu->data_len && iscsi_text_append_raw(&l->in, pdu->data, pdu->data_len) < 0) {
		ini_login_done(s, -ENOMEM);
		return -ECONNABORTED;
	}
	/* RFC 7143 11.13.2: C=1, more text follows; answer with an empty request. */
	if (rsp->flags & ISCSI_LOGIN_CONTINUE) {
		iscsi_text_reset(&l->out);
		rc = login_send(s, false, 0);
		if (rc < 0) {
			ini_login_done(s, rc);
			return -ECONNABORTED;
		}
		return 0;
	}
	rc = login_step(s, rsp);
	iscsi_text_reset(&l->in);
	if (rc == 0 && s->conn != CONN_FFP)
		return 0; /* another round */
	unsigned gen = s->conn_gen;
	ini_login_done(s, rc);
	/* Go on reading only when the connection entered the full feature phase. */
	return s->conn_gen == gen && s->conn == CONN_FFP ? 0 : -ECONNABORTED;
}

/* ---- SendTargets (RFC 7143 appendix C) ---- */

static int text_send(struct ini_session *s, uint32_t ttt, bool sendtargets)
{
	struct ini_login *l = &s->login;
	struct ini_txbuf *tb = ini_txbuf_get(s, NULL);
	struct iscsi_bhs_text *req;

	if (!tb)
		return -ENOMEM;
	iscsi_text_reset(&l->out);
	if (sendtargets && iscsi_text_add(&l->out, "SendTargets", "All") < 0) {
		SLIST_INSERT_HEAD(&s->free_tx, tb, free_link);
		return -ENOMEM;
	}
	req = (struct iscsi_bhs_text *)(void *)&tb->tp.hdr;
	req->opcode = ISCSI_OP_TEXT_REQ | ISCSI_OP_IMMEDIATE;
	req->flags = ISCSI_FLAG_FINAL;
	put_be32(req->itt, ITT_TEXT);
	put_be32(req->ttt, ttt);
	put_be32(req->sn, s->cmdsn);
	put_be32(req->exp_sn, s->exp_statsn);
	tb->tp.data = l->out.len ? l->out.buf : NULL;
	tb->tp.data_len = l->out.len;
	tb->tp.done = login_tx_done;
	tb->tp.done_arg = tb;
	ini_send(s, tb);
	return 0;
}

int ini_discover_start(struct ini_session *s)
{
	iscsi_text_reset(&s->login.in);
	return text_send(s, ISCSI_RSVD_TAG, true);
}

static void disc_parse(struct ini_session *s)
{
	struct iscsi_kv kv[ISCSI_TEXT_MAX_KV];
	struct ini_login *l = &s->login;
	size_t n = 0;
	unsigned count = 0;

	if (iscsi_text_append_raw(&l->in, "", 1) < 0)
		return;
	l->in.len--;
	if (l->in.len && iscsi_text_parse(l->in.buf, l->in.len, kv, ISCSI_TEXT_MAX_KV, &n) < 0) {
		log_warn("%s: malformed SendTargets response", s->host);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct ini_target *t;

		if (strcmp(kv[i].key, "TargetName") == 0) {
			if (count == s->disc_max)
				break;
			t = &s->disc_out[count++];
			snprintf(t->name, sizeof(t->name), "%s", kv[i].val);
			t->address[0] = '\0';
		} else if (strcmp(kv[i].key, "TargetAddress") == 0 && count) {
			t = &s->disc_out[count - 1];
			if (!t->address[0])
				snprintf(t->address, sizeof(t->address), "%s", kv[i].val);
		}
	}
	*s->disc_n = count;
}

int ini_text_rx(struct ini_session *s, struct iscsi_pdu *pdu)
{
	const struct iscsi_bhs_text *rsp = (const void *)&pdu->hdr;
	struct ini_login *l = &s->login;

	if (get_be32(rsp->itt) != ITT_TEXT || !s->discovery)
		return 0; /* not ours: ignore */
	if (pdu->data_len && iscsi_text_append_raw(&l->in, pdu->data, pdu->data_len) < 0)
		return -ENOMEM;
	/* RFC 7143 11.11.2: C=1 (and a TTT) means more text: ask for it. */
	if (rsp->flags & ISCSI_TEXT_CONTINUE)
		return text_send(s, get_be32(rsp->ttt), false);
	disc_parse(s);
	iscsi_text_reset(&l->in);
	return ini_logout_send(s);
}

/* ---- logout ---- */

int ini_logout_send(struct ini_session *s)
{
	struct ini_txbuf *tb = ini_txbuf_get(s, NULL);
	struct iscsi_bhs_logout_req *req;

	if (!tb)
		return -ENOMEM;
	req = (struct iscsi_bhs_logout_req *)(void *)&tb->tp.hdr;
	/* Immediate: it must not wait behind a closed CmdSN window. */
	req->opcode = ISCSI_OP_LOGOUT_REQ | ISCSI_OP_IMMEDIATE;
	req->flags = ISCSI_FLAG_FINAL | ISCSI_LOGOUT_CLOSE_SESSION;
	put_be32(req->itt, ITT_LOGOUT);
	put_be32(req->cmdsn, s->cmdsn);
	put_be32(req->exp_statsn, s->exp_statsn);
	tb->tp.done = login_tx_done;
	tb->tp.done_arg = tb;
	s->conn = CONN_LOGOUT;
	s->login.deadline_ms = util_now_ms() + 5000;
	ini_send(s, tb);
	return 0;
}

void ini_login_free(struct ini_session *s)
{
	iscsi_text_free(&s->login.out);
	iscsi_text_free(&s->login.in);
}
