/*
 * scsi_fixture_ext.h: what the thin-provisioning, atomic-write and media
 * tests add to scsi_fixture.h: the sources under test, a drain that also
 * executes UNMAP / WRITE ZEROES on the in-memory volume (and tracks which
 * blocks are deallocated, for GET LBA STATUS), and a deterministic stand-in
 * for util_reactor_send() so write-gate wake-ups run when the test says.
 */
#ifndef SCSI_FIXTURE_EXT_H
#define SCSI_FIXTURE_EXT_H

#include "scsi_fixture.h"

#include "iscsi-tgt/scsi_caw.c"
#include "iscsi-tgt/scsi_lbp.c"
#include "iscsi-tgt/scsi_media.c"

static bool fx_hole[FX_BLOCKS]; /* deallocated blocks of the fake volume */

/* util_reactor_send(): queued until fx_run_msgs() */
#define FX_MSGS 16
static util_msg_fn fx_msg_fn[FX_MSGS];
static void *fx_msg_arg[FX_MSGS];
static unsigned fx_nmsgs;

int util_reactor_send(struct util_reactor *r, util_msg_fn fn, void *arg)
{
	(void)r;
	CU_ASSERT_FATAL(fx_nmsgs < FX_MSGS);
	fx_msg_fn[fx_nmsgs] = fn;
	fx_msg_arg[fx_nmsgs++] = arg;
	return 0;
}

static void fx_run_msgs(void)
{
	while (fx_nmsgs > 0) {
		util_msg_fn fn = fx_msg_fn[0];
		void *arg = fx_msg_arg[0];

		fx_nmsgs--;
		memmove(fx_msg_fn, fx_msg_fn + 1, fx_nmsgs * sizeof(fx_msg_fn[0]));
		memmove(fx_msg_arg, fx_msg_arg + 1, fx_nmsgs * sizeof(fx_msg_arg[0]));
		fn(arg);
	}
}

int vol_get_lba_status(struct vol *v, uint64_t offset, uint64_t *len, bool *mapped)
{
	uint64_t b = offset / v->bs, end = b, max = b + *len / v->bs;

	if (offset >= v->size || *len == 0)
		return -EINVAL;
	max = UTIL_MIN(max, (uint64_t)FX_BLOCKS);
	*mapped = !fx_hole[b];
	while (end < max && fx_hole[end] == !*mapped)
		end++;
	*len = (end - b) * v->bs;
	return 0;
}

/* Run one queued request (data ops in memory, UNMAP and WRITE ZEROES too). */
static void fx_step(void)
{
	struct vol_io *io = fx_pending[0];
	uint64_t off = io->offset;

	memmove(fx_pending, fx_pending + 1, --fx_npending * sizeof(fx_pending[0]));
	if (fx_status == 0) {
		for (int i = 0; i < io->iovcnt; i++) {
			uint8_t *mem = io->vol->data + off;

			if (io->op == VOL_OP_READ)
				memcpy(io->iov[i].iov_base, mem, io->iov[i].iov_len);
			else if (io->op == VOL_OP_WRITE)
				memcpy(mem, io->iov[i].iov_base, io->iov[i].iov_len);
			off += io->iov[i].iov_len;
		}
		for (uint64_t b = io->offset / FX_BS; b < (io->offset + io->len) / FX_BS; b++) {
			if (io->op == VOL_OP_UNMAP || io->op == VOL_OP_WRITE_ZEROES)
				memset(io->vol->data + b * FX_BS, 0, FX_BS);
			if (io->op == VOL_OP_WRITE || io->op == VOL_OP_WRITE_ZEROES)
				fx_hole[b] = false;
			else if (io->op == VOL_OP_UNMAP)
				fx_hole[b] = true;
		}
	}
	io->cb(io->cb_arg, fx_status);
}

static void fx_drain_all(void)
{
	while (fx_npending > 0 || fx_nmsgs > 0) {
		if (fx_npending > 0)
			fx_step();
		else
			fx_run_msgs();
	}
}

/* Like fixture_run_ex(), with \p edtl as ExpectedDataTransferLength and the full drain. */
static int fx_run(const uint8_t *cdb, const void *out, uint32_t out_len, uint32_t edtl)
{
	int rc;

	fixture_task(cdb, 16, false);
	fx_t.exp_xfer_len = edtl;
	rc = tgt_scsi_prepare(&fx_t);
	if (rc != 0)
		return rc;
	fx_buf = malloc(fx_t.xfer_len ? fx_t.xfer_len : 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_buf);
	memset(fx_buf, 0, fx_t.xfer_len);
	if (out != NULL)
		memcpy(fx_buf, out, UTIL_MIN(out_len, fx_t.xfer_len));
	fx_t.buf = fx_buf;
	fx_t.buf_len = fx_t.xfer_len;
	tgt_scsi_execute(&fx_t);
	fx_drain_all();
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	CU_ASSERT_EQUAL(fx_t.gate, 0); /* the gate is always released */
	return rc;
}

/* Keep the fixture helpers these tests do not call from tripping -Wunused. */
static inline void fx_unused(void)
{
	(void)fixture_run;
	(void)fx_field;
}

static void fx_reset_ext(void)
{
	fixture_reset();
	memset(fx_hole, 0, sizeof(fx_hole));
	fx_nmsgs = 0;
	atomic_store(&fx_target.lu.sanitizing, false);
}

#endif /* SCSI_FIXTURE_EXT_H */
