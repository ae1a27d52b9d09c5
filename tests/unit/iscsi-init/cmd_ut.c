/*
 * Unit tests of iscsi-init/cmd.c, the initiator's command state machine, over
 * a fake transport: PDUs the session sends are recorded, target PDUs are
 * built by the test and fed to ini_rx_data_dst()/ini_rx_pdu(). Covers reads
 * (zero copy and bounce), writes (immediate, unsolicited, R2T, iovec
 * splitting), the CmdSN window, UNIT ATTENTION/BUSY retries, error mapping,
 * connection loss with in-order resend, timeouts, NOP, TMF, and the
 * completion rule for buffers still queued in the transport.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-init/ini_internal.h"

#define MAX_SENT 256

struct sent {
	union {
		struct iscsi_bhs bhs;
		uint8_t raw[ISCSI_BHS_LEN];
	} hdr;
	const void *data;
	uint32_t len;
	uint8_t copy[8192];
};

static struct sent sent[MAX_SENT];
static unsigned nsent;
static bool hold;
static struct iscsi_txpdu *held[MAX_SENT];
static unsigned nheld;
static int connects, closes;
static struct util_reactor *reactor;

static int fake_connect(struct ini_session *s, const char *host, uint16_t port)
{
	connects++;
	return 0;
}

static void fake_send(struct ini_session *s, struct iscsi_txpdu *tp)
{
	struct sent *x = &sent[nsent < MAX_SENT ? nsent++ : MAX_SENT - 1];

	memcpy(x->hdr.raw, tp->hdr.raw, ISCSI_BHS_LEN);
	iscsi_bhs_set_dlength(&x->hdr.bhs, tp->data_len);
	x->data = tp->data;
	x->len = tp->data_len;
	if (tp->data_len && tp->data_len <= sizeof(x->copy))
		memcpy(x->copy, tp->data, tp->data_len);
	if (hold) {
		held[nheld++] = tp;
		return;
	}
	if (tp->done)
		tp->done(tp, tp->done_arg);
}

static void release_held(void)
{
	for (unsigned i = 0; i < nheld; i++)
		if (held[i]->done)
			held[i]->done(held[i], held[i]->done_arg);
	nheld = 0;
}

static void fake_set_params(struct ini_session *s, bool hd, bool dd, uint32_t max)
{
}

static void fake_close(struct ini_session *s)
{
	closes++;
	release_held(); /* like iscsi_tx_abort() */
}

static const struct ini_transport_ops fake_ops = {
    .connect = fake_connect,
    .send = fake_send,
    .set_params = fake_set_params,
    .close = fake_close,
};

/* Completion recorder. */
struct done {
	int calls;
	int rc;
};

static void done_cb(void *arg, int rc)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
}

/* A session in the full feature phase, window of \p window commands. */
static struct ini_session *new_session(unsigned window)
{
	struct ini_config cfg;
	struct ini_session *s = NULL;

	ini_config_default(&cfg);
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	snprintf(cfg.target_name, sizeof(cfg.target_name), "iqn.2026-11.test:t");
	cfg.probe_luns = false;
	CU_ASSERT_FATAL(ini_session_create(reactor, &cfg, &s) == 0);
	ini_session_set_transport(s, &fake_ops);
	iscsi_params_default(&s->params);
	s->params.max_recv_dsl = 262144;
	s->params.peer_max_recv_dsl = 8192;
	s->params.immediate_data = false;
	s->params.initial_r2t = true;
	s->state = SESS_UP;
	s->conn = CONN_FFP;
	s->cmdsn = 100;
	s->exp_cmdsn = 100;
	s->max_cmdsn = 100 + window - 1;
	s->last_rx_ms = util_now_ms();
	nsent = 0;
	nheld = 0;
	hold = false;
	connects = closes = 0;
	return s;
}

/* Feed one target PDU; data (if any) goes where the session asks. */
static int feed(struct ini_session *s, const void *bhs, const void *data, uint32_t len,
		void **where)
{
	struct iscsi_pdu pdu;
	void *dst = NULL;

	memset(&pdu, 0, sizeof(pdu));
	memcpy(pdu.hdr.raw, bhs, ISCSI_BHS_LEN);
	pdu.data_len = len;
	iscsi_bhs_set_dlength(&pdu.hdr.bhs, len);
	if (len) {
		int rc = ini_rx_data_dst(s, &pdu, &dst);
		if (rc < 0)
			return rc;
		memcpy(dst, data, len);
		pdu.data = dst;
	}
	if (where)
		*where = dst;
	return ini_rx_pdu(s, &pdu);
}

static uint32_t statsn = 1;

static int send_rsp(struct ini_session *s, uint32_t itt, uint8_t status, const uint8_t *sense,
		    uint32_t slen, uint32_t max_cmdsn)
{
	struct iscsi_bhs_scsi_rsp r;
	uint8_t data[64];

	memset(&r, 0, sizeof(r));
	r.opcode = ISCSI_OP_SCSI_RSP;
	r.flags = ISCSI_FLAG_FINAL;
	r.status = status;
	put_be32(r.itt, itt);
	put_be32(r.statsn, statsn++);
	put_be32(r.exp_cmdsn, s->exp_cmdsn);
	put_be32(r.max_cmdsn, max_cmdsn ? max_cmdsn : s->max_cmdsn);
	if (slen) {
		put_be16(data, (uint16_t)slen);
		memcpy(data + 2, sense, slen);
	}
	return feed(s, &r, data, slen ? slen + 2 : 0, NULL);
}

static int send_data_in(struct ini_session *s, uint32_t itt, uint32_t datasn, uint32_t off,
			const void *data, uint32_t len, bool status, void **where)
{
	struct iscsi_bhs_data_in d;

	memset(&d, 0, sizeof(d));
	d.opcode = ISCSI_OP_DATA_IN;
	d.flags = status ? (ISCSI_FLAG_FINAL | ISCSI_DATA_STATUS) : 0;
	put_be32(d.itt, itt);
	put_be32(d.ttt, ISCSI_RSVD_TAG);
	put_be32(d.statsn, status ? statsn++ : 0);
	put_be32(d.exp_cmdsn, s->exp_cmdsn);
	put_be32(d.max_cmdsn, s->max_cmdsn);
	put_be32(d.datasn, datasn);
	put_be32(d.buffer_offset, off);
	return feed(s, &d, data, len, where);
}

static const struct iscsi_bhs_scsi_cmd *cmd_at(unsigned i)
{
	return (const struct iscsi_bhs_scsi_cmd *)(const void *)&sent[i].hdr;
}

static uint8_t op_at(unsigned i)
{
	return iscsi_bhs_opcode(&sent[i].hdr.bhs);
}

/* Fixed-format sense with key/asc/ascq (SPC-4 4.5.3). */
static uint32_t make_sense(uint8_t *b, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(b, 0, 18);
	b[0] = 0x70;
	b[2] = key;
	b[7] = 10;
	b[12] = asc;
	b[13] = ascq;
	return 18;
}

static void test_read_zero_copy(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[4096], pattern[4096];
	struct iovec iov = {buf, sizeof(buf)};
	struct done d = {0};
	void *where = NULL;

	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7);
	CU_ASSERT_EQUAL(ini_read(s, 1, 1000, 8, &iov, 1, done_cb, &d), 0);
	CU_ASSERT_EQUAL(nsent, 1);
	CU_ASSERT_EQUAL(op_at(0), ISCSI_OP_SCSI_CMD);
	CU_ASSERT(cmd_at(0)->flags & ISCSI_CMD_READ);
	CU_ASSERT(cmd_at(0)->flags & ISCSI_FLAG_FINAL);
	CU_ASSERT_EQUAL(get_be32(cmd_at(0)->exp_xfer_len), 4096);
	CU_ASSERT_EQUAL(get_be32(cmd_at(0)->cmdsn), 100);
	CU_ASSERT_EQUAL(cmd_at(0)->cdb[0], 0x88);
	CU_ASSERT_EQUAL(get_be64(cmd_at(0)->cdb + 2), 1000);
	CU_ASSERT_EQUAL(cmd_at(0)->lun[1], 1);
	uint32_t itt = get_be32(cmd_at(0)->itt);

	CU_ASSERT_EQUAL(send_data_in(s, itt, 0, 0, pattern, 2048, false, &where), 0);
	CU_ASSERT_PTR_EQUAL(where, buf); /* straight into the caller's buffer */
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(send_data_in(s, itt, 1, 2048, pattern + 2048, 2048, true, &where), 0);
	CU_ASSERT_PTR_EQUAL(where, buf + 2048);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, 0);
	CU_ASSERT(memcmp(buf, pattern, sizeof(buf)) == 0);
	/* A late duplicate for a finished task is dropped, not delivered. */
	CU_ASSERT_EQUAL(send_data_in(s, itt, 2, 0, pattern, 512, true, NULL), 0);
	CU_ASSERT_EQUAL(d.calls, 1);
	ini_session_destroy(s);
}

static void test_read_bounce_and_datasn(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t a[1000], b[3096], pattern[4096];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct done d = {0};
	void *where = NULL;

	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 1);
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 8, iov, 2, done_cb, &d), 0);
	uint32_t itt = get_be32(cmd_at(0)->itt);
	CU_ASSERT_EQUAL(send_data_in(s, itt, 0, 0, pattern, 4096, true, &where), 0);
	CU_ASSERT_PTR_NOT_EQUAL(where, a); /* straddles the two elements: bounced */
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, 0);
	CU_ASSERT(memcmp(a, pattern, sizeof(a)) == 0);
	CU_ASSERT(memcmp(b, pattern + sizeof(a), sizeof(b)) == 0);

	/* A DataSN gap is a protocol error: the connection goes, the task is kept. */
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 8, iov, 2, done_cb, &d), 0);
	itt = get_be32(cmd_at(1)->itt);
	CU_ASSERT(send_data_in(s, itt, 1, 0, pattern, 512, false, NULL) < 0);
	CU_ASSERT_EQUAL(s->state, SESS_RECOVER);
	CU_ASSERT_EQUAL(s->nqueued, 1);
	CU_ASSERT_EQUAL(d.calls, 1);
	ini_session_destroy(s);
}

static void test_write_immediate_unsolicited_r2t(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[16384];
	struct iovec iov = {buf, sizeof(buf)};
	struct done d = {0};

	s->params.immediate_data = true;
	s->params.initial_r2t = false;
	s->params.first_burst = 8192;
	s->params.peer_max_recv_dsl = 4096;
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	CU_ASSERT_EQUAL(ini_write(s, 0, 8, 32, &iov, 1, done_cb, &d), 0);
	/* Command with 4096 immediate bytes, then one unsolicited Data-Out. */
	CU_ASSERT_EQUAL(nsent, 2);
	CU_ASSERT(cmd_at(0)->flags & ISCSI_CMD_WRITE);
	CU_ASSERT_FALSE(cmd_at(0)->flags & ISCSI_FLAG_FINAL);
	CU_ASSERT_EQUAL(sent[0].len, 4096);
	CU_ASSERT_PTR_EQUAL(sent[0].data, buf); /* zero copy */
	CU_ASSERT_EQUAL(op_at(1), ISCSI_OP_DATA_OUT);
	const struct iscsi_bhs_data_out *o = (const void *)&sent[1].hdr;
	CU_ASSERT_EQUAL(get_be32(o->ttt), ISCSI_RSVD_TAG);
	CU_ASSERT_EQUAL(get_be32(o->buffer_offset), 4096);
	CU_ASSERT_EQUAL(sent[1].len, 4096);
	CU_ASSERT(o->flags & ISCSI_FLAG_FINAL);
	uint32_t itt = get_be32(cmd_at(0)->itt);

	/* R2T for the rest: two Data-Out PDUs of the target's MaxRecvDSL. */
	struct iscsi_bhs_r2t r;
	memset(&r, 0, sizeof(r));
	r.opcode = ISCSI_OP_R2T;
	r.flags = ISCSI_FLAG_FINAL;
	put_be32(r.itt, itt);
	put_be32(r.ttt, 0x1234);
	put_be32(r.exp_cmdsn, 101);
	put_be32(r.max_cmdsn, 140);
	put_be32(r.buffer_offset, 8192);
	put_be32(r.desired_len, 8192);
	CU_ASSERT_EQUAL(feed(s, &r, NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(nsent, 4);
	for (unsigned i = 2; i < 4; i++) {
		o = (const void *)&sent[i].hdr;
		CU_ASSERT_EQUAL(op_at(i), ISCSI_OP_DATA_OUT);
		CU_ASSERT_EQUAL(get_be32(o->ttt), 0x1234);
		CU_ASSERT_EQUAL(get_be32(o->datasn), i - 2);
		CU_ASSERT_EQUAL(get_be32(o->buffer_offset), 8192 + (i - 2) * 4096);
		CU_ASSERT_EQUAL((o->flags & ISCSI_FLAG_FINAL) != 0, i == 3);
		CU_ASSERT_PTR_EQUAL(sent[i].data, buf + 8192 + (i - 2) * 4096);
	}
	CU_ASSERT_EQUAL(s->max_cmdsn, 140); /* the window moved with the R2T */
	/* An R2T outside the transfer drops the connection. */
	put_be32(r.buffer_offset, 16000);
	CU_ASSERT(feed(s, &r, NULL, 0, NULL) < 0);
	CU_ASSERT_EQUAL(s->state, SESS_RECOVER);
	ini_session_destroy(s);
}

static void test_write_splits_at_iovecs(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t a[1024], b[512], c[2560];
	struct iovec iov[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
	struct done d = {0};

	s->params.immediate_data = true;
	s->params.initial_r2t = false;
	s->params.first_burst = 65536;
	CU_ASSERT_EQUAL(ini_write(s, 0, 0, 8, iov, 3, done_cb, &d), 0);
	/* Immediate data stops at the first element, Data-Out cuts at each one. */
	CU_ASSERT_EQUAL(nsent, 3);
	CU_ASSERT_EQUAL(sent[0].len, 1024);
	CU_ASSERT_PTR_EQUAL(sent[1].data, b);
	CU_ASSERT_EQUAL(sent[1].len, 512);
	CU_ASSERT_PTR_EQUAL(sent[2].data, c);
	CU_ASSERT_EQUAL(sent[2].len, 2560);
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(0)->itt), 0, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, 0);
	ini_session_destroy(s);
}

static void test_cmdsn_window(void)
{
	struct ini_session *s = new_session(2);
	static uint8_t buf[3][512];
	struct iovec iov[3];
	struct done d[3] = {{0}};

	for (int i = 0; i < 3; i++) {
		iov[i] = (struct iovec){buf[i], 512};
		CU_ASSERT_EQUAL(ini_read(s, 0, (uint64_t)i, 1, &iov[i], 1, done_cb, &d[i]), 0);
	}
	/* RFC 7143 4.2.2.1: CmdSN 100 and 101 fit MaxCmdSN 101; the third waits. */
	CU_ASSERT_EQUAL(nsent, 2);
	CU_ASSERT_EQUAL(s->nqueued, 1);
	CU_ASSERT_EQUAL(get_be32(cmd_at(1)->cmdsn), 101);
	/* A MaxCmdSN below ExpCmdSN - 1 is ignored... */
	s->exp_cmdsn = 102;
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(0)->itt), 0, NULL, 0, 90), 0);
	CU_ASSERT_EQUAL(nsent, 2);
	/* ...a larger one opens the window. */
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(1)->itt), 0, NULL, 0, 102), 0);
	CU_ASSERT_EQUAL(nsent, 3);
	CU_ASSERT_EQUAL(get_be32(cmd_at(2)->cmdsn), 102);
	CU_ASSERT_EQUAL(get_be64(cmd_at(2)->cdb + 2), 2);
	CU_ASSERT_EQUAL(d[0].calls + d[1].calls, 2);
	ini_session_destroy(s);
}

static void test_unit_attention_and_busy_retry(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[512];
	struct iovec iov = {buf, 512};
	struct done d = {0};
	uint8_t sense[18];
	uint32_t slen = make_sense(sense, 0x6, 0x29, 0x00);

	CU_ASSERT_EQUAL(ini_write(s, 0, 5, 1, &iov, 1, done_cb, &d), 0);
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(0)->itt), 0x02, sense, slen, 0), 0);
	/* Resent at once with the next CmdSN; the caller saw nothing. */
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(nsent, 2);
	CU_ASSERT_EQUAL(get_be32(cmd_at(1)->cmdsn), 101);
	CU_ASSERT_EQUAL(get_be64(cmd_at(1)->cdb + 2), 5);
	/* BUSY: requeued with a pause, resent by the tick once it passed. */
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(1)->itt), 0x08, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(nsent, 2);
	CU_ASSERT_EQUAL(s->nqueued, 1);
	TAILQ_FIRST(&s->queued)->not_before_ms = 1; /* pretend the pause is over */
	ini_session_tick(s);
	CU_ASSERT_EQUAL(nsent, 3);
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(2)->itt), 0, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, 0);
	ini_session_destroy(s);
}

static void test_error_mapping(void)
{
	static const struct {
		uint8_t status, key, asc, ascq;
		int rc;
	} cases[] = {
	    {0x02, 0x5, 0x21, 0x00, -EINVAL}, {0x02, 0xe, 0x1d, 0x00, -EILSEQ},
	    {0x02, 0x7, 0x27, 0x00, -EROFS},  {0x02, 0x7, 0x27, 0x07, -ENOSPC},
	    {0x02, 0x3, 0x11, 0x00, -EIO},    {0x18, 0, 0, 0, -EBUSY},
	};
	struct ini_session *s = new_session(64);
	static uint8_t buf[512];
	struct iovec iov = {buf, 512};

	for (unsigned i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		struct done d = {0};
		uint8_t sense[18];
		uint32_t slen = cases[i].status == 0x02
				    ? make_sense(sense, cases[i].key, cases[i].asc, cases[i].ascq)
				    : 0;
		unsigned at = nsent;
		CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), 0);
		CU_ASSERT_EQUAL(
		    send_rsp(s, get_be32(cmd_at(at)->itt), cases[i].status, sense, slen, 0), 0);
		CU_ASSERT_EQUAL(d.calls, 1);
		CU_ASSERT_EQUAL(d.rc, cases[i].rc);
	}
	ini_session_destroy(s);
}

static void test_connection_loss_resends_in_order(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[4][512];
	struct iovec iov[4];
	struct done d[4] = {{0}};

	for (int i = 0; i < 4; i++) {
		iov[i] = (struct iovec){buf[i], 512};
		CU_ASSERT_EQUAL(ini_write(s, 0, (uint64_t)(10 + i), 1, &iov[i], 1, done_cb, &d[i]),
				0);
	}
	CU_ASSERT_EQUAL(nsent, 4);
	/* The second completes; then the connection dies. */
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(1)->itt), 0, NULL, 0, 0), 0);
	ini_conn_fail(s, -ECONNRESET);
	CU_ASSERT_EQUAL(s->state, SESS_RECOVER);
	CU_ASSERT_EQUAL(closes, 1);
	CU_ASSERT_EQUAL(s->nqueued, 3);
	/* New commands while recovering are accepted and wait behind. */
	static uint8_t extra[512];
	struct iovec xiov = {extra, 512};
	struct done xd = {0};
	CU_ASSERT_EQUAL(ini_write(s, 0, 99, 1, &xiov, 1, done_cb, &xd), 0);
	CU_ASSERT_EQUAL(nsent, 4);
	/* The tick reconnects; the login (simulated) resends in the old order. */
	ini_session_tick(s);
	CU_ASSERT_EQUAL(connects, 1);
	CU_ASSERT_EQUAL(s->conn, CONN_CONNECTING);
	s->conn = CONN_FFP;
	s->cmdsn = 500;
	s->exp_cmdsn = 500;
	s->max_cmdsn = 600;
	ini_login_done(s, 0);
	CU_ASSERT_EQUAL(s->state, SESS_UP);
	CU_ASSERT_EQUAL(nsent, 8);
	static const uint64_t order[] = {10, 12, 13, 99};
	for (unsigned i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(get_be64(cmd_at(4 + i)->cdb + 2), order[i]);
		CU_ASSERT_EQUAL(get_be32(cmd_at(4 + i)->cmdsn), 500 + i);
		CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(4 + i)->itt), 0, NULL, 0, 0), 0);
	}
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(d[i].calls, 1);
		CU_ASSERT_EQUAL(d[i].rc, 0);
	}
	CU_ASSERT_EQUAL(xd.calls, 1);
	struct ini_stats st;
	ini_session_stats(s, &st);
	CU_ASSERT_EQUAL(st.reconnects, 1);
	ini_session_destroy(s);
}

static void test_timeouts_and_recovery_off(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[512];
	struct iovec iov = {buf, 512};
	struct done d = {0};

	s->cfg.cmd_retries = 1;
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), 0);
	/* A command unanswered past cmd_timeout_ms drops the connection. */
	TAILQ_FIRST(&s->sent)->sent_ms = util_now_ms() - s->cfg.cmd_timeout_ms - 1;
	ini_session_tick(s);
	CU_ASSERT_EQUAL(s->state, SESS_RECOVER);
	CU_ASSERT_EQUAL(d.calls, 0);
	/* Second attempt lost too: attempts > cmd_retries -> -ETIMEDOUT. */
	s->conn = CONN_FFP;
	ini_login_done(s, 0);
	CU_ASSERT_EQUAL(nsent, 2);
	ini_conn_fail(s, -ECONNRESET);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, -ETIMEDOUT);
	ini_session_destroy(s);

	/* recovery_timeout_ms == 0: a connection loss fails everything at once. */
	s = new_session(32);
	s->cfg.recovery_timeout_ms = 0;
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), 0);
	ini_conn_fail(s, -ECONNRESET);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, -ENOTCONN);
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), -ENOTCONN);
	ini_session_destroy(s);

	/* Recovery that takes too long: -ENOTCONN for what waited. */
	s = new_session(32);
	s->cfg.recovery_timeout_ms = 1000;
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), 0);
	ini_conn_fail(s, -ECONNRESET);
	s->lost_ms -= 2000;
	ini_session_tick(s);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, -ENOTCONN);
	ini_session_destroy(s);
}

struct state_log {
	unsigned calls;
	enum ini_session_state last;
};

static void state_cb(void *arg, enum ini_session_state st)
{
	struct state_log *l = arg;

	l->calls++;
	l->last = st;
}

/* An idle session reports losing its connection, getting it back, giving up. */
static void test_state_reports(void)
{
	struct ini_session *s = new_session(32);
	struct state_log l = {0};

	ini_session_set_state_cb(s, state_cb, &l);
	/* Before the first connect completed: nothing to report. */
	ini_conn_fail(s, -ECONNRESET);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 0);
	ini_session_destroy(s);

	s = new_session(32);
	ini_session_set_state_cb(s, state_cb, &l);
	s->conn_cb_due = true; /* the first connect succeeded */
	s->conn_rc = 0;
	ini_session_tick(s);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 0); /* UP is what the connect callback said */
	ini_conn_fail(s, -ECONNRESET);
	CU_ASSERT_EQUAL(l.calls, 0); /* never from inside a library call */
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 1);
	CU_ASSERT_EQUAL(l.last, INI_SESSION_RECOVERING);
	/* Back: reported once. */
	ini_session_tick(s);
	CU_ASSERT_EQUAL(connects, 1);
	s->conn = CONN_FFP;
	ini_login_done(s, 0);
	ini_session_tick(s);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 2);
	CU_ASSERT_EQUAL(l.last, INI_SESSION_UP);
	/* Lost again and not back within recovery_timeout_ms: FAILED, once. */
	s->cfg.recovery_timeout_ms = 1000;
	ini_conn_fail(s, -ECONNRESET);
	s->lost_ms -= 2000;
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 3);
	CU_ASSERT_EQUAL(l.last, INI_SESSION_RECOVERING);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 4);
	CU_ASSERT_EQUAL(l.last, INI_SESSION_FAILED);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 4);
	/* NULL stops the reports. */
	ini_session_set_state_cb(s, NULL, NULL);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(l.calls, 4);
	ini_session_destroy(s);
}

static void test_completion_waits_for_transport(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[4096];
	struct iovec iov = {buf, sizeof(buf)};
	struct done d = {0};
	uint8_t sense[18];
	uint32_t slen = make_sense(sense, 0x3, 0x0c, 0x00);

	s->params.immediate_data = true;
	hold = true; /* the socket has not taken the data yet */
	CU_ASSERT_EQUAL(ini_write(s, 0, 0, 8, &iov, 1, done_cb, &d), 0);
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(0)->itt), 0x02, sense, slen, 0), 0);
	/* The buffer is still referenced: no callback yet. */
	CU_ASSERT_EQUAL(d.calls, 0);
	release_held();
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.rc, -EIO);
	ini_session_destroy(s);
}

static void test_nop_and_digest_error(void)
{
	struct ini_session *s = new_session(32);
	struct iscsi_bhs_nop n;
	static const char ping[] = "ping-data";

	memset(&n, 0, sizeof(n));
	n.opcode = ISCSI_OP_NOP_IN;
	n.flags = ISCSI_FLAG_FINAL;
	put_be32(n.itt, ISCSI_RSVD_TAG);
	put_be32(n.ttt, 0xabcd);
	put_be32(n.exp_sn, 100);
	put_be32(n.max_cmdsn, 131);
	/* RFC 7143 11.18: answer a target ping with its TTT and data. */
	CU_ASSERT_EQUAL(feed(s, &n, ping, sizeof(ping), NULL), 0);
	CU_ASSERT_EQUAL(nsent, 1);
	const struct iscsi_bhs_nop *o = (const void *)&sent[0].hdr;
	CU_ASSERT_EQUAL(op_at(0), ISCSI_OP_NOP_OUT);
	CU_ASSERT(sent[0].hdr.bhs.opcode & ISCSI_OP_IMMEDIATE);
	CU_ASSERT_EQUAL(get_be32(o->ttt), 0xabcd);
	CU_ASSERT_EQUAL(get_be32(o->itt), ISCSI_RSVD_TAG);
	CU_ASSERT_EQUAL(sent[0].len, sizeof(ping));
	CU_ASSERT(memcmp(sent[0].copy, ping, sizeof(ping)) == 0);
	CU_ASSERT_EQUAL(s->max_cmdsn, 131);
	/* Our own keepalive after silence; a missing answer drops the connection. */
	s->last_rx_ms = util_now_ms() - s->cfg.nop_interval_ms - 1;
	ini_session_tick(s);
	CU_ASSERT_EQUAL(nsent, 2);
	CU_ASSERT_EQUAL(op_at(1), ISCSI_OP_NOP_OUT);
	CU_ASSERT_NOT_EQUAL(
	    get_be32(((const struct iscsi_bhs_nop *)(const void *)&sent[1].hdr)->itt),
	    ISCSI_RSVD_TAG);
	s->nop_sent_ms -= 60000;
	ini_session_tick(s);
	CU_ASSERT_EQUAL(s->state, SESS_RECOVER);
	ini_session_destroy(s);

	/* A data digest error on Data-In is recovered by a new connection (ERL 0). */
	s = new_session(32);
	static uint8_t buf[512];
	struct iovec iov = {buf, 512};
	struct done d = {0};
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), 0);
	struct iscsi_pdu pdu;
	void *dst;
	memset(&pdu, 0, sizeof(pdu));
	struct iscsi_bhs_data_in *din = (struct iscsi_bhs_data_in *)(void *)&pdu.hdr;
	din->opcode = ISCSI_OP_DATA_IN;
	din->flags = ISCSI_FLAG_FINAL | ISCSI_DATA_STATUS;
	memcpy(din->itt, cmd_at(0)->itt, 4);
	pdu.data_len = 512;
	CU_ASSERT_EQUAL(ini_rx_data_dst(s, &pdu, &dst), 0);
	pdu.data = dst;
	pdu.ddigest_bad = true;
	CU_ASSERT(ini_rx_pdu(s, &pdu) < 0);
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(s->state, SESS_RECOVER);
	CU_ASSERT_EQUAL(s->nqueued, 1);
	ini_session_destroy(s);
}

static void test_tmf(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[2][512];
	struct iovec iov[2] = {{buf[0], 512}, {buf[1], 512}};
	struct done d[2] = {{0}}, op = {0};

	CU_ASSERT_EQUAL(ini_read(s, 3, 0, 1, &iov[0], 1, done_cb, &d[0]), 0);
	CU_ASSERT_EQUAL(ini_read(s, 4, 0, 1, &iov[1], 1, done_cb, &d[1]), 0);
	CU_ASSERT_EQUAL(ini_lun_reset(s, 3, done_cb, &op), 0);
	CU_ASSERT_EQUAL(op.calls, 0); /* never inside the call */
	ini_session_tick(s);
	CU_ASSERT_EQUAL(nsent, 3);
	const struct iscsi_bhs_tmf_req *t = (const void *)&sent[2].hdr;
	CU_ASSERT_EQUAL(op_at(2), ISCSI_OP_TMF_REQ);
	CU_ASSERT(sent[2].hdr.bhs.opcode & ISCSI_OP_IMMEDIATE);
	CU_ASSERT_EQUAL(t->function & 0x7f, ISCSI_TMF_LUN_RESET);
	CU_ASSERT_EQUAL(t->lun[1], 3);

	struct iscsi_bhs_tmf_rsp r;
	memset(&r, 0, sizeof(r));
	r.opcode = ISCSI_OP_TMF_RSP;
	r.flags = ISCSI_FLAG_FINAL;
	r.response = ISCSI_TMF_RSP_COMPLETE;
	memcpy(r.itt, t->itt, 4);
	put_be32(r.exp_cmdsn, 102);
	put_be32(r.max_cmdsn, 131);
	CU_ASSERT_EQUAL(feed(s, &r, NULL, 0, NULL), 0);
	/* The reset LUN's command ends; the other LUN's does not. */
	CU_ASSERT_EQUAL(d[0].calls, 1);
	CU_ASSERT_EQUAL(d[0].rc, -ECANCELED);
	CU_ASSERT_EQUAL(d[1].calls, 0);
	CU_ASSERT_EQUAL(op.calls, 1);
	CU_ASSERT_EQUAL(op.rc, 0);

	/* ABORT TASK per command of LUN 4, naming its ITT and CmdSN. */
	memset(&op, 0, sizeof(op));
	CU_ASSERT_EQUAL(ini_abort_lun_tasks(s, 4, done_cb, &op), 0);
	ini_session_tick(s);
	CU_ASSERT_EQUAL(nsent, 4);
	t = (const void *)&sent[3].hdr;
	CU_ASSERT_EQUAL(t->function & 0x7f, ISCSI_TMF_ABORT_TASK);
	CU_ASSERT_EQUAL(get_be32(t->rtt), get_be32(cmd_at(1)->itt));
	CU_ASSERT_EQUAL(get_be32(t->refcmdsn), 101);
	r.response = ISCSI_TMF_RSP_NOT_SUPPORTED;
	memcpy(r.itt, t->itt, 4);
	CU_ASSERT_EQUAL(feed(s, &r, NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(op.calls, 1);
	CU_ASSERT_EQUAL(op.rc, -EIO);
	CU_ASSERT_EQUAL(d[1].calls, 0); /* refused: the command goes on */
	CU_ASSERT_EQUAL(send_rsp(s, get_be32(cmd_at(1)->itt), 0, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(d[1].calls, 1);
	CU_ASSERT_EQUAL(d[1].rc, 0);
	ini_session_destroy(s);
}

static void test_submit_errors(void)
{
	struct ini_session *s = new_session(32);
	static uint8_t buf[512];
	struct iovec iov = {buf, 512};
	struct done d = {0};

	/* A buffer shorter than the transfer is refused, the callback never runs. */
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 2, &iov, 1, done_cb, &d), -EINVAL);
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 0, &iov, 1, done_cb, &d), -EINVAL);
	/* More than INI_MAX_TASKS outstanding: -EBUSY. */
	s->max_cmdsn = s->cmdsn - 1; /* window closed: everything queues */
	unsigned ok = 0;
	for (unsigned i = 0; i < INI_MAX_TASKS + 1; i++)
		ok += ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d) == 0;
	CU_ASSERT_EQUAL(ok, INI_MAX_TASKS);
	CU_ASSERT_EQUAL(ini_read(s, 0, 0, 1, &iov, 1, done_cb, &d), -EBUSY);
	CU_ASSERT_EQUAL(nsent, 0);
	CU_ASSERT_EQUAL(d.calls, 0);
	/* Closing fails them all with -ECANCELED. */
	struct done cd = {0};
	s->conn = CONN_DOWN;
	CU_ASSERT_EQUAL(ini_session_close(s, done_cb, &cd), 0);
	CU_ASSERT_EQUAL(d.calls, INI_MAX_TASKS);
	CU_ASSERT_EQUAL(d.rc, -ECANCELED);
	CU_ASSERT_EQUAL(cd.calls, 0); /* later, from the tick */
	ini_session_tick(s);
	CU_ASSERT_EQUAL(cd.calls, 1);
	ini_session_destroy(s);
}

int main(void)
{
	CU_pSuite su;

	util_log_init("cmd_ut", false, false);
	reactor = util_reactor_create("ut");
	if (!reactor || CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	su = CU_add_suite("ini-cmd", NULL, NULL);
	CU_add_test(su, "read: zero copy", test_read_zero_copy);
	CU_add_test(su, "read: bounce, DataSN", test_read_bounce_and_datasn);
	CU_add_test(su, "write: immediate, unsolicited, R2T", test_write_immediate_unsolicited_r2t);
	CU_add_test(su, "write: split at iovecs", test_write_splits_at_iovecs);
	CU_add_test(su, "CmdSN window", test_cmdsn_window);
	CU_add_test(su, "unit attention and busy", test_unit_attention_and_busy_retry);
	CU_add_test(su, "error mapping", test_error_mapping);
	CU_add_test(su, "connection loss: resend in order", test_connection_loss_resends_in_order);
	CU_add_test(su, "timeouts, recovery off", test_timeouts_and_recovery_off);
	CU_add_test(su, "state reports", test_state_reports);
	CU_add_test(su, "completion waits for the transport", test_completion_waits_for_transport);
	CU_add_test(su, "NOP, data digest error", test_nop_and_digest_error);
	CU_add_test(su, "TMF", test_tmf);
	CU_add_test(su, "submit errors, close", test_submit_errors);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	util_reactor_destroy(reactor);
	util_log_fini();
	return fails ? 1 : 0;
}
