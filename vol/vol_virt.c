/*
 * vol_virt.c: virtualized volumes: extents on back ends, LBA-to-leg mapping,
 * splitting at extent boundaries, and synchronous RAID1 over one or two
 * mirror legs.
 *
 * RAID1 rules (as md and the mirroring literature have them):
 * - a write completes once every leg that is in service (OK or RESYNC) has
 *   it; a leg that fails the write is marked FAILED and the write still
 *   succeeds when another leg holds it, with the region marked dirty;
 * - a read goes to one OK leg (rotating) and, on error, is retried on the
 *   other OK leg, the first one being marked FAILED;
 * - the last OK leg is never failed: its errors go to the host instead, so
 *   a volume never loses its only up-to-date copy by bookkeeping;
 * - while a leg is FAILED, every write sets the dirty-region bits of its
 *   range before it is submitted, so a later resync copies exactly them;
 * - with a write intent hook (vol_intent.c), a write to a region that is not
 *   recorded yet waits until it is, so that whoever takes the volume over
 *   after a crash knows where the legs may differ.
 *
 * Child requests come from a pool allocated with the volume; a request that
 * finds the pool empty waits on a list and is resubmitted on its own channel
 * when children come back.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

#define VIRT_DEFAULT_CHILDREN 512u

static bool op_writes(enum vol_op op)
{
	return op == VOL_OP_WRITE || op == VOL_OP_UNMAP || op == VOL_OP_WRITE_ZEROES;
}

/* ---- mapping ---- */

uint64_t virt_map(const struct vol_virt *vv, unsigned leg, uint64_t off, uint64_t len,
		  struct vol_backend **be, uint64_t *be_off)
{
	uint64_t e = off / vv->extent_size;
	uint64_t in = off % vv->extent_size;

	*be = vv->legs[leg].ext_be[e];
	*be_off = vv->legs[leg].ext_off[e] + in;
	return UTIL_MIN(len, vv->extent_size - in);
}

/* Slices of a volume request: how many extent pieces [off, off+len) spans. */
static unsigned nslices(const struct vol_virt *vv, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	return (unsigned)((off + len - 1) / vv->extent_size - off / vv->extent_size + 1);
}

/*
 * Point \p c's iovecs at bytes [skip, skip+len) of \p iov. Returns 0, or
 * -ENOMEM when a long slice needs more than the inline array and memory.
 */
static int iov_slice(struct virt_child *c, const struct iovec *iov, int iovcnt, uint64_t skip,
		     uint64_t len)
{
	int i = 0, n = 0, first;
	uint64_t left = len, s = skip;
	struct iovec *out = c->iov_inline;

	while (i < iovcnt && s >= iov[i].iov_len)
		s -= iov[i++].iov_len;
	first = i;
	for (uint64_t l = left, ss = s; l && i < iovcnt; i++, n++) {
		uint64_t take = UTIL_MIN(l, iov[i].iov_len - ss);
		l -= take;
		ss = 0;
	}
	if (n > VIRT_CHILD_IOV) {
		/* Rare (a host request in many small buffers spanning an
		 * extent boundary): not worth a bigger child for every I/O. */
		c->iov_heap = malloc((size_t)n * sizeof(*out));
		if (!c->iov_heap)
			return -ENOMEM;
		out = c->iov_heap;
	}
	for (i = first, n = 0; left; i++, n++) {
		uint64_t take = UTIL_MIN(left, iov[i].iov_len - s);
		out[n].iov_base = (uint8_t *)iov[i].iov_base + s;
		out[n].iov_len = (size_t)take;
		left -= take;
		s = 0;
	}
	c->io.iov = out;
	c->io.iovcnt = n;
	return 0;
}

/* ---- dirty regions and leg state (locked) ---- */

void virt_mark_dirty_locked(struct vol_virt *vv, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (len == 0)
		return;
	first = off / vv->region_size;
	last = (off + len - 1) / vv->region_size;
	for (uint64_t r = first; r <= last && r < vv->nregions; r++) {
		uint64_t bit = 1ull << (r % 64);

		if (!(vv->dirty[r / 64] & bit)) {
			vv->dirty[r / 64] |= bit;
			vv->ndirty++;
			/* The legs differ there now: the record must say so. */
			virt_intent_note_locked(vv, r);
		}
	}
}

static bool another_ok_leg(const struct vol_virt *vv, unsigned leg)
{
	for (unsigned l = 0; l < vv->nlegs; l++)
		if (l != leg && vv->legs[l].state == VOL_LEG_OK)
			return true;
	return false;
}

/*
 * An I/O error on \p leg. Returns true when the leg is (now) out of
 * service, so the error is absorbed by the mirror; false when it is the last
 * OK leg and the error must reach the host.
 */
bool virt_fail_leg_locked(struct vol_virt *vv, unsigned leg)
{
	struct virt_parent *p;

	if (vv->legs[leg].state == VOL_LEG_FAILED)
		return true;
	if (!another_ok_leg(vv, leg))
		return false;
	vv->legs[leg].state = VOL_LEG_FAILED;
	vv->ev_mask |= 1u << leg;
	/*
	 * Writes in flight may have reached this leg or not: their ranges are
	 * dirty from now on, whatever their children report later.
	 */
	TAILQ_FOREACH (p, &vv->inflight, link) {
		struct vol_io *io = virt_parent_io(p);
		virt_mark_dirty_locked(vv, io->offset, io->len);
	}
	log_err("volume %s: leg %u FAILED, running degraded", vv->v->name, leg);
	return true;
}

void virt_report_events(struct vol_virt *vv)
{
	unsigned mask;
	enum vol_leg_state st[VOL_MAX_LEGS];
	bool kick;

	pthread_mutex_lock(&vv->lock);
	mask = vv->ev_mask;
	vv->ev_mask = 0;
	for (unsigned l = 0; l < vv->nlegs; l++)
		st[l] = vv->legs[l].state;
	kick = vv->in.kick;
	vv->in.kick = false;
	pthread_mutex_unlock(&vv->lock);
	if (kick)
		virt_intent_pump(vv);
	if (!vv->leg_cb)
		return;
	for (unsigned l = 0; l < vv->nlegs; l++)
		if (mask & (1u << l))
			vv->leg_cb(vv->leg_cb_arg, vv->v, l, st[l]);
}

/* ---- children ---- */

static struct virt_child *child_get_locked(struct vol_virt *vv)
{
	struct virt_child *c = SLIST_FIRST(&vv->free_children);

	SLIST_REMOVE_HEAD(&vv->free_children, free_link);
	vv->nfree--;
	c->iov_heap = NULL;
	return c;
}

static void child_put_locked(struct vol_virt *vv, struct virt_child *c)
{
	free(c->iov_heap);
	c->iov_heap = NULL;
	SLIST_INSERT_HEAD(&vv->free_children, c, free_link);
	vv->nfree++;
}

static void child_done(void *arg, int status);

static void child_init(struct virt_child *c, struct vol_io *parent, struct vol_chan *ch,
		       unsigned leg, enum vol_op op, uint64_t vol_off, uint64_t len)
{
	struct vol_virt *vv = parent->vol->virt;
	uint64_t be_off = 0;

	memset(&c->io, 0, sizeof(c->io));
	c->parent = parent;
	c->vv = vv;
	c->ch = ch;
	c->leg = leg;
	c->vol_off = vol_off;
	c->io.op = op;
	c->io.len = len;
	c->io.fua = parent->fua;
	c->io.cb = child_done;
	c->io.cb_arg = c;
	c->be = NULL;
	if (op != VOL_OP_FLUSH) {
		virt_map(vv, leg, vol_off, len, &c->be, &be_off);
		c->io.offset = be_off;
	}
}

/* ---- completion ---- */

/*
 * Drop one reference of \p io (locked). Returns true when the request is
 * finished: the caller completes it after unlocking (finish_parent()).
 */
static bool parent_put_locked(struct vol_virt *vv, struct vol_io *io, bool *kick)
{
	struct virt_parent *p = virt_parent(io);

	if (--p->pending > 0)
		return false;
	if (p->where == VIRT_INFLIGHT) {
		TAILQ_REMOVE(&vv->inflight, p, link);
		p->where = VIRT_NONE;
		if (virt_resync_drained_locked(vv))
			*kick = true;
	}
	if (!p->err && p->degraded && io->op != VOL_OP_READ)
		vv->writes_degraded++;
	return true;
}

/* Requests waiting for children get a chance once some came back. */
static void take_waiting_locked(struct vol_virt *vv, struct virt_parent_list *out)
{
	TAILQ_INIT(out);
	if (vv->nfree == 0)
		return;
	TAILQ_CONCAT(out, &vv->waiting, link);
}

static void after_unlock(struct vol_virt *vv, struct virt_parent_list *wake, bool kick)
{
	virt_report_events(vv);
	if (kick)
		virt_resync_kick(vv);
	virt_resubmit_list(vv, wake);
}

/* Retry a failed read piece on another OK leg (locked). True: resubmit c. */
static bool read_retry_locked(struct vol_virt *vv, struct virt_child *c)
{
	for (unsigned l = 0; l < vv->nlegs; l++) {
		if (l == c->leg || vv->legs[l].state != VOL_LEG_OK)
			continue;
		virt_fail_leg_locked(vv, c->leg);
		c->leg = l;
		child_init(c, c->parent, c->ch, l, VOL_OP_READ, c->vol_off, c->io.len);
		vv->reads_retried++;
		return true;
	}
	return false;
}

/*
 * One child finished with \p status (locked). Returns true when it was
 * re-armed for a retry, to submit again instead of being released.
 */
static bool child_status_locked(struct vol_virt *vv, struct virt_child *c, int status)
{
	struct virt_parent *p = virt_parent(c->parent);
	struct iovec *iov = c->io.iov;
	int iovcnt = c->io.iovcnt;

	if (status == 0)
		return false;
	if (c->io.op == VOL_OP_READ) {
		if (read_retry_locked(vv, c)) {
			/* child_init cleared the iovecs: the same slice again. */
			c->io.iov = iov;
			c->io.iovcnt = iovcnt;
			return true;
		}
		if (!p->err)
			p->err = status;
		return false;
	}
	/* A write-type piece (or a flush) one leg could not take. */
	if (c->io.op == VOL_OP_FLUSH)
		virt_mark_dirty_locked(vv, 0, vv->v->size);
	else
		virt_mark_dirty_locked(vv, c->vol_off, c->io.len);
	if (virt_fail_leg_locked(vv, c->leg))
		p->degraded = true;
	else if (!p->err)
		p->err = status;
	return false;
}

static void finish_parent(struct vol_io *io)
{
	struct virt_parent *p = virt_parent(io);

	io->status = p->err;
	io->cb(io->cb_arg, p->err);
}

static void child_done(void *arg, int status)
{
	struct virt_child *c = arg;
	struct vol_virt *vv = c->vv;
	struct vol_io *parent = c->parent;
	struct virt_parent_list wake;
	bool done, kick = false;

	for (;;) {
		int rc;

		pthread_mutex_lock(&vv->lock);
		if (!child_status_locked(vv, c, status))
			break;
		pthread_mutex_unlock(&vv->lock);
		rc = vol_backend_submit(c->ch, c->be, &c->io);
		if (rc == 0) {
			virt_report_events(vv);
			return;
		}
		status = rc;
	}
	child_put_locked(vv, c);
	done = parent_put_locked(vv, parent, &kick);
	take_waiting_locked(vv, &wake);
	pthread_mutex_unlock(&vv->lock);
	after_unlock(vv, &wake, kick);
	if (done)
		finish_parent(parent);
}

/* ---- submission ---- */

/* Legs a write-type request goes to: those in service. */
static unsigned write_legs_locked(const struct vol_virt *vv, unsigned *mask)
{
	unsigned n = 0;

	*mask = 0;
	for (unsigned l = 0; l < vv->nlegs; l++) {
		if (vv->legs[l].state == VOL_LEG_FAILED)
			continue;
		*mask |= 1u << l;
		n++;
	}
	return n;
}

static int read_leg_locked(struct vol_virt *vv)
{
	for (unsigned i = 0; i < vv->nlegs; i++) {
		unsigned l = (vv->rr + i) % vv->nlegs;

		if (vv->legs[l].state == VOL_LEG_OK) {
			vv->rr = l + 1;
			return (int)l;
		}
	}
	return -1;
}

/* Distinct back ends of the legs in \p mask, for a flush. */
static unsigned flush_targets(const struct vol_virt *vv, unsigned mask, struct vol_backend **be,
			      unsigned *leg, unsigned max)
{
	unsigned n = 0;

	for (unsigned l = 0; l < vv->nlegs; l++) {
		if (!(mask & (1u << l)))
			continue;
		for (uint32_t e = 0; e < vv->nextents; e++) {
			struct vol_backend *b = vv->legs[l].ext_be[e];
			unsigned k;

			for (k = 0; k < n && be[k] != b; k++)
				;
			if (k == n && n < max) {
				be[n] = b;
				leg[n++] = l;
			}
		}
	}
	return n;
}

int vol_virt_submit(struct vol_chan *ch, struct vol *v, struct vol_io *io)
{
	struct vol_virt *vv = v->virt;
	struct virt_parent *p = virt_parent(io);
	struct virt_child *kids[2 * 64 + 16];
	struct vol_backend *fbe[16];
	unsigned fleg[16];
	unsigned mask = 0, nlegs, nsl, need, nk = 0;
	struct virt_parent_list wake;
	bool done, kick = false, pump = false;
	int rc = 0, leg = -1;

	memset(p, 0, sizeof(*p));
	p->ch = ch;
	p->pending = 1;
	pthread_mutex_lock(&vv->lock);
	if (io->op == VOL_OP_READ) {
		leg = read_leg_locked(vv);
		nlegs = leg < 0 ? 0 : 1;
		if (leg >= 0)
			mask = 1u << leg;
	} else {
		nlegs = write_legs_locked(vv, &mask);
	}
	if (nlegs == 0) {
		rc = -EIO;
		goto out_unlock;
	}
	if (io->op == VOL_OP_FLUSH) {
		need = flush_targets(vv, mask, fbe, fleg, UTIL_ARRAY_SIZE(fbe));
	} else {
		nsl = nslices(vv, io->offset, io->len);
		need = nsl * nlegs;
	}
	if (need > vv->nchildren || need > UTIL_ARRAY_SIZE(kids)) {
		log_ratelimited(LOG_ERR,
				"volume %s: request of %" PRIu64 " bytes spans too many extents",
				v->name, io->len);
		rc = -EINVAL;
		goto out_unlock;
	}
	if (op_writes(io->op) && !virt_resync_admit_locked(vv, io->offset, io->len)) {
		p->where = VIRT_BLOCKED;
		TAILQ_INSERT_TAIL(&vv->blocked, p, link);
		goto out_unlock;
	}
	/* Write intent: the regions are recorded before any leg sees the write. */
	if (op_writes(io->op) && !virt_intent_admit_locked(vv, p, io->offset, io->len, &rc)) {
		pump = rc == 0;
		goto out_unlock;
	}
	if (need > vv->nfree || !TAILQ_EMPTY(&vv->waiting)) {
		p->where = VIRT_WAITING;
		TAILQ_INSERT_TAIL(&vv->waiting, p, link);
		goto out_unlock;
	}
	if (op_writes(io->op)) {
		/* Legs out of service miss this write: its regions become
		 * dirty before any leg has it, so no resync can miss it. */
		if (nlegs < vv->nlegs) {
			virt_mark_dirty_locked(vv, io->offset, io->len);
			p->degraded = true;
		}
		p->where = VIRT_INFLIGHT;
		TAILQ_INSERT_TAIL(&vv->inflight, p, link);
	}
	if (io->op == VOL_OP_FLUSH) {
		for (unsigned i = 0; i < need; i++) {
			struct virt_child *c = child_get_locked(vv);
			child_init(c, io, ch, fleg[i], VOL_OP_FLUSH, 0, 0);
			c->be = fbe[i];
			kids[nk++] = c;
		}
	} else {
		uint64_t off = io->offset, left = io->len;

		while (left) {
			struct vol_backend *be;
			uint64_t be_off;
			uint64_t n = virt_map(vv, 0, off, left, &be, &be_off);

			for (unsigned l = 0; l < vv->nlegs; l++) {
				struct virt_child *c;

				if (!(mask & (1u << l)))
					continue;
				c = child_get_locked(vv);
				child_init(c, io, ch, l, io->op, off, n);
				kids[nk++] = c;
				if (io->op != VOL_OP_READ && io->op != VOL_OP_WRITE)
					continue;
				if (iov_slice(c, io->iov, io->iovcnt, off - io->offset, n) < 0) {
					c->io.iov = NULL; /* fails at submit below */
					c->io.iovcnt = -1;
				}
			}
			off += n;
			left -= n;
		}
	}
	p->pending += (int32_t)nk;
	pthread_mutex_unlock(&vv->lock);

	for (unsigned i = 0; i < nk; i++) {
		struct virt_child *c = kids[i];
		int crc = c->io.iovcnt < 0 ? -ENOMEM : vol_backend_submit(ch, c->be, &c->io);
		/* Refused at once: handled like a completion, except that the
		 * request's own callback waits for the event loop (vol.h:
		 * never inline). */
		while (crc < 0) {
			pthread_mutex_lock(&vv->lock);
			if (!child_status_locked(vv, c, crc)) {
				child_put_locked(vv, c);
				p->pending--;
				pthread_mutex_unlock(&vv->lock);
				break;
			}
			pthread_mutex_unlock(&vv->lock);
			crc = vol_backend_submit(ch, c->be, &c->io);
		}
	}
	pthread_mutex_lock(&vv->lock);
	done = parent_put_locked(vv, io, &kick);
	take_waiting_locked(vv, &wake);
	pthread_mutex_unlock(&vv->lock);
	after_unlock(vv, &wake, kick);
	if (done)
		vol_chan_defer_done(ch, io, p->err);
	return 0;

out_unlock:
	pthread_mutex_unlock(&vv->lock);
	if (pump)
		virt_intent_pump(vv);
	return rc;
}

static void resubmit_one(void *arg)
{
	struct vol_io *io = arg;
	struct virt_parent *p = virt_parent(io);
	struct vol_chan *ch = p->ch;
	int rc = vol_virt_submit(ch, io->vol, io);

	if (rc < 0)
		vol_chan_defer_done(ch, io, rc);
}

void virt_resubmit_list(struct vol_virt *vv, struct virt_parent_list *list)
{
	struct virt_parent *p;

	while ((p = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, p, link);
		p->where = VIRT_NONE;
		vol_chan_run_on(p->ch, resubmit_one, virt_parent_io(p));
	}
}

/* ---- open / close / status ---- */

static int legs_build(struct vol_virt *vv, const struct vol_desc *d,
		      struct vol_backend *const *backends, uint32_t nbackends)
{
	for (uint32_t l = 0; l < d->nlegs; l++) {
		struct virt_leg *lg = &vv->legs[l];

		if (d->legs[l].nextents != vv->nextents || !d->legs[l].extents)
			return -EINVAL;
		lg->state = d->legs[l].state;
		lg->ext_be = calloc(vv->nextents, sizeof(*lg->ext_be));
		lg->ext_off = calloc(vv->nextents, sizeof(*lg->ext_off));
		if (!lg->ext_be || !lg->ext_off)
			return -ENOMEM;
		for (uint32_t e = 0; e < vv->nextents; e++) {
			const struct vol_extent_desc *x = &d->legs[l].extents[e];
			const struct vol_backend_info *bi;

			if (x->backend >= nbackends || !backends[x->backend])
				return -EINVAL;
			bi = vol_backend_info(backends[x->backend]);
			if (bi->block_size != d->block_size || x->offset % d->block_size ||
			    x->offset > bi->size || bi->size - x->offset < vv->extent_size) {
				log_err("volume %s: leg %u extent %u does not fit back end %s",
					d->name, l, e, bi->name);
				return -EINVAL;
			}
			lg->ext_be[e] = backends[x->backend];
			lg->ext_off[e] = x->offset;
		}
	}
	return 0;
}

static void virt_free(struct vol_virt *vv)
{
	for (unsigned l = 0; l < VOL_MAX_LEGS; l++) {
		free(vv->legs[l].ext_be);
		free(vv->legs[l].ext_off);
	}
	free(vv->children);
	free(vv->dirty);
	free(vv->bes);
	virt_intent_fini(vv);
	pthread_mutex_destroy(&vv->lock);
	free(vv);
}

int vol_open_virt(const struct vol_desc *d, struct vol_backend *const *backends, uint32_t nbackends,
		  const struct vol_virt_params *prm, struct vol **out)
{
	struct vol_virt *vv;
	struct vol *v;
	bool any_ok = false, can_unmap = true;
	int rc;

	if (!d || !out || !backends || d->nlegs < 1 || d->nlegs > VOL_MAX_LEGS || !d->name[0] ||
	    d->size == 0 || (d->block_size != 512 && d->block_size != 4096) ||
	    d->size % d->block_size || !d->region_size || d->region_size % d->block_size ||
	    !d->extent_size || d->extent_size % d->region_size)
		return -EINVAL;
	*out = NULL;
	v = calloc(1, sizeof(*v));
	vv = calloc(1, sizeof(*vv));
	if (!v || !vv) {
		free(v);
		free(vv);
		return -ENOMEM;
	}
	pthread_mutex_init(&vv->lock, NULL);
	TAILQ_INIT(&vv->inflight);
	TAILQ_INIT(&vv->blocked);
	TAILQ_INIT(&vv->waiting);
	SLIST_INIT(&vv->free_children);
	vv->v = v;
	vv->extent_size = d->extent_size;
	vv->region_size = d->region_size;
	vv->nregions = (d->size + d->region_size - 1) / d->region_size;
	vv->nextents = (uint32_t)((d->size + d->extent_size - 1) / d->extent_size);
	vv->nlegs = d->nlegs;
	if (prm) {
		vv->leg_cb = prm->leg_cb;
		vv->leg_cb_arg = prm->leg_cb_arg;
		vv->nchildren = prm->max_children;
	}
	if (!vv->nchildren)
		vv->nchildren = VIRT_DEFAULT_CHILDREN;
	rc = legs_build(vv, d, backends, nbackends);
	if (rc)
		goto err;
	rc = -ENOMEM;
	vv->bes = calloc(nbackends ? nbackends : 1, sizeof(*vv->bes));
	if (!vv->bes)
		goto err;
	memcpy(vv->bes, backends, nbackends * sizeof(*vv->bes));
	vv->nbes = nbackends;
	vv->dirty_words = (size_t)((vv->nregions + 63) / 64);
	vv->dirty = calloc(vv->dirty_words, sizeof(*vv->dirty));
	vv->children = calloc(vv->nchildren, sizeof(*vv->children));
	rc = -ENOMEM;
	if (!vv->dirty || !vv->children)
		goto err;
	if ((rc = virt_intent_init(vv, prm)) < 0)
		goto err;
	for (unsigned i = 0; i < vv->nchildren; i++)
		SLIST_INSERT_HEAD(&vv->free_children, &vv->children[i], free_link);
	vv->nfree = vv->nchildren;
	for (unsigned l = 0; l < vv->nlegs; l++) {
		if (vv->legs[l].state == VOL_LEG_RESYNC)
			vv->legs[l].state = VOL_LEG_FAILED; /* a resync restarts */
		if (vv->legs[l].state == VOL_LEG_OK)
			any_ok = true;
		for (uint32_t e = 0; e < vv->nextents; e++)
			can_unmap &= vol_backend_info(vv->legs[l].ext_be[e])->can_unmap;
	}
	rc = -ENODEV;
	if (!any_ok) {
		log_err("volume %s: no leg in sync", d->name);
		goto err;
	}
	snprintf(v->name, sizeof(v->name), "%s", d->name);
	v->size = d->size;
	v->block_size = d->block_size;
	v->fd = v->fd_buf = -1;
	v->can_unmap = can_unmap;
	v->virt = vv;
	vol_make_id(d->name, v->id);
	log_info("volume %s: %" PRIu64 " bytes, %u leg(s) of %u extents of %" PRIu64 " bytes",
		 d->name, d->size, vv->nlegs, vv->nextents, vv->extent_size);
	*out = v;
	return 0;

err:
	virt_free(vv);
	free(v);
	return rc;
}

void vol_virt_close(struct vol *v)
{
	struct vol_virt *vv = v->virt;

	if (vv->rs || !TAILQ_EMPTY(&vv->inflight) || vv->nfree != vv->nchildren ||
	    !TAILQ_EMPTY(&vv->in.waiting) || vv->in.round)
		log_err("volume %s closed with I/O or a resync running", v->name);
	virt_free(vv);
	free(v);
}

bool vol_is_virt(const struct vol *v)
{
	return v && v->virt;
}

void vol_virt_status(struct vol *v, struct vol_virt_status *st)
{
	struct vol_virt *vv = v->virt;

	memset(st, 0, sizeof(*st));
	if (!vv)
		return;
	pthread_mutex_lock(&vv->lock);
	st->nlegs = vv->nlegs;
	for (unsigned l = 0; l < vv->nlegs; l++)
		st->leg[l] = vv->legs[l].state;
	st->nregions = vv->nregions;
	st->dirty_regions = vv->ndirty;
	st->resyncing = vv->rs != NULL;
	st->resync_leg = vv->resync_leg;
	st->resync_total = vv->resync_total;
	st->resync_done = vv->resync_done;
	st->reads_retried = vv->reads_retried;
	st->writes_degraded = vv->writes_degraded;
	st->intent_regions = vv->in.nset;
	st->intent_rounds = vv->in.rounds;
	st->intent_cleared = vv->in.cleared;
	st->intent_waits = vv->in.waits;
	st->intent_waiting = vv->in.nwaiting;
	pthread_mutex_unlock(&vv->lock);
}

int vol_virt_fail_leg(struct vol *v, unsigned leg)
{
	struct vol_virt *vv = v ? v->virt : NULL;
	bool ok;

	if (!vv || leg >= vv->nlegs)
		return -EINVAL;
	pthread_mutex_lock(&vv->lock);
	ok = virt_fail_leg_locked(vv, leg);
	pthread_mutex_unlock(&vv->lock);
	virt_report_events(vv);
	return ok ? 0 : -EBUSY;
}
