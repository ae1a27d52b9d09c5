/*
 * vol_file_ut.c: the local-file volume and its libaio channel, on real
 * temporary files: open/grow/refuse-to-shrink, identifiers, reads and
 * writes (direct and buffered paths), FUA, flush, unmap, write zeroes,
 * validation, asynchronous completion, and a burst far larger than the
 * kernel ring.
 *
 * The reactor runs on the test thread; the last expected completion stops
 * it. A watchdog tick stops a run that would otherwise hang (and fails the
 * test) instead of waiting on sleeps.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The source itself, to reach its static helpers (the worker-side
 * continuation and the zero-writing fallback, which a filesystem with full
 * fallocate support never takes). libvol.a's copy is then not linked. */
#include "vol/vol_file.c"

#define MIB (1024u * 1024u)

static char tmpdir[64];
static int path_seq;

static void tmp_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/vol%d.img", tmpdir, path_seq++);
}

/* ---- a reactor on the test thread ---- */

struct env {
	struct util_reactor *r;
	struct vol_chan *ch;
	struct util_bufpool *bp;
	int target;
	int done;
	int errors;
	int last_status;
	int watchdog;
	bool timed_out;
};

static struct env E;

static void io_cb(void *arg, int status)
{
	struct env *e = arg;

	e->done++;
	e->last_status = status;
	if (status)
		e->errors++;
	if (e->done == e->target)
		util_reactor_stop(e->r);
}

static void watchdog_tick(void *arg)
{
	struct env *e = arg;

	/* 20 ticks of 250 ms: far beyond any I/O these tests do. */
	if (++e->watchdog >= 20) {
		e->timed_out = true;
		util_reactor_stop(e->r);
	}
}

/* Run the loop until \p target completions in total have been seen. */
static void wait_done(int target)
{
	struct util_tick *wd;

	E.target = target;
	if (E.done >= target)
		return;
	E.watchdog = 0;
	wd = util_reactor_tick_add(E.r, watchdog_tick, &E);
	util_reactor_run(E.r);
	util_reactor_tick_del(E.r, wd);
	CU_ASSERT_FALSE(E.timed_out);
	CU_ASSERT_EQUAL(E.done, target);
}

static void env_reset_counts(void)
{
	E.done = E.errors = E.target = 0;
	E.last_status = 1;
	E.timed_out = false;
}

static int suite_init(void)
{
	/* VOL_UT_DIR picks another filesystem (e.g. tmpfs, for the buffered
	 * fallback where O_DIRECT is refused). */
	const char *base = getenv("VOL_UT_DIR");

	snprintf(tmpdir, sizeof(tmpdir), "%.40s/vol_file_ut.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	E.r = util_reactor_create("ut-vol");
	if (!E.r)
		return -1;
	E.ch = vol_chan_create(E.r);
	if (!E.ch)
		return -1;
	E.bp = util_reactor_bufpool(E.r);
	return 0;
}

static int suite_fini(void)
{
	char cmd[PATH_MAX + 16];

	vol_chan_destroy(E.ch);
	util_reactor_destroy(E.r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void io_init(struct vol_io *io, enum vol_op op, uint64_t off, uint64_t len,
		    struct iovec *iov, int iovcnt)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->offset = off;
	io->len = len;
	io->iov = iov;
	io->iovcnt = iovcnt;
	io->cb = io_cb;
	io->cb_arg = &E;
}

/* Submit one request and wait for it; returns the completion status, or
 * the submit error (as 1000 + -errno, so it cannot pass for a status). */
static int do_io(struct vol *v, enum vol_op op, uint64_t off, void *buf, uint64_t len, bool fua)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct vol_io io;
	int rc;

	env_reset_counts();
	io_init(&io, op, off, len, buf ? &iov : NULL, buf ? 1 : 0);
	io.fua = fua;
	rc = vol_submit(E.ch, v, &io);
	if (rc)
		return 1000 - rc;
	/* Never inline from vol_submit(). */
	CU_ASSERT_EQUAL(E.done, 0);
	wait_done(1);
	return E.last_status;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 31u + seed * 7u + (i >> 9)) ^ seed);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static struct vol *open_new(uint64_t size, uint32_t bs, char *path, size_t plen)
{
	struct vol *v = NULL;

	tmp_path(path, plen);
	CU_ASSERT_EQUAL(vol_open_file("vol-a", path, size, bs, &v), 0);
	return v;
}

/* ---- tests ---- */

static void test_open_creates_sparse(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(4 * MIB, 512, path, sizeof(path));
	struct stat st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(vol_name(v), "vol-a");
	CU_ASSERT_EQUAL(vol_size(v), 4 * MIB);
	CU_ASSERT_EQUAL(vol_block_size(v), 512);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_size, 4 * MIB);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	/* Sparse: growing wrote nothing. */
	CU_ASSERT(st.st_blocks * 512 < 4 * MIB);
	/* The same file cannot be opened twice (flock). */
	struct vol *v2 = NULL;
	CU_ASSERT_EQUAL(vol_open_file("vol-b", path, 4 * MIB, 512, &v2), -EBUSY);
	CU_ASSERT_PTR_NULL(v2);
	vol_close(v);
}

static void test_open_invalid(void)
{
	char path[PATH_MAX];
	struct vol *v = (struct vol *)&v;

	tmp_path(path, sizeof(path));
	CU_ASSERT_EQUAL(vol_open_file("x", path, MIB, 1000, &v), -EINVAL);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(vol_open_file("x", path, MIB + 512, 4096, &v), -EINVAL);
	CU_ASSERT_EQUAL(vol_open_file("x", path, 0, 512, &v), -EINVAL);
	CU_ASSERT_EQUAL(vol_open_file("", path, MIB, 512, &v), -EINVAL);
	CU_ASSERT_EQUAL(vol_open_file(NULL, path, MIB, 512, &v), -EINVAL);
	CU_ASSERT_EQUAL(vol_open_file("x", NULL, MIB, 512, &v), -EINVAL);
	CU_ASSERT_EQUAL(vol_open_file("x", path, MIB, 512, NULL), -EINVAL);
	char longname[VOL_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	CU_ASSERT_EQUAL(vol_open_file(longname, path, MIB, 512, &v), -EINVAL);
	snprintf(path, sizeof(path), "%s/no/such/dir/f.img", tmpdir);
	CU_ASSERT_EQUAL(vol_open_file("x", path, MIB, 512, &v), -ENOENT);
	/* A directory is not a volume. */
	CU_ASSERT(vol_open_file("x", tmpdir, MIB, 512, &v) < 0);
	CU_ASSERT_PTR_NULL(v);
}

static void test_grow_and_refuse_shrink(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 4096, path, sizeof(path));
	uint8_t *w = util_buf_get(E.bp, 4096), *r = util_buf_get(E.bp, 4096);
	struct stat st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	fill(w, 4096, 7);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, MIB - 4096, w, 4096, false), 0);
	vol_close(v);

	/* Larger: grows, keeps the data. */
	CU_ASSERT_EQUAL_FATAL(vol_open_file("vol-a", path, 2 * MIB, 4096, &v), 0);
	CU_ASSERT_EQUAL(vol_size(v), 2 * MIB);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_size, 2 * MIB);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, MIB - 4096, r, 4096, false), 0);
	CU_ASSERT(memcmp(w, r, 4096) == 0);
	/* The new tail reads as zeros. */
	memset(r, 0xee, 4096);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 2 * MIB - 4096, r, 4096, false), 0);
	CU_ASSERT(all_zero(r, 4096));
	vol_close(v);

	/* Smaller: refused, file untouched. */
	v = (struct vol *)&v;
	CU_ASSERT_EQUAL(vol_open_file("vol-a", path, MIB, 4096, &v), -EEXIST);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_size, 2 * MIB);
	/* Same size: fine. */
	CU_ASSERT_EQUAL(vol_open_file("vol-a", path, 2 * MIB, 4096, &v), 0);
	vol_close(v);
	util_buf_put(E.bp, w, 4096);
	util_buf_put(E.bp, r, 4096);
}

static void test_vol_id(void)
{
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	struct vol *a, *b, *c;
	uint8_t ida[VOL_ID_LEN];

	tmp_path(p1, sizeof(p1));
	tmp_path(p2, sizeof(p2));
	tmp_path(p3, sizeof(p3));
	CU_ASSERT_EQUAL_FATAL(vol_open_file("alpha", p1, MIB, 512, &a), 0);
	CU_ASSERT_EQUAL_FATAL(vol_open_file("alpha", p2, 2 * MIB, 4096, &b), 0);
	CU_ASSERT_EQUAL_FATAL(vol_open_file("beta", p3, MIB, 512, &c), 0);
	memcpy(ida, vol_id(a), VOL_ID_LEN);
	/* NAA 6h in the first nibble (SPC-4 7.8.6.6.6). */
	CU_ASSERT_EQUAL(ida[0] >> 4, 6);
	/* Depends on the name only: same name, other file and size. */
	CU_ASSERT(memcmp(vol_id(a), vol_id(b), VOL_ID_LEN) == 0);
	CU_ASSERT(memcmp(vol_id(a), vol_id(c), VOL_ID_LEN) != 0);
	/* The company id part is shared, the vendor part differs. */
	CU_ASSERT(memcmp(vol_id(a), vol_id(c), 3) == 0);
	CU_ASSERT(memcmp(vol_id(a) + 8, vol_id(c) + 8, 8) != 0);
	vol_close(a);
	/* Stable across a reopen. */
	CU_ASSERT_EQUAL_FATAL(vol_open_file("alpha", p1, MIB, 512, &a), 0);
	CU_ASSERT(memcmp(vol_id(a), ida, VOL_ID_LEN) == 0);
	vol_close(a);
	vol_close(b);
	vol_close(c);
}

static void test_write_read_back(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(8 * MIB, 512, path, sizeof(path));
	size_t len = 256 * 1024;
	uint8_t *w = util_buf_get(E.bp, len), *r = util_buf_get(E.bp, len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	fill(w, len, 1);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, MIB, w, len, false), 0);
	memset(r, 0, len);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, MIB, r, len, false), 0);
	CU_ASSERT(memcmp(w, r, len) == 0);

	/* Several iovecs in one request, scattered read-back. */
	struct iovec wiov[3] = {{w, 4096}, {w + 8192, 65536}, {w + 131072, 8192}};
	struct iovec riov[2] = {{r, 40960}, {r + 65536, 36864}};
	struct vol_io io;
	env_reset_counts();
	fill(w, len, 2);
	io_init(&io, VOL_OP_WRITE, 3 * MIB, 4096 + 65536 + 8192, wiov, 3);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), 0);
	wait_done(1);
	CU_ASSERT_EQUAL(E.errors, 0);
	env_reset_counts();
	memset(r, 0, len);
	io_init(&io, VOL_OP_READ, 3 * MIB, 40960 + 36864, riov, 2);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), 0);
	wait_done(1);
	CU_ASSERT_EQUAL(E.errors, 0);
	CU_ASSERT(memcmp(r, w, 4096) == 0);
	CU_ASSERT(memcmp(r + 4096, w + 8192, 36864) == 0);
	CU_ASSERT(memcmp(r + 65536, w + 8192 + 36864, 65536 - 36864) == 0);
	CU_ASSERT(memcmp(r + 65536 + 65536 - 36864, w + 131072, 8192) == 0);

	vol_close(v);
	util_buf_put(E.bp, w, len);
	util_buf_put(E.bp, r, len);
}

/* 512-byte aligned I/O on a 512-byte volume takes the buffered descriptor;
 * its data must be what a later aligned (direct) read sees, and back. */
static void test_unaligned_512(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 512, path, sizeof(path));
	uint8_t *big = util_buf_get(E.bp, 16384), *small = util_buf_get(E.bp, 8192);
	uint8_t *expect = malloc(16384);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(expect);
	fill(big, 16384, 3);
	memcpy(expect, big, 16384);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 0, big, 16384, false), 0);
	/* Offset 512, length 1536, buffer at +512: none 4096-aligned. */
	fill(small, 8192, 4);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 512, small + 512, 1536, false), 0);
	memcpy(expect + 512, small + 512, 1536);
	memset(big, 0, 16384);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 0, big, 16384, false), 0);
	CU_ASSERT(memcmp(big, expect, 16384) == 0);
	/* And an unaligned read of aligned-written data. */
	memset(small, 0, 8192);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 1024, small + 512, 2560, false), 0);
	CU_ASSERT(memcmp(small + 512, expect + 1024, 2560) == 0);
	vol_close(v);
	free(expect);
	util_buf_put(E.bp, big, 16384);
	util_buf_put(E.bp, small, 8192);
}

static void test_fua_and_flush(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 4096, path, sizeof(path));
	uint8_t *w = util_buf_get(E.bp, 8192), *r = util_buf_get(E.bp, 8192);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	fill(w, 8192, 5);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 8192, w, 8192, true), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 8192, r, 8192, false), 0);
	CU_ASSERT(memcmp(w, r, 8192) == 0);
	/* FUA on the buffered path (unaligned buffer) too. */
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 16384, w + 512, 4096, true), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 16384, r, 4096, false), 0);
	CU_ASSERT(memcmp(w + 512, r, 4096) == 0);
	/* FLUSH ignores the range. */
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_FLUSH, 0, NULL, 0, false), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_FLUSH, 12345, NULL, 999, false), 0);
	vol_close(v);
	util_buf_put(E.bp, w, 8192);
	util_buf_put(E.bp, r, 8192);
}

static void test_unmap_and_write_zeroes(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(2 * MIB, 512, path, sizeof(path));
	size_t len = 64 * 1024;
	uint8_t *w = util_buf_get(E.bp, len), *r = util_buf_get(E.bp, len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	printf("(unmap %s) ", vol_can_unmap(v) ? "supported" : "as zeros");
	fill(w, len, 6);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 0, w, len, false), 0);
	/* Unmap the middle 8 KiB + 512: the edges stay. */
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_UNMAP, 4096, NULL, 8192 + 512, false), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 0, r, len, false), 0);
	CU_ASSERT(memcmp(r, w, 4096) == 0);
	CU_ASSERT(all_zero(r + 4096, 8192 + 512));
	CU_ASSERT(memcmp(r + 4096 + 8192 + 512, w + 4096 + 8192 + 512, len - (4096 + 8192 + 512)) ==
		  0);

	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE_ZEROES, 32768, NULL, 16384, false), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 0, r, len, false), 0);
	CU_ASSERT(all_zero(r + 32768, 16384));
	CU_ASSERT(memcmp(r + 49152, w + 49152, len - 49152) == 0);
	CU_ASSERT(memcmp(r, w, 4096) == 0);

	/* Zero-length requests still complete later, with success. */
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_UNMAP, 0, NULL, 0, false), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 4096, r, 0, false), 0);
	vol_close(v);
	util_buf_put(E.bp, w, len);
	util_buf_put(E.bp, r, len);
}

static void test_validation(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 4096, path, sizeof(path));
	uint8_t *b = util_buf_get(E.bp, 8192);
	struct iovec iov = {b, 4096};
	struct vol_io io;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	env_reset_counts();
	/* Beyond the end, straddling the end, misaligned offset and length. */
	io_init(&io, VOL_OP_READ, MIB, 4096, &iov, 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_WRITE, MIB - 4096, 8192, &iov, 1);
	iov.iov_len = 8192;
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	iov.iov_len = 4096;
	io_init(&io, VOL_OP_READ, 512, 4096, &iov, 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_READ, 0, 4096 + 512, &iov, 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_UNMAP, UINT64_MAX - 4095, 4096, NULL, 0);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_WRITE_ZEROES, 4096, MIB, NULL, 0);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	/* iovecs that do not add up, missing, or too many. */
	io_init(&io, VOL_OP_READ, 0, 8192, &iov, 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_READ, 0, 4096, NULL, 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_READ, 0, 4096, &iov, 0);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_READ, 0, 4096, &iov, IOV_MAX + 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	/* Unknown op, no callback, NULL arguments. */
	io_init(&io, (enum vol_op)42, 0, 4096, &iov, 1);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_READ, 0, 4096, &iov, 1);
	io.cb = NULL;
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), -EINVAL);
	io_init(&io, VOL_OP_READ, 0, 4096, &iov, 1);
	CU_ASSERT_EQUAL(vol_submit(NULL, v, &io), -EINVAL);
	CU_ASSERT_EQUAL(vol_submit(E.ch, NULL, &io), -EINVAL);
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, NULL), -EINVAL);
	/* None of them may ever call back: a valid request now completes
	 * alone. */
	CU_ASSERT_EQUAL(vol_submit(E.ch, v, &io), 0);
	wait_done(1);
	CU_ASSERT_EQUAL(E.done, 1);
	CU_ASSERT_EQUAL(E.errors, 0);
	vol_close(v);
	util_buf_put(E.bp, b, 8192);
}

/* 2000 requests at once against a 256-deep ring: most wait on the pending
 * queue; every one completes once, with the right data. */
static void test_burst_beyond_ring(void)
{
	enum { N = 2000, BS = 4096 };
	char path[PATH_MAX];
	struct vol *v = open_new((uint64_t)N * BS, 4096, path, sizeof(path));
	uint8_t *data = util_buf_get(E.bp, (size_t)N * BS);
	struct vol_io *ios = calloc(N, sizeof(*ios));
	struct iovec *iovs = calloc(N, sizeof(*iovs));
	int rejected = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ios);
	CU_ASSERT_PTR_NOT_NULL_FATAL(iovs);
	for (int i = 0; i < N; i++)
		fill(data + (size_t)i * BS, BS, (uint32_t)i + 100);
	env_reset_counts();
	for (int i = 0; i < N; i++) {
		iovs[i].iov_base = data + (size_t)i * BS;
		iovs[i].iov_len = BS;
		/* Reverse order of offsets, to mix things up a little. */
		io_init(&ios[i], VOL_OP_WRITE, (uint64_t)(N - 1 - i) * BS, BS, &iovs[i], 1);
		if (vol_submit(E.ch, v, &ios[i]) != 0)
			rejected++;
	}
	CU_ASSERT_EQUAL(rejected, 0);
	CU_ASSERT_EQUAL(E.done, 0);
	wait_done(N - rejected);
	CU_ASSERT_EQUAL(E.errors, 0);

	memset(data, 0, (size_t)N * BS);
	env_reset_counts();
	for (int i = 0; i < N; i++) {
		io_init(&ios[i], VOL_OP_READ, (uint64_t)(N - 1 - i) * BS, BS, &iovs[i], 1);
		if (vol_submit(E.ch, v, &ios[i]) != 0)
			rejected++;
	}
	CU_ASSERT_EQUAL(rejected, 0);
	wait_done(N - rejected);
	CU_ASSERT_EQUAL(E.errors, 0);
	int bad = 0;
	uint8_t *expect = malloc(BS);
	for (int i = 0; i < N && expect; i++) {
		fill(expect, BS, (uint32_t)i + 100);
		if (memcmp(expect, data + (size_t)i * BS, BS) != 0)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(expect);
	free(ios);
	free(iovs);
	util_buf_put(E.bp, data, (size_t)N * BS);
	vol_close(v);
}

/* The file shrinks behind the volume's back: a read across the new end
 * is short, the remainder cannot be read, and the request fails with EIO
 * (the short-transfer path through the worker). */
static void test_short_read_fails(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 4096, path, sizeof(path));
	uint8_t *r = util_buf_get(E.bp, 16384);
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, MIB - 8192), 0);
	close(fd);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, MIB - 16384, r, 16384, false), -EIO);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, MIB - 4096, r, 4096, false), -EIO);
	vol_close(v);
	util_buf_put(E.bp, r, 16384);
}

/* The worker finishes a transfer the kernel did part of: it resumes at
 * done_bytes, in the middle of an iovec, and leaves the first part alone. */
static void test_rw_rest_continues(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 512, path, sizeof(path));
	size_t len = 3 * 4096;
	uint8_t *w = util_buf_get(E.bp, len), *r = util_buf_get(E.bp, len);
	struct iovec iov[3];
	struct vol_io io;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	fill(w, len, 9);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 65536, w, len, false), 0);

	memset(r, 0xcc, len);
	iov[0] = (struct iovec){r, 4096};
	iov[1] = (struct iovec){r + 4096, 2048};
	iov[2] = (struct iovec){r + 6144, len - 6144};
	io_init(&io, VOL_OP_READ, 65536, len, iov, 3);
	io.vol = v;
	io.done_bytes = 5120; /* inside iov[1] */
	CU_ASSERT_EQUAL(do_rw_rest(v, &io), 0);
	CU_ASSERT_EQUAL(io.done_bytes, len);
	CU_ASSERT(memcmp(r + 5120, w + 5120, len - 5120) == 0);
	CU_ASSERT_EQUAL(r[0], 0xcc);
	CU_ASSERT_EQUAL(r[5119], 0xcc);

	/* A write resumed at 4096 (FUA): only the tail lands. */
	fill(r, len, 10);
	iov[0] = (struct iovec){r, len};
	io_init(&io, VOL_OP_WRITE, 65536, len, iov, 1);
	io.vol = v;
	io.fua = true;
	io.done_bytes = 4096;
	CU_ASSERT_EQUAL(worker_run(&io), 0);
	memcpy(w + 4096, r + 4096, len - 4096);
	memset(r, 0, len);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 65536, r, len, false), 0);
	CU_ASSERT(memcmp(r, w, len) == 0);
	vol_close(v);
	util_buf_put(E.bp, w, len);
	util_buf_put(E.bp, r, len);
}

/* The fallback of UNMAP and WRITE ZEROES where fallocate is unsupported. */
static void test_write_zeros_fallback(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 512, path, sizeof(path));
	size_t len = 256 * 1024;
	uint8_t *w = util_buf_get(E.bp, len), *r = util_buf_get(E.bp, len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	fill(w, len, 11);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_WRITE, 0, w, len, false), 0);
	/* More than the 64 KiB zero buffer, 512-aligned edges. */
	CU_ASSERT_EQUAL(write_zeros(v, 512, 200 * 1024), 0);
	CU_ASSERT_EQUAL(do_io(v, VOL_OP_READ, 0, r, len, false), 0);
	CU_ASSERT(memcmp(r, w, 512) == 0);
	CU_ASSERT(all_zero(r + 512, 200 * 1024));
	CU_ASSERT(memcmp(r + 512 + 200 * 1024, w + 512 + 200 * 1024, len - 512 - 200 * 1024) == 0);
	vol_close(v);
	util_buf_put(E.bp, w, len);
	util_buf_put(E.bp, r, len);
}

/* A channel may be destroyed from the callback of its last request. */
struct destroy_ctx {
	struct util_reactor *r;
	struct vol_chan *ch;
	int status;
	bool called;
};
static void destroy_cb(void *arg, int status)
{
	struct destroy_ctx *d = arg;

	d->called = true;
	d->status = status;
	vol_chan_destroy(d->ch);
	util_reactor_stop(d->r);
}

static void test_destroy_from_callback(void)
{
	char path[PATH_MAX];
	struct vol *v = open_new(MIB, 4096, path, sizeof(path));
	struct destroy_ctx d = {.r = E.r};
	uint8_t *b = util_buf_get(E.bp, 4096);
	struct iovec iov = {b, 4096};
	struct vol_io io;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	d.ch = vol_chan_create(E.r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d.ch);
	memset(&io, 0, sizeof(io));
	io.op = VOL_OP_READ;
	io.len = 4096;
	io.iov = &iov;
	io.iovcnt = 1;
	io.cb = destroy_cb;
	io.cb_arg = &d;
	CU_ASSERT_EQUAL(vol_submit(d.ch, v, &io), 0);
	util_reactor_run(E.r);
	CU_ASSERT(d.called);
	CU_ASSERT_EQUAL(d.status, 0);
	vol_close(v);
	util_buf_put(E.bp, b, 4096);
}

int main(void)
{
	CU_pSuite s;

	util_log_init("vol_file_ut", false, false);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("vol_file", suite_init, suite_fini);
	if (!s)
		return 1;
	CU_add_test(s, "open creates a sparse file, once", test_open_creates_sparse);
	CU_add_test(s, "open rejects bad arguments", test_open_invalid);
	CU_add_test(s, "grow keeps data, shrink refused", test_grow_and_refuse_shrink);
	CU_add_test(s, "vol_id from the name, NAA 6", test_vol_id);
	CU_add_test(s, "write then read back, iovecs", test_write_read_back);
	CU_add_test(s, "512-aligned I/O via the buffered fd", test_unaligned_512);
	CU_add_test(s, "FUA writes and flush", test_fua_and_flush);
	CU_add_test(s, "unmap and write zeroes read zeros", test_unmap_and_write_zeroes);
	CU_add_test(s, "invalid requests rejected, no callback", test_validation);
	CU_add_test(s, "2000 I/Os through a 256-deep ring", test_burst_beyond_ring);
	CU_add_test(s, "short read on a truncated file fails", test_short_read_fails);
	CU_add_test(s, "worker resumes a short transfer", test_rw_rest_continues);
	CU_add_test(s, "zero-writing fallback", test_write_zeros_fallback);
	CU_add_test(s, "channel destroyed from its callback", test_destroy_from_callback);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	util_log_fini();
	return failures ? 1 : 0;
}
