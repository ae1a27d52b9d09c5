/*
 * iscsi-tgt private structures, shared by the files of iscsi-tgt/ only.
 *
 * Ownership: a connection and everything hanging off it (session state of a
 * single-connection session, tasks, buffers) belong to the reactor thread the
 * connection was handed to. Cross-thread state (the target list, the session
 * table used for reinstatement, unit attentions raised by another nexus) is
 * protected as annotated on each field.
 */
#ifndef VMENGINE_TGT_INTERNAL_H
#define VMENGINE_TGT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "iscsi-tgt/tgt.h"
#include "iscsi-tgt/scsi_spec.h"

struct tgt_conn;
struct tgt_session;
struct tgt_task;
struct tgt_scsi_ops;

/* ---- logical units ---- */

/* Unit attention conditions, in reporting priority order (SAM-5 5.14). */
enum tgt_ua {
	TGT_UA_POWER_ON, /* 29/01 POWER ON OCCURRED */
	/*
	 * 29/00 POWER ON, RESET, OR BUS DEVICE RESET OCCURRED, for a target
	 * (warm or cold) reset. SAM-5 allows this generic code for a hard reset;
	 * 29/02 (SCSI BUS RESET) names a parallel-bus event an iSCSI target never
	 * has, and initiators such as libiscsi expect 29/00 after a reset.
	 */
	TGT_UA_RESET,
	TGT_UA_LUN_RESET,	 /* 29/03 BUS DEVICE RESET FUNCTION OCCURRED */
	TGT_UA_NEXUS_LOSS,	 /* 29/07 I_T NEXUS LOSS OCCURRED */
	TGT_UA_MODE_CHANGED,	 /* 2A/01 MODE PARAMETERS CHANGED */
	TGT_UA_RESV_PREEMPTED,	 /* 2A/03 RESERVATIONS PREEMPTED */
	TGT_UA_RESV_RELEASED,	 /* 2A/04 RESERVATIONS RELEASED */
	TGT_UA_REG_PREEMPTED,	 /* 2A/05 REGISTRATIONS PREEMPTED */
	TGT_UA_CAPACITY_CHANGED, /* 2A/09 CAPACITY DATA HAS CHANGED */
	TGT_UA_LUNS_CHANGED,	 /* 3F/0E REPORTED LUNS DATA HAS CHANGED */
	TGT_UA_COUNT
};

/*
 * The status of one EXTENDED COPY that the nexus asked to be held, for
 * RECEIVE COPY RESULTS (scsi_xcopy.c; SPC-4 6.18.3). Zeroed: unused.
 */
struct tgt_xcopy_held {
	uint64_t bytes;	   /* TRANSFER COUNT, in bytes */
	uint32_t seq;	   /* age, to reuse the oldest slot */
	uint16_t segments; /* SEGMENTS PROCESSED */
	uint8_t list_id;
	uint8_t status; /* 0: unused, else COPY MANAGER STATUS + 1 */
};
#define TGT_XCOPY_HELD 8

/* The I_T_L nexus: one per session and logical unit. */
struct tgt_itl {
	struct tgt_lu *lu;
	struct tgt_session *sess;
	atomic_uint ua; /* bit (1 << enum tgt_ua); set by any thread, cleared by the owner */
	LIST_ENTRY(tgt_itl) lu_link; /* on lu->itls, under lu->lock */
	/* EXTENDED COPY results held for this nexus; its owner thread only */
	struct tgt_xcopy_held xcopy[TGT_XCOPY_HELD];
	uint32_t xcopy_seq;
};

struct tgt_lu {
	uint64_t lun; /* LUN number as the host addresses it (0) */
	struct vol *vol;
	struct tgt_target *target;
	/*
	 * The engine's services (struct tgt_scsi_ops), set by tgt_target_add();
	 * NULL in a unit test of the device server. Kept on the LU rather than
	 * found through a task's connection: a background job (SANITIZE, FORMAT
	 * UNIT) outlives the command and the connection that started it.
	 */
	const struct tgt_scsi_ops *scsi_ops;
	char serial[40]; /* unit serial number (VPD 0x80), from the volume id */
	/* Mode page settings (changeable by MODE SELECT). */
	atomic_bool wce;      /* Caching page: write cache enabled (WCE) */
	atomic_bool d_sense;  /* Control page: descriptor-format sense (D_SENSE) */
	atomic_bool swp;      /* Control page: software write protect (SWP) */
	pthread_mutex_t lock; /* protects itls and pr */
	LIST_HEAD(, tgt_itl) itls;
	/* Reservations (scsi_pr.c): TGT_RESV_* bits, read lock-free on every command. */
	atomic_uint resv;
	struct tgt_pr *pr; /* PR and RESERVE(6/10) state; under lock */
	/*
	 * Write gate (scsi_caw.c): an atomic command (COMPARE AND WRITE,
	 * ORWRITE, WRITE ATOMIC, SANITIZE) runs with no other write of the LU
	 * in flight. gate_writes and gate_excl are read lock-free by every
	 * write; the rest is under lock. Zero-initialised is the idle state.
	 */
	atomic_uint gate_writes;	 /* writes admitted and not yet finished */
	atomic_uint gate_excl;		 /* atomic commands queued or running */
	bool gate_excl_running;		 /* under lock */
	struct tgt_task *gate_excl_head; /* queued atomic commands, FIFO; under lock */
	struct tgt_task *gate_excl_tail;
	struct tgt_task *gate_wr_head; /* writes waiting for the atomic ones; under lock */
	struct tgt_task *gate_wr_tail;
	atomic_bool sanitizing;	       /* SANITIZE or FORMAT UNIT in progress (scsi_media.c) */
	atomic_bool formatting;	       /* ... and it is a FORMAT UNIT */
	atomic_uint sanitize_progress; /* its PROGRESS INDICATION, 0..65535 (SPC-4 4.5.2.4.4) */
};

#define TGT_RESV_LOADED 0x1 /* pr allocated and the APTPL state loaded */
#define TGT_RESV_ACTIVE 0x2 /* a registration or reservation exists: check commands */

/* Raise \p ua on every nexus of \p lu except \p except (may be NULL). Any thread. */
void tgt_lu_ua_raise(struct tgt_lu *lu, enum tgt_ua ua, struct tgt_itl *except);

/*
 * Reservations (scsi_pr.c). tgt_pr_lu_load(): load the APTPL state of \p lu
 * from \p state_dir (NULL or "": no persistence); optional, the first
 * command loads it otherwise. tgt_pr_lu_free(): when the LU is freed.
 * tgt_pr_nexus_gone(): \p itl is leaving lu->itls (I_T nexus loss; SPC-2
 * reservations end, SPC-4 5.12.2: persistent ones stay). tgt_pr_lu_reset():
 * LOGICAL UNIT RESET or target reset (SPC-2 reservations end). Any thread;
 * none may be called with lu->lock held.
 */
int tgt_pr_lu_load(struct tgt_lu *lu, const char *state_dir);
void tgt_pr_lu_free(struct tgt_lu *lu);
void tgt_pr_nexus_gone(struct tgt_itl *itl);
void tgt_pr_lu_reset(struct tgt_lu *lu);

struct tgt_target {
	char iqn[ISCSI_NAME_MAX];
	char alias[ISCSI_ALIAS_MAX];
	/* policy: under tgt->targets_lock */
	struct iscsi_chap_cred chap; /* empty user: no CHAP */
	char redirect[64];	     /* served elsewhere: redirect logins there */
	char **allow;		     /* allowed initiator names; NULL: all */
	unsigned nallow;
	struct tgt_lu lu; /* LUN 0 */
	/* one reference for the target list, one per login or session using it */
	atomic_uint refs;
	void (*released)(void *arg);
	void *released_arg;
	TAILQ_ENTRY(tgt_target) link;
};

/* Take / drop a reference; the last put frees the target (after released()). */
void tgt_target_get(struct tgt_target *tg);
void tgt_target_put(struct tgt_target *tg);
/* Login checks under targets_lock (read): 0, or a login status. */
uint16_t tgt_target_admit(const struct tgt_target *tg, const char *initiator);

/* ---- tasks ---- */

enum tgt_dir {
	TGT_DIR_NONE,
	TGT_DIR_IN,  /* data to the initiator (READ) */
	TGT_DIR_OUT, /* data from the initiator (WRITE) */
};

#define TGT_CDB_MAX   260 /* 16 in the BHS + an Extended CDB AHS */
#define TGT_SENSE_MAX 252

/*
 * A SCSI task. The connection fills the "input" fields, calls
 * tgt_scsi_prepare(), provides the buffer (and the data-out), then calls
 * tgt_scsi_execute(); the SCSI layer completes it with tgt_task_done().
 */
struct tgt_task {
	/* input, set by the connection */
	struct tgt_conn *conn;
	struct tgt_target *target; /* the session's target (REPORT LUNS) */
	struct tgt_lu *lu;	   /* NULL when the addressed LUN does not exist */
	struct tgt_itl *itl;	   /* NULL iff lu is NULL */
	uint64_t lun;		   /* the LUN as addressed */
	uint8_t cdb[TGT_CDB_MAX];
	uint16_t cdb_len;
	uint32_t exp_xfer_len; /* ExpectedDataTransferLength of the PDU */
	bool pdu_read, pdu_write;

	/* set by tgt_scsi_prepare() */
	const struct tgt_scsi_cmd *cmd;
	enum tgt_dir dir;
	uint32_t xfer_len; /* bytes the CDB moves (allocation length for IN) */
	uint32_t xfer_cdb; /* OUT cut to the data-out sent: xfer_len as the CDB asked (cmd.c) */
	uint64_t lba;	   /* READ/WRITE family */
	uint32_t nblocks;

	/* buffer of at least xfer_len bytes, owned by the connection */
	void *buf;
	uint32_t buf_len;

	/* output, set by the SCSI layer before tgt_task_done() */
	uint32_t data_len; /* IN: bytes of data produced in buf (<= xfer_len) */
	uint8_t status;	   /* SAM status */
	uint8_t sense_len;
	uint8_t sense[TGT_SENSE_MAX];

	/* SCSI layer scratch */
	struct vol_io io;
	struct iovec iov;
	uint32_t scsi_step;		   /* multi-step commands (WRITE AND VERIFY, ...) */
	uint8_t gate;			   /* write gate state (scsi_caw.c) */
	struct tgt_task *gate_next;	   /* on a gate queue of the LU, under lu->lock */
	struct util_reactor *gate_reactor; /* where a queued task resumes */

	/* iSCSI state, private to the connection code */
	uint32_t itt;
	uint32_t cmdsn;
	uint32_t ttt;
	uint32_t r2tsn;
	uint32_t datasn;	/* next DataSN (Data-In) / expected (Data-Out) */
	uint32_t data_received; /* bytes of data-out received */
	uint32_t data_next;	/* buffer offset the next Data-Out must start at */
	uint32_t data_expected; /* bytes of data-out the target will take */
	uint32_t r2t_offset;	/* next offset to solicit */
	uint32_t r2t_outstanding;
	uint32_t burst_received; /* bytes of the current solicited burst */
	uint32_t unsol_expected; /* immediate + unsolicited data-out bytes still to come */
	uint32_t flags;
	uint16_t gen;			     /* bumped on each reuse: stale TTTs are detected */
	uint16_t index;			     /* in conn->tasks */
	unsigned txpdus_pending;	     /* Data-In / response PDUs not yet written */
	uint8_t cdb_lun[8];		     /* LUN field of the command, echoed in R2Ts */
	uint8_t rsp_data[2 + TGT_SENSE_MAX]; /* SenseLength + sense, the Response data */
	struct tgt_task *next_free;
	TAILQ_ENTRY(tgt_task) link;
};

/*
 * Decode and check the CDB: operation known, reserved bits clear, LUN
 * present, range within the volume, transfer not above the limit; report a
 * pending unit attention. Sets dir, xfer_len (and lba/nblocks). Returns 0 to
 * go on, or 1 when the task is already complete (status and sense set;
 * no data will be moved: do not call tgt_scsi_execute()).
 * Runs on the connection's reactor thread.
 */
int tgt_scsi_prepare(struct tgt_task *t);

/*
 * Execute a prepared task whose buffer holds xfer_len bytes of data-out (for
 * TGT_DIR_OUT) or has room for xfer_len bytes (TGT_DIR_IN). Calls
 * tgt_task_done() exactly once, on the same thread, possibly before
 * returning.
 */
void tgt_scsi_execute(struct tgt_task *t);

/* Provided by the connection code: the task's SCSI part is complete. */
void tgt_task_done(struct tgt_task *t);

/* The vol channel of the thread running \p t (the connection's reactor). */
struct vol_chan *tgt_task_chan(const struct tgt_task *t);
/* Configuration limits (max_xfer_blocks, ...). */
const struct tgt_config *tgt_task_config(const struct tgt_task *t);

/* ---- sense and status (scsi_sense.c) ---- */
/*
 * Complete \p t with CHECK CONDITION and sense \p key/\p asc/\p ascq, in
 * fixed or descriptor format per the LU's D_SENSE. \p info: when
 * \p info_valid, the INFORMATION field (e.g. the LBA of a miscompare).
 */
void tgt_task_sense(struct tgt_task *t, uint8_t key, uint8_t asc, uint8_t ascq);
void tgt_task_sense_info(struct tgt_task *t, uint8_t key, uint8_t asc, uint8_t ascq, uint64_t info);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB with the sense-key specific field pointing at \p byte/\p
 * bit. */
void tgt_task_invalid_field(struct tgt_task *t, uint16_t byte, int bit);
/* Map a negative errno from vol to sense (MEDIUM ERROR, ...). */
void tgt_task_errno(struct tgt_task *t, int err);

/* ==== connection, session and service (conn.c, login.c, session.c, tgt.c) ==== */

struct tgt_session;

/* Per reactor: what the reactor's connections share. Reactor thread only. */
struct tgt_worker {
	struct tgt *tgt;
	struct util_reactor *reactor;
	struct vol_chan *chan;
	struct util_tick *tick;
	TAILQ_HEAD(, tgt_conn) conns;
	unsigned nconns;
};

struct tgt_portal {
	struct tgt *tgt;
	int fd;
	char addr[64]; /* as configured, for SendTargets: "127.0.0.1:3260" */
};

/*
 * The engine services the device server (scsi_*.c) uses beyond a task's own
 * LU: the reactors' pacing ticks and cross-thread messages, references to
 * and access rules of the engine's other targets, and the count of work
 * tgt_shutdown() waits for. tgt_target_add() gives each LU the engine's
 * own (tgt_lu.scsi_ops). A unit test of the device server may leave them
 * NULL (a sanitize then runs unpaced and uncounted, a compare-and-write waiter is
 * resumed on the releasing thread, an EXTENDED COPY reaches only the task's
 * own LU) or install stubs. Constant once commands run; read by any thread.
 */
struct tgt_scsi_ops {
	struct util_tick *(*tick_add)(struct util_reactor *r, util_msg_fn fn, void *arg);
	void (*tick_del)(struct util_reactor *r, struct util_tick *t);
	int (*send)(struct util_reactor *r, util_msg_fn fn, void *arg);
	void (*target_get)(struct tgt_target *tg);
	void (*target_put)(struct tgt_target *tg);
	uint16_t (*target_admit)(const struct tgt_target *tg, const char *initiator);
	void (*conn_gone)(struct tgt *t); /* undoes one nconns increment */
};

struct tgt {
	struct tgt_config cfg;
	struct tgt_worker *workers;
	unsigned nworkers;
	atomic_uint next_worker;
	atomic_uint nconns; /* live connections over all reactors */
	atomic_bool stopping;

	pthread_rwlock_t targets_lock; /* targets: read on login, written by the control thread */
	TAILQ_HEAD(, tgt_target) targets;

	pthread_mutex_t sess_lock; /* sessions, next_tsih */
	TAILQ_HEAD(, tgt_session) sessions;
	uint16_t next_tsih;

	struct tgt_portal portals[8];
	unsigned nportals;
	pthread_mutex_t stop_lock; /* with stop_cond: tgt_shutdown() waits for nconns == 0 */
	pthread_cond_t stop_cond;
};

/* A session; with MaxConnections=1 it lives on its connection's reactor. */
struct tgt_session {
	struct tgt *tgt;
	struct tgt_target *target; /* NULL for discovery sessions */
	struct tgt_conn *conn;	   /* its connection; under tgt->sess_lock for other threads */
	bool discovery;
	uint8_t isid[6];
	uint16_t tsih;
	struct iscsi_params params;
	uint32_t exp_cmdsn;
	uint32_t max_cmdsn;
	uint32_t ahead[16]; /* CmdSNs of non-SCSI requests answered ahead of a gap */
	unsigned nahead;
	struct tgt_itl itl; /* LUN 0 */
	/*
	 * A login reinstating this session waits until it is gone, so that
	 * none of its writes still in flight can land after the new
	 * session's (RFC 7143 6.3.5). Under tgt->sess_lock.
	 */
	struct tgt_worker *waiter_w;
	uint64_t waiter_conn;
	TAILQ_ENTRY(tgt_session) link; /* on tgt->sessions, under tgt->sess_lock */
};

enum tgt_conn_state {
	CONN_LOGIN,
	CONN_FULL_FEATURE,
	CONN_LOGOUT,  /* Logout received: no new commands */
	CONN_CLOSING, /* socket dead or closing: waiting for I/O in flight */
};

/* A PDU to send, from the connection's pool. */
struct tgt_txbuf {
	struct iscsi_txpdu pdu;
	struct tgt_task *task; /* task whose buffer the data points into, or NULL */
	void *own;	       /* pooled buffer to release after sending, or NULL */
	uint32_t own_len;
	uint8_t small[ISCSI_BHS_LEN]; /* data of small PDUs (a Reject's copy of the header) */
	struct tgt_txbuf *next_free;
};

struct tgt_login;

struct tgt_conn {
	uint64_t id; /* unique over the engine's life: names the connection in messages */
	struct tgt *tgt;
	struct tgt_worker *w;
	int fd;
	char peer[64];
	char local[64]; /* local address:port the initiator connected to */
	enum tgt_conn_state state;
	struct iscsi_rx rx;
	struct iscsi_tx tx;
	bool want_out;	     /* the socket is full: EPOLLOUT wanted */
	uint32_t armed;	     /* epoll events registered for fd */
	bool rx_stopped;     /* a failed login: no more input, close once the answer is out */
	bool in_rx;	     /* inside the receive loop: responses are flushed at its end */
	bool in_flush;	     /* inside conn_flush(): it sends what its callbacks queue */
	bool free_scheduled; /* conn_free() is queued on the reactor */
	struct tgt_session *sess;
	struct tgt_login *login; /* during login only */
	uint16_t cid;
	uint32_t statsn;
	uint64_t login_deadline_ms;
	uint64_t last_rx_ms;
	uint64_t nop_sent_ms; /* 0: no ping outstanding */
	uint32_t nop_ttt;

	/* receive buffer for non-SCSI data segments (login, text, NOP-Out) */
	uint8_t *rxbuf;
	uint32_t rxbuf_len;

	/* tasks: a fixed array; TTT = index + 1 (| generation << 16) */
	struct tgt_task *tasks;
	unsigned ntasks;
	struct tgt_task *task_free;
	unsigned tasks_busy;		/* allocated tasks */
	TAILQ_HEAD(, tgt_task) active;	/* received, not yet answered */
	TAILQ_HEAD(, tgt_task) waiting; /* CmdSN ahead of ExpCmdSN */
	struct tgt_txbuf *txfree;
	void *txchunks[64];
	unsigned ntxchunks;
	unsigned scsi_inflight; /* tasks inside the SCSI layer */

	/* text negotiation continuing over several PDUs (SendTargets) */
	struct iscsi_text text_rsp;
	uint32_t text_sent;
	uint32_t text_ttt;
	struct iscsi_text text_req; /* request data with the C bit set so far */

	struct tgt_task *rx_task; /* task of the PDU being received (between header and data) */
	/* one task management function at a time waits for aborted tasks to finish */
	bool tmf_active;
	uint8_t tmf_function;
	uint8_t tmf_lun[8];
	uint32_t tmf_itt;
	unsigned tmf_wait;   /* aborted tasks still inside the SCSI layer */
	bool logout_pending; /* Logout received, response after tasks drain */
	uint32_t logout_itt;
	TAILQ_ENTRY(tgt_conn) link; /* on w->conns */
};

/* task flags */
#define TASK_F_IMMEDIATE  0x01
#define TASK_F_PREPARED	  0x02 /* prepare said go on */
#define TASK_F_EXECUTING  0x04 /* inside the SCSI layer */
#define TASK_F_SCSI_DONE  0x08
#define TASK_F_ABORTED	  0x10 /* no response may be sent */
#define TASK_F_UNSOL_DONE 0x20 /* the unsolicited part of the data-out is complete */
#define TASK_F_WAITING	  0x40 /* on conn->waiting */
#define TASK_F_RSP_QUEUED 0x80
#define TASK_F_TMF_WAITER 0x100	 /* a TMF response waits for this task */
#define TASK_F_ORDERED	  0x200	 /* CmdSN reached: may be delivered to the SCSI layer */
#define TASK_F_INUSE	  0x400	 /* allocated */
#define TASK_F_UNSOL_MORE 0x800	 /* unsolicited Data-Out PDUs follow the command */
#define TASK_F_WINDOW	  0x1000 /* holds a CmdSN window slot until its status is queued */

/* conn.c */
void tgt_conn_start(struct tgt_worker *w, int fd);
void tgt_conn_close(struct tgt_conn *c, const char *why);
struct tgt_txbuf *tgt_txbuf_get(struct tgt_conn *c);
void tgt_conn_send(struct tgt_conn *c, struct tgt_txbuf *tb);
/*
 * Fill StatSN, ExpCmdSN and MaxCmdSN (bytes 24..35 of every target BHS that
 * has them). \p status: the PDU carries status, so StatSN advances.
 */
void tgt_conn_fill_sn(struct tgt_conn *c, void *bhs, bool status);
void tgt_conn_reject(struct tgt_conn *c, const struct iscsi_pdu *pdu, uint8_t reason);
void tgt_conn_tick(struct tgt_conn *c, uint64_t now_ms);
/* A task left the SCSI layer on a closing connection: free it when it was the last. */
void tgt_conn_task_left(struct tgt_conn *c);
/* Called when a PDU's CmdSN was accepted: ExpCmdSN moved, maybe run waiting commands. */
void tgt_conn_cmdsn_advanced(struct tgt_conn *c);
/* CmdSN check of a non-immediate request: 0 in order, 1 ahead (in window), -1 outside. */
int tgt_conn_cmdsn_check(struct tgt_conn *c, uint32_t cmdsn, bool immediate);

/* login.c */
/* One session that the login of \p c reinstates is gone. */
void tgt_login_reinstated(struct tgt_conn *c);
int tgt_login_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
void tgt_login_free(struct tgt_conn *c);

/* cmd.c: SCSI Command, Data-Out, R2T, Data-In, SCSI Response, tasks */
int tgt_cmd_tasks_init(struct tgt_conn *c);
void tgt_cmd_tasks_free(struct tgt_conn *c);
int tgt_cmd_data_dst(struct tgt_conn *c, struct iscsi_pdu *pdu, void **dst);
int tgt_cmd_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
int tgt_data_out_dst(struct tgt_conn *c, struct iscsi_pdu *pdu, void **dst);
int tgt_data_out_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
void tgt_task_start(struct tgt_task *t); /* CmdSN in order: go */
void tgt_task_release(struct tgt_task *t);
/* One of the task's PDUs has been written (or dropped). */
void tgt_task_tx_done(struct tgt_task *t);
struct tgt_task *tgt_task_by_itt(struct tgt_conn *c, uint32_t itt);

/* misc.c: NOP, Logout, Text, TMF */
int tgt_nop_out_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
int tgt_logout_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
void tgt_logout_maybe_respond(struct tgt_conn *c);
int tgt_text_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
int tgt_tmf_pdu(struct tgt_conn *c, struct iscsi_pdu *pdu);
void tgt_tmf_task_finished(struct tgt_task *t);
void tgt_nop_ping(struct tgt_conn *c);

/* tgt.c: targets and sessions */
struct tgt_target *tgt_target_find(struct tgt *t, const char *iqn); /* under targets_lock (read) */
int tgt_session_register(struct tgt_session *s);
void tgt_session_unregister(struct tgt_session *s);
/*
 * Close every other session of (initiator name, ISID, target) (session
 * reinstatement, RFC 7143 6.3.5). Returns how many; for each, once it is
 * gone, tgt_login_reinstated() runs for connection \p c on c's reactor.
 */
unsigned tgt_session_reinstate(struct tgt *t, const struct tgt_session *news, struct tgt_conn *c);
/*
 * TARGET COLD RESET (RFC 7143 11.5.1): close every session of \p tg except
 * \p keep (the issuer's, which closes once its response is out). Any thread;
 * the connections close on their own reactors.
 */
void tgt_target_cold_reset(struct tgt *t, struct tgt_target *tg, const struct tgt_session *keep);
/* Connection count bookkeeping for tgt_shutdown(). */
void tgt_conn_gone(struct tgt *t);
/* Append "TargetName=...\0TargetAddress=...\0" for SendTargets. */
int tgt_sendtargets(struct tgt *t, struct tgt_conn *c, const char *which, struct iscsi_text *out);

#endif /* VMENGINE_TGT_INTERNAL_H */
