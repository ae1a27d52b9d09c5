/*
 * map_virt_ut.c: back ends and virtualized volumes in the map: back-end
 * add/remove rules, deterministic extent placement (legs on distinct back
 * ends, free space rebuilt from the map), leg states, resize, and the
 * protobuf round trip with its digest.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster.h"

#define MIB (1ull << 20)

static int be_add(struct clu_map *m, const char *portal, uint64_t size)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__BACKEND_ADD;
	c.portal = (char *)portal;
	c.target = (char *)"iqn.2026-01.org.example:be";
	c.lun = 1;
	c.be_size = size;
	c.be_block_size = 512;
	return clu_map_apply(m, &c);
}

static int vcreate(struct clu_map *m, const char *name, uint64_t size, uint32_t mirror)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__VOLUME_CREATE;
	c.name = (char *)name;
	c.size = size;
	c.block_size = 512;
	c.owner = 1;
	c.mirror = mirror;
	c.extent_size = 8 * MIB;
	return clu_map_apply(m, &c);
}

static int leg_state(struct clu_map *m, const char *name, uint32_t leg, uint32_t st)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;

	c.op = VM__CHANGE_OP__LEG_STATE;
	c.name = (char *)name;
	c.leg = leg;
	c.leg_state = st;
	return clu_map_apply(m, &c);
}

static void test_backend_rules(void)
{
	struct clu_map m;

	clu_map_init(&m);
	CU_ASSERT_EQUAL(be_add(&m, "10.0.0.1:3260", 64 * MIB), 0);
	CU_ASSERT_EQUAL(m.nbackends, 1);
	CU_ASSERT_EQUAL(m.backends[0].id, 1); /* the version that added it */
	CU_ASSERT_EQUAL(be_add(&m, "10.0.0.1:3260", 64 * MIB), -EEXIST);
	CU_ASSERT_EQUAL(be_add(&m, "", 64 * MIB), -EINVAL);
	CU_ASSERT_EQUAL(be_add(&m, "10.0.0.2:3260", 1000), -EINVAL);
	CU_ASSERT_EQUAL(be_add(&m, "10.0.0.2:3260", 64 * MIB), 0);
	CU_ASSERT_EQUAL(m.version, 2);
	CU_ASSERT_EQUAL(clu_virt_free_bytes(&m, 1), 64 * MIB);
	Vm__MapChange rm = VM__MAP_CHANGE__INIT;
	rm.op = VM__CHANGE_OP__BACKEND_REMOVE;
	rm.backend = 99;
	CU_ASSERT_EQUAL(clu_map_apply(&m, &rm), -ENOENT);
	rm.backend = 2;
	CU_ASSERT_EQUAL(clu_map_apply(&m, &rm), 0);
	CU_ASSERT_EQUAL(m.nbackends, 1);
	clu_map_clear(&m);
}

static void test_mirror_placement(void)
{
	struct clu_map m;

	clu_map_init(&m);
	CU_ASSERT_EQUAL(vcreate(&m, "nobe", 16 * MIB, 2), -EINVAL); /* no back end */
	CU_ASSERT_EQUAL(be_add(&m, "10.0.0.1:3260", 64 * MIB), 0);
	CU_ASSERT_EQUAL(vcreate(&m, "one", 16 * MIB, 2), -ENOSPC); /* one disk: no mirror */
	CU_ASSERT_EQUAL(be_add(&m, "10.0.0.2:3260", 64 * MIB), 0);
	CU_ASSERT_EQUAL(vcreate(&m, "a", 20 * MIB, 2), 0);
	const struct clu_volume *v = clu_map_find(&m, "a");
	CU_ASSERT_EQUAL_FATAL(v->nlegs, 2);
	CU_ASSERT_EQUAL(v->legs[0].nextents, 3);
	CU_ASSERT_NOT_EQUAL(v->legs[0].extents[0].backend, v->legs[1].extents[0].backend);
	CU_ASSERT_EQUAL(clu_virt_free_bytes(&m, 1), 40 * MIB);
	CU_ASSERT_EQUAL(clu_virt_free_bytes(&m, 2), 40 * MIB);
	/* A second volume gets the next extents: free space comes from the map. */
	CU_ASSERT_EQUAL(vcreate(&m, "b", 8 * MIB, 2), 0);
	v = clu_map_find(&m, "b");
	CU_ASSERT_EQUAL(v->legs[0].extents[0].offset, 24 * MIB);
	/* Same changes, same map, on another engine. */
	struct clu_map m2;
	clu_map_init(&m2);
	be_add(&m2, "10.0.0.1:3260", 64 * MIB);
	be_add(&m2, "10.0.0.2:3260", 64 * MIB);
	vcreate(&m2, "a", 20 * MIB, 2);
	vcreate(&m2, "b", 8 * MIB, 2);
	CU_ASSERT_EQUAL(clu_map_digest(&m), clu_map_digest(&m2));
	/* The disk holding extents cannot go. */
	Vm__MapChange rm = VM__MAP_CHANGE__INIT;
	rm.op = VM__CHANGE_OP__BACKEND_REMOVE;
	rm.backend = 1;
	CU_ASSERT_EQUAL(clu_map_apply(&m, &rm), -EBUSY);
	CU_ASSERT_EQUAL(vcreate(&m, "big", 64 * MIB, 2), -ENOSPC);
	clu_map_clear(&m2);
	clu_map_clear(&m);
}

static void test_leg_state_and_resize(void)
{
	struct clu_map m;

	clu_map_init(&m);
	be_add(&m, "10.0.0.1:3260", 64 * MIB);
	be_add(&m, "10.0.0.2:3260", 64 * MIB);
	CU_ASSERT_EQUAL(vcreate(&m, "a", 8 * MIB, 2), 0);
	CU_ASSERT_EQUAL(leg_state(&m, "a", 1, VOL_LEG_FAILED), 0);
	CU_ASSERT_EQUAL(clu_map_find(&m, "a")->legs[1].state, VOL_LEG_FAILED);
	CU_ASSERT_EQUAL(leg_state(&m, "a", 1, VOL_LEG_FAILED), -EALREADY);
	CU_ASSERT_EQUAL(leg_state(&m, "a", 0, VOL_LEG_FAILED), -EINVAL); /* last good leg */
	CU_ASSERT_EQUAL(leg_state(&m, "a", 2, VOL_LEG_OK), -EINVAL);
	CU_ASSERT_EQUAL(leg_state(&m, "zz", 0, VOL_LEG_OK), -ENOENT);
	CU_ASSERT_EQUAL(leg_state(&m, "a", 1, VOL_LEG_OK), 0);
	Vm__MapChange rs = VM__MAP_CHANGE__INIT;
	rs.op = VM__CHANGE_OP__VOLUME_RESIZE;
	rs.name = (char *)"a";
	rs.size = 24 * MIB;
	CU_ASSERT_EQUAL(clu_map_apply(&m, &rs), 0);
	const struct clu_volume *v = clu_map_find(&m, "a");
	CU_ASSERT_EQUAL(v->legs[0].nextents, 3);
	CU_ASSERT_EQUAL(v->legs[1].nextents, 3);
	CU_ASSERT_EQUAL(v->legs[0].extents[2].backend, v->legs[0].extents[0].backend);
	CU_ASSERT_EQUAL(clu_virt_free_bytes(&m, 1), 40 * MIB);
	rs.size = 128 * MIB;
	CU_ASSERT_EQUAL(clu_map_apply(&m, &rs), -ENOSPC);
	CU_ASSERT_EQUAL(clu_map_find(&m, "a")->size, 24 * MIB);
	clu_map_clear(&m);
}

static void test_pb_round_trip(void)
{
	struct clu_map m, back, copy;
	Vm__Map pb;

	clu_map_init(&m);
	clu_map_init(&back);
	be_add(&m, "10.0.0.1:3260", 64 * MIB);
	be_add(&m, "10.0.0.2:3260", 64 * MIB);
	CU_ASSERT_EQUAL(vcreate(&m, "a", 16 * MIB, 2), 0);
	CU_ASSERT_EQUAL(leg_state(&m, "a", 0, VOL_LEG_FAILED), 0);
	CU_ASSERT_EQUAL_FATAL(clu_map_to_pb(&m, &pb), 0);
	CU_ASSERT_EQUAL(pb.n_backends, 2);
	CU_ASSERT_EQUAL(clu_map_from_pb(&back, &pb), 0);
	/* A leg whose extent count does not match the size is refused. */
	pb.volumes[0]->legs[0]->n_backend = 1;
	struct clu_map bad;
	clu_map_init(&bad);
	CU_ASSERT_EQUAL(clu_map_from_pb(&bad, &pb), -EBADMSG);
	pb.volumes[0]->legs[0]->n_backend = 2;
	clu_map_pb_free(&pb);
	CU_ASSERT_EQUAL(clu_map_digest(&m), clu_map_digest(&back));
	CU_ASSERT_EQUAL(clu_map_find(&back, "a")->legs[0].state, VOL_LEG_FAILED);
	CU_ASSERT_EQUAL(clu_map_copy(&copy, &back), 0);
	CU_ASSERT_EQUAL(clu_map_digest(&copy), clu_map_digest(&m));
	CU_ASSERT_EQUAL(copy.nbackends, 2);
	clu_map_clear(&copy);
	clu_map_clear(&back);
	clu_map_clear(&m);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("map_virt", NULL, NULL);
	CU_add_test(s, "backend rules", test_backend_rules);
	CU_add_test(s, "mirror placement", test_mirror_placement);
	CU_add_test(s, "leg state and resize", test_leg_state_and_resize);
	CU_add_test(s, "protobuf round trip", test_pb_round_trip);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned f = CU_get_number_of_failures();
	CU_cleanup_registry();
	return f ? 1 : 0;
}
