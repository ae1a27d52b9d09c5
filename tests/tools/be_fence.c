/*
 * be_fence: fencing an engine off a shared iSCSI back end with persistent
 * reservations (vol_backend_pr(), SPC-4 5.12), for tests/interop/fence.sh.
 *
 * Usage: be_fence [-d] URL
 * Two back-end handles on the same LUN play two engines, A and B (initiator
 * names ...:engine-a/-b, keys 0x564d45000000000a/b), each registered at its
 * login. Then, one line per step, "ok STEP" or "err STEP: why":
 *   b-writes        B writes a block
 *   a-fences-b      A fences B: WRITE EXCLUSIVE, ALL REGISTRANTS + PREEMPT
 *   b-refused       B's next write is refused (RESERVATION CONFLICT: -EBUSY)
 *   a-writes        A, a registrant, still writes
 *   a-fences-b-again  fencing a key that is gone succeeds
 *   b-registers     B registers again (an engine back in the cluster)
 *   b-writes-again  and writes again
 * Exit status 0 when every step went as expected, 1 otherwise, 2 on usage.
 */
#define UTIL_LOG_TAG "be_fence"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "vol/vol.h"

#define KEY_A 0x564d45000000000aull
#define KEY_B 0x564d45000000000bull
#define BLOCK 4096u

static struct {
	struct util_reactor *r;
	struct vol_chan *ch;
	struct vol_backend *be[2];
	const char *url;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	int pending;
	uint8_t *buf;
	struct iovec iov;
	struct vol_io io;
	/* the step's arguments */
	int who;
	enum vol_pr_op op;
	uint64_t key;
} C;

static void complete(int rc)
{
	pthread_mutex_lock(&C.lock);
	C.rc = rc;
	C.done = true;
	pthread_cond_signal(&C.cond);
	pthread_mutex_unlock(&C.lock);
}

/* Run \p fn on the reactor and wait for its complete(); returns its rc. */
static int run(util_msg_fn fn)
{
	pthread_mutex_lock(&C.lock);
	C.done = false;
	pthread_mutex_unlock(&C.lock);
	if (util_reactor_send(C.r, fn, NULL) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&C.lock);
	while (!C.done)
		pthread_cond_wait(&C.cond, &C.lock);
	pthread_mutex_unlock(&C.lock);
	return C.rc;
}

static void opened(void *arg, int rc)
{
	if (rc && !C.rc)
		C.rc = rc;
	if (--C.pending == 0)
		complete(C.rc);
}

static void do_open(void *arg)
{
	static const char *const names[2] = {"iqn.2026-11.org.vmengine.test:engine-a",
					     "iqn.2026-11.org.vmengine.test:engine-b"};

	C.ch = vol_chan_create(C.r);
	if (!C.ch) {
		complete(-ENOMEM);
		return;
	}
	C.pending = 2;
	C.rc = 0;
	for (int i = 0; i < 2; i++) {
		struct vol_backend_iscsi_opts o = {.initiator_name = names[i],
						   .recovery_timeout_ms = 2000,
						   .cmd_timeout_ms = 5000,
						   .pr_key = i ? KEY_B : KEY_A};
		int rc =
		    vol_backend_open_iscsi(C.r, i ? "b" : "a", C.url, &o, opened, NULL, &C.be[i]);
		if (rc) {
			C.rc = rc;
			if (--C.pending == 0)
				complete(rc);
		}
	}
}

static void io_done(void *arg, int rc)
{
	complete(rc);
}

static void do_write(void *arg)
{
	memset(C.buf, 'a' + C.who, BLOCK);
	C.iov = (struct iovec){C.buf, BLOCK};
	memset(&C.io, 0, sizeof(C.io));
	C.io.op = VOL_OP_WRITE;
	C.io.offset = (uint64_t)C.who * BLOCK;
	C.io.len = BLOCK;
	C.io.iov = &C.iov;
	C.io.iovcnt = 1;
	C.io.cb = io_done;
	int rc = vol_backend_submit(C.ch, C.be[C.who], &C.io);
	if (rc)
		complete(rc);
}

static void do_pr(void *arg)
{
	int rc = vol_backend_pr(C.be[C.who], C.op, C.key, io_done, NULL);
	if (rc)
		complete(rc);
}

static void do_close(void *arg)
{
	for (int i = 0; i < 2; i++)
		vol_backend_close(C.be[i]);
	vol_chan_destroy(C.ch);
	complete(0);
}

static int failures;

static void expect(const char *step, int rc, int want)
{
	if (rc == want) {
		printf("ok %s\n", step);
	} else {
		printf("err %s: got %s, want %s\n", step, rc ? strerror(-rc) : "success",
		       want ? strerror(-want) : "success");
		failures++;
	}
	fflush(stdout);
}

static int write_as(int who)
{
	C.who = who;
	return run(do_write);
}

static int pr_as(int who, enum vol_pr_op op, uint64_t key)
{
	C.who = who;
	C.op = op;
	C.key = key;
	return run(do_pr);
}

int main(int argc, char **argv)
{
	bool debug = argc > 1 && !strcmp(argv[1], "-d");
	int a = debug ? 2 : 1;
	signal(SIGPIPE, SIG_IGN); /* connection losses are handled (iscsi-init/ini.h) */

	if (argc - a != 1) {
		fprintf(stderr, "usage: be_fence [-d] URL\n");
		return 2;
	}
	util_log_init("be_fence", debug, false);
	C.url = argv[a];
	pthread_mutex_init(&C.lock, NULL);
	pthread_cond_init(&C.cond, NULL);
	if (posix_memalign((void **)&C.buf, 4096, BLOCK))
		return 1;
	C.r = util_reactor_create("fence");
	if (!C.r || util_reactor_start(C.r))
		return 1;
	int rc = run(do_open);
	expect("open", rc, 0);
	if (rc)
		return 1;
	expect("b-writes", write_as(1), 0);
	expect("a-fences-b", pr_as(0, VOL_PR_FENCE, KEY_B), 0);
	expect("b-refused", write_as(1), -EBUSY);
	expect("a-writes", write_as(0), 0);
	expect("a-fences-b-again", pr_as(0, VOL_PR_FENCE, KEY_B), 0);
	expect("b-registers", pr_as(1, VOL_PR_REGISTER, 0), 0);
	expect("b-writes-again", write_as(1), 0);
	run(do_close);
	util_reactor_stop(C.r);
	util_reactor_destroy(C.r);
	free(C.buf);
	return failures ? 1 : 0;
}
