/*
 * ctl_intent.c: write intent messages of the mirrored volumes this engine
 * owns, from their hook (any thread) to the cluster (control thread) and,
 * for a SET, the completion back to the volume (on the back ends' reactor).
 * See ctl_intent.h.
 *
 * Order matters (the records apply SET and CLEAR in the order the volume
 * decided them): the volume calls its hook one call at a time, each call
 * posts one pointer to one mailbox (util.h), and the control thread gets
 * them in order and multicasts in that order.
 */
#define UTIL_LOG_TAG "intent"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <qb/qbloop.h>

#include "cluster/cluster.h"
#include "engine/ctl_intent.h"

struct eng_intent {
	struct util_reactor *r;
	struct clu *clu;
	struct util_mailbox *mb; /* records: one struct intent_msg * each */
};

struct eng_intent_vol {
	struct eng_intent *ei;
	char name[VOL_NAME_MAX];
	unsigned inflight; /* messages not finished: atomic, any thread */
};

/* One hook call on its way. */
struct intent_msg {
	struct eng_intent_vol *h;
	enum vol_intent_op op;
	vol_intent_done_fn done;
	void *done_arg;
	int status;
	size_t nwords;
	uint64_t words[];
};

static void msg_finish(struct intent_msg *m)
{
	struct eng_intent_vol *h = m->h;

	free(m);
	/* Last: once it reads 0, the control thread may free the handle. */
	__atomic_sub_fetch(&h->inflight, 1, __ATOMIC_RELEASE);
}

/* ---- on the reactor: the SET's end goes back to the volume ---- */

static void r_done(void *arg)
{
	struct intent_msg *m = arg;

	m->done(m->done_arg, m->status);
	msg_finish(m);
}

/* ---- on the control thread ---- */

/* The cluster delivered our SET here (or gave up): tell the volume, on the reactor. */
static void sent(void *arg, int rc)
{
	struct intent_msg *m = arg;

	m->status = rc;
	if (rc < 0)
		log_warn("%s: write intent not recorded: %s", m->h->name, strerror(-rc));
	if (util_reactor_send(m->h->ei->r, r_done, m) < 0) {
		/* The message pool only allocates when cold; never strand the writes. */
		log_err("%s: cannot reach the reactor: completing the write intent here",
			m->h->name);
		r_done(m);
	}
}

static void send_msg(struct eng_intent *ei, struct intent_msg *m)
{
	static const Vm__RegionOp ops[] = {
	    [VOL_INTENT_SET] = VM__REGION_OP__REGION_SET,
	    [VOL_INTENT_CLEAR] = VM__REGION_OP__REGION_CLEAR,
	    [VOL_INTENT_FULL] = VM__REGION_OP__REGION_FULL,
	};
	bool set = m->op == VOL_INTENT_SET;
	int rc = clu_regions_send(ei->clu, m->h->name, ops[m->op], m->words, m->nwords,
				  set ? sent : NULL, m);

	if (set) {
		if (rc < 0)
			sent(m, rc); /* fenced, or no longer ours: the writes fail */
		return;
	}
	/*
	 * A lost CLEAR leaves regions in the records that a takeover copies for
	 * nothing; a lost FULL leaves them incomplete (a takeover copies a whole
	 * leg). Neither loses data.
	 */
	if (rc < 0)
		log_warn("%s: write intent %s not sent: %s", m->h->name,
			 m->op == VOL_INTENT_FULL ? "FULL" : "CLEAR", strerror(-rc));
	msg_finish(m);
}

/* One hook call (a util_mailbox_fn): the record is the message's pointer. */
static void on_msg(void *arg, const void *rec)
{
	struct intent_msg *m;

	memcpy(&m, rec, sizeof(m));
	send_msg(arg, m);
}

/* ---- the hook: any thread ---- */

int eng_intent_hook(void *arg, struct vol *v, enum vol_intent_op op, const uint64_t *words,
		    size_t nwords, vol_intent_done_fn done, void *done_arg)
{
	struct eng_intent_vol *h = arg;
	struct intent_msg *m = malloc(sizeof(*m) + nwords * sizeof(*words));

	if (!m)
		return -ENOMEM;
	m->h = h;
	m->op = op;
	m->done = done;
	m->done_arg = done_arg;
	m->status = 0;
	m->nwords = nwords;
	memcpy(m->words, words, nwords * sizeof(*words));
	__atomic_add_fetch(&h->inflight, 1, __ATOMIC_ACQ_REL);
	/* Posted whole or not at all: not (full) leaves the message ours to undo. */
	if (util_mailbox_post(h->ei->mb, &m) < 0) {
		msg_finish(m);
		return -EAGAIN; /* the volume tries again at its next tick */
	}
	return 0;
}

/* ---- life cycle ---- */

struct eng_intent_vol *eng_intent_vol_create(struct eng_intent *ei, const char *name)
{
	struct eng_intent_vol *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->ei = ei;
	snprintf(h->name, sizeof(h->name), "%s", name);
	return h;
}

bool eng_intent_vol_busy(const struct eng_intent_vol *h)
{
	return h && __atomic_load_n(&h->inflight, __ATOMIC_ACQUIRE) != 0;
}

void eng_intent_vol_free(struct eng_intent_vol *h)
{
	if (h && eng_intent_vol_busy(h))
		log_err("%s: write intent handle freed while busy", h->name);
	free(h);
}

struct eng_intent *eng_intent_create(struct qb_loop *loop, struct util_reactor *r, struct clu *c)
{
	struct eng_intent *ei = calloc(1, sizeof(*ei));
	int rc;

	if (!ei)
		return NULL;
	ei->r = r;
	ei->clu = c;
	/* Room for many rounds: a full pipe only delays a round to the next tick. */
	rc = util_mailbox_open(loop, sizeof(struct intent_msg *), 1 << 20, on_msg, NULL, ei,
			       &ei->mb);
	if (rc < 0) {
		log_err("write intent pipe: %s", strerror(-rc));
		free(ei);
		return NULL;
	}
	return ei;
}

void eng_intent_destroy(struct eng_intent *ei)
{
	if (!ei)
		return;
	util_mailbox_close(ei->mb);
	free(ei);
}
