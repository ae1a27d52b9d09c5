/*
 * iSCSI wire format (RFC 7143): one struct per Basic Header Segment type,
 * opcodes, flags and status codes. No logic here.
 *
 * Multi-byte fields are byte arrays read and written only with get_beNN() /
 * put_beNN() from util.h, so a BHS may sit at any address.
 */
#ifndef VMENGINE_ISCSI_PROTO_H
#define VMENGINE_ISCSI_PROTO_H

#include <stdint.h>

#define ISCSI_BHS_LEN	   48
#define ISCSI_DIGEST_LEN   4
#define ISCSI_DEFAULT_PORT 3260
#define ISCSI_MAX_AHS_LEN  (255 * 4) /* TotalAHSLength is in 4-byte words */
#define ISCSI_MAX_DSL	   0xffffff  /* 24-bit DataSegmentLength */
#define ISCSI_RSVD_TAG	   0xffffffffu
#define ISCSI_PAD(len)	   ((4 - ((len)&3)) & 3)

/* Opcodes (RFC 7143 11.2.1.2). Byte 0 also carries the I (immediate) bit. */
#define ISCSI_OP_IMMEDIATE  0x40
#define ISCSI_OP_MASK	    0x3f
#define ISCSI_OP_NOP_OUT    0x00
#define ISCSI_OP_SCSI_CMD   0x01
#define ISCSI_OP_TMF_REQ    0x02
#define ISCSI_OP_LOGIN_REQ  0x03
#define ISCSI_OP_TEXT_REQ   0x04
#define ISCSI_OP_DATA_OUT   0x05
#define ISCSI_OP_LOGOUT_REQ 0x06
#define ISCSI_OP_SNACK_REQ  0x10
#define ISCSI_OP_NOP_IN	    0x20
#define ISCSI_OP_SCSI_RSP   0x21
#define ISCSI_OP_TMF_RSP    0x22
#define ISCSI_OP_LOGIN_RSP  0x23
#define ISCSI_OP_TEXT_RSP   0x24
#define ISCSI_OP_DATA_IN    0x25
#define ISCSI_OP_LOGOUT_RSP 0x26
#define ISCSI_OP_R2T	    0x31
#define ISCSI_OP_ASYNC_MSG  0x32
#define ISCSI_OP_REJECT	    0x3f

/* The generic BHS (RFC 7143 11.2). */
struct iscsi_bhs {
	uint8_t opcode; /* I bit | opcode */
	uint8_t flags;	/* F bit and opcode-specific flags */
	uint8_t opspec[2];
	uint8_t total_ahs_len; /* in 4-byte words */
	uint8_t dlength[3];    /* DataSegmentLength, bytes, without padding */
	uint8_t lun[8];	       /* or opcode-specific */
	uint8_t itt[4];	       /* Initiator Task Tag */
	uint8_t opspec2[28];
};
_Static_assert(sizeof(struct iscsi_bhs) == ISCSI_BHS_LEN, "BHS is 48 bytes");

#define ISCSI_FLAG_FINAL 0x80

/* SCSI Command (11.3) */
#define ISCSI_CMD_READ	    0x40
#define ISCSI_CMD_WRITE	    0x20
#define ISCSI_CMD_ATTR_MASK 0x07
struct iscsi_bhs_scsi_cmd {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t exp_xfer_len[4];
	uint8_t cmdsn[4];
	uint8_t exp_statsn[4];
	uint8_t cdb[16];
};
_Static_assert(sizeof(struct iscsi_bhs_scsi_cmd) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* SCSI Response (11.4) */
#define ISCSI_RSP_BIDI_OVERFLOW	 0x10
#define ISCSI_RSP_BIDI_UNDERFLOW 0x08
#define ISCSI_RSP_OVERFLOW	 0x04
#define ISCSI_RSP_UNDERFLOW	 0x02
#define ISCSI_RSP_CMD_COMPLETED	 0x00
#define ISCSI_RSP_TARGET_FAILURE 0x01
struct iscsi_bhs_scsi_rsp {
	uint8_t opcode, flags, response, status;
	uint8_t total_ahs_len, dlength[3];
	uint8_t rsvd[8];
	uint8_t itt[4];
	uint8_t snack_tag[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t exp_datasn[4];
	uint8_t bidi_residual[4];
	uint8_t residual[4];
};
_Static_assert(sizeof(struct iscsi_bhs_scsi_rsp) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Task Management Function Request / Response (11.5, 11.6) */
#define ISCSI_TMF_ABORT_TASK	     1
#define ISCSI_TMF_ABORT_TASK_SET     2
#define ISCSI_TMF_CLEAR_ACA	     3
#define ISCSI_TMF_CLEAR_TASK_SET     4
#define ISCSI_TMF_LUN_RESET	     5
#define ISCSI_TMF_TARGET_WARM_RESET  6
#define ISCSI_TMF_TARGET_COLD_RESET  7
#define ISCSI_TMF_TASK_REASSIGN	     8
#define ISCSI_TMF_RSP_COMPLETE	     0
#define ISCSI_TMF_RSP_NO_TASK	     1
#define ISCSI_TMF_RSP_NO_LUN	     2
#define ISCSI_TMF_RSP_TASK_ALLEGIANT 3
#define ISCSI_TMF_RSP_NO_REASSIGN    4
#define ISCSI_TMF_RSP_NOT_SUPPORTED  5
#define ISCSI_TMF_RSP_AUTH_FAILED    6
#define ISCSI_TMF_RSP_REJECTED	     255
struct iscsi_bhs_tmf_req {
	uint8_t opcode, function, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t rtt[4]; /* Referenced Task Tag */
	uint8_t cmdsn[4];
	uint8_t exp_statsn[4];
	uint8_t refcmdsn[4];
	uint8_t exp_datasn[4];
	uint8_t rsvd2[8];
};
_Static_assert(sizeof(struct iscsi_bhs_tmf_req) == ISCSI_BHS_LEN, "BHS is 48 bytes");
struct iscsi_bhs_tmf_rsp {
	uint8_t opcode, flags, response, rsvd;
	uint8_t total_ahs_len, dlength[3];
	uint8_t rsvd2[8];
	uint8_t itt[4];
	uint8_t rsvd3[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t rsvd4[12];
};
_Static_assert(sizeof(struct iscsi_bhs_tmf_rsp) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* SCSI Data-Out / Data-In (11.7) */
#define ISCSI_DATA_ACK	     0x40 /* Data-In A bit */
#define ISCSI_DATA_OVERFLOW  0x04
#define ISCSI_DATA_UNDERFLOW 0x02
#define ISCSI_DATA_STATUS    0x01 /* Data-In S bit */
struct iscsi_bhs_data_out {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t ttt[4];
	uint8_t rsvd2[4];
	uint8_t exp_statsn[4];
	uint8_t rsvd3[4];
	uint8_t datasn[4];
	uint8_t buffer_offset[4];
	uint8_t rsvd4[4];
};
_Static_assert(sizeof(struct iscsi_bhs_data_out) == ISCSI_BHS_LEN, "BHS is 48 bytes");
struct iscsi_bhs_data_in {
	uint8_t opcode, flags, rsvd, status;
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t ttt[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t datasn[4];
	uint8_t buffer_offset[4];
	uint8_t residual[4];
};
_Static_assert(sizeof(struct iscsi_bhs_data_in) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Ready To Transfer (11.8) */
struct iscsi_bhs_r2t {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t ttt[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t r2tsn[4];
	uint8_t buffer_offset[4];
	uint8_t desired_len[4];
};
_Static_assert(sizeof(struct iscsi_bhs_r2t) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Asynchronous Message (11.9) */
#define ISCSI_ASYNC_SCSI_EVENT	    0
#define ISCSI_ASYNC_LOGOUT_REQUEST  1
#define ISCSI_ASYNC_DROP_CONNECTION 2
#define ISCSI_ASYNC_DROP_ALL	    3
#define ISCSI_ASYNC_RENEGOTIATE	    4
struct iscsi_bhs_async {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4]; /* 0xffffffff */
	uint8_t rsvd2[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t async_event, async_vcode;
	uint8_t param1[2], param2[2], param3[2];
	uint8_t rsvd3[4];
};
_Static_assert(sizeof(struct iscsi_bhs_async) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Text Request / Response (11.10, 11.11) */
#define ISCSI_TEXT_CONTINUE 0x40 /* C bit */
struct iscsi_bhs_text {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t ttt[4];
	uint8_t sn[4];	   /* CmdSN (request) / StatSN (response) */
	uint8_t exp_sn[4]; /* ExpStatSN (request) / ExpCmdSN (response) */
	uint8_t max_cmdsn[4];
	uint8_t rsvd2[12];
};
_Static_assert(sizeof(struct iscsi_bhs_text) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Login Request / Response (11.12, 11.13) */
#define ISCSI_LOGIN_TRANSIT	 0x80 /* T bit */
#define ISCSI_LOGIN_CONTINUE	 0x40 /* C bit */
#define ISCSI_LOGIN_CSG_MASK	 0x0c
#define ISCSI_LOGIN_CSG_SHIFT	 2
#define ISCSI_LOGIN_NSG_MASK	 0x03
#define ISCSI_STAGE_SECURITY	 0
#define ISCSI_STAGE_OPERATIONAL	 1
#define ISCSI_STAGE_FULL_FEATURE 3
#define ISCSI_VERSION		 0x00
struct iscsi_bhs_login_req {
	uint8_t opcode, flags, version_max, version_min;
	uint8_t total_ahs_len, dlength[3];
	uint8_t isid[6];
	uint8_t tsih[2];
	uint8_t itt[4];
	uint8_t cid[2];
	uint8_t rsvd[2];
	uint8_t cmdsn[4];
	uint8_t exp_statsn[4];
	uint8_t rsvd2[16];
};
_Static_assert(sizeof(struct iscsi_bhs_login_req) == ISCSI_BHS_LEN, "BHS is 48 bytes");
struct iscsi_bhs_login_rsp {
	uint8_t opcode, flags, version_max, version_active;
	uint8_t total_ahs_len, dlength[3];
	uint8_t isid[6];
	uint8_t tsih[2];
	uint8_t itt[4];
	uint8_t rsvd[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t status_class, status_detail;
	uint8_t rsvd2[10];
};
_Static_assert(sizeof(struct iscsi_bhs_login_rsp) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Login status (11.13.5): class << 8 | detail */
#define ISCSI_LOGIN_STATUS(c, d)	 (((c) << 8) | (d))
#define ISCSI_LS_SUCCESS		 0x0000
#define ISCSI_LS_TARGET_MOVED_TEMP	 0x0101
#define ISCSI_LS_TARGET_MOVED_PERM	 0x0102
#define ISCSI_LS_INITIATOR_ERROR	 0x0200
#define ISCSI_LS_AUTH_FAILED		 0x0201
#define ISCSI_LS_AUTHZ_FAILED		 0x0202
#define ISCSI_LS_NOT_FOUND		 0x0203
#define ISCSI_LS_TARGET_REMOVED		 0x0204
#define ISCSI_LS_UNSUPPORTED_VERSION	 0x0205
#define ISCSI_LS_TOO_MANY_CONNECTIONS	 0x0206
#define ISCSI_LS_MISSING_PARAMETER	 0x0207
#define ISCSI_LS_CANT_INCLUDE_IN_SESSION 0x0208
#define ISCSI_LS_SESSION_TYPE_UNSUPP	 0x0209
#define ISCSI_LS_SESSION_DOES_NOT_EXIST	 0x020a
#define ISCSI_LS_INVALID_DURING_LOGIN	 0x020b
#define ISCSI_LS_TARGET_ERROR		 0x0300
#define ISCSI_LS_SERVICE_UNAVAILABLE	 0x0301
#define ISCSI_LS_OUT_OF_RESOURCES	 0x0302

/* Logout Request / Response (11.14, 11.15) */
#define ISCSI_LOGOUT_CLOSE_SESSION    0
#define ISCSI_LOGOUT_CLOSE_CONNECTION 1
#define ISCSI_LOGOUT_REMOVE_FOR_RECOV 2
#define ISCSI_LOGOUT_REASON_MASK      0x7f
struct iscsi_bhs_logout_req {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t rsvd2[8];
	uint8_t itt[4];
	uint8_t cid[2];
	uint8_t rsvd3[2];
	uint8_t cmdsn[4];
	uint8_t exp_statsn[4];
	uint8_t rsvd4[16];
};
_Static_assert(sizeof(struct iscsi_bhs_logout_req) == ISCSI_BHS_LEN, "BHS is 48 bytes");
struct iscsi_bhs_logout_rsp {
	uint8_t opcode, flags, response, rsvd;
	uint8_t total_ahs_len, dlength[3];
	uint8_t rsvd2[8];
	uint8_t itt[4];
	uint8_t rsvd3[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t rsvd4[4];
	uint8_t time2wait[2];
	uint8_t time2retain[2];
	uint8_t rsvd5[4];
};
_Static_assert(sizeof(struct iscsi_bhs_logout_rsp) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* Reject (11.17) */
#define ISCSI_REJECT_DATA_DIGEST	0x02
#define ISCSI_REJECT_SNACK		0x03
#define ISCSI_REJECT_PROTOCOL_ERROR	0x04
#define ISCSI_REJECT_CMD_NOT_SUPPORTED	0x05
#define ISCSI_REJECT_IMMEDIATE_CMD	0x06
#define ISCSI_REJECT_TASK_IN_PROGRESS	0x07
#define ISCSI_REJECT_INVALID_DATA_ACK	0x08
#define ISCSI_REJECT_INVALID_PDU_FIELD	0x09
#define ISCSI_REJECT_OUT_OF_RESOURCES	0x0a
#define ISCSI_REJECT_NEGOTIATION_RESET	0x0b
#define ISCSI_REJECT_WAITING_FOR_LOGOUT 0x0c
struct iscsi_bhs_reject {
	uint8_t opcode, flags, reason, rsvd;
	uint8_t total_ahs_len, dlength[3];
	uint8_t rsvd2[8];
	uint8_t itt[4]; /* 0xffffffff */
	uint8_t rsvd3[4];
	uint8_t statsn[4];
	uint8_t exp_cmdsn[4];
	uint8_t max_cmdsn[4];
	uint8_t datasn[4];
	uint8_t rsvd4[8];
};
_Static_assert(sizeof(struct iscsi_bhs_reject) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* NOP-Out / NOP-In (11.18, 11.19) */
struct iscsi_bhs_nop {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t ttt[4];
	uint8_t sn[4];	   /* CmdSN (out) / StatSN (in) */
	uint8_t exp_sn[4]; /* ExpStatSN (out) / ExpCmdSN (in) */
	uint8_t max_cmdsn[4];
	uint8_t rsvd2[12];
};
_Static_assert(sizeof(struct iscsi_bhs_nop) == ISCSI_BHS_LEN, "BHS is 48 bytes");

/* SNACK Request (11.16); rejected at ErrorRecoveryLevel 0 */
struct iscsi_bhs_snack {
	uint8_t opcode, flags, rsvd[2];
	uint8_t total_ahs_len, dlength[3];
	uint8_t lun[8];
	uint8_t itt[4];
	uint8_t ttt[4];
	uint8_t rsvd2[4];
	uint8_t exp_statsn[4];
	uint8_t rsvd3[8];
	uint8_t begrun[4];
	uint8_t runlength[4];
};
_Static_assert(sizeof(struct iscsi_bhs_snack) == ISCSI_BHS_LEN, "BHS is 48 bytes");

#endif /* VMENGINE_ISCSI_PROTO_H */
