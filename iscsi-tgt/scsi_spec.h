/*
 * SCSI wire constants (SAM-5, SPC-4, SBC-3): status codes, sense keys,
 * additional sense codes and operation codes. No logic here.
 */
#ifndef VMENGINE_SCSI_SPEC_H
#define VMENGINE_SCSI_SPEC_H

/* SAM status */
#define SAM_STAT_GOOD			0x00
#define SAM_STAT_CHECK_CONDITION	0x02
#define SAM_STAT_CONDITION_MET		0x04
#define SAM_STAT_BUSY			0x08
#define SAM_STAT_RESERVATION_CONFLICT	0x18
#define SAM_STAT_TASK_SET_FULL		0x28
#define SAM_STAT_ACA_ACTIVE		0x30
#define SAM_STAT_TASK_ABORTED		0x40

/* Sense keys */
#define SK_NO_SENSE		0x0
#define SK_RECOVERED_ERROR	0x1
#define SK_NOT_READY		0x2
#define SK_MEDIUM_ERROR		0x3
#define SK_HARDWARE_ERROR	0x4
#define SK_ILLEGAL_REQUEST	0x5
#define SK_UNIT_ATTENTION	0x6
#define SK_DATA_PROTECT		0x7
#define SK_BLANK_CHECK		0x8
#define SK_COPY_ABORTED		0xa
#define SK_ABORTED_COMMAND	0xb
#define SK_MISCOMPARE		0xe

#endif /* VMENGINE_SCSI_SPEC_H */
