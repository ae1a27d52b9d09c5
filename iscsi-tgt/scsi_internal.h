/*
 * The SCSI device server's private declarations, shared by the scsi_*.c
 * files of iscsi-tgt/ only: the command table entry, the per-command
 * handlers the table points at, and sense helpers.
 *
 * Everything here runs on the reactor thread that owns the task.
 */
#ifndef VMENGINE_SCSI_INTERNAL_H
#define VMENGINE_SCSI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi-tgt/tgt_internal.h"

/* ---- the command table (scsi_table.c) ---- */

/* Entry flags. */
#define TGT_SCSI_F_NO_LUN	   0x0001 /* runs without a logical unit (INQUIRY, REPORT LUNS) */
#define TGT_SCSI_F_NO_UA	   0x0002 /* neither reports nor clears a unit attention */
#define TGT_SCSI_F_OK_ON_STANDBY   0x0004 /* HA: allowed on a standby (non-owner) engine */
#define TGT_SCSI_F_OK_ON_SECONDARY 0x0008 /* HA: allowed on the partner engine */
#define TGT_SCSI_F_ALLOW_ON_RESV   0x0010 /* allowed under another nexus' reservation */
#define TGT_SCSI_F_SA		   0x0020 /* has a service action in byte 1 bits 4..0 */
/* Reservations (scsi_pr.c, SPC-4 5.12.1 table 56 / SBC-3 4.17 table 13): */
#define TGT_SCSI_F_RESV_READ 0x1000 /* reads the medium: allowed under Write Exclusive */
#define TGT_SCSI_F_SPC2_OK   0x2000 /* allowed under another nexus' RESERVE(6/10) */
/* Writes the medium: refused while the Control page's SWP is set (SPC-4 7.5.8). */
#define TGT_SCSI_F_WRITES 0x4000

/*
 * The longest parameter data an IN command returns (a VPD page, READ FULL
 * STATUS with every registration, GET LBA STATUS descriptors): allocation
 * lengths above it are cut to it in tgt_scsi_prepare().
 */
#define TGT_SCSI_IN_MAX 65536u

/*
 * Decode what the table cannot: set dir/xfer_len/lba/nblocks, check
 * ranges. Returns 0 to go on, 1 when the task is complete (status and
 * sense set, tgt_task_done() not called).
 */
typedef int (*tgt_scsi_prep_fn)(struct tgt_task *t);
/* Run a prepared task; calls tgt_task_done() exactly once, now or later. */
typedef void (*tgt_scsi_exec_fn)(struct tgt_task *t);

/*
 * One operation (or one service action of an operation). Modelled on
 * FreeBSD CTL's ctl_cmd_entry: the checks every command shares are data.
 */
struct tgt_scsi_cmd {
	const char *name;
	tgt_scsi_prep_fn prep; /* NULL: dir from the entry, xfer_len from len_off */
	tgt_scsi_exec_fn exec; /* NULL: not supported */
	/* service-action opcodes: the sub-table, searched by byte 1 & 0x1f */
	const struct tgt_scsi_cmd *sa_table;
	uint8_t n_sa;
	uint8_t opcode;
	uint8_t sa;
	uint8_t dir;	  /* enum tgt_dir */
	uint8_t cdb_len;  /* 6, 10, 12, 16 */
	uint8_t len_off;  /* allocation / parameter list length: byte offset, 0: none */
	uint8_t len_size; /* and size in bytes (1, 2, 4) */
	uint16_t flags;
	/*
	 * Usage map (SPC-4 6.35.3 CDB USAGE DATA): bit set = the bit may be
	 * set in the CDB. usage[0] is the opcode, usage[1] carries the service
	 * action for TGT_SCSI_F_SA entries. A set bit outside the map is
	 * ILLEGAL REQUEST / INVALID FIELD IN CDB pointing at it.
	 */
	uint8_t usage[16];
};

/* The entry for the CDB's opcode (and service action), or NULL. */
const struct tgt_scsi_cmd *tgt_scsi_lookup(const uint8_t *cdb);

/* ---- handlers (scsi_spc.c) ---- */
void tgt_spc_test_unit_ready(struct tgt_task *t);
void tgt_spc_request_sense(struct tgt_task *t);
void tgt_spc_inquiry(struct tgt_task *t);
void tgt_spc_report_luns(struct tgt_task *t);
int tgt_spc_report_luns_prep(struct tgt_task *t);
void tgt_spc_mode_sense(struct tgt_task *t);
void tgt_spc_mode_select(struct tgt_task *t);
int tgt_spc_mode_select_prep(struct tgt_task *t);
/* table-driven reports (scsi_table.c) */
void tgt_spc_report_opcodes(struct tgt_task *t);
void tgt_spc_report_tmfs(struct tgt_task *t);

/* ---- handlers (scsi_sbc.c) ---- */
int tgt_sbc_rw_prep(struct tgt_task *t);
void tgt_sbc_rw(struct tgt_task *t);
int tgt_sbc_verify_prep(struct tgt_task *t);
void tgt_sbc_verify(struct tgt_task *t);
int tgt_sbc_write_verify_prep(struct tgt_task *t);
void tgt_sbc_write_verify(struct tgt_task *t);
int tgt_sbc_prefetch_prep(struct tgt_task *t);
void tgt_sbc_prefetch(struct tgt_task *t);
int tgt_sbc_sync_prep(struct tgt_task *t);
void tgt_sbc_sync(struct tgt_task *t);
int tgt_sbc_read_capacity10_prep(struct tgt_task *t);
void tgt_sbc_read_capacity10(struct tgt_task *t);
void tgt_sbc_read_capacity16(struct tgt_task *t);
void tgt_sbc_start_stop(struct tgt_task *t);
/* Capacity of the task's LU in logical blocks. */
uint64_t tgt_sbc_nblocks(const struct tgt_lu *lu);

/* ---- logical block provisioning (scsi_lbp.c) ---- */
int tgt_lbp_unmap_prep(struct tgt_task *t);
void tgt_lbp_unmap(struct tgt_task *t);
int tgt_lbp_write_same_prep(struct tgt_task *t);
void tgt_lbp_write_same(struct tgt_task *t);
int tgt_lbp_get_lba_status_prep(struct tgt_task *t);
void tgt_lbp_get_lba_status(struct tgt_task *t);
/* What READ CAPACITY(16) and the VPD pages report (bytes 13..15 of RC16 data). */
void tgt_lbp_read_capacity16(const struct tgt_task *t, uint8_t *buf);
/* Block Limits VPD fields of UNMAP, WRITE SAME, COMPARE AND WRITE, WRITE ATOMIC. */
void tgt_lbp_block_limits(const struct tgt_task *t, uint8_t *page);
/* Logical Block Provisioning VPD page (B2h) into \p page; returns its length. */
uint32_t tgt_lbp_vpd_b2(const struct tgt_task *t, uint8_t *page);

/* ---- atomic writes and the write gate (scsi_caw.c) ---- */
int tgt_caw_prep(struct tgt_task *t);
void tgt_caw(struct tgt_task *t);
int tgt_orwrite_prep(struct tgt_task *t);
void tgt_orwrite(struct tgt_task *t);
int tgt_write_atomic_prep(struct tgt_task *t);
void tgt_write_atomic(struct tgt_task *t);
/*
 * The write gate of the task's LU. tgt_gate_write() before a write is
 * submitted, tgt_gate_excl() before an atomic command reads: 0 go on, 1 the
 * task is queued and its exec handler will be called again on its own
 * thread once admitted. tgt_gate_end() when its writes are complete (a
 * no-op for a task that holds nothing).
 */
int tgt_gate_write(struct tgt_task *t);
int tgt_gate_excl(struct tgt_task *t);
void tgt_gate_end(struct tgt_task *t);

/* ---- media commands (scsi_media.c) ---- */
int tgt_sanitize_prep(struct tgt_task *t);
void tgt_sanitize(struct tgt_task *t);
int tgt_format_unit_prep(struct tgt_task *t);
void tgt_format_unit(struct tgt_task *t);
int tgt_read_defect_prep(struct tgt_task *t);
void tgt_read_defect(struct tgt_task *t);
/*
 * SBC-3 4.11, 5.3: while a SANITIZE or FORMAT UNIT runs, commands fail NOT
 * READY; 1 when \p t failed so.
 */
int tgt_media_check(struct tgt_task *t);
struct tgt_sense_args;
/*
 * REQUEST SENSE while a sanitize or format runs (SBC-3 4.11.2, 5.3): fills
 * \p a with NOT READY / SANITIZE (or FORMAT) IN PROGRESS and the progress
 * indication; false when none runs.
 */
bool tgt_media_sense(const struct tgt_lu *lu, struct tgt_sense_args *a);

/* ---- third-party copy (scsi_xcopy.c) ---- */
int tgt_xcopy_prep(struct tgt_task *t);
void tgt_xcopy(struct tgt_task *t);
void tgt_xcopy_copy_status(struct tgt_task *t);
void tgt_xcopy_op_params(struct tgt_task *t);

/* ---- sense (scsi_sense.c) ---- */

/* What goes into one sense data buffer. */
struct tgt_sense_args {
	uint8_t key;
	uint16_t code; /* ASC << 8 | ASCQ */
	bool info_valid;
	uint64_t info;
	bool sks_valid;
	uint8_t sks[3]; /* sense-key specific bytes, SKSV included */
};

/*
 * Build sense data into \p buf (at least TGT_SENSE_MAX bytes): fixed format
 * (0x70) or, when \p desc, descriptor format (0x72). Returns its length.
 */
uint8_t tgt_scsi_sense_build(uint8_t *buf, bool desc, const struct tgt_sense_args *a);
/* CHECK CONDITION with \p key and \p code (ASC << 8 | ASCQ). */
void tgt_scsi_fail(struct tgt_task *t, uint8_t key, uint16_t code);
/*
 * ILLEGAL REQUEST with \p code and a field pointer at \p byte / \p bit
 * (bit < 0: whole byte) in the CDB (\p cdb) or the parameter list.
 */
void tgt_scsi_fail_field(struct tgt_task *t, uint16_t code, bool cdb, uint16_t byte, int bit);
/*
 * Take the highest-priority pending unit attention of \p itl: clears its bit
 * and returns its ASC/ASCQ, or returns false when none is pending. Owner
 * thread of the nexus only.
 */
bool tgt_scsi_ua_take(struct tgt_itl *itl, uint16_t *code);

/* ---- reservations (scsi_pr.c) ---- */

/*
 * Whether \p t (command \p cmd) conflicts with a reservation of another
 * nexus: returns 1 with RESERVATION CONFLICT set, else 0. Lock-free when the
 * LU has no registration or reservation.
 */
int tgt_pr_check(struct tgt_task *t, const struct tgt_scsi_cmd *cmd);
void tgt_pr_in(struct tgt_task *t);
int tgt_pr_out_prep(struct tgt_task *t);
void tgt_pr_out(struct tgt_task *t);
void tgt_pr_reserve(struct tgt_task *t);
void tgt_pr_release(struct tgt_task *t);
/* Durable files (scsi_pr_store.c): atomic replace with fsyncs; 0 or -errno (logged). */
#define TGT_PR_PATH_MAX	 1200
#define TGT_PR_STORE_MAX (1 << 20)
int tgt_pr_store_save(const char *path, const char *text, size_t len);
int tgt_pr_store_remove(const char *path);
/* *text: malloc'd, NUL-terminated; -ENOENT when there is no file. */
int tgt_pr_store_load(const char *path, char **text);

/* ---- small helpers shared by the handlers ---- */

/* Complete with GOOD status. */
static inline void tgt_scsi_good(struct tgt_task *t)
{
	t->status = SAM_STAT_GOOD;
	t->sense_len = 0;
	tgt_task_done(t);
}

/*
 * Complete an IN command whose full parameter data is \p data / \p len:
 * SPC-4 4.2.5.6: the data is truncated to the allocation length.
 */
static inline void tgt_scsi_data_in(struct tgt_task *t, const void *data, uint32_t len)
{
	uint32_t n = UTIL_MIN(len, t->xfer_len);

	if (n > 0)
		memcpy(t->buf, data, n);
	t->data_len = n;
	tgt_scsi_good(t);
}

/* The engine services for task \p t (struct tgt_scsi_ops, from its LU), or NULL. */
static inline const struct tgt_scsi_ops *tgt_scsi_ops_of(const struct tgt_task *t)
{
	return t->lu != NULL ? t->lu->scsi_ops : NULL;
}

#endif /* VMENGINE_SCSI_INTERNAL_H */
