/*
 * vol_mirror: drive a mirrored virtualized volume over two iSCSI back ends
 * (the vol/ data path alone, no target), for tests/interop/mirror.sh.
 *
 * Usage: vol_mirror [-d] URL_A URL_B SIZE EXTENT REGION
 * Opens both back ends, allocates a two-leg volume of SIZE bytes over them
 * (leg 0 on A, leg 1 on B, extents from offset 0), then reads commands on
 * stdin, one per line, and answers each with one line starting "ok" or
 * "err" (leg events are printed as "event ..." lines as they happen):
 *   write N SEED [RANGE]  N pattern writes (512 B..64 KiB, queue depth 8) in
 *                  the first RANGE bytes (default: all); a shadow copy
 *                  records what every acknowledged write put
 *   verify         read the whole volume and compare with the shadow
 *   status         leg states, dirty regions, resync progress
 *   reopen L       log the back end of leg L in again (after a restart)
 *   resync L R     start resyncing leg L at R bytes/s (0: unpaced)
 *   wait           wait for the resync to end
 *   map            the extents of each leg: "leg L backend B offset O" lines
 *   quit
 * Exit status 0 after quit, 1 when the volume could not be opened.
 */
#define UTIL_LOG_TAG "vol_mirror"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"
#include "vol/vol.h"

#define QD   8
#define UNIT (64u * 1024u) /* slot k writes only units u with u % QD == k */

struct ctx {
	struct util_reactor *r;
	struct vol_chan *ch;
	struct vol_backend *be[2];
	struct vol_space sp[2];
	struct vol_desc d;
	struct vol *v;
	uint8_t *shadow;
	uint64_t size, extent, region;
	const char *url[2];

	/* command hand-off: the main thread waits for `done` */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	char msg[512];

	/* write job */
	unsigned todo, issued, completed, failed;
	unsigned seed;
	uint64_t range; /* writes stay in [0, range); 0: the whole volume */
	struct slot {
		struct vol_io io;
		struct iovec iov;
		uint8_t *buf;
		unsigned k;
	} slots[QD];
	/* verify / resync */
	uint64_t vpos, mismatches;
	int pending_logins;
};

static struct ctx C;

static void cmd_done(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmd_done(int rc, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&C.lock);
	va_start(ap, fmt);
	vsnprintf(C.msg, sizeof(C.msg), fmt, ap);
	va_end(ap);
	C.rc = rc;
	C.done = true;
	pthread_cond_signal(&C.cond);
	pthread_mutex_unlock(&C.lock);
}

/* Run fn on the reactor and wait for its cmd_done(). */
static int run(util_msg_fn fn, void *arg)
{
	pthread_mutex_lock(&C.lock);
	C.done = false;
	pthread_mutex_unlock(&C.lock);
	if (util_reactor_send(C.r, fn, arg))
		return -ENOMEM;
	pthread_mutex_lock(&C.lock);
	while (!C.done)
		pthread_cond_wait(&C.cond, &C.lock);
	pthread_mutex_unlock(&C.lock);
	printf("%s %s\n", C.rc ? "err" : "ok", C.msg);
	fflush(stdout);
	return C.rc;
}

static const char *leg_state(enum vol_leg_state s)
{
	return s == VOL_LEG_OK ? "ok" : s == VOL_LEG_FAILED ? "failed" : "resync";
}

static void leg_event(void *arg, struct vol *v, unsigned leg, enum vol_leg_state st)
{
	printf("event leg %u %s\n", leg, leg_state(st));
	fflush(stdout);
}

/* ---- open ---- */

static void opened(void *arg, int rc)
{
	struct vol_virt_params p = {.leg_cb = leg_event};
	int i;

	if (rc) {
		cmd_done(rc, "back end login: %s", strerror(-rc));
		return;
	}
	if (--C.pending_logins)
		return;
	for (i = 0; i < 2; i++) {
		rc = vol_space_init(&C.sp[i], vol_backend_info(C.be[i])->size, C.extent);
		if (rc)
			goto out;
	}
	rc = vol_desc_create(&C.d, "mirror", C.size, 512, C.extent, C.region, 2, C.sp, 2);
	if (rc)
		goto out;
	rc = vol_open_virt(&C.d, C.be, 2, &p, &C.v);
out:
	cmd_done(rc, "opened: %s", rc ? strerror(-rc) : "two legs");
}

static void do_open(void *arg)
{
	int rc;

	C.ch = vol_chan_create(C.r);
	if (!C.ch) {
		cmd_done(-ENOMEM, "channel");
		return;
	}
	C.pending_logins = 2;
	for (int i = 0; i < 2; i++) {
		struct vol_backend_iscsi_opts o = {.recovery_timeout_ms = 3000,
						   .cmd_timeout_ms = 5000};
		char name[16];

		snprintf(name, sizeof(name), "be%c", 'a' + i);
		rc = vol_backend_open_iscsi(C.r, name, C.url[i], &o, opened, NULL, &C.be[i]);
		if (rc) {
			cmd_done(rc, "open %s: %s", C.url[i], strerror(-rc));
			return;
		}
	}
}

/* ---- writes ---- */

static void slot_issue(struct slot *s);

static void pattern(uint8_t *buf, uint64_t off, uint64_t len, unsigned stamp)
{
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t w = ((off + i) << 16) ^ stamp ^ ((off + i) * 0x9e3779b97f4a7c15ull);
		memcpy(buf + i, &w, 8);
	}
}

static void slot_done(void *arg, int status)
{
	struct slot *s = arg;

	C.completed++;
	if (status) {
		C.failed++;
		log_err("write at %" PRIu64 " +%" PRIu64 ": %s", s->io.offset, s->io.len,
			strerror(-status));
	} else {
		memcpy(C.shadow + s->io.offset, s->buf, s->io.len);
	}
	if (C.issued < C.todo) {
		slot_issue(s);
		return;
	}
	if (C.completed == C.todo)
		cmd_done(C.failed ? -EIO : 0, "writes %u failed %u", C.completed, C.failed);
}

static void slot_issue(struct slot *s)
{
	uint64_t units = (C.range ? C.range : C.size) / UNIT;
	uint64_t u = ((uint64_t)rand_r(&C.seed) % (units / QD)) * QD + s->k;
	uint32_t nblk = 1 + (uint32_t)rand_r(&C.seed) % (UNIT / 512);
	uint32_t first = (uint32_t)rand_r(&C.seed) % (UNIT / 512 - nblk + 1);
	int rc;

	memset(&s->io, 0, sizeof(s->io));
	s->io.op = VOL_OP_WRITE;
	s->io.offset = u * UNIT + (uint64_t)first * 512;
	s->io.len = (uint64_t)nblk * 512;
	pattern(s->buf, s->io.offset, s->io.len, C.issued);
	s->iov.iov_base = s->buf;
	s->iov.iov_len = s->io.len;
	s->io.iov = &s->iov;
	s->io.iovcnt = 1;
	s->io.cb = slot_done;
	s->io.cb_arg = s;
	C.issued++;
	rc = vol_submit(C.ch, C.v, &s->io);
	if (rc < 0) {
		C.issued--;
		C.todo--;
		C.failed++;
		log_err("submit: %s", strerror(-rc));
		if (C.completed == C.todo)
			cmd_done(-EIO, "writes %u failed %u", C.completed, C.failed);
	}
}

static void do_write(void *arg)
{
	C.issued = C.completed = C.failed = 0;
	for (unsigned k = 0; k < QD && C.issued < C.todo; k++)
		slot_issue(&C.slots[k]);
	if (C.todo == 0)
		cmd_done(0, "writes 0 failed 0");
}

/* ---- verify ---- */

static void verify_next(void);

static void verify_done(void *arg, int status)
{
	struct slot *s = arg;

	if (status) {
		cmd_done(status, "read at %" PRIu64 ": %s", s->io.offset, strerror(-status));
		return;
	}
	for (uint64_t b = 0; b < s->io.len; b += 512)
		if (memcmp(s->buf + b, C.shadow + s->io.offset + b, 512))
			C.mismatches++;
	C.vpos += s->io.len;
	verify_next();
}

static void verify_next(void)
{
	struct slot *s = &C.slots[0];
	int rc;

	if (C.vpos >= C.size) {
		cmd_done(C.mismatches ? -EIO : 0,
			 "verified %" PRIu64 " blocks, %" PRIu64 " mismatches", C.size / 512,
			 C.mismatches);
		return;
	}
	memset(&s->io, 0, sizeof(s->io));
	s->io.op = VOL_OP_READ;
	s->io.offset = C.vpos;
	s->io.len = UTIL_MIN((uint64_t)UNIT, C.size - C.vpos);
	s->iov.iov_base = s->buf;
	s->iov.iov_len = s->io.len;
	s->io.iov = &s->iov;
	s->io.iovcnt = 1;
	s->io.cb = verify_done;
	s->io.cb_arg = s;
	rc = vol_submit(C.ch, C.v, &s->io);
	if (rc < 0)
		cmd_done(rc, "read submit: %s", strerror(-rc));
}

static void do_verify(void *arg)
{
	C.vpos = 0;
	C.mismatches = 0;
	verify_next();
}

/* ---- status, reopen, resync ---- */

static void do_status(void *arg)
{
	struct vol_virt_status st;

	vol_virt_status(C.v, &st);
	cmd_done(0,
		 "leg0 %s leg1 %s dirty %" PRIu64 " of %" PRIu64 " resync %s %" PRIu64 "/%" PRIu64
		 " retried %" PRIu64 " degraded %" PRIu64,
		 leg_state(st.leg[0]), leg_state(st.leg[1]), st.dirty_regions, st.nregions,
		 st.resyncing ? "running" : "idle", st.resync_done, st.resync_total,
		 st.reads_retried, st.writes_degraded);
}

static unsigned arg_leg;
static uint64_t arg_rate;

static void reopened(void *arg, int rc)
{
	cmd_done(rc, "reopen leg %u: %s", arg_leg, rc ? strerror(-rc) : "up");
}

static void do_reopen(void *arg)
{
	struct vol_backend *be = C.be[arg_leg];
	int rc;

	if (vol_backend_state(be) == VOL_BACKEND_UP) {
		cmd_done(0, "reopen leg %u: already up", arg_leg);
		return;
	}
	rc = vol_backend_reopen(be, reopened, NULL);
	if (rc)
		cmd_done(rc, "reopen leg %u: %s", arg_leg, strerror(-rc));
}

static uint64_t rs_start_ms;
static bool rs_finished, rs_waiting;
static int rs_rc;
static char rs_msg[256];

static void resynced(void *arg, int rc)
{
	struct vol_virt_status st;

	vol_virt_status(C.v, &st);
	snprintf(rs_msg, sizeof(rs_msg),
		 "resync leg %u: %s, %" PRIu64 " regions copied in %" PRIu64 " ms", arg_leg,
		 rc ? strerror(-rc) : "in sync", st.resync_done, util_now_ms() - rs_start_ms);
	rs_rc = rc;
	rs_finished = true;
	if (rs_waiting) {
		rs_waiting = false;
		cmd_done(rs_rc, "%s", rs_msg);
	}
}

/* Starts the resync and answers at once: writes may run meanwhile. */
static void do_resync(void *arg)
{
	int rc;

	rs_start_ms = util_now_ms();
	rs_finished = false;
	rc = vol_virt_resync_start(C.ch, C.v, arg_leg, arg_rate, resynced, NULL);
	cmd_done(rc, "resync leg %u: %s", arg_leg, rc ? strerror(-rc) : "started");
}

static void do_wait(void *arg)
{
	if (rs_finished)
		cmd_done(rs_rc, "%s", rs_msg);
	else
		rs_waiting = true;
}

static void do_map(void *arg)
{
	for (unsigned l = 0; l < C.d.nlegs; l++)
		for (unsigned e = 0; e < C.d.legs[l].nextents; e++)
			printf("leg %u backend %u offset %" PRIu64 "\n", l,
			       C.d.legs[l].extents[e].backend, C.d.legs[l].extents[e].offset);
	fflush(stdout);
	cmd_done(0, "map");
}

static void do_close(void *arg)
{
	vol_close(C.v);
	vol_chan_destroy(C.ch);
	for (int i = 0; i < 2; i++) {
		vol_backend_close(C.be[i]);
		vol_space_fini(&C.sp[i]);
	}
	vol_desc_free(&C.d);
	cmd_done(0, "closed");
}

int main(int argc, char **argv)
{
	char line[256];
	bool debug = false;
	int a = 1;
	signal(SIGPIPE, SIG_IGN); /* connection losses are handled (iscsi-init/ini.h) */

	if (argc > 1 && !strcmp(argv[1], "-d")) {
		debug = true;
		a++;
	}
	if (argc - a != 5) {
		fprintf(stderr, "usage: vol_mirror [-d] URL_A URL_B SIZE EXTENT REGION\n");
		return 2;
	}
	util_log_init("vol_mirror", debug, false);
	C.url[0] = argv[a];
	C.url[1] = argv[a + 1];
	C.size = strtoull(argv[a + 2], NULL, 0);
	C.extent = strtoull(argv[a + 3], NULL, 0);
	C.region = strtoull(argv[a + 4], NULL, 0);
	if (C.size < (uint64_t)UNIT * QD || C.size % UNIT) {
		fprintf(stderr, "SIZE must be a multiple of %u, at least %u\n", UNIT, UNIT * QD);
		return 2;
	}
	pthread_mutex_init(&C.lock, NULL);
	pthread_cond_init(&C.cond, NULL);
	C.shadow = calloc(1, C.size);
	for (int k = 0; k < QD; k++) {
		C.slots[k].k = (unsigned)k;
		if (posix_memalign((void **)&C.slots[k].buf, 4096, UNIT))
			return 1;
	}
	C.r = util_reactor_create("mirror");
	if (!C.shadow || !C.r || util_reactor_start(C.r))
		return 1;
	if (run(do_open, NULL))
		return 1;
	while (fgets(line, sizeof(line), stdin)) {
		unsigned n, seed, leg;
		unsigned long long rate, range = 0;

		if (sscanf(line, "write %u %u %llu", &n, &seed, &range) >= 2) {
			C.todo = n;
			C.seed = seed;
			C.range = range >= (uint64_t)UNIT * QD && range <= C.size ? range : 0;
			run(do_write, NULL);
		} else if (!strncmp(line, "verify", 6)) {
			run(do_verify, NULL);
		} else if (!strncmp(line, "status", 6)) {
			run(do_status, NULL);
		} else if (sscanf(line, "reopen %u", &leg) == 1 && leg < 2) {
			arg_leg = leg;
			run(do_reopen, NULL);
		} else if (sscanf(line, "resync %u %llu", &leg, &rate) == 2 && leg < 2) {
			arg_leg = leg;
			arg_rate = rate;
			run(do_resync, NULL);
		} else if (!strncmp(line, "wait", 4)) {
			run(do_wait, NULL);
		} else if (!strncmp(line, "map", 3)) {
			run(do_map, NULL);
		} else if (!strncmp(line, "quit", 4)) {
			break;
		} else {
			printf("err unknown command\n");
			fflush(stdout);
		}
	}
	run(do_close, NULL);
	util_reactor_stop(C.r);
	util_reactor_destroy(C.r);
	util_log_fini();
	return 0;
}
