/*
 * ctl_targets.c: the replicated map, served. After every map or quorum
 * change the targets are brought in line with the map:
 *   - the owner of a volume serves it from its pool file (POOL/NAME.vol);
 *   - every other engine exposes it too, with a redirect to the owner's
 *     portal, so that discovery on any engine lists it and a login there is
 *     sent on (RFC 7143 11.13.5, "Target moved temporarily"); the target
 *     needs a volume behind it, so these engines open a sparse stub file
 *     (STATE/stub/NAME.vol) that never sees I/O;
 *   - an engine that is not serving (no quorum, or its map not yet in sync)
 *     exposes nothing: it fences itself so that hosts go elsewhere.
 * A target whose volume must close (deleted, owner moved) is removed first;
 * its volume closes when the target reports its sessions gone (on a reactor
 * thread: the volume goes back to this thread through a mailbox). A volume that
 * grew (vmctl volume resize) stays open and keeps its sessions: it grows in
 * place and the hosts get a capacity-changed unit attention.
 */
#define UTIL_LOG_TAG "targets"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <qb/qbloop.h>

#include "cluster/cluster.h"
#include "engine/engine.h"

/* tgt's empty allow list means everybody; this never matches a valid iSCSI name. */
#define NOBODY "(nobody)"

struct served {
	LIST_ENTRY(served) link;
	char name[VOL_NAME_MAX];
	struct vol *vol;
	bool local; /* this engine owns it: pool file; else a stub with a redirect */
	uint64_t size;
	uint32_t block_size;
	uint32_t policy_crc;
	char redirect[64];
	bool removing;
	struct eng_targets *et;
};

struct eng_targets {
	struct tgt *tgt;
	const struct eng_config *cfg;
	struct clu *clu;
	LIST_HEAD(, served) served;
	struct util_mailbox *mb; /* released targets (struct served *), from reactor threads */
	bool was_serving;
};

static void path_of(const struct eng_targets *et, const char *name, bool local, char *buf,
		    size_t len)
{
	if (local)
		snprintf(buf, len, "%.4000s/%s.vol", et->cfg->pool_dir, name);
	else
		snprintf(buf, len, "%.4000s/stub/%s.vol", et->cfg->state_dir, name);
}

/* On a reactor thread: hand the entry back to the control thread. */
static void released(void *arg)
{
	struct served *s = arg;

	/* Full: 131072 entries behind a stuck control thread; never silent. */
	if (util_mailbox_post(s->et->mb, &s) < 0)
		log_err("released target lost (control thread not keeping up): its volume stays "
			"open until the engine restarts");
}

static void reconcile(struct eng_targets *et);

/* A released target's entry, on the control thread (a util_mailbox_fn). */
static void on_released(void *arg, const void *rec)
{
	struct eng_targets *et = arg;
	struct served *s;
	char path[4200];

	memcpy(&s, rec, sizeof(s));
	const struct clu_volume *v = et->clu ? clu_map_find(clu_map(et->clu), s->name) : NULL;
	eng_vol_close(s->vol);
	path_of(et, s->name, s->local, path, sizeof(path));
	/* Gone from the map: its data goes too (a new volume of that name starts empty). */
	if (!v && et->clu && clu_serving(et->clu)) {
		if (unlink(path) == 0)
			log_info("%s: deleted %s", s->name, path);
	} else if (!s->local) {
		unlink(path); /* stubs hold nothing */
	}
	log_info("%s: closed", s->name);
	LIST_REMOVE(s, link);
	free(s);
}

/* After each wake-up's released targets (a util_mailbox_drained_fn). */
static void after_released(void *arg)
{
	reconcile(arg); /* a volume that was only closing to change may open again */
}

static struct served *find(struct eng_targets *et, const char *name)
{
	struct served *s;

	LIST_FOREACH (s, &et->served, link)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static void remove_target(struct eng_targets *et, struct served *s)
{
	s->removing = true;
	log_info("%s: no longer exposed here", s->name);
	if (tgt_target_remove(et->tgt, s->name, released, s) < 0)
		released(s); /* not a target (never added): close right away */
}

/* The policy a volume gets on this engine; returns its checksum. */
static uint32_t make_policy(struct eng_targets *et, const struct clu_volume *v, bool local,
			    struct tgt_target_policy *p, const char **allow)
{
	memset(p, 0, sizeof(*p));
	if (!local)
		snprintf(p->redirect, sizeof(p->redirect), "%s",
			 clu_volume_portal(et->clu, v)); /* the address the owner holds */
	for (unsigned i = 0; i < v->nallow; i++)
		allow[i] = v->allow[i];
	p->nallow = v->nallow;
	if (v->restricted && v->nallow == 0) {
		allow[0] = NOBODY;
		p->nallow = 1;
	}
	p->allow = allow;
	snprintf(p->chap.user, sizeof(p->chap.user), "%s", v->chap_user);
	snprintf(p->chap.secret, sizeof(p->chap.secret), "%s", v->chap_secret);
	snprintf(p->chap.mutual_user, sizeof(p->chap.mutual_user), "%s", v->chap_mutual_user);
	snprintf(p->chap.mutual_secret, sizeof(p->chap.mutual_secret), "%s", v->chap_mutual_secret);
	uint32_t crc = util_crc32c(p->redirect, strlen(p->redirect));
	for (unsigned i = 0; i < p->nallow; i++)
		crc = util_crc32c_update(crc, allow[i], strlen(allow[i]) + 1);
	crc = util_crc32c_update(crc, p->chap.user, strlen(p->chap.user) + 1);
	crc = util_crc32c_update(crc, p->chap.mutual_user, strlen(p->chap.mutual_user) + 1);
	crc = util_crc32c_update(crc, p->chap.mutual_secret, strlen(p->chap.mutual_secret) + 1);
	return util_crc32c_update(crc, p->chap.secret, strlen(p->chap.secret) + 1);
}

static void add_target(struct eng_targets *et, const struct clu_volume *v, bool local)
{
	char path[4200];
	const char *allow[CLU_MAX_ACL + 1];
	struct tgt_target_policy pol;
	struct served *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	path_of(et, v->name, local, path, sizeof(path));
	/* Virtualized volumes (legs on back ends) open from them: ctl_backends.c. */
	if (eng_vol_open(v, local, path, &s->vol) < 0) {
		free(s); /* logged by vol; retried on the next change */
		return;
	}
	snprintf(s->name, sizeof(s->name), "%s", v->name);
	s->local = local;
	s->size = v->size;
	s->block_size = v->block_size;
	s->et = et;
	s->policy_crc = make_policy(et, v, local, &pol, allow);
	snprintf(s->redirect, sizeof(s->redirect), "%s", pol.redirect);
	if (tgt_target_add(et->tgt, s->vol, NULL, NULL) < 0 ||
	    tgt_target_update(et->tgt, s->name, &pol, false) < 0) {
		log_err("%s: cannot expose the volume", v->name);
		tgt_target_remove(et->tgt, s->name, NULL, NULL);
		eng_vol_close(s->vol);
		free(s);
		return;
	}
	LIST_INSERT_HEAD(&et->served, s, link);
	if (local)
		log_notice("%s: served here (%" PRIu64 " bytes)", v->name, v->size);
	else
		log_notice("%s: owned by node %" PRIu32 ", redirecting to %s", v->name, v->owner,
			   pol.redirect);
}

/*
 * The map says \p s grew: grow the open volume (new extents on every leg of
 * a virtualized one, the file of a local or stub one) and tell the hosts,
 * with their sessions kept. Returns true when handled, false when the
 * volume must be closed and opened again instead (the old way, which drops
 * the sessions).
 */
static bool grow_in_place(struct eng_targets *et, struct served *s, const struct clu_volume *v)
{
	int rc;

	if (v->size < s->size)
		return false; /* the map never shrinks a volume; be safe if it did */
	if (vol_is_virt(s->vol)) {
		uint32_t ids[CLU_MAX_BACKENDS], n;
		struct vol_desc d;

		rc = clu_virt_desc(clu_map(et->clu), v, &d, ids, &n);
		if (rc == 0) {
			rc = vol_virt_grow(s->vol, &d);
			vol_desc_free(&d);
		}
	} else {
		rc = vol_file_grow(s->vol, v->size);
	}
	if (rc == -EBUSY)
		return true; /* a resync runs: its end is a map change, retried then */
	if (rc < 0) {
		log_warn("%s: cannot grow in place (%s): reopening", s->name, strerror(-rc));
		return false;
	}
	log_notice("%s: grew from %" PRIu64 " to %" PRIu64 " bytes online", s->name, s->size,
		   v->size);
	s->size = v->size;
	/* SBC-3 4.5: the hosts learn of it by a unit attention (tgt.c). */
	tgt_target_capacity_changed(et->tgt, s->name);
	return true;
}

static void reconcile(struct eng_targets *et)
{
	struct served *s, *tmp;
	bool serving = et->clu && clu_serving(et->clu);
	const struct clu_map *m = et->clu ? clu_map(et->clu) : NULL;
	uint32_t self = et->clu ? clu_nodeid(et->clu) : 0;

	if (serving != et->was_serving)
		log_notice("%s", serving
				     ? "serving the map's volumes"
				     : "fenced: no quorum or map not in sync, exposing nothing");
	et->was_serving = serving;
	/* 1. Whatever must go (or close to change) goes first. */
	LIST_FOREACH_SAFE (s, &et->served, link, tmp) {
		if (s->removing)
			continue;
		const struct clu_volume *v = serving ? clu_map_find(m, s->name) : NULL;
		bool local = v && v->owner == self;
		bool other = !v || local != s->local || v->block_size != s->block_size ||
			     (!local && !clu_volume_portal(et->clu, v)[0]);
		if (!other && v->size != s->size && grow_in_place(et, s, v))
			continue;
		if (other || v->size != s->size) {
			/*
			 * Moved away (vmctl volume move): ask the hosts to log out
			 * first (RFC 7143 11.9.1); the removal then drains the I/O
			 * in flight and their next login is redirected.
			 */
			if (s->local && v && !local) {
				int n = tgt_target_request_logout(et->tgt, s->name);
				log_notice("%s: moved to node %" PRIu32 ": asked %d session(s) "
					   "to log out",
					   s->name, v->owner, n < 0 ? 0 : n);
			}
			remove_target(et, s);
		}
	}
	if (!serving)
		return;
	/* 2. Add what is missing, update what changed. */
	for (unsigned i = 0; i < m->nvols; i++) {
		const struct clu_volume *v = &m->vols[i];
		bool local = v->owner == self;
		s = find(et, v->name);
		if (s && s->removing)
			continue; /* re-added once closed */
		if (!local && !clu_volume_portal(et->clu, v)[0])
			continue; /* owner never seen: nowhere to send hosts */
		if (!s) {
			add_target(et, v, local);
			continue;
		}
		const char *allow[CLU_MAX_ACL + 1];
		struct tgt_target_policy pol;
		uint32_t crc = make_policy(et, v, local, &pol, allow);
		if (crc == s->policy_crc)
			continue;
		/* A new redirect or a narrower ACL must reach hosts now: drop their sessions. */
		bool drop = strcmp(pol.redirect, s->redirect) != 0 || v->restricted;
		if (tgt_target_update(et->tgt, v->name, &pol, drop) == 0) {
			s->policy_crc = crc;
			snprintf(s->redirect, sizeof(s->redirect), "%s", pol.redirect);
			log_info("%s: access policy updated", v->name);
		}
	}
}

void eng_targets_changed(void *arg)
{
	struct eng_targets *et = arg;

	if (et->clu)
		reconcile(et);
}

void eng_targets_set_clu(struct eng_targets *et, struct clu *c)
{
	et->clu = c;
	reconcile(et);
}

struct eng_targets *eng_targets_create(struct qb_loop *loop, struct tgt *t,
				       const struct eng_config *cfg)
{
	struct eng_targets *et = calloc(1, sizeof(*et));
	char stub[4200];

	if (!et)
		return NULL;
	et->tgt = t;
	et->cfg = cfg;
	LIST_INIT(&et->served);
	snprintf(stub, sizeof(stub), "%.4000s/stub", cfg->state_dir);
	if (mkdir(stub, 0700) < 0 && errno != EEXIST)
		log_warn("cannot create %s: %s", stub, strerror(errno));
	if (util_mailbox_open(loop, sizeof(struct served *), 1 << 20, on_released, after_released,
			      et, &et->mb) < 0) {
		free(et);
		return NULL;
	}
	return et;
}

void eng_targets_destroy(struct eng_targets *et)
{
	struct served *s;

	if (!et)
		return;
	util_mailbox_close(et->mb);
	/* tgt_shutdown() dropped every session: the volumes have no I/O left. */
	while ((s = LIST_FIRST(&et->served)) != NULL) {
		LIST_REMOVE(s, link);
		eng_vol_close(s->vol);
		free(s);
	}
	free(et);
}
