/*
 * vol_internal.h: shared between the vol/ sources only (the local-file
 * volume in vol_file.c and its libaio channel in vol_chan.c).
 */
#ifndef VMENGINE_VOL_INTERNAL_H
#define VMENGINE_VOL_INTERNAL_H

#include <libaio.h>
#include <pthread.h>

#include "vol/vol.h"

/*
 * O_DIRECT needs the file offset, the length and every buffer aligned to the
 * device's logical block size. 4096 is the largest common value, so an I/O
 * aligned to it is always accepted; anything else takes the buffered fd.
 */
#define VOL_DIRECT_ALIGN 4096u

/* Submissions in flight per channel (the io_setup ring size). */
#define VOL_CHAN_DEPTH 256u

struct vol {
	char name[VOL_NAME_MAX + 1];
	uint64_t size;
	uint32_t block_size;
	/*
	 * fd is O_DIRECT when the filesystem accepts it (direct true), so the
	 * page cache does not hold a second copy of what the cache layer
	 * already caches. fd_buf is a buffered descriptor of the same file for
	 * I/O that O_DIRECT would refuse (512-byte aligned) and for the
	 * synchronous fallbacks; it equals fd when direct is false.
	 *
	 * Caveats of mixing them: the kernel writes back and drops cached
	 * pages of a range before a direct I/O on it, so a read always sees
	 * the last completed write whichever fd did either. Two overlapping
	 * requests in flight at once have no defined order, exactly as two
	 * SIMPLE tasks on a SCSI device. Buffered libaio is synchronous inside
	 * io_submit(), so the 512-aligned path can stall the reactor on a
	 * disk read; hosts issue such I/O rarely (partition probing).
	 */
	int fd;
	int fd_buf;
	bool direct;
	bool can_unmap;
	uint8_t id[VOL_ID_LEN];
};

/*
 * What vol keeps in vol_io.priv. While the request is in the kernel the
 * iocb is live (the kernel reads it at io_submit and hands its data back in
 * the completion event); otherwise the same bytes link the request on a
 * pending, worker or completion list.
 */
struct vol_io_priv {
	union {
		struct iocb iocb;
		struct {
			struct vol_io *next;
			struct vol_chan *ch; /* where the completion goes */
		} job;
	};
};
_Static_assert(sizeof(struct vol_io_priv) <= sizeof(((struct vol_io *)0)->priv),
	       "vol_io.priv too small for an iocb");

static inline struct vol_io_priv *vol_io_priv(struct vol_io *io)
{
	return (struct vol_io_priv *)(void *)io->priv.bytes;
}

/* True when \p io may go through the O_DIRECT descriptor. */
bool vol_io_direct_ok(const struct vol *v, const struct vol_io *io);

/*
 * The worker thread runs what would block a reactor: fdatasync, hole
 * punching, zeroing, and the remainder of a short transfer. One per process,
 * started by the first channel and joined when the last one goes.
 */
int vol_worker_get(void);
void vol_worker_put(void);
/* Queue \p io (its priv.job.ch set); the worker sets io->status and hands it
 * to vol_chan_complete_async(). Any thread. */
void vol_worker_queue(struct vol_io *io);

/*
 * Hand a finished request back to its channel from any thread: the channel's
 * eventfd wakes its reactor, which calls the callback. Never fails and never
 * allocates, so a completion cannot be lost.
 */
void vol_chan_complete_async(struct vol_chan *ch, struct vol_io *io);

#endif /* VMENGINE_VOL_INTERNAL_H */
