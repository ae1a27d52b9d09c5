/*
 * scsi_fixture.h: the shared fixture of the SCSI device server tests.
 *
 * Includes the scsi_*.c sources (SPDK style, to reach their statics) and
 * defines every symbol they need from other modules: the connection hooks
 * (tgt_task_done, tgt_task_chan, tgt_task_config), an in-memory volume
 * whose vol_submit() queues the request for fixture_drain() (a callback
 * never runs inside vol_submit(), as the real contract says), and the
 * reactor buffer pool (malloc with an outstanding count, so a leaked
 * scratch buffer fails the test).
 */
#ifndef SCSI_FIXTURE_H
#define SCSI_FIXTURE_H

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-tgt/scsi_sense.c"
#include "iscsi-tgt/scsi_table.c"
#include "iscsi-tgt/scsi_spc.c"
#include "iscsi-tgt/scsi_sbc.c"

#define FX_BS	  512u
#define FX_BLOCKS 2048u
#define FX_QUEUE  16
#define FX_IQN	  "iqn.2024-01.org.vmengine:vol1"
#define FX_SERIAL "0011223344556677"

struct vol {
	uint8_t *data;
	uint64_t size;
	uint32_t bs;
	uint8_t id[VOL_ID_LEN];
};
struct vol_chan {
	int unused;
};

static struct vol fx_vol;
static struct vol_chan fx_chan;
static struct tgt_config fx_cfg;
static struct tgt_target fx_target;
static struct tgt_itl fx_itl0, fx_itl1; /* fx_itl0 is the nexus the tests use */

/* the fake volume's queue and fault injection */
static struct vol_io *fx_pending[FX_QUEUE];
static unsigned fx_npending;
static int fx_submit_rc;	 /* vol_submit() returns this when non-zero */
static int fx_status;		 /* every completion reports this */
static unsigned fx_submits;	 /* vol_submit() calls accepted */
static struct vol_io fx_last_io; /* a copy of the last accepted request */

static unsigned fx_done;	 /* tgt_task_done() calls */
static long fx_bufs_out;	 /* scratch buffers not yet put back */
static uint8_t fx_reactor_dummy; /* stands for the reactor and its pool */

/* The task under test and its buffer (exactly xfer_len bytes: ASan checks). */
static struct tgt_task fx_t;
static uint8_t *fx_buf;

/* ---- stubs: vol ---- */

const char *vol_name(const struct vol *v)
{
	(void)v;
	return "vol1";
}

uint64_t vol_size(const struct vol *v)
{
	return v->size;
}

uint32_t vol_block_size(const struct vol *v)
{
	return v->bs;
}

const uint8_t *vol_id(const struct vol *v)
{
	return v->id;
}

bool vol_can_unmap(const struct vol *v)
{
	(void)v;
	return false;
}

int vol_submit(struct vol_chan *ch, struct vol *v, struct vol_io *io)
{
	CU_ASSERT_PTR_EQUAL(ch, &fx_chan);
	if (fx_submit_rc != 0)
		return fx_submit_rc;
	if (io->offset % v->bs != 0 || io->len % v->bs != 0 || io->offset > v->size ||
	    io->len > v->size - io->offset)
		return -EINVAL;
	CU_ASSERT_FATAL(fx_npending < FX_QUEUE);
	io->vol = v;
	fx_pending[fx_npending++] = io;
	fx_submits++;
	fx_last_io = *io;
	return 0;
}

/* Run the queued requests against the memory, then their callbacks. */
static void fixture_drain(void)
{
	while (fx_npending > 0) {
		struct vol_io *io = fx_pending[0];
		uint64_t off = io->offset;

		memmove(fx_pending, fx_pending + 1, --fx_npending * sizeof(fx_pending[0]));
		for (int i = 0; fx_status == 0 && i < io->iovcnt; i++) {
			uint8_t *mem = io->vol->data + off;

			if (io->op == VOL_OP_READ)
				memcpy(io->iov[i].iov_base, mem, io->iov[i].iov_len);
			else if (io->op == VOL_OP_WRITE)
				memcpy(mem, io->iov[i].iov_base, io->iov[i].iov_len);
			off += io->iov[i].iov_len;
		}
		io->cb(io->cb_arg, fx_status);
	}
}

/* ---- stubs: the connection ---- */

/*
 * A test that runs tasks of its own besides fx_t (several in flight) sets
 * this to count their completions; NULL: fx_t is the only task.
 */
static void (*fx_done_hook)(struct tgt_task *t);

void tgt_task_done(struct tgt_task *t)
{
	if (fx_done_hook != NULL && t != &fx_t) {
		fx_done_hook(t);
		return;
	}
	CU_ASSERT_PTR_EQUAL(t, &fx_t);
	fx_done++;
}

struct vol_chan *tgt_task_chan(const struct tgt_task *t)
{
	(void)t;
	return &fx_chan;
}

const struct tgt_config *tgt_task_config(const struct tgt_task *t)
{
	(void)t;
	return &fx_cfg;
}

/* ---- stubs: util ---- */

uint64_t util_now_ns(void)
{
	static uint64_t now;

	return now += 2000000000ull; /* every rate-limited line gets out */
}

struct util_reactor *util_reactor_self(void)
{
	return (struct util_reactor *)&fx_reactor_dummy;
}

struct util_bufpool *util_reactor_bufpool(struct util_reactor *r)
{
	CU_ASSERT_PTR_EQUAL(r, &fx_reactor_dummy);
	return (struct util_bufpool *)&fx_reactor_dummy;
}

void *util_buf_get(struct util_bufpool *bp, size_t len)
{
	(void)bp;
	fx_bufs_out++;
	return malloc(len ? len : 1);
}

void util_buf_put(struct util_bufpool *bp, void *buf, size_t len)
{
	(void)bp;
	(void)len;
	if (buf != NULL)
		fx_bufs_out--;
	free(buf);
}

/* ---- setup ---- */

static int fixture_init(void)
{
	fx_vol.bs = FX_BS;
	fx_vol.size = (uint64_t)FX_BLOCKS * FX_BS;
	fx_vol.data = calloc(FX_BLOCKS, FX_BS);
	for (unsigned i = 0; i < VOL_ID_LEN; i++)
		fx_vol.id[i] = (uint8_t)(0x60 + i);
	snprintf(fx_target.iqn, sizeof(fx_target.iqn), "%s", FX_IQN);
	fx_target.lu.lun = 0;
	fx_target.lu.vol = &fx_vol;
	fx_target.lu.target = &fx_target;
	snprintf(fx_target.lu.serial, sizeof(fx_target.lu.serial), "%s", FX_SERIAL);
	pthread_mutex_init(&fx_target.lu.lock, NULL);
	LIST_INIT(&fx_target.lu.itls);
	fx_itl0.lu = fx_itl1.lu = &fx_target.lu;
	LIST_INSERT_HEAD(&fx_target.lu.itls, &fx_itl0, lu_link);
	LIST_INSERT_HEAD(&fx_target.lu.itls, &fx_itl1, lu_link);
	return fx_vol.data == NULL;
}

static int fixture_fini(void)
{
	free(fx_buf);
	fx_buf = NULL;
	free(fx_vol.data);
	pthread_mutex_destroy(&fx_target.lu.lock);
	return 0;
}

/* Before each test: a fresh, zeroed volume and default settings. */
static void fixture_reset(void)
{
	fx_vol.size = (uint64_t)FX_BLOCKS * FX_BS;
	fx_vol.bs = FX_BS;
	memset(fx_vol.data, 0, (size_t)FX_BLOCKS * FX_BS);
	memset(&fx_cfg, 0, sizeof(fx_cfg));
	fx_cfg.max_xfer_blocks = 1024;
	atomic_store(&fx_target.lu.wce, true);
	atomic_store(&fx_target.lu.d_sense, false);
	atomic_store(&fx_itl0.ua, 0);
	atomic_store(&fx_itl1.ua, 0);
	fx_npending = 0;
	fx_submit_rc = 0;
	fx_status = 0;
	fx_submits = 0;
	memset(&fx_last_io, 0, sizeof(fx_last_io));
	fx_bufs_out = 0;
}

/* Fill a task for the LU (or none with \p no_lu) from a CDB. */
static void fixture_task(const uint8_t *cdb, size_t len, bool no_lu)
{
	free(fx_buf);
	fx_buf = NULL;
	memset(&fx_t, 0, sizeof(fx_t));
	fx_t.target = &fx_target;
	if (!no_lu) {
		fx_t.lu = &fx_target.lu;
		fx_t.itl = &fx_itl0;
	}
	fx_t.lun = 0;
	memcpy(fx_t.cdb, cdb, len);
	fx_t.cdb_len = 16;
	fx_done = 0;
	fx_submits = 0;
}

/*
 * Run a command the way the connection does: prepare; unless complete,
 * give it a buffer of exactly xfer_len bytes holding \p out (data-out),
 * execute, drain the volume. Returns prepare's result.
 */
static int fixture_run_ex(const uint8_t *cdb, size_t len, const void *out, uint32_t out_len,
			  bool no_lu)
{
	int rc;

	fixture_task(cdb, len, no_lu);
	rc = tgt_scsi_prepare(&fx_t);
	if (rc != 0) {
		CU_ASSERT_EQUAL(fx_done, 0); /* prepare never calls tgt_task_done() */
		return rc;
	}
	fx_buf = malloc(fx_t.xfer_len ? fx_t.xfer_len : 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_buf);
	memset(fx_buf, 0xee, fx_t.xfer_len);
	if (fx_t.dir == TGT_DIR_OUT && out != NULL)
		memcpy(fx_buf, out, UTIL_MIN(out_len, fx_t.xfer_len));
	fx_t.buf = fx_buf;
	fx_t.buf_len = fx_t.xfer_len;
	tgt_scsi_execute(&fx_t);
	fixture_drain();
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	return rc;
}

static int fixture_run(const uint8_t *cdb, size_t len)
{
	return fixture_run_ex(cdb, len, NULL, 0, false);
}

/* ---- sense checks (fixed or descriptor format) ---- */

static uint8_t fx_sense_key(void)
{
	return (fx_t.sense[0] & 0x7f) == 0x72 ? fx_t.sense[1] & 0x0f : fx_t.sense[2] & 0x0f;
}

static uint16_t fx_sense_code(void)
{
	if ((fx_t.sense[0] & 0x7f) == 0x72)
		return (uint16_t)(fx_t.sense[2] << 8 | fx_t.sense[3]);
	return (uint16_t)(fx_t.sense[12] << 8 | fx_t.sense[13]);
}

/* CHECK CONDITION with key/code? */
static bool fx_check(uint8_t key, uint16_t code)
{
	return fx_t.status == SAM_STAT_CHECK_CONDITION && fx_t.sense_len >= 8 &&
	       fx_sense_key() == key && fx_sense_code() == code;
}

/* The fixed-format field pointer: C/D, BPV+bit, byte. */
static bool fx_field(bool cd, int bit, uint16_t byte)
{
	uint8_t b0 = SENSE_SKSV | (cd ? SENSE_SKS_CD : 0);

	if (bit >= 0)
		b0 |= SENSE_SKS_BPV | (uint8_t)bit;
	return fx_t.sense_len == SENSE_FIXED_LEN && fx_t.sense[15] == b0 &&
	       get_be16(fx_t.sense + 16) == byte;
}

static bool fx_good(void)
{
	return fx_t.status == SAM_STAT_GOOD && fx_t.sense_len == 0;
}

#endif /* SCSI_FIXTURE_H */
