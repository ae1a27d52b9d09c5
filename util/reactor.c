/*
 * reactor.c: one epoll loop per thread, messages from other threads through
 * an eventfd, and a coarse periodic tick on a timerfd.
 *
 * Everything registered on a reactor runs on its thread, so the objects it
 * serves (connections, channels) need no locks; the only lock guards the
 * message queue that other threads append to.
 *
 * Lifetime rule for fd records: epoll hands back the record pointer we gave
 * it, and a batch of events may still name a record that a callback earlier
 * in the same batch unregistered. util_reactor_del_fd() therefore only marks
 * the record dead; records are freed after the whole batch was dispatched.
 */
#define UTIL_LOG_TAG "reactor"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/util.h"

#define REACTOR_MAX_EVENTS    64
#define REACTOR_BUFPOOL_CACHE (64u << 20)
#define REACTOR_MSG_FREE_MAX  1024 /* message nodes kept for reuse */
#define REACTOR_NAME_MAX      32

struct fd_rec {
	int fd;
	bool dead;
	util_fd_cb cb;
	void *arg;
	struct fd_rec *next_dead;
};

struct msg {
	util_msg_fn fn;
	void *arg;
	STAILQ_ENTRY(msg) link;
};
STAILQ_HEAD(msg_list, msg);

struct util_tick {
	util_msg_fn fn;
	void *arg;
	bool dead;
	TAILQ_ENTRY(util_tick) link;
};
TAILQ_HEAD(tick_list, util_tick);

struct util_reactor {
	char name[REACTOR_NAME_MAX];
	int epfd;
	int evfd; /* wakes the loop for messages */
	int tfd;  /* the tick timer */

	/* fd records, indexed by fd. Reactor thread only. */
	struct fd_rec **recs;
	int nrecs;
	struct fd_rec *dead_recs;

	/* Messages: the only state other threads touch. Protected by lock. */
	pthread_mutex_t lock;
	struct msg_list msgs;
	struct msg_list free_msgs;
	unsigned nfree_msgs;
	struct msg stop_msg; /* preallocated: stopping can never fail */
	bool stop_queued;

	/* Reactor thread only. */
	bool stopping;
	struct tick_list ticks;
	unsigned nticks;    /* live (not dead) ticks */
	bool ticks_running; /* inside tick_fire(): deletions are deferred */
	bool ticks_reap;

	/* Owner thread (the one calling start/stop). */
	pthread_t thread;
	bool started;

	struct util_bufpool *bufpool;
};

static _Thread_local struct util_reactor *tls_reactor;

/* ---- fd registration ---- */

static int recs_grow(struct util_reactor *r, int fd)
{
	int n = r->nrecs ? r->nrecs : 64;
	struct fd_rec **recs;

	while (n <= fd)
		n *= 2;
	recs = realloc(r->recs, (size_t)n * sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	memset(recs + r->nrecs, 0, (size_t)(n - r->nrecs) * sizeof(*recs));
	r->recs = recs;
	r->nrecs = n;
	return 0;
}

int util_reactor_add_fd(struct util_reactor *r, int fd, uint32_t events, util_fd_cb cb, void *arg)
{
	struct epoll_event ev = {.events = events};
	struct fd_rec *rec;
	int rc;

	if (fd < 0 || !cb)
		return -EINVAL;
	if (fd >= r->nrecs) {
		rc = recs_grow(r, fd);
		if (rc)
			return rc;
	}
	if (r->recs[fd])
		return -EEXIST;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	rec->fd = fd;
	rec->cb = cb;
	rec->arg = arg;
	ev.data.ptr = rec;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		rc = -errno;
		free(rec);
		return rc;
	}
	r->recs[fd] = rec;
	return 0;
}

int util_reactor_mod_fd(struct util_reactor *r, int fd, uint32_t events, util_fd_cb cb, void *arg)
{
	struct epoll_event ev = {.events = events};
	struct fd_rec *rec;

	if (fd < 0 || fd >= r->nrecs || !r->recs[fd])
		return -ENOENT;
	if (!cb)
		return -EINVAL;
	rec = r->recs[fd];
	ev.data.ptr = rec;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	rec->cb = cb;
	rec->arg = arg;
	return 0;
}

void util_reactor_del_fd(struct util_reactor *r, int fd)
{
	struct fd_rec *rec;

	if (fd < 0 || fd >= r->nrecs || !r->recs[fd])
		return;
	rec = r->recs[fd];
	/* Callers unregister before close(): epoll keys registrations on the
	 * open file, so a closed fd number can no longer be removed, and a
	 * dup of it would keep delivering events. A failure here only means
	 * the fd is gone already. */
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
	r->recs[fd] = NULL;
	rec->dead = true;
	rec->next_dead = r->dead_recs;
	r->dead_recs = rec;
}

static void recs_reap(struct util_reactor *r)
{
	while (r->dead_recs) {
		struct fd_rec *rec = r->dead_recs;
		r->dead_recs = rec->next_dead;
		free(rec);
	}
}

/* ---- messages ---- */

static void reactor_wake(struct util_reactor *r)
{
	uint64_t one = 1;

	/* Fails only when the counter would overflow (EAGAIN), and then the
	 * loop is awake anyway. */
	if (write(r->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("%s: eventfd write: %s", r->name, strerror(errno));
}

int util_reactor_send(struct util_reactor *r, util_msg_fn fn, void *arg)
{
	struct msg *m;

	pthread_mutex_lock(&r->lock);
	m = STAILQ_FIRST(&r->free_msgs);
	if (m) {
		STAILQ_REMOVE_HEAD(&r->free_msgs, link);
		r->nfree_msgs--;
	} else {
		/* Rare once warm: allocate outside the lock. */
		pthread_mutex_unlock(&r->lock);
		m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		pthread_mutex_lock(&r->lock);
	}
	m->fn = fn;
	m->arg = arg;
	STAILQ_INSERT_TAIL(&r->msgs, m, link);
	pthread_mutex_unlock(&r->lock);
	reactor_wake(r);
	return 0;
}

/*
 * Run the messages queued so far, in order. Messages sent while these run
 * are left for the next wake-up (the eventfd is readable again), so a
 * message that re-sends itself cannot starve the fds.
 */
static void msgs_run(void *arg, uint32_t events)
{
	struct util_reactor *r = arg;
	struct msg_list batch = STAILQ_HEAD_INITIALIZER(batch);
	struct msg_list done = STAILQ_HEAD_INITIALIZER(done);
	uint64_t cnt;
	struct msg *m;

	if (read(r->evfd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_err("%s: eventfd read: %s", r->name, strerror(errno));

	pthread_mutex_lock(&r->lock);
	STAILQ_CONCAT(&batch, &r->msgs);
	pthread_mutex_unlock(&r->lock);

	while ((m = STAILQ_FIRST(&batch)) != NULL) {
		STAILQ_REMOVE_HEAD(&batch, link);
		if (m == &r->stop_msg) {
			pthread_mutex_lock(&r->lock);
			r->stop_queued = false;
			pthread_mutex_unlock(&r->lock);
			r->stopping = true;
			continue;
		}
		m->fn(m->arg);
		STAILQ_INSERT_TAIL(&done, m, link);
	}

	/* Recycle the nodes with one lock round trip; free beyond the cap. */
	pthread_mutex_lock(&r->lock);
	while ((m = STAILQ_FIRST(&done)) != NULL && r->nfree_msgs < REACTOR_MSG_FREE_MAX) {
		STAILQ_REMOVE_HEAD(&done, link);
		STAILQ_INSERT_HEAD(&r->free_msgs, m, link);
		r->nfree_msgs++;
	}
	pthread_mutex_unlock(&r->lock);
	while ((m = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, link);
		free(m);
	}
}

/* ---- ticks ---- */

static void timer_arm(struct util_reactor *r, bool on)
{
	struct itimerspec its = {0};

	if (on) {
		its.it_interval.tv_sec = UTIL_REACTOR_TICK_MS / 1000;
		its.it_interval.tv_nsec = (UTIL_REACTOR_TICK_MS % 1000) * 1000000L;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(r->tfd, 0, &its, NULL) < 0)
		log_err("%s: timerfd_settime: %s", r->name, strerror(errno));
}

struct util_tick *util_reactor_tick_add(struct util_reactor *r, util_msg_fn fn, void *arg)
{
	struct util_tick *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	TAILQ_INSERT_TAIL(&r->ticks, t, link);
	if (r->nticks++ == 0)
		timer_arm(r, true);
	return t;
}

void util_reactor_tick_del(struct util_reactor *r, struct util_tick *t)
{
	if (!t || t->dead)
		return;
	t->dead = true;
	if (--r->nticks == 0)
		timer_arm(r, false);
	if (r->ticks_running) {
		/* tick_fire() holds pointers into the list: unlink it later. */
		r->ticks_reap = true;
		return;
	}
	TAILQ_REMOVE(&r->ticks, t, link);
	free(t);
}

static void tick_fire(void *arg, uint32_t events)
{
	struct util_reactor *r = arg;
	struct util_tick *t, *last, *next;
	uint64_t expirations;

	/* Several missed expirations still make one call: ticks are coarse
	 * timers that compare against util_now_ms(), not counters. */
	if (read(r->tfd, &expirations, sizeof(expirations)) < 0)
		return; /* disarmed since the event was queued (EAGAIN) */

	/* Ticks added by a callback wait for the next period. */
	last = TAILQ_LAST(&r->ticks, tick_list);
	r->ticks_running = true;
	for (t = TAILQ_FIRST(&r->ticks); t; t = TAILQ_NEXT(t, link)) {
		if (!t->dead)
			t->fn(t->arg);
		if (t == last)
			break;
	}
	r->ticks_running = false;

	if (r->ticks_reap) {
		for (t = TAILQ_FIRST(&r->ticks); t; t = next) {
			next = TAILQ_NEXT(t, link);
			if (t->dead) {
				TAILQ_REMOVE(&r->ticks, t, link);
				free(t);
			}
		}
		r->ticks_reap = false;
	}
}

/* ---- life cycle ---- */

struct util_reactor *util_reactor_create(const char *name)
{
	struct util_reactor *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		log_err("out of memory creating reactor %s", name);
		return NULL;
	}
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "reactor");
	r->epfd = r->evfd = r->tfd = -1;
	STAILQ_INIT(&r->msgs);
	STAILQ_INIT(&r->free_msgs);
	TAILQ_INIT(&r->ticks);
	pthread_mutex_init(&r->lock, NULL);

	r->bufpool = util_bufpool_create(REACTOR_BUFPOOL_CACHE);
	if (!r->bufpool)
		goto err_free;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		log_err("%s: epoll_create1: %s", r->name, strerror(errno));
		goto err_free;
	}
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->evfd < 0) {
		log_err("%s: eventfd: %s", r->name, strerror(errno));
		goto err_free;
	}
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r->tfd < 0) {
		log_err("%s: timerfd_create: %s", r->name, strerror(errno));
		goto err_free;
	}
	rc = util_reactor_add_fd(r, r->evfd, EPOLLIN, msgs_run, r);
	if (rc == 0)
		rc = util_reactor_add_fd(r, r->tfd, EPOLLIN, tick_fire, r);
	if (rc) {
		log_err("%s: registering internal fds: %s", r->name, strerror(-rc));
		goto err_free;
	}
	return r;

err_free:
	util_reactor_destroy(r);
	return NULL;
}

void util_reactor_run(struct util_reactor *r)
{
	struct util_reactor *prev = tls_reactor;
	struct epoll_event ev[REACTOR_MAX_EVENTS];

	tls_reactor = r;
	r->stopping = false;
	while (!r->stopping) {
		int n = epoll_wait(r->epfd, ev, REACTOR_MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: epoll_wait: %s", r->name, strerror(errno));
			break;
		}
		/* Finish the batch even once stopping: edge-triggered users
		 * would otherwise lose the events already harvested. */
		for (int i = 0; i < n; i++) {
			struct fd_rec *rec = ev[i].data.ptr;
			if (!rec->dead)
				rec->cb(rec->arg, ev[i].events);
		}
		recs_reap(r);
	}
	tls_reactor = prev;
}

static void *reactor_thread(void *arg)
{
	util_reactor_run(arg);
	return NULL;
}

int util_reactor_start(struct util_reactor *r)
{
	sigset_t block, old;
	char tname[16];
	int rc;

	if (r->started)
		return -EALREADY;
	/*
	 * A stop request still queued was meant for a loop that is no longer
	 * running (stop on a stopped reactor): it must not end the new one.
	 */
	pthread_mutex_lock(&r->lock);
	if (r->stop_queued) {
		STAILQ_REMOVE(&r->msgs, &r->stop_msg, msg, link);
		r->stop_queued = false;
	}
	pthread_mutex_unlock(&r->lock);
	/*
	 * Process-directed signals belong to the control thread; SIGPIPE from a
	 * write to a reset socket must not kill the process either. The new
	 * thread inherits this mask, so there is no window where it is open.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = pthread_create(&r->thread, NULL, reactor_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_err("%s: pthread_create: %s", r->name, strerror(rc));
		return -rc;
	}
	r->started = true;
	/* Thread names are limited to 15 characters plus NUL. */
	snprintf(tname, sizeof(tname), "%.15s", r->name);
	pthread_setname_np(r->thread, tname);
	return 0;
}

/*
 * The request is a message queued behind every message already sent. From
 * another thread on a started reactor it also joins the thread. From the
 * loop's own thread, or for a loop driven by util_reactor_run(), it only
 * requests: the loop returns after its current batch (and a request made
 * before util_reactor_run() is called makes that run return promptly, so a
 * test can stop a loop it has not entered yet). util_reactor_start()
 * discards a request no loop consumed.
 */
void util_reactor_stop(struct util_reactor *r)
{
	if (!r)
		return;
	/* In-band, behind every message already queued, so they run first. */
	pthread_mutex_lock(&r->lock);
	if (!r->stop_queued) {
		STAILQ_INSERT_TAIL(&r->msgs, &r->stop_msg, link);
		r->stop_queued = true;
	}
	pthread_mutex_unlock(&r->lock);
	reactor_wake(r);
	/* Called from the loop itself, the request alone is enough: the loop
	 * returns after this batch, and destroy joins the thread. */
	if (r->started && !pthread_equal(pthread_self(), r->thread)) {
		pthread_join(r->thread, NULL);
		r->started = false;
	}
}

void util_reactor_destroy(struct util_reactor *r)
{
	struct util_tick *t;
	struct msg *m;
	unsigned dropped = 0;

	if (!r)
		return;
	if (r->started) {
		if (pthread_equal(pthread_self(), r->thread)) {
			log_err("%s: destroy called on its own thread", r->name);
			return;
		}
		util_reactor_stop(r);
	}
	for (int fd = 0; fd < r->nrecs; fd++)
		if (r->recs[fd])
			util_reactor_del_fd(r, fd);
	recs_reap(r);
	free(r->recs);

	while ((m = STAILQ_FIRST(&r->msgs)) != NULL) {
		STAILQ_REMOVE_HEAD(&r->msgs, link);
		if (m != &r->stop_msg) {
			free(m);
			dropped++;
		}
	}
	if (dropped)
		log_warn("%s: %u messages sent after stop were dropped", r->name, dropped);
	while ((m = STAILQ_FIRST(&r->free_msgs)) != NULL) {
		STAILQ_REMOVE_HEAD(&r->free_msgs, link);
		free(m);
	}
	while ((t = TAILQ_FIRST(&r->ticks)) != NULL) {
		TAILQ_REMOVE(&r->ticks, t, link);
		free(t);
	}
	if (r->tfd >= 0)
		close(r->tfd);
	if (r->evfd >= 0)
		close(r->evfd);
	if (r->epfd >= 0)
		close(r->epfd);
	pthread_mutex_destroy(&r->lock);
	util_bufpool_destroy(r->bufpool);
	free(r);
}

/* ---- accessors ---- */

struct util_reactor *util_reactor_self(void)
{
	return tls_reactor;
}

struct util_bufpool *util_reactor_bufpool(struct util_reactor *r)
{
	return r->bufpool;
}

const char *util_reactor_name(const struct util_reactor *r)
{
	return r->name;
}
