/*
 * cluster: the replicated volume map of vmengine and the engine's membership.
 *
 * Every engine joins the CPG group "vmengine". A map change is multicast with
 * CPG_TYPE_AGREED and applied by every member when CPG delivers it (never
 * when it is sent) to the same deterministic state machine, so that all
 * members apply the same changes in the same order; each applied change
 * increments the map version. After every configuration change the members
 * exchange their map versions; the highest version (ties: the lowest node id)
 * sends its map and the others adopt it; changes delivered meanwhile are
 * queued and replayed after the adoption. Without quorum no change applies.
 *
 * Everything that touches Corosync goes through struct clu_ops, so that the
 * same state machine runs on Corosync (clu_corosync_create()), alone
 * (clu_solo_create(): solo mode, no Corosync) or in a test's in-memory
 * network. The state machine never blocks and never calls back into the ops
 * from inside clu_deliver()/clu_confchg() in a way that re-enters it.
 *
 * Threads: one thread only (the engine's control thread, running the libqb
 * main loop); nothing here is locked.
 */
#ifndef VMENGINE_CLUSTER_H
#define VMENGINE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "vol/vol.h"

#define CLU_MAX_NODES	64
#define CLU_MAX_VOLUMES 1024
#define CLU_MAX_ACL	64  /* initiators per volume */
#define CLU_IQN_MAX	224 /* RFC 7143 4.2.7.1: names are at most 223 bytes */
#define CLU_SECRET_MAX	256
#define CLU_NAME_MAX	64 /* engine names */
#define CLU_PORTAL_MAX	64 /* "addr:port" */
#define CLU_MAP_FILE	"map.pb"

/* ---- the map model (cluster/map.c; belongs in vol/ once vol.h can take it) ---- */

struct clu_volume {
	char name[VOL_NAME_MAX];
	uint64_t size;	     /* bytes */
	uint32_t block_size; /* 512 or 4096 */
	uint32_t owner;	     /* node id serving it */
	uint32_t partner;    /* node id of the partner, 0: none */
	bool restricted;     /* an ACL was set: only allow[] may log in (maybe none) */
	unsigned nallow;
	char (*allow)[CLU_IQN_MAX];
	char chap_user[CLU_IQN_MAX]; /* empty: no CHAP */
	char chap_secret[CLU_SECRET_MAX];
	char chap_mutual_user[CLU_IQN_MAX]; /* empty: one-way CHAP */
	char chap_mutual_secret[CLU_SECRET_MAX];
	uint64_t generation; /* map version of the volume's last change */
	/*
	 * Virtualized volume (issue 6, cluster/map_virt.c): nlegs 0 is a pool
	 * file. Here an extent's "backend" is a back-end id (struct
	 * clu_backend), not an index: ids stay valid when back ends go.
	 */
	uint64_t extent_size;
	uint64_t region_size;
	uint32_t nlegs;
	struct vol_leg_desc legs[VOL_MAX_LEGS];
	/* Failover: "addr:port" hosts use; "": the owner's portal (cluster/failover.c). */
	char service_portal[CLU_PORTAL_MAX];
};

#define CLU_MAX_BACKENDS 64

/* A back-end LUN every engine logs in to. */
struct clu_backend {
	uint32_t id; /* the map version that added it: unique, never reused */
	char portal[CLU_PORTAL_MAX];
	char target[CLU_IQN_MAX];
	uint32_t lun;
	char chap_user[CLU_IQN_MAX]; /* empty: no CHAP */
	char chap_secret[CLU_SECRET_MAX];
	uint64_t size; /* bytes, as the engine that added it saw it */
	uint32_t block_size;
};

struct clu_map {
	uint64_t version;
	unsigned nvols;
	unsigned cap;
	struct clu_volume *vols; /* sorted by name */
	unsigned nbackends;
	struct clu_backend *backends; /* sorted by id */
};

/* ---- back ends and virtualized volumes (cluster/map_virt.c) ---- */

/* Free / deep-copy a volume's legs. */
void clu_virt_volume_free(struct clu_volume *v);
int clu_virt_volume_copy(struct clu_volume *dst, const struct clu_volume *src);
int clu_virt_backends_copy(struct clu_map *dst, const struct clu_map *src);
const struct clu_backend *clu_map_backend(const struct clu_map *m, uint32_t id);
/*
 * Apply BACKEND_ADD / BACKEND_REMOVE / LEG_STATE (clu_map_apply()'s errors;
 * -EBUSY: a back end still holds extents). Deterministic.
 */
int clu_virt_apply(struct clu_map *m, const Vm__MapChange *c);
/*
 * A new volume \p v with c->mirror legs: allocate its extents from the back
 * ends' free space as the map records it (first fit, legs on distinct back
 * ends). -ENOSPC when they do not fit.
 */
int clu_virt_create(struct clu_map *m, struct clu_volume *v, const Vm__MapChange *c);
/* Grow a virtualized volume: new extents on each leg's back end. */
int clu_virt_resize(struct clu_map *m, struct clu_volume *v, uint64_t size);
/* Bytes of free extents on back end \p id (0 when unknown). */
uint64_t clu_virt_free_bytes(const struct clu_map *m, uint32_t id);
/* \p v as a vol_desc for vol_open_virt(): extent i of leg l on backend index
 * idx_of(id); 0 or -ENOMEM / -ENOENT (unknown back end). */
int clu_virt_desc(const struct clu_map *m, const struct clu_volume *v, struct vol_desc *d,
		  uint32_t *ids, uint32_t *nids);
/* Protobuf: legs of \p v into \p p (allocated; clu_virt_pb_free_volume()), back ends. */
int clu_virt_volume_to_pb(const struct clu_volume *v, Vm__Volume *p);
void clu_virt_pb_free_volume(Vm__Volume *p);
int clu_virt_backends_to_pb(const struct clu_map *m, Vm__Map *out);
void clu_virt_backends_pb_free(Vm__Map *out);
/* Validating parse (-EBADMSG). */
int clu_virt_volume_from_pb(struct clu_volume *v, const Vm__Volume *p);
int clu_virt_backends_from_pb(struct clu_map *m, const Vm__Map *pb);

void clu_map_init(struct clu_map *m);
void clu_map_clear(struct clu_map *m); /* frees; leaves an empty map at version 0 */
const struct clu_volume *clu_map_find(const struct clu_map *m, const char *name);
/* Deep copy; 0 or -ENOMEM (then \p dst is empty). */
int clu_map_copy(struct clu_map *dst, const struct clu_map *src);
/* Volumes and bytes owned by \p node. */
unsigned clu_map_owned(const struct clu_map *m, uint32_t node, uint64_t *bytes);
/* True for 1-63 of a-z 0-9 '-' '.' (the name becomes part of an IQN, RFC 3722). */
bool clu_volume_name_valid(const char *name);

/*
 * Apply one change, deterministically: the result depends only on \p m and
 * \p c. Returns 0 (applied, version incremented) or a negative errno and
 * leaves the map untouched: -EEXIST (name taken), -ENOENT (unknown volume),
 * -EINVAL (bad name, size not a non-zero multiple of the block size, block
 * size not 512/4096, shrink, bad IQN or CHAP), -ENOSPC (too many volumes or
 * ACL entries), -EALREADY (no-op: IQN already allowed / not listed),
 * -EOPNOTSUPP (unknown op), -ENOMEM.
 */
int clu_map_apply(struct clu_map *m, const Vm__MapChange *c);

/*
 * Protobuf form. clu_map_to_pb() fills \p out with pointers into \p m (no
 * string copies); release with clu_map_pb_free() before \p m changes.
 * clu_map_from_pb() validates everything (names, sizes, order, duplicates)
 * and returns 0 or -EBADMSG / -ENOMEM, leaving \p m untouched on error.
 */
int clu_map_to_pb(const struct clu_map *m, Vm__Map *out);
void clu_map_pb_free(Vm__Map *pb);
int clu_map_from_pb(struct clu_map *m, const Vm__Map *pb);
/* CRC32C of the packed map: equal maps have equal digests. */
uint32_t clu_map_digest(const struct clu_map *m);

/*
 * Persist \p m to DIR/map.pb: write DIR/map.pb.tmp, fsync, rename, fsync DIR,
 * so that a crash leaves the old or the new map, never a mix. Returns 0 or a
 * negative errno (logged).
 */
int clu_map_save(const struct clu_map *m, const char *dir);
/*
 * Load DIR/map.pb into \p m. A missing file is an empty map at version 0
 * (first start) and returns 0 with *\p found false. A file that is truncated,
 * corrupt (envelope, CRC, protobuf) or invalid returns -EBADMSG with one line
 * in \p err naming the file and the problem: the caller must refuse to start
 * rather than serve an empty map. Other errors: -errno with \p err set.
 */
int clu_map_load(struct clu_map *m, const char *dir, bool *found, char *err, size_t errlen);

/* ---- the cluster state machine (cluster/cluster.c) ---- */

struct clu;

/* Everything the state machine needs from the outside world. */
struct clu_ops {
	/*
	 * Multicast \p buf to the group, agreed order, self included. Returns 0,
	 * -EAGAIN (Corosync's CS_ERR_TRY_AGAIN: retry later; the state machine
	 * queues and backs off), or another negative errno (message lost).
	 */
	int (*mcast)(void *ctx, const void *buf, size_t len);
	/* Arm a one-shot timer: \p fn(\p arg) after \p ms. NULL on -ENOMEM. */
	void *(*timer_add)(void *ctx, uint32_t ms, void (*fn)(void *arg), void *arg);
	void (*timer_del)(void *ctx, void *timer);
};

/* What this engine tells its peers about itself. */
struct clu_self {
	uint32_t node;		     /* Corosync node id (1 in solo mode) */
	char name[CLU_NAME_MAX];     /* engine name */
	char portal[CLU_PORTAL_MAX]; /* "addr:port" of its iSCSI portal */
	char state_dir[4096];	     /* where map.pb lives; empty: not persisted */
};

enum clu_sync_state {
	CLU_STATE_JOINING,	 /* no configuration seen yet */
	CLU_STATE_SYNC_VERSIONS, /* waiting for every member's version */
	CLU_STATE_SYNC_MAP,	 /* waiting for the chosen member's map */
	CLU_STATE_SYNCED,
};
const char *clu_state_str(enum clu_sync_state s);

/* Called after the map or the serving state changed (never re-entered). */
typedef void (*clu_changed_fn)(void *arg);

/*
 * Create the state machine over \p ops (\p ops_ctx is their first argument).
 * \p map is the loaded map (its content is moved into the state machine).
 * Returns NULL on -ENOMEM.
 */
struct clu *clu_create(const struct clu_ops *ops, void *ops_ctx, const struct clu_self *self,
		       struct clu_map *map, clu_changed_fn changed, void *changed_arg);
/* Free; pending requests complete with -ECANCELED. */
void clu_destroy(struct clu *c);

/* ---- inputs from the membership layer (Corosync binding, solo, tests) ---- */

/*
 * A message delivered by CPG from \p from. \p buf is only valid during the
 * call (CPG's rule): everything kept is unpacked into owned memory. Messages
 * with a bad envelope, of an unknown type, oversized or not unpackable are
 * dropped and counted.
 */
void clu_deliver(struct clu *c, uint32_t from, const void *buf, size_t len);
/* The new configuration: the full member list (any order), this node included. */
void clu_confchg(struct clu *c, const uint32_t *members, unsigned n);
/* Votequorum's view: quorate or not, and the expected votes. */
void clu_quorum(struct clu *c, bool quorate, uint32_t expected_votes);
/* The Corosync connection is gone (corosync stopped): not a member of anything. */
void clu_disconnected(struct clu *c);

/* ---- requests (vmctl) ---- */

/*
 * Completion of a request: \p rc is the result of applying the change on
 * this node (0 or a clu_map_apply() errno), or -ENOTCONN (no quorum),
 * -ETIMEDOUT (not delivered within CLU_REQUEST_TIMEOUT_MS), -EBUSY (send
 * queue full), -ECANCELED (shutdown).
 */
#define CLU_REQUEST_TIMEOUT_MS 15000
typedef void (*clu_done_fn)(void *arg, int rc);

/*
 * Multicast \p chg (its origin and request fields are set here). For
 * VOLUME_CREATE with owner 0, the owner and partner are placed here (least
 * loaded members). Returns 0: \p done will be called exactly once, after the
 * change was applied (or rejected) on delivery here. Returns a negative
 * errno: \p done is never called: -ENOTCONN (no quorum, or not in sync),
 * -ENOENT (--owner is not a member), -EBUSY, -ENOMEM.
 */
int clu_submit(struct clu *c, Vm__MapChange *chg, clu_done_fn done, void *arg);
/* Forget the request(s) with \p arg (its client went away): \p done is not called. */
void clu_cancel(struct clu *c, void *arg);

/* ---- views ---- */

const struct clu_map *clu_map(const struct clu *c);
/* True when this engine may serve I/O: quorate and its map in sync since quorum came back. */
bool clu_serving(const struct clu *c);
bool clu_quorate(const struct clu *c);
enum clu_sync_state clu_state(const struct clu *c);
uint32_t clu_nodeid(const struct clu *c);
/* Portal of \p node ("" when unknown); its name likewise. */
const char *clu_peer_portal(const struct clu *c, uint32_t node);
const char *clu_peer_name(const struct clu *c, uint32_t node);
/* Look up a member by name or decimal id; 0 when none. */
uint32_t clu_member_lookup(const struct clu *c, const char *name_or_id);
/* Fill a vmctl status (strings point into \p c; free with clu_status_free()). */
int clu_status(const struct clu *c, Vm__CtlStatus *st);
void clu_status_free(Vm__CtlStatus *st);
/* Set this engine's load for the next load report (from the engine's counters). */
void clu_set_load(struct clu *c, uint64_t read_ops, uint64_t write_ops, uint64_t bytes);

/*
 * Back ends as each engine sees them. Every engine logs in to every back end
 * on its own, so their views differ (a network path down, a login refused);
 * each sends its view in its load reports and keeps its peers' latest.
 */
enum clu_be_state {
	CLU_BE_OPENING = 0, /* logging in, not up yet */
	CLU_BE_UP = 1,
	CLU_BE_FAILED = 2,
};
struct clu_backend_seen {
	uint32_t id;	/* the back end's id in the map */
	uint32_t state; /* enum clu_be_state (a peer may send a value unknown here) */
	uint64_t size;	/* bytes, as that engine's login found it; 0: not known yet */
};
/*
 * Set this engine's view for its next load reports: \p n entries of \p seen
 * are copied (at most CLU_MAX_BACKENDS; the rest are ignored).
 */
void clu_set_backends_seen(struct clu *c, const struct clu_backend_seen *seen, unsigned n);
/*
 * What member \p node said of back end \p id in its latest load report (for
 * this engine itself: the view last set). Returns 0 with *\p out and
 * *\p age_s (whole seconds since the report was delivered, from the state
 * machine's tick, so 0 or a little behind); -ENOENT when \p node is not a
 * member (a member that left is forgotten); -ENODATA when it has not
 * reported since it joined, or its report does not list \p id.
 */
int clu_backend_seen(const struct clu *c, uint32_t node, uint32_t id, struct clu_backend_seen *out,
		     uint32_t *age_s);

/* Drop counters (also in clu_status()). */
struct clu_drops {
	uint64_t malformed; /* bad magic, version, length, CRC, or not unpackable */
	uint64_t unknown;   /* unknown type */
	uint64_t oversized; /* above the type's limit */
};
const struct clu_drops *clu_drops(const struct clu *c);

/* Test hook: multicast a malformed message: "unknown", "oversized" or "corrupt". */
int clu_send_bad(struct clu *c, const char *kind);

/* ---- write intent records (cluster/regions.c) ----
 *
 * The owner of a mirrored volume multicasts which regions may differ
 * between its legs (RegionIntent: SET before it writes a region, CLEAR once
 * the region is idle, FULL when it opens the volume and after every
 * configuration change in which a member joined). Every engine keeps, per
 * mirrored volume of the map, the last record of its owner: a bitmap (1 bit
 * per region) and a `complete` flag, true once a FULL of that owner arrived
 * and nothing of its since may have been missed (it turns false when the
 * owner joins this engine's configuration again: they were apart). When the
 * owner leaves the membership, the record stays as it was: a new owner uses
 * it to resync only those regions. When the map gives the volume to another
 * engine, the record stays (the new owner reads it when it opens the
 * volume) until that engine's first message replaces it; a second owner
 * change without a word from the first new owner makes it incomplete.
 */

/* Words of the bitmap in one RegionIntent; a larger FULL goes in parts. */
#define CLU_REGIONS_PART_WORDS 4096

/*
 * Multicast \p op for volume \p volume, which this engine owns: \p words is
 * the bitmap of \p nwords words (only non-zero words travel). SET: returns 0
 * and \p done(\p arg, rc) runs exactly once, on delivery of the message here
 * (never inline): rc 0 when it was delivered in a quorate configuration
 * while this engine still owned the volume (every member of that
 * configuration has it), else -ENOTCONN, -ESTALE (no longer the owner),
 * -ETIMEDOUT (not delivered within CLU_REQUEST_TIMEOUT_MS), -ECANCELED
 * (shutdown). CLEAR and FULL: \p done is ignored. Returns a negative errno
 * and never calls \p done: -ENOTCONN (fenced), -ENOENT (not a mirrored
 * volume of this engine), -EBUSY / -ENOMEM (send queue), -EINVAL.
 */
int clu_regions_send(struct clu *c, const char *volume, Vm__RegionOp op, const uint64_t *words,
		     size_t nwords, clu_done_fn done, void *arg);

struct clu_region_view {
	uint32_t owner;	    /* the engine whose record it is */
	uint32_t successor; /* the map's owner since, 0: still the owner */
	bool complete;
	uint64_t count; /* regions set */
	size_t nwords;	/* words held (the rest are zero) */
};
/*
 * The record of \p volume: 0 with *\p out and, when \p words is not NULL, its
 * first \p nwords words (zero-filled past the record); -ENOENT: none.
 */
int clu_regions_get(const struct clu *c, const char *volume, struct clu_region_view *out,
		    uint64_t *words, size_t nwords);
/* Configuration changes so far in which a member joined (an owner then sends FULLs). */
uint64_t clu_regions_joins(const struct clu *c);

struct clu_regions_stats {
	uint64_t applied; /* messages applied to a record */
	uint64_t stale;	  /* from an engine that is not the volume's owner: ignored */
	uint64_t bad;	  /* invalid (also counted in clu_drops().malformed) */
};
const struct clu_regions_stats *clu_regions_stats(const struct clu *c);

/* ---- failover (cluster/failover.c) ---- */

/* The portal hosts use for \p v: its service portal, else its owner's. */
const char *clu_volume_portal(const struct clu *c, const struct clu_volume *v);
/* The current configuration's members (sorted); returns how many were copied. */
unsigned clu_members(const struct clu *c, uint32_t *out, unsigned max);
/* True when this engine must not serve: not serving, or its configuration is a minority. */
bool clu_fenced(const struct clu *c);
/* "addr:port" / "[v6]:port" / "addr" -> "addr". 0 or -EINVAL / -ENAMETOOLONG. */
int clu_portal_host(const char *portal, char *out, size_t len);

/* One volume of a lost owner, and who takes it over. */
struct clu_takeover {
	char name[VOL_NAME_MAX];
	uint32_t old_owner;
	uint32_t owner;	  /* the partner when it is a member, else the least loaded */
	uint32_t partner; /* least loaded member other than the new owner; 0: none */
	bool pool_file;	  /* its data is a pool file (no back-end legs) */
};
/*
 * The volumes of \p m whose owner is not in \p members, with their new owner
 * and partner. Pure: every member computes the same plan.
 */
unsigned clu_failover_plan(const struct clu_map *m, const uint32_t *members, unsigned n,
			   struct clu_takeover *out, unsigned max);
/*
 * The service addresses (host part) engine \p self should hold: the portal
 * of every volume it owns, and its own (\p self_portal) unless a volume of
 * another engine uses it (taken over). \p portal_of gives a volume's portal.
 */
unsigned clu_addr_wanted(const struct clu_map *m, uint32_t self, const char *self_portal,
			 const char *(*portal_of)(void *arg, const struct clu_volume *v), void *arg,
			 char (*out)[CLU_PORTAL_MAX], unsigned max);
/* Add / remove \p addr (host route: /32, /128) on \p dev; 0 when already so. */
int clu_addr_add(const char *dev, const char *addr);
int clu_addr_del(const char *dev, const char *addr);
/* Broadcast an ARP announcement of \p addr from \p dev (IPv4; IPv6: no-op). */
int clu_garp(const char *dev, const char *addr);

/* ---- bindings (cluster/corosync.c, cluster/solo.c) ---- */

struct qb_loop;
struct clu_binding;

/*
 * Solo mode: one member, always quorate; mcast delivers to itself from the
 * main loop. Creates the state machine (returned in *\p out).
 */
struct clu_binding *clu_solo_create(struct qb_loop *loop, const struct clu_self *self,
				    struct clu_map *map, clu_changed_fn changed, void *arg,
				    struct clu **out);
/*
 * Corosync: CPG group "vmengine" (CPG_TYPE_AGREED), votequorum tracking, on
 * \p loop. self->node is replaced by Corosync's local node id. Corosync may
 * start later: the binding retries every second and the state machine stays
 * not serving until it has joined and synced.
 */
struct clu_binding *clu_corosync_create(struct qb_loop *loop, struct clu_self *self,
					struct clu_map *map, clu_changed_fn changed, void *arg,
					struct clu **out);
void clu_binding_destroy(struct clu_binding *b); /* also destroys its clu */
const char *clu_binding_mode(const struct clu_binding *b);

#endif /* VMENGINE_CLUSTER_H */
