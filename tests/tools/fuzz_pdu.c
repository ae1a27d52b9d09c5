/*
 * fuzz_pdu: a seeded mutation fuzzer for the iSCSI target.
 *
 * Several connections at once log in to the fuzzed target (properly, with
 * random header/data digests, or through a mutated login) and send
 * well-formed-looking PDUs with mutations: SCSI commands of many opcodes with
 * random lengths, immediate data and flags, Data-Out for known and unknown
 * tasks, NOP-Out, Text, Task Management, Logout, SNACK and unknown opcodes,
 * then header mutations on top (lying DataSegmentLength, AHS, sequence
 * numbers out of window, LUNs, reserved bits, bad digests). A connection the
 * target closes is opened again.
 *
 * Every few seconds a well-behaved session to a second target (the "check"
 * volume, which the fuzz traffic never addresses) writes a block, reads it
 * back, and re-reads a block written by an earlier check: the engine must
 * keep serving, within a bound (a hang is a failure), with the right data.
 * A session to the fuzzed target must also still answer a command.
 *
 * Reproducing: the run is driven by --seed. Each connection episode draws its
 * own seed from it, printed with -v and on a failure; "-e SEED" replays one
 * episode alone on one connection (the target's answers, such as R2Ts, still
 * steer it, so a replay is close but not byte-exact).
 *
 * Like robust.c, the tool shares no code with the target beyond the wire
 * structs: its text keys and CRC32C are its own.
 *
 * Usage: fuzz_pdu -p PORT -t FUZZ_IQN -k CHECK_IQN [-H HOST] [-s SECONDS]
 *                 [-S SEED] [-c CONNS] [-i CHECK_MS] [-e EPISODE_SEED] [-v]
 * Ends with "fuzz_pdu: seed S, N episodes, N PDUs, N checks: ok" (exit 0) or
 * a FAIL line (exit 1); 2 on a usage error.
 */
#define UTIL_LOG_TAG "fuzz_pdu"

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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iscsi/iscsi_proto.h"
#include "util/util.h"

#define INITIATOR_NAME	"iqn.2026-11.org.vmengine:fuzz"
#define CHECK_INITIATOR "iqn.2026-11.org.vmengine:fuzz-check"
#define LOGIN_DATA_MAX	8192
#define RX_MAX		(4u << 20) /* stream buffer bound per connection */
#define TX_DATA_MAX	(1u << 20)
#define MAX_CONNS	16
#define MAX_R2T		32
#define RECENT_ITT	16
#define CHECK_BLOCKS	64 /* blocks of the check volume the checks write */
#define CANARY                                                                                     \
	"\xfe"                                                                                     \
	"FZCANARY"                                                                                 \
	"\x01" /* in the check volume's data only */
#define CANARY_LEN 10

struct opts {
	const char *host;
	uint16_t port;
	const char *target; /* fuzzed */
	const char *check;  /* check volume, never fuzzed */
	unsigned seconds;
	uint64_t seed;
	unsigned conns;
	unsigned check_ms;
	bool episode_mode;
	uint64_t episode_seed;
	int wait_ms;
	bool verbose;
};

static struct opts g_opt = {
    .host = "127.0.0.1",
    .seconds = 30,
    .conns = 4,
    .check_ms = 2000,
    .wait_ms = 10000,
};

static void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vlog(const char *fmt, ...)
{
	va_list ap;

	if (!g_opt.verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#include "tool_wire.h"
#include "fuzz_pdu_wire.h"
#include "fuzz_pdu_login.h"
#include "fuzz_pdu_gen.h"
/* ---- the check: a well-behaved session still serves right ---- */

struct check_state {
	uint32_t block_size;
	uint64_t blocks;
	uint32_t stamp[CHECK_BLOCKS]; /* what block i holds (0: never written) */
	uint32_t next_stamp;
	uint16_t isid;
};

static struct check_state g_chk;
static char g_fail[512];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_fail, sizeof(g_fail), fmt, ap);
	va_end(ap);
}

/*
 * Run one command on a plain session: \p out (\p out_len bytes) as data-out
 * (immediate, then R2Ts), data-in into \p in (\p in_len). Returns the SCSI
 * status (a unit attention answered by CHECK CONDITION is retried), -1 on a
 * time-out or a closed connection.
 */
static int check_cmd(struct conn *c, const uint8_t *cdb, const uint8_t *out, uint32_t out_len,
		     uint8_t *in, uint32_t in_len, int64_t deadline)
{
	for (int tries = 0; tries < 4; tries++) {
		struct iscsi_bhs_scsi_cmd h;
		uint32_t itt = ++c->itt, got = 0;
		uint32_t imm = UTIL_MIN(out_len, c->peer_mrdsl);
		struct rpdu p;

		memset(&h, 0, sizeof(h));
		h.opcode = ISCSI_OP_SCSI_CMD;
		h.flags = ISCSI_FLAG_FINAL | 0x01 | (out_len ? ISCSI_CMD_WRITE : 0) |
			  (in_len ? ISCSI_CMD_READ : 0);
		put_be32(h.itt, itt);
		put_be32(h.exp_xfer_len, out_len ? out_len : in_len);
		put_be32(h.cmdsn, c->cmdsn++);
		put_be32(h.exp_statsn, c->exp_statsn);
		memcpy(h.cdb, cdb, 16);
		if (send_pdu(c, &h, out, imm) < 0)
			return -1;
		for (;;) {
			int rc = recv_pdu(c, &p, deadline);
			uint8_t op;

			if (rc <= 0) {
				recv_done(c);
				return -1;
			}
			op = p.bhs[0] & ISCSI_OP_MASK;
			answer_ping(c, &p);
			if (get_be32(p.bhs + 16) != itt)
				continue;
			if (op == ISCSI_OP_R2T) {
				struct iscsi_bhs_data_out d;
				uint32_t off = get_be32(p.bhs + 40), len = get_be32(p.bhs + 44);
				uint32_t ttt = get_be32(p.bhs + 20);

				c->nr2t = 0;
				recv_done(c);
				if (off > out_len || len > out_len - off)
					return -1;
				for (uint32_t sent = 0, sn = 0; sent < len; sn++) {
					uint32_t n = UTIL_MIN(len - sent, c->peer_mrdsl);

					memset(&d, 0, sizeof(d));
					d.opcode = ISCSI_OP_DATA_OUT;
					d.flags = sent + n == len ? ISCSI_FLAG_FINAL : 0;
					put_be32(d.itt, itt);
					put_be32(d.ttt, ttt);
					put_be32(d.exp_statsn, c->exp_statsn);
					put_be32(d.datasn, sn);
					put_be32(d.buffer_offset, off + sent);
					if (send_pdu(c, &d, out + off + sent, n) < 0)
						return -1;
					sent += n;
				}
				continue;
			}
			if (op == ISCSI_OP_DATA_IN) {
				uint32_t off = get_be32(p.bhs + 40);

				if (off <= in_len && p.dlen <= in_len - off) {
					memcpy(in + off, p.data, p.dlen);
					got = UTIL_MAX(got, off + p.dlen);
				}
				if (p.bhs[1] & ISCSI_DATA_STATUS) {
					int st = p.bhs[3];
					recv_done(c);
					return st;
				}
				continue;
			}
			if (op == ISCSI_OP_SCSI_RSP) {
				int st = p.bhs[3];
				bool ua = false;

				if (st == 0x02 && p.dlen >= 5) {
					const uint8_t *s = p.data + 2;
					int key = (s[0] & 0x7f) >= 0x72 ? s[1] & 0x0f : s[2] & 0x0f;
					ua = key == 0x6;
				}
				recv_done(c);
				if (ua)
					break;
				return st;
			}
			recv_done(c);
		}
	}
	return 0x02;
}

static void check_logout(struct conn *c)
{
	struct iscsi_bhs_logout_req q;
	struct rpdu p;
	int64_t deadline = now_ms() + 2000;

	memset(&q, 0, sizeof(q));
	q.opcode = ISCSI_OP_LOGOUT_REQ | ISCSI_OP_IMMEDIATE;
	q.flags = ISCSI_FLAG_FINAL;
	put_be32(q.itt, ++c->itt);
	put_be32(q.cmdsn, c->cmdsn);
	put_be32(q.exp_statsn, c->exp_statsn);
	if (send_pdu(c, &q, NULL, 0) == 0) {
		while (recv_pdu(c, &p, deadline) == 1) {
			bool done = (p.bhs[0] & ISCSI_OP_MASK) == ISCSI_OP_LOGOUT_RSP;
			recv_done(c);
			if (done)
				break;
		}
	}
	recv_done(c);
	conn_close(c);
}

/*
 * What the checks write: every 64 bytes start with CANARY, which nothing sent
 * on a fuzz connection ever contains, so a fuzz session reading it was given
 * bytes of another session's buffer.
 */
static void check_pattern(uint8_t *buf, uint32_t len, uint32_t block, uint32_t stamp)
{
	for (uint32_t i = 0; i + 4 <= len; i += 4)
		put_be32(buf + i, stamp * 2654435761u ^ block ^ i);
	for (uint32_t i = 0; i + CANARY_LEN <= len; i += 64)
		memcpy(buf + i, CANARY, CANARY_LEN);
}

/*
 * The check: log in to the check volume (digests at random), write a fresh
 * pattern to one of its CHECK_BLOCKS last blocks, read it back, re-read
 * another block written earlier; then a command on the fuzzed volume, whose
 * status may be anything (reservations, sanitize) but must come. 0 or -1
 * with g_fail set.
 */
static int check(struct rng *r)
{
	static uint8_t wbuf[65536], rbuf[65536];
	struct login_args a = {.initiator = CHECK_INITIATOR, .target = g_opt.check, .report = true};
	struct conn c = {.fd = -1};
	int64_t deadline = now_ms() + g_opt.wait_ms;
	uint8_t cdb[16];
	int st;

	if (g_leak[0]) {
		fail("%s", g_leak);
		return -1;
	}
	c.rbuf = malloc(RX_MAX);
	if (!c.rbuf) {
		fail("out of memory");
		return -1;
	}
	a.isid[0] = 0x80;
	put_be16(a.isid + 4, ++g_chk.isid);
	a.hdigest = chance(r, 50);
	a.ddigest = chance(r, 50);
	if (do_login(&c, &a) != 0) {
		fail("a well-behaved login to %s failed or hung", g_opt.check);
		goto out;
	}
	if (g_chk.block_size == 0) {
		memset(cdb, 0, sizeof(cdb));
		cdb[0] = 0x25; /* READ CAPACITY(10) */
		st = check_cmd(&c, cdb, NULL, 0, rbuf, 8, deadline);
		if (st != 0) {
			fail("READ CAPACITY on %s: status %d", g_opt.check, st);
			goto out;
		}
		g_chk.blocks = (uint64_t)get_be32(rbuf) + 1;
		g_chk.block_size = get_be32(rbuf + 4);
		if (g_chk.block_size == 0 || g_chk.block_size > sizeof(wbuf) ||
		    g_chk.blocks < CHECK_BLOCKS) {
			fail("READ CAPACITY on %s: %" PRIu64 " blocks of %u", g_opt.check,
			     g_chk.blocks, g_chk.block_size);
			goto out;
		}
	}
	uint32_t bs = g_chk.block_size;
	uint32_t i = rn(r, CHECK_BLOCKS);
	uint64_t lba = g_chk.blocks - CHECK_BLOCKS + i;
	uint32_t stamp = ++g_chk.next_stamp;

	check_pattern(wbuf, bs, i, stamp);
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x8a; /* WRITE(16) */
	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, 1);
	st = check_cmd(&c, cdb, wbuf, bs, NULL, 0, deadline);
	if (st != 0) {
		fail("WRITE(16) of block %" PRIu64 " on %s: status %d", lba, g_opt.check, st);
		goto out;
	}
	g_chk.stamp[i] = stamp;
	for (int k = 0; k < 2; k++) {
		uint32_t j = k == 0 ? i : rn(r, CHECK_BLOCKS);

		if (g_chk.stamp[j] == 0)
			continue;
		memset(rbuf, 0xee, bs);
		memset(cdb, 0, sizeof(cdb));
		cdb[0] = 0x88; /* READ(16) */
		put_be64(cdb + 2, g_chk.blocks - CHECK_BLOCKS + j);
		put_be32(cdb + 10, 1);
		st = check_cmd(&c, cdb, NULL, 0, rbuf, bs, deadline);
		if (st != 0) {
			fail("READ(16) of block %u on %s: status %d", j, g_opt.check, st);
			goto out;
		}
		check_pattern(wbuf, bs, j, g_chk.stamp[j]);
		if (memcmp(wbuf, rbuf, bs) != 0) {
			fail("block %u of %s reads back wrong (stamp %u)", j, g_opt.check,
			     g_chk.stamp[j]);
			goto out;
		}
	}
	check_logout(&c);

	/*
	 * The fuzzed volume answers too (any status). A fuzz TARGET COLD RESET
	 * still in flight may end this session once: one retry.
	 */
	a.target = g_opt.target;
	a.hdigest = a.ddigest = false;
	for (int tries = 0;; tries++) {
		put_be16(a.isid + 4, ++g_chk.isid);
		deadline = now_ms() + g_opt.wait_ms;
		st = do_login(&c, &a);
		if (st == 0) {
			memset(cdb, 0, sizeof(cdb));
			cdb[0] = 0x28; /* READ(10) of block 0 */
			put_be16(cdb + 7, 1);
			st = check_cmd(&c, cdb, NULL, 0, rbuf, 512, deadline);
		}
		if (st >= 0) {
			/* A write too: a stuck write gate (scsi_caw.c) blocks writes only. */
			memset(wbuf, 0, 512);
			memset(cdb, 0, sizeof(cdb));
			cdb[0] = 0x2a; /* WRITE(10) of block 0 */
			put_be16(cdb + 7, 1);
			st = check_cmd(&c, cdb, wbuf, 512, NULL, 0, deadline);
		}
		if (st >= 0)
			break;
		conn_close(&c);
		if (tries == 1) {
			fail("no login to, or no READ/WRITE answer from, %s within %d ms",
			     g_opt.target, g_opt.wait_ms);
			goto out;
		}
	}
	check_logout(&c);
	free(c.rbuf);
	return 0;
out:
	conn_close(&c);
	free(c.rbuf);
	return -1;
}

/* ---- episodes ---- */

static uint64_t g_episodes, g_pdus, g_checks, g_logins_mut, g_logins_ok;

static uint64_t mix(uint64_t a, uint64_t b)
{
	struct rng r = {a ^ (b * 0x9e3779b97f4a7c15ull)};

	return rnd(&r);
}

/* Start an episode on \p c: a login (plain or mutated) and a PDU budget. */
static void episode_start(struct conn *c, uint64_t ep_seed, unsigned slot)
{
	struct login_args a = {.initiator = INITIATOR_NAME, .target = g_opt.target};
	struct rng *r = &c->rng;

	c->ep_seed = ep_seed;
	c->rng.s = ep_seed;
	c->fuzz = true;
	g_episodes++;
	vlog("slot %u: episode seed 0x%016" PRIx64, slot, ep_seed);
	a.isid[0] = 0x80;
	/* ISIDs are reused, across slots too: sessions reinstate each other with I/O in flight. */
	a.isid[3] = chance(r, 50) ? (uint8_t)slot : 0;
	put_be16(a.isid + 4, (uint16_t)rn(r, 4));
	a.hdigest = chance(r, 40);
	a.ddigest = chance(r, 40);
	if (chance(r, 15)) {
		a.mut = r;
		g_logins_mut++;
	}
	if (chance(r, 50))
		a.vary = r;
	/* Never the check volume: what the checks wrote there must stay theirs. */
	if (chance(r, 3))
		a.target = "iqn.2026-11.org.vmengine:nosuch";
	if (do_login(c, &a) != 0) {
		conn_close(c);
		return;
	}
	g_logins_ok++;
	c->ops_left = 1 + rn(r, chance(r, 20) ? 2000 : 200);
	/* Most episodes keep the framing right and live long; some break it. */
	c->hdr_pct = chance(r, 60) ? 0 : chance(r, 70) ? 2 : 20;
}

/* One step of the episode on \p c: a fuzzed PDU, then whatever came back. */
static void episode_step(struct conn *c)
{
	struct rng *r = &c->rng;

	if (fuzz_one(c, r) < 0 || drain(c) < 0) {
		conn_close(c);
		return;
	}
	g_pdus++;
	if (chance(r, 20))
		usleep(rn(r, 2000)); /* let the target answer, and sometimes race it */
	if (--c->ops_left == 0) {
		if (chance(r, 50))
			check_logout(c);
		else
			conn_close(c);
	}
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: fuzz_pdu -p PORT -t FUZZ_IQN -k CHECK_IQN [-H HOST] [-s SECONDS] [-S SEED]\n"
	    "                [-c CONNS] [-i CHECK_MS] [-w MS] [-e EPISODE_SEED] [-v]\n");
}

static void report_fail(const struct conn *conns, unsigned n)
{
	printf("FAIL %s\n", g_fail);
	printf("     seed 0x%016" PRIx64 "; episodes in flight:", g_opt.seed);
	for (unsigned i = 0; i < n; i++)
		if (conns[i].fd >= 0 || conns[i].ep_seed)
			printf(" 0x%016" PRIx64, conns[i].ep_seed);
	printf("\n");
}

int main(int argc, char **argv)
{
	static struct conn conns[MAX_CONNS];
	struct rng main_rng, chk_rng;
	int64_t end, next_check;
	bool seeded = false;
	int opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "p:t:k:H:s:S:c:i:w:e:v")) != -1) {
		switch (opt) {
		case 'p':
			g_opt.port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			g_opt.target = optarg;
			break;
		case 'k':
			g_opt.check = optarg;
			break;
		case 'H':
			g_opt.host = optarg;
			break;
		case 's':
			g_opt.seconds = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'S':
			g_opt.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'c':
			g_opt.conns = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			g_opt.check_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			g_opt.wait_ms = (int)strtol(optarg, NULL, 10);
			break;
		case 'e':
			g_opt.episode_mode = true;
			g_opt.episode_seed = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			g_opt.verbose = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (g_opt.port == 0 || !g_opt.target || !g_opt.check || g_opt.conns == 0 ||
	    g_opt.conns > MAX_CONNS || g_opt.wait_ms <= 0 || g_opt.check_ms == 0) {
		usage();
		return 2;
	}
	if (!seeded)
		g_opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	crc_init();
	printf("fuzz_pdu: seed 0x%016" PRIx64 ", %u s, %u connections\n", g_opt.seed, g_opt.seconds,
	       g_opt.conns);
	main_rng.s = g_opt.seed;
	chk_rng.s = mix(g_opt.seed, 0xc0ffee);
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		conns[i].fd = -1;
		conns[i].rbuf = malloc(RX_MAX);
		if (!conns[i].rbuf) {
			fprintf(stderr, "out of memory\n");
			return 1;
		}
	}
	if (check(&chk_rng) != 0) {
		printf("FAIL baseline (before any fuzzing): %s\n", g_fail);
		return 1;
	}
	g_checks++;
	if (g_opt.episode_mode) {
		struct conn *c = &conns[0];

		episode_start(c, g_opt.episode_seed, 0);
		while (c->fd >= 0)
			episode_step(c);
		if (check(&chk_rng) != 0) {
			report_fail(conns, 1);
			return 1;
		}
		printf("fuzz_pdu: episode 0x%016" PRIx64 ": %" PRIu64 " PDUs, check ok\n",
		       g_opt.episode_seed, g_pdus);
		return 0;
	}
	end = now_ms() + (int64_t)g_opt.seconds * 1000;
	next_check = now_ms() + g_opt.check_ms;
	while (now_ms() < end) {
		unsigned i = rn(&main_rng, g_opt.conns);
		struct conn *c = &conns[i];

		if (c->fd < 0)
			episode_start(c, mix(g_opt.seed, g_episodes + 1), i);
		else
			episode_step(c);
		if (now_ms() >= next_check) {
			if (check(&chk_rng) != 0) {
				report_fail(conns, g_opt.conns);
				return 1;
			}
			g_checks++;
			next_check = now_ms() + g_opt.check_ms;
		}
	}
	for (unsigned i = 0; i < g_opt.conns; i++)
		conn_close(&conns[i]);
	if (check(&chk_rng) != 0) {
		report_fail(conns, g_opt.conns);
		return 1;
	}
	g_checks++;
	printf("fuzz_pdu: seed 0x%016" PRIx64 ", %" PRIu64 " episodes (%" PRIu64
	       " logged in, %" PRIu64 " mutated logins), %" PRIu64 " PDUs, %" PRIu64
	       " checks: ok\n",
	       g_opt.seed, g_episodes, g_logins_ok, g_logins_mut, g_pdus, g_checks);
	for (unsigned i = 0; i < 64; i++)
		if (g_rx_ops[i])
			vlog("received opcode 0x%02x: %" PRIu64, i, g_rx_ops[i]);
	for (unsigned i = 0; i < 256; i++)
		if (g_rx_status[i])
			vlog("SCSI status 0x%02x: %" PRIu64, i, g_rx_status[i]);
	for (unsigned i = 0; i < 16 * 64; i++)
		if (g_rx_rej[i / 64][i % 64])
			vlog("Reject reason 0x%02x of opcode 0x%02x: %" PRIu64, i / 64, i % 64,
			     g_rx_rej[i / 64][i % 64]);
	for (unsigned i = 0; i < UTIL_ARRAY_SIZE(g_sense) && g_sense[i].n; i++)
		vlog("sense %x/%02x/%02x: %" PRIu64, g_sense[i].k >> 16, (g_sense[i].k >> 8) & 0xff,
		     g_sense[i].k & 0xff, g_sense[i].n);
	for (unsigned i = 0; i < MAX_CONNS; i++)
		free(conns[i].rbuf);
	return 0;
}
