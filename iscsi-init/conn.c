/*
 * conn.c: the TCP transport of an initiator session. A non-blocking socket on
 * the session's reactor, the shared resumable receive machine and writev
 * transmit queue of iscsi/pdu.c. The session logic sits behind
 * struct ini_transport_ops so that unit tests can replace this file.
 */
#define UTIL_LOG_TAG "ini-conn"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi-init/ini_internal.h"

struct tcp_conn {
	struct ini_session *s;
	int fd;
	bool connecting;
	bool flushing;
	bool want_out; /* EPOLLOUT registered */
	int write_err; /* a writev error seen outside the fd callback */
	struct iscsi_rx rx;
	struct iscsi_tx tx;
};

static int tcp_rx_dst(void *ctx, struct iscsi_pdu *pdu, void **dst)
{
	struct tcp_conn *c = ctx;

	return ini_rx_data_dst(c->s, pdu, dst);
}

static int tcp_rx_pdu(void *ctx, struct iscsi_pdu *pdu)
{
	struct tcp_conn *c = ctx;

	return ini_rx_pdu(c->s, pdu);
}

static const struct iscsi_rx_ops tcp_rx_ops = {
    .data_dst = tcp_rx_dst,
    .pdu = tcp_rx_pdu,
};

static void tcp_fd_cb(void *arg, uint32_t events);

static void tcp_events(struct tcp_conn *c, bool out)
{
	if (c->want_out == out || c->fd < 0)
		return;
	c->want_out = out;
	util_reactor_mod_fd(c->s->r, c->fd, EPOLLIN | (out ? EPOLLOUT : 0), tcp_fd_cb, c);
}

/*
 * Write what the socket takes. Re-entry (a done callback completing a task
 * whose callback submits the next command) only queues: the outer call's loop
 * picks the new PDUs up.
 */
static void tcp_flush(struct tcp_conn *c)
{
	int rc;

	if (c->flushing || c->fd < 0 || c->connecting)
		return;
	c->flushing = true;
	rc = iscsi_tx_flush(&c->tx, c->fd);
	c->flushing = false;
	if (rc == -EAGAIN) {
		tcp_events(c, true);
	} else if (rc < 0) {
		/* Failing here could re-enter the submitter; the fd callback does it. */
		c->write_err = rc;
		tcp_events(c, true);
	} else {
		tcp_events(c, false);
	}
}

static void tcp_fd_cb(void *arg, uint32_t events)
{
	struct tcp_conn *c = arg;
	struct ini_session *s = c->s;
	unsigned gen = s->conn_gen;
	int rc;

	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == 0 && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		c->connecting = false;
		tcp_events(c, false);
		ini_conn_connected(s, err ? -err : 0);
		return;
	}
	if (c->write_err) {
		ini_conn_fail(s, c->write_err);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		s->in_rx = true;
		rc = iscsi_rx_read(&c->rx, c->fd);
		s->in_rx = false;
		if (s->conn_gen != gen)
			return; /* a handler dropped the connection */
		if (rc < 0) {
			log_warn("%s:%u: connection lost: %s", s->host, (unsigned)s->port,
				 strerror(-rc));
			ini_conn_fail(s, rc);
			return;
		}
	}
	if ((events & EPOLLOUT) && c->fd >= 0)
		tcp_flush(c);
}

static int tcp_connect(struct ini_session *s, const char *host, uint16_t port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct tcp_conn *c = s->tr;
	char portstr[8];
	int one = 1;
	int fd, rc;

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->fd = -1;
		c->s = s;
		s->tr = c;
	}
	/*
	 * Portals are address literals in every configuration we generate;
	 * a host name costs one blocking resolver call, at connect time only.
	 */
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc != 0) {
		log_err("%s: cannot resolve: %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	/* DESIGN.md: TCP_NODELAY on every data socket; a PDU is one writev. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		goto out;
	}
	c->fd = fd;
	c->connecting = true;
	c->want_out = true;
	c->write_err = 0;
	iscsi_rx_init(&c->rx, &tcp_rx_ops, c, UTIL_MAX(s->cfg.max_recv_dsl, 8192u));
	iscsi_tx_init(&c->tx);
	/* Even an immediate success is reported from the loop, never inline. */
	rc = util_reactor_add_fd(s->r, fd, EPOLLIN | EPOLLOUT, tcp_fd_cb, c);
	if (rc < 0) {
		close(fd);
		c->fd = -1;
	}
out:
	freeaddrinfo(ai);
	return rc;
}

static void tcp_send(struct ini_session *s, struct iscsi_txpdu *tp)
{
	struct tcp_conn *c = s->tr;

	iscsi_tx_queue(&c->tx, tp);
	tcp_flush(c);
}

static void tcp_set_params(struct ini_session *s, bool hdigest, bool ddigest, uint32_t max_recv)
{
	struct tcp_conn *c = s->tr;

	c->tx.hdigest = c->rx.hdigest = hdigest;
	c->tx.ddigest = c->rx.ddigest = ddigest;
	c->rx.max_data = max_recv;
}

static void tcp_close(struct ini_session *s)
{
	struct tcp_conn *c = s->tr;

	if (!c)
		return;
	if (c->fd >= 0) {
		util_reactor_del_fd(s->r, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	c->connecting = false;
	c->want_out = false;
	c->write_err = 0;
	/* Done callbacks give the PDUs (and the caller's buffers) back. */
	iscsi_tx_abort(&c->tx);
	if (s->state == SESS_CLOSED || s->state == SESS_NEW) {
		free(c);
		s->tr = NULL;
	}
}

const struct ini_transport_ops ini_tcp_ops = {
    .connect = tcp_connect,
    .send = tcp_send,
    .set_params = tcp_set_params,
    .close = tcp_close,
};
