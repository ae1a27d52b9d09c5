/*
 * ctl_vvols.c: the virtualized volumes this engine owns, built on the map's
 * back ends (ctl_backends.c, which logs in to them and hands their events
 * and ticks here; see ctl_backends_internal.h) (issue 6).
 *
 * The owner of a virtualized volume forwards its leg events to the map (a
 * replicated LEG_STATE change, so every engine agrees which leg holds the
 * data); once a failed leg's back ends are back the owner resyncs the leg
 * from the good one (paced) and the leg event of the end of the resync
 * records it OK in the map.
 *
 * In a cluster, a mirror's owner replicates its write intent (the regions
 * whose legs may differ) through ctl_intent.c, so that a new owner after a
 * crash marks only those regions dirty when it opens the volume, instead of
 * a whole leg.
 */
#define UTIL_LOG_TAG "backends"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/ctl_backends_internal.h"
#include "engine/ctl_intent.h"

#define RESYNC_RATE_BPS (32ull << 20) /* leave the back ends room for host I/O */

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

/* ---- on the reactor ---- */

static void r_leg(void *arg, struct vol *v, unsigned leg, enum vol_leg_state st)
{
	struct vvol *vv = arg;
	eng_be_post(vv->eb, EV_LEG, vv, 0, leg, st);
}

static void r_resynced(void *arg, int rc)
{
	struct vvol *vv = arg;
	eng_be_post(vv->eb, EV_RESYNC_DONE, vv, rc, 0, 0);
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
		eng_be_post(vv->eb, EV_RESYNC_DONE, vv, rc, 0, 0);
}

/* ---- on the control thread ---- */

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

void eng_vv_leg_event(struct eng_backends *eb, struct vvol *vv, unsigned leg, enum vol_leg_state st)
{
	log_notice("%s: leg %u %s", vv->name, leg,
		   st == VOL_LEG_OK	  ? "ok"
		   : st == VOL_LEG_FAILED ? "failed"
					  : "resync");
	if (!vv->closing)
		record_leg(eb, vv->name, leg, st);
}

void eng_vv_resync_done(struct vvol *vv, int rc)
{
	vv->resyncing = false;
	if (rc < 0)
		log_warn("%s: resync stopped: %s", vv->name, strerror(-rc));
	else
		log_notice("%s: resync done", vv->name);
	vvol_try_free(vv);
}

void eng_vv_tick_intent(struct eng_backends *eb)
{
	struct vvol *vv, *vtmp;

	/* Write intent: idle regions cleared; closings that waited for it end. */
	LIST_FOREACH_SAFE (vv, &eb->vvols, link, vtmp) {
		if (vv->closing)
			vvol_try_free(vv);
		else if (vv->intent)
			vol_virt_intent_tick(vv->vol, util_now_ms());
	}
}

void eng_vv_tick_resync(struct eng_backends *eb)
{
	struct vvol *vv;

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
				struct be *lb = eng_be_find(eb, v->legs[l].extents[e].backend);
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
}

void eng_vv_map_changed(struct eng_backends *eb, const struct clu_map *m)
{
	struct vvol *vv;

	/* The map says a leg failed (recorded by an earlier owner): never read it here. */
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
		struct be *b = eng_be_find(eb, ids[i]);
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

/* ctl_targets.c opens and closes every served volume here, without a handle. */
int eng_vol_open(const struct clu_volume *v, bool local, const char *path, struct vol **out)
{
	struct eng_backends *eb = eng_backends_get();

	if (!local || !v->nlegs || !eb)
		return vol_open_file(v->name, path, v->size, v->block_size, out);
	return open_virt(eb, v, out);
}

void eng_vol_close(struct vol *vol)
{
	struct eng_backends *eb = eng_backends_get();
	struct vvol *vv;

	if (eb && vol && vol_is_virt(vol))
		LIST_FOREACH (vv, &eb->vvols, link) {
			if (vv->vol != vol)
				continue;
			/* Closed when the copy has stopped and no write intent is in flight. */
			vv->closing = true;
			vvol_try_free(vv);
			return;
		}
	vol_close(vol);
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

void eng_vv_destroy_all(struct eng_backends *eb)
{
	struct vvol *vv;

	while ((vv = LIST_FIRST(&eb->vvols)) != NULL) {
		LIST_REMOVE(vv, link);
		/* A message in flight still points at its handle: left to the exit. */
		if (!eng_intent_vol_busy(vv->intent))
			eng_intent_vol_free(vv->intent);
		free(vv);
	}
}
