/*
 * vol_intent.c: the write intent of a mirrored volume: which regions may
 * differ between its legs, recorded outside this engine (through the
 * owner's hook: the cluster replicates it to the partner) before any leg is
 * written there, so that whoever takes the volume over after a crash copies
 * only those regions instead of a whole leg.
 *
 * Why before: a RAID1 write goes to both legs at once, and the owner may die
 * after one leg has it and before the other does. Nothing is wrong with
 * either content (the write was not acknowledged), but the legs must not
 * keep both; the new owner can only know where to look if the region was
 * recorded first. So the first write to a region not yet recorded waits
 * (on in->waiting, no allocation) for a SET round to be confirmed; writes
 * to recorded regions go at once, and reads never wait. One round is in
 * flight at a time; regions touched meanwhile are batched into the next.
 *
 * Regions leave the record when idle: at each sweep (vol_virt_intent_tick(),
 * every VOL_INTENT_IDLE_MS), a region not written since the previous sweep,
 * with no write in flight and not dirty (a dirty region's legs do differ:
 * it stays until the resync has copied it) goes out with one CLEAR that
 * nobody waits for. A write to it before that CLEAR is handed over takes it
 * straight back.
 *
 * Order: the record must apply SET, CLEAR and FULL in the order they were
 * decided. Decisions are taken under vv->lock, but the hook is called
 * without it; so one thread at a time hands work to the hook (the
 * "emitter", in->emitting), taking each item under the lock right before
 * the call, CLEARs first: a region cleared and then written again is always
 * cleared before it is set again.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

/* ---- bitmaps ---- */

static int map_grow(uint64_t **m, size_t old, size_t n)
{
	uint64_t *x = realloc(*m, n * sizeof(*x));

	if (!x)
		return -ENOMEM;
	memset(x + old, 0, (n - old) * sizeof(*x));
	*m = x;
	return 0;
}

/*
 * The bitmaps cover every region of the volume: vol_virt_grow() (which only
 * grows vv->dirty) leaves them short until the next request needs them.
 * Locked, except at open. 0 or -ENOMEM (nothing lost: retried next time).
 */
static int intent_fit_locked(struct vol_virt *vv)
{
	struct virt_intent *in = &vv->in;
	size_t n = vv->dirty_words;

	if (in->nwords >= n)
		return 0;
	if (map_grow(&in->set, in->nwords, n) < 0 || map_grow(&in->pend, in->nwords, n) < 0 ||
	    map_grow(&in->next, in->nwords, n) < 0 || map_grow(&in->clear, in->nwords, n) < 0 ||
	    map_grow(&in->touched, in->nwords, n) < 0)
		return -ENOMEM;
	in->nwords = n;
	return 0;
}

int virt_intent_init(struct vol_virt *vv, const struct vol_virt_params *p)
{
	struct virt_intent *in = &vv->in;

	TAILQ_INIT(&in->waiting);
	/* One leg: nothing can differ, nothing to record. */
	if (!p || !p->intent_cb || vv->nlegs < 2)
		return 0;
	in->fn = p->intent_cb;
	in->arg = p->intent_arg;
	return intent_fit_locked(vv);
}

void virt_intent_fini(struct vol_virt *vv)
{
	struct virt_intent *in = &vv->in;

	free(in->set);
	free(in->pend);
	free(in->next);
	free(in->clear);
	free(in->touched);
	free(in->out);
}

/* Region \p r is to be recorded. Returns true when it already is. Locked. */
static bool want_region_locked(struct virt_intent *in, uint64_t r)
{
	size_t w = (size_t)(r / 64);
	uint64_t b = 1ull << (r % 64);

	if (in->set[w] & b)
		return true;
	if (in->clear[w] & b) {
		/* Its CLEAR has not left: the record still has it. */
		in->clear[w] &= ~b;
		in->nclear--;
		in->set[w] |= b;
		in->nset++;
		return true;
	}
	if (!(in->pend[w] & b) && !(in->next[w] & b)) {
		in->next[w] |= b;
		in->nnext++;
	}
	return false;
}

/*
 * A sequential stream (writes that each start where the previous one
 * ended) soon needs the regions after it. Asked for ahead, they are
 * recorded before the stream gets there, so it never stops at a region
 * boundary to wait for a round; and asked for in chunks (INTENT_AHEAD
 * regions, again only once the stream is half-way through them), so that a
 * stream costs one message per INTENT_AHEAD / 2 regions, not one per region.
 * Messages are what a write intent costs: Corosync keeps its token rotating
 * as long as they keep coming (measured in the lab: one SET per 1 MiB
 * region at 200 MB/s kept the three Corosync daemons at most of a core and
 * halved a cold 128 KiB sequential write). Random writes hardly ever
 * continue one another INTENT_STREAM_RUN times in a row, so they get
 * nothing ahead. The price: up to INTENT_AHEAD regions a stream never wrote
 * stay recorded until they are idle like the others. stream_ahead() returns
 * how many regions after \p last to ask for. Locked.
 */
#define INTENT_AHEAD	  16
#define INTENT_STREAM_RUN 3 /* writes in a row that make a stream */

static bool recorded_locked(const struct virt_intent *in, uint64_t r)
{
	size_t w = (size_t)(r / 64);
	uint64_t b = 1ull << (r % 64);

	return ((in->set[w] | in->pend[w] | in->next[w] | in->clear[w]) & b) != 0;
}

static unsigned stream_ahead(struct vol_virt *vv, uint64_t off, uint64_t len, uint64_t last)
{
	struct virt_intent *in = &vv->in;
	unsigned i, nslots = UTIL_ARRAY_SIZE(in->stream_end);
	uint64_t n;

	for (i = 0; i < nslots; i++)
		if (off && in->stream_end[i] == off)
			break;
	if (i == nslots) {
		i = in->stream_slot++ % nslots; /* a new one, maybe */
		in->stream_run[i] = 0;
	} else if (in->stream_run[i] < UINT8_MAX) {
		in->stream_run[i]++;
	}
	in->stream_end[i] = off + len;
	/* Once or twice may be chance (random writes in a small area). */
	if (in->stream_run[i] < INTENT_STREAM_RUN)
		return 0;
	n = UTIL_MIN((uint64_t)INTENT_AHEAD, vv->nregions - 1 - last);
	if (n == 0 || recorded_locked(in, last + (n + 1) / 2))
		return 0;
	return (unsigned)n;
}

bool virt_intent_admit_locked(struct vol_virt *vv, struct virt_parent *p, uint64_t off,
			      uint64_t len, int *rc)
{
	struct virt_intent *in = &vv->in;
	uint64_t first, last;
	bool ok = true;

	*rc = 0;
	if (!in->fn || len == 0)
		return true;
	if ((*rc = intent_fit_locked(vv)) < 0)
		return false;
	first = off / vv->region_size;
	last = UTIL_MIN((off + len - 1) / vv->region_size, vv->nregions - 1);
	for (uint64_t r = first; r <= last; r++) {
		in->touched[r / 64] |= 1ull << (r % 64);
		if (!want_region_locked(in, r))
			ok = false;
	}
	for (unsigned k = stream_ahead(vv, off, len, last); k > 0; k--) {
		/* Touched: kept until the stream gets there, not swept at once. */
		in->touched[(last + k) / 64] |= 1ull << ((last + k) % 64);
		if (!want_region_locked(in, last + k))
			in->kick = true; /* nobody waits for them: pumped once unlocked */
	}
	if (ok)
		return true;
	p->where = VIRT_INTENT;
	TAILQ_INSERT_TAIL(&in->waiting, p, link);
	in->nwaiting++;
	in->waits++;
	return false;
}

void virt_intent_note_locked(struct vol_virt *vv, uint64_t r)
{
	struct virt_intent *in = &vv->in;

	if (!in->fn)
		return;
	if (intent_fit_locked(vv) < 0) {
		log_ratelimited(LOG_ERR, "volume %s: out of memory recording dirty region %" PRIu64,
				vv->v->name, r);
		return;
	}
	if (!want_region_locked(in, r))
		in->kick = true; /* virt_report_events() pumps */
}

/* ---- the round's end ---- */

static void intent_fail_one(void *arg)
{
	struct vol_io *io = arg;
	struct virt_parent *p = virt_parent(io);

	/* Nothing reached a leg: the write simply did not happen. */
	vol_chan_defer_done(p->ch, io, -EIO);
}

static void intent_done(void *arg, int status)
{
	struct vol_virt *vv = arg;
	struct virt_intent *in = &vv->in;
	struct virt_parent_list wake;
	struct virt_parent *p;

	TAILQ_INIT(&wake);
	pthread_mutex_lock(&vv->lock);
	in->round = false;
	for (size_t i = 0; i < in->nwords; i++) {
		uint64_t b = in->pend[i];

		if (!b)
			continue;
		if (status == 0) {
			in->set[i] |= b;
			in->nset += (uint64_t)__builtin_popcountll(b);
		} else {
			/* Recorded later (a dirty region among them must be). */
			b &= ~in->next[i];
			in->next[i] |= b;
			in->nnext += (uint64_t)__builtin_popcountll(b);
		}
		in->pend[i] = 0;
	}
	if (status < 0)
		in->hold = true; /* no storm of rounds while the cluster refuses */
	TAILQ_CONCAT(&wake, &in->waiting, link);
	in->nwaiting = 0;
	pthread_mutex_unlock(&vv->lock);

	if (status == 0) {
		/* Those waiting for the next round queue up again behind it. */
		virt_resubmit_list(vv, &wake);
	} else {
		log_ratelimited(LOG_ERR,
				"volume %s: write intent not recorded (%s): the writes waiting "
				"for it fail",
				vv->v->name, strerror(-status));
		while ((p = TAILQ_FIRST(&wake)) != NULL) {
			TAILQ_REMOVE(&wake, p, link);
			p->where = VIRT_NONE;
			vol_chan_run_on(p->ch, intent_fail_one, virt_parent_io(p));
		}
	}
	virt_intent_pump(vv);
}

/* ---- handing work to the hook ---- */

static void or_into(uint64_t *dst, const uint64_t *a, const uint64_t *b, const uint64_t *c,
		    size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = a[i] | b[i] | c[i];
}

/* Put back what a refused call carried (locked). */
static void undo_locked(struct virt_intent *in, enum vol_intent_op op, size_t n)
{
	for (size_t i = 0; op != VOL_INTENT_FULL && i < n; i++) {
		uint64_t b = op == VOL_INTENT_SET ? in->pend[i] : in->out[i];

		if (op == VOL_INTENT_SET) {
			in->pend[i] = 0;
			b &= ~in->next[i];
			in->next[i] |= b;
			in->nnext += (uint64_t)__builtin_popcountll(b);
		} else {
			/* A region written again since waits for a SET anyway. */
			b &= ~(in->next[i] | in->pend[i] | in->set[i]);
			in->clear[i] |= b;
			in->nclear += (uint64_t)__builtin_popcountll(b);
		}
	}
	if (op == VOL_INTENT_SET)
		in->round = false;
	else if (op == VOL_INTENT_FULL)
		in->want_full = true;
	in->hold = true;
}

void virt_intent_pump(struct vol_virt *vv)
{
	struct virt_intent *in = &vv->in;

	if (!in->fn)
		return;
	for (;;) {
		enum vol_intent_op op;
		size_t n;
		int rc;

		pthread_mutex_lock(&vv->lock);
		if (in->emitting || intent_fit_locked(vv) < 0)
			goto out_unlock; /* the emitter loops and sees our work */
		n = in->nwords;
		if (in->out_words < n) {
			uint64_t *o = realloc(in->out, n * sizeof(*o));
			if (!o)
				goto out_unlock;
			in->out = o;
			in->out_words = n;
		}
		if (in->nclear) {
			op = VOL_INTENT_CLEAR;
			memcpy(in->out, in->clear, n * sizeof(*in->out));
			memset(in->clear, 0, n * sizeof(*in->clear));
			in->nclear = 0;
		} else if (in->want_full) {
			/* CLEARs went first: nothing is half cleared now. */
			op = VOL_INTENT_FULL;
			or_into(in->out, in->set, in->pend, in->next, n);
			in->want_full = false;
		} else if (!in->round && !in->hold && in->nnext) {
			op = VOL_INTENT_SET;
			memcpy(in->pend, in->next, n * sizeof(*in->pend));
			memcpy(in->out, in->next, n * sizeof(*in->out));
			memset(in->next, 0, n * sizeof(*in->next));
			in->nnext = 0;
			in->round = true;
			in->rounds++;
		} else {
			goto out_unlock;
		}
		in->emitting = true;
		pthread_mutex_unlock(&vv->lock);

		rc = in->fn(in->arg, vv->v, op, in->out, n,
			    op == VOL_INTENT_SET ? intent_done : NULL,
			    op == VOL_INTENT_SET ? vv : NULL);

		pthread_mutex_lock(&vv->lock);
		in->emitting = false;
		if (rc < 0) {
			undo_locked(in, op, n);
			pthread_mutex_unlock(&vv->lock);
			log_ratelimited(LOG_WARNING,
					"volume %s: write intent not handed over (%s): retried "
					"at the next tick",
					vv->v->name, strerror(-rc));
			return;
		}
		pthread_mutex_unlock(&vv->lock);
	}
out_unlock:
	pthread_mutex_unlock(&vv->lock);
}

/* ---- upkeep ---- */

static void touch_range_locked(struct vol_virt *vv, uint64_t off, uint64_t len)
{
	uint64_t last;

	if (len == 0)
		return;
	last = UTIL_MIN((off + len - 1) / vv->region_size, vv->in.nwords * 64 - 1);
	for (uint64_t r = off / vv->region_size; r <= last; r++)
		vv->in.touched[r / 64] |= 1ull << (r % 64);
}

/*
 * Clear the regions idle since the previous sweep (locked). A write in flight
 * keeps its regions whatever its age: a leg may not have it yet.
 */
static void sweep_locked(struct vol_virt *vv)
{
	struct virt_intent *in = &vv->in;
	struct virt_parent *p;
	size_t n = UTIL_MIN(in->nwords, vv->dirty_words);

	TAILQ_FOREACH (p, &vv->inflight, link) {
		struct vol_io *io = virt_parent_io(p);
		touch_range_locked(vv, io->offset, io->len);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t c = in->set[i] & ~in->touched[i] & ~vv->dirty[i];
		uint64_t k = (uint64_t)__builtin_popcountll(c);

		in->set[i] &= ~c;
		in->clear[i] |= c;
		in->nset -= k;
		in->nclear += k;
		in->cleared += k;
		in->touched[i] = 0;
	}
}

void vol_virt_intent_tick(struct vol *v, uint64_t now_ms)
{
	struct vol_virt *vv = v ? v->virt : NULL;

	if (!vv || !vv->in.fn)
		return;
	pthread_mutex_lock(&vv->lock);
	vv->in.hold = false;
	if (now_ms - vv->in.sweep_ms >= VOL_INTENT_IDLE_MS && intent_fit_locked(vv) == 0) {
		sweep_locked(vv);
		vv->in.sweep_ms = now_ms;
	}
	pthread_mutex_unlock(&vv->lock);
	virt_intent_pump(vv);
}

void vol_virt_intent_full(struct vol *v)
{
	struct vol_virt *vv = v ? v->virt : NULL;

	if (!vv || !vv->in.fn)
		return;
	pthread_mutex_lock(&vv->lock);
	vv->in.want_full = true;
	pthread_mutex_unlock(&vv->lock);
	virt_intent_pump(vv);
}
