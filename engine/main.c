/*
 * vmengined: the engine daemon. Reads the configuration and the persisted
 * volume map, starts the reactor threads and the iSCSI target, joins the
 * cluster (Corosync, or solo mode: a cluster of one), serves the map's
 * volumes and vmctl, and runs the control thread's libqb main loop until
 * SIGINT or SIGTERM.
 *
 * Migration from the foundation's config-file volumes: the map replaces
 * them. On the first start with an empty map (no map.pb yet), the "volumes"
 * of the configuration are imported into the map once (cluster.import_volumes,
 * default true); afterwards the map alone says what is served and the
 * "volumes" list is ignored.
 */
#define UTIL_LOG_TAG "engine"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <qb/qbloop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster.h"
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

/* Start-up: the portals open once the map is served (and seeded), never before. */
struct app {
	qb_loop_t *loop;
	struct eng_config *cfg;
	struct tgt *tgt;
	struct eng_targets *targets;
	struct clu *clu;
	struct eng_backends *backends; /* back-end logins, virtualized volumes */
	struct eng_failover *failover; /* fencing, service addresses, takeover */
	bool import;		       /* no map file yet: seed the map with the config's volumes */
	bool started;		       /* serving was reached once */
	bool listening;		       /* portals open */
	unsigned pending;	       /* import changes not yet applied */
	int rc;
};

static void open_portals(struct app *a)
{
	if (a->listening)
		return;
	a->listening = true;
	for (unsigned i = 0; i < a->cfg->nportals; i++)
		if (tgt_portal_add(a->tgt, a->cfg->portals[i].addr, a->cfg->portals[i].port) < 0) {
			a->rc = 1; /* logged by tgt */
			qb_loop_stop(a->loop);
			return;
		}
	log_notice("%s ready: %s, listening on %u portal(s)", a->cfg->node_name,
		   clu_serving(a->clu) ? "serving" : "not serving", a->cfg->nportals);
}

static void import_done(void *arg, int rc)
{
	struct app *a = arg;

	if (rc < 0 && rc != -EEXIST)
		log_err("cannot import a volume of the configuration: %s", strerror(-rc));
	if (--a->pending == 0) {
		log_notice("configuration volumes imported: map v%" PRIu64,
			   clu_map(a->clu)->version);
		open_portals(a);
	}
}

/*
 * The first time the map is served: an empty map (first start, no map file)
 * gets the configuration's volumes, through the cluster like any change
 * (every engine of a new cluster may do it: a name already taken is skipped).
 */
static void app_start(void *arg)
{
	struct app *a = arg;

	if (a->import && clu_map(a->clu)->version == 0) {
		for (unsigned i = 0; i < a->cfg->nvolumes; i++) {
			const struct eng_volume *v = &a->cfg->volumes[i];
			Vm__MapChange chg = VM__MAP_CHANGE__INIT;
			chg.op = VM__CHANGE_OP__VOLUME_CREATE;
			chg.name = (char *)v->name;
			chg.size = v->size;
			chg.block_size = v->block_size;
			chg.owner = clu_nodeid(a->clu); /* the engine whose file it was */
			if (clu_submit(a->clu, &chg, import_done, a) == 0)
				a->pending++;
			if (!v->chap.user[0])
				continue;
			Vm__MapChange ch = VM__MAP_CHANGE__INIT;
			ch.op = VM__CHANGE_OP__CHAP_SET;
			ch.name = (char *)v->name;
			ch.chap_user = (char *)v->chap.user;
			ch.chap_secret = (char *)v->chap.secret;
			ch.chap_mutual_user = (char *)v->chap.mutual_user;
			ch.chap_mutual_secret = (char *)v->chap.mutual_secret;
			if (clu_submit(a->clu, &ch, import_done, a) == 0)
				a->pending++;
		}
	}
	if (a->pending == 0)
		open_portals(a);
}

static void app_changed(void *arg)
{
	struct app *a = arg;

	eng_backends_changed(a->backends);
	eng_targets_changed(a->targets);
	/* After the targets: a fenced engine has removed them before its addresses go. */
	eng_failover_changed(a->failover, a->clu);
	if (!a->started && a->clu && clu_serving(a->clu)) {
		a->started = true;
		/* Not from inside the state machine's callback: from the loop. */
		qb_loop_job_add(a->loop, QB_LOOP_LOW, a, app_start);
	}
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
	unsigned nreactors = 0;
	struct tgt *tgt = NULL;
	struct clu_map map;
	struct clu_binding *binding = NULL;
	struct eng_targets *targets = NULL;
	struct eng_ctl *ctl = NULL;
	struct eng_backends *backends = NULL;
	struct eng_failover *failover = NULL;
	struct clu *clu = NULL;
	qb_loop_t *loop = NULL;
	bool found;
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
	clu_map_init(&map);
	/* A damaged map must stop the engine: serving an empty map would lose every volume. */
	if (clu_map_load(&map, cfg->state_dir, &found, err, sizeof(err)) < 0) {
		log_err("%s", err);
		fprintf(stderr, "vmengined: %s\n", err);
		goto out;
	}
	log_info("map v%" PRIu64 " loaded: %u volume(s)%s", map.version, map.nvols,
		 found ? "" : " (no map yet)");

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
	for (unsigned i = 0; i < nreactors; i++)
		if (util_reactor_start(reactors[i]) < 0) {
			log_err("cannot start reactor thread %u", i);
			goto out_stop;
		}

	loop = qb_loop_create();
	qb_loop_signal_handle sh_int, sh_term;
	if (!loop) {
		log_err("cannot create the main loop");
		goto out_stop;
	}
	qb_loop_signal_add(loop, QB_LOOP_HIGH, SIGINT, loop, on_signal, &sh_int);
	qb_loop_signal_add(loop, QB_LOOP_HIGH, SIGTERM, loop, on_signal, &sh_term);

	targets = eng_targets_create(loop, tgt, cfg);
	if (!targets)
		goto out_stop;
	struct app app = {.loop = loop, .cfg = cfg, .tgt = tgt, .targets = targets};
	app.import = !found && cfg->nvolumes && cfg->cluster.import_volumes;
	app.failover = failover = eng_failover_create(loop, tgt, cfg);
	struct clu_self self;
	memset(&self, 0, sizeof(self));
	snprintf(self.name, sizeof(self.name), "%s", cfg->node_name);
	snprintf(self.portal, sizeof(self.portal), "%s", cfg->cluster.advertise);
	snprintf(self.state_dir, sizeof(self.state_dir), "%s", cfg->state_dir);
	if (strcmp(cfg->cluster.mode, "corosync") == 0)
		binding = clu_corosync_create(loop, &self, &map, app_changed, &app, &clu);
	else
		binding = clu_solo_create(loop, &self, &map, app_changed, &app, &clu);
	if (!binding) {
		log_err("cannot start the cluster layer");
		goto out_stop;
	}
	app.clu = clu;
	app.backends = backends =
	    eng_backends_create(loop, reactors[0], clu, eng_targets_changed, targets);
	eng_targets_set_clu(targets, clu);
	app_changed(&app);
	/* Without its socket the engine still serves; vmctl cannot reach it (logged). */
	ctl = eng_ctl_create(loop, cfg->cluster.ctl_socket, clu, clu_binding_mode(binding));
	log_notice("%s started: %s mode, %u reactor(s), vmctl socket %s; portals open once the "
		   "map is served",
		   cfg->node_name, clu_binding_mode(binding), nreactors, cfg->cluster.ctl_socket);
	qb_loop_run(loop);
	rc = app.rc;

out_stop:
	/* The cluster first: pending vmctl requests are answered while the socket lives. */
	clu_binding_destroy(binding);
	eng_failover_destroy(failover);
	eng_ctl_destroy(ctl);
	if (tgt)
		tgt_shutdown(tgt);
	for (unsigned i = 0; i < nreactors; i++)
		util_reactor_stop(reactors[i]);
out:
	eng_targets_destroy(targets);
	eng_backends_destroy(backends);
	tgt_destroy(tgt);
	for (unsigned i = 0; i < nreactors; i++)
		util_reactor_destroy(reactors[i]);
	if (loop)
		qb_loop_destroy(loop);
	clu_map_clear(&map);
	if (rc == 0)
		log_notice("stopped");
	util_log_fini();
	free(cfg);
	return rc;
}
