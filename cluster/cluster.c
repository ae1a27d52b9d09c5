/*
 * cluster.c: the replicated map state machine's core: message dispatch with
 * envelope checks and drop counters, apply on delivery with the quorum gate,
 * the send queue that absorbs CS_ERR_TRY_AGAIN, vmctl requests waiting for
 * their change, periodic load reports, and the views. The state transfer
 * after a configuration change is in sync.c.
 *
 * The rule that keeps every member's map equal: a decision depends only on
 * what CPG delivered (in agreed order, the same sequence on every member of
 * a configuration) and on the configuration itself, never on when a local
 * event happened. So changes are applied on delivery, and the quorum gate
 * of a change is the size of the configuration that delivers it.
 */
#define UTIL_LOG_TAG "cluster"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

static const char *const state_names[] = {
    [CLU_STATE_JOINING] = "joining",
    [CLU_STATE_SYNC_VERSIONS] = "sync-versions",
    [CLU_STATE_SYNC_MAP] = "sync-map",
    [CLU_STATE_SYNCED] = "synced",
};

const char *clu_state_str(enum clu_sync_state s)
{
	return (unsigned)s < UTIL_ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

uint32_t clu_round_id(const uint32_t *sorted, unsigned n, uint32_t resyncs)
{
	uint8_t b[4];
	uint32_t crc = UTIL_CRC32C_INIT;

	for (unsigned i = 0; i < n; i++) {
		put_be32(b, sorted[i]);
		crc = util_crc32c_update(crc, b, 4);
	}
	put_be32(b, resyncs);
	crc = util_crc32c_update(crc, b, 4);
	return crc ^ UTIL_CRC32C_XOR;
}

struct peer *clu_peer_get(struct clu *c, uint32_t node, bool add)
{
	for (unsigned i = 0; i < c->npeers; i++)
		if (c->peers[i].node == node)
			return &c->peers[i];
	if (!add || c->npeers >= CLU_MAX_NODES)
		return NULL;
	struct peer *p = &c->peers[c->npeers++];
	memset(p, 0, sizeof(*p));
	p->node = node;
	return p;
}

bool clu_is_member(const struct clu *c, uint32_t node)
{
	for (unsigned i = 0; i < c->nmembers; i++)
		if (c->members[i] == node)
			return true;
	return false;
}

/*
 * The quorum gate of a delivered change: a majority of the expected votes
 * in the configuration that delivers it. Unlike votequorum's own
 * notification, which reaches each member at its own moment, this is the
 * same on every member at the same point of the delivery sequence.
 */
bool clu_config_quorate(const struct clu *c)
{
	return c->expected_votes > 0 && 2 * c->nmembers > c->expected_votes;
}

void clu_notify(struct clu *c)
{
	/* Every map or membership change passes here: the write intent records follow. */
	clu_regions_update(c);
	if (c->changed)
		c->changed(c->changed_arg);
}

/* ---- sending: CS_ERR_TRY_AGAIN goes to a bounded queue with back-off ---- */

static void sendq_flush(struct clu *c);

static void retry_fire(void *arg)
{
	struct clu *c = arg;

	c->retry_timer = NULL;
	sendq_flush(c);
}

static void sendq_flush(struct clu *c)
{
	struct sendq_ent *e;

	while ((e = STAILQ_FIRST(&c->sendq)) != NULL) {
		int rc = c->ops->mcast(c->ctx, e->buf, e->len);
		if (rc == -EAGAIN) {
			c->send_retries++;
			if (!c->retry_timer)
				c->retry_timer =
				    c->ops->timer_add(c->ctx, c->backoff_ms, retry_fire, c);
			c->backoff_ms = UTIL_MIN(c->backoff_ms * 2, CLU_BACKOFF_MAX_MS);
			return;
		}
		if (rc < 0)
			log_warn("multicast failed: %s; message dropped", strerror(-rc));
		STAILQ_REMOVE_HEAD(&c->sendq, link);
		c->nsendq--;
		free(e->buf);
		free(e);
	}
	c->backoff_ms = CLU_BACKOFF_MIN_MS;
}

/* Takes \p buf. Returns 0 (sent or queued) or -EBUSY / -ENOMEM / the mcast error. */
static int send_buf(struct clu *c, uint8_t *buf, size_t len)
{
	if (STAILQ_EMPTY(&c->sendq)) {
		int rc = c->ops->mcast(c->ctx, buf, len);
		if (rc == 0) {
			free(buf);
			return 0;
		}
		if (rc != -EAGAIN) {
			free(buf);
			return rc;
		}
	}
	/* Keep the order of our own messages: once one waits, all wait behind it. */
	struct sendq_ent *e = malloc(sizeof(*e));
	if (!e || c->nsendq >= CLU_SENDQ_MAX) {
		free(e);
		free(buf);
		log_warn("send queue full (%u messages): Corosync is not accepting messages",
			 c->nsendq);
		return -EBUSY;
	}
	e->buf = buf;
	e->len = len;
	STAILQ_INSERT_TAIL(&c->sendq, e, link);
	c->nsendq++;
	sendq_flush(c);
	return 0;
}

int clu_send_msg(struct clu *c, uint16_t type, const ProtobufCMessage *m)
{
	uint8_t *buf;
	size_t len;
	int rc = proto_pack(type, m, &buf, &len);

	if (rc < 0) {
		log_err("cannot pack a %s message: %s", proto_type_name(type), strerror(-rc));
		return rc;
	}
	return send_buf(c, buf, len);
}

/* ---- requests ---- */

void clu_request_complete(struct clu *c, uint64_t id, int rc)
{
	struct request *r;

	LIST_FOREACH (r, &c->requests, link)
		if (r->id == id) {
			LIST_REMOVE(r, link);
			clu_done_fn done = r->done;
			void *arg = r->arg;
			free(r);
			done(arg, rc);
			return;
		}
}

void clu_queue_discard(struct clu *c, const char *why)
{
	struct queued *q;

	while ((q = STAILQ_FIRST(&c->queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->queue, link);
		if (q->chg->origin == c->self.node)
			clu_request_complete(c, q->chg->request, -EAGAIN);
		vm__map_change__free_unpacked(q->chg, NULL);
		free(q);
	}
	if (c->nqueued)
		log_warn("%u change(s) delivered during the state transfer discarded: %s",
			 c->nqueued, why);
	c->nqueued = 0;
}

/* ---- applying ---- */

void clu_persist(struct clu *c)
{
	if (c->self.state_dir[0])
		(void)clu_map_save(&c->map, c->self.state_dir); /* logged */
}

void clu_apply_change(struct clu *c, const Vm__MapChange *chg)
{
	int rc;

	if (!clu_config_quorate(c))
		rc = -ENOTCONN;
	else
		rc = clu_map_apply(&c->map, chg);
	if (rc == 0) {
		log_info("map v%" PRIu64 ": change %d on %s from node %" PRIu32, c->map.version,
			 chg->op, chg->name, chg->origin);
		clu_persist(c);
	} else {
		log_debug("change %d on %s from node %" PRIu32 " rejected: %s", chg->op, chg->name,
			  chg->origin, strerror(-rc));
	}
	if (chg->origin == c->self.node)
		clu_request_complete(c, chg->request, rc);
	if (rc == 0)
		clu_notify(c);
}

void clu_deliver(struct clu *c, uint32_t from, const void *buf, size_t len)
{
	const uint8_t *payload;
	uint16_t type;
	size_t plen;
	int rc = proto_env_check(buf, len, &type, &payload, &plen);

	if (rc == 0 && type != PROTO_MAP_CHANGE && type != PROTO_SYNC_VERSION &&
	    type != PROTO_SYNC_MAP && type != PROTO_LOAD_REPORT && type != PROTO_REGION_INTENT)
		rc = -ENOMSG; /* a known envelope type that does not belong on CPG */
	if (rc < 0) {
		if (rc == -ENOMSG)
			c->drops.unknown++;
		else if (rc == -EMSGSIZE)
			c->drops.oversized++;
		else
			c->drops.malformed++;
		log_ratelimited(LOG_WARNING,
				"dropped a message of %zu bytes from node %" PRIu32 ": %s", len,
				from,
				rc == -ENOMSG	  ? "unknown type"
				: rc == -EMSGSIZE ? "oversized"
						  : "bad envelope");
		return;
	}
	/* Unpack into owned memory: \p buf is CPG's and dies with this call. */
	switch (type) {
	case PROTO_MAP_CHANGE: {
		Vm__MapChange *m = vm__map_change__unpack(NULL, plen, payload);
		if (!m)
			break;
		if (m->origin != from) {
			vm__map_change__free_unpacked(m, NULL);
			break;
		}
		clu_sync_on_change(c, m); /* takes m */
		return;
	}
	case PROTO_SYNC_VERSION: {
		Vm__SyncVersion *m = vm__sync_version__unpack(NULL, plen, payload);
		if (!m)
			break;
		clu_sync_on_version(c, from, m);
		vm__sync_version__free_unpacked(m, NULL);
		return;
	}
	case PROTO_SYNC_MAP: {
		Vm__SyncMap *m = vm__sync_map__unpack(NULL, plen, payload);
		if (!m)
			break;
		clu_sync_on_map(c, from, m);
		vm__sync_map__free_unpacked(m, NULL);
		return;
	}
	case PROTO_LOAD_REPORT: {
		Vm__LoadReport *m = vm__load_report__unpack(NULL, plen, payload);
		if (!m)
			break;
		clu_sync_on_load(c, from, m);
		vm__load_report__free_unpacked(m, NULL);
		return;
	}
	case PROTO_REGION_INTENT: {
		Vm__RegionIntent *m = vm__region_intent__unpack(NULL, plen, payload);
		if (!m)
			break;
		clu_regions_on_msg(c, from, m);
		vm__region_intent__free_unpacked(m, NULL);
		return;
	}
	}
	c->drops.malformed++;
	log_ratelimited(LOG_WARNING, "dropped a %s message from node %" PRIu32 ": not unpackable",
			proto_type_name(type), from);
}

void clu_quorum(struct clu *c, bool quorate, uint32_t expected_votes)
{
	bool was = c->quorate;

	c->quorate = quorate;
	c->expected_votes = expected_votes;
	if (was && !quorate) {
		/* From now on the map may move on without us. */
		c->stale = true;
		log_warn("quorum lost: no map change, no I/O");
	} else if (!was && quorate) {
		log_notice("quorate (%" PRIu32 " expected votes)", expected_votes);
	}
	if (was != quorate)
		clu_notify(c);
}

void clu_disconnected(struct clu *c)
{
	c->nmembers = 0;
	clu_queue_discard(c, "Corosync connection lost");
	c->state = CLU_STATE_JOINING;
	c->quorate = false;
	c->stale = true;
	clu_notify(c);
}

/* ---- periodic work ---- */

static void send_load(struct clu *c)
{
	Vm__LoadReport lr = VM__LOAD_REPORT__INIT;
	uint64_t bytes;

	lr.node = c->self.node;
	lr.read_ops = c->load_read;
	lr.write_ops = c->load_write;
	lr.volumes = clu_map_owned(&c->map, c->self.node, &bytes);
	lr.bytes = c->load_bytes;
	lr.version = c->map.version;
	lr.digest = clu_map_digest(&c->map);
	lr.round = c->round;
	lr.synced = c->state == CLU_STATE_SYNCED;
	/* On the stack: 64 entries at most, and no allocation to fail every 3 s. */
	Vm__BackendSeen bs[CLU_MAX_BACKENDS], *pbs[CLU_MAX_BACKENDS];
	for (unsigned i = 0; i < c->nself_seen; i++) {
		vm__backend_seen__init(&bs[i]);
		bs[i].id = c->self_seen[i].id;
		bs[i].state = c->self_seen[i].state;
		bs[i].size = c->self_seen[i].size;
		pbs[i] = &bs[i];
	}
	lr.n_backends = c->nself_seen;
	lr.backends = pbs;
	(void)clu_send_msg(c, PROTO_LOAD_REPORT, &lr.base);
}

static void tick(void *arg)
{
	struct clu *c = arg;
	struct request *r, *tmp;

	c->tick_timer = c->ops->timer_add(c->ctx, CLU_TICK_MS, tick, c);
	c->ticks++;
	LIST_FOREACH_SAFE (r, &c->requests, link, tmp) {
		if (r->ticks_left-- > 0)
			continue;
		LIST_REMOVE(r, link);
		r->done(r->arg, -ETIMEDOUT);
		free(r);
	}
	clu_regions_tick(c);
	if (c->ticks % CLU_LOAD_TICKS == 0 && c->state != CLU_STATE_JOINING &&
	    STAILQ_EMPTY(&c->sendq))
		send_load(c);
}

/* ---- requests ---- */

/* Least loaded members: fewest owned bytes, then fewest volumes, then lowest id. */
static void place(const struct clu *c, uint32_t *owner, uint32_t *partner)
{
	uint32_t best[2] = {0, 0};
	uint64_t bb[2] = {UINT64_MAX, UINT64_MAX};
	unsigned bn[2] = {UINT32_MAX, UINT32_MAX};

	for (unsigned i = 0; i < c->nmembers; i++) {
		uint64_t bytes;
		unsigned n = clu_map_owned(&c->map, c->members[i], &bytes);
		uint32_t node = c->members[i];
		if (*owner && node == *owner)
			continue;
		for (int k = 0; k < 2; k++) {
			if (bytes < bb[k] || (bytes == bb[k] && n < bn[k])) {
				if (k == 0) {
					best[1] = best[0], bb[1] = bb[0], bn[1] = bn[0];
				}
				best[k] = node, bb[k] = bytes, bn[k] = n;
				break;
			}
		}
	}
	if (!*owner) {
		*owner = best[0];
		*partner = best[1];
	} else {
		*partner = best[0];
	}
}

int clu_submit(struct clu *c, Vm__MapChange *chg, clu_done_fn done, void *arg)
{
	if (!clu_serving(c))
		return -ENOTCONN;
	if ((chg->op == VM__CHANGE_OP__VOLUME_CREATE || chg->op == VM__CHANGE_OP__OWNER_MOVE)) {
		if (chg->owner && !clu_is_member(c, chg->owner))
			return -ENOENT;
		place(c, &chg->owner, &chg->partner);
	}
	struct request *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->id = ++c->next_request;
	r->done = done;
	r->arg = arg;
	r->ticks_left = CLU_REQUEST_TIMEOUT_MS / CLU_TICK_MS;
	chg->origin = c->self.node;
	chg->request = r->id;
	int rc = clu_send_msg(c, PROTO_MAP_CHANGE, &chg->base);
	if (rc < 0) {
		free(r);
		return rc;
	}
	LIST_INSERT_HEAD(&c->requests, r, link);
	return 0;
}

void clu_cancel(struct clu *c, void *arg)
{
	struct request *r, *tmp;

	LIST_FOREACH_SAFE (r, &c->requests, link, tmp)
		if (r->arg == arg) {
			LIST_REMOVE(r, link);
			free(r);
		}
}

int clu_send_bad(struct clu *c, const char *kind)
{
	size_t plen = 64;
	uint16_t type = PROTO_LOAD_REPORT;

	if (strcmp(kind, "unknown") == 0)
		type = 999;
	else if (strcmp(kind, "oversized") == 0)
		plen = proto_max_payload(PROTO_LOAD_REPORT) + 1;
	else if (strcmp(kind, "corrupt") != 0)
		return -EINVAL;
	uint8_t *buf = calloc(1, PROTO_ENV_LEN + plen);
	if (!buf)
		return -ENOMEM;
	memset(buf + PROTO_ENV_LEN, 0xff, plen);
	proto_env_put((struct proto_env *)(void *)buf, type, buf + PROTO_ENV_LEN, plen);
	if (strcmp(kind, "corrupt") == 0)
		buf[PROTO_ENV_LEN] ^= 1; /* CRC mismatch */
	return send_buf(c, buf, PROTO_ENV_LEN + plen);
}

/* ---- life cycle and views ---- */

struct clu *clu_create(const struct clu_ops *ops, void *ops_ctx, const struct clu_self *self,
		       struct clu_map *map, clu_changed_fn changed, void *changed_arg)
{
	struct clu *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ops = ops;
	c->ctx = ops_ctx;
	c->self = *self;
	c->map = *map;
	clu_map_init(map);
	c->changed = changed;
	c->changed_arg = changed_arg;
	c->state = CLU_STATE_JOINING;
	c->stale = true;
	c->backoff_ms = CLU_BACKOFF_MIN_MS;
	STAILQ_INIT(&c->queue);
	STAILQ_INIT(&c->sendq);
	LIST_INIT(&c->requests);
	clu_regions_init(&c->regions);
	struct peer *p = clu_peer_get(c, self->node, true);
	snprintf(p->name, sizeof(p->name), "%s", self->name);
	snprintf(p->portal, sizeof(p->portal), "%s", self->portal);
	c->tick_timer = ops->timer_add(ops_ctx, CLU_TICK_MS, tick, c);
	return c;
}

void clu_destroy(struct clu *c)
{
	struct request *r;
	struct sendq_ent *e;

	if (!c)
		return;
	if (c->tick_timer)
		c->ops->timer_del(c->ctx, c->tick_timer);
	if (c->retry_timer)
		c->ops->timer_del(c->ctx, c->retry_timer);
	c->nqueued = 0;
	clu_queue_discard(c, "shutdown");
	while ((r = LIST_FIRST(&c->requests)) != NULL) {
		LIST_REMOVE(r, link);
		r->done(r->arg, -ECANCELED);
		free(r);
	}
	clu_regions_fini(c);
	while ((e = STAILQ_FIRST(&c->sendq)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->sendq, link);
		free(e->buf);
		free(e);
	}
	clu_map_clear(&c->map);
	free(c);
}

void clu_set_nodeid(struct clu *c, uint32_t node)
{
	struct peer *p;

	if (c->self.node == node)
		return;
	c->self.node = node;
	p = clu_peer_get(c, node, true);
	if (p) {
		snprintf(p->name, sizeof(p->name), "%s", c->self.name);
		snprintf(p->portal, sizeof(p->portal), "%s", c->self.portal);
	}
}

const struct clu_map *clu_map(const struct clu *c)
{
	return &c->map;
}

bool clu_serving(const struct clu *c)
{
	return c->quorate && !c->stale && c->state != CLU_STATE_JOINING;
}

bool clu_quorate(const struct clu *c)
{
	return c->quorate;
}

enum clu_sync_state clu_state(const struct clu *c)
{
	return c->state;
}

uint32_t clu_nodeid(const struct clu *c)
{
	return c->self.node;
}

const char *clu_peer_portal(const struct clu *c, uint32_t node)
{
	const struct peer *p = clu_peer_get((struct clu *)c, node, false);
	return p ? p->portal : "";
}

const char *clu_peer_name(const struct clu *c, uint32_t node)
{
	const struct peer *p = clu_peer_get((struct clu *)c, node, false);
	return p ? p->name : "";
}

uint32_t clu_member_lookup(const struct clu *c, const char *s)
{
	char *end;
	unsigned long id = strtoul(s, &end, 10);

	for (unsigned i = 0; i < c->nmembers; i++) {
		const struct peer *p = clu_peer_get((struct clu *)c, c->members[i], false);
		if ((p && strcmp(p->name, s) == 0) || (*s && !*end && c->members[i] == id))
			return c->members[i];
	}
	return 0;
}

const struct clu_drops *clu_drops(const struct clu *c)
{
	return &c->drops;
}

void clu_set_load(struct clu *c, uint64_t read_ops, uint64_t write_ops, uint64_t bytes)
{
	c->load_read = read_ops;
	c->load_write = write_ops;
	c->load_bytes = bytes;
}

void clu_set_backends_seen(struct clu *c, const struct clu_backend_seen *seen, unsigned n)
{
	c->nself_seen = UTIL_MIN(n, (unsigned)CLU_MAX_BACKENDS);
	memcpy(c->self_seen, seen, c->nself_seen * sizeof(*seen));
}

int clu_backend_seen(const struct clu *c, uint32_t node, uint32_t id, struct clu_backend_seen *out,
		     uint32_t *age_s)
{
	const struct clu_backend_seen *list = c->self_seen;
	unsigned n = c->nself_seen;

	if (!clu_is_member(c, node))
		return -ENOENT;
	*age_s = 0;
	if (node != c->self.node) {
		const struct peer *p = clu_peer_get((struct clu *)c, node, false);
		if (!p || !p->seen_valid)
			return -ENODATA;
		list = p->seen;
		n = p->nseen;
		*age_s = (c->ticks - p->seen_tick) * (CLU_TICK_MS / 1000);
	}
	for (unsigned i = 0; i < n; i++)
		if (list[i].id == id) {
			*out = list[i];
			return 0;
		}
	return -ENODATA;
}

int clu_status(const struct clu *c, Vm__CtlStatus *st)
{
	vm__ctl_status__init(st);
	st->node = c->self.node;
	st->quorate = c->quorate;
	st->state = (char *)clu_state_str(c->state);
	st->version = c->map.version;
	st->dropped = c->drops.malformed + c->drops.unknown + c->drops.oversized;
	st->dropped_unknown = c->drops.unknown;
	st->dropped_oversized = c->drops.oversized;
	st->dropped_malformed = c->drops.malformed;
	st->send_retries = c->send_retries;
	if (!c->nmembers)
		return 0;
	Vm__CtlMember *mm = calloc(c->nmembers, sizeof(*mm));
	st->members = calloc(c->nmembers, sizeof(*st->members));
	if (!mm || !st->members) {
		free(mm);
		free(st->members);
		st->members = NULL;
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c->nmembers; i++) {
		const struct peer *p = clu_peer_get((struct clu *)c, c->members[i], false);
		Vm__CtlMember *m = &mm[i];
		vm__ctl_member__init(m);
		m->node = c->members[i];
		m->local = m->node == c->self.node;
		if (p) {
			m->name = (char *)p->name;
			m->portal = (char *)p->portal;
			m->version = m->local ? c->map.version : p->version;
			m->read_ops = p->read_ops;
			m->write_ops = p->write_ops;
			m->bytes = p->bytes;
		}
		m->volumes = clu_map_owned(&c->map, m->node, NULL);
		st->members[i] = m;
	}
	st->n_members = c->nmembers;
	return 0;
}

void clu_status_free(Vm__CtlStatus *st)
{
	if (st->n_members)
		free(st->members[0]);
	free(st->members);
	st->members = NULL;
	st->n_members = 0;
}
