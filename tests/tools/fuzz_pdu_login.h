/*
 * fuzz_pdu_login.h: part of fuzz_pdu.c (included once, in order): the login, plain or mutated
 */

/* ---- login, plain or mutated ---- */
struct login_args {
	const char *initiator;
	const char *target;
	uint8_t isid[6];
	bool hdigest, ddigest;
	struct rng *mut;  /* NULL: a well-behaved login */
	struct rng *vary; /* valid but random operational values (burst lengths, R2T, ...) */
	bool report;	  /* say why a plain login failed (the check's) */
};

static const char *const g_keys[] = {
    "InitiatorName",
    "TargetName",
    "SessionType",
    "AuthMethod",
    "HeaderDigest",
    "DataDigest",
    "MaxRecvDataSegmentLength",
    "MaxBurstLength",
    "FirstBurstLength",
    "ImmediateData",
    "InitialR2T",
    "MaxOutstandingR2T",
    "MaxConnections",
    "ErrorRecoveryLevel",
    "DataPDUInOrder",
    "DataSequenceInOrder",
    "DefaultTime2Wait",
    "DefaultTime2Retain",
    "OFMarker",
    "IFMarker",
    "TargetAlias",
    "InitiatorAlias",
    "SendTargets",
    "TargetPortalGroupTag",
    "CHAP_A",
    "CHAP_N",
    "CHAP_R",
    "CHAP_I",
    "CHAP_C",
    "X-com.example.key",
    "TaskReporting",
    "iSCSIProtocolLevel",
    "X#vendor",
    "TargetAddress",
};

static const char *const g_vals[] = {
    "None",
    "CRC32C",
    "CRC32C,None",
    "None,CRC32C",
    "Yes",
    "No",
    "0",
    "1",
    "512",
    "262144",
    "16777215",
    "16777216",
    "4294967296",
    "18446744073709551616",
    "0x10",
    "0x",
    "-1",
    "",
    "Normal",
    "Discovery",
    "Bogus",
    "CHAP",
    "CHAP,None",
    "5",
    "Irrelevant",
    "Reject",
    "NotUnderstood",
    "All",
    ",,,",
    "a,b,c,d,e,f,g,h,i,j",
};

/* A random key=value pair, sometimes broken (no '=', long key, huge value, no NUL). */
static void add_junk_pair(struct text *t, struct rng *r)
{
	char key[128], val[LOGIN_DATA_MAX];
	size_t vlen;

	if (chance(r, 70))
		snprintf(key, sizeof(key), "%s", g_keys[rn(r, UTIL_ARRAY_SIZE(g_keys))]);
	else {
		size_t kl = 1 + rn(r, 100);

		for (size_t i = 0; i < kl; i++)
			key[i] = (char)('A' + rn(r, 26));
		key[kl] = '\0';
	}
	switch (rn(r, 6)) {
	case 0: /* huge value */
		vlen = rn(r, sizeof(val) - 1);
		memset(val, 'v', vlen);
		val[vlen] = '\0';
		break;
	case 1: /* random bytes, NULs included: the pairs shift */
		vlen = rn(r, 64);
		rfill(r, val, vlen);
		val[vlen] = '\0';
		break;
	default:
		snprintf(val, sizeof(val), "%s", g_vals[rn(r, UTIL_ARRAY_SIZE(g_vals))]);
		break;
	}
	if (chance(r, 10)) {
		/* no '=' at all */
		int n = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s", key);
		if (n > 0 && t->len + (uint32_t)n + 1 <= sizeof(t->buf))
			t->len += (uint32_t)n + 1;
		return;
	}
	text_add(t, key, val);
	if (chance(r, 5) && t->len > 0)
		t->len--; /* drop the NUL */
}

/* Mutate a login request header in place. */
static void mutate_login_bhs(struct iscsi_bhs_login_req *q, struct rng *r)
{
	switch (rn(r, 10)) {
	case 0:
		q->flags = (uint8_t)rnd(r);
		break;
	case 1:
		rfill(r, q->isid, sizeof(q->isid));
		break;
	case 2:
		put_be16(q->tsih, (uint16_t)rnd(r));
		break;
	case 3:
		q->version_min = (uint8_t)rnd(r);
		q->version_max = (uint8_t)rnd(r);
		break;
	case 4:
		q->flags ^= ISCSI_LOGIN_CONTINUE;
		break;
	case 5:
		q->opcode = (uint8_t)rnd(r);
		break;
	case 6:
		put_be32(q->cmdsn, (uint32_t)rnd(r));
		break;
	case 7:
		put_be16(q->cid, (uint16_t)rnd(r));
		break;
	default:
		q->rsvd2[rn(r, sizeof(q->rsvd2))] = (uint8_t)rnd(r);
		break;
	}
}

/* The bracket of the login flood's extra PDUs (see do_login). */
static uint32_t g_flood_lo, g_flood_hi = 100000;

/*
 * Log in. Returns 0 in full feature phase, 1 when the target refused or closed
 * (expected for a mutated login), -1 on a time-out (for a plain login: the
 * target does not serve).
 */
static int do_login(struct conn *c, const struct login_args *a)
{
	struct iscsi_bhs_login_req q;
	struct text t;
	int stage = ISCSI_STAGE_SECURITY;
	int64_t deadline = now_ms() + g_opt.wait_ms;
	bool sec_sent = false, op_sent = false;
	struct rng *m = a->mut;

	c->fd = tcp_connect();
	if (c->fd < 0)
		return a->mut ? 1 : -1;
	c->hdigest = c->ddigest = false;
	c->ffp = false;
	c->itt = 0x100;
	c->cmdsn = 1;
	c->exp_statsn = 0;
	c->peer_mrdsl = LOGIN_DATA_MAX;
	c->first_burst = 65536; /* RFC 7143 13.14 default */
	c->imm_data = true;
	c->rlen = 0;
	c->nr2t = 0;
	c->nrecent = 0;
	for (int rounds = 0; rounds < 12; rounds++) {
		struct rpdu p;
		struct wire w = {0};
		uint8_t nsg, flags;
		int rc;

		t.len = 0;
		if (stage == ISCSI_STAGE_SECURITY) {
			nsg = ISCSI_STAGE_OPERATIONAL;
			if (!sec_sent) {
				sec_sent = true;
				text_add(&t, "InitiatorName", a->initiator);
				text_add(&t, "TargetName", a->target);
				text_add(&t, "SessionType", "Normal");
				text_add(&t, "AuthMethod", "None");
			}
		} else {
			nsg = ISCSI_STAGE_FULL_FEATURE;
			if (!op_sent) {
				op_sent = true;
				text_add(&t, "HeaderDigest", a->hdigest ? "CRC32C" : "None");
				text_add(&t, "DataDigest", a->ddigest ? "CRC32C" : "None");
				text_add(&t, "ErrorRecoveryLevel", "0");
				if (a->vary) {
					/* small bursts and segments: R2Ts, many Data-In and
					 * Data-Out PDUs */
					struct rng *v = a->vary;
					char n[16];
					uint32_t mb = 512u << rn(v, 12);

					snprintf(n, sizeof(n), "%u", 512u << rn(v, 10));
					text_add(&t, "MaxRecvDataSegmentLength", n);
					snprintf(n, sizeof(n), "%u", mb);
					text_add(&t, "MaxBurstLength", n);
					snprintf(n, sizeof(n), "%u",
						 UTIL_MAX(512u, mb >> rn(v, 4)));
					text_add(&t, "FirstBurstLength", n);
					text_add(&t, "ImmediateData", chance(v, 50) ? "Yes" : "No");
					text_add(&t, "InitialR2T", chance(v, 50) ? "Yes" : "No");
					snprintf(n, sizeof(n), "%u", 1 + rn(v, 4));
					text_add(&t, "MaxOutstandingR2T", n);
				} else {
					text_add(&t, "MaxRecvDataSegmentLength", "262144");
					text_add(&t, "ImmediateData", "Yes");
					text_add(&t, "InitialR2T", "No");
				}
			}
		}
		flags = (uint8_t)(ISCSI_LOGIN_TRANSIT | (stage << ISCSI_LOGIN_CSG_SHIFT) | nsg);
		memset(&q, 0, sizeof(q));
		q.opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
		q.flags = flags;
		memcpy(q.isid, a->isid, 6);
		put_be32(q.itt, c->itt);
		put_be32(q.cmdsn, c->cmdsn);
		put_be32(q.exp_statsn, c->exp_statsn);
		if (m) {
			if (chance(m, 30))
				mutate_login_bhs(&q, m);
			if (chance(m, 20))
				t.len = 0;
			for (unsigned k = rn(m, 4); k-- > 0;)
				add_junk_pair(&t, m);
			if (chance(m, 10)) {
				/* oversized login data: above 8192, up to the buffer */
				uint32_t n =
				    LOGIN_DATA_MAX + 1 + rn(m, sizeof(t.buf) - LOGIN_DATA_MAX - 1);
				while (t.len < n)
					add_junk_pair(&t, m);
				t.len = UTIL_MIN(t.len, (uint32_t)sizeof(t.buf));
			}
			if (chance(m, 5)) {
				/* announce more (or less) than is sent */
				put_be24(q.dlength, rlen(m, t.len));
				w.dlen_raw = true;
			}
			if (chance(m, 3)) {
				uint8_t ahs[64];
				rfill(m, ahs, sizeof(ahs));
				w.ahs = ahs;
				w.ahs_len = 4 * rn(m, 16);
			}
		}
		if (m && rounds == 0 && chance(m, 15)) {
			/*
			 * Answers backed up: many empty C-bit requests left
			 * unread, so that what follows meets a full socket; then
			 * a failing request and a full feature phase PDU.
			 */
			struct iscsi_bhs_login_req e = q;
			uint8_t cmd[ISCSI_BHS_LEN] = {ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL};

			int small = 4096, inq = 0, prev = -1, stalled = 0;

			e.flags = ISCSI_LOGIN_CONTINUE | ISCSI_STAGE_OPERATIONAL;
			setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
			(void)send_pdu(c, &e, t.buf, t.len);
			/*
			 * Until our receive queue stops growing (the answers
			 * now wait in the target), then more: once the target's
			 * socket buffer is full its queue grows (up to 4096
			 * PDUs, where it closes).
			 */
			for (int b = 0; b < 400 && stalled < 2; b++) {
				for (int k = 0; k < 500; k++)
					(void)send_pdu(c, &e, NULL, 0);
				usleep(2000);
				if (ioctl(c->fd, FIONREAD, &inq) < 0)
					break;
				stalled = inq == prev ? stalled + 1 : 0;
				prev = inq;
			}
			/*
			 * How many more fill the target's socket buffer but not
			 * its queue: learnt over the run. Too many, and the
			 * target closes (its PDU pool is spent) while we send.
			 */
			uint32_t more = g_flood_lo + rn(m, g_flood_hi - g_flood_lo + 1), k;

			for (k = 0; k < more; k++)
				if (send_pdu(c, &e, NULL, 0) < 0)
					break;
			if (k < more)
				g_flood_hi = UTIL_MAX(more, g_flood_lo + 1);
			else
				g_flood_lo = UTIL_MIN(more, g_flood_hi - 1);
			e.flags |= ISCSI_LOGIN_TRANSIT;
			(void)send_pdu(c, &e, NULL, 0);
			(void)send_pdu(c, cmd, NULL, 0);
			usleep(200000); /* closing now with unread data would reset it all */
			goto refused;
		}
		rc = send_pdu_wire(c, &q, t.buf, t.len, &w);
		if (rc < 0)
			goto refused;
		for (;;) {
			rc = recv_pdu(c, &p, deadline);
			if (rc == 0)
				goto refused;
			if (rc < 0) {
				recv_done(c);
				if (m) {
					conn_close(c);
					return 1; /* a lie about lengths may leave the target
						     waiting */
				}
				if (a->report)
					fprintf(stderr, "login to %s: no answer within %d ms\n",
						a->target, g_opt.wait_ms);
				conn_close(c);
				return -1;
			}
			if ((p.bhs[0] & ISCSI_OP_MASK) == ISCSI_OP_LOGIN_RSP)
				break;
		}
		{
			const struct iscsi_bhs_login_rsp *lr = (const void *)p.bhs;
			const char *v;

			if (lr->status_class != 0) {
				recv_done(c);
				if (a->report)
					fprintf(stderr, "login to %s: status 0x%02x%02x\n",
						a->target, lr->status_class, lr->status_detail);
				goto refused;
			}
			c->exp_statsn = get_be32(lr->statsn) + 1;
			v = text_get(p.data, p.dlen, "MaxRecvDataSegmentLength");
			if (v)
				c->peer_mrdsl = (uint32_t)strtoul(v, NULL, 10);
			v = text_get(p.data, p.dlen, "FirstBurstLength");
			if (v)
				c->first_burst = (uint32_t)strtoul(v, NULL, 10);
			v = text_get(p.data, p.dlen, "ImmediateData");
			if (v)
				c->imm_data = strcmp(v, "Yes") == 0;
			if (lr->flags & ISCSI_LOGIN_TRANSIT) {
				if ((lr->flags & ISCSI_LOGIN_NSG_MASK) ==
				    ISCSI_STAGE_FULL_FEATURE) {
					const char *hd = text_get(p.data, p.dlen, "HeaderDigest");
					const char *dd = text_get(p.data, p.dlen, "DataDigest");

					c->hdigest = hd && strcmp(hd, "CRC32C") == 0;
					c->ddigest = dd && strcmp(dd, "CRC32C") == 0;
					c->cmdsn = get_be32(lr->exp_cmdsn);
					c->max_cmdsn = get_be32(lr->max_cmdsn);
					c->ffp = true;
					recv_done(c);
					if (c->peer_mrdsl == 0 || c->peer_mrdsl > TX_DATA_MAX)
						c->peer_mrdsl = LOGIN_DATA_MAX;
					return 0;
				}
				stage = lr->flags & ISCSI_LOGIN_NSG_MASK;
			}
			recv_done(c);
		}
	}
refused:
	recv_done(c);
	conn_close(c);
	if (a->report)
		fprintf(stderr, "login to %s refused or closed\n", a->target);
	return m ? 1 : -1;
}
