/*
 * vol_internal.h: shared between the vol/ sources only (the local-file
 * volume in vol_file.c and its libaio channel in vol_chan.c; virtualized
 * volumes in vol_virt.c, vol_resync.c, vol_intent.c and vol_grow.c).
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
	/* Grows online (vol_grow.c): read with vol_size() (acquire), written
	 * with a release store once what lies below the new end is in place. */
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
	/* Set for a virtualized volume (vol_virt.c): fd and fd_buf are -1 and
	 * every request goes through vol_virt_submit(). */
	struct vol_virt *virt;
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

/* ---- virtualized volumes (vol_virt.c, vol_resync.c) ---- */

#define VIRT_CHILD_IOV 8 /* iovecs kept inline in a child request */

/* One request to one back end, carved out of a volume request. */
struct virt_child {
	struct vol_io io; /* what the back end gets */
	struct iovec iov_inline[VIRT_CHILD_IOV];
	struct iovec *iov_heap; /* rare: a slice of more than VIRT_CHILD_IOV */
	struct vol_io *parent;
	struct vol_virt *vv;
	struct vol_chan *ch;
	struct vol_backend *be; /* where io goes */
	unsigned leg;
	uint64_t vol_off; /* where the piece lies in the volume (bytes) */
	SLIST_ENTRY(virt_child) free_link;
};

/* Where a volume request is, kept in its vol_io.priv while vol has it. */
enum virt_where {
	VIRT_NONE,
	VIRT_INFLIGHT, /* a write-type request at the back ends */
	VIRT_BLOCKED,  /* waits for the region a resync copies */
	VIRT_WAITING,  /* waits for free child requests */
	VIRT_INTENT,   /* waits for its regions to be recorded (write intent) */
};
struct virt_parent {
	TAILQ_ENTRY(virt_parent) link;
	struct vol_chan *ch;
	int32_t pending; /* children not done, + 1 while being submitted */
	int32_t err;
	uint8_t where; /* enum virt_where */
	bool degraded; /* acknowledged without every leg */
};
_Static_assert(sizeof(struct virt_parent) <= sizeof(((struct vol_io *)0)->priv),
	       "vol_io.priv too small for the volume request state");
TAILQ_HEAD(virt_parent_list, virt_parent);

struct virt_leg {
	enum vol_leg_state state;
	struct vol_backend **ext_be; /* per extent */
	uint64_t *ext_off;	     /* per extent, bytes on that back end */
};

struct virt_resync;

/*
 * Write intent (vol_intent.c), under vv->lock except where noted. Every
 * bitmap has nwords words (grown lazily after vol_virt_grow()). A region is
 * in at most one of set, pend, next and clear:
 *   set   the record has it (a write there may go at once);
 *   pend  in the SET round in flight;
 *   next  for the next round (a round is in flight, or the hook failed);
 *   clear taken out of set once idle, its CLEAR not handed to the hook yet
 *         (a write there puts it straight back into set).
 * touched: written since the last idle sweep (any of the above).
 */
struct virt_intent {
	vol_intent_fn fn; /* NULL: no write intent */
	void *arg;
	size_t nwords;
	uint64_t *set, *pend, *next, *clear, *touched;
	uint64_t nset, nnext, nclear;
	bool round;	/* a SET round is in flight */
	bool want_full; /* a FULL is to be sent */
	bool hold;	/* the hook failed: no new round before the next tick */
	bool emitting;	/* a thread is calling fn: others only queue work */
	bool kick;	/* a dirty region was noted: pump once unlocked */
	uint64_t *out;	/* the emitter's copy for fn (emitter only) */
	size_t out_words;
	uint64_t sweep_ms;	/* last idle sweep */
	uint64_t stream_end[4]; /* where recent writes ended: a stream continues there */
	uint8_t stream_run[4];	/* how many writes in a row continued it */
	unsigned stream_slot;
	struct virt_parent_list waiting; /* writes waiting for a round */
	unsigned nwaiting;
	uint64_t rounds, cleared, waits;
};

/*
 * A virtualized volume. Everything below the lock is shared by the reactors
 * that submit to the volume and is touched under it only; callbacks (the
 * owner's, the back ends') are never called with it held.
 */
struct vol_virt {
	struct vol *v;
	uint64_t extent_size;
	uint64_t region_size;
	uint64_t nregions;
	uint32_t nextents;
	uint32_t nlegs;
	vol_leg_event_cb leg_cb;
	void *leg_cb_arg;
	struct virt_child *children; /* the preallocated pool */
	unsigned nchildren;
	/* The back-end table given at open: what vol_virt_grow()'s extent
	 * descriptions index. */
	struct vol_backend **bes;
	uint32_t nbes;

	pthread_mutex_t lock;
	struct virt_leg legs[VOL_MAX_LEGS];
	uint64_t *dirty; /* one bit per region */
	size_t dirty_words;
	uint64_t ndirty;
	SLIST_HEAD(, virt_child) free_children;
	unsigned nfree;
	struct virt_parent_list inflight; /* write-type requests at the back ends */
	struct virt_parent_list blocked;  /* behind the resync's region lock */
	struct virt_parent_list waiting;  /* for free children */
	unsigned rr;			  /* read leg rotation */
	unsigned ev_mask;		  /* legs whose new state is not reported yet */
	struct virt_resync *rs;		  /* the running resync, or NULL */
	uint64_t resync_total, resync_done;
	unsigned resync_leg;
	uint64_t reads_retried, writes_degraded;
	struct virt_intent in;
};

static inline struct virt_parent *virt_parent(struct vol_io *io)
{
	return (struct virt_parent *)(void *)io->priv.bytes;
}
static inline struct vol_io *virt_parent_io(struct virt_parent *p)
{
	return UTIL_CONTAINER_OF((void *)p, struct vol_io, priv);
}

/* vol_intent.c, for vol_virt.c and vol_resync.c. */
int virt_intent_init(struct vol_virt *vv, const struct vol_virt_params *p);
void virt_intent_fini(struct vol_virt *vv);
/*
 * May the write-type request \p p at [off, off+len) go to the legs now?
 * True: its regions are recorded. False with *\p rc 0: it waits on the
 * intent list (a round will carry its regions; call virt_intent_pump()
 * after unlocking); with *\p rc < 0: refuse it with that error. Locked.
 */
bool virt_intent_admit_locked(struct vol_virt *vv, struct virt_parent *p, uint64_t off,
			      uint64_t len, int *rc);
/* Region \p r became dirty (a leg missed a write): record it, nobody waits. Locked. */
void virt_intent_note_locked(struct vol_virt *vv, uint64_t r);
/* Hand the queued work (CLEAR, FULL, the next SET round) to the hook. Unlocked. */
void virt_intent_pump(struct vol_virt *vv);

/* vol_virt.c, for vol_resync.c. Locked: with vv->lock held. */
void virt_mark_dirty_locked(struct vol_virt *vv, uint64_t off, uint64_t len);
bool virt_fail_leg_locked(struct vol_virt *vv, unsigned leg);
/* Report leg state changes queued under the lock (call without it). */
void virt_report_events(struct vol_virt *vv);
/* Submit again, on their own channels, requests taken off a list. */
void virt_resubmit_list(struct vol_virt *vv, struct virt_parent_list *list);
/* Map volume bytes [off, off+len) of \p leg to a back end and offset;
 * returns the length that stays within one extent. */
uint64_t virt_map(const struct vol_virt *vv, unsigned leg, uint64_t off, uint64_t len,
		  struct vol_backend **be, uint64_t *be_off);

/* vol_resync.c, for vol_virt.c. */
/* A write-type request at [off, off+len) may go now (false: it waits for the
 * region being copied; the caller queues it on vv->blocked). Locked. */
bool virt_resync_admit_locked(struct vol_virt *vv, uint64_t off, uint64_t len);
/* A write-type request left the in-flight list (locked); the resync may
 * start its copy now. Returns true when the caller must call
 * virt_resync_kick() after unlocking. */
bool virt_resync_drained_locked(struct vol_virt *vv);
void virt_resync_kick(struct vol_virt *vv);
/* vol_submit() of a virtualized volume, after the common validation. */
int vol_virt_submit(struct vol_chan *ch, struct vol *v, struct vol_io *io);
void vol_virt_close(struct vol *v);

/* For back-end implementations that learn their target's size and
 * identifier only after a login (backend_iscsi.c). */
struct vol_backend_info *vol_backend_info_mut(struct vol_backend *be);
/* The state before the back end is first used (no log line). */
void vol_backend_state_init(struct vol_backend *be, enum vol_backend_state st);

/* The volume identifier derived from \p name (vol_file.c). */
void vol_make_id(const char *name, uint8_t id[VOL_ID_LEN]);

/* The reactor a channel belongs to. */
struct util_reactor *vol_chan_reactor(const struct vol_chan *ch);
/*
 * Complete \p io with \p status later, from \p ch's event loop (for a
 * request accepted by vol_submit() that fails before reaching a back end).
 */
void vol_chan_defer_done(struct vol_chan *ch, struct vol_io *io, int status);
/*
 * Run \p fn(\p arg) on \p ch's reactor thread: at once when the caller is
 * that thread (or no reactor runs, as in single-threaded tests), else as a
 * reactor message.
 */
void vol_chan_run_on(struct vol_chan *ch, util_msg_fn fn, void *arg);

#endif /* VMENGINE_VOL_INTERNAL_H */
