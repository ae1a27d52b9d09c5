/*
 * regions_ut.c: write intent records (cluster/regions.c) inside one state
 * machine, node 1, with nodes 2 and 3 as peers: FULL (in parts too), SET and
 * CLEAR from the owner; the complete flag across configuration changes (a
 * member leaving, the owner leaving and joining again); an owner change
 * (the record frozen for the new owner, then replaced, or made incomplete
 * by a second change); a deleted volume; bad, stale and oversized messages
 * dropped and counted; and this engine's own SETs completing on their
 * delivery (quorate or not, timed out, out of the group).
 *
 * Messages go through clu_deliver() as CPG would hand them over; what node
 * 1 multicasts is captured and delivered by the test. No time passes but
 * the ticks the test calls.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster_internal.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* ---- the outside world: captured multicasts, inert timers ---- */

static struct {
	uint8_t *buf;
	size_t len;
} sent[16];
static unsigned nsent;

static int fake_mcast(void *ctx, const void *buf, size_t len)
{
	const struct proto_env *env = buf;

	/* Only region-intent messages matter here (not the state transfer's). */
	if (get_be16(env->type) != PROTO_REGION_INTENT || nsent >= UTIL_ARRAY_SIZE(sent))
		return 0;
	sent[nsent].buf = malloc(len);
	memcpy(sent[nsent].buf, buf, len);
	sent[nsent].len = len;
	nsent++;
	return 0;
}

static int dummy_timer;

static void *fake_timer_add(void *ctx, uint32_t ms, void (*fn)(void *), void *arg)
{
	return &dummy_timer;
}

static void fake_timer_del(void *ctx, void *t)
{
}

static const struct clu_ops ops = {fake_mcast, fake_timer_add, fake_timer_del};

/* Forget what node 1 sent (lost on the way). */
static void drop_sent(void)
{
	for (unsigned i = 0; i < nsent; i++)
		free(sent[i].buf);
	nsent = 0;
}

/* Deliver what node 1 sent (in order), then forget it. */
static void deliver_sent(struct clu *c)
{
	for (unsigned i = 0; i < nsent; i++) {
		clu_deliver(c, 1, sent[i].buf, sent[i].len);
		free(sent[i].buf);
	}
	nsent = 0;
}

/* ---- the map: two back ends, mirrored volumes ---- */

static void map_do(struct clu_map *m, Vm__MapChange *chg)
{
	CU_ASSERT_EQUAL_FATAL(clu_map_apply(m, chg), 0);
}

static void be_add(struct clu_map *m, const char *portal, uint64_t size)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__BACKEND_ADD;
	c.portal = (char *)portal;
	c.target = (char *)"iqn.2026-01.org.example:be";
	c.lun = 1;
	c.be_size = size;
	c.be_block_size = 512;
	map_do(m, &c);
}

static void vcreate(struct clu_map *m, const char *name, uint64_t size, uint32_t mirror,
		    uint32_t owner)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__VOLUME_CREATE;
	c.name = (char *)name;
	c.size = size;
	c.block_size = 512;
	c.owner = owner;
	c.mirror = mirror;
	c.extent_size = mirror ? 8 * MIB : 0;
	map_do(m, &c);
}

/* An applied change, as clu_apply_change() would follow it. */
static void change(struct clu *c, Vm__MapChange *chg)
{
	map_do(&c->map, chg);
	clu_notify(c);
}

static void owner_move(struct clu *c, const char *name, uint32_t owner)
{
	Vm__MapChange chg = VM__MAP_CHANGE__INIT;

	chg.op = VM__CHANGE_OP__OWNER_MOVE;
	chg.name = (char *)name;
	chg.owner = owner;
	change(c, &chg);
}

static void members(struct clu *c, const uint32_t *m, unsigned n)
{
	clu_confchg(c, m, n);
	/* In sync at once (the state transfer is not what is tested here). */
	c->state = CLU_STATE_SYNCED;
	c->stale = false;
}

/*
 * Node 1 with nodes 2 and 3, quorate: "vm" (16 MiB: 16 regions of 1 MiB,
 * one bitmap word) owned by node 2, "mine" owned by node 1, "big" (300 GiB:
 * 4800 words) owned by node 1, "pf" a pool file of node 2.
 */
static struct clu *setup(void)
{
	struct clu_self self = {.node = 1, .name = "n1", .portal = "10.0.0.1:3260"};
	const uint32_t all[3] = {1, 2, 3};
	struct clu_map m;
	struct clu *c;

	clu_map_init(&m);
	be_add(&m, "10.0.0.8:3260", 400 * GIB);
	be_add(&m, "10.0.0.9:3260", 400 * GIB);
	vcreate(&m, "vm", 16 * MIB, 2, 2);
	vcreate(&m, "mine", 16 * MIB, 2, 1);
	vcreate(&m, "big", 300 * GIB, 2, 1);
	vcreate(&m, "pf", 16 * MIB, 0, 2);
	c = clu_create(&ops, NULL, &self, &m, NULL, NULL);
	CU_ASSERT_FATAL(c != NULL);
	clu_quorum(c, true, 3);
	members(c, all, 3);
	return c;
}

/* ---- messages from peers ---- */

struct msg {
	const char *volume;
	uint32_t owner;
	Vm__RegionOp op;
	uint64_t region_size;
	unsigned n;
	uint32_t index[4];
	uint64_t bits[4];
	uint32_t part;
	bool last;
};

static void deliver(struct clu *c, uint32_t from, const struct msg *x)
{
	Vm__RegionIntent m = VM__REGION_INTENT__INIT;
	uint8_t *buf;
	size_t len;

	m.volume = (char *)x->volume;
	m.owner = x->owner;
	m.op = x->op;
	m.region_size = x->region_size ? x->region_size : MIB;
	m.n_index = x->n;
	m.index = (uint32_t *)x->index;
	m.n_bits = x->n;
	m.bits = (uint64_t *)x->bits;
	m.part = x->part;
	m.last = x->last;
	CU_ASSERT_FATAL(proto_pack(PROTO_REGION_INTENT, &m.base, &buf, &len) == 0);
	clu_deliver(c, from, buf, len);
	free(buf);
}

static void full(struct clu *c, uint32_t from, const char *vol, uint64_t w0)
{
	struct msg x = {vol, from, VM__REGION_OP__REGION_FULL, 0, w0 ? 1 : 0, {0}, {w0}, 0, true};
	deliver(c, from, &x);
}

static void set_clear(struct clu *c, uint32_t from, const char *vol, bool set, uint64_t w0)
{
	struct msg x = {.volume = vol,
			.owner = from,
			.op = set ? VM__REGION_OP__REGION_SET : VM__REGION_OP__REGION_CLEAR,
			.n = 1,
			.bits = {w0}};
	deliver(c, from, &x);
}

static struct clu_region_view view(struct clu *c, const char *vol, uint64_t *w0, int *rc)
{
	struct clu_region_view v = {0};

	*rc = clu_regions_get(c, vol, &v, w0, 1);
	return v;
}

/* ---- tests ---- */

static void test_set_clear_full(void)
{
	struct clu *c = setup();
	struct clu_region_view v;
	uint64_t w;
	int rc;

	CU_ASSERT_EQUAL(clu_regions_get(c, "vm", &v, NULL, 0), -ENOENT);
	set_clear(c, 2, "vm", true, 1ull << 4); /* before any FULL: kept, not complete */
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_FALSE(v.complete);
	CU_ASSERT_EQUAL(w, 1ull << 4);
	full(c, 2, "vm", (1ull << 1) | (1ull << 3)); /* replaces */
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(v.owner, 2);
	CU_ASSERT_EQUAL(v.count, 2);
	CU_ASSERT_EQUAL(w, (1ull << 1) | (1ull << 3));
	set_clear(c, 2, "vm", true, (1ull << 5) | (1ull << 3));
	set_clear(c, 2, "vm", false, 1ull << 1);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_EQUAL(w, (1ull << 3) | (1ull << 5));
	CU_ASSERT_EQUAL(v.count, 2);
	CU_ASSERT_TRUE(v.complete);
	/* Not the owner: ignored. */
	set_clear(c, 3, "vm", true, 1ull << 9);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_EQUAL(w, (1ull << 3) | (1ull << 5));
	CU_ASSERT_EQUAL(clu_regions_stats(c)->stale, 1);
	CU_ASSERT_EQUAL(clu_regions_stats(c)->applied, 4);
	/* An empty FULL: complete, nothing set. */
	full(c, 2, "vm", 0);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(v.count, 0);
	CU_ASSERT_EQUAL(w, 0);
	clu_destroy(c);
}

static void test_full_parts(void)
{
	struct clu *c = setup();
	struct msg p0 = {"vm", 2, VM__REGION_OP__REGION_FULL, 0, 1, {0}, {1}, 0, false};
	struct msg p1 = {"vm", 2, VM__REGION_OP__REGION_FULL, 0, 0, {0}, {0}, 1, true};
	struct msg p2 = p1;
	struct clu_region_view v;
	uint64_t w;
	int rc;

	deliver(c, 2, &p0);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_FALSE(v.complete); /* not before the last part */
	CU_ASSERT_EQUAL(w, 1);
	deliver(c, 2, &p1);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	/* A part missing: not complete, even once the "last" one came. */
	p2.part = 2;
	deliver(c, 2, &p0);
	deliver(c, 2, &p2);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_FALSE(v.complete);
	clu_destroy(c);
}

static void test_membership(void)
{
	struct clu *c = setup();
	const uint32_t no3[2] = {1, 2}, no2[2] = {1, 3}, all[3] = {1, 2, 3};
	struct clu_region_view v;
	uint64_t joins = clu_regions_joins(c), w;
	int rc;

	full(c, 2, "vm", 1ull << 7);
	/* Another member leaves and comes back: nothing of the owner was missed. */
	members(c, no3, 2);
	members(c, all, 3);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(clu_regions_joins(c), joins + 1);
	/* The owner leaves: the record stays as it was (that is when it is used). */
	members(c, no2, 2);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(w, 1ull << 7);
	CU_ASSERT_EQUAL(v.owner, 2);
	/* It comes back: it may have written while apart; its next FULL tells. */
	members(c, all, 3);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_FALSE(v.complete);
	CU_ASSERT_EQUAL(clu_regions_joins(c), joins + 2);
	full(c, 2, "vm", 1ull << 8);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(w, 1ull << 8);
	clu_destroy(c);
}

static void test_owner_change(void)
{
	struct clu *c = setup();
	struct clu_region_view v;
	uint64_t w;
	int rc;

	full(c, 2, "vm", 1ull << 2);
	owner_move(c, "vm", 1); /* a takeover by this engine */
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_TRUE(v.complete); /* frozen for the new owner to read */
	CU_ASSERT_EQUAL(v.owner, 2);
	CU_ASSERT_EQUAL(v.successor, 1);
	CU_ASSERT_EQUAL(w, 1ull << 2);
	/* A late message of the old owner: ignored. */
	set_clear(c, 2, "vm", true, 1ull << 11);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_EQUAL(w, 1ull << 2);
	/* Moved on again before the new owner said anything: incomplete. */
	owner_move(c, "vm", 3);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_FALSE(v.complete);
	/* The current owner's FULL replaces it. */
	full(c, 3, "vm", 1ull << 6);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(v.owner, 3);
	CU_ASSERT_EQUAL(v.successor, 0);
	CU_ASSERT_EQUAL(w, 1ull << 6);
	/* A new owner's first SET starts its own (incomplete) record. */
	owner_move(c, "vm", 2);
	set_clear(c, 2, "vm", true, 1ull << 1);
	v = view(c, "vm", &w, &rc);
	CU_ASSERT_FALSE(v.complete);
	CU_ASSERT_EQUAL(v.owner, 2);
	CU_ASSERT_EQUAL(w, 1ull << 1);
	/* Deleted: the record goes. */
	Vm__MapChange del = VM__MAP_CHANGE__INIT;
	del.op = VM__CHANGE_OP__VOLUME_DELETE;
	del.name = (char *)"vm";
	change(c, &del);
	CU_ASSERT_EQUAL(clu_regions_get(c, "vm", &v, NULL, 0), -ENOENT);
	clu_destroy(c);
}

static void test_bad_messages(void)
{
	struct clu *c = setup();
	/* Word 1 of a one-word bitmap. */
	struct msg x = {
	    .volume = "vm", .owner = 2, .op = VM__REGION_OP__REGION_SET, .n = 1, .index = {1}};
	const struct clu_regions_stats *st = clu_regions_stats(c);
	uint64_t malformed = clu_drops(c)->malformed;

	deliver(c, 2, &x);
	x.index[0] = 0;
	x.region_size = 4096; /* not the map's */
	deliver(c, 2, &x);
	x.region_size = 0;
	x.owner = 3; /* not the sender */
	deliver(c, 2, &x);
	x.owner = 2;
	x.op = (Vm__RegionOp)7;
	deliver(c, 2, &x);
	x.op = VM__REGION_OP__REGION_SET;
	x.volume = "big";
	x.owner = 1;
	x.n = 2;
	x.index[0] = 5;
	x.index[1] = 5; /* not increasing */
	deliver(c, 1, &x);
	CU_ASSERT_EQUAL(st->bad, 5);
	CU_ASSERT_EQUAL(clu_drops(c)->malformed, malformed + 5);
	CU_ASSERT_EQUAL(st->applied, 0);
	/* Unknown volume, pool file: stale, not bad. */
	x.volume = "nope";
	deliver(c, 1, &x);
	x.volume = "pf";
	x.owner = 2;
	x.n = 0;
	deliver(c, 2, &x);
	CU_ASSERT_EQUAL(st->stale, 2);
	CU_ASSERT_EQUAL(st->bad, 5);
	CU_ASSERT_EQUAL(clu_regions_get(c, "vm", &(struct clu_region_view){0}, NULL, 0), -ENOENT);

	/* More words than a part may carry: dropped. */
	Vm__RegionIntent m = VM__REGION_INTENT__INIT;
	uint32_t *idx = calloc(CLU_REGIONS_PART_WORDS + 1, sizeof(*idx));
	uint64_t *bits = calloc(CLU_REGIONS_PART_WORDS + 1, sizeof(*bits));
	uint8_t *buf;
	size_t len;
	for (unsigned i = 0; i <= CLU_REGIONS_PART_WORDS; i++) {
		idx[i] = i;
		bits[i] = 1;
	}
	m.volume = (char *)"big";
	m.owner = 1;
	m.op = VM__REGION_OP__REGION_SET;
	m.region_size = MIB;
	m.n_index = m.n_bits = CLU_REGIONS_PART_WORDS + 1;
	m.index = idx;
	m.bits = bits;
	CU_ASSERT_FATAL(proto_pack(PROTO_REGION_INTENT, &m.base, &buf, &len) == 0);
	clu_deliver(c, 1, buf, len);
	free(buf);
	CU_ASSERT_EQUAL(st->bad, 6);
	/* Above the envelope's limit for the type: dropped before any unpack. */
	uint64_t oversized = clu_drops(c)->oversized;
	size_t plen = proto_max_payload(PROTO_REGION_INTENT) + 1;
	buf = calloc(1, PROTO_ENV_LEN + plen);
	proto_env_put((struct proto_env *)(void *)buf, PROTO_REGION_INTENT, buf + PROTO_ENV_LEN,
		      plen);
	clu_deliver(c, 1, buf, PROTO_ENV_LEN + plen);
	CU_ASSERT_EQUAL(clu_drops(c)->oversized, oversized + 1);
	/* Not unpackable. */
	memset(buf + PROTO_ENV_LEN, 0xff, 64);
	proto_env_put((struct proto_env *)(void *)buf, PROTO_REGION_INTENT, buf + PROTO_ENV_LEN,
		      64);
	clu_deliver(c, 1, buf, PROTO_ENV_LEN + 64);
	CU_ASSERT_EQUAL(clu_drops(c)->malformed, malformed + 7);
	free(buf);
	free(idx);
	free(bits);
	clu_destroy(c);
}

/* ---- this engine's own SETs ---- */

static int done_rc, ndone;

static void on_done(void *arg, int rc)
{
	ndone++;
	done_rc = rc;
}

static void test_send_own(void)
{
	struct clu *c = setup();
	struct clu_region_view v;
	uint64_t w = (1ull << 0) | (1ull << 15);
	uint64_t *big;
	int rc;

	ndone = 0;
	CU_ASSERT_EQUAL(clu_regions_send(c, "vm", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL),
			-ENOENT); /* node 2's */
	CU_ASSERT_EQUAL(clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, NULL, NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_FULL, NULL, 0, NULL, NULL), 0);
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL), 0);
	CU_ASSERT_EQUAL(nsent, 2);
	CU_ASSERT_EQUAL(ndone, 0); /* never inline */
	deliver_sent(c);
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(done_rc, 0);
	v = view(c, "mine", &w, &rc);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(w, (1ull << 0) | (1ull << 15));

	/* Delivered in a minority configuration: not recorded where it counts. */
	const uint32_t alone[1] = {1};
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL), 0);
	members(c, alone, 1);
	deliver_sent(c);
	CU_ASSERT_EQUAL(ndone, 2);
	CU_ASSERT_EQUAL(done_rc, -ENOTCONN);
	/* ...and then fenced: refused at once. */
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL),
	    -ENOTCONN);

	/* Never delivered: times out. */
	const uint32_t all[3] = {1, 2, 3};
	members(c, all, 3);
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL), 0);
	for (unsigned i = 0; i < CLU_REQUEST_TIMEOUT_MS / CLU_TICK_MS; i++)
		clu_regions_tick(c);
	CU_ASSERT_EQUAL(ndone, 2);
	clu_regions_tick(c);
	CU_ASSERT_EQUAL(ndone, 3);
	CU_ASSERT_EQUAL(done_rc, -ETIMEDOUT);
	drop_sent();

	/* Out of the group before the delivery: fails at once. */
	const uint32_t others[2] = {2, 3};
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL), 0);
	clu_confchg(c, others, 2);
	CU_ASSERT_EQUAL(ndone, 4);
	CU_ASSERT_EQUAL(done_rc, -ENOTCONN);
	members(c, all, 3);
	drop_sent();

	/* A FULL of 4800 words goes in two parts; complete after both. */
	big = calloc(4800, sizeof(*big));
	for (unsigned i = 0; i < 4800; i++)
		big[i] = ~0ull;
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "big", VM__REGION_OP__REGION_FULL, big, 4800, NULL, NULL), 0);
	CU_ASSERT_EQUAL(nsent, 2);
	clu_deliver(c, 1, sent[0].buf, sent[0].len);
	CU_ASSERT_EQUAL(clu_regions_get(c, "big", &v, NULL, 0), 0);
	CU_ASSERT_FALSE(v.complete);
	CU_ASSERT_EQUAL(v.count, 4096 * 64);
	clu_deliver(c, 1, sent[1].buf, sent[1].len);
	CU_ASSERT_EQUAL(clu_regions_get(c, "big", &v, NULL, 0), 0);
	CU_ASSERT_TRUE(v.complete);
	CU_ASSERT_EQUAL(v.count, 4800 * 64);
	drop_sent();
	free(big);

	/* Shutdown: a pending SET is cancelled. */
	CU_ASSERT_EQUAL(
	    clu_regions_send(c, "mine", VM__REGION_OP__REGION_SET, &w, 1, on_done, NULL), 0);
	drop_sent();
	clu_destroy(c);
	CU_ASSERT_EQUAL(ndone, 5);
	CU_ASSERT_EQUAL(done_rc, -ECANCELED);
}

int main(void)
{
	CU_pSuite s;
	int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("regions", NULL, NULL);
	CU_add_test(s, "FULL, SET and CLEAR from the owner", test_set_clear_full);
	CU_add_test(s, "FULL in parts; a missing part", test_full_parts);
	CU_add_test(s, "complete across joins and leaves", test_membership);
	CU_add_test(s, "owner changes; deleted volume", test_owner_change);
	CU_add_test(s, "bad, stale and oversized messages dropped and counted", test_bad_messages);
	CU_add_test(s, "own SETs complete on delivery", test_send_own);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
