/*
 * vol_virt_ut.c: virtualized volumes over fault-injecting fake back ends:
 * extent mapping and splitting, RAID1 writes (complete only when both legs
 * have them), a leg failed at a chosen I/O, degraded writes marking the
 * dirty-region bitmap, read retry on the other leg, the last leg's errors
 * reaching the caller, a resync that copies exactly the dirty regions, and
 * host writes racing the resync on the region being copied.
 *
 * The fake back end holds every request in one FIFO; the test completes
 * them one by one (pump_one) or all (pump_all), so every interleaving is
 * chosen, never timed. Completions thus never run inside vol_submit().
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

#define KIB  1024ull
#define EXT  (64 * KIB) /* extent */
#define REG  (16 * KIB) /* dirty region */
#define BESZ (512 * KIB)

/* ---- the fake back end ---- */

struct fake {
	struct vol_backend *be;
	uint8_t data[BESZ];
	unsigned nsub;	  /* requests seen */
	unsigned fail_at; /* fail the request with this number (1-based); 0: none */
	bool fail_all;	  /* every request fails (a dead disk) */
	unsigned nwrites; /* writes applied */
	uint64_t wr_off[64], wr_len[64];
};

struct qent {
	struct fake *f;
	struct vol_io *io;
	int status;
};
static struct qent Q[1024];
static unsigned qhead, qtail;

static int fake_submit(void *ctx, struct vol_chan *ch, struct vol_io *io)
{
	struct fake *f = ctx;

	f->nsub++;
	Q[qtail % 1024] = (struct qent){f, io, (f->fail_all || f->nsub == f->fail_at) ? -EIO : 0};
	qtail++;
	return 0;
}

static void fake_close(void *ctx)
{
}

static const struct vol_backend_ops fake_ops = {.submit = fake_submit, .close = fake_close};

static void fake_apply(struct fake *f, struct vol_io *io)
{
	uint64_t off = io->offset;

	switch (io->op) {
	case VOL_OP_READ:
	case VOL_OP_WRITE:
		for (int i = 0; i < io->iovcnt; i++) {
			if (io->op == VOL_OP_READ)
				memcpy(io->iov[i].iov_base, f->data + off, io->iov[i].iov_len);
			else
				memcpy(f->data + off, io->iov[i].iov_base, io->iov[i].iov_len);
			off += io->iov[i].iov_len;
		}
		break;
	case VOL_OP_UNMAP:
	case VOL_OP_WRITE_ZEROES:
		memset(f->data + off, 0, io->len);
		break;
	case VOL_OP_FLUSH:
		break;
	}
	if (io->op != VOL_OP_READ && io->op != VOL_OP_FLUSH && f->nwrites < 64) {
		f->wr_off[f->nwrites] = io->offset;
		f->wr_len[f->nwrites] = io->len;
	}
	if (io->op != VOL_OP_READ && io->op != VOL_OP_FLUSH)
		f->nwrites++;
}

static unsigned queued(void)
{
	return qtail - qhead;
}

static bool pump_one(void)
{
	struct qent e;

	if (qhead == qtail)
		return false;
	e = Q[qhead % 1024];
	qhead++;
	if (e.status == 0)
		fake_apply(e.f, e.io);
	e.io->cb(e.io->cb_arg, e.status);
	return true;
}

static void pump_all(void)
{
	while (pump_one())
		;
}

static struct fake *fake_new(const char *name)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct vol_backend_info info = {0};

	snprintf(info.name, sizeof(info.name), "%s", name);
	info.size = BESZ;
	info.block_size = 512;
	CU_ASSERT_FATAL(vol_backend_create(&fake_ops, f, &info, &f->be) == 0);
	return f;
}

static void fake_free(struct fake *f)
{
	vol_backend_close(f->be);
	free(f);
}

/* ---- environment ---- */

static struct util_reactor *R;
static struct vol_chan *CH;
static int ndone, last_status;
static unsigned nevents;
static enum vol_leg_state last_ev;
static unsigned last_ev_leg;

static void io_cb(void *arg, int status)
{
	ndone++;
	last_status = status;
	if (arg)
		*(int *)arg = status;
}

static void leg_cb(void *arg, struct vol *v, unsigned leg, enum vol_leg_state st)
{
	nevents++;
	last_ev = st;
	last_ev_leg = leg;
}

static void io_set(struct vol_io *io, enum vol_op op, uint64_t off, uint64_t len, struct iovec *iov,
		   int iovcnt)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->offset = off;
	io->len = len;
	io->iov = iov;
	io->iovcnt = iovcnt;
	io->cb = io_cb;
}

/* A mirror of \p size over fakes a and b: leg 0 extents on a at ascending
 * offsets, leg 1 on b in reverse order (so mapping mistakes show). */
static struct vol *mirror_open(struct fake *a, struct fake *b, uint64_t size, unsigned nlegs)
{
	struct vol_backend *bes[2] = {a->be, b ? b->be : NULL};
	struct vol_virt_params p = {.leg_cb = leg_cb};
	struct vol_extent_desc ex[2][8];
	struct vol_desc d = {0};
	struct vol *v = NULL;
	uint32_t n = (uint32_t)((size + EXT - 1) / EXT);

	snprintf(d.name, sizeof(d.name), "m");
	d.size = size;
	d.block_size = 512;
	d.extent_size = EXT;
	d.region_size = REG;
	d.nlegs = nlegs;
	for (uint32_t i = 0; i < n; i++) {
		ex[0][i] = (struct vol_extent_desc){0, i * EXT};
		ex[1][i] = (struct vol_extent_desc){1, (7 - i) * EXT};
	}
	for (unsigned l = 0; l < nlegs; l++) {
		d.legs[l].nextents = n;
		d.legs[l].extents = ex[l];
	}
	CU_ASSERT_EQUAL(vol_open_virt(&d, bes, 2, &p, &v), 0);
	nevents = 0;
	return v;
}

/* Volume bytes [off, off+len) of leg 1 (on fake b, reversed extents). */
static const uint8_t *leg1_at(struct fake *b, uint64_t off)
{
	return b->data + (7 - off / EXT) * EXT + off % EXT;
}

static bool legs_equal(struct fake *a, struct fake *b, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += EXT)
		if (memcmp(a->data + off, leg1_at(b, off), EXT))
			return false;
	return true;
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

/* ---- tests ---- */

static void test_split_map(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 1);
	static uint8_t w[96 * KIB], r[96 * KIB];
	struct iovec iov[3] = {{w, 10 * KIB}, {w + 10 * KIB, 50 * KIB}, {w + 60 * KIB, 36 * KIB}};
	struct iovec riov = {r, sizeof(r)};
	struct vol_io io;

	CU_ASSERT_TRUE(vol_is_virt(v));
	CU_ASSERT_EQUAL(vol_size(v), 4 * EXT);
	fill(w, sizeof(w), 1);
	/* 48 KiB .. 144 KiB: pieces in extents 0, 1 and 2. */
	io_set(&io, VOL_OP_WRITE, 48 * KIB, sizeof(w), iov, 3);
	ndone = 0;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	CU_ASSERT_EQUAL(ndone, 0); /* never inline */
	CU_ASSERT_EQUAL(queued(), 3);
	pump_all();
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(last_status, 0);
	CU_ASSERT_EQUAL(memcmp(a->data + 48 * KIB, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(b->nsub, 0);
	io_set(&io, VOL_OP_READ, 48 * KIB, sizeof(r), &riov, 1);
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	pump_all();
	CU_ASSERT_EQUAL(memcmp(r, w, sizeof(r)), 0);
	/* Beyond the end: refused at once. */
	io_set(&io, VOL_OP_READ, 4 * EXT - 512, 1024, &riov, 1);
	riov.iov_len = 1024;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), -EINVAL);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_mirror_write(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	static uint8_t w[EXT];
	struct iovec iov = {w, sizeof(w)};
	struct vol_io io;

	fill(w, sizeof(w), 9);
	/* Straddles extents 1 and 2: two pieces on each leg. */
	io_set(&io, VOL_OP_WRITE, EXT + EXT / 2, EXT, &iov, 1);
	ndone = 0;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	CU_ASSERT_EQUAL(queued(), 4);
	for (int i = 0; i < 3; i++) {
		pump_one();
		CU_ASSERT_EQUAL(ndone, 0); /* not before every leg has it */
	}
	pump_one();
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(last_status, 0);
	CU_ASSERT_EQUAL(memcmp(a->data + EXT + EXT / 2, w, EXT), 0);
	CU_ASSERT_EQUAL(memcmp(leg1_at(b, EXT + EXT / 2), w, EXT / 2), 0);
	CU_ASSERT_EQUAL(memcmp(leg1_at(b, 2 * EXT), w + EXT / 2, EXT / 2), 0);
	CU_ASSERT_TRUE(legs_equal(a, b, 4 * EXT));
	/* A flush reaches each back end once. */
	io_set(&io, VOL_OP_FLUSH, 0, 0, NULL, 0);
	a->nsub = b->nsub = 0;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	pump_all();
	CU_ASSERT_EQUAL(a->nsub, 1);
	CU_ASSERT_EQUAL(b->nsub, 1);
	CU_ASSERT_EQUAL(nevents, 0);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

/* Write \p len bytes of \p seed at \p off and complete everything. */
static int write_sync(struct vol *v, uint64_t off, uint64_t len, uint8_t seed)
{
	static uint8_t w[EXT];
	struct iovec iov = {w, len};
	struct vol_io io;
	int st = 1;

	fill(w, len, seed);
	io_set(&io, VOL_OP_WRITE, off, len, &iov, 1);
	io.cb_arg = &st;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	pump_all();
	return st;
}

static void test_fail_leg_degraded(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	struct vol_virt_status st;
	uint64_t words[1] = {0};

	/* Leg 1 (fake b) fails its second request. */
	b->fail_at = 2;
	CU_ASSERT_EQUAL(write_sync(v, 0, 4 * KIB, 1), 0);
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_OK);
	CU_ASSERT_EQUAL(st.dirty_regions, 0);
	CU_ASSERT_EQUAL(write_sync(v, REG + 512, 1024, 2), 0); /* region 1: fails on b */
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.leg[0], VOL_LEG_OK);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_FAILED);
	CU_ASSERT_EQUAL(nevents, 1);
	CU_ASSERT_EQUAL(last_ev_leg, 1);
	CU_ASSERT_EQUAL(last_ev, VOL_LEG_FAILED);
	CU_ASSERT_EQUAL(st.dirty_regions, 1);
	/* Degraded: only leg 0 gets writes, each marks its regions. */
	CU_ASSERT_EQUAL(write_sync(v, 5 * REG, 2 * REG, 3), 0); /* regions 5, 6 */
	CU_ASSERT_EQUAL(write_sync(v, 12 * REG, 512, 4), 0);	/* region 12 */
	CU_ASSERT_EQUAL(b->nsub, 2);
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.dirty_regions, 4);
	CU_ASSERT_EQUAL(st.writes_degraded, 3);
	CU_ASSERT_EQUAL(vol_virt_dirty_get(v, words, 1), 1);
	CU_ASSERT_EQUAL(words[0], (1ull << 1) | (1ull << 5) | (1ull << 6) | (1ull << 12));
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_read_retry(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	static uint8_t r[8 * KIB], w[8 * KIB];
	struct iovec iov = {r, sizeof(r)};
	struct vol_virt_status st;
	struct vol_io io;

	CU_ASSERT_EQUAL(write_sync(v, 3 * EXT, sizeof(r), 5), 0);
	fill(w, sizeof(w), 5);
	/* The next read goes to leg 0 (rotation starts there); it fails. */
	a->fail_at = a->nsub + 1;
	io_set(&io, VOL_OP_READ, 3 * EXT, sizeof(r), &iov, 1);
	ndone = 0;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	pump_all();
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(last_status, 0);
	CU_ASSERT_EQUAL(memcmp(r, w, sizeof(r)), 0);
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.reads_retried, 1);
	CU_ASSERT_EQUAL(st.leg[0], VOL_LEG_FAILED);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_OK);
	/* Leg 1 is the last one: its errors reach the caller, it stays OK. */
	b->fail_all = true;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	pump_all();
	CU_ASSERT_EQUAL(last_status, -EIO);
	CU_ASSERT_EQUAL(write_sync(v, 0, 512, 1), -EIO);
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_OK);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static int rs_status;
static int rs_calls;
static void rs_cb(void *arg, int status)
{
	rs_calls++;
	rs_status = status;
}

static void test_resync_exact(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	struct vol_virt_status st;

	CU_ASSERT_EQUAL(write_sync(v, 0, EXT, 1), 0);
	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	CU_ASSERT_EQUAL(write_sync(v, REG, 512, 2), 0);		   /* region 1 */
	CU_ASSERT_EQUAL(write_sync(v, 5 * REG + 4096, REG, 3), 0); /* regions 5, 6 */
	CU_ASSERT_FALSE(legs_equal(a, b, 4 * EXT));
	/* Not while the leg is OK, not the last OK leg. */
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 0, 0, rs_cb, NULL), -EINVAL);
	b->nwrites = 0;
	rs_calls = 0;
	rs_status = 1;
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, rs_cb, NULL), 0);
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, rs_cb, NULL), -EBUSY);
	vol_virt_status(v, &st);
	CU_ASSERT_TRUE(st.resyncing);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_RESYNC);
	CU_ASSERT_EQUAL(st.resync_total, 3);
	pump_all();
	CU_ASSERT_EQUAL(rs_calls, 1);
	CU_ASSERT_EQUAL(rs_status, 0);
	/* Exactly the three dirty regions were written to leg 1. */
	CU_ASSERT_EQUAL(b->nwrites, 3);
	CU_ASSERT_EQUAL(b->wr_off[0], (uint64_t)(leg1_at(b, REG) - b->data));
	CU_ASSERT_EQUAL(b->wr_off[1], (uint64_t)(leg1_at(b, 5 * REG) - b->data));
	CU_ASSERT_EQUAL(b->wr_off[2], (uint64_t)(leg1_at(b, 6 * REG) - b->data));
	CU_ASSERT_EQUAL(b->wr_len[0], REG);
	CU_ASSERT_TRUE(legs_equal(a, b, 4 * EXT));
	vol_virt_status(v, &st);
	CU_ASSERT_FALSE(st.resyncing);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_OK);
	CU_ASSERT_EQUAL(st.dirty_regions, 0);
	CU_ASSERT_EQUAL(st.resync_done, 3);
	CU_ASSERT_EQUAL(last_ev, VOL_LEG_OK);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

/* Is a request for fake f at back-end offset off queued? */
static bool queued_at(struct fake *f, enum vol_op op, uint64_t off)
{
	for (unsigned i = qhead; i != qtail; i++)
		if (Q[i % 1024].f == f && Q[i % 1024].io->op == op &&
		    Q[i % 1024].io->offset <= off &&
		    off < Q[i % 1024].io->offset + Q[i % 1024].io->len)
			return true;
	return false;
}

static void test_resync_concurrent(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	static uint8_t w1[REG], w2[REG];
	struct iovec iov1 = {w1, REG}, iov2 = {w2, REG};
	struct vol_io io1, io2;
	int st1 = 1, st2 = 1;
	uint64_t b_r2 = (uint64_t)(leg1_at(b, 2 * REG) - b->data);
	uint64_t b_r3 = (uint64_t)(leg1_at(b, 3 * REG) - b->data);

	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	CU_ASSERT_EQUAL(write_sync(v, 2 * REG, 2 * REG, 7), 0); /* regions 2, 3 dirty */

	/* A host write to region 3 is in flight when the resync starts. */
	fill(w2, REG, 0x33);
	io_set(&io2, VOL_OP_WRITE, 3 * REG, REG, &iov2, 1);
	io2.cb_arg = &st2;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io2), 0); /* to leg 0 only (FAILED leg 1) */
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, rs_cb, NULL), 0);
	/* The copy of region 2 starts at once: a read on leg 0. */
	CU_ASSERT_TRUE(queued_at(a, VOL_OP_READ, 2 * REG));
	/* A host write to region 2 while it is being copied waits. */
	fill(w1, REG, 0x22);
	io_set(&io1, VOL_OP_WRITE, 2 * REG, REG, &iov1, 1);
	io1.cb_arg = &st1;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io1), 0);
	CU_ASSERT_FALSE(queued_at(a, VOL_OP_WRITE, 2 * REG));
	CU_ASSERT_FALSE(queued_at(b, VOL_OP_WRITE, b_r2));
	/* Complete in order: write to region 3 (leg 0), the copy's read,
	 * then the copy's write; only then may the host write go. */
	pump_one(); /* io2 on leg 0 */
	CU_ASSERT_EQUAL(st2, 0);
	pump_one(); /* copy read */
	CU_ASSERT_TRUE(queued_at(b, VOL_OP_WRITE, b_r2));
	CU_ASSERT_FALSE(queued_at(a, VOL_OP_WRITE, 2 * REG));
	pump_one(); /* copy write to leg 1 */
	/* Released: the host write goes to both legs, and the copy of
	 * region 3 starts (its earlier write is done). */
	CU_ASSERT_TRUE(queued_at(a, VOL_OP_WRITE, 2 * REG));
	CU_ASSERT_TRUE(queued_at(b, VOL_OP_WRITE, b_r2));
	pump_all();
	CU_ASSERT_EQUAL(st1, 0);
	CU_ASSERT_EQUAL(rs_status, 0);
	CU_ASSERT_TRUE(legs_equal(a, b, 4 * EXT));
	CU_ASSERT_EQUAL(memcmp(a->data + 2 * REG, w1, REG), 0);
	CU_ASSERT_EQUAL(memcmp(leg1_at(b, 2 * REG), w1, REG), 0);
	CU_ASSERT_EQUAL(memcmp(leg1_at(b, 3 * REG), w2, REG), 0);
	(void)b_r3;
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_resync_drain(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	static uint8_t w[REG];
	struct iovec iov = {w, REG};
	struct vol_io io;
	int st = 1;

	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	CU_ASSERT_EQUAL(write_sync(v, 4 * REG, 512, 1), 0); /* region 4 dirty */
	/* A degraded write to region 4 is still in flight at resync start:
	 * the copy must wait for it, or it would read the old data. */
	fill(w, REG, 0x44);
	io_set(&io, VOL_OP_WRITE, 4 * REG, REG, &iov, 1);
	io.cb_arg = &st;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	rs_status = 1;
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, rs_cb, NULL), 0);
	CU_ASSERT_FALSE(queued_at(a, VOL_OP_READ, 4 * REG));
	pump_one(); /* the host write completes: the copy starts */
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_TRUE(queued_at(a, VOL_OP_READ, 4 * REG));
	pump_all();
	CU_ASSERT_EQUAL(rs_status, 0);
	CU_ASSERT_TRUE(legs_equal(a, b, 4 * EXT));
	CU_ASSERT_EQUAL(memcmp(leg1_at(b, 4 * REG), w, REG), 0);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_resync_fails(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = mirror_open(a, b, 4 * EXT, 2);
	struct vol_virt_status st;
	uint64_t words[1];

	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	CU_ASSERT_EQUAL(write_sync(v, 0, 3 * REG, 1), 0); /* regions 0-2 */
	/* The returning disk dies again at the second copy. */
	b->fail_at = b->nsub + 2;
	rs_status = 1;
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, rs_cb, NULL), 0);
	pump_all();
	CU_ASSERT_EQUAL(rs_status, -EIO);
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.leg[1], VOL_LEG_FAILED);
	CU_ASSERT_EQUAL(st.dirty_regions, 2); /* region 0 copied, 1 and 2 not */
	/* The bitmap goes to the map and comes back after a restart. */
	CU_ASSERT_EQUAL(vol_virt_dirty_get(v, words, 1), 1);
	CU_ASSERT_EQUAL(words[0], 6);
	vol_close(v);
	v = mirror_open(a, b, 4 * EXT, 2);
	words[0] |= 1ull << 63; /* beyond the 16 regions: ignored */
	vol_virt_dirty_set(v, words, 1);
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.dirty_regions, 2);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_open_checks(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol_backend *bes[2] = {a->be, b->be};
	struct vol_extent_desc ex0[1] = {{0, 0}}, ex1[1] = {{1, BESZ - 512}};
	struct vol_desc d = {
	    .size = EXT, .block_size = 512, .extent_size = EXT, .region_size = REG, .nlegs = 2};
	struct vol *v;

	snprintf(d.name, sizeof(d.name), "x");
	d.legs[0] = (struct vol_leg_desc){VOL_LEG_OK, 1, ex0};
	d.legs[1] = (struct vol_leg_desc){VOL_LEG_OK, 1, ex1};
	CU_ASSERT_EQUAL(vol_open_virt(&d, bes, 2, NULL, &v), -EINVAL); /* past the end */
	ex1[0].offset = 0;
	d.legs[0].state = d.legs[1].state = VOL_LEG_FAILED;
	CU_ASSERT_EQUAL(vol_open_virt(&d, bes, 2, NULL, &v), -ENODEV);
	d.legs[0].state = VOL_LEG_OK;
	ex1[0].backend = 5;
	CU_ASSERT_EQUAL(vol_open_virt(&d, bes, 2, NULL, &v), -EINVAL);
	ex1[0].backend = 1;
	CU_ASSERT_EQUAL(vol_open_virt(&d, bes, 2, NULL, &v), 0);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

/* ---- real files through the libaio channel, the reactor on this thread ---- */

static int loop_target, loop_ticks;

static void loop_cb(void *arg, int status)
{
	io_cb(arg, status);
	if (ndone >= loop_target)
		util_reactor_stop(R);
}

static void loop_watchdog(void *arg)
{
	if (++loop_ticks >= 20) /* 5 s: far beyond a few small file I/Os */
		util_reactor_stop(R);
}

static void loop_until(int target)
{
	struct util_tick *t = util_reactor_tick_add(R, loop_watchdog, NULL);

	loop_target = target;
	loop_ticks = 0;
	if (ndone < target)
		util_reactor_run(R);
	util_reactor_tick_del(R, t);
	CU_ASSERT_EQUAL(ndone, target);
}

static void test_file_backends(void)
{
	char dir[] = "/tmp/vol_virt_ut.XXXXXX", pa[64], pb[64], cmd[128];
	struct vol_backend *be[2] = {NULL, NULL};
	struct vol_space sp[2];
	struct vol_desc d;
	struct vol *v = NULL;
	static uint8_t w[3 * EXT], r[3 * EXT], fa[3 * EXT], fb[3 * EXT];
	struct iovec wi = {w, sizeof(w)}, ri = {r, sizeof(r)};
	struct vol_io io;
	FILE *f;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(pa, sizeof(pa), "%s/a.img", dir);
	snprintf(pb, sizeof(pb), "%s/b.img", dir);
	CU_ASSERT_FATAL(vol_backend_open_file("fa", pa, BESZ, 512, &be[0]) == 0);
	CU_ASSERT_FATAL(vol_backend_open_file("fb", pb, BESZ, 512, &be[1]) == 0);
	CU_ASSERT_EQUAL(vol_backend_info(be[0])->id_len, VOL_ID_LEN);
	CU_ASSERT_EQUAL(vol_backend_info(be[0])->id[0] >> 4, 6); /* NAA 6h */
	for (int i = 0; i < 2; i++)
		CU_ASSERT_FATAL(vol_space_init(&sp[i], BESZ, EXT) == 0);
	CU_ASSERT_FATAL(vol_desc_create(&d, "fm", 4 * EXT, 512, EXT, REG, 2, sp, 2) == 0);
	CU_ASSERT_FATAL(vol_open_virt(&d, be, 2, NULL, &v) == 0);

	fill(w, sizeof(w), 77);
	io_set(&io, VOL_OP_WRITE, EXT / 2, sizeof(w), &wi, 1);
	io.cb = loop_cb;
	ndone = 0;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	CU_ASSERT_EQUAL(ndone, 0);
	loop_until(1);
	CU_ASSERT_EQUAL(last_status, 0);
	io_set(&io, VOL_OP_READ, EXT / 2, sizeof(r), &ri, 1);
	io.cb = loop_cb;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	loop_until(2);
	CU_ASSERT_EQUAL(memcmp(r, w, sizeof(w)), 0);
	io_set(&io, VOL_OP_FLUSH, 0, 0, NULL, 0);
	io.cb = loop_cb;
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	loop_until(3);
	CU_ASSERT_EQUAL(last_status, 0);
	/* Both files hold the data at the same place (legs from offset 0). */
	f = fopen(pa, "rb");
	CU_ASSERT_FATAL(f && fseek(f, EXT / 2, SEEK_SET) == 0);
	CU_ASSERT_EQUAL(fread(fa, 1, sizeof(fa), f), sizeof(fa));
	fclose(f);
	f = fopen(pb, "rb");
	CU_ASSERT_FATAL(f && fseek(f, EXT / 2, SEEK_SET) == 0);
	CU_ASSERT_EQUAL(fread(fb, 1, sizeof(fb), f), sizeof(fb));
	fclose(f);
	CU_ASSERT_EQUAL(memcmp(fa, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(memcmp(fb, w, sizeof(w)), 0);

	vol_close(v);
	vol_desc_free(&d);
	for (int i = 0; i < 2; i++) {
		vol_backend_close(be[i]);
		vol_space_fini(&sp[i]);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

int main(void)
{
	CU_pSuite s;
	int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	R = util_reactor_create("ut-virt");
	CH = R ? vol_chan_create(R) : NULL;
	if (!CH)
		return 1;
	s = CU_add_suite("vol_virt", NULL, NULL);
	CU_add_test(s, "extent mapping and splitting", test_split_map);
	CU_add_test(s, "mirror write completes after both legs", test_mirror_write);
	CU_add_test(s, "leg failed at a chosen I/O, degraded writes mark the bitmap",
		    test_fail_leg_degraded);
	CU_add_test(s, "read retried on the other leg; last leg's errors", test_read_retry);
	CU_add_test(s, "resync copies exactly the dirty regions", test_resync_exact);
	CU_add_test(s, "host write during the copy of its region waits", test_resync_concurrent);
	CU_add_test(s, "copy waits for writes in flight in its region", test_resync_drain);
	CU_add_test(s, "resync stopped by a failure keeps the rest dirty", test_resync_fails);
	CU_add_test(s, "open checks", test_open_checks);
	CU_add_test(s, "mirror over two local-file back ends", test_file_backends);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	vol_chan_destroy(CH);
	util_reactor_destroy(R);
	return failures ? 1 : 0;
}
