/*
 * vol: volumes and the block I/O beneath them.
 *
 * A volume is a named range of blocks: a file of the local pool (the
 * embedded default, vol_open_file()) or a virtualized volume made of extents
 * on back-end LUNs with one or two mirror legs (vol_open_virt(), below).
 * Callers (the SCSI device server) only see this logical-unit I/O interface,
 * the same for both.
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
/*
 * Grow an open file volume online to \p size bytes (the file grows sparse).
 * I/O may be in flight and keeps flowing: vol_size() reports the new size
 * once the file has it, so a request checked against it always lands inside
 * the file. Control thread. Returns 0 (also when \p size is the current
 * size), -EINVAL (smaller, misaligned, or a virtualized volume: see
 * vol_virt_grow()) or the ftruncate error.
 */
int vol_file_grow(struct vol *v, uint64_t size);

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

/* ==== virtualized volumes: back ends, extents, RAID1 mirror legs, resync ====
 *
 * A pool disk ("back end") is an iSCSI LUN reached through iscsi-init, or a
 * local file. A virtualized volume is made of fixed-size extents allocated
 * from back ends; it has 1 or 2 mirror legs, each leg a list of (back end,
 * offset) extents. It is opened from a plain description (struct vol_desc),
 * which the cluster map owns and replicates, and from then on it is a
 * struct vol like any other: vol_submit() on it splits the request at
 * extent boundaries and drives the legs (synchronous RAID1: a write
 * completes once every healthy leg has it; a read goes to one healthy leg
 * and is retried on the other one on error).
 *
 * Threads: a back end's I/O may be submitted from any reactor that has a
 * vol_chan; an iSCSI back end lives on the reactor it was opened on and
 * forwards requests from other reactors to it (and completions back).
 * A virtualized volume keeps its shared state (leg states, dirty bitmap,
 * region lock) under one mutex, so its I/O may come from several reactors
 * at once, like a file volume's. Control calls (open, close, resync start,
 * reopen) run on a reactor thread too; leg event callbacks run on whatever
 * reactor thread noticed the event, without any vol lock held.
 */

struct vol_backend;

enum vol_backend_state {
	VOL_BACKEND_UP,
	VOL_BACKEND_FAILED, /* I/O refused with -EIO until reopened / set up */
};

#define VOL_BACKEND_ID_MAX 20 /* an NAA designator is 8 or 16 bytes */

struct vol_backend_info {
	char name[VOL_NAME_MAX + 1];
	uint64_t size;	     /* bytes */
	uint32_t block_size; /* bytes */
	bool can_unmap;
	/* The LUN's NAA designator from VPD page 83h (SPC-4 7.8.6.6), the
	 * identifier that is the same on every path; id_len 0 when none. */
	uint8_t id[VOL_BACKEND_ID_MAX];
	uint8_t id_len;
};

/*
 * What a back end implements (STYLE.md rule 14: file, iSCSI, and the
 * fault-injecting fake of the unit tests). submit() gets a request whose
 * offset and len are bytes of the back end; it follows vol_submit()'s
 * contract (0: io->cb runs exactly once, later, on the submitting reactor's
 * thread; negative errno: never). The request's priv bytes belong to the
 * implementation until the callback.
 */
struct vol_backend_ops {
	int (*submit)(void *ctx, struct vol_chan *ch, struct vol_io *io);
	/* Get back in service after a failure (optional): 0 and cb later,
	 * or a negative errno. */
	int (*reopen)(void *ctx, struct vol_backend *be, vol_cb cb, void *cb_arg);
	void (*close)(void *ctx);
	/* Persistent-reservation fencing (optional): see vol_backend_pr(). */
	int (*pr)(void *ctx, int op, uint64_t key, vol_cb cb, void *cb_arg);
};

/* Wrap an implementation. \p info is copied. Returns 0 or -EINVAL/-ENOMEM. */
int vol_backend_create(const struct vol_backend_ops *ops, void *ctx,
		       const struct vol_backend_info *info, struct vol_backend **out);
/*
 * A local file as a back end (the existing file volume underneath: sparse,
 * flock'ed, O_DIRECT when possible). Same arguments and errors as
 * vol_open_file().
 */
int vol_backend_open_file(const char *name, const char *path, uint64_t size, uint32_t block_size,
			  struct vol_backend **out);

/* Options of an iSCSI back end; NULL or zero fields take the defaults. */
struct vol_backend_iscsi_opts {
	const char *initiator_name; /* NULL: iscsi-init's default */
	/* A lost session is retried this long, then the back end fails (and
	 * with it the legs on it). 0: 5000 ms. */
	uint32_t recovery_timeout_ms;
	uint32_t cmd_timeout_ms; /* 0: 10000 */
	/* This engine's persistent reservation key (SPC-4 5.12) on the LUN:
	 * registered at every login, so that vol_backend_pr(VOL_PR_FENCE) by
	 * another engine can shut this one out. 0: no reservations used. */
	uint64_t pr_key;
};
/*
 * An iSCSI LUN as a back end, on reactor \p r (the calling thread's, or one
 * not yet running). \p url is iscsi-init's form
 * "iscsi://[user[%secret]@]host[:port]/target-iqn/lun" (one-way CHAP in the
 * URL, mutual CHAP and digests as options). *\p out is set at once; the
 * login runs in the background and \p cb gets 0 (state UP, size and
 * identifier filled) or the login's error (state FAILED; retry with
 * vol_backend_reopen()). Returns 0, or -EINVAL (bad URL) / -ENOMEM, and then
 * \p cb is never called and *\p out is NULL.
 */
int vol_backend_open_iscsi(struct util_reactor *r, const char *name, const char *url,
			   const struct vol_backend_iscsi_opts *opts, vol_cb cb, void *cb_arg,
			   struct vol_backend **out);
/* Close: no I/O may be in flight. An iSCSI session logs out in the background. */
void vol_backend_close(struct vol_backend *be);

const struct vol_backend_info *vol_backend_info(const struct vol_backend *be);
enum vol_backend_state vol_backend_state(const struct vol_backend *be);
/* Mark up or failed (an implementation on errors; the owner or a test). */
void vol_backend_set_state(struct vol_backend *be, enum vol_backend_state st);
/*
 * Bring a FAILED back end back: a new iSCSI login (the old session is
 * dropped). \p cb gets 0 (UP) or the error. -EBUSY while I/O is in flight
 * on it, -EOPNOTSUPP when the implementation cannot (use set_state).
 */
int vol_backend_reopen(struct vol_backend *be, vol_cb cb, void *cb_arg);
/* I/O on back-end bytes; vol_submit()'s contract. A FAILED back end: -EIO. */
int vol_backend_submit(struct vol_chan *ch, struct vol_backend *be, struct vol_io *io);

/*
 * Fencing through persistent reservations (SPC-4 5.12), for engines that
 * share back ends. Each engine's sessions are registered with its own key
 * (vol_backend_iscsi_opts.pr_key) at every login, not when a lost
 * connection is recovered (the engine may have been fenced meanwhile); no
 * reservation exists until a fence.
 *   VOL_PR_REGISTER: (re)register this engine's key (REGISTER AND IGNORE
 *     EXISTING KEY); \p key unused. For an engine that was fenced and is
 *     back in the cluster.
 *   VOL_PR_FENCE: make sure a WRITE EXCLUSIVE, ALL REGISTRANTS reservation
 *     exists and remove \p key's registrations (PREEMPT AND ABORT): from
 *     then on the back end refuses that engine's writes, including those
 *     still on their way (RESERVATION CONFLICT), until it registers again.
 *     A key that is not registered is already fenced: success.
 * On the back end's reactor thread; \p cb runs there, later, with 0,
 * -EOPNOTSUPP (the back end has no persistent reservations, or no key was
 * configured), -EIO (not logged in) or the command's error.
 */
enum vol_pr_op {
	VOL_PR_REGISTER,
	VOL_PR_FENCE,
};
int vol_backend_pr(struct vol_backend *be, enum vol_pr_op op, uint64_t key, vol_cb cb,
		   void *cb_arg);

/* ---- volume descriptions and extent allocation (the map's data) ---- */

#define VOL_MAX_LEGS		2
#define VOL_DEFAULT_EXTENT_SIZE (256ull << 20)
#define VOL_DEFAULT_REGION_SIZE (1ull << 20)

enum vol_leg_state {
	VOL_LEG_OK,	/* in sync: reads and writes */
	VOL_LEG_FAILED, /* stale: no I/O; writes set dirty-region bits */
	VOL_LEG_RESYNC, /* coming back: writes, no reads, dirty regions being copied */
};

struct vol_extent_desc {
	uint32_t backend; /* index in the back-end table given to vol_open_virt() */
	uint64_t offset;  /* bytes, on that back end */
};

struct vol_leg_desc {
	enum vol_leg_state state;
	uint32_t nextents;		 /* = ceil(size / extent_size) */
	struct vol_extent_desc *extents; /* malloc'ed; vol_desc_free() frees */
};

/*
 * A volume as the map records it: plain values and arrays, nothing live,
 * so it serialises field by field. extent_size is a multiple of
 * region_size, which is a multiple of block_size.
 */
struct vol_desc {
	char name[VOL_NAME_MAX + 1];
	uint64_t size;	     /* bytes, multiple of block_size */
	uint32_t block_size; /* that of every back end used */
	uint64_t extent_size;
	uint64_t region_size; /* dirty-region granularity */
	uint32_t nlegs;	      /* 1 or 2 */
	struct vol_leg_desc legs[VOL_MAX_LEGS];
};

/* Free space of one back end, in whole extents (first fit). */
struct vol_space {
	uint64_t extent_size;
	uint32_t nextents;
	uint32_t nfree;
	uint8_t *used; /* nextents bits */
};
/* Every extent of a back end of \p backend_size bytes free. 0, -EINVAL, -ENOMEM. */
int vol_space_init(struct vol_space *sp, uint64_t backend_size, uint64_t extent_size);
void vol_space_fini(struct vol_space *sp);

/*
 * Fill \p d and allocate its extents from \p spaces (one per back end, all
 * with extent_size \p extent_size): each leg goes on one back end, the one
 * with the most free extents among those no other leg of the volume uses, so
 * the legs of a mirror never share a disk. Returns 0, -ENOSPC (no such
 * placement), -EINVAL, -ENOMEM; on error nothing stays allocated.
 */
int vol_desc_create(struct vol_desc *d, const char *name, uint64_t size, uint32_t block_size,
		    uint64_t extent_size, uint64_t region_size, uint32_t nlegs,
		    struct vol_space *spaces, uint32_t nspaces);
/* Give \p d's extents back to \p spaces (delete). */
void vol_desc_release(const struct vol_desc *d, struct vol_space *spaces, uint32_t nspaces);
/* Mark \p d's extents used in \p spaces (rebuilding free space from a map).
 * -EEXIST when one is already used, -EINVAL when out of range. */
int vol_desc_claim(const struct vol_desc *d, struct vol_space *spaces, uint32_t nspaces);
/* Free the extent arrays. */
void vol_desc_free(struct vol_desc *d);

/* ---- virtualized volumes ---- */

/* A leg changed state (failed on an I/O error, resync started or done). */
typedef void (*vol_leg_event_cb)(void *arg, struct vol *v, unsigned leg, enum vol_leg_state st);

/*
 * Write intent: the regions whose legs may differ, recorded outside this
 * engine (by the cluster, at the partner) so that a new owner after a crash
 * resyncs only them. The owner may die after one leg has a write and before
 * the other does; so a region must be recorded BEFORE the first write to it
 * goes to any leg. A region stays "intended" while it is written; once idle
 * (no write for VOL_INTENT_IDLE_MS, none in flight, not dirty because a leg
 * is out of service) it is cleared again.
 */
#define VOL_INTENT_IDLE_MS 5000

enum vol_intent_op {
	VOL_INTENT_SET,	  /* these regions may differ from now on (writes wait for it) */
	VOL_INTENT_CLEAR, /* these regions are in sync again (nobody waits) */
	VOL_INTENT_FULL,  /* every region that may differ: replaces the record */
};

/* Completion of a SET: 0 once recorded, or a negative errno. */
typedef void (*vol_intent_done_fn)(void *done_arg, int status);

/*
 * The hook of a mirrored volume's write intent. \p words is a bitmap of
 * \p nwords 64-bit words (region i: bit i % 64 of word i / 64), valid during
 * the call only: copy it. Calls come one at a time per volume, in the order
 * the record must apply them, from any thread (the one whose write needed
 * them, or the one calling vol_virt_intent_tick() / _full()), never with a
 * vol lock held; the hook must not block nor call into the volume.
 * SET: returns 0 and calls \p done(\p done_arg, status) exactly once, later
 * (never inline), from a reactor thread that has a vol_chan (any thread
 * when no reactor runs, as in unit tests), and not after vol_close(); status
 * 0 means recorded: the writes that waited for it go; a negative errno fails
 * them (-EIO) and the regions are tried again at the next tick. A negative
 * return: \p done is never called and the volume tries again at the next
 * vol_virt_intent_tick() (writes keep waiting). CLEAR and FULL: \p done is
 * NULL and nobody waits; a negative return is retried at the next tick.
 */
typedef int (*vol_intent_fn)(void *arg, struct vol *v, enum vol_intent_op op, const uint64_t *words,
			     size_t nwords, vol_intent_done_fn done, void *done_arg);

struct vol_virt_params {
	vol_leg_event_cb leg_cb; /* optional */
	void *leg_cb_arg;
	/* Child requests preallocated for the volume (no malloc per I/O);
	 * 0: 512. A request needing more than all of them is refused. */
	unsigned max_children;
	/* Write intent (optional, mirrors of 2 legs only): NULL, no waiting. */
	vol_intent_fn intent_cb;
	void *intent_arg;
};

/*
 * Open a virtualized volume from \p d: extent i of leg l lives on
 * backends[d->legs[l].extents[i].backend]. The back ends must outlive the
 * volume and have d->block_size blocks. Legs start in the states \p d
 * records; a volume whose legs are both FAILED is refused (-ENODEV).
 * Returns 0 and *\p out (a struct vol for vol_submit() and the accessors)
 * or -EINVAL / -ENOMEM / -ENODEV. vol_close() closes it (no I/O and no
 * resync may be running).
 */
int vol_open_virt(const struct vol_desc *d, struct vol_backend *const *backends, uint32_t nbackends,
		  const struct vol_virt_params *p, struct vol **out);

/* True for a volume from vol_open_virt(). */
bool vol_is_virt(const struct vol *v);

struct vol_virt_status {
	uint32_t nlegs;
	enum vol_leg_state leg[VOL_MAX_LEGS];
	uint64_t nregions;	/* regions of the volume */
	uint64_t dirty_regions; /* bits set now */
	bool resyncing;
	unsigned resync_leg;
	uint64_t resync_total; /* dirty regions when the resync started */
	uint64_t resync_done;  /* copied so far */
	uint64_t reads_retried;
	uint64_t writes_degraded; /* writes acknowledged with a leg missing */
	/* Write intent (zero without a hook): */
	uint64_t intent_regions; /* recorded as possibly differing */
	uint64_t intent_rounds;	 /* SET rounds sent */
	uint64_t intent_cleared; /* regions cleared once idle */
	uint64_t intent_waits;	 /* writes that waited for a round */
	unsigned intent_waiting; /* writes waiting now */
};
void vol_virt_status(struct vol *v, struct vol_virt_status *st);

/*
 * The dirty-region bitmap (bit i: region i differs between the legs), as
 * 64-bit words, region 0 in bit 0 of word 0: for the map and the partner.
 * get: copies min(nwords, needed) words and returns the number needed.
 * set: ORs \p words in (after a restart or failover); with a write intent
 * hook, the new bits are recorded too (a SET nobody waits for).
 */
size_t vol_virt_dirty_get(struct vol *v, uint64_t *words, size_t nwords);
void vol_virt_dirty_set(struct vol *v, const uint64_t *words, size_t nwords);

/* Mark leg \p leg failed by hand (the map says so, or an operator). */
int vol_virt_fail_leg(struct vol *v, unsigned leg);

/*
 * Write intent upkeep, every second or so, from any thread that is not
 * inside a vol callback: regions idle for VOL_INTENT_IDLE_MS (by \p now_ms,
 * a monotonic clock in ms) are cleared (one CLEAR), and a hook call that
 * failed is tried again. No-op without a hook.
 */
void vol_virt_intent_tick(struct vol *v, uint64_t now_ms);
/*
 * Send the whole intent set (FULL) soon, through the hook: after the volume
 * opened, and whenever the record's holders may have missed something (a
 * member joined). Any thread, as vol_virt_intent_tick(). No-op without a hook.
 */
void vol_virt_intent_full(struct vol *v);

/*
 * Resync leg \p leg (FAILED, its back end working again) from the OK leg:
 * the leg goes to RESYNC (it takes writes, not reads), then each dirty
 * region is copied in the background, one at a time, through channel \p ch
 * (the calling reactor's), at most \p rate_bps bytes per second (0: as fast
 * as the back ends go). A region being copied is locked: host writes to it
 * wait until the copy is done, and the copy waits for writes already in
 * flight there, so stale data never overwrites a newer write. When every
 * region is copied the leg is OK again; \p cb gets 0, or the error that
 * stopped it (the leg is FAILED again, the bits not copied stay set).
 * Returns 0, or -EINVAL (no such leg, not FAILED, no OK leg), -EBUSY (a
 * resync runs), -ENOMEM; then \p cb is never called.
 */
int vol_virt_resync_start(struct vol_chan *ch, struct vol *v, unsigned leg, uint64_t rate_bps,
			  vol_cb cb, void *cb_arg);

/*
 * Grow virtualized volume \p v online to \p d->size: \p d is the volume's
 * new description (same name, block, extent and region sizes and legs, the
 * extents of the current size unchanged, new ones appended to every leg;
 * the back-end indices refer to the table given to vol_open_virt(), so the
 * new extents must lie on back ends of that table). I/O in flight is not
 * touched; requests beyond the old end are accepted once the new extents
 * are mapped, and vol_size() changes last. Control thread (one grow at a
 * time). Returns 0 (also when the size is unchanged), -EINVAL (\p d does not
 * extend \p v, an extent outside its back end or table), -EBUSY (a resync
 * runs: its region bookkeeping is sized for the old volume; retry once it
 * ends), -ENOMEM. On error the volume is unchanged.
 */
int vol_virt_grow(struct vol *v, const struct vol_desc *d);

#endif /* VMENGINE_VOL_H */
