/*
 * Unit tests of iscsi/pdu.c: the receive machine and the transmit queue over
 * a socketpair, digests, resumption after partial reads, limits; serial
 * number arithmetic across the wrap.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi/iscsi.h"

struct sink {
	uint8_t data[65536];
	struct iscsi_pdu last;
	uint8_t last_data[65536];
	int npdus;
	int pause;
};

static int sink_dst(void *ctx, struct iscsi_pdu *pdu, void **dst)
{
	struct sink *s = ctx;

	*dst = s->data;
	return pdu->data_len <= sizeof(s->data) ? 0 : -EINVAL;
}

static int sink_pdu(void *ctx, struct iscsi_pdu *pdu)
{
	struct sink *s = ctx;

	s->last = *pdu;
	if (pdu->data_len)
		memcpy(s->last_data, pdu->data, pdu->data_len);
	s->npdus++;
	return s->pause;
}

static const struct iscsi_rx_ops sink_ops = {.data_dst = sink_dst, .pdu = sink_pdu};

static void make_pair(int sv[2])
{
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
}

static void fill_pdu(struct iscsi_txpdu *tp, uint8_t op, uint32_t itt, const void *data,
		     uint32_t len)
{
	memset(tp, 0, sizeof(*tp));
	tp->hdr.bhs.opcode = op;
	tp->hdr.bhs.flags = ISCSI_FLAG_FINAL;
	put_be32(tp->hdr.bhs.itt, itt);
	tp->data = data;
	tp->data_len = len;
}

static int done_count;
static void count_done(struct iscsi_txpdu *tp, void *arg)
{
	(void)tp;
	(void)arg;
	done_count++;
}

static void roundtrip(bool hd, bool dd)
{
	int sv[2];
	struct iscsi_tx tx;
	struct iscsi_rx rx;
	struct sink *s = calloc(1, sizeof(*s));
	static uint8_t payload[5000];
	struct iscsi_txpdu p1, p2, p3;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	make_pair(sv);
	iscsi_tx_init(&tx);
	tx.hdigest = hd;
	tx.ddigest = dd;
	iscsi_rx_init(&rx, &sink_ops, s, 8192);
	rx.hdigest = hd;
	rx.ddigest = dd;

	fill_pdu(&p1, ISCSI_OP_NOP_OUT, 1, NULL, 0);
	fill_pdu(&p2, ISCSI_OP_SCSI_CMD, 2, payload, 4097); /* needs 3 bytes of pad */
	fill_pdu(&p3, ISCSI_OP_TEXT_REQ, 3, payload, 12);
	p1.done = p2.done = p3.done = count_done;
	done_count = 0;
	iscsi_tx_queue(&tx, &p1);
	iscsi_tx_queue(&tx, &p2);
	iscsi_tx_queue(&tx, &p3);
	CU_ASSERT_EQUAL(iscsi_tx_flush(&tx, sv[0]), 0);
	CU_ASSERT_EQUAL(done_count, 3);
	CU_ASSERT_TRUE(iscsi_tx_empty(&tx));

	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
	CU_ASSERT_EQUAL(s->npdus, 3);
	CU_ASSERT_EQUAL(get_be32(s->last.hdr.bhs.itt), 3);
	CU_ASSERT_EQUAL(s->last.data_len, 12);
	CU_ASSERT_FALSE(s->last.ddigest_bad);
	CU_ASSERT_EQUAL(memcmp(s->last_data, payload, 12), 0);
	close(sv[0]);
	close(sv[1]);
	free(s);
}

static void test_roundtrip_plain(void)
{
	roundtrip(false, false);
}

static void test_roundtrip_digests(void)
{
	roundtrip(true, true);
}

/* Bytes arriving one at a time: the machine resumes at every stage. */
static void test_byte_by_byte(void)
{
	int sv[2], wire[2];
	struct iscsi_tx tx;
	struct iscsi_rx rx;
	struct sink *s = calloc(1, sizeof(*s));
	uint8_t payload[33], buf[512];
	struct iscsi_txpdu p;

	memset(payload, 0xab, sizeof(payload));
	make_pair(wire);
	make_pair(sv);
	iscsi_tx_init(&tx);
	tx.hdigest = tx.ddigest = true;
	fill_pdu(&p, ISCSI_OP_SCSI_CMD, 9, payload, sizeof(payload));
	iscsi_tx_queue(&tx, &p);
	CU_ASSERT_EQUAL(iscsi_tx_flush(&tx, wire[0]), 0);
	ssize_t n = read(wire[1], buf, sizeof(buf));
	CU_ASSERT_EQUAL(n, 48 + 4 + 36 + 4);

	iscsi_rx_init(&rx, &sink_ops, s, 8192);
	rx.hdigest = rx.ddigest = true;
	for (ssize_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(write(sv[0], buf + i, 1), 1);
		CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
		CU_ASSERT_EQUAL(s->npdus, i == n - 1 ? 1 : 0);
	}
	CU_ASSERT_FALSE(s->last.ddigest_bad);
	CU_ASSERT_EQUAL(memcmp(s->last_data, payload, sizeof(payload)), 0);

	/* Flip a data byte: the PDU arrives flagged, the stream stays in sync. */
	buf[48 + 4 + 5] ^= 1;
	CU_ASSERT_EQUAL(write(sv[0], buf, (size_t)n), n);
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
	CU_ASSERT_EQUAL(s->npdus, 2);
	CU_ASSERT_TRUE(s->last.ddigest_bad);
	CU_ASSERT_EQUAL(rx.state, ISCSI_RX_BHS);

	/* Flip a header byte: a header digest error ends the stream. */
	buf[5] ^= 0; /* keep the length valid */
	buf[20] ^= 1;
	CU_ASSERT_EQUAL(write(sv[0], buf, (size_t)n), n);
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), -EPROTO);
	CU_ASSERT_EQUAL(rx.state, ISCSI_RX_ERROR);
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	close(wire[0]);
	close(wire[1]);
	free(s);
}

static void test_limits_and_eof(void)
{
	int sv[2];
	struct iscsi_rx rx;
	struct sink *s = calloc(1, sizeof(*s));
	uint8_t bhs[48] = {0};

	make_pair(sv);
	iscsi_rx_init(&rx, &sink_ops, s, 8192);
	put_be24(bhs + 5, 8193); /* one byte above the limit */
	CU_ASSERT_EQUAL(write(sv[0], bhs, sizeof(bhs)), 48);
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), -EPROTO);
	CU_ASSERT_EQUAL(s->npdus, 0);

	iscsi_rx_init(&rx, &sink_ops, s, 8192);
	put_be24(bhs + 5, 0);
	CU_ASSERT_EQUAL(write(sv[0], bhs, 20), 20);
	close(sv[0]);
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), -ECONNRESET); /* truncated header */
	close(sv[1]);
	free(s);
}

static void test_pause(void)
{
	int sv[2];
	struct iscsi_rx rx;
	struct sink *s = calloc(1, sizeof(*s));
	uint8_t bhs[96] = {0};

	make_pair(sv);
	iscsi_rx_init(&rx, &sink_ops, s, 8192);
	s->pause = 1;
	CU_ASSERT_EQUAL(write(sv[0], bhs, sizeof(bhs)), 96);
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
	CU_ASSERT_EQUAL(s->npdus, 1); /* paused after the first */
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
	CU_ASSERT_EQUAL(s->npdus, 2);
	close(sv[0]);
	close(sv[1]);
	free(s);
}

/* A socket that takes little at a time: partial writes resume mid-PDU. */
static void test_partial_writes(void)
{
	int sv[2];
	struct iscsi_tx tx;
	struct iscsi_rx rx;
	struct sink *s = calloc(1, sizeof(*s));
	uint8_t *payload = malloc(60000);
	struct iscsi_txpdu p[8];
	int sndbuf = 4096;

	for (int i = 0; i < 60000; i++)
		payload[i] = (uint8_t)(i ^ (i >> 8));
	make_pair(sv);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	iscsi_tx_init(&tx);
	tx.ddigest = true;
	iscsi_rx_init(&rx, &sink_ops, s, 65536);
	rx.ddigest = true;
	done_count = 0;
	for (int i = 0; i < 8; i++) {
		fill_pdu(&p[i], ISCSI_OP_DATA_OUT, (uint32_t)i, payload, 60000u - (uint32_t)i);
		p[i].done = count_done;
		iscsi_tx_queue(&tx, &p[i]);
	}
	int rounds = 0;
	while (!iscsi_tx_empty(&tx) && rounds++ < 100000) {
		int rc = iscsi_tx_flush(&tx, sv[0]);
		CU_ASSERT(rc == 0 || rc == -EAGAIN);
		CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
		CU_ASSERT_FALSE(s->last.ddigest_bad);
	}
	CU_ASSERT_EQUAL(iscsi_rx_read(&rx, sv[1]), 0);
	CU_ASSERT_EQUAL(done_count, 8);
	CU_ASSERT_EQUAL(s->npdus, 8);
	CU_ASSERT_EQUAL(s->last.data_len, 60000 - 7);
	CU_ASSERT_EQUAL(memcmp(s->last_data, payload, 60000 - 7), 0);
	close(sv[0]);
	close(sv[1]);
	free(payload);
	free(s);
}

static void test_abort(void)
{
	struct iscsi_tx tx;
	struct iscsi_txpdu p[3];

	iscsi_tx_init(&tx);
	done_count = 0;
	for (int i = 0; i < 3; i++) {
		fill_pdu(&p[i], ISCSI_OP_NOP_OUT, 0, NULL, 0);
		p[i].done = count_done;
		iscsi_tx_queue(&tx, &p[i]);
	}
	iscsi_tx_abort(&tx);
	CU_ASSERT_EQUAL(done_count, 3);
	CU_ASSERT_TRUE(iscsi_tx_empty(&tx));
}

static void test_serial(void)
{
	CU_ASSERT_TRUE(sn_lt(1, 2));
	CU_ASSERT_TRUE(sn_lt(0xffffffffu, 0)); /* across the wrap */
	CU_ASSERT_TRUE(sn_gt(0, 0xfffffff0u));
	CU_ASSERT_FALSE(sn_lt(5, 5));
	CU_ASSERT_TRUE(sn_le(5, 5));
	CU_ASSERT_TRUE(sn_ge(0x80000000u, 0x7fffffffu));
	CU_ASSERT_FALSE(sn_gt(0x7fffffffu, 0x80000000u));
	CU_ASSERT_TRUE(sn_lt(0x7ffffff0u, 0x80000001u));
}

static void test_opcode_names(void)
{
	CU_ASSERT_STRING_EQUAL(iscsi_opcode_name(ISCSI_OP_SCSI_CMD | ISCSI_OP_IMMEDIATE),
			       "SCSI-Cmd");
	CU_ASSERT_STRING_EQUAL(iscsi_opcode_name(0x1b), "unknown");
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("pdu", NULL, NULL);
	CU_add_test(s, "roundtrip plain", test_roundtrip_plain);
	CU_add_test(s, "roundtrip digests", test_roundtrip_digests);
	CU_add_test(s, "byte by byte, digest errors", test_byte_by_byte);
	CU_add_test(s, "limits and eof", test_limits_and_eof);
	CU_add_test(s, "pause", test_pause);
	CU_add_test(s, "partial writes", test_partial_writes);
	CU_add_test(s, "abort", test_abort);
	CU_add_test(s, "serial arithmetic", test_serial);
	CU_add_test(s, "opcode names", test_opcode_names);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
