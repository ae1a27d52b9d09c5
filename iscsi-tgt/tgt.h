/*
 * iscsi-tgt: the iSCSI target service of an engine.
 *
 * Portals accept connections and hand each one to a reactor thread, which
 * then owns the connection, its session state and its tasks. Each volume is
 * exposed as its own target (one IQN, LUN 0), so that ownership, ACLs and
 * redirects work per volume.
 *
 * Threads: tgt_create(), tgt_target_add(), tgt_portal_add() and
 * tgt_shutdown() run on the control thread, before or after the reactors
 * run; connections live on the reactors.
 */
#ifndef VMENGINE_TGT_H
#define VMENGINE_TGT_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi/iscsi.h"
#include "util/util.h"
#include "vol/vol.h"

struct tgt;

/* Settings; tgt_config_default() fills every field with its default. */
struct tgt_config {
	char node_prefix[ISCSI_NAME_MAX]; /* IQN prefix: a volume NAME is PREFIX:NAME */
	uint32_t max_recv_dsl;		  /* MaxRecvDataSegmentLength we declare */
	uint32_t max_burst;		  /* MaxBurstLength we accept */
	uint32_t first_burst;		  /* FirstBurstLength we accept */
	bool immediate_data;		  /* ImmediateData we accept */
	bool initial_r2t;		  /* InitialR2T we ask for */
	uint32_t max_outstanding_r2t;
	uint32_t queue_depth;	  /* commands in flight per session (CmdSN window) */
	bool digest_crc32c;	  /* accept CRC32C digests */
	bool digest_none;	  /* accept no digests */
	uint32_t nop_interval_s;  /* NOP-In ping of an idle connection; 0: off */
	uint32_t nop_timeout_s;	  /* drop the connection when the ping is not answered */
	uint32_t login_timeout_s; /* a login must complete in this time */
	uint32_t max_xfer_blocks; /* largest READ/WRITE, in blocks (Block Limits VPD) */
	uint32_t sanitize_mib_s;  /* SANITIZE OVERWRITE pace, MiB/s (background maintenance) */
	struct iscsi_chap_cred discovery_chap; /* empty user: discovery needs no CHAP */
	/* Where persistent reservations with APTPL are kept; "": APTPL unsupported. */
	char state_dir[1024];
};

void tgt_config_default(struct tgt_config *cfg);

/*
 * Create the target service over \p nreactors reactor threads (not yet
 * running is fine). The array is copied; the reactors must outlive the tgt.
 * Returns NULL on error (logged).
 */
struct tgt *tgt_create(const struct tgt_config *cfg, struct util_reactor **reactors,
		       unsigned nreactors);

/*
 * Expose \p vol as target "PREFIX:NAME" with LUN 0. \p chap (may be NULL or
 * have an empty user) requires that CHAP user/secret, and mutual CHAP when
 * its mutual fields are set. The tgt does not take ownership of \p vol.
 * Returns 0, -EEXIST, -ENOMEM.
 */
int tgt_target_add(struct tgt *t, struct vol *vol, const char *alias,
		   const struct iscsi_chap_cred *chap);

/* Access policy of a target, replaced as a whole by tgt_target_update(). */
struct tgt_target_policy {
	/*
	 * Non-empty: the volume is served by another engine at this portal
	 * ("addr:port"); logins are redirected there (RFC 7143 11.13.5, status
	 * 0x0101) and SendTargets lists it as the TargetAddress.
	 */
	char redirect[64];
	/* Initiator names allowed to log in; none listed: everybody. Copied. */
	const char *const *allow;
	unsigned nallow;
	struct iscsi_chap_cred chap; /* empty user: no CHAP */
};

/*
 * Replace the policy of target PREFIX:\p volume_name. Existing sessions are
 * not affected, except that with \p drop_sessions they are closed (hosts log
 * in again and meet the new policy, e.g. a redirect). Any thread.
 * Returns 0, -ENOENT, -ENOMEM.
 */
int tgt_target_update(struct tgt *t, const char *volume_name, const struct tgt_target_policy *p,
		      bool drop_sessions);

/*
 * Stop exposing PREFIX:\p volume_name: no new logins, its sessions close.
 * When the last session is gone \p released(\p arg) runs (on a reactor
 * thread, or before returning when there was none); only then may the
 * caller close the volume. Returns 0 or -ENOENT (then \p released never runs).
 */
int tgt_target_remove(struct tgt *t, const char *volume_name, void (*released)(void *arg),
		      void *arg);

/*
 * Ask every session of PREFIX:\p volume_name to log out with an Async
 * Message (RFC 7143 11.9.1, AsyncEvent 1), sent on each session's reactor.
 * Sessions are not closed here. Any thread. Returns the number of sessions
 * asked, or -ENOENT.
 */
int tgt_target_request_logout(struct tgt *t, const char *volume_name);

/*
 * The volume behind PREFIX:\p volume_name has grown (vol_size() reports the
 * new size): every nexus of its LU gets the unit attention CAPACITY DATA
 * HAS CHANGED (2A/09) on its next command, so hosts re-read the capacity
 * with their sessions kept. Any thread; an unknown name is ignored.
 */
void tgt_target_capacity_changed(struct tgt *t, const char *volume_name);

/*
 * Listen on \p addr:\p port (IPv4 or IPv6 literal). Returns 0 or a negative
 * errno (logged, e.g. -EADDRINUSE).
 */
int tgt_portal_add(struct tgt *t, const char *addr, uint16_t port);

/*
 * Stop: close the portals, drop every connection (outstanding I/O is
 * waited for, then the sockets close), and return when all reactors have
 * released their connections. Reactors must still be running.
 */
void tgt_shutdown(struct tgt *t);
/* Free; after tgt_shutdown() and after the reactors stopped. */
void tgt_destroy(struct tgt *t);

#endif /* VMENGINE_TGT_H */
