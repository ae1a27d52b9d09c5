/*
 * engine: vmengined's configuration and wiring. Control thread only.
 */
#ifndef VMENGINE_ENGINE_H
#define VMENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi-tgt/tgt.h"

#define ENG_PATH_MAX	4096
#define ENG_MAX_PORTALS 8
#define ENG_MAX_VOLUMES 256

struct eng_volume {
	char name[VOL_NAME_MAX];
	uint64_t size;
	uint32_t block_size;
	struct iscsi_chap_cred chap;
};

struct eng_portal {
	char addr[64];
	uint16_t port;
};

/* Cluster settings (section "cluster" of the configuration). */
struct eng_cluster {
	char mode[16];	     /* "solo" (default) or "corosync" */
	char ctl_socket[64]; /* libqb IPC name vmctl connects to */
	char advertise[64];  /* "addr:port" peers redirect hosts to; default: first portal */
	bool import_volumes; /* seed an empty map with the "volumes" of this file */
	/*
	 * Failover (engine/failover.c): an engine without quorum fences itself
	 * within fence_ms; the quorate side takes over after 2 x fence_ms.
	 */
	uint32_t fence_ms;
	/* Interface that carries the service addresses; "": addresses not managed. */
	char service_dev[32];
};

struct eng_config {
	char node_name[64];
	char state_dir[ENG_PATH_MAX];
	char pool_dir[ENG_PATH_MAX];
	bool pool_shared; /* pool.shared: the same directory on every engine (shared fs) */
	bool debug;
	bool syslog;
	unsigned reactors; /* 0: one per core */
	struct tgt_config tgt;
	struct eng_portal portals[ENG_MAX_PORTALS];
	unsigned nportals;
	struct eng_volume volumes[ENG_MAX_VOLUMES];
	unsigned nvolumes;
	struct eng_cluster cluster;
};

/* Fill every setting with its default (the values of vmengine.conf.example). */
void eng_config_default(struct eng_config *cfg);

/*
 * Read \p path over the defaults. Returns 0, or -1 with one line describing
 * the first problem (file, line, setting) in \p err.
 */
int eng_config_load(struct eng_config *cfg, const char *path, char *err, size_t errlen);

/* Parse "512", "64K", "10G", ... (powers of 1024). Returns 0 or -EINVAL. */
int eng_parse_size(const char *s, uint64_t *out);

/* Parse "1.2.3.4:3260", "[::1]:3260" or "1.2.3.4" (port 3260). Returns 0 or -EINVAL. */
int eng_parse_portal(const char *s, struct eng_portal *out);

/* The default IPC socket name of vmctl (an abstract socket: one per network namespace). */
#define ENG_CTL_SOCKET "vmengine"

/* ---- the map's volumes served as targets (engine/ctl_targets.c) ---- */

struct clu;
struct qb_loop;
struct eng_targets;

/*
 * Wiring between the replicated map and the target: the owner of a volume
 * serves it from its pool; the other engines expose it with a redirect to
 * the owner's portal; an engine without quorum or with a stale map exposes
 * nothing (it fences itself). Control thread only.
 */
struct eng_targets *eng_targets_create(struct qb_loop *loop, struct tgt *t,
				       const struct eng_config *cfg);
/* Bring the targets in line with the map of \p c (a clu_changed_fn: arg is the eng_targets). */
void eng_targets_changed(void *arg);
void eng_targets_set_clu(struct eng_targets *et, struct clu *c);
/* After tgt_shutdown(): close every volume. */
void eng_targets_destroy(struct eng_targets *et);

/* ---- back ends and virtualized volumes (engine/ctl_backends.c) ---- */

struct eng_backends;
struct clu_volume;
struct util_reactor;
struct Vm__CtlRequest;
struct Vm__CtlReply;
struct Vm__CtlVirtStatus;

/*
 * Log in to every back end of the map of \p c, on reactor \p r; \p changed
 * (\p arg) runs when one comes up (volumes waiting for it can open).
 * One per process. Control thread only.
 */
struct eng_backends *eng_backends_create(struct qb_loop *loop, struct util_reactor *r,
					 struct clu *c, void (*changed)(void *), void *arg);
/* After a map change: log in to new back ends, drop removed ones. */
void eng_backends_changed(struct eng_backends *eb);
void eng_backends_destroy(struct eng_backends *eb);
/* The process's one (NULL before eng_backends_create()): for vmctl's server. */
struct eng_backends *eng_backends_get(void);
/* Open a served volume: a virtualized one from its back ends when \p local
 * and it has legs (-EAGAIN: a back end not logged in yet), else the file
 * \p path. eng_vol_close() closes either. */
int eng_vol_open(const struct clu_volume *v, bool local, const char *path, struct vol **out);
void eng_vol_close(struct vol *vol);
/* vmctl backend add: log in, then a BACKEND_ADD change; \p done as clu_submit(). */
int eng_backends_add(struct eng_backends *eb, const struct Vm__CtlRequest *rq,
		     void (*done)(void *arg, int rc), void *arg);
/* vmctl backend list: fill rep->backends (free with eng_backends_list_free()). */
int eng_backends_list(struct eng_backends *eb, struct Vm__CtlReply *rep);
void eng_backends_list_free(struct Vm__CtlReply *rep);
/* True when this engine is logged in to every back end of leg \p leg of \p v. */
bool eng_backends_leg_up(struct eng_backends *eb, const struct clu_volume *v, unsigned leg);
/* Live state of a virtualized volume served here; false when not served here. */
bool eng_backends_virt_status(struct eng_backends *eb, const char *name,
			      struct Vm__CtlVirtStatus *out);

/* ---- failover: fencing, service addresses, takeover (engine/failover.c) ---- */

struct eng_failover;
struct eng_failover *eng_failover_create(struct qb_loop *loop, struct tgt *t,
					 const struct eng_config *cfg);
/* After every map, membership or quorum change (with the clu set). */
void eng_failover_changed(struct eng_failover *f, struct clu *c);
/* Drop the addresses held (a clean stop); free. */
void eng_failover_destroy(struct eng_failover *f);

/* ---- vmctl's IPC server (engine/ctl.c) ---- */

struct eng_ctl;
/* Serve vmctl on the libqb IPC socket \p name (root only). NULL on error (logged). */
struct eng_ctl *eng_ctl_create(struct qb_loop *loop, const char *name, struct clu *c,
			       const char *mode);
void eng_ctl_destroy(struct eng_ctl *ctl);

#endif /* VMENGINE_ENGINE_H */
