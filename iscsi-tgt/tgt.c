/*
 * The target service: targets (one per volume), portals, the hand-off of
 * accepted connections to reactors, the session table used for session
 * reinstatement, and orderly shutdown.
 */
#define UTIL_LOG_TAG "tgt"
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi-tgt/tgt_internal.h"

void tgt_config_default(struct tgt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->node_prefix, sizeof(cfg->node_prefix), "iqn.2026-11.org.vmengine");
	cfg->max_recv_dsl = 262144;
	cfg->max_burst = 1048576;
	cfg->first_burst = 262144;
	cfg->immediate_data = true;
	cfg->initial_r2t = false;
	cfg->max_outstanding_r2t = 1;
	cfg->queue_depth = 128;
	cfg->digest_crc32c = true;
	cfg->digest_none = true;
	cfg->nop_interval_s = 30;
	cfg->nop_timeout_s = 30;
	cfg->login_timeout_s = 15;
	cfg->max_xfer_blocks = 16384;
	cfg->sanitize_mib_s = 256;
}

static void worker_tick(void *arg)
{
	struct tgt_worker *w = arg;
	uint64_t now = util_now_ms();
	struct tgt_conn *c, *tmp;

	TAILQ_FOREACH_SAFE (c, &w->conns, link, tmp)
		tgt_conn_tick(c, now);
}

/* Runs on the worker's reactor once it starts: per-thread resources. */
static void worker_init(void *arg)
{
	struct tgt_worker *w = arg;

	w->chan = vol_chan_create(w->reactor);
	if (!w->chan)
		log_err("%s: no I/O channel; volumes cannot be served from this reactor",
			util_reactor_name(w->reactor));
	w->tick = util_reactor_tick_add(w->reactor, worker_tick, w);
}

/* What the device server reaches through struct tgt_scsi_ops in the engine. */
static const struct tgt_scsi_ops engine_scsi_ops = {
    .tick_add = util_reactor_tick_add,
    .tick_del = util_reactor_tick_del,
    .send = util_reactor_send,
    .target_get = tgt_target_get,
    .target_put = tgt_target_put,
    .target_admit = tgt_target_admit,
    .conn_gone = tgt_conn_gone,
};

struct tgt *tgt_create(const struct tgt_config *cfg, struct util_reactor **reactors,
		       unsigned nreactors)
{
	struct tgt *t = calloc(1, sizeof(*t));

	if (!t || nreactors == 0)
		goto err;
	t->cfg = *cfg;
	t->workers = calloc(nreactors, sizeof(*t->workers));
	if (!t->workers)
		goto err;
	t->nworkers = nreactors;
	pthread_rwlock_init(&t->targets_lock, NULL);
	pthread_mutex_init(&t->sess_lock, NULL);
	pthread_mutex_init(&t->stop_lock, NULL);
	pthread_cond_init(&t->stop_cond, NULL);
	TAILQ_INIT(&t->targets);
	TAILQ_INIT(&t->sessions);
	t->next_tsih = 1;
	for (unsigned i = 0; i < nreactors; i++) {
		struct tgt_worker *w = &t->workers[i];
		w->tgt = t;
		w->reactor = reactors[i];
		TAILQ_INIT(&w->conns);
		if (util_reactor_send(w->reactor, worker_init, w) < 0)
			goto err;
	}
	return t;
err:
	log_err("cannot create the target service: out of memory");
	if (t)
		free(t->workers);
	free(t);
	return NULL;
}

int tgt_target_add(struct tgt *t, struct vol *vol, const char *alias,
		   const struct iscsi_chap_cred *chap)
{
	struct tgt_target *tg = calloc(1, sizeof(*tg));
	const uint8_t *id = vol_id(vol);

	if (!tg)
		return -ENOMEM;
	if ((size_t)snprintf(tg->iqn, sizeof(tg->iqn), "%s:%s", t->cfg.node_prefix,
			     vol_name(vol)) >= sizeof(tg->iqn)) {
		free(tg);
		log_err("target name for volume %s is longer than %d bytes", vol_name(vol),
			ISCSI_NAME_MAX - 1);
		return -ENAMETOOLONG;
	}
	snprintf(tg->alias, sizeof(tg->alias), "%s", alias ? alias : vol_name(vol));
	if (chap)
		tg->chap = *chap;
	tg->lu.lun = 0;
	tg->lu.vol = vol;
	tg->lu.target = tg;
	tg->lu.scsi_ops = &engine_scsi_ops;
	atomic_init(&tg->refs, 1);
	atomic_init(&tg->lu.wce, true);
	atomic_init(&tg->lu.d_sense, false);
	pthread_mutex_init(&tg->lu.lock, NULL);
	LIST_INIT(&tg->lu.itls);
	/* Unit serial number: the low half of the device identifier, in hex. */
	for (int i = 0; i < 8; i++)
		snprintf(tg->lu.serial + 2 * i, 3, "%02x", id[8 + i]);

	/* Reservations made with APTPL survive restarts (SPC-4 5.12.4). */
	if (t->cfg.state_dir[0] && tgt_pr_lu_load(&tg->lu, t->cfg.state_dir) < 0)
		log_warn("target %s: saved reservations could not be loaded", tg->iqn);
	pthread_rwlock_wrlock(&t->targets_lock);
	if (tgt_target_find(t, tg->iqn)) {
		pthread_rwlock_unlock(&t->targets_lock);
		pthread_mutex_destroy(&tg->lu.lock);
		free(tg);
		return -EEXIST;
	}
	TAILQ_INSERT_TAIL(&t->targets, tg, link);
	pthread_rwlock_unlock(&t->targets_lock);
	log_info("target %s: volume %s, %llu bytes, %u-byte blocks%s", tg->iqn, vol_name(vol),
		 (unsigned long long)vol_size(vol), vol_block_size(vol),
		 tg->chap.user[0] ? (tg->chap.mutual_user[0] ? ", mutual CHAP" : ", CHAP") : "");
	return 0;
}

static void target_free_policy(struct tgt_target *tg)
{
	for (unsigned i = 0; i < tg->nallow; i++)
		free(tg->allow[i]);
	free(tg->allow);
	tg->allow = NULL;
	tg->nallow = 0;
}

void tgt_target_get(struct tgt_target *tg)
{
	atomic_fetch_add(&tg->refs, 1);
}

void tgt_target_put(struct tgt_target *tg)
{
	if (atomic_fetch_sub(&tg->refs, 1) != 1)
		return;
	if (tg->released)
		tg->released(tg->released_arg);
	target_free_policy(tg);
	tgt_pr_lu_free(&tg->lu);
	pthread_mutex_destroy(&tg->lu.lock);
	free(tg);
}

uint16_t tgt_target_admit(const struct tgt_target *tg, const char *initiator)
{
	if (tg->redirect[0])
		return ISCSI_LS_TARGET_MOVED_TEMP;
	if (!tg->allow)
		return 0;
	for (unsigned i = 0; i < tg->nallow; i++)
		if (strcasecmp(tg->allow[i], initiator) == 0)
			return 0;
	return ISCSI_LS_AUTHZ_FAILED;
}

static void close_target_sessions(struct tgt *t, struct tgt_target *tg);

static struct tgt_target *find_by_volume(struct tgt *t, const char *volume_name)
{
	char iqn[ISCSI_NAME_MAX];

	if ((size_t)snprintf(iqn, sizeof(iqn), "%s:%s", t->cfg.node_prefix, volume_name) >=
	    sizeof(iqn))
		return NULL;
	return tgt_target_find(t, iqn);
}

int tgt_target_update(struct tgt *t, const char *volume_name, const struct tgt_target_policy *p,
		      bool drop_sessions)
{
	char **allow = NULL;
	struct tgt_target *tg;

	if (p->nallow) {
		allow = calloc(p->nallow, sizeof(*allow));
		if (!allow)
			return -ENOMEM;
		for (unsigned i = 0; i < p->nallow; i++) {
			allow[i] = strdup(p->allow[i]);
			if (!allow[i]) {
				while (i-- > 0)
					free(allow[i]);
				free(allow);
				return -ENOMEM;
			}
		}
	}
	pthread_rwlock_wrlock(&t->targets_lock);
	tg = find_by_volume(t, volume_name);
	if (!tg) {
		pthread_rwlock_unlock(&t->targets_lock);
		for (unsigned i = 0; i < p->nallow; i++)
			free(allow[i]);
		free(allow);
		return -ENOENT;
	}
	target_free_policy(tg);
	tg->allow = allow;
	tg->nallow = p->nallow;
	tg->chap = p->chap;
	snprintf(tg->redirect, sizeof(tg->redirect), "%s", p->redirect);
	if (drop_sessions)
		close_target_sessions(t, tg);
	pthread_rwlock_unlock(&t->targets_lock);
	return 0;
}

int tgt_target_remove(struct tgt *t, const char *volume_name, void (*released)(void *arg),
		      void *arg)
{
	struct tgt_target *tg;

	pthread_rwlock_wrlock(&t->targets_lock);
	tg = find_by_volume(t, volume_name);
	if (!tg) {
		pthread_rwlock_unlock(&t->targets_lock);
		return -ENOENT;
	}
	TAILQ_REMOVE(&t->targets, tg, link);
	tg->released = released;
	tg->released_arg = arg;
	close_target_sessions(t, tg);
	pthread_rwlock_unlock(&t->targets_lock);
	log_info("target %s removed", tg->iqn);
	tgt_target_put(tg); /* the list's reference */
	return 0;
}

struct tgt_target *tgt_target_find(struct tgt *t, const char *iqn)
{
	struct tgt_target *tg;

	/* RFC 7143 4.2.7.1: iSCSI names compare case-insensitively as normalised. */
	TAILQ_FOREACH (tg, &t->targets, link)
		if (strcasecmp(tg->iqn, iqn) == 0)
			return tg;
	return NULL;
}

/* ---- portals ---- */

struct handoff {
	struct tgt_worker *w;
	int fd;
};

static void handoff_run(void *arg)
{
	struct handoff *h = arg;

	tgt_conn_start(h->w, h->fd);
	free(h);
}

static void accept_cb(void *arg, uint32_t events)
{
	struct tgt_portal *p = arg;
	struct tgt *t = p->tgt;

	(void)events;
	for (;;) {
		int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_ratelimited(LOG_WARNING, "accept on %s: %s", p->addr,
						strerror(errno));
			return;
		}
		if (atomic_load(&t->stopping)) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		unsigned i = atomic_fetch_add(&t->next_worker, 1) % t->nworkers;
		struct tgt_worker *w = &t->workers[i];
		atomic_fetch_add(&t->nconns, 1);
		if (w->reactor == util_reactor_self()) {
			tgt_conn_start(w, fd);
			continue;
		}
		/* Control-path allocation: one per connection, not per I/O. */
		struct handoff *h = malloc(sizeof(*h));
		if (h) {
			h->w = w;
			h->fd = fd;
		}
		if (!h || util_reactor_send(w->reactor, handoff_run, h) < 0) {
			free(h);
			close(fd);
			tgt_conn_gone(t);
		}
	}
}

static void portal_register(void *arg)
{
	struct tgt_portal *p = arg;

	if (util_reactor_add_fd(util_reactor_self(), p->fd, EPOLLIN, accept_cb, p) < 0)
		log_err("cannot watch portal %s", p->addr);
}

static void portal_unregister(void *arg)
{
	struct tgt_portal *p = arg;

	util_reactor_del_fd(util_reactor_self(), p->fd);
	close(p->fd);
	p->fd = -1;
}

int tgt_portal_add(struct tgt *t, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, rc;

	if (t->nportals >= UTIL_ARRAY_SIZE(t->portals))
		return -ENOSPC;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sl = sizeof(*sin6);
	} else {
		log_err("portal address '%s' is not an IPv4 or IPv6 literal", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		log_err("cannot listen on %s%s%s:%u: %s", ss.ss_family == AF_INET6 ? "[" : "", addr,
			ss.ss_family == AF_INET6 ? "]" : "", port, strerror(errno));
		close(fd);
		return rc;
	}
	struct tgt_portal *p = &t->portals[t->nportals];
	p->fd = fd;
	snprintf(p->addr, sizeof(p->addr), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr,
		 port);
	p->tgt = t;
	t->nportals++;
	/* Accepting runs on the first reactor; connections are spread from there. */
	rc = util_reactor_send(t->workers[0].reactor, portal_register, p);
	if (rc < 0)
		return rc;
	log_notice("listening on %s", p->addr);
	return 0;
}

/* ---- sessions ---- */

int tgt_session_register(struct tgt_session *s)
{
	struct tgt *t = s->tgt;

	pthread_mutex_lock(&t->sess_lock);
	/* TSIH 0 is reserved for "new session" (RFC 7143 11.12.7). */
	for (;;) {
		uint16_t tsih = t->next_tsih++;
		struct tgt_session *o;
		bool used = false;
		if (tsih == 0)
			continue;
		TAILQ_FOREACH (o, &t->sessions, link)
			if (o->tsih == tsih)
				used = true;
		if (!used) {
			s->tsih = tsih;
			break;
		}
	}
	TAILQ_INSERT_TAIL(&t->sessions, s, link);
	pthread_mutex_unlock(&t->sess_lock);
	return 0;
}

struct reinstated_msg {
	struct tgt_worker *w;
	uint64_t conn_id;
};

static void reinstated_run(void *arg)
{
	struct reinstated_msg *m = arg;
	struct tgt_conn *c;

	/* The waiting login may have ended meanwhile: look it up by id. */
	TAILQ_FOREACH (c, &m->w->conns, link)
		if (c->id == m->conn_id && c->state == CONN_LOGIN)
			tgt_login_reinstated(c);
	free(m);
}

void tgt_session_unregister(struct tgt_session *s)
{
	struct tgt *t = s->tgt;

	pthread_mutex_lock(&t->sess_lock);
	if (s->tsih)
		TAILQ_REMOVE(&t->sessions, s, link);
	s->tsih = 0;
	if (s->waiter_w) {
		struct reinstated_msg *m = malloc(sizeof(*m));
		if (m) {
			m->w = s->waiter_w;
			m->conn_id = s->waiter_conn;
			if (util_reactor_send(m->w->reactor, reinstated_run, m) < 0)
				free(m);
		}
		s->waiter_w = NULL;
	}
	pthread_mutex_unlock(&t->sess_lock);
}

/*
 * Closing a session that lives on another reactor: the message names it by
 * TSIH, not by pointer, because the connection may be freed before the
 * message runs; it is looked up again on its own thread.
 */
struct close_req {
	struct tgt_worker *w;
	uint16_t tsih;
	const char *why;
};

static void close_msg(void *arg)
{
	struct close_req *req = arg;
	struct tgt_conn *c;

	TAILQ_FOREACH (c, &req->w->conns, link)
		if (c->sess && c->sess->tsih == req->tsih)
			tgt_conn_close(c, req->why);
	free(req);
}

/* Under t->sess_lock. */
static void close_session_async(struct tgt_session *o, const char *why)
{
	struct close_req *req = malloc(sizeof(*req));

	if (!req)
		return;
	req->w = o->conn->w;
	req->tsih = o->tsih;
	req->why = why;
	if (util_reactor_send(req->w->reactor, close_msg, req) < 0)
		free(req);
}

/*
 * RFC 7143 11.9.1, AsyncEvent 1: "the target requests Logout"; the host
 * logs out (or, at ERL 0, reconnects) and its next login meets the
 * target's new policy (a redirect after a volume move). Parameter3 is the
 * time the host has to do it (seconds) before the target drops it.
 */
static void logout_msg(void *arg)
{
	struct close_req *req = arg;
	struct tgt_conn *c;

	TAILQ_FOREACH (c, &req->w->conns, link) {
		if (!c->sess || c->sess->tsih != req->tsih || c->state != CONN_FULL_FEATURE)
			continue;
		struct tgt_txbuf *tb = tgt_txbuf_get(c);
		if (!tb)
			continue;
		struct iscsi_bhs_async *a = (void *)tb->pdu.hdr.raw;
		a->opcode = ISCSI_OP_ASYNC_MSG;
		a->flags = ISCSI_FLAG_FINAL;
		put_be32(a->itt, ISCSI_RSVD_TAG);
		tgt_conn_fill_sn(c, a, true);
		a->async_event = ISCSI_ASYNC_LOGOUT_REQUEST;
		put_be16(a->param3, 2);
		tgt_conn_send(c, tb);
	}
	free(req);
}

int tgt_target_request_logout(struct tgt *t, const char *volume_name)
{
	struct tgt_session *o;
	struct tgt_target *tg;
	int n = 0;

	pthread_rwlock_rdlock(&t->targets_lock);
	tg = find_by_volume(t, volume_name);
	if (!tg) {
		pthread_rwlock_unlock(&t->targets_lock);
		return -ENOENT;
	}
	pthread_mutex_lock(&t->sess_lock);
	TAILQ_FOREACH (o, &t->sessions, link) {
		if (o->target != tg || !o->conn)
			continue;
		struct close_req *req = malloc(sizeof(*req));
		if (!req)
			continue;
		req->w = o->conn->w;
		req->tsih = o->tsih;
		req->why = NULL;
		if (util_reactor_send(req->w->reactor, logout_msg, req) < 0)
			free(req);
		else
			n++;
	}
	pthread_mutex_unlock(&t->sess_lock);
	pthread_rwlock_unlock(&t->targets_lock);
	return n;
}

void tgt_target_capacity_changed(struct tgt *t, const char *volume_name)
{
	struct tgt_target *tg;

	pthread_rwlock_rdlock(&t->targets_lock);
	tg = find_by_volume(t, volume_name);
	/*
	 * SBC-3 4.5 (logical blocks): when the number of logical blocks
	 * changes, the device server establishes a unit attention condition
	 * with the additional sense code CAPACITY DATA HAS CHANGED, for every
	 * I_T nexus, so that no host keeps a size it read earlier. No nexus is
	 * spared: the change came from the control plane, not from a command.
	 */
	if (tg) {
		tgt_lu_ua_raise(&tg->lu, TGT_UA_CAPACITY_CHANGED, NULL);
		log_info("target %s: capacity changed to %" PRIu64 " bytes, unit attention "
			 "raised",
			 tg->iqn, vol_size(tg->lu.vol));
	}
	pthread_rwlock_unlock(&t->targets_lock);
}

static void close_sessions_of(struct tgt *t, struct tgt_target *tg, const struct tgt_session *keep,
			      const char *why)
{
	struct tgt_session *o;

	pthread_mutex_lock(&t->sess_lock);
	TAILQ_FOREACH (o, &t->sessions, link)
		if (o->target == tg && o->conn && o != keep)
			close_session_async(o, why);
	pthread_mutex_unlock(&t->sess_lock);
}

static void close_target_sessions(struct tgt *t, struct tgt_target *tg)
{
	close_sessions_of(t, tg, NULL, "target policy changed or target removed");
}

void tgt_target_cold_reset(struct tgt *t, struct tgt_target *tg, const struct tgt_session *keep)
{
	/* "The target MUST then close all of its TCP connections to all
	 * initiators (terminates all sessions)." Their hosts log in again to
	 * a target that has been through a power-on-like reset. */
	close_sessions_of(t, tg, keep, "target cold reset");
}

unsigned tgt_session_reinstate(struct tgt *t, const struct tgt_session *news, struct tgt_conn *c)
{
	struct tgt_session *o;
	unsigned n = 0;

	pthread_mutex_lock(&t->sess_lock);
	TAILQ_FOREACH (o, &t->sessions, link) {
		if (o == news || o->target != news->target ||
		    memcmp(o->isid, news->isid, sizeof(o->isid)) != 0 ||
		    strcasecmp(o->params.initiator_name, news->params.initiator_name) != 0 ||
		    !o->conn || o->waiter_w)
			continue;
		/*
		 * The old session's connection lives on its own reactor: ask
		 * it to close there. At ERL 0 its tasks end with it; the new
		 * login completes once it is gone.
		 */
		o->waiter_w = c->w;
		o->waiter_conn = c->id;
		close_session_async(o, "session reinstated by a new login");
		n++;
	}
	pthread_mutex_unlock(&t->sess_lock);
	return n;
}

void tgt_conn_gone(struct tgt *t)
{
	pthread_mutex_lock(&t->stop_lock);
	if (atomic_fetch_sub(&t->nconns, 1) == 1)
		pthread_cond_broadcast(&t->stop_cond);
	pthread_mutex_unlock(&t->stop_lock);
}

int tgt_sendtargets(struct tgt *t, struct tgt_conn *c, const char *which, struct iscsi_text *out)
{
	struct tgt_target *tg;
	int rc = 0;

	pthread_rwlock_rdlock(&t->targets_lock);
	TAILQ_FOREACH (tg, &t->targets, link) {
		/*
		 * RFC 7143 11.10.2/Appendix C: "All" lists every target (in
		 * discovery sessions); a name lists that one; empty means the
		 * session's own target.
		 */
		if (strcmp(which, "All") == 0) {
			if (!c->sess->discovery)
				continue;
		} else if (which[0] == '\0') {
			if (c->sess->target != tg)
				continue;
		} else if (strcasecmp(which, tg->iqn) != 0) {
			continue;
		}
		if (tg->allow && tgt_target_admit(tg, c->sess->params.initiator_name) != 0 &&
		    !tg->redirect[0])
			continue; /* hosts see only the volumes they may use */
		rc = iscsi_text_add(out, "TargetName", "%s", tg->iqn);
		/* A volume owned elsewhere is listed with its owner's portal (DESIGN.md). */
		if (!rc)
			rc = iscsi_text_add(out, "TargetAddress", "%s,1",
					    tg->redirect[0] ? tg->redirect : c->local);
		if (rc)
			break;
	}
	pthread_rwlock_unlock(&t->targets_lock);
	return rc;
}

/* ---- shutdown ---- */

static void worker_close_all(void *arg)
{
	struct tgt_worker *w = arg;
	struct tgt_conn *c, *tmp;

	TAILQ_FOREACH_SAFE (c, &w->conns, link, tmp)
		tgt_conn_close(c, "engine shutting down");
}

static void worker_fini(void *arg)
{
	struct tgt_worker *w = arg;

	if (w->tick)
		util_reactor_tick_del(w->reactor, w->tick);
	w->tick = NULL;
	if (w->chan)
		vol_chan_destroy(w->chan);
	w->chan = NULL;
}

void tgt_shutdown(struct tgt *t)
{
	atomic_store(&t->stopping, true);
	for (unsigned i = 0; i < t->nportals; i++)
		util_reactor_send(t->workers[0].reactor, portal_unregister, &t->portals[i]);
	for (unsigned i = 0; i < t->nworkers; i++)
		util_reactor_send(t->workers[i].reactor, worker_close_all, &t->workers[i]);

	/* Connections finish their I/O in flight, then go (bounded by the I/O itself). */
	pthread_mutex_lock(&t->stop_lock);
	while (atomic_load(&t->nconns) > 0)
		pthread_cond_wait(&t->stop_cond, &t->stop_lock);
	pthread_mutex_unlock(&t->stop_lock);

	for (unsigned i = 0; i < t->nworkers; i++)
		util_reactor_send(t->workers[i].reactor, worker_fini, &t->workers[i]);
	log_info("target service stopped");
}

void tgt_destroy(struct tgt *t)
{
	struct tgt_target *tg;

	if (!t)
		return;
	while ((tg = TAILQ_FIRST(&t->targets)) != NULL) {
		TAILQ_REMOVE(&t->targets, tg, link);
		tgt_target_put(tg);
	}
	pthread_rwlock_destroy(&t->targets_lock);
	pthread_mutex_destroy(&t->sess_lock);
	pthread_mutex_destroy(&t->stop_lock);
	pthread_cond_destroy(&t->stop_cond);
	free(t->workers);
	free(t);
}
