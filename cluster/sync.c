/*
 * sync.c: state transfer on every configuration change (after pmxcfs's dfsm
 * and DLM's cpg.c, reimplemented), and the divergence check that restarts it.
 *
 *   confchg -> SYNC_VERSIONS: every member multicasts SyncVersion (its map
 *   version and digest). When the last member's version is delivered, the
 *   leader is the highest version (ties: the lowest node id). All digests
 *   equal: SYNCED at once. Otherwise SYNC_MAP: the leader multicasts its map,
 *   everyone adopts it on delivery. Changes delivered during the transfer are
 *   queued and replayed after it, in order. A new confchg during a transfer
 *   discards the queue on every old member alike (new members never had it)
 *   and fails the local requests in it with -EAGAIN.
 *
 * Every decision is taken on delivery, so all members of a configuration
 * take it at the same point of the same sequence.
 */
#define UTIL_LOG_TAG "sync"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

static void sync_complete(struct clu *c)
{
	struct queued *q;

	c->state = CLU_STATE_SYNCED;
	if (clu_config_quorate(c))
		c->stale = false;
	log_info("map in sync: v%" PRIu64 ", %u member(s), %u queued change(s) to replay",
		 c->map.version, c->nmembers, c->nqueued);
	while ((q = STAILQ_FIRST(&c->queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->queue, link);
		c->nqueued--;
		clu_apply_change(c, q->chg);
		vm__map_change__free_unpacked(q->chg, NULL);
		free(q);
	}
	clu_notify(c);
}

/* ---- state transfer ---- */

static void announce(struct clu *c, bool resync)
{
	Vm__SyncVersion sv = VM__SYNC_VERSION__INIT;

	sv.round = c->round;
	sv.node = c->self.node;
	sv.version = c->map.version;
	sv.digest = clu_map_digest(&c->map);
	sv.name = c->self.name;
	sv.portal = c->self.portal;
	sv.resync = resync;
	if (clu_send_msg(c, PROTO_SYNC_VERSION, &sv.base) < 0)
		log_err("cannot announce the map version; the state transfer waits for the next "
			"configuration change");
}

static void round_start(struct clu *c, const char *why)
{
	clu_queue_discard(c, why);
	c->round = clu_round_id(c->members, c->nmembers, c->resyncs);
	c->state = CLU_STATE_SYNC_VERSIONS;
	c->leader = 0;
	c->resync_asked = false;
	for (unsigned i = 0; i < c->npeers; i++)
		c->peers[i].announced = false;
	log_info("state transfer %08" PRIx32 " (%s): %u member(s), local map v%" PRIu64, c->round,
		 why, c->nmembers, c->map.version);
	announce(c, false);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void clu_confchg(struct clu *c, const uint32_t *members, unsigned n)
{
	n = UTIL_MIN(n, (unsigned)CLU_MAX_NODES);
	memcpy(c->members, members, n * sizeof(*members));
	qsort(c->members, n, sizeof(*members), cmp_u32);
	c->nmembers = n;
	for (unsigned i = 0; i < n; i++)
		clu_peer_get(c, c->members[i], true);
	/* A member that left: what it last said of the back ends is no news when it returns. */
	for (unsigned i = 0; i < c->npeers; i++)
		if (!clu_is_member(c, c->peers[i].node))
			c->peers[i].seen_valid = false;
	c->resyncs = 0;
	if (!clu_is_member(c, c->self.node)) {
		/* Not in it (left the group): nothing to agree on until we join again. */
		clu_queue_discard(c, "left the group");
		c->state = CLU_STATE_JOINING;
		c->stale = true;
		clu_notify(c);
		return;
	}
	round_start(c, "configuration change");
	clu_notify(c);
}

void clu_sync_on_version(struct clu *c, uint32_t from, const Vm__SyncVersion *sv)
{
	struct peer *p;

	if (sv->node != from || !clu_is_member(c, from) || c->state == CLU_STATE_JOINING)
		return; /* from another configuration, or not for us */
	if (sv->resync) {
		if (sv->round != c->round)
			return;
		c->resyncs++;
		round_start(c, "a member found its map differs");
		return;
	}
	if (sv->round != c->round || c->state != CLU_STATE_SYNC_VERSIONS)
		return;
	p = clu_peer_get(c, from, true);
	if (!p)
		return;
	snprintf(p->name, sizeof(p->name), "%s", sv->name);
	snprintf(p->portal, sizeof(p->portal), "%s", sv->portal);
	p->announced = true;
	p->version = sv->version;
	p->digest = sv->digest;

	const struct peer *lead = NULL;
	bool all_equal = true;
	for (unsigned i = 0; i < c->nmembers; i++) {
		const struct peer *q = clu_peer_get(c, c->members[i], false);
		if (!q || !q->announced)
			return; /* wait for the others */
		/* Highest version wins; members[] is sorted, so ties keep the lowest id. */
		if (!lead || q->version > lead->version)
			lead = q;
	}
	for (unsigned i = 0; i < c->nmembers; i++) {
		const struct peer *q = clu_peer_get(c, c->members[i], false);
		if (q->version != lead->version || q->digest != lead->digest)
			all_equal = false;
	}
	c->leader = lead->node;
	if (all_equal) {
		sync_complete(c);
		return;
	}
	c->state = CLU_STATE_SYNC_MAP;
	log_info("maps differ: node %" PRIu32 " (v%" PRIu64 ") sends its map", lead->node,
		 lead->version);
	if (lead->node == c->self.node) {
		Vm__SyncMap sm = VM__SYNC_MAP__INIT;
		Vm__Map pb;
		if (clu_map_to_pb(&c->map, &pb) < 0) {
			log_err("out of memory packing the map");
			return;
		}
		sm.round = c->round;
		sm.node = c->self.node;
		sm.map = &pb;
		(void)clu_send_msg(c, PROTO_SYNC_MAP, &sm.base);
		clu_map_pb_free(&pb);
	}
}

void clu_sync_on_map(struct clu *c, uint32_t from, const Vm__SyncMap *sm)
{
	if (c->state != CLU_STATE_SYNC_MAP || sm->round != c->round || from != c->leader ||
	    sm->node != from || !sm->map)
		return;
	if (from != c->self.node) {
		uint64_t old = c->map.version;
		int rc = clu_map_from_pb(&c->map, sm->map);
		if (rc < 0) {
			/* Every member validates alike, so all of them wait here together. */
			c->drops.malformed++;
			log_err("the map of node %" PRIu32 " is invalid (%s): waiting for the next "
				"configuration change",
				from, strerror(-rc));
			return;
		}
		log_notice("adopted the map of node %" PRIu32 ": v%" PRIu64 " -> v%" PRIu64, from,
			   old, c->map.version);
		clu_persist(c);
	}
	sync_complete(c);
}

void clu_sync_on_change(struct clu *c, Vm__MapChange *chg)
{
	if (c->state == CLU_STATE_SYNCED) {
		clu_apply_change(c, chg);
		vm__map_change__free_unpacked(chg, NULL);
		return;
	}
	struct queued *q = malloc(sizeof(*q));
	if (!q || c->nqueued >= CLU_QUEUED_MAX || c->state == CLU_STATE_JOINING) {
		/*
		 * Cannot keep it: this member would diverge, so it forces a new
		 * transfer (the resync below) rather than silently skipping it.
		 */
		free(q);
		if (chg->origin == c->self.node)
			clu_request_complete(c, chg->request, -EBUSY);
		vm__map_change__free_unpacked(chg, NULL);
		if (c->state != CLU_STATE_JOINING && !c->resync_asked) {
			c->resync_asked = true;
			announce(c, true);
		}
		return;
	}
	q->chg = chg;
	STAILQ_INSERT_TAIL(&c->queue, q, link);
	c->nqueued++;
}

/*
 * Divergence check. A load report is sent after its sender delivered
 * everything before it, and agreed order delivers it after those messages
 * everywhere; so, within one round, a member that delivers it has a
 * version at least the sender's. A lower version, or an equal version with
 * another digest, means this member missed or mis-ordered something: it asks
 * every member to transfer the state again.
 */
void clu_sync_on_load(struct clu *c, uint32_t from, const Vm__LoadReport *lr)
{
	struct peer *p = clu_peer_get(c, from, false);

	if (lr->node != from || !p)
		return;
	p->read_ops = lr->read_ops;
	p->write_ops = lr->write_ops;
	p->bytes = lr->bytes;
	p->volumes = lr->volumes;
	p->report_version = lr->version;
	/* Its view of the back ends, kept whole until the next report replaces it. */
	p->nseen = (unsigned)UTIL_MIN(lr->n_backends, (size_t)CLU_MAX_BACKENDS);
	for (unsigned i = 0; i < p->nseen; i++) {
		const Vm__BackendSeen *b = lr->backends[i];
		p->seen[i] = (struct clu_backend_seen){b->id, b->state, b->size};
	}
	p->seen_valid = true;
	p->seen_tick = c->ticks;
	if (from == c->self.node || !lr->synced || lr->round != c->round ||
	    c->state != CLU_STATE_SYNCED || c->resync_asked)
		return;
	if (lr->version > c->map.version ||
	    (lr->version == c->map.version && lr->digest != clu_map_digest(&c->map))) {
		log_warn("map v%" PRIu64 " differs from node %" PRIu32 "'s v%" PRIu64
			 ": asking for a state transfer",
			 c->map.version, from, lr->version);
		c->resync_asked = true;
		announce(c, true);
	}
}
