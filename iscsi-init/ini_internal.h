/*
 * iscsi-init private declarations, shared by the files of iscsi-init/ only.
 *
 * Files: conn.c (TCP transport: socket, receive machine, transmit queue),
 * login.c (login and text PDUs: negotiation, CHAP, redirection, SendTargets),
 * cmd.c (the command state machine: CmdSN window, Data-Out/R2T, Data-In,
 * status, retries, timeouts, NOP, TMF), session.c (life cycle, recovery,
 * LUN probe), scsi.c (CDBs, sense, the public command calls), url.c.
 *
 * Everything here runs on the session's reactor thread.
 */
#ifndef VMENGINE_INI_INTERNAL_H
#define VMENGINE_INI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "iscsi-init/ini.h"
#include "iscsi/iscsi.h"
#include "util/util.h"

/*
 * The transport seam: the real TCP transport is conn.c; unit tests plug a
 * fake one in with ini_session_set_transport() and feed PDUs to
 * ini_rx_data_dst()/ini_rx_pdu() themselves.
 */
struct ini_transport_ops {
	/*
	 * Start connecting to host:port. Later (never inline) the transport
	 * calls ini_conn_connected(s, 0 or -errno). Returns 0 or -errno.
	 */
	int (*connect)(struct ini_session *s, const char *host, uint16_t port);
	/* Queue a PDU; its done callback runs once written or dropped. */
	void (*send)(struct ini_session *s, struct iscsi_txpdu *tp);
	/* Digests and receive limit after login (RFC 7143 13.1, 13.12). */
	void (*set_params)(struct ini_session *s, bool hdigest, bool ddigest, uint32_t max_recv);
	/* Drop the connection: queued PDUs complete (done), nothing more arrives. */
	void (*close)(struct ini_session *s);
};
extern const struct ini_transport_ops ini_tcp_ops;

enum task_state {
	TASK_FREE,
	TASK_QUEUED, /* waiting for the CmdSN window or for the connection */
	TASK_SENT,   /* command PDU handed to the transport */
	TASK_DONE,   /* status known; completes once the transport lets go of its data */
};

enum task_kind {
	TASK_SCSI,
	TASK_TMF,
};

/* One ini_abort_lun_tasks() / ini_lun_reset() call: several TMF tasks. */
struct ini_tmf_op {
	struct ini_session *s;
	uint8_t func;
	uint64_t lun;
	unsigned pending; /* TMF tasks not answered yet */
	int rc;
	ini_cb cb;
	void *cb_arg;
	STAILQ_ENTRY(ini_tmf_op) link; /* waiting for the tick to run it */
};

struct ini_task {
	TAILQ_ENTRY(ini_task) link; /* s->queued or s->sent */
	enum task_state state;
	enum task_kind kind;
	uint16_t slot;
	uint32_t itt;
	uint32_t cmdsn;
	uint64_t lun;
	uint8_t cdb[16];
	enum ini_dir dir;
	/* Data: the caller's iovecs (iov_own holds a single buffer's iovec). */
	const struct iovec *iov;
	int iovcnt;
	struct iovec iov_own[2];
	uint32_t xfer_len;
	/* Progress of the current attempt. */
	uint32_t data_in;    /* Data-In bytes received */
	uint32_t exp_datasn; /* next Data-In DataSN */
	uint32_t unsol_sent; /* immediate + unsolicited bytes */
	unsigned tx_refs;    /* PDUs of this task still queued in the transport */
	uint64_t sent_ms;    /* when the current attempt was sent */
	unsigned attempts;   /* sends so far */
	unsigned ua_retries, busy_retries;
	uint64_t not_before_ms; /* BUSY back-off: do not resend before */
	/* Result. */
	int rc;
	uint8_t status, sense_key, asc, ascq;
	uint32_t residual;
	struct ini_scsi_req *req; /* ini_scsi(): where results go; or NULL */
	/* TMF tasks: function and referenced task. */
	uint8_t tmf_func;
	uint32_t tmf_rtt, tmf_refcmdsn;
	struct ini_tmf_op *tmf_op;
	bool aborting; /* an ABORT TASK / LUN RESET names it */
	ini_cb cb;
	void *cb_arg;
};
TAILQ_HEAD(ini_task_list, ini_task);

/* A pooled transmit PDU (command, Data-Out, NOP-Out, TMF, text, login). */
struct ini_txbuf {
	struct iscsi_txpdu tp;
	struct ini_session *s;
	struct ini_task *task; /* holds a tx_ref on it, or NULL */
	SLIST_ENTRY(ini_txbuf) free_link;
	SLIST_ENTRY(ini_txbuf) all_link; /* every txbuf, for ini_session_destroy() */
};

/* Session life cycle; only moves forward except RECOVER <-> UP. */
enum sess_state {
	SESS_NEW,
	SESS_LOGIN,   /* first login (failures final) */
	SESS_PROBE,   /* logged in, probing LUNs */
	SESS_UP,      /* full feature phase */
	SESS_RECOVER, /* connection lost: waiting for back-off, or logging in again */
	SESS_CLOSING, /* logout sent */
	SESS_CLOSED,
	SESS_FAILED, /* recovery gave up: commands fail with -ENOTCONN */
};

enum conn_state {
	CONN_DOWN,
	CONN_CONNECTING,
	CONN_LOGIN,
	CONN_FFP,
	CONN_LOGOUT,
};

/* Login of one connection (login.c). */
struct ini_login {
	int stage;	   /* current stage (CSG) */
	bool transit_sent; /* T bit set on the last request */
	struct iscsi_negot negot;
	struct iscsi_chap chap;
	bool chap_started;
	struct iscsi_text out; /* request being built */
	struct iscsi_text in;  /* response being gathered (C bit) */
	uint32_t itt;
	uint64_t deadline_ms;
	char redirect_host[INI_HOST_MAX];
	uint16_t redirect_port;
	int redirects;
};

struct ini_session {
	struct util_reactor *r;
	struct ini_config cfg;
	const struct ini_transport_ops *ops;
	enum sess_state state;
	enum conn_state conn;
	unsigned conn_gen; /* bumped on every connection drop */
	void *tr;	   /* transport private */

	/* Portal in use (a redirection may change it) and the configured one. */
	char host[INI_HOST_MAX];
	uint16_t port;
	uint8_t isid[6];
	uint16_t tsih;
	bool discovery;

	struct ini_login login;
	struct iscsi_params params;

	/* Sequence numbers (RFC 7143 4.2.2). */
	uint32_t cmdsn;	    /* next CmdSN to give a non-immediate command */
	uint32_t exp_cmdsn; /* from the target */
	uint32_t max_cmdsn;
	uint32_t exp_statsn; /* next StatSN we expect */
	uint32_t itt_seq;

	/* Tasks: a fixed array indexed by the low bits of the ITT. */
	struct ini_task *tasks;
	struct ini_task_list free_tasks;
	struct ini_task_list queued; /* in CmdSN order to be */
	struct ini_task_list sent;   /* in CmdSN order */
	unsigned nqueued, nsent;
	SLIST_HEAD(, ini_txbuf) free_tx;
	SLIST_HEAD(, ini_txbuf) all_tx;
	unsigned ntx;
	uint8_t *nop_echo; /* data of the last target ping, echoed back */

	/* Receive: bounce buffer for unaligned Data-In, scratch for others. */
	uint8_t *scratch;
	uint32_t scratch_len;
	struct ini_task *rx_bounce_task; /* Data-In went to scratch for this task */
	uint32_t rx_bounce_off;

	/* Timers (checked on the reactor tick). */
	struct util_tick *tick;
	uint64_t last_rx_ms;
	uint64_t nop_sent_ms; /* 0: no ping outstanding */
	uint64_t lost_ms;     /* when the connection was lost (recovery start) */
	uint64_t retry_at_ms; /* next reconnect attempt */
	unsigned backoff_ms;
	bool kick_scheduled;
	bool in_rx;

	/*
	 * User callbacks for connect/close run from the tick, where nothing
	 * touches the session after them (the callback may destroy it).
	 */
	ini_cb conn_cb;
	void *conn_cb_arg;
	int conn_rc;
	bool conn_cb_due;
	ini_cb close_cb;
	void *close_cb_arg;
	bool close_cb_due;
	/* State changes for ini_session_set_state_cb(), also from the tick. */
	ini_state_cb state_cb;
	void *state_cb_arg;
	bool state_reporting;		 /* the first connect succeeded */
	enum ini_session_state reported; /* last state given to state_cb */
	bool redirect_pending;		 /* connect to s->host, not cfg.host */
	STAILQ_HEAD(, ini_tmf_op) tmf_ops;

	/* LUNs probed on connect. */
	struct ini_lun luns[INI_MAX_LUNS];
	unsigned nluns;
	unsigned probe_idx;
	int probe_step;
	uint8_t *probe_buf;
	struct ini_scsi_req probe_req;
	struct iovec probe_iov;

	/* Discovery results. */
	struct ini_target *disc_out;
	unsigned disc_max, *disc_n;

	struct ini_stats stats;
};

/* ---- session.c ---- */
void ini_conn_connected(struct ini_session *s, int rc);
/* The connection failed (socket error, protocol error, timeout): recover. */
void ini_conn_fail(struct ini_session *s, int rc);
/* Login finished on the connection: 0, or a final error (-EACCES, ...). */
void ini_login_done(struct ini_session *s, int rc);
/* Logout response or discovery finished. */
void ini_logout_done(struct ini_session *s);
void ini_session_set_transport(struct ini_session *s, const struct ini_transport_ops *ops);
/* Called by the transport hooks to allocate a tx PDU; NULL on -ENOMEM. */
struct ini_txbuf *ini_txbuf_get(struct ini_session *s, struct ini_task *task);
void ini_send(struct ini_session *s, struct ini_txbuf *tb);
/* Update ExpCmdSN/MaxCmdSN from a response (RFC 7143 4.2.2.1). */
void ini_update_sn(struct ini_session *s, const uint8_t *exp_cmdsn, const uint8_t *max_cmdsn);
/* Run the periodic checks now (also the tick callback). */
void ini_session_tick(void *arg);

/* ---- login.c ---- */
int ini_login_start(struct ini_session *s);
/* A Login or Text Response while logging in / discovering. */
int ini_login_rx(struct ini_session *s, struct iscsi_pdu *pdu);
int ini_text_rx(struct ini_session *s, struct iscsi_pdu *pdu);
int ini_logout_send(struct ini_session *s);
/* Discovery session logged in: send SendTargets=All. */
int ini_discover_start(struct ini_session *s);
void ini_login_free(struct ini_session *s);

/* ---- cmd.c ---- */
int ini_tasks_init(struct ini_session *s);
void ini_tasks_fini(struct ini_session *s);
struct ini_task *ini_task_get(struct ini_session *s);
/* Queue a prepared task and send what the window allows. */
void ini_task_submit(struct ini_session *s, struct ini_task *t);
/* Send queued tasks while the CmdSN window is open (and connected). */
void ini_cmd_kick(struct ini_session *s);
/* Connection lost: move sent tasks back to the queue head, in CmdSN order. */
void ini_cmd_requeue_all(struct ini_session *s);
/* Fail every task with \p rc (session close or recovery gave up). */
void ini_cmd_fail_all(struct ini_session *s, int rc);
/* Per-command timeout and BUSY back-off; returns true when the connection must go. */
bool ini_cmd_check_timeouts(struct ini_session *s, uint64_t now);
void ini_nop_ping(struct ini_session *s);
int ini_rx_data_dst(struct ini_session *s, struct iscsi_pdu *pdu, void **dst);
int ini_rx_pdu(struct ini_session *s, struct iscsi_pdu *pdu);
/* Finish a task: callback, back to the free list. */
void ini_task_complete(struct ini_session *s, struct ini_task *t, int rc);
/* Queue the TMFs of \p op (on the reactor, from a message). */
void ini_tmf_run(struct ini_session *s, struct ini_tmf_op *op);

/* ---- scsi.c ---- */
/* Map a completed task's status and sense to the error codes of ini.h. */
int ini_scsi_result(struct ini_task *t);
/* Parse fixed or descriptor sense data into the task. */
void ini_sense_parse(struct ini_task *t, const uint8_t *sense, uint32_t len);
/* Start probing LUNs (state SESS_PROBE); ini_probe_done() at the end. */
void ini_probe_start(struct ini_session *s);
void ini_probe_done(struct ini_session *s, int rc);
/* LUN number <-> 8-byte LUN field (SAM-5 4.7: peripheral / flat addressing). */
void ini_lun_encode(uint64_t lun, uint8_t out[8]);
uint64_t ini_lun_decode(const uint8_t in[8]);

#endif /* VMENGINE_INI_INTERNAL_H */
