/*
 * iscsi-init: the engine's iSCSI initiator (RFC 7143, ErrorRecoveryLevel 0).
 *
 * One struct ini_session is one session of one connection to one target. It
 * lives on one reactor (util.h): every function below must be called on that
 * reactor's thread, and every callback runs on it. There is no thread per
 * session and no blocking call; a session is a set of fd and tick callbacks.
 *
 * The process must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)): PDUs go out
 * with writev(2), and a target that closes the connection must be seen as a
 * connection loss to recover from, not kill the program.
 *
 * Asynchronous contract (STYLE.md rule 15): (cb, cb_arg) come last. A return
 * of 0 means the callback will be called exactly once, later (never from
 * inside the submitting call). A negative errno means it will never be
 * called.
 *
 * Buffers: the iovecs and buffers handed to a command belong to the caller and
 * must stay valid, and untouched for a write, until the command's callback.
 * Data goes between them and the socket without a copy (a Data-In segment
 * that straddles two iovec elements is the one exception: it goes through a
 * per-session bounce buffer).
 *
 * Final error codes a command callback may see (anything else is a bug):
 *   0            success (GOOD status)
 *   -EIO         CHECK CONDITION with a sense key that is not retried
 *                (MEDIUM ERROR, HARDWARE ERROR, ABORTED COMMAND after retries...)
 *   -EINVAL      ILLEGAL REQUEST (bad LBA, unsupported CDB or LUN)
 *   -EROFS       DATA PROTECT (write-protected LUN)
 *   -EILSEQ      MISCOMPARE (COMPARE AND WRITE found different data)
 *   -ENOSPC      space allocation failed (thin provisioning)
 *   -EBUSY       BUSY, TASK SET FULL or RESERVATION CONFLICT beyond the retry budget
 *   -ETIMEDOUT   the command was sent cfg.cmd_retries + 1 times and each attempt
 *                timed out (cfg.cmd_timeout_ms) or was lost with the connection
 *   -ENOTCONN    the session could not be recovered within cfg.recovery_timeout_ms,
 *                or recovery is off (cfg.recovery_timeout_ms == 0)
 *   -ECANCELED   aborted by a task management function or by ini_session_close()
 *   -EPROTO      the target broke the protocol for this command (e.g. Reject)
 * Connection loss, UNIT ATTENTION, BUSY and TASK SET FULL are retried inside the
 * library and never reach the caller on their own.
 */
#ifndef VMENGINE_INI_H
#define VMENGINE_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iscsi/iscsi.h"
#include "util/util.h"

#define INI_HOST_MAX	 256
#define INI_MAX_TASKS	 1024 /* commands queued or in flight per session */
#define INI_MAX_LUNS	 64   /* LUNs probed on connect */
#define INI_DESIG_MAX	 256  /* bytes of VPD 0x83 designators kept per LUN */
#define INI_MAX_TARGETS	 64   /* targets kept from one SendTargets */
#define INI_DEFAULT_PORT ISCSI_DEFAULT_PORT

/* What a session connects to and how. Copied by ini_session_create(). */
struct ini_config {
	char host[INI_HOST_MAX]; /* portal: IPv4/IPv6 literal or host name */
	uint16_t port;		 /* 0: 3260 */
	char initiator_name[ISCSI_NAME_MAX];
	char target_name[ISCSI_NAME_MAX]; /* ignored by ini_discover() */
	/* CHAP: empty user means none; mutual_secret set means mutual CHAP. */
	struct iscsi_chap_cred chap;
	bool header_digest;	   /* require CRC32C header digests */
	bool data_digest;	   /* require CRC32C data digests */
	uint8_t isid_qualifier[3]; /* low 3 bytes of the ISID; 0: derived from the PID */
	uint32_t max_recv_dsl;	   /* our MaxRecvDataSegmentLength; 0: 262144 */
	uint32_t cmd_timeout_ms;   /* a sent command unanswered this long drops the
				      connection (then it is retried); 0: 30000 */
	uint32_t cmd_retries;	   /* resends after timeouts/connection losses; 0: 5 */
	/* Time to get a lost session back before queued commands fail with
	 * -ENOTCONN. 0: never reconnect. UINT32_MAX: forever. */
	uint32_t recovery_timeout_ms;
	uint32_t nop_interval_ms;  /* NOP-Out ping after this much silence; 0: 5000 */
	uint32_t login_timeout_ms; /* one login attempt; 0: 10000 */
	bool probe_luns;	   /* REPORT LUNS + READ CAPACITY + INQUIRY on connect */
};

/* Defaults for every field (initiator name from the host name, probe on). */
void ini_config_default(struct ini_config *cfg);

/*
 * Parse "iscsi://[user[%secret]@]host[:port]/target-iqn/lun[?opt=val&...]"
 * (libiscsi's form; an IPv6 host in brackets) into \p cfg (other fields kept)
 * and *\p lun. Options: header_digest=crc32c|none, data_digest=crc32c|none,
 * digest=crc32c|none (both), target_user=U and target_password=S (mutual
 * CHAP, libiscsi's names). The target and LUN may be omitted ("iscsi://host")
 * for discovery: then target_name is empty and *\p lun is 0.
 * Returns 0 or -EINVAL.
 */
int ini_url_parse(const char *url, struct ini_config *cfg, uint64_t *lun);

/* One LUN as seen on connect. */
struct ini_lun {
	uint64_t lun;
	uint8_t device_type; /* INQUIRY peripheral device type (0: disk) */
	uint64_t blocks;     /* READ CAPACITY 16: last LBA + 1; 0 when unknown */
	uint32_t block_size;
	bool thin; /* LBPME: UNMAP is meaningful */
	char vendor[9], product[17], revision[5];
	/* VPD page 0x83 designation descriptors as returned (identifies the LUN
	 * across paths: the same LUN seen twice has equal designators). */
	uint8_t desig[INI_DESIG_MAX];
	uint16_t desig_len;
};

struct ini_session;

typedef void (*ini_cb)(void *cb_arg, int rc);

/*
 * Create a session on reactor \p r (the calling thread must be r's thread,
 * or r must not run yet). Nothing is sent until ini_session_connect().
 * Returns 0 and *\p out, or -ENOMEM / -EINVAL (missing names).
 */
int ini_session_create(struct util_reactor *r, const struct ini_config *cfg,
		       struct ini_session **out);

/*
 * Log in (following redirections, RFC 7143 11.13.5 status 0x0101/0x0102)
 * and, when cfg.probe_luns, probe the LUNs. \p cb gets 0, or the first
 * login's failure: -ECONNREFUSED / -EHOSTUNREACH / -ETIMEDOUT (portal),
 * -EACCES (authentication, 0x0201/0x0202 or mutual CHAP failed), -ENOENT
 * (0x0203/0x0204 target not found), -EPROTO (bad negotiation), -EAGAIN (the
 * target is out of resources or unavailable, 0x03xx). Failures of the first
 * login are not retried; once connected, losses are recovered.
 */
int ini_session_connect(struct ini_session *s, ini_cb cb, void *cb_arg);

/*
 * Fail every queued command with -ECANCELED, log out (RFC 7143 11.14, reason
 * 0: close the session) and close the connection. \p cb runs once that is done
 * (or the logout timed out); the session can then only be destroyed.
 */
int ini_session_close(struct ini_session *s, ini_cb cb, void *cb_arg);

/* Free a session that is closed or was never connected. */
void ini_session_destroy(struct ini_session *s);

/* LUNs probed on connect; valid until the session is destroyed. */
const struct ini_lun *ini_session_luns(const struct ini_session *s, unsigned *n);
/* The probed LUN \p lun, or NULL. */
const struct ini_lun *ini_session_lun(const struct ini_session *s, uint64_t lun);
/* The parameters in force on the current connection (after login). */
const struct iscsi_params *ini_session_params(const struct ini_session *s);

/* Counters for tools and logs. */
struct ini_stats {
	uint64_t reconnects;	    /* successful recoveries */
	uint64_t retries;	    /* commands resent (any cause) */
	uint64_t timeouts;	    /* command timeouts seen */
	uint64_t longest_outage_ms; /* longest connection loss -> logged in again */
	uint64_t window_waits;	    /* commands that waited for the MaxCmdSN window */
};
void ini_session_stats(const struct ini_session *s, struct ini_stats *st);
/* Whether the session is logged in now (false while recovering). */
bool ini_session_connected(const struct ini_session *s);

/*
 * What a connected session is doing, for owners that must know without
 * waiting for a command to fail (a mirror back end with no I/O on it).
 */
enum ini_session_state {
	INI_SESSION_UP,		/* logged in: commands flow */
	INI_SESSION_RECOVERING, /* connection lost: reconnecting, commands wait */
	INI_SESSION_FAILED,	/* not back within cfg.recovery_timeout_ms (or
				   recovery off): every command fails with
				   -ENOTCONN; only a new session helps */
};
typedef void (*ini_state_cb)(void *cb_arg, enum ini_session_state st);

/*
 * Call \p cb on every change of state after the first connect succeeded (the
 * connect callback reports that one). It runs on the session's reactor, from
 * its periodic tick, never from inside a call into this library, so it may
 * destroy the session. Changes quicker than a tick may be merged: \p cb sees
 * the state of the moment, never the same state twice in a row. NULL stops
 * the reports. A session that loses its connection with no command queued
 * notices it by its NOP-Out keepalive (cfg.nop_interval_ms).
 */
void ini_session_set_state_cb(struct ini_session *s, ini_state_cb cb, void *cb_arg);

/* ---- commands (see the error codes above) ---- */

/* READ 16 / WRITE 16 of \p nblocks blocks at \p lba, scatter-gather. */
int ini_read(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
	     const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg);
int ini_write(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
	      const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg);
/* Forced unit access write (WRITE 16 with FUA). */
int ini_write_fua(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
		  const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg);
/* SYNCHRONIZE CACHE 16 of the whole LUN. */
int ini_sync(struct ini_session *s, uint64_t lun, ini_cb cb, void *cb_arg);
/* UNMAP of one range (SBC-3 5.28). */
int ini_unmap(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks, ini_cb cb,
	      void *cb_arg);
/* WRITE SAME 16: \p block (one block) repeated; \p unmap sets the UNMAP bit. */
int ini_write_same(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
		   const void *block, bool unmap, ini_cb cb, void *cb_arg);
/*
 * COMPARE AND WRITE (SBC-3 5.2): \p buf holds nblocks of compare data then
 * nblocks of write data. -EILSEQ on a miscompare.
 */
int ini_compare_write(struct ini_session *s, uint64_t lun, uint64_t lba, uint8_t nblocks,
		      const void *buf, ini_cb cb, void *cb_arg);

/* Any other command. The request stays the caller's until the callback. */
enum ini_dir {
	INI_DIR_NONE,
	INI_DIR_READ,
	INI_DIR_WRITE,
};
struct ini_scsi_req {
	uint64_t lun;
	uint8_t cdb[16];
	enum ini_dir dir;
	const struct iovec *iov; /* data buffer: xfer_len bytes over iovcnt elements */
	int iovcnt;
	uint32_t xfer_len;
	/* Filled before the callback. */
	uint8_t status; /* SCSI status */
	uint8_t sense_key, asc, ascq;
	uint32_t residual; /* bytes not transferred (underflow) */
};
int ini_scsi(struct ini_session *s, struct ini_scsi_req *req, ini_cb cb, void *cb_arg);

/*
 * Task management (RFC 7143 11.5). Abort every command of \p lun still in
 * flight (ABORT TASK for each, then -ECANCELED to their callbacks), or reset
 * the LUN (LOGICAL UNIT RESET; the LUN's commands complete with -ECANCELED).
 * \p cb gets 0, or -EIO when the target refused the function.
 */
int ini_abort_lun_tasks(struct ini_session *s, uint64_t lun, ini_cb cb, void *cb_arg);
int ini_lun_reset(struct ini_session *s, uint64_t lun, ini_cb cb, void *cb_arg);

/* ---- discovery ---- */

struct ini_target {
	char name[ISCSI_NAME_MAX];
	char address[INI_HOST_MAX]; /* first TargetAddress: "host:port,tpgt" */
};
/*
 * SendTargets=All (RFC 7143 11.10, appendix C) on a discovery session to
 * cfg's portal, on reactor \p r. \p cb gets 0 or a login error as for
 * ini_session_connect(); the list is in \p out (at most \p max, *\p n filled)
 * which must stay valid until then.
 */
int ini_discover(struct util_reactor *r, const struct ini_config *cfg, struct ini_target *out,
		 unsigned max, unsigned *n, ini_cb cb, void *cb_arg);

#endif /* VMENGINE_INI_H */
