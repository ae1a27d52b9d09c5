/*
 * iscsi: the wire protocol both roles share (RFC 7143).
 *
 * - serial number arithmetic (RFC 1982) for CmdSN, StatSN, DataSN, R2TSN,
 * - a resumable PDU receive machine and a PDU transmit queue over a socket,
 * - text keys: parsing and building key=value data segments,
 * - login/text negotiation driven by one table of every RFC 7143 key,
 * - CHAP (MD5) for the target and the initiator side.
 *
 * Nothing here knows about sessions, tasks or SCSI. Unless said otherwise a
 * function runs on the caller's thread and touches only its arguments.
 */
#ifndef VMENGINE_ISCSI_H
#define VMENGINE_ISCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "iscsi/iscsi_proto.h"
#include "util/util.h"

/* ---- serial number arithmetic, 32-bit (RFC 1982 3.2) ---- */
static inline bool sn_lt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) < 0;
}
static inline bool sn_gt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) > 0;
}
static inline bool sn_le(uint32_t a, uint32_t b)
{
	return a == b || sn_lt(a, b);
}
static inline bool sn_ge(uint32_t a, uint32_t b)
{
	return a == b || sn_gt(a, b);
}

/* ---- BHS helpers ---- */
static inline uint8_t iscsi_bhs_opcode(const struct iscsi_bhs *bhs)
{
	return bhs->opcode & ISCSI_OP_MASK;
}
static inline bool iscsi_bhs_immediate(const struct iscsi_bhs *bhs)
{
	return (bhs->opcode & ISCSI_OP_IMMEDIATE) != 0;
}
static inline uint32_t iscsi_bhs_dlength(const struct iscsi_bhs *bhs)
{
	return get_be24(bhs->dlength);
}
static inline void iscsi_bhs_set_dlength(struct iscsi_bhs *bhs, uint32_t len)
{
	put_be24(bhs->dlength, len);
}
/* Name of an opcode for logs ("SCSI-Cmd", "Data-Out", ...). Never NULL. */
const char *iscsi_opcode_name(uint8_t opcode);

/* ---- receive machine ----
 * Reads PDUs from a non-blocking socket, resuming where the last read
 * stopped: BHS -> AHS -> header digest -> data -> pad -> data digest.
 * The data segment goes straight into the buffer the owner picks once the
 * header is known (for a write: the task's I/O buffer), so payload is never
 * copied.
 */
enum iscsi_rx_state {
	ISCSI_RX_BHS,
	ISCSI_RX_AHS,
	ISCSI_RX_HDIGEST,
	ISCSI_RX_DATA,
	ISCSI_RX_PAD,
	ISCSI_RX_DDIGEST,
	ISCSI_RX_ERROR, /* sticky: the connection must be closed */
};

/* One received PDU; valid until the pdu callback returns. */
struct iscsi_pdu {
	union {
		struct iscsi_bhs bhs;
		uint8_t raw[ISCSI_BHS_LEN];
	} hdr;
	uint8_t ahs[ISCSI_MAX_AHS_LEN];
	uint32_t ahs_len;  /* bytes */
	uint32_t data_len; /* DataSegmentLength */
	void *data;	   /* where the data segment was received; NULL when data_len == 0 */
	bool ddigest_bad;  /* data digest mismatch: the data must not be used */
};

struct iscsi_rx_ops {
	/*
	 * The header (BHS, AHS, verified header digest) of \p pdu is complete.
	 * Set *\p dst to a buffer of at least pdu->data_len bytes for the data
	 * segment. Return 0, or a negative errno to stop receiving (the machine
	 * turns to ISCSI_RX_ERROR and iscsi_rx_read() returns that value).
	 * Called only when pdu->data_len > 0.
	 */
	int (*data_dst)(void *ctx, struct iscsi_pdu *pdu, void **dst);
	/*
	 * A whole PDU arrived. Return 0 to go on reading, a positive value to
	 * pause (iscsi_rx_read() returns 0 and reads no more until called
	 * again), or a negative errno as above.
	 */
	int (*pdu)(void *ctx, struct iscsi_pdu *pdu);
};

struct iscsi_rx {
	enum iscsi_rx_state state;
	uint32_t valid; /* bytes of the current stage received so far */
	bool hdigest, ddigest;
	uint32_t max_data; /* largest DataSegmentLength accepted (our MaxRecvDataSegmentLength) */
	uint8_t digest[ISCSI_DIGEST_LEN];
	uint8_t pad[4];
	const struct iscsi_rx_ops *ops;
	void *ctx;
	struct iscsi_pdu pdu;
};

void iscsi_rx_init(struct iscsi_rx *rx, const struct iscsi_rx_ops *ops, void *ctx,
		   uint32_t max_data);
/*
 * Read from \p fd until it would block, calling the ops for each PDU.
 * Returns 0 when the socket has no more bytes now (or the pdu op paused),
 * -ECONNRESET on end of stream, -EPROTO for a header digest error or a
 * DataSegmentLength above max_data, or the negative errno of read(2) or an op.
 */
int iscsi_rx_read(struct iscsi_rx *rx, int fd);

/* ---- transmit queue ----
 * PDUs queued on a connection go out with writev(2), several PDUs per call;
 * header, data and digests are separate iovecs (no copy of the data).
 */
struct iscsi_txpdu;
/* Called once the PDU is fully written, or on iscsi_tx_abort(). */
typedef void (*iscsi_tx_done_fn)(struct iscsi_txpdu *tp, void *arg);

struct iscsi_txpdu {
	STAILQ_ENTRY(iscsi_txpdu) link;
	union {
		struct iscsi_bhs bhs;
		uint8_t raw[ISCSI_BHS_LEN];
	} hdr;
	uint8_t hdigest[ISCSI_DIGEST_LEN];
	uint8_t ddigest[ISCSI_DIGEST_LEN];
	const void *data; /* data segment, or NULL; the owner keeps it alive until done */
	uint32_t data_len;
	bool hd, dd;	       /* digests of this PDU: set by iscsi_tx_queue() from the tx */
	iscsi_tx_done_fn done; /* may be NULL */
	void *done_arg;
};

struct iscsi_tx {
	STAILQ_HEAD(, iscsi_txpdu) queue;
	size_t sent; /* bytes of the queue's first PDU already written */
	bool hdigest, ddigest;
	unsigned queued;
	size_t queued_bytes; /* wire bytes of the queued PDUs, sent or not: the owner's backlog */
};

void iscsi_tx_init(struct iscsi_tx *tx);
/*
 * Append \p tp. Sets the BHS DataSegmentLength from tp->data_len and
 * computes the digests negotiated on \p tx at this moment (so a Login
 * Response queued before digests are switched on goes without them).
 * Nothing is written yet.
 */
void iscsi_tx_queue(struct iscsi_tx *tx, struct iscsi_txpdu *tp);
/*
 * Write as much of the queue as the socket takes. Returns 0 when the queue is
 * empty, -EAGAIN when bytes remain (wait for EPOLLOUT), or another negative
 * errno on a socket error. Done callbacks run from inside this call.
 */
int iscsi_tx_flush(struct iscsi_tx *tx, int fd);
/* Drop everything queued, calling each done callback. */
void iscsi_tx_abort(struct iscsi_tx *tx);
static inline bool iscsi_tx_empty(const struct iscsi_tx *tx)
{
	return STAILQ_EMPTY(&tx->queue);
}

/* ---- text keys (RFC 7143 6.1) ---- */
#define ISCSI_KEY_MAX	  63   /* longest key name */
#define ISCSI_VALUE_MAX	  8192 /* longest value accepted */
#define ISCSI_TEXT_MAX_KV 256  /* pairs accepted in one request */

struct iscsi_kv {
	const char *key; /* NUL-terminated, points into the parsed buffer */
	const char *val;
};

/*
 * Split a text data segment ("k=v\0k=v\0...") in place into pairs. \p buf is
 * modified (a missing final NUL is tolerated: buf must have room for one more
 * byte). Returns 0 and *\p n, or -EINVAL (a pair without '=', an empty or
 * over-long key, an over-long value) or -E2BIG (more than \p max pairs).
 */
int iscsi_text_parse(char *buf, size_t len, struct iscsi_kv *kv, size_t max, size_t *n);

/* Value of \p key in \p kv (first occurrence), or NULL. */
const char *iscsi_kv_get(const struct iscsi_kv *kv, size_t n, const char *key);

/*
 * Could \p len bytes at \p s be an iSCSI name (RFC 7143 4.2.7, RFC 3722)?
 * 1 to 223 bytes, none a space or a control character. Deliberately no
 * stricter: real initiators use names (underscores, upper case) that the
 * stringprep profile would normalise or refuse, and refusing them would
 * lock those hosts out; what must never pass is what breaks logs and
 * line-based state files.
 */
bool iscsi_name_ok(const char *s, size_t len);

/* A growing text data segment under construction. */
struct iscsi_text {
	char *buf;
	uint32_t len;
	uint32_t cap;
};
void iscsi_text_init(struct iscsi_text *t);
void iscsi_text_free(struct iscsi_text *t);
void iscsi_text_reset(struct iscsi_text *t); /* len = 0, keeps the memory */
/* Append raw bytes (a received text segment). Returns 0 or -ENOMEM. */
int iscsi_text_append_raw(struct iscsi_text *t, const void *data, size_t len);
/* Append "key=value\0". Returns 0 or -ENOMEM. */
int iscsi_text_add(struct iscsi_text *t, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- negotiation (RFC 7143 6.2, 13) ----
 * One table lists every login/operational key with its kind (list,
 * numerical min/max, boolean AND/OR, declarative), range and default.
 */
enum iscsi_role {
	ISCSI_ROLE_TARGET,
	ISCSI_ROLE_INITIATOR,
};
enum iscsi_session_type {
	ISCSI_SESSION_NORMAL,
	ISCSI_SESSION_DISCOVERY,
};
enum iscsi_auth {
	ISCSI_AUTH_NONE,
	ISCSI_AUTH_CHAP,
};

#define ISCSI_NAME_MAX	224 /* iSCSI names are at most 223 bytes (RFC 7143 4.2.7.1) */
#define ISCSI_ALIAS_MAX 256

/* The values in force for a session/connection (RFC defaults after init). */
struct iscsi_params {
	enum iscsi_session_type session_type;
	enum iscsi_auth auth_method;
	bool header_digest; /* CRC32C */
	bool data_digest;
	uint32_t max_connections;
	bool initial_r2t;
	bool immediate_data;
	uint32_t max_recv_dsl;	    /* declared by the local side: largest PDU data it accepts */
	uint32_t peer_max_recv_dsl; /* declared by the peer: largest PDU data it accepts */
	uint32_t max_burst;
	uint32_t first_burst;
	uint32_t default_time2wait;
	uint32_t default_time2retain;
	uint32_t max_outstanding_r2t;
	bool data_pdu_in_order;
	bool data_seq_in_order;
	uint32_t error_recovery_level;
	uint16_t target_portal_group_tag;
	char initiator_name[ISCSI_NAME_MAX];
	char target_name[ISCSI_NAME_MAX];
	char initiator_alias[ISCSI_ALIAS_MAX];
	char target_alias[ISCSI_ALIAS_MAX];
};

/* Fill \p p with the RFC 7143 defaults (section 13). */
void iscsi_params_default(struct iscsi_params *p);

/*
 * Local policy: what this side offers or accepts. Digests and AuthMethod are
 * preference-ordered lists; numbers are this side's limits (for a
 * numerical-min key the most it accepts; for a max key the least).
 */
struct iscsi_negot_policy {
	bool allow_digest_none, allow_digest_crc32c; /* both: accept either */
	bool prefer_digest_crc32c;		     /* offer CRC32C first (initiator) */
	bool auth_none, auth_chap;		     /* acceptable AuthMethod values */
	struct iscsi_params limits;		     /* numbers and booleans of this side */
};

struct iscsi_negot {
	enum iscsi_role role;
	struct iscsi_negot_policy policy;
	struct iscsi_params result; /* starts at the RFC defaults */
	uint64_t seen;		    /* keys received so far (bit = table index) */
	uint64_t offered;	    /* keys this side sent and awaits an answer to */
	uint64_t declared;	    /* keys this side declared already */
};

void iscsi_negot_init(struct iscsi_negot *n, enum iscsi_role role,
		      const struct iscsi_negot_policy *policy);

/*
 * Responder side (the target for login and text; also an initiator answering
 * a target's offer). Handles the keys of one request in \p stage
 * (ISCSI_STAGE_SECURITY or ISCSI_STAGE_OPERATIONAL) and appends the answers
 * to \p out: the negotiated value, "Irrelevant", "NotUnderstood" for unknown
 * keys, "Reject" for a value out of range or syntax. Keys whose name starts
 * with "CHAP_" are skipped (the caller's CHAP code takes them); so are keys
 * the caller lists in \p skip (NULL-terminated, may be NULL), e.g.
 * "SendTargets". Declaratives are recorded in n->result.
 * Returns 0, or a login status > 0 when the login must fail:
 * ISCSI_LS_INITIATOR_ERROR for a key sent twice or an operational key in the
 * security stage that may not appear there... (see iscsi/negot.c).
 */
int iscsi_negot_respond(struct iscsi_negot *n, int stage, const struct iscsi_kv *kv, size_t nkv,
			const char *const *skip, struct iscsi_text *out);
/*
 * Responder, before leaving the operational stage: append the declaratives
 * this side must state that the peer did not ask for (the target's
 * MaxRecvDataSegmentLength). Idempotent.
 */
int iscsi_negot_declare(struct iscsi_negot *n, struct iscsi_text *out);

/*
 * Originator side (the initiator): append this side's offers for \p stage that
 * have not been made yet. Returns 0 or -ENOMEM.
 */
int iscsi_negot_offer(struct iscsi_negot *n, int stage, struct iscsi_text *out);
/*
 * Originator: take the answers in \p kv (the peer's response), updating
 * n->result. Keys the peer offers on its own are answered into \p out.
 * Returns 0, or -EPROTO when an answer is not a legal outcome of the offer
 * (the login must be abandoned).
 */
int iscsi_negot_accept(struct iscsi_negot *n, int stage, const struct iscsi_kv *kv, size_t nkv,
		       struct iscsi_text *out);
/* True while offers of this side are unanswered. */
static inline bool iscsi_negot_pending(const struct iscsi_negot *n)
{
	return n->offered != 0;
}

/* ---- CHAP (RFC 1994 with MD5, RFC 7143 12.1.3) ---- */
#define ISCSI_CHAP_MD5		 5
#define ISCSI_CHAP_MD5_LEN	 16
#define ISCSI_CHAP_CHALLENGE_LEN 16
#define ISCSI_CHAP_SECRET_MAX	 256

/* MD5(id || secret || challenge) into \p out. */
void iscsi_chap_md5(uint8_t id, const void *secret, size_t secret_len, const void *challenge,
		    size_t challenge_len, uint8_t out[ISCSI_CHAP_MD5_LEN]);
/*
 * Decode a binary value ("0x" hex or "0b" base64, RFC 7143 6.1). Returns 0
 * and *\p len, or -EINVAL (syntax) or -E2BIG (longer than \p max).
 */
int iscsi_bin_decode(const char *s, uint8_t *out, size_t max, size_t *len);
/* Encode as "0x" + lowercase hex into \p out (needs 2 * len + 3 bytes). */
void iscsi_bin_encode_hex(const uint8_t *in, size_t len, char *out);

/* Credentials: one-way uses user/secret; mutual adds the target's own pair. */
struct iscsi_chap_cred {
	char user[ISCSI_NAME_MAX];
	char secret[ISCSI_CHAP_SECRET_MAX];
	char mutual_user[ISCSI_NAME_MAX]; /* empty: the target does not authenticate itself */
	char mutual_secret[ISCSI_CHAP_SECRET_MAX];
};

enum iscsi_chap_state {
	ISCSI_CHAP_START,     /* waiting for CHAP_A */
	ISCSI_CHAP_CHALLENGE, /* sent CHAP_A/I/C, waiting for CHAP_N/R */
	ISCSI_CHAP_DONE,
	ISCSI_CHAP_FAILED,
};

struct iscsi_chap {
	enum iscsi_chap_state state;
	uint8_t id;
	uint8_t challenge[ISCSI_CHAP_CHALLENGE_LEN];
	uint8_t mutual_id; /* initiator side: what it sent */
	uint8_t mutual_challenge[ISCSI_CHAP_CHALLENGE_LEN];
};

/* Results of a CHAP step besides a login status. */
#define ISCSI_CHAP_CONTINUE 0  /* more rounds: send \p out, wait for the next request */
#define ISCSI_CHAP_OK	    -1 /* authenticated (and answered the mutual challenge) */

/*
 * Target: process the CHAP_* keys of one security-stage request. \p lookup
 * gives the credentials for the CHAP_N the initiator presents (return false
 * when the user is unknown). Appends CHAP_A/CHAP_I/CHAP_C, and CHAP_N/CHAP_R
 * for mutual CHAP, to \p out. Accepts a CHAP_A list as Linux sends it
 * ("CHAP_A=5" or "CHAP_A=7,6,5"). Returns ISCSI_CHAP_CONTINUE, ISCSI_CHAP_OK,
 * or a login status: ISCSI_LS_AUTH_FAILED (0x0201) for a wrong response,
 * an unknown user, or a mutual challenge equal to ours;
 * ISCSI_LS_INITIATOR_ERROR for missing or malformed keys.
 */
int iscsi_chap_target_step(struct iscsi_chap *c, const struct iscsi_kv *kv, size_t nkv,
			   bool (*lookup)(void *arg, const char *user,
					  struct iscsi_chap_cred *cred),
			   void *lookup_arg, struct iscsi_text *out);

/*
 * Initiator: answer the target's CHAP keys. First call with nkv == 0 appends
 * "CHAP_A=5". Then, given CHAP_A/CHAP_I/CHAP_C, appends CHAP_N/CHAP_R (and
 * CHAP_I/CHAP_C when cred->mutual_secret is set). Given the target's
 * CHAP_N/CHAP_R for mutual CHAP, verifies them. Returns ISCSI_CHAP_CONTINUE,
 * ISCSI_CHAP_OK or -EACCES (the target failed mutual authentication) /
 * -EPROTO (bad keys).
 */
int iscsi_chap_initiator_step(struct iscsi_chap *c, const struct iscsi_kv *kv, size_t nkv,
			      const struct iscsi_chap_cred *cred, struct iscsi_text *out);

#endif /* VMENGINE_ISCSI_H */
