/*
 * vmio: the project's iSCSI load and verify tool, the common client of the
 * benchmarks and failover tests. This file: command line, connection set-up
 * and the pieces bench and verify share. Exit codes: 0 ok, 1 failure, 2 usage.
 */
#define UTIL_LOG_TAG "vmio"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vmio.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vmio bench URL [--rw randread|randwrite|read|write|mix] [--bs 4k] [--qd 32]\n"
	    "                      [--time 10s] [--size BYTES] [--mix-read PCT] [--json] "
	    "[--reconnect]\n"
	    "       vmio verify URL [--writes N | --fill] [--bs 4k] [--qd 16] [--size BYTES]\n"
	    "                      [--journal FILE] [--reconnect] [--json] "
	    "[--test-drop-writes K]\n"
	    "       vmio verify --check JOURNAL URL [--qd 16] [--json]\n"
	    "       vmio info URL          (LUNs, capacity, identifiers)\n"
	    "       vmio discover URL      (SendTargets on iscsi://host[:port])\n"
	    "\n"
	    "URL: iscsi://[user[%%secret]@]host[:port]/target-iqn/lun[?opt=val&...]\n"
	    "  options: header_digest=crc32c|none, data_digest=crc32c|none, "
	    "digest=crc32c|none,\n"
	    "           target_user=U&target_password=S (mutual CHAP)\n"
	    "Common: --digest crc32c|none, --debug, --timeout-ms N (per command),\n"
	    "        --recovery-ms N (with --reconnect: give up after N ms, default 600000)\n");
}

int vmio_parse_size(const char *s, uint64_t *out)
{
	char *e;
	unsigned long long v = strtoull(s, &e, 10);
	unsigned shift = 0;

	if (e == s)
		return -EINVAL;
	switch (*e) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (*e && e[1] && strcasecmp(e + 1, "b") != 0 && strcasecmp(e + 1, "ib") != 0)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int vmio_parse_time(const char *s, uint64_t *ms)
{
	char *e;
	double v = strtod(s, &e);

	if (e == s || v < 0)
		return -EINVAL;
	if (*e == '\0' || strcmp(e, "s") == 0)
		*ms = (uint64_t)(v * 1000);
	else if (strcmp(e, "ms") == 0)
		*ms = (uint64_t)v;
	else if (strcmp(e, "m") == 0)
		*ms = (uint64_t)(v * 60000);
	else
		return -EINVAL;
	return 0;
}

void vmio_hist_add(struct vmio_hist *h, uint64_t v)
{
	unsigned idx;

	if (v < 32) {
		idx = (unsigned)v;
	} else {
		unsigned msb = 63u - (unsigned)__builtin_clzll(v);
		idx = (msb - 4) * 32 + (unsigned)((v >> (msb - 5)) & 31);
	}
	if (idx >= VMIO_HIST_BUCKETS)
		idx = VMIO_HIST_BUCKETS - 1;
	h->b[idx]++;
	h->count++;
	h->sum_ns += v;
}

static uint64_t hist_value(unsigned idx)
{
	unsigned msb, sub;

	if (idx < 32)
		return idx;
	msb = idx / 32 + 4;
	sub = idx % 32;
	/* The middle of the bucket. */
	return ((uint64_t)(32 + sub) << (msb - 5)) + (((uint64_t)1 << (msb - 5)) >> 1);
}

uint64_t vmio_hist_quantile(const struct vmio_hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->count + 0.5), acc = 0;

	if (!h->count)
		return 0;
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < VMIO_HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want)
			return hist_value(i);
	}
	return hist_value(VMIO_HIST_BUCKETS - 1);
}

void vmio_note_completion(struct vmio *v, uint64_t now)
{
	if (v->last_done_ns && now - v->last_done_ns > v->max_pause_ns)
		v->max_pause_ns = now - v->last_done_ns;
	v->last_done_ns = now;
}

void vmio_finish(struct vmio *v, int rc)
{
	v->rc = rc;
	v->done = true;
	util_reactor_stop(v->r);
}

int vmio_run(struct vmio *v)
{
	v->done = false;
	v->rc = 0;
	while (!v->done)
		util_reactor_run(v->r);
	return v->rc;
}

static void connect_cb(void *arg, int rc)
{
	vmio_finish(arg, rc);
}

int vmio_connect(struct vmio *v, const char *url)
{
	const struct ini_lun *l;
	int rc;

	rc = ini_url_parse(url, &v->cfg, &v->lun);
	if (rc < 0 || !v->cfg.target_name[0]) {
		fprintf(stderr, "vmio: bad URL '%s'\n", url);
		return -EINVAL;
	}
	rc = ini_session_create(v->r, &v->cfg, &v->s);
	if (rc == 0)
		rc = ini_session_connect(v->s, connect_cb, v);
	if (rc == 0)
		rc = vmio_run(v);
	if (rc < 0) {
		fprintf(stderr, "vmio: cannot log in to %s at %s:%u: %s\n", v->cfg.target_name,
			v->cfg.host, (unsigned)v->cfg.port, strerror(-rc));
		return rc;
	}
	l = ini_session_lun(v->s, v->lun);
	if (!l || !l->blocks || !l->block_size) {
		fprintf(stderr, "vmio: LUN %llu of %s has no capacity (not a disk?)\n",
			(unsigned long long)v->lun, v->cfg.target_name);
		return -ENODEV;
	}
	v->block_size = l->block_size;
	v->blocks = l->blocks;
	return 0;
}

static void close_cb(void *arg, int rc)
{
	vmio_finish(arg, 0);
}

void vmio_close(struct vmio *v)
{
	if (!v->s)
		return;
	if (ini_session_close(v->s, close_cb, v) == 0)
		vmio_run(v);
	ini_session_destroy(v->s);
	v->s = NULL;
}

/* ---- info and discover ---- */

static int cmd_info(struct vmio *v)
{
	unsigned n;
	const struct ini_lun *l = ini_session_luns(v->s, &n);

	for (unsigned i = 0; i < n; i++) {
		printf("lun %llu: type %u, %llu blocks of %u bytes%s, '%.8s' '%.16s' '%.4s', "
		       "%u bytes of identifiers\n",
		       (unsigned long long)l[i].lun, (unsigned)l[i].device_type,
		       (unsigned long long)l[i].blocks, (unsigned)l[i].block_size,
		       l[i].thin ? " (thin)" : "", l[i].vendor, l[i].product, l[i].revision,
		       (unsigned)l[i].desig_len);
	}
	return 0;
}

static void disc_cb(void *arg, int rc)
{
	vmio_finish(arg, rc);
}

static int cmd_discover(struct vmio *v, const char *url)
{
	static struct ini_target targets[INI_MAX_TARGETS];
	unsigned n = 0;
	uint64_t lun;
	int rc;

	if (ini_url_parse(url, &v->cfg, &lun) < 0) {
		fprintf(stderr, "vmio: bad URL '%s'\n", url);
		return VMIO_EXIT_USAGE;
	}
	rc = ini_discover(v->r, &v->cfg, targets, INI_MAX_TARGETS, &n, disc_cb, v);
	if (rc == 0)
		rc = vmio_run(v);
	if (rc < 0) {
		fprintf(stderr, "vmio: discovery at %s:%u failed: %s\n", v->cfg.host,
			(unsigned)v->cfg.port, strerror(-rc));
		return VMIO_EXIT_FAIL;
	}
	for (unsigned i = 0; i < n; i++)
		printf("%s %s\n", targets[i].address, targets[i].name);
	return 0;
}

/*
 * Options every command takes; the rest go to the command. Returns the
 * new argc (options removed) or -1 on a usage error.
 */
static int common_opts(struct vmio *v, int argc, char **argv, bool *debug)
{
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		uint64_t n;

		if (strcmp(a, "--debug") == 0) {
			*debug = true;
		} else if (strcmp(a, "--json") == 0) {
			v->json = true;
		} else if (strcmp(a, "--reconnect") == 0) {
			v->reconnect = true;
		} else if (strcmp(a, "--digest") == 0 && i + 1 < argc) {
			bool on = strcasecmp(argv[++i], "crc32c") == 0;
			if (!on && strcasecmp(argv[i], "none") != 0)
				return -1;
			v->cfg.header_digest = v->cfg.data_digest = on;
		} else if (strcmp(a, "--timeout-ms") == 0 && i + 1 < argc) {
			if (vmio_parse_size(argv[++i], &n) < 0 || n == 0 || n > UINT32_MAX)
				return -1;
			v->cfg.cmd_timeout_ms = (uint32_t)n;
		} else if (strcmp(a, "--recovery-ms") == 0 && i + 1 < argc) {
			if (vmio_parse_size(argv[++i], &n) < 0 || n > UINT32_MAX)
				return -1;
			v->cfg.recovery_timeout_ms = (uint32_t)n;
		} else {
			argv[out++] = argv[i];
		}
	}
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	struct vmio v = {0};
	bool debug = false;
	struct ini_config base;
	int rc;

	/* A target closing the connection is a loss to ride through (ini.h). */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? VMIO_EXIT_USAGE : 0;
	}
	ini_config_default(&base);
	v.cfg = base;
	v.cfg.recovery_timeout_ms = 1; /* marker: not given */
	argc = common_opts(&v, argc, argv, &debug);
	if (argc < 0 || argc < 2) {
		usage(stderr);
		return VMIO_EXIT_USAGE;
	}
	/* argv[1] is the command word, the rest its arguments. */
	const char *cmd = argv[1];
	char **cargv = argv + 1;
	int cargc = argc - 1;
	/* Without --reconnect a lost connection fails the run at once. */
	if (v.cfg.recovery_timeout_ms == 1)
		v.cfg.recovery_timeout_ms = v.reconnect ? 600000 : 0;

	util_log_init("vmio", debug, false);
	v.r = util_reactor_create("vmio");
	if (!v.r)
		return VMIO_EXIT_FAIL;
	if (strcmp(cmd, "discover") == 0) {
		if (cargc != 2) {
			usage(stderr);
			rc = VMIO_EXIT_USAGE;
		} else {
			rc = cmd_discover(&v, cargv[1]);
		}
	} else if (strcmp(cmd, "info") == 0) {
		if (cargc != 2) {
			usage(stderr);
			rc = VMIO_EXIT_USAGE;
		} else {
			rc = vmio_connect(&v, cargv[1]) < 0 ? VMIO_EXIT_FAIL : cmd_info(&v);
		}
	} else if (strcmp(cmd, "bench") == 0) {
		rc = vmio_bench_main(&v, cargc, cargv);
	} else if (strcmp(cmd, "verify") == 0) {
		rc = vmio_verify_main(&v, cargc, cargv);
	} else {
		fprintf(stderr, "vmio: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = VMIO_EXIT_USAGE;
	}
	vmio_close(&v);
	util_reactor_destroy(v.r);
	util_log_fini();
	return rc;
}
