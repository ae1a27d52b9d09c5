/*
 * vol_grow.c: online growth of an open volume (vmctl volume resize), for
 * file volumes and virtualized ones, with I/O in flight.
 *
 * The rule that makes it safe without stopping I/O: whatever lies below the
 * new end (the longer file, the new extents, the larger dirty bitmap) is in
 * place before the new size is published, and the size is published with a
 * release store that vol_size() pairs with an acquire load. A request is
 * checked against the size once, at submission; one checked against the old
 * size stays inside the old range, which nothing here moves or frees while a
 * reader could use it (the extent tables are swapped under the volume's
 * lock, the only place they are read during host I/O).
 *
 * The host learns of the new capacity from the target, which raises the
 * CAPACITY DATA HAS CHANGED unit attention once vol_size() reports it.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "vol/vol_internal.h"

static void size_publish(struct vol *v, uint64_t size)
{
	__atomic_store_n(&v->size, size, __ATOMIC_RELEASE);
}

int vol_file_grow(struct vol *v, uint64_t size)
{
	uint64_t cur;

	if (!v || v->virt || v->fd < 0)
		return -EINVAL;
	cur = vol_size(v);
	if (size < cur || size % v->block_size || size > (uint64_t)INT64_MAX) {
		log_err("volume %s: cannot grow from %" PRIu64 " to %" PRIu64 " bytes", v->name,
			cur, size);
		return -EINVAL;
	}
	if (size == cur)
		return 0;
	/* Sparse: no block is written, so this is quick even for terabytes. */
	if (ftruncate(v->fd, (off_t)size) < 0) {
		int rc = -errno;
		log_err("volume %s: growing the file to %" PRIu64 " bytes: %s", v->name, size,
			strerror(-rc));
		return rc;
	}
	size_publish(v, size);
	log_info("volume %s: grew online from %" PRIu64 " to %" PRIu64 " bytes", v->name, cur,
		 size);
	return 0;
}

/* The parts of a grown virtualized volume, built before the lock is taken. */
struct grown {
	struct vol_backend **ext_be[VOL_MAX_LEGS];
	uint64_t *ext_off[VOL_MAX_LEGS];
	uint64_t *dirty;
	size_t dirty_words;
	uint64_t nregions;
	uint32_t nextents;
};

static void grown_free(struct grown *g)
{
	for (unsigned l = 0; l < VOL_MAX_LEGS; l++) {
		free(g->ext_be[l]);
		free(g->ext_off[l]);
	}
	free(g->dirty);
}

/* \p d against the volume as it is: same geometry, a larger or equal size. */
static int grow_check(const struct vol_virt *vv, const struct vol_desc *d)
{
	const struct vol *v = vv->v;

	if (strcmp(d->name, v->name) != 0 || d->nlegs != vv->nlegs ||
	    d->block_size != v->block_size || d->extent_size != vv->extent_size ||
	    d->region_size != vv->region_size || d->size < vol_size(v) || d->size % d->block_size)
		return -EINVAL;
	return 0;
}

/*
 * Extent \p e of leg \p l of \p d, resolved through the open table, into
 * \p g. An extent the volume has already must be where the volume has it: a
 * description that moved one is not a grow.
 */
static int grow_extent(const struct vol_virt *vv, const struct vol_desc *d, unsigned l, uint32_t e,
		       struct grown *g)
{
	const struct vol_extent_desc *x = &d->legs[l].extents[e];
	const struct vol_backend_info *bi;
	struct vol_backend *be;

	if (x->backend >= vv->nbes || !vv->bes[x->backend])
		return -EINVAL;
	be = vv->bes[x->backend];
	if (e < vv->nextents) {
		if (be != vv->legs[l].ext_be[e] || x->offset != vv->legs[l].ext_off[e])
			return -EINVAL;
	} else {
		bi = vol_backend_info(be);
		if (x->offset % d->block_size || x->offset > bi->size ||
		    bi->size - x->offset < vv->extent_size)
			return -EINVAL;
	}
	g->ext_be[l][e] = be;
	g->ext_off[l][e] = x->offset;
	return 0;
}

static int grow_build(const struct vol_virt *vv, const struct vol_desc *d, struct grown *g)
{
	int rc;

	g->nextents = (uint32_t)((d->size + d->extent_size - 1) / d->extent_size);
	g->nregions = (d->size + d->region_size - 1) / d->region_size;
	g->dirty_words = (size_t)((g->nregions + 63) / 64);
	g->dirty = calloc(g->dirty_words, sizeof(*g->dirty));
	if (!g->dirty)
		return -ENOMEM;
	for (unsigned l = 0; l < d->nlegs; l++) {
		if (d->legs[l].nextents != g->nextents || !d->legs[l].extents)
			return -EINVAL;
		g->ext_be[l] = calloc(g->nextents, sizeof(*g->ext_be[l]));
		g->ext_off[l] = calloc(g->nextents, sizeof(*g->ext_off[l]));
		if (!g->ext_be[l] || !g->ext_off[l])
			return -ENOMEM;
		for (uint32_t e = 0; e < g->nextents; e++)
			if ((rc = grow_extent(vv, d, l, e, g)) < 0)
				return rc;
	}
	return 0;
}

int vol_virt_grow(struct vol *v, const struct vol_desc *d)
{
	struct vol_virt *vv = v ? v->virt : NULL;
	struct grown g = {0};
	uint64_t old;
	int rc;

	if (!vv || !d)
		return -EINVAL;
	if ((rc = grow_check(vv, d)) < 0) {
		log_err("volume %s: the new description does not extend the volume", v->name);
		return rc;
	}
	old = vol_size(v);
	if (d->size == old)
		return 0;
	/*
	 * Built outside the lock: only this thread changes the tables, and the
	 * I/O paths only read them. The old extents are checked, not trusted.
	 */
	if ((rc = grow_build(vv, d, &g)) < 0) {
		if (rc == -EINVAL)
			log_err("volume %s: an extent of the new description moved or does "
				"not fit its back end",
				v->name);
		goto out;
	}
	pthread_mutex_lock(&vv->lock);
	if (vv->rs) {
		/* The copy computes region lengths from the size as it goes: a
		 * partial last region changing length mid-copy would be copied
		 * with the wrong length. */
		pthread_mutex_unlock(&vv->lock);
		log_warn("volume %s: resync running, the grow waits for its end", v->name);
		rc = -EBUSY;
		goto out;
	}
	/* New regions start clean: no leg holds data there yet, and a write
	 * that misses a leg marks its regions as usual. */
	memcpy(g.dirty, vv->dirty, vv->dirty_words * sizeof(*g.dirty));
	for (unsigned l = 0; l < vv->nlegs; l++) {
		struct vol_backend **be = vv->legs[l].ext_be;
		uint64_t *off = vv->legs[l].ext_off;

		vv->legs[l].ext_be = g.ext_be[l];
		vv->legs[l].ext_off = g.ext_off[l];
		g.ext_be[l] = be; /* the old ones, freed below */
		g.ext_off[l] = off;
	}
	{
		uint64_t *dirty = vv->dirty;

		vv->dirty = g.dirty;
		g.dirty = dirty;
	}
	vv->dirty_words = g.dirty_words;
	vv->nregions = g.nregions;
	vv->nextents = g.nextents;
	/* Last: a request checked against the new size finds everything above. */
	size_publish(v, d->size);
	pthread_mutex_unlock(&vv->lock);
	log_info("volume %s: grew online from %" PRIu64 " to %" PRIu64 " bytes (%u extents)",
		 v->name, old, d->size, g.nextents);
	rc = 0;
out:
	grown_free(&g);
	return rc;
}
