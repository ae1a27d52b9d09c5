/*
 * envelope_ut.c: the message envelope: frozen layout, and every way a buffer
 * is refused before any unpack (short, magic, version, unknown type,
 * oversized, length mismatch, CRC), plus pack/unpack round trips.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "util/util.h"

static uint8_t *make(uint16_t type, size_t plen, size_t *len)
{
	uint8_t *b = calloc(1, PROTO_ENV_LEN + plen + 1);
	memset(b + PROTO_ENV_LEN, 0x5a, plen);
	proto_env_put((struct proto_env *)(void *)b, type, b + PROTO_ENV_LEN, plen);
	*len = PROTO_ENV_LEN + plen;
	return b;
}

static void test_check(void)
{
	const uint8_t *p;
	uint16_t t;
	size_t pl, len;
	uint8_t *b = make(PROTO_LOAD_REPORT, 10, &len);

	CU_ASSERT_EQUAL(get_be32(b), PROTO_MAGIC); /* "VMEN" first, big-endian */
	CU_ASSERT_EQUAL(proto_env_check(b, len, &t, &p, &pl), 0);
	CU_ASSERT_EQUAL(t, PROTO_LOAD_REPORT);
	CU_ASSERT_EQUAL(pl, 10);
	CU_ASSERT_PTR_EQUAL(p, b + PROTO_ENV_LEN);
	CU_ASSERT_EQUAL(proto_env_check(b, PROTO_ENV_LEN - 1, &t, &p, &pl), -EBADMSG);
	CU_ASSERT_EQUAL(proto_env_check(NULL, 0, &t, &p, &pl), -EBADMSG);
	CU_ASSERT_EQUAL(proto_env_check(b, len - 1, &t, &p, &pl), -EBADMSG); /* truncated */
	CU_ASSERT_EQUAL(proto_env_check(b, len + 1, &t, &p, &pl), -EBADMSG); /* trailing byte */
	b[PROTO_ENV_LEN + 3] ^= 1;
	CU_ASSERT_EQUAL(proto_env_check(b, len, &t, &p, &pl), -EBADMSG); /* CRC */
	b[PROTO_ENV_LEN + 3] ^= 1;
	b[0] = 'X';
	CU_ASSERT_EQUAL(proto_env_check(b, len, &t, &p, &pl), -EBADMSG); /* magic */
	b[0] = 'V';
	b[5] = 9;
	CU_ASSERT_EQUAL(proto_env_check(b, len, &t, &p, &pl), -EBADMSG); /* version */
	free(b);
	b = make(4242, 10, &len);
	CU_ASSERT_EQUAL(proto_env_check(b, len, &t, &p, &pl), -ENOMSG);
	free(b);
	b = make(PROTO_LOAD_REPORT, proto_max_payload(PROTO_LOAD_REPORT) + 1, &len);
	CU_ASSERT_EQUAL(proto_env_check(b, len, &t, &p, &pl), -EMSGSIZE);
	free(b);
	CU_ASSERT_STRING_EQUAL(proto_type_name(PROTO_SYNC_MAP), "sync-map");
	CU_ASSERT_STRING_EQUAL(proto_type_name(7), "unknown");
}

static void test_pack_unpack(void)
{
	Vm__MapChange c = VM__MAP_CHANGE__INIT;
	uint8_t *buf;
	size_t len;
	int err = 0;

	c.op = VM__CHANGE_OP__VOLUME_CREATE;
	c.name = "vol1";
	c.size = 1 << 20;
	CU_ASSERT_EQUAL_FATAL(proto_pack(PROTO_MAP_CHANGE, &c.base, &buf, &len), 0);
	Vm__MapChange *u = (Vm__MapChange *)proto_unpack(
	    PROTO_MAP_CHANGE, &vm__map_change__descriptor, buf, len, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_STRING_EQUAL(u->name, "vol1");
	CU_ASSERT_EQUAL(u->size, 1 << 20);
	vm__map_change__free_unpacked(u, NULL);
	/* Asking for another type than the envelope says is refused. */
	CU_ASSERT_PTR_NULL(proto_unpack(PROTO_SYNC_MAP, &vm__sync_map__descriptor, buf, len, &err));
	CU_ASSERT_EQUAL(err, -ENOMSG);
	free(buf);
	/* Too big for its type: refused at pack time. */
	Vm__LoadReport lr = VM__LOAD_REPORT__INIT;
	char big[4096]; /* above the load report's limit */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	c.name = big;
	CU_ASSERT_EQUAL(proto_pack(PROTO_LOAD_REPORT, &c.base, &buf, &len), -EMSGSIZE);
	CU_ASSERT_EQUAL(proto_pack(PROTO_LOAD_REPORT, &lr.base, &buf, &len), 0);
	free(buf);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("envelope", NULL, NULL);
	CU_add_test(s, "envelope checks", test_check);
	CU_add_test(s, "pack and unpack", test_pack_unpack);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
