/*
 * SCSI wire constants (SAM-5, SPC-4, SBC-3): status codes, sense keys,
 * additional sense codes, operation codes, service actions, VPD and mode
 * page codes and the bits of the fields the device server decodes.
 * No logic here.
 */
#ifndef VMENGINE_SCSI_SPEC_H
#define VMENGINE_SCSI_SPEC_H

/* SAM status */
#define SAM_STAT_GOOD		      0x00
#define SAM_STAT_CHECK_CONDITION      0x02
#define SAM_STAT_CONDITION_MET	      0x04
#define SAM_STAT_BUSY		      0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL	      0x28
#define SAM_STAT_ACA_ACTIVE	      0x30
#define SAM_STAT_TASK_ABORTED	      0x40

/* Sense keys */
#define SK_NO_SENSE	   0x0
#define SK_RECOVERED_ERROR 0x1
#define SK_NOT_READY	   0x2
#define SK_MEDIUM_ERROR	   0x3
#define SK_HARDWARE_ERROR  0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION  0x6
#define SK_DATA_PROTECT	   0x7
#define SK_BLANK_CHECK	   0x8
#define SK_COPY_ABORTED	   0xa
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE	   0xe

/*
 * Additional sense code and qualifier, as one 16-bit value ASC << 8 | ASCQ
 * (SPC-4 Annex D).
 */
#define ASC_NO_ADDITIONAL_SENSE			  0x0000
#define ASC_WRITE_ERROR				  0x0c00
#define ASC_UNEXPECTED_UNSOLICITED_DATA		  0x0c0c
#define ASC_NOT_ENOUGH_UNSOLICITED_DATA		  0x0c0d
#define ASC_UNRECOVERED_READ_ERROR		  0x1100
#define ASC_PARAMETER_LIST_LENGTH_ERROR		  0x1a00
#define ASC_MISCOMPARE_DURING_VERIFY		  0x1d00
#define ASC_INVALID_COMMAND_OPERATION_CODE	  0x2000
#define ASC_LBA_OUT_OF_RANGE			  0x2100
#define ASC_INVALID_FIELD_IN_CDB		  0x2400
#define ASC_LOGICAL_UNIT_NOT_SUPPORTED		  0x2500
#define ASC_INVALID_FIELD_IN_PARAMETER_LIST	  0x2600
#define ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT	  0x2707
#define ASC_POWER_ON_RESET_OCCURRED		  0x2900
#define ASC_POWER_ON_OCCURRED			  0x2901
#define ASC_BUS_DEVICE_RESET_OCCURRED		  0x2903
#define ASC_I_T_NEXUS_LOSS_OCCURRED		  0x2907
#define ASC_MODE_PARAMETERS_CHANGED		  0x2a01
#define ASC_CAPACITY_DATA_HAS_CHANGED		  0x2a09
#define ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR 0x2f00
#define ASC_SAVING_PARAMETERS_NOT_SUPPORTED	  0x3900
#define ASC_REPORTED_LUNS_DATA_HAS_CHANGED	  0x3f0e
#define ASC_INTERNAL_TARGET_FAILURE		  0x4400
#define ASC_PROTOCOL_SERVICE_CRC_ERROR		  0x4705
#define ASC_INITIATOR_DETECTED_ERROR		  0x4800
#define ASC_DATA_PHASE_ERROR			  0x4b00

/* Sense data formats (SPC-4 4.5) */
#define SENSE_FIXED_CURRENT    0x70
#define SENSE_DESC_CURRENT     0x72
#define SENSE_FIXED_LEN	       18
#define SENSE_FIXED_VALID      0x80 /* byte 0: INFORMATION is valid */
#define SENSE_SKSV	       0x80 /* sense-key specific byte 0: valid */
#define SENSE_SKS_CD	       0x40 /* field pointer is in the CDB (else parameter list) */
#define SENSE_SKS_BPV	       0x08 /* BIT POINTER valid */
#define SENSE_DESC_INFORMATION 0x00 /* descriptor types (SPC-4 4.5.2.1) */
#define SENSE_DESC_SKS	       0x02

/* Operation codes (SPC-4, SBC-3) */
#define SCSI_OP_TEST_UNIT_READY	       0x00
#define SCSI_OP_REQUEST_SENSE	       0x03
#define SCSI_OP_READ_6		       0x08
#define SCSI_OP_WRITE_6		       0x0a
#define SCSI_OP_INQUIRY		       0x12
#define SCSI_OP_MODE_SELECT_6	       0x15
#define SCSI_OP_RESERVE_6	       0x16
#define SCSI_OP_RELEASE_6	       0x17
#define SCSI_OP_MODE_SENSE_6	       0x1a
#define SCSI_OP_START_STOP_UNIT	       0x1b
#define SCSI_OP_PREVENT_ALLOW	       0x1e
#define SCSI_OP_READ_CAPACITY_10       0x25
#define SCSI_OP_READ_10		       0x28
#define SCSI_OP_WRITE_10	       0x2a
#define SCSI_OP_WRITE_AND_VERIFY_10    0x2e
#define SCSI_OP_VERIFY_10	       0x2f
#define SCSI_OP_PRE_FETCH_10	       0x34
#define SCSI_OP_SYNCHRONIZE_CACHE_10   0x35
#define SCSI_OP_WRITE_SAME_10	       0x41
#define SCSI_OP_UNMAP		       0x42
#define SCSI_OP_LOG_SENSE	       0x4d
#define SCSI_OP_MODE_SELECT_10	       0x55
#define SCSI_OP_MODE_SENSE_10	       0x5a
#define SCSI_OP_PERSISTENT_RESERVE_IN  0x5e
#define SCSI_OP_PERSISTENT_RESERVE_OUT 0x5f
#define SCSI_OP_VARIABLE_LENGTH	       0x7f
#define SCSI_OP_READ_16		       0x88
#define SCSI_OP_COMPARE_AND_WRITE      0x89
#define SCSI_OP_WRITE_16	       0x8a
#define SCSI_OP_WRITE_AND_VERIFY_16    0x8e
#define SCSI_OP_VERIFY_16	       0x8f
#define SCSI_OP_PRE_FETCH_16	       0x90
#define SCSI_OP_SYNCHRONIZE_CACHE_16   0x91
#define SCSI_OP_WRITE_SAME_16	       0x93
#define SCSI_OP_SERVICE_ACTION_IN_16   0x9e
#define SCSI_OP_REPORT_LUNS	       0xa0
#define SCSI_OP_MAINTENANCE_IN	       0xa3
#define SCSI_OP_MAINTENANCE_OUT	       0xa4
#define SCSI_OP_READ_12		       0xa8
#define SCSI_OP_WRITE_12	       0xaa
#define SCSI_OP_WRITE_AND_VERIFY_12    0xae
#define SCSI_OP_VERIFY_12	       0xaf

/* Service actions: in CDB byte 1, bits 4..0 */
#define SCSI_SA_MASK			  0x1f
#define SCSI_SAI_READ_CAPACITY_16	  0x10 /* SERVICE ACTION IN(16) */
#define SCSI_SAI_GET_LBA_STATUS		  0x12
#define SCSI_MI_REPORT_TARGET_PORT_GROUPS 0x0a /* MAINTENANCE IN */
#define SCSI_MI_REPORT_SUPPORTED_OPCODES  0x0c
#define SCSI_MI_REPORT_SUPPORTED_TMFS	  0x0d

/* Control byte (SAM-5 5.2, the last byte of every CDB) */
#define SCSI_CONTROL_NACA 0x04

/* Peripheral qualifier and device type (SPC-4 6.6.2) */
#define SCSI_PQ_CONNECTED     0x00
#define SCSI_PQ_NOT_SUPPORTED 0x60 /* 011b << 5 */
#define SCSI_TYPE_DISK	      0x00
#define SCSI_TYPE_UNKNOWN     0x1f

/* Standard INQUIRY data */
#define INQ_STD_LEN	   96
#define INQ_VERSION_SPC4   0x06
#define INQ_BYTE3_HISUP	   0x10
#define INQ_BYTE3_RDF_SPC2 0x02 /* response data format 2 */
#define INQ_BYTE7_CMDQUE   0x02
/* Version descriptors (SPC-4 table 29), "no version claimed" forms */
#define INQ_VD_SAM5  0x00a0
#define INQ_VD_ISCSI 0x0960
#define INQ_VD_SPC4  0x0460
#define INQ_VD_SBC3  0x04c0

/* INQUIRY CDB */
#define INQ_CDB_EVPD 0x01

/* VPD page codes (SPC-4 7.8, SBC-3 6.5) */
#define VPD_SUPPORTED_PAGES	  0x00
#define VPD_UNIT_SERIAL		  0x80
#define VPD_DEVICE_ID		  0x83
#define VPD_BLOCK_LIMITS	  0xb0
#define VPD_BLOCK_CHARACTERISTICS 0xb1
#define VPD_LB_PROVISIONING	  0xb2
#define VPD_BLOCK_LIMITS_LEN	  0x3c /* page length (SBC-3) */
#define VPD_BLOCK_CHAR_LEN	  0x3c
#define VPD_LBP_LEN		  0x04

/* Device identification designators (SPC-4 7.8.6) */
#define DESIG_CODESET_BINARY  0x1
#define DESIG_CODESET_ASCII   0x2
#define DESIG_CODESET_UTF8    0x3
#define DESIG_PROTO_ISCSI     0x5
#define DESIG_PIV	      0x80
#define DESIG_ASSOC_LU	      (0x0 << 4)
#define DESIG_ASSOC_PORT      (0x1 << 4)
#define DESIG_ASSOC_DEVICE    (0x2 << 4)
#define DESIG_TYPE_T10_VENDOR 0x1
#define DESIG_TYPE_NAA	      0x3
#define DESIG_TYPE_REL_PORT   0x4
#define DESIG_TYPE_TPG	      0x5
#define DESIG_TYPE_SCSI_NAME  0x8

/* Block device characteristics */
#define VPD_B1_NON_ROTATING 0x0001

/* REPORT LUNS SELECT REPORT (SPC-4 6.33) */
#define RL_SELECT_ALL		 0x00
#define RL_SELECT_WELL_KNOWN	 0x01
#define RL_SELECT_ALL_AND_WKLUN	 0x02
#define RL_SELECT_ADMIN		 0x10
#define RL_SELECT_ADMIN_AND_SUBS 0x11
#define RL_SELECT_SUBS		 0x12
#define RL_MIN_ALLOC_LEN	 16

/* READ CAPACITY */
#define RC10_DATA_LEN 8
#define RC16_DATA_LEN 32
#define RC10_PMI      0x01

/* Mode pages (SPC-4 7.5, SBC-3 6.4) */
#define MP_CACHING		    0x08
#define MP_CONTROL		    0x0a
#define MP_INFO_EXCEPTIONS	    0x1c
#define MP_ALL			    0x3f
#define MP_SUBPAGE_NONE		    0x00
#define MP_SUBPAGE_ALL		    0xff
#define MP_PS			    0x80 /* page byte 0: parameters savable */
#define MP_SPF			    0x40 /* page byte 0: subpage format */
#define MP_CODE_MASK		    0x3f
#define MP_PC_CURRENT		    0x0
#define MP_PC_CHANGEABLE	    0x1
#define MP_PC_DEFAULT		    0x2
#define MP_PC_SAVED		    0x3
#define MS_DBD			    0x08 /* MODE SENSE byte 1 */
#define MS_LLBAA		    0x10 /* MODE SENSE(10) byte 1 */
#define MSEL_PF			    0x10 /* MODE SELECT byte 1 */
#define MSEL_SP			    0x01
#define MODE_DSP_WP		    0x80 /* device-specific parameter (SBC-3 6.4.1) */
#define MODE_DSP_DPOFUA		    0x10
#define MODE_LONGLBA		    0x01 /* mode parameter header(10) byte 4 */
#define MODE_HDR6_LEN		    4
#define MODE_HDR10_LEN		    8
#define MODE_BD_SHORT_LEN	    8
#define MODE_BD_LONG_LEN	    16
#define MP_CACHING_WCE		    0x04 /* caching page byte 2 */
#define MP_CACHING_RCD		    0x01
#define MP_CACHING_LEN		    0x12
#define MP_CONTROL_D_SENSE	    0x04 /* control page byte 2 */
#define MP_CONTROL_SWP		    0x08 /* control page byte 4 (SPC-4 7.5.8) */
#define MP_CONTROL_QAM_UNRESTRICTED 0x10 /* control page byte 3 */
#define MP_CONTROL_LEN		    0x0a
#define MP_IEC_DEXCPT		    0x08 /* informational exceptions page byte 2 */
#define MP_IEC_LEN		    0x0a

/* READ/WRITE/VERIFY CDB bits (SBC-3) */
#define SBC_PROTECT_MASK 0xe0 /* RDPROTECT/WRPROTECT/VRPROTECT, byte 1 */
#define SBC_DPO		 0x10
#define SBC_FUA		 0x08
#define SBC_BYTCHK_MASK	 0x06 /* VERIFY / WRITE AND VERIFY byte 1, bits 2..1 */
#define SBC_BYTCHK_SHIFT 1
#define SBC_BYTCHK_NONE	 0x0  /* medium verification only */
#define SBC_BYTCHK_ALL	 0x1  /* compare the whole data-out */
#define SBC_BYTCHK_ONE	 0x3  /* one block of data-out against every block */
#define SBC_IMMED	 0x02 /* PRE-FETCH, SYNCHRONIZE CACHE byte 1 */
#define SBC_SYNC_NV	 0x04

/* START STOP UNIT (SBC-3 5.25) */
#define SSU_IMMED    0x01 /* byte 1 */
#define SSU_START    0x01 /* byte 4 */
#define SSU_LOEJ     0x02
#define SSU_NO_FLUSH 0x04
#define SSU_PC_SHIFT 4

/* REQUEST SENSE */
#define RS_DESC 0x01

/* REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) */
#define RSOC_RCTD	    0x80 /* byte 2 */
#define RSOC_OPTIONS_MASK   0x07
#define RSOC_ALL	    0x0
#define RSOC_ONE_OPCODE	    0x1
#define RSOC_ONE_OPCODE_SA  0x2
#define RSOC_ONE_OPCODE_ANY 0x3
#define RSOC_SUPPORT_NONE   0x1	 /* not supported */
#define RSOC_SUPPORT_STD    0x3	 /* supported as the standard says */
#define RSOC_CTDP	    0x02 /* all-commands descriptor byte 5 */
#define RSOC_SERVACTV	    0x01
#define RSOC_ONE_CTDP	    0x80 /* one-command data byte 1 */
#define RSOC_TIMEOUTS_LEN   12
#define RSOC_CMD_DESC_LEN   8

/* REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 6.36) */
#define RSTMF_REPD  0x80 /* byte 2 */
#define RSTMF_ATS   0x80 /* ABORT TASK */
#define RSTMF_ATSS  0x40 /* ABORT TASK SET */
#define RSTMF_CACAS 0x20 /* CLEAR ACA */
#define RSTMF_CTSS  0x10 /* CLEAR TASK SET */
#define RSTMF_LURS  0x08 /* LOGICAL UNIT RESET */
#define RSTMF_QTS   0x04 /* QUERY TASK */
#define RSTMF_TRS   0x02 /* TARGET RESET */

/* Reservations: RESERVE/RELEASE (SPC-2 7.21-7.24), PERSISTENT RESERVE IN/OUT (SPC-4 6.15-6.17) */
#define SCSI_OP_RESERVE_10	       0x56
#define SCSI_OP_RELEASE_10	       0x57
#define PRIN_READ_KEYS		       0x00
#define PRIN_READ_RESERVATION	       0x01
#define PRIN_REPORT_CAPABILITIES       0x02
#define PRIN_READ_FULL_STATUS	       0x03
#define PROUT_REGISTER		       0x00
#define PROUT_RESERVE		       0x01
#define PROUT_RELEASE		       0x02
#define PROUT_CLEAR		       0x03
#define PROUT_PREEMPT		       0x04
#define PROUT_PREEMPT_AND_ABORT	       0x05
#define PROUT_REGISTER_AND_IGNORE      0x06
#define PROUT_REGISTER_AND_MOVE	       0x07
#define PR_TYPE_WR_EX		       0x1
#define PR_TYPE_EX_AC		       0x3
#define PR_TYPE_WR_EX_RO	       0x5
#define PR_TYPE_EX_AC_RO	       0x6
#define PR_TYPE_WR_EX_AR	       0x7
#define PR_TYPE_EX_AC_AR	       0x8
#define PR_SCOPE_LU		       0x0
#define PROUT_BASIC_LEN		       24   /* basic parameter list (SPC-4 6.17.3) */
#define PROUT_SPEC_I_PT		       0x08 /* byte 20 */
#define PROUT_ALL_TG_PT		       0x04
#define PROUT_APTPL		       0x01
#define PROUT_MOVE_UNREG	       0x02 /* REGISTER AND MOVE byte 17 */
#define PRCAP_CRH		       0x10 /* REPORT CAPABILITIES byte 2 */
#define PRCAP_SIP_C		       0x08
#define PRCAP_ATP_C		       0x04
#define PRCAP_PTPL_C		       0x01
#define PRCAP_TMV		       0x80 /* byte 3 */
#define PRCAP_ALLOW_CMDS_SHIFT	       4
#define PRCAP_PTPL_A		       0x01
#define PRFS_ALL_TG_PT		       0x02 /* READ FULL STATUS descriptor byte 12 */
#define PRFS_R_HOLDER		       0x01
#define TPID_PROTO_ISCSI	       0x05 /* TransportID (SPC-4 7.6.4.6) */
#define TPID_FMT_NAME		       0x00
#define TPID_FMT_PORT		       0x40
#define ASC_INVALID_RELEASE_OF_PR      0x2604
#define ASC_RESERVATIONS_PREEMPTED     0x2a03
#define ASC_RESERVATIONS_RELEASED      0x2a04
#define ASC_REGISTRATIONS_PREEMPTED    0x2a05
#define ASC_INSUFFICIENT_REG_RESOURCES 0x5504

/* Third-party copy: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4, 6.18) */
#define SCSI_OP_EXTENDED_COPY	     0x83
#define SCSI_OP_RECEIVE_COPY_RESULTS 0x84
#define XCOPY_SA_LID1		     0x00 /* EXTENDED COPY(LID1) */
#define RCR_SA_COPY_STATUS	     0x00 /* RECEIVE COPY RESULTS service actions */
#define RCR_SA_OPERATING_PARAMS	     0x03
#define INQ_BYTE5_3PC		     0x08 /* standard INQUIRY: third-party copy supported */
#define XCOPY_HDR_LEN		     16	  /* parameter list header (SPC-4 6.4.3.1) */
#define XCOPY_LIST_ID_USAGE_SHIFT    3	  /* header byte 1, bits 4..3 */
#define XCOPY_LIST_ID_HOLD	     0x0  /* hold results for RECEIVE COPY RESULTS */
#define XCOPY_LIST_ID_NO_HOLD	     0x2
#define XCOPY_LIST_ID_NONE	     0x3  /* no list identifier (SNLID) */
#define XCOPY_CSCD_ID		     0xe4 /* identification descriptor CSCD (SPC-4 6.4.5.6) */
#define XCOPY_CSCD_LEN		     32
#define XCOPY_CSCD_NUL		     0x20 /* CSCD byte 1 */
#define XCOPY_CSCD_PAD		     0x04 /* CSCD byte 28 (block device parameters) */
#define XCOPY_SEG_B2B		     0x02 /* block device to block device segment */
#define XCOPY_SEG_B2B_LEN	     28
#define XCOPY_SEG_DC		     0x02 /* segment byte 1 */
#define XCOPY_SEG_CAT		     0x01
#define RCR_STATUS_IN_PROGRESS	     0x00 /* COPY STATUS: COPY MANAGER STATUS */
#define RCR_STATUS_GOOD		     0x01
#define RCR_STATUS_ERROR	     0x02
#define RCR_COPY_STATUS_LEN	     12
#define ASC_OPERATION_IN_PROGRESS    0x0016
#define ASC_UNREACHABLE_COPY_TARGET  0x0804
#define ASC_COPY_TARGET_UNREACHABLE  0x0d02 /* COPY TARGET DEVICE NOT REACHABLE */
#define ASC_INCORRECT_COPY_TARGET    0x0d03 /* INCORRECT COPY TARGET DEVICE TYPE */
#define ASC_TOO_MANY_CSCDS	     0x2606 /* TOO MANY TARGET DESCRIPTORS */
#define ASC_UNSUPPORTED_CSCD_TYPE    0x2607
#define ASC_TOO_MANY_SEGMENTS	     0x2608
#define ASC_UNSUPPORTED_SEGMENT_TYPE 0x2609
#define ASC_UNEXPECTED_INEXACT_SEG   0x260a
#define SENSE_SKS_SD		     0x20 /* segment pointer: relative to the segment descriptor */

/* Thin provisioning, atomic writes, media commands (scsi_lbp.c, scsi_caw.c, scsi_media.c) */
#define SCSI_OP_FORMAT_UNIT	    0x04
#define SCSI_OP_READ_DEFECT_DATA_10 0x37
#define SCSI_OP_SANITIZE	    0x48
#define SCSI_OP_ORWRITE_16	    0x8b
#define SCSI_OP_WRITE_ATOMIC_16	    0x9c
#define SCSI_OP_READ_DEFECT_DATA_12 0xb7
#define ASC_LU_NOT_READY_SANITIZE   0x041b
#define ASC_LU_NOT_READY_FORMAT	    0x0404
#define ASC_WRITE_PROTECTED	    0x2700
#define ASC_DEFECT_LIST_NOT_FOUND   0x1c00
#define ASC_SANITIZE_FAILED	    0x3107
#define WS_UNMAP		    0x08 /* WRITE SAME byte 1 (SBC-3 5.42) */
#define WS_ANCHOR		    0x10
#define LBP_STATUS_MAPPED	    0x0 /* GET LBA STATUS provisioning status (SBC-3 5.17.3) */
#define LBP_STATUS_DEALLOCATED	    0x1
#define VPD_B2_LBPU		    0x80 /* Logical Block Provisioning VPD byte 5 */
#define VPD_B2_LBPWS		    0x40
#define VPD_B2_LBPWS10		    0x20
#define VPD_B2_LBPRZ		    0x04
#define VPD_B2_PROV_THIN	    0x02 /* byte 6: PROVISIONING TYPE thin */
#define RC16_LBPME		    0x80 /* READ CAPACITY(16) data byte 14 */
#define RC16_LBPRZ		    0x40
#define VPD_B0_WSNZ		    0x01 /* Block Limits byte 4 */
#define VPD_B0_UGAVALID		    0x80 /* byte 32 */
#define VPD_B1_WABEREQ_READ_OK	    0x40 /* Block Device Characteristics byte 7: WABEREQ 01b */
#define VPD_B1_WACEREQ_READ_OK	    0x10 /* and WACEREQ 01b */
#define FU_FMTPINFO_MASK	    0xc0 /* FORMAT UNIT byte 1 (SBC-3 5.3) */
#define FU_LONGLIST		    0x20
#define FU_FMTDATA		    0x10
#define FU_PFU_MASK		    0x07 /* parameter list header byte 0 */
#define FU_FOV			    0x80 /* header byte 1 */
#define FU_DPRY			    0x40
#define FU_DCRT			    0x20
#define FU_STPF			    0x10
#define FU_IP			    0x08
#define FU_IMMED		    0x02
#define SANITIZE_IMMED		    0x80 /* SANITIZE byte 1 (SBC-3 5.27) */
#define SANITIZE_AUSE		    0x20
#define SANITIZE_SA_OVERWRITE	    0x01
#define SANITIZE_SA_BLOCK_ERASE	    0x02
#define SANITIZE_SA_CRYPTO_ERASE    0x03
#define SANITIZE_SA_EXIT_FAILURE    0x1f
#define SANITIZE_OW_INVERT	    0x80 /* OVERWRITE parameter byte 0 */
#define SANITIZE_OW_COUNT_MASK	    0x1f
#define RDD_PLIST		    0x10 /* READ DEFECT DATA byte 2 (10) / byte 1 (12) */
#define RDD_GLIST		    0x08
#define RDD_FORMAT_MASK		    0x07

#endif /* VMENGINE_SCSI_SPEC_H */
