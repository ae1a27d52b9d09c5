/*
 * scsi_ut.c: the SCSI device server's command table and primary commands:
 * CDB validation from the usage maps (reserved bits, NACA, unknown
 * opcodes and service actions), absent LUNs, unit attentions, sense
 * formats, INQUIRY and its VPD pages, REPORT LUNS, MODE SENSE/SELECT,
 * REQUEST SENSE and REPORT SUPPORTED OPERATION CODES / TMFs.
 */
#include "scsi_fixture.h"

/* ---- table and validation ---- */

static void test_unknown_opcode(void)
{
	uint8_t cdb[16] = {0xc0};

	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE));
	/* An opcode we do not have is "not supported" for RSOC too. */
	CU_ASSERT_PTR_NULL(tgt_scsi_lookup(cdb));
}

static void test_unknown_service_action(void)
{
	uint8_t cdb[16] = {SCSI_OP_SERVICE_ACTION_IN_16, 0x11};

	/* Field pointer at byte 1: initiators read it as "not implemented". */
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, 4, 1));
}

static void test_reserved_bit_points_at_it(void)
{
	uint8_t rd[16] = {SCSI_OP_READ_10, 0x01, 0, 0, 0, 0, 0, 0, 1};
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0x02, 0, 0, 36};
	uint8_t tur[16] = {SCSI_OP_TEST_UNIT_READY, 0, 0, 0, 0x80};

	CU_ASSERT_EQUAL(fixture_run(rd, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, 0, 1));
	/* INQUIRY is checked too (CMDDT, obsolete). */
	CU_ASSERT_EQUAL(fixture_run(inq, 16), 1);
	CU_ASSERT(fx_field(true, 1, 1));
	CU_ASSERT_EQUAL(fixture_run(tur, 16), 1);
	CU_ASSERT(fx_field(true, 7, 4));
}

static void test_naca_refused(void)
{
	uint8_t tur[16] = {SCSI_OP_TEST_UNIT_READY, 0, 0, 0, 0, SCSI_CONTROL_NACA};
	uint8_t rd16[16] = {SCSI_OP_READ_16};

	CU_ASSERT_EQUAL(fixture_run(tur, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, 2, 5));
	rd16[15] = SCSI_CONTROL_NACA;
	CU_ASSERT_EQUAL(fixture_run(rd16, 16), 1);
	CU_ASSERT(fx_field(true, 2, 15));
}

/*
 * Every bit outside every usage map is refused with a pointer at exactly
 * that bit, and every command accepts its own usage bits as far as the
 * reserved-bit check goes: the table and the check agree everywhere.
 */
static void test_usage_maps_exhaustive(void)
{
	unsigned checked = 0;

	for (unsigned op = 0; op < 256; op++) {
		const struct tgt_scsi_cmd *e = &table_ops[op];
		unsigned n = e->sa_table != NULL ? e->n_sa : (e->exec != NULL ? 1 : 0);

		for (unsigned k = 0; k < n; k++) {
			const struct tgt_scsi_cmd *c = e->sa_table != NULL ? &e->sa_table[k] : e;

			CU_ASSERT_EQUAL(c->usage[0], c->opcode);
			for (unsigned i = 1; i < c->cdb_len; i++) {
				for (int bit = 0; bit < 8; bit++) {
					uint8_t cdb[16] = {c->opcode, c->sa};
					uint8_t allowed = c->usage[i];

					if (i == 1 && (c->flags & TGT_SCSI_F_SA))
						allowed |= SCSI_SA_MASK;
					if (allowed & (1u << bit))
						continue;
					cdb[i] |= (uint8_t)(1u << bit);
					fixture_task(cdb, 16, false);
					CU_ASSERT_EQUAL(tgt_scsi_prepare(&fx_t), 1);
					CU_ASSERT(
					    fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
					CU_ASSERT(fx_field(true, bit, (uint16_t)i));
					checked++;
				}
			}
			/* The control byte is fully reserved (NACA, LINK). */
			CU_ASSERT_EQUAL(c->usage[c->cdb_len - 1], 0);
		}
	}
	CU_ASSERT(checked > 500);
}

/* ---- absent LUN ---- */

static void test_no_lun(void)
{
	uint8_t tur[16] = {SCSI_OP_TEST_UNIT_READY};
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0, 96};
	uint8_t rl[16] = {SCSI_OP_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 64};
	uint8_t rs[16] = {SCSI_OP_REQUEST_SENSE, 0, 0, 0, 252};
	uint8_t bogus[16] = {0xc0};

	CU_ASSERT_EQUAL(fixture_run_ex(tur, 16, NULL, 0, true), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED));
	/* An unknown opcode on an absent LUN: the LUN is the error. */
	CU_ASSERT_EQUAL(fixture_run_ex(bogus, 16, NULL, 0, true), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED));

	CU_ASSERT_EQUAL(fixture_run_ex(inq, 16, NULL, 0, true), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 96);
	CU_ASSERT_EQUAL(fx_buf[0], 0x7f); /* qualifier 011b, type 1Fh */

	CU_ASSERT_EQUAL(fixture_run_ex(rl, 16, NULL, 0, true), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(get_be32(fx_buf), 8);

	/* REQUEST SENSE: GOOD, the sense data says LOGICAL UNIT NOT SUPPORTED. */
	CU_ASSERT_EQUAL(fixture_run_ex(rs, 16, NULL, 0, true), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, SENSE_FIXED_LEN);
	CU_ASSERT_EQUAL(fx_buf[0], SENSE_FIXED_CURRENT);
	CU_ASSERT_EQUAL(fx_buf[2], SK_ILLEGAL_REQUEST);
	CU_ASSERT_EQUAL(fx_buf[12], 0x25);
}

/* ---- unit attentions ---- */

static void test_ua_reported_once_then_cleared(void)
{
	uint8_t tur[16] = {SCSI_OP_TEST_UNIT_READY};
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0, 36};

	atomic_fetch_or(&fx_itl0.ua, 1u << TGT_UA_MODE_CHANGED | 1u << TGT_UA_POWER_ON);
	/* INQUIRY neither reports nor clears it. */
	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_good());
	/* Highest priority first: POWER ON, then MODE PARAMETERS CHANGED. */
	CU_ASSERT_EQUAL(fixture_run(tur, 16), 1);
	CU_ASSERT(fx_check(SK_UNIT_ATTENTION, ASC_POWER_ON_OCCURRED));
	CU_ASSERT_EQUAL(fixture_run(tur, 16), 1);
	CU_ASSERT(fx_check(SK_UNIT_ATTENTION, ASC_MODE_PARAMETERS_CHANGED));
	CU_ASSERT_EQUAL(fixture_run(tur, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(atomic_load(&fx_itl0.ua), 0);
}

static void test_ua_request_sense_reports_and_clears(void)
{
	uint8_t rs[16] = {SCSI_OP_REQUEST_SENSE, RS_DESC, 0, 0, 252};
	uint8_t tur[16] = {SCSI_OP_TEST_UNIT_READY};

	atomic_fetch_or(&fx_itl0.ua, 1u << TGT_UA_LUN_RESET);
	CU_ASSERT_EQUAL(fixture_run(rs, 16), 0);
	CU_ASSERT(fx_good());
	/* DESC=1: descriptor format, 8 bytes, no descriptors. */
	CU_ASSERT_EQUAL(fx_t.data_len, 8);
	CU_ASSERT_EQUAL(fx_buf[0], SENSE_DESC_CURRENT);
	CU_ASSERT_EQUAL(fx_buf[1], SK_UNIT_ATTENTION);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 2), ASC_BUS_DEVICE_RESET_OCCURRED);
	CU_ASSERT_EQUAL(fixture_run(tur, 16), 0);
	CU_ASSERT(fx_good());
	/* Nothing pending: NO SENSE. */
	CU_ASSERT_EQUAL(fixture_run(rs, 16), 0);
	CU_ASSERT_EQUAL(fx_buf[1], SK_NO_SENSE);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 2), 0);
}

static void test_ua_raise_skips_except(void)
{
	tgt_lu_ua_raise(&fx_target.lu, TGT_UA_CAPACITY_CHANGED, &fx_itl0);
	CU_ASSERT_EQUAL(atomic_load(&fx_itl0.ua), 0);
	CU_ASSERT_EQUAL(atomic_load(&fx_itl1.ua), 1u << TGT_UA_CAPACITY_CHANGED);
	tgt_lu_ua_raise(&fx_target.lu, TGT_UA_LUNS_CHANGED, NULL);
	CU_ASSERT_EQUAL(atomic_load(&fx_itl0.ua), 1u << TGT_UA_LUNS_CHANGED);
}

/* ---- sense formats ---- */

static void test_sense_fixed_layout(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, VPD_UNIT_SERIAL, 0, 255};

	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_CHECK_CONDITION);
	CU_ASSERT_EQUAL(fx_t.sense_len, 18);
	CU_ASSERT_EQUAL(fx_t.sense[0], 0x70); /* current, VALID clear */
	CU_ASSERT_EQUAL(fx_t.sense[2], SK_ILLEGAL_REQUEST);
	CU_ASSERT_EQUAL(fx_t.sense[7], 10);
	CU_ASSERT_EQUAL(fx_t.sense[12], 0x24);
	CU_ASSERT_EQUAL(fx_t.sense[13], 0x00);
	/* SKSV | C/D, no bit pointer, field pointer byte 2 */
	CU_ASSERT_EQUAL(fx_t.sense[15], 0xc0);
	CU_ASSERT_EQUAL(get_be16(fx_t.sense + 16), 2);
	CU_ASSERT_EQUAL(fx_t.data_len, 0);
}

static void test_sense_info_both_formats(void)
{
	uint8_t d[TGT_SENSE_MAX];
	struct tgt_sense_args a = {.key = SK_MISCOMPARE,
				   .code = ASC_MISCOMPARE_DURING_VERIFY,
				   .info_valid = true,
				   .info = 0x1234};
	uint8_t len;

	len = tgt_scsi_sense_build(d, false, &a);
	CU_ASSERT_EQUAL(len, 18);
	CU_ASSERT_EQUAL(d[0], 0xf0); /* VALID | 70h */
	CU_ASSERT_EQUAL(get_be32(d + 3), 0x1234);
	/* Fixed INFORMATION has 4 bytes: a larger value is not VALID. */
	a.info = 1ull << 40;
	len = tgt_scsi_sense_build(d, false, &a);
	CU_ASSERT_EQUAL(d[0], 0x70);
	/* Descriptor format: information descriptor (00h) with all 8 bytes. */
	len = tgt_scsi_sense_build(d, true, &a);
	CU_ASSERT_EQUAL(len, 20);
	CU_ASSERT_EQUAL(d[0], 0x72);
	CU_ASSERT_EQUAL(d[1], SK_MISCOMPARE);
	CU_ASSERT_EQUAL(d[2], 0x1d);
	CU_ASSERT_EQUAL(d[7], 12);
	CU_ASSERT_EQUAL(d[8], SENSE_DESC_INFORMATION);
	CU_ASSERT_EQUAL(d[9], 0x0a);
	CU_ASSERT_EQUAL(d[10], 0x80);
	CU_ASSERT_EQUAL(get_be64(d + 12), 1ull << 40);
}

static void test_sense_desc_field_pointer(void)
{
	uint8_t rd[16] = {SCSI_OP_READ_10, 0x40};

	atomic_store(&fx_target.lu.d_sense, true);
	CU_ASSERT_EQUAL(fixture_run(rd, 16), 1);
	CU_ASSERT_EQUAL(fx_t.sense[0], 0x72);
	CU_ASSERT_EQUAL(fx_t.sense_len, 16);
	CU_ASSERT_EQUAL(fx_t.sense[7], 8);
	CU_ASSERT_EQUAL(fx_t.sense[8], SENSE_DESC_SKS);
	CU_ASSERT_EQUAL(fx_t.sense[9], 6);
	CU_ASSERT_EQUAL(fx_t.sense[12], SENSE_SKSV | SENSE_SKS_CD | SENSE_SKS_BPV | 6);
	CU_ASSERT_EQUAL(get_be16(fx_t.sense + 13), 1);
}

static void test_errno_mapping(void)
{
	memset(&fx_t, 0, sizeof(fx_t));
	fx_t.io.op = VOL_OP_READ;
	tgt_task_errno(&fx_t, -EIO);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR));
	fx_t.io.op = VOL_OP_WRITE;
	tgt_task_errno(&fx_t, -EIO);
	CU_ASSERT(fx_check(SK_MEDIUM_ERROR, ASC_WRITE_ERROR));
	tgt_task_errno(&fx_t, -ENOSPC);
	CU_ASSERT(fx_check(SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT));
	tgt_task_errno(&fx_t, -EINVAL);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
	tgt_task_errno(&fx_t, -EPERM);
	CU_ASSERT(fx_check(SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE));
	tgt_task_errno(&fx_t, -ENOMEM);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_BUSY);
	CU_ASSERT_EQUAL(fx_t.sense_len, 0);
}

/* ---- INQUIRY ---- */

static void test_inquiry_standard(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 1, 4}; /* 260: SPC-3+ 16-bit length */
	bool sbc3 = false, spc4 = false;

	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 96);
	CU_ASSERT_EQUAL(fx_buf[0], 0x00); /* connected direct-access device */
	CU_ASSERT_EQUAL(fx_buf[1], 0x00); /* RMB 0 */
	CU_ASSERT_EQUAL(fx_buf[2], 0x06);
	CU_ASSERT_EQUAL(fx_buf[3], 0x12); /* HISUP, format 2, no NORMACA */
	CU_ASSERT_EQUAL(fx_buf[4], fx_t.data_len - 5);
	CU_ASSERT_EQUAL(fx_buf[7], 0x02); /* CMDQUE */
	CU_ASSERT_EQUAL(memcmp(fx_buf + 8, "VMENGINE", 8), 0);
	CU_ASSERT_EQUAL(memcmp(fx_buf + 16, "vmengine        ", 16), 0);
	CU_ASSERT_EQUAL(memcmp(fx_buf + 32, "0001", 4), 0);
	for (int i = 0; i < 8; i++) {
		uint16_t vd = get_be16(fx_buf + 58 + 2 * i);

		sbc3 |= vd == INQ_VD_SBC3;
		spc4 |= vd == INQ_VD_SPC4;
	}
	CU_ASSERT(sbc3);
	CU_ASSERT(spc4);
}

static void test_inquiry_truncated_by_alloc_len(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0, 10};

	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.xfer_len, 10);
	CU_ASSERT_EQUAL(fx_t.data_len, 10);
	CU_ASSERT_EQUAL(fx_buf[4], 91); /* still the full ADDITIONAL LENGTH */
	inq[4] = 0;
	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 0);
}

static void test_inquiry_unknown_vpd(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, INQ_CDB_EVPD, 0x89, 0, 255};

	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, -1, 2));
}

/* Fetch VPD page \p page into fx_buf; returns its length (0 on error). */
static uint32_t fetch_vpd(uint8_t page)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, INQ_CDB_EVPD, page, 0x04, 0x00};

	if (fixture_run(inq, 16) != 0 || !fx_good())
		return 0;
	return fx_t.data_len;
}

static void test_vpd_supported_pages_all_readable(void)
{
	uint8_t pages[64];
	uint32_t len = fetch_vpd(VPD_SUPPORTED_PAGES), n;

	CU_ASSERT_FATAL(len >= 5);
	n = get_be16(fx_buf + 2);
	CU_ASSERT_EQUAL(n + 4, len);
	memcpy(pages, fx_buf + 4, n);
	CU_ASSERT_EQUAL(pages[0], 0x00);
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0)
			CU_ASSERT(pages[i] > pages[i - 1]); /* ascending */
		len = fetch_vpd(pages[i]);
		CU_ASSERT(len >= 4);
		CU_ASSERT_EQUAL(fx_buf[0], 0x00);
		CU_ASSERT_EQUAL(fx_buf[1], pages[i]);
		CU_ASSERT_EQUAL(get_be16(fx_buf + 2) + 4u, len);
	}
	CU_ASSERT_EQUAL(n, 6);
}

static void test_vpd_serial(void)
{
	uint32_t len = fetch_vpd(VPD_UNIT_SERIAL);

	CU_ASSERT_EQUAL(len, 4 + strlen(FX_SERIAL));
	CU_ASSERT_EQUAL(memcmp(fx_buf + 4, FX_SERIAL, strlen(FX_SERIAL)), 0);
}

static void test_vpd_device_id(void)
{
	uint32_t len = fetch_vpd(VPD_DEVICE_ID), off = 4;
	bool naa = false, t10 = false, dev = false, port = false, rtpi = false, tpg = false;

	CU_ASSERT_FATAL(len > 4);
	while (off + 4 <= len) {
		const uint8_t *d = fx_buf + off;
		uint8_t codeset = d[0] & 0x0f, proto = d[0] >> 4;
		uint8_t assoc = (d[1] >> 4) & 3, type = d[1] & 0x0f;
		bool piv = d[1] & 0x80;
		uint8_t dl = d[3];

		CU_ASSERT_FATAL(off + 4 + dl <= len);
		if (type == DESIG_TYPE_NAA) {
			CU_ASSERT(codeset == DESIG_CODESET_BINARY && assoc == 0 && dl == 16);
			CU_ASSERT_EQUAL(d[4] >> 4, 6); /* NAA IEEE Registered Extended */
			CU_ASSERT_EQUAL(memcmp(d + 4, fx_vol.id, 16), 0);
			naa = true;
		} else if (type == DESIG_TYPE_T10_VENDOR) {
			CU_ASSERT(codeset == DESIG_CODESET_ASCII && assoc == 0 && dl >= 8);
			CU_ASSERT_EQUAL(memcmp(d + 4, "VMENGINE" FX_SERIAL, dl), 0);
			t10 = true;
		} else if (type == DESIG_TYPE_SCSI_NAME) {
			/* UTF-8, null terminated, a multiple of 4, iSCSI protocol */
			CU_ASSERT(codeset == DESIG_CODESET_UTF8 && piv && proto == 5);
			CU_ASSERT_EQUAL(dl % 4, 0);
			CU_ASSERT_PTR_NOT_NULL(memchr(d + 4, 0, dl));
			if (assoc == 2) {
				CU_ASSERT_STRING_EQUAL((const char *)d + 4, FX_IQN);
				dev = true;
			} else {
				CU_ASSERT_EQUAL(assoc, 1);
				CU_ASSERT_STRING_EQUAL((const char *)d + 4, FX_IQN ",t,0x0001");
				port = true;
			}
		} else if (type == DESIG_TYPE_REL_PORT) {
			CU_ASSERT(assoc == 1 && dl == 4 && get_be32(d + 4) == 1);
			rtpi = true;
		} else if (type == DESIG_TYPE_TPG) {
			CU_ASSERT(assoc == 1 && dl == 4 && get_be32(d + 4) == 1);
			tpg = true;
		} else {
			CU_FAIL("unexpected designator");
		}
		off += 4u + dl;
	}
	CU_ASSERT_EQUAL(off, len);
	CU_ASSERT(naa && t10 && dev && port && rtpi && tpg);
}

static void test_vpd_block_pages(void)
{
	fx_cfg.max_xfer_blocks = 777;
	CU_ASSERT_EQUAL(fetch_vpd(VPD_BLOCK_LIMITS), 64);
	CU_ASSERT_EQUAL(fx_buf[3], 0x3c);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 6), 4096 / FX_BS);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 8), 777);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 20),
			UTIL_MIN((1u << 30) / FX_BS, 1u << 20)); /* MAX UNMAP LBA COUNT */
	CU_ASSERT_EQUAL(get_be32(fx_buf + 24), 1024);		 /* ... BLOCK DESCRIPTOR COUNT */

	CU_ASSERT_EQUAL(fetch_vpd(VPD_BLOCK_CHARACTERISTICS), 64);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 4), 1); /* non-rotating */

	CU_ASSERT_EQUAL(fetch_vpd(VPD_LB_PROVISIONING), 8);
	CU_ASSERT_EQUAL(fx_buf[5] & 0xe0, 0xe0); /* LBPU, LBPWS, LBPWS10 */
}

static void test_inquiry_evpd0_with_page(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, VPD_DEVICE_ID, 0, 255};

	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
}

/* ---- REPORT LUNS ---- */

static void test_report_luns(void)
{
	uint8_t rl[16] = {SCSI_OP_REPORT_LUNS, 0, RL_SELECT_ALL, 0, 0, 0, 0, 0, 0, 16};

	atomic_fetch_or(&fx_itl0.ua, 1u << TGT_UA_LUNS_CHANGED);
	CU_ASSERT_EQUAL(fixture_run(rl, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 16);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 8);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), 0); /* LUN 0 */
	/* REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED. */
	CU_ASSERT_EQUAL(atomic_load(&fx_itl0.ua), 0);

	rl[2] = RL_SELECT_WELL_KNOWN;
	CU_ASSERT_EQUAL(fixture_run(rl, 16), 0);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 0);
	rl[2] = RL_SELECT_ADMIN;
	CU_ASSERT_EQUAL(fixture_run(rl, 16), 0);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 0);
	rl[2] = 0x03;
	CU_ASSERT_EQUAL(fixture_run(rl, 16), 1);
	CU_ASSERT(fx_field(true, -1, 2));
	rl[2] = RL_SELECT_ALL;
	rl[9] = 15;
	CU_ASSERT_EQUAL(fixture_run(rl, 16), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, -1, 6));
}

/* ---- MODE SENSE / MODE SELECT ---- */

static void test_mode_sense6_all_pages(void)
{
	uint8_t ms[16] = {SCSI_OP_MODE_SENSE_6, 0, MP_ALL, 0, 255};
	const uint8_t *p;

	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_buf[0] + 1u, fx_t.data_len);
	CU_ASSERT_EQUAL(fx_buf[2], MODE_DSP_DPOFUA);
	CU_ASSERT_EQUAL(fx_buf[3], 8);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 4), FX_BLOCKS);
	CU_ASSERT_EQUAL(get_be24(fx_buf + 9), FX_BS);
	/* pages in ascending order: Caching, Control, Informational Exceptions */
	p = fx_buf + 12;
	CU_ASSERT_EQUAL(p[0], MP_CACHING);
	CU_ASSERT_EQUAL(p[1], 0x12);
	CU_ASSERT_EQUAL(p[2], MP_CACHING_WCE);
	p += 2 + p[1];
	CU_ASSERT_EQUAL(p[0], MP_CONTROL);
	CU_ASSERT_EQUAL(p[1], 0x0a);
	CU_ASSERT_EQUAL(p[2] & MP_CONTROL_D_SENSE, 0);
	CU_ASSERT_EQUAL(p[2] >> 5, 0);		  /* TST */
	CU_ASSERT_EQUAL((p[3] >> 1) & 3, 0);	  /* QErr */
	CU_ASSERT_EQUAL(get_be16(p + 8), 0xffff); /* BUSY TIMEOUT PERIOD */
	p += 2 + p[1];
	CU_ASSERT_EQUAL(p[0], MP_INFO_EXCEPTIONS);
	p += 2 + p[1];
	CU_ASSERT_EQUAL(p - fx_buf, (long)fx_t.data_len);

	/* residual case: 4 bytes asked, 4 given */
	ms[4] = 4;
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT_EQUAL(fx_t.data_len, 4);
}

static void test_mode_sense10_llbaa_and_pc(void)
{
	uint8_t ms[16] = {SCSI_OP_MODE_SENSE_10, MS_LLBAA, MP_CACHING, 0, 0, 0, 0, 0, 255};

	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(get_be16(fx_buf) + 2u, fx_t.data_len);
	CU_ASSERT_EQUAL(fx_buf[4] & MODE_LONGLBA, MODE_LONGLBA);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 6), 16);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), FX_BLOCKS);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 20), FX_BS);
	CU_ASSERT_EQUAL(fx_buf[24], MP_CACHING);
	CU_ASSERT_EQUAL(fx_t.data_len, 8 + 16 + 20);

	/* changeable values, no block descriptor: only WCE */
	ms[1] = MS_DBD;
	ms[2] = MP_PC_CHANGEABLE << 6 | MP_CACHING;
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 6), 0);
	CU_ASSERT_EQUAL(fx_buf[8 + 2], MP_CACHING_WCE);
	for (int i = 3; i < 20; i++)
		CU_ASSERT_EQUAL(fx_buf[8 + i], 0);
	/* saved values: not supported */
	ms[2] = MP_PC_SAVED << 6 | MP_CACHING;
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED));
	/* unknown page, unknown subpage */
	ms[2] = 0x01;
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT(fx_field(true, 5, 2));
	ms[2] = MP_CONTROL;
	ms[3] = 0x01;
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT(fx_field(true, -1, 3));
	/* all subpages of all pages: the same pages */
	ms[2] = MP_ALL;
	ms[3] = MP_SUBPAGE_ALL;
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 8 + 20 + 12 + 12);
}

/* MODE SENSE(6) DBD of page \p page (current) into \p out; returns its length. */
static uint32_t fetch_page(uint8_t page, uint8_t *out)
{
	uint8_t ms[16] = {SCSI_OP_MODE_SENSE_6, MS_DBD, page, 0, 255};

	if (fixture_run(ms, 16) != 0 || !fx_good())
		return 0;
	memcpy(out, fx_buf + 4, fx_t.data_len - 4);
	return fx_t.data_len - 4;
}

static void test_mode_select_wce(void)
{
	uint8_t list[4 + 20] = {0};
	uint8_t sel[16] = {SCSI_OP_MODE_SELECT_6, MSEL_PF, 0, 0, sizeof(list)};
	uint8_t page[64];

	CU_ASSERT_EQUAL_FATAL(fetch_page(MP_CACHING, page), 20);
	memcpy(list + 4, page, 20);
	list[4 + 2] &= (uint8_t)~MP_CACHING_WCE;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.wce));
	/* the other nexus learns of it, this one does not */
	CU_ASSERT_EQUAL(atomic_load(&fx_itl1.ua), 1u << TGT_UA_MODE_CHANGED);
	CU_ASSERT_EQUAL(atomic_load(&fx_itl0.ua), 0);
	CU_ASSERT_EQUAL(fetch_page(MP_CACHING, page), 20);
	CU_ASSERT_EQUAL(page[2] & MP_CACHING_WCE, 0);

	/* the same values again: nothing changes, no new unit attention */
	atomic_store(&fx_itl1.ua, 0);
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(atomic_load(&fx_itl1.ua), 0);

	/* RCD is not changeable: refused, pointing into the parameter list */
	list[4 + 2] |= MP_CACHING_WCE | MP_CACHING_RCD;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT(fx_field(false, 0, 6));
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.wce)); /* nothing applied */

	/* PF 0 and SP 1 are refused in the CDB */
	sel[1] = 0;
	CU_ASSERT_EQUAL(fixture_run(sel, 16), 1);
	CU_ASSERT(fx_field(true, 4, 1));
	sel[1] = MSEL_PF | MSEL_SP;
	CU_ASSERT_EQUAL(fixture_run(sel, 16), 1);
	CU_ASSERT(fx_field(true, 0, 1));
}

static void test_mode_select_errors(void)
{
	uint8_t list[8 + 12] = {0};
	uint8_t sel[16] = {SCSI_OP_MODE_SELECT_10, MSEL_PF, 0, 0, 0, 0, 0, 0, sizeof(list)};
	uint8_t page[64];

	CU_ASSERT_EQUAL_FATAL(fetch_page(MP_CONTROL, page), 12);
	memcpy(list + 8, page, 12);
	/* an unknown page */
	list[8] = 0x19;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_field(false, 5, 8));
	/* a wrong page length */
	list[8] = MP_CONTROL;
	list[9] = 0x0b;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_field(false, -1, 9));
	/* a truncated page */
	list[9] = 0x0a;
	sel[8] = sizeof(list) - 1;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	/* an empty list is no error */
	sel[8] = 0;
	CU_ASSERT_EQUAL(fixture_run(sel, 16), 0);
	CU_ASSERT(fx_good());
}

static void test_mode_select_d_sense_switches_format(void)
{
	uint8_t list[8 + 12] = {0};
	uint8_t sel[16] = {SCSI_OP_MODE_SELECT_10, MSEL_PF, 0, 0, 0, 0, 0, 0, sizeof(list)};
	uint8_t rd[16] = {SCSI_OP_READ_16, 0, LBA8};
	uint8_t page[64];

	CU_ASSERT_EQUAL_FATAL(fetch_page(MP_CONTROL, page), 12);
	memcpy(list + 8, page, 12);
	list[8 + 2] |= MP_CONTROL_D_SENSE;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_TRUE(atomic_load(&fx_target.lu.d_sense));
	rd[13] = 1;
	CU_ASSERT_EQUAL(fixture_run(rd, 16), 1);
	CU_ASSERT_EQUAL(fx_t.sense[0], 0x72);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_mode_select_swp_write_protects(void)
{
	static const uint8_t writers[] = {
	    SCSI_OP_WRITE_6,
	    SCSI_OP_WRITE_10,
	    SCSI_OP_WRITE_12,
	    SCSI_OP_WRITE_16,
	    SCSI_OP_WRITE_AND_VERIFY_10,
	    SCSI_OP_WRITE_AND_VERIFY_12,
	    SCSI_OP_WRITE_AND_VERIFY_16,
	    SCSI_OP_WRITE_SAME_10,
	    SCSI_OP_WRITE_SAME_16,
	    SCSI_OP_UNMAP,
	    SCSI_OP_COMPARE_AND_WRITE,
	    SCSI_OP_ORWRITE_16,
	    SCSI_OP_WRITE_ATOMIC_16,
	};
	uint8_t list[4 + 12] = {0};
	uint8_t sel[16] = {SCSI_OP_MODE_SELECT_6, MSEL_PF, 0, 0, sizeof(list)};
	uint8_t chg[16] = {SCSI_OP_MODE_SENSE_6, MS_DBD, MP_PC_CHANGEABLE << 6 | MP_CONTROL, 0,
			   255};
	uint8_t ms[16] = {SCSI_OP_MODE_SENSE_6, 0, MP_CONTROL, 0, 255};
	uint8_t wr[16] = {SCSI_OP_WRITE_10, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t rd[16] = {SCSI_OP_READ_10, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t sync[16] = {SCSI_OP_SYNCHRONIZE_CACHE_10};
	uint8_t san[16] = {SCSI_OP_SANITIZE, SANITIZE_SA_BLOCK_ERASE};
	uint8_t page[64];

	/* SPC-4 7.5.8: SWP is changeable */
	CU_ASSERT_EQUAL(fixture_run(chg, 16), 0);
	CU_ASSERT_EQUAL(fx_buf[4 + 4], MP_CONTROL_SWP);
	/* every command that writes the medium carries the flag */
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(writers); i++)
		CU_ASSERT(table_ops[writers[i]].flags & TGT_SCSI_F_WRITES);
	CU_ASSERT_FALSE(table_ops[SCSI_OP_READ_10].flags & TGT_SCSI_F_WRITES);

	CU_ASSERT_EQUAL_FATAL(fetch_page(MP_CONTROL, page), 12);
	memcpy(list + 4, page, 12);
	list[4 + 4] |= MP_CONTROL_SWP;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_TRUE(atomic_load(&fx_target.lu.swp));
	/* the other nexus learns of it, this one does not */
	CU_ASSERT_EQUAL(atomic_load(&fx_itl1.ua), 1u << TGT_UA_MODE_CHANGED);
	CU_ASSERT_EQUAL(atomic_load(&fx_itl0.ua), 0);
	/* MODE SENSE: WP in the device-specific parameter, SWP in the page */
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT_EQUAL(fx_buf[2], MODE_DSP_WP | MODE_DSP_DPOFUA);
	CU_ASSERT_EQUAL(fx_buf[4 + 8 + 4], MP_CONTROL_SWP);
	/* writes: DATA PROTECT / WRITE PROTECTED; reads and cache flushes go on */
	CU_ASSERT_EQUAL(fixture_run(wr, 16), 1);
	CU_ASSERT(fx_check(SK_DATA_PROTECT, ASC_WRITE_PROTECTED));
	CU_ASSERT_EQUAL(fixture_run(san, 16), 1);
	CU_ASSERT(fx_check(SK_DATA_PROTECT, ASC_WRITE_PROTECTED));
	CU_ASSERT_EQUAL(fixture_run(rd, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fixture_run(sync, 16), 0);
	CU_ASSERT(fx_good());

	/* cleared: writes are back */
	list[4 + 4] &= (uint8_t)~MP_CONTROL_SWP;
	CU_ASSERT_EQUAL(fixture_run_ex(sel, 16, list, sizeof(list), false), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_FALSE(atomic_load(&fx_target.lu.swp));
	CU_ASSERT_EQUAL(fixture_run(wr, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fixture_run(ms, 16), 0);
	CU_ASSERT_EQUAL(fx_buf[2], MODE_DSP_DPOFUA);
	atomic_store(&fx_target.lu.swp, false);
}

/* ---- REPORT SUPPORTED OPERATION CODES / TMFS ---- */

static int rsoc(uint8_t options, uint8_t op, uint16_t sa)
{
	uint8_t cdb[16] = {SCSI_OP_MAINTENANCE_IN, SCSI_MI_REPORT_SUPPORTED_OPCODES, options, op};

	put_be16(cdb + 4, sa);
	put_be32(cdb + 6, 65535);
	return fixture_run(cdb, 16);
}

static void test_rsoc_one_command(void)
{
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE, SCSI_OP_READ_10, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_buf[1], RSOC_SUPPORT_STD);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 2), 10);
	CU_ASSERT_EQUAL(fx_t.data_len, 14);
	CU_ASSERT_EQUAL(fx_buf[4], SCSI_OP_READ_10);
	CU_ASSERT_EQUAL(fx_buf[5], SBC_DPO | SBC_FUA); /* DPO/FUA usable, no RDPROTECT */
	CU_ASSERT_EQUAL(get_be32(fx_buf + 6), 0xffffffff);
	CU_ASSERT_EQUAL(fx_buf[13], 0x00);

	/* with the timeouts descriptor */
	CU_ASSERT_EQUAL(rsoc(RSOC_RCTD | RSOC_ONE_OPCODE, SCSI_OP_READ_10, 0), 0);
	CU_ASSERT_EQUAL(fx_buf[1], RSOC_ONE_CTDP | RSOC_SUPPORT_STD);
	CU_ASSERT_EQUAL(fx_t.data_len, 14 + 12);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 14), 0x0a);

	/* service-action opcodes: 001b refused, 010b answers */
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE, SCSI_OP_SERVICE_ACTION_IN_16, 0), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, 2, 2));
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE_SA, SCSI_OP_SERVICE_ACTION_IN_16, 0x10), 0);
	CU_ASSERT_EQUAL(fx_buf[1], RSOC_SUPPORT_STD);
	CU_ASSERT_EQUAL(fx_buf[4], 0x9e);
	CU_ASSERT_EQUAL(fx_buf[5], 0x10); /* the service action in its place */
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE_SA, SCSI_OP_READ_10, 0), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE_ANY, SCSI_OP_READ_10, 0), 0);
	CU_ASSERT_EQUAL(fx_buf[1], RSOC_SUPPORT_STD);
	/* an opcode we do not have */
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE, 0xc0, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_buf[1], RSOC_SUPPORT_NONE);
	CU_ASSERT_EQUAL(rsoc(RSOC_ONE_OPCODE_SA, SCSI_OP_MAINTENANCE_IN, 0x1f), 0);
	CU_ASSERT_EQUAL(fx_buf[1], RSOC_SUPPORT_NONE);
	/* reporting options 100b and up are reserved */
	CU_ASSERT_EQUAL(rsoc(0x04, SCSI_OP_READ_10, 0), 0);
	CU_ASSERT(fx_field(true, 2, 2));
}

static void test_rsoc_all(void)
{
	unsigned n, expected = 0;
	bool self = false;

	for (unsigned op = 0; op < 256; op++)
		expected += table_ops[op].sa_table ? table_ops[op].n_sa : !!table_ops[op].exec;
	CU_ASSERT_EQUAL(rsoc(RSOC_ALL, 0, 0), 0);
	CU_ASSERT(fx_good());
	n = get_be32(fx_buf) / 8;
	CU_ASSERT_EQUAL(get_be32(fx_buf) + 4, fx_t.data_len);
	CU_ASSERT_EQUAL(n, expected);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *d = fx_buf + 4 + 8 * i;
		uint8_t cdb[16] = {d[0], (uint8_t)get_be16(d + 2)};
		const struct tgt_scsi_cmd *c = tgt_scsi_lookup(cdb);

		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_EQUAL(get_be16(d + 6), c->cdb_len);
		CU_ASSERT_EQUAL(d[5] & RSOC_CTDP, 0);
		if (!(d[5] & RSOC_SERVACTV))
			CU_ASSERT_EQUAL(get_be16(d + 2), 0);
		self |= d[0] == 0xa3 && get_be16(d + 2) == 0x0c && (d[5] & RSOC_SERVACTV);
	}
	CU_ASSERT(self);
	/* RCTD: every descriptor gets a 12-byte timeouts descriptor */
	CU_ASSERT_EQUAL(rsoc(RSOC_RCTD | RSOC_ALL, 0, 0), 0);
	CU_ASSERT_EQUAL(get_be32(fx_buf), expected * 20);
	for (unsigned i = 0; i < expected; i++) {
		CU_ASSERT_EQUAL(fx_buf[4 + 20 * i + 5] & RSOC_CTDP, RSOC_CTDP);
		CU_ASSERT_EQUAL(get_be16(fx_buf + 4 + 20 * i + 8), 0x0a);
	}
}

static void test_report_tmfs(void)
{
	uint8_t cdb[16] = {
	    SCSI_OP_MAINTENANCE_IN, SCSI_MI_REPORT_SUPPORTED_TMFS, 0, 0, 0, 0, 0, 0, 0, 16};

	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 4);
	CU_ASSERT_EQUAL(fx_buf[0], 0xda);
	cdb[2] = RSTMF_REPD;
	CU_ASSERT_EQUAL(fixture_run(cdb, 16), 0);
	CU_ASSERT_EQUAL(fx_t.data_len, 16);
	CU_ASSERT_EQUAL(fx_buf[3], 0x0c);
}

static void test_execute_unprepared(void)
{
	uint8_t tur[16] = {SCSI_OP_TEST_UNIT_READY};

	fixture_task(tur, 16, false);
	tgt_scsi_execute(&fx_t);
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT(fx_check(SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE));
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"unknown opcode", test_unknown_opcode},
	    {"unknown service action", test_unknown_service_action},
	    {"reserved bit points at it", test_reserved_bit_points_at_it},
	    {"NACA refused", test_naca_refused},
	    {"usage maps exhaustive", test_usage_maps_exhaustive},
	    {"absent LUN", test_no_lun},
	    {"UA reported once then cleared", test_ua_reported_once_then_cleared},
	    {"UA by REQUEST SENSE", test_ua_request_sense_reports_and_clears},
	    {"UA raise skips the sender", test_ua_raise_skips_except},
	    {"fixed sense layout", test_sense_fixed_layout},
	    {"sense INFORMATION fixed and descriptor", test_sense_info_both_formats},
	    {"descriptor sense field pointer", test_sense_desc_field_pointer},
	    {"errno mapping", test_errno_mapping},
	    {"INQUIRY standard", test_inquiry_standard},
	    {"INQUIRY truncated", test_inquiry_truncated_by_alloc_len},
	    {"INQUIRY unknown VPD", test_inquiry_unknown_vpd},
	    {"INQUIRY EVPD 0 with a page", test_inquiry_evpd0_with_page},
	    {"VPD supported pages", test_vpd_supported_pages_all_readable},
	    {"VPD unit serial", test_vpd_serial},
	    {"VPD device identification", test_vpd_device_id},
	    {"VPD block limits, characteristics, LBP", test_vpd_block_pages},
	    {"REPORT LUNS", test_report_luns},
	    {"MODE SENSE(6) all pages", test_mode_sense6_all_pages},
	    {"MODE SENSE(10) LLBAA and page control", test_mode_sense10_llbaa_and_pc},
	    {"MODE SELECT WCE", test_mode_select_wce},
	    {"MODE SELECT errors", test_mode_select_errors},
	    {"MODE SELECT D_SENSE", test_mode_select_d_sense_switches_format},
	    {"MODE SELECT SWP write-protects", test_mode_select_swp_write_protects},
	    {"RSOC one command", test_rsoc_one_command},
	    {"RSOC all", test_rsoc_all},
	    {"REPORT SUPPORTED TMFS", test_report_tmfs},
	    {"execute unprepared", test_execute_unprepared},
	};
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite_with_setup_and_teardown("scsi", fixture_init, fixture_fini, fixture_reset,
						 NULL);
	if (s == NULL)
		return 1;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tests); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
