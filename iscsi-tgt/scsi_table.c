/*
 * The SCSI command table and the device server's entry points.
 *
 * Like FreeBSD CTL's ctl_cmd_table.c, every supported operation is one
 * const entry indexed by opcode (service-action opcodes point at a small
 * sub-table): handler, data direction, CDB length, where the allocation
 * length sits, flags, and a usage map of the CDB bits the command may set.
 * tgt_scsi_prepare() applies the checks every command shares from that
 * data (LUN present, opcode known, reserved bits clear, unit attention)
 * before any handler runs, and REPORT SUPPORTED OPERATION CODES is
 * generated from the same table, so the two never disagree.
 */
#define UTIL_LOG_TAG "scsi"

#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

/* Flags of the commands that run with any LU state (SPC-4 5.14, SAM-5 5.14). */
#define F_ANYTIME                                                                                  \
	(TGT_SCSI_F_NO_LUN | TGT_SCSI_F_NO_UA | TGT_SCSI_F_OK_ON_STANDBY |                         \
	 TGT_SCSI_F_OK_ON_SECONDARY | TGT_SCSI_F_ALLOW_ON_RESV | TGT_SCSI_F_SPC2_OK)
/* Commands that read the medium: allowed under Write Exclusive (SBC-3 table 13). */
#define F_READ TGT_SCSI_F_RESV_READ
/* Commands that write the medium: refused under SWP (SPC-4 7.5.8). */
#define F_WR TGT_SCSI_F_WRITES
/* Commands that only read state of the LU: harmless on a standby engine. */
#define F_INFO (TGT_SCSI_F_OK_ON_STANDBY | TGT_SCSI_F_OK_ON_SECONDARY | TGT_SCSI_F_ALLOW_ON_RESV)

#define LBA4 0xff, 0xff, 0xff, 0xff
#define LBA8 LBA4, LBA4
#define LEN2 0xff, 0xff
#define LEN4 0xff, 0xff, 0xff, 0xff
/* GROUP NUMBER: 5 bits in SBC-3, 6 in SBC-4; hints we accept and ignore. */
#define GRP 0x3f

/* One entry of the opcode table. */
#define CMD(op, nm, pr, ex, dr, cl, lo, ls, fl, ...)                                               \
	[op] = {.name = nm,                                                                        \
		.prep = pr,                                                                        \
		.exec = ex,                                                                        \
		.opcode = op,                                                                      \
		.dir = dr,                                                                         \
		.cdb_len = cl,                                                                     \
		.len_off = lo,                                                                     \
		.len_size = ls,                                                                    \
		.flags = fl,                                                                       \
		.usage = {op, __VA_ARGS__}}
/* One service action of a service-action opcode. */
#define SA_CMD(op, s, nm, pr, ex, dr, cl, lo, ls, fl, ...)                                         \
	{                                                                                          \
		.name = nm, .prep = pr, .exec = ex, .opcode = op, .sa = s, .dir = dr,              \
		.cdb_len = cl, .len_off = lo, .len_size = ls, .flags = (fl) | TGT_SCSI_F_SA,       \
		.usage = {                                                                         \
			op,                                                                        \
			s,                                                                         \
			__VA_ARGS__                                                                \
		}                                                                                  \
	}
/* The opcode entry of a service-action opcode. */
#define SA_OP(op, nm, tbl)                                                                         \
	[op] = {.name = nm,                                                                        \
		.opcode = op,                                                                      \
		.sa_table = tbl,                                                                   \
		.n_sa = UTIL_ARRAY_SIZE(tbl),                                                      \
		.flags = TGT_SCSI_F_SA}

/* SERVICE ACTION IN(16), 9Eh */
static const struct tgt_scsi_cmd table_sai16[] = {
    /* SBC-3 5.16: LBA (obsolete), ALLOCATION LENGTH, PMI (obsolete) */
    SA_CMD(SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16, "READ CAPACITY(16)", NULL,
	   tgt_sbc_read_capacity16, TGT_DIR_IN, 16, 10, 4, F_INFO, LBA8, LEN4, 0x01, 0x00),
    /* SBC-3 5.17: STARTING LBA, ALLOCATION LENGTH (scsi_lbp.c) */
    SA_CMD(SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SAI_GET_LBA_STATUS, "GET LBA STATUS",
	   tgt_lbp_get_lba_status_prep, tgt_lbp_get_lba_status, TGT_DIR_IN, 16, 10, 4,
	   F_INFO | TGT_SCSI_F_RESV_READ, LBA8, LEN4, 0x00, 0x00),
};

/* SANITIZE, 48h (scsi_media.c): IMMED, AUSE (SBC-3 5.27) */
#define SANITIZE_CMD(s, nm, fl)                                                                    \
	{                                                                                          \
		.name = nm, .prep = tgt_sanitize_prep, .exec = tgt_sanitize,                       \
		.opcode = SCSI_OP_SANITIZE, .sa = s, .dir = TGT_DIR_NONE, .cdb_len = 10,           \
		.len_off = 7, .len_size = 2, .flags = TGT_SCSI_F_SA | (fl), .usage = {             \
			SCSI_OP_SANITIZE,                                                          \
			(s) | SANITIZE_IMMED | SANITIZE_AUSE,                                      \
			0x00,                                                                      \
			0x00,                                                                      \
			0x00,                                                                      \
			0x00,                                                                      \
			0x00,                                                                      \
			LEN2,                                                                      \
			0x00                                                                       \
		}                                                                                  \
	}
static const struct tgt_scsi_cmd table_sanitize[] = {
    SANITIZE_CMD(SANITIZE_SA_OVERWRITE, "SANITIZE(OVERWRITE)", F_WR),
    SANITIZE_CMD(SANITIZE_SA_BLOCK_ERASE, "SANITIZE(BLOCK ERASE)", F_WR),
    SANITIZE_CMD(SANITIZE_SA_CRYPTO_ERASE, "SANITIZE(CRYPTO ERASE)", F_WR),
    /* EXIT FAILURE MODE writes nothing. */
    SANITIZE_CMD(SANITIZE_SA_EXIT_FAILURE, "SANITIZE(EXIT FAILURE MODE)", 0),
};

/* Reservation commands check conflicts themselves (scsi_pr.c). */
#define F_PR (TGT_SCSI_F_ALLOW_ON_RESV | TGT_SCSI_F_OK_ON_STANDBY | TGT_SCSI_F_OK_ON_SECONDARY)

/* PERSISTENT RESERVE IN, 5Eh (SPC-4 6.16): ALLOCATION LENGTH */
#define PRIN_CMD(s, nm)                                                                            \
	SA_CMD(SCSI_OP_PERSISTENT_RESERVE_IN, s, nm, NULL, tgt_pr_in, TGT_DIR_IN, 10, 7, 2, F_PR,  \
	       0x00, 0x00, 0x00, 0x00, 0x00, LEN2, 0x00)
static const struct tgt_scsi_cmd table_prin[] = {
    PRIN_CMD(PRIN_READ_KEYS, "PERSISTENT RESERVE IN(READ KEYS)"),
    PRIN_CMD(PRIN_READ_RESERVATION, "PERSISTENT RESERVE IN(READ RESERVATION)"),
    PRIN_CMD(PRIN_REPORT_CAPABILITIES, "PERSISTENT RESERVE IN(REPORT CAPABILITIES)"),
    PRIN_CMD(PRIN_READ_FULL_STATUS, "PERSISTENT RESERVE IN(READ FULL STATUS)"),
};

/* PERSISTENT RESERVE OUT, 5Fh (SPC-4 6.17): SCOPE/TYPE, PARAMETER LIST LENGTH */
#define PROUT_CMD(s, nm)                                                                           \
	SA_CMD(SCSI_OP_PERSISTENT_RESERVE_OUT, s, nm, tgt_pr_out_prep, tgt_pr_out, TGT_DIR_OUT,    \
	       10, 5, 4, F_PR, 0xff, 0x00, 0x00, LEN4, 0x00)
static const struct tgt_scsi_cmd table_prout[] = {
    PROUT_CMD(PROUT_REGISTER, "PERSISTENT RESERVE OUT(REGISTER)"),
    PROUT_CMD(PROUT_RESERVE, "PERSISTENT RESERVE OUT(RESERVE)"),
    PROUT_CMD(PROUT_RELEASE, "PERSISTENT RESERVE OUT(RELEASE)"),
    PROUT_CMD(PROUT_CLEAR, "PERSISTENT RESERVE OUT(CLEAR)"),
    PROUT_CMD(PROUT_PREEMPT, "PERSISTENT RESERVE OUT(PREEMPT)"),
    PROUT_CMD(PROUT_PREEMPT_AND_ABORT, "PERSISTENT RESERVE OUT(PREEMPT AND ABORT)"),
    PROUT_CMD(PROUT_REGISTER_AND_IGNORE,
	      "PERSISTENT RESERVE OUT(REGISTER AND IGNORE EXISTING KEY)"),
    PROUT_CMD(PROUT_REGISTER_AND_MOVE, "PERSISTENT RESERVE OUT(REGISTER AND MOVE)"),
};

/* MAINTENANCE IN, A3h */
static const struct tgt_scsi_cmd table_maint_in[] = {
    /* SPC-4 6.35: RCTD + REPORTING OPTIONS, opcode, service action, length */
    SA_CMD(SCSI_OP_MAINTENANCE_IN, SCSI_MI_REPORT_SUPPORTED_OPCODES,
	   "REPORT SUPPORTED OPERATION CODES", NULL, tgt_spc_report_opcodes, TGT_DIR_IN, 12, 6, 4,
	   F_INFO, RSOC_RCTD | RSOC_OPTIONS_MASK, 0xff, LEN2, LEN4, 0x00, 0x00),
    /* SPC-4 6.36: REPD, length */
    SA_CMD(SCSI_OP_MAINTENANCE_IN, SCSI_MI_REPORT_SUPPORTED_TMFS,
	   "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", NULL, tgt_spc_report_tmfs, TGT_DIR_IN, 12,
	   6, 4, F_INFO, RSTMF_REPD, 0x00, 0x00, 0x00, LEN4, 0x00, 0x00),
};

/* EXTENDED COPY, 83h (SPC-4 6.4): PARAMETER LIST LENGTH; LID4 is not implemented. */
static const struct tgt_scsi_cmd table_xcopy[] = {
    SA_CMD(SCSI_OP_EXTENDED_COPY, XCOPY_SA_LID1, "EXTENDED COPY(LID1)", tgt_xcopy_prep, tgt_xcopy,
	   TGT_DIR_OUT, 16, 10, 4, 0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, LEN4, 0x00,
	   0x00),
};

/* RECEIVE COPY RESULTS, 84h (SPC-4 6.18): LIST IDENTIFIER, ALLOCATION LENGTH */
static const struct tgt_scsi_cmd table_copy_results[] = {
    SA_CMD(SCSI_OP_RECEIVE_COPY_RESULTS, RCR_SA_COPY_STATUS, "RECEIVE COPY RESULTS(COPY STATUS)",
	   NULL, tgt_xcopy_copy_status, TGT_DIR_IN, 16, 10, 4, 0, 0xff, 0x00, 0x00, 0x00, 0x00,
	   0x00, 0x00, 0x00, LEN4, 0x00, 0x00),
    SA_CMD(SCSI_OP_RECEIVE_COPY_RESULTS, RCR_SA_OPERATING_PARAMS,
	   "RECEIVE COPY RESULTS(OPERATING PARAMETERS)", NULL, tgt_xcopy_op_params, TGT_DIR_IN, 16,
	   10, 4, 0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, LEN4, 0x00, 0x00),
};

/*
 * The table. Usage maps follow SPC-4 / SBC-3 CDB layouts; bits we do not
 * implement are left out on purpose, so setting them is refused:
 * RDPROTECT/WRPROTECT/VRPROTECT (no protection information), RARC, the
 * obsolete RELADR/FUA_NV bits, and the CONTROL byte entirely (NACA: we do
 * not support ACA, SAM-5 5.9; LINK is obsolete).
 */
static const struct tgt_scsi_cmd table_ops[256] = {
    CMD(SCSI_OP_TEST_UNIT_READY, "TEST UNIT READY", NULL, tgt_spc_test_unit_ready, TGT_DIR_NONE, 6,
	0, 0, F_INFO, 0x00, 0x00, 0x00, 0x00, 0x00),
    CMD(SCSI_OP_REQUEST_SENSE, "REQUEST SENSE", NULL, tgt_spc_request_sense, TGT_DIR_IN, 6, 4, 1,
	F_ANYTIME, RS_DESC, 0x00, 0x00, 0xff, 0x00),
    CMD(SCSI_OP_READ_6, "READ(6)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_IN, 6, 0, 0, F_READ, 0x1f,
	0xff, 0xff, 0xff, 0x00),
    CMD(SCSI_OP_WRITE_6, "WRITE(6)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_OUT, 6, 0, 0, F_WR, 0x1f,
	0xff, 0xff, 0xff, 0x00),
    CMD(SCSI_OP_INQUIRY, "INQUIRY", NULL, tgt_spc_inquiry, TGT_DIR_IN, 6, 3, 2, F_ANYTIME,
	INQ_CDB_EVPD, 0xff, LEN2, 0x00),
    CMD(SCSI_OP_MODE_SELECT_6, "MODE SELECT(6)", tgt_spc_mode_select_prep, tgt_spc_mode_select,
	TGT_DIR_OUT, 6, 4, 1, 0, MSEL_PF | MSEL_SP, 0x00, 0x00, 0xff, 0x00),
    CMD(SCSI_OP_MODE_SENSE_6, "MODE SENSE(6)", NULL, tgt_spc_mode_sense, TGT_DIR_IN, 6, 4, 1,
	F_INFO, MS_DBD, 0xff, 0xff, 0xff, 0x00),
    /* SBC-3 5.3: FMTPINFO, LONGLIST, FMTDATA, CMPLST, DEFECT LIST FORMAT (scsi_media.c) */
    CMD(SCSI_OP_FORMAT_UNIT, "FORMAT UNIT", tgt_format_unit_prep, tgt_format_unit, TGT_DIR_NONE, 6,
	0, 0, F_WR, 0xff, 0x00, 0x00, 0x00, 0x00),
    CMD(SCSI_OP_START_STOP_UNIT, "START STOP UNIT", NULL, tgt_sbc_start_stop, TGT_DIR_NONE, 6, 0, 0,
	0, SSU_IMMED, 0x00, 0x0f, 0xf0 | SSU_NO_FLUSH | SSU_LOEJ | SSU_START, 0x00),
    CMD(SCSI_OP_READ_CAPACITY_10, "READ CAPACITY(10)", tgt_sbc_read_capacity10_prep,
	tgt_sbc_read_capacity10, TGT_DIR_IN, 10, 0, 0, F_INFO, 0x00, LBA4, 0x00, 0x00, RC10_PMI,
	0x00),
    CMD(SCSI_OP_READ_10, "READ(10)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_IN, 10, 0, 0, F_READ,
	SBC_DPO | SBC_FUA, LBA4, GRP, LEN2, 0x00),
    CMD(SCSI_OP_WRITE_10, "WRITE(10)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_OUT, 10, 0, 0, F_WR,
	SBC_DPO | SBC_FUA, LBA4, GRP, LEN2, 0x00),
    CMD(SCSI_OP_WRITE_AND_VERIFY_10, "WRITE AND VERIFY(10)", tgt_sbc_write_verify_prep,
	tgt_sbc_write_verify, TGT_DIR_OUT, 10, 0, 0, F_WR, SBC_DPO | SBC_BYTCHK_MASK, LBA4, GRP,
	LEN2, 0x00),
    CMD(SCSI_OP_VERIFY_10, "VERIFY(10)", tgt_sbc_verify_prep, tgt_sbc_verify, TGT_DIR_NONE, 10, 0,
	0, F_READ, SBC_DPO | SBC_BYTCHK_MASK, LBA4, GRP, LEN2, 0x00),
    CMD(SCSI_OP_PRE_FETCH_10, "PRE-FETCH(10)", tgt_sbc_prefetch_prep, tgt_sbc_prefetch,
	TGT_DIR_NONE, 10, 0, 0, F_READ, SBC_IMMED, LBA4, GRP, LEN2, 0x00),
    CMD(SCSI_OP_SYNCHRONIZE_CACHE_10, "SYNCHRONIZE CACHE(10)", tgt_sbc_sync_prep, tgt_sbc_sync,
	TGT_DIR_NONE, 10, 0, 0, 0, SBC_SYNC_NV | SBC_IMMED, LBA4, GRP, LEN2, 0x00),
    CMD(SCSI_OP_MODE_SELECT_10, "MODE SELECT(10)", tgt_spc_mode_select_prep, tgt_spc_mode_select,
	TGT_DIR_OUT, 10, 7, 2, 0, MSEL_PF | MSEL_SP, 0x00, 0x00, 0x00, 0x00, 0x00, LEN2, 0x00),
    CMD(SCSI_OP_MODE_SENSE_10, "MODE SENSE(10)", NULL, tgt_spc_mode_sense, TGT_DIR_IN, 10, 7, 2,
	F_INFO, MS_LLBAA | MS_DBD, 0xff, 0xff, 0x00, 0x00, 0x00, LEN2, 0x00),
    CMD(SCSI_OP_READ_16, "READ(16)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_IN, 16, 0, 0, F_READ,
	SBC_DPO | SBC_FUA, LBA8, LEN4, GRP, 0x00),
    CMD(SCSI_OP_WRITE_16, "WRITE(16)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_OUT, 16, 0, 0, F_WR,
	SBC_DPO | SBC_FUA, LBA8, LEN4, GRP, 0x00),
    CMD(SCSI_OP_WRITE_AND_VERIFY_16, "WRITE AND VERIFY(16)", tgt_sbc_write_verify_prep,
	tgt_sbc_write_verify, TGT_DIR_OUT, 16, 0, 0, F_WR, SBC_DPO | SBC_BYTCHK_MASK, LBA8, LEN4,
	GRP, 0x00),
    CMD(SCSI_OP_VERIFY_16, "VERIFY(16)", tgt_sbc_verify_prep, tgt_sbc_verify, TGT_DIR_NONE, 16, 0,
	0, F_READ, SBC_DPO | SBC_BYTCHK_MASK, LBA8, LEN4, GRP, 0x00),
    CMD(SCSI_OP_PRE_FETCH_16, "PRE-FETCH(16)", tgt_sbc_prefetch_prep, tgt_sbc_prefetch,
	TGT_DIR_NONE, 16, 0, 0, F_READ, SBC_IMMED, LBA8, LEN4, GRP, 0x00),
    CMD(SCSI_OP_SYNCHRONIZE_CACHE_16, "SYNCHRONIZE CACHE(16)", tgt_sbc_sync_prep, tgt_sbc_sync,
	TGT_DIR_NONE, 16, 0, 0, 0, SBC_SYNC_NV | SBC_IMMED, LBA8, LEN4, GRP, 0x00),
    /* SPC-2 7.21-7.24: no third-party or LONGID reservations, no extents. */
    CMD(SCSI_OP_RESERVE_6, "RESERVE(6)", NULL, tgt_pr_reserve, TGT_DIR_NONE, 6, 0, 0,
	F_PR | TGT_SCSI_F_SPC2_OK, 0x00, 0x00, 0x00, 0x00, 0x00),
    CMD(SCSI_OP_RELEASE_6, "RELEASE(6)", NULL, tgt_pr_release, TGT_DIR_NONE, 6, 0, 0,
	F_PR | TGT_SCSI_F_SPC2_OK, 0x00, 0x00, 0x00, 0x00, 0x00),
    CMD(SCSI_OP_RESERVE_10, "RESERVE(10)", NULL, tgt_pr_reserve, TGT_DIR_NONE, 10, 0, 0,
	F_PR | TGT_SCSI_F_SPC2_OK, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    CMD(SCSI_OP_RELEASE_10, "RELEASE(10)", NULL, tgt_pr_release, TGT_DIR_NONE, 10, 0, 0,
	F_PR | TGT_SCSI_F_SPC2_OK, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    SA_OP(SCSI_OP_PERSISTENT_RESERVE_IN, "PERSISTENT RESERVE IN", table_prin),
    SA_OP(SCSI_OP_PERSISTENT_RESERVE_OUT, "PERSISTENT RESERVE OUT", table_prout),
    SA_OP(SCSI_OP_EXTENDED_COPY, "EXTENDED COPY", table_xcopy),
    SA_OP(SCSI_OP_RECEIVE_COPY_RESULTS, "RECEIVE COPY RESULTS", table_copy_results),
    SA_OP(SCSI_OP_SERVICE_ACTION_IN_16, "SERVICE ACTION IN(16)", table_sai16),
    CMD(SCSI_OP_REPORT_LUNS, "REPORT LUNS", tgt_spc_report_luns_prep, tgt_spc_report_luns,
	TGT_DIR_IN, 12, 6, 4, F_ANYTIME, 0x00, 0xff, 0x00, 0x00, 0x00, LEN4, 0x00, 0x00),
    SA_OP(SCSI_OP_MAINTENANCE_IN, "MAINTENANCE IN", table_maint_in),
    CMD(SCSI_OP_READ_12, "READ(12)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_IN, 12, 0, 0, F_READ,
	SBC_DPO | SBC_FUA, LBA4, LEN4, GRP, 0x00),
    CMD(SCSI_OP_WRITE_12, "WRITE(12)", tgt_sbc_rw_prep, tgt_sbc_rw, TGT_DIR_OUT, 12, 0, 0, F_WR,
	SBC_DPO | SBC_FUA, LBA4, LEN4, GRP, 0x00),
    CMD(SCSI_OP_WRITE_AND_VERIFY_12, "WRITE AND VERIFY(12)", tgt_sbc_write_verify_prep,
	tgt_sbc_write_verify, TGT_DIR_OUT, 12, 0, 0, F_WR, SBC_DPO | SBC_BYTCHK_MASK, LBA4, LEN4,
	GRP, 0x00),
    CMD(SCSI_OP_VERIFY_12, "VERIFY(12)", tgt_sbc_verify_prep, tgt_sbc_verify, TGT_DIR_NONE, 12, 0,
	0, F_READ, SBC_DPO | SBC_BYTCHK_MASK, LBA4, LEN4, GRP, 0x00),
    /* Thin provisioning (scsi_lbp.c): WRITE SAME UNMAP bit, no ANCHOR (ANC_SUP 0) */
    CMD(SCSI_OP_WRITE_SAME_10, "WRITE SAME(10)", tgt_lbp_write_same_prep, tgt_lbp_write_same,
	TGT_DIR_OUT, 10, 0, 0, F_WR, WS_UNMAP, LBA4, GRP, LEN2, 0x00),
    CMD(SCSI_OP_UNMAP, "UNMAP", tgt_lbp_unmap_prep, tgt_lbp_unmap, TGT_DIR_OUT, 10, 7, 2, F_WR,
	0x00, 0x00, 0x00, 0x00, 0x00, GRP, LEN2, 0x00),
    CMD(SCSI_OP_WRITE_SAME_16, "WRITE SAME(16)", tgt_lbp_write_same_prep, tgt_lbp_write_same,
	TGT_DIR_OUT, 16, 0, 0, F_WR, WS_UNMAP, LBA8, LEN4, GRP, 0x00),
    /* Atomic writes (scsi_caw.c) */
    CMD(SCSI_OP_COMPARE_AND_WRITE, "COMPARE AND WRITE", tgt_caw_prep, tgt_caw, TGT_DIR_OUT, 16, 0,
	0, F_WR, SBC_DPO | SBC_FUA, LBA8, 0x00, 0x00, 0x00, 0xff, GRP, 0x00),
    CMD(SCSI_OP_ORWRITE_16, "ORWRITE(16)", tgt_orwrite_prep, tgt_orwrite, TGT_DIR_OUT, 16, 0, 0,
	F_WR, SBC_DPO | SBC_FUA, LBA8, LEN4, GRP, 0x00),
    CMD(SCSI_OP_WRITE_ATOMIC_16, "WRITE ATOMIC(16)", tgt_write_atomic_prep, tgt_write_atomic,
	TGT_DIR_OUT, 16, 0, 0, F_WR, SBC_DPO | SBC_FUA, LBA8, 0x00, 0x00, LEN2, GRP, 0x00),
    /* Media (scsi_media.c) */
    SA_OP(SCSI_OP_SANITIZE, "SANITIZE", table_sanitize),
    CMD(SCSI_OP_READ_DEFECT_DATA_10, "READ DEFECT DATA(10)", tgt_read_defect_prep, tgt_read_defect,
	TGT_DIR_IN, 10, 7, 2, F_INFO, 0x00, RDD_PLIST | RDD_GLIST | RDD_FORMAT_MASK, 0x00, 0x00,
	0x00, 0x00, LEN2, 0x00),
    CMD(SCSI_OP_READ_DEFECT_DATA_12, "READ DEFECT DATA(12)", tgt_read_defect_prep, tgt_read_defect,
	TGT_DIR_IN, 12, 6, 4, F_INFO, RDD_PLIST | RDD_GLIST | RDD_FORMAT_MASK, LBA4, LEN4, 0x00,
	0x00),
};

static const struct tgt_scsi_cmd *table_find_sa(const struct tgt_scsi_cmd *op, unsigned sa)
{
	for (unsigned i = 0; i < op->n_sa; i++) {
		if (op->sa_table[i].sa == sa)
			return &op->sa_table[i];
	}
	return NULL;
}

const struct tgt_scsi_cmd *tgt_scsi_lookup(const uint8_t *cdb)
{
	const struct tgt_scsi_cmd *op = &table_ops[cdb[0]];

	if (op->sa_table != NULL)
		return table_find_sa(op, cdb[1] & SCSI_SA_MASK);
	return op->exec != NULL ? op : NULL;
}

/*
 * Refuse any bit the usage map does not allow. SPC-4 4.4.3: "a reserved
 * bit ... set to a nonzero value ... the device server shall terminate the
 * command with CHECK CONDITION status ... ILLEGAL REQUEST ... INVALID FIELD
 * IN CDB", the field pointer naming the byte and bit (4.5.2.4.2).
 */
static int table_check_usage(struct tgt_task *t, const struct tgt_scsi_cmd *cmd)
{
	for (unsigned i = 1; i < cmd->cdb_len; i++) {
		uint8_t allowed = cmd->usage[i];
		uint8_t bad;

		if (i == 1 && (cmd->flags & TGT_SCSI_F_SA))
			allowed |= SCSI_SA_MASK;
		bad = t->cdb[i] & (uint8_t)~allowed;
		if (bad != 0) {
			tgt_task_invalid_field(t, (uint16_t)i, 31 - __builtin_clz(bad));
			return 1;
		}
	}
	return 0;
}

int tgt_scsi_prepare(struct tgt_task *t)
{
	const struct tgt_scsi_cmd *cmd;
	uint16_t ua;

	t->cmd = NULL;
	t->dir = TGT_DIR_NONE;
	t->xfer_len = 0;
	t->lba = 0;
	t->nblocks = 0;
	t->data_len = 0;
	t->status = SAM_STAT_GOOD;
	t->sense_len = 0;
	t->scsi_step = 0;
	t->gate = 0;

	cmd = tgt_scsi_lookup(t->cdb);
	/*
	 * SPC-4 6.6.2 / 6.33 / 6.39: INQUIRY, REPORT LUNS and REQUEST SENSE
	 * answer for a LUN that does not exist; "in response to any other
	 * command, the device server shall terminate the command with CHECK
	 * CONDITION status ... LOGICAL UNIT NOT SUPPORTED".
	 */
	if (t->lu == NULL && (cmd == NULL || !(cmd->flags & TGT_SCSI_F_NO_LUN))) {
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
		return 1;
	}
	if (cmd == NULL) {
		if (table_ops[t->cdb[0]].sa_table != NULL)
			tgt_task_invalid_field(t, 1, 4); /* the SERVICE ACTION field */
		else
			tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
		return 1;
	}
	/* The BHS carries 16 CDB bytes; only a longer CDB needs an AHS. */
	if (t->cdb_len < cmd->cdb_len) {
		tgt_task_invalid_field(t, 0, -1);
		return 1;
	}
	if (table_check_usage(t, cmd))
		return 1;
	/*
	 * SAM-5 5.14: with a unit attention pending, any command but INQUIRY,
	 * REPORT LUNS and REQUEST SENSE is terminated with CHECK CONDITION /
	 * UNIT ATTENTION, which reports (and clears) that one condition.
	 */
	if (t->itl != NULL && !(cmd->flags & TGT_SCSI_F_NO_UA) && tgt_scsi_ua_take(t->itl, &ua)) {
		tgt_scsi_fail(t, SK_UNIT_ATTENTION, ua);
		return 1;
	}
	/* SPC-4 5.12.1 / SPC-2 5.5.1: RESERVATION CONFLICT, after unit attentions. */
	if (t->lu != NULL && tgt_pr_check(t, cmd))
		return 1;
	t->cmd = cmd;
	/* SBC-3 4.11.2: NOT READY while a SANITIZE runs (scsi_media.c). */
	if (tgt_media_check(t))
		return 1;
	/*
	 * SPC-4 7.5.8: with SWP set "all commands requiring writes to the
	 * medium shall be terminated with CHECK CONDITION status, with the
	 * sense key set to DATA PROTECT, and the additional sense code set to
	 * WRITE PROTECTED" (an EXTENDED COPY checks its destination itself).
	 */
	if ((cmd->flags & TGT_SCSI_F_WRITES) &&
	    atomic_load_explicit(&t->lu->swp, memory_order_relaxed)) {
		tgt_scsi_fail(t, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return 1;
	}
	t->dir = cmd->dir;
	switch (cmd->len_size) {
	case 1:
		t->xfer_len = t->cdb[cmd->len_off];
		break;
	case 2:
		t->xfer_len = get_be16(t->cdb + cmd->len_off);
		break;
	case 4:
		t->xfer_len = get_be32(t->cdb + cmd->len_off);
		break;
	default:
		break;
	}
	/*
	 * SPC-4 4.2.5.6: an allocation length is the most the initiator takes,
	 * not what it will get. The connection allocates xfer_len bytes for an
	 * IN command, so a 4-byte length of FFFFFFFFh (REPORT LUNS, GET LBA
	 * STATUS, ...) must not become a 4 GiB buffer per command: no
	 * parameter data of ours is longer than TGT_SCSI_IN_MAX.
	 */
	if (t->dir == TGT_DIR_IN && t->xfer_len > TGT_SCSI_IN_MAX)
		t->xfer_len = TGT_SCSI_IN_MAX;
	if (cmd->prep != NULL)
		return cmd->prep(t);
	return 0;
}

void tgt_scsi_execute(struct tgt_task *t)
{
	if (unlikely(t->cmd == NULL || t->cmd->exec == NULL)) {
		log_err("execute of an unprepared task (opcode 0x%02x)", t->cdb[0]);
		tgt_scsi_fail(t, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		tgt_task_done(t);
		return;
	}
	t->cmd->exec(t);
}

/* ---- REPORT SUPPORTED OPERATION CODES, from the table ---- */

/* Room for every command descriptor with its timeouts descriptor. */
#define RSOC_BUF_LEN 4096

/* SPC-4 6.35.4 command timeouts descriptor: 0 = no timeout specified. */
static uint32_t table_put_timeouts(uint8_t *p)
{
	memset(p, 0, RSOC_TIMEOUTS_LEN);
	put_be16(p, RSOC_TIMEOUTS_LEN - 2);
	return RSOC_TIMEOUTS_LEN;
}

/* SPC-4 6.35.2: all commands; one 8-byte descriptor each (+ timeouts). */
static uint32_t table_all_commands(uint8_t *buf, bool rctd)
{
	uint32_t len = 4;

	for (unsigned op = 0; op < 256; op++) {
		const struct tgt_scsi_cmd *e = &table_ops[op];
		unsigned n = e->sa_table != NULL ? e->n_sa : (e->exec != NULL ? 1 : 0);

		for (unsigned i = 0; i < n; i++) {
			const struct tgt_scsi_cmd *c = e->sa_table != NULL ? &e->sa_table[i] : e;
			uint8_t *d = buf + len;

			memset(d, 0, RSOC_CMD_DESC_LEN);
			d[0] = c->opcode;
			put_be16(d + 2, c->sa);
			if (c->flags & TGT_SCSI_F_SA)
				d[5] |= RSOC_SERVACTV;
			if (rctd)
				d[5] |= RSOC_CTDP;
			put_be16(d + 6, c->cdb_len);
			len += RSOC_CMD_DESC_LEN;
			if (rctd)
				len += table_put_timeouts(buf + len);
		}
	}
	put_be32(buf, len - 4);
	return len;
}

/* SPC-4 6.35.3: one command, with its CDB usage data; \p c NULL: not supported. */
static uint32_t table_one_command(uint8_t *buf, const struct tgt_scsi_cmd *c, bool rctd)
{
	uint32_t len = 4;

	memset(buf, 0, 4);
	if (c == NULL) {
		buf[1] = RSOC_SUPPORT_NONE;
		return len;
	}
	buf[1] = RSOC_SUPPORT_STD;
	if (rctd)
		buf[1] |= RSOC_ONE_CTDP;
	put_be16(buf + 2, c->cdb_len);
	memcpy(buf + len, c->usage, c->cdb_len);
	len += c->cdb_len;
	if (rctd)
		len += table_put_timeouts(buf + len);
	return len;
}

void tgt_spc_report_opcodes(struct tgt_task *t)
{
	uint8_t buf[RSOC_BUF_LEN];
	bool rctd = (t->cdb[2] & RSOC_RCTD) != 0;
	const struct tgt_scsi_cmd *op = &table_ops[t->cdb[3]];
	uint16_t sa = get_be16(t->cdb + 4);
	const struct tgt_scsi_cmd *c;
	uint32_t len;

	switch (t->cdb[2] & RSOC_OPTIONS_MASK) {
	case RSOC_ALL:
		len = table_all_commands(buf, rctd);
		break;
	case RSOC_ONE_OPCODE:
		/*
		 * "If the REQUESTED OPERATION CODE field specifies an operation
		 * code for which the device server implements service actions,
		 * ... INVALID FIELD IN CDB." (and the other way round for 010b)
		 * The field pointer names REPORTING OPTIONS, not byte 1, which
		 * initiators read as "MAINTENANCE IN not implemented".
		 */
		if (op->sa_table != NULL) {
			tgt_task_invalid_field(t, 2, 2);
			tgt_task_done(t);
			return;
		}
		len = table_one_command(buf, op->exec != NULL ? op : NULL, rctd);
		break;
	case RSOC_ONE_OPCODE_SA:
		if (op->sa_table == NULL) {
			tgt_task_invalid_field(t, 2, 2);
			tgt_task_done(t);
			return;
		}
		c = sa <= SCSI_SA_MASK ? table_find_sa(op, sa) : NULL;
		len = table_one_command(buf, c, rctd);
		break;
	case RSOC_ONE_OPCODE_ANY:
		/* SPC-4 r37: the service action counts only where the opcode has them. */
		if (op->sa_table != NULL)
			c = sa <= SCSI_SA_MASK ? table_find_sa(op, sa) : NULL;
		else
			c = op->exec != NULL ? op : NULL;
		len = table_one_command(buf, c, rctd);
		break;
	default:
		tgt_task_invalid_field(t, 2, 2);
		tgt_task_done(t);
		return;
	}
	tgt_scsi_data_in(t, buf, len);
}

void tgt_spc_report_tmfs(struct tgt_task *t)
{
	uint8_t buf[16];
	uint32_t len = (t->cdb[2] & RSTMF_REPD) ? 16 : 4;

	/*
	 * SPC-4 6.36: the TMFs the connection code implements: ABORT TASK,
	 * ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, TARGET RESET
	 * (RFC 7143 11.5.1). No ACA, so no CLEAR ACA; no QUERY TASK.
	 */
	memset(buf, 0, sizeof(buf));
	buf[0] = RSTMF_ATS | RSTMF_ATSS | RSTMF_CTSS | RSTMF_LURS | RSTMF_TRS;
	if (len == 16)
		buf[3] = 0x0c; /* ADDITIONAL DATA LENGTH of the extended format */
	tgt_scsi_data_in(t, buf, len);
}
