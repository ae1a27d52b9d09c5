/*
 * ctl_intent.h: the engine's glue between the write intent hook of a
 * mirrored volume it owns (vol.h, vol_intent_fn: called on any thread) and
 * the cluster's write intent records (cluster.h, clu_regions_send(): control
 * thread only). Used by ctl_backends.c.
 *
 * A hook call becomes a message to the control thread (through a pipe, no
 * lock), which multicasts it; a SET's completion (its delivery here, see
 * clu_regions_send()) goes back to the volume on the back ends' reactor, as
 * vol.h requires. While a volume's messages are in flight its handle is
 * busy, and the volume must stay open: a SET's completion calls into it.
 */
#ifndef VMENGINE_CTL_INTENT_H
#define VMENGINE_CTL_INTENT_H

#include <stdbool.h>

#include "vol/vol.h"

struct clu;
struct qb_loop;
struct util_reactor;
struct eng_intent;
struct eng_intent_vol;

/*
 * The process's glue: messages reach \p c on \p loop's thread (the control
 * thread); completions run on reactor \p r. NULL on error (logged).
 */
struct eng_intent *eng_intent_create(struct qb_loop *loop, struct util_reactor *r, struct clu *c);
/* At shutdown, after the cluster and the reactors stopped: messages still in flight leak. */
void eng_intent_destroy(struct eng_intent *ei);

/* A handle for volume \p name (copied); NULL on -ENOMEM. Control thread. */
struct eng_intent_vol *eng_intent_vol_create(struct eng_intent *ei, const char *name);
/* True while a message of the volume is in flight (any thread may make it so). */
bool eng_intent_vol_busy(const struct eng_intent_vol *h);
/* Free a handle that is not busy, once its volume is closed. Control thread. */
void eng_intent_vol_free(struct eng_intent_vol *h);

/* The vol_intent_fn to give vol_open_virt(), with the handle as its arg. */
int eng_intent_hook(void *arg, struct vol *v, enum vol_intent_op op, const uint64_t *words,
		    size_t nwords, vol_intent_done_fn done, void *done_arg);

#endif /* VMENGINE_CTL_INTENT_H */
