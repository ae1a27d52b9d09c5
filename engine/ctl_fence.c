/*
 * ctl_fence.c: fencing a lost engine off the shared back ends.
 *
 * An engine that loses quorum stops its I/O within fence_ms, but writes it
 * sent before may still sit in socket buffers or in a back end's queue, and
 * land after the new owner wrote newer data to the same blocks. So before a
 * takeover the new owner asks every back end to refuse the lost engine:
 * each engine's sessions are registered with its key (vol_backend_iscsi_opts
 * .pr_key), and a fence makes sure a WRITE EXCLUSIVE, ALL REGISTRANTS
 * reservation exists and removes the lost engine's registrations with
 * PREEMPT AND ABORT (SPC-4 5.12.11.2.6), which also drops its commands
 * queued there. The lost engine registers again only once it is back in a
 * quorate membership (eng_fence_register_self()).
 *
 * The back ends live on their reactor; each fence command is sent there as
 * a message and its result comes back to the control loop through a
 * mailbox (util.h), opened with the first fence and kept for the process.
 */
#define UTIL_LOG_TAG "fence"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ctl_fence.h"
#include "util/util.h"
#include "vol/vol.h"

#define PR_KEY_BASE 0x564d450000000000ull /* "VME" */
#define MAX_OPS	    64

struct fence_run {
	unsigned pending;
	int rc;
	bool answered; /* done() was called (timeout or end) */
	qb_loop_timer_handle timer;
	void (*done)(void *arg, int rc);
	void *arg;
	uint64_t started_ms;
};

struct fence_op {
	struct fence_run *run; /* NULL: a registration, nobody waits */
	struct vol_backend *be;
	int op; /* enum vol_pr_op */
	uint64_t key;
	int rc;
};

static struct {
	qb_loop_t *loop;
	struct util_mailbox *mb; /* records: one struct fence_op * each; NULL: not yet */
} F;

uint64_t eng_pr_key(uint32_t node)
{
	return PR_KEY_BASE | node;
}

/* ---- on the back ends' reactor ---- */

static void r_done(void *arg, int rc)
{
	struct fence_op *op = arg;
	int err;

	op->rc = rc;
	if ((err = util_mailbox_post(F.mb, &op)) < 0)
		log_err("fence: result lost (pipe): %s", strerror(-err));
}

static void r_start(void *arg)
{
	struct fence_op *op = arg;
	int rc = vol_backend_pr(op->be, (enum vol_pr_op)op->op, op->key, r_done, op);

	if (rc < 0)
		r_done(op, rc);
}

/* ---- on the control loop ---- */

static void run_answer(struct fence_run *run, int rc)
{
	if (run->answered)
		return;
	run->answered = true;
	qb_loop_timer_del(F.loop, run->timer);
	run->done(run->arg, rc);
}

static void op_finished(struct fence_op *op)
{
	struct fence_run *run = op->run;

	if (!run) {
		if (op->rc && op->rc != -EOPNOTSUPP)
			log_warn("registering again on back end %s failed: %s",
				 vol_backend_info(op->be)->name, strerror(-op->rc));
		free(op);
		return;
	}
	/* A back end without persistent reservations cannot be fenced; it is
	 * logged there once (vol/backend_iscsi.c) and does not hold this up. */
	if (op->rc && op->rc != -EOPNOTSUPP && !run->rc)
		run->rc = op->rc;
	free(op);
	if (--run->pending)
		return;
	if (!run->answered) {
		log_notice("lost engine(s) shut out of the back ends in %" PRIu64 " ms%s",
			   util_now_ms() - run->started_ms, run->rc ? " (with errors)" : "");
		run_answer(run, run->rc);
	}
	free(run);
}

/* One result (a util_mailbox_fn): the record is the op's pointer. */
static void on_result(void *arg, const void *rec)
{
	struct fence_op *op;

	memcpy(&op, rec, sizeof(op));
	op_finished(op);
}

static void on_timeout(void *arg)
{
	struct fence_run *run = arg;

	log_warn("fence: %u back end(s) did not answer in time; going on", run->pending);
	run_answer(run, -ETIMEDOUT);
}

/* 0, or the -errno of util_mailbox_open() (a pipe error, -EIO, -ENOMEM). */
static int ensure_mailbox(struct eng_backends *eb)
{
	if (F.mb)
		return 0;
	F.loop = eng_backends_loop(eb);
	return util_mailbox_open(F.loop, sizeof(struct fence_op *), 0, on_result, NULL, NULL,
				 &F.mb);
}

static void answer_later(void *arg)
{
	struct fence_run *run = arg;

	run_answer(run, run->rc);
	free(run);
}

int eng_fence_nodes(struct eng_backends *eb, const uint32_t *nodes, unsigned n, unsigned timeout_ms,
		    void (*done)(void *arg, int rc), void *arg)
{
	struct vol_backend *bes[MAX_OPS];
	struct fence_run *run;
	unsigned nb;
	int rc;

	if (!eb || !done || (n && !nodes))
		return -EINVAL;
	if ((rc = ensure_mailbox(eb)) < 0)
		return rc;
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->done = done;
	run->arg = arg;
	run->started_ms = util_now_ms();
	nb = eng_backends_up(eb, bes, MAX_OPS);
	for (unsigned i = 0; i < nb; i++)
		for (unsigned k = 0; k < n; k++) {
			struct fence_op *op = calloc(1, sizeof(*op));
			if (!op) {
				run->rc = -ENOMEM; /* the run answers it */
				continue;
			}
			op->run = run;
			op->be = bes[i];
			op->op = VOL_PR_FENCE;
			op->key = eng_pr_key(nodes[k]);
			run->pending++;
			if (util_reactor_send(eng_backends_reactor(eb), r_start, op) < 0) {
				run->pending--;
				free(op);
				run->rc = -ENOMEM;
			}
		}
	if (!run->pending) {
		/* Nothing to wait for: answer from the loop, never from here. */
		qb_loop_timer_add(F.loop, QB_LOOP_HIGH, 0, run, answer_later, &run->timer);
		return 0;
	}
	for (unsigned k = 0; k < n; k++)
		log_notice("fencing node %" PRIu32 " (key 0x%016" PRIx64 ") off %u back end(s)",
			   nodes[k], eng_pr_key(nodes[k]), nb);
	qb_loop_timer_add(F.loop, QB_LOOP_HIGH, (uint64_t)timeout_ms * QB_TIME_NS_IN_MSEC, run,
			  on_timeout, &run->timer);
	return 0;
}

void eng_fence_register_self(struct eng_backends *eb)
{
	struct vol_backend *bes[MAX_OPS];
	unsigned nb;

	if (!eb || ensure_mailbox(eb) < 0)
		return;
	nb = eng_backends_up(eb, bes, MAX_OPS);
	for (unsigned i = 0; i < nb; i++) {
		struct fence_op *op = calloc(1, sizeof(*op));
		if (!op)
			return;
		op->be = bes[i];
		op->op = VOL_PR_REGISTER;
		if (util_reactor_send(eng_backends_reactor(eb), r_start, op) < 0)
			free(op);
	}
	if (nb)
		log_notice("registering again on %u back end(s)", nb);
}
