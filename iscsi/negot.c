/*
 * Login and text negotiation (RFC 7143 6.2 and 13): one table describes every
 * key of section 13 (kind, range, stages, senders, field of struct
 * iscsi_params); the responder and the originator sides both run from it.
 *
 * Decisions taken here, with the clause behind each:
 * - Security keys (AuthMethod) only in the security stage, and operational
 *   keys that are not declarative only in the operational stage (RFC 7143
 *   6.3.2, 6.3.3 and the "Use"/"Any-Stage" lines of section 13); a key out of
 *   its stage fails the login with Initiator error (0x0200), as Linux LIO does.
 * - A key may be negotiated or declared once per login (RFC 7143 6.2: "An
 *   attempt to renegotiate/redeclare parameters not specifically allowed MUST
 *   be detected by the initiator and target. If such an attempt is detected by
 *   the target, the target MUST respond with Login reject (initiator error)").
 *   Only TargetAddress may repeat.
 * - "Irrelevant" for SessionType=Discovery only on the keys whose section 13
 *   entry says so (MaxConnections, InitialR2T, ImmediateData, MaxBurstLength,
 *   FirstBurstLength, MaxOutstandingR2T, DataPDUInOrder, DataSequenceInOrder,
 *   TaskReporting, iSCSIProtocolLevel); DefaultTime2Wait/Retain and
 *   ErrorRecoveryLevel are negotiated as usual.
 * - Obsolete marker keys (RFC 7143 13.25): OFMarker/IFMarker are answered
 *   "No" (allowed: "MAY alternatively respond with a No value"), and
 *   OFMarkInt/IFMarkInt "Reject" ("MUST respond with the constant Reject").
 * - iSCSIProtocolLevel (RFC 7144 2.1, function Minimum): we implement RFC 7143,
 *   level 1, and none of the RFC 7144 additions.
 */
#define UTIL_LOG_TAG "negot"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "iscsi/iscsi.h"
#include "iscsi/iscsi_internal.h"

/* One per key of RFC 7143 section 13 (and RFC 7144 2.1); the value is the mask bit. */
/* clang-format off */
enum key_id {
	K_HEADER_DIGEST, K_DATA_DIGEST, K_MAX_CONNECTIONS, K_SEND_TARGETS,	/* 13.1 - 13.3 */
	K_TARGET_NAME, K_INITIATOR_NAME, K_TARGET_ALIAS, K_INITIATOR_ALIAS,	/* 13.4 - 13.7 */
	K_TARGET_ADDRESS, K_TPGT, K_INITIAL_R2T, K_IMMEDIATE_DATA,		/* 13.8 - 13.11 */
	K_MAX_RECV_DSL, K_MAX_BURST, K_FIRST_BURST, K_TIME2WAIT,		/* 13.12 - 13.15 */
	K_TIME2RETAIN, K_MAX_OUTSTANDING_R2T, K_DATA_PDU_IN_ORDER,		/* 13.16 - 13.18 */
	K_DATA_SEQ_IN_ORDER, K_ERL, K_SESSION_TYPE, K_AUTH_METHOD,		/* 13.19 - 13.21, 12 */
	K_OF_MARKER, K_IF_MARKER, K_OF_MARK_INT, K_IF_MARK_INT,			/* 13.25 */
	K_TASK_REPORTING, K_PROTOCOL_LEVEL,					/* 13.23, 13.24 */
	K_COUNT
};
/* clang-format on */
/* seen/offered/declared are 64-bit masks; the caller keeps bit 63 for itself. */
_Static_assert(K_COUNT < 63, "key bits must fit the negotiation masks");

#define KBIT(id) (1ull << (id))

enum key_kind {
	KIND_LIST,   /* RFC 7143 6.2.1: first offered value the responder supports */
	KIND_MIN,    /* numerical, result function Minimum */
	KIND_MAX,    /* numerical, result function Maximum */
	KIND_AND,    /* Boolean AND */
	KIND_OR,     /* Boolean OR */
	KIND_DECL,   /* declarative: recorded, not answered */
	KIND_REJECT, /* obsolete key always answered "Reject" */
	KIND_FFPO,   /* full feature phase only, handled by the caller (SendTargets) */
};

/* Stages a key may appear in (bit = ISCSI_STAGE_*). */
#define ST_SEC	 (1u << ISCSI_STAGE_SECURITY)
#define ST_OPER	 (1u << ISCSI_STAGE_OPERATIONAL)
#define ST_FFP	 (1u << ISCSI_STAGE_FULL_FEATURE)
#define ST_LOGIN (ST_SEC | ST_OPER)
#define ST_ALL	 (ST_LOGIN | ST_FFP)

/* Who may send the key (bit = enum iscsi_role). */
#define BY_I  (1u << ISCSI_ROLE_INITIATOR)
#define BY_T  (1u << ISCSI_ROLE_TARGET)
#define BY_IT (BY_I | BY_T)

#define KF_SECURITY 0x01 /* security key: security stage only */
#define KF_DISC_IRR 0x02 /* "Irrelevant when: SessionType=Discovery" */
#define KF_REPEAT   0x04 /* may be sent several times (TargetAddress) */

enum field_type {
	FT_NONE, /* not stored; this side's value is key_def.fixed */
	FT_BOOL,
	FT_U16,
	FT_U32,
	FT_STR,
	FT_AUTH,    /* enum iscsi_auth = index in auth_vals */
	FT_SESSION, /* enum iscsi_session_type = index in session_vals */
};

struct key_def {
	const char *name;
	uint8_t kind;
	uint8_t stages;
	uint8_t senders;
	uint8_t flags;
	uint8_t ftype;
	uint16_t off;		 /* offset of the field in struct iscsi_params */
	uint16_t size;		 /* FT_STR: size of the field */
	uint32_t min, max;	 /* numbers: the RFC range; FT_STR: min length */
	uint32_t fixed;		 /* FT_NONE: the value this side holds */
	const char *const *vals; /* list values; the index is the stored value */
};

static const char *const digest_vals[] = {"None", "CRC32C", NULL};
/* RFC 7143 12.1: KRB5, SPKM1, SPKM2 and SRP are legal but not supported. */
static const char *const auth_vals[] = {"None", "CHAP", "KRB5", "SPKM1", "SPKM2", "SRP", NULL};
static const char *const session_vals[] = {"Normal", "Discovery", NULL};
static const char *const task_reporting_vals[] = {"RFC3720", "ResponseFence", "FastAbort", NULL};

_Static_assert(ISCSI_AUTH_NONE == 0 && ISCSI_AUTH_CHAP == 1, "auth_vals order");
_Static_assert(ISCSI_SESSION_NORMAL == 0 && ISCSI_SESSION_DISCOVERY == 1, "session_vals order");

#define FLD(f, t)  .ftype = (t), .off = offsetof(struct iscsi_params, f)
#define STR(f, mn) FLD(f, FT_STR), .size = sizeof(((struct iscsi_params *)0)->f), .min = (mn)
#define MAX_DSL	   16777215u /* 2^24 - 1 */

/* RFC 7143 section 13, one row per key. */
static const struct key_def keys[K_COUNT] = {
    [K_HEADER_DIGEST] = {"HeaderDigest", KIND_LIST, ST_OPER, BY_IT, 0, FLD(header_digest, FT_BOOL),
			 .vals = digest_vals},
    [K_DATA_DIGEST] = {"DataDigest", KIND_LIST, ST_OPER, BY_IT, 0, FLD(data_digest, FT_BOOL),
		       .vals = digest_vals},
    [K_MAX_CONNECTIONS] = {"MaxConnections", KIND_MIN, ST_OPER, BY_IT, KF_DISC_IRR,
			   FLD(max_connections, FT_U32), .min = 1, .max = 65535},
    [K_SEND_TARGETS] = {"SendTargets", KIND_FFPO, ST_FFP, BY_I, 0, .ftype = FT_NONE},
    [K_TARGET_NAME] = {"TargetName", KIND_DECL, ST_LOGIN, BY_I, 0, STR(target_name, 1)},
    [K_INITIATOR_NAME] = {"InitiatorName", KIND_DECL, ST_LOGIN, BY_I, 0, STR(initiator_name, 1)},
    [K_TARGET_ALIAS] = {"TargetAlias", KIND_DECL, ST_ALL, BY_T, 0, STR(target_alias, 0)},
    [K_INITIATOR_ALIAS] = {"InitiatorAlias", KIND_DECL, ST_ALL, BY_I, 0, STR(initiator_alias, 0)},
    [K_TARGET_ADDRESS] = {"TargetAddress", KIND_DECL, ST_ALL, BY_T, KF_REPEAT, .ftype = FT_NONE},
    [K_TPGT] = {"TargetPortalGroupTag", KIND_DECL, ST_LOGIN, BY_T, 0,
		FLD(target_portal_group_tag, FT_U16), .min = 0, .max = 65535},
    [K_INITIAL_R2T] = {"InitialR2T", KIND_OR, ST_OPER, BY_IT, KF_DISC_IRR,
		       FLD(initial_r2t, FT_BOOL)},
    [K_IMMEDIATE_DATA] = {"ImmediateData", KIND_AND, ST_OPER, BY_IT, KF_DISC_IRR,
			  FLD(immediate_data, FT_BOOL)},
    /* What the peer declares is the most we may send it. */
    [K_MAX_RECV_DSL] = {"MaxRecvDataSegmentLength", KIND_DECL, ST_ALL, BY_IT, 0,
			FLD(peer_max_recv_dsl, FT_U32), .min = 512, .max = MAX_DSL},
    [K_MAX_BURST] = {"MaxBurstLength", KIND_MIN, ST_OPER, BY_IT, KF_DISC_IRR,
		     FLD(max_burst, FT_U32), .min = 512, .max = MAX_DSL},
    [K_FIRST_BURST] = {"FirstBurstLength", KIND_MIN, ST_OPER, BY_IT, KF_DISC_IRR,
		       FLD(first_burst, FT_U32), .min = 512, .max = MAX_DSL},
    [K_TIME2WAIT] = {"DefaultTime2Wait", KIND_MAX, ST_OPER, BY_IT, 0,
		     FLD(default_time2wait, FT_U32), .min = 0, .max = 3600},
    [K_TIME2RETAIN] = {"DefaultTime2Retain", KIND_MIN, ST_OPER, BY_IT, 0,
		       FLD(default_time2retain, FT_U32), .min = 0, .max = 3600},
    [K_MAX_OUTSTANDING_R2T] = {"MaxOutstandingR2T", KIND_MIN, ST_OPER, BY_IT, KF_DISC_IRR,
			       FLD(max_outstanding_r2t, FT_U32), .min = 1, .max = 65535},
    [K_DATA_PDU_IN_ORDER] = {"DataPDUInOrder", KIND_OR, ST_OPER, BY_IT, KF_DISC_IRR,
			     FLD(data_pdu_in_order, FT_BOOL)},
    [K_DATA_SEQ_IN_ORDER] = {"DataSequenceInOrder", KIND_OR, ST_OPER, BY_IT, KF_DISC_IRR,
			     FLD(data_seq_in_order, FT_BOOL)},
    [K_ERL] = {"ErrorRecoveryLevel", KIND_MIN, ST_OPER, BY_IT, 0, FLD(error_recovery_level, FT_U32),
	       .min = 0, .max = 2},
    [K_SESSION_TYPE] = {"SessionType", KIND_DECL, ST_LOGIN, BY_I, 0, FLD(session_type, FT_SESSION),
			.vals = session_vals},
    [K_AUTH_METHOD] = {"AuthMethod", KIND_LIST, ST_SEC, BY_IT, KF_SECURITY,
		       FLD(auth_method, FT_AUTH), .vals = auth_vals},
    [K_OF_MARKER] = {"OFMarker", KIND_AND, ST_OPER, BY_IT, 0, .ftype = FT_NONE, .fixed = 0},
    [K_IF_MARKER] = {"IFMarker", KIND_AND, ST_OPER, BY_IT, 0, .ftype = FT_NONE, .fixed = 0},
    [K_OF_MARK_INT] = {"OFMarkInt", KIND_REJECT, ST_OPER, BY_IT, 0, .ftype = FT_NONE},
    [K_IF_MARK_INT] = {"IFMarkInt", KIND_REJECT, ST_OPER, BY_IT, 0, .ftype = FT_NONE},
    [K_TASK_REPORTING] = {"TaskReporting", KIND_LIST, ST_OPER, BY_IT, KF_DISC_IRR, .ftype = FT_NONE,
			  .vals = task_reporting_vals},
    [K_PROTOCOL_LEVEL] = {"iSCSIProtocolLevel", KIND_MIN, ST_OPER, BY_IT, KF_DISC_IRR,
			  .ftype = FT_NONE, .min = 0, .max = 31, .fixed = 1},
};

/* ---- table helpers ---- */

static int key_lookup(const char *name)
{
	for (int i = 0; i < K_COUNT; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return i;
	}
	return -1;
}

static uint32_t field_get(const struct iscsi_params *p, const struct key_def *d)
{
	const char *f = (const char *)p + d->off;

	switch (d->ftype) {
	case FT_BOOL:
		return *(const bool *)(const void *)f;
	case FT_U16:
		return *(const uint16_t *)(const void *)f;
	case FT_U32:
		return *(const uint32_t *)(const void *)f;
	case FT_AUTH:
		return (uint32_t)p->auth_method;
	case FT_SESSION:
		return (uint32_t)p->session_type;
	default:
		return d->fixed;
	}
}

static void field_set(struct iscsi_params *p, const struct key_def *d, uint32_t v)
{
	char *f = (char *)p + d->off;

	switch (d->ftype) {
	case FT_BOOL:
		*(bool *)(void *)f = v != 0;
		break;
	case FT_U16:
		*(uint16_t *)(void *)f = (uint16_t)v;
		break;
	case FT_U32:
		*(uint32_t *)(void *)f = v;
		break;
	case FT_AUTH:
		p->auth_method = (enum iscsi_auth)v;
		break;
	case FT_SESSION:
		p->session_type = (enum iscsi_session_type)v;
		break;
	default:
		break;
	}
}

/* Index of the value \p s (of \p len bytes) in \p vals, or -1. */
static int val_index(const char *const *vals, const char *s, size_t len)
{
	for (int i = 0; vals[i]; i++) {
		if (strlen(vals[i]) == len && memcmp(vals[i], s, len) == 0)
			return i;
	}
	return -1;
}

/* Whether this side's policy accepts list value \p idx of key \p id. */
static bool list_accept(const struct iscsi_negot *n, int id, int idx)
{
	const struct iscsi_negot_policy *p = &n->policy;

	switch (id) {
	case K_HEADER_DIGEST:
	case K_DATA_DIGEST:
		return idx == 0 ? p->allow_digest_none : idx == 1 && p->allow_digest_crc32c;
	case K_AUTH_METHOD:
		return idx == ISCSI_AUTH_NONE ? p->auth_none
					      : idx == ISCSI_AUTH_CHAP && p->auth_chap;
	case K_TASK_REPORTING:
		return idx == 0; /* RFC3720 semantics only */
	default:
		return false;
	}
}

static int parse_bool(const char *s, bool *b)
{
	/* RFC 7143 6.1: boolean-value is "Yes" or "No", case-sensitive. */
	if (strcmp(s, "Yes") == 0)
		*b = true;
	else if (strcmp(s, "No") == 0)
		*b = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_range(const struct key_def *d, const char *s, uint32_t *v)
{
	uint64_t x;

	if (iscsi_text_number(s, &x) < 0 || x < d->min || x > d->max)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

static bool is_reserved(const char *v)
{
	return strcmp(v, "Reject") == 0 || strcmp(v, "Irrelevant") == 0 ||
	       strcmp(v, "NotUnderstood") == 0;
}

static bool in_skip(const char *key, const char *const *skip)
{
	/* CHAP_* keys belong to the CHAP exchange (iscsi/chap.c). */
	if (strncmp(key, "CHAP_", 5) == 0)
		return true;
	for (; skip && *skip; skip++) {
		if (strcmp(key, *skip) == 0)
			return true;
	}
	return false;
}

static int answer(struct iscsi_text *out, const struct key_def *d, const char *v)
{
	return iscsi_text_add(out, d->name, "%s", v) < 0 ? ISCSI_LS_OUT_OF_RESOURCES : 0;
}

static int answer_num(struct iscsi_text *out, const struct key_def *d, uint32_t v)
{
	return iscsi_text_add(out, d->name, "%u", (unsigned)v) < 0 ? ISCSI_LS_OUT_OF_RESOURCES : 0;
}

/* ---- responder ---- */

/*
 * RFC 7143 6.2.1: "the responding party MUST respond with the first value
 * from the offered list that it supports". Returns the index, -ENOENT when
 * nothing is acceptable, -EINVAL for an empty list element.
 */
static int list_pick(const struct iscsi_negot *n, int id, const char *offer)
{
	const char *p = offer;
	int pick = -ENOENT;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0)
			return -EINVAL;
		int idx = val_index(keys[id].vals, p, len);
		if (pick < 0 && idx >= 0 && list_accept(n, id, idx))
			pick = idx;
		if (!comma)
			break;
		p = comma + 1;
	}
	return pick;
}

/* A declarative from the peer: record it; no answer unless it is unacceptable. */
static int respond_decl(struct iscsi_negot *n, int id, const char *val, struct iscsi_text *out)
{
	const struct key_def *d = &keys[id];
	uint32_t v;

	switch (d->ftype) {
	case FT_SESSION: {
		int idx = val_index(d->vals, val, strlen(val));
		if (idx < 0) {
			/* RFC 7143 11.13.5: 0x0209 "Session type not supported". */
			log_warn("SessionType=%.32s not supported", val);
			return ISCSI_LS_SESSION_TYPE_UNSUPP;
		}
		field_set(&n->result, d, (uint32_t)idx);
		return 0;
	}
	case FT_STR: {
		size_t len = strlen(val);
		/* RFC 7143 4.2.7.1: iSCSI names are at most 223 bytes. */
		if (len < d->min || len >= d->size) {
			log_warn("%s of %zu bytes rejected", d->name, len);
			return answer(out, d, "Reject");
		}
		memcpy((char *)&n->result + d->off, val, len + 1);
		return 0;
	}
	case FT_U16:
	case FT_U32:
		if (parse_range(d, val, &v) < 0) {
			log_warn("%s=%.32s out of range", d->name, val);
			return answer(out, d, "Reject");
		}
		field_set(&n->result, d, v);
		return 0;
	default:
		return 0; /* TargetAddress: the caller reads it from the pairs */
	}
}

/* Answer one key the peer sent (already checked for duplicates and stage). */
static int respond_one(struct iscsi_negot *n, int stage, int id, const char *val,
		       struct iscsi_text *out)
{
	const struct key_def *d = &keys[id];
	struct iscsi_params *r = &n->result;
	unsigned peer = n->role == ISCSI_ROLE_TARGET ? BY_I : BY_T;
	uint32_t ours = field_get(&n->policy.limits, d);
	uint32_t res = 0;
	bool b;
	int idx;

	/* RFC 7143 13: each key names its senders; anything else is refused. */
	if (!(d->senders & peer)) {
		log_warn("%s may not be sent by the %s", d->name,
			 peer == BY_I ? "initiator" : "target");
		return answer(out, d, "Reject");
	}
	/* Login-only keys in a text negotiation of the full feature phase. */
	if (!(d->stages & (1u << stage)))
		return answer(out, d, "Reject");

	switch (d->kind) {
	case KIND_DECL:
		return respond_decl(n, id, val, out);
	case KIND_FFPO:
		return 0; /* SendTargets: the caller answers it */
	case KIND_REJECT:
		/* RFC 7143 13.25: OFMarkInt/IFMarkInt "MUST respond with Reject". */
		return answer(out, d, "Reject");
	case KIND_LIST:
		idx = list_pick(n, id, val);
		if (idx < 0) {
			log_info("%s=%.64s: nothing acceptable", d->name, val);
			int rc = answer(out, d, "Reject");
			/*
			 * No common AuthMethod: the initiator cannot be admitted
			 * (RFC 7143 11.13.5, 0x0201 Authentication failure).
			 */
			if (rc == 0 && id == K_AUTH_METHOD)
				rc = ISCSI_LS_AUTH_FAILED;
			return rc;
		}
		res = (uint32_t)idx;
		break;
	case KIND_MIN:
	case KIND_MAX:
		/* RFC 7143 6.2.2: out of range or malformed: "Reject". */
		if (parse_range(d, val, &res) < 0) {
			log_info("%s=%.32s out of range", d->name, val);
			return answer(out, d, "Reject");
		}
		res = d->kind == KIND_MIN ? UTIL_MIN(res, ours) : UTIL_MAX(res, ours);
		/* RFC 7143 13.14: "FirstBurstLength MUST NOT exceed MaxBurstLength". */
		if (id == K_FIRST_BURST)
			res = UTIL_MIN(res, r->max_burst);
		break;
	case KIND_AND:
	case KIND_OR:
		if (parse_bool(val, &b) < 0) {
			log_info("%s=%.32s is not a boolean", d->name, val);
			return answer(out, d, "Reject");
		}
		res = d->kind == KIND_AND ? (b && ours) : (b || ours);
		break;
	default:
		return answer(out, d, "Reject");
	}

	/* RFC 7143 6.2: "the responder may answer with the constant Irrelevant". */
	if ((d->flags & KF_DISC_IRR) && r->session_type == ISCSI_SESSION_DISCOVERY)
		return answer(out, d, "Irrelevant");
	/* RFC 7143 13.14: "Irrelevant when: ( InitialR2T=Yes and ImmediateData=No )". */
	if (id == K_FIRST_BURST && r->initial_r2t && !r->immediate_data)
		return answer(out, d, "Irrelevant");

	field_set(r, d, res);
	switch (d->kind) {
	case KIND_LIST:
		return answer(out, d, d->vals[res]);
	case KIND_AND:
	case KIND_OR:
		return answer(out, d, res ? "Yes" : "No");
	default:
		return answer_num(out, d, res);
	}
}

/*
 * Declaratives first (SessionType decides what is irrelevant), then the
 * negotiated keys, then FirstBurstLength, whose relevance and ceiling
 * depend on InitialR2T, ImmediateData and MaxBurstLength of the same request.
 */
static int key_pass(int id)
{
	if (keys[id].kind == KIND_DECL)
		return 0;
	return id == K_FIRST_BURST ? 2 : 1;
}

/*
 * Check and answer every key of \p kv except those in \p exclude (answers to
 * our own offers, taken by the caller). Returns 0 or a login status.
 */
/*
 * A declarative repeated with the value already recorded. libiscsi sends
 * InitiatorName, TargetName and SessionType again in the operational stage
 * after a security stage; tgt and LIO accept that, and refusing it would
 * lock such hosts out, so only a changed value counts as a redeclaration.
 */
static bool same_declaration(const struct iscsi_negot *n, int id, const char *val)
{
	switch (id) {
	case K_INITIATOR_NAME:
		return strcmp(val, n->result.initiator_name) == 0;
	case K_TARGET_NAME:
		return strcmp(val, n->result.target_name) == 0;
	case K_INITIATOR_ALIAS:
		return strcmp(val, n->result.initiator_alias) == 0;
	case K_TARGET_ALIAS:
		return strcmp(val, n->result.target_alias) == 0;
	case K_SESSION_TYPE:
		return (strcmp(val, "Discovery") == 0) ==
		       (n->result.session_type == ISCSI_SESSION_DISCOVERY);
	default:
		return false;
	}
}

static int respond_keys(struct iscsi_negot *n, int stage, const struct iscsi_kv *kv, size_t nkv,
			const char *const *skip, struct iscsi_text *out, uint64_t exclude)
{
	bool login = stage == ISCSI_STAGE_SECURITY || stage == ISCSI_STAGE_OPERATIONAL;
	int rc;

	if (!login && stage != ISCSI_STAGE_FULL_FEATURE)
		return ISCSI_LS_INITIATOR_ERROR;

	/* Refuse the whole request before answering any of it. */
	for (size_t i = 0; i < nkv; i++) {
		if (in_skip(kv[i].key, skip))
			continue;
		int id = key_lookup(kv[i].key);
		if (id < 0 || (exclude & KBIT(id)))
			continue;
		const struct key_def *d = &keys[id];
		if (login && (d->flags & KF_SECURITY) && stage != ISCSI_STAGE_SECURITY) {
			log_warn("%s in the operational stage", d->name);
			return ISCSI_LS_INITIATOR_ERROR;
		}
		if (login && !(d->stages & (1u << stage))) {
			log_warn("%s not allowed in the %s stage", d->name,
				 stage == ISCSI_STAGE_SECURITY ? "security" : "operational");
			return ISCSI_LS_INITIATOR_ERROR;
		}
		if (d->flags & KF_REPEAT)
			continue;
		if ((n->seen & KBIT(id)) && same_declaration(n, id, kv[i].val))
			continue;
		if (n->seen & KBIT(id)) {
			log_warn("%s sent twice", d->name);
			return ISCSI_LS_INITIATOR_ERROR;
		}
		n->seen |= KBIT(id);
	}

	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < nkv; i++) {
			if (in_skip(kv[i].key, skip))
				continue;
			int id = key_lookup(kv[i].key);
			if (id < 0) {
				/*
				 * RFC 7143 6.2: "the answer for a key not understood
				 * MUST be key=NotUnderstood" (X- and X# keys too).
				 */
				if (pass == 1 &&
				    iscsi_text_add(out, kv[i].key, "NotUnderstood") < 0)
					return ISCSI_LS_OUT_OF_RESOURCES;
				continue;
			}
			if ((exclude & KBIT(id)) || key_pass(id) != pass)
				continue;
			rc = respond_one(n, stage, id, kv[i].val, out);
			if (rc)
				return rc;
		}
	}
	n->result.first_burst = UTIL_MIN(n->result.first_burst, n->result.max_burst);
	return 0;
}

int iscsi_negot_respond(struct iscsi_negot *n, int stage, const struct iscsi_kv *kv, size_t nkv,
			const char *const *skip, struct iscsi_text *out)
{
	return respond_keys(n, stage, kv, nkv, skip, out, 0);
}

int iscsi_negot_declare(struct iscsi_negot *n, struct iscsi_text *out)
{
	if (n->declared & KBIT(K_MAX_RECV_DSL))
		return 0;
	int rc = iscsi_text_add(out, keys[K_MAX_RECV_DSL].name, "%u",
				(unsigned)n->policy.limits.max_recv_dsl);
	if (rc < 0)
		return rc;
	n->declared |= KBIT(K_MAX_RECV_DSL);
	n->result.max_recv_dsl = n->policy.limits.max_recv_dsl;
	return 0;
}

/* ---- originator ---- */

/* Our offer for list key \p id, in preference order; false when nothing is acceptable. */
static bool list_offer(const struct iscsi_negot *n, int id, char *buf, size_t size)
{
	static const int digest_order[2][2] = {{0, 1}, {1, 0}};
	static const int auth_order[] = {ISCSI_AUTH_CHAP, ISCSI_AUTH_NONE};
	const int *order;
	int count;
	size_t len = 0;

	switch (id) {
	case K_HEADER_DIGEST:
	case K_DATA_DIGEST:
		order = digest_order[n->policy.prefer_digest_crc32c ? 1 : 0];
		count = 2;
		break;
	case K_AUTH_METHOD:
		order = auth_order;
		count = 2;
		break;
	default:
		return false;
	}
	buf[0] = '\0';
	for (int i = 0; i < count; i++) {
		if (!list_accept(n, id, order[i]))
			continue;
		int w = snprintf(buf + len, size - len, "%s%s", len ? "," : "",
				 keys[id].vals[order[i]]);
		if (w < 0 || (size_t)w >= size - len)
			return false;
		len += (size_t)w;
	}
	return len > 0;
}

/* Offer key \p id once, unless the peer already brought it up. */
static int offer_key(struct iscsi_negot *n, int id, struct iscsi_text *out)
{
	const struct key_def *d = &keys[id];
	uint32_t ours = field_get(&n->policy.limits, d);
	char list[64];
	int rc;

	if ((n->offered | n->seen) & KBIT(id))
		return 0;
	switch (d->kind) {
	case KIND_LIST:
		if (!list_offer(n, id, list, sizeof(list)))
			return 0; /* nothing to offer: the default stands */
		rc = iscsi_text_add(out, d->name, "%s", list);
		break;
	case KIND_AND:
	case KIND_OR:
		rc = iscsi_text_add(out, d->name, "%s", ours ? "Yes" : "No");
		break;
	default:
		rc = iscsi_text_add(out, d->name, "%u", (unsigned)ours);
		break;
	}
	if (rc < 0)
		return rc;
	n->offered |= KBIT(id);
	return 0;
}

/* Declare one of our own declaratives once, recording it in the result. */
static int declare_key(struct iscsi_negot *n, int id, struct iscsi_text *out)
{
	const struct key_def *d = &keys[id];
	const struct iscsi_params *lim = &n->policy.limits;
	int rc;

	if (n->declared & KBIT(id))
		return 0;
	if (d->ftype == FT_STR) {
		const char *s = (const char *)lim + d->off;
		int len = (int)strnlen(s, d->size - 1u);
		if (len == 0)
			return 0;
		rc = iscsi_text_add(out, d->name, "%.*s", len, s);
		if (rc == 0) {
			char *dst = (char *)&n->result + d->off;
			memcpy(dst, s, (size_t)len);
			dst[len] = '\0';
		}
	} else if (id == K_SESSION_TYPE) {
		rc = iscsi_text_add(out, d->name, "%s", session_vals[lim->session_type]);
		n->result.session_type = lim->session_type;
	} else { /* MaxRecvDataSegmentLength: our own receive limit */
		rc = iscsi_text_add(out, d->name, "%u", (unsigned)lim->max_recv_dsl);
		n->result.max_recv_dsl = lim->max_recv_dsl;
	}
	if (rc < 0)
		return rc;
	n->declared |= KBIT(id);
	return 0;
}

int iscsi_negot_offer(struct iscsi_negot *n, int stage, struct iscsi_text *out)
{
	/* Operational keys the initiator proposes (RFC 7143 13), in offer order. */
	static const int normal_keys[] = {
	    K_INITIAL_R2T,	   K_IMMEDIATE_DATA,	K_MAX_BURST,	     K_FIRST_BURST,
	    K_MAX_OUTSTANDING_R2T, K_DATA_PDU_IN_ORDER, K_DATA_SEQ_IN_ORDER, K_MAX_CONNECTIONS,
	};
	static const int session_keys[] = {K_TIME2WAIT, K_TIME2RETAIN, K_ERL};
	bool normal = n->policy.limits.session_type == ISCSI_SESSION_NORMAL;
	int rc = 0;

	/* RFC 7143 6.3.1: the first Login Request names the initiator and session. */
	rc = declare_key(n, K_INITIATOR_NAME, out);
	if (!rc)
		rc = declare_key(n, K_INITIATOR_ALIAS, out);
	if (!rc)
		rc = declare_key(n, K_SESSION_TYPE, out);
	if (!rc && normal)
		rc = declare_key(n, K_TARGET_NAME, out);
	if (rc)
		return rc;

	if (stage == ISCSI_STAGE_SECURITY)
		return offer_key(n, K_AUTH_METHOD, out);
	if (stage != ISCSI_STAGE_OPERATIONAL)
		return 0;

	rc = offer_key(n, K_HEADER_DIGEST, out);
	if (!rc)
		rc = offer_key(n, K_DATA_DIGEST, out);
	for (size_t i = 0; normal && !rc && i < UTIL_ARRAY_SIZE(normal_keys); i++)
		rc = offer_key(n, normal_keys[i], out);
	for (size_t i = 0; !rc && i < UTIL_ARRAY_SIZE(session_keys); i++)
		rc = offer_key(n, session_keys[i], out);
	if (!rc)
		rc = declare_key(n, K_MAX_RECV_DSL, out);
	return rc;
}

/* Check the peer's answer to our offer of key \p id and record the outcome. */
static int accept_answer(struct iscsi_negot *n, int id, const char *val)
{
	const struct key_def *d = &keys[id];
	struct iscsi_params *r = &n->result;
	uint32_t ours = field_get(&n->policy.limits, d);
	uint32_t v;
	bool b;

	/*
	 * RFC 7143 6.2: Reject, Irrelevant and NotUnderstood leave the key
	 * un-negotiated, so its default (or previous) value stays.
	 */
	if (is_reserved(val)) {
		log_info("%s answered %s", d->name, val);
		return 0;
	}
	switch (d->kind) {
	case KIND_LIST: {
		int idx = val_index(d->vals, val, strlen(val));
		/* The answer must be one of the values we offered. */
		if (idx < 0 || !list_accept(n, id, idx))
			return -EPROTO;
		field_set(r, d, (uint32_t)idx);
		return 0;
	}
	case KIND_MIN:
		if (parse_range(d, val, &v) < 0 || v > ours)
			return -EPROTO;
		if (id == K_FIRST_BURST)
			v = UTIL_MIN(v, r->max_burst);
		field_set(r, d, v);
		return 0;
	case KIND_MAX:
		if (parse_range(d, val, &v) < 0 || v < ours)
			return -EPROTO;
		field_set(r, d, v);
		return 0;
	case KIND_AND:
		/* AND with our No can only be No; OR with our Yes only Yes. */
		if (parse_bool(val, &b) < 0 || (b && !ours))
			return -EPROTO;
		field_set(r, d, b);
		return 0;
	case KIND_OR:
		if (parse_bool(val, &b) < 0 || (!b && ours))
			return -EPROTO;
		field_set(r, d, b);
		return 0;
	default:
		return -EPROTO;
	}
}

int iscsi_negot_accept(struct iscsi_negot *n, int stage, const struct iscsi_kv *kv, size_t nkv,
		       struct iscsi_text *out)
{
	uint64_t answered = 0;

	for (size_t i = 0; i < nkv; i++) {
		if (in_skip(kv[i].key, NULL))
			continue;
		int id = key_lookup(kv[i].key);
		if (id < 0)
			continue;
		/* RFC 7143 6.2: a key answered twice: "the initiator MUST drop the connection". */
		if (answered & KBIT(id)) {
			log_warn("%s answered twice", kv[i].key);
			return -EPROTO;
		}
		if (!(n->offered & KBIT(id)))
			continue;
		n->offered &= ~KBIT(id);
		n->seen |= KBIT(id);
		answered |= KBIT(id);
		if (accept_answer(n, id, kv[i].val) < 0) {
			log_warn("illegal answer %s=%.64s", kv[i].key, kv[i].val);
			return -EPROTO;
		}
	}
	n->result.first_burst = UTIL_MIN(n->result.first_burst, n->result.max_burst);

	/* Whatever the target brought up on its own is answered like a responder. */
	int rc = respond_keys(n, stage, kv, nkv, NULL, out, answered);
	if (rc == ISCSI_LS_OUT_OF_RESOURCES)
		return -ENOMEM;
	return rc ? -EPROTO : 0;
}

void iscsi_params_default(struct iscsi_params *p)
{
	/* RFC 7143 section 13, the "Default is" of each key (zero: None, No, 0, empty). */
	memset(p, 0, sizeof(*p));
	p->session_type = ISCSI_SESSION_NORMAL;
	p->auth_method = ISCSI_AUTH_NONE;
	p->max_connections = 1;
	p->initial_r2t = true;
	p->immediate_data = true;
	p->max_recv_dsl = 8192;
	p->peer_max_recv_dsl = 8192;
	p->max_burst = 262144;
	p->first_burst = 65536;
	p->default_time2wait = 2;
	p->default_time2retain = 20;
	p->max_outstanding_r2t = 1;
	p->data_pdu_in_order = true;
	p->data_seq_in_order = true;
}

void iscsi_negot_init(struct iscsi_negot *n, enum iscsi_role role,
		      const struct iscsi_negot_policy *policy)
{
	memset(n, 0, sizeof(*n));
	n->role = role;
	n->policy = *policy;
	iscsi_params_default(&n->result);
	/* The initiator decides the session type; its answers depend on it. */
	if (role == ISCSI_ROLE_INITIATOR)
		n->result.session_type = policy->limits.session_type;
}
