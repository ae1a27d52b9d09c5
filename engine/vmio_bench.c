/*
 * vmio bench: a fixed queue depth of reads and/or writes for a fixed time,
 * reporting IOPS, MB/s and the latency distribution. Each slot owns its
 * buffer; nothing is allocated per I/O.
 */
#define UTIL_LOG_TAG "vmio-bench"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vmio.h"

enum rw_mode {
	RW_RANDREAD,
	RW_RANDWRITE,
	RW_READ,
	RW_WRITE,
	RW_MIX,
};
static const char *const rw_names[] = {"randread", "randwrite", "read", "write", "mix"};

struct bench;

struct slot {
	struct bench *b;
	void *buf;
	struct iovec iov;
	uint64_t start_ns;
	bool write;
};

struct bench {
	struct vmio *v;
	enum rw_mode rw;
	uint32_t bs;
	unsigned qd;
	uint64_t time_ms;
	uint64_t units; /* I/Os of bs that fit the region */
	unsigned mix_read;
	uint64_t seq_next;
	uint64_t rng;
	uint64_t end_ns;
	unsigned inflight;
	bool stopping;
	uint64_t ios, bytes, errors;
	int first_error;
	struct vmio_hist hist;
	struct slot *slots;
};

static uint64_t rng_next(uint64_t *x)
{
	/* xorshift64*: fast, and good enough to spread I/O over a disk. */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

static void slot_submit(struct slot *sl);

static void slot_done(void *arg, int rc)
{
	struct slot *sl = arg;
	struct bench *b = sl->b;
	uint64_t now = util_now_ns();

	b->inflight--;
	vmio_note_completion(b->v, now);
	if (rc < 0) {
		b->errors++;
		if (!b->first_error)
			b->first_error = rc;
		b->stopping = true; /* the library already retried what it could */
	} else {
		b->ios++;
		b->bytes += b->bs;
		vmio_hist_add(&b->hist, now - sl->start_ns);
	}
	if (now >= b->end_ns)
		b->stopping = true;
	if (!b->stopping)
		slot_submit(sl);
	if (b->inflight == 0)
		vmio_finish(b->v, b->first_error);
}

static void slot_submit(struct slot *sl)
{
	struct bench *b = sl->b;
	struct vmio *v = b->v;
	uint64_t unit;
	uint32_t nblocks = b->bs / v->block_size;
	int rc;

	switch (b->rw) {
	case RW_READ:
	case RW_WRITE:
		unit = b->seq_next++;
		if (b->seq_next >= b->units)
			b->seq_next = 0;
		sl->write = b->rw == RW_WRITE;
		break;
	case RW_MIX:
		unit = rng_next(&b->rng) % b->units;
		sl->write = rng_next(&b->rng) % 100 >= b->mix_read;
		break;
	default:
		unit = rng_next(&b->rng) % b->units;
		sl->write = b->rw == RW_RANDWRITE;
		break;
	}
	sl->start_ns = util_now_ns();
	if (sl->write)
		rc = ini_write(v->s, v->lun, unit * nblocks, nblocks, &sl->iov, 1, slot_done, sl);
	else
		rc = ini_read(v->s, v->lun, unit * nblocks, nblocks, &sl->iov, 1, slot_done, sl);
	if (rc < 0) {
		b->errors++;
		if (!b->first_error)
			b->first_error = rc;
		b->stopping = true;
		if (b->inflight == 0)
			vmio_finish(v, rc);
		return;
	}
	b->inflight++;
}

static void report(const struct bench *b, double secs)
{
	struct ini_stats st;
	double iops = secs > 0 ? (double)b->ios / secs : 0;
	double mbps = secs > 0 ? (double)b->bytes / secs / 1e6 : 0;
	double mean = b->hist.count ? (double)b->hist.sum_ns / (double)b->hist.count / 1e3 : 0;
	double p50 = (double)vmio_hist_quantile(&b->hist, 0.50) / 1e3;
	double p99 = (double)vmio_hist_quantile(&b->hist, 0.99) / 1e3;
	double p999 = (double)vmio_hist_quantile(&b->hist, 0.999) / 1e3;
	double pause = (double)b->v->max_pause_ns / 1e6;

	ini_session_stats(b->v->s, &st);
	if (b->v->json) {
		printf("{\"rw\":\"%s\",\"bs\":%u,\"qd\":%u,\"seconds\":%.3f,\"ios\":%llu,"
		       "\"iops\":%.1f,\"mbps\":%.2f,\"lat_us\":{\"mean\":%.1f,\"p50\":%.1f,"
		       "\"p99\":%.1f,\"p99.9\":%.1f},\"errors\":%llu,\"max_pause_ms\":%.1f,"
		       "\"reconnects\":%llu}\n",
		       rw_names[b->rw], b->bs, b->qd, secs, (unsigned long long)b->ios, iops, mbps,
		       mean, p50, p99, p999, (unsigned long long)b->errors, pause,
		       (unsigned long long)st.reconnects);
		return;
	}
	printf("vmio bench %s bs=%u qd=%u: %.1f s, %llu I/Os, %llu errors\n", rw_names[b->rw],
	       b->bs, b->qd, secs, (unsigned long long)b->ios, (unsigned long long)b->errors);
	printf("%12s %10s %10s %10s %10s %10s\n", "IOPS", "MB/s", "mean us", "p50 us", "p99 us",
	       "p99.9 us");
	printf("%12.1f %10.2f %10.1f %10.1f %10.1f %10.1f\n", iops, mbps, mean, p50, p99, p999);
	printf("longest I/O pause %.1f ms, reconnects %llu\n", pause,
	       (unsigned long long)st.reconnects);
}

int vmio_bench_main(struct vmio *v, int argc, char **argv)
{
	struct bench b = {.v = v, .rw = RW_RANDREAD, .bs = 4096, .qd = 32, .time_ms = 10000};
	uint64_t size = 0, n;
	const char *url = NULL;
	int rc;

	b.mix_read = 70;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] != '-') {
			if (url)
				goto usage;
			url = a;
			continue;
		}
		if (!val)
			goto usage;
		i++;
		if (strcmp(a, "--rw") == 0) {
			unsigned k;
			for (k = 0; k < UTIL_ARRAY_SIZE(rw_names); k++)
				if (strcmp(val, rw_names[k]) == 0)
					break;
			if (k == UTIL_ARRAY_SIZE(rw_names))
				goto usage;
			b.rw = (enum rw_mode)k;
		} else if (strcmp(a, "--bs") == 0) {
			if (vmio_parse_size(val, &n) < 0 || n < 512 || n > (16u << 20))
				goto usage;
			b.bs = (uint32_t)n;
		} else if (strcmp(a, "--qd") == 0) {
			if (vmio_parse_size(val, &n) < 0 || n < 1 || n > INI_MAX_TASKS)
				goto usage;
			b.qd = (unsigned)n;
		} else if (strcmp(a, "--time") == 0) {
			if (vmio_parse_time(val, &b.time_ms) < 0 || b.time_ms == 0)
				goto usage;
		} else if (strcmp(a, "--size") == 0) {
			if (vmio_parse_size(val, &size) < 0)
				goto usage;
		} else if (strcmp(a, "--mix-read") == 0) {
			if (vmio_parse_size(val, &n) < 0 || n > 100)
				goto usage;
			b.mix_read = (unsigned)n;
		} else {
			goto usage;
		}
	}
	if (!url)
		goto usage;
	rc = vmio_connect(v, url);
	if (rc < 0)
		return VMIO_EXIT_FAIL;
	if (b.bs % v->block_size) {
		fprintf(stderr, "vmio: --bs %u is not a multiple of the block size %u\n", b.bs,
			v->block_size);
		return VMIO_EXIT_USAGE;
	}
	if (!size || size > v->blocks * v->block_size)
		size = v->blocks * v->block_size;
	b.units = size / b.bs;
	if (b.units == 0) {
		fprintf(stderr, "vmio: the LUN is smaller than one I/O\n");
		return VMIO_EXIT_USAGE;
	}
	b.slots = calloc(b.qd, sizeof(*b.slots));
	if (!b.slots)
		return VMIO_EXIT_FAIL;
	b.rng = util_now_ns() | 1;
	for (unsigned i = 0; i < b.qd; i++) {
		struct slot *sl = &b.slots[i];
		sl->b = &b;
		if (posix_memalign(&sl->buf, 4096, b.bs))
			return VMIO_EXIT_FAIL;
		for (uint32_t k = 0; k < b.bs; k += 8) {
			uint64_t x = rng_next(&b.rng);
			memcpy((uint8_t *)sl->buf + k, &x, 8);
		}
		sl->iov = (struct iovec){sl->buf, b.bs};
	}
	uint64_t start = util_now_ns();
	b.end_ns = start + b.time_ms * 1000000ull;
	v->last_done_ns = start;
	for (unsigned i = 0; i < b.qd && !b.stopping; i++)
		slot_submit(&b.slots[i]);
	rc = b.inflight ? vmio_run(v) : b.first_error;
	double secs = (double)(util_now_ns() - start) / 1e9;
	report(&b, secs);
	if (rc < 0 || b.errors)
		fprintf(stderr, "vmio: I/O error: %s\n", strerror(-(rc ? rc : b.first_error)));
	for (unsigned i = 0; i < b.qd; i++)
		free(b.slots[i].buf);
	free(b.slots);
	return rc < 0 || b.errors ? VMIO_EXIT_FAIL : 0;
usage:
	fprintf(stderr, "vmio bench: bad arguments (see vmio --help)\n");
	return VMIO_EXIT_USAGE;
}
