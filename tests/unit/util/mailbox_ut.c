/*
 * mailbox_ut.c: the mailbox (util.h): records posted from other threads are
 * delivered on the thread that runs the libqb loop, whole and in each
 * poster's order; a full pipe answers -EAGAIN and loses nothing already
 * posted; the drained callback follows each wake-up's records; argument
 * checks; records left in the pipe at close are discarded.
 *
 * Determinism: each loop runs on the test thread and is stopped by the event
 * under test (the last record, or the drained callback). A watchdog timer
 * only ends a hung test as a failure; nothing waits on a sleep.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <qb/qbloop.h>

#include "util/util.h"

#define WATCHDOG_MS 10000

/* A record with a self-check: a torn or mixed record fails the check. */
struct rec {
	uint32_t poster;
	uint32_t seq;
	uint64_t check;
	char fill[40];
};

static uint64_t rec_check(uint32_t poster, uint32_t seq)
{
	return ((uint64_t)poster << 32 | seq) * 0x9e3779b97f4a7c15ull;
}

static void rec_make(struct rec *r, uint32_t poster, uint32_t seq)
{
	memset(r, 0, sizeof(*r));
	r->poster = poster;
	r->seq = seq;
	r->check = rec_check(poster, seq);
	memset(r->fill, (int)(seq & 0x7f), sizeof(r->fill));
}

static bool rec_ok(const struct rec *r)
{
	for (size_t i = 0; i < sizeof(r->fill); i++)
		if (r->fill[i] != (char)(r->seq & 0x7f))
			return false;
	return r->check == rec_check(r->poster, r->seq);
}

struct watchdog {
	qb_loop_t *loop;
	bool fired;
	qb_loop_timer_handle timer;
};

static void on_watchdog(void *arg)
{
	struct watchdog *w = arg;

	w->fired = true;
	qb_loop_stop(w->loop);
}

static void watchdog_start(struct watchdog *w, qb_loop_t *loop)
{
	w->loop = loop;
	w->fired = false;
	qb_loop_timer_add(loop, QB_LOOP_LOW, (uint64_t)WATCHDOG_MS * QB_TIME_NS_IN_MSEC, w,
			  on_watchdog, &w->timer);
}

/* A fired timer is gone already: only a pending one is deleted. */
static void watchdog_stop(struct watchdog *w)
{
	if (!w->fired)
		qb_loop_timer_del(w->loop, w->timer);
}

/* ---- cross-thread posts ---- */

#define POSTERS	   3
#define PER_POSTER 5000 /* more than a default pipe holds: posters meet a full pipe */

struct xctx {
	qb_loop_t *loop;
	struct util_mailbox *mb;
	pthread_t loop_thread;
	uint32_t next[POSTERS]; /* next seq expected per poster */
	unsigned delivered;
	unsigned bad; /* torn, out of order, or off the loop's thread */
	unsigned drained;
};

static void x_deliver(void *arg, const void *p)
{
	struct xctx *x = arg;
	const struct rec *r = p;

	if (!pthread_equal(pthread_self(), x->loop_thread) || r->poster >= POSTERS || !rec_ok(r) ||
	    r->seq != x->next[r->poster])
		x->bad++;
	else
		x->next[r->poster]++;
	if (++x->delivered == POSTERS * PER_POSTER)
		qb_loop_stop(x->loop);
}

static void x_drained(void *arg)
{
	((struct xctx *)arg)->drained++;
}

struct poster {
	struct util_mailbox *mb;
	uint32_t id;
	unsigned full; /* -EAGAIN answers seen */
	unsigned other;
};

static void *poster_main(void *arg)
{
	struct poster *p = arg;
	struct rec r;

	for (uint32_t seq = 0; seq < PER_POSTER; seq++) {
		rec_make(&r, p->id, seq);
		for (;;) {
			int rc = util_mailbox_post(p->mb, &r);
			if (rc == 0)
				break;
			if (rc == -EAGAIN)
				p->full++;
			else
				p->other++;
			/* Full: the loop's thread drains it; let it run. */
			sched_yield();
		}
	}
	return NULL;
}

static void test_cross_thread(void)
{
	struct xctx x = {0};
	struct poster p[POSTERS];
	pthread_t th[POSTERS];
	struct watchdog wd;

	x.loop = qb_loop_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.loop);
	x.loop_thread = pthread_self();
	CU_ASSERT_EQUAL_FATAL(
	    util_mailbox_open(x.loop, sizeof(struct rec), 0, x_deliver, x_drained, &x, &x.mb), 0);
	for (uint32_t i = 0; i < POSTERS; i++) {
		p[i] = (struct poster){.mb = x.mb, .id = i};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, poster_main, &p[i]), 0);
	}
	watchdog_start(&wd, x.loop);
	qb_loop_run(x.loop);
	for (uint32_t i = 0; i < POSTERS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(p[i].other, 0);
		CU_ASSERT_EQUAL(x.next[i], PER_POSTER);
	}
	CU_ASSERT_FALSE(wd.fired);
	CU_ASSERT_EQUAL(x.delivered, POSTERS * PER_POSTER);
	CU_ASSERT_EQUAL(x.bad, 0);
	CU_ASSERT(x.drained >= 1);
	watchdog_stop(&wd);
	util_mailbox_close(x.mb);
	qb_loop_destroy(x.loop);
}

/* ---- a full pipe ---- */

struct fctx {
	qb_loop_t *loop;
	unsigned delivered;
	unsigned bad;
	unsigned drained;
	unsigned drained_at; /* records delivered when drained first ran */
};

static void f_deliver(void *arg, const void *p)
{
	struct fctx *f = arg;
	const struct rec *r = p;

	if (!rec_ok(r) || r->poster != 7 || r->seq != f->delivered)
		f->bad++;
	f->delivered++;
}

static void f_drained(void *arg)
{
	struct fctx *f = arg;

	if (!f->drained++)
		f->drained_at = f->delivered;
	qb_loop_stop(f->loop);
}

static void test_full_pipe(void)
{
	struct fctx f = {0};
	struct util_mailbox *mb;
	struct watchdog wd;
	unsigned posted = 0;
	struct rec r;
	int rc;

	f.loop = qb_loop_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.loop);
	/* One page: full after 4096 / 64 records, quickly. */
	CU_ASSERT_EQUAL_FATAL(
	    util_mailbox_open(f.loop, sizeof(struct rec), 4096, f_deliver, f_drained, &f, &mb), 0);
	for (;;) {
		rec_make(&r, 7, posted);
		if ((rc = util_mailbox_post(mb, &r)) != 0)
			break;
		posted++;
		if (posted > 100000)
			break; /* never full: fails below */
	}
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	CU_ASSERT(posted > 0 && posted <= 100000);
	/* Still full: the refused records are simply not there. */
	rec_make(&r, 7, posted);
	CU_ASSERT_EQUAL(util_mailbox_post(mb, &r), -EAGAIN);

	watchdog_start(&wd, f.loop);
	qb_loop_run(f.loop);
	CU_ASSERT_FALSE(wd.fired);
	/* Every accepted record, in order, in one wake-up, then drained. */
	CU_ASSERT_EQUAL(f.delivered, posted);
	CU_ASSERT_EQUAL(f.bad, 0);
	CU_ASSERT_EQUAL(f.drained, 1);
	CU_ASSERT_EQUAL(f.drained_at, posted);

	/* Drained: room again, and the next record follows on. */
	rec_make(&r, 7, posted);
	CU_ASSERT_EQUAL(util_mailbox_post(mb, &r), 0);
	watchdog_stop(&wd);
	watchdog_start(&wd, f.loop);
	qb_loop_run(f.loop);
	CU_ASSERT_FALSE(wd.fired);
	CU_ASSERT_EQUAL(f.delivered, posted + 1);
	CU_ASSERT_EQUAL(f.bad, 0);
	CU_ASSERT_EQUAL(f.drained, 2);
	watchdog_stop(&wd);
	util_mailbox_close(mb);
	qb_loop_destroy(f.loop);
}

/* ---- posting from the callback; close with records pending ---- */

struct rctx {
	qb_loop_t *loop;
	struct util_mailbox *mb;
	uint32_t seen[8];
	unsigned n;
};

static void r_deliver(void *arg, const void *p)
{
	struct rctx *c = arg;
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	if (c->n < UTIL_ARRAY_SIZE(c->seen))
		c->seen[c->n++] = v;
	if (v < 3) {
		v++;
		CU_ASSERT_EQUAL(util_mailbox_post(c->mb, &v), 0);
	}
}

static void r_drained(void *arg)
{
	qb_loop_stop(((struct rctx *)arg)->loop);
}

static void test_post_from_callback(void)
{
	struct rctx c = {0};
	struct watchdog wd;
	uint32_t v = 0;

	c.loop = qb_loop_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.loop);
	CU_ASSERT_EQUAL_FATAL(
	    util_mailbox_open(c.loop, sizeof(v), 0, r_deliver, r_drained, &c, &c.mb), 0);
	CU_ASSERT_EQUAL(util_mailbox_post(c.mb, &v), 0);
	watchdog_start(&wd, c.loop);
	qb_loop_run(c.loop);
	CU_ASSERT_FALSE(wd.fired);
	watchdog_stop(&wd);
	/* Posted from the callback: delivered in the same wake-up. */
	CU_ASSERT_EQUAL(c.n, 4);
	for (uint32_t i = 0; i < 4 && i < c.n; i++)
		CU_ASSERT_EQUAL(c.seen[i], i);

	/* Pending at close: discarded, no callback, nothing leaks (ASan). */
	v = 100;
	CU_ASSERT_EQUAL(util_mailbox_post(c.mb, &v), 0);
	util_mailbox_close(c.mb);
	CU_ASSERT_EQUAL(c.n, 4);
	util_mailbox_close(NULL);
	qb_loop_destroy(c.loop);
}

static void noop_deliver(void *arg, const void *p)
{
}

static void test_bad_args(void)
{
	qb_loop_t *loop = qb_loop_create();
	struct util_mailbox *mb = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
	CU_ASSERT_EQUAL(util_mailbox_open(loop, 0, 0, noop_deliver, NULL, NULL, &mb), -EINVAL);
	CU_ASSERT_EQUAL(util_mailbox_open(loop, PIPE_BUF + 1, 0, noop_deliver, NULL, NULL, &mb),
			-EINVAL);
	CU_ASSERT_EQUAL(util_mailbox_open(loop, 8, 0, NULL, NULL, NULL, &mb), -EINVAL);
	CU_ASSERT_EQUAL(util_mailbox_open(NULL, 8, 0, noop_deliver, NULL, NULL, &mb), -EINVAL);
	CU_ASSERT_PTR_NULL(mb);
	/* The largest record that is still atomic. */
	CU_ASSERT_EQUAL(util_mailbox_open(loop, PIPE_BUF, 0, noop_deliver, NULL, NULL, &mb), 0);
	CU_ASSERT_PTR_NOT_NULL(mb);
	util_mailbox_close(mb);
	qb_loop_destroy(loop);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("mailbox", NULL, NULL);
	if (!s)
		return 1;
	CU_add_test(s, "cross-thread posts: whole, in order, on the loop", test_cross_thread);
	CU_add_test(s, "full pipe: -EAGAIN, nothing accepted lost", test_full_pipe);
	CU_add_test(s, "post from the callback; close with records pending",
		    test_post_from_callback);
	CU_add_test(s, "argument checks", test_bad_args);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
