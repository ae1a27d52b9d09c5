/*
 * resize_probe: one host session held across an online resize (issue 6),
 * on libiscsi (a client that shares no code with the engine, and that hands
 * unit attentions to the caller instead of retrying them).
 *
 * Usage: resize_probe URL GO_FILE [EXPECT_BYTES]
 *   1. logs in to URL and prints "before BLOCKS BLOCK_SIZE" (READ CAPACITY 16);
 *   2. prints "ready" and keeps the session serviced (NOP-In answered) until
 *      GO_FILE exists (the test resizes the volume meanwhile);
 *   3. on the same session: TEST UNIT READY must get CHECK CONDITION, UNIT
 *      ATTENTION, CAPACITY DATA HAS CHANGED (SBC-3 4.5, 2A/09), printed as
 *      "ua 6/2a09"; the next one must be GOOD (a unit attention is reported
 *      once);
 *   4. READ CAPACITY 16 again: "after BLOCKS" (BLOCKS x BLOCK_SIZE must be
 *      EXPECT_BYTES when given).
 * Exits 0 when all held, 1 otherwise (the reason on stderr). A session that
 * was dropped and logged in again would show no unit attention: the target
 * raises it on the nexus that existed at the resize.
 * Built by tests/cluster/datapath.sh with cc ... -liscsi (Debian libiscsi-dev).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define WAIT_MS 60000 /* bound on the wait for GO_FILE */

static int fail(struct iscsi_context *iscsi, const char *what)
{
	fprintf(stderr, "resize_probe: %s: %s\n", what, iscsi ? iscsi_get_error(iscsi) : "");
	return 1;
}

/* READ CAPACITY 16: blocks (last LBA + 1) and block size; 0 or -1. */
static int capacity(struct iscsi_context *iscsi, int lun, uint64_t *blocks, uint32_t *bs)
{
	struct scsi_task *t = iscsi_readcapacity16_sync(iscsi, lun);
	struct scsi_readcapacity16 *rc16;
	int rc = -1;

	if (!t)
		return -1;
	if (t->status == SCSI_STATUS_GOOD && (rc16 = scsi_datain_unmarshall(t)) != NULL) {
		*blocks = rc16->returned_lba + 1;
		*bs = rc16->block_length;
		rc = 0;
	} else {
		fprintf(stderr, "resize_probe: READ CAPACITY 16: status %d sense %x/%04x\n",
			t->status, t->sense.key, t->sense.ascq);
	}
	scsi_free_scsi_task(t);
	return rc;
}

/* Keep the session alive (answer NOP-Ins) until \p path exists. */
static int wait_for(struct iscsi_context *iscsi, const char *path)
{
	for (int waited = 0; waited < WAIT_MS; waited += 50) {
		struct pollfd pfd = {.fd = iscsi_get_fd(iscsi),
				     .events = iscsi_which_events(iscsi)};

		if (access(path, F_OK) == 0)
			return 0;
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			return -1;
		if (pfd.revents && iscsi_service(iscsi, pfd.revents) < 0)
			return -1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct iscsi_context *iscsi;
	struct iscsi_url *url;
	struct scsi_task *t;
	uint64_t before = 0, after = 0, expect = 0;
	uint32_t bs = 0;
	int ua = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: resize_probe URL GO_FILE [EXPECT_BYTES]\n");
		return 2;
	}
	if (argc > 3)
		expect = strtoull(argv[3], NULL, 0);
	iscsi = iscsi_create_context("iqn.2026-11.org.vmengine:resize-probe");
	if (!iscsi)
		return fail(NULL, "no context");
	url = iscsi_parse_full_url(iscsi, argv[1]);
	if (!url)
		return fail(iscsi, "bad URL");
	iscsi_set_targetname(iscsi, url->target);
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (iscsi_full_connect_sync(iscsi, url->portal, url->lun) != 0)
		return fail(iscsi, "login");
	/* libiscsi's login already swallowed the unit attentions of a new nexus. */
	if (capacity(iscsi, url->lun, &before, &bs) < 0)
		return fail(iscsi, "first READ CAPACITY 16");
	printf("before %" PRIu64 " %" PRIu32 "\nready\n", before, bs);
	fflush(stdout);
	if (wait_for(iscsi, argv[2]) < 0)
		return fail(iscsi, "session lost or no go while waiting");

	t = iscsi_testunitready_sync(iscsi, url->lun);
	if (!t)
		return fail(iscsi, "TEST UNIT READY");
	if (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION &&
	    t->sense.ascq == 0x2a09)
		ua = 1;
	printf("ua %x/%04x\n", t->status == SCSI_STATUS_CHECK_CONDITION ? t->sense.key : 0,
	       t->status == SCSI_STATUS_CHECK_CONDITION ? t->sense.ascq : 0);
	scsi_free_scsi_task(t);
	t = iscsi_testunitready_sync(iscsi, url->lun);
	if (!t || t->status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "resize_probe: second TEST UNIT READY not GOOD\n");
		ua = 0;
	}
	if (t)
		scsi_free_scsi_task(t);
	if (capacity(iscsi, url->lun, &after, &bs) < 0)
		return fail(iscsi, "second READ CAPACITY 16");
	printf("after %" PRIu64 "\n", after);
	iscsi_logout_sync(iscsi);
	iscsi_destroy_url(url);
	iscsi_destroy_context(iscsi);
	if (!ua) {
		fprintf(stderr, "resize_probe: no CAPACITY DATA HAS CHANGED unit attention\n");
		return 1;
	}
	if (after <= before || (expect && after * bs != expect)) {
		fprintf(stderr,
			"resize_probe: capacity %" PRIu64 " -> %" PRIu64 " blocks of %" PRIu32
			" (expected %" PRIu64 " bytes)\n",
			before, after, bs, expect);
		return 1;
	}
	return 0;
}
