/*
 * cluster_internal.h: shared between the .c files of cluster/ only.
 */
#ifndef VMENGINE_CLUSTER_INTERNAL_H
#define VMENGINE_CLUSTER_INTERNAL_H

#include "cluster/cluster.h"

/* Bounds of the state machine's queues. */
#define CLU_SENDQ_MAX	   256	/* messages waiting for CS_ERR_TRY_AGAIN to clear */
#define CLU_QUEUED_MAX	   4096 /* changes delivered during a state transfer */
#define CLU_BACKOFF_MIN_MS 5
#define CLU_BACKOFF_MAX_MS 1000
#define CLU_TICK_MS	   1000 /* request timeouts, load reports */
#define CLU_LOAD_TICKS	   3	/* a load report every 3 ticks */

/* The binding learned the local node id (Corosync may start after the engine). */
void clu_set_nodeid(struct clu *c, uint32_t node);

/* The round id of a configuration: CRC32C of its sorted members and resync count. */
uint32_t clu_round_id(const uint32_t *sorted, unsigned n, uint32_t resyncs);

/* One-shot timers on a libqb main loop, in the shape struct clu_ops wants (cluster/loop.c). */
struct qb_loop;
void *clu_loop_timer_add(struct qb_loop *loop, uint32_t ms, void (*fn)(void *arg), void *arg);
void clu_loop_timer_del(struct qb_loop *loop, void *timer);

/* A binding: the ops of one membership layer around one state machine. */
struct clu_binding {
	const char *mode;
	struct qb_loop *loop;
	struct clu *clu;
	void (*destroy)(struct clu_binding *b);
};

/* ---- write intent records (regions.c), kept inside struct clu ---- */

struct region_rec {
	char name[VOL_NAME_MAX];
	uint32_t owner;
	uint32_t successor; /* the map's owner since, 0: none */
	bool complete;
	bool full_open;	    /* a FULL in parts is arriving */
	uint32_t full_next; /* the part it expects */
	uint64_t count;
	size_t nwords;
	uint64_t *words;
};

struct region_wait {
	LIST_ENTRY(region_wait) link;
	uint64_t seq;
	unsigned ticks_left;
	clu_done_fn done;
	void *arg;
};

struct clu_regions {
	struct region_rec *recs;
	unsigned nrecs, cap;
	uint32_t members[CLU_MAX_NODES]; /* as of the last update */
	unsigned nmembers;
	uint64_t joins;
	uint64_t next_seq;
	LIST_HEAD(, region_wait) waits; /* this engine's SETs not yet delivered */
	struct clu_regions_stats stats;
};

void clu_regions_init(struct clu_regions *r);
/* Pending SETs complete with -ECANCELED; records freed. */
void clu_regions_fini(struct clu *c);
/* A delivered RegionIntent. */
void clu_regions_on_msg(struct clu *c, uint32_t from, const Vm__RegionIntent *m);
/* After every change of the map or the membership (clu_notify()). */
void clu_regions_update(struct clu *c);
/* Every CLU_TICK_MS: SETs not delivered in time fail. */
void clu_regions_tick(struct clu *c);

/* ---- the state machine, shared by cluster.c (core) and sync.c (state transfer) ---- */

struct peer {
	uint32_t node;
	char name[CLU_NAME_MAX];
	char portal[CLU_PORTAL_MAX];
	bool announced; /* its SyncVersion of the current round was delivered */
	uint64_t version;
	uint32_t digest;
	uint64_t read_ops, write_ops, bytes;
	uint32_t volumes;
	uint64_t report_version;
	/* Back ends of its latest load report; valid: one came since it joined. */
	bool seen_valid;
	unsigned seen_tick; /* clu.ticks when it was delivered */
	unsigned nseen;
	struct clu_backend_seen seen[CLU_MAX_BACKENDS];
};

struct queued {
	STAILQ_ENTRY(queued) link;
	Vm__MapChange *chg; /* unpacked: owned */
};

struct sendq_ent {
	STAILQ_ENTRY(sendq_ent) link;
	uint8_t *buf;
	size_t len;
};

struct request {
	LIST_ENTRY(request) link;
	uint64_t id;
	unsigned ticks_left;
	clu_done_fn done;
	void *arg;
};

struct clu {
	const struct clu_ops *ops;
	void *ctx;
	struct clu_self self;
	struct clu_map map;
	clu_changed_fn changed;
	void *changed_arg;

	enum clu_sync_state state;
	uint32_t members[CLU_MAX_NODES]; /* sorted */
	unsigned nmembers;
	uint32_t resyncs; /* restarts of the transfer within this configuration */
	uint32_t round;
	uint32_t leader;
	bool resync_asked; /* this node asked for a resync in this round */
	struct peer peers[CLU_MAX_NODES];
	unsigned npeers;

	STAILQ_HEAD(, queued) queue;
	unsigned nqueued;
	STAILQ_HEAD(, sendq_ent) sendq;
	unsigned nsendq;
	uint32_t backoff_ms;
	void *retry_timer;
	uint64_t send_retries;

	LIST_HEAD(, request) requests;
	uint64_t next_request;
	void *tick_timer;
	unsigned ticks;

	bool quorate;
	uint32_t expected_votes;
	bool stale; /* the map may be behind: not serving until a quorate round completes */

	uint64_t load_read, load_write, load_bytes;
	unsigned nself_seen; /* this engine's back ends, for its load reports */
	struct clu_backend_seen self_seen[CLU_MAX_BACKENDS];
	struct clu_drops drops;
	struct clu_regions regions; /* write intent records (regions.c) */
};

struct peer *clu_peer_get(struct clu *c, uint32_t node, bool add);
bool clu_is_member(const struct clu *c, uint32_t node);
/*
 * The quorum gate of a delivered change: a majority of the expected votes
 * in the configuration that delivers it (the same on every member).
 */
bool clu_config_quorate(const struct clu *c);
void clu_notify(struct clu *c);
/* Write the map to the state directory (if any); errors are logged. */
void clu_persist(struct clu *c);
/* Pack and multicast (or queue behind CS_ERR_TRY_AGAIN). 0 or a negative errno. */
int clu_send_msg(struct clu *c, uint16_t type, const ProtobufCMessage *m);
void clu_request_complete(struct clu *c, uint64_t id, int rc);
/* Drop the changes queued during a transfer; local requests get -EAGAIN. */
void clu_queue_discard(struct clu *c, const char *why);
/* Apply one delivered change (quorum gate, persist, answer, notify). */
void clu_apply_change(struct clu *c, const Vm__MapChange *chg);

/* Delivered messages, by type (sync.c); \p chg is taken. */
void clu_sync_on_version(struct clu *c, uint32_t from, const Vm__SyncVersion *sv);
void clu_sync_on_map(struct clu *c, uint32_t from, const Vm__SyncMap *sm);
void clu_sync_on_change(struct clu *c, Vm__MapChange *chg);
void clu_sync_on_load(struct clu *c, uint32_t from, const Vm__LoadReport *lr);

#endif /* VMENGINE_CLUSTER_INTERNAL_H */
