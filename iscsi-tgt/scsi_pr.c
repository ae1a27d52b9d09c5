/*
 * Reservations of a logical unit: SPC-4 persistent reservations
 * (PERSISTENT RESERVE IN / OUT, 5.12, 6.16, 6.17), SPC-2 RESERVE and
 * RELEASE (6) and (10), the conflict check every command goes through,
 * and the APTPL state kept in the state directory (scsi_pr_store.c).
 *
 * The state is per LU and shared by sessions on every reactor thread, so it
 * lives under lu->lock (PR commands are rare). The check on the data path
 * reads one atomic word (lu->resv) and takes the lock only while a
 * reservation exists. An I_T nexus is named by its initiator port (iSCSI
 * name + ISID, SPC-4 7.6.4.6) and the target port; a target has one port,
 * relative target port identifier 1, so ALL_TG_PT changes nothing but what
 * READ FULL STATUS reports.
 */
#define UTIL_LOG_TAG "pr"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iscsi-tgt/scsi_internal.h"

#define PR_MAX_REGS	64   /* registrations per LU */
#define PR_RTPI		1    /* our one target port */
#define PR_PARAM_MAX	8192 /* largest PR OUT parameter list we take */
#define PR_TPID_MIN_LEN 24   /* iSCSI TransportID: at least 24 bytes */

/* An initiator port, or all ports of an initiator (TransportID format 00b). */
struct pr_nexus {
	char name[ISCSI_NAME_MAX];
	uint8_t isid[6];
	bool any_isid;
};

struct pr_reg {
	struct pr_nexus n;
	uint64_t key;
	bool all_tg_pt;
};

struct tgt_pr {
	uint32_t generation;	    /* PRgeneration (SPC-4 6.16.2) */
	bool aptpl;		    /* the last APTPL received: persist through power loss */
	bool stored;		    /* a state file exists */
	char path[TGT_PR_PATH_MAX]; /* "": no state directory, APTPL unsupported */
	unsigned nregs;
	struct pr_reg regs[PR_MAX_REGS];
	bool reserved;
	uint8_t type;		/* PR_TYPE_* */
	struct pr_nexus holder; /* not used by the all-registrants types */
	/* SPC-2 RESERVE: the holding nexus, valid while it is on lu->itls */
	struct tgt_itl *spc2;
	uint16_t spc2_tsih;
};

/* ---- nexus identity ---- */

static void pr_nexus_of(const struct tgt_itl *itl, struct pr_nexus *n)
{
	memset(n, 0, sizeof(*n));
	if (itl == NULL || itl->sess == NULL)
		return;
	snprintf(n->name, sizeof(n->name), "%s", itl->sess->params.initiator_name);
	memcpy(n->isid, itl->sess->isid, sizeof(n->isid));
}

/* Does registration nexus \p r cover the actual nexus \p n? (iSCSI names are caseless.) */
static bool pr_covers(const struct pr_nexus *r, const struct pr_nexus *n)
{
	return strcasecmp(r->name, n->name) == 0 &&
	       (r->any_isid || n->any_isid || memcmp(r->isid, n->isid, 6) == 0);
}

static int pr_find(const struct tgt_pr *pr, const struct pr_nexus *n)
{
	for (unsigned i = 0; i < pr->nregs; i++)
		if (pr_covers(&pr->regs[i].n, n))
			return (int)i;
	return -1;
}

static bool pr_all_registrants(uint8_t type)
{
	return type == PR_TYPE_WR_EX_AR || type == PR_TYPE_EX_AC_AR;
}

static bool pr_type_valid(uint8_t type)
{
	switch (type) {
	case PR_TYPE_WR_EX:
	case PR_TYPE_EX_AC:
	case PR_TYPE_WR_EX_RO:
	case PR_TYPE_EX_AC_RO:
	case PR_TYPE_WR_EX_AR:
	case PR_TYPE_EX_AC_AR:
		return true;
	default:
		return false;
	}
}

/* SPC-4 5.12.10: all registrants are holders of an all-registrants reservation. */
static bool pr_is_holder(const struct tgt_pr *pr, const struct pr_nexus *n)
{
	if (!pr->reserved)
		return false;
	if (pr_all_registrants(pr->type))
		return pr_find(pr, n) >= 0;
	return pr_covers(&pr->holder, n);
}

/* The SPC-2 holder, if its nexus still exists (it is dropped from lu->itls when it ends). */
static struct tgt_itl *pr_spc2_holder(struct tgt_lu *lu)
{
	struct tgt_pr *pr = lu->pr;
	struct tgt_itl *itl;

	if (pr->spc2 == NULL)
		return NULL;
	LIST_FOREACH (itl, &lu->itls, lu_link) {
		if (itl == pr->spc2 && (itl->sess ? itl->sess->tsih : 0) == pr->spc2_tsih)
			return itl;
	}
	pr->spc2 = NULL;
	return NULL;
}

static void pr_update_flags(struct tgt_lu *lu)
{
	unsigned v = TGT_RESV_LOADED;

	if (lu->pr->reserved || lu->pr->spc2 != NULL)
		v |= TGT_RESV_ACTIVE;
	atomic_store_explicit(&lu->resv, v, memory_order_release);
}

/* ---- unit attentions to chosen nexuses (lu->lock held) ---- */

enum pr_ua_to {
	UA_TO_REGISTERED, /* every registered nexus */
	UA_TO_DOOMED,	  /* nexuses whose registration is being removed (doomed[]) */
};

static void pr_ua(struct tgt_lu *lu, enum tgt_ua ua, enum pr_ua_to to, const bool *doomed,
		  const struct pr_nexus *except)
{
	struct tgt_itl *itl;
	struct pr_nexus n;

	LIST_FOREACH (itl, &lu->itls, lu_link) {
		int i;

		pr_nexus_of(itl, &n);
		if (n.name[0] == '\0' || (except && pr_covers(except, &n)))
			continue;
		i = pr_find(lu->pr, &n);
		if (i < 0 || (to == UA_TO_DOOMED && !doomed[i]))
			continue;
		atomic_fetch_or(&itl->ua, 1u << ua);
	}
}

static void pr_remove_doomed(struct tgt_pr *pr, const bool *doomed)
{
	unsigned j = 0;

	for (unsigned i = 0; i < pr->nregs; i++)
		if (!doomed[i])
			pr->regs[j++] = pr->regs[i];
	pr->nregs = j;
	/* SPC-4 5.12.11.2: a reservation ends with its holder's registration. */
	if (pr->reserved &&
	    (pr_all_registrants(pr->type) ? pr->nregs == 0 : pr_find(pr, &pr->holder) < 0))
		pr->reserved = false;
}

/* ---- persistence (APTPL) ---- */

static void pr_hex(char *out, const uint8_t *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static bool pr_unhex(uint8_t *b, const char *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1)
			return false;
		b[i] = (uint8_t)v;
	}
	return s[2 * n] == '\0';
}

/*
 * A name as one token of the state file. Names come from the login and
 * from TransportIDs, and nothing guarantees they hold no space or line
 * break: written raw, such a name would read back as another name, or
 * forge a registration or reservation line. Those bytes (and '%') are
 * written as %XX, which no valid iSCSI name contains (RFC 3722).
 */
#define PR_NAME_TOKEN_MAX (3 * ISCSI_NAME_MAX)

static void pr_put_name(char *out, const char *name)
{
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++) {
		if (*c <= ' ' || *c == 0x7f || *c == '%')
			o += (size_t)snprintf(out + o, 4, "%%%02x", *c);
		else
			out[o++] = (char)*c;
	}
	out[o] = '\0';
}

static int pr_xdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool pr_get_name(char *name, const char *tok)
{
	size_t o = 0;

	for (const char *c = tok; *c != '\0'; c++) {
		int b = (unsigned char)*c;

		if (*c == '%') {
			int hi = pr_xdigit(c[1]), lo = hi < 0 ? -1 : pr_xdigit(c[2]);

			if (lo < 0 || (b = hi << 4 | lo) == 0)
				return false;
			c += 2;
		}
		if (o + 1 >= ISCSI_NAME_MAX)
			return false;
		name[o++] = (char)b;
	}
	name[o] = '\0';
	return o > 0;
}

static void pr_put_nexus(char *out, size_t len, const struct pr_nexus *n)
{
	char isid[13] = "*", name[PR_NAME_TOKEN_MAX];

	if (!n->any_isid)
		pr_hex(isid, n->isid, 6);
	pr_put_name(name, n->name);
	snprintf(out, len, "%s %s", isid, name);
}

static bool pr_get_nexus(struct pr_nexus *n, const char *isid, const char *name)
{
	memset(n, 0, sizeof(*n));
	if (!pr_get_name(n->name, name))
		return false;
	if (strcmp(isid, "*") == 0) {
		n->any_isid = true;
		return true;
	}
	return pr_unhex(n->isid, isid, 6);
}

/*
 * Text form, one item per line (names never contain spaces):
 *   vmengine-pr 1 / generation G / reg KEY ALL_TG_PT ISID|* NAME /
 *   resv TYPE ISID|* NAME
 */
static int pr_save(struct tgt_pr *pr)
{
	size_t cap = 128 + (size_t)(pr->nregs + 1) * (PR_NAME_TOKEN_MAX + 64);
	char *buf, nx[PR_NAME_TOKEN_MAX + 16];
	size_t len;
	int rc;

	if (pr->path[0] == '\0')
		return 0;
	if (!pr->aptpl) {
		/* SPC-4 5.12.4: APTPL zero: nothing survives a power loss. */
		if (!pr->stored)
			return 0;
		rc = tgt_pr_store_remove(pr->path);
		if (rc == 0)
			pr->stored = false;
		return rc;
	}
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	len = (size_t)snprintf(buf, cap, "vmengine-pr 1\ngeneration %u\n", pr->generation);
	for (unsigned i = 0; i < pr->nregs; i++) {
		pr_put_nexus(nx, sizeof(nx), &pr->regs[i].n);
		len += (size_t)snprintf(buf + len, cap - len, "reg %016llx %d %s\n",
					(unsigned long long)pr->regs[i].key, pr->regs[i].all_tg_pt,
					nx);
	}
	if (pr->reserved) {
		pr_put_nexus(nx, sizeof(nx), &pr->holder);
		len += (size_t)snprintf(buf + len, cap - len, "resv %u %s\n", pr->type,
					pr_all_registrants(pr->type) ? "* -" : nx);
	}
	rc = tgt_pr_store_save(pr->path, buf, len);
	free(buf);
	if (rc == 0)
		pr->stored = true;
	return rc;
}

_Static_assert(PR_NAME_TOKEN_MAX == 672, "the sscanf widths below are PR_NAME_TOKEN_MAX - 1");

static int pr_parse(struct tgt_pr *pr, char *text)
{
	char *save = NULL, isid[16], name[PR_NAME_TOKEN_MAX];
	unsigned long long key;
	unsigned u, v;
	bool header = false;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!header) {
			if (strcmp(line, "vmengine-pr 1") != 0)
				return -EINVAL;
			header = true;
		} else if (sscanf(line, "generation %u", &u) == 1) {
			pr->generation = u;
		} else if (sscanf(line, "reg %llx %u %15s %671s", &key, &u, isid, name) == 4) {
			struct pr_reg *r = &pr->regs[pr->nregs];

			if (pr->nregs >= PR_MAX_REGS || !pr_get_nexus(&r->n, isid, name))
				return -EINVAL;
			r->key = key;
			r->all_tg_pt = u != 0;
			pr->nregs++;
		} else if (sscanf(line, "resv %u %15s %671s", &v, isid, name) == 3) {
			if (!pr_type_valid((uint8_t)v))
				return -EINVAL;
			pr->type = (uint8_t)v;
			pr->reserved = true;
			if (!pr_all_registrants(pr->type) && !pr_get_nexus(&pr->holder, isid, name))
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	if (!header)
		return -EINVAL;
	if (pr->reserved && !pr_all_registrants(pr->type) && pr_find(pr, &pr->holder) < 0)
		return -EINVAL;
	return 0;
}

/* Allocate lu->pr and load its APTPL state. lu->lock held. */
static int pr_load_locked(struct tgt_lu *lu, const char *state_dir)
{
	struct tgt_pr *pr;
	char *text = NULL;
	char id[2 * VOL_ID_LEN + 1];
	int rc;

	if (lu->pr != NULL)
		return 0;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	if (state_dir != NULL && state_dir[0] != '\0') {
		pr_hex(id, vol_id(lu->vol), VOL_ID_LEN);
		if ((size_t)snprintf(pr->path, sizeof(pr->path), "%s/pr-%s", state_dir, id) >=
		    sizeof(pr->path)) {
			log_err("state directory path too long: APTPL unsupported");
			pr->path[0] = '\0';
		}
	}
	if (pr->path[0] != '\0') {
		rc = tgt_pr_store_load(pr->path, &text);
		if (rc == 0) {
			rc = pr_parse(pr, text);
			if (rc < 0) {
				log_err("%s: unreadable reservation state, ignored", pr->path);
				memset(pr->regs, 0, sizeof(pr->regs));
				pr->nregs = 0;
				pr->reserved = false;
			} else {
				pr->aptpl = pr->stored = true;
				log_info("%s: %u registrations%s restored (APTPL)", pr->path,
					 pr->nregs, pr->reserved ? " and a reservation" : "");
			}
			free(text);
		} else if (rc != -ENOENT) {
			log_err("%s: %s; starting without reservations", pr->path, strerror(-rc));
		}
	}
	lu->pr = pr;
	pr_update_flags(lu);
	return 0;
}

int tgt_pr_lu_load(struct tgt_lu *lu, const char *state_dir)
{
	int rc;

	pthread_mutex_lock(&lu->lock);
	rc = pr_load_locked(lu, state_dir);
	pthread_mutex_unlock(&lu->lock);
	return rc;
}

void tgt_pr_lu_free(struct tgt_lu *lu)
{
	free(lu->pr);
	lu->pr = NULL;
	atomic_store(&lu->resv, 0);
}

/* Lock the LU with its PR state present; -ENOMEM leaves it unlocked. */
static int pr_lock(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;
	const struct tgt_config *cfg = tgt_task_config(t);

	pthread_mutex_lock(&lu->lock);
	if (lu->pr == NULL && pr_load_locked(lu, cfg ? cfg->state_dir : NULL) < 0) {
		pthread_mutex_unlock(&lu->lock);
		return -ENOMEM;
	}
	return 0;
}

void tgt_pr_nexus_gone(struct tgt_itl *itl)
{
	struct tgt_lu *lu = itl->lu;

	if (lu == NULL)
		return;
	pthread_mutex_lock(&lu->lock);
	if (lu->pr != NULL && lu->pr->spc2 == itl) {
		/* SPC-2 5.5.1: an I_T nexus loss releases its reservation. */
		lu->pr->spc2 = NULL;
		pr_update_flags(lu);
	}
	pthread_mutex_unlock(&lu->lock);
}

void tgt_pr_lu_reset(struct tgt_lu *lu)
{
	pthread_mutex_lock(&lu->lock);
	if (lu->pr != NULL && lu->pr->spc2 != NULL) {
		lu->pr->spc2 = NULL;
		pr_update_flags(lu);
	}
	pthread_mutex_unlock(&lu->lock);
}

/* ---- the conflict check ---- */

/* SPC-4 5.12.1 table 56 and SBC-3 4.17 table 13, for a non-holder. lu->lock held. */
static bool pr_conflicts(struct tgt_lu *lu, const struct tgt_task *t,
			 const struct tgt_scsi_cmd *cmd)
{
	struct tgt_pr *pr = lu->pr;
	struct tgt_itl *spc2 = pr_spc2_holder(lu);
	struct pr_nexus n;
	bool registered;

	/*
	 * SPC-2 5.5.1: a RESERVE(6/10) reservation leaves the other
	 * initiators INQUIRY, REPORT LUNS, REQUEST SENSE and RELEASE (which
	 * then does nothing); all else is RESERVATION CONFLICT.
	 */
	if (spc2 != NULL && spc2 != t->itl && !(cmd->flags & TGT_SCSI_F_SPC2_OK))
		return true;
	if (!pr->reserved || (cmd->flags & TGT_SCSI_F_ALLOW_ON_RESV))
		return false;
	pr_nexus_of(t->itl, &n);
	if (pr_is_holder(pr, &n))
		return false;
	registered = pr_find(pr, &n) >= 0;
	switch (pr->type) {
	case PR_TYPE_WR_EX:
		return !(cmd->flags & TGT_SCSI_F_RESV_READ);
	case PR_TYPE_WR_EX_RO:
	case PR_TYPE_WR_EX_AR:
		return !registered && !(cmd->flags & TGT_SCSI_F_RESV_READ);
	case PR_TYPE_EX_AC_RO:
	case PR_TYPE_EX_AC_AR:
		return !registered;
	default: /* PR_TYPE_EX_AC */
		return true;
	}
}

static void pr_conflict(struct tgt_task *t)
{
	t->status = SAM_STAT_RESERVATION_CONFLICT;
	t->sense_len = 0;
	t->data_len = 0;
}

int tgt_pr_check(struct tgt_task *t, const struct tgt_scsi_cmd *cmd)
{
	struct tgt_lu *lu = t->lu;
	unsigned v = atomic_load_explicit(&lu->resv, memory_order_acquire);
	bool conflict;

	if (likely(v == TGT_RESV_LOADED))
		return 0;
	if (pr_lock(t) < 0)
		return 0; /* no memory for the state: it is loaded on a later command */
	conflict = pr_conflicts(lu, t, cmd);
	pr_update_flags(lu);
	pthread_mutex_unlock(&lu->lock);
	if (conflict)
		pr_conflict(t);
	return conflict ? 1 : 0;
}

/* ---- PERSISTENT RESERVE IN (SPC-4 6.16) ---- */

/* An iSCSI TransportID (SPC-4 7.6.4.6) for \p n at \p p; returns its length. */
static uint32_t pr_put_tpid(uint8_t *p, const struct pr_nexus *n)
{
	char s[ISCSI_NAME_MAX + 24];
	char isid[13];
	uint32_t len, slen;

	if (n->any_isid) {
		snprintf(s, sizeof(s), "%s", n->name);
	} else {
		pr_hex(isid, n->isid, 6);
		snprintf(s, sizeof(s), "%s,i,0x%s", n->name, isid);
	}
	slen = (uint32_t)strlen(s) + 1;
	/* "shall be at least 20 bytes ... a multiple of four" (with the NUL) */
	len = UTIL_MAX(20u, (slen + 3) & ~3u);
	memset(p, 0, 4 + len);
	p[0] = (n->any_isid ? TPID_FMT_NAME : TPID_FMT_PORT) | TPID_PROTO_ISCSI;
	put_be16(p + 2, (uint16_t)len);
	memcpy(p + 4, s, slen);
	return 4 + len;
}

static void pr_in_locked(struct tgt_task *t, uint8_t *buf, uint32_t *len)
{
	struct tgt_pr *pr = t->lu->pr;
	uint8_t sa = t->cdb[1] & SCSI_SA_MASK;
	uint32_t n = 8;

	memset(buf, 0, 8);
	put_be32(buf, pr->generation);
	switch (sa) {
	case PRIN_READ_KEYS:
		for (unsigned i = 0; i < pr->nregs; i++, n += 8)
			put_be64(buf + n, pr->regs[i].key);
		break;
	case PRIN_READ_RESERVATION:
		if (pr->reserved) {
			int h = pr_find(pr, &pr->holder);

			memset(buf + 8, 0, 16);
			/* SPC-4 6.16.3.3: zero for the all-registrants types. */
			if (!pr_all_registrants(pr->type) && h >= 0)
				put_be64(buf + 8, pr->regs[h].key);
			buf[21] = (uint8_t)(PR_SCOPE_LU << 4 | pr->type);
			n += 16;
		}
		break;
	case PRIN_REPORT_CAPABILITIES:
		/* SPC-4 6.16.4: a fixed 8-byte answer, no generation. */
		memset(buf, 0, 8);
		put_be16(buf, 8);
		buf[2] = PRCAP_CRH | PRCAP_SIP_C | PRCAP_ATP_C;
		if (pr->path[0] != '\0')
			buf[2] |= PRCAP_PTPL_C;
		if (pr->aptpl)
			buf[3] |= PRCAP_PTPL_A;
		buf[4] =
		    0x80 | 0x40 | 0x20 | 0x08 | 0x02; /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
		buf[5] = 0x01;			      /* EX_AC_AR */
		*len = 8;
		return;
	default: /* PRIN_READ_FULL_STATUS, 6.16.5 */
		for (unsigned i = 0; i < pr->nregs; i++) {
			const struct pr_reg *r = &pr->regs[i];
			uint8_t *d = buf + n;
			bool holder = pr->reserved && (pr_all_registrants(pr->type) ||
						       pr_covers(&r->n, &pr->holder));
			uint32_t tl;

			memset(d, 0, 24);
			put_be64(d, r->key);
			d[12] = (r->all_tg_pt ? PRFS_ALL_TG_PT : 0) | (holder ? PRFS_R_HOLDER : 0);
			if (holder)
				d[13] = (uint8_t)(PR_SCOPE_LU << 4 | pr->type);
			put_be16(d + 18, PR_RTPI);
			tl = pr_put_tpid(d + 24, &r->n);
			put_be32(d + 20, tl);
			n += 24 + tl;
		}
		break;
	}
	put_be32(buf + 4, n - 8);
	*len = n;
}

void tgt_pr_in(struct tgt_task *t)
{
	/* the largest answer: READ FULL STATUS with every registration */
	size_t cap = 8 + (size_t)PR_MAX_REGS * (24 + 4 + ISCSI_NAME_MAX + 24);
	uint8_t *buf = malloc(cap);
	uint32_t len = 0;

	if (!buf || pr_lock(t) < 0) {
		free(buf);
		tgt_task_errno(t, -ENOMEM);
		tgt_task_done(t);
		return;
	}
	pr_in_locked(t, buf, &len);
	pthread_mutex_unlock(&t->lu->lock);
	tgt_scsi_data_in(t, buf, len);
	free(buf);
}

/* ---- PERSISTENT RESERVE OUT (SPC-4 6.17, 5.12.5-5.12.11) ---- */

/* What a service action decided; the handler completes the task from it. */
enum pr_result {
	PR_GOOD,
	PR_CONFLICT,
	PR_FAILED, /* sense already set */
};

static enum pr_result pr_param_field(struct tgt_task *t, uint16_t byte, int bit)
{
	tgt_scsi_fail_field(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, byte, bit);
	return PR_FAILED;
}

static enum pr_result pr_fail(struct tgt_task *t, uint16_t code)
{
	tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, code);
	return PR_FAILED;
}

/*
 * Parse an iSCSI TransportID at \p p (\p avail bytes) into \p n; returns its
 * length, or 0 when malformed.
 */
static uint32_t pr_get_tpid(const uint8_t *p, uint32_t avail, struct pr_nexus *n)
{
	uint32_t len;
	const char *s, *sep;
	size_t slen;

	if (avail < 4 || (p[0] & 0x0f) != TPID_PROTO_ISCSI)
		return 0;
	len = get_be16(p + 2);
	if (len > avail - 4 || len < 4)
		return 0;
	s = (const char *)p + 4;
	slen = strnlen(s, len);
	if (slen == len || slen == 0)
		return 0; /* the name must be NUL-terminated within the descriptor */
	/* RFC 3722: no iSCSI name holds a space or a control character. */
	for (size_t i = 0; i < slen; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return 0;
	memset(n, 0, sizeof(*n));
	switch (p[0] & 0xc0) {
	case TPID_FMT_NAME:
		if (slen >= sizeof(n->name))
			return 0;
		memcpy(n->name, s, slen);
		n->any_isid = true;
		break;
	case TPID_FMT_PORT:
		/* "iSCSI name" ",i,0x" "ISID in hex" (SPC-4 table 500) */
		sep = strcasestr(s, ",i,0x");
		if (sep == NULL || (size_t)(sep - s) >= sizeof(n->name) || strlen(sep + 5) != 12 ||
		    !pr_unhex(n->isid, sep + 5, 6))
			return 0;
		memcpy(n->name, s, (size_t)(sep - s));
		break;
	default:
		return 0;
	}
	return 4 + len;
}

static void pr_add(struct tgt_pr *pr, const struct pr_nexus *n, uint64_t key, bool all_tg_pt)
{
	struct pr_reg *r = &pr->regs[pr->nregs++];

	r->n = *n;
	r->key = key;
	r->all_tg_pt = all_tg_pt;
}

/* REGISTER / REGISTER AND IGNORE EXISTING KEY (5.12.7). */
static enum pr_result pr_register(struct tgt_task *t, const struct pr_nexus *self, bool ignore,
				  const uint8_t *p, uint32_t plen)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *pr = lu->pr;
	uint64_t rk = get_be64(p), sark = get_be64(p + 8);
	bool spec_i_pt = p[20] & PROUT_SPEC_I_PT, all_tg_pt = p[20] & PROUT_ALL_TG_PT;
	struct pr_nexus add[PR_MAX_REGS];
	unsigned nadd = 0;
	int me = pr_find(pr, self);

	if (spec_i_pt && ignore)
		return pr_param_field(t, 20, 3);
	if (me >= 0) {
		/* "the RESERVATION KEY field does not match ... RESERVATION CONFLICT" */
		if (!ignore && rk != pr->regs[me].key)
			return PR_CONFLICT;
		if (spec_i_pt)
			return pr_param_field(t, 20, 3);
		if (sark == 0) {
			bool doomed[PR_MAX_REGS] = {false};
			bool ro = pr->reserved &&
				  (pr->type == PR_TYPE_WR_EX_RO || pr->type == PR_TYPE_EX_AC_RO);
			bool was_holder = pr->reserved && !pr_all_registrants(pr->type) &&
					  pr_covers(&pr->regs[me].n, &pr->holder);

			doomed[me] = true;
			pr_remove_doomed(pr, doomed);
			/*
			 * 5.12.11.2.2: the holder of a registrants-only
			 * reservation unregistering releases it; the other
			 * registrants learn of it by RESERVATIONS RELEASED.
			 */
			if (was_holder && ro)
				pr_ua(lu, TGT_UA_RESV_RELEASED, UA_TO_REGISTERED, NULL, self);
		} else {
			pr->regs[me].key = sark;
		}
		pr->generation++;
		return PR_GOOD;
	}
	if (!ignore && rk != 0)
		return PR_CONFLICT;
	if (sark == 0)
		return spec_i_pt ? pr_param_field(t, 8, -1) : PR_GOOD; /* nothing to do */
	add[nadd++] = *self;
	if (spec_i_pt) {
		/* 6.17.3: TRANSPORTID PARAMETER DATA LENGTH, then the TransportIDs. */
		uint32_t off = PROUT_BASIC_LEN + 4, end;

		if (plen < PROUT_BASIC_LEN + 4)
			return pr_fail(t, ASC_PARAMETER_LIST_LENGTH_ERROR);
		/* In 64 bits: a length near 2^32 must not wrap to a short list. */
		if ((uint64_t)PROUT_BASIC_LEN + 4 + get_be32(p + PROUT_BASIC_LEN) > plen)
			return pr_fail(t, ASC_PARAMETER_LIST_LENGTH_ERROR);
		end = PROUT_BASIC_LEN + 4 + get_be32(p + PROUT_BASIC_LEN);
		while (off < end) {
			struct pr_nexus n;
			uint32_t l = pr_get_tpid(p + off, end - off, &n);

			if (l == 0)
				return pr_param_field(t, (uint16_t)off, -1);
			/* an I_T nexus named twice, or already registered */
			for (unsigned i = 0; i < nadd; i++)
				if (pr_covers(&add[i], &n))
					return pr_param_field(t, (uint16_t)off, -1);
			if (pr_find(pr, &n) >= 0)
				return pr_param_field(t, (uint16_t)off, -1);
			if (nadd >= PR_MAX_REGS)
				return pr_fail(t, ASC_INSUFFICIENT_REG_RESOURCES);
			add[nadd++] = n;
			off += l;
		}
	}
	if (pr->nregs + nadd > PR_MAX_REGS)
		return pr_fail(t, ASC_INSUFFICIENT_REG_RESOURCES);
	for (unsigned i = 0; i < nadd; i++)
		pr_add(pr, &add[i], sark, all_tg_pt);
	pr->generation++;
	return PR_GOOD;
}

/* RESERVE (5.12.9). */
static enum pr_result pr_reserve(struct tgt_task *t, const struct pr_nexus *self, uint8_t type)
{
	struct tgt_pr *pr = t->lu->pr;

	if (pr->reserved) {
		/* the holder asking again for the same: nothing to do */
		if (pr_is_holder(pr, self) && pr->type == type)
			return PR_GOOD;
		return PR_CONFLICT;
	}
	pr->reserved = true;
	pr->type = type;
	pr->holder = *self;
	return PR_GOOD;
}

/* RELEASE (5.12.11.2). */
static enum pr_result pr_release(struct tgt_task *t, const struct pr_nexus *self, uint8_t type)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *pr = lu->pr;

	if (!pr->reserved || !pr_is_holder(pr, self))
		return PR_GOOD; /* "shall not release ... GOOD status" */
	if (pr->type != type)
		return pr_fail(t, ASC_INVALID_RELEASE_OF_PR);
	pr->reserved = false;
	/* "RESERVATIONS RELEASED" for the other registrants of these types */
	if (type != PR_TYPE_WR_EX && type != PR_TYPE_EX_AC)
		pr_ua(lu, TGT_UA_RESV_RELEASED, UA_TO_REGISTERED, NULL, self);
	return PR_GOOD;
}

/* CLEAR (5.12.11.6). */
static enum pr_result pr_clear(struct tgt_task *t, const struct pr_nexus *self)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *pr = lu->pr;

	pr_ua(lu, TGT_UA_RESV_PREEMPTED, UA_TO_REGISTERED, NULL, self);
	pr->nregs = 0;
	pr->reserved = false;
	pr->generation++;
	return PR_GOOD;
}

/* Mark the registrations with \p key (all but \p self's when \p key is 0). */
static unsigned pr_doom(const struct tgt_pr *pr, uint64_t key, const struct pr_nexus *self,
			bool *doomed)
{
	unsigned n = 0;

	for (unsigned i = 0; i < pr->nregs; i++) {
		doomed[i] =
		    (key == 0 || pr->regs[i].key == key) && !pr_covers(&pr->regs[i].n, self);
		n += doomed[i];
	}
	return n;
}

/* PREEMPT and PREEMPT AND ABORT (5.12.11.4, 5.12.11.5). */
static enum pr_result pr_preempt(struct tgt_task *t, const struct pr_nexus *self, uint8_t type,
				 uint64_t sark, bool abort)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *pr = lu->pr;
	bool doomed[PR_MAX_REGS] = {false};
	bool take = false; /* the reservation passes to this nexus */
	uint8_t old_type = pr->type;
	int h;

	if (pr->reserved && pr_all_registrants(pr->type) && sark == 0) {
		/* 5.12.11.4.3: zero preempts every other registrant and the reservation */
		take = true;
	} else if (pr->reserved && !pr_all_registrants(pr->type) &&
		   (h = pr_find(pr, &pr->holder)) >= 0 && pr->regs[h].key == sark) {
		take = true;
	} else if (sark == 0) {
		/* 5.12.11.4.4: no reservation holder to preempt with key zero */
		return pr_param_field(t, 8, -1);
	}
	if (take && (!pr_type_valid(type))) {
		tgt_task_invalid_field(t, 2, 3);
		return PR_FAILED;
	}
	if (pr_doom(pr, take && sark == 0 ? 0 : sark, self, doomed) == 0 && !take)
		return PR_CONFLICT; /* "no registration ... RESERVATION CONFLICT" */
	pr_ua(lu, TGT_UA_REG_PREEMPTED, UA_TO_DOOMED, doomed, self);
	if (abort) {
		/*
		 * 5.12.11.5: the preempted nexuses' tasks are aborted. The task
		 * sets live on their connections' reactors; without a hook to
		 * reach them the tasks complete normally (logged).
		 */
		log_debug("PREEMPT AND ABORT: tasks of preempted nexuses are not aborted");
	}
	pr_remove_doomed(pr, doomed);
	if (take) {
		pr->reserved = true;
		pr->type = type;
		pr->holder = *self;
		/* 5.12.11.4.3 g): a changed type is a release for the other registrants */
		if (old_type != type)
			pr_ua(lu, TGT_UA_RESV_RELEASED, UA_TO_REGISTERED, NULL, self);
	}
	pr->generation++;
	return PR_GOOD;
}

/* REGISTER AND MOVE (5.12.8), with its own parameter list (6.17.4). */
static enum pr_result pr_move(struct tgt_task *t, const struct pr_nexus *self, const uint8_t *p,
			      uint32_t plen)
{
	struct tgt_pr *pr = t->lu->pr;
	uint64_t rk = get_be64(p), sark = get_be64(p + 8);
	uint32_t tlen = get_be32(p + 20);
	struct pr_nexus dst;
	int me = pr_find(pr, self), d;

	if (tlen > plen - PROUT_BASIC_LEN)
		return pr_fail(t, ASC_PARAMETER_LIST_LENGTH_ERROR);
	if (me < 0 || pr->regs[me].key != rk)
		return PR_CONFLICT;
	/* only the holder of a single-holder reservation can move it */
	if (!pr->reserved || pr_all_registrants(pr->type) || !pr_covers(&pr->holder, self))
		return PR_CONFLICT;
	if (sark == 0)
		return pr_param_field(t, 8, -1);
	if (get_be16(p + 18) != PR_RTPI)
		return pr_param_field(t, 18, -1);
	if (pr_get_tpid(p + PROUT_BASIC_LEN, tlen, &dst) == 0 || dst.any_isid ||
	    pr_covers(self, &dst))
		return pr_param_field(t, PROUT_BASIC_LEN, -1);
	d = pr_find(pr, &dst);
	if (d < 0) {
		if (pr->nregs >= PR_MAX_REGS)
			return pr_fail(t, ASC_INSUFFICIENT_REG_RESOURCES);
		pr_add(pr, &dst, sark, false);
	} else {
		pr->regs[d].key = sark;
	}
	pr->holder = dst;
	if (p[17] & PROUT_MOVE_UNREG) {
		bool doomed[PR_MAX_REGS] = {false};

		doomed[pr_find(pr, self)] = true;
		pr_remove_doomed(pr, doomed);
	}
	pr->generation++;
	return PR_GOOD;
}

int tgt_pr_out_prep(struct tgt_task *t)
{
	/* 6.17.3: the basic list is 24 bytes; more only with TransportIDs. */
	if (t->xfer_len > PR_PARAM_MAX) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		return 1;
	}
	return 0;
}

static enum pr_result pr_out_locked(struct tgt_task *t, const uint8_t *p, uint32_t plen)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *pr = lu->pr;
	uint8_t sa = t->cdb[1] & SCSI_SA_MASK;
	uint8_t scope = t->cdb[2] >> 4, type = t->cdb[2] & 0x0f;
	bool move = sa == PROUT_REGISTER_AND_MOVE;
	bool registers = sa == PROUT_REGISTER || sa == PROUT_REGISTER_AND_IGNORE || move;
	bool aptpl;
	struct tgt_itl *spc2 = pr_spc2_holder(lu);
	struct pr_nexus self;
	enum pr_result r;

	pr_nexus_of(t->itl, &self);
	/* SPC-2 5.5.1: under another nexus' RESERVE, PR OUT conflicts too. */
	if (spc2 != NULL && spc2 != t->itl)
		return PR_CONFLICT;
	/* "If the parameter list length is not 24 ... PARAMETER LIST LENGTH ERROR" */
	if (plen < PROUT_BASIC_LEN ||
	    (!move && !(p[20] & PROUT_SPEC_I_PT) && plen != PROUT_BASIC_LEN))
		return pr_fail(t, ASC_PARAMETER_LIST_LENGTH_ERROR);
	/* Only now is the list known to hold its byte 17 / 20 (a shorter one is refused above). */
	aptpl = move ? (p[17] & PROUT_APTPL) : (p[20] & PROUT_APTPL);
	if (!move && sa != PROUT_REGISTER && (p[20] & PROUT_SPEC_I_PT))
		return pr_param_field(t, 20, 3);
	if (registers && aptpl && pr->path[0] == '\0')
		return pr_param_field(t, move ? 17 : 20, 0); /* APTPL not supported (PTPL_C 0) */
	if (sa == PROUT_RESERVE || sa == PROUT_RELEASE || sa == PROUT_PREEMPT ||
	    sa == PROUT_PREEMPT_AND_ABORT) {
		if (scope != PR_SCOPE_LU) {
			tgt_task_invalid_field(t, 2, 7);
			return PR_FAILED;
		}
		if (sa != PROUT_PREEMPT && sa != PROUT_PREEMPT_AND_ABORT && !pr_type_valid(type)) {
			tgt_task_invalid_field(t, 2, 3);
			return PR_FAILED;
		}
	}
	if (sa == PROUT_REGISTER || sa == PROUT_REGISTER_AND_IGNORE)
		r = pr_register(t, &self, sa == PROUT_REGISTER_AND_IGNORE, p, plen);
	else if (move)
		r = pr_move(t, &self, p, plen);
	else {
		int me = pr_find(pr, &self);

		/* 5.12.5: every other action needs a registered nexus and its key */
		if (me < 0 || pr->regs[me].key != get_be64(p))
			return PR_CONFLICT;
		switch (sa) {
		case PROUT_RESERVE:
			r = pr_reserve(t, &self, type);
			break;
		case PROUT_RELEASE:
			r = pr_release(t, &self, type);
			break;
		case PROUT_CLEAR:
			r = pr_clear(t, &self);
			break;
		default:
			r = pr_preempt(t, &self, type, get_be64(p + 8),
				       sa == PROUT_PREEMPT_AND_ABORT);
			break;
		}
	}
	if (r == PR_GOOD && registers)
		pr->aptpl = aptpl; /* 5.12.4: the most recent APTPL governs */
	return r;
}

void tgt_pr_out(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *backup;
	enum pr_result r;
	int rc;

	if (pr_lock(t) < 0)
		goto err_nomem;
	/* Undo information: a failed save must not leave memory ahead of the disk. */
	backup = malloc(sizeof(*backup));
	if (!backup) {
		pthread_mutex_unlock(&lu->lock);
		goto err_nomem;
	}
	*backup = *lu->pr;
	r = pr_out_locked(t, t->buf, t->xfer_len);
	if (r == PR_GOOD && (lu->pr->aptpl || backup->aptpl) && (rc = pr_save(lu->pr)) < 0) {
		*lu->pr = *backup;
		tgt_scsi_fail(t, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		r = PR_FAILED;
	}
	pr_update_flags(lu);
	pthread_mutex_unlock(&lu->lock);
	free(backup);
	if (r == PR_CONFLICT)
		pr_conflict(t);
	else if (r == PR_GOOD) {
		tgt_scsi_good(t);
		return;
	}
	tgt_task_done(t);
	return;

err_nomem:
	tgt_task_errno(t, -ENOMEM);
	tgt_task_done(t);
}

/* ---- RESERVE / RELEASE (6) and (10), SPC-2 7.21-7.24 ---- */

void tgt_pr_reserve(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;
	struct tgt_pr *pr;
	struct tgt_itl *holder;
	struct pr_nexus self;
	bool conflict = false;

	if (pr_lock(t) < 0) {
		tgt_task_errno(t, -ENOMEM);
		tgt_task_done(t);
		return;
	}
	pr = lu->pr;
	holder = pr_spc2_holder(lu);
	pr_nexus_of(t->itl, &self);
	if (pr->nregs > 0 || pr->reserved) {
		/*
		 * SPC-4 5.12.3 (CRH set): RESERVE from the persistent
		 * reservation holder completes without effect; from anybody
		 * else, while registrations exist, RESERVATION CONFLICT.
		 */
		conflict = !pr_is_holder(pr, &self);
	} else if (holder != NULL && holder != t->itl) {
		conflict = true;
	} else {
		pr->spc2 = t->itl;
		pr->spc2_tsih = t->itl->sess ? t->itl->sess->tsih : 0;
	}
	pr_update_flags(lu);
	pthread_mutex_unlock(&lu->lock);
	if (conflict) {
		pr_conflict(t);
		tgt_task_done(t);
		return;
	}
	tgt_scsi_good(t);
}

void tgt_pr_release(struct tgt_task *t)
{
	struct tgt_lu *lu = t->lu;

	if (pr_lock(t) < 0) {
		tgt_task_errno(t, -ENOMEM);
		tgt_task_done(t);
		return;
	}
	/*
	 * SPC-2 7.23: a RELEASE from a nexus that holds no reservation
	 * "shall not ... cause any reservation to be released" and completes
	 * with GOOD; persistent reservations are never released by it
	 * (SPC-4 5.12.3).
	 */
	if (pr_spc2_holder(lu) == t->itl)
		lu->pr->spc2 = NULL;
	pr_update_flags(lu);
	pthread_mutex_unlock(&lu->lock);
	tgt_scsi_good(t);
}
