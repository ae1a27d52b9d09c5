/*
 * bufpool_ut.c: the per-thread buffer pool: alignment, size classes,
 * reuse through the free lists, the cache cap, and direct large buffers.
 */
#include <CUnit/Basic.h>

#include "util/util.h"
#include "util/util_internal.h"

static bool aligned4k(const void *p)
{
	return ((uintptr_t)p & 4095u) == 0;
}

static void test_alignment_and_size(void)
{
	struct util_bufpool *bp = util_bufpool_create(1u << 20);
	static const size_t lens[] = {0, 1, 512, 4096, 4097, 65536, 100000, 1u << 20};

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(lens); i++) {
		uint8_t *p = util_buf_get(bp, lens[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT(aligned4k(p));
		/* The whole requested length (and the class rounding) is usable:
		 * ASan reports any overflow here. */
		if (lens[i])
			memset(p, 0xa5, lens[i]);
		util_buf_put(bp, p, lens[i]);
	}
	util_bufpool_destroy(bp);
}

static void test_reuse_same_class(void)
{
	struct util_bufpool *bp = util_bufpool_create(8u << 20);
	void *a, *b, *c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	a = util_buf_get(bp, 8192);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 0);
	util_buf_put(bp, a, 8192);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 8192);
	/* 5000 rounds up to the same 8 KiB class: the cached buffer comes back. */
	b = util_buf_get(bp, 5000);
	CU_ASSERT_PTR_EQUAL(a, b);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 0);
	util_buf_put(bp, b, 5000);
	/* A different class does not take it. */
	c = util_buf_get(bp, 4096);
	CU_ASSERT_PTR_NOT_EQUAL(c, a);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 8192);
	util_buf_put(bp, c, 4096);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 8192 + 4096);
	util_bufpool_destroy(bp);
}

/* LIFO reuse: the most recently freed buffer is the warmest in cache. */
static void test_lifo_order(void)
{
	struct util_bufpool *bp = util_bufpool_create(8u << 20);
	void *p[4];

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	for (int i = 0; i < 4; i++)
		p[i] = util_buf_get(bp, 65536);
	for (int i = 0; i < 4; i++)
		util_buf_put(bp, p[i], 65536);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 4 * 65536);
	for (int i = 3; i >= 0; i--)
		CU_ASSERT_PTR_EQUAL(util_buf_get(bp, 65536), p[i]);
	for (int i = 0; i < 4; i++)
		util_buf_put(bp, p[i], 65536);
	util_bufpool_destroy(bp);
}

static void test_cap(void)
{
	/* Room for two 16 KiB buffers only. */
	struct util_bufpool *bp = util_bufpool_create(32768);
	void *p[3];

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	for (int i = 0; i < 3; i++) {
		p[i] = util_buf_get(bp, 16384);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
	}
	util_buf_put(bp, p[0], 16384);
	util_buf_put(bp, p[1], 16384);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 32768);
	/* Beyond the cap the buffer is freed, not cached (ASan checks the free). */
	util_buf_put(bp, p[2], 16384);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 32768);
	/* A class that does not fit either. */
	void *q = util_buf_get(bp, 4096);
	util_buf_put(bp, q, 4096);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 32768);
	util_bufpool_destroy(bp);

	/* A zero cap caches nothing. */
	bp = util_bufpool_create(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	q = util_buf_get(bp, 4096);
	util_buf_put(bp, q, 4096);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 0);
	util_bufpool_destroy(bp);
}

static void test_large_direct(void)
{
	struct util_bufpool *bp = util_bufpool_create(64u << 20);
	size_t len = (1u << 20) + 1;
	uint8_t *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	p = util_buf_get(bp, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT(aligned4k(p));
	memset(p, 1, len);
	util_buf_put(bp, p, len);
	/* Large buffers never enter the cache. */
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 0);
	p = util_buf_get(bp, 4u << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 2, 4u << 20);
	util_buf_put(bp, p, 4u << 20);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 0);
	/* The largest pooled class is cached. */
	p = util_buf_get(bp, UTIL_BUF_MAX_POOLED);
	util_buf_put(bp, p, UTIL_BUF_MAX_POOLED);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), UTIL_BUF_MAX_POOLED);
	util_bufpool_destroy(bp);
}

static void test_put_null(void)
{
	struct util_bufpool *bp = util_bufpool_create(1u << 20);

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	util_buf_put(bp, NULL, 4096);
	CU_ASSERT_EQUAL(util_bufpool_cached_bytes(bp), 0);
	util_bufpool_destroy(bp);
	util_bufpool_destroy(NULL);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("bufpool", NULL, NULL);
	if (!s)
		return 1;
	CU_add_test(s, "alignment and usable size", test_alignment_and_size);
	CU_add_test(s, "reuse within a class", test_reuse_same_class);
	CU_add_test(s, "LIFO reuse", test_lifo_order);
	CU_add_test(s, "cache cap", test_cap);
	CU_add_test(s, "large buffers bypass the pool", test_large_direct);
	CU_add_test(s, "NULL put ignored", test_put_null);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
