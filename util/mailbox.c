/*
 * mailbox.c: fixed-size records from any thread to a libqb main loop, over a
 * non-blocking pipe. See util.h for the contract.
 *
 * Why a pipe and not a locked queue with an eventfd (as the reactor does):
 * the records are small and fixed-size, a pipe write of at most PIPE_BUF
 * bytes is atomic, so posters on any thread need no lock and no allocation,
 * and a full pipe is a clear, immediate answer (EAGAIN) instead of unbounded
 * growth.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>
#include <qb/qbloop.h>

#include "util/util.h"

struct util_mailbox {
	qb_loop_t *loop;
	int fd[2]; /* [0] read on the loop's thread, [1] written by any thread */
	size_t rec_size;
	util_mailbox_fn deliver;
	util_mailbox_drained_fn drained;
	void *arg;
	max_align_t rec[]; /* one record being delivered: loop's thread only */
};

static int32_t on_readable(int32_t fd, int32_t revents, void *data)
{
	struct util_mailbox *mb = data;

	/*
	 * Every write is one whole record, so a read of one record's size gets
	 * a whole record or nothing. Anything else (empty: EAGAIN, or EINTR)
	 * ends this wake-up; the poll is level-triggered, so what is left
	 * comes at the next one.
	 */
	while (read(fd, mb->rec, mb->rec_size) == (ssize_t)mb->rec_size)
		mb->deliver(mb->arg, mb->rec);
	if (mb->drained)
		mb->drained(mb->arg);
	return 0; /* a negative return would make libqb drop the fd */
}

int util_mailbox_open(struct qb_loop *loop, size_t rec_size, size_t pipe_size,
		      util_mailbox_fn deliver, util_mailbox_drained_fn drained, void *arg,
		      struct util_mailbox **out)
{
	struct util_mailbox *mb;
	int rc;

	if (!loop || !deliver || !out || rec_size == 0 || rec_size > PIPE_BUF ||
	    pipe_size > INT_MAX)
		return -EINVAL;
	mb = calloc(1, sizeof(*mb) + UTIL_ALIGN_UP(rec_size, sizeof(max_align_t)));
	if (!mb)
		return -ENOMEM;
	mb->loop = loop;
	mb->rec_size = rec_size;
	mb->deliver = deliver;
	mb->drained = drained;
	mb->arg = arg;
	/* Both ends non-blocking: a poster never waits, the reader stops when empty. */
	if (pipe2(mb->fd, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		goto err_free;
	}
	/* Best effort (see util.h): a smaller pipe only fills sooner. */
	if (pipe_size)
		(void)fcntl(mb->fd[1], F_SETPIPE_SZ, (int)pipe_size);
	if (qb_loop_poll_add(loop, QB_LOOP_HIGH, mb->fd[0], POLLIN, mb, on_readable) < 0) {
		rc = -EIO;
		goto err_close;
	}
	*out = mb;
	return 0;

err_close:
	close(mb->fd[0]);
	close(mb->fd[1]);
err_free:
	free(mb);
	return rc;
}

int util_mailbox_post(struct util_mailbox *mb, const void *rec)
{
	ssize_t n;

	do
		n = write(mb->fd[1], rec, mb->rec_size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno; /* EAGAIN: full; nothing was written */
	/* Cannot happen at or below PIPE_BUF; never report a torn record as posted. */
	if (n != (ssize_t)mb->rec_size)
		return -EIO;
	return 0;
}

void util_mailbox_close(struct util_mailbox *mb)
{
	if (!mb)
		return;
	qb_loop_poll_del(mb->loop, mb->fd[0]);
	close(mb->fd[0]);
	close(mb->fd[1]);
	free(mb);
}
