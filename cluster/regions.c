/*
 * regions.c: write intent records of mirrored volumes (issue 6). The owner
 * of a mirrored volume multicasts which regions may differ between its legs
 * (RegionIntent: FULL, SET, CLEAR); every engine keeps the last record of
 * each volume's owner, so that a new owner after a crash resyncs only those
 * regions instead of a whole leg. The owner's side is in vol/vol_intent.c
 * (what to record, when a write waits) and engine/ctl_backends.c (the glue).
 *
 * Why a record can be trusted, and when it cannot:
 * - CPG delivers in agreed order, and members that go from one
 *   configuration to the same next one deliver the same messages in the
 *   first (virtual synchrony). The owner writes a region only once its own
 *   SET came back in a quorate configuration; the members that took part in
 *   that configuration and carry on together (the majority that takes the
 *   volume over) have it too.
 * - A member that was apart from the owner for a while (from its point of
 *   view, the owner joins its configuration again) may have missed
 *   messages: its record becomes incomplete until the owner's next FULL,
 *   which the owner sends after every configuration change with a join.
 * - A record is the owner's: messages from any other engine are ignored
 *   (a late message of an old owner after an owner move, for instance).
 *   When the map names another owner, the record stays, frozen, for the new
 *   owner to read when it opens the volume; that engine's first message
 *   (its FULL at open) replaces it. A second owner change before that makes
 *   it incomplete (the engine in between may have written).
 *
 * Everything here runs on the control thread, inside the state machine.
 */
#define UTIL_LOG_TAG "regions"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

/* ---- records ---- */

static struct region_rec *rec_find(const struct clu_regions *r, const char *name)
{
	for (unsigned i = 0; i < r->nrecs; i++)
		if (strcmp(r->recs[i].name, name) == 0)
			return &r->recs[i];
	return NULL;
}

static struct region_rec *rec_add(struct clu_regions *r, const char *name)
{
	struct region_rec *x;

	if (r->nrecs == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 8;
		x = realloc(r->recs, cap * sizeof(*x));
		if (!x)
			return NULL;
		r->recs = x;
		r->cap = cap;
	}
	x = &r->recs[r->nrecs++];
	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "%s", name);
	return x;
}

static void rec_del(struct clu_regions *r, struct region_rec *x)
{
	free(x->words);
	*x = r->recs[--r->nrecs];
}

/* Start over as \p owner's record, empty and incomplete. */
static void rec_reset(struct region_rec *x, uint32_t owner)
{
	x->owner = owner;
	x->successor = 0;
	x->complete = false;
	x->full_open = false;
	x->count = 0;
	if (x->words)
		memset(x->words, 0, x->nwords * sizeof(*x->words));
}

static int rec_fit(struct region_rec *x, size_t n)
{
	uint64_t *w;

	if (x->nwords >= n)
		return 0;
	w = realloc(x->words, n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + x->nwords, 0, (n - x->nwords) * sizeof(*w));
	x->words = w;
	x->nwords = n;
	return 0;
}

/* Words of \p v's bitmap: one bit per region. */
static size_t vol_words(const struct clu_volume *v)
{
	uint64_t nregions = (v->size + v->region_size - 1) / v->region_size;

	return (size_t)((nregions + 63) / 64);
}

static bool is_mirror(const struct clu_volume *v)
{
	return v && v->nlegs == 2 && v->region_size;
}

void clu_regions_init(struct clu_regions *r)
{
	memset(r, 0, sizeof(*r));
	LIST_INIT(&r->waits);
}

/* ---- this engine's SETs waiting for their delivery ---- */

static void wait_complete(struct clu *c, uint64_t seq, int rc)
{
	struct region_wait *w;

	LIST_FOREACH (w, &c->regions.waits, link)
		if (w->seq == seq) {
			LIST_REMOVE(w, link);
			clu_done_fn done = w->done;
			void *arg = w->arg;
			free(w);
			done(arg, rc);
			return;
		}
}

static void waits_fail(struct clu *c, int rc)
{
	struct region_wait *w;

	while ((w = LIST_FIRST(&c->regions.waits)) != NULL) {
		LIST_REMOVE(w, link);
		clu_done_fn done = w->done;
		void *arg = w->arg;
		free(w);
		done(arg, rc);
	}
}

void clu_regions_fini(struct clu *c)
{
	struct clu_regions *r = &c->regions;

	waits_fail(c, -ECANCELED);
	while (r->nrecs)
		rec_del(r, &r->recs[r->nrecs - 1]);
	free(r->recs);
	r->recs = NULL;
	r->cap = 0;
}

void clu_regions_tick(struct clu *c)
{
	struct region_wait *w, *tmp;

	LIST_FOREACH_SAFE (w, &c->regions.waits, link, tmp) {
		if (w->ticks_left-- > 0)
			continue;
		LIST_REMOVE(w, link);
		w->done(w->arg, -ETIMEDOUT);
		free(w);
	}
}

/* ---- delivery ---- */

/* Checks that need nothing but the message and the map; -EBADMSG when bad. */
static int msg_check(const Vm__RegionIntent *m, uint32_t from, const struct clu_volume *v)
{
	size_t max = vol_words(v);

	if (m->owner != from || m->n_index != m->n_bits || m->n_index > CLU_REGIONS_PART_WORDS ||
	    m->region_size != v->region_size ||
	    (m->op != VM__REGION_OP__REGION_FULL && m->op != VM__REGION_OP__REGION_SET &&
	     m->op != VM__REGION_OP__REGION_CLEAR))
		return -EBADMSG;
	for (size_t i = 0; i < m->n_index; i++)
		if (m->index[i] >= max || (i && m->index[i] <= m->index[i - 1]))
			return -EBADMSG;
	return 0;
}

static void apply_words(struct region_rec *x, const Vm__RegionIntent *m, bool set)
{
	for (size_t i = 0; i < m->n_index; i++) {
		uint64_t *w = &x->words[m->index[i]];
		uint64_t old = *w;

		*w = set ? old | m->bits[i] : old & ~m->bits[i];
		x->count += (uint64_t)__builtin_popcountll(*w);
		x->count -= (uint64_t)__builtin_popcountll(old);
	}
}

/* Apply \p m, from the volume's owner, to \p x. */
static void apply(struct region_rec *x, const Vm__RegionIntent *m)
{
	switch (m->op) {
	case VM__REGION_OP__REGION_SET:
		apply_words(x, m, true);
		break;
	case VM__REGION_OP__REGION_CLEAR:
		apply_words(x, m, false);
		break;
	case VM__REGION_OP__REGION_FULL:
		if (m->part == 0) {
			memset(x->words, 0, x->nwords * sizeof(*x->words));
			x->count = 0;
			x->complete = false;
			x->full_open = true;
			x->full_next = 0;
		}
		if (!x->full_open || m->part != x->full_next) {
			/* A part is missing: wait for the owner's next FULL. */
			x->full_open = false;
			break;
		}
		x->full_next++;
		apply_words(x, m, true);
		if (m->last) {
			x->full_open = false;
			x->complete = true;
		}
		break;
	default:
		break;
	}
}

void clu_regions_on_msg(struct clu *c, uint32_t from, const Vm__RegionIntent *m)
{
	struct clu_regions *r = &c->regions;
	const struct clu_volume *v = clu_map_find(&c->map, m->volume ? m->volume : "");
	bool mine = from == c->self.node && m->op == VM__REGION_OP__REGION_SET;
	struct region_rec *x;
	int rc = 0;

	if (!is_mirror(v)) {
		/* Not (or not yet: a joiner's map) a mirrored volume here. */
		r->stats.stale++;
		rc = -ESTALE;
		goto out;
	}
	if (msg_check(m, from, v) < 0) {
		r->stats.bad++;
		c->drops.malformed++;
		log_ratelimited(LOG_WARNING,
				"dropped a region-intent message of node %" PRIu32
				" for %s: invalid",
				from, v->name);
		rc = -EBADMSG;
		goto out;
	}
	if (v->owner != from) {
		r->stats.stale++; /* an old owner's late message */
		rc = -ESTALE;
		goto out;
	}
	x = rec_find(r, v->name);
	if (!x && !(x = rec_add(r, v->name))) {
		rc = -ENOMEM;
		goto out;
	}
	if (x->owner != from || x->successor)
		rec_reset(x, from); /* the new owner speaks: the old record is done */
	if (rec_fit(x, vol_words(v)) < 0) {
		/* Cannot hold it: better no record than a wrong one. */
		rec_del(r, x);
		rc = -ENOMEM;
		goto out;
	}
	apply(x, m);
	r->stats.applied++;
	/* Delivered in a minority configuration: the majority may not have it. */
	if (!clu_config_quorate(c))
		rc = -ENOTCONN;
out:
	if (mine)
		wait_complete(c, m->seq, rc);
}

/* ---- membership and map ---- */

static bool in_list(const uint32_t *l, unsigned n, uint32_t node)
{
	for (unsigned i = 0; i < n; i++)
		if (l[i] == node)
			return true;
	return false;
}

void clu_regions_update(struct clu *c)
{
	struct clu_regions *r = &c->regions;
	bool joined = false;

	/*
	 * Members that joined (as this engine sees it): while apart, their
	 * messages did not reach us, so their records may lack some.
	 */
	for (unsigned i = 0; i < c->nmembers; i++) {
		if (in_list(r->members, r->nmembers, c->members[i]))
			continue;
		joined = true;
		for (unsigned k = 0; k < r->nrecs; k++)
			if (r->recs[k].owner == c->members[i] && r->recs[k].complete) {
				r->recs[k].complete = false;
				log_info("%s: write intent record of node %" PRIu32
					 " incomplete until its next FULL (it joined)",
					 r->recs[k].name, c->members[i]);
			}
	}
	if (joined)
		r->joins++;
	memcpy(r->members, c->members, c->nmembers * sizeof(*c->members));
	r->nmembers = c->nmembers;
	/* Out of the group: no SET of ours will come back. */
	if (!in_list(c->members, c->nmembers, c->self.node))
		waits_fail(c, -ENOTCONN);

	for (unsigned k = 0; k < r->nrecs;) {
		struct region_rec *x = &r->recs[k];
		const struct clu_volume *v = clu_map_find(&c->map, x->name);

		if (!is_mirror(v)) {
			rec_del(r, x); /* deleted (a new volume of that name starts afresh) */
			continue;
		}
		if (v->owner != x->owner && !x->successor)
			x->successor = v->owner; /* frozen for the new owner */
		else if (x->successor && v->owner != x->successor)
			x->complete = false; /* moved on again without a word */
		k++;
	}
}

/* ---- sending ---- */

static int send_part(struct clu *c, Vm__RegionIntent *m, uint32_t *idx, uint64_t *bits, size_t n)
{
	m->seq = ++c->regions.next_seq;
	m->index = idx;
	m->n_index = n;
	m->bits = bits;
	m->n_bits = n;
	return clu_send_msg(c, PROTO_REGION_INTENT, &m->base);
}

int clu_regions_send(struct clu *c, const char *volume, Vm__RegionOp op, const uint64_t *words,
		     size_t nwords, clu_done_fn done, void *arg)
{
	const struct clu_volume *v = clu_map_find(&c->map, volume);
	Vm__RegionIntent m = VM__REGION_INTENT__INIT;
	struct region_wait *w = NULL;
	uint32_t *idx;
	uint64_t *bits;
	size_t n = 0, i = 0;
	int rc = 0;

	if (op != VM__REGION_OP__REGION_FULL && op != VM__REGION_OP__REGION_SET &&
	    op != VM__REGION_OP__REGION_CLEAR)
		return -EINVAL;
	if (op == VM__REGION_OP__REGION_SET && !done)
		return -EINVAL;
	if (clu_fenced(c))
		return -ENOTCONN;
	if (!is_mirror(v) || v->owner != c->self.node)
		return -ENOENT;
	nwords = UTIL_MIN(nwords, vol_words(v));
	idx = malloc(CLU_REGIONS_PART_WORDS * sizeof(*idx));
	bits = malloc(CLU_REGIONS_PART_WORDS * sizeof(*bits));
	if (op == VM__REGION_OP__REGION_SET)
		w = calloc(1, sizeof(*w));
	if (!idx || !bits || (op == VM__REGION_OP__REGION_SET && !w)) {
		rc = -ENOMEM;
		goto out;
	}
	m.volume = (char *)v->name;
	m.owner = c->self.node;
	m.op = op;
	m.region_size = v->region_size;
	/* Parts of at most CLU_REGIONS_PART_WORDS words; at least one part. */
	do {
		while (i < nwords && n < CLU_REGIONS_PART_WORDS) {
			if (words[i]) {
				idx[n] = (uint32_t)i;
				bits[n++] = words[i];
			}
			i++;
		}
		while (i < nwords && !words[i])
			i++; /* so that "last" is known */
		m.last = i >= nwords;
		if (m.last && w) {
			/* Registered before the send: its delivery may come at once. */
			w->seq = c->regions.next_seq + 1;
			w->ticks_left = CLU_REQUEST_TIMEOUT_MS / CLU_TICK_MS;
			w->done = done;
			w->arg = arg;
			LIST_INSERT_HEAD(&c->regions.waits, w, link);
		}
		if ((rc = send_part(c, &m, idx, bits, n)) < 0) {
			if (m.last && w)
				LIST_REMOVE(w, link);
			break;
		}
		if (m.last)
			w = NULL; /* the list has it */
		m.part++;
		n = 0;
	} while (!m.last);
out:
	free(w);
	free(idx);
	free(bits);
	return rc;
}

/* ---- views ---- */

int clu_regions_get(const struct clu *c, const char *volume, struct clu_region_view *out,
		    uint64_t *words, size_t nwords)
{
	const struct region_rec *x = rec_find(&c->regions, volume);

	if (!x)
		return -ENOENT;
	out->owner = x->owner;
	out->successor = x->successor;
	out->complete = x->complete;
	out->count = x->count;
	out->nwords = x->nwords;
	if (words) {
		size_t k = UTIL_MIN(nwords, x->nwords);
		memcpy(words, x->words, k * sizeof(*words));
		memset(words + k, 0, (nwords - k) * sizeof(*words));
	}
	return 0;
}

uint64_t clu_regions_joins(const struct clu *c)
{
	return c->regions.joins;
}

const struct clu_regions_stats *clu_regions_stats(const struct clu *c)
{
	return &c->regions.stats;
}
