/*
 * solo.c: the membership layer of an engine without Corosync (solo mode, the
 * embedded default). It is a group of one: always quorate, and a multicast
 * is delivered back to this engine from the main loop, so that changes go
 * through exactly the same apply-on-delivery path as in a cluster.
 */
#define UTIL_LOG_TAG "solo"
#include <errno.h>
#include <stdlib.h>
#include <qb/qbloop.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

struct solo_msg {
	STAILQ_ENTRY(solo_msg) link;
	size_t len;
	uint8_t buf[];
};

struct solo {
	struct clu_binding b;
	STAILQ_HEAD(, solo_msg) inbox;
	unsigned pending_jobs;
};

/* One job per message, FIFO: the loop runs them in the order added. */
static void solo_deliver(void *data)
{
	struct solo *s = data;
	struct solo_msg *m = STAILQ_FIRST(&s->inbox);

	s->pending_jobs--;
	if (!m)
		return;
	STAILQ_REMOVE_HEAD(&s->inbox, link);
	if (s->b.clu)
		clu_deliver(s->b.clu, clu_nodeid(s->b.clu), m->buf, m->len);
	free(m);
}

static int solo_mcast(void *ctx, const void *buf, size_t len)
{
	struct solo *s = ctx;
	struct solo_msg *m = malloc(sizeof(*m) + len);

	if (!m)
		return -ENOMEM;
	m->len = len;
	memcpy(m->buf, buf, len);
	if (qb_loop_job_add(s->b.loop, QB_LOOP_MED, s, solo_deliver) != 0) {
		free(m);
		return -EAGAIN;
	}
	s->pending_jobs++;
	STAILQ_INSERT_TAIL(&s->inbox, m, link);
	return 0;
}

static void *solo_timer_add(void *ctx, uint32_t ms, void (*fn)(void *), void *arg)
{
	struct solo *s = ctx;
	return clu_loop_timer_add(s->b.loop, ms, fn, arg);
}

static void solo_timer_del(void *ctx, void *timer)
{
	struct solo *s = ctx;
	clu_loop_timer_del(s->b.loop, timer);
}

static const struct clu_ops solo_ops = {
    .mcast = solo_mcast,
    .timer_add = solo_timer_add,
    .timer_del = solo_timer_del,
};

static void solo_destroy(struct clu_binding *b)
{
	struct solo *s = UTIL_CONTAINER_OF(b, struct solo, b);
	struct solo_msg *m;

	clu_destroy(b->clu);
	b->clu = NULL;
	while ((m = STAILQ_FIRST(&s->inbox)) != NULL) {
		STAILQ_REMOVE_HEAD(&s->inbox, link);
		free(m);
	}
	/* Jobs still queued on the loop find an empty inbox and a NULL clu. */
	if (s->pending_jobs)
		return; /* leaked on purpose: the loop is being torn down with the process */
	free(s);
}

struct clu_binding *clu_solo_create(struct qb_loop *loop, const struct clu_self *self,
				    struct clu_map *map, clu_changed_fn changed, void *arg,
				    struct clu **out)
{
	struct solo *s = calloc(1, sizeof(*s));
	struct clu_self me = *self;

	if (!s)
		return NULL;
	s->b.mode = "solo";
	s->b.loop = loop;
	s->b.destroy = solo_destroy;
	STAILQ_INIT(&s->inbox);
	if (!me.node)
		me.node = 1;
	s->b.clu = clu_create(&solo_ops, s, &me, map, changed, arg);
	if (!s->b.clu) {
		free(s);
		return NULL;
	}
	/* A group of one: its own majority. */
	clu_quorum(s->b.clu, true, 1);
	clu_confchg(s->b.clu, &me.node, 1);
	*out = s->b.clu;
	log_info("solo mode: the map is local to this engine");
	return &s->b;
}
