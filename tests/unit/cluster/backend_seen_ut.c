/*
 * backend_seen_ut.c: every engine's view of the back ends travels in its
 * load report (LoadReport.backends) and every member keeps its peers'
 * latest. The wire form at its largest fits the load report's limit and
 * round-trips; three in-memory engines exchange their views; the age of a
 * report counts in ticks; a member that leaves is forgotten and, when it
 * returns, is unknown until its next report; a peer's oversized list is cut
 * at CLU_MAX_BACKENDS.
 *
 * The network is agreed order by construction (one global FIFO, every
 * multicast to every member, the sender included); time is virtual.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster_internal.h"

#define N 3

struct msg {
	STAILQ_ENTRY(msg) link;
	uint32_t from;
	size_t len;
	uint8_t *buf;
};

struct node {
	uint32_t id;
	struct clu *c;
	bool member;
};

struct timer {
	bool active;
	uint64_t due;
	void (*fn)(void *);
	void *arg;
};

static struct node nodes[N];
static struct timer timers[64];
static uint64_t now;
static STAILQ_HEAD(, msg) wire = STAILQ_HEAD_INITIALIZER(wire);

static int sim_mcast(void *ctx, const void *buf, size_t len)
{
	struct node *src = ctx;
	struct msg *m = calloc(1, sizeof(*m));

	if (!m || !(m->buf = malloc(len))) {
		free(m);
		return -ENOMEM;
	}
	memcpy(m->buf, buf, len);
	m->len = len;
	m->from = src->id;
	STAILQ_INSERT_TAIL(&wire, m, link);
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

/*
 * Every queued message to every member, in the one order of the wire. A
 * node outside the configuration is partitioned away: its messages reach
 * nobody.
 */
static void run(void)
{
	struct msg *m;

	while ((m = STAILQ_FIRST(&wire)) != NULL) {
		STAILQ_REMOVE_HEAD(&wire, link);
		for (int i = 0; i < N && nodes[m->from - 1].member; i++)
			if (nodes[i].member)
				clu_deliver(nodes[i].c, m->from, m->buf, m->len);
		free(m->buf);
		free(m);
	}
}

/* Virtual time: fire due timers in order, delivering after each. */
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

/* The members (in nodes[] order) get the configuration and quorum, then sync. */
static void configure(const bool *member)
{
	uint32_t ids[N];
	unsigned n = 0;

	run();
	for (int i = 0; i < N; i++) {
		nodes[i].member = member[i];
		if (member[i])
			ids[n++] = nodes[i].id;
	}
	for (int i = 0; i < N; i++)
		if (member[i]) {
			clu_quorum(nodes[i].c, 2 * n > N, N);
			clu_confchg(nodes[i].c, ids, n);
		}
	run();
}

static int setup(void)
{
	memset(timers, 0, sizeof(timers));
	now = 0;
	for (int i = 0; i < N; i++) {
		struct clu_self self;
		struct clu_map m;

		memset(&self, 0, sizeof(self));
		nodes[i].id = (uint32_t)i + 1;
		self.node = nodes[i].id;
		snprintf(self.name, sizeof(self.name), "n%d", i + 1);
		snprintf(self.portal, sizeof(self.portal), "10.0.0.%d:3260", i + 1);
		clu_map_init(&m);
		nodes[i].c = clu_create(&sim_ops, &nodes[i], &self, &m, NULL, NULL);
		if (!nodes[i].c)
			return 1;
	}
	configure((bool[N]){true, true, true});
	return 0;
}

static int teardown(void)
{
	run();
	for (int i = 0; i < N; i++)
		clu_destroy(nodes[i].c);
	return 0;
}

/* The largest report (every back end, every field at its widest) fits and round-trips. */
static void test_wire_limit(void)
{
	Vm__LoadReport lr = VM__LOAD_REPORT__INIT;
	Vm__BackendSeen bs[CLU_MAX_BACKENDS], *pbs[CLU_MAX_BACKENDS];
	uint8_t *buf;
	size_t len;
	int err = 0;

	lr.node = lr.volumes = lr.digest = lr.round = UINT32_MAX;
	lr.read_ops = lr.write_ops = lr.bytes = lr.version = UINT64_MAX;
	lr.synced = true;
	for (unsigned i = 0; i < CLU_MAX_BACKENDS; i++) {
		vm__backend_seen__init(&bs[i]);
		bs[i].id = UINT32_MAX - i;
		bs[i].state = UINT32_MAX;
		bs[i].size = UINT64_MAX - i;
		pbs[i] = &bs[i];
	}
	lr.n_backends = CLU_MAX_BACKENDS;
	lr.backends = pbs;
	CU_ASSERT_EQUAL_FATAL(proto_pack(PROTO_LOAD_REPORT, &lr.base, &buf, &len), 0);
	CU_ASSERT(len - PROTO_ENV_LEN <= proto_max_payload(PROTO_LOAD_REPORT));
	Vm__LoadReport *u = (Vm__LoadReport *)proto_unpack(
	    PROTO_LOAD_REPORT, &vm__load_report__descriptor, buf, len, &err);
	free(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_EQUAL(u->n_backends, CLU_MAX_BACKENDS);
	CU_ASSERT_EQUAL(u->backends[5]->id, UINT32_MAX - 5);
	CU_ASSERT_EQUAL(u->backends[5]->state, UINT32_MAX);
	CU_ASSERT_EQUAL(u->backends[63]->size, UINT64_MAX - 63);
	CU_ASSERT_EQUAL(u->bytes, UINT64_MAX);
	vm__load_report__free_unpacked(u, NULL);
}

/* Each engine's view reaches the others with the next load report, and ages. */
static void test_exchange(void)
{
	struct clu_backend_seen seen2[] = {{7, CLU_BE_UP, 64 << 20}, {9, CLU_BE_FAILED, 0}};
	struct clu_backend_seen seen3[] = {{7, CLU_BE_OPENING, 0}};
	struct clu_backend_seen out;
	uint32_t age = 99;

	CU_ASSERT_TRUE_FATAL(clu_serving(nodes[0].c));
	/* Nothing reported yet: unknown, but a member. */
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 7, &out, &age), -ENODATA);
	clu_set_backends_seen(nodes[1].c, seen2, 2);
	clu_set_backends_seen(nodes[2].c, seen3, 1);
	/* The own view is there at once, with age 0. */
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[1].c, 2, 9, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_FAILED);
	CU_ASSERT_EQUAL(age, 0);
	/* A load report every CLU_LOAD_TICKS ticks. */
	advance(CLU_LOAD_TICKS * CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 7, &out, &age), 0);
	CU_ASSERT_EQUAL(out.id, 7);
	CU_ASSERT_EQUAL(out.state, CLU_BE_UP);
	CU_ASSERT_EQUAL(out.size, 64 << 20);
	CU_ASSERT_EQUAL(age, 0);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 9, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_FAILED);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[2].c, 2, 9, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_FAILED);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[1].c, 3, 7, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_OPENING);
	/* A back end its report does not list, a node that is no member. */
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 3, 9, &out, &age), -ENODATA);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 4, 7, &out, &age), -ENOENT);
	/* Two ticks later, no new report yet: the age says so. */
	advance(2 * CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 7, &out, &age), 0);
	CU_ASSERT_EQUAL(age, 2 * CLU_TICK_MS / 1000);
	/* The next report replaces the view whole: back end 9 came up. */
	seen2[1].state = CLU_BE_UP;
	seen2[1].size = 32 << 20;
	clu_set_backends_seen(nodes[1].c, seen2, 2);
	advance(CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 9, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_UP);
	CU_ASSERT_EQUAL(out.size, 32 << 20);
	CU_ASSERT_EQUAL(age, 0);
	/* Fewer back ends: the one dropped from its view is unknown. */
	clu_set_backends_seen(nodes[1].c, seen2, 1);
	advance(CLU_LOAD_TICKS * CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 9, &out, &age), -ENODATA);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 7, &out, &age), 0);
}

/* A member that leaves is not listed; back, it is unknown until it reports. */
static void test_leave_and_return(void)
{
	struct clu_backend_seen seen3[] = {{7, CLU_BE_UP, 1 << 20}};
	struct clu_backend_seen out;
	uint32_t age;

	clu_set_backends_seen(nodes[2].c, seen3, 1);
	advance(CLU_LOAD_TICKS * CLU_TICK_MS);
	CU_ASSERT_EQUAL_FATAL(clu_backend_seen(nodes[0].c, 3, 7, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_UP);
	configure((bool[N]){true, true, false});
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 3, 7, &out, &age), -ENOENT);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[1].c, 3, 7, &out, &age), -ENOENT);
	/* The others still report to each other. */
	advance(CLU_LOAD_TICKS * CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 7, &out, &age), 0);
	/* Its old view is no news once it is back. */
	configure((bool[N]){true, true, true});
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 3, 7, &out, &age), -ENODATA);
	seen3[0].state = CLU_BE_FAILED;
	clu_set_backends_seen(nodes[2].c, seen3, 1);
	advance(CLU_LOAD_TICKS * CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 3, 7, &out, &age), 0);
	CU_ASSERT_EQUAL(out.state, CLU_BE_FAILED);
}

/* A peer listing more than CLU_MAX_BACKENDS: the first ones are kept, nothing overflows. */
static void test_long_list_cut(void)
{
	Vm__LoadReport lr = VM__LOAD_REPORT__INIT;
	unsigned n = CLU_MAX_BACKENDS + 6;
	Vm__BackendSeen bs[CLU_MAX_BACKENDS + 6], *pbs[CLU_MAX_BACKENDS + 6];
	struct clu_backend_seen out;
	uint32_t age;
	uint8_t *buf;
	size_t len;

	for (unsigned i = 0; i < n; i++) {
		vm__backend_seen__init(&bs[i]);
		bs[i].id = 1000 + i;
		bs[i].state = CLU_BE_UP;
		pbs[i] = &bs[i];
	}
	lr.node = 2;
	lr.n_backends = n;
	lr.backends = pbs;
	CU_ASSERT_EQUAL_FATAL(proto_pack(PROTO_LOAD_REPORT, &lr.base, &buf, &len), 0);
	clu_deliver(nodes[0].c, 2, buf, len);
	free(buf);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 1000, &out, &age), 0);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 1000 + CLU_MAX_BACKENDS - 1, &out, &age),
			0);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 1000 + CLU_MAX_BACKENDS, &out, &age),
			-ENODATA);
	/* A report claiming to be another node's is ignored. */
	lr.node = 3;
	lr.n_backends = 1;
	bs[0].id = 4242;
	CU_ASSERT_EQUAL_FATAL(proto_pack(PROTO_LOAD_REPORT, &lr.base, &buf, &len), 0);
	clu_deliver(nodes[0].c, 2, buf, len);
	free(buf);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 2, 4242, &out, &age), -ENODATA);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 3, 4242, &out, &age), -ENODATA);
	/* Our own view set with too many entries is cut the same way. */
	struct clu_backend_seen many[CLU_MAX_BACKENDS + 6];
	for (unsigned i = 0; i < n; i++)
		many[i] = (struct clu_backend_seen){2000 + i, CLU_BE_UP, 0};
	clu_set_backends_seen(nodes[0].c, many, n);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 1, 2000 + CLU_MAX_BACKENDS - 1, &out, &age),
			0);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[0].c, 1, 2000 + CLU_MAX_BACKENDS, &out, &age),
			-ENODATA);
	/* ...and its report still fits on the wire: the others get all 64. */
	advance(CLU_LOAD_TICKS * CLU_TICK_MS);
	CU_ASSERT_EQUAL(clu_backend_seen(nodes[1].c, 1, 2000 + CLU_MAX_BACKENDS - 1, &out, &age),
			0);
	CU_ASSERT_EQUAL(clu_drops(nodes[1].c)->oversized, 0);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite w = CU_add_suite("load report wire", NULL, NULL);
	CU_add_test(w, "largest report fits and round-trips", test_wire_limit);
	CU_pSuite s = CU_add_suite("back ends seen", setup, teardown);
	CU_add_test(s, "views exchanged in load reports", test_exchange);
	CU_add_test(s, "a member leaves and returns", test_leave_and_return);
	CU_add_test(s, "long lists are cut", test_long_list_cut);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
