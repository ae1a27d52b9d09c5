/*
 * vmio verify: write self-describing blocks, read them back, and keep a
 * journal of acknowledged writes that a later `vmio verify --check` replays
 * against the disk to find any acknowledged write that was lost or torn.
 *
 * Block format: a unit of --bs bytes is written whole; each of its 512-byte
 * sectors starts with {magic, unit, generation, sector index, CRC32C of the
 * sector} and is filled with a pattern derived from those. Generations are
 * unique and increasing across runs (seeded from the wall clock, and above
 * every generation of an existing journal), so a sector proves which write put
 * it there.
 *
 * Journal: a 512-byte header, then 16-byte records {unit, generation}, one
 * per acknowledged write, appended and fdatasync'ed in batches. A record is
 * only written after the target acknowledged the write, so a crash of vmio
 * can only lose records (never claim a write that was not acknowledged).
 *
 * Judging a unit against the last acknowledged generation G of the journal:
 * every sector must be intact (magic, unit, CRC) with a generation >= G. A
 * generation above G is a later write that was in flight (allowed, even
 * partially: SCSI promises no atomicity for an unacknowledged write). Sectors
 * older than G: all of them = LOST, some = TORN; a bad sector = CORRUPT.
 * vmio never has two writes to one unit in flight, so the order of
 * acknowledgements is the order on disk.
 */
#define UTIL_LOG_TAG "vmio-verify"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/vmio.h"

#define SECTOR	   512
#define SEC_MAGIC  0x564d494f424c4b31ull /* "VMIOBLK1" */
#define JRN_MAGIC  "VMIOJRN1"
#define JRN_HDR	   512
#define JRN_BATCH  256
#define REPORT_MAX 20

struct sec_hdr {
	uint64_t magic;
	uint64_t unit;
	uint64_t gen;
	uint32_t sector;
	uint32_t crc;
};

struct jrn_hdr {
	char magic[8];
	uint32_t version;
	uint32_t unit_bytes;
	uint64_t units;
	uint64_t lun;
	char target[256];
};

struct jrn_rec {
	uint64_t unit;
	uint64_t gen;
};

enum verdict {
	V_OK,
	V_LOST,
	V_TORN,
	V_CORRUPT,
};
static const char *const verdict_names[] = {"ok", "lost", "torn", "corrupt"};

struct verify;

struct vslot {
	struct verify *vf;
	void *buf;
	struct iovec iov;
	uint64_t unit;
	uint64_t gen;
	bool write;
	bool active; /* an I/O of this slot is in flight */
};

struct verify {
	struct vmio *v;
	uint32_t bs;
	unsigned qd;
	uint64_t units;
	uint64_t writes; /* to do; fill: every unit once */
	bool fill;
	uint64_t issued;    /* writes issued */
	uint64_t next_read; /* read-back cursor over units */
	bool reading;
	bool check_mode;
	uint64_t *gens; /* last acknowledged generation per unit (0: none) */
	uint8_t *busy;	/* a write to the unit is in flight */
	uint64_t gen_next;
	uint64_t rng;
	unsigned inflight;
	bool stopping;
	int first_error;
	uint64_t counts[4];
	uint64_t ios_ok;
	unsigned reported;
	/* journal */
	int jfd;
	struct jrn_rec jbuf[JRN_BATCH];
	unsigned jn;
	uint64_t drops; /* --test-drop-writes */
	struct vslot *slots;
};

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/* ---- block format ---- */

static void fill_unit(uint8_t *buf, uint32_t bs, uint64_t unit, uint64_t gen)
{
	for (uint32_t s = 0; s < bs / SECTOR; s++) {
		uint8_t *p = buf + (size_t)s * SECTOR;
		struct sec_hdr h = {SEC_MAGIC, unit, gen, s, 0};
		uint64_t x = (unit * 0x9e3779b97f4a7c15ull) ^ gen ^ ((uint64_t)s << 48) ^ 1;

		for (uint32_t k = sizeof(h); k < SECTOR; k += 8) {
			uint64_t r = rng_next(&x);
			memcpy(p + k, &r, 8);
		}
		memcpy(p, &h, sizeof(h));
		h.crc = util_crc32c(p, SECTOR);
		memcpy(p, &h, sizeof(h));
	}
}

/* Judge one unit read back against the acknowledged generation \p want. */
static enum verdict judge(const uint8_t *buf, uint32_t bs, uint64_t unit, uint64_t want, bool exact,
			  char *why, size_t whylen)
{
	unsigned old = 0, bad = 0, zero = 0, n = bs / SECTOR;
	uint64_t seen_old = 0, seen_new = 0;

	for (unsigned s = 0; s < n; s++) {
		const uint8_t *p = buf + (size_t)s * SECTOR;
		uint8_t tmp[SECTOR];
		struct sec_hdr h;

		memcpy(&h, p, sizeof(h));
		memcpy(tmp, p, SECTOR);
		memset(tmp + offsetof(struct sec_hdr, crc), 0, sizeof(h.crc));
		if (h.magic != SEC_MAGIC || h.unit != unit || h.sector != s ||
		    util_crc32c(tmp, SECTOR) != h.crc) {
			bool allzero = true;
			for (unsigned k = 0; k < SECTOR && allzero; k++)
				allzero = p[k] == 0;
			zero += allzero;
			bad++;
			continue;
		}
		if (h.gen < want) {
			old++;
			seen_old = h.gen;
		} else if (exact && h.gen != want) {
			bad++;
		} else {
			seen_new = h.gen;
		}
	}
	if (bad == n && zero == n) {
		snprintf(why, whylen, "never written (zeros), acknowledged generation %llu",
			 (unsigned long long)want);
		return V_LOST;
	}
	if (bad) {
		snprintf(why, whylen, "%u of %u sectors fail their checksum, LBA or generation",
			 bad, n);
		return V_CORRUPT;
	}
	if (old == n) {
		snprintf(why, whylen, "holds generation %llu, acknowledged %llu",
			 (unsigned long long)seen_old, (unsigned long long)want);
		return V_LOST;
	}
	if (old) {
		snprintf(why, whylen, "%u of %u sectors hold generation %llu, others %llu", old, n,
			 (unsigned long long)seen_old, (unsigned long long)seen_new);
		return V_TORN;
	}
	return V_OK;
}

/* ---- journal ---- */

static int jrn_flush(struct verify *vf)
{
	size_t len = vf->jn * sizeof(struct jrn_rec);

	if (vf->jfd < 0 || vf->jn == 0)
		return 0;
	if (write(vf->jfd, vf->jbuf, len) != (ssize_t)len || fdatasync(vf->jfd) < 0) {
		fprintf(stderr, "vmio: journal write: %s\n", strerror(errno));
		return -EIO;
	}
	vf->jn = 0;
	return 0;
}

static int jrn_add(struct verify *vf, uint64_t unit, uint64_t gen)
{
	if (vf->jfd < 0)
		return 0;
	vf->jbuf[vf->jn++] = (struct jrn_rec){unit, gen};
	/* One fdatasync per batch; a partial batch goes at the end or the next wait. */
	if (vf->jn == JRN_BATCH || vf->inflight <= 1)
		return jrn_flush(vf);
	return 0;
}

/*
 * Open (or create) the journal. An existing one must describe the same
 * geometry; its generations are loaded (check) and continued (run).
 */
static int jrn_open(struct verify *vf, const char *path, bool create)
{
	struct jrn_hdr h;
	struct jrn_rec r;
	struct stat st;
	char hdr[JRN_HDR] = {0};

	vf->jfd = open(
	    path, create ? O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0644);
	if (vf->jfd < 0) {
		fprintf(stderr, "vmio: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (fstat(vf->jfd, &st) < 0)
		return -errno;
	if (st.st_size == 0 && create) {
		memset(&h, 0, sizeof(h));
		memcpy(h.magic, JRN_MAGIC, 8);
		h.version = 1;
		h.unit_bytes = vf->bs;
		h.units = vf->units;
		h.lun = vf->v->lun;
		snprintf(h.target, sizeof(h.target), "%s", vf->v->cfg.target_name);
		memcpy(hdr, &h, sizeof(h));
		if (write(vf->jfd, hdr, JRN_HDR) != JRN_HDR || fsync(vf->jfd) < 0)
			return -EIO;
		return 0;
	}
	if (pread(vf->jfd, hdr, JRN_HDR, 0) != JRN_HDR)
		goto bad;
	memcpy(&h, hdr, sizeof(h));
	if (memcmp(h.magic, JRN_MAGIC, 8) != 0 || h.version != 1)
		goto bad;
	if (vf->check_mode) {
		vf->bs = h.unit_bytes;
		vf->units = h.units;
	} else if (h.unit_bytes != vf->bs || h.units != vf->units) {
		fprintf(stderr, "vmio: %s is for %llu units of %u bytes, not %llu of %u\n", path,
			(unsigned long long)h.units, h.unit_bytes, (unsigned long long)vf->units,
			vf->bs);
		return -EINVAL;
	}
	vf->gens = calloc(vf->units, sizeof(*vf->gens));
	if (!vf->gens)
		return -ENOMEM;
	/* A torn last record (vmio killed mid-append) is ignored. */
	for (off_t off = JRN_HDR; pread(vf->jfd, &r, sizeof(r), off) == sizeof(r);
	     off += (off_t)sizeof(r)) {
		if (r.unit >= vf->units)
			goto bad;
		if (r.gen > vf->gens[r.unit])
			vf->gens[r.unit] = r.gen;
		if (r.gen >= vf->gen_next)
			vf->gen_next = r.gen + 1;
	}
	return 0;
bad:
	fprintf(stderr, "vmio: %s is not a vmio journal\n", path);
	return -EINVAL;
}

/* ---- I/O ---- */

static void pump(struct verify *vf);

static void report_unit(struct verify *vf, uint64_t unit, enum verdict vd, const char *why)
{
	vf->counts[vd]++;
	if (vd != V_OK && vf->reported++ < REPORT_MAX)
		fprintf(stderr, "vmio: unit %llu (LBA %llu): %s: %s\n", (unsigned long long)unit,
			(unsigned long long)(unit * (vf->bs / vf->v->block_size)),
			verdict_names[vd], why);
}

static void vslot_done(void *arg, int rc)
{
	struct vslot *sl = arg;
	struct verify *vf = sl->vf;
	char why[160];

	sl->active = false;
	vf->inflight--;
	vmio_note_completion(vf->v, util_now_ns());
	if (rc < 0) {
		if (!vf->first_error)
			vf->first_error = rc;
		fprintf(stderr, "vmio: %s of unit %llu failed: %s\n", sl->write ? "write" : "read",
			(unsigned long long)sl->unit, strerror(-rc));
		vf->stopping = true;
	} else if (sl->write) {
		vf->ios_ok++;
		vf->gens[sl->unit] = sl->gen;
		vf->busy[sl->unit] = 0;
		if (jrn_add(vf, sl->unit, sl->gen) < 0) {
			vf->first_error = -EIO;
			vf->stopping = true;
		}
	} else {
		vf->ios_ok++;
		enum verdict vd = judge(sl->buf, vf->bs, sl->unit, vf->gens[sl->unit],
					!vf->check_mode, why, sizeof(why));
		report_unit(vf, sl->unit, vd, why);
	}
	if (!vf->stopping)
		pump(vf);
	if (vf->inflight == 0) {
		if (jrn_flush(vf) < 0 && !vf->first_error)
			vf->first_error = -EIO;
		vmio_finish(vf->v, vf->first_error);
	}
}

/* Pick the next write: a unit with no write in flight. */
static bool pick_write(struct verify *vf, uint64_t *unit)
{
	if (vf->issued >= vf->writes)
		return false;
	if (vf->fill) {
		*unit = vf->issued;
	} else {
		uint64_t u = rng_next(&vf->rng) % vf->units;
		for (uint64_t k = 0; vf->busy[u]; k++) {
			if (k == vf->units)
				return false;
			u = u + 1 == vf->units ? 0 : u + 1;
		}
		*unit = u;
	}
	vf->issued++;
	return true;
}

/*
 * Test hook (--test-drop-writes K): journal acknowledgements of K writes that
 * were never sent, which is what a target losing acknowledged writes looks
 * like to the checker; the read phase and --check must report them.
 */
static void drop_writes(struct verify *vf)
{
	for (uint64_t k = 0; k < vf->drops; k++) {
		uint64_t unit = rng_next(&vf->rng) % vf->units;
		uint64_t gen = vf->gen_next++;

		vf->gens[unit] = gen;
		if (jrn_add(vf, unit, gen) < 0 || jrn_flush(vf) < 0)
			vf->first_error = -EIO;
		fprintf(stderr,
			"vmio: test: acknowledged generation %llu of unit %llu without "
			"writing it\n",
			(unsigned long long)gen, (unsigned long long)unit);
	}
	vf->drops = 0;
}

/* Start the next I/O of an idle slot, if there is one to do. */
static void vslot_next(struct vslot *sl)
{
	struct verify *vf = sl->vf;
	struct vmio *v = vf->v;
	uint32_t nblocks = vf->bs / v->block_size;
	uint64_t unit;
	int rc;

	if (!vf->reading) {
		if (pick_write(vf, &unit)) {
			sl->write = true;
			sl->unit = unit;
			sl->gen = vf->gen_next++;
			vf->busy[unit] = 1;
			fill_unit(sl->buf, vf->bs, unit, sl->gen);
			rc = ini_write(v->s, v->lun, unit * nblocks, nblocks, &sl->iov, 1,
				       vslot_done, sl);
			goto submitted;
		}
		/* Reads start once every write was acknowledged. */
		if (vf->inflight)
			return;
		if (jrn_flush(vf) < 0)
			vf->first_error = -EIO;
		drop_writes(vf);
		vf->reading = true;
	}
	while (vf->next_read < vf->units && !vf->gens[vf->next_read])
		vf->next_read++;
	if (vf->next_read >= vf->units)
		return;
	sl->write = false;
	sl->unit = vf->next_read++;
	rc = ini_read(v->s, v->lun, sl->unit * nblocks, nblocks, &sl->iov, 1, vslot_done, sl);
submitted:
	if (rc < 0) {
		fprintf(stderr, "vmio: submit: %s\n", strerror(-rc));
		if (!vf->first_error)
			vf->first_error = rc;
		vf->stopping = true;
		return;
	}
	sl->active = true;
	vf->inflight++;
}

static void pump(struct verify *vf)
{
	for (unsigned i = 0; i < vf->qd && !vf->stopping; i++) {
		if (!vf->slots[i].active)
			vslot_next(&vf->slots[i]);
	}
}

static int parse_args(struct verify *vf, int argc, char **argv, const char **url,
		      const char **journal)
{
	uint64_t n, size = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] != '-') {
			if (*url)
				return -EINVAL;
			*url = a;
		} else if (strcmp(a, "--fill") == 0) {
			vf->fill = true;
		} else if (!val) {
			return -EINVAL;
		} else if (strcmp(a, "--writes") == 0) {
			if (vmio_parse_size(val, &vf->writes) < 0)
				return -EINVAL;
			i++;
		} else if (strcmp(a, "--qd") == 0) {
			if (vmio_parse_size(val, &n) < 0 || n < 1 || n > INI_MAX_TASKS)
				return -EINVAL;
			vf->qd = (unsigned)n;
			i++;
		} else if (strcmp(a, "--bs") == 0) {
			if (vmio_parse_size(val, &n) < 0 || n < SECTOR || n % SECTOR ||
			    n > (16u << 20))
				return -EINVAL;
			vf->bs = (uint32_t)n;
			i++;
		} else if (strcmp(a, "--size") == 0) {
			if (vmio_parse_size(val, &size) < 0)
				return -EINVAL;
			vf->units = size; /* converted once the block size is known */
			i++;
		} else if (strcmp(a, "--journal") == 0) {
			*journal = val;
			i++;
		} else if (strcmp(a, "--check") == 0) {
			*journal = val;
			vf->check_mode = true;
			i++;
		} else if (strcmp(a, "--test-drop-writes") == 0) {
			if (vmio_parse_size(val, &vf->drops) < 0)
				return -EINVAL;
			i++;
		} else {
			return -EINVAL;
		}
	}
	if (!*url || (vf->check_mode && (vf->writes || vf->fill || vf->drops)))
		return -EINVAL;
	if (!vf->check_mode && !vf->fill && !vf->writes)
		return -EINVAL;
	return 0;
}

int vmio_verify_main(struct vmio *v, int argc, char **argv)
{
	struct verify vf = {.v = v, .bs = 4096, .qd = 16, .jfd = -1};
	const char *url = NULL, *journal = NULL;
	uint64_t size;
	int rc;

	if (parse_args(&vf, argc, argv, &url, &journal) < 0) {
		fprintf(stderr, "vmio verify: bad arguments (see vmio --help)\n");
		return VMIO_EXIT_USAGE;
	}
	size = vf.units;
	vf.units = 0;
	if (vmio_connect(v, url) < 0)
		return VMIO_EXIT_FAIL;
	if (!vf.check_mode) {
		if (vf.bs % v->block_size) {
			fprintf(stderr, "vmio: --bs must be a multiple of the block size %u\n",
				v->block_size);
			return VMIO_EXIT_USAGE;
		}
		if (!size || size > v->blocks * v->block_size)
			size = v->blocks * v->block_size;
		vf.units = size / vf.bs;
		if (!vf.units)
			return VMIO_EXIT_USAGE;
	}
	/*
	 * Generations above any earlier run's: the wall clock, seconds in the
	 * high 32 bits and microseconds times 4096 below. A run that starts
	 * even 1 us after another begins 4096 generations above it, so a run
	 * could only be overtaken by one that made over 4096 writes per
	 * microsecond of head start; with plain microseconds a big run just
	 * finished could leave blocks that look newer than the next run's.
	 */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	vf.gen_next = ((uint64_t)ts.tv_sec << 32) | ((uint64_t)(ts.tv_nsec / 1000) << 12);
	if (journal) {
		rc = jrn_open(&vf, journal, !vf.check_mode);
		if (rc < 0)
			return VMIO_EXIT_FAIL;
	}
	if (vf.check_mode && vf.bs % v->block_size)
		return VMIO_EXIT_FAIL;
	if (!vf.gens)
		vf.gens = calloc(vf.units, sizeof(*vf.gens));
	vf.busy = calloc(vf.units, 1);
	vf.slots = calloc(vf.qd, sizeof(*vf.slots));
	if (!vf.gens || !vf.busy || !vf.slots)
		return VMIO_EXIT_FAIL;
	if (vf.fill)
		vf.writes = vf.units;
	/* In a run, only this run's writes are read back. */
	if (!vf.check_mode)
		memset(vf.gens, 0, vf.units * sizeof(*vf.gens));
	vf.rng = util_now_ns() | 1;
	for (unsigned i = 0; i < vf.qd; i++) {
		vf.slots[i].vf = &vf;
		if (posix_memalign(&vf.slots[i].buf, 4096, vf.bs))
			return VMIO_EXIT_FAIL;
		vf.slots[i].iov = (struct iovec){vf.slots[i].buf, vf.bs};
	}
	uint64_t start = util_now_ns();
	v->last_done_ns = start;
	if (vf.check_mode)
		vf.reading = true;
	pump(&vf);
	if (vf.inflight)
		vmio_run(v);
	double secs = (double)(util_now_ns() - start) / 1e9;
	struct ini_stats st;
	ini_session_stats(v->s, &st);
	uint64_t problems = vf.counts[V_LOST] + vf.counts[V_TORN] + vf.counts[V_CORRUPT];
	if (v->json) {
		printf(
		    "{\"mode\":\"%s\",\"units\":%llu,\"unit_bytes\":%u,\"writes\":%llu,"
		    "\"checked\":%llu,\"ok\":%llu,\"lost\":%llu,\"torn\":%llu,\"corrupt\":%llu,"
		    "\"errors\":%d,\"seconds\":%.3f,\"max_pause_ms\":%.1f,\"reconnects\":%llu}\n",
		    vf.check_mode ? "check" : "verify", (unsigned long long)vf.units, vf.bs,
		    (unsigned long long)(vf.check_mode ? 0 : vf.issued),
		    (unsigned long long)(vf.counts[0] + problems),
		    (unsigned long long)vf.counts[V_OK], (unsigned long long)vf.counts[V_LOST],
		    (unsigned long long)vf.counts[V_TORN], (unsigned long long)vf.counts[V_CORRUPT],
		    vf.first_error ? 1 : 0, secs, (double)v->max_pause_ns / 1e6,
		    (unsigned long long)st.reconnects);
	} else {
		printf("vmio verify%s: %llu writes, %llu units checked: %llu ok, %llu lost, %llu "
		       "torn, %llu corrupt (%.1f s)\n",
		       vf.check_mode ? " --check" : "",
		       (unsigned long long)(vf.check_mode ? 0 : vf.issued),
		       (unsigned long long)(vf.counts[0] + problems),
		       (unsigned long long)vf.counts[V_OK], (unsigned long long)vf.counts[V_LOST],
		       (unsigned long long)vf.counts[V_TORN],
		       (unsigned long long)vf.counts[V_CORRUPT], secs);
		printf("longest I/O pause %.1f ms, reconnects %llu\n",
		       (double)v->max_pause_ns / 1e6, (unsigned long long)st.reconnects);
	}
	for (unsigned i = 0; i < vf.qd; i++)
		free(vf.slots[i].buf);
	free(vf.slots);
	free(vf.gens);
	free(vf.busy);
	if (vf.jfd >= 0)
		close(vf.jfd);
	if (vf.first_error)
		fprintf(stderr, "vmio: I/O failed: %s\n", strerror(-vf.first_error));
	return vf.first_error || problems ? VMIO_EXIT_FAIL : 0;
}
