/*
 * vol_chan.c: the per-reactor I/O channel: libaio submission, completion
 * through an eventfd on the reactor, and the queue that absorbs bursts
 * larger than the kernel ring.
 *
 * Completion contract (vol.h): the callback of an accepted request runs
 * later, from this channel's eventfd handler, never inside vol_submit().
 * Every path honours it: libaio events, worker results and even zero-length
 * requests all come back through the eventfd.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vol/vol_internal.h"

#define CHAN_REAP_BATCH	  64
#define CHAN_SUBMIT_BATCH 32

struct vol_chan {
	struct util_reactor *r;
	io_context_t ctx;
	int efd; /* libaio completions and worker results both signal it */
	unsigned depth;
	unsigned inflight; /* in the kernel */
	unsigned deferred; /* with the worker or on the done list */
	/* Accepted while the ring was full, in submission order. */
	struct vol_io *pend_head, *pend_tail;
	bool in_poll;
	bool destroy_pending;

	/* Filled by the worker thread, drained by the reactor. */
	pthread_mutex_t lock;
	struct vol_io *done_head, *done_tail;
};

/* ---- completion ---- */

static void io_finish(struct vol_io *io, int status)
{
	io->status = status;
	io->cb(io->cb_arg, status);
}

void vol_chan_complete_async(struct vol_chan *ch, struct vol_io *io)
{
	uint64_t one = 1;

	vol_io_priv(io)->job.next = NULL;
	pthread_mutex_lock(&ch->lock);
	if (ch->done_tail)
		vol_io_priv(ch->done_tail)->job.next = io;
	else
		ch->done_head = io;
	ch->done_tail = io;
	/*
	 * Written under the lock: the reactor can only see io (and so only let
	 * its owner destroy the channel) after we unlock, so the eventfd is
	 * still open here.
	 */
	if (write(ch->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("completion eventfd write: %s", strerror(errno));
	pthread_mutex_unlock(&ch->lock);
}

static void defer(struct vol_chan *ch, struct vol_io *io, bool to_worker)
{
	vol_io_priv(io)->job.ch = ch;
	ch->deferred++;
	if (to_worker)
		vol_worker_queue(io);
	else
		vol_chan_complete_async(ch, io);
}

/* One libaio event. \p res: bytes transferred or a negative errno. */
static void aio_done(struct vol_chan *ch, struct vol_io *io, long res)
{
	uint64_t want = io->len - io->done_bytes;

	if (res < 0) {
		log_ratelimited(LOG_ERR, "volume %s: %s at %" PRIu64 " +%" PRIu64 ": %s",
				io->vol->name, io->op == VOL_OP_READ ? "read" : "write", io->offset,
				io->len, strerror((int)-res));
		io_finish(io, (int)res);
		return;
	}
	if ((uint64_t)res >= want) {
		io->done_bytes = io->len;
		io_finish(io, 0);
		return;
	}
	if (res == 0) {
		io_finish(io, -EIO);
		return;
	}
	/* Short transfer: the worker finishes the remainder (or reports why
	 * it cannot) without blocking this thread. */
	io->done_bytes += (uint64_t)res;
	log_debug("volume %s: short %s at %" PRIu64 " (%ld of %" PRIu64 "), continuing",
		  io->vol->name, io->op == VOL_OP_READ ? "read" : "write", io->offset, res, want);
	defer(ch, io, true);
}

static void chan_reap(struct vol_chan *ch)
{
	struct io_event ev[CHAN_REAP_BATCH];
	struct timespec zero = {0, 0};

	for (;;) {
		int n = io_getevents(ch->ctx, 0, CHAN_REAP_BATCH, ev, &zero);

		if (n < 0) {
			if (n == -EINTR)
				continue;
			log_err("io_getevents: %s", strerror(-n));
			return;
		}
		for (int i = 0; i < n; i++) {
			ch->inflight--;
			aio_done(ch, ev[i].data, (long)ev[i].res);
		}
		if (n < CHAN_REAP_BATCH)
			return;
	}
}

static void chan_drain_done(struct vol_chan *ch)
{
	struct vol_io *io;

	pthread_mutex_lock(&ch->lock);
	io = ch->done_head;
	ch->done_head = ch->done_tail = NULL;
	pthread_mutex_unlock(&ch->lock);
	while (io) {
		struct vol_io *next = vol_io_priv(io)->job.next;
		ch->deferred--;
		io_finish(io, io->status);
		io = next;
	}
}

/* ---- submission ---- */

static void io_prep(struct vol_chan *ch, struct vol_io *io)
{
	struct iocb *cb = &vol_io_priv(io)->iocb;
	struct vol *v = io->vol;
	int fd = vol_io_direct_ok(v, io) ? v->fd : v->fd_buf;

	if (io->op == VOL_OP_READ)
		io_prep_preadv(cb, fd, io->iov, io->iovcnt, (long long)io->offset);
	else
		/* SBC-3 WRITE (10/16), FUA bit set: the device server writes
		 * the blocks to non-volatile cache or the medium before it
		 * returns status. RWF_DSYNC makes exactly this write durable,
		 * without flushing anything else. */
		io_prep_pwritev2(cb, fd, io->iov, io->iovcnt, (long long)io->offset,
				 io->fua ? RWF_DSYNC : 0);
	io_set_eventfd(cb, ch->efd);
	cb->data = io;
}

static void pend_push_tail(struct vol_chan *ch, struct vol_io *io)
{
	vol_io_priv(io)->job.next = NULL;
	if (ch->pend_tail)
		vol_io_priv(ch->pend_tail)->job.next = io;
	else
		ch->pend_head = io;
	ch->pend_tail = io;
}

static void pend_push_head(struct vol_chan *ch, struct vol_io *io)
{
	vol_io_priv(io)->job.next = ch->pend_head;
	ch->pend_head = io;
	if (!ch->pend_tail)
		ch->pend_tail = io;
}

static struct vol_io *pend_pop(struct vol_chan *ch)
{
	struct vol_io *io = ch->pend_head;

	if (io) {
		ch->pend_head = vol_io_priv(io)->job.next;
		if (!ch->pend_head)
			ch->pend_tail = NULL;
	}
	return io;
}

/* Move queued requests into the ring as far as it has room. */
static void chan_submit_pending(struct vol_chan *ch)
{
	while (ch->pend_head && ch->inflight < ch->depth) {
		struct iocb *cbs[CHAN_SUBMIT_BATCH];
		struct vol_io *ios[CHAN_SUBMIT_BATCH];
		int n = 0, rc;

		while (n < CHAN_SUBMIT_BATCH && ch->pend_head &&
		       ch->inflight + (unsigned)n < ch->depth) {
			ios[n] = pend_pop(ch);
			io_prep(ch, ios[n]);
			cbs[n] = &vol_io_priv(ios[n])->iocb;
			n++;
		}
		rc = io_submit(ch->ctx, n, cbs);
		if (rc > 0)
			ch->inflight += (unsigned)rc;
		/* Requests the kernel did not take go back in front, in order. */
		for (int i = n - 1; i >= (rc > 0 ? rc : 0); i--)
			pend_push_head(ch, ios[i]);
		if (rc >= 0 && rc < n && ch->inflight)
			return; /* ring full after all: wait for completions */
		if (rc == -EAGAIN && ch->inflight)
			return;
		if (rc < 0 || rc == 0) {
			/* The first request is refused outright (or no progress
			 * is possible): fail it so the queue moves on. */
			struct vol_io *bad = pend_pop(ch);
			io_finish(bad, rc < 0 ? rc : -EIO);
		}
	}
}

static void chan_free(struct vol_chan *ch)
{
	if (ch->inflight || ch->deferred || ch->pend_head)
		log_err("channel destroyed with %u in flight, %u deferred, %s queued", ch->inflight,
			ch->deferred, ch->pend_head ? "some" : "none");
	util_reactor_del_fd(ch->r, ch->efd);
	io_destroy(ch->ctx);
	close(ch->efd);
	pthread_mutex_destroy(&ch->lock);
	vol_worker_put();
	free(ch);
}

static void chan_poll(void *arg, uint32_t events)
{
	struct vol_chan *ch = arg;
	uint64_t cnt;

	/* Reset the counter first: anything signalled after this read makes
	 * the eventfd readable again, so no completion is missed. */
	if (read(ch->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_err("completion eventfd read: %s", strerror(errno));
	ch->in_poll = true;
	chan_reap(ch);
	chan_drain_done(ch);
	chan_submit_pending(ch);
	ch->in_poll = false;
	if (ch->destroy_pending)
		chan_free(ch);
}

/* ---- public ---- */

struct vol_chan *vol_chan_create(struct util_reactor *r)
{
	struct vol_chan *ch;
	int rc;

	if (!r)
		r = util_reactor_self();
	if (!r) {
		log_err("vol_chan_create: no reactor");
		return NULL;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		log_err("out of memory creating an I/O channel");
		return NULL;
	}
	ch->r = r;
	ch->depth = VOL_CHAN_DEPTH;
	pthread_mutex_init(&ch->lock, NULL);
	rc = io_setup((int)ch->depth, &ch->ctx);
	if (rc < 0) {
		log_err("%s: io_setup(%u): %s (see /proc/sys/fs/aio-max-nr)", util_reactor_name(r),
			ch->depth, strerror(-rc));
		goto err_free;
	}
	ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->efd < 0) {
		log_err("%s: eventfd: %s", util_reactor_name(r), strerror(errno));
		goto err_io;
	}
	rc = vol_worker_get();
	if (rc)
		goto err_efd;
	rc = util_reactor_add_fd(r, ch->efd, EPOLLIN, chan_poll, ch);
	if (rc) {
		log_err("%s: registering the I/O eventfd: %s", util_reactor_name(r), strerror(-rc));
		goto err_worker;
	}
	return ch;

err_worker:
	vol_worker_put();
err_efd:
	close(ch->efd);
err_io:
	io_destroy(ch->ctx);
err_free:
	pthread_mutex_destroy(&ch->lock);
	free(ch);
	return NULL;
}

void vol_chan_destroy(struct vol_chan *ch)
{
	if (!ch)
		return;
	/* From a completion callback: chan_poll still uses ch; it frees it
	 * once it is done. */
	if (ch->in_poll) {
		ch->destroy_pending = true;
		return;
	}
	chan_free(ch);
}

struct util_reactor *vol_chan_reactor(const struct vol_chan *ch)
{
	return ch->r;
}

void vol_chan_defer_done(struct vol_chan *ch, struct vol_io *io, int status)
{
	io->status = status;
	defer(ch, io, false);
}

void vol_chan_run_on(struct vol_chan *ch, util_msg_fn fn, void *arg)
{
	struct util_reactor *self = util_reactor_self();

	if (!self || self == ch->r) {
		fn(arg);
		return;
	}
	/* The message pool only allocates when cold; a failure here would
	 * strand a request, so fall back to running it here (the request's
	 * completion then still reaches its own channel through the back end). */
	if (util_reactor_send(ch->r, fn, arg) < 0) {
		log_err("%s: cannot hand work over, running it here", util_reactor_name(ch->r));
		fn(arg);
	}
}

/* Range, alignment and iovec checks; the caller's input is never trusted. */
static int io_validate(const struct vol *v, const struct vol_io *io)
{
	uint64_t sum = 0;

	switch (io->op) {
	case VOL_OP_FLUSH:
		return 0; /* the whole volume, whatever the range says */
	case VOL_OP_READ:
	case VOL_OP_WRITE:
	case VOL_OP_UNMAP:
	case VOL_OP_WRITE_ZEROES:
		break;
	default:
		return -EINVAL;
	}
	if ((io->offset | io->len) % v->block_size)
		return -EINVAL;
	uint64_t size = vol_size(v); /* once: a grow may change it */
	if (io->offset > size || io->len > size - io->offset)
		return -EINVAL;
	if (io->op != VOL_OP_READ && io->op != VOL_OP_WRITE)
		return 0;
	if (io->len == 0)
		return 0;
	if (!io->iov || io->iovcnt < 1 || io->iovcnt > IOV_MAX)
		return -EINVAL;
	for (int i = 0; i < io->iovcnt; i++) {
		if (!io->iov[i].iov_base && io->iov[i].iov_len)
			return -EINVAL;
		sum += io->iov[i].iov_len;
		if (sum > io->len)
			return -EINVAL;
	}
	return sum == io->len ? 0 : -EINVAL;
}

int vol_submit(struct vol_chan *ch, struct vol *v, struct vol_io *io)
{
	struct iocb *cb;
	int rc;

	if (!ch || !v || !io || !io->cb)
		return -EINVAL;
	rc = io_validate(v, io);
	if (rc) {
		log_debug("volume %s: rejected op %d at %" PRIu64 " +%" PRIu64, v->name,
			  (int)io->op, io->offset, io->len);
		return rc;
	}
	io->vol = v;
	io->status = 0;
	io->done_bytes = 0;
	if (v->virt)
		return vol_virt_submit(ch, v, io);

	switch (io->op) {
	case VOL_OP_READ:
	case VOL_OP_WRITE:
		break;
	case VOL_OP_FLUSH:
		defer(ch, io, true);
		return 0;
	case VOL_OP_UNMAP:
	case VOL_OP_WRITE_ZEROES:
		defer(ch, io, io->len != 0);
		return 0;
	}
	if (io->len == 0) {
		defer(ch, io, false);
		return 0;
	}
	/* Behind earlier queued requests, or the ring is full: queue. */
	if (ch->pend_head || ch->inflight >= ch->depth) {
		pend_push_tail(ch, io);
		return 0;
	}
	io_prep(ch, io);
	cb = &vol_io_priv(io)->iocb;
	rc = io_submit(ch->ctx, 1, &cb);
	if (rc == 1) {
		ch->inflight++;
		return 0;
	}
	if (rc == -EAGAIN && ch->inflight) {
		pend_push_tail(ch, io);
		return 0;
	}
	log_ratelimited(LOG_ERR, "volume %s: io_submit: %s", v->name, strerror(rc < 0 ? -rc : EIO));
	return rc < 0 ? rc : -EIO;
}
