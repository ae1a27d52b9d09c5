/*
 * robust_wire.h: part of robust.c (included once, in order): CRC32C, deterministic garbage,
 * sockets, PDUs, text keys, login and a session that still serves
 */

/* ---- CRC32C, bit by bit (Castagnoli, reflected polynomial 0x82f63b78) ---- */
static uint32_t crc32c_sw(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc ^ 0xffffffffu;
}

/*
 * RFC 7143 B.4 example: 32 bytes of zeroes give the digest bytes
 * aa 36 91 8a on the wire, i.e. the CRC 0x8a9136aa stored little-endian.
 */
static bool crc32c_selftest(void)
{
	uint8_t zero[32] = {0};

	return crc32c_sw(zero, sizeof(zero)) == 0x8a9136aau;
}

/* ---- deterministic garbage ---- */
static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static void fill_random(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)xorshift32(&seed);
}

static int tcp_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_opt.port)};
	int fd, one = 1;

	if (inet_pton(AF_INET, g_opt.host, &sa.sin_addr) != 1) {
		why("bad IPv4 address %s", g_opt.host);
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		why("connect to %s:%u: %s", g_opt.host, g_opt.port, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/*
 * Read exactly \p len bytes before \p deadline (ms, monotonic).
 * Returns 1, 0 when the peer closed (end of stream or reset), -ETIMEDOUT, or
 * another negative errno.
 */
static int recv_exact(int fd, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		int rc;
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		n = recv(fd, p, len, 0);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET || errno == EPIPE)
				return 0;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/*
 * Receive one PDU: BHS, AHS (skipped), header digest (checked when in force),
 * data and pad. Returns 1, 0 when the peer closed, -ETIMEDOUT, -EBADMSG for
 * a wrong header digest, -E2BIG for a data segment above RX_DATA_MAX.
 */
static int recv_pdu(struct conn *c, struct rpdu *pdu, int64_t deadline)
{
	uint8_t ahs[ISCSI_MAX_AHS_LEN], dig[ISCSI_DIGEST_LEN], pad[4];
	uint32_t ahs_len, dlen;
	int rc;

	rc = recv_exact(c->fd, pdu->h.raw, ISCSI_BHS_LEN, deadline);
	if (rc <= 0)
		return rc;
	ahs_len = pdu->h.bhs.total_ahs_len * 4u;
	if (ahs_len > 0) {
		rc = recv_exact(c->fd, ahs, ahs_len, deadline);
		if (rc <= 0)
			return rc;
	}
	if (c->hdigest) {
		uint32_t crc = UTIL_CRC32C_INIT;
		uint8_t want[ISCSI_DIGEST_LEN];

		rc = recv_exact(c->fd, dig, sizeof(dig), deadline);
		if (rc <= 0)
			return rc;
		/* The header digest covers the BHS and the AHS (RFC 7143 11.1). */
		if (ahs_len == 0) {
			crc = crc32c_sw(pdu->h.raw, ISCSI_BHS_LEN);
		} else {
			uint8_t all[ISCSI_BHS_LEN + ISCSI_MAX_AHS_LEN];

			memcpy(all, pdu->h.raw, ISCSI_BHS_LEN);
			memcpy(all + ISCSI_BHS_LEN, ahs, ahs_len);
			crc = crc32c_sw(all, ISCSI_BHS_LEN + ahs_len);
		}
		put_digest(want, crc);
		if (memcmp(want, dig, sizeof(dig)) != 0) {
			why("target sent a wrong header digest on opcode 0x%02x",
			    pdu->h.bhs.opcode & ISCSI_OP_MASK);
			return -EBADMSG;
		}
	}
	dlen = get_be24(pdu->h.bhs.dlength);
	if (dlen > RX_DATA_MAX) {
		why("target announced a %u-byte data segment", dlen);
		return -E2BIG;
	}
	pdu->dlen = dlen;
	if (dlen > 0) {
		rc = recv_exact(c->fd, pdu->data, dlen, deadline);
		if (rc <= 0)
			return rc;
		if (ISCSI_PAD(dlen)) {
			rc = recv_exact(c->fd, pad, ISCSI_PAD(dlen), deadline);
			if (rc <= 0)
				return rc;
		}
	}
	vlog("<- opcode 0x%02x dlen %u", pdu->h.bhs.opcode & ISCSI_OP_MASK, dlen);
	return 1;
}

/* Send one PDU: BHS (+ header digest when in force) + data + pad. */
static int send_pdu(struct conn *c, const void *bhs, const void *data, uint32_t dlen)
{
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN];
	static const uint8_t zero[4];
	size_t hlen = ISCSI_BHS_LEN;
	int rc;

	memcpy(hdr, bhs, ISCSI_BHS_LEN);
	put_be24(((struct iscsi_bhs *)(void *)hdr)->dlength, dlen);
	if (c->hdigest) {
		put_digest(hdr + ISCSI_BHS_LEN, crc32c_sw(hdr, ISCSI_BHS_LEN));
		hlen += ISCSI_DIGEST_LEN;
	}
	vlog("-> opcode 0x%02x dlen %u", hdr[0] & ISCSI_OP_MASK, dlen);
	rc = send_all(c->fd, hdr, hlen);
	if (rc == 0 && dlen > 0)
		rc = send_all(c->fd, data, dlen);
	if (rc == 0 && ISCSI_PAD(dlen))
		rc = send_all(c->fd, zero, ISCSI_PAD(dlen));
	return rc;
}

/* ---- text keys ---- */
struct text {
	char buf[LOGIN_DATA_MAX];
	uint32_t len;
};

static void text_add(struct text *t, const char *key, const char *val)
{
	int n = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s=%s", key, val);

	if (n > 0 && t->len + (uint32_t)n + 1 <= sizeof(t->buf))
		t->len += (uint32_t)n + 1; /* keep the NUL: pairs are NUL-terminated */
}

/* The 8-byte LUN field, single level (SAM-5 4.7: peripheral or flat addressing). */
static void put_lun(uint8_t *p, uint64_t lun)
{
	memset(p, 0, 8);
	if (lun < 256) {
		p[1] = (uint8_t)lun;
	} else {
		p[0] = (uint8_t)(0x40 | ((lun >> 8) & 0x3f));
		p[1] = (uint8_t)lun;
	}
}

/* ---- login ---- */
static void login_bhs(struct iscsi_bhs_login_req *req, const struct conn *c, uint8_t flags,
		      uint16_t isid_lo)
{
	memset(req, 0, sizeof(*req));
	req->opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	req->flags = flags;
	req->version_max = ISCSI_VERSION;
	req->version_min = ISCSI_VERSION;
	/* ISID of the "random" format (RFC 7143 11.12.5), unique per connection. */
	req->isid[0] = 0x80;
	put_be16(req->isid + 1, (uint16_t)getpid());
	req->isid[3] = 0x52;
	put_be16(req->isid + 4, isid_lo);
	put_be32(req->itt, c->itt);
	put_be32(req->cmdsn, c->cmdsn);
	put_be32(req->exp_statsn, c->exp_statsn);
}

static uint16_t next_isid(void)
{
	static uint16_t n;

	return ++n;
}

/*
 * Log in to g_opt.target: the security stage with AuthMethod=None (T=1,
 * NSG=operational), then the operational stage (T=1, NSG=full feature) with
 * the few keys an initiator must state. \p hdigest offers HeaderDigest=CRC32C
 * only, so the target must take it or fail the login.
 * Returns 0, or a negative errno / a positive login status, with g_why set.
 */
static int login(struct conn *c, bool hdigest)
{
	struct iscsi_bhs_login_req req;
	struct rpdu rsp;
	struct text t;
	uint16_t isid = next_isid();
	int64_t deadline = now_ms() + g_opt.wait_ms;
	int stage = ISCSI_STAGE_SECURITY;
	uint8_t data[LOGIN_DATA_MAX];
	bool sec_keys_sent = false, op_keys_sent = false;
	int rounds;
	int rc;

	memset(c, 0, sizeof(*c));
	c->itt = 0x1000;
	c->cmdsn = 1;
	c->peer_mrdsl = LOGIN_DATA_MAX;
	c->fd = tcp_connect();
	if (c->fd < 0)
		return c->fd;
	rsp.data = malloc(RX_DATA_MAX);
	if (rsp.data == NULL) {
		close(c->fd);
		c->fd = -1;
		return -ENOMEM;
	}
	for (rounds = 0; rounds < 8; rounds++) {
		uint8_t flags, nsg;
		uint16_t status;

		t.len = 0;
		if (stage == ISCSI_STAGE_SECURITY) {
			nsg = ISCSI_STAGE_OPERATIONAL;
			if (!sec_keys_sent) {
				sec_keys_sent = true;
				text_add(&t, "InitiatorName", INITIATOR_NAME);
				text_add(&t, "TargetName", g_opt.target);
				text_add(&t, "SessionType", "Normal");
				text_add(&t, "AuthMethod", "None");
			}
		} else {
			nsg = ISCSI_STAGE_FULL_FEATURE;
			if (!op_keys_sent) {
				op_keys_sent = true;
				text_add(&t, "HeaderDigest", hdigest ? "CRC32C" : "None");
				text_add(&t, "DataDigest", "None");
				text_add(&t, "MaxRecvDataSegmentLength", "262144");
				text_add(&t, "ErrorRecoveryLevel", "0");
			}
		}
		flags = (uint8_t)(ISCSI_LOGIN_TRANSIT | (stage << ISCSI_LOGIN_CSG_SHIFT) | nsg);
		login_bhs(&req, c, flags, isid);
		rc = send_pdu(c, &req, t.buf, t.len);
		if (rc < 0) {
			why("sending a login request: %s", strerror(-rc));
			goto fail;
		}
		rc = recv_pdu(c, &rsp, deadline);
		if (rc <= 0) {
			why("login response: %s", rc == 0 ? "connection closed" : strerror(-rc));
			rc = rc == 0 ? -ECONNRESET : rc;
			goto fail;
		}
		if ((rsp.h.bhs.opcode & ISCSI_OP_MASK) != ISCSI_OP_LOGIN_RSP) {
			why("opcode 0x%02x in answer to a login", rsp.h.bhs.opcode & ISCSI_OP_MASK);
			rc = -EPROTO;
			goto fail;
		}
		{
			const struct iscsi_bhs_login_rsp *lr = (const void *)rsp.h.raw;
			const char *v;

			status = (uint16_t)ISCSI_LOGIN_STATUS(lr->status_class, lr->status_detail);
			if (status != ISCSI_LS_SUCCESS) {
				why("login failed with status 0x%04x", status);
				rc = status;
				goto fail;
			}
			c->exp_statsn = get_be32(lr->statsn) + 1;
			memcpy(data, rsp.data, UTIL_MIN(rsp.dlen, sizeof(data)));
			for (uint32_t off = 0;
			     g_opt.verbose && off < UTIL_MIN(rsp.dlen, sizeof(data));
			     off += (uint32_t)strnlen((char *)data + off, sizeof(data) - off) + 1)
				vlog("   %.*s", (int)(sizeof(data) - off), (char *)data + off);
			v = text_get(data, UTIL_MIN(rsp.dlen, sizeof(data)),
				     "MaxRecvDataSegmentLength");
			if (v != NULL)
				c->peer_mrdsl = (uint32_t)strtoul(v, NULL, 10);
			v = text_get(data, UTIL_MIN(rsp.dlen, sizeof(data)), "HeaderDigest");
			if (hdigest && v != NULL && strcmp(v, "CRC32C") != 0) {
				why("offered HeaderDigest=CRC32C, target answered %s", v);
				rc = -EPROTO;
				goto fail;
			}
			if (!(lr->flags & ISCSI_LOGIN_TRANSIT))
				continue; /* the target wants another round in this stage */
			if ((lr->flags & ISCSI_LOGIN_NSG_MASK) == ISCSI_STAGE_FULL_FEATURE) {
				c->cmdsn = get_be32(lr->exp_cmdsn);
				c->hdigest = hdigest;
				free(rsp.data);
				return 0;
			}
			stage = lr->flags & ISCSI_LOGIN_NSG_MASK;
		}
	}
	why("login did not reach full feature phase in %d rounds", rounds);
	rc = -EPROTO;
fail:
	free(rsp.data);
	close(c->fd);
	c->fd = -1;
	return rc;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Sense key of a SCSI Response data segment (SPC-4 4.5: fixed or descriptor format). */
static int sense_key(const struct rpdu *p)
{
	const uint8_t *s = p->data + 2;
	uint32_t slen;

	if (p->dlen < 2)
		return -1;
	slen = get_be16(p->data);
	if (slen < 3 || slen + 2 > p->dlen)
		return -1;
	if ((s[0] & 0x7f) == 0x72 || (s[0] & 0x7f) == 0x73)
		return s[1] & 0x0f;
	return s[2] & 0x0f;
}

/*
 * Wait for the answer to ITT \p itt, skipping unsolicited NOP-In and Async
 * Message PDUs. Returns 1 with the answer in \p p, 0 when the peer closed,
 * or a negative errno.
 */
static int wait_answer(struct conn *c, uint32_t itt, struct rpdu *p, int64_t deadline)
{
	for (;;) {
		int rc = recv_pdu(c, p, deadline);
		uint8_t op;

		if (rc <= 0)
			return rc;
		op = p->h.bhs.opcode & ISCSI_OP_MASK;
		if (op == ISCSI_OP_NOP_IN || op == ISCSI_OP_ASYNC_MSG)
			continue;
		if (op != ISCSI_OP_REJECT && get_be32(p->h.bhs.itt) != itt) {
			why("unexpected opcode 0x%02x for ITT 0x%x", op, get_be32(p->h.bhs.itt));
			return -EPROTO;
		}
		return 1;
	}
}

/* TEST UNIT READY on the logged-in \p c; a unit attention is retried (SAM-5 5.14). */
static int tur(struct conn *c)
{
	int64_t deadline = now_ms() + g_opt.wait_ms;
	struct rpdu rsp;
	int rc = -EIO;

	rsp.data = malloc(RX_DATA_MAX);
	if (rsp.data == NULL)
		return -ENOMEM;
	for (int tries = 0; tries < 4; tries++) {
		struct iscsi_bhs_scsi_cmd cmd;
		const struct iscsi_bhs_scsi_rsp *sr = (const void *)rsp.h.raw;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opcode = ISCSI_OP_SCSI_CMD;
		cmd.flags = ISCSI_FLAG_FINAL | 0x01; /* SIMPLE task attribute */
		put_lun(cmd.lun, g_opt.lun);
		put_be32(cmd.itt, ++c->itt);
		put_be32(cmd.cmdsn, c->cmdsn++);
		put_be32(cmd.exp_statsn, c->exp_statsn);
		/* cdb[0] = 0x00: TEST UNIT READY, all zero. */
		rc = send_pdu(c, &cmd, NULL, 0);
		if (rc < 0) {
			why("sending TEST UNIT READY: %s", strerror(-rc));
			break;
		}
		rc = wait_answer(c, c->itt, &rsp, deadline);
		if (rc <= 0) {
			why("TEST UNIT READY: %s", rc == 0 ? "connection closed" : strerror(-rc));
			rc = rc == 0 ? -ECONNRESET : rc;
			break;
		}
		if ((rsp.h.bhs.opcode & ISCSI_OP_MASK) != ISCSI_OP_SCSI_RSP) {
			why("TEST UNIT READY answered by opcode 0x%02x",
			    rsp.h.bhs.opcode & ISCSI_OP_MASK);
			rc = -EPROTO;
			break;
		}
		c->exp_statsn = get_be32(sr->statsn) + 1;
		if (sr->response == ISCSI_RSP_CMD_COMPLETED && sr->status == SCSI_STATUS_GOOD) {
			rc = 0;
			break;
		}
		if (sr->status == SCSI_STATUS_CHECK && sense_key(&rsp) == SK_UNIT_ATTENTION)
			continue;
		why("TEST UNIT READY: response 0x%02x status 0x%02x sense key %d", sr->response,
		    sr->status, sense_key(&rsp));
		rc = -EIO;
		break;
	}
	free(rsp.data);
	return rc;
}

/* Logout (close the session) and wait for the response; then close the socket. */
static void logout(struct conn *c)
{
	struct iscsi_bhs_logout_req req;
	struct rpdu rsp;

	memset(&req, 0, sizeof(req));
	req.opcode = ISCSI_OP_LOGOUT_REQ | ISCSI_OP_IMMEDIATE;
	req.flags = ISCSI_FLAG_FINAL | ISCSI_LOGOUT_CLOSE_SESSION;
	put_be32(req.itt, ++c->itt);
	put_be32(req.cmdsn, c->cmdsn);
	put_be32(req.exp_statsn, c->exp_statsn);
	rsp.data = malloc(RX_DATA_MAX);
	if (rsp.data != NULL && send_pdu(c, &req, NULL, 0) == 0)
		(void)wait_answer(c, c->itt, &rsp, now_ms() + g_opt.wait_ms);
	free(rsp.data);
	conn_close(c);
}

/* The target still serves: a fresh connection logs in and passes TEST UNIT READY. */
static int serves(void)
{
	struct conn c;
	int rc = login(&c, false);

	if (rc != 0)
		return rc;
	rc = tur(&c);
	logout(&c);
	return rc;
}
