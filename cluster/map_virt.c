/*
 * map_virt.c: back ends and virtualized volumes in the replicated map
 * (issue 6): the back-end table, deterministic extent allocation from the
 * free space the map itself records, leg states, and their protobuf form.
 *
 * Like map.c, everything here depends only on the map and the change: the
 * free space of a back end is rebuilt from the map (its size at `backend
 * add` minus every extent a volume holds), never from what an engine sees
 * live, so every engine places a new volume's extents at the same offsets.
 */
#define UTIL_LOG_TAG "map"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster.h"
#include "util/util.h"

void clu_virt_volume_free(struct clu_volume *v)
{
	for (unsigned l = 0; l < VOL_MAX_LEGS; l++) {
		free(v->legs[l].extents);
		v->legs[l].extents = NULL;
		v->legs[l].nextents = 0;
	}
	v->nlegs = 0;
}

int clu_virt_volume_copy(struct clu_volume *dst, const struct clu_volume *src)
{
	for (unsigned l = 0; l < VOL_MAX_LEGS; l++)
		dst->legs[l].extents = NULL;
	for (unsigned l = 0; l < src->nlegs; l++) {
		size_t n = src->legs[l].nextents;
		if (!n)
			continue;
		dst->legs[l].extents = malloc(n * sizeof(struct vol_extent_desc));
		if (!dst->legs[l].extents) {
			clu_virt_volume_free(dst);
			return -ENOMEM;
		}
		memcpy(dst->legs[l].extents, src->legs[l].extents,
		       n * sizeof(struct vol_extent_desc));
	}
	return 0;
}

int clu_virt_backends_copy(struct clu_map *dst, const struct clu_map *src)
{
	dst->backends = NULL;
	dst->nbackends = 0;
	if (!src->nbackends)
		return 0;
	dst->backends = malloc(src->nbackends * sizeof(*dst->backends));
	if (!dst->backends)
		return -ENOMEM;
	memcpy(dst->backends, src->backends, src->nbackends * sizeof(*dst->backends));
	dst->nbackends = src->nbackends;
	return 0;
}

static long backend_index(const struct clu_map *m, uint32_t id)
{
	for (unsigned i = 0; i < m->nbackends; i++)
		if (m->backends[i].id == id)
			return i;
	return -1;
}

const struct clu_backend *clu_map_backend(const struct clu_map *m, uint32_t id)
{
	long i = backend_index(m, id);
	return i >= 0 ? &m->backends[i] : NULL;
}

/* Does any volume hold an extent on back end \p id? */
static bool backend_used(const struct clu_map *m, uint32_t id)
{
	for (unsigned i = 0; i < m->nvols; i++)
		for (unsigned l = 0; l < m->vols[i].nlegs; l++)
			for (uint32_t e = 0; e < m->vols[i].legs[l].nextents; e++)
				if (m->vols[i].legs[l].extents[e].backend == id)
					return true;
	return false;
}

/* The one extent size of the map: that of its virtualized volumes (0: none yet). */
static uint64_t map_extent_size(const struct clu_map *m)
{
	for (unsigned i = 0; i < m->nvols; i++)
		if (m->vols[i].nlegs)
			return m->vols[i].extent_size;
	return 0;
}

/*
 * Free space of every back end (index = position in m->backends), rebuilt
 * from the map: each volume's extents are marked used.
 */
static int spaces_build(const struct clu_map *m, uint64_t extent, struct vol_space *sp)
{
	int rc = 0;

	for (unsigned b = 0; b < m->nbackends; b++)
		if ((rc = vol_space_init(&sp[b], m->backends[b].size, extent)) < 0) {
			for (unsigned k = 0; k < b; k++)
				vol_space_fini(&sp[k]);
			return rc;
		}
	for (unsigned i = 0; i < m->nvols; i++) {
		const struct clu_volume *v = &m->vols[i];
		for (unsigned l = 0; l < v->nlegs; l++)
			for (uint32_t e = 0; e < v->legs[l].nextents; e++) {
				long b = backend_index(m, v->legs[l].extents[e].backend);
				uint64_t off = v->legs[l].extents[e].offset;
				if (b < 0 || off / extent >= sp[b].nextents)
					continue;
				uint32_t k = (uint32_t)(off / extent);
				if (!(sp[b].used[k / 8] & (1u << (k % 8)))) {
					sp[b].used[k / 8] |= (uint8_t)(1u << (k % 8));
					sp[b].nfree--;
				}
			}
	}
	return 0;
}

static void spaces_fini(const struct clu_map *m, struct vol_space *sp)
{
	for (unsigned b = 0; b < m->nbackends; b++)
		vol_space_fini(&sp[b]);
}

uint64_t clu_virt_free_bytes(const struct clu_map *m, uint32_t id)
{
	struct vol_space sp[CLU_MAX_BACKENDS];
	uint64_t extent = map_extent_size(m);
	long b = backend_index(m, id);

	if (b < 0)
		return 0;
	if (!extent)
		return m->backends[b].size;
	if (spaces_build(m, extent, sp) < 0)
		return 0;
	uint64_t free_bytes = (uint64_t)sp[b].nfree * extent;
	spaces_fini(m, sp);
	return free_bytes;
}

static bool text_valid(const char *s, size_t max, bool empty_ok)
{
	size_t n = s ? strlen(s) : 0;
	return n < max && (empty_ok || n > 0);
}

static int apply_backend_add(struct clu_map *m, const Vm__MapChange *c)
{
	const char *u = c->chap_user ? c->chap_user : "";
	const char *sec = c->chap_secret ? c->chap_secret : "";

	if (!text_valid(c->portal, CLU_PORTAL_MAX, false) ||
	    !text_valid(c->target, CLU_IQN_MAX, false) || !text_valid(u, CLU_IQN_MAX, true) ||
	    !text_valid(sec, CLU_SECRET_MAX, true) || (u[0] && !sec[0]) ||
	    (c->be_block_size != 512 && c->be_block_size != 4096) || c->be_size == 0 ||
	    c->be_size % c->be_block_size)
		return -EINVAL;
	for (unsigned i = 0; i < m->nbackends; i++)
		if (strcmp(m->backends[i].portal, c->portal) == 0 &&
		    strcmp(m->backends[i].target, c->target) == 0 && m->backends[i].lun == c->lun)
			return -EEXIST;
	if (m->nbackends >= CLU_MAX_BACKENDS)
		return -ENOSPC;
	struct clu_backend *nb = realloc(m->backends, (m->nbackends + 1) * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	m->backends = nb;
	struct clu_backend *b = &m->backends[m->nbackends++];
	memset(b, 0, sizeof(*b));
	/* The version this change creates: unique, and increasing keeps the table sorted. */
	b->id = (uint32_t)(m->version + 1);
	snprintf(b->portal, sizeof(b->portal), "%s", c->portal);
	snprintf(b->target, sizeof(b->target), "%s", c->target);
	b->lun = c->lun;
	snprintf(b->chap_user, sizeof(b->chap_user), "%s", u);
	snprintf(b->chap_secret, sizeof(b->chap_secret), "%s", sec);
	b->size = c->be_size;
	b->block_size = c->be_block_size;
	return 0;
}

int clu_virt_apply(struct clu_map *m, const Vm__MapChange *c)
{
	int rc;

	switch (c->op) {
	case VM__CHANGE_OP__BACKEND_ADD:
		rc = apply_backend_add(m, c);
		break;
	case VM__CHANGE_OP__BACKEND_REMOVE: {
		long i = backend_index(m, c->backend);
		if (i < 0)
			return -ENOENT;
		/* Removing a disk that holds extents would cut volumes: refuse. */
		if (backend_used(m, c->backend))
			return -EBUSY;
		memmove(&m->backends[i], &m->backends[i + 1],
			(m->nbackends - (unsigned)i - 1) * sizeof(m->backends[0]));
		m->nbackends--;
		rc = 0;
		break;
	}
	case VM__CHANGE_OP__LEG_STATE: {
		const struct clu_volume *cv = clu_map_find(m, c->name ? c->name : "");
		if (!cv)
			return -ENOENT;
		struct clu_volume *v = (struct clu_volume *)cv;
		if (c->leg >= v->nlegs || c->leg_state > VOL_LEG_RESYNC)
			return -EINVAL;
		if (v->legs[c->leg].state == (enum vol_leg_state)c->leg_state)
			return -EALREADY;
		/* Never both legs failed in the map: the last good leg stays the truth. */
		if (c->leg_state != VOL_LEG_OK && v->nlegs == 2 &&
		    v->legs[1 - c->leg].state != VOL_LEG_OK)
			return -EINVAL;
		v->legs[c->leg].state = (enum vol_leg_state)c->leg_state;
		rc = 0;
		break;
	}
	default:
		return -EOPNOTSUPP;
	}
	if (rc == 0)
		m->version++;
	return rc;
}

int clu_virt_create(struct clu_map *m, struct clu_volume *v, const Vm__MapChange *c)
{
	struct vol_space sp[CLU_MAX_BACKENDS];
	struct vol_desc d;
	uint64_t extent = map_extent_size(m);
	int rc;

	if (c->mirror < 1 || c->mirror > VOL_MAX_LEGS || !m->nbackends)
		return -EINVAL;
	if (!extent)
		extent = c->extent_size ? c->extent_size : VOL_DEFAULT_EXTENT_SIZE;
	else if (c->extent_size && c->extent_size != extent)
		return -EINVAL; /* one extent size per map: free space is counted in it */
	uint64_t region = UTIL_MIN(VOL_DEFAULT_REGION_SIZE, extent);
	if (extent % region || extent % c->block_size)
		return -EINVAL;
	if ((rc = spaces_build(m, extent, sp)) < 0)
		return rc;
	/* A back end of another block size cannot hold this volume: no free space there. */
	for (unsigned b = 0; b < m->nbackends; b++)
		if (m->backends[b].block_size != c->block_size)
			sp[b].nfree = 0;
	rc = vol_desc_create(&d, c->name, c->size, c->block_size, extent, region, c->mirror, sp,
			     m->nbackends);
	spaces_fini(m, sp);
	if (rc < 0)
		return rc;
	/* Indices become ids: the map outlives the table's order. */
	for (unsigned l = 0; l < d.nlegs; l++) {
		for (uint32_t e = 0; e < d.legs[l].nextents; e++)
			d.legs[l].extents[e].backend = m->backends[d.legs[l].extents[e].backend].id;
		v->legs[l] = d.legs[l];
		v->legs[l].state = VOL_LEG_OK;
	}
	v->nlegs = d.nlegs;
	v->extent_size = extent;
	v->region_size = region;
	return 0;
}

int clu_virt_resize(struct clu_map *m, struct clu_volume *v, uint64_t size)
{
	struct vol_space sp[CLU_MAX_BACKENDS];
	struct vol_extent_desc *nx[VOL_MAX_LEGS] = {NULL};
	uint32_t n = (uint32_t)((size + v->extent_size - 1) / v->extent_size);
	uint32_t old = v->legs[0].nextents;
	int rc;

	if (n == old)
		return 0;
	if ((rc = spaces_build(m, v->extent_size, sp)) < 0)
		return rc;
	rc = -ENOMEM;
	for (unsigned l = 0; l < v->nlegs; l++) {
		nx[l] = malloc(n * sizeof(*nx[l]));
		if (!nx[l])
			goto out;
		memcpy(nx[l], v->legs[l].extents, old * sizeof(*nx[l]));
		/* New extents go on the leg's own disk: legs never share one. */
		uint32_t id = v->legs[l].extents[0].backend;
		long b = backend_index(m, id);
		rc = -ENOSPC;
		if (b < 0 || sp[b].nfree < n - old)
			goto out;
		uint32_t k = old;
		for (uint32_t i = 0; i < sp[b].nextents && k < n; i++) {
			if (sp[b].used[i / 8] & (1u << (i % 8)))
				continue;
			sp[b].used[i / 8] |= (uint8_t)(1u << (i % 8));
			sp[b].nfree--;
			nx[l][k].backend = id;
			nx[l][k].offset = (uint64_t)i * v->extent_size;
			k++;
		}
	}
	for (unsigned l = 0; l < v->nlegs; l++) {
		free(v->legs[l].extents);
		v->legs[l].extents = nx[l];
		v->legs[l].nextents = n;
		nx[l] = NULL;
	}
	rc = 0;
out:
	for (unsigned l = 0; l < VOL_MAX_LEGS; l++)
		free(nx[l]);
	spaces_fini(m, sp);
	return rc;
}

int clu_virt_desc(const struct clu_map *m, const struct clu_volume *v, struct vol_desc *d,
		  uint32_t *ids, uint32_t *nids)
{
	memset(d, 0, sizeof(*d));
	*nids = 0;
	snprintf(d->name, sizeof(d->name), "%s", v->name);
	d->size = v->size;
	d->block_size = v->block_size;
	d->extent_size = v->extent_size;
	d->region_size = v->region_size;
	d->nlegs = v->nlegs;
	for (unsigned l = 0; l < v->nlegs; l++) {
		uint32_t n = v->legs[l].nextents;
		d->legs[l].state = v->legs[l].state;
		d->legs[l].nextents = n;
		d->legs[l].extents = malloc((n ? n : 1) * sizeof(struct vol_extent_desc));
		if (!d->legs[l].extents) {
			vol_desc_free(d);
			return -ENOMEM;
		}
		for (uint32_t e = 0; e < n; e++) {
			uint32_t id = v->legs[l].extents[e].backend, k;
			if (!clu_map_backend(m, id)) {
				vol_desc_free(d);
				return -ENOENT;
			}
			for (k = 0; k < *nids && ids[k] != id; k++)
				;
			if (k == *nids)
				ids[(*nids)++] = id;
			d->legs[l].extents[e].backend = k;
			d->legs[l].extents[e].offset = v->legs[l].extents[e].offset;
		}
	}
	return 0;
}

/* ---- protobuf ---- */

int clu_virt_volume_to_pb(const struct clu_volume *v, Vm__Volume *p)
{
	p->extent_size = v->extent_size;
	p->region_size = v->region_size;
	if (!v->nlegs)
		return 0;
	/* One allocation: the leg messages, their pointers, then the arrays. */
	size_t per = 0;
	for (unsigned l = 0; l < v->nlegs; l++)
		per += v->legs[l].nextents * (sizeof(uint32_t) + sizeof(uint64_t));
	uint8_t *mem = calloc(1, v->nlegs * (sizeof(Vm__Leg) + sizeof(Vm__Leg *)) + per + 8);
	if (!mem)
		return -ENOMEM;
	Vm__Leg **pl = (Vm__Leg **)mem;
	Vm__Leg *legs = (Vm__Leg *)(mem + v->nlegs * sizeof(Vm__Leg *));
	/* Every 64-bit array first, then the 32-bit ones: all stay aligned. */
	uint64_t *off = (uint64_t *)(legs + v->nlegs);
	size_t total = 0;
	for (unsigned l = 0; l < v->nlegs; l++)
		total += v->legs[l].nextents;
	uint32_t *ids = (uint32_t *)(off + total);
	for (unsigned l = 0; l < v->nlegs; l++) {
		uint32_t n = v->legs[l].nextents;
		vm__leg__init(&legs[l]);
		legs[l].state = v->legs[l].state;
		legs[l].n_offset = legs[l].n_backend = n;
		legs[l].offset = off;
		legs[l].backend = ids;
		off += n;
		ids += n;
		for (uint32_t e = 0; e < n; e++) {
			legs[l].backend[e] = v->legs[l].extents[e].backend;
			legs[l].offset[e] = v->legs[l].extents[e].offset;
		}
		pl[l] = &legs[l];
	}
	p->legs = pl;
	p->n_legs = v->nlegs;
	return 0;
}

void clu_virt_pb_free_volume(Vm__Volume *p)
{
	free(p->legs);
	p->legs = NULL;
	p->n_legs = 0;
}

int clu_virt_backends_to_pb(const struct clu_map *m, Vm__Map *out)
{
	if (!m->nbackends)
		return 0;
	uint8_t *mem = calloc(m->nbackends, sizeof(Vm__Backend) + sizeof(Vm__Backend *));
	if (!mem)
		return -ENOMEM;
	Vm__Backend **pb = (Vm__Backend **)mem;
	Vm__Backend *b = (Vm__Backend *)(mem + m->nbackends * sizeof(Vm__Backend *));
	for (unsigned i = 0; i < m->nbackends; i++) {
		const struct clu_backend *s = &m->backends[i];
		vm__backend__init(&b[i]);
		b[i].id = s->id;
		b[i].portal = (char *)s->portal;
		b[i].target = (char *)s->target;
		b[i].lun = s->lun;
		b[i].chap_user = (char *)s->chap_user;
		b[i].chap_secret = (char *)s->chap_secret;
		b[i].size = s->size;
		b[i].block_size = s->block_size;
		pb[i] = &b[i];
	}
	out->backends = pb;
	out->n_backends = m->nbackends;
	return 0;
}

void clu_virt_backends_pb_free(Vm__Map *out)
{
	free(out->backends);
	out->backends = NULL;
	out->n_backends = 0;
}

int clu_virt_volume_from_pb(struct clu_volume *v, const Vm__Volume *p)
{
	if (p->n_legs > VOL_MAX_LEGS)
		return -EBADMSG;
	if (!p->n_legs)
		return 0;
	if (!p->extent_size || !p->region_size || p->extent_size % p->region_size ||
	    p->region_size % p->block_size)
		return -EBADMSG;
	uint32_t n = (uint32_t)((p->size + p->extent_size - 1) / p->extent_size);
	v->extent_size = p->extent_size;
	v->region_size = p->region_size;
	for (unsigned l = 0; l < p->n_legs; l++) {
		const Vm__Leg *pl = p->legs[l];
		if (pl->n_backend != n || pl->n_offset != n || pl->state > VOL_LEG_RESYNC)
			goto bad;
		v->legs[l].extents = malloc((n ? n : 1) * sizeof(struct vol_extent_desc));
		if (!v->legs[l].extents)
			goto bad;
		v->legs[l].nextents = n;
		v->legs[l].state = (enum vol_leg_state)pl->state;
		v->nlegs = l + 1;
		for (uint32_t e = 0; e < n; e++) {
			v->legs[l].extents[e].backend = pl->backend[e];
			v->legs[l].extents[e].offset = pl->offset[e];
		}
	}
	return 0;
bad:
	clu_virt_volume_free(v);
	return -EBADMSG;
}

int clu_virt_backends_from_pb(struct clu_map *m, const Vm__Map *pb)
{
	m->backends = NULL;
	m->nbackends = 0;
	if (!pb->n_backends)
		return 0;
	if (pb->n_backends > CLU_MAX_BACKENDS)
		return -EBADMSG;
	m->backends = calloc(pb->n_backends, sizeof(*m->backends));
	if (!m->backends)
		return -ENOMEM;
	for (size_t i = 0; i < pb->n_backends; i++) {
		const Vm__Backend *p = pb->backends[i];
		struct clu_backend *b = &m->backends[i];
		if (!text_valid(p->portal, CLU_PORTAL_MAX, false) ||
		    !text_valid(p->target, CLU_IQN_MAX, false) ||
		    !text_valid(p->chap_user, CLU_IQN_MAX, true) ||
		    !text_valid(p->chap_secret, CLU_SECRET_MAX, true) ||
		    (p->block_size != 512 && p->block_size != 4096) ||
		    (i > 0 && pb->backends[i - 1]->id >= p->id)) {
			free(m->backends);
			m->backends = NULL;
			return -EBADMSG;
		}
		b->id = p->id;
		snprintf(b->portal, sizeof(b->portal), "%s", p->portal);
		snprintf(b->target, sizeof(b->target), "%s", p->target);
		b->lun = p->lun;
		snprintf(b->chap_user, sizeof(b->chap_user), "%s", p->chap_user);
		snprintf(b->chap_secret, sizeof(b->chap_secret), "%s", p->chap_secret);
		b->size = p->size;
		b->block_size = p->block_size;
	}
	m->nbackends = (unsigned)pb->n_backends;
	return 0;
}
