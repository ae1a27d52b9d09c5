/*
 * Sense data and unit attentions of the SCSI device server: fixed and
 * descriptor sense formats (SPC-4 4.5), the CHECK CONDITION helpers the
 * handlers use, the errno-to-sense mapping for volume errors, and raising
 * and reporting unit attention conditions (SAM-5 5.14, SPC-4 5.14).
 */
#define UTIL_LOG_TAG "scsi"

#include <errno.h>
#include <string.h>

#include "iscsi-tgt/scsi_internal.h"

/* ASC/ASCQ of each enum tgt_ua, in the enum's (priority) order. */
static const uint16_t sense_ua_codes[TGT_UA_COUNT] = {
    [TGT_UA_POWER_ON] = ASC_POWER_ON_OCCURRED,
    [TGT_UA_RESET] = ASC_POWER_ON_RESET_OCCURRED,
    [TGT_UA_LUN_RESET] = ASC_BUS_DEVICE_RESET_OCCURRED,
    [TGT_UA_NEXUS_LOSS] = ASC_I_T_NEXUS_LOSS_OCCURRED,
    [TGT_UA_MODE_CHANGED] = ASC_MODE_PARAMETERS_CHANGED,
    [TGT_UA_RESV_PREEMPTED] = ASC_RESERVATIONS_PREEMPTED,
    [TGT_UA_RESV_RELEASED] = ASC_RESERVATIONS_RELEASED,
    [TGT_UA_REG_PREEMPTED] = ASC_REGISTRATIONS_PREEMPTED,
    [TGT_UA_CAPACITY_CHANGED] = ASC_CAPACITY_DATA_HAS_CHANGED,
    [TGT_UA_LUNS_CHANGED] = ASC_REPORTED_LUNS_DATA_HAS_CHANGED,
};

uint8_t tgt_scsi_sense_build(uint8_t *buf, bool desc, const struct tgt_sense_args *a)
{
	uint8_t len;

	if (!desc) {
		/*
		 * SPC-4 4.5.3 fixed format: 18 bytes, ADDITIONAL SENSE LENGTH
		 * 10. INFORMATION is 4 bytes; "if the information does not
		 * fit, the VALID bit shall be set to zero".
		 */
		memset(buf, 0, SENSE_FIXED_LEN);
		buf[0] = SENSE_FIXED_CURRENT;
		buf[2] = a->key & 0x0f;
		if (a->info_valid && a->info <= UINT32_MAX) {
			buf[0] |= SENSE_FIXED_VALID;
			put_be32(buf + 3, (uint32_t)a->info);
		}
		buf[7] = SENSE_FIXED_LEN - 8;
		buf[12] = (uint8_t)(a->code >> 8);
		buf[13] = (uint8_t)a->code;
		if (a->sks_valid)
			memcpy(buf + 15, a->sks, 3);
		return SENSE_FIXED_LEN;
	}

	/*
	 * SPC-4 4.5.2 descriptor format: 8-byte header, then the
	 * information descriptor (type 00h, 12 bytes) and the sense-key
	 * specific descriptor (type 02h, 8 bytes) when present.
	 */
	memset(buf, 0, 8);
	buf[0] = SENSE_DESC_CURRENT;
	buf[1] = a->key & 0x0f;
	buf[2] = (uint8_t)(a->code >> 8);
	buf[3] = (uint8_t)a->code;
	len = 8;
	if (a->info_valid) {
		memset(buf + len, 0, 12);
		buf[len] = SENSE_DESC_INFORMATION;
		buf[len + 1] = 0x0a;
		buf[len + 2] = 0x80; /* VALID */
		put_be64(buf + len + 4, a->info);
		len += 12;
	}
	if (a->sks_valid) {
		memset(buf + len, 0, 8);
		buf[len] = SENSE_DESC_SKS;
		buf[len + 1] = 0x06;
		memcpy(buf + len + 4, a->sks, 3);
		len += 8;
	}
	buf[7] = len - 8;
	return len;
}

/* The format the task's LU asks for: the Control mode page's D_SENSE. */
static bool sense_desc(const struct tgt_task *t)
{
	return t->lu != NULL && atomic_load_explicit(&t->lu->d_sense, memory_order_relaxed);
}

static void sense_set(struct tgt_task *t, const struct tgt_sense_args *a)
{
	t->status = SAM_STAT_CHECK_CONDITION;
	t->data_len = 0;
	t->sense_len = tgt_scsi_sense_build(t->sense, sense_desc(t), a);
}

void tgt_scsi_fail(struct tgt_task *t, uint8_t key, uint16_t code)
{
	struct tgt_sense_args a = {.key = key, .code = code};

	sense_set(t, &a);
}

void tgt_task_sense(struct tgt_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
	tgt_scsi_fail(t, key, (uint16_t)(asc << 8 | ascq));
}

void tgt_task_sense_info(struct tgt_task *t, uint8_t key, uint8_t asc, uint8_t ascq, uint64_t info)
{
	struct tgt_sense_args a = {
	    .key = key,
	    .code = (uint16_t)(asc << 8 | ascq),
	    .info_valid = true,
	    .info = info,
	};

	sense_set(t, &a);
}

void tgt_scsi_fail_field(struct tgt_task *t, uint16_t code, bool cdb, uint16_t byte, int bit)
{
	/*
	 * SPC-4 4.5.2.4.2 field pointer sense-key specific data: SKSV, C/D
	 * (1: the error is in the CDB, 0: in the parameter list), BPV and
	 * BIT POINTER, then the FIELD POINTER byte offset.
	 */
	struct tgt_sense_args a = {
	    .key = SK_ILLEGAL_REQUEST,
	    .code = code,
	    .sks_valid = true,
	};

	a.sks[0] = SENSE_SKSV;
	if (cdb)
		a.sks[0] |= SENSE_SKS_CD;
	if (bit >= 0 && bit <= 7)
		a.sks[0] |= SENSE_SKS_BPV | (uint8_t)bit;
	put_be16(a.sks + 1, byte);
	sense_set(t, &a);
}

void tgt_task_invalid_field(struct tgt_task *t, uint16_t byte, int bit)
{
	tgt_scsi_fail_field(t, ASC_INVALID_FIELD_IN_CDB, true, byte, bit);
}

void tgt_task_errno(struct tgt_task *t, int err)
{
	bool reading = t->io.op == VOL_OP_READ;

	switch (err) {
	case -EINVAL:
		/* vol refuses a range beyond the volume (a resize raced us). */
		tgt_scsi_fail(t, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		break;
	case -ENOSPC:
		/*
		 * SBC-3 4.7.3.6: a write that cannot be given space reports
		 * DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT, which
		 * hosts (VMware, Linux dm-thin users) understand as "out of
		 * space" rather than a failing disk.
		 */
		tgt_scsi_fail(t, SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT);
		break;
	case -EIO:
	case -ENODATA:
		tgt_scsi_fail(t, SK_MEDIUM_ERROR,
			      reading ? ASC_UNRECOVERED_READ_ERROR : ASC_WRITE_ERROR);
		break;
	case -ENOMEM:
	case -EAGAIN:
		/*
		 * A transient shortage of our own resources: SAM-5 5.3.1
		 * BUSY makes the initiator retry later, no sense data.
		 */
		t->status = SAM_STAT_BUSY;
		t->sense_len = 0;
		t->data_len = 0;
		break;
	default:
		tgt_scsi_fail(t, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		break;
	}
}

/* ---- unit attentions ---- */

void tgt_lu_ua_raise(struct tgt_lu *lu, enum tgt_ua ua, struct tgt_itl *except)
{
	struct tgt_itl *itl;

	if ((unsigned)ua >= TGT_UA_COUNT)
		return;
	pthread_mutex_lock(&lu->lock);
	LIST_FOREACH (itl, &lu->itls, lu_link) {
		if (itl != except)
			atomic_fetch_or(&itl->ua, 1u << ua);
	}
	pthread_mutex_unlock(&lu->lock);
}

bool tgt_scsi_ua_take(struct tgt_itl *itl, uint16_t *code)
{
	unsigned pending = atomic_load(&itl->ua);
	unsigned ua;

	if (pending == 0)
		return false;
	/*
	 * SAM-5 5.14: when several unit attention conditions are pending,
	 * one is reported per command; enum tgt_ua is ordered by priority, so
	 * the lowest set bit goes first. Only the owner thread clears bits,
	 * so the bit found is still set when it is cleared.
	 */
	ua = (unsigned)__builtin_ctz(pending);
	atomic_fetch_and(&itl->ua, ~(1u << ua));
	if (ua >= TGT_UA_COUNT) {
		/* Not a condition we know: dropped, report nothing for it. */
		return tgt_scsi_ua_take(itl, code);
	}
	*code = sense_ua_codes[ua];
	return true;
}
