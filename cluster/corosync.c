/*
 * corosync.c: the Corosync binding of the cluster state machine: CPG group
 * "vmengine" (agreed order), votequorum tracking, both dispatched from the
 * control thread's libqb main loop. Corosync may start after the engine or
 * restart under it: the binding then reconnects every second, and the state
 * machine stays not serving until it has joined and synced again.
 */
#define UTIL_LOG_TAG "corosync"
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <qb/qbloop.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

#define GROUP_NAME   "vmengine"
#define RECONNECT_MS 1000

struct coro {
	struct clu_binding b;
	cpg_handle_t cpg;
	votequorum_handle_t vq;
	int cpg_fd, vq_fd;
	bool connected;
	bool warned;
	void *reconnect_timer;
};

static void coro_disconnect(struct coro *k, const char *why);
static void coro_reconnect(void *arg);

static int cs_to_errno(cs_error_t e)
{
	switch (e) {
	case CS_OK:
		return 0;
	case CS_ERR_TRY_AGAIN:
		return -EAGAIN;
	case CS_ERR_NO_MEMORY:
		return -ENOMEM;
	case CS_ERR_TOO_BIG:
		return -EMSGSIZE;
	default:
		return -ENOTCONN;
	}
}

static int coro_mcast(void *ctx, const void *buf, size_t len)
{
	struct coro *k = ctx;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	if (!k->connected)
		return -ENOTCONN;
	/* Agreed order: every member delivers every message in the same order. */
	cs_error_t e = cpg_mcast_joined(k->cpg, CPG_TYPE_AGREED, &iov, 1);
	return cs_to_errno(e);
}

static void *coro_timer_add(void *ctx, uint32_t ms, void (*fn)(void *), void *arg)
{
	struct coro *k = ctx;
	return clu_loop_timer_add(k->b.loop, ms, fn, arg);
}

static void coro_timer_del(void *ctx, void *timer)
{
	struct coro *k = ctx;
	clu_loop_timer_del(k->b.loop, timer);
}

static const struct clu_ops coro_ops = {
    .mcast = coro_mcast,
    .timer_add = coro_timer_add,
    .timer_del = coro_timer_del,
};

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
		       void *msg, size_t len)
{
	struct coro *k = NULL;

	if (cpg_context_get(h, (void **)&k) != CS_OK || !k || !k->b.clu)
		return;
	/* msg belongs to libcpg and is valid during this call only: clu_deliver copies. */
	clu_deliver(k->b.clu, nodeid, msg, len);
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group,
		       const struct cpg_address *members, size_t nmembers,
		       const struct cpg_address *left, size_t nleft,
		       const struct cpg_address *joined, size_t njoined)
{
	struct coro *k = NULL;
	uint32_t ids[CLU_MAX_NODES];
	unsigned n = 0;

	if (cpg_context_get(h, (void **)&k) != CS_OK || !k || !k->b.clu)
		return;
	/*
	 * Rebuilt from the full member list every time, never patched with the
	 * joined/left deltas. One engine per node: a second process of the same
	 * node (a restart racing the old one's exit) is the same member.
	 */
	for (size_t i = 0; i < nmembers && n < CLU_MAX_NODES; i++) {
		bool dup = false;
		for (unsigned j = 0; j < n; j++)
			dup |= ids[j] == members[i].nodeid;
		if (!dup)
			ids[n++] = members[i].nodeid;
	}
	log_info("configuration: %zu member(s), %zu joined, %zu left", nmembers, njoined, nleft);
	clu_confchg(k->b.clu, ids, n);
}

static void vq_update(struct coro *k)
{
	struct votequorum_info info;

	if (votequorum_getinfo(k->vq, 0, &info) != CS_OK)
		return;
	clu_quorum(k->b.clu, (info.flags & VOTEQUORUM_INFO_QUORATE) != 0,
		   UTIL_MAX(info.node_expected_votes, info.highest_expected));
}

static void on_quorum(votequorum_handle_t h, uint64_t context, uint32_t quorate, uint32_t nnodes,
		      votequorum_node_t nodes[])
{
	struct coro *k = NULL;

	if (votequorum_context_get(h, (void **)&k) != CS_OK || !k || !k->b.clu)
		return;
	vq_update(k);
}

static void on_expected(votequorum_handle_t h, uint64_t context, uint32_t expected)
{
	struct coro *k = NULL;

	if (votequorum_context_get(h, (void **)&k) != CS_OK || !k || !k->b.clu)
		return;
	vq_update(k);
}

static int32_t cpg_ready(int32_t fd, int32_t revents, void *data)
{
	struct coro *k = data;
	cs_error_t e = cpg_dispatch(k->cpg, CS_DISPATCH_ALL);

	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		coro_disconnect(k, "CPG dispatch failed"); /* removes the fd from the loop */
	}
	return 0;
}

static int32_t vq_ready(int32_t fd, int32_t revents, void *data)
{
	struct coro *k = data;
	cs_error_t e = votequorum_dispatch(k->vq, CS_DISPATCH_ALL);

	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		coro_disconnect(k, "votequorum dispatch failed");
	}
	return 0;
}

static void coro_disconnect(struct coro *k, const char *why)
{
	if (!k->connected)
		return;
	log_err("lost Corosync (%s): fenced until it is back", why);
	k->connected = false;
	if (k->cpg_fd >= 0)
		qb_loop_poll_del(k->b.loop, k->cpg_fd);
	if (k->vq_fd >= 0)
		qb_loop_poll_del(k->b.loop, k->vq_fd);
	k->cpg_fd = k->vq_fd = -1;
	cpg_finalize(k->cpg);
	votequorum_finalize(k->vq);
	if (k->b.clu)
		clu_disconnected(k->b.clu);
	if (!k->reconnect_timer)
		k->reconnect_timer = clu_loop_timer_add(k->b.loop, RECONNECT_MS, coro_reconnect, k);
}

/* Returns 0, or a negative errno with everything released. */
static int coro_connect(struct coro *k)
{
	cpg_callbacks_t cb = {.cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg};
	votequorum_callbacks_t vcb = {.votequorum_quorum_notify_fn = on_quorum,
				      .votequorum_expectedvotes_notify_fn = on_expected};
	struct cpg_name group;
	unsigned int nodeid = 0;
	cs_error_t e;

	e = votequorum_initialize(&k->vq, &vcb);
	if (e != CS_OK)
		return cs_to_errno(e);
	e = cpg_initialize(&k->cpg, &cb);
	if (e != CS_OK)
		goto err_vq;
	cpg_context_set(k->cpg, k);
	votequorum_context_set(k->vq, k);
	if ((e = cpg_local_get(k->cpg, &nodeid)) != CS_OK)
		goto err_cpg;
	clu_set_nodeid(k->b.clu, nodeid);
	if ((e = votequorum_trackstart(k->vq, 0, CS_TRACK_CHANGES | CS_TRACK_CURRENT)) != CS_OK)
		goto err_cpg;
	if (votequorum_fd_get(k->vq, &k->vq_fd) != CS_OK || cpg_fd_get(k->cpg, &k->cpg_fd) != CS_OK)
		goto err_cpg;
	snprintf(group.value, sizeof(group.value), "%s", GROUP_NAME);
	group.length = (uint32_t)strlen(GROUP_NAME);
	if ((e = cpg_join(k->cpg, &group)) != CS_OK)
		goto err_cpg;
	k->connected = true;
	vq_update(k);
	qb_loop_poll_add(k->b.loop, QB_LOOP_HIGH, k->vq_fd, POLLIN, k, vq_ready);
	qb_loop_poll_add(k->b.loop, QB_LOOP_HIGH, k->cpg_fd, POLLIN, k, cpg_ready);
	log_notice("joined CPG group %s as node %u", GROUP_NAME, nodeid);
	k->warned = false;
	return 0;
err_cpg:
	cpg_finalize(k->cpg);
err_vq:
	votequorum_finalize(k->vq);
	k->cpg_fd = k->vq_fd = -1;
	return cs_to_errno(e ? e : CS_ERR_LIBRARY);
}

static void coro_reconnect(void *arg)
{
	struct coro *k = arg;

	k->reconnect_timer = NULL;
	int rc = coro_connect(k);
	if (rc == 0)
		return;
	if (!k->warned)
		log_warn("Corosync not reachable (%s); retrying every %u ms", strerror(-rc),
			 RECONNECT_MS);
	k->warned = true;
	k->reconnect_timer = clu_loop_timer_add(k->b.loop, RECONNECT_MS, coro_reconnect, k);
}

static void coro_destroy(struct clu_binding *b)
{
	struct coro *k = UTIL_CONTAINER_OF(b, struct coro, b);

	if (k->reconnect_timer)
		clu_loop_timer_del(b->loop, k->reconnect_timer);
	if (k->connected) {
		struct cpg_name group;
		snprintf(group.value, sizeof(group.value), "%s", GROUP_NAME);
		group.length = (uint32_t)strlen(GROUP_NAME);
		cpg_leave(k->cpg, &group);
		qb_loop_poll_del(b->loop, k->cpg_fd);
		qb_loop_poll_del(b->loop, k->vq_fd);
		cpg_finalize(k->cpg);
		votequorum_finalize(k->vq);
	}
	clu_destroy(b->clu);
	free(k);
}

struct clu_binding *clu_corosync_create(struct qb_loop *loop, struct clu_self *self,
					struct clu_map *map, clu_changed_fn changed, void *arg,
					struct clu **out)
{
	struct coro *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->b.mode = "corosync";
	k->b.loop = loop;
	k->b.destroy = coro_destroy;
	k->cpg_fd = k->vq_fd = -1;
	k->b.clu = clu_create(&coro_ops, k, self, map, changed, arg);
	if (!k->b.clu) {
		free(k);
		return NULL;
	}
	coro_reconnect(k);
	self->node = clu_nodeid(k->b.clu);
	*out = k->b.clu;
	return &k->b;
}
