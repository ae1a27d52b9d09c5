/*
 * ctl_fence.h: shutting a lost engine out of the shared back ends before its
 * volumes are taken over (persistent reservations, vol_backend_pr()).
 *
 * All functions run on the engine's control thread (the qb main loop), and
 * so do the callbacks.
 */
#ifndef VMENGINE_CTL_FENCE_H
#define VMENGINE_CTL_FENCE_H

#include <stdint.h>
#include <qb/qbloop.h>

struct eng_backends;
struct util_reactor;
struct vol_backend;

/* From ctl_backends.c, for this file: the back ends' reactor, the control
 * loop, and the handles of the back ends that are up now (at most max). */
struct util_reactor *eng_backends_reactor(struct eng_backends *eb);
qb_loop_t *eng_backends_loop(struct eng_backends *eb);
unsigned eng_backends_up(struct eng_backends *eb, struct vol_backend **out, unsigned max);

/* The persistent reservation key of engine \p node: "VME" and the node id. */
uint64_t eng_pr_key(uint32_t node);

/*
 * Fence engines \p nodes (n of them) off every back end this engine is
 * logged in to: after \p done(arg, 0) none of their writes, including those
 * still on their way, can land on a back end that answered. \p done gets
 * -ETIMEDOUT when some back end did not answer within \p timeout_ms (it is
 * then probably down itself: the caller goes on and says so), or the first
 * other error. Called exactly once, later (also with no back end at all).
 * Returns 0, or -ENOMEM / -EINVAL, and then \p done is never called.
 */
int eng_fence_nodes(struct eng_backends *eb, const uint32_t *nodes, unsigned n, unsigned timeout_ms,
		    void (*done)(void *arg, int rc), void *arg);

/*
 * Register this engine's key again on every back end it is logged in to:
 * for an engine that was fenced (it lost quorum) and is back. Fire and
 * forget; failures are logged.
 */
void eng_fence_register_self(struct eng_backends *eb);

#endif /* VMENGINE_CTL_FENCE_H */
