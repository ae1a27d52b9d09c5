/*
 * fuzz_pdu_wire.h: part of fuzz_pdu.c (included once, in order): random numbers, CRC32C,
 * connections, PDU send and receive, text keys
 */

/* ---- random numbers: splitmix64, so a seed fully names a stream ---- */
struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for fuzzing; 0 when n is 0. */
static uint32_t rn(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rnd(r) % n) : 0;
}

static bool chance(struct rng *r, unsigned pct)
{
	return rn(r, 100) < pct;
}

static void rfill(struct rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd(r);
}

/* A length that is usually small and sometimes at an interesting edge. */
static uint32_t rlen(struct rng *r, uint32_t typical)
{
	switch (rn(r, 10)) {
	case 0:
		return 0;
	case 1:
		return rn(r, 0x1000000);
	case 2:
		return (uint32_t)rnd(r);
	case 3:
		return typical + rn(r, 8) - 4;
	default:
		return rn(r, typical + 1);
	}
}

/* ---- CRC32C, table-driven, independent of util_crc32c() ---- */
static uint32_t g_crc_tab[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		g_crc_tab[i] = c;
	}
}

static uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		crc = g_crc_tab[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

/* ---- connections ---- */
struct r2t {
	uint32_t itt, ttt, off, len;
};

struct conn {
	int fd;
	bool hdigest, ddigest;
	bool ffp;
	uint32_t cmdsn, exp_statsn, max_cmdsn;
	uint32_t itt;
	uint32_t peer_mrdsl;
	uint32_t first_burst; /* negotiated FirstBurstLength */
	bool imm_data;	      /* negotiated ImmediateData */
	uint32_t text_ttt;    /* TTT of the last Text Response with C set */
	uint8_t *rbuf;	      /* received stream, RX_MAX bytes */
	uint32_t rlen;
	struct r2t r2t[MAX_R2T];
	unsigned nr2t;
	uint32_t recent_itt[RECENT_ITT];
	uint8_t recent_op[RECENT_ITT]; /* CDB opcode of a SCSI command with that ITT */
	unsigned nrecent;
	/* the episode on this connection */
	uint64_t ep_seed;
	struct rng rng;
	unsigned ops_left;
	unsigned hdr_pct; /* chance that a PDU's header is mutated (framing trouble) */
	bool fuzz;	  /* a fuzz connection (not a check session) */
};

/* A received PDU, pointing into the connection's stream buffer. */
struct rpdu {
	uint8_t bhs[ISCSI_BHS_LEN];
	const uint8_t *data;
	uint32_t dlen;
};

static int tcp_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_opt.port)};
	struct timeval tv = {.tv_sec = 3};
	int fd, one = 1;

	if (inet_pton(AF_INET, g_opt.host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * A target that stops reading (after a failed login, say) must not
	 * stall the fuzzer: a send that cannot progress for 3 s gives up.
	 */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->ffp = false;
	c->rlen = 0;
	c->nr2t = 0;
	c->nrecent = 0;
}

/* How a PDU is put on the wire, beyond its BHS and data. */
struct wire {
	const uint8_t *ahs;
	uint32_t ahs_len; /* bytes sent; the BHS field is set from it unless ahs_raw */
	bool ahs_raw;	  /* keep the BHS's TotalAHSLength as the caller set it */
	bool dlen_raw;	  /* keep the BHS's DataSegmentLength as the caller set it */
	bool bad_hdigest, bad_ddigest;
	bool no_pad;
};

static uint8_t g_txbuf[ISCSI_BHS_LEN + ISCSI_MAX_AHS_LEN + 4 + TX_DATA_MAX + 8 + 4];

static int send_pdu_wire(struct conn *c, const void *bhs, const void *data, uint32_t dlen,
			 const struct wire *w)
{
	static const struct wire plain;
	uint8_t *p = g_txbuf;
	size_t hlen;

	if (!w)
		w = &plain;
	if (dlen > TX_DATA_MAX)
		dlen = TX_DATA_MAX;
	memcpy(p, bhs, ISCSI_BHS_LEN);
	if (!w->dlen_raw)
		put_be24(p + 5, dlen);
	if (!w->ahs_raw)
		p[4] = (uint8_t)(w->ahs_len / 4);
	hlen = ISCSI_BHS_LEN;
	if (w->ahs_len) {
		memcpy(p + hlen, w->ahs, w->ahs_len);
		hlen += w->ahs_len;
	}
	if (c->hdigest) {
		uint32_t crc = crc_update(0xffffffffu, p, hlen) ^ 0xffffffffu;

		put_digest(p + hlen, w->bad_hdigest ? crc ^ 0x80u : crc);
		hlen += 4;
	}
	size_t len = hlen;
	if (dlen) {
		uint32_t pad = w->no_pad ? 0 : ISCSI_PAD(dlen);

		memcpy(p + len, data, dlen);
		memset(p + len + dlen, 0, pad);
		len += dlen + pad;
		if (c->ddigest) {
			uint32_t crc = crc_update(0xffffffffu, p + hlen, dlen + pad) ^ 0xffffffffu;

			put_digest(p + len, w->bad_ddigest ? ~crc : crc);
			len += 4;
		}
	}
	return send_all(c->fd, p, len);
}

static int send_pdu(struct conn *c, const void *bhs, const void *data, uint32_t dlen)
{
	return send_pdu_wire(c, bhs, data, dlen, NULL);
}

/*
 * One whole PDU at the head of the stream buffer: 1 (copied out, consumed
 * later by the caller through \p used), 0 when more bytes are needed, -1 when
 * the target announced more than we accept.
 */
static int parse_one(struct conn *c, struct rpdu *pdu, uint32_t *used)
{
	uint32_t need = ISCSI_BHS_LEN, ahs, dlen, hd;

	if (c->rlen < need)
		return 0;
	ahs = c->rbuf[4] * 4u;
	dlen = get_be24(c->rbuf + 5);
	hd = c->hdigest ? 4 : 0;
	need = ISCSI_BHS_LEN + ahs + hd + dlen + ISCSI_PAD(dlen) + (c->ddigest && dlen ? 4 : 0);
	if (need > RX_MAX)
		return -1;
	if (c->rlen < need)
		return 0;
	memcpy(pdu->bhs, c->rbuf, ISCSI_BHS_LEN);
	pdu->data = c->rbuf + ISCSI_BHS_LEN + ahs + hd;
	pdu->dlen = dlen;
	*used = need;
	return 1;
}

static void consume(struct conn *c, uint32_t used)
{
	memmove(c->rbuf, c->rbuf + used, c->rlen - used);
	c->rlen -= used;
}

/* Read what is there (\p wait_ms 0: do not block). 1 got bytes, 0 none, -1 closed. */
static int fill(struct conn *c, int wait_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int rc = poll(&pfd, 1, wait_ms);
	ssize_t n;

	if (rc <= 0)
		return 0;
	if (c->rlen == RX_MAX)
		return -1;
	n = recv(c->fd, c->rbuf + c->rlen, RX_MAX - c->rlen, MSG_DONTWAIT);
	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->rlen += (uint32_t)n;
	return 1;
}

static char g_leak[256]; /* set when a fuzz connection received canary bytes */

/* Received PDUs by opcode, and SCSI statuses: printed with -v, to see what the fuzzing reaches. */
static uint64_t g_rx_ops[64], g_rx_status[256], g_rx_rej[16][64];
static struct {
	uint32_t k; /* sense key << 16 | ASC << 8 | ASCQ */
	uint64_t n;
} g_sense[64];

/* Bookkeeping every received PDU feeds: sequence numbers, R2Ts, pings. */
static void note_pdu(struct conn *c, const struct rpdu *p)
{
	uint8_t op = p->bhs[0] & ISCSI_OP_MASK;

	g_rx_ops[op]++;
	if (c->fuzz && p->dlen >= CANARY_LEN && !g_leak[0] &&
	    (op == ISCSI_OP_DATA_IN || op == ISCSI_OP_SCSI_RSP || op == ISCSI_OP_NOP_IN ||
	     op == ISCSI_OP_TEXT_RSP) &&
	    memmem(p->data, p->dlen, CANARY, CANARY_LEN)) {
		uint32_t itt = get_be32(p->bhs + 16);
		int cdb0 = -1;

		for (unsigned i = 0; i < RECENT_ITT; i++)
			if (c->recent_itt[i] == itt)
				cdb0 = c->recent_op[i];
		snprintf(g_leak, sizeof(g_leak),
			 "opcode 0x%02x for itt 0x%08x (CDB opcode %d, episode 0x%016" PRIx64
			 ") carried the check volume's data: another session's buffer leaked",
			 op, itt, cdb0, c->ep_seed);
	}
	if (op == ISCSI_OP_REJECT && p->dlen >= ISCSI_BHS_LEN && p->bhs[2] < 16)
		g_rx_rej[p->bhs[2]][p->data[0] & ISCSI_OP_MASK]++;
	if (op == ISCSI_OP_SCSI_RSP || (op == ISCSI_OP_DATA_IN && (p->bhs[1] & ISCSI_DATA_STATUS)))
		g_rx_status[p->bhs[3]]++;
	if (op == ISCSI_OP_SCSI_RSP && p->bhs[3] == 0x02 && p->dlen >= 2 + 14) {
		const uint8_t *sn = p->data + 2;
		uint32_t k = (sn[0] & 0x7f) >= 0x72
				 ? (uint32_t)(sn[1] & 0x0f) << 16 | sn[2] << 8 | sn[3]
				 : (uint32_t)(sn[2] & 0x0f) << 16 | sn[12] << 8 | sn[13];
		for (unsigned i = 0; i < UTIL_ARRAY_SIZE(g_sense); i++) {
			if (g_sense[i].n == 0 || g_sense[i].k == k) {
				g_sense[i].k = k;
				g_sense[i].n++;
				break;
			}
		}
	}

	if (op != ISCSI_OP_DATA_IN || (p->bhs[1] & ISCSI_DATA_STATUS)) {
		if (op != ISCSI_OP_R2T && op != ISCSI_OP_LOGIN_RSP)
			c->exp_statsn = get_be32(p->bhs + 24) + 1;
	}
	if (op != ISCSI_OP_LOGIN_RSP && op != ISCSI_OP_REJECT) {
		uint32_t exp = get_be32(p->bhs + 28), max = get_be32(p->bhs + 32);

		if (exp != 0 || max != 0)
			c->max_cmdsn = max;
	}
	if (op == ISCSI_OP_R2T && c->nr2t < MAX_R2T) {
		const struct iscsi_bhs_r2t *r = (const void *)p->bhs;

		c->r2t[c->nr2t++] =
		    (struct r2t){get_be32(r->itt), get_be32(r->ttt), get_be32(r->buffer_offset),
				 get_be32(r->desired_len)};
	}
	if (op == ISCSI_OP_TEXT_RSP && (p->bhs[1] & ISCSI_TEXT_CONTINUE))
		c->text_ttt = get_be32(p->bhs + 20);
}

/* Answer a NOP-In ping (TTT not reserved), as a live initiator must. */
static void answer_ping(struct conn *c, const struct rpdu *p)
{
	struct iscsi_bhs_nop n;

	if ((p->bhs[0] & ISCSI_OP_MASK) != ISCSI_OP_NOP_IN ||
	    get_be32(p->bhs + 20) == ISCSI_RSVD_TAG)
		return;
	memset(&n, 0, sizeof(n));
	n.opcode = ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE;
	n.flags = ISCSI_FLAG_FINAL;
	memcpy(n.lun, p->bhs + 8, 8);
	put_be32(n.itt, ISCSI_RSVD_TAG);
	memcpy(n.ttt, p->bhs + 20, 4);
	put_be32(n.sn, c->cmdsn);
	put_be32(n.exp_sn, c->exp_statsn);
	(void)send_pdu(c, &n, NULL, 0);
}

/* Non-blocking: take every PDU that arrived. -1 when the target closed. */
static int drain(struct conn *c)
{
	for (;;) {
		struct rpdu p;
		uint32_t used;
		int rc;

		while ((rc = parse_one(c, &p, &used)) == 1) {
			note_pdu(c, &p);
			answer_ping(c, &p);
			consume(c, used);
		}
		if (rc < 0)
			return -1;
		rc = fill(c, 0);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return 0;
	}
}

/*
 * Blocking receive of the next PDU before \p deadline. 1, 0 closed, -1 timed
 * out. The PDU's data point into the stream buffer: valid until the next call.
 */
static uint32_t g_pending_used;

static int recv_pdu(struct conn *c, struct rpdu *p, int64_t deadline)
{
	if (g_pending_used) {
		consume(c, g_pending_used);
		g_pending_used = 0;
	}
	for (;;) {
		uint32_t used;
		int rc = parse_one(c, p, &used);
		int64_t left;

		if (rc < 0)
			return 0;
		if (rc == 1) {
			note_pdu(c, p);
			g_pending_used = used;
			return 1;
		}
		left = deadline - now_ms();
		if (left <= 0)
			return -1;
		rc = fill(c, (int)UTIL_MIN(left, 1000));
		if (rc < 0)
			return 0;
	}
}

static void recv_done(struct conn *c)
{
	if (g_pending_used) {
		consume(c, g_pending_used);
		g_pending_used = 0;
	}
}

/* ---- text keys ---- */
struct text {
	char buf[LOGIN_DATA_MAX * 4];
	uint32_t len;
};

static void text_add(struct text *t, const char *key, const char *val)
{
	int n = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s=%s", key, val);

	if (n > 0 && t->len + (uint32_t)n + 1 <= sizeof(t->buf))
		t->len += (uint32_t)n + 1;
}

static void put_lun(uint8_t *p, uint64_t lun)
{
	memset(p, 0, 8);
	p[1] = (uint8_t)lun;
}
