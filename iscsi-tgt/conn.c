/*
 * A target connection: socket I/O on its reactor, the receive dispatch by
 * opcode, the transmit pool, sequence numbers, timers and teardown.
 */
#define UTIL_LOG_TAG "conn"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi-tgt/tgt_internal.h"

/* RFC 7143 6.1: during login, data segments are at most 8192 bytes. */
#define LOGIN_MAX_DSL 8192
/*
 * Above this many bytes queued for the initiator, the connection stops
 * reading until they drain. An initiator that sends without reading (NOP-Out
 * pings with data, immediate Text or TMF requests: nothing bounds them like
 * the CmdSN window bounds commands) otherwise makes the engine hold a copy
 * of every answer: up to 4096 x MaxRecvDataSegmentLength, 1 GiB per
 * connection. Not reading is TCP's own backpressure: an initiator that
 * reads its answers never meets it.
 */
#define TX_BACKLOG_MAX (16u << 20)

static void conn_io(void *arg, uint32_t events);

static void sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
}

/* ---- receive dispatch ---- */

static int rx_data_dst(void *ctx, struct iscsi_pdu *pdu, void **dst)
{
	struct tgt_conn *c = ctx;

	if (c->state != CONN_LOGIN && c->sess) {
		switch (iscsi_bhs_opcode(&pdu->hdr.bhs)) {
		case ISCSI_OP_SCSI_CMD:
			return tgt_cmd_data_dst(c, pdu, dst);
		case ISCSI_OP_DATA_OUT:
			return tgt_data_out_dst(c, pdu, dst);
		default:
			break;
		}
	}
	if (pdu->data_len > c->rxbuf_len)
		return -EPROTO;
	*dst = c->rxbuf;
	return 0;
}

static bool conn_backlogged(const struct tgt_conn *c)
{
	return c->tx.queued_bytes > TX_BACKLOG_MAX;
}

/* Epoll interest: EPOLLIN unless backlogged, EPOLLOUT while the socket is full. */
static void conn_arm(struct tgt_conn *c)
{
	uint32_t ev =
	    (conn_backlogged(c) || c->rx_stopped ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);

	if (c->state == CONN_CLOSING || ev == c->armed)
		return;
	c->armed = ev;
	util_reactor_mod_fd(c->w->reactor, c->fd, ev, conn_io, c);
}

static int rx_dispatch(struct tgt_conn *c, struct iscsi_pdu *pdu);

static int rx_pdu(void *ctx, struct iscsi_pdu *pdu)
{
	struct tgt_conn *c = ctx;
	int rc = rx_dispatch(c, pdu);

	/* Pause reading (resumable) until the answers drain: see TX_BACKLOG_MAX. */
	if (rc == 0 && conn_backlogged(c))
		return 1;
	return rc;
}

static int rx_dispatch(struct tgt_conn *c, struct iscsi_pdu *pdu)
{
	uint8_t op = iscsi_bhs_opcode(&pdu->hdr.bhs);

	c->last_rx_ms = util_now_ms();
	if (c->state == CONN_CLOSING || c->rx_stopped)
		return 1;
	if (c->state == CONN_LOGIN) {
		if (op != ISCSI_OP_LOGIN_REQ) {
			/* RFC 7143 6.1: only Login PDUs before the full feature phase. */
			log_warn("%s: %s during login", c->peer, iscsi_opcode_name(op));
			return -EPROTO;
		}
		return tgt_login_pdu(c, pdu);
	}
	/* Every handler below works on the session: none without one. */
	if (!c->sess)
		return -EPROTO;

	/* RFC 7143 7.8: a payload digest error is answered with a Reject. */
	if (pdu->ddigest_bad && op != ISCSI_OP_SCSI_CMD && op != ISCSI_OP_DATA_OUT) {
		tgt_conn_reject(c, pdu, ISCSI_REJECT_DATA_DIGEST);
		return 0;
	}
	switch (op) {
	case ISCSI_OP_SCSI_CMD:
		return tgt_cmd_pdu(c, pdu);
	case ISCSI_OP_DATA_OUT:
		return tgt_data_out_pdu(c, pdu);
	case ISCSI_OP_NOP_OUT:
		return tgt_nop_out_pdu(c, pdu);
	case ISCSI_OP_TEXT_REQ:
		return tgt_text_pdu(c, pdu);
	case ISCSI_OP_TMF_REQ:
		return tgt_tmf_pdu(c, pdu);
	case ISCSI_OP_LOGOUT_REQ:
		return tgt_logout_pdu(c, pdu);
	case ISCSI_OP_LOGIN_REQ:
		/* RFC 7143 11.12: a Login Request in full feature phase is a protocol error. */
		tgt_conn_reject(c, pdu, ISCSI_REJECT_PROTOCOL_ERROR);
		return 0;
	case ISCSI_OP_SNACK_REQ:
		/* ErrorRecoveryLevel is 0: SNACK is not supported (RFC 7143 11.16). */
		tgt_conn_reject(c, pdu, ISCSI_REJECT_CMD_NOT_SUPPORTED);
		return 0;
	default:
		log_ratelimited(LOG_WARNING, "%s: unknown opcode 0x%02x", c->peer,
				pdu->hdr.bhs.opcode);
		tgt_conn_reject(c, pdu, ISCSI_REJECT_CMD_NOT_SUPPORTED);
		return 0;
	}
}

static const struct iscsi_rx_ops rx_ops = {
    .data_dst = rx_data_dst,
    .pdu = rx_pdu,
};

/* ---- connection lifecycle ---- */

void tgt_conn_start(struct tgt_worker *w, int fd)
{
	struct tgt *t = w->tgt;
	struct tgt_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl;

	if (!c)
		goto err;
	static atomic_uint_fast64_t next_id = 1;
	c->id = atomic_fetch_add(&next_id, 1);
	c->tgt = t;
	c->w = w;
	c->fd = fd;
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		sockaddr_str(&ss, c->peer, sizeof(c->peer));
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		sockaddr_str(&ss, c->local, sizeof(c->local));
	c->rxbuf_len = UTIL_MAX(t->cfg.max_recv_dsl, LOGIN_MAX_DSL);
	c->rxbuf = malloc(c->rxbuf_len + 1); /* +1: text parsing may add a NUL */
	if (!c->rxbuf)
		goto err;
	iscsi_rx_init(&c->rx, &rx_ops, c, LOGIN_MAX_DSL);
	iscsi_tx_init(&c->tx);
	iscsi_text_init(&c->text_rsp);
	iscsi_text_init(&c->text_req);
	TAILQ_INIT(&c->active);
	TAILQ_INIT(&c->waiting);
	c->state = CONN_LOGIN;
	c->last_rx_ms = util_now_ms();
	c->login_deadline_ms = c->last_rx_ms + t->cfg.login_timeout_s * 1000u;
	if (util_reactor_add_fd(w->reactor, fd, EPOLLIN, conn_io, c) < 0)
		goto err;
	c->armed = EPOLLIN;
	TAILQ_INSERT_TAIL(&w->conns, c, link);
	w->nconns++;
	log_info("%s: connected to %s", c->peer, c->local);
	return;
err:
	log_err("cannot set up a connection: out of memory");
	if (c)
		free(c->rxbuf);
	free(c);
	close(fd);
	tgt_conn_gone(t);
}

static void conn_free(void *arg)
{
	struct tgt_conn *c = arg;
	struct tgt *t = c->tgt;

	TAILQ_REMOVE(&c->w->conns, c, link);
	c->w->nconns--;
	tgt_login_free(c);
	if (c->sess) {
		struct tgt_session *s = c->sess;
		tgt_session_unregister(s);
		if (s->itl.lu) {
			/* I_T nexus loss ends SPC-2 reservations (SPC-4 5.12.2). */
			tgt_pr_nexus_gone(&s->itl);
			pthread_mutex_lock(&s->itl.lu->lock);
			LIST_REMOVE(&s->itl, lu_link);
			pthread_mutex_unlock(&s->itl.lu->lock);
		}
		if (s->target)
			tgt_target_put(s->target);
		free(s);
	}
	tgt_cmd_tasks_free(c);
	for (unsigned i = 0; i < c->ntxchunks; i++)
		free(c->txchunks[i]);
	iscsi_text_free(&c->text_rsp);
	iscsi_text_free(&c->text_req);
	free(c->rxbuf);
	close(c->fd);
	log_info("%s: connection closed", c->peer);
	free(c);
	tgt_conn_gone(t);
}

/* Free once nothing refers to the connection: no task inside the SCSI layer. */
static void conn_maybe_free(struct tgt_conn *c)
{
	if (c->state != CONN_CLOSING || c->scsi_inflight > 0 || c->free_scheduled)
		return;
	/*
	 * Freed from a fresh reactor message, never from inside a callback
	 * whose caller still holds the connection (rx loop, tx done).
	 */
	c->free_scheduled = true;
	if (util_reactor_send(c->w->reactor, conn_free, c) < 0)
		log_err("%s: cannot schedule connection release; leaking it", c->peer);
}

void tgt_conn_close(struct tgt_conn *c, const char *why)
{
	struct tgt_task *t, *tmp;

	if (c->state == CONN_CLOSING)
		return;
	if (why)
		log_info("%s: closing: %s", c->peer, why);
	c->state = CONN_CLOSING;
	/* I_T nexus loss ends SPC-2 reservations now, not when the memory goes. */
	if (c->sess && c->sess->itl.lu)
		tgt_pr_nexus_gone(&c->sess->itl);
	util_reactor_del_fd(c->w->reactor, c->fd);
	shutdown(c->fd, SHUT_RDWR);
	iscsi_tx_abort(&c->tx);
	/* Tasks outside the SCSI layer go now; the others when their I/O completes. */
	TAILQ_FOREACH_SAFE (t, &c->waiting, link, tmp) {
		TAILQ_REMOVE(&c->waiting, t, link);
		t->flags &= ~TASK_F_WAITING;
		TAILQ_INSERT_TAIL(&c->active, t, link);
	}
	TAILQ_FOREACH_SAFE (t, &c->active, link, tmp) {
		t->flags |= TASK_F_ABORTED;
		if (!(t->flags & TASK_F_EXECUTING))
			tgt_task_release(t);
	}
	conn_maybe_free(c);
}

void tgt_conn_task_left(struct tgt_conn *c)
{
	conn_maybe_free(c);
}

static void conn_flush(struct tgt_conn *c)
{
	/*
	 * Done callbacks run inside the flush and may queue more PDUs (a task
	 * released lets the Logout Response go); the running flush sends
	 * those too, so it must not be entered again from them.
	 */
	c->in_flush = true;
	int rc = iscsi_tx_flush(&c->tx, c->fd);
	c->in_flush = false;

	if (rc == -EAGAIN) {
		c->want_out = true;
		conn_arm(c);
		return;
	}
	if (rc < 0) {
		tgt_conn_close(c, strerror(-rc));
		return;
	}
	c->want_out = false;
	conn_arm(c);
	/* A Logout Response went out: the connection ends (RFC 7143 11.15). */
	if (c->state == CONN_LOGOUT && !c->logout_pending && iscsi_tx_empty(&c->tx))
		tgt_conn_close(c, "logged out");
}

static void conn_io(void *arg, uint32_t events)
{
	struct tgt_conn *c = arg;

	if (c->state == CONN_CLOSING)
		return;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !conn_backlogged(c) && !c->rx_stopped) {
		c->in_rx = true;
		int rc = iscsi_rx_read(&c->rx, c->fd);
		c->in_rx = false;
		if (rc < 0 && c->state != CONN_CLOSING) {
			tgt_conn_close(c, rc == -ECONNRESET ? "peer closed the connection"
							    : strerror(-rc));
			return;
		}
	}
	if (c->state != CONN_CLOSING && !iscsi_tx_empty(&c->tx))
		conn_flush(c);
	else
		conn_arm(c); /* nothing to send: reading resumes if it was paused */
}

/* ---- transmit ---- */

#define TXCHUNK 64

struct tgt_txbuf *tgt_txbuf_get(struct tgt_conn *c)
{
	struct tgt_txbuf *tb = c->txfree;

	if (!tb) {
		/* Grows in chunks and never shrinks: steady state allocates nothing. */
		if (c->ntxchunks == UTIL_ARRAY_SIZE(c->txchunks))
			return NULL;
		struct tgt_txbuf *chunk = calloc(TXCHUNK, sizeof(*chunk));
		if (!chunk)
			return NULL;
		c->txchunks[c->ntxchunks++] = chunk;
		for (int i = 0; i < TXCHUNK; i++) {
			chunk[i].next_free = c->txfree;
			c->txfree = &chunk[i];
		}
		tb = c->txfree;
	}
	c->txfree = tb->next_free;
	memset(&tb->pdu, 0, sizeof(tb->pdu));
	tb->task = NULL;
	tb->own = NULL;
	tb->own_len = 0;
	tb->next_free = NULL;
	return tb;
}

static void txbuf_done(struct iscsi_txpdu *tp, void *arg)
{
	struct tgt_conn *c = arg;
	struct tgt_txbuf *tb = UTIL_CONTAINER_OF(tp, struct tgt_txbuf, pdu);
	struct tgt_task *t = tb->task;

	if (tb->own)
		util_buf_put(util_reactor_bufpool(c->w->reactor), tb->own, tb->own_len);
	tb->next_free = c->txfree;
	c->txfree = tb;
	if (t)
		tgt_task_tx_done(t);
}

void tgt_conn_send(struct tgt_conn *c, struct tgt_txbuf *tb)
{
	tb->pdu.done = txbuf_done;
	tb->pdu.done_arg = c;
	if (tb->task)
		tb->task->txpdus_pending++;
	if (c->state == CONN_CLOSING) {
		txbuf_done(&tb->pdu, c);
		return;
	}
	iscsi_tx_queue(&c->tx, &tb->pdu);
	/*
	 * Inside the receive loop, responses gather and leave in one writev at
	 * its end (conn_io); from a completion, they leave at once.
	 */
	if (!c->in_rx && !c->in_flush && !c->want_out)
		conn_flush(c);
}

void tgt_conn_fill_sn(struct tgt_conn *c, void *bhs, bool status)
{
	uint8_t *b = bhs;
	struct tgt_session *s = c->sess;

	put_be32(b + 24, status ? c->statsn++ : c->statsn);
	put_be32(b + 28, s ? s->exp_cmdsn : 0);
	put_be32(b + 32, s ? s->max_cmdsn : 0);
}

void tgt_conn_reject(struct tgt_conn *c, const struct iscsi_pdu *pdu, uint8_t reason)
{
	struct tgt_txbuf *tb = tgt_txbuf_get(c);

	if (!tb) {
		tgt_conn_close(c, "out of memory for a Reject");
		return;
	}
	struct iscsi_bhs_reject *r = (void *)tb->pdu.hdr.raw;
	r->opcode = ISCSI_OP_REJECT;
	r->flags = ISCSI_FLAG_FINAL;
	r->reason = reason;
	put_be32(r->itt, ISCSI_RSVD_TAG);
	tgt_conn_fill_sn(c, r, true);
	/* RFC 7143 11.17.3: the data segment is the rejected PDU's header. */
	memcpy(tb->small, pdu->hdr.raw, ISCSI_BHS_LEN);
	tb->pdu.data = tb->small;
	tb->pdu.data_len = ISCSI_BHS_LEN;
	log_ratelimited(LOG_INFO, "%s: Reject reason 0x%02x for %s itt 0x%08x", c->peer, reason,
			iscsi_opcode_name(pdu->hdr.bhs.opcode), get_be32(pdu->hdr.bhs.itt));
	tgt_conn_send(c, tb);
}

/* ---- CmdSN (RFC 7143 4.2.2.1) ---- */

int tgt_conn_cmdsn_check(struct tgt_conn *c, uint32_t cmdsn, bool immediate)
{
	struct tgt_session *s = c->sess;

	if (immediate)
		return 0;
	/* A closed window (MaxCmdSN = ExpCmdSN - 1) takes nothing, not even ExpCmdSN. */
	if (!sn_le(cmdsn, s->max_cmdsn))
		return -1;
	if (cmdsn == s->exp_cmdsn)
		return 0;
	if (sn_gt(cmdsn, s->exp_cmdsn))
		return 1;
	return -1;
}

void tgt_conn_cmdsn_advanced(struct tgt_conn *c)
{
	struct tgt_session *s = c->sess;
	struct tgt_task *t;
	bool again = true;

	/* Commands held because they arrived ahead of a gap may go now. */
	while (again) {
		again = false;
		/* Requests answered ahead of the gap (misc.c) only use up their CmdSN. */
		for (unsigned i = 0; i < s->nahead; i++) {
			if (s->ahead[i] != s->exp_cmdsn)
				continue;
			s->ahead[i] = s->ahead[--s->nahead];
			s->exp_cmdsn++;
			s->max_cmdsn++;
			again = true;
			break;
		}
		if (again)
			continue;
		TAILQ_FOREACH (t, &c->waiting, link) {
			if (t->cmdsn != s->exp_cmdsn)
				continue;
			TAILQ_REMOVE(&c->waiting, t, link);
			t->flags &= ~TASK_F_WAITING;
			TAILQ_INSERT_TAIL(&c->active, t, link);
			s->exp_cmdsn++;
			tgt_task_start(t);
			again = c->state != CONN_CLOSING;
			break;
		}
	}
}

/* ---- timers ---- */

void tgt_conn_tick(struct tgt_conn *c, uint64_t now_ms)
{
	const struct tgt_config *cfg = &c->tgt->cfg;

	if (c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_LOGIN) {
		if (now_ms > c->login_deadline_ms)
			tgt_conn_close(c, "login timed out");
		return;
	}
	if (cfg->nop_interval_s == 0)
		return;
	if (c->nop_sent_ms) {
		if (now_ms - c->nop_sent_ms > cfg->nop_timeout_s * 1000ull)
			tgt_conn_close(c, "no answer to NOP-In");
		return;
	}
	if (now_ms - c->last_rx_ms > cfg->nop_interval_s * 1000ull)
		tgt_nop_ping(c);
}
