/*
 * bufpool.c: per-thread pool of 4096-aligned I/O buffers.
 *
 * Power-of-two size classes from 4 KiB to 1 MiB, each with a free list
 * linked through the first bytes of the freed buffers themselves, so a
 * cached buffer costs no bookkeeping memory. A pool is owned by one reactor
 * thread (util.h), hence no locks. The cap bounds what idle buffers may pin
 * after a burst; requests above 1 MiB bypass the pool.
 */
#define UTIL_LOG_TAG "bufpool"
#include <stdlib.h>

#include "util/util.h"
#include "util/util_internal.h"

#define BUF_ALIGN    4096u
#define BUF_NCLASSES (UTIL_BUF_MAX_SHIFT - UTIL_BUF_MIN_SHIFT + 1)

struct buf_free {
	struct buf_free *next;
};

struct util_bufpool {
	struct buf_free *free[BUF_NCLASSES];
	size_t cached_bytes;
	size_t max_cached;
};

/* The class index for \p len (<= UTIL_BUF_MAX_POOLED): smallest 2^k >= len. */
static unsigned buf_class(size_t len)
{
	unsigned shift = UTIL_BUF_MIN_SHIFT;

	while (((size_t)1 << shift) < len)
		shift++;
	return shift - UTIL_BUF_MIN_SHIFT;
}

static size_t class_size(unsigned cls)
{
	return (size_t)1 << (cls + UTIL_BUF_MIN_SHIFT);
}

static void *buf_alloc(size_t size)
{
	void *p = NULL;

	/* posix_memalign rather than aligned_alloc: no requirement that size be
	 * a multiple of the alignment, and it reports ENOMEM explicitly. */
	if (posix_memalign(&p, BUF_ALIGN, size) != 0)
		return NULL;
	return p;
}

struct util_bufpool *util_bufpool_create(size_t max_bytes_cached)
{
	struct util_bufpool *bp = calloc(1, sizeof(*bp));

	if (!bp) {
		log_err("out of memory creating a buffer pool");
		return NULL;
	}
	bp->max_cached = max_bytes_cached;
	return bp;
}

void util_bufpool_destroy(struct util_bufpool *bp)
{
	if (!bp)
		return;
	for (unsigned c = 0; c < BUF_NCLASSES; c++) {
		while (bp->free[c]) {
			struct buf_free *f = bp->free[c];
			bp->free[c] = f->next;
			free(f);
		}
	}
	free(bp);
}

void *util_buf_get(struct util_bufpool *bp, size_t len)
{
	unsigned cls;
	struct buf_free *f;

	if (len > UTIL_BUF_MAX_POOLED)
		return buf_alloc(UTIL_ALIGN_UP(len, (size_t)BUF_ALIGN));
	cls = buf_class(len);
	f = bp->free[cls];
	if (f) {
		bp->free[cls] = f->next;
		bp->cached_bytes -= class_size(cls);
		return f;
	}
	return buf_alloc(class_size(cls));
}

void util_buf_put(struct util_bufpool *bp, void *buf, size_t len)
{
	unsigned cls;
	struct buf_free *f = buf;

	if (!buf)
		return;
	if (len > UTIL_BUF_MAX_POOLED) {
		free(buf);
		return;
	}
	cls = buf_class(len);
	if (bp->cached_bytes + class_size(cls) > bp->max_cached) {
		free(buf);
		return;
	}
	f->next = bp->free[cls];
	bp->free[cls] = f;
	bp->cached_bytes += class_size(cls);
}

size_t util_bufpool_cached_bytes(const struct util_bufpool *bp)
{
	return bp->cached_bytes;
}
