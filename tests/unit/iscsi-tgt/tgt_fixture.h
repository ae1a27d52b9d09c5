/*
 * tgt_fixture.h: the shared fixture of the target connection-core tests
 * (conn_ut.c, cmd_ut.c, tmf_ut.c).
 *
 * The real iscsi-tgt library runs over one util_reactor that the test thread
 * drives; the test plays the initiator with raw PDUs on the other end of a
 * socketpair (or of a loopback TCP connection where the target's own address
 * matters). Stepping is deterministic: a reactor message re-sends itself,
 * reads what the target wrote, and stops the loop once the awaited PDU (or
 * the end of the stream) is there, or after a bounded number of rounds.
 *
 * The volume is a fake kept in memory (this file defines the vol.h
 * functions the target uses, so libvol.a contributes nothing): requests are
 * queued and completed from a later reactor message, as vol.h promises, or
 * held until the test releases them (fx_hold), which lets tests observe
 * what the target does while I/O is in flight.
 *
 * Debugging: UT_LOG=1 turns the target's log on (stderr), UT_PDU=1 prints
 * every PDU the initiator side receives.
 */
#ifndef TGT_FIXTURE_H
#define TGT_FIXTURE_H

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi-tgt/tgt_internal.h"

/* Each test file uses a different part of the fixture. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define FX_BS	  512u
#define FX_BLOCKS 2048u
#define FX_PREFIX "iqn.2026-11.org.vmengine"
#define FX_IQN	  FX_PREFIX ":vol1"
#define FX_INI	  "iqn.2026-11.org.test:host1"
#define FX_STEPS  20000u /* bound of one wait, in reactor rounds */
#define FX_MAXC	  4	 /* initiator connections open at once */
#define FX_MAXVOL 64

/* ---- the fake volume ---- */

struct vol {
	char name[VOL_NAME_MAX + 1];
	uint8_t *data;
	uint64_t size;
	uint32_t bs;
	uint8_t id[VOL_ID_LEN];
};
struct vol_chan {
	int unused;
};

static struct util_reactor *fx_r;
static struct tgt *fx_tgt;
static struct tgt_config fx_cfg;
static struct vol fx_vols[FX_MAXVOL];
static unsigned fx_nvols;
static struct vol_chan fx_chan;

#define FX_IOQ 256
static struct vol_io *fx_ioq[FX_IOQ];
static unsigned fx_nio;
static bool fx_hold;	    /* keep requests queued until fx_release() */
static bool fx_io_msg;	    /* a completion message is queued */
static unsigned fx_submits; /* requests accepted */

const char *vol_name(const struct vol *v)
{
	return v->name;
}

uint64_t vol_size(const struct vol *v)
{
	return v->size;
}

uint32_t vol_block_size(const struct vol *v)
{
	return v->bs;
}

const uint8_t *vol_id(const struct vol *v)
{
	return v->id;
}

int vol_get_lba_status(struct vol *v, uint64_t offset, uint64_t *len, bool *mapped)
{
	if (offset >= v->size || *len == 0)
		return -EINVAL;
	*len = UTIL_MIN(*len, v->size - offset);
	*mapped = true;
	return 0;
}

struct vol_chan *vol_chan_create(struct util_reactor *r)
{
	(void)r;
	return &fx_chan;
}

void vol_chan_destroy(struct vol_chan *ch)
{
	CU_ASSERT_PTR_EQUAL(ch, &fx_chan);
}

/* Run every queued request against the memory, then its callback. */
static void fx_io_run(void *arg)
{
	(void)arg;
	fx_io_msg = false;
	while (fx_nio > 0 && !fx_hold) {
		struct vol_io *io = fx_ioq[0];
		uint64_t off = io->offset;

		memmove(fx_ioq, fx_ioq + 1, --fx_nio * sizeof(fx_ioq[0]));
		switch (io->op) {
		case VOL_OP_READ:
		case VOL_OP_WRITE:
			for (int i = 0; i < io->iovcnt; i++) {
				uint8_t *mem = io->vol->data + off;
				if (io->op == VOL_OP_READ)
					memcpy(io->iov[i].iov_base, mem, io->iov[i].iov_len);
				else
					memcpy(mem, io->iov[i].iov_base, io->iov[i].iov_len);
				off += io->iov[i].iov_len;
			}
			break;
		case VOL_OP_UNMAP:
		case VOL_OP_WRITE_ZEROES:
			memset(io->vol->data + io->offset, 0, io->len);
			break;
		default:
			break;
		}
		io->cb(io->cb_arg, 0);
	}
}

static void fx_io_kick(void)
{
	if (fx_io_msg || fx_hold || fx_nio == 0)
		return;
	fx_io_msg = true;
	CU_ASSERT_EQUAL(util_reactor_send(fx_r, fx_io_run, NULL), 0);
}

int vol_submit(struct vol_chan *ch, struct vol *v, struct vol_io *io)
{
	CU_ASSERT_PTR_EQUAL(ch, &fx_chan);
	if (io->op != VOL_OP_FLUSH && (io->offset % v->bs || io->len % v->bs ||
				       io->offset > v->size || io->len > v->size - io->offset))
		return -EINVAL;
	CU_ASSERT_FATAL(fx_nio < FX_IOQ);
	io->vol = v;
	fx_ioq[fx_nio++] = io;
	fx_submits++;
	/* vol.h: the callback of an accepted request always runs later. */
	fx_io_kick();
	return 0;
}

/* Let held requests complete (from a reactor message, on the next steps). */
static void fx_release(void)
{
	fx_hold = false;
	fx_io_kick();
}

/* ---- the initiator side of a connection ---- */

struct fx_conn {
	int fd;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	bool eof;
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
	uint32_t itt;	/* next initiator task tag */
	uint32_t cmdsn; /* next CmdSN to send */
	uint32_t exp_statsn;
	/* ExpCmdSN and MaxCmdSN of the last PDU received that carries them */
	uint32_t exp_cmdsn, max_cmdsn;
};

struct fx_pdu {
	union {
		struct iscsi_bhs bhs;
		uint8_t raw[ISCSI_BHS_LEN];
	} hdr;
	uint8_t *data; /* malloc'ed copy, NUL-terminated; fx_pdu_free() */
	uint32_t len;
};

static struct fx_conn *fx_conns[FX_MAXC];

static void fx_pdu_free(struct fx_pdu *p)
{
	free(p->data);
	p->data = NULL;
	p->len = 0;
}

static uint8_t fx_op(const struct fx_pdu *p)
{
	return iscsi_bhs_opcode(&p->hdr.bhs);
}

/* Read what the target wrote; note the end of the stream. */
static void fx_pump(struct fx_conn *c)
{
	while (!c->eof) {
		if (c->rx_cap - c->rx_len < 65536) {
			size_t cap = c->rx_cap ? c->rx_cap * 2 : 262144;
			uint8_t *n = realloc(c->rx, cap);
			if (!n)
				return;
			c->rx = n;
			c->rx_cap = cap;
		}
		ssize_t n = read(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
		if (n > 0) {
			c->rx_len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			c->eof = true;
		if (n < 0 && errno == EINTR)
			continue;
		return;
	}
}

static void fx_pump_all(void)
{
	for (unsigned i = 0; i < FX_MAXC; i++)
		if (fx_conns[i])
			fx_pump(fx_conns[i]);
}

/* Bytes of the first buffered PDU, or 0 when it is not complete yet. */
static size_t fx_pdu_bytes(const struct fx_conn *c)
{
	if (c->rx_len < ISCSI_BHS_LEN)
		return 0;
	const struct iscsi_bhs *b = (const void *)c->rx;
	uint32_t dl = iscsi_bhs_dlength(b);
	size_t total = ISCSI_BHS_LEN + b->total_ahs_len * 4u + dl + ISCSI_PAD(dl);
	return c->rx_len >= total ? total : 0;
}

/* ---- stepping the reactor ---- */

typedef bool (*fx_cond_fn)(void *arg);

struct fx_wait {
	fx_cond_fn cond;
	void *arg;
	unsigned n, max;
	bool met;
};

static void fx_step(void *arg)
{
	struct fx_wait *w = arg;

	fx_pump_all();
	if (w->cond && w->cond(w->arg)) {
		w->met = true;
		util_reactor_stop(fx_r);
		return;
	}
	if (++w->n >= w->max || util_reactor_send(fx_r, fx_step, w) < 0)
		util_reactor_stop(fx_r);
}

/* Run the reactor until \p cond holds (true) or \p max rounds passed (false). */
static bool fx_run_until(fx_cond_fn cond, void *arg, unsigned max)
{
	struct fx_wait w = {.cond = cond, .arg = arg, .max = max};

	if (util_reactor_send(fx_r, fx_step, &w) < 0)
		return false;
	util_reactor_run(fx_r);
	return w.met;
}

static void fx_run(unsigned rounds)
{
	fx_run_until(NULL, NULL, rounds);
}

static bool fx_cond_pdu(void *arg)
{
	struct fx_conn *c = arg;
	return fx_pdu_bytes(c) > 0 || c->eof;
}

static bool fx_cond_eof(void *arg)
{
	struct fx_conn *c = arg;
	return c->eof;
}

/* Wait for the next PDU; false when the stream ended or nothing came. */
static bool fx_recv(struct fx_conn *c, struct fx_pdu *p)
{
	memset(p, 0, sizeof(*p));
	if (!fx_pdu_bytes(c))
		fx_run_until(fx_cond_pdu, c, FX_STEPS);
	size_t total = fx_pdu_bytes(c);
	if (!total)
		return false;
	memcpy(p->hdr.raw, c->rx, ISCSI_BHS_LEN);
	p->len = iscsi_bhs_dlength(&p->hdr.bhs);
	p->data = malloc(p->len + 1);
	if (!p->data)
		return false;
	memcpy(p->data, c->rx + ISCSI_BHS_LEN + p->hdr.bhs.total_ahs_len * 4u, p->len);
	p->data[p->len] = 0;
	memmove(c->rx, c->rx + total, c->rx_len - total);
	c->rx_len -= total;
	uint8_t op = fx_op(p);
	if (getenv("UT_PDU"))
		fprintf(stderr, "PDU op 0x%02x flags 0x%02x itt 0x%x len %u sn %u/%u/%u st %u\n",
			op, p->hdr.bhs.flags, get_be32(p->hdr.bhs.itt), p->len,
			get_be32(p->hdr.raw + 24), get_be32(p->hdr.raw + 28),
			get_be32(p->hdr.raw + 32), p->hdr.raw[3]);
	if (op != ISCSI_OP_DATA_IN || (p->hdr.bhs.flags & ISCSI_DATA_STATUS)) {
		if (op != ISCSI_OP_R2T)
			c->exp_statsn = get_be32(p->hdr.raw + 24) + 1;
	}
	if (op != ISCSI_OP_LOGIN_RSP || c->tsih) {
		c->exp_cmdsn = get_be32(p->hdr.raw + 28);
		c->max_cmdsn = get_be32(p->hdr.raw + 32);
	}
	return true;
}

/* Wait for the next PDU and check its opcode (fatal when absent). */
#define FX_RECV_OP(c, p, op)                                                                       \
	do {                                                                                       \
		CU_ASSERT_TRUE_FATAL(fx_recv((c), (p)));                                           \
		CU_ASSERT_EQUAL_FATAL(fx_op(p), (op));                                             \
	} while (0)

/* True when nothing arrives within \p rounds rounds (and the stream is open). */
static bool fx_quiet(struct fx_conn *c, unsigned rounds)
{
	fx_run_until(fx_cond_pdu, c, rounds);
	return fx_pdu_bytes(c) == 0 && !c->eof;
}

/* Wait until the target closed the connection; PDUs before the end are dropped. */
static bool fx_wait_eof(struct fx_conn *c)
{
	fx_run_until(fx_cond_eof, c, FX_STEPS);
	return c->eof;
}

/* Write all of \p buf, stepping the reactor while the socket is full. */
static bool fx_write(struct fx_conn *c, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	unsigned spins = 0;

	while (len > 0) {
		ssize_t n = write(c->fd, b, len);
		if (n > 0) {
			b += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (++spins > FX_STEPS)
			return false;
		fx_run(2);
	}
	return true;
}

/* Send one PDU: \p bhs (its DataSegmentLength is set here), data and pad, in one write. */
static bool fx_send(struct fx_conn *c, void *bhs, const void *data, uint32_t len)
{
	size_t total = ISCSI_BHS_LEN + len + ISCSI_PAD(len);
	uint8_t *buf = calloc(1, total);
	bool ok;

	if (!buf)
		return false;
	iscsi_bhs_set_dlength(bhs, len);
	memcpy(buf, bhs, ISCSI_BHS_LEN);
	if (len)
		memcpy(buf + ISCSI_BHS_LEN, data, len);
	ok = fx_write(c, buf, total);
	free(buf);
	return ok;
}

static struct fx_conn *fx_conn_add(int fd)
{
	struct fx_conn *c = calloc(1, sizeof(*c));

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	c->fd = fd;
	c->isid[0] = 0x80; /* random-type ISID (RFC 7143 11.12.5) */
	c->isid[5] = 1;
	c->itt = 0x1000;
	c->cmdsn = 1;
	c->cid = 1;
	for (unsigned i = 0; i < FX_MAXC; i++) {
		if (!fx_conns[i]) {
			fx_conns[i] = c;
			return c;
		}
	}
	CU_FAIL_FATAL("too many fixture connections");
	return NULL;
}

/* Hand one end of a new socketpair to the target; return the other end. */
static struct fx_conn *fx_connect(void)
{
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	/* tgt_conn_gone() balances what the portal's accept path counts. */
	atomic_fetch_add(&fx_tgt->nconns, 1);
	tgt_conn_start(&fx_tgt->workers[0], sv[0]);
	return fx_conn_add(sv[1]);
}

/*
 * Same over loopback TCP, so that the target sees a real local address
 * (SendTargets reports it as the TargetAddress). *\p port gets the port.
 */
static struct fx_conn *fx_connect_tcp(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int lfd, cfd, afd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CU_ASSERT_FATAL(listen(lfd, 1) == 0);
	CU_ASSERT_FATAL(getsockname(lfd, (struct sockaddr *)&sin, &sl) == 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(cfd >= 0);
	CU_ASSERT_FATAL(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	afd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	CU_ASSERT_FATAL(afd >= 0);
	close(lfd);
	CU_ASSERT_FATAL(fcntl(cfd, F_SETFL, O_NONBLOCK) == 0);
	/* As the portal does: no Nagle delay between a header and its data. */
	int one = 1;
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*port = ntohs(sin.sin_port);
	atomic_fetch_add(&fx_tgt->nconns, 1);
	tgt_conn_start(&fx_tgt->workers[0], afd);
	return fx_conn_add(cfd);
}

static void fx_conn_close(struct fx_conn *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < FX_MAXC; i++)
		if (fx_conns[i] == c)
			fx_conns[i] = NULL;
	close(c->fd);
	free(c->rx);
	free(c);
}

/* ---- setup ---- */

static bool fx_cond_ready(void *arg)
{
	(void)arg;
	return fx_tgt->workers[0].chan != NULL;
}

static bool fx_cond_no_conns(void *arg)
{
	(void)arg;
	return fx_tgt->workers[0].nconns == 0 && atomic_load(&fx_tgt->nconns) == 0;
}

/* Fill the memory of volume \p v with a pattern that names each byte's block. */
static void fx_vol_pattern(struct vol *v)
{
	for (uint64_t i = 0; i < v->size; i++)
		v->data[i] = (uint8_t)((i / v->bs) * 7 + i % 251);
}

static void fx_vol_init(struct vol *v, const char *name)
{
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->bs = FX_BS;
	v->size = (uint64_t)FX_BLOCKS * FX_BS;
	v->data = calloc(FX_BLOCKS, FX_BS);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v->data);
	for (unsigned i = 0; i < VOL_ID_LEN; i++)
		v->id[i] = (uint8_t)(0x60 + i + strlen(name));
	fx_vol_pattern(v);
}

/* Defaults of the tests: no pings or timers that depend on the clock. */
static void fx_config(struct tgt_config *cfg)
{
	tgt_config_default(cfg);
	snprintf(cfg->node_prefix, sizeof(cfg->node_prefix), "%s", FX_PREFIX);
	cfg->nop_interval_s = 0;
	cfg->login_timeout_s = 3600;
	cfg->queue_depth = 8;
}

/* Start the target with \p cfg and volume "vol1" (\p chap may be NULL). */
static void fx_start(const struct tgt_config *cfg, const struct iscsi_chap_cred *chap)
{
	fx_cfg = *cfg;
	fx_hold = false;
	fx_nio = 0;
	fx_io_msg = false;
	fx_submits = 0;
	fx_r = util_reactor_create("ut");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_r);
	fx_tgt = tgt_create(&fx_cfg, &fx_r, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_tgt);
	fx_nvols = 1;
	fx_vol_init(&fx_vols[0], "vol1");
	CU_ASSERT_EQUAL_FATAL(tgt_target_add(fx_tgt, &fx_vols[0], NULL, chap), 0);
	/* tgt_create() queued worker_init: it must run before connections. */
	CU_ASSERT_TRUE_FATAL(fx_run_until(fx_cond_ready, NULL, FX_STEPS));
}

/* Expose one more volume NAME (a target PREFIX:NAME). */
static void fx_add_volume(const char *name)
{
	CU_ASSERT_FATAL(fx_nvols < FX_MAXVOL);
	struct vol *v = &fx_vols[fx_nvols++];
	fx_vol_init(v, name);
	CU_ASSERT_EQUAL_FATAL(tgt_target_add(fx_tgt, v, NULL, NULL), 0);
}

/* Close every initiator end, let the target free its connections, stop. */
static void fx_stop(void)
{
	for (unsigned i = 0; i < FX_MAXC; i++)
		fx_conn_close(fx_conns[i]);
	fx_release();
	CU_ASSERT_TRUE(fx_run_until(fx_cond_no_conns, NULL, FX_STEPS));
	/* No connection is left, so tgt_shutdown() does not wait on this thread. */
	tgt_shutdown(fx_tgt);
	fx_run(8);
	tgt_destroy(fx_tgt);
	fx_tgt = NULL;
	util_reactor_destroy(fx_r);
	fx_r = NULL;
	for (unsigned i = 0; i < fx_nvols; i++) {
		free(fx_vols[i].data);
		fx_vols[i].data = NULL;
	}
	fx_nvols = 0;
}

/* ---- login ---- */

/* What the initiator offers in the operational stage. */
struct fx_params {
	uint32_t mrdsl; /* our MaxRecvDataSegmentLength */
	uint32_t max_burst, first_burst;
	bool immediate_data, initial_r2t;
	bool discovery;
	const char *target; /* NULL: FX_IQN */
};

static void fx_params_default(struct fx_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mrdsl = 65536;
	p->max_burst = 262144;
	p->first_burst = 65536;
	p->immediate_data = true;
	p->initial_r2t = false;
}

/* The keys of the first request: who logs in to what. */
static void fx_text_names(struct iscsi_text *t, const struct fx_params *p)
{
	CU_ASSERT_EQUAL(iscsi_text_add(t, "InitiatorName", "%s", FX_INI), 0);
	if (p->discovery) {
		CU_ASSERT_EQUAL(iscsi_text_add(t, "SessionType", "Discovery"), 0);
	} else {
		CU_ASSERT_EQUAL(iscsi_text_add(t, "SessionType", "Normal"), 0);
		CU_ASSERT_EQUAL(
		    iscsi_text_add(t, "TargetName", "%s", p->target ? p->target : FX_IQN), 0);
	}
}

static void fx_text_oper(struct iscsi_text *t, const struct fx_params *p)
{
	iscsi_text_add(t, "HeaderDigest", "None");
	iscsi_text_add(t, "DataDigest", "None");
	iscsi_text_add(t, "MaxRecvDataSegmentLength", "%u", p->mrdsl);
	if (!p->discovery) {
		iscsi_text_add(t, "InitialR2T", "%s", p->initial_r2t ? "Yes" : "No");
		iscsi_text_add(t, "ImmediateData", "%s", p->immediate_data ? "Yes" : "No");
		iscsi_text_add(t, "MaxBurstLength", "%u", p->max_burst);
		iscsi_text_add(t, "FirstBurstLength", "%u", p->first_burst);
		iscsi_text_add(t, "MaxOutstandingR2T", "1");
	}
	iscsi_text_add(t, "ErrorRecoveryLevel", "0");
}

/* Send one Login Request with \p flags (T, C, CSG, NSG) and text. */
static bool fx_login_req(struct fx_conn *c, uint8_t flags, const void *text, uint32_t len)
{
	struct iscsi_bhs_login_req h;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	h.flags = flags;
	memcpy(h.isid, c->isid, sizeof(h.isid));
	put_be16(h.tsih, c->tsih);
	put_be32(h.itt, c->itt);
	put_be16(h.cid, c->cid);
	put_be32(h.cmdsn, c->cmdsn);
	put_be32(h.exp_statsn, c->exp_statsn);
	return fx_send(c, &h, text, len);
}

static uint16_t fx_login_status(const struct fx_pdu *p)
{
	const struct iscsi_bhs_login_rsp *r = (const void *)p->hdr.raw;
	return (uint16_t)(r->status_class << 8 | r->status_detail);
}

/* Value of \p key in a received text segment ("" when absent); static storage. */
static const char *fx_text_get(const struct fx_pdu *p, const char *key)
{
	static char copy[65536];
	struct iscsi_kv kv[ISCSI_TEXT_MAX_KV];
	size_t n = 0;

	if (p->len >= sizeof(copy))
		return "";
	memcpy(copy, p->data, p->len);
	copy[p->len] = 0;
	if (iscsi_text_parse(copy, p->len, kv, UTIL_ARRAY_SIZE(kv), &n) < 0)
		return "";
	const char *v = iscsi_kv_get(kv, n, key);
	return v ? v : "";
}

/*
 * Log in without CHAP in one operational-stage request that transits to
 * the full feature phase. Returns the login status; on success the
 * connection's TSIH is set. *\p rsp (may be NULL) keeps the final response.
 */
static uint16_t fx_login(struct fx_conn *c, const struct fx_params *p, struct fx_pdu *rsp)
{
	struct iscsi_text t;
	struct fx_pdu r;
	uint16_t status;

	iscsi_text_init(&t);
	fx_text_names(&t, p);
	fx_text_oper(&t, p);
	CU_ASSERT_TRUE(fx_login_req(c,
				    ISCSI_LOGIN_TRANSIT |
					(ISCSI_STAGE_OPERATIONAL << ISCSI_LOGIN_CSG_SHIFT) |
					ISCSI_STAGE_FULL_FEATURE,
				    t.buf, t.len));
	iscsi_text_free(&t);
	if (!fx_recv(c, &r))
		return 0xffff;
	CU_ASSERT_EQUAL(fx_op(&r), ISCSI_OP_LOGIN_RSP);
	status = fx_login_status(&r);
	if (status == ISCSI_LS_SUCCESS) {
		const struct iscsi_bhs_login_rsp *h = (const void *)r.hdr.raw;
		c->tsih = get_be16(h->tsih);
		c->exp_cmdsn = get_be32(h->exp_cmdsn);
		c->max_cmdsn = get_be32(h->max_cmdsn);
	}
	if (rsp)
		*rsp = r;
	else
		fx_pdu_free(&r);
	return status;
}

/* Connect and log in with \p p: one connection in the full feature phase. */
static struct fx_conn *fx_session(const struct fx_params *p)
{
	struct fx_conn *c = fx_connect();

	CU_ASSERT_EQUAL_FATAL(fx_login(c, p, NULL), ISCSI_LS_SUCCESS);
	return c;
}

/* ---- full feature phase requests ---- */

static void fx_cdb_rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, blocks);
}

/*
 * Send a SCSI Command. \p flags: ISCSI_CMD_READ / ISCSI_CMD_WRITE and
 * ISCSI_FLAG_FINAL. Uses and advances c->cmdsn unless \p immediate; returns
 * the ITT used.
 */
static uint32_t fx_cmd(struct fx_conn *c, uint8_t flags, uint32_t edtl, const uint8_t *cdb,
		       const void *imm, uint32_t imm_len, bool immediate)
{
	struct iscsi_bhs_scsi_cmd h;
	uint32_t itt = c->itt++;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_SCSI_CMD | (immediate ? ISCSI_OP_IMMEDIATE : 0);
	h.flags = flags | 0x01; /* SIMPLE task attribute */
	put_be32(h.itt, itt);
	put_be32(h.exp_xfer_len, edtl);
	put_be32(h.cmdsn, immediate ? c->cmdsn : c->cmdsn++);
	put_be32(h.exp_statsn, c->exp_statsn);
	memcpy(h.cdb, cdb, 16);
	CU_ASSERT_TRUE(fx_send(c, &h, imm, imm_len));
	return itt;
}

/* Same with an explicit CmdSN and ITT (CmdSN window tests); c->cmdsn is left alone. */
static void fx_cmd_sn(struct fx_conn *c, uint32_t itt, uint32_t cmdsn, const uint8_t *cdb)
{
	struct iscsi_bhs_scsi_cmd h;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_SCSI_CMD;
	h.flags = ISCSI_FLAG_FINAL | 0x01;
	put_be32(h.itt, itt);
	put_be32(h.cmdsn, cmdsn);
	put_be32(h.exp_statsn, c->exp_statsn);
	memcpy(h.cdb, cdb, 16);
	CU_ASSERT_TRUE(fx_send(c, &h, NULL, 0));
}

static void fx_data_out(struct fx_conn *c, uint32_t itt, uint32_t ttt, uint32_t datasn,
			uint32_t offset, const void *data, uint32_t len, bool final)
{
	struct iscsi_bhs_data_out h;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_DATA_OUT;
	h.flags = final ? ISCSI_FLAG_FINAL : 0;
	put_be32(h.itt, itt);
	put_be32(h.ttt, ttt);
	put_be32(h.exp_statsn, c->exp_statsn);
	put_be32(h.datasn, datasn);
	put_be32(h.buffer_offset, offset);
	CU_ASSERT_TRUE(fx_send(c, &h, data, len));
}

/* NOP-Out ping (ITT != 0xffffffff) with \p data; returns the ITT. */
static uint32_t fx_nop_out(struct fx_conn *c, const void *data, uint32_t len, bool immediate)
{
	struct iscsi_bhs_nop h;
	uint32_t itt = c->itt++;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_NOP_OUT | (immediate ? ISCSI_OP_IMMEDIATE : 0);
	h.flags = ISCSI_FLAG_FINAL;
	put_be32(h.itt, itt);
	put_be32(h.ttt, ISCSI_RSVD_TAG);
	put_be32(h.sn, immediate ? c->cmdsn : c->cmdsn++);
	put_be32(h.exp_sn, c->exp_statsn);
	CU_ASSERT_TRUE(fx_send(c, &h, data, len));
	return itt;
}

/* Ping and wait for the echo: proves the connection is alive and in order. */
static bool fx_ping(struct fx_conn *c)
{
	struct fx_pdu p;
	uint32_t itt = fx_nop_out(c, "ping", 4, true);

	if (!fx_recv(c, &p))
		return false;
	bool ok = fx_op(&p) == ISCSI_OP_NOP_IN && get_be32(p.hdr.bhs.itt) == itt;
	fx_pdu_free(&p);
	return ok;
}

/* Task management request; returns the ITT. */
static uint32_t fx_tmf(struct fx_conn *c, uint8_t function, uint8_t lun, uint32_t rtt,
		       uint32_t refcmdsn)
{
	struct iscsi_bhs_tmf_req h;
	uint32_t itt = c->itt++;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_TMF_REQ | ISCSI_OP_IMMEDIATE;
	h.function = ISCSI_FLAG_FINAL | function;
	h.lun[1] = lun;
	put_be32(h.itt, itt);
	put_be32(h.rtt, rtt);
	put_be32(h.cmdsn, c->cmdsn);
	put_be32(h.exp_statsn, c->exp_statsn);
	put_be32(h.refcmdsn, refcmdsn);
	CU_ASSERT_TRUE(fx_send(c, &h, NULL, 0));
	return itt;
}

static uint32_t fx_logout(struct fx_conn *c, uint8_t reason)
{
	struct iscsi_bhs_logout_req h;
	uint32_t itt = c->itt++;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_LOGOUT_REQ | ISCSI_OP_IMMEDIATE;
	h.flags = ISCSI_FLAG_FINAL | reason;
	put_be32(h.itt, itt);
	put_be16(h.cid, c->cid);
	put_be32(h.cmdsn, c->cmdsn);
	put_be32(h.exp_statsn, c->exp_statsn);
	CU_ASSERT_TRUE(fx_send(c, &h, NULL, 0));
	return itt;
}

/* Text Request; \p ttt continues a long response (0xffffffff: a new one). */
static void fx_text_req(struct fx_conn *c, uint32_t itt, uint32_t ttt, uint8_t flags,
			const void *text, uint32_t len)
{
	struct iscsi_bhs_text h;

	memset(&h, 0, sizeof(h));
	h.opcode = ISCSI_OP_TEXT_REQ | ISCSI_OP_IMMEDIATE;
	h.flags = flags;
	put_be32(h.itt, itt);
	put_be32(h.ttt, ttt);
	put_be32(h.sn, c->cmdsn);
	put_be32(h.exp_sn, c->exp_statsn);
	CU_ASSERT_TRUE(fx_send(c, &h, text, len));
}

/* SCSI status and sense of a SCSI Response. */
static uint8_t fx_rsp_status(const struct fx_pdu *p)
{
	return ((const struct iscsi_bhs_scsi_rsp *)(const void *)p->hdr.raw)->status;
}

/* Sense key / ASC / ASCQ of fixed-format sense in a SCSI Response, as 0xKKAAQQ. */
static uint32_t fx_rsp_sense(const struct fx_pdu *p)
{
	if (p->len < 2 + 14)
		return 0;
	const uint8_t *s = p->data + 2;
	return (uint32_t)(s[2] & 0x0f) << 16 | (uint32_t)s[12] << 8 | s[13];
}

#endif /* TGT_FIXTURE_H */
