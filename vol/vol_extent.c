/*
 * vol_extent.c: volume descriptions (what the cluster map stores for a
 * virtualized volume) and first-fit extent allocation over back ends' free
 * space.
 *
 * Everything here is plain data and pure functions: the map applies the
 * same changes in the same order on every engine, so allocation must be
 * deterministic (first fit, ties broken by the lowest back-end index) and
 * must not depend on anything but its inputs.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

static bool bit_get(const uint8_t *map, uint32_t i)
{
	return map[i / 8] & (1u << (i % 8));
}

static void bit_put(uint8_t *map, uint32_t i, bool on)
{
	if (on)
		map[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		map[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

int vol_space_init(struct vol_space *sp, uint64_t backend_size, uint64_t extent_size)
{
	uint64_t n;

	if (!sp || extent_size == 0)
		return -EINVAL;
	memset(sp, 0, sizeof(*sp));
	n = backend_size / extent_size;
	if (n > UINT32_MAX)
		return -EINVAL;
	sp->extent_size = extent_size;
	sp->nextents = (uint32_t)n;
	sp->nfree = (uint32_t)n;
	sp->used = calloc((n + 7) / 8 + 1, 1);
	return sp->used ? 0 : -ENOMEM;
}

void vol_space_fini(struct vol_space *sp)
{
	if (!sp)
		return;
	free(sp->used);
	sp->used = NULL;
	sp->nextents = sp->nfree = 0;
}

void vol_desc_free(struct vol_desc *d)
{
	if (!d)
		return;
	for (uint32_t l = 0; l < VOL_MAX_LEGS; l++) {
		free(d->legs[l].extents);
		d->legs[l].extents = NULL;
		d->legs[l].nextents = 0;
	}
}

/* Take \p n free extents of \p sp, first fit, into \p out. */
static void space_take(struct vol_space *sp, uint32_t backend, uint32_t n,
		       struct vol_extent_desc *out)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < sp->nextents && k < n; i++) {
		if (bit_get(sp->used, i))
			continue;
		bit_put(sp->used, i, true);
		out[k].backend = backend;
		out[k].offset = (uint64_t)i * sp->extent_size;
		k++;
	}
	sp->nfree -= k;
}

void vol_desc_release(const struct vol_desc *d, struct vol_space *spaces, uint32_t nspaces)
{
	for (uint32_t l = 0; l < d->nlegs && l < VOL_MAX_LEGS; l++) {
		for (uint32_t e = 0; e < d->legs[l].nextents; e++) {
			const struct vol_extent_desc *x = &d->legs[l].extents[e];
			struct vol_space *sp;
			uint64_t i;

			if (x->backend >= nspaces)
				continue;
			sp = &spaces[x->backend];
			i = x->offset / sp->extent_size;
			if (i < sp->nextents && bit_get(sp->used, (uint32_t)i)) {
				bit_put(sp->used, (uint32_t)i, false);
				sp->nfree++;
			}
		}
	}
}

/* Check (\p set false) or take (\p set true) every extent of \p d. */
static int claim_pass(const struct vol_desc *d, struct vol_space *spaces, uint32_t nspaces,
		      bool set)
{
	for (uint32_t l = 0; l < d->nlegs && l < VOL_MAX_LEGS; l++) {
		for (uint32_t e = 0; e < d->legs[l].nextents; e++) {
			const struct vol_extent_desc *x = &d->legs[l].extents[e];
			struct vol_space *sp;
			uint64_t i;

			if (x->backend >= nspaces)
				return -EINVAL;
			sp = &spaces[x->backend];
			if (x->offset % sp->extent_size)
				return -EINVAL;
			i = x->offset / sp->extent_size;
			if (i >= sp->nextents)
				return -EINVAL;
			if (bit_get(sp->used, (uint32_t)i))
				return -EEXIST;
			if (set) {
				bit_put(sp->used, (uint32_t)i, true);
				sp->nfree--;
			}
		}
	}
	return 0;
}

int vol_desc_claim(const struct vol_desc *d, struct vol_space *spaces, uint32_t nspaces)
{
	/* All or nothing: a map that does not fit leaves free space as it was. */
	int rc = claim_pass(d, spaces, nspaces, false);

	return rc ? rc : claim_pass(d, spaces, nspaces, true);
}

int vol_desc_create(struct vol_desc *d, const char *name, uint64_t size, uint32_t block_size,
		    uint64_t extent_size, uint64_t region_size, uint32_t nlegs,
		    struct vol_space *spaces, uint32_t nspaces)
{
	bool taken[64] = {false};
	uint64_t n64;
	uint32_t n;

	if (!d || !name || !*name || strlen(name) > VOL_NAME_MAX || !spaces || nspaces == 0 ||
	    nspaces > UTIL_ARRAY_SIZE(taken))
		return -EINVAL;
	if (nlegs < 1 || nlegs > VOL_MAX_LEGS || (block_size != 512 && block_size != 4096))
		return -EINVAL;
	if (size == 0 || size % block_size || region_size == 0 || region_size % block_size ||
	    extent_size == 0 || extent_size % region_size)
		return -EINVAL;
	n64 = (size + extent_size - 1) / extent_size;
	if (n64 > UINT32_MAX)
		return -EINVAL;
	n = (uint32_t)n64;
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->size = size;
	d->block_size = block_size;
	d->extent_size = extent_size;
	d->region_size = region_size;
	d->nlegs = nlegs;

	for (uint32_t l = 0; l < nlegs; l++) {
		uint32_t best = UINT32_MAX;

		/* The emptiest disk no other leg uses: mirrors on distinct
		 * disks, space spread evenly; lowest index on ties. */
		for (uint32_t b = 0; b < nspaces; b++) {
			if (taken[b] || spaces[b].extent_size != extent_size || spaces[b].nfree < n)
				continue;
			if (best == UINT32_MAX || spaces[b].nfree > spaces[best].nfree)
				best = b;
		}
		if (best == UINT32_MAX) {
			log_info("volume %s: no back end has %u free extents for leg %u", name, n,
				 l);
			vol_desc_release(d, spaces, nspaces);
			vol_desc_free(d);
			return -ENOSPC;
		}
		d->legs[l].extents = calloc(n, sizeof(*d->legs[l].extents));
		if (!d->legs[l].extents) {
			vol_desc_release(d, spaces, nspaces);
			vol_desc_free(d);
			return -ENOMEM;
		}
		d->legs[l].nextents = n;
		d->legs[l].state = VOL_LEG_OK;
		space_take(&spaces[best], best, n, d->legs[l].extents);
		taken[best] = true;
	}
	return 0;
}
