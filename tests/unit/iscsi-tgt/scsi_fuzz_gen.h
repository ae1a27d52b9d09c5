/*
 * scsi_fuzz_gen.h: part of scsi_fuzz_ut.c (included once, after
 * scsi_fuzz_env.h): interesting values, parameter list templates and their
 * mutations, and the CDB builder for every opcode of the command table.
 */
/* ---- interesting values ---- */

static uint64_t fz_lba(void)
{
	static const uint64_t v[] = {0,
				     1,
				     FZ_CAP - 1,
				     FZ_CAP,
				     FZ_CAP + 1,
				     FZ_CAP - 2,
				     FZ_CAP - 16,
				     0x1fffff,
				     0xffffffffull,
				     0x100000000ull,
				     UINT64_MAX,
				     UINT64_MAX - 1,
				     UINT64_MAX - FZ_CAP,
				     1ull << 63};

	if (one_in(2))
		return rnd((uint32_t)FZ_CAP);
	return v[rnd(UTIL_ARRAY_SIZE(v))];
}

static uint32_t fz_nblocks(void)
{
	static const uint32_t v[] = {
	    0,	   1,	  2,	      255,	   256,	     1023,	 1024,		1025, 2048,
	    65535, 65536, 0x7fffffff, 0xffffffffu, 0x800000, 0x00ffffff, FX_BLOCKS - 1, 3};

	if (!one_in(4))
		return 1 + rnd(8);
	return v[rnd(UTIL_ARRAY_SIZE(v))];
}

static uint32_t fz_alloc_len(void)
{
	static const uint32_t v[] = {
	    0,	1,  2,	 3,   4,   5,	 7,    8,     16,    18,       24,	   31,	       32,
	    36, 64, 252, 255, 256, 4095, 4096, 65535, 65536, 0x10000f, 0x7fffffff, 0xffffffffu};

	if (one_in(3))
		return rnd(one_in(4) ? 65536 : 600);
	return v[rnd(UTIL_ARRAY_SIZE(v))];
}

static void put_len(uint8_t *p, unsigned size, uint32_t v)
{
	switch (size) {
	case 1:
		p[0] = (uint8_t)v;
		break;
	case 2:
		put_be16(p, (uint16_t)v);
		break;
	case 4:
		put_be32(p, v);
		break;
	default:
		break;
	}
}

/* ---- parameter list templates ---- */

#define FZ_OUT_MAX (64 * 1024)
static uint8_t fz_list[FZ_OUT_MAX];

static const uint64_t fz_keys[] = {0, 0x1111222233334444ull, 0x5555666677778888ull,
				   0x9999aaaabbbbccccull, UINT64_MAX};

static uint64_t fz_key(void)
{
	return one_in(8) ? rnd64() : fz_keys[rnd(UTIL_ARRAY_SIZE(fz_keys))];
}

/* An iSCSI TransportID (SPC-4 7.6.4.6) into \p p; returns its length. */
static uint32_t fz_tpid(uint8_t *p, uint32_t room)
{
	/* and names no initiator has: spaces, line breaks that could forge a state file line */
	static const char *names[] = {N0_NAME,
				      N1_NAME,
				      "iqn.2024-01.org.test:other",
				      "",
				      "x",
				      "iqn.2024-01.org.test:a b",
				      "iqn.2024-01.org.test:x\nresv 1 * " N1_NAME,
				      "iqn.2024-01.org.test:y\nreg 00000000000000aa 0 * iqn.evil",
				      "iqn.2024-01.org.test:\t\x7f"};
	const char *n = names[rnd(UTIL_ARRAY_SIZE(names))];
	char s[300];
	uint32_t len, pad;
	bool port = one_in(2);

	if (room < 4)
		return 0;
	if (port)
		snprintf(s, sizeof(s), "%s,i,0x%s", n,
			 one_in(2) ? "800000000001" : (one_in(2) ? "800000000002" : "zz"));
	else
		snprintf(s, sizeof(s), "%s", n);
	if (one_in(16)) { /* a name as long as names get, or longer */
		memset(s, 'a', 280);
		s[one_in(2) ? 223 : 280] = '\0';
	}
	len = (uint32_t)strlen(s) + 1;
	pad = (len + 3) & ~3u;
	if (pad < 20)
		pad = 20;
	if (4 + pad > room)
		pad = (room - 4) & ~3u;
	memset(p, 0, 4 + pad);
	p[0] = (uint8_t)(TPID_PROTO_ISCSI | (port ? TPID_FMT_PORT : TPID_FMT_NAME));
	if (one_in(16))
		p[0] = (uint8_t)rnd64();
	memcpy(p + 4, s, UTIL_MIN(len, pad));
	if (one_in(8) && pad > 0)
		p[4 + pad - 1] = 'z'; /* no terminating NUL */
	put_be16(p + 2, (uint16_t)(one_in(8) ? rnd(400) : pad));
	return 4 + pad;
}

static uint32_t fz_prout_list(uint8_t sa)
{
	uint8_t *p = fz_list;
	uint32_t len = PROUT_BASIC_LEN;

	memset(p, 0, 1024);
	put_be64(p, fz_key());
	put_be64(p + 8, fz_key());
	if (sa == PROUT_REGISTER_AND_MOVE) {
		/* SPC-4 6.17.4: UNREG, APTPL, RELATIVE TARGET PORT IDENTIFIER, TransportID */
		uint32_t n;

		p[17] = (uint8_t)(rnd(4) & (PROUT_MOVE_UNREG | PROUT_APTPL));
		put_be16(p + 18, (uint16_t)(one_in(4) ? rnd(4) : 1));
		n = fz_tpid(p + 24, 1000);
		put_be32(p + 20, one_in(6) ? (uint32_t)rnd(1200) : n);
		return len + n;
	}
	if (one_in(3))
		p[20] = (uint8_t)(rnd(16) & (PROUT_SPEC_I_PT | PROUT_ALL_TG_PT | PROUT_APTPL));
	if (p[20] & PROUT_SPEC_I_PT) {
		uint32_t n = 0, k = rnd(4);

		for (uint32_t i = 0; i < k; i++)
			n += fz_tpid(p + 28 + n, 900 - n);
		put_be32(p + 24, one_in(6) ? (uint32_t)rnd(1200) : n);
		len += 4 + n;
	}
	return len;
}

static uint32_t fz_mode_select_list(bool ten)
{
	uint8_t *p = fz_list;
	uint32_t hdr = ten ? MODE_HDR10_LEN : MODE_HDR6_LEN, len = hdr;
	unsigned npages = rnd(4);

	memset(p, 0, 512);
	if (one_in(3)) { /* a block descriptor: the block length must be ours */
		uint32_t bdl = (ten && one_in(3)) ? MODE_BD_LONG_LEN : MODE_BD_SHORT_LEN;

		if (bdl == MODE_BD_LONG_LEN)
			p[4] |= MODE_LONGLBA;
		if (bdl == MODE_BD_LONG_LEN)
			put_be32(p + len + 12, one_in(4) ? rnd(4096) : FX_BS);
		else
			put_be24(p + len + 5, one_in(4) ? rnd(4096) : FX_BS);
		if (ten)
			put_be16(p + 6, (uint16_t)bdl);
		else
			p[3] = (uint8_t)bdl;
		len += bdl;
	}
	for (unsigned i = 0; i < npages && len < 400; i++) {
		uint8_t *pg = p + len;

		switch (rnd(5)) {
		case 0:
			pg[0] = MP_CACHING;
			pg[1] = MP_CACHING_LEN;
			pg[2] = (uint8_t)(one_in(2) ? MP_CACHING_WCE : 0);
			len += 2 + MP_CACHING_LEN;
			break;
		case 1:
			pg[0] = MP_CONTROL;
			pg[1] = MP_CONTROL_LEN;
			pg[2] = (uint8_t)(one_in(2) ? MP_CONTROL_D_SENSE : 0);
			pg[4] = (uint8_t)(one_in(6) ? MP_CONTROL_SWP : 0);
			len += 2 + MP_CONTROL_LEN;
			break;
		case 2:
			pg[0] = MP_INFO_EXCEPTIONS;
			pg[1] = MP_IEC_LEN;
			pg[2] = MP_IEC_DEXCPT;
			len += 2 + MP_IEC_LEN;
			break;
		case 3: { /* subpage format, long length */
			uint16_t n = (uint16_t)rnd(40);

			pg[0] = (uint8_t)(MP_SPF | rnd(64));
			pg[1] = (uint8_t)rnd64();
			put_be16(pg + 2, n);
			rnd_fill(pg + 4, n);
			len += 4u + n;
			break;
		}
		default: {
			uint8_t n = (uint8_t)rnd(30);

			pg[0] = (uint8_t)rnd64();
			pg[1] = n;
			rnd_fill(pg + 2, n);
			len += 2u + n;
			break;
		}
		}
	}
	if (one_in(4)) { /* a MODE DATA LENGTH, which MODE SELECT wants 0 */
		if (ten)
			put_be16(p, (uint16_t)rnd(600));
		else
			p[0] = (uint8_t)rnd(256);
	}
	return len;
}

static uint32_t fz_unmap_list(void)
{
	uint8_t *p = fz_list;
	uint32_t n = one_in(8) ? rnd(300) : rnd(5);
	uint32_t len = 8 + 16 * n;

	if (len > FZ_OUT_MAX)
		len = FZ_OUT_MAX;
	memset(p, 0, len);
	put_be16(p, (uint16_t)(len - 2));
	put_be16(p + 2, (uint16_t)(len - 8));
	for (uint32_t i = 0; i < n && 8 + 16 * i + 16 <= len; i++) {
		uint8_t *d = p + 8 + 16 * i;

		put_be64(d, fz_lba());
		put_be32(d + 8, fz_nblocks());
	}
	if (one_in(6))
		put_be16(p, (uint16_t)rnd64());
	if (one_in(6))
		put_be16(p + 2, (uint16_t)(one_in(2) ? rnd64() : 16 * rnd(n + 3)));
	return len;
}

/* The list just built is meant valid: no mutation (most mutated ones fail early). */
static bool fz_list_clean;

/* A valid copy: 1 or 2 CSCDs, 1 to 3 segments in range, DC or not. */
static uint32_t fz_xcopy_clean(void)
{
	uint8_t *p = fz_list;
	uint32_t len = XCOPY_HDR_LEN, ncscd = 1 + rnd(2), nseg = 1 + rnd(3);

	memset(p, 0, 1024);
	p[0] = (uint8_t)rnd(4);
	p[1] = (uint8_t)((one_in(2) ? XCOPY_LIST_ID_NO_HOLD : XCOPY_LIST_ID_HOLD)
			 << XCOPY_LIST_ID_USAGE_SHIFT);
	for (uint32_t i = 0; i < ncscd; i++, len += XCOPY_CSCD_LEN) {
		uint8_t *d = p + len;

		d[0] = XCOPY_CSCD_ID;
		d[4] = DESIG_CODESET_BINARY;
		d[5] = DESIG_ASSOC_LU | DESIG_TYPE_NAA;
		d[7] = VOL_ID_LEN;
		memcpy(d + 8, (i == 1 ? &fz_vol2 : &fx_vol)->id, VOL_ID_LEN);
		put_be24(d + 29, FX_BS);
	}
	for (uint32_t i = 0; i < nseg; i++, len += XCOPY_SEG_B2B_LEN) {
		uint8_t *d = p + len;
		uint16_t n = (uint16_t)(one_in(4) ? rnd(2 * FX_BLOCKS) : rnd(64));

		d[0] = XCOPY_SEG_B2B;
		d[1] = (uint8_t)(one_in(2) ? XCOPY_SEG_DC : 0);
		put_be16(d + 2, XCOPY_SEG_B2B_LEN - 4);
		put_be16(d + 4, (uint16_t)rnd(ncscd));
		put_be16(d + 6, (uint16_t)rnd(ncscd));
		put_be16(d + 10, n);
		put_be64(d + 12, rnd(FX_BLOCKS));
		put_be64(d + 20, one_in(8) ? FZ_CAP - n + rnd(2) : rnd(FX_BLOCKS));
	}
	put_be16(p + 2, (uint16_t)(ncscd * XCOPY_CSCD_LEN));
	put_be32(p + 8, nseg * XCOPY_SEG_B2B_LEN);
	fz_list_clean = true;
	return len;
}

static uint32_t fz_xcopy_list(void)
{
	uint8_t *p = fz_list;
	uint32_t len = XCOPY_HDR_LEN, tdll = 0, sdll = 0;
	unsigned ncscd = rnd(4), nseg = rnd(4);

	if (one_in(2))
		return fz_xcopy_clean();
	memset(p, 0, 2048);
	p[0] = (uint8_t)rnd64();
	p[1] = (uint8_t)(rnd(4) << XCOPY_LIST_ID_USAGE_SHIFT);
	if (one_in(8))
		p[1] = (uint8_t)rnd64();
	for (unsigned i = 0; i < ncscd; i++) {
		uint8_t *d = p + len;
		const struct vol *v = one_in(3) ? &fz_vol2 : &fx_vol;

		d[0] = one_in(10) ? (uint8_t)rnd64() : XCOPY_CSCD_ID;
		d[1] = one_in(6) ? XCOPY_CSCD_NUL : 0;
		d[4] = DESIG_CODESET_BINARY;
		d[5] = DESIG_ASSOC_LU | DESIG_TYPE_NAA;
		d[7] = one_in(10) ? (uint8_t)rnd(40) : VOL_ID_LEN;
		memcpy(d + 8, v->id, VOL_ID_LEN);
		if (one_in(10))
			d[8 + rnd(VOL_ID_LEN)] ^= 1;
		if (one_in(10))
			d[28] = XCOPY_CSCD_PAD;
		put_be24(d + 29, one_in(8) ? rnd(4096) : FX_BS);
		if (one_in(16))
			rnd_fill(d + 1, XCOPY_CSCD_LEN - 1);
		len += XCOPY_CSCD_LEN;
		tdll += XCOPY_CSCD_LEN;
	}
	for (unsigned i = 0; i < nseg; i++) {
		uint8_t *d = p + len;
		uint16_t n = (uint16_t)(one_in(3) ? fz_nblocks() : 1 + rnd(16));

		d[0] = one_in(10) ? (uint8_t)rnd64() : XCOPY_SEG_B2B;
		d[1] = (uint8_t)(one_in(3) ? XCOPY_SEG_DC : 0);
		put_be16(d + 2, (uint16_t)(one_in(10) ? rnd(64) : XCOPY_SEG_B2B_LEN - 4));
		put_be16(d + 4, (uint16_t)(one_in(8) ? rnd64() : rnd(ncscd + 1)));
		put_be16(d + 6, (uint16_t)(one_in(8) ? rnd64() : rnd(ncscd + 1)));
		put_be16(d + 10, n);
		put_be64(d + 12, fz_lba());
		put_be64(d + 20, fz_lba());
		len += XCOPY_SEG_B2B_LEN;
		sdll += XCOPY_SEG_B2B_LEN;
	}
	if (one_in(6)) { /* inline data, or a claim of it */
		uint32_t inl = rnd(64);

		put_be32(p + 12, inl);
		len += inl;
	}
	put_be16(p + 2, (uint16_t)(one_in(8) ? rnd64() : tdll));
	put_be32(p + 8, one_in(8) ? (uint32_t)(one_in(2) ? rnd64() : rnd(200)) : sdll);
	return len;
}

static uint32_t fz_sanitize_list(void)
{
	uint32_t plen = one_in(3) ? FX_BS : 1 + rnd(8);

	fz_list[0] = (uint8_t)(1 + (one_in(8) ? rnd(3) : 0));
	if (one_in(3))
		fz_list[0] |= SANITIZE_OW_INVERT;
	if (one_in(16))
		fz_list[0] = (uint8_t)rnd64();
	fz_list[1] = 0;
	put_be16(fz_list + 2, (uint16_t)(one_in(8) ? rnd(1024) : plen));
	rnd_fill(fz_list + 4, plen);
	return 4 + plen;
}

/* Mutate a generated list: flipped bits, overwritten bytes, a truncation. */
static uint32_t fz_mutate(uint32_t len)
{
	if (len > 0 && one_in(3)) {
		unsigned k = 1 + rnd(3);

		for (unsigned i = 0; i < k; i++) {
			uint32_t at = rnd(len);

			if (one_in(2))
				fz_list[at] ^= (uint8_t)(1u << rnd(8));
			else
				fz_list[at] = (uint8_t)rnd64();
		}
	}
	if (len > 0 && one_in(10))
		len = rnd(len);
	else if (one_in(12))
		len += rnd(64);
	return UTIL_MIN(len, (uint32_t)FZ_OUT_MAX);
}

/* ---- CDBs ---- */

/* The table entries the fuzzer picks from: every opcode and service action. */
static const struct tgt_scsi_cmd *fz_cmds[512];
static unsigned fz_ncmds;

static void fz_collect(void)
{
	fz_ncmds = 0;
	for (unsigned op = 0; op < 256; op++) {
		const struct tgt_scsi_cmd *e = &table_ops[op];

		if (e->sa_table != NULL) {
			for (unsigned i = 0; i < e->n_sa; i++)
				fz_cmds[fz_ncmds++] = &e->sa_table[i];
		} else if (e->exec != NULL) {
			fz_cmds[fz_ncmds++] = e;
		}
	}
}

/* Set LBA and transfer length of a READ/WRITE-layout CDB; returns the block count meant. */
static uint64_t fz_rw_fields(uint8_t *cdb, unsigned cdb_len, uint64_t lba, uint32_t n)
{
	switch (cdb_len) {
	case 6:
		put_be24(cdb + 1, (uint32_t)(lba & 0x1fffff));
		cdb[4] = (uint8_t)n;
		return cdb[4] == 0 ? 256 : cdb[4];
	case 10:
		put_be32(cdb + 2, (uint32_t)lba);
		put_be16(cdb + 7, (uint16_t)n);
		return (uint16_t)n;
	case 12:
		put_be32(cdb + 2, (uint32_t)lba);
		put_be32(cdb + 6, n);
		return n;
	default:
		put_be64(cdb + 2, lba);
		put_be32(cdb + 10, n);
		return n;
	}
}

/* The LBA as the CDB holds it (for the write range). */
static uint64_t fz_cdb_lba(const uint8_t *cdb, unsigned cdb_len)
{
	switch (cdb_len) {
	case 6:
		return get_be24(cdb + 1) & 0x1fffff;
	case 10:
	case 12:
		return get_be32(cdb + 2);
	default:
		return get_be64(cdb + 2);
	}
}

/* Where the command in fz_c may write on fx_vol, from its final CDB. */
static void fz_write_range(void)
{
	const uint8_t *cdb = fz_c.cdb;
	uint64_t lba, n;

	switch (cdb[0]) {
	case SCSI_OP_EXTENDED_COPY:
	case SCSI_OP_SANITIZE:
	case SCSI_OP_FORMAT_UNIT:
	case SCSI_OP_UNMAP: /* wherever its descriptors say */
		fz_c.wr_any = true;
		return;
	case SCSI_OP_WRITE_6:
		lba = get_be24(cdb + 1) & 0x1fffff;
		n = cdb[4] == 0 ? 256 : cdb[4];
		break;
	case SCSI_OP_WRITE_10:
	case SCSI_OP_WRITE_AND_VERIFY_10:
	case SCSI_OP_WRITE_SAME_10:
		lba = get_be32(cdb + 2);
		n = get_be16(cdb + 7);
		break;
	case SCSI_OP_WRITE_12:
	case SCSI_OP_WRITE_AND_VERIFY_12:
		lba = get_be32(cdb + 2);
		n = get_be32(cdb + 6);
		break;
	case SCSI_OP_WRITE_16:
	case SCSI_OP_WRITE_AND_VERIFY_16:
	case SCSI_OP_WRITE_SAME_16:
	case SCSI_OP_ORWRITE_16:
		lba = get_be64(cdb + 2);
		n = get_be32(cdb + 10);
		break;
	case SCSI_OP_COMPARE_AND_WRITE:
		lba = get_be64(cdb + 2);
		n = cdb[13];
		break;
	case SCSI_OP_WRITE_ATOMIC_16:
		lba = get_be64(cdb + 2);
		n = get_be16(cdb + 12);
		break;
	default: /* nothing else writes the medium */
		return;
	}
	/* SBC-3 5.42: WRITE SAME of 0 blocks writes to the last LBA */
	if (n == 0 && (cdb[0] == SCSI_OP_WRITE_SAME_10 || cdb[0] == SCSI_OP_WRITE_SAME_16))
		n = lba < FZ_CAP ? FZ_CAP - lba : 0;
	fz_c.wr_lo = lba;
	fz_c.wr_hi = lba + n < lba ? UINT64_MAX : lba + n;
}

/*
 * Build the next command into fz_c: a table entry (or a random opcode),
 * its fields set to interesting values, its parameter list, mutations.
 */
static void fz_build(void)
{
	const struct tgt_scsi_cmd *e = NULL;
	uint8_t *cdb = fz_c.cdb;
	unsigned cl = 16;
	uint32_t list = 0, natural = 0; /* list bytes generated, bytes the CDB implies */
	uint64_t lba = 0, n = 0;
	bool rw = false;

	free(fz_c.out);
	memset(&fz_c, 0, sizeof(fz_c));
	fz_list_clean = false;
	fz_c.nexus = one_in(3) ? 1 : 0;
	fz_c.no_lu = one_in(50);
	fz_c.fault = one_in(60);
	if (one_in(60)) {
		static const int errs[] = {-EIO, -ENOMEM, -EAGAIN, -ENOSPC};

		fz_c.submit_rc = errs[rnd(UTIL_ARRAY_SIZE(errs))];
		fz_c.submit_at = (int)rnd(4);
	}
	fz_c.abort_at = one_in(40) ? (int)rnd(6) : -1;
	if (one_in(25)) {
		cdb[0] = (uint8_t)rnd64();
		rnd_fill(cdb + 1, one_in(2) ? 15 : 5);
	} else {
		e = fz_cmds[rnd(fz_ncmds)];
		cl = e->cdb_len;
		cdb[0] = e->opcode;
		if (e->flags & TGT_SCSI_F_SA)
			cdb[1] = one_in(20) ? (uint8_t)rnd(32) : e->sa;
		/* flags within the usage map, now and then */
		for (unsigned i = 1; i < cl; i++)
			if (one_in(6))
				cdb[i] |= (uint8_t)(rnd64() & e->usage[i]);
	}
	switch (cdb[0]) {
	case SCSI_OP_READ_6:
	case SCSI_OP_WRITE_6:
	case SCSI_OP_READ_10:
	case SCSI_OP_WRITE_10:
	case SCSI_OP_READ_12:
	case SCSI_OP_WRITE_12:
	case SCSI_OP_READ_16:
	case SCSI_OP_WRITE_16:
	case SCSI_OP_WRITE_AND_VERIFY_10:
	case SCSI_OP_WRITE_AND_VERIFY_12:
	case SCSI_OP_WRITE_AND_VERIFY_16:
	case SCSI_OP_VERIFY_10:
	case SCSI_OP_VERIFY_12:
	case SCSI_OP_VERIFY_16:
	case SCSI_OP_PRE_FETCH_10:
	case SCSI_OP_PRE_FETCH_16:
	case SCSI_OP_SYNCHRONIZE_CACHE_10:
	case SCSI_OP_SYNCHRONIZE_CACHE_16:
	case SCSI_OP_ORWRITE_16:
	case SCSI_OP_WRITE_SAME_10:
	case SCSI_OP_WRITE_SAME_16:
		if (e == NULL)
			break;
		rw = true;
		lba = fz_lba();
		n = fz_rw_fields(cdb, cl, lba, fz_nblocks());
		lba = fz_cdb_lba(cdb, cl);
		natural = (uint32_t)UTIL_MIN(n * FX_BS, (uint64_t)UINT32_MAX);
		if (cdb[0] == SCSI_OP_WRITE_SAME_10 || cdb[0] == SCSI_OP_WRITE_SAME_16) {
			natural = FX_BS;
			if (n == 0) /* SBC-3 5.42: 0 means to the last LBA */
				n = lba < FZ_CAP ? FZ_CAP - lba : 0;
		}
		if (cdb[0] == SCSI_OP_VERIFY_10 || cdb[0] == SCSI_OP_VERIFY_12 ||
		    cdb[0] == SCSI_OP_VERIFY_16) {
			unsigned b = (cdb[1] & SBC_BYTCHK_MASK) >> SBC_BYTCHK_SHIFT;

			natural =
			    b == SBC_BYTCHK_NONE ? 0 : (b == SBC_BYTCHK_ONE ? FX_BS : natural);
		}
		break;
	case SCSI_OP_COMPARE_AND_WRITE:
		if (e == NULL)
			break;
		rw = true;
		lba = fz_lba();
		put_be64(cdb + 2, lba);
		cdb[13] = (uint8_t)(one_in(4) ? rnd(256) : 1 + rnd(4));
		n = cdb[13];
		natural = (uint32_t)(2 * n * FX_BS);
		break;
	case SCSI_OP_WRITE_ATOMIC_16:
		if (e == NULL)
			break;
		rw = true;
		lba = fz_lba();
		put_be64(cdb + 2, lba);
		n = one_in(4) ? fz_nblocks() & 0xffff : 1 + rnd(8);
		put_be16(cdb + 12, (uint16_t)n);
		natural = (uint32_t)(n * FX_BS);
		break;
	case SCSI_OP_MODE_SELECT_6:
	case SCSI_OP_MODE_SELECT_10:
		list = fz_mode_select_list(cdb[0] == SCSI_OP_MODE_SELECT_10);
		if (!one_in(8))
			cdb[1] |= MSEL_PF;
		break;
	case SCSI_OP_PERSISTENT_RESERVE_OUT:
		list = fz_prout_list(cdb[1] & SCSI_SA_MASK);
		cdb[2] = (uint8_t)(one_in(8) ? rnd64() : (uint8_t)(1 + rnd(8)));
		break;
	case SCSI_OP_UNMAP:
		list = fz_unmap_list();
		break;
	case SCSI_OP_EXTENDED_COPY:
		list = fz_xcopy_list();
		break;
	case SCSI_OP_SANITIZE:
		if ((cdb[1] & SCSI_SA_MASK) == SANITIZE_SA_OVERWRITE)
			list = fz_sanitize_list();
		/* rarely: it rewrites the whole volume */
		if (!one_in(20))
			cdb[0] = SCSI_OP_TEST_UNIT_READY, cdb[1] = 0, list = 0;
		break;
	case SCSI_OP_RECEIVE_COPY_RESULTS:
		cdb[2] = (uint8_t)rnd(4); /* the list identifiers copies use, mostly */
		break;
	case SCSI_OP_MAINTENANCE_IN:
		if ((cdb[1] & SCSI_SA_MASK) != SCSI_MI_REPORT_SUPPORTED_OPCODES)
			break;
		cdb[3] = (uint8_t)(one_in(2) ? fz_cmds[rnd(fz_ncmds)]->opcode : rnd64());
		put_be16(cdb + 4, (uint16_t)(one_in(2) ? rnd(32) : rnd64()));
		break;
	case SCSI_OP_MODE_SENSE_6:
	case SCSI_OP_MODE_SENSE_10:
		if (e != NULL && !one_in(4)) {
			static const uint8_t pages[] = {MP_CACHING, MP_CONTROL, MP_INFO_EXCEPTIONS,
							MP_ALL};

			cdb[2] = (uint8_t)(rnd(4) << 6 | pages[rnd(sizeof(pages))]);
			cdb[3] = one_in(4) ? MP_SUBPAGE_ALL : MP_SUBPAGE_NONE;
		}
		break;
	case SCSI_OP_INQUIRY:
		if (one_in(2)) {
			static const uint8_t pages[] = {0x00, 0x80, 0x83, 0x86, 0x8f,
							0xb0, 0xb1, 0xb2, 0xb3, 0xff};

			cdb[1] |= INQ_CDB_EVPD;
			cdb[2] = one_in(8) ? (uint8_t)rnd64() : pages[rnd(sizeof(pages))];
		}
		break;
	default:
		break;
	}
	if (list > 0) {
		if (!fz_list_clean)
			list = fz_mutate(list);
		natural = list;
	}
	if (e != NULL && e->len_off != 0) {
		uint32_t v = list > 0 && !one_in(6) ? list : fz_alloc_len();

		if (list > 0 && one_in(8))
			v = list + rnd(16) - 8;
		put_len(cdb + e->len_off, e->len_size, v);
		if (list == 0)
			natural = v;
		else if (e->len_size == 1)
			natural = cdb[e->len_off];
		else if (e->len_size == 2)
			natural = get_be16(cdb + e->len_off);
		else
			natural = v;
	}
	/* mutations: reserved bits, the CONTROL byte, whole bytes */
	if (one_in(10))
		cdb[1 + rnd(15)] ^= (uint8_t)(1u << rnd(8));
	if (one_in(25))
		cdb[cl - 1] = (uint8_t)rnd64();
	if (one_in(30))
		cdb[1 + rnd(15)] = (uint8_t)rnd64();

	/* ExpectedDataTransferLength: mostly what the CDB implies */
	switch (rnd(8)) {
	case 0:
		fz_c.edtl = natural > 0 ? rnd(natural) : 0;
		break;
	case 1:
		fz_c.edtl = natural + 1 + rnd(4096);
		break;
	case 2:
		fz_c.edtl = one_in(2) ? 0 : (uint32_t)rnd64();
		break;
	default:
		fz_c.edtl = natural;
		break;
	}

	/* the data-out: the list, or a data pattern (a compare half from the volume) */
	fz_c.out_len = list > 0 ? list : (uint32_t)UTIL_MIN(natural, FZ_XFER_MAX);
	if (list == 0 && (e == NULL || e->dir == TGT_DIR_IN ||
			  (e->dir == TGT_DIR_NONE && e->prep != tgt_sbc_verify_prep)))
		fz_c.out_len = 0;
	fz_c.out = malloc(fz_c.out_len ? fz_c.out_len : 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fz_c.out);
	if (list > 0) {
		memcpy(fz_c.out, fz_list, list);
	} else {
		uint64_t off = lba < FZ_CAP ? lba * FX_BS : 0;
		uint64_t from_vol = UTIL_MIN((uint64_t)fz_c.out_len, FZ_CAP * FX_BS - off);

		rnd_fill(fz_c.out, UTIL_MIN(fz_c.out_len, 64u));
		for (uint32_t i = 64; i < fz_c.out_len; i++)
			fz_c.out[i] = (uint8_t)(fz_c.out[i % 64] + i / 64);
		/* VERIFY and COMPARE AND WRITE compare with the medium: make some match */
		if (rw && one_in(2)) {
			if (cdb[0] == SCSI_OP_COMPARE_AND_WRITE)
				from_vol = UTIL_MIN(from_vol, n * FX_BS);
			memcpy(fz_c.out, fx_vol.data + off, from_vol);
		}
	}

	fz_write_range();
}
