/*
 * robust: raw-socket robustness cases against an iSCSI target.
 *
 * Each case opens its own TCP connection to HOST:PORT and sends something a
 * well-behaved initiator never sends (a truncated header, a lying
 * DataSegmentLength, an unknown opcode, random bytes, ...). The tool checks
 * the target's reaction within a bounded time against what RFC 7143 asks for
 * (a Reject PDU, a failed login, or the connection closed), then checks that
 * the target still serves: a fresh connection logs in and completes a TEST
 * UNIT READY. The login is done by hand (text keys built here) so that the
 * tool does not share code, and therefore bugs, with the target under test;
 * for the same reason the CRC32C of the digest cases is a bit-by-bit
 * implementation of its own instead of util_crc32c().
 *
 * Usage: robust -p PORT -t TARGET_IQN [-H HOST] [-l LUN] [-w MS] [-c CASE]... [-L] [-v]
 * Prints one line per case and "robust: N passed, N failed"; exits 1 when a
 * case failed, 2 on a usage error.
 */
#define UTIL_LOG_TAG "robust"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "iscsi/iscsi_proto.h"
#include "util/util.h"

#define INITIATOR_NAME	  "iqn.2026-11.org.vmengine:robust"
#define LOGIN_DATA_MAX	  8192 /* RFC 7143 13.12: MaxRecvDataSegmentLength default in login */
#define RX_DATA_MAX	  (1u << 20)
#define OP_UNKNOWN	  0x0f /* an initiator opcode RFC 7143 11.2.1.2 does not define */
#define ITT_UNKNOWN	  0x7eadbeefu
#define SCSI_STATUS_GOOD  0x00
#define SCSI_STATUS_CHECK 0x02
#define SK_UNIT_ATTENTION 0x6

struct opts {
	const char *host;
	uint16_t port;
	const char *target;
	uint64_t lun;
	int wait_ms; /* bound on every reaction we wait for */
	bool verbose;
};

static struct opts g_opt = {
    .host = "127.0.0.1",
    .wait_ms = 5000,
};

/* One initiator-side connection with its sequence numbers. */
struct conn {
	int fd;
	uint32_t cmdsn;
	uint32_t exp_statsn;
	uint32_t itt;
	uint32_t peer_mrdsl; /* the target's MaxRecvDataSegmentLength */
	bool hdigest;	     /* CRC32C header digests in force */
};

/* A received PDU. */
struct rpdu {
	union {
		struct iscsi_bhs bhs;
		uint8_t raw[ISCSI_BHS_LEN];
	} h;
	uint8_t *data; /* RX_DATA_MAX bytes, owned by the caller */
	uint32_t dlen;
};

static char g_why[512]; /* why the last step failed, for the case line */

static void why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_why, sizeof(g_why), fmt, ap);
	va_end(ap);
}

static void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vlog(const char *fmt, ...)
{
	va_list ap;

	if (!g_opt.verbose)
		return;
	va_start(ap, fmt);
	fputs("    ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#include "tool_wire.h"
#include "robust_wire.h"
/* ---- reactions ---- */
enum reaction {
	R_CLOSED,     /* connection closed (possibly after PDUs listed in g_seen) */
	R_REJECT,     /* a Reject PDU */
	R_LOGIN_FAIL, /* a Login Response with a non-zero status class */
	R_TIMEOUT,
	R_OTHER, /* some other PDU: described in g_why */
};

static uint8_t g_reject_reason;
static uint16_t g_login_status;
static char g_seen[128]; /* the reaction observed, for the case line */

/*
 * Wait for the target's reaction on \p c: returns at the first Reject, failed
 * Login Response, close, or other PDU (NOP-In and Async Message are skipped).
 */
static enum reaction wait_reaction(struct conn *c)
{
	int64_t deadline = now_ms() + g_opt.wait_ms;
	struct rpdu p;
	enum reaction r = R_TIMEOUT;

	p.data = malloc(RX_DATA_MAX);
	if (p.data == NULL)
		return R_TIMEOUT;
	for (;;) {
		int rc = recv_pdu(c, &p, deadline);
		uint8_t op;

		if (rc == 0 || rc == -E2BIG) {
			size_t n = strlen(g_seen);

			snprintf(g_seen + n, sizeof(g_seen) - n, "%sclosed", n ? ", then " : "");
			r = R_CLOSED;
			break;
		}
		if (rc < 0) {
			r = R_TIMEOUT;
			break;
		}
		op = p.h.bhs.opcode & ISCSI_OP_MASK;
		if (op == ISCSI_OP_NOP_IN || op == ISCSI_OP_ASYNC_MSG)
			continue;
		if (op == ISCSI_OP_REJECT) {
			g_reject_reason =
			    ((const struct iscsi_bhs_reject *)(void *)p.h.raw)->reason;
			snprintf(g_seen, sizeof(g_seen), "Reject reason 0x%02x", g_reject_reason);
			r = R_REJECT;
			break;
		}
		if (op == ISCSI_OP_LOGIN_RSP) {
			const struct iscsi_bhs_login_rsp *lr = (const void *)p.h.raw;

			g_login_status =
			    (uint16_t)ISCSI_LOGIN_STATUS(lr->status_class, lr->status_detail);
			if (lr->status_class != 0) {
				snprintf(g_seen, sizeof(g_seen), "login status 0x%04x",
					 g_login_status);
				r = R_LOGIN_FAIL;
				break;
			}
		}
		why("target answered with opcode 0x%02x", op);
		r = R_OTHER;
		break;
	}
	free(p.data);
	return r;
}

/*
 * Before full feature phase the only acceptable outcome is the end of the
 * connection; a Login Response with a failure status on the way is fine
 * (RFC 7143 11.13.5: after a failed login status the connection is closed).
 */
static int expect_closed(struct conn *c, const char *what)
{
	enum reaction r = wait_reaction(c);

	if (r == R_LOGIN_FAIL)
		r = wait_reaction(c);
	if (r == R_CLOSED)
		return 0;
	if (r == R_TIMEOUT)
		why("%s: connection still open after %d ms", what, g_opt.wait_ms);
	else if (r == R_REJECT)
		why("%s: Reject reason 0x%02x but the connection stayed open", what,
		    g_reject_reason);
	return -1;
}

/* In full feature phase: a Reject PDU, or the connection closed. */
static int expect_reject_or_close(struct conn *c, const char *what)
{
	enum reaction r = wait_reaction(c);

	if (r == R_REJECT || r == R_CLOSED)
		return 0;
	if (r == R_TIMEOUT)
		why("%s: no Reject and connection still open after %d ms", what, g_opt.wait_ms);
	return -1;
}

/* ---- the cases ---- */
static int raw_open(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = tcp_connect();
	return c->fd < 0 ? c->fd : 0;
}

/* A login BHS announcing \p dlen data bytes, the security stage. */
static void bad_login_bhs(struct iscsi_bhs_login_req *req, uint32_t dlen)
{
	struct conn c = {.itt = 1, .cmdsn = 1};

	login_bhs(req, &c, ISCSI_LOGIN_TRANSIT | ISCSI_STAGE_OPERATIONAL, next_isid());
	put_be24(req->dlength, dlen);
}

/* 20 of the 48 header bytes, then close: the target must not wait or crash. */
static int case_trunc_bhs(void)
{
	struct iscsi_bhs_login_req req;
	struct conn c;
	int rc = raw_open(&c);

	if (rc < 0)
		return rc;
	bad_login_bhs(&req, 0);
	rc = send_all(c.fd, &req, 20);
	conn_close(&c);
	return rc;
}

/* DataSegmentLength 1024, only 100 bytes follow, then close. */
static int case_login_short_data(void)
{
	struct iscsi_bhs_login_req req;
	uint8_t data[100];
	struct conn c;
	int rc = raw_open(&c);

	if (rc < 0)
		return rc;
	bad_login_bhs(&req, 1024);
	memset(data, 'A', sizeof(data));
	rc = send_all(c.fd, &req, sizeof(req));
	if (rc == 0)
		rc = send_all(c.fd, data, sizeof(data));
	conn_close(&c);
	return rc;
}

/*
 * A login announcing a 16 MiB data segment. Until MaxRecvDataSegmentLength is
 * negotiated its default of 8192 bytes bounds every login PDU (RFC 7143
 * 13.12), so the target must refuse without reading (or allocating) 16 MiB:
 * a Login Response with status 0x0200 (initiator error) and/or a close.
 */
static int case_login_16m(void)
{
	struct iscsi_bhs_login_req req;
	struct conn c;
	struct text t = {.len = 0};
	int rc = raw_open(&c);

	if (rc < 0)
		return rc;
	bad_login_bhs(&req, ISCSI_MAX_DSL);
	text_add(&t, "InitiatorName", INITIATOR_NAME);
	text_add(&t, "TargetName", g_opt.target);
	rc = send_all(c.fd, &req, sizeof(req));
	if (rc == 0)
		rc = send_all(c.fd, t.buf, t.len);
	rc = rc ? rc : expect_closed(&c, "16 MiB login");
	conn_close(&c);
	return rc;
}

/*
 * RFC 7143 6.3: "Before the Full Feature Phase is established, only Login
 * Request and Login Response PDUs are allowed." A target receiving another
 * PDU first must end the connection.
 */
static int case_prelogin_pdu(uint8_t opcode, const char *what)
{
	struct iscsi_bhs_scsi_cmd cmd;
	struct conn c;
	int rc = raw_open(&c);

	if (rc < 0)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = opcode;
	cmd.flags = ISCSI_FLAG_FINAL;
	put_be32(cmd.itt, 1);
	put_be32(cmd.cmdsn, 1);
	rc = send_all(c.fd, &cmd, sizeof(cmd));
	rc = rc ? rc : expect_closed(&c, what);
	conn_close(&c);
	return rc;
}

static int case_prelogin_unknown(void)
{
	return case_prelogin_pdu(OP_UNKNOWN, "unknown opcode before login");
}

static int case_prelogin_scsi(void)
{
	return case_prelogin_pdu(ISCSI_OP_SCSI_CMD, "SCSI command before login");
}

/*
 * 4 KiB of random bytes as the first PDU. The seed is fixed so every run sends
 * the same bytes; its first byte is not a Login opcode (checked), so by RFC
 * 7143 6.3 the target must close the connection.
 */
static int case_garbage_first(void)
{
	uint8_t buf[4096];
	struct conn c;
	int rc;

	fill_random(buf, sizeof(buf), 0x5eed1234u);
	if ((buf[0] & ISCSI_OP_MASK) == ISCSI_OP_LOGIN_REQ)
		buf[0] ^= 0x01;
	rc = raw_open(&c);
	if (rc < 0)
		return rc;
	rc = send_all(c.fd, buf, sizeof(buf));
	/* The target may close while we still send: that is the expected reaction. */
	if (rc == -EPIPE || rc == -ECONNRESET) {
		snprintf(g_seen, sizeof(g_seen), "closed while sending");
		rc = 0;
	} else {
		rc = rc ? rc : expect_closed(&c, "garbage");
	}
	conn_close(&c);
	return rc;
}

/*
 * An unknown opcode in full feature phase: RFC 7143 11.17.1 lists Reject
 * reason 0x05 "Command not supported" (0x04 "Protocol Error" is accepted
 * too); a Reject does not end the session, so the same connection must go on
 * serving.
 */
static int case_ffp_unknown_opcode(void)
{
	struct iscsi_bhs_nop bhs;
	struct conn c;
	enum reaction r;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	memset(&bhs, 0, sizeof(bhs));
	bhs.opcode = OP_UNKNOWN;
	bhs.flags = ISCSI_FLAG_FINAL;
	put_be32(bhs.itt, ++c.itt);
	put_be32(bhs.sn, c.cmdsn);
	put_be32(bhs.exp_sn, c.exp_statsn);
	rc = send_pdu(&c, &bhs, NULL, 0);
	if (rc < 0) {
		conn_close(&c);
		return rc;
	}
	r = wait_reaction(&c);
	if (r != R_REJECT) {
		if (r == R_TIMEOUT)
			why("no Reject within %d ms", g_opt.wait_ms);
		else if (r == R_CLOSED)
			why("connection closed instead of a Reject");
		conn_close(&c);
		return -1;
	}
	if (g_reject_reason != ISCSI_REJECT_CMD_NOT_SUPPORTED &&
	    g_reject_reason != ISCSI_REJECT_PROTOCOL_ERROR) {
		why("Reject reason 0x%02x, expected 0x05 or 0x04", g_reject_reason);
		conn_close(&c);
		return -1;
	}
	rc = tur(&c);
	if (rc != 0) {
		char prev[sizeof(g_why)];

		snprintf(prev, sizeof(prev), "%s", g_why);
		why("after the Reject the session no longer serves: %s", prev);
	}
	logout(&c);
	return rc;
}

/*
 * A WRITE whose immediate data exceed the MaxRecvDataSegmentLength the target
 * declared. RFC 7143 13.12: that value is the most the declarer accepts in
 * one PDU's data segment; a larger PDU is a protocol error: a Reject, or the
 * connection dropped, never a hang or a write of the data.
 */
static int case_ffp_write_over_mrdsl(void)
{
	struct iscsi_bhs_scsi_cmd cmd;
	struct conn c;
	uint32_t dlen, blocks;
	uint8_t *buf;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	dlen = c.peer_mrdsl + 4096;
	blocks = dlen / 512;
	buf = calloc(1, dlen);
	if (buf == NULL) {
		conn_close(&c);
		return -ENOMEM;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = ISCSI_OP_SCSI_CMD;
	cmd.flags = ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 0x01;
	put_lun(cmd.lun, g_opt.lun);
	put_be32(cmd.itt, ++c.itt);
	put_be32(cmd.exp_xfer_len, dlen);
	put_be32(cmd.cmdsn, c.cmdsn++);
	put_be32(cmd.exp_statsn, c.exp_statsn);
	cmd.cdb[0] = 0x2a; /* WRITE(10), LBA 0 */
	put_be16(cmd.cdb + 7, (uint16_t)blocks);
	rc = send_pdu(&c, &cmd, buf, dlen);
	free(buf);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		snprintf(g_seen, sizeof(g_seen), "closed while sending");
		rc = 0; /* the expected reaction */
	} else
		rc = rc ? rc : expect_reject_or_close(&c, "oversized WRITE");
	conn_close(&c);
	return rc;
}

/*
 * A Data-Out for a task that does not exist. The ITT names no command, so
 * the PDU cannot be placed: RFC 7143 11.17.1 "Invalid PDU field" (0x09) or
 * "Protocol Error" (0x04) in a Reject, or the connection dropped.
 */
static int case_ffp_dataout_unknown_itt(void)
{
	struct iscsi_bhs_data_out d;
	uint8_t data[512];
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	memset(&d, 0, sizeof(d));
	memset(data, 0x5a, sizeof(data));
	d.opcode = ISCSI_OP_DATA_OUT;
	d.flags = ISCSI_FLAG_FINAL;
	put_lun(d.lun, g_opt.lun);
	put_be32(d.itt, ITT_UNKNOWN);
	put_be32(d.ttt, ISCSI_RSVD_TAG);
	put_be32(d.exp_statsn, c.exp_statsn);
	rc = send_pdu(&c, &d, data, sizeof(data));
	rc = rc ? rc : expect_reject_or_close(&c, "Data-Out for an unknown ITT");
	conn_close(&c);
	return rc;
}

/* 4 KiB of random bytes (fixed seed) after a login: a Reject or a close. */
static int case_ffp_garbage(void)
{
	uint8_t buf[4096];
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	fill_random(buf, sizeof(buf), 0xbadc0deu);
	rc = send_all(c.fd, buf, sizeof(buf));
	if (rc == -EPIPE || rc == -ECONNRESET) {
		snprintf(g_seen, sizeof(g_seen), "closed while sending");
		rc = 0;
	} else
		rc = rc ? rc : expect_reject_or_close(&c, "garbage after login");
	conn_close(&c);
	return rc;
}

/*
 * A header digest that does not match, with CRC32C negotiated. RFC 7143 7.8:
 * the receiver "MUST either discard the header and all data up to the
 * beginning of a later PDU or close the connection"; without markers the
 * next PDU cannot be found, so at ErrorRecoveryLevel 0 the connection closes.
 */
static int case_hdigest_bad(void)
{
	struct iscsi_bhs_scsi_cmd cmd;
	uint8_t wire[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN];
	struct conn c;
	int rc = login(&c, true);

	if (rc != 0)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = ISCSI_OP_SCSI_CMD;
	cmd.flags = ISCSI_FLAG_FINAL | 0x01;
	put_lun(cmd.lun, g_opt.lun);
	put_be32(cmd.itt, ++c.itt);
	put_be32(cmd.cmdsn, c.cmdsn++);
	put_be32(cmd.exp_statsn, c.exp_statsn);
	memcpy(wire, &cmd, ISCSI_BHS_LEN);
	put_digest(wire + ISCSI_BHS_LEN, crc32c_sw(wire, ISCSI_BHS_LEN) ^ 0x00010000u);
	rc = send_all(c.fd, wire, sizeof(wire));
	rc = rc ? rc : expect_reject_or_close(&c, "bad header digest");
	conn_close(&c);
	return rc;
}

/*
 * Positive check: offering HeaderDigest=CRC32C only, the target takes it
 * (RFC 7143 13.1), and then every PDU it sends carries a correct digest
 * (checked against this file's own CRC32C) through a TEST UNIT READY and a
 * logout.
 */
static int case_hdigest_ok(void)
{
	struct conn c;
	int rc = login(&c, true);

	if (rc != 0)
		return rc;
	rc = tur(&c);
	logout(&c);
	return rc;
}

#include "robust_dataout.h"
static const struct rcase g_cases[] = {
    {"trunc-bhs", case_trunc_bhs, true, "we close; target keeps serving"},
    {"login-short-data", case_login_short_data, true, "we close; target keeps serving"},
    {"login-dsl-16m", case_login_16m, true, "closed (8192 bytes during login)"},
    {"prelogin-unknown-opcode", case_prelogin_unknown, true, "closed (RFC 7143 6.3)"},
    {"prelogin-scsi-cmd", case_prelogin_scsi, true, "closed (RFC 7143 6.3)"},
    {"garbage-first", case_garbage_first, true, "closed"},
    {"ffp-unknown-opcode", case_ffp_unknown_opcode, true, "Reject 0x05/0x04, session lives"},
    {"ffp-write-over-mrdsl", case_ffp_write_over_mrdsl, true, "Reject or closed"},
    {"ffp-dataout-unknown-itt", case_ffp_dataout_unknown_itt, true, "Reject or closed"},
    {"ffp-garbage", case_ffp_garbage, true, "Reject or closed"},
    {"hdigest-bad", case_hdigest_bad, true, "closed or Reject (RFC 7143 7.8)"},
    {"hdigest-crc32c", case_hdigest_ok, false, "CRC32C negotiated, digests right"},
    {"write-edtl-short", case_write_edtl_short, true, "no stale data stored"},
    {"write-no-wbit", case_write_no_wbit, true, "no stale data stored"},
    {"imm-over-edtl", case_imm_over_edtl, true, "not GOOD, no stale data stored"},
    {"dataout-overlap", case_dataout_overlap, true, "not GOOD, no stale data stored"},
    {"nop-flood", case_nop_flood, true, "target stops reading (backpressure)"},
};

static void usage(void)
{
	fprintf(stderr,
		"usage: robust -p PORT -t TARGET_IQN [-H HOST] [-l LUN] [-w MS] [-c CASE]... "
		"[-L] [-v]\n"
		"  -c CASE  run only these cases (default: every case marked default)\n"
		"  -L       list the cases\n");
}

static int run_case(const struct rcase *tc, unsigned *passed, unsigned *failed)
{
	int rc;

	g_why[0] = '\0';
	g_seen[0] = '\0';
	rc = tc->fn();
	if (rc != 0) {
		printf("FAIL %s: %s (expected: %s)\n", tc->name,
		       g_why[0] ? g_why : strerror(rc < 0 ? -rc : EIO), tc->expect);
		(*failed)++;
		return -1;
	}
	rc = serves();
	if (rc != 0) {
		printf("FAIL %s: reaction ok, but then the target no longer serves: %s\n", tc->name,
		       g_why);
		(*failed)++;
		return -1;
	}
	printf("ok   %s: %s (expected: %s)\n", tc->name, g_seen[0] ? g_seen : "no error",
	       tc->expect);
	(*passed)++;
	return 0;
}

int main(int argc, char **argv)
{
	const char *only[UTIL_ARRAY_SIZE(g_cases)];
	unsigned nonly = 0, passed = 0, failed = 0;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "p:t:H:l:w:c:Lv")) != -1) {
		switch (c) {
		case 'p':
			g_opt.port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			g_opt.target = optarg;
			break;
		case 'H':
			g_opt.host = optarg;
			break;
		case 'l':
			g_opt.lun = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			g_opt.wait_ms = (int)strtol(optarg, NULL, 10);
			break;
		case 'c':
			if (nonly == UTIL_ARRAY_SIZE(only)) {
				usage();
				return 2;
			}
			only[nonly++] = optarg;
			break;
		case 'L':
			for (size_t i = 0; i < UTIL_ARRAY_SIZE(g_cases); i++)
				printf("%s%s\n", g_cases[i].name,
				       g_cases[i].by_default ? "" : " (-c only)");
			return 0;
		case 'v':
			g_opt.verbose = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (g_opt.port == 0 || g_opt.target == NULL || g_opt.wait_ms <= 0) {
		usage();
		return 2;
	}
	if (!crc32c_selftest()) {
		printf("FAIL crc32c self-test (RFC 7143 B.4 vector)\n");
		return 1;
	}
	/* A target that does not serve at the start makes every case meaningless. */
	if (serves() != 0) {
		printf("FAIL baseline: target does not serve before any case: %s\n", g_why);
		printf("robust: 0 passed, 1 failed\n");
		return 1;
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(g_cases); i++) {
		bool want = nonly == 0 && g_cases[i].by_default;

		for (unsigned k = 0; k < nonly; k++)
			want = want || strcmp(only[k], g_cases[i].name) == 0;
		if (want)
			run_case(&g_cases[i], &passed, &failed);
	}
	for (unsigned k = 0; k < nonly; k++) {
		bool known = false;

		for (size_t i = 0; i < UTIL_ARRAY_SIZE(g_cases); i++)
			known = known || strcmp(only[k], g_cases[i].name) == 0;
		if (!known) {
			printf("FAIL %s: no such case (robust -L lists them)\n", only[k]);
			failed++;
		}
	}
	printf("robust: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
