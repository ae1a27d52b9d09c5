/*
 * vol_lbp.c: logical block provisioning state of a local-file volume: which
 * byte ranges hold allocated storage and which are holes (deallocated, read
 * as zeros), for GET LBA STATUS.
 *
 * The filesystem already knows: lseek(SEEK_DATA / SEEK_HOLE) walks its
 * extent map without reading data, so the answer is synchronous and cheap
 * enough for a reactor thread.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <unistd.h>

#include "vol/vol_internal.h"

/* Round \p off down to a block of \p v. */
static uint64_t lbp_block_down(const struct vol *v, uint64_t off)
{
	return off - off % v->block_size;
}

int vol_get_lba_status(struct vol *v, uint64_t offset, uint64_t *len, bool *mapped)
{
	uint64_t limit, end, size;
	off_t data, hole;

	if (!v || !len || !mapped || *len == 0)
		return -EINVAL;
	size = vol_size(v); /* once: a grow may change it */
	if (offset >= size)
		return -EINVAL;
	limit = UTIL_MIN(*len, size - offset);
	if (v->virt) {
		/* Extents are allocated whole when the volume is created: a
		 * virtualized volume is fully provisioned. */
		*mapped = true;
		*len = limit;
		return 0;
	}

	/*
	 * SEEK_DATA from offset: the offset itself when it lies in data, the
	 * next data beyond a hole, ENXIO when only a hole follows up to the
	 * end of the file. Filesystems without hole support report the whole
	 * file as data, which is the "mapped" answer we want for them.
	 */
	data = lseek(v->fd_buf, (off_t)offset, SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO)
			return -errno;
		*mapped = false;
		*len = limit;
		return 0;
	}
	if ((uint64_t)data > offset) {
		*mapped = false;
		end = lbp_block_down(v, (uint64_t)data);
		/* Data inside the first block: that block counts as mapped. */
		if (end <= offset) {
			*mapped = true;
			end = offset + v->block_size;
		}
	} else {
		*mapped = true;
		hole = lseek(v->fd_buf, (off_t)offset, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		/* A block partly in data is mapped: round the hole start up. */
		end = (uint64_t)hole + v->block_size - 1;
		end = lbp_block_down(v, end);
		if (end <= offset)
			end = offset + v->block_size;
	}
	*len = UTIL_MIN(end - offset, limit);
	return 0;
}
