/*
 * conn_ut.c: the target's connection core seen from the wire: login (plain,
 * CHAP, failures, multi-PDU text), the hand-off to the full feature phase,
 * NOP-Out echo, Text SendTargets (and a response split by the C bit),
 * Reject of an unknown opcode, an oversized PDU, Logout after outstanding
 * tasks, and session reinstatement. The real conn.c, login.c, misc.c and
 * tgt.c run over a reactor stepped by the test (tgt_fixture.h).
 */
#include "tgt_fixture.h"

#define FX_CHAP_USER   "alice"
#define FX_CHAP_SECRET "alice-secret-0123"

static uint8_t login_flags(uint8_t csg, uint8_t nsg, bool transit)
{
	return (uint8_t)((transit ? ISCSI_LOGIN_TRANSIT | nsg : 0) | csg << ISCSI_LOGIN_CSG_SHIFT);
}

/* ---- login ---- */

static void test_login_plain(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *c = fx_connect();
	c->exp_statsn = 77;
	c->cmdsn = 5;
	CU_ASSERT_EQUAL_FATAL(fx_login(c, &p, &r), ISCSI_LS_SUCCESS);
	const struct iscsi_bhs_login_rsp *h = (const void *)r.hdr.raw;

	/* RFC 7143 11.13.1: T=1, CSG=1, NSG=3 end the login; version 0x00. */
	CU_ASSERT_EQUAL(r.hdr.bhs.flags, login_flags(1, 3, true));
	CU_ASSERT_EQUAL(h->version_max, 0);
	CU_ASSERT_EQUAL(h->version_active, 0);
	CU_ASSERT(memcmp(h->isid, c->isid, 6) == 0);
	/* RFC 7143 11.13.3: a new session gets a non-zero TSIH in the final response. */
	CU_ASSERT_NOT_EQUAL(get_be16(h->tsih), 0);
	CU_ASSERT_EQUAL(get_be32(h->itt), 0x1000);
	/* StatSN starts from the initiator's ExpStatSN; the window from its CmdSN. */
	CU_ASSERT_EQUAL(get_be32(h->statsn), 77);
	CU_ASSERT_EQUAL(get_be32(h->exp_cmdsn), 5);
	CU_ASSERT_EQUAL(get_be32(h->max_cmdsn), 5 + cfg.queue_depth - 1);
	/* RFC 7143 13.12: the target declares its MaxRecvDataSegmentLength. */
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "MaxRecvDataSegmentLength"), "262144");
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "TargetPortalGroupTag"), "1");
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "ImmediateData"), "Yes");
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "InitialR2T"), "No");
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "MaxBurstLength"), "262144");
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "HeaderDigest"), "None");
	fx_pdu_free(&r);

	/* The full feature phase: a ping is answered with StatSN 78. */
	uint32_t itt = fx_nop_out(c, NULL, 0, true);
	FX_RECV_OP(c, &r, ISCSI_OP_NOP_IN);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
	CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 24), 78);
	fx_pdu_free(&r);
	CU_ASSERT_EQUAL(fx_tgt->workers[0].conns.tqh_first->state, CONN_FULL_FEATURE);
	fx_stop();
}

/* Security stage with CHAP; returns the status of the response to CHAP_N/CHAP_R. */
static uint16_t chap_login(struct fx_conn *c, const char *secret)
{
	struct iscsi_chap_cred cred;
	struct iscsi_chap chap;
	struct iscsi_text t;
	struct fx_params p;
	struct fx_pdu r;
	uint16_t status;

	memset(&cred, 0, sizeof(cred));
	memset(&chap, 0, sizeof(chap));
	snprintf(cred.user, sizeof(cred.user), "%s", FX_CHAP_USER);
	snprintf(cred.secret, sizeof(cred.secret), "%s", secret);
	fx_params_default(&p);

	/* 1: names and AuthMethod; while CHAP runs the target stays in the stage (T=0). */
	iscsi_text_init(&t);
	fx_text_names(&t, &p);
	iscsi_text_add(&t, "AuthMethod", "CHAP,None");
	CU_ASSERT_TRUE(fx_login_req(c, login_flags(0, 1, true), t.buf, t.len));
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	CU_ASSERT_EQUAL(fx_login_status(&r), 0);
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "AuthMethod"), "CHAP");
	CU_ASSERT_EQUAL(r.hdr.bhs.flags & ISCSI_LOGIN_TRANSIT, 0);
	fx_pdu_free(&r);

	/* 2: CHAP_A -> CHAP_A, CHAP_I, CHAP_C (RFC 7143 12.1.3). */
	iscsi_text_reset(&t);
	iscsi_text_add(&t, "CHAP_A", "5");
	CU_ASSERT_TRUE(fx_login_req(c, login_flags(0, 1, false), t.buf, t.len));
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	CU_ASSERT_EQUAL(fx_login_status(&r), 0);
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "CHAP_A"), "5");

	/* 3: CHAP_N and CHAP_R computed with \p secret. */
	char copy[1024];
	struct iscsi_kv kv[16];
	size_t n = 0;
	CU_ASSERT_FATAL(r.len < sizeof(copy));
	memcpy(copy, r.data, r.len);
	CU_ASSERT_EQUAL(iscsi_text_parse(copy, r.len, kv, 16, &n), 0);
	fx_pdu_free(&r);
	iscsi_text_reset(&t);
	/* One-way CHAP: the initiator is done once it has answered. */
	CU_ASSERT_EQUAL(iscsi_chap_initiator_step(&chap, kv, n, &cred, &t), ISCSI_CHAP_OK);
	CU_ASSERT_TRUE(fx_login_req(c, login_flags(0, 1, true), t.buf, t.len));
	iscsi_text_free(&t);
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	status = fx_login_status(&r);
	if (status == 0)
		CU_ASSERT_EQUAL(r.hdr.bhs.flags, login_flags(0, 1, true));
	fx_pdu_free(&r);
	return status;
}

static void test_login_chap(void)
{
	struct iscsi_chap_cred cred;
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;

	memset(&cred, 0, sizeof(cred));
	snprintf(cred.user, sizeof(cred.user), "%s", FX_CHAP_USER);
	snprintf(cred.secret, sizeof(cred.secret), "%s", FX_CHAP_SECRET);
	fx_config(&cfg);
	fx_start(&cfg, &cred);

	/* The right secret: the operational stage then reaches the full feature phase. */
	struct fx_conn *c = fx_connect();
	CU_ASSERT_EQUAL(chap_login(c, FX_CHAP_SECRET), ISCSI_LS_SUCCESS);
	struct iscsi_text t;
	iscsi_text_init(&t);
	fx_params_default(&p);
	fx_text_oper(&t, &p);
	CU_ASSERT_TRUE(fx_login_req(c, login_flags(1, 3, true), t.buf, t.len));
	iscsi_text_free(&t);
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	CU_ASSERT_EQUAL(fx_login_status(&r), ISCSI_LS_SUCCESS);
	CU_ASSERT_EQUAL(r.hdr.bhs.flags, login_flags(1, 3, true));
	CU_ASSERT_NOT_EQUAL(get_be16(((struct iscsi_bhs_login_rsp *)(void *)r.hdr.raw)->tsih), 0);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(c));

	/* A wrong secret: 0x0201 Authentication failure, then the connection closes. */
	struct fx_conn *bad = fx_connect();
	bad->isid[5] = 2;
	CU_ASSERT_EQUAL(chap_login(bad, "not-the-secret-123"), ISCSI_LS_AUTH_FAILED);
	CU_ASSERT_TRUE(fx_wait_eof(bad));

	/* Skipping the security stage on a CHAP target is refused (RFC 7143 6.3). */
	struct fx_conn *skip = fx_connect();
	skip->isid[5] = 3;
	CU_ASSERT_EQUAL(fx_login(skip, &p, NULL), ISCSI_LS_AUTH_FAILED);
	CU_ASSERT_TRUE(fx_wait_eof(skip));
	fx_stop();
}

/* One login request with \p text in the operational stage; returns the status. */
static uint16_t login_raw(struct fx_conn *c, const struct iscsi_text *t)
{
	struct fx_pdu r;

	CU_ASSERT_TRUE(fx_login_req(c, login_flags(1, 3, true), t->buf, t->len));
	if (!fx_recv(c, &r))
		return 0xffff;
	CU_ASSERT_EQUAL(fx_op(&r), ISCSI_OP_LOGIN_RSP);
	uint16_t status = fx_login_status(&r);
	/* RFC 7143 11.13.5: a failure carries no negotiation text. */
	if (status >> 8 == 2)
		CU_ASSERT_EQUAL(r.len, 0);
	fx_pdu_free(&r);
	return status;
}

static void test_login_failures(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct iscsi_text t;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);

	/* Unknown target: 0x0203 Not found (RFC 7143 11.13.5). */
	struct fx_conn *c = fx_connect();
	p.target = FX_PREFIX ":nosuchvolume";
	CU_ASSERT_EQUAL(fx_login(c, &p, NULL), ISCSI_LS_NOT_FOUND);
	CU_ASSERT_TRUE(fx_wait_eof(c));
	fx_conn_close(c);
	p.target = NULL;

	/* No InitiatorName: 0x0207 Missing parameter (RFC 7143 13.4: required). */
	c = fx_connect();
	iscsi_text_init(&t);
	iscsi_text_add(&t, "SessionType", "Normal");
	iscsi_text_add(&t, "TargetName", "%s", FX_IQN);
	CU_ASSERT_EQUAL(login_raw(c, &t), ISCSI_LS_MISSING_PARAMETER);
	CU_ASSERT_TRUE(fx_wait_eof(c));
	fx_conn_close(c);

	/* An InitiatorName with a line break: 0x0200 Initiator error, nothing else done. */
	c = fx_connect();
	iscsi_text_free(&t);
	iscsi_text_init(&t);
	iscsi_text_add(&t, "InitiatorName", "iqn.2026-11.org.test:a\nreg 0x1 x");
	iscsi_text_add(&t, "SessionType", "Normal");
	iscsi_text_add(&t, "TargetName", "%s", FX_IQN);
	CU_ASSERT_EQUAL(login_raw(c, &t), ISCSI_LS_INITIATOR_ERROR);
	CU_ASSERT_TRUE(fx_wait_eof(c));
	fx_conn_close(c);

	/* TSIH of a session that does not exist: 0x020a (RFC 7143 11.13.5). */
	c = fx_connect();
	c->tsih = 0x1234;
	CU_ASSERT_EQUAL(fx_login(c, &p, NULL), ISCSI_LS_SESSION_DOES_NOT_EXIST);
	CU_ASSERT_TRUE(fx_wait_eof(c));
	fx_conn_close(c);

	/* Version-min above 0x00: 0x0205 Unsupported version (RFC 7143 11.12.4). */
	c = fx_connect();
	struct iscsi_bhs_login_req h;
	struct fx_pdu r;
	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	h.flags = login_flags(1, 3, true);
	h.version_max = 2;
	h.version_min = 1;
	memcpy(h.isid, c->isid, 6);
	iscsi_text_reset(&t);
	fx_text_names(&t, &p);
	CU_ASSERT_TRUE(fx_send(c, &h, t.buf, t.len));
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	CU_ASSERT_EQUAL(fx_login_status(&r), ISCSI_LS_UNSUPPORTED_VERSION);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_wait_eof(c));
	fx_conn_close(c);

	/* A PDU other than Login before the full feature phase ends the connection. */
	c = fx_connect();
	fx_nop_out(c, NULL, 0, true);
	CU_ASSERT_TRUE(fx_wait_eof(c));
	iscsi_text_free(&t);
	fx_stop();
}

/* Login text split over two PDUs with the C bit (RFC 7143 11.12.2, 6.2). */
static void test_login_multi_pdu(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct iscsi_text t;
	struct fx_pdu r;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *c = fx_connect();
	iscsi_text_init(&t);
	fx_text_names(&t, &p);
	fx_text_oper(&t, &p);
	uint32_t cut = 20; /* in the middle of "InitiatorName=..." */

	CU_ASSERT_TRUE(
	    fx_login_req(c, ISCSI_LOGIN_CONTINUE | login_flags(1, 3, false), t.buf, cut));
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	/* The text is not whole: an empty answer that neither transits nor ends. */
	CU_ASSERT_EQUAL(fx_login_status(&r), 0);
	CU_ASSERT_EQUAL(r.len, 0);
	CU_ASSERT_EQUAL(r.hdr.bhs.flags & (ISCSI_LOGIN_TRANSIT | ISCSI_LOGIN_CONTINUE), 0);
	CU_ASSERT_EQUAL(get_be16(((struct iscsi_bhs_login_rsp *)(void *)r.hdr.raw)->tsih), 0);
	fx_pdu_free(&r);

	CU_ASSERT_TRUE(fx_login_req(c, login_flags(1, 3, true), t.buf + cut, t.len - cut));
	FX_RECV_OP(c, &r, ISCSI_OP_LOGIN_RSP);
	CU_ASSERT_EQUAL(fx_login_status(&r), ISCSI_LS_SUCCESS);
	CU_ASSERT_EQUAL(r.hdr.bhs.flags, login_flags(1, 3, true));
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "MaxRecvDataSegmentLength"), "262144");
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(c));

	/* T and C together are a protocol error (RFC 7143 11.12.2). */
	struct fx_conn *c2 = fx_connect();
	c2->isid[5] = 9;
	CU_ASSERT_TRUE(
	    fx_login_req(c2, ISCSI_LOGIN_CONTINUE | login_flags(1, 3, true), t.buf, t.len));
	FX_RECV_OP(c2, &r, ISCSI_OP_LOGIN_RSP);
	CU_ASSERT_EQUAL(fx_login_status(&r), ISCSI_LS_INITIATOR_ERROR);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_wait_eof(c2));
	iscsi_text_free(&t);
	fx_stop();
}

/* ---- full feature phase ---- */

static void test_nop_echo(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;
	uint8_t data[1000];

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *c = fx_session(&p);
	uint32_t statsn = c->exp_statsn, exp = c->exp_cmdsn, max = c->max_cmdsn;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	/* A non-immediate ping takes a CmdSN: the window moves by one. */
	uint32_t itt = fx_nop_out(c, data, sizeof(data), false);
	FX_RECV_OP(c, &r, ISCSI_OP_NOP_IN);
	/* RFC 7143 11.19: ITT echoed, TTT reserved, the ping data returned. */
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
	CU_ASSERT_EQUAL(get_be32(((struct iscsi_bhs_nop *)(void *)r.hdr.raw)->ttt), ISCSI_RSVD_TAG);
	CU_ASSERT_EQUAL(r.hdr.bhs.flags, ISCSI_FLAG_FINAL);
	CU_ASSERT_EQUAL(r.len, sizeof(data));
	CU_ASSERT(r.len == sizeof(data) && memcmp(r.data, data, sizeof(data)) == 0);
	CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 24), statsn);
	CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 28), exp + 1);
	CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 32), max + 1);
	fx_pdu_free(&r);

	/* An immediate one leaves the window alone. */
	itt = fx_nop_out(c, "abc", 3, true);
	FX_RECV_OP(c, &r, ISCSI_OP_NOP_IN);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), itt);
	CU_ASSERT(r.len == 3 && memcmp(r.data, "abc", 3) == 0);
	CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 24), statsn + 1);
	CU_ASSERT_EQUAL(get_be32(r.hdr.raw + 28), exp + 1);
	fx_pdu_free(&r);

	/* A NOP-Out answering a ping of ours (ITT reserved) gets no answer. */
	struct iscsi_bhs_nop h;
	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	h.flags = ISCSI_FLAG_FINAL;
	put_be32(h.itt, ISCSI_RSVD_TAG);
	put_be32(h.ttt, 12345);
	put_be32(h.sn, c->cmdsn);
	CU_ASSERT_TRUE(fx_send(c, &h, NULL, 0));
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	fx_stop();
}

/* Discovery over loopback TCP, so the TargetAddress is the real portal. */
static void test_sendtargets_all(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;
	uint16_t port;
	char addr[64];

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	p.discovery = true;
	struct fx_conn *c = fx_connect_tcp(&port);
	CU_ASSERT_EQUAL_FATAL(fx_login(c, &p, NULL), ISCSI_LS_SUCCESS);

	static const char req[] = "SendTargets=All";
	fx_text_req(c, 0x77, ISCSI_RSVD_TAG, ISCSI_FLAG_FINAL, req, sizeof(req));
	FX_RECV_OP(c, &r, ISCSI_OP_TEXT_RSP);
	const struct iscsi_bhs_text *h = (const void *)r.hdr.raw;
	CU_ASSERT_EQUAL(get_be32(h->itt), 0x77);
	/* RFC 7143 11.11.1-4: a complete answer has F=1, C=0 and the reserved TTT. */
	CU_ASSERT_EQUAL(h->flags, ISCSI_FLAG_FINAL);
	CU_ASSERT_EQUAL(get_be32(h->ttt), ISCSI_RSVD_TAG);
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "TargetName"), FX_IQN);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u,1", port);
	CU_ASSERT_STRING_EQUAL(fx_text_get(&r, "TargetAddress"), addr);
	fx_pdu_free(&r);

	/* RFC 7143 4.3: a discovery session carries no SCSI commands: Reject. */
	uint8_t cdb[16] = {0};
	fx_cmd(c, ISCSI_FLAG_FINAL, 0, cdb, NULL, 0, false);
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	CU_ASSERT_EQUAL(((struct iscsi_bhs_reject *)(void *)r.hdr.raw)->reason,
			ISCSI_REJECT_PROTOCOL_ERROR);
	fx_pdu_free(&r);
	fx_stop();
}

/* A SendTargets answer longer than our MaxRecvDataSegmentLength (RFC 7143 11.11.2). */
static void test_sendtargets_split(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;
	struct iscsi_text all;
	char name[64];
	unsigned pdus = 0;
	bool final = false;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	for (unsigned i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "a-rather-long-volume-name-number-%02u", i);
		fx_add_volume(name);
	}
	fx_params_default(&p);
	p.discovery = true;
	p.mrdsl = 512; /* the smallest legal value (RFC 7143 13.12) */
	struct fx_conn *c = fx_session(&p);

	static const char req[] = "SendTargets=All";
	iscsi_text_init(&all);
	fx_text_req(c, 0x99, ISCSI_RSVD_TAG, ISCSI_FLAG_FINAL, req, sizeof(req));
	while (!final && pdus < 100) {
		FX_RECV_OP(c, &r, ISCSI_OP_TEXT_RSP);
		const struct iscsi_bhs_text *h = (const void *)r.hdr.raw;
		uint32_t ttt = get_be32(h->ttt);
		pdus++;
		CU_ASSERT(r.len <= 512);
		CU_ASSERT_EQUAL(get_be32(h->itt), 0x99);
		iscsi_text_append_raw(&all, r.data, r.len);
		final = h->flags & ISCSI_FLAG_FINAL;
		if (final) {
			CU_ASSERT_EQUAL(h->flags & ISCSI_TEXT_CONTINUE, 0);
			CU_ASSERT_EQUAL(ttt, ISCSI_RSVD_TAG);
		} else {
			/* More to come: C=1, and a TTT the initiator continues with. */
			CU_ASSERT_EQUAL(h->flags, ISCSI_TEXT_CONTINUE);
			CU_ASSERT_NOT_EQUAL(ttt, ISCSI_RSVD_TAG);
			CU_ASSERT_EQUAL(r.len, 512);
			fx_text_req(c, 0x99, ttt, ISCSI_FLAG_FINAL, NULL, 0);
		}
		fx_pdu_free(&r);
	}
	CU_ASSERT_TRUE(final);
	CU_ASSERT(pdus > 1);
	/* Every one of the 31 targets is in the reassembled answer. */
	struct iscsi_kv kv[ISCSI_TEXT_MAX_KV];
	size_t n = 0;
	unsigned names = 0;
	iscsi_text_append_raw(&all, "", 1);
	CU_ASSERT_EQUAL(iscsi_text_parse(all.buf, all.len - 1, kv, UTIL_ARRAY_SIZE(kv), &n), 0);
	for (size_t i = 0; i < n; i++)
		names += strcmp(kv[i].key, "TargetName") == 0;
	CU_ASSERT_EQUAL(names, 31);
	iscsi_text_free(&all);

	/* A continuation with a stale TTT is a bad field: Reject 0x09. */
	fx_text_req(c, 0x9a, 0x4242, ISCSI_FLAG_FINAL, NULL, 0);
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	CU_ASSERT_EQUAL(((struct iscsi_bhs_reject *)(void *)r.hdr.raw)->reason,
			ISCSI_REJECT_INVALID_PDU_FIELD);
	fx_pdu_free(&r);
	fx_stop();
}

static void test_unknown_opcode(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;
	uint8_t h[ISCSI_BHS_LEN];

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *c = fx_session(&p);
	uint32_t statsn = c->exp_statsn;

	memset(h, 0, sizeof(h));
	h[0] = 0x1c; /* not an initiator opcode (RFC 7143 11.2.1.2) */
	h[1] = ISCSI_FLAG_FINAL;
	put_be32(h + 16, 0xabcd);
	CU_ASSERT_TRUE(fx_send(c, h, NULL, 0));
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	const struct iscsi_bhs_reject *rj = (const void *)r.hdr.raw;
	/* RFC 7143 11.17.1: 0x05 Command not supported; the data is the rejected header. */
	CU_ASSERT_EQUAL(rj->reason, ISCSI_REJECT_CMD_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(get_be32(rj->itt), ISCSI_RSVD_TAG);
	CU_ASSERT_EQUAL(get_be32(rj->statsn), statsn);
	CU_ASSERT_EQUAL(r.len, ISCSI_BHS_LEN);
	CU_ASSERT(r.len == ISCSI_BHS_LEN && memcmp(r.data, h, ISCSI_BHS_LEN) == 0);
	fx_pdu_free(&r);
	/* The connection goes on. */
	CU_ASSERT_TRUE(fx_ping(c));

	/* SNACK at ErrorRecoveryLevel 0: Reject too (RFC 7143 11.16). */
	memset(h, 0, sizeof(h));
	h[0] = ISCSI_OP_SNACK_REQ;
	h[1] = ISCSI_FLAG_FINAL;
	CU_ASSERT_TRUE(fx_send(c, h, NULL, 0));
	FX_RECV_OP(c, &r, ISCSI_OP_REJECT);
	CU_ASSERT_EQUAL(r.hdr.raw[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(c));
	fx_stop();
}

/* DataSegmentLength above our MaxRecvDataSegmentLength: the connection ends. */
static void test_pdu_too_long(void)
{
	struct tgt_config cfg;
	struct fx_params p;

	fx_config(&cfg);
	cfg.max_recv_dsl = 16384;
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *c = fx_session(&p);
	CU_ASSERT_TRUE(fx_ping(c));

	struct iscsi_bhs_nop h;
	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	h.flags = ISCSI_FLAG_FINAL;
	put_be32(h.itt, 5);
	put_be32(h.ttt, ISCSI_RSVD_TAG);
	iscsi_bhs_set_dlength((struct iscsi_bhs *)&h, 16384 + 4);
	/* Only the header: the target must not wait for the data to decide. */
	CU_ASSERT_TRUE(fx_write(c, &h, sizeof(h)));
	CU_ASSERT_TRUE(fx_wait_eof(c));
	fx_stop();
}

/* ---- logout ---- */

/*
 * A failed login whose Login Response cannot be written yet (the initiator
 * does not read), then a SCSI Command on the same stream: the connection has
 * no session and must read nothing more. The engine used to dispatch the
 * command to the full feature phase with no session: a NULL dereference
 * (found by fuzz_pdu's kind of traffic, minimised to this).
 */
static void raw_login(int fd, uint8_t flags, const char *text)
{
	uint8_t pdu[ISCSI_BHS_LEN + 256] = {0};
	struct iscsi_bhs_login_req *q = (void *)pdu;
	size_t len = text ? strlen(text) + 1 : 0;

	q->opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	q->flags = flags;
	q->isid[0] = 0x80;
	put_be32(q->itt, 1);
	put_be32(q->cmdsn, 1);
	iscsi_bhs_set_dlength((struct iscsi_bhs *)(void *)q, (uint32_t)len);
	if (len)
		memcpy(pdu + ISCSI_BHS_LEN, text, len);
	size_t total = ISCSI_BHS_LEN + len + ISCSI_PAD(len);
	CU_ASSERT_EQUAL(write(fd, pdu, total), (ssize_t)total);
}

static void test_login_fail_unread(void)
{
	struct tgt_config cfg;
	int sv[2], small = 4096;
	uint8_t cmd[ISCSI_BHS_LEN] = {0}, buf[65536];
	bool eof = false;
	size_t got = 0, last_login_fail = 0, pdus_after = 0;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	/* The target's side takes little: its answers back up quickly. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	atomic_fetch_add(&fx_tgt->nconns, 1);
	tgt_conn_start(&fx_tgt->workers[0], sv[0]);

	/* C bit, no text: each is answered by an empty Login Response, unread. */
	raw_login(sv[1], ISCSI_LOGIN_CONTINUE | ISCSI_STAGE_OPERATIONAL,
		  "InitiatorName=iqn.2026-11.org.test:host1");
	for (int i = 0; i < 300; i++) {
		raw_login(sv[1], ISCSI_LOGIN_CONTINUE | ISCSI_STAGE_OPERATIONAL, NULL);
		fx_run(2);
	}
	/* T and C both: the login fails. Then a SCSI Command. */
	raw_login(sv[1], ISCSI_LOGIN_TRANSIT | ISCSI_LOGIN_CONTINUE | ISCSI_STAGE_OPERATIONAL,
		  NULL);
	cmd[0] = ISCSI_OP_SCSI_CMD;
	cmd[1] = ISCSI_FLAG_FINAL;
	CU_ASSERT_EQUAL(write(sv[1], cmd, sizeof(cmd)), (ssize_t)sizeof(cmd));
	fx_run(50);

	/* Now read everything: Login Responses, the failure last, then the end. */
	for (unsigned spins = 0; !eof && spins < FX_STEPS; spins++) {
		ssize_t n =
		    read(sv[1], buf + got % ISCSI_BHS_LEN, ISCSI_BHS_LEN - got % ISCSI_BHS_LEN);
		if (n > 0) {
			got += (size_t)n;
			if (got % ISCSI_BHS_LEN == 0) {
				CU_ASSERT_EQUAL(buf[0] & ISCSI_OP_MASK, ISCSI_OP_LOGIN_RSP);
				if (last_login_fail)
					pdus_after++;
				if (buf[36] != 0)
					last_login_fail = got;
			}
			continue;
		}
		if (n == 0)
			eof = true;
		else
			fx_run(2);
	}
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_NOT_EQUAL(last_login_fail, 0);
	CU_ASSERT_EQUAL(pdus_after, 0);
	close(sv[1]);
	fx_stop();
}

/*
 * NOP-Out pings with data, immediate (outside the CmdSN window), while the
 * initiator reads none of the echoes: the target stops reading once its
 * queue holds TX_BACKLOG_MAX bytes (16 MiB) instead of copying every echo
 * (it used to hold up to 4096 x MaxRecvDataSegmentLength, then close with
 * ENOMEM). Once the echoes are read, the session goes on.
 */
static void test_nop_flood_backpressure(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	static uint8_t pdu[ISCSI_BHS_LEN + 262144];
	uint32_t dlen;
	uint64_t written = 0, sent = 0;
	unsigned slot = FX_MAXC, idle = 0;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	p.mrdsl = 262144;
	struct fx_conn *c = fx_session(&p);
	dlen = UTIL_MIN(cfg.max_recv_dsl, 262144u);
	/* Detach c: the fixture must not read for it while we flood. */
	for (unsigned i = 0; i < FX_MAXC; i++)
		if (fx_conns[i] == c)
			slot = i;
	CU_ASSERT_FATAL(slot < FX_MAXC);
	fx_conns[slot] = NULL;
	memset(pdu, 0x5a, sizeof(pdu));
	struct iscsi_bhs_nop *h = (void *)pdu;
	memset(h, 0, sizeof(*h));
	h->opcode = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	h->flags = ISCSI_FLAG_FINAL;
	put_be32(h->ttt, ISCSI_RSVD_TAG);
	iscsi_bhs_set_dlength((struct iscsi_bhs *)(void *)pdu, dlen);
	size_t plen = ISCSI_BHS_LEN + dlen;
	size_t off = 0;
	/* Write until the target has read nothing for a while (or 128 MiB). */
	while (written < (128u << 20) && idle < 200) {
		if (off == 0) {
			put_be32(h->itt, c->itt++);
			put_be32(h->sn, c->cmdsn);
		}
		ssize_t n = write(c->fd, pdu + off, plen - off);
		if (n > 0) {
			written += (uint64_t)n;
			off += (size_t)n;
			if (off == plen) {
				off = 0;
				sent++;
			}
			idle = 0;
			continue;
		}
		CU_ASSERT_FATAL(n < 0 && (errno == EAGAIN || errno == EINTR));
		idle++;
		fx_run(2);
	}
	CU_ASSERT(written < (64u << 20)); /* 16 MiB queued + socket buffers */
	fx_conns[slot] = c;
	/* The rest of a PDU cut short, then every echo, then a ping. */
	if (off)
		CU_ASSERT_TRUE(fx_write(c, pdu + off, plen - off));
	uint64_t echoes = 0, want = sent + (off ? 1 : 0);
	struct fx_pdu r;
	while (echoes < want && fx_recv(c, &r)) {
		echoes += fx_op(&r) == ISCSI_OP_NOP_IN && r.len == dlen;
		fx_pdu_free(&r);
	}
	CU_ASSERT_EQUAL(echoes, want);
	CU_ASSERT_TRUE(fx_ping(c));
	fx_stop();
}

static void test_logout_waits_for_tasks(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;
	uint8_t cdb[16];

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *c = fx_session(&p);

	fx_hold = true;
	fx_cdb_rw10(cdb, 0x28, 0, 8);
	uint32_t ritt = fx_cmd(c, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 4096, cdb, NULL, 0, false);
	CU_ASSERT_TRUE(fx_quiet(c, 200));
	CU_ASSERT_EQUAL(fx_nio, 1);
	uint32_t litt = fx_logout(c, ISCSI_LOGOUT_CLOSE_SESSION);
	/* RFC 7143 11.14: the response waits for the tasks of the connection. */
	CU_ASSERT_TRUE(fx_quiet(c, 200));

	fx_release();
	FX_RECV_OP(c, &r, ISCSI_OP_DATA_IN);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), ritt);
	CU_ASSERT(r.hdr.bhs.flags & ISCSI_DATA_STATUS);
	fx_pdu_free(&r);
	FX_RECV_OP(c, &r, ISCSI_OP_LOGOUT_RSP);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), litt);
	CU_ASSERT_EQUAL(((struct iscsi_bhs_logout_rsp *)(void *)r.hdr.raw)->response, 0);
	fx_pdu_free(&r);
	/* RFC 7143 11.15: after the Logout Response the target closes the connection. */
	CU_ASSERT_TRUE(fx_wait_eof(c));
	CU_ASSERT_EQUAL(c->rx_len, 0);

	/* Connection recovery is not supported at ERL 0: response 2, no close. */
	struct fx_conn *c2 = fx_connect();
	c2->isid[5] = 7;
	CU_ASSERT_EQUAL_FATAL(fx_login(c2, &p, NULL), ISCSI_LS_SUCCESS);
	litt = fx_logout(c2, ISCSI_LOGOUT_REMOVE_FOR_RECOV);
	FX_RECV_OP(c2, &r, ISCSI_OP_LOGOUT_RSP);
	CU_ASSERT_EQUAL(get_be32(r.hdr.bhs.itt), litt);
	CU_ASSERT_EQUAL(((struct iscsi_bhs_logout_rsp *)(void *)r.hdr.raw)->response, 2);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(c2));
	fx_stop();
}

/* ---- session reinstatement (RFC 7143 6.3.5) ---- */

static void test_reinstatement(void)
{
	struct tgt_config cfg;
	struct fx_params p;
	struct fx_pdu r;

	fx_config(&cfg);
	fx_start(&cfg, NULL);
	fx_params_default(&p);
	struct fx_conn *a = fx_session(&p);
	uint16_t tsih_a = a->tsih;

	/* Another ISID is another session: both live. */
	struct fx_conn *other = fx_connect();
	other->isid[5] = 0x42;
	CU_ASSERT_EQUAL_FATAL(fx_login(other, &p, NULL), ISCSI_LS_SUCCESS);
	CU_ASSERT_FALSE(a->eof);
	CU_ASSERT_TRUE(fx_ping(a));

	/* Same initiator, ISID and target, TSIH 0: the old session is closed first. */
	struct fx_conn *b = fx_connect();
	CU_ASSERT_EQUAL_FATAL(fx_login(b, &p, &r), ISCSI_LS_SUCCESS);
	/* By the time the final response arrived, A's connection was already shut. */
	fx_pump(a);
	CU_ASSERT_TRUE(a->eof);
	CU_ASSERT_NOT_EQUAL(b->tsih, 0);
	CU_ASSERT_NOT_EQUAL(b->tsih, tsih_a);
	fx_pdu_free(&r);
	CU_ASSERT_TRUE(fx_ping(b));
	CU_ASSERT_TRUE(fx_ping(other));
	fx_stop();
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("UT_LOG"))
		util_log_init("conn_ut", true, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("tgt_conn", NULL, NULL);
	if (!s || !CU_add_test(s, "login without CHAP", test_login_plain) ||
	    !CU_add_test(s, "login with CHAP", test_login_chap) ||
	    !CU_add_test(s, "login failures", test_login_failures) ||
	    !CU_add_test(s, "login text over PDUs (C bit)", test_login_multi_pdu) ||
	    !CU_add_test(s, "NOP-Out echo", test_nop_echo) ||
	    !CU_add_test(s, "SendTargets=All", test_sendtargets_all) ||
	    !CU_add_test(s, "SendTargets split by C bit", test_sendtargets_split) ||
	    !CU_add_test(s, "unknown opcode rejected", test_unknown_opcode) ||
	    !CU_add_test(s, "PDU above MaxRecvDSL", test_pdu_too_long) ||
	    !CU_add_test(s, "failed login, answer unread", test_login_fail_unread) ||
	    !CU_add_test(s, "NOP-Out flood: backpressure", test_nop_flood_backpressure) ||
	    !CU_add_test(s, "logout waits for tasks", test_logout_waits_for_tasks) ||
	    !CU_add_test(s, "session reinstatement", test_reinstatement)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
