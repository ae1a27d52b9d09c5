/*
 * pr_aptpl: a small persistent reservation client for the APTPL test
 * (tests/conformance/aptpl.sh) and the fencing checks of
 * tests/cluster/failover-mirror.sh, built on the engine's own initiator
 * library. It always logs in with the same initiator name and ISID, so it
 * is the same I_T nexus before and after an engine restart.
 *
 *   pr_aptpl URL INITIATOR reserve KEY   REGISTER AND IGNORE (APTPL) + RESERVE WE
 *   pr_aptpl URL INITIATOR read          PR IN READ RESERVATION: "reserved KEY TYPE" or "none"
 *   pr_aptpl URL INITIATOR clear KEY     REGISTER AND IGNORE (APTPL) + CLEAR
 *   pr_aptpl URL INITIATOR keys          PR IN READ KEYS: one "0xKEY" line per registration
 *
 * Exit status 0 on success, 1 on a SCSI or connection error.
 */
#define UTIL_LOG_TAG "pr_aptpl"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-init/ini.h"

enum mode {
	MODE_RESERVE,
	MODE_READ,
	MODE_CLEAR,
	MODE_KEYS,
};

struct ctx {
	struct util_reactor *r;
	struct ini_session *s;
	enum mode mode;
	uint64_t lun, key;
	int step;
	int rc;
	struct ini_scsi_req req;
	uint8_t buf[1024];
	struct iovec iov;
};

static void step(void *arg, int rc);

static void closed(void *arg, int rc)
{
	struct ctx *c = arg;

	(void)rc;
	util_reactor_stop(c->r);
}

static void finish(struct ctx *c, int rc)
{
	c->rc = rc;
	if (ini_session_close(c->s, closed, c) < 0)
		util_reactor_stop(c->r);
}

/* PERSISTENT RESERVE OUT with the basic parameter list (SPC-4 6.17.3). */
static int send_prout(struct ctx *c, uint8_t sa, uint8_t type, uint64_t rk, uint64_t sark,
		      bool aptpl)
{
	memset(&c->req, 0, sizeof(c->req));
	memset(c->buf, 0, 24);
	put_be64(c->buf, rk);
	put_be64(c->buf + 8, sark);
	c->buf[20] = aptpl ? 0x01 : 0x00;
	c->req.lun = c->lun;
	c->req.cdb[0] = 0x5f;
	c->req.cdb[1] = sa;
	c->req.cdb[2] = type;
	put_be32(c->req.cdb + 5, 24);
	c->req.dir = INI_DIR_WRITE;
	c->iov.iov_base = c->buf;
	c->iov.iov_len = 24;
	c->req.iov = &c->iov;
	c->req.iovcnt = 1;
	c->req.xfer_len = 24;
	return ini_scsi(c->s, &c->req, step, c);
}

static int send_prin(struct ctx *c, uint8_t sa)
{
	memset(&c->req, 0, sizeof(c->req));
	memset(c->buf, 0, sizeof(c->buf));
	c->req.lun = c->lun;
	c->req.cdb[0] = 0x5e;
	c->req.cdb[1] = sa;
	put_be16(c->req.cdb + 7, sizeof(c->buf));
	c->req.dir = INI_DIR_READ;
	c->iov.iov_base = c->buf;
	c->iov.iov_len = sizeof(c->buf);
	c->req.iov = &c->iov;
	c->req.iovcnt = 1;
	c->req.xfer_len = sizeof(c->buf);
	return ini_scsi(c->s, &c->req, step, c);
}

/* READ KEYS parameter data (SPC-4 6.15.2): generation, length, the keys. */
static void print_keys(const struct ctx *c)
{
	uint32_t len = get_be32(c->buf + 4);

	for (uint32_t i = 0; i + 8 <= len && 8 + i + 8 <= sizeof(c->buf); i += 8)
		printf("0x%016" PRIx64 "\n", get_be64(c->buf + 8 + i));
}

static void print_reservation(const struct ctx *c)
{
	if (get_be32(c->buf + 4) < 16) {
		printf("none\n");
		return;
	}
	printf("reserved 0x%016" PRIx64 " %u\n", get_be64(c->buf + 8), c->buf[21] & 0x0f);
}

/* One step per completion: connect, then the mode's commands, then close. */
static void step(void *arg, int rc)
{
	struct ctx *c = arg;
	int n = c->step++;

	if (rc < 0) {
		fprintf(stderr, "pr_aptpl: step %d failed: %s (status 0x%02x)\n", n, strerror(-rc),
			c->req.status);
		finish(c, rc);
		return;
	}
	switch (c->mode) {
	case MODE_RESERVE:
		if (n == 0)
			rc = send_prout(c, 0x06, 0, 0, c->key, true); /* REGISTER AND IGNORE */
		else if (n == 1)
			rc = send_prout(c, 0x01, 0x01, c->key, 0, false); /* RESERVE WE */
		else
			goto done;
		break;
	case MODE_CLEAR:
		if (n == 0)
			rc = send_prout(c, 0x06, 0, 0, c->key, true);
		else if (n == 1)
			rc = send_prout(c, 0x03, 0, c->key, 0, false); /* CLEAR */
		else
			goto done;
		break;
	case MODE_KEYS:
		if (n == 0) {
			rc = send_prin(c, 0x00); /* READ KEYS */
		} else {
			print_keys(c);
			goto done;
		}
		break;
	default:
		if (n == 0) {
			rc = send_prin(c, 0x01); /* READ RESERVATION */
		} else {
			print_reservation(c);
			goto done;
		}
		break;
	}
	if (rc < 0)
		finish(c, rc);
	return;
done:
	finish(c, 0);
}

int main(int argc, char **argv)
{
	struct ini_config cfg;
	struct ctx c = {0};
	signal(SIGPIPE, SIG_IGN); /* connection losses are handled (iscsi-init/ini.h) */

	if (argc < 4 ||
	    (strcmp(argv[3], "read") != 0 && strcmp(argv[3], "keys") != 0 && argc < 5)) {
		fprintf(stderr, "usage: %s URL INITIATOR reserve|clear KEY | read | keys\n",
			argv[0]);
		return 2;
	}
	ini_config_default(&cfg);
	if (ini_url_parse(argv[1], &cfg, &c.lun) < 0) {
		fprintf(stderr, "pr_aptpl: bad URL %s\n", argv[1]);
		return 2;
	}
	snprintf(cfg.initiator_name, sizeof(cfg.initiator_name), "%s", argv[2]);
	/* a fixed ISID: the same initiator port after the target restarts */
	cfg.isid_qualifier[0] = 0x00;
	cfg.isid_qualifier[1] = 0x70;
	cfg.isid_qualifier[2] = 0x72;
	cfg.recovery_timeout_ms = 0;
	cfg.probe_luns = false;
	if (strcmp(argv[3], "reserve") == 0)
		c.mode = MODE_RESERVE;
	else if (strcmp(argv[3], "clear") == 0)
		c.mode = MODE_CLEAR;
	else if (strcmp(argv[3], "keys") == 0)
		c.mode = MODE_KEYS;
	else
		c.mode = MODE_READ;
	if (c.mode != MODE_READ && c.mode != MODE_KEYS)
		c.key = strtoull(argv[4], NULL, 0);
	c.r = util_reactor_create("pr_aptpl");
	if (!c.r || ini_session_create(c.r, &cfg, &c.s) < 0) {
		fprintf(stderr, "pr_aptpl: cannot set up\n");
		return 1;
	}
	c.rc = -EINPROGRESS;
	if (ini_session_connect(c.s, step, &c) < 0)
		return 1;
	util_reactor_run(c.r);
	ini_session_destroy(c.s);
	util_reactor_destroy(c.r);
	return c.rc == 0 ? 0 : 1;
}
