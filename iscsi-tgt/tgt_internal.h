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

/* ---- logical units ---- */

/* Unit attention conditions, in reporting priority order (SAM-5 5.14). */
enum tgt_ua {
	TGT_UA_POWER_ON,	 /* 29/01 POWER ON OCCURRED */
	TGT_UA_BUS_RESET,	 /* 29/02 SCSI BUS RESET OCCURRED (target reset) */
	TGT_UA_LUN_RESET,	 /* 29/03 BUS DEVICE RESET FUNCTION OCCURRED */
	TGT_UA_NEXUS_LOSS,	 /* 29/07 I_T NEXUS LOSS OCCURRED */
	TGT_UA_MODE_CHANGED,	 /* 2A/01 MODE PARAMETERS CHANGED */
	TGT_UA_CAPACITY_CHANGED, /* 2A/09 CAPACITY DATA HAS CHANGED */
	TGT_UA_LUNS_CHANGED,	 /* 3F/0E REPORTED LUNS DATA HAS CHANGED */
	TGT_UA_COUNT
};

/* The I_T_L nexus: one per session and logical unit. */
struct tgt_itl {
	struct tgt_lu *lu;
	struct tgt_session *sess;
	atomic_uint ua; /* bit (1 << enum tgt_ua); set by any thread, cleared by the owner */
	LIST_ENTRY(tgt_itl) lu_link; /* on lu->itls, under lu->lock */
};

struct tgt_lu {
	uint64_t lun; /* LUN number as the host addresses it (0) */
	struct vol *vol;
	struct tgt_target *target;
	char serial[40]; /* unit serial number (VPD 0x80), from the volume id */
	/* Mode page settings (changeable by MODE SELECT). */
	atomic_bool wce; /* Caching page: write cache enabled (WCE) */
	atomic_bool d_sense; /* Control page: descriptor-format sense (D_SENSE) */
	pthread_mutex_t lock; /* protects itls */
	LIST_HEAD(, tgt_itl) itls;
};

/* Raise \p ua on every nexus of \p lu except \p except (may be NULL). Any thread. */
void tgt_lu_ua_raise(struct tgt_lu *lu, enum tgt_ua ua, struct tgt_itl *except);

struct tgt_target {
	char iqn[ISCSI_NAME_MAX];
	char alias[ISCSI_ALIAS_MAX];
	struct iscsi_chap_cred chap; /* empty user: no CHAP */
	struct tgt_lu lu;	     /* LUN 0 */
	TAILQ_ENTRY(tgt_target) link;
};

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
	struct tgt_lu *lu;   /* NULL when the addressed LUN does not exist */
	struct tgt_itl *itl; /* NULL iff lu is NULL */
	uint64_t lun;	     /* the LUN as addressed */
	uint8_t cdb[TGT_CDB_MAX];
	uint16_t cdb_len;
	uint32_t exp_xfer_len; /* ExpectedDataTransferLength of the PDU */
	bool pdu_read, pdu_write;

	/* set by tgt_scsi_prepare() */
	const struct tgt_scsi_cmd *cmd;
	enum tgt_dir dir;
	uint32_t xfer_len; /* bytes the CDB moves (allocation length for IN) */
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
	uint32_t scsi_step; /* multi-step commands (WRITE AND VERIFY, ...) */

	/* iSCSI state, private to the connection code */
	uint32_t itt;
	uint32_t cmdsn;
	uint32_t ttt;
	uint32_t r2tsn;
	uint32_t datasn;	 /* next DataSN (Data-In) / expected (Data-Out) */
	uint32_t data_received;	 /* bytes of data-out received */
	uint32_t data_expected;	 /* bytes of data-out the target will take */
	uint32_t r2t_offset;	 /* next offset to solicit */
	uint32_t r2t_outstanding;
	uint32_t burst_received; /* bytes of the current solicited burst */
	uint32_t unsol_expected; /* immediate + unsolicited data-out bytes still to come */
	uint32_t flags;
	unsigned txpdus_pending; /* Data-In / response PDUs not yet written */
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
void tgt_task_sense_info(struct tgt_task *t, uint8_t key, uint8_t asc, uint8_t ascq,
			 uint64_t info);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB with the sense-key specific field pointing at \p byte/\p bit. */
void tgt_task_invalid_field(struct tgt_task *t, uint16_t byte, int bit);
/* Map a negative errno from vol to sense (MEDIUM ERROR, ...). */
void tgt_task_errno(struct tgt_task *t, int err);

#endif /* VMENGINE_TGT_INTERNAL_H */
