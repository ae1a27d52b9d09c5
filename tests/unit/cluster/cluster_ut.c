/*
 * cluster_ut.c: three in-memory engines driven deterministically through the
 * cluster state machine: joins, leaves, crashes and restarts from the
 * persisted map, partitions and merges, message loss, confchg reordered
 * against messages, CS_ERR_TRY_AGAIN, bad messages; and a seeded random walk
 * over all of them. After every settle, the maps of each partition's
 * members must be equal (version and digest).
 *
 * The simulated network is agreed order by construction: a multicast is
 * appended to the inbox of every member of the sender's partition at once,
 * so all inboxes hold the same sequence; the members then consume their
 * inboxes in a seeded random interleaving. Time is virtual.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster_internal.h"

#define N 3

enum ev_kind { EV_MSG, EV_CONFCHG, EV_QUORUM };

struct ev {
	STAILQ_ENTRY(ev) link;
	enum ev_kind kind;
	uint32_t from;
	uint32_t members[N];
	unsigned n;
	bool quorate;
	size_t len;
	uint8_t *buf;
};
STAILQ_HEAD(evq, ev);

struct node {
	uint32_t id;
	struct clu *c;
	bool up;
	int part;
	struct evq inbox;
	int eagain; /* next mcasts return -EAGAIN */
	int drop;   /* next delivered messages are lost */
	char dir[128];
	unsigned changed;
};

struct timer {
	bool active;
	uint64_t due;
	void (*fn)(void *);
	void *arg;
};

static struct node nodes[N];
static struct timer timers[4096];
static uint64_t now;
static unsigned seed = 1;
static char root[64];

static unsigned rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return (seed >> 16) & 0x7fff;
}

static void ev_push(struct node *n, struct ev *e)
{
	STAILQ_INSERT_TAIL(&n->inbox, e, link);
}

static int sim_mcast(void *ctx, const void *buf, size_t len)
{
	struct node *src = ctx;

	if (src->eagain > 0) {
		src->eagain--;
		return -EAGAIN;
	}
	for (int i = 0; i < N; i++) {
		struct node *n = &nodes[i];
		if (!n->up || n->part != src->part)
			continue;
		struct ev *e = calloc(1, sizeof(*e));
		e->kind = EV_MSG;
		e->from = src->id;
		e->len = len;
		e->buf = malloc(len);
		memcpy(e->buf, buf, len);
		ev_push(n, e);
	}
	return 0;
}

static void *sim_timer_add(void *ctx, uint32_t ms, void (*fn)(void *), void *arg)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(timers); i++)
		if (!timers[i].active) {
			timers[i] = (struct timer){true, now + ms, fn, arg};
			return &timers[i];
		}
	return NULL;
}

static void sim_timer_del(void *ctx, void *t)
{
	if (t)
		((struct timer *)t)->active = false;
}

static const struct clu_ops sim_ops = {sim_mcast, sim_timer_add, sim_timer_del};

static void on_changed(void *arg)
{
	((struct node *)arg)->changed++;
}

static void ev_free(struct ev *e)
{
	free(e->buf);
	free(e);
}

static void node_start(int i)
{
	struct node *n = &nodes[i];
	struct clu_map m;
	struct clu_self self;
	char err[256];
	bool found;

	memset(&self, 0, sizeof(self));
	self.node = n->id;
	snprintf(self.name, sizeof(self.name), "n%u", n->id);
	snprintf(self.portal, sizeof(self.portal), "10.0.0.%u:3260", n->id);
	snprintf(self.state_dir, sizeof(self.state_dir), "%s", n->dir);
	clu_map_init(&m);
	CU_ASSERT_EQUAL_FATAL(clu_map_load(&m, n->dir, &found, err, sizeof(err)), 0);
	n->c = clu_create(&sim_ops, n, &self, &m, on_changed, n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n->c);
	n->up = true;
	STAILQ_INIT(&n->inbox);
}

static void node_stop(int i)
{
	struct node *n = &nodes[i];
	struct ev *e;

	/* The node's own timers die with it. */
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(timers); k++)
		if (timers[k].active && timers[k].arg == n->c)
			timers[k].active = false;
	clu_destroy(n->c);
	n->c = NULL;
	n->up = false;
	while ((e = STAILQ_FIRST(&n->inbox)) != NULL) {
		STAILQ_REMOVE_HEAD(&n->inbox, link);
		ev_free(e);
	}
}

/* Deliver one event to node i; false when its inbox is empty. */
static bool step(int i)
{
	struct node *n = &nodes[i];
	struct ev *e = n->up ? STAILQ_FIRST(&n->inbox) : NULL;

	if (!e)
		return false;
	STAILQ_REMOVE_HEAD(&n->inbox, link);
	switch (e->kind) {
	case EV_MSG:
		if (n->drop > 0)
			n->drop--;
		else
			clu_deliver(n->c, e->from, e->buf, e->len);
		break;
	case EV_CONFCHG:
		clu_confchg(n->c, e->members, e->n);
		break;
	case EV_QUORUM:
		clu_quorum(n->c, e->quorate, N);
		break;
	}
	ev_free(e);
	return true;
}

/* Drain every inbox in a seeded random interleaving. */
static void run(void)
{
	for (;;) {
		bool any = false;
		for (int k = 0; k < N; k++)
			any |= nodes[k].up && !STAILQ_EMPTY(&nodes[k].inbox);
		if (!any)
			return;
		int i = (int)(rnd() % N);
		step(i);
	}
}

/* Advance virtual time by ms, firing timers in order and draining after each. */
static void advance(uint64_t ms)
{
	uint64_t end = now + ms;

	for (;;) {
		struct timer *next = NULL;
		for (size_t k = 0; k < UTIL_ARRAY_SIZE(timers); k++)
			if (timers[k].active && timers[k].due <= end &&
			    (!next || timers[k].due < next->due))
				next = &timers[k];
		if (!next)
			break;
		now = next->due;
		next->active = false;
		next->fn(next->arg);
		run();
	}
	now = end;
	run();
}

/*
 * A new configuration: pending messages of the old one are delivered first
 * (virtual synchrony), then each partition's members get a confchg and a
 * quorum notification (quorum first when quorum_first).
 */
static void push_config(bool quorum_first)
{
	for (int i = 0; i < N; i++) {
		struct node *n = &nodes[i];
		if (!n->up)
			continue;
		struct ev *cc = calloc(1, sizeof(*cc)), *q = calloc(1, sizeof(*q));
		cc->kind = EV_CONFCHG;
		for (int k = 0; k < N; k++)
			if (nodes[k].up && nodes[k].part == n->part)
				cc->members[cc->n++] = nodes[k].id;
		q->kind = EV_QUORUM;
		q->quorate = 2 * cc->n > N;
		ev_push(n, quorum_first ? q : cc);
		ev_push(n, quorum_first ? cc : q);
	}
}

static void reconfigure(bool quorum_first)
{
	run();
	push_config(quorum_first);
}

static void assert_converged(void)
{
	for (int i = 0; i < N; i++) {
		if (!nodes[i].up)
			continue;
		CU_ASSERT_EQUAL(clu_state(nodes[i].c), CLU_STATE_SYNCED);
		for (int k = 0; k < N; k++) {
			if (!nodes[k].up || nodes[k].part != nodes[i].part)
				continue;
			const struct clu_map *a = clu_map(nodes[i].c), *b = clu_map(nodes[k].c);
			CU_ASSERT_EQUAL(a->version, b->version);
			CU_ASSERT_EQUAL(clu_map_digest(a), clu_map_digest(b));
		}
	}
}

struct done {
	bool called;
	int rc;
};

static void on_done(void *arg, int rc)
{
	struct done *d = arg;
	d->called = true;
	d->rc = rc;
}

static int submit(int i, Vm__ChangeOp op, const char *name, uint64_t size, struct done *d)
{
	Vm__MapChange chg = VM__MAP_CHANGE__INIT;

	chg.op = op;
	chg.name = (char *)name;
	chg.size = size;
	chg.block_size = 512;
	chg.iqn = "iqn.2026-01.org.example:host1";
	memset(d, 0, sizeof(*d));
	return clu_submit(nodes[i].c, &chg, on_done, d);
}

static void sim_setup(void)
{
	now = 0;
	seed = 1;
	memset(timers, 0, sizeof(timers));
	snprintf(root, sizeof(root), "/tmp/clu_ut.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
	for (int i = 0; i < N; i++) {
		memset(&nodes[i], 0, sizeof(nodes[i]));
		nodes[i].id = (uint32_t)i + 1;
		snprintf(nodes[i].dir, sizeof(nodes[i].dir), "%s/n%d", root, i + 1);
		mkdir(nodes[i].dir, 0700);
		node_start(i);
	}
	reconfigure(true);
	run();
}

static void sim_teardown(void)
{
	char cmd[128];

	for (int i = 0; i < N; i++)
		if (nodes[i].up)
			node_stop(i);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ---- tests ---- */

static void test_join_create(void)
{
	struct done d, d2;

	sim_setup();
	assert_converged();
	for (int i = 0; i < N; i++)
		CU_ASSERT_TRUE(clu_serving(nodes[i].c));
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d), 0);
	CU_ASSERT_FALSE(d.called); /* applied on delivery, never on send */
	CU_ASSERT_EQUAL(clu_map(nodes[0].c)->version, 0);
	run();
	CU_ASSERT_TRUE(d.called);
	CU_ASSERT_EQUAL(d.rc, 0);
	assert_converged();
	CU_ASSERT_EQUAL(clu_map(nodes[2].c)->version, 1);
	const struct clu_volume *v = clu_map_find(clu_map(nodes[2].c), "a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_NOT_EQUAL(v->owner, 0);
	CU_ASSERT_NOT_EQUAL(v->partner, 0);
	CU_ASSERT_NOT_EQUAL(v->owner, v->partner);
	/* Name taken, concurrently from two nodes: exactly one wins everywhere. */
	CU_ASSERT_EQUAL(submit(1, VM__CHANGE_OP__VOLUME_CREATE, "b", 1 << 20, &d), 0);
	CU_ASSERT_EQUAL(submit(2, VM__CHANGE_OP__VOLUME_CREATE, "b", 2 << 20, &d2), 0);
	run();
	CU_ASSERT_TRUE(d.called && d2.called);
	CU_ASSERT_TRUE((d.rc == 0) != (d2.rc == 0));
	CU_ASSERT_TRUE(d.rc == -EEXIST || d2.rc == -EEXIST);
	assert_converged();
	/* Placement: the second volume goes to a node that owns nothing yet. */
	CU_ASSERT_NOT_EQUAL(clu_map_find(clu_map(nodes[0].c), "b")->owner,
			    clu_map_find(clu_map(nodes[0].c), "a")->owner);
	sim_teardown();
}

static void test_crash_catch_up(void)
{
	struct done d;

	sim_setup();
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d), 0);
	run();
	node_stop(2);
	reconfigure(false);
	run();
	assert_converged();
	CU_ASSERT_EQUAL(submit(1, VM__CHANGE_OP__VOLUME_CREATE, "b", 1 << 20, &d), 0);
	run();
	CU_ASSERT_EQUAL(d.rc, 0);
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_DELETE, "a", 0, &d), 0);
	run();
	CU_ASSERT_EQUAL(d.rc, 0);
	uint64_t v = clu_map(nodes[0].c)->version;
	CU_ASSERT_EQUAL(v, 3);
	/* Restart from its persisted map (v1): it must not serve before catching up. */
	node_start(2);
	CU_ASSERT_EQUAL(clu_map(nodes[2].c)->version, 1);
	CU_ASSERT_FALSE(clu_serving(nodes[2].c));
	reconfigure(true);
	/* Deliver only until node 3 has seen its confchg and quorum: still stale. */
	while (clu_state(nodes[2].c) == CLU_STATE_JOINING)
		step(2);
	CU_ASSERT_FALSE(clu_serving(nodes[2].c));
	run();
	assert_converged();
	CU_ASSERT_TRUE(clu_serving(nodes[2].c));
	CU_ASSERT_EQUAL(clu_map(nodes[2].c)->version, v);
	CU_ASSERT_PTR_NULL(clu_map_find(clu_map(nodes[2].c), "a"));
	CU_ASSERT_PTR_NOT_NULL(clu_map_find(clu_map(nodes[2].c), "b"));
	sim_teardown();
}

static void test_whole_restart(void)
{
	struct done d;

	sim_setup();
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d), 0);
	CU_ASSERT_EQUAL(submit(1, VM__CHANGE_OP__ACL_ALLOW, "a", 0, &d), 0);
	run();
	uint32_t digest = clu_map_digest(clu_map(nodes[0].c));
	for (int i = 0; i < N; i++)
		node_stop(i);
	for (int i = 0; i < N; i++)
		node_start(i);
	reconfigure(false);
	run();
	assert_converged();
	CU_ASSERT_EQUAL(clu_map(nodes[1].c)->version, 2);
	CU_ASSERT_EQUAL(clu_map_digest(clu_map(nodes[1].c)), digest);
	sim_teardown();
}

static void test_partition_merge(void)
{
	struct done d;

	sim_setup();
	nodes[0].part = 1; /* node 1 alone */
	reconfigure(false);
	run();
	assert_converged();
	CU_ASSERT_FALSE(clu_quorate(nodes[0].c));
	CU_ASSERT_FALSE(clu_serving(nodes[0].c));
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "x", 1 << 20, &d), -ENOTCONN);
	CU_ASSERT_TRUE(clu_serving(nodes[1].c));
	CU_ASSERT_EQUAL(submit(1, VM__CHANGE_OP__VOLUME_CREATE, "y", 1 << 20, &d), 0);
	run();
	CU_ASSERT_EQUAL(d.rc, 0);
	CU_ASSERT_EQUAL(clu_map(nodes[0].c)->version, 0);
	nodes[0].part = 0;
	reconfigure(true);
	run();
	assert_converged();
	CU_ASSERT_TRUE(clu_serving(nodes[0].c));
	CU_ASSERT_PTR_NOT_NULL(clu_map_find(clu_map(nodes[0].c), "y"));
	sim_teardown();
}

static void test_change_from_minority_is_refused(void)
{
	struct done d;

	sim_setup();
	/* Sent while quorate, delivered in the minority configuration. */
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "late", 1 << 20, &d), 0);
	struct ev *e = STAILQ_FIRST(&nodes[0].inbox);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	STAILQ_REMOVE_HEAD(&nodes[0].inbox, link);
	for (int i = 1; i < N; i++) { /* the others never got it */
		struct ev *o = STAILQ_FIRST(&nodes[i].inbox);
		STAILQ_REMOVE_HEAD(&nodes[i].inbox, link);
		ev_free(o);
	}
	nodes[0].part = 1;
	reconfigure(false);
	run();
	clu_deliver(nodes[0].c, 1, e->buf, e->len);
	ev_free(e);
	CU_ASSERT_TRUE(d.called);
	CU_ASSERT_EQUAL(d.rc, -ENOTCONN);
	CU_ASSERT_EQUAL(clu_map(nodes[0].c)->version, 0);
	nodes[0].part = 0;
	reconfigure(false);
	run();
	assert_converged();
	sim_teardown();
}

static void test_message_loss_resync(void)
{
	struct done d;

	sim_setup();
	nodes[2].drop = 1; /* node 3 loses the change */
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d), 0);
	run();
	CU_ASSERT_EQUAL(clu_map(nodes[2].c)->version, 0);
	CU_ASSERT_EQUAL(clu_map(nodes[0].c)->version, 1);
	/* The next load reports reveal it; a state transfer repairs it. */
	advance(CLU_TICK_MS * CLU_LOAD_TICKS + 10);
	assert_converged();
	CU_ASSERT_EQUAL(clu_map(nodes[2].c)->version, 1);
	CU_ASSERT_PTR_NOT_NULL(clu_map_find(clu_map(nodes[2].c), "a"));
	sim_teardown();
}

static void test_confchg_reorder(void)
{
	struct done d1, d2;

	sim_setup();
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d1), 0);
	CU_ASSERT_EQUAL(submit(1, VM__CHANGE_OP__VOLUME_CREATE, "b", 1 << 20, &d2), 0);
	/* Node 3 leaves; node 2 gets its confchg before the pending messages. */
	node_stop(2);
	for (int i = 0; i < 2; i++) {
		struct ev *cc = calloc(1, sizeof(*cc));
		cc->kind = EV_CONFCHG;
		cc->members[0] = 1;
		cc->members[1] = 2;
		cc->n = 2;
		if (i == 1)
			STAILQ_INSERT_HEAD(&nodes[i].inbox, cc, link);
		else
			ev_push(&nodes[i], cc);
	}
	run();
	/* Whatever happened, repeated load reports bring the two back together. */
	advance(CLU_TICK_MS * CLU_LOAD_TICKS * 4);
	assert_converged();
	CU_ASSERT_TRUE(d1.called && d2.called);
	sim_teardown();
}

static void test_changes_during_sync(void)
{
	struct done d1, d2;

	sim_setup();
	node_stop(2);
	reconfigure(false);
	run();
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d1), 0);
	run();
	node_start(2);
	reconfigure(true);
	/* A change sent right after the confchg is delivered during the transfer. */
	step(0);
	step(0);
	CU_ASSERT_NOT_EQUAL(clu_state(nodes[0].c), CLU_STATE_SYNCED);
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_RESIZE, "a", 2 << 20, &d2), 0);
	run();
	assert_converged();
	CU_ASSERT_TRUE(d2.called);
	CU_ASSERT_EQUAL(d2.rc, 0);
	CU_ASSERT_EQUAL(clu_map_find(clu_map(nodes[2].c), "a")->size, 2 << 20);
	/* A confchg in the middle of a transfer discards the queue on every member. */
	node_stop(2);
	reconfigure(false);
	step(0);
	step(1);
	CU_ASSERT_EQUAL(submit(1, VM__CHANGE_OP__VOLUME_RESIZE, "a", 4 << 20, &d2), 0);
	step(0);
	step(1);
	node_start(2);
	reconfigure(false);
	run();
	assert_converged();
	CU_ASSERT_TRUE(d2.called);
	CU_ASSERT_TRUE(d2.rc == 0 || d2.rc == -EAGAIN);
	sim_teardown();
}

/*
 * A change delivered while a transfer is incomplete, then a new member
 * joins: the old members must not replay it on a map the newcomer adopts
 * without it. Checked right after the transfer, before any load report could
 * repair a divergence.
 */
static void test_queue_discard_on_new_member(void)
{
	struct done d;

	sim_setup();
	node_stop(2);
	reconfigure(true);
	run();
	push_config(true); /* a fresh {1,2} configuration, not yet delivered */
	step(0);	   /* node 1: quorum */
	step(0);	   /* node 1: confchg, announces */
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "q", 1 << 20, &d), 0);
	node_start(2);
	push_config(true); /* node 3 joins before node 2 even saw {1,2} */
	run();
	assert_converged();
	CU_ASSERT_TRUE(d.called);
	CU_ASSERT_EQUAL(d.rc, -EAGAIN);
	CU_ASSERT_PTR_NULL(clu_map_find(clu_map(nodes[0].c), "q"));
	sim_teardown();
}

static void test_try_again(void)
{
	struct done d;

	sim_setup();
	nodes[0].eagain = 3;
	CU_ASSERT_EQUAL(submit(0, VM__CHANGE_OP__VOLUME_CREATE, "a", 1 << 20, &d), 0);
	run();
	CU_ASSERT_FALSE(d.called);
	advance(100); /* back-off 5 + 10 + 20 ms */
	CU_ASSERT_TRUE(d.called);
	CU_ASSERT_EQUAL(d.rc, 0);
	assert_converged();
	/* Bounded: with Corosync refusing everything the queue fills, then -EBUSY. */
	nodes[0].eagain = 1 << 30;
	int rc = 0, sent = 0;
	static struct done many[CLU_SENDQ_MAX + 2];
	for (int i = 0; i < CLU_SENDQ_MAX + 2 && rc == 0; i++) {
		rc =
		    submit(0, VM__CHANGE_OP__VOLUME_RESIZE, "a", (uint64_t)(i + 2) << 20, &many[i]);
		sent += rc == 0;
	}
	CU_ASSERT_EQUAL(rc, -EBUSY);
	CU_ASSERT_EQUAL(sent, CLU_SENDQ_MAX);
	nodes[0].eagain = 0;
	advance(CLU_BACKOFF_MAX_MS * 2);
	assert_converged();
	CU_ASSERT_EQUAL(clu_map(nodes[1].c)->version, 1 + CLU_SENDQ_MAX);
	sim_teardown();
}

static void test_bad_messages(void)
{
	sim_setup();
	CU_ASSERT_EQUAL(clu_send_bad(nodes[0].c, "unknown"), 0);
	CU_ASSERT_EQUAL(clu_send_bad(nodes[0].c, "oversized"), 0);
	CU_ASSERT_EQUAL(clu_send_bad(nodes[0].c, "corrupt"), 0);
	CU_ASSERT_EQUAL(clu_send_bad(nodes[0].c, "nonsense"), -EINVAL);
	run();
	for (int i = 0; i < N; i++) {
		const struct clu_drops *dr = clu_drops(nodes[i].c);
		CU_ASSERT_EQUAL(dr->unknown, 1);
		CU_ASSERT_EQUAL(dr->oversized, 1);
		CU_ASSERT_EQUAL(dr->malformed, 1);
	}
	/* A valid envelope around bytes protobuf-c rejects. */
	uint8_t buf[PROTO_ENV_LEN + 4] = {0};
	memset(buf + PROTO_ENV_LEN, 0xff, 4);
	proto_env_put((struct proto_env *)(void *)buf, PROTO_MAP_CHANGE, buf + PROTO_ENV_LEN, 4);
	clu_deliver(nodes[1].c, 1, buf, sizeof(buf));
	CU_ASSERT_EQUAL(clu_drops(nodes[1].c)->malformed, 2);
	/* A change claiming another origin than its sender is ignored. */
	assert_converged();
	sim_teardown();
}

/* A seeded random walk over every kind of event; maps converge after each settle. */
static void test_random_walk(void)
{
	static struct done d[64];
	char name[16];

	sim_setup();
	for (int round = 0; round < 60; round++) {
		for (int k = 0; k < 6; k++) {
			int i = (int)(rnd() % N);
			if (!nodes[i].up)
				continue;
			snprintf(name, sizeof(name), "v%u", rnd() % 8);
			Vm__ChangeOp op = (Vm__ChangeOp)(1 + rnd() % 5);
			(void)submit(i, op, name, (uint64_t)(1 + rnd() % 4) << 20, &d[k]);
			for (unsigned s = rnd() % 4; s > 0; s--)
				step((int)(rnd() % N));
		}
		switch (rnd() % 6) {
		case 0: { /* crash one, or bring it back */
			int i = (int)(rnd() % N);
			if (nodes[i].up)
				node_stop(i);
			else
				node_start(i);
			reconfigure(rnd() % 2);
			break;
		}
		case 1: /* partition one node away */
			for (int i = 0; i < N; i++)
				nodes[i].part = 0;
			nodes[rnd() % N].part = 1;
			reconfigure(rnd() % 2);
			break;
		case 2: /* heal */
			for (int i = 0; i < N; i++)
				nodes[i].part = 0;
			reconfigure(rnd() % 2);
			break;
		case 3: /* lose a message somewhere */
			nodes[rnd() % N].drop = 1;
			break;
		default:
			break;
		}
		run();
		advance(CLU_TICK_MS * CLU_LOAD_TICKS * 3);
		for (int i = 0; i < N; i++)
			nodes[i].drop = 0;
		advance(CLU_TICK_MS * CLU_LOAD_TICKS * 3);
		assert_converged();
	}
	/* Heal everything: one map. */
	for (int i = 0; i < N; i++) {
		nodes[i].part = 0;
		if (!nodes[i].up)
			node_start(i);
	}
	reconfigure(true);
	advance(CLU_TICK_MS * CLU_LOAD_TICKS * 3);
	assert_converged();
	for (int i = 0; i < N; i++)
		CU_ASSERT_TRUE(clu_serving(nodes[i].c));
	sim_teardown();
}

int main(void)
{
	util_log_init("cluster_ut", false, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("cluster", NULL, NULL);
	CU_add_test(s, "join, create, name taken, placement", test_join_create);
	CU_add_test(s, "crash, changes, restart catches up before serving", test_crash_catch_up);
	CU_add_test(s, "whole-cluster restart keeps the map", test_whole_restart);
	CU_add_test(s, "partition: minority refuses, merge adopts", test_partition_merge);
	CU_add_test(s, "change delivered in a minority is refused",
		    test_change_from_minority_is_refused);
	CU_add_test(s, "message loss detected and repaired", test_message_loss_resync);
	CU_add_test(s, "confchg reordered against messages", test_confchg_reorder);
	CU_add_test(s, "changes during a state transfer", test_changes_during_sync);
	CU_add_test(s, "queued changes discarded when a member joins mid-transfer",
		    test_queue_discard_on_new_member);
	CU_add_test(s, "CS_ERR_TRY_AGAIN back-off, bounded queue", test_try_again);
	CU_add_test(s, "bad messages dropped and counted", test_bad_messages);
	CU_add_test(s, "random walk: maps never diverge", test_random_walk);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	util_log_fini();
	return failed ? 1 : 0;
}
