/*
 * iobench: a small iSCSI load generator on libiscsi's asynchronous API, the
 * client of tests/perf/bench.sh. It keeps QD commands in flight on one
 * session (READ(16)/WRITE(16) into preallocated buffers through the _iov_
 * calls, so no payload is copied or allocated per I/O on our side) for a
 * fixed time and prints one JSON line in the shape `vmio bench --json`
 * prints, so that bench.sh reads either client the same way:
 *   {"rw":"randread","bs":4096,"qd":1,"seconds":5.000,"ios":N,"iops":X,
 *    "mbps":Y,"lat_us":{"mean":Z},"errors":0}
 *
 * A test-only tool: it links libiscsi (Debian libiscsi-dev), which the
 * product never uses, so the Makefile does not build it; bench.sh does.
 *
 * Usage: iobench URL [-m randread|randwrite|read|write|fill] [-b BYTES] [-q QD]
 *                    [-t SECONDS] [-w WARMUP_S] [-s SPAN_BYTES] [-H]
 */
#define UTIL_LOG_TAG "iobench"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define INITIATOR "iqn.2026-11.org.vmengine:iobench"
#define DRAIN_NS  (10ull * 1000000000ull) /* bound on waiting for the last commands */

/* fill: write the span once, sequentially, then stop (prepares a fair medium). */
enum mode { M_RANDREAD, M_RANDWRITE, M_READ, M_WRITE, M_FILL };
static const char *const mode_names[] = {"randread", "randwrite", "read", "write", "fill"};

struct bench;

/* One queue slot: a buffer and the command it has in flight. */
struct slot {
	struct bench *b;
	unsigned char *buf;
	struct scsi_iovec iov;
	uint64_t start_ns;
	bool busy;
};

struct bench {
	struct iscsi_context *iscsi;
	int lun;
	enum mode mode;
	uint32_t bs;	      /* bytes per command */
	uint32_t block_size;  /* of the LUN */
	uint64_t span_blocks; /* LBAs used: [0, span) */
	uint64_t next_lba;    /* sequential modes */
	uint64_t rng;
	unsigned qd;
	struct slot *slots;
	unsigned inflight;
	bool stopping;
	uint64_t measure_from_ns, measure_to_ns;
	/* counted inside the measuring window */
	uint64_t ios, bytes, lat_sum_ns;
	uint64_t errors;
	const char *first_error;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, deterministic (fixed seed) random LBAs. */
static uint64_t rnd(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ull;
}

static uint64_t pick_lba(struct bench *b)
{
	uint64_t blocks = b->bs / b->block_size;
	uint64_t lba;

	if (b->mode == M_RANDREAD || b->mode == M_RANDWRITE)
		return (rnd(b) % (b->span_blocks / blocks)) * blocks;
	lba = b->next_lba;
	b->next_lba += blocks;
	if (b->next_lba + blocks > b->span_blocks) {
		b->next_lba = 0;
		if (b->mode == M_FILL)
			b->stopping = true; /* this is the last command */
	}
	return lba;
}

static int submit(struct slot *s);

static void done_cb(struct iscsi_context *iscsi, int status, void *command_data, void *private_data)
{
	struct slot *s = private_data;
	struct bench *b = s->b;
	struct scsi_task *task = command_data;
	uint64_t t = now_ns();

	s->busy = false;
	b->inflight--;
	if (status != SCSI_STATUS_GOOD) {
		if (b->errors++ == 0)
			b->first_error = iscsi_get_error(iscsi);
	} else if (t >= b->measure_from_ns && t <= b->measure_to_ns) {
		b->ios++;
		b->bytes += b->bs;
		b->lat_sum_ns += t - s->start_ns;
	}
	if (task != NULL)
		scsi_free_scsi_task(task);
	if (!b->stopping && t < b->measure_to_ns)
		(void)submit(s);
	else if (b->mode == M_FILL && b->inflight == 0)
		b->measure_to_ns = t; /* filled: the run ends here */
}

/* Issue the next command of \p s. Returns 0, or -EIO (counted as an error). */
static int submit(struct slot *s)
{
	struct bench *b = s->b;
	uint64_t lba = pick_lba(b);
	struct scsi_task *task;

	s->start_ns = now_ns();
	s->iov.iov_base = s->buf;
	s->iov.iov_len = b->bs;
	if (b->mode == M_RANDREAD || b->mode == M_READ)
		task = iscsi_read16_iov_task(b->iscsi, b->lun, lba, b->bs, (int)b->block_size, 0, 0,
					     0, 0, 0, done_cb, s, &s->iov, 1);
	else
		task =
		    iscsi_write16_iov_task(b->iscsi, b->lun, lba, NULL, b->bs, (int)b->block_size,
					   0, 0, 0, 0, 0, done_cb, s, &s->iov, 1);
	if (task == NULL) {
		if (b->errors++ == 0)
			b->first_error = iscsi_get_error(b->iscsi);
		return -EIO;
	}
	s->busy = true;
	b->inflight++;
	return 0;
}

/* Serve the socket until \p until_ns, or until nothing is in flight when \p drain. */
static int loop(struct bench *b, uint64_t until_ns, bool drain)
{
	while (now_ns() < until_ns && (!drain || b->inflight > 0)) {
		struct pollfd pfd = {
		    .fd = iscsi_get_fd(b->iscsi),
		    .events = (short)iscsi_which_events(b->iscsi),
		};
		int rc = poll(&pfd, 1, 100);

		if (rc < 0 && errno != EINTR) {
			perror("poll");
			return -errno;
		}
		if (iscsi_service(b->iscsi, rc > 0 ? pfd.revents : 0) < 0) {
			fprintf(stderr, "iobench: iscsi_service: %s\n", iscsi_get_error(b->iscsi));
			return -EIO;
		}
		if (!drain && b->inflight == 0)
			break; /* every submit failed, or a fill is complete */
	}
	return 0;
}

static int parse_mode(const char *s, enum mode *m)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*m = (enum mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void usage(void)
{
	fprintf(stderr, "usage: iobench URL [-m randread|randwrite|read|write|fill] [-b BYTES] "
			"[-q QD] [-t SECONDS] [-w WARMUP_S] [-s SPAN_BYTES] [-H]\n"
			"  -H  offer HeaderDigest=CRC32C only\n");
}

/* Log in and read the LUN's capacity. Returns 0 or -EIO (message printed). */
static int connect_lun(struct bench *b, const char *url_s, bool hdigest)
{
	struct iscsi_url *url;
	struct scsi_task *task;
	struct scsi_readcapacity16 *rc16;

	b->iscsi = iscsi_create_context(INITIATOR);
	if (b->iscsi == NULL) {
		fprintf(stderr, "iobench: cannot create an iSCSI context\n");
		return -EIO;
	}
	url = iscsi_parse_full_url(b->iscsi, url_s);
	if (url == NULL) {
		fprintf(stderr, "iobench: %s\n", iscsi_get_error(b->iscsi));
		return -EIO;
	}
	iscsi_set_targetname(b->iscsi, url->target);
	iscsi_set_session_type(b->iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(b->iscsi, hdigest ? ISCSI_HEADER_DIGEST_CRC32C
						  : ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (url->user[0])
		iscsi_set_initiator_username_pwd(b->iscsi, url->user, url->passwd);
	b->lun = url->lun;
	if (iscsi_full_connect_sync(b->iscsi, url->portal, url->lun) != 0) {
		fprintf(stderr, "iobench: login to %s failed: %s\n", url_s,
			iscsi_get_error(b->iscsi));
		iscsi_destroy_url(url);
		return -EIO;
	}
	iscsi_destroy_url(url);
	task = iscsi_readcapacity16_sync(b->iscsi, b->lun);
	if (task == NULL || task->status != SCSI_STATUS_GOOD ||
	    (rc16 = scsi_datain_unmarshall(task)) == NULL) {
		fprintf(stderr, "iobench: READ CAPACITY(16) failed: %s\n",
			iscsi_get_error(b->iscsi));
		if (task != NULL)
			scsi_free_scsi_task(task);
		return -EIO;
	}
	b->block_size = rc16->block_length;
	if (b->span_blocks == 0 || b->span_blocks > rc16->returned_lba + 1)
		b->span_blocks = rc16->returned_lba + 1;
	scsi_free_scsi_task(task);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = {.mode = M_RANDREAD, .bs = 4096, .qd = 1, .rng = 0x9e3779b97f4a7c15ull};
	double secs = 5, warmup = 0.5;
	uint64_t span_bytes = 0, t0;
	bool hdigest = false;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "m:b:q:t:w:s:H")) != -1) {
		switch (c) {
		case 'm':
			if (parse_mode(optarg, &b.mode) < 0) {
				usage();
				return 2;
			}
			break;
		case 'b':
			b.bs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			b.qd = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 't':
			secs = strtod(optarg, NULL);
			break;
		case 'w':
			warmup = strtod(optarg, NULL);
			break;
		case 's':
			span_bytes = strtoull(optarg, NULL, 0);
			break;
		case 'H':
			hdigest = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc - 1 || b.bs == 0 || b.qd == 0 || b.qd > 1024 || secs <= 0 ||
	    warmup < 0) {
		usage();
		return 2;
	}
	if (connect_lun(&b, argv[optind], hdigest) < 0)
		goto out;
	if (span_bytes && span_bytes / b.block_size < b.span_blocks)
		b.span_blocks = span_bytes / b.block_size;
	if (b.bs % b.block_size != 0 || b.span_blocks < b.bs / b.block_size) {
		fprintf(stderr, "iobench: block size %u does not fit the LUN (%u-byte blocks)\n",
			b.bs, b.block_size);
		goto out;
	}
	b.slots = calloc(b.qd, sizeof(*b.slots));
	if (b.slots == NULL)
		goto out;
	for (unsigned i = 0; i < b.qd; i++) {
		b.slots[i].b = &b;
		if (posix_memalign((void **)&b.slots[i].buf, 4096, b.bs) != 0)
			goto out;
		memset(b.slots[i].buf, 0xa5 ^ (int)i, b.bs);
	}

	if (b.mode == M_FILL) {
		warmup = 0;
		secs = 3600; /* the end of the span ends the run */
	}
	t0 = now_ns();
	b.measure_from_ns = t0 + (uint64_t)(warmup * 1e9);
	b.measure_to_ns = b.measure_from_ns + (uint64_t)(secs * 1e9);
	for (unsigned i = 0; i < b.qd; i++)
		(void)submit(&b.slots[i]);
	if (loop(&b, b.measure_to_ns, false) < 0)
		goto out;
	b.stopping = true;
	if (loop(&b, now_ns() + DRAIN_NS, true) < 0 || b.inflight > 0) {
		fprintf(stderr, "iobench: %u command(s) still in flight after the drain\n",
			b.inflight);
		goto out;
	}
	secs = (double)(b.measure_to_ns - b.measure_from_ns) / 1e9;
	if (b.errors)
		fprintf(stderr, "iobench: %" PRIu64 " error(s), first: %s\n", b.errors,
			b.first_error ? b.first_error : "?");
	printf("{\"rw\":\"%s\",\"bs\":%u,\"qd\":%u,\"seconds\":%.3f,\"ios\":%" PRIu64
	       ",\"iops\":%.1f,\"mbps\":%.2f,\"lat_us\":{\"mean\":%.1f},\"errors\":%" PRIu64 "}\n",
	       mode_names[b.mode], b.bs, b.qd, secs, b.ios, (double)b.ios / secs,
	       (double)b.bytes / secs / 1e6,
	       b.ios ? (double)b.lat_sum_ns / (double)b.ios / 1e3 : 0.0, b.errors);
	rc = b.errors || b.ios == 0 ? 1 : 0;
	iscsi_logout_sync(b.iscsi);
out:
	if (b.slots != NULL) {
		for (unsigned i = 0; i < b.qd; i++)
			free(b.slots[i].buf);
		free(b.slots);
	}
	if (b.iscsi != NULL)
		iscsi_destroy_context(b.iscsi);
	return rc;
}
