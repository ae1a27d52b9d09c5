/*
 * vmengined: the engine daemon. Reads the configuration, opens the volumes
 * of the local pool, starts the reactor threads and the iSCSI target, and
 * runs the control thread's libqb main loop until SIGINT or SIGTERM.
 */
#define UTIL_LOG_TAG "engine"
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <qb/qbloop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vmengined [-c CONFIG] [-d]\n"
		   "  -c CONFIG  configuration file (default /etc/vmengine/vmengine.conf)\n"
		   "  -d         debug logging\n"
		   "  -h         this help\n");
}

/* mkdir -p */
static int mkdirs(const char *path)
{
	char tmp[ENG_PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int32_t on_signal(int32_t sig, void *data)
{
	qb_loop_t *loop = data;

	log_notice("signal %d: shutting down", sig);
	qb_loop_stop(loop);
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf = "/etc/vmengine/vmengine.conf";
	struct eng_config *cfg = calloc(1, sizeof(*cfg));
	struct util_reactor *reactors[64];
	struct vol *vols[ENG_MAX_VOLUMES];
	unsigned nreactors = 0, nvols = 0;
	struct tgt *tgt = NULL;
	char err[512];
	int opt, rc = 1;
	bool debug = false;

	if (!cfg)
		return 1;
	while ((opt = getopt(argc, argv, "c:dh")) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			free(cfg);
			return 0;
		default:
			usage(stderr);
			free(cfg);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		free(cfg);
		return 2;
	}
	eng_config_default(cfg);
	if (eng_config_load(cfg, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmengined: %s\n", err);
		free(cfg);
		return 1;
	}
	util_log_init("vmengined", debug || cfg->debug, cfg->syslog);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = mkdirs(cfg->state_dir)) < 0 || (rc = mkdirs(cfg->pool_dir)) < 0) {
		log_err("cannot create %s or %s: %s", cfg->state_dir, cfg->pool_dir, strerror(-rc));
		rc = 1;
		goto out;
	}
	rc = 1;
	for (unsigned i = 0; i < cfg->nvolumes; i++) {
		char path[ENG_PATH_MAX + VOL_NAME_MAX + 8];
		const struct eng_volume *v = &cfg->volumes[i];
		snprintf(path, sizeof(path), "%s/%s.vol", cfg->pool_dir, v->name);
		if (vol_open_file(v->name, path, v->size, v->block_size, &vols[nvols]) < 0)
			goto out; /* logged by vol */
		nvols++;
	}

	nreactors = cfg->reactors ? cfg->reactors : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	nreactors = UTIL_MAX(1u, UTIL_MIN(nreactors, (unsigned)UTIL_ARRAY_SIZE(reactors)));
	for (unsigned i = 0; i < nreactors; i++) {
		char name[16];
		snprintf(name, sizeof(name), "reactor%u", i);
		reactors[i] = util_reactor_create(name);
		if (!reactors[i]) {
			nreactors = i;
			log_err("cannot create reactor threads");
			goto out;
		}
	}
	tgt = tgt_create(&cfg->tgt, reactors, nreactors);
	if (!tgt)
		goto out;
	for (unsigned i = 0; i < nvols; i++)
		if (tgt_target_add(tgt, vols[i], NULL, &cfg->volumes[i].chap) < 0)
			goto out;
	for (unsigned i = 0; i < nreactors; i++)
		if (util_reactor_start(reactors[i]) < 0) {
			log_err("cannot start reactor thread %u", i);
			goto out_stop;
		}
	for (unsigned i = 0; i < cfg->nportals; i++)
		if (tgt_portal_add(tgt, cfg->portals[i].addr, cfg->portals[i].port) < 0)
			goto out_stop;

	qb_loop_t *loop = qb_loop_create();
	qb_loop_signal_handle sh_int, sh_term;
	if (!loop) {
		log_err("cannot create the main loop");
		goto out_stop;
	}
	qb_loop_signal_add(loop, QB_LOOP_HIGH, SIGINT, loop, on_signal, &sh_int);
	qb_loop_signal_add(loop, QB_LOOP_HIGH, SIGTERM, loop, on_signal, &sh_term);
	log_notice("%s ready: %u volume(s), %u reactor(s)", cfg->node_name, nvols, nreactors);
	qb_loop_run(loop);
	qb_loop_destroy(loop);
	rc = 0;

out_stop:
	if (tgt)
		tgt_shutdown(tgt);
	for (unsigned i = 0; i < nreactors; i++)
		util_reactor_stop(reactors[i]);
out:
	tgt_destroy(tgt);
	for (unsigned i = 0; i < nreactors; i++)
		util_reactor_destroy(reactors[i]);
	for (unsigned i = 0; i < nvols; i++)
		vol_close(vols[i]);
	if (rc == 0)
		log_notice("stopped");
	util_log_fini();
	free(cfg);
	return rc;
}
