/*
 * ctl.c: the engine side of vmctl: a libqb IPC server (root only) on the
 * control thread's main loop. A request is one envelope + CtlRequest after
 * libqb's request header; the reply is one envelope + CtlReply. Queries are
 * answered at once; a change is answered when this engine has applied it
 * (DESIGN.md: "vmctl gets its answer once the local engine has applied the
 * change"), which may be after other requests: each connection keeps at most
 * one change in flight, like the synchronous vmctl client.
 */
#define UTIL_LOG_TAG "ctl"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#include "cluster/cluster.h"
#include "engine/engine.h"

#define CTL_MAX_MSG (PROTO_ENV_LEN + PROTO_MAX_PAYLOAD + 4096)

struct eng_ctl {
	qb_loop_t *loop;
	qb_ipcs_service_t *svc;
	struct clu *clu;
	const char *mode;
};

/* One client connection; a change waiting for its delivery holds a reference. */
struct conn_ctx {
	qb_ipcs_connection_t *conn;
	struct eng_ctl *ctl;
	bool waiting;
	int32_t req_id;
	Vm__CtlCmd cmd;
	char name[VOL_NAME_MAX];
	uint64_t size;	 /* create, resize: for the "no space" message */
	uint32_t mirror; /* create: legs on back ends */
};

/* One server per process: libqb's poll handlers and connection hooks carry no context. */
static qb_loop_t *ctl_loop;
static struct eng_ctl *the_ctl;

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ctl_loop, p, data, fn);
}

static int32_t dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ctl_loop, p, fd, events, data, fn);
}

static int32_t dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ctl_loop, p, fd, events, data, fn);
}

static int32_t dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(ctl_loop, fd);
}

static struct qb_ipcs_poll_handlers poll_handlers = {
    .job_add = job_add,
    .dispatch_add = dispatch_add,
    .dispatch_mod = dispatch_mod,
    .dispatch_del = dispatch_del,
};

/* Secrets never leave the engine through vmctl. */
static void hide_secrets(Vm__Map *pb)
{
	static char set[] = "(set)", none[] = "";

	for (size_t i = 0; i < pb->n_volumes; i++) {
		Vm__Volume *v = pb->volumes[i];
		v->chap_secret = v->chap_secret[0] ? set : none;
		v->chap_mutual_secret = v->chap_mutual_secret[0] ? set : none;
	}
	for (size_t i = 0; i < pb->n_backends; i++)
		pb->backends[i]->chap_secret = pb->backends[i]->chap_secret[0] ? set : none;
}

static void send_reply(qb_ipcs_connection_t *conn, int32_t id, Vm__CtlReply *rep)
{
	struct qb_ipc_response_header hdr;
	uint8_t *buf;
	size_t len;

	if (proto_pack(PROTO_CTL_REPLY, &rep->base, &buf, &len) < 0) {
		Vm__CtlReply small = VM__CTL_REPLY__INIT;
		small.error = -EMSGSIZE;
		small.message = "reply too large";
		if (proto_pack(PROTO_CTL_REPLY, &small.base, &buf, &len) < 0)
			return;
	}
	hdr.id = id;
	hdr.size = (int32_t)(sizeof(hdr) + len);
	hdr.error = 0;
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {buf, len}};
	ssize_t rc = qb_ipcs_response_sendv(conn, iov, 2);
	if (rc < 0)
		log_warn("cannot answer vmctl: %s", strerror((int)-rc));
	free(buf);
}

static void reply_error(qb_ipcs_connection_t *conn, int32_t id, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(qb_ipcs_connection_t *conn, int32_t id, int err, const char *fmt, ...)
{
	Vm__CtlReply rep = VM__CTL_REPLY__INIT;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rep.error = err;
	rep.message = msg;
	send_reply(conn, id, &rep);
}

/* The back ends of the map with this engine's view of each (ctl_backends.c). */
static void reply_backends(qb_ipcs_connection_t *conn, int32_t id)
{
	Vm__CtlReply rep = VM__CTL_REPLY__INIT;

	if (!eng_backends_get() || eng_backends_list(eng_backends_get(), &rep) < 0)
		return reply_error(conn, id, -ENOMEM, "out of memory");
	send_reply(conn, id, &rep);
	eng_backends_list_free(&rep);
}

/* The map, or one volume of it, as a reply. */
static void reply_map(struct eng_ctl *ctl, qb_ipcs_connection_t *conn, int32_t id, const char *only)
{
	Vm__CtlReply rep = VM__CTL_REPLY__INIT;
	Vm__Map pb;
	const struct clu_map *m = clu_map(ctl->clu);

	if (clu_map_to_pb(m, &pb) < 0) {
		reply_error(conn, id, -ENOMEM, "out of memory");
		return;
	}
	hide_secrets(&pb);
	Vm__Volume **all = pb.volumes;
	size_t n = pb.n_volumes;
	if (only) {
		pb.n_volumes = 0;
		for (size_t i = 0; i < n; i++)
			if (strcmp(all[i]->name, only) == 0) {
				pb.volumes = &all[i];
				pb.n_volumes = 1;
			}
		if (!pb.n_volumes) {
			pb.volumes = all;
			pb.n_volumes = n;
			clu_map_pb_free(&pb);
			reply_error(conn, id, -ENOENT, "no volume %s", only);
			return;
		}
	}
	rep.map = &pb;
	Vm__CtlVirtStatus vs;
	if (only && eng_backends_virt_status(eng_backends_get(), only, &vs))
		rep.virt = &vs; /* resync progress: only the owner knows it */
	send_reply(conn, id, &rep);
	pb.volumes = all;
	pb.n_volumes = n;
	clu_map_pb_free(&pb);
}

static const char *change_error(int rc, const char *name, Vm__CtlCmd cmd)
{
	static char buf[256];

	switch (rc) {
	case -EEXIST:
		snprintf(buf, sizeof(buf), "volume %s already exists", name);
		break;
	case -ENOENT:
		snprintf(buf, sizeof(buf), "no volume %s", name);
		break;
	case -ENOTCONN:
		return "no quorum: this engine refuses map changes";
	case -EALREADY:
		return "nothing to change";
	case -ENOSPC:
		return "too many volumes or ACL entries";
	case -ETIMEDOUT:
		return "the change was not delivered in time; check `vmctl cluster status`";
	case -EAGAIN:
		return "the cluster membership changed during the request; try again";
	case -EBUSY:
		return "Corosync is not accepting messages; try again later";
	case -EINVAL:
		if (cmd == VM__CTL_CMD__CTL_VOLUME_RESIZE)
			return "the new size must be larger and a multiple of the block size";
		if (cmd == VM__CTL_CMD__CTL_HOST_ALLOW || cmd == VM__CTL_CMD__CTL_HOST_DENY)
			return "not an iSCSI name (iqn., eui. or naa.)";
		if (cmd == VM__CTL_CMD__CTL_VOLUME_CHAP)
			return "CHAP secret must be 12 to 255 bytes";
		return "invalid request";
	default:
		snprintf(buf, sizeof(buf), "%s", strerror(-rc));
	}
	return buf;
}

/* Sizes in messages: exact units where they fit ("16M"), else bytes. */
static void fmt_size(uint64_t b, char *buf, size_t len)
{
	static const char *const units[] = {"", "K", "M", "G", "T"};
	unsigned u = 0;

	while (u + 1 < UTIL_ARRAY_SIZE(units) && b >= 1024 && b % 1024 == 0) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 "%s", b, u ? units[u] : " bytes");
}

/*
 * -ENOSPC means different things per command (clu_map_apply()): the map's
 * volume or ACL limit, or back ends without room for the extents. The map is
 * as the change found it (a rejected change leaves it untouched), so what
 * was missing can be said from it.
 */
static void nospace_error(const struct conn_ctx *cc, char *buf, size_t len)
{
	const struct clu_map *m = clu_map(cc->ctl->clu);
	const struct clu_volume *v = clu_map_find(m, cc->name);
	char a[32], b[32], f[32];

	if (cc->cmd == VM__CTL_CMD__CTL_HOST_ALLOW) {
		snprintf(buf, len, "volume %s already allows %d initiators, the most it can",
			 cc->name, CLU_MAX_ACL);
		return;
	}
	if (cc->cmd == VM__CTL_CMD__CTL_VOLUME_CREATE && m->nvols >= CLU_MAX_VOLUMES) {
		snprintf(buf, len, "the map already holds %d volumes, the most it can",
			 CLU_MAX_VOLUMES);
		return;
	}
	if (cc->cmd == VM__CTL_CMD__CTL_VOLUME_RESIZE && v && v->nlegs && v->extent_size) {
		/* New extents go on each leg's own back end: name the first one short of room. */
		uint64_t n = (cc->size + v->extent_size - 1) / v->extent_size;
		uint64_t need = (n - UTIL_MIN(n, v->legs[0].nextents)) * v->extent_size;
		fmt_size(need, a, sizeof(a));
		fmt_size(cc->size, b, sizeof(b));
		for (unsigned l = 0; l < v->nlegs; l++) {
			if (!v->legs[l].nextents)
				continue;
			uint32_t id = v->legs[l].extents[0].backend;
			uint64_t free_b = clu_virt_free_bytes(m, id);
			if (free_b >= need)
				continue;
			fmt_size(free_b, f, sizeof(f));
			snprintf(
			    buf, len,
			    "no space on the back ends for %s more (growing %s to %s): back end "
			    "%" PRIu32 " (leg %u) has %s free",
			    a, cc->name, b, id, l, f);
			return;
		}
		snprintf(buf, len, "no space on the back ends for %s more on each leg of %s", a,
			 cc->name);
		return;
	}
	if (cc->cmd == VM__CTL_CMD__CTL_VOLUME_CREATE && cc->mirror) {
		size_t o;
		fmt_size(cc->size, a, sizeof(a));
		o = (size_t)snprintf(buf, len,
				     "no space on the back ends for a %s volume with %" PRIu32
				     " leg(s) on distinct back ends (free:",
				     a, cc->mirror);
		for (unsigned i = 0; i < m->nbackends && o < len; i++) {
			fmt_size(clu_virt_free_bytes(m, m->backends[i].id), f, sizeof(f));
			o += (size_t)snprintf(buf + o, len - o, "%s back end %" PRIu32 " %s",
					      i ? "," : "", m->backends[i].id, f);
		}
		if (o < len)
			snprintf(buf + o, len - o, ")");
		return;
	}
	snprintf(buf, len, "too many volumes or ACL entries");
}

static void on_applied(void *arg, int rc)
{
	struct conn_ctx *cc = arg;
	char msg[400];

	cc->waiting = false;
	if (rc == -ENOSPC) {
		nospace_error(cc, msg, sizeof(msg));
		reply_error(cc->conn, cc->req_id, rc, "%s", msg);
	} else if (rc < 0)
		reply_error(cc->conn, cc->req_id, rc, "%s", change_error(rc, cc->name, cc->cmd));
	else if (cc->cmd == VM__CTL_CMD__CTL_VOLUME_DELETE)
		reply_error(cc->conn, cc->req_id, 0, "deleted");
	else if (cc->cmd == VM__CTL_CMD__CTL_BACKEND_ADD ||
		 cc->cmd == VM__CTL_CMD__CTL_BACKEND_REMOVE)
		reply_backends(cc->conn, cc->req_id);
	else
		reply_map(cc->ctl, cc->conn, cc->req_id, cc->name);
	qb_ipcs_connection_unref(cc->conn);
}

static void do_change(struct conn_ctx *cc, int32_t id, const Vm__CtlRequest *rq)
{
	struct eng_ctl *ctl = cc->ctl;
	Vm__MapChange chg = VM__MAP_CHANGE__INIT;
	const struct clu_map *m = clu_map(ctl->clu);

	chg.name = rq->name;
	if (rq->cmd == VM__CTL_CMD__CTL_VOLUME_CREATE) {
		uint32_t bs = rq->block_size ? rq->block_size : 512;
		if (!clu_volume_name_valid(rq->name))
			return reply_error(cc->conn, id, -EINVAL,
					   "bad volume name '%s': use 1-63 of a-z 0-9 - .",
					   rq->name);
		if (bs != 512 && bs != 4096)
			return reply_error(cc->conn, id, -EINVAL, "block size must be 512 or 4096");
		if (rq->size == 0 || rq->size % bs)
			return reply_error(cc->conn, id, -EINVAL,
					   "size %" PRIu64
					   " is not a non-zero multiple of the block "
					   "size %" PRIu32,
					   rq->size, bs);
		if (clu_map_find(m, rq->name))
			return reply_error(cc->conn, id, -EEXIST, "volume %s already exists",
					   rq->name);
		if (rq->owner[0] && !(chg.owner = clu_member_lookup(ctl->clu, rq->owner)))
			return reply_error(cc->conn, id, -ENOENT, "no member %s in the cluster",
					   rq->owner);
		chg.op = VM__CHANGE_OP__VOLUME_CREATE;
		chg.size = rq->size;
		chg.block_size = bs;
		/* With back ends, volumes are carved from them; else the pool file. */
		chg.mirror = rq->mirror ? rq->mirror : (m->nbackends ? 1 : 0);
		chg.extent_size = rq->extent_size;
		if (chg.mirror > VOL_MAX_LEGS || (chg.mirror && !m->nbackends))
			return reply_error(cc->conn, id, -EINVAL,
					   "--mirror needs 1 or %d and as many back ends",
					   VOL_MAX_LEGS);
	} else if (rq->cmd == VM__CTL_CMD__CTL_BACKEND_REMOVE) {
		chg.op = VM__CHANGE_OP__BACKEND_REMOVE;
		chg.backend = rq->backend;
		chg.name = (char *)"";
	} else {
		const struct clu_volume *v = clu_map_find(m, rq->name);
		if (!v)
			return reply_error(cc->conn, id, -ENOENT, "no volume %s", rq->name);
		switch (rq->cmd) {
		case VM__CTL_CMD__CTL_VOLUME_DELETE:
			chg.op = VM__CHANGE_OP__VOLUME_DELETE;
			break;
		case VM__CTL_CMD__CTL_VOLUME_RESIZE:
			if (rq->size % v->block_size)
				return reply_error(cc->conn, id, -EINVAL,
						   "size %" PRIu64
						   " is not a multiple of the block "
						   "size %" PRIu32,
						   rq->size, v->block_size);
			chg.op = VM__CHANGE_OP__VOLUME_RESIZE;
			chg.size = rq->size;
			break;
		case VM__CTL_CMD__CTL_HOST_ALLOW:
		case VM__CTL_CMD__CTL_HOST_DENY:
			chg.op = rq->cmd == VM__CTL_CMD__CTL_HOST_ALLOW ? VM__CHANGE_OP__ACL_ALLOW
									: VM__CHANGE_OP__ACL_DENY;
			chg.iqn = rq->iqn;
			break;
		case VM__CTL_CMD__CTL_VOLUME_CHAP:
			chg.op = VM__CHANGE_OP__CHAP_SET;
			chg.chap_user = rq->chap_user;
			chg.chap_secret = rq->chap_secret;
			chg.chap_mutual_user = rq->chap_mutual_user;
			chg.chap_mutual_secret = rq->chap_mutual_secret;
			break;
		case VM__CTL_CMD__CTL_VOLUME_MOVE: {
			/* Failover's planned twin: the volume and its portal go to NODE. */
			uint32_t to = clu_member_lookup(ctl->clu, rq->owner);
			if (!to)
				return reply_error(cc->conn, id, -ENOENT,
						   "no member %s in the cluster", rq->owner);
			if (to == v->owner)
				return reply_error(cc->conn, id, -EALREADY,
						   "%s is already served by %s", rq->name,
						   rq->owner);
			chg.op = VM__CHANGE_OP__OWNER_MOVE;
			chg.owner = to;
			chg.service_portal = (char *)clu_peer_portal(ctl->clu, to);
			break;
		}
		default:
			return reply_error(cc->conn, id, -EOPNOTSUPP, "unknown command");
		}
	}
	cc->cmd = rq->cmd;
	cc->req_id = id;
	snprintf(cc->name, sizeof(cc->name), "%s", rq->name);
	cc->size = rq->size;
	cc->mirror = chg.mirror;
	qb_ipcs_connection_ref(cc->conn);
	cc->waiting = true;
	int rc = clu_submit(ctl->clu, &chg, on_applied, cc);
	if (rc < 0) {
		cc->waiting = false;
		qb_ipcs_connection_unref(cc->conn);
		if (rc == -ENOTCONN && clu_quorate(ctl->clu))
			return reply_error(cc->conn, id, rc,
					   "this engine's map is not in sync yet");
		if (rc == -ENOENT)
			return reply_error(cc->conn, id, rc, "no member %s in the cluster",
					   rq->owner);
		return reply_error(cc->conn, id, rc, "%s", change_error(rc, rq->name, rq->cmd));
	}
}

static void do_status(struct eng_ctl *ctl, qb_ipcs_connection_t *conn, int32_t id)
{
	Vm__CtlReply rep = VM__CTL_REPLY__INIT;
	Vm__CtlStatus st;

	if (clu_status(ctl->clu, &st) < 0)
		return reply_error(conn, id, -ENOMEM, "out of memory");
	st.mode = (char *)ctl->mode;
	rep.status = &st;
	send_reply(conn, id, &rep);
	clu_status_free(&st);
}

static int32_t msg_process(qb_ipcs_connection_t *conn, void *data, size_t size)
{
	struct conn_ctx *cc = qb_ipcs_context_get(conn);
	const struct qb_ipc_request_header *hdr = data;
	int err = 0;

	if (size < sizeof(*hdr) || !cc)
		return 0;
	int32_t id = hdr->id;
	Vm__CtlRequest *rq = (Vm__CtlRequest *)proto_unpack(
	    PROTO_CTL_REQUEST, &vm__ctl_request__descriptor, (const uint8_t *)data + sizeof(*hdr),
	    size - sizeof(*hdr), &err);
	if (!rq) {
		reply_error(conn, id, -EBADMSG, "malformed request (vmctl and engine versions?)");
		return 0;
	}
	if (cc->waiting) {
		reply_error(conn, id, -EBUSY, "a change is already in progress on this connection");
		goto out;
	}
	switch (rq->cmd) {
	case VM__CTL_CMD__CTL_STATUS:
		do_status(cc->ctl, conn, id);
		break;
	case VM__CTL_CMD__CTL_VOLUME_LIST:
		reply_map(cc->ctl, conn, id, NULL);
		break;
	case VM__CTL_CMD__CTL_VOLUME_SHOW:
		reply_map(cc->ctl, conn, id, rq->name);
		break;
	case VM__CTL_CMD__CTL_BACKEND_LIST:
		reply_backends(conn, id);
		break;
	case VM__CTL_CMD__CTL_BACKEND_ADD: {
		/* The engine logs in first (the size goes in the map), then the change. */
		cc->cmd = rq->cmd;
		cc->req_id = id;
		cc->name[0] = '\0';
		qb_ipcs_connection_ref(conn);
		cc->waiting = true;
		int rc = eng_backends_add(eng_backends_get(), rq, on_applied, cc);
		if (rc < 0) {
			cc->waiting = false;
			qb_ipcs_connection_unref(conn);
			reply_error(conn, id, rc, "%s", strerror(-rc));
		}
		break;
	}
	case VM__CTL_CMD__CTL_DEBUG_BAD_MESSAGE: {
		int rc = clu_send_bad(cc->ctl->clu, rq->name);
		reply_error(conn, id, rc, "%s", rc ? strerror(-rc) : "sent");
		break;
	}
	default:
		do_change(cc, id, rq);
		break;
	}
out:
	vm__ctl_request__free_unpacked(rq, NULL);
	return 0;
}

/* vmctl changes the whole cluster: root only, like Corosync's own IPC. */
static int32_t conn_accept(qb_ipcs_connection_t *conn, uid_t uid, gid_t gid)
{
	if (uid != 0) {
		log_warn("vmctl connection from uid %u refused: root only", (unsigned)uid);
		return -EACCES;
	}
	return 0;
}

static void conn_created(qb_ipcs_connection_t *conn)
{
	struct eng_ctl *ctl = the_ctl;
	struct conn_ctx *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return;
	cc->conn = conn;
	cc->ctl = ctl;
	qb_ipcs_context_set(conn, cc);
}

static void conn_destroyed(qb_ipcs_connection_t *conn)
{
	struct conn_ctx *cc = qb_ipcs_context_get(conn);

	if (!cc)
		return;
	/* The reference held while waiting means this runs only once nothing waits. */
	clu_cancel(cc->ctl->clu, cc);
	qb_ipcs_context_set(conn, NULL);
	free(cc);
}

static struct qb_ipcs_service_handlers handlers = {
    .connection_accept = conn_accept,
    .connection_created = conn_created,
    .msg_process = msg_process,
    .connection_destroyed = conn_destroyed,
};

struct eng_ctl *eng_ctl_create(struct qb_loop *loop, const char *name, struct clu *c,
			       const char *mode)
{
	struct eng_ctl *ctl = calloc(1, sizeof(*ctl));

	if (!ctl)
		return NULL;
	ctl->loop = loop;
	ctl->clu = c;
	ctl->mode = mode;
	ctl_loop = loop;
	the_ctl = ctl;
	/* Sockets, not shared memory: the socket is per network namespace, like the engine. */
	ctl->svc = qb_ipcs_create(name, 0, QB_IPC_SOCKET, &handlers);
	if (!ctl->svc) {
		log_err("cannot create the vmctl socket %s", name);
		free(ctl);
		return NULL;
	}
	qb_ipcs_service_context_set(ctl->svc, ctl);
	qb_ipcs_poll_handlers_set(ctl->svc, &poll_handlers);
	int rc = qb_ipcs_run(ctl->svc);
	if (rc < 0) {
		log_err("cannot listen on the vmctl socket %s: %s (another engine uses it? set "
			"cluster.ctl_socket)",
			name, strerror(-rc));
		/* qb_ipcs_run() already released the service on failure. */
		the_ctl = NULL;
		free(ctl);
		return NULL;
	}
	log_info("vmctl socket: %s", name);
	return ctl;
}

void eng_ctl_destroy(struct eng_ctl *ctl)
{
	if (!ctl)
		return;
	qb_ipcs_destroy(ctl->svc);
	free(ctl);
}
