/*
 * Unit tests of iscsi/negot.c: the RFC 7143 key table, the responder, and an
 * initiator (originator) negotiating against a target (responder).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "iscsi/iscsi.h"

#define SEC  ISCSI_STAGE_SECURITY
#define OPER ISCSI_STAGE_OPERATIONAL
#define FFP  ISCSI_STAGE_FULL_FEATURE

static const char *const skip[] = {"SendTargets", NULL};

/* A parsed message: the buffer the pairs point into, and the pairs. */
struct msg {
	char buf[16384];
	struct iscsi_kv kv[64];
	size_t n;
};

static void msg_from_text(struct msg *m, const struct iscsi_text *t)
{
	m->n = 0;
	if (t->len == 0)
		return;
	CU_ASSERT_FATAL(t->len < sizeof(m->buf));
	memcpy(m->buf, t->buf, t->len);
	CU_ASSERT_FATAL(iscsi_text_parse(m->buf, t->len, m->kv, 64, &m->n) == 0);
}

/* Build a message from "key=value" strings, NULL-terminated. */
static void msg_build(struct msg *m, ...)
{
	struct iscsi_text t;
	va_list ap;
	const char *pair;

	iscsi_text_init(&t);
	va_start(ap, m);
	while ((pair = va_arg(ap, const char *)) != NULL) {
		const char *eq = strchr(pair, '=');
		char key[128];
		CU_ASSERT_FATAL(eq != NULL && (size_t)(eq - pair) < sizeof(key));
		memcpy(key, pair, (size_t)(eq - pair));
		key[eq - pair] = '\0';
		CU_ASSERT_FATAL(iscsi_text_add(&t, key, "%s", eq + 1) == 0);
	}
	va_end(ap);
	msg_from_text(m, &t);
	iscsi_text_free(&t);
}

/* Answers of the last respond call. */
static struct iscsi_text out;
static struct msg ans;

#define RESPOND(n, stage, ...) respond((n), (stage), __VA_ARGS__, (const char *)NULL)

static int respond(struct iscsi_negot *n, int stage, ...)
{
	struct msg req;
	struct iscsi_text t;
	va_list ap;
	const char *pair;
	int rc;

	iscsi_text_init(&t);
	va_start(ap, stage);
	while ((pair = va_arg(ap, const char *)) != NULL) {
		const char *eq = strchr(pair, '=');
		char key[128];
		CU_ASSERT_FATAL(eq != NULL && (size_t)(eq - pair) < sizeof(key));
		memcpy(key, pair, (size_t)(eq - pair));
		key[eq - pair] = '\0';
		CU_ASSERT_FATAL(iscsi_text_add(&t, key, "%s", eq + 1) == 0);
	}
	va_end(ap);
	msg_from_text(&req, &t);
	iscsi_text_free(&t);

	iscsi_text_reset(&out);
	rc = iscsi_negot_respond(n, stage, req.kv, req.n, skip, &out);
	msg_from_text(&ans, &out);
	return rc;
}

/* The answer to \p key, or NULL when none was given. */
static const char *answer(const char *key)
{
	return iscsi_kv_get(ans.kv, ans.n, key);
}

static bool answer_is(const char *key, const char *val)
{
	const char *a = answer(key);
	return a && strcmp(a, val) == 0;
}

/* A target like iscsi-tgt configures it. */
static void target_policy(struct iscsi_negot_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->allow_digest_none = true;
	p->allow_digest_crc32c = true;
	p->auth_none = true;
	iscsi_params_default(&p->limits);
	p->limits.max_recv_dsl = 65536;
	p->limits.max_burst = 131072;
	p->limits.first_burst = 65536;
	p->limits.default_time2retain = 0;
}

static void target_init(struct iscsi_negot *n)
{
	struct iscsi_negot_policy p;

	target_policy(&p);
	iscsi_negot_init(n, ISCSI_ROLE_TARGET, &p);
}

static void test_defaults(void)
{
	struct iscsi_params p;

	memset(&p, 0xa5, sizeof(p));
	iscsi_params_default(&p);
	CU_ASSERT_EQUAL(p.session_type, ISCSI_SESSION_NORMAL);
	CU_ASSERT_EQUAL(p.auth_method, ISCSI_AUTH_NONE);
	CU_ASSERT_FALSE(p.header_digest);
	CU_ASSERT_FALSE(p.data_digest);
	CU_ASSERT_EQUAL(p.max_connections, 1);
	CU_ASSERT_TRUE(p.initial_r2t);
	CU_ASSERT_TRUE(p.immediate_data);
	CU_ASSERT_EQUAL(p.max_recv_dsl, 8192);
	CU_ASSERT_EQUAL(p.peer_max_recv_dsl, 8192);
	CU_ASSERT_EQUAL(p.max_burst, 262144);
	CU_ASSERT_EQUAL(p.first_burst, 65536);
	CU_ASSERT_EQUAL(p.default_time2wait, 2);
	CU_ASSERT_EQUAL(p.default_time2retain, 20);
	CU_ASSERT_EQUAL(p.max_outstanding_r2t, 1);
	CU_ASSERT_TRUE(p.data_pdu_in_order);
	CU_ASSERT_TRUE(p.data_seq_in_order);
	CU_ASSERT_EQUAL(p.error_recovery_level, 0);
	CU_ASSERT_EQUAL(p.initiator_name[0], '\0');
}

static void test_list_pick(void)
{
	struct iscsi_negot n;
	struct iscsi_negot_policy p;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "HeaderDigest=CRC32C,None", "DataDigest=Foo,None"), 0);
	CU_ASSERT(answer_is("HeaderDigest", "CRC32C"));
	CU_ASSERT(answer_is("DataDigest", "None"));
	CU_ASSERT_TRUE(n.result.header_digest);
	CU_ASSERT_FALSE(n.result.data_digest);

	/* A target that refuses digests picks None from the same offer. */
	target_policy(&p);
	p.allow_digest_crc32c = false;
	iscsi_negot_init(&n, ISCSI_ROLE_TARGET, &p);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "HeaderDigest=CRC32C,None", "DataDigest=CRC32C"), 0);
	CU_ASSERT(answer_is("HeaderDigest", "None"));
	CU_ASSERT(answer_is("DataDigest", "Reject"));
	CU_ASSERT_FALSE(n.result.header_digest);
	CU_ASSERT_FALSE(n.result.data_digest);

	/* An empty list element is malformed. */
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "HeaderDigest=CRC32C,,None"), 0);
	CU_ASSERT(answer_is("HeaderDigest", "Reject"));
	CU_ASSERT_FALSE(n.result.header_digest);
}

static void test_numerical(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxBurstLength=1048576", "MaxOutstandingR2T=8",
				"DefaultTime2Wait=0", "DefaultTime2Retain=20",
				"ErrorRecoveryLevel=2", "MaxConnections=4"),
			0);
	/* Minimum: our limit wins when lower. */
	CU_ASSERT(answer_is("MaxBurstLength", "131072"));
	CU_ASSERT_EQUAL(n.result.max_burst, 131072);
	CU_ASSERT(answer_is("MaxOutstandingR2T", "1"));
	CU_ASSERT(answer_is("DefaultTime2Retain", "0"));
	CU_ASSERT(answer_is("ErrorRecoveryLevel", "0"));
	CU_ASSERT(answer_is("MaxConnections", "1"));
	/* Maximum: our 2 beats the offered 0. */
	CU_ASSERT(answer_is("DefaultTime2Wait", "2"));
	CU_ASSERT_EQUAL(n.result.default_time2wait, 2);

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxBurstLength=4096", "DefaultTime2Wait=10"), 0);
	CU_ASSERT(answer_is("MaxBurstLength", "4096"));
	CU_ASSERT_EQUAL(n.result.max_burst, 4096);
	CU_ASSERT(answer_is("DefaultTime2Wait", "10"));
	CU_ASSERT_EQUAL(n.result.default_time2wait, 10);

	/* Hex constants are numerical values too (RFC 7143 6.1). */
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxBurstLength=0x1000"), 0);
	CU_ASSERT(answer_is("MaxBurstLength", "4096"));
}

static void test_boolean(void)
{
	struct iscsi_negot n;
	struct iscsi_negot_policy p;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "InitialR2T=No", "ImmediateData=No", "DataPDUInOrder=No",
				"DataSequenceInOrder=Yes"),
			0);
	/* OR with our Yes stays Yes; AND with the initiator's No is No. */
	CU_ASSERT(answer_is("InitialR2T", "Yes"));
	CU_ASSERT(answer_is("ImmediateData", "No"));
	CU_ASSERT(answer_is("DataPDUInOrder", "Yes"));
	CU_ASSERT(answer_is("DataSequenceInOrder", "Yes"));
	CU_ASSERT_TRUE(n.result.initial_r2t);
	CU_ASSERT_FALSE(n.result.immediate_data);

	target_policy(&p);
	p.limits.initial_r2t = false;
	p.limits.immediate_data = false;
	iscsi_negot_init(&n, ISCSI_ROLE_TARGET, &p);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "InitialR2T=No", "ImmediateData=Yes"), 0);
	CU_ASSERT(answer_is("InitialR2T", "No"));
	CU_ASSERT(answer_is("ImmediateData", "No"));
	CU_ASSERT_FALSE(n.result.initial_r2t);
	CU_ASSERT_FALSE(n.result.immediate_data);
}

static void test_reject(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxBurstLength=511", "MaxRecvDataSegmentLength=16777216",
				"ErrorRecoveryLevel=3", "ImmediateData=yes",
				"MaxOutstandingR2T=0512", "DefaultTime2Wait=12a"),
			0);
	CU_ASSERT(answer_is("MaxBurstLength", "Reject"));
	CU_ASSERT(answer_is("MaxRecvDataSegmentLength", "Reject"));
	CU_ASSERT(answer_is("ErrorRecoveryLevel", "Reject"));
	CU_ASSERT(answer_is("ImmediateData", "Reject"));
	CU_ASSERT(answer_is("MaxOutstandingR2T", "Reject"));
	CU_ASSERT(answer_is("DefaultTime2Wait", "Reject"));
	/* A rejected key keeps its default. */
	CU_ASSERT_EQUAL(n.result.max_burst, 262144);
	CU_ASSERT_EQUAL(n.result.peer_max_recv_dsl, 8192);
	CU_ASSERT_TRUE(n.result.immediate_data);
}

static void test_not_understood(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(
	    RESPOND(&n, OPER, "FooBar=1", "X-com.example.thing=on", "X#NodeArchitecture=linux"), 0);
	CU_ASSERT(answer_is("FooBar", "NotUnderstood"));
	CU_ASSERT(answer_is("X-com.example.thing", "NotUnderstood"));
	CU_ASSERT(answer_is("X#NodeArchitecture", "NotUnderstood"));
	CU_ASSERT_EQUAL(ans.n, 3);
}

static void test_duplicate(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxBurstLength=4096", "MaxBurstLength=8192"),
			ISCSI_LS_INITIATOR_ERROR);
	/* Nothing is answered from a refused request. */
	CU_ASSERT_EQUAL(ans.n, 0);

	/* Across requests of one login as well (RFC 7143 6.2). */
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "InitiatorName=iqn.a", "AuthMethod=None"), 0);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "ImmediateData=Yes"), 0);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "ImmediateData=No"), ISCSI_LS_INITIATOR_ERROR);
	/* The same declaration again is tolerated (libiscsi repeats it). */
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "InitiatorName=iqn.a", "SessionType=Normal"), 0);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "InitiatorName=iqn.b"), ISCSI_LS_INITIATOR_ERROR);
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "SessionType=Discovery"), 0);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "SessionType=Normal"), ISCSI_LS_INITIATOR_ERROR);
}

static void test_skip_and_chap(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, FFP, "SendTargets=All"), 0);
	CU_ASSERT_EQUAL(ans.n, 0);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "CHAP_A=5", "CHAP_N=user"), 0);
	CU_ASSERT_EQUAL(ans.n, 0);

	/* SendTargets is a full-feature key: not in a login (RFC 7143 13.3). */
	struct iscsi_text t;
	struct msg m;
	iscsi_text_init(&t);
	iscsi_text_add(&t, "SendTargets", "All");
	msg_from_text(&m, &t);
	iscsi_text_reset(&out);
	CU_ASSERT_EQUAL(iscsi_negot_respond(&n, OPER, m.kv, m.n, NULL, &out),
			ISCSI_LS_INITIATOR_ERROR);
	iscsi_text_free(&t);
}

static void test_first_burst(void)
{
	struct iscsi_negot n;
	struct iscsi_negot_policy p;

	target_policy(&p);
	p.limits.first_burst = 262144;
	iscsi_negot_init(&n, ISCSI_ROLE_TARGET, &p);
	/* FirstBurstLength comes first, but must respect MaxBurstLength (13.14). */
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "FirstBurstLength=200000", "MaxBurstLength=100000"), 0);
	CU_ASSERT(answer_is("MaxBurstLength", "100000"));
	CU_ASSERT(answer_is("FirstBurstLength", "100000"));
	CU_ASSERT_EQUAL(n.result.first_burst, 100000);
	CU_ASSERT(n.result.first_burst <= n.result.max_burst);

	/* Irrelevant when InitialR2T=Yes and ImmediateData=No (13.14). */
	target_init(&n);
	CU_ASSERT_EQUAL(
	    RESPOND(&n, OPER, "FirstBurstLength=4096", "InitialR2T=Yes", "ImmediateData=No"), 0);
	CU_ASSERT(answer_is("FirstBurstLength", "Irrelevant"));
	CU_ASSERT_EQUAL(n.result.first_burst, 65536);

	/* Relevant when immediate data stays on. */
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "FirstBurstLength=4096", "ImmediateData=Yes"), 0);
	CU_ASSERT(answer_is("FirstBurstLength", "4096"));
	CU_ASSERT_EQUAL(n.result.first_burst, 4096);
}

static void test_discovery_irrelevant(void)
{
	struct iscsi_negot n;

	target_init(&n);
	/* SessionType after the keys it governs, in the same request. */
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxBurstLength=4096", "ImmediateData=No",
				"DefaultTime2Wait=5", "HeaderDigest=None", "ErrorRecoveryLevel=0",
				"InitiatorName=iqn.a", "SessionType=Discovery"),
			0);
	CU_ASSERT_EQUAL(n.result.session_type, ISCSI_SESSION_DISCOVERY);
	CU_ASSERT(answer_is("MaxBurstLength", "Irrelevant"));
	CU_ASSERT(answer_is("ImmediateData", "Irrelevant"));
	CU_ASSERT_EQUAL(n.result.max_burst, 262144);
	CU_ASSERT_TRUE(n.result.immediate_data);
	/* Section 13 does not call these irrelevant for discovery. */
	CU_ASSERT(answer_is("DefaultTime2Wait", "5"));
	CU_ASSERT(answer_is("HeaderDigest", "None"));
	CU_ASSERT(answer_is("ErrorRecoveryLevel", "0"));
	CU_ASSERT_PTR_NULL(answer("SessionType"));
}

static void test_declaratives(void)
{
	struct iscsi_negot n;
	char longname[ISCSI_NAME_MAX + 32];

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "InitiatorName=iqn.2024-01.org.example:host",
				"InitiatorAlias=host one", "TargetName=iqn.2024-01.org.example:vol",
				"SessionType=Normal", "AuthMethod=None"),
			0);
	CU_ASSERT_STRING_EQUAL(n.result.initiator_name, "iqn.2024-01.org.example:host");
	CU_ASSERT_STRING_EQUAL(n.result.initiator_alias, "host one");
	CU_ASSERT_STRING_EQUAL(n.result.target_name, "iqn.2024-01.org.example:vol");
	CU_ASSERT(answer_is("AuthMethod", "None"));
	/* Declaratives are not answered. */
	CU_ASSERT_EQUAL(ans.n, 1);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "MaxRecvDataSegmentLength=262144"), 0);
	CU_ASSERT_EQUAL(n.result.peer_max_recv_dsl, 262144);
	CU_ASSERT_EQUAL(ans.n, 0);

	/* An iSCSI name is at most 223 bytes (RFC 7143 4.2.7.1). */
	target_init(&n);
	memcpy(longname, "InitiatorName=", 14);
	memset(longname + 14, 'n', ISCSI_NAME_MAX);
	longname[14 + ISCSI_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, longname), 0);
	CU_ASSERT(answer_is("InitiatorName", "Reject"));
	CU_ASSERT_EQUAL(n.result.initiator_name[0], '\0');

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "SessionType=Bogus"), ISCSI_LS_SESSION_TYPE_UNSUPP);

	/* Only a target sends TargetAlias (RFC 7143 13.6). */
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "TargetAlias=mine"), 0);
	CU_ASSERT(answer_is("TargetAlias", "Reject"));
	CU_ASSERT_EQUAL(n.result.target_alias[0], '\0');
}

static void test_stages(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "InitiatorName=iqn.a", "HeaderDigest=None"),
			ISCSI_LS_INITIATOR_ERROR);
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "AuthMethod=None"), ISCSI_LS_INITIATOR_ERROR);
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, 2, "InitiatorName=iqn.a"), ISCSI_LS_INITIATOR_ERROR);

	/* A text negotiation in full feature phase: login-only keys are refused. */
	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, FFP, "MaxRecvDataSegmentLength=16384", "MaxBurstLength=4096"),
			0);
	CU_ASSERT_EQUAL(n.result.peer_max_recv_dsl, 16384);
	CU_ASSERT(answer_is("MaxBurstLength", "Reject"));
	CU_ASSERT_EQUAL(n.result.max_burst, 262144);
}

static void test_auth_method(void)
{
	struct iscsi_negot n;
	struct iscsi_negot_policy p;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "AuthMethod=CHAP,None"), 0);
	CU_ASSERT(answer_is("AuthMethod", "None"));
	CU_ASSERT_EQUAL(n.result.auth_method, ISCSI_AUTH_NONE);

	target_policy(&p);
	p.auth_none = false;
	p.auth_chap = true;
	iscsi_negot_init(&n, ISCSI_ROLE_TARGET, &p);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "AuthMethod=KRB5,CHAP,None"), 0);
	CU_ASSERT(answer_is("AuthMethod", "CHAP"));
	CU_ASSERT_EQUAL(n.result.auth_method, ISCSI_AUTH_CHAP);

	/* CHAP required, only None offered: Reject and an authentication failure. */
	iscsi_negot_init(&n, ISCSI_ROLE_TARGET, &p);
	CU_ASSERT_EQUAL(RESPOND(&n, SEC, "AuthMethod=None"), ISCSI_LS_AUTH_FAILED);
	CU_ASSERT(answer_is("AuthMethod", "Reject"));
}

static void test_obsolete_and_newer_keys(void)
{
	struct iscsi_negot n;

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "OFMarker=Yes", "IFMarker=No", "IFMarkInt=2048~8192",
				"OFMarkInt=2048", "TaskReporting=ResponseFence,RFC3720",
				"iSCSIProtocolLevel=2"),
			0);
	CU_ASSERT(answer_is("OFMarker", "No"));
	CU_ASSERT(answer_is("IFMarker", "No"));
	CU_ASSERT(answer_is("IFMarkInt", "Reject"));
	CU_ASSERT(answer_is("OFMarkInt", "Reject"));
	CU_ASSERT(answer_is("TaskReporting", "RFC3720"));
	CU_ASSERT(answer_is("iSCSIProtocolLevel", "1"));

	target_init(&n);
	CU_ASSERT_EQUAL(RESPOND(&n, OPER, "TaskReporting=FastAbort", "iSCSIProtocolLevel=0"), 0);
	CU_ASSERT(answer_is("TaskReporting", "Reject"));
	CU_ASSERT(answer_is("iSCSIProtocolLevel", "0"));
}

static void test_declare_once(void)
{
	struct iscsi_negot n;
	struct iscsi_text t;
	struct msg m;

	target_init(&n);
	iscsi_text_init(&t);
	CU_ASSERT_EQUAL(iscsi_negot_declare(&n, &t), 0);
	CU_ASSERT_EQUAL(iscsi_negot_declare(&n, &t), 0);
	msg_from_text(&m, &t);
	CU_ASSERT_EQUAL(m.n, 1);
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(m.kv, m.n, "MaxRecvDataSegmentLength"), "65536");
	CU_ASSERT_EQUAL(n.result.max_recv_dsl, 65536);
	iscsi_text_free(&t);
}

/* ---- initiator against target ---- */

static void initiator_policy(struct iscsi_negot_policy *p, enum iscsi_session_type type)
{
	memset(p, 0, sizeof(*p));
	p->allow_digest_none = true;
	p->allow_digest_crc32c = true;
	p->prefer_digest_crc32c = true;
	p->auth_none = true;
	iscsi_params_default(&p->limits);
	p->limits.session_type = type;
	p->limits.max_recv_dsl = 262144;
	p->limits.max_burst = 1048576;
	p->limits.first_burst = 262144;
	p->limits.immediate_data = true;
	p->limits.initial_r2t = false;
	p->limits.max_outstanding_r2t = 4;
	p->limits.default_time2wait = 0;
	p->limits.default_time2retain = 0;
	strcpy(p->limits.initiator_name, "iqn.2024-01.org.example:ini");
	strcpy(p->limits.target_name, "iqn.2024-01.org.example:vol");
}

/* One login stage: initiator offers, target answers, initiator accepts. */
static void exchange(struct iscsi_negot *ini, struct iscsi_negot *tgt, int stage, bool last)
{
	struct iscsi_text req, rsp, back;
	struct msg m;

	iscsi_text_init(&req);
	iscsi_text_init(&rsp);
	iscsi_text_init(&back);
	CU_ASSERT_EQUAL(iscsi_negot_offer(ini, stage, &req), 0);
	CU_ASSERT_TRUE(iscsi_negot_pending(ini));
	msg_from_text(&m, &req);
	CU_ASSERT_EQUAL(iscsi_negot_respond(tgt, stage, m.kv, m.n, skip, &rsp), 0);
	if (last)
		CU_ASSERT_EQUAL(iscsi_negot_declare(tgt, &rsp), 0);
	msg_from_text(&m, &rsp);
	CU_ASSERT_EQUAL(iscsi_negot_accept(ini, stage, m.kv, m.n, &back), 0);
	CU_ASSERT_FALSE(iscsi_negot_pending(ini));
	CU_ASSERT_EQUAL(back.len, 0); /* the target brought up nothing of its own */
	iscsi_text_free(&req);
	iscsi_text_free(&rsp);
	iscsi_text_free(&back);
}

static void test_round_trip(void)
{
	struct iscsi_negot ini, tgt;
	struct iscsi_negot_policy p;

	initiator_policy(&p, ISCSI_SESSION_NORMAL);
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	target_init(&tgt);

	exchange(&ini, &tgt, SEC, false);
	CU_ASSERT_STRING_EQUAL(tgt.result.initiator_name, "iqn.2024-01.org.example:ini");
	CU_ASSERT_STRING_EQUAL(tgt.result.target_name, "iqn.2024-01.org.example:vol");
	CU_ASSERT_EQUAL(ini.result.auth_method, ISCSI_AUTH_NONE);
	exchange(&ini, &tgt, OPER, true);

	/* Both sides agree on every negotiated value. */
	const struct iscsi_params *a = &ini.result, *b = &tgt.result;
	CU_ASSERT_TRUE(a->header_digest);
	CU_ASSERT_EQUAL(a->header_digest, b->header_digest);
	CU_ASSERT_EQUAL(a->data_digest, b->data_digest);
	CU_ASSERT_EQUAL(a->max_burst, 131072);
	CU_ASSERT_EQUAL(a->max_burst, b->max_burst);
	CU_ASSERT_EQUAL(a->first_burst, 65536);
	CU_ASSERT_EQUAL(a->first_burst, b->first_burst);
	CU_ASSERT_TRUE(a->initial_r2t);
	CU_ASSERT_EQUAL(a->initial_r2t, b->initial_r2t);
	CU_ASSERT_EQUAL(a->immediate_data, b->immediate_data);
	CU_ASSERT_EQUAL(a->max_outstanding_r2t, 1);
	CU_ASSERT_EQUAL(a->max_outstanding_r2t, b->max_outstanding_r2t);
	CU_ASSERT_EQUAL(a->default_time2wait, 2);
	CU_ASSERT_EQUAL(a->default_time2wait, b->default_time2wait);
	CU_ASSERT_EQUAL(a->default_time2retain, b->default_time2retain);
	CU_ASSERT_EQUAL(a->error_recovery_level, b->error_recovery_level);
	CU_ASSERT_EQUAL(a->max_connections, b->max_connections);
	/* Each side knows what the other accepts. */
	CU_ASSERT_EQUAL(a->peer_max_recv_dsl, 65536);
	CU_ASSERT_EQUAL(b->peer_max_recv_dsl, 262144);
	CU_ASSERT_EQUAL(a->max_recv_dsl, 262144);
	CU_ASSERT_EQUAL(b->max_recv_dsl, 65536);

	/* Nothing is offered twice. */
	struct iscsi_text again;
	iscsi_text_init(&again);
	CU_ASSERT_EQUAL(iscsi_negot_offer(&ini, OPER, &again), 0);
	CU_ASSERT_EQUAL(again.len, 0);
	iscsi_text_free(&again);
}

static void test_round_trip_discovery(void)
{
	struct iscsi_negot ini, tgt;
	struct iscsi_negot_policy p;
	struct iscsi_text req;
	struct msg m;

	initiator_policy(&p, ISCSI_SESSION_DISCOVERY);
	p.prefer_digest_crc32c = false;
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	target_init(&tgt);

	iscsi_text_init(&req);
	CU_ASSERT_EQUAL(iscsi_negot_offer(&ini, OPER, &req), 0);
	msg_from_text(&m, &req);
	/* A discovery session names no target and offers no data-path keys. */
	CU_ASSERT_PTR_NULL(iscsi_kv_get(m.kv, m.n, "TargetName"));
	CU_ASSERT_PTR_NULL(iscsi_kv_get(m.kv, m.n, "MaxBurstLength"));
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(m.kv, m.n, "SessionType"), "Discovery");
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(m.kv, m.n, "HeaderDigest"), "None,CRC32C");
	iscsi_text_free(&req);

	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	exchange(&ini, &tgt, OPER, true);
	CU_ASSERT_EQUAL(tgt.result.session_type, ISCSI_SESSION_DISCOVERY);
	CU_ASSERT_FALSE(ini.result.header_digest);
	CU_ASSERT_EQUAL(ini.result.peer_max_recv_dsl, 65536);
}

/* Offer the operational keys and feed back \p pairs as the target's answer. */
static int accept_answer(struct iscsi_negot *ini, struct iscsi_text *back, struct msg *m)
{
	struct iscsi_text req;

	iscsi_text_init(&req);
	CU_ASSERT_EQUAL(iscsi_negot_offer(ini, OPER, &req), 0);
	iscsi_text_free(&req);
	iscsi_text_reset(back);
	return iscsi_negot_accept(ini, OPER, m->kv, m->n, back);
}

static void test_accept_illegal(void)
{
	struct iscsi_negot ini;
	struct iscsi_negot_policy p;
	struct iscsi_text back;
	struct msg m;

	iscsi_text_init(&back);
	initiator_policy(&p, ISCSI_SESSION_NORMAL);
	p.limits.max_burst = 65536;
	p.limits.immediate_data = false;
	p.allow_digest_crc32c = false;

	/* Minimum: an answer above our offer is not a legal outcome. */
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "MaxBurstLength=131072", NULL);
	CU_ASSERT_EQUAL(accept_answer(&ini, &back, &m), -EPROTO);

	/* A digest we did not offer. */
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "HeaderDigest=CRC32C", NULL);
	CU_ASSERT_EQUAL(accept_answer(&ini, &back, &m), -EPROTO);

	/* AND with our No cannot be Yes. */
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "ImmediateData=Yes", NULL);
	CU_ASSERT_EQUAL(accept_answer(&ini, &back, &m), -EPROTO);

	/* Maximum: below our offer is illegal. */
	p.limits.default_time2wait = 5;
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "DefaultTime2Wait=2", NULL);
	CU_ASSERT_EQUAL(accept_answer(&ini, &back, &m), -EPROTO);

	/* The same answer twice. */
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "MaxBurstLength=4096", "MaxBurstLength=4096", NULL);
	CU_ASSERT_EQUAL(accept_answer(&ini, &back, &m), -EPROTO);

	/* Reject / NotUnderstood keep the default; legal answers are taken. */
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "MaxBurstLength=Reject", "MaxOutstandingR2T=NotUnderstood",
		  "FirstBurstLength=8192", "ImmediateData=No", NULL);
	CU_ASSERT_EQUAL(accept_answer(&ini, &back, &m), 0);
	CU_ASSERT_EQUAL(ini.result.max_burst, 262144);
	CU_ASSERT_EQUAL(ini.result.max_outstanding_r2t, 1);
	CU_ASSERT_EQUAL(ini.result.first_burst, 8192);
	CU_ASSERT_FALSE(ini.result.immediate_data);
	CU_ASSERT_TRUE(iscsi_negot_pending(&ini)); /* other offers still unanswered */
	iscsi_text_free(&back);
}

static void test_accept_unprompted(void)
{
	struct iscsi_negot ini;
	struct iscsi_negot_policy p;
	struct iscsi_text back;
	struct msg m;

	iscsi_text_init(&back);
	initiator_policy(&p, ISCSI_SESSION_NORMAL);
	iscsi_negot_init(&ini, ISCSI_ROLE_INITIATOR, &p);
	msg_build(&m, "TargetAlias=vol one", "TargetPortalGroupTag=7", "X-vendor.key=1",
		  "MaxRecvDataSegmentLength=32768", NULL);
	CU_ASSERT_EQUAL(iscsi_negot_accept(&ini, SEC, m.kv, m.n, &back), 0);
	CU_ASSERT_STRING_EQUAL(ini.result.target_alias, "vol one");
	CU_ASSERT_EQUAL(ini.result.target_portal_group_tag, 7);
	CU_ASSERT_EQUAL(ini.result.peer_max_recv_dsl, 32768);
	msg_from_text(&m, &back);
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(m.kv, m.n, "X-vendor.key"), "NotUnderstood");
	CU_ASSERT_EQUAL(m.n, 1);

	/* A target offering a key first gets an answer from our limits. */
	iscsi_text_reset(&back);
	msg_build(&m, "MaxBurstLength=4096", "InitiatorName=iqn.x", NULL);
	CU_ASSERT_EQUAL(iscsi_negot_accept(&ini, OPER, m.kv, m.n, &back), 0);
	msg_from_text(&m, &back);
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(m.kv, m.n, "MaxBurstLength"), "4096");
	CU_ASSERT_STRING_EQUAL(iscsi_kv_get(m.kv, m.n, "InitiatorName"), "Reject");
	CU_ASSERT_EQUAL(ini.result.max_burst, 4096);
	/* ... and is not offered again by us. */
	iscsi_text_reset(&back);
	CU_ASSERT_EQUAL(iscsi_negot_offer(&ini, OPER, &back), 0);
	msg_from_text(&m, &back);
	CU_ASSERT_PTR_NULL(iscsi_kv_get(m.kv, m.n, "MaxBurstLength"));
	CU_ASSERT_PTR_NOT_NULL(iscsi_kv_get(m.kv, m.n, "FirstBurstLength"));
	iscsi_text_free(&back);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
	    {"defaults", test_defaults},
	    {"list pick", test_list_pick},
	    {"numerical min/max", test_numerical},
	    {"boolean and/or", test_boolean},
	    {"reject out of range", test_reject},
	    {"not understood", test_not_understood},
	    {"duplicate key", test_duplicate},
	    {"skip list and CHAP keys", test_skip_and_chap},
	    {"first burst", test_first_burst},
	    {"discovery irrelevant", test_discovery_irrelevant},
	    {"declaratives", test_declaratives},
	    {"stages", test_stages},
	    {"auth method", test_auth_method},
	    {"obsolete and newer keys", test_obsolete_and_newer_keys},
	    {"declare once", test_declare_once},
	    {"round trip normal", test_round_trip},
	    {"round trip discovery", test_round_trip_discovery},
	    {"accept illegal answers", test_accept_illegal},
	    {"accept unprompted keys", test_accept_unprompted},
	};
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("iscsi_negot", NULL, NULL);
	if (!s)
		return 1;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!CU_add_test(s, tests[i].name, tests[i].fn)) {
			CU_cleanup_registry();
			return 1;
		}
	}
	iscsi_text_init(&out);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failed = CU_get_number_of_failures() ? 1 : 0;
	iscsi_text_free(&out);
	CU_cleanup_registry();
	return failed;
}
