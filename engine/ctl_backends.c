/*
 * ctl_backends.c: the map's back ends, logged in to by this engine, and the
 * virtualized volumes it owns built on them (issue 6).
 *
 * Every engine logs in to every back end of the map (vol_backend_open_iscsi)
 * so that whichever engine owns a volume can serve it at once. The back ends
 * live on one reactor thread (the first): logins, reopens, closes and the
 * resync copy run there; what they report comes back to the control thread
 * through a pipe, like released targets in ctl_targets.c.
 *
 * The owner of a virtualized volume forwards its leg events to the map (a
 * replicated LEG_STATE change, so every engine agrees which leg holds the
 * data); a failed back end is logged in again every second, and once it is
 * back the owner resyncs the leg from the good one (paced) and the leg
 * event of the end of the resync records it OK in the map.
 *
 * In a cluster, a mirror's owner replicates its write intent (the regions
 * whose legs may differ) through ctl_intent.c, so that a new owner after a
 * crash marks only those regions dirty when it opens the volume, instead of
 * a whole leg.
 */
#define UTIL_LOG_TAG "backends"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <qb/qbloop.h>

#include "cluster/cluster.h"
#include "engine/ctl_fence.h"
#include "engine/ctl_intent.h"
#include "engine/engine.h"

#define RETRY_MS	    1000
#define RESYNC_RATE_BPS	    (32ull << 20) /* leave the back ends room for host I/O */
#define RECOVERY_TIMEOUT_MS 2000	  /* a dead back end fails its legs after this */

enum be_state { BE_OPENING, BE_UP, BE_FAILED };

struct be {
	LIST_ENTRY(be) link;
	struct clu_backend cfg;
	struct vol_backend *be; /* set on the reactor */
	enum be_state state;	/* the control thread's view */
	bool logged_in_once;	/* size and block size known: volumes can use it */
	uint64_t size;		/* bytes, as the last login found it (control thread) */
	bool busy;		/* a login or reopen runs */
	bool gone;		/* removed from the map: closes once idle */
	struct eng_backends *eb;
};

struct vvol {
	LIST_ENTRY(vvol) link;
	char name[VOL_NAME_MAX];
	struct vol *vol;
	struct be *bes[CLU_MAX_BACKENDS];
	uint32_t nbes;
	bool resyncing;
	bool closing; /* closed once the resync ends and no write intent is in flight */
	struct eng_intent_vol *intent; /* its write intent hook's handle; NULL: none */
	struct eng_backends *eb;
};

/* What the reactor reports; written whole to the pipe (below PIPE_BUF: atomic). */
enum ev_kind { EV_OPENED, EV_LEG, EV_RESYNC_DONE, EV_PROBED };
struct ev {
	enum ev_kind kind;
	void *obj;
	int rc;
	unsigned leg;
	enum vol_leg_state st;
};

struct probe {
	struct eng_backends *eb;
	struct vol_backend *be;
	char url[1024];
	Vm__MapChange chg;
	char portal[CLU_PORTAL_MAX], target[CLU_IQN_MAX], user[CLU_IQN_MAX], secret[CLU_SECRET_MAX];
	clu_done_fn done;
	void *arg;
};

struct eng_backends {
	qb_loop_t *loop;
	struct util_reactor *r;
	struct clu *clu;
	void (*changed)(void *arg);
	void *changed_arg;
	struct vol_chan *ch; /* the reactor's, for the resync */
	LIST_HEAD(, be) bes;
	LIST_HEAD(, vvol) vvols;
	qb_loop_timer_handle timer;
	int pipe[2];
	struct eng_intent *intent; /* write intent messages to the cluster */
	uint64_t joins_seen;	   /* clu_regions_joins() when FULLs were last sent */
	uint32_t nodeid;	   /* for this engine's reservation key */
	bool was_fenced;	   /* fenced at the last tick: register again when not */
};

/* One per process: ctl_targets.c opens volumes through eng_vol_open(). */
static struct eng_backends *the_eb;

static void post(struct eng_backends *eb, enum ev_kind kind, void *obj, int rc, unsigned leg,
		 enum vol_leg_state st)
{
	struct ev e = {.kind = kind, .obj = obj, .rc = rc, .leg = leg, .st = st};
	ssize_t n;

	do
		n = write(eb->pipe[1], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
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
	post(b->eb, EV_OPENED, b, rc, 0, 0);
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
		post(b->eb, EV_OPENED, b, rc, 0, 0);
}

static void r_reopen(void *arg)
{
	struct be *b = arg;
	int rc = vol_backend_reopen(b->be, r_opened, b);
	if (rc < 0)
		post(b->eb, EV_OPENED, b, rc, 0, 0);
}

static void r_close(void *arg)
{
	struct be *b = arg;
	if (b->be)
		vol_backend_close(b->be);
	free(b);
}

static void r_leg(void *arg, struct vol *v, unsigned leg, enum vol_leg_state st)
{
	struct vvol *vv = arg;
	post(vv->eb, EV_LEG, vv, 0, leg, st);
}

static void r_resynced(void *arg, int rc)
{
	struct vvol *vv = arg;
	post(vv->eb, EV_RESYNC_DONE, vv, rc, 0, 0);
}

/* The leg to resync travels in the low bits: vvols are at least 8-byte aligned. */
static void r_resync(void *arg)
{
	struct vvol *vv = (struct vvol *)((uintptr_t)arg & ~(uintptr_t)7);
	unsigned leg = (unsigned)((uintptr_t)arg & 7);
	int rc = vv->eb->ch ? vol_virt_resync_start(vv->eb->ch, vv->vol, leg, RESYNC_RATE_BPS,
						    r_resynced, vv)
			    : -ENODEV;
	if (rc < 0)
		post(vv->eb, EV_RESYNC_DONE, vv, rc, 0, 0);
}

static void r_probed(void *arg, int rc)
{
	struct probe *p = arg;
	post(p->eb, EV_PROBED, p, rc, 0, 0);
}

static void r_probe(void *arg)
{
	struct probe *p = arg;
	struct vol_backend_iscsi_opts o = {.recovery_timeout_ms = RECOVERY_TIMEOUT_MS};
	int rc = vol_backend_open_iscsi(p->eb->r, "probe", p->url, &o, r_probed, p, &p->be);
	if (rc < 0)
		post(p->eb, EV_PROBED, p, rc, 0, 0);
}

static void r_probe_close(void *arg)
{
	struct probe *p = arg;
	if (p->be)
		vol_backend_close(p->be);
	free(p);
}

/* ---- on the control thread ---- */

static struct be *be_find(struct eng_backends *eb, uint32_t id)
{
	struct be *b;
	LIST_FOREACH (b, &eb->bes, link)
		if (b->cfg.id == id && !b->gone)
			return b;
	return NULL;
}

static struct vvol *vvol_find(struct eng_backends *eb, const char *name)
{
	struct vvol *vv;
	LIST_FOREACH (vv, &eb->vvols, link)
		if (strcmp(vv->name, name) == 0 && !vv->closing)
			return vv;
	return NULL;
}

static void leg_done(void *arg, int rc)
{
	if (rc < 0 && rc != -EALREADY)
		log_warn("leg state not recorded in the map: %s", strerror(-rc));
}

/* The owner tells the cluster what its volume's leg became. */
static void record_leg(struct eng_backends *eb, const char *name, unsigned leg,
		       enum vol_leg_state st)
{
	const struct clu_volume *v = clu_map_find(clu_map(eb->clu), name);
	if (!v || leg >= v->nlegs || v->legs[leg].state == st)
		return;
	Vm__MapChange chg = VM__MAP_CHANGE__INIT;
	chg.op = VM__CHANGE_OP__LEG_STATE;
	chg.name = (char *)name;
	chg.leg = leg;
	chg.leg_state = st;
	if (clu_submit(eb->clu, &chg, leg_done, NULL) < 0)
		log_warn("%s: leg %u state not sent to the cluster", name, leg);
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

/*
 * Close a volume whose target went (closing) once nothing runs on it: its
 * resync copy, and its write intent messages (a SET's completion calls
 * into the volume).
 */
static void vvol_try_free(struct vvol *vv)
{
	if (!vv->closing || vv->resyncing || eng_intent_vol_busy(vv->intent))
		return;
	vol_close(vv->vol);
	eng_intent_vol_free(vv->intent);
	LIST_REMOVE(vv, link);
	free(vv);
}

static void on_ev(struct eng_backends *eb, const struct ev *e)
{
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
	case EV_LEG: {
		struct vvol *vv = e->obj;
		log_notice("%s: leg %u %s", vv->name, e->leg,
			   e->st == VOL_LEG_OK	     ? "ok"
			   : e->st == VOL_LEG_FAILED ? "failed"
						     : "resync");
		if (!vv->closing)
			record_leg(eb, vv->name, e->leg, e->st);
		break;
	}
	case EV_RESYNC_DONE: {
		struct vvol *vv = e->obj;
		vv->resyncing = false;
		if (e->rc < 0)
			log_warn("%s: resync stopped: %s", vv->name, strerror(-e->rc));
		else
			log_notice("%s: resync done", vv->name);
		vvol_try_free(vv);
		break;
	}
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

static int32_t on_pipe(int32_t fd, int32_t revents, void *data)
{
	struct eng_backends *eb = data;
	struct ev e;

	while (read(fd, &e, sizeof(e)) == (ssize_t)sizeof(e))
		on_ev(eb, &e);
	return 0;
}

/* Every second: log failed back ends in again; resync legs whose back end is back. */
static void on_timer(void *arg)
{
	struct eng_backends *eb = arg;
	struct be *b;
	struct vvol *vv, *vtmp;
	bool fenced = eb->clu && clu_fenced(eb->clu);

	/* Back from a fence (quorum again): be registered again on the back
	 * ends before any volume is given back to this engine. */
	if (fenced)
		eb->was_fenced = true;
	else if (eb->was_fenced) {
		eb->was_fenced = false;
		eng_fence_register_self(eb);
	}

	/* Write intent: idle regions cleared; closings that waited for it end. */
	LIST_FOREACH_SAFE (vv, &eb->vvols, link, vtmp) {
		if (vv->closing)
			vvol_try_free(vv);
		else if (vv->intent)
			vol_virt_intent_tick(vv->vol, util_now_ms());
	}

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
	LIST_FOREACH (vv, &eb->vvols, link) {
		struct vol_virt_status st;
		if (vv->resyncing || vv->closing)
			continue;
		vol_virt_status(vv->vol, &st);
		for (unsigned l = 0; l < st.nlegs; l++) {
			if (st.leg[l] != VOL_LEG_FAILED)
				continue;
			/* Resync only once every back end of the leg answers again. */
			const struct clu_volume *v = clu_map_find(clu_map(eb->clu), vv->name);
			bool up = v && l < v->nlegs;
			for (uint32_t e = 0; up && e < v->legs[l].nextents; e++) {
				struct be *lb = be_find(eb, v->legs[l].extents[e].backend);
				up = lb && lb->state == BE_UP;
			}
			if (!up)
				continue;
			log_notice("%s: leg %u back end is back: resync", vv->name, l);
			vv->resyncing = true;
			util_reactor_send(eb->r, r_resync, (void *)((uintptr_t)vv | l));
			break;
		}
	}
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
		if (be_find(eb, m->backends[i].id))
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
	/* The map says a leg failed (recorded by an earlier owner): never read it here. */
	struct vvol *vv;
	LIST_FOREACH (vv, &eb->vvols, link) {
		const struct clu_volume *v = clu_map_find(m, vv->name);
		struct vol_virt_status st;
		if (!v || vv->closing)
			continue;
		vol_virt_status(vv->vol, &st);
		for (unsigned l = 0; l < v->nlegs && l < st.nlegs; l++)
			if (v->legs[l].state == VOL_LEG_FAILED && st.leg[l] == VOL_LEG_OK &&
			    !vv->resyncing)
				vol_virt_fail_leg(vv->vol, l);
	}
	/*
	 * A member joined: it has no record of our volumes, and one that was
	 * apart from us marked ours incomplete. Once the state transfer is done
	 * (so that every member's map names us as the owner), send them whole.
	 */
	uint64_t joins = clu_regions_joins(eb->clu);
	if (joins != eb->joins_seen && clu_state(eb->clu) == CLU_STATE_SYNCED &&
	    !clu_fenced(eb->clu)) {
		eb->joins_seen = joins;
		LIST_FOREACH (vv, &eb->vvols, link)
			if (vv->intent && !vv->closing)
				vol_virt_intent_full(vv->vol);
	}
}

/*
 * A leg the map says is not in sync: mark the regions that may differ
 * dirty, for the resync. The replicated write intent record says which,
 * when this engine has it complete and it is the last owner's (this
 * engine's own, or that of the owner it took the volume from); else all of
 * them may (a whole leg is copied). 0 or -ENOMEM.
 */
static int open_dirty(struct eng_backends *eb, struct vvol *vv, const struct clu_volume *v)
{
	size_t nw = vol_virt_dirty_get(vv->vol, NULL, 0);
	uint64_t *w = calloc(nw ? nw : 1, sizeof(*w));
	uint32_t self = clu_nodeid(eb->clu);
	struct clu_region_view rv;
	struct vol_virt_status st;
	bool rec;

	if (!w)
		return -ENOMEM;
	rec = clu_regions_get(eb->clu, v->name, &rv, w, nw) == 0 && rv.complete &&
	      (rv.owner == self || rv.successor == self);
	if (!rec)
		memset(w, 0xff, nw * sizeof(*w));
	vol_virt_dirty_set(vv->vol, w, nw);
	free(w);
	vol_virt_status(vv->vol, &st);
	if (rec)
		log_notice("%s: resync %" PRIu64 " of %" PRIu64
			   " regions from the replicated map (write intent of node %" PRIu32 ")",
			   v->name, st.dirty_regions, st.nregions, rv.owner);
	else
		log_notice("%s: no replicated map: whole leg (%" PRIu64 " regions)", v->name,
			   st.nregions);
	return 0;
}

static int open_virt(struct eng_backends *eb, const struct clu_volume *v, struct vol **out)
{
	struct vol_backend *bes[CLU_MAX_BACKENDS];
	uint32_t ids[CLU_MAX_BACKENDS], n;
	struct vol_desc d;
	struct vvol *vv;
	int rc;

	if ((rc = clu_virt_desc(clu_map(eb->clu), v, &d, ids, &n)) < 0)
		return rc;
	vv = calloc(1, sizeof(*vv));
	rc = -ENOMEM;
	if (!vv)
		goto out;
	rc = -EAGAIN;
	for (uint32_t i = 0; i < n; i++) {
		struct be *b = be_find(eb, ids[i]);
		/* Its size and block size come with the first login: wait for it. */
		if (!b || !b->logged_in_once)
			goto out;
		bes[i] = b->be;
		vv->bes[i] = b;
	}
	vv->nbes = n;
	snprintf(vv->name, sizeof(vv->name), "%s", v->name);
	vv->eb = eb;
	struct vol_virt_params p = {.leg_cb = r_leg, .leg_cb_arg = vv};
	/*
	 * Write intent (a mirror in a cluster: someone may take it over): the
	 * regions are recorded by every engine before they are written. A solo
	 * engine, alone and without a partner, has nobody to tell.
	 */
	uint32_t mm[CLU_MAX_NODES];
	if (d.nlegs == 2 && eb->intent &&
	    (v->partner || clu_members(eb->clu, mm, CLU_MAX_NODES) > 1)) {
		rc = -ENOMEM;
		if (!(vv->intent = eng_intent_vol_create(eb->intent, v->name)))
			goto out;
		p.intent_cb = eng_intent_hook;
		p.intent_arg = vv->intent;
	}
	if ((rc = vol_open_virt(&d, bes, n, &p, &vv->vol)) < 0)
		goto out;
	for (unsigned l = 0; l < d.nlegs; l++)
		if (d.legs[l].state != VOL_LEG_OK) {
			if ((rc = open_dirty(eb, vv, v)) < 0) {
				vol_close(vv->vol);
				goto out;
			}
			break;
		}
	/* After the dirty regions: the record gets them too. */
	vol_virt_intent_full(vv->vol);
	LIST_INSERT_HEAD(&eb->vvols, vv, link);
	*out = vv->vol;
	log_notice("%s: virtualized volume open, %u leg(s)%s", v->name, d.nlegs,
		   vv->intent ? ", write intent replicated" : "");
	vv = NULL;
	rc = 0;
out:
	if (vv)
		eng_intent_vol_free(vv->intent);
	free(vv);
	vol_desc_free(&d);
	return rc;
}

struct eng_backends *eng_backends_get(void)
{
	return the_eb;
}

int eng_vol_open(const struct clu_volume *v, bool local, const char *path, struct vol **out)
{
	if (!local || !v->nlegs || !the_eb)
		return vol_open_file(v->name, path, v->size, v->block_size, out);
	return open_virt(the_eb, v, out);
}

void eng_vol_close(struct vol *vol)
{
	struct vvol *vv;

	if (the_eb && vol && vol_is_virt(vol))
		LIST_FOREACH (vv, &the_eb->vvols, link) {
			if (vv->vol != vol)
				continue;
			/* Closed when the copy has stopped and no write intent is in flight. */
			vv->closing = true;
			vvol_try_free(vv);
			return;
		}
	vol_close(vol);
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
		const struct be *b = be_find(eb, c->id);
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
		v[i].state = (char *)state_str(be_find(eb, c->id));
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
		const struct be *b = be_find(eb, v->legs[leg].extents[e].backend);
		if (!b || b->state != BE_UP)
			return false;
	}
	return true;
}

bool eng_backends_virt_status(struct eng_backends *eb, const char *name, Vm__CtlVirtStatus *out)
{
	struct vvol *vv = eb ? vvol_find(eb, name) : NULL;
	struct vol_virt_status st;

	if (!vv)
		return false;
	vol_virt_status(vv->vol, &st);
	vm__ctl_virt_status__init(out);
	out->dirty_regions = st.dirty_regions;
	out->resyncing = st.resyncing;
	out->resync_total = st.resync_total;
	out->resync_done = st.resync_done;
	out->writes_degraded = st.writes_degraded;
	out->nregions = st.nregions;
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
	if (pipe2(eb->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(eb);
		return NULL;
	}
	qb_loop_poll_add(loop, QB_LOOP_HIGH, eb->pipe[0], POLLIN, eb, on_pipe);
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
	struct vvol *vv;

	if (!eb)
		return;
	qb_loop_timer_del(eb->loop, eb->timer);
	qb_loop_poll_del(eb->loop, eb->pipe[0]);
	while ((vv = LIST_FIRST(&eb->vvols)) != NULL) {
		LIST_REMOVE(vv, link);
		/* A message in flight still points at its handle: left to the exit. */
		if (!eng_intent_vol_busy(vv->intent))
			eng_intent_vol_free(vv->intent);
		free(vv);
	}
	while ((b = LIST_FIRST(&eb->bes)) != NULL) {
		LIST_REMOVE(b, link);
		free(b);
	}
	eng_intent_destroy(eb->intent);
	close(eb->pipe[0]);
	close(eb->pipe[1]);
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
