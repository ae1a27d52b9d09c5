/*
 * vol_resync.c: bringing a failed mirror leg back by copying only the
 * regions written while it was away (the dirty-region bitmap), in the
 * background, paced, with progress; and the bitmap's export and import.
 *
 * Ordering against host writes: the region being copied is locked. The
 * copy starts only once no write-type request in flight overlaps the region
 * (their data is then on the good leg, so the copy reads it), and a write
 * that arrives while the region is locked waits on vv->blocked until the
 * copy has been written, then goes to both legs. Without the lock, a copy
 * that read the good leg before a host write and wrote the returning leg
 * after it would put stale data over the newer write on that leg only, and
 * the legs would silently differ. Writes to regions not being copied go to
 * both legs as usual: a dirty region they touch is copied later anyway,
 * under the lock.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

#define NO_REGION UINT64_MAX

enum rs_phase {
	RS_IDLE,
	RS_PACE,  /* ahead of the rate: waits for a tick */
	RS_DRAIN, /* region locked, waits for writes in flight there */
	RS_COPY,  /* region being read from the good leg / written to the other */
};

struct virt_resync {
	struct vol_virt *vv;
	struct vol_chan *ch; /* its reactor runs the copy and the tick */
	unsigned leg, src;
	uint64_t rate_bps;
	vol_cb cb;
	void *cb_arg;
	/* Under vv->lock: */
	enum rs_phase phase;
	uint64_t region; /* the locked region, or NO_REGION */
	uint64_t cursor; /* the next region to look at */
	/* The copy's own state (resync thread only): */
	struct vol_io io;
	struct iovec iov;
	void *buf;
	uint64_t start_ms, copied;
	struct util_tick *tick;
	int final;
};

/* Set while vol_virt_resync_start() runs on this thread: a resync that ends
 * at once must not call its callback from inside the start (vol.h). */
static _Thread_local bool rs_starting;

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void region_range(const struct vol_virt *vv, uint64_t r, uint64_t *off, uint64_t *len)
{
	*off = r * vv->region_size;
	*len = UTIL_MIN(vv->region_size, vv->v->size - *off);
}

bool virt_resync_admit_locked(struct vol_virt *vv, uint64_t off, uint64_t len)
{
	uint64_t roff, rlen;

	if (!vv->rs || vv->rs->region == NO_REGION)
		return true;
	region_range(vv, vv->rs->region, &roff, &rlen);
	return !overlaps(off, len, roff, rlen);
}

static bool inflight_overlaps_locked(struct vol_virt *vv, uint64_t r)
{
	struct virt_parent *p;
	uint64_t roff, rlen;

	region_range(vv, r, &roff, &rlen);
	TAILQ_FOREACH (p, &vv->inflight, link) {
		struct vol_io *io = virt_parent_io(p);

		if (overlaps(io->offset, io->len, roff, rlen))
			return true;
	}
	return false;
}

bool virt_resync_drained_locked(struct vol_virt *vv)
{
	struct virt_resync *rs = vv->rs;

	if (!rs || rs->phase != RS_DRAIN || inflight_overlaps_locked(vv, rs->region))
		return false;
	rs->phase = RS_COPY;
	return true;
}

static void rs_read(void *arg);

void virt_resync_kick(struct vol_virt *vv)
{
	struct virt_resync *rs;

	/* Only the drain that moved the phase to RS_COPY kicks, and nothing
	 * ends the resync in that phase before the read: rs stays valid. */
	pthread_mutex_lock(&vv->lock);
	rs = vv->rs;
	pthread_mutex_unlock(&vv->lock);
	if (rs)
		vol_chan_run_on(rs->ch, rs_read, rs);
}

/* ---- the end ---- */

static void rs_deliver(void *arg)
{
	struct virt_resync *rs = arg;

	rs->cb(rs->cb_arg, rs->final);
	free(rs->buf);
	free(rs);
}

/* Stop with \p err (0: every region copied, the leg is OK). No lock held. */
static void rs_finish(struct virt_resync *rs, int err)
{
	struct vol_virt *vv = rs->vv;
	struct virt_parent_list wake;

	TAILQ_INIT(&wake);
	pthread_mutex_lock(&vv->lock);
	if (rs->region != NO_REGION)
		TAILQ_CONCAT(&wake, &vv->blocked, link);
	rs->region = NO_REGION;
	if (err && vv->legs[rs->leg].state == VOL_LEG_RESYNC) {
		vv->legs[rs->leg].state = VOL_LEG_FAILED;
		vv->ev_mask |= 1u << rs->leg;
	}
	vv->rs = NULL;
	pthread_mutex_unlock(&vv->lock);
	if (rs->tick)
		util_reactor_tick_del(vol_chan_reactor(rs->ch), rs->tick);
	rs->tick = NULL;
	if (err)
		log_err("volume %s: resync of leg %u stopped: %s", vv->v->name, rs->leg,
			strerror(-err));
	else
		log_info("volume %s: leg %u in sync again (%" PRIu64 " bytes copied)", vv->v->name,
			 rs->leg, rs->copied);
	virt_report_events(vv);
	virt_resubmit_list(vv, &wake);
	rs->final = err;
	if (rs_starting && util_reactor_send(vol_chan_reactor(rs->ch), rs_deliver, rs) == 0)
		return;
	rs_deliver(rs);
}

/* ---- the copy loop ---- */

static uint64_t next_dirty_locked(struct vol_virt *vv, uint64_t from)
{
	for (uint64_t r = from; r < vv->nregions; r++) {
		uint64_t w = vv->dirty[r / 64] >> (r % 64);

		if (w == 0) {
			r |= 63; /* the rest of this word is clean */
			continue;
		}
		if (w & 1)
			return r;
	}
	return NO_REGION;
}

static void rs_step(struct virt_resync *rs)
{
	struct vol_virt *vv = rs->vv;
	uint64_t r;
	int err = 0;

	pthread_mutex_lock(&vv->lock);
	if (vv->legs[rs->leg].state != VOL_LEG_RESYNC || vv->legs[rs->src].state != VOL_LEG_OK) {
		err = -EIO; /* a leg failed under us */
		goto out_finish;
	}
	r = next_dirty_locked(vv, rs->cursor);
	if (r == NO_REGION) {
		vv->legs[rs->leg].state = VOL_LEG_OK;
		vv->ev_mask |= 1u << rs->leg;
		goto out_finish;
	}
	if (rs->rate_bps && util_now_ms() < rs->start_ms + rs->copied * 1000 / rs->rate_bps) {
		rs->phase = RS_PACE; /* the tick comes back */
		pthread_mutex_unlock(&vv->lock);
		return;
	}
	rs->region = r;
	if (inflight_overlaps_locked(vv, r)) {
		rs->phase = RS_DRAIN; /* the last such write kicks us */
		pthread_mutex_unlock(&vv->lock);
		return;
	}
	rs->phase = RS_COPY;
	pthread_mutex_unlock(&vv->lock);
	rs_read(rs);
	return;

out_finish:
	pthread_mutex_unlock(&vv->lock);
	rs_finish(rs, err);
}

static void rs_tick(void *arg)
{
	struct virt_resync *rs = arg;
	bool go;

	pthread_mutex_lock(&rs->vv->lock);
	go = rs->phase == RS_PACE;
	if (go)
		rs->phase = RS_IDLE;
	pthread_mutex_unlock(&rs->vv->lock);
	if (go)
		rs_step(rs);
}

static void rs_written(void *arg, int status);

static int rs_submit(struct virt_resync *rs, unsigned leg, enum vol_op op, vol_cb cb)
{
	struct vol_backend *be;
	uint64_t off, len, be_off;

	region_range(rs->vv, rs->region, &off, &len);
	/* extent_size is a multiple of region_size: one extent holds it. */
	virt_map(rs->vv, leg, off, len, &be, &be_off);
	memset(&rs->io, 0, sizeof(rs->io));
	rs->iov.iov_base = rs->buf;
	rs->iov.iov_len = (size_t)len;
	rs->io.op = op;
	rs->io.offset = be_off;
	rs->io.len = len;
	rs->io.iov = &rs->iov;
	rs->io.iovcnt = 1;
	rs->io.cb = cb;
	rs->io.cb_arg = rs;
	return vol_backend_submit(rs->ch, be, &rs->io);
}

static void rs_got(void *arg, int status)
{
	struct virt_resync *rs = arg;
	int rc;

	if (status) {
		/* The good leg is the last OK one: it is never failed for
		 * this (vol_virt.c); the resync stops and can be retried. */
		rs_finish(rs, status);
		return;
	}
	rc = rs_submit(rs, rs->leg, VOL_OP_WRITE, rs_written);
	if (rc < 0)
		rs_written(rs, rc);
}

static void rs_read(void *arg)
{
	struct virt_resync *rs = arg;
	int rc = rs_submit(rs, rs->src, VOL_OP_READ, rs_got);

	if (rc < 0)
		rs_got(rs, rc);
}

static void rs_written(void *arg, int status)
{
	struct virt_resync *rs = arg;
	struct vol_virt *vv = rs->vv;
	struct virt_parent_list wake;
	uint64_t r = rs->region, off, len;

	if (status) {
		rs_finish(rs, status);
		return;
	}
	region_range(vv, r, &off, &len);
	TAILQ_INIT(&wake);
	pthread_mutex_lock(&vv->lock);
	/* A leg failed meanwhile: keep the bit, rs_step() stops. */
	if (vv->legs[rs->leg].state == VOL_LEG_RESYNC && (vv->dirty[r / 64] & (1ull << (r % 64)))) {
		vv->dirty[r / 64] &= ~(1ull << (r % 64));
		vv->ndirty--;
	}
	vv->resync_done++;
	rs->copied += len;
	rs->region = NO_REGION;
	rs->cursor = r + 1;
	rs->phase = RS_IDLE;
	TAILQ_CONCAT(&wake, &vv->blocked, link);
	pthread_mutex_unlock(&vv->lock);
	virt_resubmit_list(vv, &wake);
	rs_step(rs);
}

int vol_virt_resync_start(struct vol_chan *ch, struct vol *v, unsigned leg, uint64_t rate_bps,
			  vol_cb cb, void *cb_arg)
{
	struct vol_virt *vv = v ? v->virt : NULL;
	struct virt_resync *rs;
	int rc = -EINVAL;

	if (!ch || !vv || !cb || leg >= vv->nlegs)
		return -EINVAL;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	if (posix_memalign(&rs->buf, VOL_DIRECT_ALIGN, (size_t)vv->region_size)) {
		free(rs);
		return -ENOMEM;
	}
	rs->vv = vv;
	rs->ch = ch;
	rs->leg = leg;
	rs->rate_bps = rate_bps;
	rs->cb = cb;
	rs->cb_arg = cb_arg;
	rs->region = NO_REGION;
	rs->start_ms = util_now_ms();
	if (rate_bps) {
		rs->tick = util_reactor_tick_add(vol_chan_reactor(ch), rs_tick, rs);
		if (!rs->tick) {
			rc = -ENOMEM;
			goto err_free;
		}
	}

	pthread_mutex_lock(&vv->lock);
	if (vv->rs) {
		rc = -EBUSY;
		goto err_unlock;
	}
	if (vv->legs[leg].state != VOL_LEG_FAILED)
		goto err_unlock;
	rs->src = vv->nlegs;
	for (unsigned l = 0; l < vv->nlegs; l++)
		if (l != leg && vv->legs[l].state == VOL_LEG_OK)
			rs->src = l;
	if (rs->src == vv->nlegs)
		goto err_unlock;
	vv->legs[leg].state = VOL_LEG_RESYNC;
	vv->ev_mask |= 1u << leg;
	vv->rs = rs;
	vv->resync_leg = leg;
	vv->resync_total = vv->ndirty;
	vv->resync_done = 0;
	log_info("volume %s: resync of leg %u from leg %u: %" PRIu64 " dirty regions of %" PRIu64
		 " bytes",
		 v->name, leg, rs->src, vv->ndirty, vv->region_size);
	pthread_mutex_unlock(&vv->lock);
	virt_report_events(vv);
	rs_starting = true;
	rs_step(rs);
	rs_starting = false;
	/* rs may be gone (finished at once, its callback queued). */
	return 0;

err_unlock:
	pthread_mutex_unlock(&vv->lock);
	if (rs->tick)
		util_reactor_tick_del(vol_chan_reactor(ch), rs->tick);
err_free:
	free(rs->buf);
	free(rs);
	return rc;
}

/* ---- the bitmap, for the map and the partner ---- */

size_t vol_virt_dirty_get(struct vol *v, uint64_t *words, size_t nwords)
{
	struct vol_virt *vv = v->virt;
	size_t n;

	if (!vv)
		return 0;
	pthread_mutex_lock(&vv->lock);
	n = vv->dirty_words; /* vol_virt_grow() changes it */
	if (words)
		memcpy(words, vv->dirty, UTIL_MIN(nwords, n) * sizeof(*words));
	pthread_mutex_unlock(&vv->lock);
	return n;
}

void vol_virt_dirty_set(struct vol *v, const uint64_t *words, size_t nwords)
{
	struct vol_virt *vv = v->virt;

	if (!vv || !words)
		return;
	pthread_mutex_lock(&vv->lock);
	for (size_t i = 0; i < UTIL_MIN(nwords, vv->dirty_words); i++) {
		uint64_t add = words[i] & ~vv->dirty[i];

		/* Bits past the last region mean nothing. */
		if (i == vv->dirty_words - 1 && vv->nregions % 64)
			add &= (1ull << (vv->nregions % 64)) - 1;
		vv->dirty[i] |= add;
		vv->ndirty += (uint64_t)__builtin_popcountll(add);
		/* The legs differ there: the write intent record must say so. */
		for (uint64_t b = add; b; b &= b - 1)
			virt_intent_note_locked(vv, i * 64 + (uint64_t)__builtin_ctzll(b));
	}
	pthread_mutex_unlock(&vv->lock);
	virt_report_events(vv); /* hands the noted regions to the hook */
}
