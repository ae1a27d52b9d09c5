/*
 * vol: volumes and the block I/O beneath them.
 *
 * A volume is a named range of blocks. In this slice every volume lives in a
 * file of the local pool (the embedded default); later slices map volumes to
 * extents on back-end LUNs. Callers (the SCSI device server) only see this
 * logical-unit I/O interface.
 *
 * Threads: a volume is opened and closed on the control thread. I/O is
 * submitted through a vol_chan, one per reactor thread, created on that
 * thread; completions run on the same thread, never inline from
 * vol_submit() (SPDK's rule: the callback of an accepted request always runs
 * later, from the event loop).
 */
#ifndef VMENGINE_VOL_H
#define VMENGINE_VOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/util.h"

struct vol;
struct vol_chan;

#define VOL_NAME_MAX 64
#define VOL_ID_LEN   16 /* NAA IEEE Registered Extended identifier (SPC-4 7.8.6.6.6) */

/*
 * Open the volume \p name backed by the file \p path, creating the file
 * (sparse) when missing and growing it to \p size bytes when it is smaller.
 * \p size must be a non-zero multiple of \p block_size (512 or 4096).
 * A file larger than \p size is an error (-EEXIST): nothing shrinks silently.
 * Returns 0 and *\p out, or a negative errno (the message is logged):
 * -EEXIST (file larger than \p size), -EBUSY (file in use by another
 * process: it is locked with flock), -EINVAL (not a regular file, bad size).
 */
int vol_open_file(const char *name, const char *path, uint64_t size, uint32_t block_size,
		  struct vol **out);
/* Close: all I/O on the volume must have completed. */
void vol_close(struct vol *v);

const char *vol_name(const struct vol *v);
uint64_t vol_size(const struct vol *v);	      /* bytes */
uint32_t vol_block_size(const struct vol *v); /* bytes */
/* Stable device identifier: derived from the name, the same on every start. */
const uint8_t *vol_id(const struct vol *v); /* VOL_ID_LEN bytes */
/* True when the backing store can deallocate blocks (hole punching). */
bool vol_can_unmap(const struct vol *v);
/*
 * Provisioning state of the extent that starts at byte \p offset: on return
 * *\p mapped says whether storage is allocated there (false: a hole, which
 * reads as zeros) and *\p len is the length of the run of that same state,
 * at most the *\p len given on entry and never past the end of the volume.
 * Both ends are multiples of the filesystem's allocation unit, rounded to
 * the volume's blocks. Synchronous but cheap (lseek SEEK_DATA / SEEK_HOLE on
 * the file, no I/O): callable from a reactor thread. A store that cannot
 * tell reports everything mapped. Returns 0, or -EINVAL (\p offset at or
 * beyond the end, \p len 0) or another negative errno.
 */
int vol_get_lba_status(struct vol *v, uint64_t offset, uint64_t *len, bool *mapped);

/*
 * Create the I/O channel of the calling reactor thread (\p r may be NULL: the
 * caller's reactor). NULL on error (logged).
 */
struct vol_chan *vol_chan_create(struct util_reactor *r);
/* Destroy on the same thread, after every submitted I/O completed (a completion callback may do
 * it). */
void vol_chan_destroy(struct vol_chan *ch);

enum vol_op {
	VOL_OP_READ,
	VOL_OP_WRITE,
	VOL_OP_FLUSH, /* make every completed write durable; offset and len ignored */
	VOL_OP_UNMAP, /* deallocate; reads return zeros afterwards */
	VOL_OP_WRITE_ZEROES,
};

/*
 * Completion: \p status is 0 or a negative errno (-EIO, -ENOSPC, ...).
 * Runs on the thread of the channel the I/O was submitted on.
 */
typedef void (*vol_cb)(void *cb_arg, int status);

/*
 * One request. The caller owns it (embedded in its task) and must keep it,
 * the iovecs and the buffers alive until the callback.
 */
struct vol_io {
	enum vol_op op;
	uint64_t offset; /* bytes, block aligned */
	uint64_t len;	 /* bytes, block aligned; READ/WRITE: sum of iov */
	struct iovec *iov;
	int iovcnt;
	bool fua; /* WRITE: durable before completion (Force Unit Access) */
	vol_cb cb;
	void *cb_arg;
	/* private to vol */
	struct vol *vol;
	int status;
	uint64_t done_bytes;
	union {
		uint8_t bytes[64];
		uint64_t align;
	} priv;
};

/*
 * Submit \p io against \p v on channel \p ch (the calling thread's).
 * Returns 0: the callback will be called exactly once, later. Returns a
 * negative errno (-EINVAL for a range beyond the volume or misaligned): the
 * callback will never be called.
 */
int vol_submit(struct vol_chan *ch, struct vol *v, struct vol_io *io);

#endif /* VMENGINE_VOL_H */
