/*
 * reactor_ut.c: the epoll reactor: fd callbacks, deferred freeing of fd
 * records, cross-thread messages and their order, stop semantics, ticks
 * added and removed from inside ticks.
 *
 * Determinism: every loop either runs on the test thread with
 * util_reactor_run() and is stopped by the event under test, or is started
 * on its own thread and stopped with util_reactor_stop(), which runs every
 * message queued before it. Nothing waits on a sleep.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/util.h"

/* ---- fd callbacks ---- */

struct pipe_ctx {
	struct util_reactor *r;
	int fds[2];
	char got[64];
	size_t ngot;
	size_t want;
	int calls;
	bool self_ok;
};

static void pipe_readable(void *arg, uint32_t events)
{
	struct pipe_ctx *c = arg;
	ssize_t n;

	c->calls++;
	c->self_ok = util_reactor_self() == c->r && (events & EPOLLIN);
	n = read(c->fds[0], c->got + c->ngot, sizeof(c->got) - c->ngot);
	if (n > 0)
		c->ngot += (size_t)n;
	if (c->ngot >= c->want) {
		util_reactor_del_fd(c->r, c->fds[0]);
		/* From inside the loop: the loop returns after this batch. */
		util_reactor_stop(c->r);
	}
}

static void test_fd_callback(void)
{
	struct pipe_ctx c = {.want = 5};
	struct util_reactor *r = util_reactor_create("ut-fd");

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	c.r = r;
	CU_ASSERT_EQUAL_FATAL(pipe(c.fds), 0);
	CU_ASSERT_EQUAL(util_reactor_add_fd(r, c.fds[0], EPOLLIN, pipe_readable, &c), 0);
	CU_ASSERT_EQUAL(util_reactor_add_fd(r, c.fds[0], EPOLLIN, pipe_readable, &c), -EEXIST);
	CU_ASSERT_EQUAL(util_reactor_add_fd(r, -1, EPOLLIN, pipe_readable, &c), -EINVAL);
	CU_ASSERT_EQUAL(write(c.fds[1], "hello", 5), 5);
	CU_ASSERT_PTR_NULL(util_reactor_self());
	util_reactor_run(r);
	CU_ASSERT_PTR_NULL(util_reactor_self());
	CU_ASSERT_EQUAL(c.ngot, 5);
	CU_ASSERT(memcmp(c.got, "hello", 5) == 0);
	CU_ASSERT(c.self_ok);
	CU_ASSERT_EQUAL(c.calls, 1);
	close(c.fds[0]);
	close(c.fds[1]);
	util_reactor_destroy(r);
}

static void cb_a(void *arg, uint32_t events)
{
	(*(int *)arg) += 1;
}
static void cb_b(void *arg, uint32_t events)
{
	(*(int *)arg) += 100;
}

static void test_mod_fd(void)
{
	struct util_reactor *r = util_reactor_create("ut-mod");
	int fds[2], hits = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	CU_ASSERT_EQUAL(util_reactor_mod_fd(r, fds[0], EPOLLIN, cb_b, &hits), -ENOENT);
	CU_ASSERT_EQUAL(util_reactor_add_fd(r, fds[0], EPOLLIN, cb_a, &hits), 0);
	CU_ASSERT_EQUAL(util_reactor_mod_fd(r, fds[0], EPOLLIN, cb_b, &hits), 0);
	CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
	/* Level-triggered: the byte stays readable; stop after the batch. */
	util_reactor_stop(r);
	util_reactor_run(r);
	CU_ASSERT(hits >= 100 && hits % 100 == 0);
	util_reactor_del_fd(r, fds[0]);
	util_reactor_del_fd(r, fds[0]); /* second del is a no-op */
	CU_ASSERT_EQUAL(util_reactor_mod_fd(r, fds[0], EPOLLIN, cb_a, &hits), -ENOENT);
	close(fds[0]);
	close(fds[1]);
	util_reactor_destroy(r);
}

/* Two readable pipes in one batch; whichever runs first unregisters and
 * closes the other, whose record must then not be called (nor freed early:
 * ASan would catch a use after free). */
struct race_ctx {
	struct util_reactor *r;
	int p1[2], p2[2];
	int calls1, calls2;
};

static void race_cb(struct race_ctx *c, int *mine, int *other_fds, int *my_fds)
{
	char ch;

	(*mine)++;
	if (read(my_fds[0], &ch, 1) != 1)
		return;
	if (other_fds[0] >= 0) {
		util_reactor_del_fd(c->r, other_fds[0]);
		close(other_fds[0]);
		other_fds[0] = -1;
	}
	util_reactor_del_fd(c->r, my_fds[0]);
	util_reactor_stop(c->r);
}
static void race_cb1(void *arg, uint32_t events)
{
	struct race_ctx *c = arg;
	race_cb(c, &c->calls1, c->p2, c->p1);
}
static void race_cb2(void *arg, uint32_t events)
{
	struct race_ctx *c = arg;
	race_cb(c, &c->calls2, c->p1, c->p2);
}

static void test_del_other_fd_in_batch(void)
{
	struct race_ctx c = {0};

	c.r = util_reactor_create("ut-race");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.r);
	CU_ASSERT_EQUAL_FATAL(pipe(c.p1), 0);
	CU_ASSERT_EQUAL_FATAL(pipe(c.p2), 0);
	CU_ASSERT_EQUAL(util_reactor_add_fd(c.r, c.p1[0], EPOLLIN, race_cb1, &c), 0);
	CU_ASSERT_EQUAL(util_reactor_add_fd(c.r, c.p2[0], EPOLLIN, race_cb2, &c), 0);
	CU_ASSERT_EQUAL(write(c.p1[1], "1", 1), 1);
	CU_ASSERT_EQUAL(write(c.p2[1], "2", 1), 1);
	util_reactor_run(c.r);
	CU_ASSERT_EQUAL(c.calls1 + c.calls2, 1);
	if (c.p1[0] >= 0)
		close(c.p1[0]);
	if (c.p2[0] >= 0)
		close(c.p2[0]);
	close(c.p1[1]);
	close(c.p2[1]);
	util_reactor_destroy(c.r);
}

/* ---- messages ---- */

struct order_ctx {
	struct util_reactor *r;
	unsigned next;	  /* reactor thread */
	unsigned errors;  /* reactor thread */
	unsigned n;	  /* messages to send */
	pthread_t tester; /* the CUnit thread */
	bool wrong_thread;
};

struct order_msg {
	struct order_ctx *c;
	unsigned seq;
};

static void order_fn(void *arg)
{
	struct order_msg *m = arg;
	struct order_ctx *c = m->c;

	if (m->seq != c->next)
		c->errors++;
	c->next = m->seq + 1;
	if (util_reactor_self() != c->r)
		c->wrong_thread = true;
}

static void *sender_main(void *arg)
{
	struct order_ctx *c = arg;
	struct order_msg *msgs = calloc(c->n, sizeof(*msgs));

	for (unsigned i = 0; i < c->n; i++) {
		msgs[i].c = c;
		msgs[i].seq = i;
		if (util_reactor_send(c->r, order_fn, &msgs[i]) != 0)
			c->errors++;
	}
	/* Not the loop's own thread and the loop was not started: stop only
	 * queues the request; every message above runs first. */
	util_reactor_stop(c->r);
	return msgs;
}

static void test_send_order_cross_thread(void)
{
	struct order_ctx c = {.n = 20000};
	pthread_t th;
	void *msgs;

	c.r = util_reactor_create("ut-order");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.r);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, sender_main, &c), 0);
	util_reactor_run(c.r);
	pthread_join(th, &msgs);
	CU_ASSERT_EQUAL(c.next, c.n);
	CU_ASSERT_EQUAL(c.errors, 0);
	CU_ASSERT(!c.wrong_thread);
	free(msgs);
	util_reactor_destroy(c.r);
}

struct thread_ctx {
	struct util_reactor *r;
	pthread_t tester;
	unsigned ran;
	bool on_other_thread;
	bool self_ok;
	char tname[16];
};

static void thread_fn(void *arg)
{
	struct thread_ctx *c = arg;

	c->ran++;
	c->on_other_thread = !pthread_equal(pthread_self(), c->tester);
	c->self_ok = util_reactor_self() == c->r;
	pthread_getname_np(pthread_self(), c->tname, sizeof(c->tname));
}

/* start/stop: stop joins, and everything sent before stop has run. */
static void test_start_stop_drains(void)
{
	struct thread_ctx c = {0};

	c.tester = pthread_self();
	c.r = util_reactor_create("ut-started-reactor-long-name");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.r);
	CU_ASSERT_STRING_EQUAL(util_reactor_name(c.r), "ut-started-reactor-long-name");
	CU_ASSERT_PTR_NOT_NULL(util_reactor_bufpool(c.r));
	CU_ASSERT_EQUAL_FATAL(util_reactor_start(c.r), 0);
	CU_ASSERT_EQUAL(util_reactor_start(c.r), -EALREADY);
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(util_reactor_send(c.r, thread_fn, &c), 0);
	util_reactor_stop(c.r);
	/* After the join, the reactor thread's writes are visible. */
	CU_ASSERT_EQUAL(c.ran, 1000);
	CU_ASSERT(c.on_other_thread);
	CU_ASSERT(c.self_ok);
	CU_ASSERT_STRING_EQUAL(c.tname, "ut-started-reac");
	/* A second stop and a restart work. */
	util_reactor_stop(c.r);
	CU_ASSERT_EQUAL_FATAL(util_reactor_start(c.r), 0);
	CU_ASSERT_EQUAL(util_reactor_send(c.r, thread_fn, &c), 0);
	util_reactor_stop(c.r);
	CU_ASSERT_EQUAL(c.ran, 1001);
	util_reactor_destroy(c.r);
}

static void test_stop_never_started(void)
{
	struct util_reactor *r = util_reactor_create("ut-idle");

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	util_reactor_stop(r);
	util_reactor_stop(NULL);
	util_reactor_destroy(r);
	util_reactor_destroy(NULL);
}

/* A message sent from a message runs on a later wake-up, still in order. */
struct chain_ctx {
	struct util_reactor *r;
	int step;
	int log[4];
};
static void chain_second(void *arg)
{
	struct chain_ctx *c = arg;
	c->log[c->step++] = 2;
	util_reactor_stop(c->r);
}
static void chain_first(void *arg)
{
	struct chain_ctx *c = arg;
	c->log[c->step++] = 1;
	CU_ASSERT_EQUAL(util_reactor_send(c->r, chain_second, c), 0);
}
static void chain_other(void *arg)
{
	struct chain_ctx *c = arg;
	c->log[c->step++] = 3;
}

static void test_send_from_message(void)
{
	struct chain_ctx c = {0};

	c.r = util_reactor_create("ut-chain");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.r);
	CU_ASSERT_EQUAL(util_reactor_send(c.r, chain_first, &c), 0);
	CU_ASSERT_EQUAL(util_reactor_send(c.r, chain_other, &c), 0);
	util_reactor_run(c.r);
	CU_ASSERT_EQUAL(c.step, 3);
	CU_ASSERT_EQUAL(c.log[0], 1);
	CU_ASSERT_EQUAL(c.log[1], 3);
	CU_ASSERT_EQUAL(c.log[2], 2);
	util_reactor_destroy(c.r);
}

/* ---- ticks ---- */

struct tick_ctx {
	struct util_reactor *r;
	struct util_tick *a, *b, *c;
	int na, nb, nc;
	uint64_t t0, t_stop;
};

static void tick_c(void *arg)
{
	struct tick_ctx *x = arg;
	x->nc++;
	x->t_stop = util_now_ms();
	util_reactor_tick_del(x->r, x->c);
	util_reactor_stop(x->r);
}
static void tick_b(void *arg)
{
	struct tick_ctx *x = arg;
	x->nb++;
}
static void tick_a(void *arg)
{
	struct tick_ctx *x = arg;
	x->na++;
	if (x->na == 2) {
		/* b follows a in the list: removed now, it must not run in this
		 * period; c is added now and must wait for the next period. */
		util_reactor_tick_del(x->r, x->b);
		util_reactor_tick_del(x->r, x->a);
		x->c = util_reactor_tick_add(x->r, tick_c, x);
	}
}

static void test_ticks_add_del_inside(void)
{
	struct tick_ctx x = {0};

	x.r = util_reactor_create("ut-tick");
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.r);
	x.a = util_reactor_tick_add(x.r, tick_a, &x);
	x.b = util_reactor_tick_add(x.r, tick_b, &x);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.b);
	x.t0 = util_now_ms();
	util_reactor_run(x.r);
	CU_ASSERT_EQUAL(x.na, 2);
	CU_ASSERT_EQUAL(x.nb, 1);
	CU_ASSERT_EQUAL(x.nc, 1);
	/* Three periods elapsed at least (the timer never fires early). */
	CU_ASSERT(x.t_stop - x.t0 >= 3 * UTIL_REACTOR_TICK_MS - 1);
	util_reactor_destroy(x.r);
}

/* Deleting a tick outside a tick frees it at once; destroy frees the rest. */
static void noop_tick(void *arg)
{
}
static void test_tick_del_outside_and_destroy(void)
{
	struct util_reactor *r = util_reactor_create("ut-tick2");
	struct util_tick *t1, *t2;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	t1 = util_reactor_tick_add(r, noop_tick, NULL);
	t2 = util_reactor_tick_add(r, noop_tick, NULL);
	CU_ASSERT_PTR_NOT_NULL(t1);
	CU_ASSERT_PTR_NOT_NULL(t2);
	CU_ASSERT_PTR_NOT_EQUAL(t1, t2);
	util_reactor_tick_del(r, t1);
	util_reactor_tick_del(r, NULL);
	util_reactor_destroy(r); /* frees t2 (LeakSanitizer checks) */
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("reactor", NULL, NULL);
	if (!s)
		return 1;
	CU_add_test(s, "fd callback on a pipe", test_fd_callback);
	CU_add_test(s, "mod_fd and del_fd", test_mod_fd);
	CU_add_test(s, "del of another fd in the same batch", test_del_other_fd_in_batch);
	CU_add_test(s, "cross-thread send order", test_send_order_cross_thread);
	CU_add_test(s, "start/stop drains messages", test_start_stop_drains);
	CU_add_test(s, "stop on a never started reactor", test_stop_never_started);
	CU_add_test(s, "send from inside a message", test_send_from_message);
	CU_add_test(s, "ticks added and removed inside ticks", test_ticks_add_del_inside);
	CU_add_test(s, "tick del outside ticks, destroy", test_tick_del_outside_and_destroy);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
