/*
 * failover_ut.c: the pure decisions of cluster/failover.c: who takes a lost
 * owner's volumes over, which service addresses an engine holds, portal
 * parsing, and that an owner move keeps or sets the volume's service portal
 * through the map (and its protobuf form).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#include "cluster/cluster.h"

static int create(struct clu_map *m, const char *name, uint32_t owner, uint32_t partner,
		  const char *portal)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__VOLUME_CREATE;
	c.name = (char *)name;
	c.size = 1 << 20;
	c.block_size = 512;
	c.owner = owner;
	c.partner = partner;
	c.service_portal = (char *)portal;
	return clu_map_apply(m, &c);
}

static int move(struct clu_map *m, const char *name, uint32_t owner, const char *portal)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__OWNER_MOVE;
	c.name = (char *)name;
	c.owner = owner;
	c.service_portal = (char *)portal;
	return clu_map_apply(m, &c);
}

/* Portals as the engines advertise them: node N at 10.0.0.(100+N). */
static const char *portal_of(void *arg, const struct clu_volume *v)
{
	static char buf[4][CLU_PORTAL_MAX];
	static unsigned k;
	char *b = buf[k++ % 4];

	(void)arg;
	if (v->service_portal[0])
		return v->service_portal;
	snprintf(b, CLU_PORTAL_MAX, "10.0.0.%u:3260", 100 + v->owner);
	return b;
}

static void test_portal_host(void)
{
	char h[CLU_PORTAL_MAX];

	CU_ASSERT_EQUAL(clu_portal_host("10.0.0.1:3260", h, sizeof(h)), 0);
	CU_ASSERT_STRING_EQUAL(h, "10.0.0.1");
	CU_ASSERT_EQUAL(clu_portal_host("10.0.0.1", h, sizeof(h)), 0);
	CU_ASSERT_STRING_EQUAL(h, "10.0.0.1");
	CU_ASSERT_EQUAL(clu_portal_host("[fd00::1]:3260", h, sizeof(h)), 0);
	CU_ASSERT_STRING_EQUAL(h, "fd00::1");
	CU_ASSERT_EQUAL(clu_portal_host("fd00::1", h, sizeof(h)), 0);
	CU_ASSERT_STRING_EQUAL(h, "fd00::1");
	CU_ASSERT_EQUAL(clu_portal_host("", h, sizeof(h)), -EINVAL);
	CU_ASSERT_EQUAL(clu_portal_host("[fd00::1:3260", h, sizeof(h)), -EINVAL);
	CU_ASSERT_EQUAL(clu_portal_host("10.0.0.1:3260", h, 4), -ENAMETOOLONG);
}

static void test_plan(void)
{
	struct clu_map m;
	struct clu_takeover t[8];
	const uint32_t all[] = {1, 2, 3}, no1[] = {2, 3}, only3[] = {3};

	clu_map_init(&m);
	CU_ASSERT_EQUAL(create(&m, "a", 1, 2, NULL), 0);
	CU_ASSERT_EQUAL(create(&m, "b", 2, 1, NULL), 0);
	CU_ASSERT_EQUAL(create(&m, "c", 1, 0, NULL), 0);
	CU_ASSERT_EQUAL(clu_failover_plan(&m, all, 3, t, 8), 0); /* every owner is here */
	CU_ASSERT_EQUAL_FATAL(clu_failover_plan(&m, no1, 2, t, 8), 2);
	CU_ASSERT_STRING_EQUAL(t[0].name, "a");
	CU_ASSERT_EQUAL(t[0].old_owner, 1);
	CU_ASSERT_EQUAL(t[0].owner, 2);	  /* its partner */
	CU_ASSERT_EQUAL(t[0].partner, 3); /* a new partner, never the owner */
	CU_ASSERT_TRUE(t[0].pool_file);
	CU_ASSERT_STRING_EQUAL(t[1].name, "c");
	CU_ASSERT_EQUAL(t[1].owner, 3); /* no partner: the least loaded member */
	CU_ASSERT_EQUAL(t[1].partner, 2);
	/* Owner and partner both gone: the one member left takes both, no partner. */
	CU_ASSERT_EQUAL_FATAL(clu_failover_plan(&m, only3, 1, t, 8), 3);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(t[i].owner, 3);
		CU_ASSERT_EQUAL(t[i].partner, 0);
	}
	CU_ASSERT_EQUAL(clu_failover_plan(&m, no1, 0, t, 8), 0); /* no configuration */
	CU_ASSERT_EQUAL(clu_failover_plan(&m, no1, 2, t, 1), 1); /* bounded */
	clu_map_clear(&m);
}

static bool has(char (*a)[CLU_PORTAL_MAX], unsigned n, const char *s)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(a[i], s) == 0)
			return true;
	return false;
}

static void test_addresses(void)
{
	struct clu_map m;
	char a[8][CLU_PORTAL_MAX];
	unsigned n;

	clu_map_init(&m);
	/* Nothing owned: only its own address. */
	n = clu_addr_wanted(&m, 1, "10.0.0.101:3260", portal_of, NULL, a, 8);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_TRUE(has(a, n, "10.0.0.101"));
	CU_ASSERT_EQUAL(create(&m, "a", 1, 2, NULL), 0);
	/* A failover: node 2 owns "a" and keeps node 1's address for it. */
	CU_ASSERT_EQUAL(move(&m, "a", 2, "10.0.0.101:3260"), 0);
	CU_ASSERT_STRING_EQUAL(clu_map_find(&m, "a")->service_portal, "10.0.0.101:3260");
	n = clu_addr_wanted(&m, 2, "10.0.0.102:3260", portal_of, NULL, a, 8);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_TRUE(has(a, n, "10.0.0.101"));
	CU_ASSERT_TRUE(has(a, n, "10.0.0.102"));
	/* Node 1 returns: its address is in use elsewhere, it does not take it back. */
	n = clu_addr_wanted(&m, 1, "10.0.0.101:3260", portal_of, NULL, a, 8);
	CU_ASSERT_EQUAL(n, 0);
	/* An owner move without a portal keeps it; a move back sets node 1's. */
	CU_ASSERT_EQUAL(move(&m, "a", 3, NULL), 0);
	CU_ASSERT_STRING_EQUAL(clu_map_find(&m, "a")->service_portal, "10.0.0.101:3260");
	CU_ASSERT_EQUAL(move(&m, "a", 3, NULL), -EALREADY);
	CU_ASSERT_EQUAL(move(&m, "a", 1, "10.0.0.101:3260"), 0);
	n = clu_addr_wanted(&m, 1, "10.0.0.101:3260", portal_of, NULL, a, 8);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_TRUE(has(a, n, "10.0.0.101"));
	n = clu_addr_wanted(&m, 3, "10.0.0.103:3260", portal_of, NULL, a, 8);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_TRUE(has(a, n, "10.0.0.103"));
	/* Too long a portal is refused, the map untouched. */
	char longp[CLU_PORTAL_MAX + 8];
	memset(longp, '1', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	CU_ASSERT_EQUAL(move(&m, "a", 2, longp), -EINVAL);
	CU_ASSERT_EQUAL(clu_map_find(&m, "a")->owner, 1);
	clu_map_clear(&m);
}

static void test_pb(void)
{
	struct clu_map m, n;
	Vm__Map pb;

	clu_map_init(&m);
	clu_map_init(&n);
	CU_ASSERT_EQUAL(create(&m, "a", 1, 2, "10.0.0.101:3260"), 0);
	CU_ASSERT_EQUAL(create(&m, "b", 2, 1, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(clu_map_to_pb(&m, &pb), 0);
	CU_ASSERT_EQUAL(clu_map_from_pb(&n, &pb), 0);
	clu_map_pb_free(&pb);
	CU_ASSERT_STRING_EQUAL(clu_map_find(&n, "a")->service_portal, "10.0.0.101:3260");
	CU_ASSERT_STRING_EQUAL(clu_map_find(&n, "b")->service_portal, "");
	CU_ASSERT_EQUAL(clu_map_digest(&n), clu_map_digest(&m));
	clu_map_clear(&m);
	clu_map_clear(&n);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("failover", NULL, NULL);
	CU_add_test(s, "portal host part", test_portal_host);
	CU_add_test(s, "takeover plan", test_plan);
	CU_add_test(s, "service addresses", test_addresses);
	CU_add_test(s, "service portal in the map's protobuf", test_pb);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int rc = CU_get_number_of_failures() ? 1 : 0;
	CU_cleanup_registry();
	return rc;
}
