/*
 * Unit tests of iscsi/chap.c: MD5, binary values, and full target <-> initiator
 * CHAP exchanges through the two step functions.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "iscsi/iscsi.h"

/* A parsed message: the buffer the pairs point into, and the pairs. */
struct msg {
	char buf[4096];
	struct iscsi_kv kv[16];
	size_t n;
};

static void msg_from_text(struct msg *m, const struct iscsi_text *t)
{
	m->n = 0;
	if (t->len == 0)
		return;
	CU_ASSERT_FATAL(t->len < sizeof(m->buf));
	memcpy(m->buf, t->buf, t->len);
	CU_ASSERT_FATAL(iscsi_text_parse(m->buf, t->len, m->kv, 16, &m->n) == 0);
}

/* Build a message from key, value pairs, NULL-terminated. */
static void msg_build(struct msg *m, ...)
{
	struct iscsi_text t;
	va_list ap;
	const char *key;

	iscsi_text_init(&t);
	va_start(ap, m);
	while ((key = va_arg(ap, const char *)) != NULL)
		CU_ASSERT_FATAL(iscsi_text_add(&t, key, "%s", va_arg(ap, const char *)) == 0);
	va_end(ap);
	msg_from_text(m, &t);
	iscsi_text_free(&t);
}

static const char *get(const struct msg *m, const char *key)
{
	return iscsi_kv_get(m->kv, m->n, key);
}

/* The target's credential store: one user. */
static struct iscsi_chap_cred target_cred;

static bool lookup(void *arg, const char *user, struct iscsi_chap_cred *cred)
{
	int *calls = arg;

	(*calls)++;
	if (strcmp(user, target_cred.user) != 0)
		return false;
	*cred = target_cred;
	return true;
}

static void set_cred(struct iscsi_chap_cred *c, const char *user, const char *secret,
		     const char *muser, const char *msecret)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->user, user);
	strcpy(c->secret, secret);
	strcpy(c->mutual_user, muser);
	strcpy(c->mutual_secret, msecret);
}

static void test_md5_vector(void)
{
	/* printf '\x2apassword123\x00\x01...\x0f' | md5sum */
	static const uint8_t expect1[16] = {0x9e, 0xe3, 0x99, 0xd4, 0xa5, 0x28, 0xca, 0xb9,
					    0x7a, 0x5e, 0xdb, 0x81, 0x84, 0x0e, 0x07, 0x51};
	/* printf '\x07abc\xde\xad\xbe\xef' | md5sum */
	static const uint8_t expect2[16] = {0xde, 0x1a, 0x3f, 0xc4, 0xef, 0x11, 0xc3, 0xa9,
					    0xf0, 0xd3, 0x33, 0x9e, 0x51, 0xaf, 0x91, 0xcf};
	static const uint8_t dead[4] = {0xde, 0xad, 0xbe, 0xef};
	uint8_t challenge[16];
	uint8_t out[16];

	for (int i = 0; i < 16; i++)
		challenge[i] = (uint8_t)i;
	iscsi_chap_md5(0x2a, "password123", 11, challenge, sizeof(challenge), out);
	CU_ASSERT_EQUAL(memcmp(out, expect1, 16), 0);
	iscsi_chap_md5(7, "abc", 3, dead, sizeof(dead), out);
	CU_ASSERT_EQUAL(memcmp(out, expect2, 16), 0);

	/* Inputs beyond any CHAP exchange take the streaming path: same result. */
	static uint8_t big[5000];
	uint8_t a[16], b[16];
	iscsi_chap_md5(1, "s", 1, big, sizeof(big), a);
	iscsi_chap_md5(1, "s", 1, big, sizeof(big) - 1, b);
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, 16), 0);
}

static void test_bin_hex(void)
{
	uint8_t out[8];
	size_t len = 0;

	CU_ASSERT_EQUAL(iscsi_bin_decode("0x00ffAb", out, sizeof(out), &len), 0);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_EQUAL(out[0], 0x00);
	CU_ASSERT_EQUAL(out[1], 0xff);
	CU_ASSERT_EQUAL(out[2], 0xab);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0X0a", out, sizeof(out), &len), 0);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_EQUAL(out[0], 0x0a);

	CU_ASSERT_EQUAL(iscsi_bin_decode("0xabc", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0xzz", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0x", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("abcd", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("1234", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0x0102", out, 1, &len), -E2BIG);
}

static void test_bin_base64(void)
{
	uint8_t out[32];
	size_t len = 0;

	CU_ASSERT_EQUAL(iscsi_bin_decode("0baGVsbG8gd29ybGQh", out, sizeof(out), &len), 0);
	CU_ASSERT_EQUAL(len, 12);
	CU_ASSERT_EQUAL(memcmp(out, "hello world!", 12), 0);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0b3q2+7w==", out, sizeof(out), &len), 0);
	CU_ASSERT_EQUAL(len, 4);
	CU_ASSERT_EQUAL(memcmp(out, "\xde\xad\xbe\xef", 4), 0);
	/* Padding may be left out. */
	CU_ASSERT_EQUAL(iscsi_bin_decode("0B3q2+7w", out, sizeof(out), &len), 0);
	CU_ASSERT_EQUAL(len, 4);

	CU_ASSERT_EQUAL(iscsi_bin_decode("0b3q2*7w==", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0b", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0bA", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0b=", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0b3q==7w", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0b3q2+7w=", out, sizeof(out), &len), -EINVAL);
	CU_ASSERT_EQUAL(iscsi_bin_decode("0baGVsbG8gd29ybGQh", out, 11, &len), -E2BIG);
}

static void test_bin_encode(void)
{
	static const uint8_t in[] = {0x00, 0xab, 0xff, 0x10};
	char buf[2 * sizeof(in) + 3];
	uint8_t back[4];
	size_t len = 0;

	iscsi_bin_encode_hex(in, sizeof(in), buf);
	CU_ASSERT_STRING_EQUAL(buf, "0x00abff10");
	CU_ASSERT_EQUAL(iscsi_bin_decode(buf, back, sizeof(back), &len), 0);
	CU_ASSERT_EQUAL(len, sizeof(in));
	CU_ASSERT_EQUAL(memcmp(back, in, sizeof(in)), 0);
}

/*
 * Run the exchange: the initiator opens, the target challenges, the
 * initiator answers. Returns the target's verdict on the answer; *\p ini_rc
 * gets the initiator's result of its answering step, \p last the target's
 * final message.
 */
static int run_exchange(const struct iscsi_chap_cred *ini_cred, struct iscsi_chap *ic,
			struct iscsi_chap *tc, int *ini_rc, struct msg *last)
{
	struct iscsi_text a, b;
	struct msg m;
	int calls = 0;
	int rc;

	iscsi_text_init(&a);
	iscsi_text_init(&b);
	memset(ic, 0, sizeof(*ic));
	memset(tc, 0, sizeof(*tc));

	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(ic, NULL, 0, ini_cred, &a), ISCSI_CHAP_CONTINUE);
	msg_from_text(&m, &a);
	CU_ASSERT_STRING_EQUAL(get(&m, "CHAP_A"), "5");

	CU_ASSERT_EQUAL(iscsi_chap_target_step(tc, m.kv, m.n, lookup, &calls, &b),
			ISCSI_CHAP_CONTINUE);
	CU_ASSERT_EQUAL(tc->state, ISCSI_CHAP_CHALLENGE);
	msg_from_text(&m, &b);
	CU_ASSERT_STRING_EQUAL(get(&m, "CHAP_A"), "5");
	CU_ASSERT_PTR_NOT_NULL(get(&m, "CHAP_I"));
	CU_ASSERT_EQUAL(strlen(get(&m, "CHAP_C")), 2 + 2 * ISCSI_CHAP_CHALLENGE_LEN);

	iscsi_text_reset(&a);
	*ini_rc = iscsi_chap_initiator_step(ic, m.kv, m.n, ini_cred, &a);
	msg_from_text(&m, &a);
	CU_ASSERT_STRING_EQUAL(get(&m, "CHAP_N"), ini_cred->user);

	iscsi_text_reset(&b);
	rc = iscsi_chap_target_step(tc, m.kv, m.n, lookup, &calls, &b);
	CU_ASSERT_EQUAL(calls, 1);
	msg_from_text(last, &b);
	iscsi_text_free(&a);
	iscsi_text_free(&b);
	return rc;
}

static void test_one_way(void)
{
	struct iscsi_chap_cred ic_cred;
	struct iscsi_chap ic, tc;
	struct msg last;
	int ini_rc;

	set_cred(&target_cred, "alice", "alice-secret-1", "", "");
	set_cred(&ic_cred, "alice", "alice-secret-1", "", "");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_CHAP_OK);
	CU_ASSERT_EQUAL(ini_rc, ISCSI_CHAP_OK);
	CU_ASSERT_EQUAL(tc.state, ISCSI_CHAP_DONE);
	CU_ASSERT_EQUAL(ic.state, ISCSI_CHAP_DONE);
	CU_ASSERT_EQUAL(last.n, 0);

	/* Short secrets (libiscsi tests use them) are accepted. */
	set_cred(&target_cred, "bob", "pw", "", "");
	set_cred(&ic_cred, "bob", "pw", "", "");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_CHAP_OK);
}

static void test_mutual(void)
{
	struct iscsi_chap_cred ic_cred;
	struct iscsi_chap ic, tc;
	struct msg last;
	struct iscsi_text t;
	int ini_rc;

	set_cred(&target_cred, "alice", "alice-secret-1", "target1", "target-secret-1");
	set_cred(&ic_cred, "alice", "alice-secret-1", "target1", "target-secret-1");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_CHAP_OK);
	CU_ASSERT_EQUAL(ini_rc, ISCSI_CHAP_CONTINUE);
	CU_ASSERT_STRING_EQUAL(get(&last, "CHAP_N"), "target1");
	CU_ASSERT_PTR_NOT_NULL(get(&last, "CHAP_R"));

	/* The initiator checks the target's answer. */
	iscsi_text_init(&t);
	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(&ic, last.kv, last.n, &ic_cred, &t),
			ISCSI_CHAP_OK);
	CU_ASSERT_EQUAL(ic.state, ISCSI_CHAP_DONE);
	CU_ASSERT_EQUAL(t.len, 0);

	/* A target that does not know the mutual secret is found out. */
	set_cred(&target_cred, "alice", "alice-secret-1", "target1", "wrong-secret-9");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_CHAP_OK);
	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(&ic, last.kv, last.n, &ic_cred, &t), -EACCES);
	CU_ASSERT_EQUAL(ic.state, ISCSI_CHAP_FAILED);

	/* Mutual asked, but the target has no identity of its own. */
	set_cred(&target_cred, "alice", "alice-secret-1", "", "");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_LS_AUTH_FAILED);
	CU_ASSERT_EQUAL(tc.state, ISCSI_CHAP_FAILED);

	/* One secret both ways is refused (RFC 7143 12.1.3). */
	set_cred(&target_cred, "alice", "alice-secret-1", "target1", "alice-secret-1");
	set_cred(&ic_cred, "alice", "alice-secret-1", "target1", "alice-secret-1");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_LS_AUTH_FAILED);
	iscsi_text_free(&t);
}

static void test_wrong_secret_and_user(void)
{
	struct iscsi_chap_cred ic_cred;
	struct iscsi_chap ic, tc;
	struct msg last;
	int ini_rc;

	set_cred(&target_cred, "alice", "alice-secret-1", "", "");
	set_cred(&ic_cred, "alice", "alice-secret-2", "", "");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_LS_AUTH_FAILED);
	CU_ASSERT_EQUAL(tc.state, ISCSI_CHAP_FAILED);

	set_cred(&ic_cred, "mallory", "alice-secret-1", "", "");
	CU_ASSERT_EQUAL(run_exchange(&ic_cred, &ic, &tc, &ini_rc, &last), ISCSI_LS_AUTH_FAILED);

	/* Once failed, it stays failed. */
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, last.kv, last.n, lookup, &ini_rc, NULL),
			ISCSI_LS_AUTH_FAILED);
}

/* Start a target exchange; returns its challenge message in \p m. */
static void target_start(struct iscsi_chap *tc, const char *algos, struct msg *m)
{
	struct iscsi_text t;
	struct msg req;
	int calls = 0;

	memset(tc, 0, sizeof(*tc));
	iscsi_text_init(&t);
	msg_build(&req, "CHAP_A", algos, NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_CHAP_CONTINUE);
	msg_from_text(m, &t);
	iscsi_text_free(&t);
}

static void test_reflection(void)
{
	struct iscsi_chap tc;
	struct msg ch, req;
	struct iscsi_text t;
	uint8_t rsp[16];
	char hex[40];
	int calls = 0;

	set_cred(&target_cred, "alice", "alice-secret-1", "target1", "target-secret-1");
	target_start(&tc, "7,6,5", &ch);
	/* A correct response, but our own challenge (and id) sent back to us. */
	iscsi_chap_md5(tc.id, "alice-secret-1", 14, tc.challenge, 16, rsp);
	iscsi_bin_encode_hex(rsp, 16, hex);
	msg_build(&req, "CHAP_N", "alice", "CHAP_R", hex, "CHAP_I", get(&ch, "CHAP_I"), "CHAP_C",
		  get(&ch, "CHAP_C"), NULL);
	iscsi_text_init(&t);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_AUTH_FAILED);
	CU_ASSERT_EQUAL(t.len, 0);
	iscsi_text_free(&t);
}

static void test_algorithms(void)
{
	struct iscsi_chap tc;
	struct msg req, m;
	struct iscsi_text t;
	int calls = 0;

	/* No MD5 in the list: CHAP_A=Reject and the login fails. */
	memset(&tc, 0, sizeof(tc));
	iscsi_text_init(&t);
	msg_build(&req, "CHAP_A", "7,6", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_AUTH_FAILED);
	msg_from_text(&m, &t);
	CU_ASSERT_STRING_EQUAL(get(&m, "CHAP_A"), "Reject");

	/* A list as Linux sends it, MD5 last. */
	target_start(&tc, "7,6,5", &m);
	CU_ASSERT_STRING_EQUAL(get(&m, "CHAP_A"), "5");

	/* Malformed list. */
	memset(&tc, 0, sizeof(tc));
	msg_build(&req, "CHAP_A", "5,,7", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_INITIATOR_ERROR);

	/* The request that agreed AuthMethod=CHAP carries no CHAP key yet. */
	memset(&tc, 0, sizeof(tc));
	msg_build(&req, "AuthMethod", "CHAP,None", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_CHAP_CONTINUE);
	CU_ASSERT_EQUAL(tc.state, ISCSI_CHAP_START);
	iscsi_text_free(&t);
}

static void test_bad_requests(void)
{
	struct iscsi_chap tc;
	struct msg ch, req;
	struct iscsi_text t;
	int calls = 0;

	set_cred(&target_cred, "alice", "alice-secret-1", "", "");
	iscsi_text_init(&t);

	target_start(&tc, "5", &ch);
	msg_build(&req, "CHAP_N", "alice", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_INITIATOR_ERROR);

	target_start(&tc, "5", &ch);
	msg_build(&req, "CHAP_N", "alice", "CHAP_R", "0xzz", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_INITIATOR_ERROR);
	CU_ASSERT_EQUAL(calls, 0); /* refused before any lookup */

	/* Mutual keys must come in pairs. */
	target_start(&tc, "5", &ch);
	msg_build(&req, "CHAP_N", "alice", "CHAP_R", "0x00", "CHAP_I", "1", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_INITIATOR_ERROR);

	/* A well-formed response of the wrong length is just wrong. */
	target_start(&tc, "5", &ch);
	msg_build(&req, "CHAP_N", "alice", "CHAP_R", "0x0011", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_AUTH_FAILED);

	/* Responses before the challenge. */
	memset(&tc, 0, sizeof(tc));
	msg_build(&req, "CHAP_N", "alice", "CHAP_R", "0x00", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_INITIATOR_ERROR);

	/* A key twice. */
	memset(&tc, 0, sizeof(tc));
	msg_build(&req, "CHAP_A", "5", "CHAP_A", "5", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_target_step(&tc, req.kv, req.n, lookup, &calls, &t),
			ISCSI_LS_INITIATOR_ERROR);
	iscsi_text_free(&t);
}

static void test_initiator_bad_target(void)
{
	struct iscsi_chap_cred cred;
	struct iscsi_chap ic;
	struct iscsi_text t;
	struct msg m;

	set_cred(&cred, "alice", "alice-secret-1", "", "");
	iscsi_text_init(&t);

	memset(&ic, 0, sizeof(ic));
	msg_build(&m, "CHAP_A", "Reject", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(&ic, m.kv, m.n, &cred, &t), -EPROTO);

	memset(&ic, 0, sizeof(ic));
	msg_build(&m, "CHAP_A", "5", "CHAP_I", "256", "CHAP_C", "0x0102", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(&ic, m.kv, m.n, &cred, &t), -EPROTO);

	/* Base64 challenges are accepted too. */
	memset(&ic, 0, sizeof(ic));
	msg_build(&m, "CHAP_A", "5", "CHAP_I", "9", "CHAP_C", "0b3q2+7w==", NULL);
	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(&ic, m.kv, m.n, &cred, &t), ISCSI_CHAP_OK);
	msg_from_text(&m, &t);
	uint8_t expect[16];
	char hex[40];
	iscsi_chap_md5(9, "alice-secret-1", 14, "\xde\xad\xbe\xef", 4, expect);
	iscsi_bin_encode_hex(expect, 16, hex);
	CU_ASSERT_STRING_EQUAL(get(&m, "CHAP_R"), hex);
	iscsi_text_free(&t);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
	    {"md5 vector", test_md5_vector},
	    {"binary hex", test_bin_hex},
	    {"binary base64", test_bin_base64},
	    {"binary encode", test_bin_encode},
	    {"one-way exchange", test_one_way},
	    {"mutual exchange", test_mutual},
	    {"wrong secret and user", test_wrong_secret_and_user},
	    {"reflected challenge", test_reflection},
	    {"algorithms", test_algorithms},
	    {"bad requests", test_bad_requests},
	    {"initiator vs bad target", test_initiator_bad_target},
	};
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("iscsi_chap", NULL, NULL);
	if (!s)
		return 1;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!CU_add_test(s, tests[i].name, tests[i].fn)) {
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failed = CU_get_number_of_failures() ? 1 : 0;
	CU_cleanup_registry();
	return failed;
}
