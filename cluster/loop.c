/*
 * loop.c: the pieces of the libqb main loop shared by the bindings: one-shot
 * timers that return a handle the state machine can cancel, and the
 * binding's common destroy/mode accessors.
 */
#define UTIL_LOG_TAG "cluster"
#include <errno.h>
#include <stdlib.h>
#include <qb/qbloop.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

struct loop_timer {
	qb_loop_timer_handle handle;
	void (*fn)(void *arg);
	void *arg;
};

static void timer_fire(void *data)
{
	struct loop_timer *t = data;
	void (*fn)(void *) = t->fn;
	void *arg = t->arg;

	free(t); /* the handle is dead once fired: the callee may arm a new one */
	fn(arg);
}

void *clu_loop_timer_add(struct qb_loop *loop, uint32_t ms, void (*fn)(void *arg), void *arg)
{
	struct loop_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	if (qb_loop_timer_add(loop, QB_LOOP_MED, (uint64_t)ms * 1000000ull, t, timer_fire,
			      &t->handle) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

void clu_loop_timer_del(struct qb_loop *loop, void *timer)
{
	struct loop_timer *t = timer;

	if (!t)
		return;
	qb_loop_timer_del(loop, t->handle);
	free(t);
}

void clu_binding_destroy(struct clu_binding *b)
{
	if (b)
		b->destroy(b);
}

const char *clu_binding_mode(const struct clu_binding *b)
{
	return b->mode;
}
