/*
 * failover.c: the engine's side of failover (DESIGN.md, Cluster):
 *   - fencing: an engine that loses quorum (or whose configuration is a
 *     minority) drops its service addresses at once; ctl_targets.c has
 *     already removed its targets, which closes the hosts' sessions (at
 *     ERL 0 that fails their outstanding commands: hosts retry elsewhere);
 *   - service addresses: an engine holds the portal address of every
 *     volume it owns, and its own address unless another engine took it
 *     over (cluster/failover.c decides, from the map alone);
 *   - takeover: 2 x fence_ms after a membership change, the volumes whose
 *     owner left get a new owner (the partner) by a replicated OWNER_MOVE
 *     that keeps the volume's portal, so the address follows the volume
 *     and hosts reconnect to the address they know (session reinstatement);
 *     a mirror's legs are resynced where the lost owner's replicated write
 *     intent says they may differ (a whole leg without it).
 * Waiting 2 x fence_ms guarantees the lost engine, if it still runs, has
 * fenced itself (within fence_ms of the same membership change) before a
 * second engine serves the same data. Writes it sent before that may still
 * be on their way to the back ends, so the new owner of a volume on back
 * ends first has them refuse the lost engine (ctl_fence.c, persistent
 * reservations), then takes over.
 */
#define UTIL_LOG_TAG "failover"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qb/qbloop.h>

#include "cluster/cluster.h"
#include "engine/ctl_fence.h"
#include "engine/engine.h"

#define MAX_ADDRS     64
#define DROP_GRACE_MS 300  /* a move: sessions close (FIN) before the address goes */
#define FENCE_WAIT_MS 2000 /* a back end that does not answer a fence in time is down */

struct held {
	char addr[CLU_PORTAL_MAX];
	uint64_t unwanted_ms; /* 0: wanted */
};

struct eng_failover {
	qb_loop_t *loop;
	struct tgt *tgt;
	const struct eng_config *cfg;
	struct clu *clu;
	struct held held[MAX_ADDRS];
	unsigned nheld;
	uint32_t members[CLU_MAX_NODES];
	unsigned nmembers;
	qb_loop_timer_handle takeover_timer;
	bool takeover_armed;
	qb_loop_timer_handle drop_timer;
	bool drop_armed;
	bool fenced;
	bool refused_logged[CLU_MAX_VOLUMES];
	/* Lost owners shut out of the back ends (ctl_fence.c) since they left. */
	uint32_t shut_out[CLU_MAX_NODES];
	unsigned nshut_out;
	uint32_t shutting[CLU_MAX_NODES]; /* being fenced now */
	unsigned nshutting;
};

static bool managed(const struct eng_failover *f)
{
	return f->cfg->cluster.service_dev[0] != '\0';
}

static void drop_addr(struct eng_failover *f, unsigned i, const char *why)
{
	int rc = clu_addr_del(f->cfg->cluster.service_dev, f->held[i].addr);

	if (rc < 0)
		log_err("cannot remove service address %s from %s: %s", f->held[i].addr,
			f->cfg->cluster.service_dev, strerror(-rc));
	else
		log_notice("service address %s dropped (%s)", f->held[i].addr, why);
	f->held[i] = f->held[--f->nheld];
}

static void drop_all(struct eng_failover *f, const char *why)
{
	while (f->nheld)
		drop_addr(f, f->nheld - 1, why);
}

static const char *portal_of(void *arg, const struct clu_volume *v)
{
	return clu_volume_portal(arg, v);
}

static void reconcile_addrs(struct eng_failover *f);

static void drop_fire(void *arg)
{
	struct eng_failover *f = arg;

	f->drop_armed = false;
	reconcile_addrs(f);
}

static void reconcile_addrs(struct eng_failover *f)
{
	char want[MAX_ADDRS][CLU_PORTAL_MAX];
	uint64_t now = util_now_ms();
	unsigned n;

	if (!managed(f) || !f->clu)
		return;
	n = clu_addr_wanted(clu_map(f->clu), clu_nodeid(f->clu), f->cfg->cluster.advertise,
			    portal_of, f->clu, want, MAX_ADDRS);
	/* Unwanted: dropped after a grace, so that closing sessions still reach hosts. */
	for (unsigned i = f->nheld; i-- > 0;) {
		bool w = false;
		for (unsigned k = 0; k < n; k++)
			w |= strcmp(want[k], f->held[i].addr) == 0;
		if (w) {
			f->held[i].unwanted_ms = 0;
			continue;
		}
		if (!f->held[i].unwanted_ms)
			f->held[i].unwanted_ms = now;
		if (now - f->held[i].unwanted_ms >= DROP_GRACE_MS)
			drop_addr(f, i, "no volume of this engine uses it");
		else if (!f->drop_armed) {
			f->drop_armed =
			    qb_loop_timer_add(f->loop, QB_LOOP_HIGH, DROP_GRACE_MS * 1000000ull, f,
					      drop_fire, &f->drop_timer) == 0;
		}
	}
	for (unsigned k = 0; k < n; k++) {
		bool have = false;
		for (unsigned i = 0; i < f->nheld; i++)
			have |= strcmp(want[k], f->held[i].addr) == 0;
		if (have || f->nheld >= MAX_ADDRS)
			continue;
		int rc = clu_addr_add(f->cfg->cluster.service_dev, want[k]);
		if (rc < 0) {
			log_err("cannot add service address %s on %s: %s", want[k],
				f->cfg->cluster.service_dev, strerror(-rc));
			continue;
		}
		memcpy(f->held[f->nheld].addr, want[k], CLU_PORTAL_MAX);
		f->held[f->nheld++].unwanted_ms = 0;
		/* Hosts cache the old owner's MAC for this address: announce the new one. */
		for (int j = 0; j < 2; j++)
			rc = clu_garp(f->cfg->cluster.service_dev, want[k]);
		log_notice("service address %s added on %s%s", want[k], f->cfg->cluster.service_dev,
			   rc < 0 ? " (gratuitous ARP failed)" : ", gratuitous ARP sent");
	}
}

/* ---- takeover ---- */

static void takeover_done(void *arg, int rc)
{
	char *name = arg;

	if (rc == 0)
		log_notice("%s: taken over: this engine serves it now", name);
	else if (rc != -EALREADY)
		log_warn("%s: takeover not applied: %s", name, strerror(-rc));
	free(name);
}

static void leg_marked(void *arg, int rc)
{
	(void)arg;
	if (rc < 0 && rc != -EALREADY)
		log_warn("leg to resync after a takeover not recorded: %s", strerror(-rc));
}

static bool in_list(const uint32_t *l, unsigned n, uint32_t node)
{
	for (unsigned i = 0; i < n; i++)
		if (l[i] == node)
			return true;
	return false;
}

static void takeover_fire(void *arg);

static void shut_out_done(void *arg, int rc)
{
	struct eng_failover *f = arg;

	if (rc)
		log_warn("fencing the lost engine(s) off the back ends: %s; taking over anyway",
			 strerror(-rc));
	for (unsigned i = 0; i < f->nshutting && f->nshut_out < CLU_MAX_NODES; i++)
		f->shut_out[f->nshut_out++] = f->shutting[i];
	f->nshutting = 0;
	takeover_fire(f);
}

/*
 * Before this engine serves a lost owner's volumes on back ends, the back
 * ends must refuse that owner: writes it sent before it fenced itself may
 * still be on their way, and would otherwise land over newer data
 * (ctl_fence.c). True: a fence is running, takeover_fire() runs again after.
 */
static bool shut_out_first(struct eng_failover *f, const struct clu_takeover *plan, unsigned n,
			   uint32_t self)
{
	uint32_t victims[CLU_MAX_NODES];
	unsigned nv = 0, k = 0;

	if (f->nshutting)
		return true;
	/* A member again: it registered anew and may be fenced again later. */
	for (unsigned i = 0; i < f->nshut_out; i++)
		if (!in_list(f->members, f->nmembers, f->shut_out[i]))
			f->shut_out[k++] = f->shut_out[i];
	f->nshut_out = k;
	for (unsigned i = 0; i < n; i++) {
		const struct clu_volume *v = clu_map_find(clu_map(f->clu), plan[i].name);
		uint32_t lost = plan[i].old_owner;
		if (!v || plan[i].owner != self || !v->nlegs || !lost || nv == CLU_MAX_NODES ||
		    in_list(f->shut_out, f->nshut_out, lost) || in_list(victims, nv, lost))
			continue;
		victims[nv++] = lost;
	}
	if (!nv || !eng_backends_get())
		return false;
	memcpy(f->shutting, victims, nv * sizeof(victims[0]));
	f->nshutting = nv;
	if (eng_fence_nodes(eng_backends_get(), victims, nv, FENCE_WAIT_MS, shut_out_done, f) < 0) {
		log_warn("cannot fence the lost engine(s) off the back ends; taking over anyway");
		f->nshutting = 0;
		return false;
	}
	return true;
}

static void takeover_fire(void *arg)
{
	struct eng_failover *f = arg;
	struct clu_takeover plan[64];
	uint32_t self;
	unsigned n;

	f->takeover_armed = false;
	if (!f->clu || clu_fenced(f->clu))
		return;
	self = clu_nodeid(f->clu);
	n = clu_failover_plan(clu_map(f->clu), f->members, f->nmembers, plan,
			      UTIL_ARRAY_SIZE(plan));
	if (shut_out_first(f, plan, n, self))
		return;
	for (unsigned i = 0; i < n; i++) {
		const struct clu_takeover *t = &plan[i];
		const struct clu_volume *v = clu_map_find(clu_map(f->clu), t->name);
		if (!v || t->owner != self)
			continue; /* another member takes it */
		if (t->pool_file && !f->cfg->pool_shared) {
			unsigned idx = (unsigned)(v - clu_map(f->clu)->vols);
			if (idx < CLU_MAX_VOLUMES && !f->refused_logged[idx])
				log_warn("%s: owner node %" PRIu32 " is gone but the volume is not "
					 "taken over: its data is in that node's local pool "
					 "(pool.shared = false)",
					 t->name, t->old_owner);
			if (idx < CLU_MAX_VOLUMES)
				f->refused_logged[idx] = true;
			continue;
		}
		/*
		 * A mirror whose legs the map says are in sync may not be: the
		 * lost owner may have died with a write on one leg and not yet on
		 * the other (not acknowledged, so either content is allowed, but
		 * the two legs must not keep both). Where: the replicated write
		 * intent record (cluster/regions.c) lists every region it may have
		 * been writing, when this engine has it complete. Empty: the legs
		 * are equal, nothing to do. Otherwise one leg stays the truth (leg
		 * 0, unless this engine cannot reach its back ends now); the other
		 * is recorded failed first (same sender, so applied before the
		 * move), and the new owner opens it with the recorded regions
		 * dirty, or all of them without a record (ctl_backends.c), and
		 * copies them from the first once its back ends answer.
		 */
		struct clu_region_view rv;
		bool rec = v->nlegs == 2 && clu_regions_get(f->clu, t->name, &rv, NULL, 0) == 0 &&
			   rv.complete && rv.owner == t->old_owner && !rv.successor;
		if (v->nlegs == 2) {
			uint64_t nreg = (v->size + v->region_size - 1) / v->region_size;
			if (rec)
				log_notice("%s: replicated map of node %" PRIu32 ": %" PRIu64
					   " of %" PRIu64 " regions may differ",
					   t->name, t->old_owner, rv.count, nreg);
			else
				log_notice("%s: no replicated map of node %" PRIu32
					   "'s writes: whole leg",
					   t->name, t->old_owner);
		}
		if (v->nlegs == 2 && v->legs[0].state == VOL_LEG_OK &&
		    v->legs[1].state == VOL_LEG_OK && rec && rv.count == 0) {
			log_notice("%s: legs in sync by the replicated map: no resync", t->name);
		} else if (v->nlegs == 2 && v->legs[0].state == VOL_LEG_OK &&
			   v->legs[1].state == VOL_LEG_OK) {
			unsigned stale = !eng_backends_leg_up(eng_backends_get(), v, 0) &&
						 eng_backends_leg_up(eng_backends_get(), v, 1)
					     ? 0
					     : 1;
			Vm__MapChange leg = VM__MAP_CHANGE__INIT;
			leg.op = VM__CHANGE_OP__LEG_STATE;
			leg.name = (char *)t->name;
			leg.leg = stale;
			leg.leg_state = VOL_LEG_FAILED;
			if (clu_submit(f->clu, &leg, leg_marked, NULL) < 0)
				log_warn("%s: leg %u not marked for resync", t->name, stale);
			else
				log_notice("%s: leg %u to be resynced from leg %u (%s)", t->name,
					   stale, 1 - stale,
					   rec ? "the regions of the replicated map"
					       : "the lost owner's dirty regions are unknown");
		}
		Vm__MapChange chg = VM__MAP_CHANGE__INIT;
		char portal[CLU_PORTAL_MAX];
		snprintf(portal, sizeof(portal), "%s", clu_volume_portal(f->clu, v));
		chg.op = VM__CHANGE_OP__OWNER_MOVE;
		chg.name = (char *)t->name;
		chg.owner = self;
		chg.partner = t->partner;
		chg.service_portal = portal; /* the address moves with the volume */
		char *name = strdup(t->name);
		if (!name)
			continue;
		log_notice("%s: owner node %" PRIu32 " left %u ms ago or more: taking it over "
			   "with its address %s",
			   t->name, t->old_owner, 2 * f->cfg->cluster.fence_ms, portal);
		if (clu_submit(f->clu, &chg, takeover_done, name) < 0)
			free(name);
	}
}

static void arm_takeover(struct eng_failover *f)
{
	if (f->takeover_armed)
		qb_loop_timer_del(f->loop, f->takeover_timer);
	/* The lost engine fences itself within fence_ms of the same change. */
	f->takeover_armed =
	    qb_loop_timer_add(f->loop, QB_LOOP_HIGH, 2ull * f->cfg->cluster.fence_ms * 1000000ull,
			      f, takeover_fire, &f->takeover_timer) == 0;
}

void eng_failover_changed(struct eng_failover *f, struct clu *c)
{
	uint32_t m[CLU_MAX_NODES];
	unsigned n;

	if (!f || !c)
		return;
	f->clu = c;
	if (clu_fenced(c)) {
		if (!f->fenced) {
			uint64_t t0 = util_now_ms();
			unsigned had = f->nheld;
			drop_all(f, "fenced");
			/* ctl_targets.c removed every target just before this call. */
			log_notice("fenced in %" PRIu64 " ms (limit %" PRIu32
				   " ms): targets removed, sessions closing, %u service "
				   "address(es) dropped",
				   util_now_ms() - t0, f->cfg->cluster.fence_ms, had);
		}
		f->fenced = true;
		if (f->takeover_armed)
			qb_loop_timer_del(f->loop, f->takeover_timer);
		f->takeover_armed = false;
		return;
	}
	f->fenced = false;
	reconcile_addrs(f);
	n = clu_members(c, m, CLU_MAX_NODES);
	if (n != f->nmembers || memcmp(m, f->members, n * sizeof(*m)) != 0) {
		memcpy(f->members, m, n * sizeof(*m));
		f->nmembers = n;
		uint32_t plan_n = 0;
		struct clu_takeover plan[1];
		plan_n = clu_failover_plan(clu_map(c), m, n, plan, 1);
		if (plan_n)
			arm_takeover(f);
	}
}

struct eng_failover *eng_failover_create(struct qb_loop *loop, struct tgt *t,
					 const struct eng_config *cfg)
{
	struct eng_failover *f = calloc(1, sizeof(*f));
	char own[CLU_PORTAL_MAX];

	if (!f)
		return NULL;
	f->loop = loop;
	f->tgt = t;
	f->cfg = cfg;
	f->fenced = true; /* nothing is served before the map is */
	/*
	 * A previous instance may have died holding our own address: count it
	 * as held, so that it goes unless the map says we keep it.
	 */
	if (managed(f) && clu_portal_host(cfg->cluster.advertise, own, sizeof(own)) == 0) {
		snprintf(f->held[0].addr, CLU_PORTAL_MAX, "%s", own);
		f->nheld = 1;
		drop_all(f, "engine start");
	}
	return f;
}

void eng_failover_destroy(struct eng_failover *f)
{
	if (!f)
		return;
	if (f->takeover_armed)
		qb_loop_timer_del(f->loop, f->takeover_timer);
	if (f->drop_armed)
		qb_loop_timer_del(f->loop, f->drop_timer);
	drop_all(f, "engine stopping");
	free(f);
}
