/*
 * ctl_backends.c: the map's back ends, logged in to by this engine (issue 6);
 * the virtualized volumes it owns built on them are in ctl_vvols.c, which
 * gets its share of the events and ticks here (ctl_backends_internal.h).
 *
 * Every engine logs in to every back end of the map (vol_backend_open_iscsi)
 * so that whichever engine owns a volume can serve it at once. The back ends
 * live on one reactor thread (the first): logins, reopens, closes and the
 * resync copy run there; what they report comes back to the control thread
 * through a mailbox (util.h), like released targets in ctl_targets.c. A
 * failed back end is logged in again every second.
 */
#define UTIL_LOG_TAG "backends"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <qb/qbloop.h>

#include "engine/ctl_backends_internal.h"
#include "engine/ctl_fence.h"
#include "engine/ctl_intent.h"

#define RETRY_MS	    1000
#define RECOVERY_TIMEOUT_MS 2000 /* a dead back end fails its legs after this */

struct probe {
	struct eng_backends *eb;
	struct vol_backend *be;
	char url[1024];
	Vm__MapChange chg;
	char portal[CLU_PORTAL_MAX], target[CLU_IQN_MAX], user[CLU_IQN_MAX], secret[CLU_SECRET_MAX];
	clu_done_fn done;
	void *arg;
};

/* One per process: ctl_targets.c opens volumes through eng_vol_open(). */
static struct eng_backends *the_eb;

void eng_be_post(struct eng_backends *eb, enum ev_kind kind, void *obj, int rc, unsigned leg,
		 enum vol_leg_state st)
{
	struct ev e = {.kind = kind, .obj = obj, .rc = rc, .leg = leg, .st = st};
	int err = util_mailbox_post(eb->mb, &e);

	/*
	 * Full: 32768 events behind a control thread that no longer runs. Never
	 * silent: a lost leg change leaves the map's view of a leg stale.
	 */
	if (err < 0)
		log_err("back-end event %d lost (control thread %s): leg states in the map may be "
			"stale until the next change",
			(int)kind, err == -EAGAIN ? "not keeping up" : "gone");
}

static void be_url(const struct clu_backend *c, char *buf, size_t len)
{
	if (c->chap_user[0])
		snprintf(buf, len, "iscsi://%s%%%s@%s/%s/%" PRIu32, c->chap_user, c->chap_secret,
			 c->portal, c->target, c->lun);
	else
		snprintf(buf, len, "iscsi://%s/%s/%" PRIu32, c->portal, c->target, c->lun);
}

/* ---- on the reactor ---- */

static void r_chan(void *arg)
{
	struct eng_backends *eb = arg;
	eb->ch = vol_chan_create(eb->r);
}

static void r_opened(void *arg, int rc)
{
	struct be *b = arg;
	eng_be_post(b->eb, EV_OPENED, b, rc, 0, 0);
}

static void r_open(void *arg)
{
	struct be *b = arg;
	/* Registered with this engine's key at login, so that another
	 * engine can fence this one off the back end (ctl_fence.c). */
	struct vol_backend_iscsi_opts o = {.recovery_timeout_ms = RECOVERY_TIMEOUT_MS,
					   .cmd_timeout_ms = 5000,
					   .pr_key = eng_pr_key(b->eb->nodeid)};
	char url[1024], name[32];

	be_url(&b->cfg, url, sizeof(url));
	snprintf(name, sizeof(name), "be%" PRIu32, b->cfg.id);
	int rc = vol_backend_open_iscsi(b->eb->r, name, url, &o, r_opened, b, &b->be);
	if (rc < 0)
		eng_be_post(b->eb, EV_OPENED, b, rc, 0, 0);
}

static void r_reopen(void *arg)
{
	struct be *b = arg;
	int rc = vol_backend_reopen(b->be, r_opened, b);
	if (rc < 0)
		eng_be_post(b->eb, EV_OPENED, b, rc, 0, 0);
}

static void r_close(void *arg)
{
	struct be *b = arg;
	if (b->be)
		vol_backend_close(b->be);
	free(b);
}

static void r_probed(void *arg, int rc)
{
	struct probe *p = arg;
	eng_be_post(p->eb, EV_PROBED, p, rc, 0, 0);
}

static void r_probe(void *arg)
{
	struct probe *p = arg;
	struct vol_backend_iscsi_opts o = {.recovery_timeout_ms = RECOVERY_TIMEOUT_MS};
	int rc = vol_backend_open_iscsi(p->eb->r, "probe", p->url, &o, r_probed, p, &p->be);
	if (rc < 0)
		eng_be_post(p->eb, EV_PROBED, p, rc, 0, 0);
}

static void r_probe_close(void *arg)
{
	struct probe *p = arg;
	if (p->be)
		vol_backend_close(p->be);
	free(p);
}

/* ---- on the control thread ---- */

struct be *eng_be_find(struct eng_backends *eb, uint32_t id)
{
	struct be *b;
	LIST_FOREACH (b, &eb->bes, link)
		if (b->cfg.id == id && !b->gone)
			return b;
	return NULL;
}

/*
 * This engine's view of \p b now. A back end's I/O failure is noticed by
 * its reactor before on_timer() picks it up: ask it, so that `backend list`
 * and the load reports are current.
 */
static enum be_state be_state_now(const struct be *b)
{
	if (b->state == BE_UP && b->be && vol_backend_state(b->be) == VOL_BACKEND_FAILED)
		return BE_FAILED;
	return b->state;
}

/* Hand this engine's view to the cluster: its next load report carries it. */
static void push_seen(struct eng_backends *eb)
{
	struct clu_backend_seen seen[CLU_MAX_BACKENDS];
	unsigned n = 0;
	struct be *b;

	LIST_FOREACH (b, &eb->bes, link) {
		if (b->gone || n >= CLU_MAX_BACKENDS)
			continue;
		enum be_state st = be_state_now(b);
		seen[n].id = b->cfg.id;
		seen[n].state = st == BE_UP	  ? CLU_BE_UP
				: st == BE_FAILED ? CLU_BE_FAILED
						  : CLU_BE_OPENING;
		seen[n].size = b->size;
		n++;
	}
	clu_set_backends_seen(eb->clu, seen, n);
}

/* One event from the reactor (a util_mailbox_fn). */
static void on_ev(void *arg, const void *rec)
{
	struct eng_backends *eb = arg;
	const struct ev *e = rec;

	switch (e->kind) {
	case EV_OPENED: {
		struct be *b = e->obj;
		b->busy = false;
		if (b->gone) {
			util_reactor_send(eb->r, r_close, b);
			return;
		}
		b->state = e->rc == 0 ? BE_UP : BE_FAILED;
		if (e->rc == 0) {
			b->logged_in_once = true;
			b->size = vol_backend_info(b->be)->size;
			log_notice("back end %" PRIu32 " (%s %s) up", b->cfg.id, b->cfg.portal,
				   b->cfg.target);
			if (eb->changed)
				eb->changed(eb->changed_arg); /* volumes waiting for it open */
		} else {
			log_debug("back end %" PRIu32 " login: %s", b->cfg.id, strerror(-e->rc));
		}
		push_seen(eb);
		break;
	}
	case EV_LEG:
		eng_vv_leg_event(eb, e->obj, e->leg, e->st);
		break;
	case EV_RESYNC_DONE:
		eng_vv_resync_done(e->obj, e->rc);
		break;
	case EV_PROBED: {
		struct probe *p = e->obj;
		int rc = e->rc;
		if (rc == 0) {
			const struct vol_backend_info *bi = vol_backend_info(p->be);
			p->chg.be_size = bi->size;
			p->chg.be_block_size = bi->block_size;
			rc = clu_submit(eb->clu, &p->chg, p->done, p->arg);
		}
		if (rc < 0)
			p->done(p->arg, rc);
		util_reactor_send(eb->r, r_probe_close, p);
		break;
	}
	}
}

/* Every second: log failed back ends in again; resync legs whose back end is back. */
static void on_timer(void *arg)
{
	struct eng_backends *eb = arg;
	struct be *b;
	bool fenced = eb->clu && clu_fenced(eb->clu);

	/* Back from a fence (quorum again): be registered again on the back
	 * ends before any volume is given back to this engine. */
	if (fenced)
		eb->was_fenced = true;
	else if (eb->was_fenced) {
		eb->was_fenced = false;
		eng_fence_register_self(eb);
	}

	eng_vv_tick_intent(eb);

	LIST_FOREACH (b, &eb->bes, link) {
		if (b->busy || b->gone || !b->be)
			continue;
		if (b->state == BE_UP && vol_backend_state(b->be) == VOL_BACKEND_FAILED)
			b->state = BE_FAILED;
		/* A fenced engine does not log in again: a login registers its
		 * key, which would undo a fence by the quorate side. */
		if (b->state == BE_FAILED && !fenced) {
			b->busy = true;
			util_reactor_send(eb->r, r_reopen, b);
		}
	}
	eng_vv_tick_resync(eb);
	push_seen(eb);
	qb_loop_timer_add(eb->loop, QB_LOOP_LOW, RETRY_MS * QB_TIME_NS_IN_MSEC, eb, on_timer,
			  &eb->timer);
}

void eng_backends_changed(struct eng_backends *eb)
{
	const struct clu_map *m;
	struct be *b, *tmp;

	if (!eb || !eb->clu)
		return;
	m = clu_map(eb->clu);
	LIST_FOREACH_SAFE (b, &eb->bes, link, tmp) {
		if (b->gone || clu_map_backend(m, b->cfg.id))
			continue;
		log_info("back end %" PRIu32 " removed", b->cfg.id);
		b->gone = true;
		LIST_REMOVE(b, link);
		if (!b->busy)
			util_reactor_send(eb->r, r_close, b);
	}
	for (unsigned i = 0; i < m->nbackends; i++) {
		if (eng_be_find(eb, m->backends[i].id))
			continue;
		b = calloc(1, sizeof(*b));
		if (!b)
			return;
		b->cfg = m->backends[i];
		b->eb = eb;
		b->busy = true;
		eb->nodeid = clu_nodeid(eb->clu); /* known once the map has back ends */
		LIST_INSERT_HEAD(&eb->bes, b, link);
		log_info("back end %" PRIu32 ": logging in to %s %s lun %" PRIu32, b->cfg.id,
			 b->cfg.portal, b->cfg.target, b->cfg.lun);
		util_reactor_send(eb->r, r_open, b);
	}
	/* Then the volumes built on them follow the map (ctl_vvols.c). */
	eng_vv_map_changed(eb, m);
}

struct eng_backends *eng_backends_get(void)
{
	return the_eb;
}

int eng_backends_add(struct eng_backends *eb, const Vm__CtlRequest *rq, clu_done_fn done, void *arg)
{
	if (!eb)
		return -ENODEV;
	if (!rq->portal[0] || !rq->target[0] || strlen(rq->portal) >= CLU_PORTAL_MAX ||
	    strlen(rq->target) >= CLU_IQN_MAX || strlen(rq->chap_user) >= CLU_IQN_MAX ||
	    strlen(rq->chap_secret) >= CLU_SECRET_MAX)
		return -EINVAL;
	struct probe *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->eb = eb;
	p->done = done;
	p->arg = arg;
	snprintf(p->portal, sizeof(p->portal), "%s", rq->portal);
	snprintf(p->target, sizeof(p->target), "%s", rq->target);
	snprintf(p->user, sizeof(p->user), "%s", rq->chap_user);
	snprintf(p->secret, sizeof(p->secret), "%s", rq->chap_secret);
	struct clu_backend c = {.lun = rq->lun};
	snprintf(c.portal, sizeof(c.portal), "%s", p->portal);
	snprintf(c.target, sizeof(c.target), "%s", p->target);
	snprintf(c.chap_user, sizeof(c.chap_user), "%s", p->user);
	snprintf(c.chap_secret, sizeof(c.chap_secret), "%s", p->secret);
	be_url(&c, p->url, sizeof(p->url));
	vm__map_change__init(&p->chg);
	p->chg.op = VM__CHANGE_OP__BACKEND_ADD;
	p->chg.name = (char *)"";
	p->chg.portal = p->portal;
	p->chg.target = p->target;
	p->chg.lun = rq->lun;
	p->chg.chap_user = p->user;
	p->chg.chap_secret = p->secret;
	/* The size goes in the map as this engine sees it: log in first. */
	if (util_reactor_send(eb->r, r_probe, p) < 0) {
		free(p);
		return -ENOMEM;
	}
	return 0;
}

static const char *state_str(const struct be *b)
{
	if (!b)
		return "unknown";
	enum be_state st = be_state_now(b);
	return st == BE_UP ? "up" : st == BE_FAILED ? "failed" : "opening";
}

static const char *seen_str(uint32_t st)
{
	return st == CLU_BE_UP	      ? "up"
	       : st == CLU_BE_FAILED  ? "failed"
	       : st == CLU_BE_OPENING ? "opening"
				      : "unknown";
}

/*
 * Member \p node's view of back end \p c into \p s: this engine's is live,
 * a peer's as of its latest load report (with its age).
 */
static void fill_seen(struct eng_backends *eb, const struct clu_backend *c, uint32_t node,
		      Vm__CtlBackendSeen *s)
{
	struct clu_backend_seen bs;
	uint32_t age;

	vm__ctl_backend_seen__init(s);
	s->node = node;
	s->name = (char *)clu_peer_name(eb->clu, node);
	s->local = node == clu_nodeid(eb->clu);
	if (s->local) {
		const struct be *b = eng_be_find(eb, c->id);
		s->state = (char *)state_str(b);
		s->size = b ? b->size : 0;
		return;
	}
	if (clu_backend_seen(eb->clu, node, c->id, &bs, &age) < 0) {
		s->state = (char *)"unknown"; /* no report since it joined, or too new for it */
		return;
	}
	s->state = (char *)seen_str(bs.state);
	s->size = bs.size;
	s->age_s = age;
}

/*
 * One allocation each for the views, the per-engine views and their pointer
 * arrays: eng_backends_list_free() frees them from the first back end.
 */
int eng_backends_list(struct eng_backends *eb, Vm__CtlReply *rep)
{
	const struct clu_map *m = clu_map(eb->clu);
	uint32_t nodes[CLU_MAX_NODES];
	unsigned nn = clu_members(eb->clu, nodes, CLU_MAX_NODES);
	uint32_t self = clu_nodeid(eb->clu);
	bool in = false;

	rep->n_backends = 0;
	rep->backends = NULL;
	if (!m->nbackends)
		return 0;
	/* Not a member (joining, or Corosync gone): this engine's own view still counts. */
	for (unsigned k = 0; k < nn; k++)
		in |= nodes[k] == self;
	if (!in && nn < CLU_MAX_NODES)
		nodes[nn++] = self;
	size_t ns = (size_t)m->nbackends * nn;
	Vm__CtlBackendView *v = calloc(m->nbackends, sizeof(*v));
	Vm__CtlBackendView **pv = calloc(m->nbackends, sizeof(*pv));
	Vm__CtlBackendSeen *s = calloc(ns, sizeof(*s));
	Vm__CtlBackendSeen **ps = calloc(ns, sizeof(*ps));
	if (!v || !pv || !s || !ps) {
		free(v);
		free(pv);
		free(s);
		free(ps);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < m->nbackends; i++) {
		const struct clu_backend *c = &m->backends[i];
		vm__ctl_backend_view__init(&v[i]);
		v[i].id = c->id;
		v[i].portal = (char *)c->portal;
		v[i].target = (char *)c->target;
		v[i].lun = c->lun;
		v[i].size = c->size;
		v[i].free_bytes = clu_virt_free_bytes(m, c->id);
		v[i].state = (char *)state_str(eng_be_find(eb, c->id));
		v[i].node = self;
		v[i].engines = &ps[(size_t)i * nn];
		v[i].n_engines = nn;
		for (unsigned k = 0; k < nn; k++) {
			Vm__CtlBackendSeen *e = &s[(size_t)i * nn + k];
			fill_seen(eb, c, nodes[k], e);
			v[i].engines[k] = e;
		}
		pv[i] = &v[i];
	}
	rep->backends = pv;
	rep->n_backends = m->nbackends;
	return 0;
}

void eng_backends_list_free(Vm__CtlReply *rep)
{
	if (rep->n_backends) {
		free(rep->backends[0]->engines[0]);
		free(rep->backends[0]->engines);
		free(rep->backends[0]);
	}
	free(rep->backends);
	rep->backends = NULL;
	rep->n_backends = 0;
}

bool eng_backends_leg_up(struct eng_backends *eb, const struct clu_volume *v, unsigned leg)
{
	if (!eb || leg >= v->nlegs)
		return false;
	for (uint32_t e = 0; e < v->legs[leg].nextents; e++) {
		const struct be *b = eng_be_find(eb, v->legs[leg].extents[e].backend);
		if (!b || b->state != BE_UP)
			return false;
	}
	return true;
}

struct eng_backends *eng_backends_create(struct qb_loop *loop, struct util_reactor *r,
					 struct clu *c, void (*changed)(void *), void *arg)
{
	struct eng_backends *eb = calloc(1, sizeof(*eb));

	if (!eb)
		return NULL;
	eb->loop = loop;
	eb->r = r;
	eb->clu = c;
	eb->changed = changed;
	eb->changed_arg = arg;
	LIST_INIT(&eb->bes);
	LIST_INIT(&eb->vvols);
	/* 1 MiB: room for 32768 events, far more than a running control thread lets pile up. */
	if (util_mailbox_open(loop, sizeof(struct ev), 1 << 20, on_ev, NULL, eb, &eb->mb) < 0) {
		free(eb);
		return NULL;
	}
	/* Without it, mirrors open as before: a takeover copies a whole leg. */
	eb->intent = eng_intent_create(loop, r, c);
	util_reactor_send(r, r_chan, eb);
	qb_loop_timer_add(loop, QB_LOOP_LOW, RETRY_MS * QB_TIME_NS_IN_MSEC, eb, on_timer,
			  &eb->timer);
	the_eb = eb;
	eng_backends_changed(eb);
	return eb;
}

/*
 * After tgt_shutdown() and eng_targets_destroy(), reactors stopped. The
 * iSCSI back ends are not closed: their reactor no longer runs, and the
 * process exits, which closes their connections.
 */
void eng_backends_destroy(struct eng_backends *eb)
{
	struct be *b;

	if (!eb)
		return;
	qb_loop_timer_del(eb->loop, eb->timer);
	util_mailbox_close(eb->mb);
	eng_vv_destroy_all(eb);
	while ((b = LIST_FIRST(&eb->bes)) != NULL) {
		LIST_REMOVE(b, link);
		free(b);
	}
	eng_intent_destroy(eb->intent);
	the_eb = NULL;
	free(eb);
}

/* ---- for ctl_fence.c ---- */

struct util_reactor *eng_backends_reactor(struct eng_backends *eb)
{
	return eb->r;
}

qb_loop_t *eng_backends_loop(struct eng_backends *eb)
{
	return eb->loop;
}

unsigned eng_backends_up(struct eng_backends *eb, struct vol_backend **out, unsigned max)
{
	struct be *b;
	unsigned n = 0;

	LIST_FOREACH (b, &eb->bes, link)
		if (n < max && !b->gone && !b->busy && b->be && b->state == BE_UP)
			out[n++] = b->be;
	return n;
}
