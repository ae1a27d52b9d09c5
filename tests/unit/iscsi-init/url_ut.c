/*
 * Unit tests of iscsi-init/url.c: libiscsi-style iSCSI URLs with CHAP
 * credentials, ports, IPv6 literals, LUNs and options; malformed URLs refused.
 */
#include <CUnit/Basic.h>
#include <errno.h>

#include "iscsi-init/ini.h"

static void test_full_url(void)
{
	struct ini_config c;
	uint64_t lun = 99;

	ini_config_default(&c);
	CU_ASSERT_EQUAL(ini_url_parse("iscsi://user%sec%ret@10.0.0.1:3261/iqn.2026-11.a:b/7"
				      "?digest=crc32c&target_user=t&target_password=tp",
				      &c, &lun),
			0);
	CU_ASSERT_STRING_EQUAL(c.chap.user, "user");
	CU_ASSERT_STRING_EQUAL(c.chap.secret, "sec%ret");
	CU_ASSERT_STRING_EQUAL(c.host, "10.0.0.1");
	CU_ASSERT_EQUAL(c.port, 3261);
	CU_ASSERT_STRING_EQUAL(c.target_name, "iqn.2026-11.a:b");
	CU_ASSERT_EQUAL(lun, 7);
	CU_ASSERT(c.header_digest && c.data_digest);
	CU_ASSERT_STRING_EQUAL(c.chap.mutual_user, "t");
	CU_ASSERT_STRING_EQUAL(c.chap.mutual_secret, "tp");
}

static void test_short_forms(void)
{
	struct ini_config c;
	uint64_t lun = 5;

	ini_config_default(&c);
	CU_ASSERT_EQUAL(ini_url_parse("iscsi://host", &c, &lun), 0);
	CU_ASSERT_STRING_EQUAL(c.host, "host");
	CU_ASSERT_EQUAL(c.port, 3260);
	CU_ASSERT_EQUAL(c.target_name[0], '\0');
	CU_ASSERT_EQUAL(lun, 0);
	CU_ASSERT_EQUAL(ini_url_parse("iscsi://[::1]:4000/iqn.x/0?header_digest=crc32c", &c, &lun),
			0);
	CU_ASSERT_STRING_EQUAL(c.host, "::1");
	CU_ASSERT_EQUAL(c.port, 4000);
	CU_ASSERT(c.header_digest);
	CU_ASSERT_FALSE(c.data_digest);
	CU_ASSERT_EQUAL(c.chap.user[0], '\0');
}

static void test_bad_urls(void)
{
	static const char *const bad[] = {
	    "http://h/iqn.x/0",	     "iscsi://",
	    "iscsi://h:0/iqn.x/0",   "iscsi://h:99999/i/0",
	    "iscsi://h/iqn.x/z",     "iscsi://h/iqn.x/",
	    "iscsi://h/i/0?bogus=1", "iscsi://h/i/0?digest=md5",
	};
	struct ini_config c;
	uint64_t lun;

	ini_config_default(&c);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(ini_url_parse(bad[i], &c, &lun), -EINVAL);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("ini-url", NULL, NULL);
	CU_add_test(s, "full URL", test_full_url);
	CU_add_test(s, "short forms", test_short_forms);
	CU_add_test(s, "bad URLs", test_bad_urls);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
