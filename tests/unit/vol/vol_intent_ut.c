/*
 * vol_intent_ut.c: the write intent of a mirrored virtualized volume
 * (vol/vol_intent.c) over fake back ends and a fake hook: a write to a
 * region not yet recorded waits for the hook's SET to complete; a second
 * write there does not call it; regions touched while a round is in flight
 * go in one next round; a sequential stream gets the next region ahead;
 * idle regions are cleared (but not those with a write in flight, nor those
 * dirty because a leg failed); no hook, no waiting;
 * reads never wait; a refused or failed round; FULL; growth.
 *
 * Back-end requests wait in one FIFO that the test completes (pump_all), and
 * the hook's SET completions are called by the test: every interleaving is
 * chosen, none is timed. Time is the now_ms given to vol_virt_intent_tick().
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

#define KIB  1024ull
#define EXT  (64 * KIB) /* extent */
#define REG  (16 * KIB) /* region: 4 per extent */
#define BESZ (2048 * KIB)

/* ---- fake back ends: requests wait in a FIFO ---- */

struct fake {
	struct vol_backend *be;
	uint8_t data[BESZ];
	unsigned nsub;
};

static struct {
	struct fake *f;
	struct vol_io *io;
} Q[256];
static unsigned qhead, qtail;

static int fake_submit(void *ctx, struct vol_chan *ch, struct vol_io *io)
{
	struct fake *f = ctx;

	f->nsub++;
	Q[qtail % 256].f = f;
	Q[qtail % 256].io = io;
	qtail++;
	return 0;
}

static void fake_close(void *ctx)
{
}

static const struct vol_backend_ops fake_ops = {.submit = fake_submit, .close = fake_close};

static unsigned queued(void)
{
	return qtail - qhead;
}

static void pump_all(void)
{
	while (qhead != qtail) {
		struct fake *f = Q[qhead % 256].f;
		struct vol_io *io = Q[qhead % 256].io;
		uint64_t off = io->offset;

		qhead++;
		for (int i = 0; i < io->iovcnt && (io->op == VOL_OP_WRITE || io->op == VOL_OP_READ);
		     i++) {
			if (io->op == VOL_OP_WRITE)
				memcpy(f->data + off, io->iov[i].iov_base, io->iov[i].iov_len);
			else
				memcpy(io->iov[i].iov_base, f->data + off, io->iov[i].iov_len);
			off += io->iov[i].iov_len;
		}
		io->cb(io->cb_arg, 0);
	}
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct vol_backend_info info = {.size = BESZ, .block_size = 512};

	snprintf(info.name, sizeof(info.name), "fake");
	CU_ASSERT_FATAL(vol_backend_create(&fake_ops, f, &info, &f->be) == 0);
	return f;
}

static void fake_free(struct fake *f)
{
	vol_backend_close(f->be);
	free(f);
}

/* ---- the fake hook: calls are kept, SETs completed by the test ---- */

struct call {
	enum vol_intent_op op;
	uint64_t w0, w1; /* words 0 and 1 of the bitmap */
	size_t nwords;
	vol_intent_done_fn done;
	void *done_arg;
};
static struct call calls[64];
static unsigned ncalls;
static int hook_rc; /* what the hook returns */

static int hook(void *arg, struct vol *v, enum vol_intent_op op, const uint64_t *words,
		size_t nwords, vol_intent_done_fn done, void *done_arg)
{
	if (hook_rc < 0)
		return hook_rc;
	CU_ASSERT_FATAL(ncalls < UTIL_ARRAY_SIZE(calls));
	calls[ncalls] =
	    (struct call){op, words[0], nwords > 1 ? words[1] : 0, nwords, done, done_arg};
	ncalls++;
	CU_ASSERT_EQUAL(done != NULL, op == VOL_INTENT_SET);
	return 0;
}

/* Complete the SET of call \p i with \p status. */
static void set_done(unsigned i, int status)
{
	CU_ASSERT_FATAL(i < ncalls && calls[i].op == VOL_INTENT_SET && calls[i].done);
	vol_intent_done_fn done = calls[i].done;
	calls[i].done = NULL; /* exactly once */
	done(calls[i].done_arg, status);
}

/* ---- environment ---- */

static struct util_reactor *R;
static struct vol_chan *CH;
static struct fake *A, *B;
static int ndone, last_status;

static void io_cb(void *arg, int status)
{
	ndone++;
	last_status = status;
	if (arg)
		*(int *)arg = status;
}

static struct vol_extent_desc EX[2][32];

/* A mirror of \p next extents: leg 0 on A, leg 1 on B. */
static void desc_fill(struct vol_desc *d, uint32_t next)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "m");
	d->size = next * EXT;
	d->block_size = 512;
	d->extent_size = EXT;
	d->region_size = REG;
	d->nlegs = 2;
	for (uint32_t i = 0; i < next; i++) {
		EX[0][i] = (struct vol_extent_desc){0, i * EXT};
		EX[1][i] = (struct vol_extent_desc){1, i * EXT};
	}
	for (unsigned l = 0; l < 2; l++) {
		d->legs[l].nextents = next;
		d->legs[l].extents = EX[l];
	}
}

/* A mirror of \p next extents (4 regions each). */
static struct vol *open_mirror_n(bool with_hook, uint32_t next)
{
	struct vol_backend *bes[2];
	struct vol_virt_params p = {.intent_cb = with_hook ? hook : NULL};
	struct vol_desc d;
	struct vol *v = NULL;

	A = fake_new();
	B = fake_new();
	bes[0] = A->be;
	bes[1] = B->be;
	desc_fill(&d, next);
	CU_ASSERT_FATAL(vol_open_virt(&d, bes, 2, &p, &v) == 0);
	ncalls = 0;
	hook_rc = 0;
	ndone = 0;
	return v;
}

static struct vol *open_mirror(bool with_hook)
{
	return open_mirror_n(with_hook, 4); /* 16 regions */
}

static void close_mirror(struct vol *v)
{
	vol_close(v);
	fake_free(A);
	fake_free(B);
}

static void submit(struct vol *v, struct vol_io *io, enum vol_op op, uint64_t off, uint64_t len,
		   int *st)
{
	static uint8_t buf[4][EXT];
	static unsigned k;
	static struct iovec iov[4];

	memset(io, 0, sizeof(*io));
	iov[k % 4] = (struct iovec){buf[k % 4], len};
	io->op = op;
	io->offset = off;
	io->len = len;
	io->iov = &iov[k % 4];
	io->iovcnt = op == VOL_OP_READ || op == VOL_OP_WRITE ? 1 : 0;
	io->cb = io_cb;
	io->cb_arg = st;
	k++;
	*st = 1;
	CU_ASSERT_EQUAL(vol_submit(CH, v, io), 0);
}

static struct vol_virt_status status(struct vol *v)
{
	struct vol_virt_status st;

	vol_virt_status(v, &st);
	return st;
}

/* ---- tests ---- */

static void test_first_write_waits(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io, io2;
	int st, st2;

	submit(v, &io, VOL_OP_WRITE, 5 * REG + 512, 1024, &st); /* region 5 */
	CU_ASSERT_EQUAL(ncalls, 1);
	CU_ASSERT_EQUAL(calls[0].op, VOL_INTENT_SET);
	CU_ASSERT_EQUAL(calls[0].w0, 1ull << 5);
	CU_ASSERT_EQUAL(calls[0].nwords, 1);
	CU_ASSERT_EQUAL(queued(), 0); /* no leg has it before it is recorded */
	CU_ASSERT_EQUAL(status(v).intent_waiting, 1);
	pump_all();
	CU_ASSERT_EQUAL(st, 1);
	set_done(0, 0);
	CU_ASSERT_EQUAL(queued(), 2); /* now both legs */
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_EQUAL(status(v).intent_regions, 1);
	CU_ASSERT_EQUAL(status(v).intent_waiting, 0);
	/* The second write there goes at once, without the hook. */
	submit(v, &io2, VOL_OP_WRITE, 5 * REG + 4096, 512, &st2);
	CU_ASSERT_EQUAL(ncalls, 1);
	CU_ASSERT_EQUAL(queued(), 2);
	pump_all();
	CU_ASSERT_EQUAL(st2, 0);
	CU_ASSERT_EQUAL(status(v).intent_rounds, 1);
	CU_ASSERT_EQUAL(status(v).intent_waits, 1);
	close_mirror(v);
}

static void test_batching(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io[4];
	int st[4];

	submit(v, &io[0], VOL_OP_WRITE, 1 * REG, 512, &st[0]); /* round 1: region 1 */
	/* Away from region 1 (not a stream: nothing is asked for ahead). */
	submit(v, &io[1], VOL_OP_WRITE, 5 * REG, 512, &st[1]);	      /* waits for round 2 */
	submit(v, &io[2], VOL_OP_WRITE, 9 * REG - 512, 1024, &st[2]); /* regions 8, 9 */
	submit(v, &io[3], VOL_OP_WRITE, 1 * REG + 512, 512, &st[3]);  /* round 1's region */
	CU_ASSERT_EQUAL(ncalls, 1); /* one round in flight at a time */
	CU_ASSERT_EQUAL(queued(), 0);
	set_done(0, 0);
	/* Round 1 done: its writes go; one round carries the rest. */
	CU_ASSERT_EQUAL(ncalls, 2);
	CU_ASSERT_EQUAL(calls[1].op, VOL_INTENT_SET);
	CU_ASSERT_EQUAL(calls[1].w0, (1ull << 5) | (1ull << 8) | (1ull << 9));
	CU_ASSERT_EQUAL(queued(), 4); /* io[0] and io[3] on both legs */
	pump_all();
	CU_ASSERT_EQUAL(st[0], 0);
	CU_ASSERT_EQUAL(st[3], 0);
	CU_ASSERT_EQUAL(st[1], 1);
	CU_ASSERT_EQUAL(st[2], 1);
	set_done(1, 0);
	pump_all();
	CU_ASSERT_EQUAL(st[1], 0);
	CU_ASSERT_EQUAL(st[2], 0);
	CU_ASSERT_EQUAL(ncalls, 2);
	CU_ASSERT_EQUAL(status(v).intent_regions, 4);
	close_mirror(v);
}

/* Bits first..last of a word. */
static uint64_t bits(unsigned first, unsigned last)
{
	return (last == 63 ? ~0ull : (1ull << (last + 1)) - 1) & ~((1ull << first) - 1);
}

/* Write a quarter of a region at *\p pos and move *\p pos past it: a stream. */
static void stream(struct vol *v, uint64_t *pos, int *st)
{
	static struct vol_io io;

	submit(v, &io, VOL_OP_WRITE, *pos, REG / 4, st);
	*pos += REG / 4;
}

static void test_stream_ahead(void)
{
	struct vol *v = open_mirror_n(true, 16); /* 64 regions */
	uint64_t pos = 0;
	struct vol_io io;
	int st;

	/* The first write waits for its region, nothing more. */
	stream(v, &pos, &st);
	CU_ASSERT_EQUAL(ncalls, 1);
	CU_ASSERT_EQUAL(calls[0].w0, 1ull << 0);
	set_done(0, 0);
	pump_all();
	/* Two writes going on where the last one ended may be chance... */
	for (int i = 0; i < 2; i++) {
		stream(v, &pos, &st);
		pump_all();
	}
	CU_ASSERT_EQUAL(ncalls, 1);
	/* ...the third makes a stream: 16 regions ahead are asked for, and this
	 * write, whose region is recorded, does not wait. */
	stream(v, &pos, &st);
	CU_ASSERT_EQUAL(ncalls, 2);
	CU_ASSERT_EQUAL(calls[1].w0, bits(1, 16));
	CU_ASSERT_EQUAL(queued(), 2);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	set_done(1, 0);
	/* Through regions 1-8: the chunk ahead is recorded, no message. */
	while (pos < 9 * REG) {
		stream(v, &pos, &st);
		CU_ASSERT_EQUAL(queued(), 2); /* at once */
		pump_all();
		CU_ASSERT_EQUAL(st, 0);
	}
	CU_ASSERT_EQUAL(ncalls, 2);
	/* In region 9, half-way (region 17) is not recorded: the next chunk. */
	stream(v, &pos, &st);
	CU_ASSERT_EQUAL(queued(), 2);
	CU_ASSERT_EQUAL(ncalls, 3);
	CU_ASSERT_EQUAL(calls[2].op, VOL_INTENT_SET);
	CU_ASSERT_EQUAL(calls[2].w0, bits(17, 25));
	pump_all();
	set_done(2, 0);
	/* A write that does not continue a stream gets nothing ahead. */
	submit(v, &io, VOL_OP_WRITE, 40 * REG + 4096, 4096, &st);
	CU_ASSERT_EQUAL(ncalls, 4);
	CU_ASSERT_EQUAL(calls[3].w0, 1ull << 40);
	set_done(3, 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	/* Near the end, the chunk stops at the last region. */
	pos = 60 * REG;
	stream(v, &pos, &st);
	set_done(4, 0);
	pump_all();
	for (int i = 0; i < 3; i++) {
		stream(v, &pos, &st);
		pump_all();
	}
	CU_ASSERT_EQUAL(ncalls, 6);
	CU_ASSERT_EQUAL(calls[5].w0, bits(61, 63));
	set_done(5, 0);
	CU_ASSERT_EQUAL(st, 0);
	close_mirror(v);
}

static void test_idle_clear(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io, io2;
	int st, st2;
	const uint64_t t0 = 1000000;

	submit(v, &io, VOL_OP_WRITE, 0, 2 * REG, &st); /* regions 0, 1 */
	set_done(0, 0);
	pump_all();
	submit(v, &io2, VOL_OP_WRITE, 7 * REG, 512, &st2); /* region 7 */
	set_done(1, 0);
	pump_all();
	CU_ASSERT_EQUAL(status(v).intent_regions, 3);
	/* First sweep: everything was written since the previous one. */
	vol_virt_intent_tick(v, t0);
	CU_ASSERT_EQUAL(ncalls, 2);
	/* Region 7 written again, and a write to region 0 still in flight. */
	submit(v, &io2, VOL_OP_WRITE, 7 * REG, 512, &st2);
	pump_all();
	submit(v, &io, VOL_OP_WRITE, 0, 512, &st);
	CU_ASSERT_EQUAL(queued(), 2);
	vol_virt_intent_tick(v, t0 + VOL_INTENT_IDLE_MS - 1); /* not yet */
	CU_ASSERT_EQUAL(ncalls, 2);
	vol_virt_intent_tick(v, t0 + VOL_INTENT_IDLE_MS);
	/* Only region 1 was idle: 7 was written, 0 has a write in flight. */
	CU_ASSERT_EQUAL(ncalls, 3);
	CU_ASSERT_EQUAL(calls[2].op, VOL_INTENT_CLEAR);
	CU_ASSERT_EQUAL(calls[2].w0, 1ull << 1);
	CU_ASSERT_EQUAL(status(v).intent_regions, 2);
	CU_ASSERT_EQUAL(status(v).intent_cleared, 1);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	/* A period later both are idle: one CLEAR for the two. */
	vol_virt_intent_tick(v, t0 + 2 * VOL_INTENT_IDLE_MS);
	CU_ASSERT_EQUAL(ncalls, 4);
	CU_ASSERT_EQUAL(calls[3].op, VOL_INTENT_CLEAR);
	CU_ASSERT_EQUAL(calls[3].w0, (1ull << 0) | (1ull << 7));
	CU_ASSERT_EQUAL(status(v).intent_regions, 0);
	/* Cleared regions must be recorded again before the next write. */
	submit(v, &io, VOL_OP_WRITE, 7 * REG, 512, &st);
	CU_ASSERT_EQUAL(ncalls, 5);
	CU_ASSERT_EQUAL(calls[4].op, VOL_INTENT_SET);
	CU_ASSERT_EQUAL(queued(), 0);
	set_done(4, 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	close_mirror(v);
}

static void test_no_hook(void)
{
	struct vol *v = open_mirror(false);
	struct vol_io io;
	int st;

	submit(v, &io, VOL_OP_WRITE, 9 * REG, 512, &st);
	CU_ASSERT_EQUAL(queued(), 2);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	vol_virt_intent_tick(v, 1000000);
	vol_virt_intent_full(v);
	CU_ASSERT_EQUAL(ncalls, 0);
	CU_ASSERT_EQUAL(status(v).intent_rounds, 0);
	close_mirror(v);
}

static void test_reads_never_wait(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io;
	int st;

	submit(v, &io, VOL_OP_READ, 11 * REG, 4096, &st);
	CU_ASSERT_EQUAL(ncalls, 0);
	CU_ASSERT_EQUAL(queued(), 1);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	/* Nor does a flush. */
	submit(v, &io, VOL_OP_FLUSH, 0, 0, &st);
	CU_ASSERT_EQUAL(ncalls, 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	close_mirror(v);
}

static void test_failed_leg_kept(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io;
	int st, rs = 1;
	const uint64_t t0 = 2000000;

	submit(v, &io, VOL_OP_WRITE, 2 * REG, 512, &st); /* region 2, both legs */
	set_done(0, 0);
	pump_all();
	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	submit(v, &io, VOL_OP_WRITE, 6 * REG, 512, &st); /* region 6, degraded */
	set_done(1, 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_EQUAL(status(v).dirty_regions, 1);
	vol_virt_intent_tick(v, t0);
	vol_virt_intent_tick(v, t0 + VOL_INTENT_IDLE_MS);
	vol_virt_intent_tick(v, t0 + 2 * VOL_INTENT_IDLE_MS);
	/* Region 2 went; region 6 differs between the legs: it stays. */
	CU_ASSERT_EQUAL(ncalls, 3);
	CU_ASSERT_EQUAL(calls[2].op, VOL_INTENT_CLEAR);
	CU_ASSERT_EQUAL(calls[2].w0, 1ull << 2);
	CU_ASSERT_EQUAL(status(v).intent_regions, 1);
	/* Once resynced, it is idle like any other. */
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, io_cb, &rs), 0);
	pump_all();
	CU_ASSERT_EQUAL(rs, 0);
	CU_ASSERT_EQUAL(status(v).dirty_regions, 0);
	vol_virt_intent_tick(v, t0 + 3 * VOL_INTENT_IDLE_MS);
	CU_ASSERT_EQUAL(ncalls, 4);
	CU_ASSERT_EQUAL(calls[3].op, VOL_INTENT_CLEAR);
	CU_ASSERT_EQUAL(calls[3].w0, 1ull << 6);
	CU_ASSERT_EQUAL(status(v).intent_regions, 0);
	close_mirror(v);
}

static void test_dirty_is_recorded(void)
{
	struct vol *v = open_mirror(true);
	uint64_t w = (1ull << 3) | (1ull << 12);

	/* A takeover opens with the replicated regions dirty: they are
	 * recorded again (nobody waits), and the FULL carries them. */
	vol_virt_dirty_set(v, &w, 1);
	CU_ASSERT_EQUAL(ncalls, 1);
	CU_ASSERT_EQUAL(calls[0].op, VOL_INTENT_SET);
	CU_ASSERT_EQUAL(calls[0].w0, w);
	vol_virt_intent_full(v);
	CU_ASSERT_EQUAL(ncalls, 2);
	CU_ASSERT_EQUAL(calls[1].op, VOL_INTENT_FULL);
	CU_ASSERT_EQUAL(calls[1].w0, w); /* the round in flight included */
	set_done(0, 0);
	CU_ASSERT_EQUAL(status(v).intent_regions, 2);
	close_mirror(v);
}

/* ---- errors: the failed writes complete through the channel's loop ---- */

static int loop_ticks;

static void loop_watchdog(void *arg)
{
	if (++loop_ticks >= 8 || ndone > 0)
		util_reactor_stop(R);
}

/* Run the reactor until a request completed (or 2 s). */
static void loop_once(void)
{
	struct util_tick *t = util_reactor_tick_add(R, loop_watchdog, NULL);

	loop_ticks = 0;
	util_reactor_run(R);
	util_reactor_tick_del(R, t);
}

static void test_round_fails(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io, io2;
	int st, st2;

	submit(v, &io, VOL_OP_WRITE, 4 * REG, 512, &st);
	set_done(0, -ENOTCONN); /* the cluster could not record it */
	CU_ASSERT_EQUAL(queued(), 0);
	loop_once();
	CU_ASSERT_EQUAL(st, -EIO); /* failed, never written */
	CU_ASSERT_EQUAL(A->nsub + B->nsub, 0);
	/* Held until the next tick, then tried again; the write waits. */
	ndone = 0;
	submit(v, &io2, VOL_OP_WRITE, 4 * REG, 512, &st2);
	CU_ASSERT_EQUAL(ncalls, 1);
	vol_virt_intent_tick(v, 1);
	CU_ASSERT_EQUAL(ncalls, 2);
	set_done(1, 0);
	pump_all();
	CU_ASSERT_EQUAL(st2, 0);
	close_mirror(v);
}

static void test_hook_refuses(void)
{
	struct vol *v = open_mirror(true);
	struct vol_io io;
	int st;

	hook_rc = -EAGAIN; /* e.g. the engine's queue to the cluster is full */
	submit(v, &io, VOL_OP_WRITE, 8 * REG, 512, &st);
	CU_ASSERT_EQUAL(ncalls, 0);
	CU_ASSERT_EQUAL(queued(), 0);
	CU_ASSERT_EQUAL(status(v).intent_waiting, 1);
	hook_rc = 0;
	vol_virt_intent_tick(v, 1);
	CU_ASSERT_EQUAL(ncalls, 1);
	CU_ASSERT_EQUAL(calls[0].w0, 1ull << 8);
	set_done(0, 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	close_mirror(v);
}

static void test_grow(void)
{
	struct vol *v = open_mirror(true);
	struct vol_desc d;
	struct vol_io io;
	int st;

	/* 16 regions -> 80 (20 extents of 4): a second bitmap word. */
	desc_fill(&d, 20);
	d.size = 24 * EXT;
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL); /* 20 extents described, 24 needed */
	d.size = 20 * EXT;
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), 0);
	submit(v, &io, VOL_OP_WRITE, 63 * REG, 2 * REG, &st); /* regions 63 and 64 */
	CU_ASSERT_EQUAL(ncalls, 1);
	CU_ASSERT_EQUAL(calls[0].nwords, 2);
	CU_ASSERT_EQUAL(calls[0].w0, 1ull << 63);
	CU_ASSERT_EQUAL(calls[0].w1, 1ull << 0);
	CU_ASSERT_EQUAL(queued(), 0);
	set_done(0, 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	close_mirror(v);
}

int main(void)
{
	CU_pSuite s;
	int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	R = util_reactor_create("ut-intent");
	CH = R ? vol_chan_create(R) : NULL;
	if (!CH)
		return 1;
	s = CU_add_suite("vol_intent", NULL, NULL);
	CU_add_test(s, "a write to a new region waits for the hook; the next does not",
		    test_first_write_waits);
	CU_add_test(s, "regions touched during a round go in one next round", test_batching);
	CU_add_test(s, "a sequential stream gets the next region ahead", test_stream_ahead);
	CU_add_test(s, "idle regions cleared, written or in-flight ones kept", test_idle_clear);
	CU_add_test(s, "no hook: no waiting", test_no_hook);
	CU_add_test(s, "reads and flushes never wait", test_reads_never_wait);
	CU_add_test(s, "a failed leg's dirty regions are not cleared", test_failed_leg_kept);
	CU_add_test(s, "dirty regions set at open are recorded; FULL", test_dirty_is_recorded);
	CU_add_test(s, "a failed round fails its writes, retried at the tick", test_round_fails);
	CU_add_test(s, "a refused hook call is retried at the tick", test_hook_refuses);
	CU_add_test(s, "bitmaps follow an online grow", test_grow);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	vol_chan_destroy(CH);
	util_reactor_destroy(R);
	return failures ? 1 : 0;
}
