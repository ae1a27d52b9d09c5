/*
 * scsi_xcopy_ut.c: the copy manager (EXTENDED COPY LID1, RECEIVE COPY
 * RESULTS) against in-memory volumes: copies within the LU and to another
 * target of the engine, chunking and overlapping ranges, every parameter
 * list check, COPY ABORTED with the segment number, volume errors,
 * aborted tasks, held results per nexus and the operating parameters.
 * Target references and scratch buffers must always be given back.
 */
#include "scsi_fixture.h"

#include "iscsi-tgt/scsi_xcopy.c"

/* ---- the engine around the LU: a second target and a connection ---- */

static struct tgt xc_engine;
static struct tgt_session xc_sess;
static struct tgt_conn xc_conn;
static struct tgt_target xc_target2;
static struct vol xc_vol2;
static int xc_refs; /* references taken and not yet put */
static char *xc_allow[1] = {"iqn.2024-01.org.example:other"};

/* The engine's target list, as struct tgt_scsi_ops reaches it (tgt.c in the engine). */
static void xc_target_get(struct tgt_target *tg)
{
	atomic_fetch_add(&tg->refs, 1);
	xc_refs++;
}

static void xc_target_put(struct tgt_target *tg)
{
	CU_ASSERT(atomic_fetch_sub(&tg->refs, 1) > 1); /* never the last one here */
	xc_refs--;
}

static uint16_t xc_target_admit(const struct tgt_target *tg, const char *initiator)
{
	if (tg->redirect[0] != '\0')
		return ISCSI_LS_TARGET_MOVED_TEMP;
	if (tg->allow == NULL)
		return 0;
	for (unsigned i = 0; i < tg->nallow; i++)
		if (strcasecmp(tg->allow[i], initiator) == 0)
			return 0;
	return ISCSI_LS_AUTHZ_FAILED;
}

static const struct tgt_scsi_ops xc_ops = {
    .target_get = xc_target_get,
    .target_put = xc_target_put,
    .target_admit = xc_target_admit,
};

static int xc_init(void)
{
	if (fixture_init() != 0)
		return 1;
	xc_vol2.bs = FX_BS;
	xc_vol2.size = (uint64_t)FX_BLOCKS * FX_BS;
	xc_vol2.data = calloc(FX_BLOCKS, FX_BS);
	for (unsigned i = 0; i < VOL_ID_LEN; i++)
		xc_vol2.id[i] = (uint8_t)(0x90 + i);
	snprintf(xc_target2.iqn, sizeof(xc_target2.iqn), "%s", "iqn.2024-01.org.vmengine:vol2");
	xc_target2.lu.vol = &xc_vol2;
	xc_target2.lu.target = &xc_target2;
	atomic_init(&xc_target2.refs, 1);
	pthread_rwlock_init(&xc_engine.targets_lock, NULL);
	fx_target.lu.scsi_ops = &xc_ops; /* as tgt_target_add() does */
	TAILQ_INIT(&xc_engine.targets);
	atomic_init(&fx_target.refs, 2);
	TAILQ_INSERT_TAIL(&xc_engine.targets, &fx_target, link);
	TAILQ_INSERT_TAIL(&xc_engine.targets, &xc_target2, link);
	snprintf(xc_sess.params.initiator_name, sizeof(xc_sess.params.initiator_name), "%s",
		 "iqn.2024-01.org.example:host");
	xc_conn.tgt = &xc_engine;
	xc_conn.sess = &xc_sess;
	return xc_vol2.data == NULL;
}

static int xc_fini(void)
{
	free(xc_vol2.data);
	pthread_rwlock_destroy(&xc_engine.targets_lock);
	return fixture_fini();
}

static void xc_reset(void)
{
	fixture_reset();
	memset(xc_vol2.data, 0, (size_t)FX_BLOCKS * FX_BS);
	xc_vol2.bs = FX_BS;
	xc_vol2.size = (uint64_t)FX_BLOCKS * FX_BS;
	memset(fx_itl0.xcopy, 0, sizeof(fx_itl0.xcopy));
	xc_target2.allow = NULL;
	xc_target2.nallow = 0;
	xc_target2.redirect[0] = '\0';
	memset(&xc_target2.chap, 0, sizeof(xc_target2.chap));
	xc_refs = 0;
}

/*
 * Run a command the way the connection does, with the task on xc_conn
 * (so the engine's target list is reachable) and \p flags preset.
 */
static int xc_run_ex(const uint8_t *cdb, const void *out, uint32_t out_len, uint32_t flags)
{
	int rc;

	fixture_task(cdb, 16, false);
	fx_t.conn = &xc_conn;
	fx_t.flags = flags;
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
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	CU_ASSERT_EQUAL(xc_refs, 0);
	return rc;
}

/* ---- parameter list builders ---- */

struct xc_list {
	uint8_t b[2048];
	uint32_t len;
	uint16_t tdll;
	uint32_t sdll;
};

static void xl_init(struct xc_list *l)
{
	memset(l, 0, sizeof(*l));
	l->len = XCOPY_HDR_LEN;
}

/* An identification CSCD naming \p vol by its NAA designator. */
static void xl_cscd(struct xc_list *l, const struct vol *v, uint32_t block_len, uint8_t byte1)
{
	uint8_t *d = l->b + l->len;

	d[0] = XCOPY_CSCD_ID;
	d[1] = byte1;
	d[4] = DESIG_CODESET_BINARY;
	d[5] = DESIG_ASSOC_LU | DESIG_TYPE_NAA;
	d[7] = VOL_ID_LEN;
	memcpy(d + 8, v->id, VOL_ID_LEN);
	put_be24(d + 29, block_len);
	l->len += XCOPY_CSCD_LEN;
	l->tdll += XCOPY_CSCD_LEN;
}

static void xl_seg(struct xc_list *l, uint16_t src, uint16_t dst, uint16_t n, uint64_t slba,
		   uint64_t dlba, bool dc)
{
	uint8_t *d = l->b + l->len;

	d[0] = XCOPY_SEG_B2B;
	d[1] = dc ? XCOPY_SEG_DC : 0;
	put_be16(d + 2, XCOPY_SEG_B2B_LEN - 4);
	put_be16(d + 4, src);
	put_be16(d + 6, dst);
	put_be16(d + 10, n);
	put_be64(d + 12, slba);
	put_be64(d + 20, dlba);
	l->len += XCOPY_SEG_B2B_LEN;
	l->sdll += XCOPY_SEG_B2B_LEN;
}

static void xl_hdr(struct xc_list *l, uint8_t list_id, uint8_t usage)
{
	l->b[0] = list_id;
	l->b[1] = (uint8_t)(usage << XCOPY_LIST_ID_USAGE_SHIFT);
	put_be16(l->b + 2, l->tdll);
	put_be32(l->b + 8, l->sdll);
}

/* EXTENDED COPY with \p l (parameter list length \p len, or l->len when 0). */
static int xc_copy_len(const struct xc_list *l, uint32_t len)
{
	uint8_t cdb[16] = {SCSI_OP_EXTENDED_COPY, XCOPY_SA_LID1};

	put_be32(cdb + 10, len);
	return xc_run_ex(cdb, l->b, len, 0);
}

static int xc_copy(const struct xc_list *l)
{
	return xc_copy_len(l, l->len);
}

/* A one-segment copy of \p n blocks within the LU. */
static int xc_copy_one(uint8_t list_id, uint8_t usage, uint16_t n, uint64_t slba, uint64_t dlba)
{
	struct xc_list l;

	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_seg(&l, 0, 0, n, slba, dlba, false);
	xl_hdr(&l, list_id, usage);
	return xc_copy(&l);
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 9));
}

/* COPY ABORTED with \p code, for segment \p seg (fixed sense: COMMAND-SPECIFIC INFORMATION). */
static bool xc_aborted(uint16_t code, uint32_t seg)
{
	return fx_check(SK_COPY_ABORTED, code) && get_be32(fx_t.sense + 8) == seg;
}

/* ---- tests ---- */

static void test_table_entries(void)
{
	uint8_t xcopy[16] = {SCSI_OP_EXTENDED_COPY, XCOPY_SA_LID1};
	uint8_t lid4[16] = {SCSI_OP_EXTENDED_COPY, 0x01};
	uint8_t cs[16] = {SCSI_OP_RECEIVE_COPY_RESULTS, RCR_SA_COPY_STATUS};
	uint8_t op[16] = {SCSI_OP_RECEIVE_COPY_RESULTS, RCR_SA_OPERATING_PARAMS};
	const struct tgt_scsi_cmd *c[] = {tgt_scsi_lookup(xcopy), tgt_scsi_lookup(cs),
					  tgt_scsi_lookup(op)};

	for (unsigned i = 0; i < UTIL_ARRAY_SIZE(c); i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(c[i]);
		CU_ASSERT_EQUAL(c[i]->cdb_len, 16);
		/* the 4-byte length field sits in bytes 10..13 */
		CU_ASSERT_EQUAL(c[i]->len_off, 10);
		CU_ASSERT_EQUAL(get_be32(c[i]->usage + 10), 0xffffffffu);
		CU_ASSERT_EQUAL(c[i]->usage[9], 0);
		CU_ASSERT_EQUAL(c[i]->usage[14], 0);
	}
	CU_ASSERT_EQUAL(c[0]->dir, TGT_DIR_OUT);
	CU_ASSERT_EQUAL(c[1]->usage[2], 0xff); /* LIST IDENTIFIER */
	CU_ASSERT_EQUAL(c[2]->usage[2], 0x00);
	/* EXTENDED COPY(LID4) is not implemented: the service action is refused. */
	CU_ASSERT_PTR_NULL(tgt_scsi_lookup(lid4));
	CU_ASSERT_EQUAL(xc_run_ex(lid4, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
}

static void test_inquiry_3pc(void)
{
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0, 96};

	CU_ASSERT_EQUAL(fixture_run(inq, 16), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT(fx_buf[5] & INQ_BYTE5_3PC);
}

static void test_zero_length_and_prep_limits(void)
{
	struct xc_list l;

	xl_init(&l);
	/* SPC-4 6.4.1: length 0 moves nothing, GOOD */
	CU_ASSERT_EQUAL(xc_copy_len(&l, 0), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);
	/* shorter than the header / longer than anything valid: before data-out */
	CU_ASSERT_EQUAL(xc_copy_len(&l, XCOPY_HDR_LEN - 1), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	CU_ASSERT_EQUAL(xc_copy_len(&l, XCOPY_HDR_LEN + XCOPY_MAX_DESC_LIST + 1), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	/* a header alone: no descriptors, nothing to do */
	xl_hdr(&l, 1, XCOPY_LIST_ID_NO_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);
}

static void test_copy_within_lu(void)
{
	fill(fx_vol.data, 10 * FX_BS, 3);
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 10, 0, 100), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 100 * FX_BS, fx_vol.data, 10 * FX_BS), 0);
	CU_ASSERT_EQUAL(fx_vol.data[110 * FX_BS], 0); /* not one block more */
	CU_ASSERT_EQUAL(fx_submits, 2);		      /* one read, one write */
	/* NUMBER OF BLOCKS 0 moves nothing and succeeds */
	CU_ASSERT_EQUAL(xc_copy_one(2, XCOPY_LIST_ID_HOLD, 0, 0, 200), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_submits, 0);
}

/* Copy \p n blocks from \p s to \p d within the LU and compare with memmove(). */
static void check_overlap(uint16_t n, uint64_t s, uint64_t d)
{
	size_t len = (size_t)FX_BLOCKS * FX_BS;
	uint8_t *want = malloc(len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(want);
	fill(fx_vol.data, len, 9);
	memcpy(want, fx_vol.data, len);
	memmove(want + d * FX_BS, want + s * FX_BS, (size_t)n * FX_BS);
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_NO_HOLD, n, s, d), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(fx_vol.data, want, len), 0);
	free(want);
}

static void test_chunks_and_overlap(void)
{
	/* 2044 blocks: more than one chunk, destination ahead: from the end */
	check_overlap(2044, 0, 4);
	CU_ASSERT_EQUAL(fx_submits, 4);
	/* destination behind the source: from the start */
	check_overlap(2044, 4, 0);
	CU_ASSERT_EQUAL(fx_submits, 4);
	check_overlap(100, 50, 51);
}

static void test_list_length_errors(void)
{
	struct xc_list l;

	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	/* the lists run past the parameter list: a CSCD, then a segment, cut */
	CU_ASSERT_EQUAL(xc_copy_len(&l, XCOPY_HDR_LEN + XCOPY_CSCD_LEN - 1), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	CU_ASSERT_EQUAL(xc_copy_len(&l, l.len - 1), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	CU_ASSERT_EQUAL(fx_submits, 0);
	/* inline data: MAXIMUM INLINE DATA LENGTH is 0 */
	put_be32(l.b + 12, 4);
	CU_ASSERT_EQUAL(xc_copy_len(&l, l.len + 4), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT(fx_field(false, -1, 12));
	put_be32(l.b + 12, 0);
	/* LIST ID USAGE 01b is reserved; 11b needs LIST IDENTIFIER 0 */
	xl_hdr(&l, 1, 0x1);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT(fx_field(false, 4, 1));
	xl_hdr(&l, 1, XCOPY_LIST_ID_NONE);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	xl_hdr(&l, 0, XCOPY_LIST_ID_NONE);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
}

static void test_descriptor_limits_and_types(void)
{
	struct xc_list l;

	/* one CSCD more than OPERATING PARAMETERS allows */
	xl_init(&l);
	for (unsigned i = 0; i <= XCOPY_MAX_CSCDS; i++)
		xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_TOO_MANY_CSCDS));
	/* one segment more */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	for (unsigned i = 0; i <= XCOPY_MAX_SEGMENTS; i++)
		xl_seg(&l, 0, 0, 1, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_TOO_MANY_SEGMENTS));
	/* both: longer than MAXIMUM DESCRIPTOR LIST LENGTH (refused before data-out) */
	xl_init(&l);
	for (unsigned i = 0; i <= XCOPY_MAX_CSCDS; i++)
		xl_cscd(&l, &fx_vol, FX_BS, 0);
	for (unsigned i = 0; i <= XCOPY_MAX_SEGMENTS; i++)
		xl_seg(&l, 0, 0, 1, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	/* a Fibre Channel N_Port_Name CSCD (E0h) */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	l.b[XCOPY_HDR_LEN] = 0xe0;
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_UNSUPPORTED_CSCD_TYPE));
	CU_ASSERT(fx_field(false, -1, XCOPY_HDR_LEN));
	/* a stream-to-stream segment (03h) */
	l.b[XCOPY_HDR_LEN] = XCOPY_CSCD_ID;
	l.b[XCOPY_HDR_LEN + XCOPY_CSCD_LEN] = 0x03;
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_UNSUPPORTED_SEGMENT_TYPE));
	/* a wrong DESCRIPTOR LENGTH for a block-to-block segment */
	l.b[XCOPY_HDR_LEN + XCOPY_CSCD_LEN] = XCOPY_SEG_B2B;
	put_be16(l.b + XCOPY_HDR_LEN + XCOPY_CSCD_LEN + 2, 0x20);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT(fx_field(false, -1, XCOPY_HDR_LEN + XCOPY_CSCD_LEN + 2));
	CU_ASSERT_EQUAL(fx_submits, 0);
}

static void test_cscd_checks(void)
{
	struct xc_list l;
	struct vol nobody = {.id = {0x61, 0x99}};

	/* LU ID TYPE is ignored (SPC-4): the copy runs */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0xc0);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
	/* NUL: not usable */
	l.b[XCOPY_HDR_LEN + 1] = XCOPY_CSCD_NUL;
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_COPY_TARGET_UNREACHABLE, 0));
	/* a designator no volume has */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_cscd(&l, &nobody, FX_BS, 0);
	xl_seg(&l, 0, 1, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_COPY_TARGET_UNREACHABLE, 0));
	CU_ASSERT_EQUAL(fx_submits, 0);
	/* DISK BLOCK LENGTH other than the volume's */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, 4096, 0);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT(fx_field(false, -1, XCOPY_HDR_LEN + 29));
	/* a peripheral device type other than block */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0x01);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_INCORRECT_COPY_TARGET, 0));
}

static void test_segment_errors(void)
{
	struct xc_list l;
	struct tgt_xcopy_held *h;

	/* an index past the CSCD list */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_seg(&l, 0, 1, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_COPY_TARGET_UNREACHABLE, 0));
	CU_ASSERT_EQUAL(fx_t.sense[15], SENSE_SKSV | SENSE_SKS_SD);
	CU_ASSERT_EQUAL(get_be16(fx_t.sense + 16), 6); /* DESTINATION CSCD DESCRIPTOR INDEX */
	/* the second segment runs past the end: the first one stays copied */
	fill(fx_vol.data, 8 * FX_BS, 1);
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_seg(&l, 0, 0, 8, 0, FX_BLOCKS - 1, false);
	xl_hdr(&l, 7, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_NO_ADDITIONAL_SENSE, 1));
	CU_ASSERT_EQUAL(get_be16(fx_t.sense + 16), 20); /* DESTINATION ... LBA */
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 100 * FX_BS, fx_vol.data, 8 * FX_BS), 0);
	h = xcopy_held_find(&fx_itl0, 7);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(h->status, RCR_STATUS_ERROR + 1);
	CU_ASSERT_EQUAL(h->segments, 1);
	CU_ASSERT_EQUAL(h->bytes, 8 * FX_BS);
	/* the source past the end; no wrap-around at LBA 2^64-1 */
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 2, FX_BLOCKS - 1, 0), 0);
	CU_ASSERT(xc_aborted(ASC_NO_ADDITIONAL_SENSE, 0));
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 2, UINT64_MAX, 0), 0);
	CU_ASSERT(xc_aborted(ASC_NO_ADDITIONAL_SENSE, 0));
	/* descriptor-format sense: no COMMAND-SPECIFIC INFORMATION, still COPY ABORTED */
	atomic_store(&fx_target.lu.d_sense, true);
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 2, FX_BLOCKS - 1, 0), 0);
	CU_ASSERT(fx_check(SK_COPY_ABORTED, ASC_NO_ADDITIONAL_SENSE));
	CU_ASSERT_EQUAL(fx_t.sense[0], SENSE_DESC_CURRENT);
}

static void test_volume_errors(void)
{
	fx_status = -EIO;
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 8, 0, 100), 0);
	CU_ASSERT(xc_aborted(ASC_UNRECOVERED_READ_ERROR, 0));
	fx_status = 0;
	fx_submit_rc = -EINVAL;
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 8, 0, 100), 0);
	CU_ASSERT(xc_aborted(ASC_LBA_OUT_OF_RANGE, 0));
}

static void test_aborted_task_stops(void)
{
	struct xc_list l;
	uint8_t cdb[16] = {SCSI_OP_EXTENDED_COPY, XCOPY_SA_LID1};

	fill(fx_vol.data, 8 * FX_BS, 1);
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_seg(&l, 0, 0, 8, 0, 100, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	put_be32(cdb + 10, l.len);
	CU_ASSERT_EQUAL(xc_run_ex(cdb, l.b, l.len, TASK_F_ABORTED), 0);
	CU_ASSERT_EQUAL(fx_submits, 0);
	CU_ASSERT_EQUAL(fx_vol.data[100 * FX_BS], 0);
	CU_ASSERT_EQUAL(fx_itl0.xcopy[0].status, RCR_STATUS_ERROR + 1);
}

static void test_copy_to_other_target(void)
{
	struct xc_list l;

	fill(fx_vol.data, 64 * FX_BS, 7);
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_cscd(&l, &xc_vol2, FX_BS, 0);
	xl_seg(&l, 0, 1, 64, 0, 1000, false);
	xl_seg(&l, 1, 1, 64, 1000, 0, false); /* and within the other volume */
	xl_hdr(&l, 3, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(xc_vol2.data + 1000 * FX_BS, fx_vol.data, 64 * FX_BS), 0);
	CU_ASSERT_EQUAL(memcmp(xc_vol2.data, fx_vol.data, 64 * FX_BS), 0);
	CU_ASSERT_EQUAL(atomic_load(&xc_target2.refs), 1); /* given back */
	/* not without the session: only the task's own LU is reachable */
	memset(xc_vol2.data, 0, (size_t)FX_BLOCKS * FX_BS);
	fixture_task((uint8_t[16]){0}, 16, false);
	fx_t.conn = NULL;
	{
		struct xcopy_cscd c = {0};
		uint8_t desig[4 + VOL_ID_LEN] = {DESIG_CODESET_BINARY,
						 DESIG_ASSOC_LU | DESIG_TYPE_NAA, 0, VOL_ID_LEN};

		memcpy(desig + 4, xc_vol2.id, VOL_ID_LEN);
		xcopy_resolve(&fx_t, &c, desig);
		CU_ASSERT_PTR_NULL(c.vol);
		memcpy(desig + 4, fx_vol.id, VOL_ID_LEN);
		xcopy_resolve(&fx_t, &c, desig);
		CU_ASSERT_PTR_EQUAL(c.vol, &fx_vol);
		CU_ASSERT_PTR_NULL(c.tg);
	}
	/* an ACL without this initiator: unreachable, no reference kept */
	xc_target2.allow = xc_allow;
	xc_target2.nallow = 1;
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_COPY_TARGET_UNREACHABLE, 0));
	CU_ASSERT_EQUAL(get_be32(xc_vol2.data + 1000 * FX_BS), 0);
	xc_target2.allow = NULL;
	xc_target2.nallow = 0;
	/* CHAP the session did not prove; then the same secret as ours */
	snprintf(xc_target2.chap.user, sizeof(xc_target2.chap.user), "%s", "u2");
	snprintf(xc_target2.chap.secret, sizeof(xc_target2.chap.secret), "%s", "secret-two-12");
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_COPY_TARGET_UNREACHABLE, 0));
	fx_target.chap = xc_target2.chap;
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
	memset(&fx_target.chap, 0, sizeof(fx_target.chap));
	/* served elsewhere (redirect) */
	memset(&xc_target2.chap, 0, sizeof(xc_target2.chap));
	snprintf(xc_target2.redirect, sizeof(xc_target2.redirect), "%s", "10.0.0.2:3260");
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_COPY_TARGET_UNREACHABLE, 0));
	CU_ASSERT_EQUAL(atomic_load(&xc_target2.refs), 1);
}

/* SPC-4 7.5.8: a destination under software write protect takes no write. */
static void test_write_protected_destination(void)
{
	struct xc_list l;

	fill(fx_vol.data, 8 * FX_BS, 9);
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_cscd(&l, &xc_vol2, FX_BS, 0);
	xl_seg(&l, 0, 1, 8, 0, 0, false);
	xl_hdr(&l, 4, XCOPY_LIST_ID_HOLD);
	/* the source's SWP does not matter */
	atomic_store(&fx_target.lu.swp, true);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(xc_vol2.data, fx_vol.data, 8 * FX_BS), 0);
	atomic_store(&fx_target.lu.swp, false);
	/* the destination's does: other LU, then the command's own */
	memset(xc_vol2.data, 0, 8 * FX_BS);
	atomic_store(&xc_target2.lu.swp, true);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_WRITE_PROTECTED, 0));
	CU_ASSERT_EQUAL(get_be32(xc_vol2.data), 0);
	atomic_store(&xc_target2.lu.swp, false);
	atomic_store(&fx_target.lu.swp, true);
	CU_ASSERT_EQUAL(xc_copy_one(5, XCOPY_LIST_ID_HOLD, 4, 0, 100), 0);
	CU_ASSERT(xc_aborted(ASC_WRITE_PROTECTED, 0));
	CU_ASSERT_EQUAL(get_be32(fx_vol.data + 100 * FX_BS), 0);
	atomic_store(&fx_target.lu.swp, false);
	CU_ASSERT_EQUAL(atomic_load(&xc_target2.refs), 1);
}

static void test_block_sizes_and_dc(void)
{
	struct xc_list l;

	xc_vol2.bs = 4096; /* 256 blocks of 4 KiB */
	fill(fx_vol.data, 16 * FX_BS, 5);
	/* DC 0: 16 source blocks = 2 destination blocks */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_cscd(&l, &xc_vol2, 4096, 0);
	xl_seg(&l, 0, 1, 16, 0, 10, false);
	/* DC 1: 1 destination block = 8 source blocks */
	xl_seg(&l, 0, 1, 1, 0, 20, true);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(xc_vol2.data + 10 * 4096, fx_vol.data, 16 * FX_BS), 0);
	CU_ASSERT_EQUAL(memcmp(xc_vol2.data + 20 * 4096, fx_vol.data, 4096), 0);
	/* 7 source blocks are not a whole destination block */
	xl_init(&l);
	xl_cscd(&l, &fx_vol, FX_BS, 0);
	xl_cscd(&l, &xc_vol2, 4096, 0);
	xl_seg(&l, 0, 1, 7, 0, 10, false);
	xl_hdr(&l, 1, XCOPY_LIST_ID_HOLD);
	CU_ASSERT_EQUAL(xc_copy(&l), 0);
	CU_ASSERT(xc_aborted(ASC_UNEXPECTED_INEXACT_SEG, 0));
}

static int rcr(uint8_t sa, uint8_t list_id, uint32_t alloc)
{
	uint8_t cdb[16] = {SCSI_OP_RECEIVE_COPY_RESULTS, sa, list_id};

	put_be32(cdb + 10, alloc);
	return xc_run_ex(cdb, NULL, 0, 0);
}

static void test_copy_status(void)
{
	/* nothing held for list 1 yet */
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 1, 64), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT(fx_field(true, -1, 2));
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 16, 0, 100), 0);
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 1, 64), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, RCR_COPY_STATUS_LEN);
	CU_ASSERT_EQUAL(get_be32(fx_buf), RCR_COPY_STATUS_LEN - 4);
	CU_ASSERT_EQUAL(fx_buf[4], RCR_STATUS_GOOD);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 5), 1);
	CU_ASSERT_EQUAL(fx_buf[7], 0); /* bytes */
	CU_ASSERT_EQUAL(get_be32(fx_buf + 8), 16 * FX_BS);
	/* a failed copy: COMPLETED WITH ERRORS, the segments done before */
	CU_ASSERT_EQUAL(xc_copy_one(2, XCOPY_LIST_ID_HOLD, 8, 0, FX_BLOCKS), 0);
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 2, 64), 0);
	CU_ASSERT_EQUAL(fx_buf[4], RCR_STATUS_ERROR);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 5), 0);
	/* LIST ID USAGE 10b: not held */
	CU_ASSERT_EQUAL(xc_copy_one(3, XCOPY_LIST_ID_NO_HOLD, 8, 0, 100), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 3, 64), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	/* other nexuses see nothing */
	CU_ASSERT_EQUAL(fx_itl1.xcopy[0].status, 0);
	/* a transfer count above 4 GiB is given in KiB */
	fx_itl0.xcopy[0].bytes = 5ull << 30;
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 1, 64), 0);
	CU_ASSERT_EQUAL(fx_buf[7], 1);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 8), 5u << 20);
}

static void test_list_id_in_progress_and_reuse(void)
{
	/* a running copy with list 9 on this nexus: OPERATION IN PROGRESS */
	fx_itl0.xcopy[3].list_id = 9;
	fx_itl0.xcopy[3].status = RCR_STATUS_IN_PROGRESS + 1;
	CU_ASSERT_EQUAL(xc_copy_one(9, XCOPY_LIST_ID_HOLD, 8, 0, 100), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_OPERATION_IN_PROGRESS));
	CU_ASSERT_EQUAL(fx_submits, 0);
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 9, 64), 0);
	CU_ASSERT_EQUAL(fx_buf[4], RCR_STATUS_IN_PROGRESS);
	/* the other slots fill up, then the oldest finished one is reused */
	for (unsigned id = 20; id < 20 + TGT_XCOPY_HELD; id++) {
		CU_ASSERT_EQUAL(xc_copy_one((uint8_t)id, XCOPY_LIST_ID_HOLD, 1, 0, 100), 0);
		CU_ASSERT(fx_good());
	}
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 20, 64), 0);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 20 + TGT_XCOPY_HELD - 1, 64), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(rcr(RCR_SA_COPY_STATUS, 9, 64), 0); /* the running one stays */
	CU_ASSERT(fx_good());
	/* every slot running: BUSY, try later */
	for (unsigned i = 0; i < TGT_XCOPY_HELD; i++) {
		fx_itl0.xcopy[i].list_id = (uint8_t)(100 + i);
		fx_itl0.xcopy[i].status = RCR_STATUS_IN_PROGRESS + 1;
	}
	CU_ASSERT_EQUAL(xc_copy_one(1, XCOPY_LIST_ID_HOLD, 8, 0, 100), 0);
	CU_ASSERT_EQUAL(fx_t.status, SAM_STAT_BUSY);
	/* no list identifier at all is always fine */
	CU_ASSERT_EQUAL(xc_copy_one(0, XCOPY_LIST_ID_NONE, 8, 0, 100), 0);
	CU_ASSERT(fx_good());
}

static void test_operating_parameters(void)
{
	CU_ASSERT_EQUAL(rcr(RCR_SA_OPERATING_PARAMS, 0, 1024), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, XCOPY_OP_PARAMS_LEN);
	CU_ASSERT_EQUAL(get_be32(fx_buf), XCOPY_OP_PARAMS_LEN - 4);
	CU_ASSERT_EQUAL(fx_buf[4] & 1, 1); /* SNLID */
	CU_ASSERT_EQUAL(get_be16(fx_buf + 8), XCOPY_MAX_CSCDS);
	CU_ASSERT_EQUAL(get_be16(fx_buf + 10), XCOPY_MAX_SEGMENTS);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 12), XCOPY_MAX_DESC_LIST);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 16), 65535u * FX_BS);
	CU_ASSERT_EQUAL(get_be32(fx_buf + 20), 0); /* no inline data */
	CU_ASSERT_EQUAL(fx_buf[37], 9);		   /* 512-byte granularity */
	CU_ASSERT_EQUAL(fx_buf[43], 2);
	CU_ASSERT_EQUAL(fx_buf[44], XCOPY_SEG_B2B);
	CU_ASSERT_EQUAL(fx_buf[45], XCOPY_CSCD_ID);
	/* the limits agree with what the copy manager enforces */
	CU_ASSERT(XCOPY_MAX_DESC_LIST >=
		  (XCOPY_MAX_CSCDS + 1) * XCOPY_CSCD_LEN + XCOPY_SEG_B2B_LEN);
	CU_ASSERT(XCOPY_MAX_DESC_LIST >=
		  XCOPY_CSCD_LEN + (XCOPY_MAX_SEGMENTS + 1) * XCOPY_SEG_B2B_LEN);
	/* truncated to the allocation length */
	CU_ASSERT_EQUAL(rcr(RCR_SA_OPERATING_PARAMS, 0, 8), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fx_t.data_len, 8);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"table entries", test_table_entries},
	    {"INQUIRY 3PC", test_inquiry_3pc},
	    {"zero length and prepare limits", test_zero_length_and_prep_limits},
	    {"copy within the LU", test_copy_within_lu},
	    {"chunks and overlap", test_chunks_and_overlap},
	    {"list length errors", test_list_length_errors},
	    {"descriptor limits and types", test_descriptor_limits_and_types},
	    {"CSCD checks", test_cscd_checks},
	    {"segment errors", test_segment_errors},
	    {"volume errors", test_volume_errors},
	    {"aborted task stops", test_aborted_task_stops},
	    {"write-protected destination", test_write_protected_destination},
	    {"copy to another target", test_copy_to_other_target},
	    {"block sizes and DC", test_block_sizes_and_dc},
	    {"COPY STATUS", test_copy_status},
	    {"list id in progress and reuse", test_list_id_in_progress_and_reuse},
	    {"OPERATING PARAMETERS", test_operating_parameters},
	};
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite_with_setup_and_teardown("scsi_xcopy", xc_init, xc_fini, xc_reset, NULL);
	if (s == NULL)
		return 1;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tests); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
