/*
 * fuzz_pdu_gen.h: part of fuzz_pdu.c (included once, in order): the fuzzed PDUs: CDBs, parameter
 * lists, header mutations
 */

/* ---- the fuzzed PDUs ---- */

/* SCSI opcodes worth aiming at (SPC-4, SBC-3); the rest come at random. */
static const uint8_t g_ops[] = {
    0x00, 0x03, 0x04, 0x08, 0x0a, 0x12, 0x15, 0x16, 0x17, 0x1a, 0x1b, 0x1d, 0x25, 0x28, 0x2a, 0x2e,
    0x2f, 0x34, 0x35, 0x41, 0x42, 0x48, 0x4d, 0x55, 0x56, 0x57, 0x5a, 0x5e, 0x5f, 0x83, 0x84, 0x88,
    0x89, 0x8a, 0x8e, 0x8f, 0x91, 0x93, 0x9c, 0x9e, 0xa0, 0xa3, 0xa4, 0xa8, 0xaa, 0xae, 0xaf, 0x7f,
};

static uint32_t next_itt(struct conn *c)
{
	c->itt++;
	if (c->itt == ISCSI_RSVD_TAG)
		c->itt = 1;
	c->recent_itt[c->nrecent++ % RECENT_ITT] = c->itt;
	return c->itt;
}

static uint32_t pick_itt(struct conn *c, struct rng *r)
{
	if (c->nrecent && chance(r, 70))
		return c->recent_itt[rn(r, UTIL_MIN(c->nrecent, RECENT_ITT))];
	return chance(r, 10) ? ISCSI_RSVD_TAG : (uint32_t)rnd(r);
}

/* CmdSN: in order mostly, sometimes ahead, behind, or anywhere. */
static uint32_t pick_cmdsn(struct conn *c, struct rng *r, bool consume_sn)
{
	switch (rn(r, 20)) {
	case 0:
		return (uint32_t)rnd(r);
	case 1:
		return c->cmdsn + 1 + rn(r, 8);
	case 2:
		return c->cmdsn - 1 - rn(r, 8);
	case 3:
		return c->cmdsn + 0x80000000u;
	default:
		return consume_sn ? c->cmdsn++ : c->cmdsn;
	}
}

/* Fill a CDB for \p op with a plausible shape and random fields. */
static uint32_t make_cdb(struct rng *r, uint8_t *cdb, uint8_t op, bool *write)
{
	uint64_t lba = chance(r, 80) ? rn(r, 131072) : rnd(r);
	uint32_t blocks = chance(r, 80) ? rn(r, 65) : (uint32_t)rnd(r);
	uint32_t plen = chance(r, 80) ? rn(r, 600) : (uint32_t)rnd(r);

	memset(cdb, 0, 16);
	if (chance(r, 5))
		rfill(r, cdb, 16);
	cdb[0] = op;
	if (chance(r, 5))
		cdb[1] = (uint8_t)rnd(r);
	*write = false;
	switch (op) {
	case 0x08: /* READ(6) */
	case 0x0a: /* WRITE(6) */
		cdb[1] = (uint8_t)((lba >> 16) & 0x1f);
		put_be16(cdb + 2, (uint16_t)lba);
		cdb[4] = (uint8_t)blocks;
		*write = op == 0x0a;
		return (cdb[4] ? cdb[4] : 256) * 512u;
	case 0x28: /* READ(10) */
	case 0x2a: /* WRITE(10) */
	case 0x2e: /* WRITE AND VERIFY(10) */
	case 0x2f: /* VERIFY(10) */
	case 0x34: /* PRE-FETCH(10) */
	case 0x35: /* SYNCHRONIZE CACHE(10) */
	case 0x41: /* WRITE SAME(10) */
		put_be32(cdb + 2, (uint32_t)lba);
		put_be16(cdb + 7, (uint16_t)blocks);
		*write = op == 0x2a || op == 0x2e || op == 0x41 || (op == 0x2f && (cdb[1] & 0x06));
		return op == 0x41 ? 512 : (uint16_t)blocks * 512u;
	case 0xa8: /* READ(12) */
	case 0xaa: /* WRITE(12) */
		put_be32(cdb + 2, (uint32_t)lba);
		put_be32(cdb + 6, blocks);
		*write = op == 0xaa;
		return blocks * 512u;
	case 0x88: /* READ(16) */
	case 0x8a: /* WRITE(16) */
	case 0x8e: /* WRITE AND VERIFY(16) */
	case 0x8f: /* VERIFY(16) */
	case 0x91: /* SYNCHRONIZE CACHE(16) */
	case 0x93: /* WRITE SAME(16) */
	case 0x9c: /* WRITE ATOMIC(16) */
		put_be64(cdb + 2, lba);
		put_be32(cdb + 10, blocks);
		*write = op == 0x8a || op == 0x8e || op == 0x93 || op == 0x9c;
		return op == 0x93 ? 512 : blocks * 512u;
	case 0x89: /* COMPARE AND WRITE */
		put_be64(cdb + 2, lba);
		cdb[13] = (uint8_t)(chance(r, 80) ? 1 + rn(r, 4) : rnd(r));
		*write = true;
		return cdb[13] * 1024u;
	case 0x42: /* UNMAP */
	case 0x15: /* MODE SELECT(6) */
	case 0x55: /* MODE SELECT(10) */
	case 0x5f: /* PERSISTENT RESERVE OUT */
	case 0x83: /* EXTENDED COPY */
	case 0x1d: /* SEND DIAGNOSTIC */
	case 0x04: /* FORMAT UNIT */
	case 0x48: /* SANITIZE */
		*write = true;
		if (op == 0x15) {
			cdb[4] = (uint8_t)plen;
			return cdb[4];
		}
		if (op == 0x1d) {
			put_be16(cdb + 3, (uint16_t)plen);
			return (uint16_t)plen;
		}
		if (op == 0x04) {
			cdb[1] = (uint8_t)(cdb[1] | (chance(r, 50) ? 0x10 : 0));
			return (cdb[1] & 0x10) ? plen % 64 : 0;
		}
		if (op == 0x5f) {
			cdb[1] = (uint8_t)rn(r, 10);
			cdb[2] = (uint8_t)rn(r, 9);
			put_be32(cdb + 5, chance(r, 70) ? 24 : plen);
			return get_be32(cdb + 5);
		}
		if (op == 0x83) {
			put_be32(cdb + 10, plen);
			return plen;
		}
		put_be16(cdb + 7, (uint16_t)plen);
		return (uint16_t)plen;
	case 0x84: /* RECEIVE COPY RESULTS */
	case 0x9e: /* SERVICE ACTION IN(16) */
	case 0xa3: /* MAINTENANCE IN */
		cdb[1] = (uint8_t)rn(r, 32);
		put_be32(cdb + 10, plen);
		return plen;
	case 0x5e: /* PERSISTENT RESERVE IN */
	case 0x5a: /* MODE SENSE(10) */
	case 0x4d: /* LOG SENSE */
		cdb[1] = (uint8_t)rn(r, 8);
		cdb[2] = (uint8_t)rnd(r);
		put_be16(cdb + 7, (uint16_t)plen);
		return (uint16_t)plen;
	case 0x12: /* INQUIRY */
		cdb[1] = (uint8_t)rn(r, 2);
		cdb[2] = (uint8_t)(chance(r, 50) ? rnd(r) : 0x80 + rn(r, 0x40));
		put_be16(cdb + 3, (uint16_t)plen);
		return (uint16_t)plen;
	case 0x1a: /* MODE SENSE(6) */
	case 0x03: /* REQUEST SENSE */
		cdb[2] = (uint8_t)rnd(r);
		cdb[4] = (uint8_t)plen;
		return cdb[4];
	case 0xa0: /* REPORT LUNS */
		put_be32(cdb + 6, plen);
		return plen;
	case 0x25: /* READ CAPACITY(10) */
		return 8;
	default:
		if (!chance(r, 15))
			rfill(r, cdb + 1, 15);
		*write = chance(r, 30);
		return rlen(r, 4096);
	}
}

/* Parameter data for \p op: structured enough to get past the first checks. */
static void make_param(struct rng *r, uint8_t op, uint8_t *buf, uint32_t len)
{
	rfill(r, buf, len);
	if (chance(r, 20))
		return;
	switch (op) {
	case 0x42: /* UNMAP: header + 16-byte descriptors */
		if (len >= 8) {
			put_be16(buf, (uint16_t)(chance(r, 70) ? len - 2 : rnd(r)));
			put_be16(buf + 2, (uint16_t)(chance(r, 70) ? len - 8 : rnd(r)));
			for (uint32_t o = 8; o + 16 <= len; o += 16) {
				put_be64(buf + o, chance(r, 80) ? rn(r, 131072) : rnd(r));
				put_be32(buf + o + 8,
					 chance(r, 80) ? rn(r, 256) : (uint32_t)rnd(r));
			}
		}
		break;
	case 0x83: /* EXTENDED COPY (LID1): 16-byte header, CSCD then segment lists */
		if (len >= 16) {
			buf[0] = (uint8_t)rn(r, 256);
			buf[1] = (uint8_t)(rnd(r) & 0x1f);
			uint32_t cl = 32 * rn(r, 3), sl = 28 * rn(r, 3);
			put_be16(buf + 2, (uint16_t)(chance(r, 70) ? cl : rnd(r)));
			put_be32(buf + 8, chance(r, 70) ? sl : (uint32_t)rnd(r));
			put_be32(buf + 12, (uint32_t)(chance(r, 80) ? 0 : rnd(r)));
			for (uint32_t o = 16; o + 32 <= 16 + cl && o + 32 <= len; o += 32) {
				buf[o] = chance(r, 70) ? 0xe4 : (uint8_t)rnd(r);
				buf[o + 4] = 0x01;
				buf[o + 5] = 0x03;
				buf[o + 7] = 16;
			}
			for (uint32_t o = 16 + cl; o + 28 <= 16 + cl + sl && o + 28 <= len;
			     o += 28) {
				buf[o] = chance(r, 70) ? 0x02 : (uint8_t)rnd(r);
				put_be16(buf + o + 2, 0x18);
				put_be16(buf + o + 4, (uint16_t)rn(r, 3));
				put_be16(buf + o + 6, (uint16_t)rn(r, 3));
				put_be16(buf + o + 10, (uint16_t)rn(r, 64));
				put_be64(buf + o + 12, rn(r, 131072));
				put_be64(buf + o + 20, rn(r, 131072));
			}
		}
		break;
	case 0x15: /* MODE SELECT(6): 4-byte header, pages */
	case 0x55: /* MODE SELECT(10): 8-byte header */
	{
		uint32_t h = op == 0x15 ? 4 : 8;
		if (len >= h) {
			memset(buf, 0, h);
			if (chance(r, 30))
				buf[op == 0x15 ? 3 : 7] = 8; /* a block descriptor */
			uint32_t o = h + (chance(r, 30) ? 8 : 0);
			static const uint8_t pages[] = {0x08, 0x0a, 0x1c, 0x01, 0x3f, 0x00};
			while (o + 2 <= len) {
				buf[o] = pages[rn(r, sizeof(pages))] | (chance(r, 20) ? 0x40 : 0);
				buf[o + 1] = (uint8_t)(chance(r, 80) ? 10 + rn(r, 10) : rnd(r));
				o += 2u + buf[o + 1];
			}
		}
		break;
	}
	case 0x5f: /* PR OUT: keys and flags */
		if (len >= 24) {
			put_be64(buf, rn(r, 4));
			put_be64(buf + 8, rn(r, 4));
			buf[20] = (uint8_t)(rnd(r) & 0x0f);
		}
		break;
	default:
		break;
	}
}

static uint8_t g_data[TX_DATA_MAX];

/* Random extra header trouble on a PDU about to be sent. */
static void mutate_header(struct rng *r, uint8_t *bhs, struct wire *w, uint8_t *ahs)
{
	if (chance(r, 30)) {
		/* lie about the data length: the stream desynchronises */
		put_be24(bhs + 5, rlen(r, get_be24(bhs + 5) + 64));
		w->dlen_raw = true;
	}
	if (chance(r, 20)) {
		w->ahs = ahs;
		w->ahs_len = 4 * rn(r, 40);
		rfill(r, ahs, w->ahs_len);
		if (w->ahs_len >= 4 && chance(r, 50)) {
			put_be16(ahs, (uint16_t)rlen(r, (uint16_t)(w->ahs_len - 3)));
			ahs[2] = (uint8_t)(chance(r, 50) ? 1 : 2);
		}
		if (chance(r, 20)) {
			bhs[4] = (uint8_t)rnd(r);
			w->ahs_raw = true;
		}
	}
	if (chance(r, 25)) /* reserved bytes and flags */
		bhs[2 + rn(r, 2)] ^= (uint8_t)(1u << rn(r, 8));
	if (chance(r, 25))
		bhs[rn(r, ISCSI_BHS_LEN)] ^= (uint8_t)(1u << rn(r, 8));
	if (chance(r, 20)) /* exp_statsn far away: same offset in every request */
		put_be32(bhs + 28, (uint32_t)rnd(r));
	if (chance(r, 8))
		w->bad_hdigest = true;
	if (chance(r, 15))
		w->bad_ddigest = true;
	if (chance(r, 5))
		w->no_pad = true;
}

/* Send one fuzzed request; returns the send status. */
static int fuzz_one(struct conn *c, struct rng *r)
{
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t ahs[ISCSI_MAX_AHS_LEN];
	struct wire w = {0};
	uint32_t dlen = 0;
	unsigned kind = rn(r, 100);
	int rc;

	memset(bhs, 0, sizeof(bhs));
	put_be32(bhs + 28, c->exp_statsn); /* ExpStatSN: the same offset in every request */
	if (kind < 45) {
		/* SCSI Command */
		struct iscsi_bhs_scsi_cmd *h = (void *)bhs;
		uint8_t op = chance(r, 85) ? g_ops[rn(r, sizeof(g_ops))] : (uint8_t)rnd(r);
		bool write;
		uint32_t xfer = make_cdb(r, h->cdb, op, &write);
		uint32_t edtl = chance(r, 75) ? xfer : rlen(r, xfer);

		h->opcode = ISCSI_OP_SCSI_CMD | (chance(r, 10) ? ISCSI_OP_IMMEDIATE : 0);
		h->flags = (uint8_t)((chance(r, 90) ? ISCSI_FLAG_FINAL : 0) | rn(r, 5));
		if (chance(r, 90))
			h->flags |= write ? ISCSI_CMD_WRITE : (edtl ? ISCSI_CMD_READ : 0);
		else
			h->flags |= (uint8_t)(rnd(r) & (ISCSI_CMD_READ | ISCSI_CMD_WRITE));
		if (chance(r, 90))
			put_lun(h->lun, 0);
		else
			rfill(r, h->lun, 8);
		if (chance(r, 95)) {
			put_be32(h->itt, next_itt(c));
			c->recent_op[(c->nrecent - 1) % RECENT_ITT] = h->cdb[0];
		} else {
			put_be32(h->itt, pick_itt(c, r));
		}
		put_be32(h->exp_xfer_len, edtl);
		put_be32(h->cmdsn, pick_cmdsn(c, r, !(h->opcode & ISCSI_OP_IMMEDIATE)));
		put_be32(h->exp_statsn, c->exp_statsn);
		if (h->flags & ISCSI_CMD_WRITE) {
			/* within the negotiated limits mostly, beyond them sometimes */
			uint32_t fb = UTIL_MIN(edtl, c->first_burst);
			dlen = chance(r, 70) ? fb : rlen(r, fb);
			if (!c->imm_data && chance(r, 95))
				dlen = 0;
			dlen = UTIL_MIN(dlen, chance(r, 95) ? c->peer_mrdsl : TX_DATA_MAX);
			make_param(r, op, g_data, dlen);
		} else if (chance(r, 3)) {
			dlen = rlen(r, 512) % 4096;
			rfill(r, g_data, dlen);
		}
		if (chance(r, 5)) {
			/* an Extended CDB AHS */
			w.ahs = ahs;
			w.ahs_len = 4 * (1 + rn(r, 66));
			rfill(r, ahs, w.ahs_len);
			put_be16(ahs, (uint16_t)(chance(r, 70) ? w.ahs_len - 3 : rnd(r)));
			ahs[2] = 1;
		}
	} else if (kind < 60) {
		/* Data-Out: answer an R2T (mostly right) or a made-up one */
		struct iscsi_bhs_data_out *h = (void *)bhs;
		struct r2t t;
		bool real = c->nr2t && chance(r, 80);

		if (real) {
			unsigned i = rn(r, c->nr2t);
			t = c->r2t[i];
			c->r2t[i] = c->r2t[--c->nr2t];
		} else {
			t = (struct r2t){pick_itt(c, r),
					 chance(r, 50) ? ISCSI_RSVD_TAG : (uint32_t)rnd(r),
					 rlen(r, 65536), rlen(r, 65536)};
		}
		h->opcode = ISCSI_OP_DATA_OUT;
		h->flags = chance(r, 85) ? ISCSI_FLAG_FINAL : 0;
		put_lun(h->lun, 0);
		put_be32(h->itt, chance(r, 90) ? t.itt : (uint32_t)rnd(r));
		put_be32(h->ttt, chance(r, 90) ? t.ttt : (uint32_t)rnd(r));
		put_be32(h->exp_statsn, c->exp_statsn);
		put_be32(h->datasn, chance(r, 85)   ? 0
				    : rn(r, 4) == 0 ? (uint32_t)rnd(r)
						    : rn(r, 3));
		put_be32(h->buffer_offset, chance(r, 85) ? t.off : rlen(r, t.off + 512));
		dlen = chance(r, 85) ? t.len : rlen(r, t.len);
		dlen = UTIL_MIN(dlen, chance(r, 95) ? c->peer_mrdsl : TX_DATA_MAX);
		rfill(r, g_data, UTIL_MIN(dlen, 64u));
		if (real && (h->flags & ISCSI_FLAG_FINAL) && t.len > dlen && chance(r, 70)) {
			/* the burst in several PDUs: send all but the last now */
			uint32_t off = get_be32(h->buffer_offset), sn = 0;
			h->flags = 0;
			/* bounded: a mutated offset may lie outside the burst */
			while (t.len - (off - t.off) > dlen && dlen > 0 && sn < 64) {
				put_be32(h->buffer_offset, off);
				put_be32(h->datasn, sn++);
				rc = send_pdu(c, bhs, g_data, dlen);
				if (rc < 0)
					return rc;
				off += dlen;
			}
			h->flags = ISCSI_FLAG_FINAL;
			put_be32(h->buffer_offset, off);
			put_be32(h->datasn, sn);
			dlen = t.len - (off - t.off);
			dlen = UTIL_MIN(dlen, c->peer_mrdsl);
		}
	} else if (kind < 70) {
		/* NOP-Out */
		struct iscsi_bhs_nop *h = (void *)bhs;
		bool ping = chance(r, 80);

		h->opcode = ISCSI_OP_NOP_OUT | (chance(r, 50) ? ISCSI_OP_IMMEDIATE : 0);
		h->flags = chance(r, 95) ? ISCSI_FLAG_FINAL : (uint8_t)rnd(r);
		put_be32(h->itt, ping ? next_itt(c) : ISCSI_RSVD_TAG);
		put_be32(h->ttt, chance(r, 80) ? ISCSI_RSVD_TAG : (uint32_t)rnd(r));
		put_be32(h->sn, pick_cmdsn(c, r, ping && !(h->opcode & ISCSI_OP_IMMEDIATE)));
		put_be32(h->exp_sn, c->exp_statsn);
		dlen = chance(r, 60) ? 0 : rlen(r, 1024);
		dlen = UTIL_MIN(dlen, chance(r, 95) ? c->peer_mrdsl : TX_DATA_MAX);
		rfill(r, g_data, dlen);
	} else if (kind < 80) {
		/* Text */
		struct iscsi_bhs_text *h = (void *)bhs;
		struct text t = {.len = 0};

		h->opcode = ISCSI_OP_TEXT_REQ | (chance(r, 50) ? ISCSI_OP_IMMEDIATE : 0);
		h->flags = chance(r, 75) ? ISCSI_FLAG_FINAL : ISCSI_TEXT_CONTINUE;
		if (chance(r, 5))
			h->flags = (uint8_t)rnd(r);
		put_be32(h->itt, next_itt(c));
		put_be32(h->ttt, chance(r, 70)	 ? ISCSI_RSVD_TAG
				 : chance(r, 50) ? c->text_ttt
						 : (uint32_t)rnd(r));
		put_be32(h->sn, pick_cmdsn(c, r, !(h->opcode & ISCSI_OP_IMMEDIATE)));
		put_be32(h->exp_sn, c->exp_statsn);
		if (chance(r, 40))
			text_add(&t, "SendTargets", chance(r, 50) ? "All" : g_opt.target);
		for (unsigned k = rn(r, 4); k-- > 0;)
			add_junk_pair(&t, r);
		dlen = UTIL_MIN(t.len, c->peer_mrdsl);
		memcpy(g_data, t.buf, dlen);
	} else if (kind < 88) {
		/* Task Management */
		struct iscsi_bhs_tmf_req *h = (void *)bhs;
		uint8_t fn = (uint8_t)(chance(r, 80) ? 1 + rn(r, 8) : rnd(r));

		/* a target reset would end the other fuzz sessions too often */
		if ((fn & 0x7f) == ISCSI_TMF_TARGET_COLD_RESET && chance(r, 95))
			fn = ISCSI_TMF_ABORT_TASK;
		h->opcode = ISCSI_OP_TMF_REQ | (chance(r, 80) ? ISCSI_OP_IMMEDIATE : 0);
		h->function = (uint8_t)(ISCSI_FLAG_FINAL | fn);
		if (chance(r, 80))
			put_lun(h->lun, 0);
		else
			rfill(r, h->lun, 8);
		put_be32(h->itt, next_itt(c));
		put_be32(h->rtt, pick_itt(c, r));
		put_be32(h->cmdsn, pick_cmdsn(c, r, !(h->opcode & ISCSI_OP_IMMEDIATE)));
		put_be32(h->exp_statsn, c->exp_statsn);
		put_be32(h->refcmdsn, chance(r, 70) ? c->cmdsn - rn(r, 8) : (uint32_t)rnd(r));
		put_be32(h->exp_datasn, (uint32_t)rnd(r));
		if (chance(r, 5)) {
			dlen = rn(r, 64);
			rfill(r, g_data, dlen);
		}
	} else if (kind < 91) {
		/* Logout, rarely: it ends the episode */
		if (!chance(r, 15))
			return fuzz_one(c, r);
		struct iscsi_bhs_logout_req *h = (void *)bhs;

		h->opcode = ISCSI_OP_LOGOUT_REQ | (chance(r, 50) ? ISCSI_OP_IMMEDIATE : 0);
		h->flags = (uint8_t)(ISCSI_FLAG_FINAL | (chance(r, 80) ? rn(r, 3) : rnd(r)));
		put_be32(h->itt, next_itt(c));
		put_be16(h->cid, (uint16_t)(chance(r, 80) ? 0 : rnd(r)));
		put_be32(h->cmdsn, pick_cmdsn(c, r, !(h->opcode & ISCSI_OP_IMMEDIATE)));
		put_be32(h->exp_statsn, c->exp_statsn);
	} else if (kind < 94) {
		/* SNACK */
		struct iscsi_bhs_snack *h = (void *)bhs;

		h->opcode = ISCSI_OP_SNACK_REQ;
		h->flags = (uint8_t)(ISCSI_FLAG_FINAL | rn(r, 4));
		put_be32(h->itt, pick_itt(c, r));
		put_be32(h->ttt, (uint32_t)rnd(r));
		put_be32(h->exp_statsn, c->exp_statsn);
		put_be32(h->begrun, rn(r, 8));
		put_be32(h->runlength, rn(r, 8));
	} else if (kind < 97) {
		/* an opcode nobody defined for an initiator, or a target's opcode */
		rfill(r, bhs, ISCSI_BHS_LEN);
		bhs[0] = (uint8_t)rnd(r);
		if ((bhs[0] & ISCSI_OP_MASK) == ISCSI_OP_LOGIN_REQ && chance(r, 50))
			bhs[0] ^= 0x10;
		dlen = rn(r, 3) == 0 ? rlen(r, 1024) % TX_DATA_MAX : 0;
		dlen = UTIL_MIN(dlen, c->peer_mrdsl);
		rfill(r, g_data, dlen);
	} else {
		/* a Login Request in full feature phase */
		struct iscsi_bhs_login_req *h = (void *)bhs;
		struct text t = {.len = 0};

		h->opcode = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
		h->flags = (uint8_t)rnd(r);
		put_be32(h->itt, next_itt(c));
		text_add(&t, "InitiatorName", INITIATOR_NAME);
		dlen = t.len;
		memcpy(g_data, t.buf, dlen);
	}
	if (chance(r, c->hdr_pct))
		mutate_header(r, bhs, &w, ahs);
	return send_pdu_wire(c, bhs, g_data, dlen, &w);
}
