/*
 * vol_grow_ut.c: online growth (vol_grow.c). A mirrored virtualized volume
 * over in-memory fake back ends grows with a write in flight (which lands
 * where it was aimed), new extents are appended to both legs and take I/O,
 * the dirty-region bitmap keeps its bits and gets longer, descriptions that
 * are not a grow are refused with the volume unchanged, a grow waits for a
 * running resync (-EBUSY), and a file volume grows its file.
 *
 * The fake back ends queue every request; the test completes them (pump),
 * so "in flight" is a chosen state, never a timing.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "vol/vol_internal.h"

#define KIB  1024ull
#define EXT  (64 * KIB)
#define REG  (16 * KIB)
#define BESZ (4096 * KIB) /* 64 extents */

/* ---- fake back ends ---- */

struct fake {
	struct vol_backend *be;
	uint8_t *data;
	unsigned nsub;
};

struct qent {
	struct fake *f;
	struct vol_io *io;
};
static struct qent Q[256];
static unsigned qhead, qtail;

static int fake_submit(void *ctx, struct vol_chan *ch, struct vol_io *io)
{
	struct fake *f = ctx;

	f->nsub++;
	Q[qtail++ % 256] = (struct qent){f, io};
	return 0;
}

static void fake_close(void *ctx)
{
}

static const struct vol_backend_ops fake_ops = {.submit = fake_submit, .close = fake_close};

static void pump_all(void)
{
	while (qhead != qtail) {
		struct qent e = Q[qhead++ % 256];
		uint64_t off = e.io->offset;

		for (int i = 0; i < e.io->iovcnt && e.io->op != VOL_OP_FLUSH; i++) {
			if (e.io->op == VOL_OP_READ)
				memcpy(e.io->iov[i].iov_base, e.f->data + off,
				       e.io->iov[i].iov_len);
			else
				memcpy(e.f->data + off, e.io->iov[i].iov_base,
				       e.io->iov[i].iov_len);
			off += e.io->iov[i].iov_len;
		}
		e.io->cb(e.io->cb_arg, 0);
	}
}

static struct fake *fake_new(const char *name)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct vol_backend_info info = {0};

	CU_ASSERT_FATAL(f != NULL);
	f->data = calloc(1, BESZ);
	CU_ASSERT_FATAL(f->data != NULL);
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.size = BESZ;
	info.block_size = 512;
	CU_ASSERT_FATAL(vol_backend_create(&fake_ops, f, &info, &f->be) == 0);
	return f;
}

static void fake_free(struct fake *f)
{
	vol_backend_close(f->be);
	free(f->data);
	free(f);
}

/* ---- helpers ---- */

static struct util_reactor *R;
static struct vol_chan *CH;

static void io_cb(void *arg, int status)
{
	*(int *)arg = status;
}

static void io_set(struct vol_io *io, enum vol_op op, uint64_t off, struct iovec *iov, int *st)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->offset = off;
	io->len = iov->iov_len;
	io->iov = iov;
	io->iovcnt = 1;
	io->cb = io_cb;
	io->cb_arg = st;
	*st = 1; /* not done */
}

/* Leg 0 extent i at a offset i * EXT; leg 1 extent i at b offset (63 - i) * EXT. */
static struct vol_extent_desc EX[2][64];

static void desc_fill(struct vol_desc *d, uint64_t size, unsigned nlegs)
{
	uint32_t n = (uint32_t)((size + EXT - 1) / EXT);

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "g");
	d->size = size;
	d->block_size = 512;
	d->extent_size = EXT;
	d->region_size = REG;
	d->nlegs = nlegs;
	for (uint32_t i = 0; i < n; i++) {
		EX[0][i] = (struct vol_extent_desc){0, i * EXT};
		EX[1][i] = (struct vol_extent_desc){1, (63 - i) * EXT};
	}
	for (unsigned l = 0; l < nlegs; l++) {
		d->legs[l].nextents = n;
		d->legs[l].extents = EX[l];
	}
}

static struct vol *open_mirror(struct fake *a, struct fake *b, uint64_t size)
{
	struct vol_backend *bes[2] = {a->be, b->be};
	struct vol_desc d;
	struct vol *v = NULL;

	desc_fill(&d, size, 2);
	CU_ASSERT_FATAL(vol_open_virt(&d, bes, 2, NULL, &v) == 0);
	return v;
}

static int write_sync(struct vol *v, uint64_t off, uint8_t *buf, size_t len)
{
	struct iovec iov = {buf, len};
	struct vol_io io;
	int st;

	io_set(&io, VOL_OP_WRITE, off, &iov, &st);
	if (vol_submit(CH, v, &io) < 0)
		return -EINVAL;
	pump_all();
	return st;
}

/* ---- tests ---- */

static void test_grow_in_flight(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = open_mirror(a, b, 2 * EXT);
	static uint8_t w1[8 * KIB], w2[8 * KIB], r[8 * KIB];
	struct iovec iov1 = {w1, sizeof(w1)}, riov = {r, sizeof(r)};
	struct vol_io io;
	struct vol_desc d;
	int st;

	memset(w1, 0x11, sizeof(w1));
	memset(w2, 0x22, sizeof(w2));
	/* Beyond the end: refused before the grow. */
	CU_ASSERT_EQUAL(write_sync(v, 3 * EXT, w2, sizeof(w2)), -EINVAL);
	/* A write at the old end, at the back ends while the volume grows. */
	io_set(&io, VOL_OP_WRITE, 2 * EXT - sizeof(w1), &iov1, &st);
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	CU_ASSERT_EQUAL(qtail - qhead, 2);
	desc_fill(&d, 4 * EXT, 2);
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), 0);
	CU_ASSERT_EQUAL(vol_size(v), 4 * EXT);
	CU_ASSERT_EQUAL(st, 1); /* untouched by the grow */
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_EQUAL(memcmp(a->data + 2 * EXT - sizeof(w1), w1, sizeof(w1)), 0);
	CU_ASSERT_EQUAL(memcmp(b->data + 62 * EXT + EXT - sizeof(w1), w1, sizeof(w1)), 0);
	/* The new extents take I/O on both legs, where the description says. */
	CU_ASSERT_EQUAL(write_sync(v, 3 * EXT + 512, w2, sizeof(w2)), 0);
	CU_ASSERT_EQUAL(memcmp(a->data + 3 * EXT + 512, w2, sizeof(w2)), 0);
	CU_ASSERT_EQUAL(memcmp(b->data + 60 * EXT + 512, w2, sizeof(w2)), 0);
	io_set(&io, VOL_OP_READ, 3 * EXT + 512, &riov, &st);
	CU_ASSERT_EQUAL(vol_submit(CH, v, &io), 0);
	pump_all();
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_EQUAL(memcmp(r, w2, sizeof(r)), 0);
	/* The same size again: nothing to do. */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), 0);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_grow_dirty_bitmap(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = open_mirror(a, b, 2 * EXT); /* 8 regions: 1 word */
	static uint8_t w[4 * KIB];
	uint64_t words[4] = {0};
	struct vol_virt_status st;
	struct vol_desc d;

	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	CU_ASSERT_EQUAL(write_sync(v, 5 * REG, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(vol_virt_dirty_get(v, words, 4), 1);
	CU_ASSERT_EQUAL(words[0], 1ull << 5);
	desc_fill(&d, 40 * EXT, 2); /* 160 regions: 3 words */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), 0);
	memset(words, 0, sizeof(words));
	CU_ASSERT_EQUAL(vol_virt_dirty_get(v, words, 4), 3);
	CU_ASSERT_EQUAL(words[0], 1ull << 5);
	CU_ASSERT_EQUAL(words[1] | words[2], 0);
	/* A degraded write in the new space marks its region there. */
	CU_ASSERT_EQUAL(write_sync(v, 150 * REG, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(vol_virt_dirty_get(v, words, 4), 3);
	CU_ASSERT_EQUAL(words[2], 1ull << (150 - 128));
	vol_virt_status(v, &st);
	CU_ASSERT_EQUAL(st.nregions, 160);
	CU_ASSERT_EQUAL(st.dirty_regions, 2);
	CU_ASSERT_EQUAL(b->nsub, 0); /* the failed leg saw nothing */
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_grow_refused(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = open_mirror(a, b, 4 * EXT);
	struct vol_desc d;

	desc_fill(&d, 2 * EXT, 2); /* smaller */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT, 1); /* one leg fewer */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT, 2);
	d.extent_size = 2 * EXT;
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT + 100, 2); /* not whole blocks */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT, 2);
	EX[1][1].offset = 10 * EXT; /* an existing extent moved */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT, 2);
	EX[0][5].offset = BESZ - EXT / 2; /* a new extent past its back end */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT, 2);
	EX[0][4].backend = 2; /* not in the table given at open */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	desc_fill(&d, 6 * EXT, 2);
	d.legs[1].nextents = 5; /* a leg short of the size */
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EINVAL);
	CU_ASSERT_EQUAL(vol_size(v), 4 * EXT);
	CU_ASSERT_EQUAL(vol_file_grow(v, 8 * EXT), -EINVAL); /* not a file volume */
	CU_ASSERT_EQUAL(vol_virt_grow(NULL, &d), -EINVAL);
	/* Still whole: the old end takes I/O, the refused space does not. */
	static uint8_t w[4 * KIB];
	CU_ASSERT_EQUAL(write_sync(v, 4 * EXT - sizeof(w), w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(write_sync(v, 4 * EXT, w, sizeof(w)), -EINVAL);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static int rs_status = 1;
static void rs_cb(void *arg, int status)
{
	rs_status = status;
}

static void test_grow_waits_for_resync(void)
{
	struct fake *a = fake_new("a"), *b = fake_new("b");
	struct vol *v = open_mirror(a, b, 2 * EXT);
	static uint8_t w[4 * KIB];
	struct vol_desc d;

	CU_ASSERT_EQUAL(vol_virt_fail_leg(v, 1), 0);
	CU_ASSERT_EQUAL(write_sync(v, REG, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(vol_virt_resync_start(CH, v, 1, 0, rs_cb, NULL), 0);
	desc_fill(&d, 3 * EXT, 2);
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), -EBUSY);
	CU_ASSERT_EQUAL(vol_size(v), 2 * EXT);
	pump_all(); /* the copy ends */
	CU_ASSERT_EQUAL(rs_status, 0);
	CU_ASSERT_EQUAL(vol_virt_grow(v, &d), 0);
	CU_ASSERT_EQUAL(vol_size(v), 3 * EXT);
	vol_close(v);
	fake_free(a);
	fake_free(b);
}

static void test_file_grow(void)
{
	char dir[] = "/tmp/vol_grow_ut.XXXXXX", path[64], cmd[96];
	struct vol *v = NULL;
	struct stat sb;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/f.vol", dir);
	CU_ASSERT_FATAL(vol_open_file("f", path, 1 << 20, 512, &v) == 0);
	CU_ASSERT_EQUAL(vol_file_grow(v, 1 << 19), -EINVAL); /* smaller */
	CU_ASSERT_EQUAL(vol_file_grow(v, (2 << 20) + 100), -EINVAL);
	CU_ASSERT_EQUAL(vol_file_grow(v, 1 << 20), 0); /* unchanged */
	CU_ASSERT_EQUAL(vol_file_grow(v, 3 << 20), 0);
	CU_ASSERT_EQUAL(vol_size(v), 3 << 20);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, 3 << 20);
	CU_ASSERT_EQUAL(vol_virt_grow(v, NULL), -EINVAL);
	vol_close(v);
	/* Opened again at the new size: the file matches, nothing to grow. */
	CU_ASSERT_EQUAL(vol_open_file("f", path, 3 << 20, 512, &v), 0);
	vol_close(v);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

int main(void)
{
	CU_pSuite s;
	int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	R = util_reactor_create("ut-grow");
	CH = R ? vol_chan_create(R) : NULL;
	if (!CH)
		return 1;
	s = CU_add_suite("vol_grow", NULL, NULL);
	CU_add_test(s, "mirror grows with a write in flight", test_grow_in_flight);
	CU_add_test(s, "dirty bitmap kept and extended", test_grow_dirty_bitmap);
	CU_add_test(s, "descriptions that are not a grow", test_grow_refused);
	CU_add_test(s, "grow waits for a running resync", test_grow_waits_for_resync);
	CU_add_test(s, "file volume grows its file", test_file_grow);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	vol_chan_destroy(CH);
	util_reactor_destroy(R);
	return failures ? 1 : 0;
}
