/*
 * SCSI primary commands (SPC-4) of the device server: TEST UNIT READY,
 * REQUEST SENSE, INQUIRY with its VPD pages, REPORT LUNS, MODE SENSE and
 * MODE SELECT (Caching, Control and Informational Exceptions pages).
 * REPORT SUPPORTED OPERATION CODES lives with the table it reports.
 */
#define UTIL_LOG_TAG "scsi"

#include <stdio.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

#define SPC_VENDOR   "VMENGINE"
#define SPC_PRODUCT  "vmengine"
#define SPC_REVISION "0001"

/* Copy \p s into a fixed-width ASCII field, padded with spaces (SPC-4 4.4.1). */
static void spc_put_ascii(uint8_t *dst, const char *s, size_t width)
{
	size_t n = strnlen(s, width);

	memcpy(dst, s, n);
	memset(dst + n, ' ', width - n);
}

/* Byte 0 of INQUIRY data: peripheral qualifier and device type. */
static uint8_t spc_periph(const struct tgt_task *t)
{
	return t->lu != NULL ? (SCSI_PQ_CONNECTED | SCSI_TYPE_DISK)
			     : (SCSI_PQ_NOT_SUPPORTED | SCSI_TYPE_UNKNOWN);
}

void tgt_spc_test_unit_ready(struct tgt_task *t)
{
	/* The medium is always present and ready: the volume is open. */
	tgt_scsi_good(t);
}

void tgt_spc_request_sense(struct tgt_task *t)
{
	uint8_t buf[TGT_SENSE_MAX];
	struct tgt_sense_args a = {.key = SK_NO_SENSE, .code = ASC_NO_ADDITIONAL_SENSE};
	uint16_t ua;
	uint8_t len;

	/*
	 * SPC-4 6.39: the sense data goes back as parameter data with GOOD
	 * status, in the format the DESC bit asks for. For an absent LUN it
	 * is ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED; a pending unit
	 * attention is reported (and so cleared) here (SAM-5 5.14).
	 */
	if (t->lu == NULL) {
		a.key = SK_ILLEGAL_REQUEST;
		a.code = ASC_LOGICAL_UNIT_NOT_SUPPORTED;
	} else if (t->itl != NULL && tgt_scsi_ua_take(t->itl, &ua)) {
		a.key = SK_UNIT_ATTENTION;
		a.code = ua;
	} else {
		/* SBC-3 4.11.2: a sanitize in progress, with its progress indication. */
		tgt_media_sense(t->lu, &a);
	}
	len = tgt_scsi_sense_build(buf, (t->cdb[1] & RS_DESC) != 0, &a);
	tgt_scsi_data_in(t, buf, len);
}

/* ---- INQUIRY ---- */

/* SPC-4 6.6.2 standard INQUIRY data, 96 bytes. */
static uint32_t spc_inquiry_std(const struct tgt_task *t, uint8_t *p)
{
	static const uint16_t versions[] = {INQ_VD_SAM5, INQ_VD_ISCSI, INQ_VD_SPC4, INQ_VD_SBC3};

	memset(p, 0, INQ_STD_LEN);
	p[0] = spc_periph(t);
	p[2] = INQ_VERSION_SPC4;
	/* HISUP: LUNs are reported in the SAM-5 hierarchical format. */
	p[3] = INQ_BYTE3_HISUP | INQ_BYTE3_RDF_SPC2;
	p[4] = INQ_STD_LEN - 5; /* ADDITIONAL LENGTH */
	/* 3PC: EXTENDED COPY is supported (scsi_xcopy.c). */
	p[5] = INQ_BYTE5_3PC;
	/* CMDQUE: the full task set (SIMPLE queueing) is supported. */
	p[7] = INQ_BYTE7_CMDQUE;
	spc_put_ascii(p + 8, SPC_VENDOR, 8);
	spc_put_ascii(p + 16, SPC_PRODUCT, 16);
	spc_put_ascii(p + 32, SPC_REVISION, 4);
	for (unsigned i = 0; i < UTIL_ARRAY_SIZE(versions); i++)
		put_be16(p + 58 + 2 * i, versions[i]);
	return INQ_STD_LEN;
}

static const uint8_t spc_vpd_pages[] = {
    VPD_SUPPORTED_PAGES, VPD_UNIT_SERIAL,	    VPD_DEVICE_ID,
    VPD_BLOCK_LIMITS,	 VPD_BLOCK_CHARACTERISTICS, VPD_LB_PROVISIONING,
};

/* One designation descriptor (SPC-4 7.8.6.1); \p len is padded by the caller. */
static uint32_t spc_designator(uint8_t *p, uint8_t proto_codeset, uint8_t piv_assoc_type,
			       const void *data, uint32_t data_len, uint32_t len)
{
	p[0] = proto_codeset;
	p[1] = piv_assoc_type;
	p[2] = 0;
	p[3] = (uint8_t)len;
	memset(p + 4, 0, len);
	memcpy(p + 4, data, data_len);
	return 4 + len;
}

/*
 * A SCSI name string designator (SPC-4 7.8.6.11): UTF-8, null-terminated,
 * "the length shall be a multiple of four" with null padding.
 */
static uint32_t spc_name_designator(uint8_t *p, uint8_t assoc, const char *name)
{
	uint32_t n = (uint32_t)strnlen(name, 251);
	uint32_t len = UTIL_ALIGN_UP(n + 1, 4u);

	return spc_designator(p, DESIG_PROTO_ISCSI << 4 | DESIG_CODESET_UTF8,
			      DESIG_PIV | assoc | DESIG_TYPE_SCSI_NAME, name, n, len);
}

/* SPC-4 7.8.6 Device Identification VPD page. */
static uint32_t spc_vpd_device_id(const struct tgt_task *t, uint8_t *p)
{
	const struct tgt_lu *lu = t->lu;
	const char *iqn = lu->target != NULL ? lu->target->iqn : "";
	uint8_t buf[8 + sizeof(lu->serial)];
	char port[ISCSI_NAME_MAX + 16];
	uint8_t rel[4] = {0, 0, 0, 1};
	uint32_t len = 4, n;

	/* Logical unit: NAA IEEE Registered Extended, stable across restarts. */
	len += spc_designator(p + len, DESIG_CODESET_BINARY, DESIG_ASSOC_LU | DESIG_TYPE_NAA,
			      vol_id(lu->vol), VOL_ID_LEN, VOL_ID_LEN);
	/* Logical unit: T10 vendor ID + the unit serial number. */
	n = (uint32_t)strnlen(lu->serial, sizeof(lu->serial));
	spc_put_ascii(buf, SPC_VENDOR, 8);
	memcpy(buf + 8, lu->serial, n);
	len += spc_designator(p + len, DESIG_CODESET_ASCII, DESIG_ASSOC_LU | DESIG_TYPE_T10_VENDOR,
			      buf, 8 + n, 8 + n);
	/* Target device: its iSCSI name (SPC-4 7.8.6.11, RFC 7143 4.2.7). */
	len += spc_name_designator(p + len, DESIG_ASSOC_DEVICE, iqn);
	/*
	 * Target port: "iSCSI-name,t,0x" + the target portal group tag in
	 * hex, the iSCSI target port identifier (RFC 7143 4.4.1 / SPC-4
	 * 7.8.6.11). Every portal of an engine is in portal group 1.
	 */
	snprintf(port, sizeof(port), "%s,t,0x0001", iqn);
	len += spc_name_designator(p + len, DESIG_ASSOC_PORT, port);
	/* Target port: relative target port identifier 1. */
	len += spc_designator(p + len, DESIG_PROTO_ISCSI << 4 | DESIG_CODESET_BINARY,
			      DESIG_PIV | DESIG_ASSOC_PORT | DESIG_TYPE_REL_PORT, rel, 4, 4);
	/* Target port: target port group 1 (ALUA comes with multipath). */
	len += spc_designator(p + len, DESIG_PROTO_ISCSI << 4 | DESIG_CODESET_BINARY,
			      DESIG_PIV | DESIG_ASSOC_PORT | DESIG_TYPE_TPG, rel, 4, 4);
	return len;
}

/* SBC-3 6.5.3 Block Limits VPD page. */
static uint32_t spc_vpd_block_limits(const struct tgt_task *t, uint8_t *p)
{
	uint32_t bs = vol_block_size(t->lu->vol);
	uint32_t gran = bs < 4096 ? 4096 / bs : 1;

	memset(p + 4, 0, VPD_BLOCK_LIMITS_LEN);
	/* OPTIMAL TRANSFER LENGTH GRANULARITY: a 4 KiB page, in blocks. */
	put_be16(p + 6, (uint16_t)gran);
	put_be32(p + 8, tgt_task_config(t)->max_xfer_blocks);
	/* UNMAP, WRITE SAME, COMPARE AND WRITE and WRITE ATOMIC limits: scsi_lbp.c. */
	tgt_lbp_block_limits(t, p);
	return 4 + VPD_BLOCK_LIMITS_LEN;
}

/* EVPD pages; returns the page length or 0 for a page we do not have. */
static uint32_t spc_vpd(const struct tgt_task *t, uint8_t code, uint8_t *p)
{
	uint32_t len;

	memset(p, 0, 4);
	p[0] = spc_periph(t);
	p[1] = code;
	/* Without a LUN only the list of pages makes sense. */
	if (t->lu == NULL && code != VPD_SUPPORTED_PAGES)
		return 0;
	switch (code) {
	case VPD_SUPPORTED_PAGES:
		if (t->lu == NULL) {
			p[4] = VPD_SUPPORTED_PAGES;
			len = 5;
			break;
		}
		memcpy(p + 4, spc_vpd_pages, sizeof(spc_vpd_pages));
		len = 4 + sizeof(spc_vpd_pages);
		break;
	case VPD_UNIT_SERIAL:
		len = (uint32_t)strnlen(t->lu->serial, sizeof(t->lu->serial));
		memcpy(p + 4, t->lu->serial, len);
		len += 4;
		break;
	case VPD_DEVICE_ID:
		len = spc_vpd_device_id(t, p);
		break;
	case VPD_BLOCK_LIMITS:
		len = spc_vpd_block_limits(t, p);
		break;
	case VPD_BLOCK_CHARACTERISTICS:
		/* SBC-3 6.5.2: MEDIUM ROTATION RATE 1: a non-rotating medium. */
		memset(p + 4, 0, VPD_BLOCK_CHAR_LEN);
		put_be16(p + 4, VPD_B1_NON_ROTATING);
		/*
		 * SBC-4 6.6.2 WABEREQ and WACEREQ 01b: reads after a BLOCK
		 * ERASE or a CRYPTO ERASE succeed (zeros).
		 */
		p[7] = VPD_B1_WABEREQ_READ_OK | VPD_B1_WACEREQ_READ_OK;
		len = 4 + VPD_BLOCK_CHAR_LEN;
		break;
	case VPD_LB_PROVISIONING:
		/* SBC-3 6.5.4: thin provisioned, UNMAP and WRITE SAME (scsi_lbp.c). */
		len = tgt_lbp_vpd_b2(t, p);
		break;
	default:
		return 0;
	}
	put_be16(p + 2, (uint16_t)(len - 4));
	return len;
}

void tgt_spc_inquiry(struct tgt_task *t)
{
	uint8_t buf[1024];
	uint32_t len;

	if (!(t->cdb[1] & INQ_CDB_EVPD)) {
		/* SPC-4 6.6.1: "If the EVPD bit is zero and the PAGE CODE field is not zero". */
		if (t->cdb[2] != 0) {
			tgt_task_invalid_field(t, 2, -1);
			tgt_task_done(t);
			return;
		}
		len = spc_inquiry_std(t, buf);
	} else {
		len = spc_vpd(t, t->cdb[2], buf);
		if (len == 0) {
			tgt_task_invalid_field(t, 2, -1);
			tgt_task_done(t);
			return;
		}
	}
	tgt_scsi_data_in(t, buf, len);
}

/* ---- REPORT LUNS ---- */

int tgt_spc_report_luns_prep(struct tgt_task *t)
{
	switch (t->cdb[2]) {
	case RL_SELECT_ALL:
	case RL_SELECT_WELL_KNOWN:
	case RL_SELECT_ALL_AND_WKLUN:
	case RL_SELECT_ADMIN:
	case RL_SELECT_ADMIN_AND_SUBS:
	case RL_SELECT_SUBS:
		break;
	default:
		tgt_task_invalid_field(t, 2, -1);
		return 1;
	}
	/* SPC-4 6.33: "If the ALLOCATION LENGTH field ... is less than 16". */
	if (t->xfer_len < RL_MIN_ALLOC_LEN) {
		tgt_task_invalid_field(t, 6, -1);
		return 1;
	}
	return 0;
}

/* An 8-byte LUN (SAM-5 4.7): peripheral addressing below 256, else flat. */
static void spc_put_lun(uint8_t *p, uint64_t lun)
{
	memset(p, 0, 8);
	if (lun < 256) {
		p[1] = (uint8_t)lun;
	} else {
		p[0] = (uint8_t)(0x40 | ((lun >> 8) & 0x3f));
		p[1] = (uint8_t)lun;
	}
}

void tgt_spc_report_luns(struct tgt_task *t)
{
	struct tgt_target *tg =
	    t->target != NULL ? t->target : (t->lu != NULL ? t->lu->target : NULL);
	uint8_t buf[16];
	uint32_t nluns = 0;

	/*
	 * SPC-4 6.33: 00h and 02h list the LUs we have (the target's LUN 0;
	 * no well-known LUs), 01h lists well-known LUs only and 10h..12h
	 * administrative LUs and their subsidiaries: none of either here.
	 */
	memset(buf, 0, sizeof(buf));
	if (tg != NULL && (t->cdb[2] == RL_SELECT_ALL || t->cdb[2] == RL_SELECT_ALL_AND_WKLUN)) {
		spc_put_lun(buf + 8, tg->lu.lun);
		nluns = 1;
	}
	put_be32(buf, nluns * 8);
	/*
	 * SPC-4 6.33: REPORT LUNS clears a REPORTED LUNS DATA HAS CHANGED
	 * unit attention of this nexus (it is what the condition asks for).
	 */
	if (t->itl != NULL)
		atomic_fetch_and(&t->itl->ua, ~(1u << TGT_UA_LUNS_CHANGED));
	tgt_scsi_data_in(t, buf, 8 + nluns * 8);
}

/* ---- mode pages ---- */

/*
 * Fill mode page \p code as page control \p pc asks (current, changeable
 * or default values) into \p p. Returns the page's length, 0 for a page
 * we do not implement.
 */
static uint32_t spc_mode_page(const struct tgt_lu *lu, uint8_t code, unsigned pc, uint8_t *p)
{
	switch (code) {
	case MP_CACHING:
		/* SBC-3 6.4.5: only WCE is changeable; RCD 0: reads may be cached. */
		memset(p, 0, MP_CACHING_LEN + 2);
		p[0] = MP_CACHING;
		p[1] = MP_CACHING_LEN;
		if (pc == MP_PC_CHANGEABLE)
			p[2] = MP_CACHING_WCE;
		else if (pc == MP_PC_DEFAULT || atomic_load(&lu->wce))
			p[2] = MP_CACHING_WCE;
		return MP_CACHING_LEN + 2;
	case MP_CONTROL:
		/*
		 * SPC-4 7.5.8: TST 000b (one task set for all nexuses), QErr
		 * 00b (other tasks go on after a CHECK CONDITION, what Linux
		 * and Windows expect), QUEUE ALGORITHM MODIFIER 1 (SIMPLE
		 * tasks may complete in any order, as ours do), TAS 0 (tasks
		 * aborted by another nexus end without status). D_SENSE and
		 * SWP (software write protect, per LU, not saved: default 0)
		 * are changeable. BUSY TIMEOUT PERIOD FFFFh: unlimited.
		 */
		memset(p, 0, MP_CONTROL_LEN + 2);
		p[0] = MP_CONTROL;
		p[1] = MP_CONTROL_LEN;
		if (pc == MP_PC_CHANGEABLE) {
			p[2] = MP_CONTROL_D_SENSE;
			p[4] = MP_CONTROL_SWP;
			return MP_CONTROL_LEN + 2;
		}
		if (pc == MP_PC_CURRENT && atomic_load(&lu->d_sense))
			p[2] = MP_CONTROL_D_SENSE;
		if (pc == MP_PC_CURRENT && atomic_load(&lu->swp))
			p[4] = MP_CONTROL_SWP;
		p[3] = MP_CONTROL_QAM_UNRESTRICTED;
		put_be16(p + 8, 0xffff);
		return MP_CONTROL_LEN + 2;
	case MP_INFO_EXCEPTIONS:
		/* SPC-4 7.5.15: no failure prediction to report: DEXCPT, MRIE 0. */
		memset(p, 0, MP_IEC_LEN + 2);
		p[0] = MP_INFO_EXCEPTIONS;
		p[1] = MP_IEC_LEN;
		if (pc != MP_PC_CHANGEABLE)
			p[2] = MP_IEC_DEXCPT;
		return MP_IEC_LEN + 2;
	default:
		return 0;
	}
}

static const uint8_t spc_mode_pages[] = {MP_CACHING, MP_CONTROL, MP_INFO_EXCEPTIONS};

void tgt_spc_mode_sense(struct tgt_task *t)
{
	const uint8_t *cdb = t->cdb;
	bool ten = cdb[0] == SCSI_OP_MODE_SENSE_10;
	bool dbd = (cdb[1] & MS_DBD) != 0;
	bool llbaa = ten && (cdb[1] & MS_LLBAA);
	unsigned pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & MP_CODE_MASK;
	uint8_t sub = cdb[3];
	uint64_t nblocks = tgt_sbc_nblocks(t->lu);
	uint32_t bs = vol_block_size(t->lu->vol);
	uint8_t buf[256];
	uint32_t hdr = ten ? MODE_HDR10_LEN : MODE_HDR6_LEN;
	uint32_t bdlen = 0, len, n;
	uint8_t dsp;

	/* SPC-4 6.11: "saved values ... not supported": 39/00. */
	if (pc == MP_PC_SAVED) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
		tgt_task_done(t);
		return;
	}
	/* No page has subpages: subpage 00h, or FFh ("all subpages"). */
	if (sub != MP_SUBPAGE_NONE && sub != MP_SUBPAGE_ALL) {
		tgt_task_invalid_field(t, 3, -1);
		tgt_task_done(t);
		return;
	}
	memset(buf, 0, hdr);
	len = hdr;
	if (!dbd) {
		/* SBC-3 6.4.2 block descriptors; nothing in them is changeable. */
		bdlen = llbaa ? MODE_BD_LONG_LEN : MODE_BD_SHORT_LEN;
		memset(buf + len, 0, bdlen);
		if (pc != MP_PC_CHANGEABLE) {
			if (llbaa) {
				put_be64(buf + len, nblocks);
				put_be32(buf + len + 12, bs);
			} else {
				put_be32(buf + len,
					 nblocks > UINT32_MAX ? UINT32_MAX : (uint32_t)nblocks);
				put_be24(buf + len + 5, bs);
			}
		}
		len += bdlen;
	}
	if (page == MP_ALL) {
		for (unsigned i = 0; i < UTIL_ARRAY_SIZE(spc_mode_pages); i++)
			len += spc_mode_page(t->lu, spc_mode_pages[i], pc, buf + len);
	} else {
		n = spc_mode_page(t->lu, page, pc, buf + len);
		if (n == 0) {
			tgt_task_invalid_field(t, 2, 5);
			tgt_task_done(t);
			return;
		}
		len += n;
	}
	/*
	 * Mode parameter header (SPC-4 7.5.4): MODE DATA LENGTH excludes
	 * itself; DEVICE-SPECIFIC PARAMETER (SBC-3 6.4.1) DPOFUA: DPO and FUA
	 * are supported; WP: "the medium is write-protected", i.e. SWP is set.
	 */
	dsp = MODE_DSP_DPOFUA;
	if (atomic_load(&t->lu->swp))
		dsp |= MODE_DSP_WP;
	if (ten) {
		put_be16(buf, (uint16_t)(len - 2));
		buf[3] = dsp;
		if (llbaa && !dbd)
			buf[4] = MODE_LONGLBA;
		put_be16(buf + 6, (uint16_t)bdlen);
	} else {
		buf[0] = (uint8_t)(len - 1);
		buf[2] = dsp;
		buf[3] = (uint8_t)bdlen;
	}
	tgt_scsi_data_in(t, buf, len);
}

int tgt_spc_mode_select_prep(struct tgt_task *t)
{
	/*
	 * SPC-4 6.9: PF 0 would mean vendor-specific pages, which we have
	 * none of; SP 1 asks to save, and "if the logical unit does not
	 * implement saved pages ... INVALID FIELD IN CDB".
	 */
	if (!(t->cdb[1] & MSEL_PF)) {
		tgt_task_invalid_field(t, 1, 4);
		return 1;
	}
	if (t->cdb[1] & MSEL_SP) {
		tgt_task_invalid_field(t, 1, 0);
		return 1;
	}
	return 0;
}

/* Refuse a parameter list field at \p off / \p bit (SPC-4 4.5.2.4.2, C/D 0). */
static void spc_param_invalid(struct tgt_task *t, uint32_t off, int bit)
{
	tgt_scsi_fail_field(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, (uint16_t)off, bit);
	tgt_task_done(t);
}

static void spc_param_length_error(struct tgt_task *t)
{
	tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	tgt_task_done(t);
}

/* Check the block descriptor of a MODE SELECT: nothing in it may change. */
static int spc_check_block_desc(struct tgt_task *t, const uint8_t *d, uint32_t off, bool longlba)
{
	uint64_t nblocks = tgt_sbc_nblocks(t->lu);
	uint32_t bs = vol_block_size(t->lu->vol);
	uint64_t count = longlba ? get_be64(d) : get_be32(d);
	uint32_t blen = longlba ? get_be32(d + 12) : get_be24(d + 5);
	uint64_t shown = longlba || nblocks <= UINT32_MAX ? nblocks : UINT32_MAX;

	/* SBC-3 6.4.2: NUMBER OF LOGICAL BLOCKS 0 keeps the capacity. */
	if (count != 0 && count != shown) {
		spc_param_invalid(t, off, -1);
		return 1;
	}
	if (blen != bs) {
		spc_param_invalid(t, off + (longlba ? 12 : 5), -1);
		return 1;
	}
	return 0;
}

void tgt_spc_mode_select(struct tgt_task *t)
{
	const uint8_t *p = t->buf;
	uint32_t n = t->xfer_len;
	bool ten = t->cdb[0] == SCSI_OP_MODE_SELECT_10;
	uint32_t hdr = ten ? MODE_HDR10_LEN : MODE_HDR6_LEN;
	int new_wce = -1, new_dsense = -1, new_swp = -1;
	bool longlba, changed = false;
	uint32_t bdlen, off;

	/* SPC-4 6.9: a zero PARAMETER LIST LENGTH "shall not be considered an error". */
	if (n == 0) {
		tgt_scsi_good(t);
		return;
	}
	if (n < hdr) {
		spc_param_length_error(t);
		return;
	}
	/* Mode parameter header: MEDIUM TYPE 0 (SBC-3); the rest is ignored. */
	if (p[ten ? 2 : 1] != 0) {
		spc_param_invalid(t, ten ? 2 : 1, -1);
		return;
	}
	longlba = ten && (p[4] & MODE_LONGLBA);
	bdlen = ten ? get_be16(p + 6) : p[3];
	if (bdlen != 0 && bdlen != (longlba ? MODE_BD_LONG_LEN : MODE_BD_SHORT_LEN)) {
		spc_param_invalid(t, ten ? 6 : 3, -1);
		return;
	}
	if (hdr + bdlen > n) {
		spc_param_length_error(t);
		return;
	}
	if (bdlen != 0 && spc_check_block_desc(t, p + hdr, hdr, longlba))
		return;

	/* Validate every page before applying any (no half-applied lists). */
	for (off = hdr + bdlen; off < n;) {
		uint8_t cur[64], chg[64];
		uint8_t code = p[off] & MP_CODE_MASK;
		uint32_t plen;

		if (n - off < 2) {
			spc_param_length_error(t);
			return;
		}
		/* No subpages here: SPF set names a page we cannot have. */
		if (p[off] & MP_SPF) {
			spc_param_invalid(t, off, 6);
			return;
		}
		plen = spc_mode_page(t->lu, code, MP_PC_CURRENT, cur);
		if (plen == 0) {
			spc_param_invalid(t, off, 5);
			return;
		}
		if ((uint32_t)p[off + 1] + 2 != plen) {
			spc_param_invalid(t, off + 1, -1);
			return;
		}
		if (n - off < plen) {
			spc_param_length_error(t);
			return;
		}
		spc_mode_page(t->lu, code, MP_PC_CHANGEABLE, chg);
		/*
		 * SPC-4 6.9: "If the initiator sends a value for a field that
		 * is not changeable ... different from the current value ...
		 * INVALID FIELD IN PARAMETER LIST".
		 */
		for (uint32_t i = 2; i < plen; i++) {
			uint8_t bad = (uint8_t)((p[off + i] ^ cur[i]) & ~chg[i]);

			if (bad != 0) {
				spc_param_invalid(t, off + i, 31 - __builtin_clz(bad));
				return;
			}
		}
		if (code == MP_CACHING)
			new_wce = (p[off + 2] & MP_CACHING_WCE) != 0;
		else if (code == MP_CONTROL) {
			new_dsense = (p[off + 2] & MP_CONTROL_D_SENSE) != 0;
			new_swp = (p[off + 4] & MP_CONTROL_SWP) != 0;
		}
		off += plen;
	}

	if (new_wce >= 0 && atomic_exchange(&t->lu->wce, new_wce != 0) != (new_wce != 0))
		changed = true;
	if (new_dsense >= 0 &&
	    atomic_exchange(&t->lu->d_sense, new_dsense != 0) != (new_dsense != 0))
		changed = true;
	/*
	 * SPC-4 7.5.8 SWP: writes are refused from the next command on
	 * (tgt_scsi_prepare()); writes already in flight complete, as "after
	 * writing all cached or buffered write data" allows.
	 */
	if (new_swp >= 0 && atomic_exchange(&t->lu->swp, new_swp != 0) != (new_swp != 0))
		changed = true;
	/*
	 * SPC-4 6.9 / 5.14: the other nexuses learn of the change through a
	 * MODE PARAMETERS CHANGED unit attention; this one knows.
	 */
	if (changed) {
		log_info("%s: %s: mode parameters changed: WCE %d, D_SENSE %d, SWP %d",
			 t->conn != NULL ? t->conn->peer : "-",
			 t->lu->target != NULL ? t->lu->target->iqn : "-",
			 (int)atomic_load(&t->lu->wce), (int)atomic_load(&t->lu->d_sense),
			 (int)atomic_load(&t->lu->swp));
		tgt_lu_ua_raise(t->lu, TGT_UA_MODE_CHANGED, t->itl);
	}
	tgt_scsi_good(t);
}
