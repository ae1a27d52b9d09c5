/*
 * backend_iscsi.c: an iSCSI LUN as a back end (pool disk), through the
 * iscsi-init library.
 *
 * The session lives on one reactor. Requests submitted on another reactor
 * are handed to it as reactor messages, and their completions handed back,
 * so every callback still runs on the submitter's thread (vol.h). iscsi-init
 * already reconnects and resends; when it gives up (the session is not back
 * within recovery_timeout_ms) the back end is marked FAILED, which fails the
 * mirror legs on it, and vol_backend_reopen() logs in afresh later. That
 * holds for an idle session too: the session's state callback reports a
 * loss nobody's I/O has seen (an engine that does not own the volume).
 */
#define UTIL_LOG_TAG "vol"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "iscsi-init/ini.h"
#include "vol/vol_internal.h"

#define BI_DEFAULT_RECOVERY_MS 5000u
#define BI_DEFAULT_CMD_MS      10000u

struct be_iscsi {
	struct util_reactor *r;
	struct vol_backend *be;
	struct ini_config cfg;
	uint64_t lun;
	struct ini_session *s;
	unsigned inflight; /* reactor thread only */
	vol_cb open_cb;
	void *open_arg;
	uint8_t *zeros;	     /* one block, for WRITE ZEROES as WRITE SAME */
	uint64_t pr_key;     /* 0: no persistent reservations */
	bool pr_unsupported; /* the LUN refused PERSISTENT RESERVE OUT */
	bool closing;
	unsigned pr_busy; /* PR sequences running (they hold bi) */
};

/* One persistent-reservation sequence (rare: a login, a fence). */
struct bi_pr {
	struct be_iscsi *bi;
	int op; /* enum vol_pr_op */
	uint64_t victim;
	int step;
	bool plain_preempt; /* PREEMPT AND ABORT refused: PREEMPT */
	vol_cb cb;
	void *cb_arg;
	struct ini_scsi_req req;
	struct iovec iov;
	uint8_t param[24];
};

/* The request's priv while the back end has it. */
struct bi_priv {
	struct be_iscsi *bi;
	struct util_reactor *origin; /* where the callback must run */
};

static struct bi_priv *bi_priv(struct vol_io *io)
{
	return (struct bi_priv *)(void *)io->priv.bytes;
}

/* ---- I/O ---- */

static void bi_deliver(void *arg)
{
	struct vol_io *io = arg;

	io->cb(io->cb_arg, io->status);
}

static void bi_done(void *arg, int rc)
{
	struct vol_io *io = arg;
	struct bi_priv *pv = bi_priv(io);
	struct be_iscsi *bi = pv->bi;

	bi->inflight--;
	/* Lost session, not recovered in time, or commands cancelled by a
	 * close: the back end is gone until reopened. Sense-based errors
	 * (-EIO, -EINVAL...) leave it up: the LUN still answers. */
	if (rc == -ENOTCONN || rc == -ETIMEDOUT || rc == -ECANCELED)
		vol_backend_set_state(bi->be, VOL_BACKEND_FAILED);
	if (rc)
		log_ratelimited(LOG_ERR, "back end %s: op %d at %" PRIu64 " +%" PRIu64 ": %s",
				vol_backend_info(bi->be)->name, (int)io->op, io->offset, io->len,
				strerror(-rc));
	io->status = rc;
	if (pv->origin != bi->r && util_reactor_send(pv->origin, bi_deliver, io) == 0)
		return;
	bi_deliver(io);
}

static int bi_issue(struct be_iscsi *bi, struct vol_io *io)
{
	uint32_t bs = vol_backend_info(bi->be)->block_size;
	uint64_t lba = io->offset / bs;
	uint32_t n = (uint32_t)(io->len / bs);
	int rc = -EINVAL;

	if (!bi->s)
		return -EIO;
	switch (io->op) {
	case VOL_OP_READ:
		rc = ini_read(bi->s, bi->lun, lba, n, io->iov, io->iovcnt, bi_done, io);
		break;
	case VOL_OP_WRITE:
		/* SBC-3 5.40 WRITE (16): FUA=1 makes the device server write
		 * to the medium before it returns GOOD, as the host asked. */
		rc = io->fua
			 ? ini_write_fua(bi->s, bi->lun, lba, n, io->iov, io->iovcnt, bi_done, io)
			 : ini_write(bi->s, bi->lun, lba, n, io->iov, io->iovcnt, bi_done, io);
		break;
	case VOL_OP_FLUSH:
		rc = ini_sync(bi->s, bi->lun, bi_done, io);
		break;
	case VOL_OP_UNMAP:
		rc = ini_unmap(bi->s, bi->lun, lba, n, bi_done, io);
		break;
	case VOL_OP_WRITE_ZEROES:
		/* SBC-3 5.42 WRITE SAME (16) without UNMAP: the blocks stay
		 * allocated and read as the (zero) block given. */
		rc = ini_write_same(bi->s, bi->lun, lba, n, bi->zeros, false, bi_done, io);
		break;
	}
	if (rc == 0)
		bi->inflight++;
	else if (rc == -ENOTCONN)
		vol_backend_set_state(bi->be, VOL_BACKEND_FAILED);
	return rc;
}

/* On the session's reactor, for a request from another one. */
static void bi_forwarded(void *arg)
{
	struct vol_io *io = arg;
	int rc = bi_issue(bi_priv(io)->bi, io);

	if (rc < 0) {
		io->status = rc;
		if (util_reactor_send(bi_priv(io)->origin, bi_deliver, io) < 0)
			bi_deliver(io);
	}
}

static int bi_submit(void *ctx, struct vol_chan *ch, struct vol_io *io)
{
	struct be_iscsi *bi = ctx;
	struct util_reactor *self = util_reactor_self();
	struct bi_priv *pv = bi_priv(io);

	if (io->len / vol_backend_info(bi->be)->block_size > UINT32_MAX)
		return -EINVAL;
	pv->bi = bi;
	pv->origin = vol_chan_reactor(ch);
	if (self == bi->r || !self)
		return bi_issue(bi, io);
	return util_reactor_send(bi->r, bi_forwarded, io);
}

/* ---- persistent reservations (SPC-4 5.12, 6.16) ---- */

#define PR_OUT		 0x5f
#define PR_SA_RESERVE	 0x01
#define PR_SA_PREEMPT	 0x04
#define PR_SA_PREEMPT_AB 0x05
#define PR_SA_REG_IGNORE 0x06
#define PR_TYPE_WE_AR	 0x7 /* WRITE EXCLUSIVE, ALL REGISTRANTS */

static void bi_pr_step(struct bi_pr *pr);
static void bi_closed(void *arg, int rc);

static void bi_closed_msg(void *arg)
{
	bi_closed(arg, 0);
}

static void bi_pr_finish(struct bi_pr *pr, int rc)
{
	struct be_iscsi *bi = pr->bi;
	vol_cb cb = pr->cb;
	void *arg = pr->cb_arg;

	free(pr);
	bi->pr_busy--;
	if (cb)
		cb(arg, rc);
	/* Closed meanwhile: free from a message, not inside the session's own
	 * command callback. */
	if (bi->closing && !bi->pr_busy && util_reactor_send(bi->r, bi_closed_msg, bi) < 0)
		bi_closed(bi, 0);
}

/*
 * PERSISTENT RESERVE OUT with the basic 24-byte parameter list (SPC-4
 * 6.16.3): RESERVATION KEY, SERVICE ACTION RESERVATION KEY, no flags.
 */
static int bi_pr_out(struct bi_pr *pr, uint8_t sa, uint64_t key, uint64_t sa_key, ini_cb cb)
{
	struct be_iscsi *bi = pr->bi;

	memset(&pr->req, 0, sizeof(pr->req));
	memset(pr->param, 0, sizeof(pr->param));
	for (int i = 0; i < 8; i++) {
		pr->param[i] = (uint8_t)(key >> (56 - 8 * i));
		pr->param[8 + i] = (uint8_t)(sa_key >> (56 - 8 * i));
	}
	pr->req.lun = bi->lun;
	pr->req.cdb[0] = PR_OUT;
	pr->req.cdb[1] = sa;
	pr->req.cdb[2] = sa == PR_SA_REG_IGNORE ? 0 : PR_TYPE_WE_AR; /* LU scope */
	pr->req.cdb[8] = sizeof(pr->param);
	pr->req.dir = INI_DIR_WRITE;
	pr->iov = (struct iovec){pr->param, sizeof(pr->param)};
	pr->req.iov = &pr->iov;
	pr->req.iovcnt = 1;
	pr->req.xfer_len = sizeof(pr->param);
	if (!bi->s)
		return -EIO;
	return ini_scsi(bi->s, &pr->req, cb, pr);
}

static void bi_pr_done(void *arg, int rc)
{
	struct bi_pr *pr = arg;
	struct be_iscsi *bi = pr->bi;
	const char *name;

	if (bi->closing) {
		/* vol_backend_close() freed the wrapper (bi->be) already. */
		bi_pr_finish(pr, -ECANCELED);
		return;
	}
	name = vol_backend_info(bi->be)->name;
	switch (pr->step) {
	case 0: /* REGISTER AND IGNORE EXISTING KEY */
		if (rc == -EINVAL) {
			if (!bi->pr_unsupported)
				log_warn("back end %s: no persistent reservations (PERSISTENT "
					 "RESERVE OUT refused): engines cannot fence each "
					 "other off it",
					 name);
			bi->pr_unsupported = true;
			bi_pr_finish(pr, -EOPNOTSUPP);
			return;
		}
		if (rc || pr->op == VOL_PR_REGISTER) {
			if (rc)
				log_warn("back end %s: registering key 0x%" PRIx64 " failed: %s",
					 name, bi->pr_key, strerror(-rc));
			bi_pr_finish(pr, rc);
			return;
		}
		break;
	case 1: /* RESERVE: an all-registrants reservation that may exist already */
		if (rc) {
			log_warn("back end %s: RESERVE failed: %s", name, strerror(-rc));
			bi_pr_finish(pr, rc);
			return;
		}
		break;
	case 2: /* PREEMPT (AND ABORT) */
		if (rc == -EINVAL && !pr->plain_preempt) {
			pr->plain_preempt = true; /* optional in SPC-4: try the plain one */
			pr->step = 1;
			break;
		}
		if (rc == -EBUSY) {
			/* SPC-4 5.12.11.2.4: RESERVATION CONFLICT when no registration
			 * has that key: the victim is off the LUN already. */
			rc = 0;
		}
		if (rc == 0)
			log_notice("back end %s: key 0x%" PRIx64 " fenced off", name, pr->victim);
		else
			log_warn("back end %s: fencing key 0x%" PRIx64 " failed: %s", name,
				 pr->victim, strerror(-rc));
		bi_pr_finish(pr, rc);
		return;
	}
	pr->step++;
	bi_pr_step(pr);
}

static void bi_pr_step(struct bi_pr *pr)
{
	struct be_iscsi *bi = pr->bi;
	int rc = -EINVAL;

	switch (pr->step) {
	case 0:
		rc = bi_pr_out(pr, PR_SA_REG_IGNORE, 0, bi->pr_key, bi_pr_done);
		break;
	case 1:
		rc = bi_pr_out(pr, PR_SA_RESERVE, bi->pr_key, 0, bi_pr_done);
		break;
	case 2:
		rc = bi_pr_out(pr, pr->plain_preempt ? PR_SA_PREEMPT : PR_SA_PREEMPT_AB, bi->pr_key,
			       pr->victim, bi_pr_done);
		break;
	}
	if (rc < 0)
		bi_pr_finish(pr, rc);
}

/* Start a sequence; \p cb later (0 here means it will be called). */
static int bi_pr_start(struct be_iscsi *bi, int op, uint64_t victim, vol_cb cb, void *cb_arg)
{
	struct bi_pr *pr;

	if (!bi->pr_key || bi->pr_unsupported)
		return -EOPNOTSUPP;
	if (!bi->s || bi->closing)
		return -EIO;
	if (op == VOL_PR_FENCE && (!victim || victim == bi->pr_key))
		return -EINVAL;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	pr->bi = bi;
	pr->op = op;
	pr->victim = victim;
	pr->cb = cb;
	pr->cb_arg = cb_arg;
	bi->pr_busy++;
	/* ini_scsi() never calls back from inside: finish only on its refusal. */
	bi_pr_step(pr);
	return 0;
}

static int bi_pr(void *ctx, int op, uint64_t key, vol_cb cb, void *cb_arg)
{
	struct be_iscsi *bi = ctx;

	if (util_reactor_self() && util_reactor_self() != bi->r)
		return -EXDEV;
	return bi_pr_start(bi, op, key, cb, cb_arg);
}

/* ---- login, identity ---- */

/*
 * The NAA designator among the VPD 83h descriptors (SPC-4 7.8.6.1: each is
 * a 4-byte header, DESIGNATOR TYPE in the low nibble of byte 1, the length
 * in byte 3); association 0 (the logical unit), type 3 (NAA).
 */
static void bi_take_naa(struct vol_backend_info *info, const struct ini_lun *l)
{
	for (unsigned i = 0; i + 4 <= l->desig_len;) {
		const uint8_t *d = l->desig + i;
		unsigned len = d[3];

		if (i + 4 + len > l->desig_len)
			break;
		if ((d[1] & 0x0f) == 3 && ((d[1] >> 4) & 0x3) == 0 && len <= VOL_BACKEND_ID_MAX) {
			memcpy(info->id, d + 4, len);
			info->id_len = (uint8_t)len;
			return;
		}
		i += 4 + len;
	}
}

static void bi_open_done(struct be_iscsi *bi, int rc)
{
	vol_cb cb = bi->open_cb;

	bi->open_cb = NULL;
	vol_backend_set_state(bi->be, rc ? VOL_BACKEND_FAILED : VOL_BACKEND_UP);
	if (cb)
		cb(bi->open_arg, rc);
}

/* A LUN without reservations (or a failed registration) still serves. */
static void bi_registered(void *arg, int rc)
{
	struct be_iscsi *bi = arg;

	if (bi->closing)
		return; /* closed during its login: nobody waits for it any more */
	bi_open_done(bi, 0);
}

static void bi_connected(void *arg, int rc)
{
	struct be_iscsi *bi = arg;
	struct vol_backend_info *info = vol_backend_info_mut(bi->be);
	const struct ini_lun *l;

	if (rc == 0) {
		l = ini_session_lun(bi->s, bi->lun);
		if (!l || l->device_type != 0 || !l->blocks || !l->block_size) {
			log_err("back end %s: LUN %" PRIu64 " is not a disk with a capacity",
				info->name, bi->lun);
			rc = -ENODEV;
		} else if (info->size && info->size != l->blocks * l->block_size) {
			/* A reopened LUN of another size is another LUN (or a
			 * resized one): extents could land anywhere. */
			log_err("back end %s: size changed from %" PRIu64 " to %" PRIu64,
				info->name, info->size, l->blocks * l->block_size);
			rc = -ENODEV;
		} else {
			info->size = l->blocks * l->block_size;
			info->block_size = l->block_size;
			info->can_unmap = l->thin;
			bi_take_naa(info, l);
			free(bi->zeros);
			bi->zeros = calloc(1, l->block_size);
			if (!bi->zeros)
				rc = -ENOMEM;
		}
	}
	if (rc == 0)
		log_info("back end %s: %s LUN %" PRIu64 ", %" PRIu64 " bytes, %u-byte blocks",
			 info->name, bi->cfg.target_name, bi->lun, info->size, info->block_size);
	/* Registered before the first write: after a fence, a reservation
	 * refuses the writes of unregistered sessions. */
	if (rc == 0 && bi_pr_start(bi, VOL_PR_REGISTER, 0, bi_registered, bi) == 0)
		return;
	bi_open_done(bi, rc);
}

/*
 * An idle session that gave up (the target went away while no I/O was
 * queued, and did not come back in time) fails the back end now: its legs
 * must not look healthy to a takeover that would read from or resync off
 * them, and the engine's retry logs in afresh (vol_backend_reopen()).
 */
static void bi_state(void *arg, enum ini_session_state st)
{
	struct be_iscsi *bi = arg;

	if (st == INI_SESSION_FAILED) {
		log_warn("back end %s: session to %s lost and not recovered",
			 vol_backend_info(bi->be)->name, bi->cfg.target_name);
		vol_backend_set_state(bi->be, VOL_BACKEND_FAILED);
	}
	/*
	 * A recovered session is not registered again here: its engine may
	 * have been fenced meanwhile, and its writes resent on recovery must
	 * then stay refused. The engine registers again (VOL_PR_REGISTER)
	 * when it knows it may write.
	 */
}

static void bi_session_drop(struct be_iscsi *bi)
{
	if (bi->s)
		ini_session_destroy(bi->s);
	bi->s = NULL;
}

static int bi_login(struct be_iscsi *bi, vol_cb cb, void *cb_arg)
{
	int rc;

	bi_session_drop(bi);
	rc = ini_session_create(bi->r, &bi->cfg, &bi->s);
	if (rc)
		return rc;
	ini_session_set_state_cb(bi->s, bi_state, bi);
	bi->open_cb = cb;
	bi->open_arg = cb_arg;
	rc = ini_session_connect(bi->s, bi_connected, bi);
	if (rc) {
		bi->open_cb = NULL;
		bi_session_drop(bi);
	}
	return rc;
}

static int bi_reopen(void *ctx, struct vol_backend *be, vol_cb cb, void *cb_arg)
{
	struct be_iscsi *bi = ctx;

	/* Commands still queued in the old session would be lost with it. */
	if (bi->inflight || bi->open_cb || bi->pr_busy)
		return -EBUSY;
	if (util_reactor_self() && util_reactor_self() != bi->r)
		return -EXDEV;
	return bi_login(bi, cb, cb_arg);
}

static void bi_closed(void *arg, int rc)
{
	struct be_iscsi *bi = arg;

	bi_session_drop(bi);
	free(bi->zeros);
	free(bi);
}

static void bi_close(void *ctx)
{
	struct be_iscsi *bi = ctx;

	bi->closing = true;
	if (bi->pr_busy)
		return; /* bi_pr_finish() closes it once its sequence ends */

	/* A logged-in session says goodbye (RFC 7143 11.14) in the
	 * background; any other is simply dropped. */
	if (bi->s && ini_session_connected(bi->s) && ini_session_close(bi->s, bi_closed, bi) == 0)
		return;
	bi_closed(bi, 0);
}

static const struct vol_backend_ops bi_ops = {
    .submit = bi_submit,
    .reopen = bi_reopen,
    .close = bi_close,
    .pr = bi_pr,
};

int vol_backend_open_iscsi(struct util_reactor *r, const char *name, const char *url,
			   const struct vol_backend_iscsi_opts *opts, vol_cb cb, void *cb_arg,
			   struct vol_backend **out)
{
	struct vol_backend_info info = {0};
	struct be_iscsi *bi;
	int rc;

	if (!out || !name || !*name || strlen(name) > VOL_NAME_MAX || !url || !cb)
		return -EINVAL;
	*out = NULL;
	if (!r)
		r = util_reactor_self();
	if (!r)
		return -EINVAL;
	bi = calloc(1, sizeof(*bi));
	if (!bi)
		return -ENOMEM;
	bi->r = r;
	ini_config_default(&bi->cfg);
	rc = ini_url_parse(url, &bi->cfg, &bi->lun);
	if (rc || !bi->cfg.target_name[0]) {
		log_err("back end %s: bad iSCSI URL", name);
		rc = -EINVAL;
		goto err_free;
	}
	if (opts && opts->initiator_name)
		snprintf(bi->cfg.initiator_name, sizeof(bi->cfg.initiator_name), "%s",
			 opts->initiator_name);
	bi->cfg.recovery_timeout_ms =
	    opts && opts->recovery_timeout_ms ? opts->recovery_timeout_ms : BI_DEFAULT_RECOVERY_MS;
	bi->cfg.cmd_timeout_ms =
	    opts && opts->cmd_timeout_ms ? opts->cmd_timeout_ms : BI_DEFAULT_CMD_MS;
	bi->cfg.probe_luns = true;
	bi->pr_key = opts ? opts->pr_key : 0;
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.block_size = 512; /* until the login tells */
	rc = vol_backend_create(&bi_ops, bi, &info, &bi->be);
	if (rc)
		goto err_free;
	vol_backend_state_init(bi->be, VOL_BACKEND_FAILED); /* until logged in */
	rc = bi_login(bi, cb, cb_arg);
	if (rc) {
		log_err("back end %s: cannot start the login: %s", name, strerror(-rc));
		free(bi->be); /* not through vol_backend_close: bi goes below */
		goto err_free;
	}
	*out = bi->be;
	return 0;

err_free:
	free(bi);
	return rc;
}
