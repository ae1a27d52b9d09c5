/*
 * session.c: life cycle of an initiator session. First login (failures are
 * final), LUN probe, full feature phase, and recovery: on connection loss the
 * session logs in again with the same ISID and TSIH 0 (RFC 7143 6.3.5,
 * session reinstatement, the ERL 0 recovery of 7.1.5), with back-off, and
 * resends the commands that had not completed. Timers run on the reactor
 * tick: login timeout, command timeout, NOP-Out keepalive, back-off.
 */
#define UTIL_LOG_TAG "ini-sess"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iscsi-init/ini_internal.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 1000

void ini_config_default(struct ini_config *cfg)
{
	char host[64] = "localhost";

	memset(cfg, 0, sizeof(*cfg));
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(cfg->initiator_name, sizeof(cfg->initiator_name),
		 "iqn.2026-11.org.vmengine:init.%s", host);
	cfg->port = INI_DEFAULT_PORT;
	cfg->max_recv_dsl = 262144;
	cfg->cmd_timeout_ms = 30000;
	cfg->cmd_retries = 5;
	cfg->recovery_timeout_ms = 120000;
	cfg->nop_interval_ms = 5000;
	cfg->login_timeout_ms = 10000;
	cfg->probe_luns = true;
}

static void config_fill(struct ini_config *c)
{
	if (!c->port)
		c->port = INI_DEFAULT_PORT;
	if (!c->max_recv_dsl)
		c->max_recv_dsl = 262144;
	/* RFC 7143 13.12: 512 to 2^24 - 1. */
	c->max_recv_dsl = UTIL_MAX(UTIL_MIN(c->max_recv_dsl, 16777215u), 512u);
	if (!c->cmd_timeout_ms)
		c->cmd_timeout_ms = 30000;
	if (!c->cmd_retries)
		c->cmd_retries = 5;
	if (!c->nop_interval_ms)
		c->nop_interval_ms = 5000;
	if (!c->login_timeout_ms)
		c->login_timeout_ms = 10000;
}

static int session_alloc(struct util_reactor *r, const struct ini_config *cfg, bool discovery,
			 struct ini_session **out)
{
	static unsigned isid_seq;
	struct ini_session *s;
	uint32_t q;

	if (!cfg->initiator_name[0] || !cfg->host[0] || (!discovery && !cfg->target_name[0]))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->r = r;
	s->cfg = *cfg;
	config_fill(&s->cfg);
	s->ops = &ini_tcp_ops;
	s->discovery = discovery;
	snprintf(s->host, sizeof(s->host), "%s", s->cfg.host);
	s->port = s->cfg.port;
	/*
	 * RFC 7143 10.12.5: ISID type "Random" (0x80), B/C random-ish (the PID
	 * or the configured qualifier), D a per-process counter, so that two
	 * sessions of one process to one target are distinct I_T nexuses. The
	 * ISID is kept for life: recovery must reinstate the same session.
	 */
	q = (uint32_t)cfg->isid_qualifier[0] << 16 | (uint32_t)cfg->isid_qualifier[1] << 8 |
	    cfg->isid_qualifier[2];
	if (!q)
		q = (uint32_t)getpid() & 0xffffff;
	s->isid[0] = 0x80;
	put_be24(s->isid + 1, q);
	put_be16(s->isid + 4, (uint16_t)++isid_seq);
	s->scratch_len = UTIL_MAX(s->cfg.max_recv_dsl, 8192u);
	s->scratch = malloc(s->scratch_len);
	s->nop_echo = malloc(s->scratch_len);
	iscsi_text_init(&s->login.out);
	iscsi_text_init(&s->login.in);
	STAILQ_INIT(&s->tmf_ops);
	if (!s->scratch || !s->nop_echo || ini_tasks_init(s) < 0) {
		ini_session_destroy(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

int ini_session_create(struct util_reactor *r, const struct ini_config *cfg,
		       struct ini_session **out)
{
	return session_alloc(r, cfg, false, out);
}

void ini_session_set_transport(struct ini_session *s, const struct ini_transport_ops *ops)
{
	s->ops = ops;
}

void ini_session_destroy(struct ini_session *s)
{
	struct ini_tmf_op *op;

	if (!s)
		return;
	if (s->tick)
		util_reactor_tick_del(s->r, s->tick);
	if (s->conn != CONN_DOWN)
		s->ops->close(s);
	s->state = SESS_CLOSED;
	s->ops->close(s); /* frees the transport's state in this state */
	while ((op = STAILQ_FIRST(&s->tmf_ops)) != NULL) {
		STAILQ_REMOVE_HEAD(&s->tmf_ops, link);
		free(op);
	}
	ini_login_free(s);
	ini_tasks_fini(s);
	free(s->probe_buf);
	free(s->scratch);
	free(s->nop_echo);
	free(s);
}

static void start_connect(struct ini_session *s)
{
	const char *host = s->redirect_pending ? s->host : s->cfg.host;
	uint16_t port = s->redirect_pending ? s->port : s->cfg.port;
	int rc;

	if (!s->redirect_pending) {
		snprintf(s->host, sizeof(s->host), "%s", s->cfg.host);
		s->port = s->cfg.port;
	}
	s->redirect_pending = false;
	s->conn = CONN_CONNECTING;
	s->login.deadline_ms = util_now_ms() + s->cfg.login_timeout_ms;
	rc = s->ops->connect(s, host, port);
	if (rc < 0) {
		log_warn("%s:%u: connect: %s", host, (unsigned)port, strerror(-rc));
		ini_conn_fail(s, rc);
	}
}

int ini_session_connect(struct ini_session *s, ini_cb cb, void *cb_arg)
{
	if (s->state != SESS_NEW)
		return -EALREADY;
	s->tick = util_reactor_tick_add(s->r, ini_session_tick, s);
	if (!s->tick)
		return -ENOMEM;
	s->conn_cb = cb;
	s->conn_cb_arg = cb_arg;
	s->state = SESS_LOGIN;
	s->cmdsn = 0;
	start_connect(s);
	return 0;
}

void ini_conn_connected(struct ini_session *s, int rc)
{
	if (rc == 0)
		rc = ini_login_start(s);
	if (rc < 0) {
		log_warn("%s:%u: %s", s->host, (unsigned)s->port, strerror(-rc));
		ini_conn_fail(s, rc);
	}
}

/* The first connect ended: its callback runs from the next tick. */
static void connect_finished(struct ini_session *s, int rc)
{
	s->conn_rc = rc;
	s->conn_cb_due = true;
}

static void recovery_retry_later(struct ini_session *s)
{
	s->backoff_ms =
	    s->backoff_ms ? UTIL_MIN(s->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
	s->retry_at_ms = util_now_ms() + s->backoff_ms;
}

void ini_conn_fail(struct ini_session *s, int rc)
{
	if (s->conn == CONN_DOWN)
		return;
	s->ops->close(s);
	s->conn = CONN_DOWN;
	s->conn_gen++;
	s->nop_sent_ms = 0;
	switch (s->state) {
	case SESS_LOGIN:
		s->state = SESS_FAILED;
		connect_finished(s, rc);
		break;
	case SESS_PROBE:
	case SESS_UP:
		if (s->cfg.recovery_timeout_ms == 0) {
			log_err("%s: connection lost (%s); recovery is off", s->host,
				strerror(-rc));
			s->state = SESS_FAILED;
			ini_cmd_fail_all(s, -ENOTCONN);
			break;
		}
		log_warn("%s:%u: connection lost (%s): recovering %u commands", s->host,
			 (unsigned)s->port, strerror(-rc), s->nsent + s->nqueued);
		s->state = SESS_RECOVER;
		s->lost_ms = util_now_ms();
		s->backoff_ms = 0;
		s->retry_at_ms = s->lost_ms; /* first attempt on the next tick */
		ini_cmd_requeue_all(s);
		break;
	case SESS_RECOVER:
		recovery_retry_later(s);
		break;
	case SESS_CLOSING:
		s->state = SESS_CLOSED;
		s->close_cb_due = true;
		break;
	default:
		break;
	}
}

void ini_login_done(struct ini_session *s, int rc)
{
	if (rc == 1) {
		/* Redirected (RFC 7143 11.13.5): log in at the new portal, from the tick. */
		s->ops->close(s);
		s->conn = CONN_DOWN;
		s->conn_gen++;
		snprintf(s->host, sizeof(s->host), "%s", s->login.redirect_host);
		s->port = s->login.redirect_port;
		s->redirect_pending = true;
		s->retry_at_ms = util_now_ms();
		return;
	}
	if (rc < 0) {
		log_warn("%s:%u: login failed: %s", s->host, (unsigned)s->port, strerror(-rc));
		ini_conn_fail(s, rc);
		return;
	}
	s->login.redirects = 0;
	s->ops->set_params(s, s->params.header_digest, s->params.data_digest,
			   s->params.max_recv_dsl);
	s->last_rx_ms = util_now_ms();
	log_info("%s:%u: logged in to %s (TSIH %u, digests %s/%s, MaxCmdSN window %d)", s->host,
		 (unsigned)s->port, s->discovery ? "discovery" : s->cfg.target_name,
		 (unsigned)s->tsih, s->params.header_digest ? "CRC32C" : "None",
		 s->params.data_digest ? "CRC32C" : "None", (int)(s->max_cmdsn - s->cmdsn + 1));
	if (s->discovery) {
		rc = ini_discover_start(s);
		if (rc < 0)
			ini_conn_fail(s, rc);
		return;
	}
	if (s->state == SESS_LOGIN) {
		if (s->cfg.probe_luns) {
			s->state = SESS_PROBE;
			ini_probe_start(s);
		} else {
			s->state = SESS_UP;
			connect_finished(s, 0);
		}
		return;
	}
	if (s->state == SESS_RECOVER) {
		uint64_t outage = util_now_ms() - s->lost_ms;

		s->stats.reconnects++;
		s->stats.longest_outage_ms = UTIL_MAX(s->stats.longest_outage_ms, outage);
		log_notice("%s:%u: session recovered after %llu ms, resending %u commands", s->host,
			   (unsigned)s->port, (unsigned long long)outage, s->nqueued);
		s->state = SESS_UP;
		s->backoff_ms = 0;
		ini_cmd_kick(s);
	}
}

void ini_probe_done(struct ini_session *s, int rc)
{
	if (s->state != SESS_PROBE)
		return; /* recovery took over; the probe restarts nothing */
	s->state = SESS_UP;
	connect_finished(s, rc);
	ini_cmd_kick(s);
}

void ini_logout_done(struct ini_session *s)
{
	s->ops->close(s);
	s->conn = CONN_DOWN;
	s->conn_gen++;
	if (s->discovery && s->state == SESS_LOGIN) {
		s->state = SESS_CLOSED;
		connect_finished(s, 0);
	} else {
		s->state = SESS_CLOSED;
		s->close_cb_due = true;
	}
}

int ini_session_close(struct ini_session *s, ini_cb cb, void *cb_arg)
{
	if (s->state == SESS_CLOSING || s->state == SESS_CLOSED || s->close_cb)
		return -EALREADY;
	if (!s->tick) {
		s->tick = util_reactor_tick_add(s->r, ini_session_tick, s);
		if (!s->tick)
			return -ENOMEM;
	}
	s->close_cb = cb;
	s->close_cb_arg = cb_arg;
	ini_cmd_fail_all(s, -ECANCELED);
	if (s->conn == CONN_FFP) {
		s->state = SESS_CLOSING;
		if (ini_logout_send(s) == 0)
			return 0;
	}
	if (s->conn != CONN_DOWN) {
		s->ops->close(s);
		s->conn = CONN_DOWN;
		s->conn_gen++;
	}
	s->state = SESS_CLOSED;
	s->close_cb_due = true;
	return 0;
}

/* ---- the tick ---- */

/* The state a user sees, or false in states it is not told about. */
static bool public_state(const struct ini_session *s, enum ini_session_state *st)
{
	switch (s->state) {
	case SESS_UP:
		*st = INI_SESSION_UP;
		return true;
	case SESS_RECOVER:
		*st = INI_SESSION_RECOVERING;
		return true;
	case SESS_FAILED:
		*st = INI_SESSION_FAILED;
		return true;
	default:
		return false;
	}
}

static bool deliver_due(struct ini_session *s)
{
	enum ini_session_state st;

	if (s->conn_cb_due) {
		ini_cb cb = s->conn_cb;
		s->conn_cb_due = false;
		s->conn_cb = NULL;
		if (s->conn_rc == 0 && !s->discovery) {
			s->state_reporting = true;
			s->reported = INI_SESSION_UP;
		}
		if (cb) {
			cb(s->conn_cb_arg, s->conn_rc);
			return true; /* the session may be gone */
		}
	}
	if (s->close_cb_due) {
		ini_cb cb = s->close_cb;
		s->close_cb_due = false;
		if (cb) {
			cb(s->close_cb_arg, 0);
			return true;
		}
	}
	if (s->state_cb && s->state_reporting && public_state(s, &st) && st != s->reported) {
		s->reported = st;
		s->state_cb(s->state_cb_arg, st);
		return true; /* the session may be gone */
	}
	return false;
}

void ini_session_tick(void *arg)
{
	struct ini_session *s = arg;
	struct ini_tmf_op *op;
	uint64_t now = util_now_ms();

	if (deliver_due(s))
		return;
	while ((op = STAILQ_FIRST(&s->tmf_ops)) != NULL) {
		STAILQ_REMOVE_HEAD(&s->tmf_ops, link);
		ini_tmf_run(s, op);
	}
	switch (s->conn) {
	case CONN_CONNECTING:
	case CONN_LOGIN:
	case CONN_LOGOUT:
		if (now >= s->login.deadline_ms) {
			log_warn("%s:%u: %s timed out", s->host, (unsigned)s->port,
				 s->conn == CONN_LOGOUT ? "logout" : "login");
			ini_conn_fail(s, -ETIMEDOUT);
		}
		break;
	case CONN_FFP:
		if (ini_cmd_check_timeouts(s, now)) {
			ini_conn_fail(s, -ETIMEDOUT);
			break;
		}
		/* RFC 7143 7.1.2 / 11.18: NOP-Out as a keepalive when the link is quiet. */
		if (s->nop_sent_ms) {
			if (now - s->nop_sent_ms >= UTIL_MAX(s->cfg.nop_interval_ms, 5000u)) {
				log_warn("%s:%u: no answer to NOP-Out ping", s->host,
					 (unsigned)s->port);
				ini_conn_fail(s, -ETIMEDOUT);
			}
		} else if (now - s->last_rx_ms >= s->cfg.nop_interval_ms && !s->discovery) {
			ini_nop_ping(s);
		}
		break;
	case CONN_DOWN:
		if (s->state == SESS_RECOVER && s->cfg.recovery_timeout_ms != UINT32_MAX &&
		    now - s->lost_ms >= s->cfg.recovery_timeout_ms) {
			log_err("%s:%u: session not recovered within %u ms: failing %u commands",
				s->host, (unsigned)s->port, s->cfg.recovery_timeout_ms,
				s->nqueued + s->nsent);
			s->state = SESS_FAILED;
			ini_cmd_fail_all(s, -ENOTCONN);
			break;
		}
		if ((s->state == SESS_RECOVER || (s->state == SESS_LOGIN && s->redirect_pending)) &&
		    now >= s->retry_at_ms)
			start_connect(s);
		break;
	}
	deliver_due(s);
}

/* ---- accessors ---- */

const struct ini_lun *ini_session_luns(const struct ini_session *s, unsigned *n)
{
	*n = s->nluns;
	return s->luns;
}

const struct ini_lun *ini_session_lun(const struct ini_session *s, uint64_t lun)
{
	for (unsigned i = 0; i < s->nluns; i++) {
		if (s->luns[i].lun == lun)
			return &s->luns[i];
	}
	return NULL;
}

const struct iscsi_params *ini_session_params(const struct ini_session *s)
{
	return &s->params;
}

void ini_session_stats(const struct ini_session *s, struct ini_stats *st)
{
	*st = s->stats;
}

bool ini_session_connected(const struct ini_session *s)
{
	return s->state == SESS_UP && s->conn == CONN_FFP;
}

void ini_session_set_state_cb(struct ini_session *s, ini_state_cb cb, void *cb_arg)
{
	s->state_cb = cb;
	s->state_cb_arg = cb_arg;
}

/* ---- discovery ---- */

struct disc_ctx {
	struct ini_session *s;
	ini_cb cb;
	void *cb_arg;
};

static void disc_done(void *arg, int rc)
{
	struct disc_ctx *d = arg;
	ini_cb cb = d->cb;
	void *cb_arg = d->cb_arg;

	ini_session_destroy(d->s);
	free(d);
	cb(cb_arg, rc);
}

int ini_discover(struct util_reactor *r, const struct ini_config *cfg, struct ini_target *out,
		 unsigned max, unsigned *n, ini_cb cb, void *cb_arg)
{
	struct disc_ctx *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	rc = session_alloc(r, cfg, true, &d->s);
	if (rc < 0) {
		free(d);
		return rc;
	}
	d->cb = cb;
	d->cb_arg = cb_arg;
	d->s->disc_out = out;
	d->s->disc_max = max;
	d->s->disc_n = n;
	*n = 0;
	rc = ini_session_connect(d->s, disc_done, d);
	if (rc < 0) {
		ini_session_destroy(d->s);
		free(d);
	}
	return rc;
}
