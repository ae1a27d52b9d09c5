/*
 * Unit tests of iscsi/text.c: parsing and building key=value text segments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "iscsi/iscsi.h"
#include "iscsi/iscsi_internal.h"

static void test_parse_basic(void)
{
	char buf[] = "InitiatorName=iqn.x\0SessionType=Normal\0Empty=\0Eq=a=b\0";
	struct iscsi_kv kv[8];
	size_t n = 99;

	CU_ASSERT_EQUAL(iscsi_text_parse(buf, sizeof(buf) - 1, kv, 8, &n), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_STRING_EQUAL(kv[0].key, "InitiatorName");
	CU_ASSERT_STRING_EQUAL(kv[0].val, "iqn.x");
	CU_ASSERT_STRING_EQUAL(kv[1].key, "SessionType");
	CU_ASSERT_STRING_EQUAL(kv[1].val, "Normal");
	CU_ASSERT_STRING_EQUAL(kv[2].key, "Empty");
	CU_ASSERT_STRING_EQUAL(kv[2].val, "");
	/* Only the first '=' separates: the value keeps the rest. */
	CU_ASSERT_STRING_EQUAL(kv[3].key, "Eq");
	CU_ASSERT_STRING_EQUAL(kv[3].val, "a=b");
}

static void test_parse_missing_final_nul(void)
{
	/* "A=1\0B=22" without its last NUL, and the spare byte the header requires. */
	char buf[9];
	struct iscsi_kv kv[4];
	size_t n = 0;

	memcpy(buf, "A=1\0B=22", 8);
	buf[8] = 'Z'; /* garbage that must not end up in the value */
	CU_ASSERT_EQUAL(iscsi_text_parse(buf, 8, kv, 4, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_STRING_EQUAL(kv[0].val, "1");
	CU_ASSERT_STRING_EQUAL(kv[1].key, "B");
	CU_ASSERT_STRING_EQUAL(kv[1].val, "22");
	CU_ASSERT_EQUAL(buf[8], '\0');
}

static void test_parse_errors(void)
{
	struct iscsi_kv kv[4];
	size_t n = 0;
	char nokv[] = "A=1\0NoEquals\0";
	char empty_key[] = "=value\0";

	CU_ASSERT_EQUAL(iscsi_text_parse(nokv, sizeof(nokv) - 1, kv, 4, &n), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_text_parse(empty_key, sizeof(empty_key) - 1, kv, 4, &n), -EINVAL);
}

static void test_parse_key_length(void)
{
	char buf[128];
	struct iscsi_kv kv[2];
	size_t n = 0;

	/* 63 characters is the longest key (RFC 7143 6.1). */
	memset(buf, 'K', ISCSI_KEY_MAX);
	memcpy(buf + ISCSI_KEY_MAX, "=v", 3);
	CU_ASSERT_EQUAL(iscsi_text_parse(buf, ISCSI_KEY_MAX + 3, kv, 2, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(strlen(kv[0].key), ISCSI_KEY_MAX);

	memset(buf, 'K', ISCSI_KEY_MAX + 1);
	memcpy(buf + ISCSI_KEY_MAX + 1, "=v", 3);
	CU_ASSERT_EQUAL(iscsi_text_parse(buf, ISCSI_KEY_MAX + 4, kv, 2, &n), -EINVAL);
}

static void test_parse_value_length(void)
{
	size_t size = 2 + ISCSI_VALUE_MAX + 2;
	char *buf = malloc(size + 1);
	struct iscsi_kv kv[2];
	size_t n = 0;

	CU_ASSERT_FATAL(buf != NULL);
	memcpy(buf, "V=", 2);
	memset(buf + 2, 'x', ISCSI_VALUE_MAX);
	buf[2 + ISCSI_VALUE_MAX] = '\0';
	CU_ASSERT_EQUAL(iscsi_text_parse(buf, 2 + ISCSI_VALUE_MAX + 1, kv, 2, &n), 0);
	CU_ASSERT_EQUAL(strlen(kv[0].val), ISCSI_VALUE_MAX);

	memcpy(buf, "V=", 2);
	memset(buf + 2, 'x', ISCSI_VALUE_MAX + 1);
	buf[2 + ISCSI_VALUE_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(iscsi_text_parse(buf, 2 + ISCSI_VALUE_MAX + 2, kv, 2, &n), -EINVAL);
	free(buf);
}

static void test_parse_too_many(void)
{
	char buf[] = "A=1\0B=2\0C=3\0";
	char buf2[] = "A=1\0B=2\0C=3\0";
	struct iscsi_kv kv[3];
	size_t n = 0;

	CU_ASSERT_EQUAL(iscsi_text_parse(buf, sizeof(buf) - 1, kv, 2, &n), -E2BIG);
	CU_ASSERT_EQUAL(iscsi_text_parse(buf2, sizeof(buf2) - 1, kv, 3, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
}

static void test_parse_empty_and_padding(void)
{
	char empty[1] = "";
	char padded[] = "A=1\0\0\0\0";
	struct iscsi_kv kv[2];
	size_t n = 99;

	CU_ASSERT_EQUAL(iscsi_text_parse(empty, 0, kv, 2, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	/* NUL padding after the last pair carries no pair. */
	CU_ASSERT_EQUAL(iscsi_text_parse(padded, sizeof(padded) - 1, kv, 2, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
}

static void test_kv_get(void)
{
	char buf[] = "A=1\0B=2\0A=3\0";
	struct iscsi_kv kv[4];
	size_t n = 0;

	CU_ASSERT_EQUAL_FATAL(iscsi_text_parse(buf, sizeof(buf) - 1, kv, 4, &n), 0);
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(kv, n, "A"), "1");
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(kv, n, "B"), "2");
	CU_ASSERT_PTR_NULL(iscsi_kv_get(kv, n, "C"));
	CU_ASSERT_PTR_NULL(iscsi_kv_get(kv, 0, "A"));
}

/* iSCSI names: what real initiators send passes; spaces, controls and overlong names do not. */
static void test_name_ok(void)
{
	char longname[ISCSI_NAME_MAX + 1];

	CU_ASSERT_TRUE(iscsi_name_ok("iqn.1991-05.com.microsoft:Host_01.corp", 38));
	CU_ASSERT_TRUE(iscsi_name_ok("eui.02004567A425678D", 20));
	CU_ASSERT_FALSE(iscsi_name_ok("", 0));
	CU_ASSERT_FALSE(iscsi_name_ok("iqn.a b", 7));
	CU_ASSERT_FALSE(iscsi_name_ok("iqn.a\nb", 7));
	CU_ASSERT_FALSE(iscsi_name_ok("iqn.a\x7f", 6));
	memset(longname, 'a', sizeof(longname));
	CU_ASSERT_TRUE(iscsi_name_ok(longname, ISCSI_NAME_MAX - 1)); /* 223 bytes */
	CU_ASSERT_FALSE(iscsi_name_ok(longname, ISCSI_NAME_MAX));
}

static void test_text_add(void)
{
	struct iscsi_text t;
	struct iscsi_kv kv[ISCSI_TEXT_MAX_KV];
	size_t n = 0;

	iscsi_text_init(&t);
	CU_ASSERT_EQUAL(iscsi_text_add(&t, "MaxBurstLength", "%u", 262144u), 0);
	CU_ASSERT_EQUAL(iscsi_text_add(&t, "HeaderDigest", "%s", "None"), 0);
	CU_ASSERT_EQUAL(t.len,
			strlen("MaxBurstLength=262144") + 1 + strlen("HeaderDigest=None") + 1);
	CU_ASSERT_EQUAL(memcmp(t.buf, "MaxBurstLength=262144\0HeaderDigest=None\0", t.len), 0);

	/* Grow well past the first allocation; the content must survive. */
	for (int i = 0; i < 200; i++)
		CU_ASSERT_EQUAL(iscsi_text_add(&t, "X-key", "value-%03d", i), 0);
	CU_ASSERT(t.cap >= t.len);
	char *copy = malloc(t.len + 1);
	CU_ASSERT_FATAL(copy != NULL);
	memcpy(copy, t.buf, t.len);
	CU_ASSERT_EQUAL(iscsi_text_parse(copy, t.len, kv, ISCSI_TEXT_MAX_KV, &n), 0);
	CU_ASSERT_EQUAL(n, 202);
	CU_ASSERT_STRING_EQUAL(kv[201].val, "value-199");
	free(copy);

	uint32_t cap = t.cap;
	iscsi_text_reset(&t);
	CU_ASSERT_EQUAL(t.len, 0);
	CU_ASSERT_EQUAL(t.cap, cap);

	/* An empty key and value still append "=" and the NUL. */
	CU_ASSERT_EQUAL(iscsi_text_add(&t, "", "%s", ""), 0);
	CU_ASSERT_EQUAL(t.len, 2);
	iscsi_text_free(&t);
	CU_ASSERT_PTR_NULL(t.buf);
	CU_ASSERT_EQUAL(t.len, 0);
}

static void test_number(void)
{
	uint64_t v = 1;

	CU_ASSERT_EQUAL(iscsi_text_number("0", &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(iscsi_text_number("262144", &v), 0);
	CU_ASSERT_EQUAL(v, 262144);
	CU_ASSERT_EQUAL(iscsi_text_number("0x1F", &v), 0);
	CU_ASSERT_EQUAL(v, 31);
	CU_ASSERT_EQUAL(iscsi_text_number("0Xff", &v), 0);
	CU_ASSERT_EQUAL(v, 255);
	CU_ASSERT_EQUAL(iscsi_text_number("18446744073709551615", &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);
	CU_ASSERT_EQUAL(iscsi_text_number("18446744073709551616", &v), -ERANGE);
	CU_ASSERT_EQUAL(iscsi_text_number("0x10000000000000000", &v), -ERANGE);
	/* RFC 7143 6.1: a decimal-constant does not start with 0. */
	CU_ASSERT_EQUAL(iscsi_text_number("0512", &v), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_text_number("", &v), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_text_number("0x", &v), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_text_number("12a", &v), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_text_number("-1", &v), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_text_number(" 1", &v), -EINVAL);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("iscsi_text", NULL, NULL);
	if (!s || !CU_add_test(s, "parse basic", test_parse_basic) ||
	    !CU_add_test(s, "parse missing final NUL", test_parse_missing_final_nul) ||
	    !CU_add_test(s, "parse errors", test_parse_errors) ||
	    !CU_add_test(s, "parse key length", test_parse_key_length) ||
	    !CU_add_test(s, "parse value length", test_parse_value_length) ||
	    !CU_add_test(s, "parse too many pairs", test_parse_too_many) ||
	    !CU_add_test(s, "parse empty and padding", test_parse_empty_and_padding) ||
	    !CU_add_test(s, "kv get", test_kv_get) || !CU_add_test(s, "name ok", test_name_ok) ||
	    !CU_add_test(s, "text add", test_text_add) || !CU_add_test(s, "number", test_number)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failed = CU_get_number_of_failures() ? 1 : 0;
	CU_cleanup_registry();
	return failed;
}
