/*
 * vol_backend.c: back ends (pool disks) behind one small ops table, and the
 * local-file back end as a thin adapter over the file volume.
 *
 * The wrapper owns what every implementation shares: the description
 * (size, block size, NAA identifier), the up/failed state, and the count of
 * requests in flight (a reopen must not drop a session that still carries
 * some). The iSCSI implementation lives in backend_iscsi.c.
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "vol/vol_internal.h"

struct vol_backend {
	const struct vol_backend_ops *ops;
	void *ctx;
	struct vol_backend_info info;
	_Atomic int state; /* enum vol_backend_state: any thread reads it */
};

int vol_backend_create(const struct vol_backend_ops *ops, void *ctx,
		       const struct vol_backend_info *info, struct vol_backend **out)
{
	struct vol_backend *be;

	if (!ops || !ops->submit || !info || !out)
		return -EINVAL;
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->ops = ops;
	be->ctx = ctx;
	be->info = *info;
	atomic_store(&be->state, VOL_BACKEND_UP);
	*out = be;
	return 0;
}

void vol_backend_close(struct vol_backend *be)
{
	if (!be)
		return;
	if (be->ops->close)
		be->ops->close(be->ctx);
	free(be);
}

const struct vol_backend_info *vol_backend_info(const struct vol_backend *be)
{
	return &be->info;
}

enum vol_backend_state vol_backend_state(const struct vol_backend *be)
{
	return (enum vol_backend_state)atomic_load(&be->state);
}

void vol_backend_set_state(struct vol_backend *be, enum vol_backend_state st)
{
	int old = atomic_exchange(&be->state, (int)st);

	if (old == (int)st)
		return;
	if (st == VOL_BACKEND_UP)
		log_info("back end %s: up", be->info.name);
	else
		log_warn("back end %s: FAILED", be->info.name);
}

void vol_backend_state_init(struct vol_backend *be, enum vol_backend_state st)
{
	atomic_store(&be->state, (int)st);
}

struct vol_backend_info *vol_backend_info_mut(struct vol_backend *be)
{
	return &be->info;
}

int vol_backend_reopen(struct vol_backend *be, vol_cb cb, void *cb_arg)
{
	if (!be->ops->reopen)
		return -EOPNOTSUPP;
	return be->ops->reopen(be->ctx, be, cb, cb_arg);
}

int vol_backend_pr(struct vol_backend *be, enum vol_pr_op op, uint64_t key, vol_cb cb, void *cb_arg)
{
	if (!be || !cb || (op != VOL_PR_REGISTER && op != VOL_PR_FENCE))
		return -EINVAL;
	if (!be->ops->pr)
		return -EOPNOTSUPP;
	return be->ops->pr(be->ctx, (int)op, key, cb, cb_arg);
}

int vol_backend_submit(struct vol_chan *ch, struct vol_backend *be, struct vol_io *io)
{
	if (!ch || !be || !io || !io->cb)
		return -EINVAL;
	if ((io->offset | io->len) % be->info.block_size ||
	    (io->op != VOL_OP_FLUSH &&
	     (io->offset > be->info.size || io->len > be->info.size - io->offset)))
		return -EINVAL;
	if (atomic_load(&be->state) != VOL_BACKEND_UP)
		return -EIO;
	return be->ops->submit(be->ctx, ch, io);
}

/* ---- the local-file back end ---- */

static int file_submit(void *ctx, struct vol_chan *ch, struct vol_io *io)
{
	/* The file volume's own channel path: libaio, completion from the
	 * channel's eventfd, never inline. */
	return vol_submit(ch, ctx, io);
}

static void file_close(void *ctx)
{
	vol_close(ctx);
}

static const struct vol_backend_ops file_ops = {
    .submit = file_submit,
    .close = file_close,
};

int vol_backend_open_file(const char *name, const char *path, uint64_t size, uint32_t block_size,
			  struct vol_backend **out)
{
	struct vol_backend_info info = {0};
	struct vol *fv;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = vol_open_file(name, path, size, block_size, &fv);
	if (rc)
		return rc;
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.size = size;
	info.block_size = block_size;
	info.can_unmap = vol_can_unmap(fv);
	/* The file volume's identifier is already an NAA 6h designator. */
	memcpy(info.id, vol_id(fv), VOL_ID_LEN);
	info.id_len = VOL_ID_LEN;
	rc = vol_backend_create(&file_ops, fv, &info, out);
	if (rc)
		vol_close(fv);
	return rc;
}
