/*
 * util: the small pieces every vmengine folder shares.
 *
 * - byte order helpers for wire formats (alignment-safe),
 * - logging over libqb's qb_log, with a subsystem tag per file,
 * - CRC32C (iSCSI digests),
 * - monotonic time,
 * - a per-thread buffer pool for I/O buffers,
 * - the reactor: one epoll loop per thread, cross-thread messages through an
 *   eventfd, and a coarse periodic tick for protocol timers,
 * - the mailbox: fixed-size records from any thread to a libqb main loop (the
 *   engine's control thread) through a non-blocking pipe.
 *
 * Lists are <sys/queue.h> (TAILQ/STAILQ); nothing here re-implements them.
 */
#ifndef VMENGINE_UTIL_H
#define VMENGINE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <syslog.h>
#include <sys/queue.h>
#include <qb/qblog.h>

/* glibc's <sys/queue.h> lacks the _SAFE iterators of the BSDs. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                 \
	for ((var) = TAILQ_FIRST(head); (var) && ((tvar) = TAILQ_NEXT(var, field), 1);             \
	     (var) = (tvar))
#endif
#ifndef STAILQ_FOREACH_SAFE
#define STAILQ_FOREACH_SAFE(var, head, field, tvar)                                                \
	for ((var) = STAILQ_FIRST(head); (var) && ((tvar) = STAILQ_NEXT(var, field), 1);           \
	     (var) = (tvar))
#endif
#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar)                                                  \
	for ((var) = LIST_FIRST(head); (var) && ((tvar) = LIST_NEXT(var, field), 1); (var) = (tvar))
#endif

#define UTIL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UTIL_MIN(a, b)	   ((a) < (b) ? (a) : (b))
#define UTIL_MAX(a, b)	   ((a) > (b) ? (a) : (b))
#define UTIL_CONTAINER_OF(ptr, type, member)                                                       \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define UTIL_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define likely(x)	    __builtin_expect(!!(x), 1)
#define unlikely(x)	    __builtin_expect(!!(x), 0)

/* ---- byte order: every multi-byte wire field goes through these ---- */

static inline uint16_t get_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)((b[0] << 8) | b[1]);
}
static inline uint32_t get_be24(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 16) | ((uint32_t)b[1] << 8) | b[2];
}
static inline uint32_t get_be32(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}
static inline uint64_t get_be64(const void *p)
{
	const uint8_t *b = p;
	return ((uint64_t)get_be32(b) << 32) | get_be32(b + 4);
}
static inline void put_be16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void put_be24(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 16);
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)v;
}
static inline void put_be32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void put_be64(void *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32((uint8_t *)p + 4, (uint32_t)v);
}

/* ---- logging ----
 * Each .c file defines UTIL_LOG_TAG (a short subsystem name such as "login")
 * before including this header; every line then starts with "[tag]".
 * Data-path lines name the peer; use log_ratelimited() for per-I/O errors.
 */
#ifndef UTIL_LOG_TAG
#define UTIL_LOG_TAG "vm"
#endif
#define log_err(fmt, ...)    qb_log(LOG_ERR, "[%s] " fmt, UTIL_LOG_TAG, ##__VA_ARGS__)
#define log_warn(fmt, ...)   qb_log(LOG_WARNING, "[%s] " fmt, UTIL_LOG_TAG, ##__VA_ARGS__)
#define log_notice(fmt, ...) qb_log(LOG_NOTICE, "[%s] " fmt, UTIL_LOG_TAG, ##__VA_ARGS__)
#define log_info(fmt, ...)   qb_log(LOG_INFO, "[%s] " fmt, UTIL_LOG_TAG, ##__VA_ARGS__)
#define log_debug(fmt, ...)  qb_log(LOG_DEBUG, "[%s] " fmt, UTIL_LOG_TAG, ##__VA_ARGS__)
/* At most one line per second per call site; the suppressed count is reported. */
#define log_ratelimited(level, fmt, ...)                                                           \
	do {                                                                                       \
		static _Thread_local uint64_t rl_last_;                                            \
		static _Thread_local unsigned rl_dropped_;                                         \
		uint64_t rl_now_ = util_now_ms();                                                  \
		if (rl_now_ - rl_last_ >= 1000) {                                                  \
			qb_log(level, "[%s] " fmt " (%u similar suppressed)", UTIL_LOG_TAG,        \
			       ##__VA_ARGS__, rl_dropped_);                                        \
			rl_last_ = rl_now_;                                                        \
			rl_dropped_ = 0;                                                           \
		} else {                                                                           \
			rl_dropped_++;                                                             \
		}                                                                                  \
	} while (0)

/*
 * Set up qb_log: stderr always (level from \p debug), syslog when \p syslog.
 * Call once from main() before any thread starts. util_log_fini() flushes.
 */
void util_log_init(const char *ident, bool debug, bool syslog);
void util_log_fini(void);

/* ---- CRC32C (Castagnoli), as iSCSI digests use it (RFC 7143 13.1) ----
 * util_crc32c() returns the finished CRC of one buffer. For several buffers:
 * crc = UTIL_CRC32C_INIT; crc = util_crc32c_update(crc, ...)...;
 * result = crc ^ UTIL_CRC32C_XOR. Uses the SSE4.2 instruction when the CPU
 * has it (checked once), else a table. Thread-safe.
 */
#define UTIL_CRC32C_INIT 0xffffffffu
#define UTIL_CRC32C_XOR	 0xffffffffu
uint32_t util_crc32c_update(uint32_t crc, const void *buf, size_t len);
uint32_t util_crc32c(const void *buf, size_t len);
/* True when the hardware path is in use (for logs and tests). */
bool util_crc32c_hw(void);

/* ---- time ---- */
uint64_t util_now_ns(void); /* CLOCK_MONOTONIC */
static inline uint64_t util_now_ms(void)
{
	return util_now_ns() / 1000000u;
}

/* ---- buffer pool ----
 * Per-thread, lock-free by construction: a pool belongs to one reactor thread
 * and only that thread gets and puts its buffers. Buffers are 4096-aligned
 * (usable with O_DIRECT) and come in power-of-two classes from 4 KiB to
 * UTIL_BUF_MAX_POOLED; larger requests are allocated and freed directly (they
 * are rare: one command above 1 MiB). Freed buffers return to their class's
 * free list; the pool grows on demand up to \p max_bytes_cached and frees
 * beyond it.
 */
#define UTIL_BUF_MIN_SHIFT  12
#define UTIL_BUF_MAX_SHIFT  20
#define UTIL_BUF_MAX_POOLED (1u << UTIL_BUF_MAX_SHIFT)
struct util_bufpool;
struct util_bufpool *util_bufpool_create(size_t max_bytes_cached);
void util_bufpool_destroy(struct util_bufpool *bp);
/* Returns a buffer of at least \p len bytes, or NULL when out of memory. */
void *util_buf_get(struct util_bufpool *bp, size_t len);
/* \p len must be the length given to util_buf_get(). NULL is ignored. */
void util_buf_put(struct util_bufpool *bp, void *buf, size_t len);

/* ---- reactor ----
 * One epoll loop owned by one thread. Everything registered on a reactor is
 * called on that reactor's thread only, so the objects it serves need no locks.
 * Other threads talk to it with util_reactor_send() only.
 */
struct util_reactor;
/* Called on the reactor thread with the epoll events that fired. */
typedef void (*util_fd_cb)(void *arg, uint32_t events);
/* A message or tick; runs on the reactor thread. */
typedef void (*util_msg_fn)(void *arg);

/* Create a reactor (not yet running). \p name appears in logs and the thread name. */
struct util_reactor *util_reactor_create(const char *name);
/* Run the loop in a new thread. Returns 0 or -errno. */
int util_reactor_start(struct util_reactor *r);
/*
 * Ask the loop to return. From another thread: also joins the loop's thread,
 * after the messages sent before the call have run. From the loop's own
 * thread: only requests the stop (util_reactor_destroy() joins). Safe on a
 * reactor never started.
 */
void util_reactor_stop(struct util_reactor *r);
/* Free the reactor; it must be stopped. */
void util_reactor_destroy(struct util_reactor *r);
/* Run the loop on the calling thread until util_reactor_stop(). */
void util_reactor_run(struct util_reactor *r);

/*
 * fd registration: reactor thread only (or before the reactor starts).
 * Call util_reactor_del_fd() before close(fd): epoll cannot forget a closed fd.
 */
int util_reactor_add_fd(struct util_reactor *r, int fd, uint32_t events, util_fd_cb cb, void *arg);
int util_reactor_mod_fd(struct util_reactor *r, int fd, uint32_t events, util_fd_cb cb, void *arg);
void util_reactor_del_fd(struct util_reactor *r, int fd);

/*
 * Run \p fn(\p arg) on the reactor's thread, in the order sent. Callable from
 * any thread. Returns 0, or -ENOMEM (then \p fn will not run).
 */
int util_reactor_send(struct util_reactor *r, util_msg_fn fn, void *arg);

/*
 * Call \p fn(\p arg) on the reactor thread every UTIL_REACTOR_TICK_MS until
 * removed. For protocol timers of second granularity (NOP-In, login timeout).
 * Reactor thread only. Returns a handle, or NULL on -ENOMEM.
 */
#define UTIL_REACTOR_TICK_MS 250
struct util_tick;
struct util_tick *util_reactor_tick_add(struct util_reactor *r, util_msg_fn fn, void *arg);
void util_reactor_tick_del(struct util_reactor *r, struct util_tick *t);

/* The reactor the calling thread runs, or NULL. */
struct util_reactor *util_reactor_self(void);
/* The buffer pool of a reactor (created with it). Reactor thread only. */
struct util_bufpool *util_reactor_bufpool(struct util_reactor *r);
const char *util_reactor_name(const struct util_reactor *r);

/* ---- mailbox ----
 * Fixed-size records posted from any thread (reactor threads, mostly) and
 * delivered on the thread that runs a libqb main loop (the engine's control
 * thread), through a non-blocking pipe: no lock, and each record is written
 * whole or not at all because it is at most PIPE_BUF bytes (POSIX: such a
 * pipe write is atomic).
 *
 * Order: records one thread posts are delivered in the order it posted them;
 * records of different threads in the order their writes reached the pipe.
 *
 * Ownership: util_mailbox_post() copies the record's bytes; the callback's
 * \p rec points to the mailbox's own buffer, valid during the call only.
 * What a record points to (most post one pointer) belongs to the caller's
 * protocol: the mailbox never frees or follows it, and records still in the
 * pipe at util_mailbox_close() are discarded unread.
 *
 * A full pipe drops nothing silently: util_mailbox_post() returns -EAGAIN and
 * the record was not posted; the caller decides (retry later, fail, log).
 */
struct util_mailbox;
struct qb_loop;
/* One record, on the loop's thread. \p rec is aligned for any type. */
typedef void (*util_mailbox_fn)(void *arg, const void *rec);
/* On the loop's thread, after each wake-up's records (possibly none). */
typedef void (*util_mailbox_drained_fn)(void *arg);

/*
 * Open a mailbox whose records reach \p deliver(\p arg, rec) on \p loop's
 * thread, one call per record, at the loop's high priority. After the records
 * of one wake-up (every record in the pipe then), \p drained(\p arg) runs,
 * when not NULL. Call from the loop's thread (or before the loop runs).
 *
 * \param rec_size  bytes per record, 1..PIPE_BUF (4096 on Linux).
 * \param pipe_size 0 for the system's default capacity (64 KiB on Linux);
 *                  else asked of the kernel (F_SETPIPE_SZ), best effort: an
 *                  unprivileged process gets at most
 *                  /proc/sys/fs/pipe-max-size, and a refusal is ignored.
 * \return 0 and *\p out, or -EINVAL (bad size, no \p deliver), -ENOMEM,
 *         -EMFILE/-ENFILE (no pipe), -EIO (the loop refused the pipe).
 */
int util_mailbox_open(struct qb_loop *loop, size_t rec_size, size_t pipe_size,
		      util_mailbox_fn deliver, util_mailbox_drained_fn drained, void *arg,
		      struct util_mailbox **out);

/*
 * Post one record (rec_size bytes at \p rec, copied). Any thread, including
 * the loop's own (from a callback too: the record is delivered in the same
 * wake-up). Never blocks.
 * \return 0 (it will be delivered unless the mailbox is closed first), or
 *         -EAGAIN when the pipe is full: the record is not posted, and will
 *         never be delivered. Any other negative errno means the same and
 *         only comes of misuse (a closed mailbox).
 */
int util_mailbox_post(struct util_mailbox *mb, const void *rec);

/*
 * Stop watching the pipe, close it and free the mailbox; NULL is ignored.
 * Loop's thread only, never from the mailbox's own callbacks, and only once
 * no thread posts any more (its reactors stopped). Records still in the
 * pipe are discarded, their callbacks never run.
 */
void util_mailbox_close(struct util_mailbox *mb);

#endif /* VMENGINE_UTIL_H */
