/*
 * scsi_pr_ut.c: reservations (scsi_pr.c, scsi_pr_store.c): PERSISTENT
 * RESERVE IN/OUT service actions, the six reservation types and which
 * commands conflict under each, unit attentions to the other nexuses,
 * SPEC_I_PT and REGISTER AND MOVE TransportIDs, APTPL persistence through
 * a reload, and SPC-2 RESERVE/RELEASE with nexus loss and resets.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scsi_fixture.h"
/* scsi_pr*.c log under their own tag */
#undef UTIL_LOG_TAG
#include "iscsi-tgt/scsi_pr.c"
#include "iscsi-tgt/scsi_pr_store.c"

#define N0_NAME "iqn.2024-01.org.test:host0"
#define N1_NAME "iqn.2024-01.org.test:host1"
#define K0	0x1111222233334444ull
#define K1	0x5555666677778888ull

static struct tgt_session fx_s0, fx_s1;
static char fx_dir[64];

static void pr_setup(void)
{
	fixture_reset();
	tgt_pr_lu_free(&fx_target.lu);
	memset(&fx_s0, 0, sizeof(fx_s0));
	memset(&fx_s1, 0, sizeof(fx_s1));
	snprintf(fx_s0.params.initiator_name, ISCSI_NAME_MAX, "%s", N0_NAME);
	snprintf(fx_s1.params.initiator_name, ISCSI_NAME_MAX, "%s", N1_NAME);
	memcpy(fx_s0.isid, "\x80\x00\x00\x00\x00\x01", 6);
	memcpy(fx_s1.isid, "\x80\x00\x00\x00\x00\x02", 6);
	fx_s0.tsih = 1;
	fx_s1.tsih = 2;
	fx_itl0.sess = &fx_s0;
	fx_itl1.sess = &fx_s1;
}

/* Run \p cdb as nexus \p itl (fixture_run_ex() always uses fx_itl0). */
static int run_as(struct tgt_itl *itl, const uint8_t *cdb, const void *out, uint32_t out_len)
{
	int rc;

	fixture_task(cdb, 16, false);
	fx_t.itl = itl;
	rc = tgt_scsi_prepare(&fx_t);
	if (rc != 0)
		return rc;
	fx_buf = malloc(fx_t.xfer_len ? fx_t.xfer_len : 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_buf);
	if (fx_t.dir == TGT_DIR_OUT && out != NULL)
		memcpy(fx_buf, out, UTIL_MIN(out_len, fx_t.xfer_len));
	fx_t.buf = fx_buf;
	fx_t.buf_len = fx_t.xfer_len;
	tgt_scsi_execute(&fx_t);
	fixture_drain();
	CU_ASSERT_EQUAL(fx_done, 1);
	return rc;
}

static uint8_t fx_status_of(void)
{
	return fx_t.status;
}

static void prout_ex(struct tgt_itl *itl, uint8_t sa, uint8_t type, const uint8_t *p, uint32_t len)
{
	uint8_t cdb[16] = {SCSI_OP_PERSISTENT_RESERVE_OUT, sa, type};

	put_be32(cdb + 5, len);
	run_as(itl, cdb, p, len);
}

/* PR OUT with the basic 24-byte parameter list. */
static uint8_t prout(struct tgt_itl *itl, uint8_t sa, uint8_t type, uint64_t rk, uint64_t sark,
		     uint8_t flags)
{
	uint8_t p[PROUT_BASIC_LEN] = {0};

	put_be64(p, rk);
	put_be64(p + 8, sark);
	p[20] = flags;
	prout_ex(itl, sa, type, p, sizeof(p));
	return fx_status_of();
}

/* PR IN into fx_buf; returns the data length. */
static uint32_t prin(struct tgt_itl *itl, uint8_t sa)
{
	uint8_t cdb[16] = {SCSI_OP_PERSISTENT_RESERVE_IN, sa};

	put_be16(cdb + 7, 4096);
	run_as(itl, cdb, NULL, 0);
	CU_ASSERT(fx_good());
	return fx_t.data_len;
}

static uint8_t rw_as(struct tgt_itl *itl, uint8_t op)
{
	uint8_t cdb[16] = {op, 0, 0, 0, 0, 1, 0, 0, 1};
	uint8_t block[FX_BS] = {0};

	run_as(itl, cdb, block, sizeof(block));
	return fx_t.status;
}

static bool ua_pending(struct tgt_itl *itl, enum tgt_ua ua)
{
	return (atomic_load(&itl->ua) & (1u << ua)) != 0;
}

/* ---- PERSISTENT RESERVE IN ---- */

static void test_prin_empty(void)
{
	uint8_t cdb[16] = {SCSI_OP_PERSISTENT_RESERVE_IN, 0x04};

	pr_setup();
	CU_ASSERT_EQUAL(prin(&fx_itl0, PRIN_READ_KEYS), 8);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 0);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 4), 0);
	CU_ASSERT_EQUAL(prin(&fx_itl0, PRIN_READ_RESERVATION), 8);
	CU_ASSERT_EQUAL(prin(&fx_itl0, PRIN_REPORT_CAPABILITIES), 8);
	CU_ASSERT_EQUAL(get_be16(fx_buf), 8);
	CU_ASSERT_EQUAL(fx_buf[2] & PRCAP_PTPL_C, 0); /* no state directory */
	CU_ASSERT(fx_buf[2] & PRCAP_SIP_C);
	CU_ASSERT_EQUAL(fx_buf[4], 0xea);
	CU_ASSERT_EQUAL(fx_buf[5], 0x01);
	/* service actions 04h-1Fh do not exist */
	CU_ASSERT_EQUAL(run_as(&fx_itl0, cdb, NULL, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	/* nothing reserved: the data path does not take the lock */
	CU_ASSERT_EQUAL(fixture_run((uint8_t[16]){SCSI_OP_TEST_UNIT_READY}, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED);
}

static void test_read_keys_truncated(void)
{
	uint8_t cdb[16] = {SCSI_OP_PERSISTENT_RESERVE_IN, PRIN_READ_KEYS};

	pr_setup();
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_REGISTER_AND_IGNORE, 0, 99, K1, 0), SAM_STAT_GOOD);
	put_be16(cdb + 7, 12);
	run_as(&fx_itl0, cdb, NULL, 0);
	/* SPC-4 4.2.5.6: truncated data, the full ADDITIONAL LENGTH */
	CU_ASSERT_EQUAL(fx_t.data_len, 12);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 2);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 4), 16);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 8), (uint32_t)(K0 >> 32));
}

/* ---- REGISTER ---- */

static void test_register(void)
{
	pr_setup();
	/* not registered: a non-zero RESERVATION KEY conflicts */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, 5, K0, 0),
			SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0), SAM_STAT_GOOD);
	/* registered: the key must match, then SARK replaces it */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, K1, K1, 0),
			SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, K0, K1, 0), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 16);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 2); /* two generations */
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K1);
	/* unregister; REGISTER AND IGNORE does not look at the key */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER_AND_IGNORE, 0, 77, 0, 0), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 8);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 3);
}

static void test_param_list_length(void)
{
	uint8_t p[PROUT_BASIC_LEN + 4] = {0};

	pr_setup();
	prout_ex(&fx_itl0, PROUT_REGISTER, 0, p, 23);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	prout_ex(&fx_itl0, PROUT_REGISTER, 0, p, 28); /* 28 without SPEC_I_PT */
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	/* APTPL without a state directory: PTPL_C is zero */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, PROUT_APTPL),
			SAM_STAT_CHECK_CONDITION);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
}

/* ---- RESERVE / RELEASE and access ---- */

static void test_write_exclusive(void)
{
	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	/* an unregistered nexus cannot reserve */
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_RESERVE, PR_TYPE_WR_EX, K1, 0, 0),
			SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RESERVE, 9, K0, 0, 0), SAM_STAT_CHECK_CONDITION);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, 3, 2)); /* the TYPE field */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_WR_EX, K0, 0, 0), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED | TGT_RESV_ACTIVE);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K0);
	CU_ASSERT_EQUAL(fx_buf[21], PR_TYPE_WR_EX);
	/* the holder does anything; others read but do not write */
	CU_ASSERT_EQUAL(rw_as(&fx_itl0, SCSI_OP_WRITE_10), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_READ_10), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_WRITE_10), SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(fx_t.sense_len, 0);
	/* a different type from the holder conflicts; RELEASE must name the type */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_EX_AC, K0, 0, 0),
			SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RELEASE, PR_TYPE_EX_AC, K0, 0, 0),
			SAM_STAT_CHECK_CONDITION);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_RELEASE_OF_PR));
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RELEASE, PR_TYPE_WR_EX, K0, 0, 0), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_WRITE_10), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED);
	/* WRITE EXCLUSIVE released: no unit attention */
	CU_ASSERT_EQUAL(atomic_load(&fx_itl1.ua), 0);
}

static void test_exclusive_access_registrants_only(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0, 36};

	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_EX_AC_RO, K0, 0, 0), SAM_STAT_GOOD);
	/* unregistered: not even READ; INQUIRY is always allowed */
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_READ_10), SAM_STAT_RESERVATION_CONFLICT);
	run_as(&fx_itl1, inq, NULL, 0);
	CU_ASSERT(fx_good());
	/* registered: everything */
	prout(&fx_itl1, PROUT_REGISTER, 0, 0, K1, 0);
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_WRITE_10), SAM_STAT_GOOD);
	/* the holder unregistering releases it: RESERVATIONS RELEASED to the others */
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, K0, 0, 0), SAM_STAT_GOOD);
	CU_ASSERT(ua_pending(&fx_itl1, TGT_UA_RESV_RELEASED));
	CU_ASSERT_FALSE(ua_pending(&fx_itl0, TGT_UA_RESV_RELEASED));
	CU_ASSERT_EQUAL(prin(&fx_itl0, PRIN_READ_RESERVATION), 8);
	/* the attention is reported before anything else */
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_READ_10), SAM_STAT_CHECK_CONDITION);
	CU_ASSERT(fx_check(SK_UNIT_ATTENTION, ASC_RESERVATIONS_RELEASED));
}

static void test_all_registrants(void)
{
	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	prout(&fx_itl1, PROUT_REGISTER, 0, 0, K1, 0);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_WR_EX_AR, K0, 0, 0), SAM_STAT_GOOD);
	/* SPC-4 6.16.3.3: key zero for all-registrants reservations */
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), 0);
	CU_ASSERT_EQUAL(fx_buf[21], PR_TYPE_WR_EX_AR);
	/* every registrant is a holder: it can write, and reserve the same */
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_WRITE_10), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_RESERVE, PR_TYPE_WR_EX_AR, K1, 0, 0), SAM_STAT_GOOD);
	/* the reservation lasts until the last registrant leaves */
	prout(&fx_itl0, PROUT_REGISTER, 0, K0, 0, 0);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	prout(&fx_itl1, PROUT_REGISTER, 0, K1, 0, 0);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 8);
}

static void test_clear(void)
{
	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	prout(&fx_itl1, PROUT_REGISTER, 0, 0, K1, 0);
	prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_EX_AC, K0, 0, 0);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_CLEAR, 0, K0, 0, 0), SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_CLEAR, 0, K1, 0, 0), SAM_STAT_GOOD);
	CU_ASSERT(ua_pending(&fx_itl0, TGT_UA_RESV_PREEMPTED));
	CU_ASSERT_FALSE(ua_pending(&fx_itl1, TGT_UA_RESV_PREEMPTED));
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 8);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 3);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED);
}

/* ---- PREEMPT ---- */

static void test_preempt_registration(void)
{
	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	prout(&fx_itl1, PROUT_REGISTER, 0, 0, K1, 0);
	/* no reservation: SARK zero is invalid, an unknown key conflicts */
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_PREEMPT, 0, K1, 0, 0), SAM_STAT_CHECK_CONDITION);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_PREEMPT, 0, K1, 42, 0),
			SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_PREEMPT, PR_TYPE_EX_AC, K1, K0, 0), SAM_STAT_GOOD);
	CU_ASSERT(ua_pending(&fx_itl0, TGT_UA_REG_PREEMPTED));
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 16);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 3);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K1);
	/* no reservation was created */
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 8);
}

static void test_preempt_holder(void)
{
	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	prout(&fx_itl1, PROUT_REGISTER, 0, 0, K1, 0);
	prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_WR_EX, K0, 0, 0);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_PREEMPT_AND_ABORT, PR_TYPE_EX_AC, K1, K0, 0),
			SAM_STAT_GOOD);
	CU_ASSERT(ua_pending(&fx_itl0, TGT_UA_REG_PREEMPTED));
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K1);
	CU_ASSERT_EQUAL(fx_buf[21], PR_TYPE_EX_AC);
	/* the preempted nexus is neither registered nor allowed to read */
	atomic_store(&fx_itl0.ua, 0);
	CU_ASSERT_EQUAL(rw_as(&fx_itl0, SCSI_OP_READ_10), SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RELEASE, PR_TYPE_EX_AC, K0, 0, 0),
			SAM_STAT_RESERVATION_CONFLICT);
}

/* ---- TransportIDs ---- */

static uint32_t put_tpid_port(uint8_t *p, const char *name, const char *isid)
{
	char s[128];
	uint32_t len;

	snprintf(s, sizeof(s), "%s,i,0x%s", name, isid);
	len = ((uint32_t)strlen(s) + 1 + 3) & ~3u;
	memset(p, 0, 4 + len);
	p[0] = TPID_FMT_PORT | TPID_PROTO_ISCSI;
	put_be16(p + 2, (uint16_t)len);
	memcpy(p + 4, s, strlen(s));
	return 4 + len;
}

static void test_spec_i_pt_and_full_status(void)
{
	uint8_t p[256] = {0};
	uint32_t tl = put_tpid_port(p + 28, N1_NAME, "800000000002"), len;

	pr_setup();
	put_be64(p + 8, K0);
	p[20] = PROUT_SPEC_I_PT | PROUT_ALL_TG_PT;
	put_be32(p + 24, tl);
	prout_ex(&fx_itl0, PROUT_REGISTER, 0, p, 28 + tl);
	CU_ASSERT(fx_good());
	/* both nexuses are registered with the key */
	len = prin(&fx_itl1, PRIN_READ_FULL_STATUS);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 4), len - 8);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K0);
	CU_ASSERT_EQUAL(fx_buf[8 + 12], PRFS_ALL_TG_PT);
	CU_ASSERT_EQUAL(fx_buf[8 + 24], TPID_FMT_PORT | TPID_PROTO_ISCSI);
	CU_ASSERT_STRING_EQUAL((char *)fx_buf + 8 + 28, N0_NAME ",i,0x800000000001");
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_RESERVE, PR_TYPE_WR_EX, K0, 0, 0), SAM_STAT_GOOD);
	/* a registered nexus cannot use SPEC_I_PT */
	put_be64(p, K0);
	prout_ex(&fx_itl0, PROUT_REGISTER, 0, p, 28 + tl);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	/* a malformed TransportID (not iSCSI) */
	pr_setup();
	put_be64(p, 0);
	p[28] = 0x01;
	prout_ex(&fx_itl0, PROUT_REGISTER, 0, p, 28 + tl);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 8);
}

static void test_register_and_move(void)
{
	uint8_t p[128] = {0};
	uint32_t tl = put_tpid_port(p + 24, N1_NAME, "800000000002");

	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	put_be64(p, K0);
	put_be64(p + 8, K1);
	p[17] = PROUT_MOVE_UNREG;
	put_be16(p + 18, 1);
	put_be32(p + 20, tl);
	/* not the holder yet: conflict */
	prout_ex(&fx_itl0, PROUT_REGISTER_AND_MOVE, PR_TYPE_WR_EX, p, 24 + tl);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_RESERVATION_CONFLICT);
	prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_WR_EX, K0, 0, 0);
	prout_ex(&fx_itl0, PROUT_REGISTER_AND_MOVE, PR_TYPE_WR_EX, p, 24 + tl);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K1);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 16); /* UNREG: only the new holder */
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_WRITE_10), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(rw_as(&fx_itl0, SCSI_OP_WRITE_10), SAM_STAT_RESERVATION_CONFLICT);
}

/* ---- APTPL ---- */

static void test_aptpl_reload(void)
{
	char path[128];
	struct stat st;

	pr_setup();
	snprintf(fx_cfg.state_dir, sizeof(fx_cfg.state_dir), "%s", fx_dir);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, PROUT_APTPL), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_REGISTER, 0, 0, K1, PROUT_APTPL), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_EX_AC, K0, 0, 0), SAM_STAT_GOOD);
	CU_ASSERT_EQUAL(prin(&fx_itl0, PRIN_REPORT_CAPABILITIES), 8);
	CU_ASSERT(fx_buf[2] & PRCAP_PTPL_C);
	CU_ASSERT(fx_buf[3] & PRCAP_PTPL_A);
	/* "power loss": the state is read back from the file */
	tgt_pr_lu_free(&fx_target.lu);
	CU_ASSERT_EQUAL(tgt_pr_lu_load(&fx_target.lu, fx_dir), 0);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED | TGT_RESV_ACTIVE);
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_READ_10), SAM_STAT_RESERVATION_CONFLICT);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	CU_ASSERT_EQUAL(get_be32(fx_buf), 2); /* RESERVE does not count */
	CU_ASSERT_EQUAL(get_be64(fx_buf + 8), K0);
	CU_ASSERT_EQUAL(fx_buf[21], PR_TYPE_EX_AC);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 24);
	/* APTPL back to zero: nothing is kept */
	snprintf(path, sizeof(path), "%s/pr-", fx_dir);
	for (unsigned i = 0; i < VOL_ID_LEN; i++)
		snprintf(path + strlen(path), 3, "%02x", fx_vol.id[i]);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(prout(&fx_itl1, PROUT_REGISTER, 0, K1, K1, 0), SAM_STAT_GOOD);
	CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
	tgt_pr_lu_free(&fx_target.lu);
	CU_ASSERT_EQUAL(tgt_pr_lu_load(&fx_target.lu, fx_dir), 0);
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_KEYS), 8);
}

static void test_aptpl_corrupt_file_ignored(void)
{
	char path[128];
	FILE *f;

	pr_setup();
	snprintf(path, sizeof(path), "%s/pr-", fx_dir);
	for (unsigned i = 0; i < VOL_ID_LEN; i++)
		snprintf(path + strlen(path), 3, "%02x", fx_vol.id[i]);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("vmengine-pr 1\nresv 3 800000000001 nobody\n", f); /* holder not registered */
	fclose(f);
	CU_ASSERT_EQUAL(tgt_pr_lu_load(&fx_target.lu, fx_dir), 0);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED);
	unlink(path);
}

/* ---- RESERVE / RELEASE (6) and (10) ---- */

static void test_reserve6(void)
{
	uint8_t res6[16] = {SCSI_OP_RESERVE_6}, rel6[16] = {SCSI_OP_RELEASE_6};
	uint8_t res10[16] = {SCSI_OP_RESERVE_10}, tur[16] = {SCSI_OP_TEST_UNIT_READY};
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0, 36};

	pr_setup();
	run_as(&fx_itl0, res6, NULL, 0);
	CU_ASSERT(fx_good());
	run_as(&fx_itl0, res6, NULL, 0); /* again from the holder */
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(run_as(&fx_itl1, tur, NULL, 0), 1);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_RESERVATION_CONFLICT);
	run_as(&fx_itl1, inq, NULL, 0);
	CU_ASSERT(fx_good());
	run_as(&fx_itl1, res10, NULL, 0);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_RESERVATION_CONFLICT);
	/* RELEASE from another nexus: GOOD, nothing released */
	run_as(&fx_itl1, rel6, NULL, 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(run_as(&fx_itl1, tur, NULL, 0), 1);
	/* PR OUT conflicts under it too */
	CU_ASSERT_EQUAL(run_as(&fx_itl1, (uint8_t[16]){SCSI_OP_PERSISTENT_RESERVE_IN}, NULL, 0), 1);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_RESERVATION_CONFLICT);
	run_as(&fx_itl0, rel6, NULL, 0);
	CU_ASSERT(fx_good());
	run_as(&fx_itl1, tur, NULL, 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.resv), TGT_RESV_LOADED);
}

static void test_reserve6_ends_with_nexus_and_reset(void)
{
	uint8_t res6[16] = {SCSI_OP_RESERVE_6}, tur[16] = {SCSI_OP_TEST_UNIT_READY};

	pr_setup();
	run_as(&fx_itl0, res6, NULL, 0);
	tgt_pr_nexus_gone(&fx_itl0);
	run_as(&fx_itl1, tur, NULL, 0);
	CU_ASSERT(fx_good());
	/* a LUN reset releases it (raised with its unit attention) */
	run_as(&fx_itl0, res6, NULL, 0);
	/* what a LOGICAL UNIT RESET does (misc.c): release, then the attention */
	tgt_pr_lu_reset(&fx_target.lu);
	tgt_lu_ua_raise(&fx_target.lu, TGT_UA_LUN_RESET, &fx_itl0);
	atomic_store(&fx_itl1.ua, 0);
	run_as(&fx_itl1, tur, NULL, 0);
	CU_ASSERT(fx_good());
	/* a nexus that left lu->itls without notice no longer holds it */
	run_as(&fx_itl0, res6, NULL, 0);
	pthread_mutex_lock(&fx_target.lu.lock);
	LIST_REMOVE(&fx_itl0, lu_link);
	pthread_mutex_unlock(&fx_target.lu.lock);
	run_as(&fx_itl1, tur, NULL, 0);
	CU_ASSERT(fx_good());
	LIST_INSERT_HEAD(&fx_target.lu.itls, &fx_itl0, lu_link);
}

static void test_reserve6_vs_persistent(void)
{
	uint8_t res6[16] = {SCSI_OP_RESERVE_6}, rel6[16] = {SCSI_OP_RELEASE_6};

	pr_setup();
	prout(&fx_itl0, PROUT_REGISTER, 0, 0, K0, 0);
	/* SPC-4 5.12.3: registrations exist: RESERVE conflicts */
	run_as(&fx_itl1, res6, NULL, 0);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_RESERVATION_CONFLICT);
	prout(&fx_itl0, PROUT_RESERVE, PR_TYPE_WR_EX, K0, 0, 0);
	/* from the holder: GOOD, no effect; RELEASE never ends a PR */
	run_as(&fx_itl0, res6, NULL, 0);
	CU_ASSERT(fx_good());
	run_as(&fx_itl0, rel6, NULL, 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(prin(&fx_itl1, PRIN_READ_RESERVATION), 24);
	CU_ASSERT_EQUAL(rw_as(&fx_itl1, SCSI_OP_WRITE_10), SAM_STAT_RESERVATION_CONFLICT);
}

static int suite_init(void)
{
	snprintf(fx_dir, sizeof(fx_dir), "/tmp/scsi_pr_ut.XXXXXX");
	if (mkdtemp(fx_dir) == NULL)
		return 1;
	return fixture_init();
}

static int suite_fini(void)
{
	DIR *d = opendir(fx_dir);
	struct dirent *e;
	char p[512];

	tgt_pr_lu_free(&fx_target.lu);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx_dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(fx_dir);
	return fixture_fini();
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("scsi_pr", suite_init, suite_fini);
	CU_add_test(s, "prin_empty", test_prin_empty);
	CU_add_test(s, "read_keys_truncated", test_read_keys_truncated);
	CU_add_test(s, "register", test_register);
	CU_add_test(s, "param_list_length", test_param_list_length);
	CU_add_test(s, "write_exclusive", test_write_exclusive);
	CU_add_test(s, "exclusive_access_registrants_only", test_exclusive_access_registrants_only);
	CU_add_test(s, "all_registrants", test_all_registrants);
	CU_add_test(s, "clear", test_clear);
	CU_add_test(s, "preempt_registration", test_preempt_registration);
	CU_add_test(s, "preempt_holder", test_preempt_holder);
	CU_add_test(s, "spec_i_pt_and_full_status", test_spec_i_pt_and_full_status);
	CU_add_test(s, "register_and_move", test_register_and_move);
	CU_add_test(s, "aptpl_reload", test_aptpl_reload);
	CU_add_test(s, "aptpl_corrupt_file_ignored", test_aptpl_corrupt_file_ignored);
	CU_add_test(s, "reserve6", test_reserve6);
	CU_add_test(s, "reserve6_ends_with_nexus_and_reset",
		    test_reserve6_ends_with_nexus_and_reset);
	CU_add_test(s, "reserve6_vs_persistent", test_reserve6_vs_persistent);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	{
		unsigned failed = CU_get_number_of_failures();

		CU_cleanup_registry();
		return failed ? 1 : 0;
	}
}
