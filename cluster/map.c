/*
 * map.c: the volume map model: a deterministic apply of one change, the
 * protobuf form (state transfer, digest) and atomic persistence.
 *
 * Determinism is the whole point: every engine applies the same changes in
 * the same order, so clu_map_apply() may depend only on the map and the
 * change — no clock, no local configuration, no load figures. The placement
 * of a new volume is decided by the sender and travels in the change.
 */
#define UTIL_LOG_TAG "map"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "util/util.h"

void clu_map_init(struct clu_map *m)
{
	memset(m, 0, sizeof(*m));
}

static void volume_free(struct clu_volume *v)
{
	free(v->allow);
	v->allow = NULL;
	v->nallow = 0;
	clu_virt_volume_free(v);
}

void clu_map_clear(struct clu_map *m)
{
	for (unsigned i = 0; i < m->nvols; i++)
		volume_free(&m->vols[i]);
	free(m->vols);
	free(m->backends);
	clu_map_init(m);
}

bool clu_volume_name_valid(const char *n)
{
	if (!n || !n[0] || strlen(n) >= VOL_NAME_MAX)
		return false;
	for (const char *p = n; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

/* RFC 7143 4.2.7.1: "iqn.", "eui." or "naa." names, printable, at most 223 bytes. */
static bool iqn_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 5 || n >= CLU_IQN_MAX)
		return false;
	if (strncmp(s, "iqn.", 4) && strncmp(s, "eui.", 4) && strncmp(s, "naa.", 4))
		return false;
	for (const char *p = s; *p; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	return true;
}

/* Index of \p name, or -(insertion point) - 1. */
static long find_index(const struct clu_map *m, const char *name)
{
	unsigned lo = 0, hi = m->nvols;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		int c = strcmp(m->vols[mid].name, name);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

const struct clu_volume *clu_map_find(const struct clu_map *m, const char *name)
{
	long i = find_index(m, name);
	return i >= 0 ? &m->vols[i] : NULL;
}

unsigned clu_map_owned(const struct clu_map *m, uint32_t node, uint64_t *bytes)
{
	unsigned n = 0;
	uint64_t b = 0;

	for (unsigned i = 0; i < m->nvols; i++)
		if (m->vols[i].owner == node) {
			n++;
			b += m->vols[i].size;
		}
	if (bytes)
		*bytes = b;
	return n;
}

static int reserve(struct clu_map *m, unsigned n)
{
	if (n <= m->cap)
		return 0;
	unsigned cap = m->cap ? m->cap * 2 : 16;
	while (cap < n)
		cap *= 2;
	struct clu_volume *v = realloc(m->vols, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->vols = v;
	m->cap = cap;
	return 0;
}

static bool size_valid(uint64_t size, uint32_t bs)
{
	return (bs == 512 || bs == 4096) && size > 0 && size % bs == 0;
}

static int apply_create(struct clu_map *m, const Vm__MapChange *c)
{
	if (!clu_volume_name_valid(c->name))
		return -EINVAL;
	long i = find_index(m, c->name);
	if (i >= 0)
		return -EEXIST;
	if (!size_valid(c->size, c->block_size) || c->owner == 0)
		return -EINVAL;
	if (m->nvols >= CLU_MAX_VOLUMES)
		return -ENOSPC;
	/* Virtualized: extents from the back ends, placed from the map alone (map_virt.c). */
	struct clu_volume virt;
	memset(&virt, 0, sizeof(virt));
	if (c->mirror) {
		int rc = clu_virt_create(m, &virt, c);
		if (rc < 0)
			return rc;
	}
	if (reserve(m, m->nvols + 1) < 0) {
		clu_virt_volume_free(&virt);
		return -ENOMEM;
	}
	unsigned at = (unsigned)(-i - 1);
	memmove(&m->vols[at + 1], &m->vols[at], (m->nvols - at) * sizeof(m->vols[0]));
	struct clu_volume *v = &m->vols[at];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", c->name);
	v->size = c->size;
	v->block_size = c->block_size;
	v->owner = c->owner;
	v->partner = c->partner != c->owner ? c->partner : 0;
	if (c->service_portal && strlen(c->service_portal) < CLU_PORTAL_MAX)
		snprintf(v->service_portal, sizeof(v->service_portal), "%s", c->service_portal);
	v->extent_size = virt.extent_size;
	v->region_size = virt.region_size;
	v->nlegs = virt.nlegs;
	memcpy(v->legs, virt.legs, sizeof(v->legs));
	m->nvols++;
	v->generation = m->version + 1;
	return 0;
}

static int apply_delete(struct clu_map *m, long i)
{
	volume_free(&m->vols[i]);
	memmove(&m->vols[i], &m->vols[i + 1], (m->nvols - (unsigned)i - 1) * sizeof(m->vols[0]));
	m->nvols--;
	return 0;
}

static int apply_acl(struct clu_volume *v, const Vm__MapChange *c, bool allow)
{
	if (!iqn_valid(c->iqn))
		return -EINVAL;
	unsigned k;
	for (k = 0; k < v->nallow; k++)
		if (strcmp(v->allow[k], c->iqn) == 0)
			break;
	if (allow) {
		if (k < v->nallow && v->restricted)
			return -EALREADY;
		if (k == v->nallow) {
			if (v->nallow >= CLU_MAX_ACL)
				return -ENOSPC;
			char(*a)[CLU_IQN_MAX] = realloc(v->allow, (v->nallow + 1) * sizeof(*a));
			if (!a)
				return -ENOMEM;
			v->allow = a;
			snprintf(v->allow[v->nallow++], CLU_IQN_MAX, "%s", c->iqn);
		}
		v->restricted = true;
		return 0;
	}
	/*
	 * Deny removes the initiator. The volume stays restricted even when the
	 * list becomes empty: denying the last host must not open the volume
	 * to everybody.
	 */
	if (k == v->nallow) {
		if (v->restricted)
			return -EALREADY;
		v->restricted = true; /* deny on an open volume: restrict it to nobody */
		return 0;
	}
	memmove(&v->allow[k], &v->allow[k + 1], (v->nallow - k - 1) * sizeof(v->allow[0]));
	v->nallow--;
	v->restricted = true;
	return 0;
}

int clu_map_apply(struct clu_map *m, const Vm__MapChange *c)
{
	int rc;

	if (c->op == VM__CHANGE_OP__VOLUME_CREATE) {
		rc = apply_create(m, c);
		goto out;
	}
	if (c->op == VM__CHANGE_OP__BACKEND_ADD || c->op == VM__CHANGE_OP__BACKEND_REMOVE ||
	    c->op == VM__CHANGE_OP__LEG_STATE)
		return clu_virt_apply(m, c);
	if (c->op <= VM__CHANGE_OP__CHANGE_NONE || c->op > VM__CHANGE_OP__OWNER_MOVE)
		return -EOPNOTSUPP;
	long i = find_index(m, c->name ? c->name : "");
	if (i < 0)
		return -ENOENT;
	struct clu_volume *v = &m->vols[i];
	switch (c->op) {
	case VM__CHANGE_OP__VOLUME_DELETE:
		rc = apply_delete(m, i);
		break;
	case VM__CHANGE_OP__VOLUME_RESIZE:
		/* SBC-3 5.16: capacity only grows here; shrinking would cut data. */
		if (!size_valid(c->size, v->block_size) || c->size < v->size)
			return -EINVAL;
		if (c->size == v->size)
			return -EALREADY;
		if (v->nlegs && (rc = clu_virt_resize(m, v, c->size)) < 0)
			return rc;
		v->size = c->size;
		v->generation = m->version + 1;
		rc = 0;
		break;
	case VM__CHANGE_OP__ACL_ALLOW:
	case VM__CHANGE_OP__ACL_DENY:
		rc = apply_acl(v, c, c->op == VM__CHANGE_OP__ACL_ALLOW);
		break;
	case VM__CHANGE_OP__CHAP_SET: {
		const char *u = c->chap_user ? c->chap_user : "";
		const char *s = c->chap_secret ? c->chap_secret : "";
		const char *mu = c->chap_mutual_user ? c->chap_mutual_user : "";
		const char *ms = c->chap_mutual_secret ? c->chap_mutual_secret : "";
		/*
		 * RFC 7143 12.1.3: secrets of at least 12 bytes (16
		 * recommended), and the two directions never share one.
		 */
		if (strlen(u) >= CLU_IQN_MAX || strlen(s) >= CLU_SECRET_MAX ||
		    (u[0] && strlen(s) < 12) || (!u[0] && s[0]) || strlen(mu) >= CLU_IQN_MAX ||
		    strlen(ms) >= CLU_SECRET_MAX || (mu[0] && (!u[0] || strlen(ms) < 12)) ||
		    (!mu[0] && ms[0]) || (ms[0] && strcmp(ms, s) == 0))
			return -EINVAL;
		snprintf(v->chap_user, sizeof(v->chap_user), "%s", u);
		snprintf(v->chap_secret, sizeof(v->chap_secret), "%s", s);
		snprintf(v->chap_mutual_user, sizeof(v->chap_mutual_user), "%s", mu);
		snprintf(v->chap_mutual_secret, sizeof(v->chap_mutual_secret), "%s", ms);
		rc = 0;
		break;
	}
	case VM__CHANGE_OP__OWNER_MOVE:
		if (c->owner == 0)
			return -EINVAL;
		if (c->owner == v->owner)
			return -EALREADY;
		if (c->service_portal && strlen(c->service_portal) >= CLU_PORTAL_MAX)
			return -EINVAL;
		v->owner = c->owner;
		v->partner = c->partner != c->owner ? c->partner : 0;
		/* A failover keeps the address (the new owner takes it over); a move sets one. */
		if (c->service_portal && c->service_portal[0])
			snprintf(v->service_portal, sizeof(v->service_portal), "%s",
				 c->service_portal);
		v->generation = m->version + 1;
		rc = 0;
		break;
	default:
		return -EOPNOTSUPP;
	}
out:
	if (rc == 0)
		m->version++;
	return rc;
}

int clu_map_copy(struct clu_map *dst, const struct clu_map *src)
{
	clu_map_init(dst);
	if (reserve(dst, src->nvols) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < src->nvols; i++) {
		struct clu_volume *v = &dst->vols[i];
		*v = src->vols[i];
		v->allow = NULL;
		if (clu_virt_volume_copy(v, &src->vols[i]) < 0) {
			v->nallow = 0;
			dst->nvols = i + 1;
			clu_map_clear(dst);
			return -ENOMEM;
		}
		if (v->nallow) {
			v->allow = malloc(v->nallow * sizeof(*v->allow));
			if (!v->allow) {
				dst->nvols = i;
				clu_map_clear(dst);
				return -ENOMEM;
			}
			memcpy(v->allow, src->vols[i].allow, v->nallow * sizeof(*v->allow));
		}
		dst->nvols = i + 1;
	}
	dst->version = src->version;
	if (clu_virt_backends_copy(dst, src) < 0) {
		clu_map_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

/* ---- protobuf form ---- */

int clu_map_to_pb(const struct clu_map *m, Vm__Map *out)
{
	vm__map__init(out);
	out->version = m->version;
	if (clu_virt_backends_to_pb(m, out) < 0)
		return -ENOMEM;
	if (!m->nvols)
		return 0;
	Vm__Volume *vv = calloc(m->nvols, sizeof(*vv));
	Vm__Volume **pv = calloc(m->nvols, sizeof(*pv));
	if (!vv || !pv)
		goto err;
	out->volumes = pv;
	out->n_volumes = m->nvols;
	for (unsigned i = 0; i < m->nvols; i++) {
		const struct clu_volume *v = &m->vols[i];
		Vm__Volume *p = &vv[i];
		vm__volume__init(p);
		p->name = (char *)v->name;
		p->size = v->size;
		p->block_size = v->block_size;
		p->owner = v->owner;
		p->partner = v->partner;
		p->restricted = v->restricted;
		p->chap_user = (char *)v->chap_user;
		p->chap_secret = (char *)v->chap_secret;
		p->chap_mutual_user = (char *)v->chap_mutual_user;
		p->chap_mutual_secret = (char *)v->chap_mutual_secret;
		p->generation = v->generation;
		p->service_portal = (char *)v->service_portal;
		if (clu_virt_volume_to_pb(v, p) < 0) {
			out->n_volumes = i + 1;
			pv[i] = p;
			clu_map_pb_free(out);
			return -ENOMEM;
		}
		if (v->nallow) {
			p->allow = calloc(v->nallow, sizeof(char *));
			if (!p->allow) {
				out->n_volumes = i + 1;
				pv[i] = p;
				clu_map_pb_free(out);
				return -ENOMEM;
			}
			p->n_allow = v->nallow;
			for (unsigned k = 0; k < v->nallow; k++)
				p->allow[k] = (char *)v->allow[k];
		}
		pv[i] = p;
	}
	return 0;
err:
	free(vv);
	free(pv);
	clu_virt_backends_pb_free(out);
	vm__map__init(out);
	return -ENOMEM;
}

void clu_map_pb_free(Vm__Map *pb)
{
	if (pb->n_volumes) {
		for (size_t i = 0; i < pb->n_volumes; i++)
			if (pb->volumes[i]) {
				free(pb->volumes[i]->allow);
				clu_virt_pb_free_volume(pb->volumes[i]);
			}
		free(pb->volumes[0]); /* the array of structs allocated by clu_map_to_pb() */
	}
	free(pb->volumes);
	clu_virt_backends_pb_free(pb);
	vm__map__init(pb);
}

int clu_map_from_pb(struct clu_map *m, const Vm__Map *pb)
{
	struct clu_map n;

	clu_map_init(&n);
	if (pb->n_volumes > CLU_MAX_VOLUMES || reserve(&n, (unsigned)pb->n_volumes) < 0)
		return pb->n_volumes > CLU_MAX_VOLUMES ? -EBADMSG : -ENOMEM;
	for (size_t i = 0; i < pb->n_volumes; i++) {
		const Vm__Volume *p = pb->volumes[i];
		struct clu_volume *v = &n.vols[i];
		memset(v, 0, sizeof(*v));
		n.nvols = (unsigned)i + 1;
		if (!clu_volume_name_valid(p->name) || !size_valid(p->size, p->block_size) ||
		    p->owner == 0 || p->n_allow > CLU_MAX_ACL ||
		    strlen(p->chap_user) >= CLU_IQN_MAX ||
		    strlen(p->chap_secret) >= CLU_SECRET_MAX ||
		    strlen(p->chap_mutual_user) >= CLU_IQN_MAX ||
		    strlen(p->chap_mutual_secret) >= CLU_SECRET_MAX ||
		    (i > 0 && strcmp(pb->volumes[i - 1]->name, p->name) >= 0))
			goto bad;
		snprintf(v->name, sizeof(v->name), "%s", p->name);
		v->size = p->size;
		v->block_size = p->block_size;
		v->owner = p->owner;
		v->partner = p->partner;
		v->restricted = p->restricted;
		v->generation = p->generation;
		if (clu_virt_volume_from_pb(v, p) < 0 ||
		    strlen(p->service_portal) >= CLU_PORTAL_MAX)
			goto bad;
		snprintf(v->service_portal, sizeof(v->service_portal), "%s", p->service_portal);
		snprintf(v->chap_user, sizeof(v->chap_user), "%s", p->chap_user);
		snprintf(v->chap_secret, sizeof(v->chap_secret), "%s", p->chap_secret);
		snprintf(v->chap_mutual_user, sizeof(v->chap_mutual_user), "%s",
			 p->chap_mutual_user);
		snprintf(v->chap_mutual_secret, sizeof(v->chap_mutual_secret), "%s",
			 p->chap_mutual_secret);
		if (p->n_allow) {
			v->allow = calloc(p->n_allow, sizeof(*v->allow));
			if (!v->allow) {
				clu_map_clear(&n);
				return -ENOMEM;
			}
			for (size_t k = 0; k < p->n_allow; k++) {
				if (!iqn_valid(p->allow[k]))
					goto bad;
				snprintf(v->allow[k], CLU_IQN_MAX, "%s", p->allow[k]);
				v->nallow = (unsigned)k + 1;
			}
		}
	}
	n.version = pb->version;
	int brc = clu_virt_backends_from_pb(&n, pb);
	if (brc < 0) {
		clu_map_clear(&n);
		return brc;
	}
	clu_map_clear(m);
	*m = n;
	return 0;
bad:
	clu_map_clear(&n);
	return -EBADMSG;
}

uint32_t clu_map_digest(const struct clu_map *m)
{
	Vm__Map pb;
	uint32_t crc = 0;

	if (clu_map_to_pb(m, &pb) < 0)
		return 0;
	size_t len = vm__map__get_packed_size(&pb);
	uint8_t *buf = malloc(len + 1);
	if (buf) {
		vm__map__pack(&pb, buf);
		crc = util_crc32c(buf, len);
		free(buf);
	}
	clu_map_pb_free(&pb);
	return crc;
}

/* ---- persistence ---- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int clu_map_save(const struct clu_map *m, const char *dir)
{
	char path[4200], tmp[4200];
	Vm__Map pb;
	uint8_t *buf = NULL;
	size_t len;
	int fd = -1, dfd = -1, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, CLU_MAP_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, CLU_MAP_FILE);
	if ((rc = clu_map_to_pb(m, &pb)) < 0)
		return rc;
	rc = proto_pack(PROTO_MAP_FILE, &pb.base, &buf, &len);
	clu_map_pb_free(&pb);
	if (rc < 0)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = write_all(fd, buf, len)) < 0)
		goto out_close;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out_close;
	}
	close(fd);
	fd = -1;
	/* rename() is atomic: readers see the old map or the new one. */
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto out;
	}
	/* The rename itself is durable only once the directory is synced. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = -errno;
		goto out;
	}
	rc = 0;
	goto out;
out_close:
	close(fd);
	unlink(tmp);
out:
	if (dfd >= 0)
		close(dfd);
	free(buf);
	if (rc < 0)
		log_err("cannot save the map to %s: %s", path, strerror(-rc));
	return rc;
}

int clu_map_load(struct clu_map *m, const char *dir, bool *found, char *err, size_t errlen)
{
	char path[4200];
	uint8_t *buf = NULL;
	struct stat st;
	int fd, rc = 0;

	*found = false;
	snprintf(path, sizeof(path), "%s/%s", dir, CLU_MAP_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			clu_map_clear(m);
			return 0;
		}
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	*found = true;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size < PROTO_ENV_LEN || st.st_size > PROTO_ENV_LEN + PROTO_MAX_PAYLOAD) {
		rc = -EBADMSG;
		snprintf(err, errlen,
			 "%s: corrupt map file (%lld bytes: truncated or too large); "
			 "restore it or remove it to start with an empty map",
			 path, (long long)st.st_size);
		goto out;
	}
	size_t len = (size_t)st.st_size, got = 0;
	buf = malloc(len);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EBADMSG;
			snprintf(err, errlen, "%s: read failed", path);
			goto out;
		}
		got += (size_t)n;
	}
	int uerr = 0;
	Vm__Map *pb =
	    (Vm__Map *)proto_unpack(PROTO_MAP_FILE, &vm__map__descriptor, buf, len, &uerr);
	if (!pb) {
		rc = -EBADMSG;
		snprintf(err, errlen,
			 "%s: corrupt map file (%s); restore it or remove it to start with an "
			 "empty map",
			 path,
			 uerr == -EBADMSG ? "bad header, length or checksum: truncated?"
					  : "not a map file");
		goto out;
	}
	rc = clu_map_from_pb(m, pb);
	vm__map__free_unpacked(pb, NULL);
	if (rc == -EBADMSG)
		snprintf(err, errlen, "%s: invalid map content (names, sizes or order)", path);
	else if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
out:
	free(buf);
	close(fd);
	return rc;
}
