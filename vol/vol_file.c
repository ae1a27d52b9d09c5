/*
 * vol_file.c: a volume stored in a local file, and the worker thread that
 * performs the file operations libaio cannot do asynchronously.
 *
 * The file is opened O_DIRECT when the filesystem allows it, with a second,
 * buffered descriptor for I/O that is not 4096-aligned. Reads and writes go
 * through the per-thread libaio channel (vol_chan.c); FLUSH, UNMAP and
 * WRITE ZEROES run on one small worker thread here, because fdatasync and
 * fallocate block, and a reactor thread must never block.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vol/vol_internal.h"

/*
 * IEEE company identifier of our NAA identifiers. 0x02564D has the
 * locally-administered bit set with the SLAP "AAI" quadrant (first octet
 * 0x02), a range the IEEE never assigns to a company, so our identifiers
 * cannot collide with a vendor's; the remaining octets spell "VM".
 */
#define VOL_NAA_COMPANY_ID 0x02564Du

/* ---- identity ---- */

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x100000001b3ull

static uint64_t fnv1a64(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len--) {
		h ^= *p++;
		h *= FNV64_PRIME;
	}
	return h;
}

/*
 * NAA IEEE Registered Extended designator (SPC-4 7.8.6.6.6): NAA 6h, a
 * 24-bit IEEE COMPANY_ID, a 36-bit VENDOR SPECIFIC IDENTIFIER and a 64-bit
 * VENDOR SPECIFIC IDENTIFIER EXTENSION. Both vendor fields come from FNV-1a
 * hashes of the name only, so the identifier is the same on every start and
 * on every engine, which multipath on the hosts depends on.
 */
void vol_make_id(const char *name, uint8_t id[VOL_ID_LEN])
{
	static const char salt[] = "vmengine-vsid";
	size_t len = strlen(name);
	uint64_t ext = fnv1a64(FNV64_OFFSET, name, len);
	uint64_t vsid = fnv1a64(fnv1a64(FNV64_OFFSET, salt, sizeof(salt)), name, len);
	uint32_t cid = VOL_NAA_COMPANY_ID;

	id[0] = (uint8_t)(0x60 | ((cid >> 20) & 0x0f));
	id[1] = (uint8_t)(cid >> 12);
	id[2] = (uint8_t)(cid >> 4);
	id[3] = (uint8_t)(((cid & 0x0f) << 4) | ((vsid >> 32) & 0x0f));
	put_be32(&id[4], (uint32_t)vsid);
	put_be64(&id[8], ext);
}

/* ---- open / close ---- */

/*
 * Can the file deallocate? Punch a hole past the end of the file: a no-op
 * where hole punching works, EOPNOTSUPP where it does not, and the data is
 * never touched either way.
 */
static bool probe_unmap(int fd, uint64_t size, uint32_t block_size)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)size, block_size) == 0)
		return true;
	log_info("hole punching not available (%s): UNMAP will write zeros", strerror(errno));
	return false;
}

static int open_checked(const char *name, const char *path, uint64_t size, uint32_t block_size)
{
	if (!name || !*name || strlen(name) > VOL_NAME_MAX) {
		log_err("volume name missing or longer than %d bytes", VOL_NAME_MAX);
		return -EINVAL;
	}
	if (!path || !*path) {
		log_err("volume %s: no path", name);
		return -EINVAL;
	}
	if (block_size != 512 && block_size != 4096) {
		log_err("volume %s: block size %u is not 512 or 4096", name, block_size);
		return -EINVAL;
	}
	if (size == 0 || size % block_size || size > (uint64_t)INT64_MAX) {
		log_err("volume %s: size %" PRIu64 " is not a non-zero multiple of %u", name, size,
			block_size);
		return -EINVAL;
	}
	return 0;
}

int vol_open_file(const char *name, const char *path, uint64_t size, uint32_t block_size,
		  struct vol **out)
{
	struct vol *v;
	struct stat st;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = open_checked(name, path, size, block_size);
	if (rc)
		return rc;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->size = size;
	v->block_size = block_size;
	v->fd_buf = -1;

	v->direct = true;
	v->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT, 0600);
	if (v->fd < 0 && errno == EINVAL) {
		/* Some filesystems (older tmpfs, FUSE) refuse O_DIRECT. */
		log_info("volume %s: %s does not support O_DIRECT, using buffered I/O", name, path);
		v->direct = false;
		v->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	}
	if (v->fd < 0) {
		rc = -errno;
		log_err("volume %s: open %s: %s", name, path, strerror(-rc));
		goto err_free;
	}
	/*
	 * One user per file: a second engine or a second volume on the same
	 * file would corrupt both. Advisory, but every vmengine takes it.
	 */
	if (flock(v->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_err("volume %s: %s is in use (%s)", name, path, strerror(errno));
		goto err_close;
	}
	if (fstat(v->fd, &st) < 0) {
		rc = -errno;
		log_err("volume %s: stat %s: %s", name, path, strerror(-rc));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		log_err("volume %s: %s is not a regular file", name, path);
		goto err_close;
	}
	if ((uint64_t)st.st_size > size) {
		rc = -EEXIST;
		log_err("volume %s: %s holds %" PRIu64 " bytes, more than the volume size %" PRIu64
			": refusing to shrink it (data would be lost)",
			name, path, (uint64_t)st.st_size, size);
		goto err_close;
	}
	if ((uint64_t)st.st_size < size) {
		/* Sparse growth: no blocks are written. */
		if (ftruncate(v->fd, (off_t)size) < 0) {
			rc = -errno;
			log_err("volume %s: growing %s to %" PRIu64 " bytes: %s", name, path, size,
				strerror(-rc));
			goto err_close;
		}
		if (st.st_size)
			log_info("volume %s: grew %s from %" PRIu64 " to %" PRIu64 " bytes", name,
				 path, (uint64_t)st.st_size, size);
	}
	if (v->direct) {
		v->fd_buf = open(path, O_RDWR | O_CLOEXEC);
		if (v->fd_buf < 0) {
			rc = -errno;
			log_err("volume %s: open %s (buffered): %s", name, path, strerror(-rc));
			goto err_close;
		}
	} else {
		v->fd_buf = v->fd;
	}
	v->can_unmap = probe_unmap(v->fd, size, block_size);
	vol_make_id(name, v->id);
	log_info("volume %s: %s, %" PRIu64 " bytes, %u-byte blocks, %s I/O%s", name, path, size,
		 block_size, v->direct ? "direct" : "buffered", v->can_unmap ? ", unmap" : "");
	*out = v;
	return 0;

err_close:
	close(v->fd);
err_free:
	free(v);
	return rc;
}

void vol_close(struct vol *v)
{
	if (!v)
		return;
	if (v->virt) {
		vol_virt_close(v);
		return;
	}
	if (v->fd_buf >= 0 && v->fd_buf != v->fd)
		close(v->fd_buf);
	close(v->fd); /* releases the flock */
	free(v);
}

const char *vol_name(const struct vol *v)
{
	return v->name;
}

uint64_t vol_size(const struct vol *v)
{
	return __atomic_load_n(&v->size, __ATOMIC_ACQUIRE);
}

uint32_t vol_block_size(const struct vol *v)
{
	return v->block_size;
}

const uint8_t *vol_id(const struct vol *v)
{
	return v->id;
}

bool vol_can_unmap(const struct vol *v)
{
	return v->can_unmap;
}

bool vol_io_direct_ok(const struct vol *v, const struct vol_io *io)
{
	const uint64_t mask = VOL_DIRECT_ALIGN - 1;

	if (!v->direct || ((io->offset | io->len) & mask))
		return false;
	for (int i = 0; i < io->iovcnt; i++)
		if (((uintptr_t)io->iov[i].iov_base | io->iov[i].iov_len) & mask)
			return false;
	return true;
}

/* ---- blocking operations, run on the worker thread ---- */

static int write_zeros(struct vol *v, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];

	while (len) {
		size_t n = (size_t)UTIL_MIN(len, (uint64_t)sizeof(zeros));
		ssize_t w = pwrite(v->fd_buf, zeros, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* vol.h promises that unmapped blocks read back as zeros (what SBC-3 calls
 * LBPRZ), whether or not the filesystem could deallocate them. */
static int do_unmap(struct vol *v, uint64_t off, uint64_t len)
{
	if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
	    0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return write_zeros(v, off, len);
}

static int do_write_zeroes(struct vol *v, uint64_t off, uint64_t len)
{
	/* ZERO_RANGE keeps the blocks allocated (unlike a punched hole), as a
	 * WRITE SAME without the UNMAP bit expects. */
	if (fallocate(v->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
	    0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return write_zeros(v, off, len);
}

/*
 * Finish a READ or WRITE the kernel transferred only in part: the rest goes
 * through the buffered descriptor synchronously, segment by segment (rare:
 * a short transfer on a regular file means an error is about to surface).
 */
static int do_rw_rest(struct vol *v, struct vol_io *io)
{
	uint64_t pos = io->done_bytes;

	while (pos < io->len) {
		uint64_t skip = pos;
		int i = 0;
		struct iovec seg;
		ssize_t n;

		while (i < io->iovcnt && skip >= io->iov[i].iov_len)
			skip -= io->iov[i++].iov_len;
		if (i == io->iovcnt)
			return -EIO;
		seg.iov_base = (uint8_t *)io->iov[i].iov_base + skip;
		seg.iov_len = io->iov[i].iov_len - skip;
		if (io->op == VOL_OP_READ)
			n = preadv(v->fd_buf, &seg, 1, (off_t)(io->offset + pos));
		else
			n = pwritev2(v->fd_buf, &seg, 1, (off_t)(io->offset + pos),
				     io->fua ? RWF_DSYNC : 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file ends early: truncated behind our back */
		pos += (uint64_t)n;
	}
	io->done_bytes = pos;
	return 0;
}

static int worker_run(struct vol_io *io)
{
	struct vol *v = io->vol;

	switch (io->op) {
	case VOL_OP_READ:
	case VOL_OP_WRITE:
		return do_rw_rest(v, io);
	case VOL_OP_FLUSH:
		/* Either descriptor: fdatasync flushes the file, not the fd. */
		return fdatasync(v->fd) < 0 ? -errno : 0;
	case VOL_OP_UNMAP:
		return do_unmap(v, io->offset, io->len);
	case VOL_OP_WRITE_ZEROES:
		return do_write_zeroes(v, io->offset, io->len);
	}
	return -EINVAL;
}

/* ---- the worker thread ---- */

static struct {
	pthread_mutex_t life; /* users, thread, running */
	unsigned users;
	pthread_t thread;
	bool running;

	pthread_mutex_t lock; /* the queue and quit */
	pthread_cond_t cond;
	struct vol_io *head, *tail;
	bool quit;
} wk = {
    .life = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static void *worker_main(void *arg)
{
	pthread_mutex_lock(&wk.lock);
	for (;;) {
		struct vol_io *io = wk.head;
		struct vol_chan *ch;

		if (!io) {
			/* Quit only once the queue is empty: every request
			 * queued gets its completion. */
			if (wk.quit)
				break;
			pthread_cond_wait(&wk.cond, &wk.lock);
			continue;
		}
		wk.head = vol_io_priv(io)->job.next;
		if (!wk.head)
			wk.tail = NULL;
		pthread_mutex_unlock(&wk.lock);

		ch = vol_io_priv(io)->job.ch;
		io->status = worker_run(io);
		/* io belongs to its owner again from here on. */
		vol_chan_complete_async(ch, io);

		pthread_mutex_lock(&wk.lock);
	}
	pthread_mutex_unlock(&wk.lock);
	return NULL;
}

void vol_worker_queue(struct vol_io *io)
{
	vol_io_priv(io)->job.next = NULL;
	pthread_mutex_lock(&wk.lock);
	if (wk.tail)
		vol_io_priv(wk.tail)->job.next = io;
	else
		wk.head = io;
	wk.tail = io;
	pthread_cond_signal(&wk.cond);
	pthread_mutex_unlock(&wk.lock);
}

int vol_worker_get(void)
{
	static const int async_signals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
					    SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE};
	sigset_t block, old;
	int rc = 0;

	pthread_mutex_lock(&wk.life);
	if (wk.users == 0) {
		wk.quit = false;
		/* Process-directed signals are for the control thread; the
		 * new thread inherits this mask. */
		sigemptyset(&block);
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(async_signals); i++)
			sigaddset(&block, async_signals[i]);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		rc = pthread_create(&wk.thread, NULL, worker_main, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc) {
			log_err("starting the vol worker thread: %s", strerror(rc));
			rc = -rc;
			goto out;
		}
		pthread_setname_np(wk.thread, "vol-worker");
		wk.running = true;
	}
	wk.users++;
out:
	pthread_mutex_unlock(&wk.life);
	return rc;
}

void vol_worker_put(void)
{
	pthread_mutex_lock(&wk.life);
	if (wk.users && --wk.users == 0 && wk.running) {
		pthread_mutex_lock(&wk.lock);
		wk.quit = true;
		pthread_cond_signal(&wk.cond);
		pthread_mutex_unlock(&wk.lock);
		pthread_join(wk.thread, NULL);
		wk.running = false;
	}
	pthread_mutex_unlock(&wk.life);
}
