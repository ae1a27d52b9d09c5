/*
 * vmctl_virt.c: vmctl's back-end commands (backend add/list/remove) and the
 * virtualized part of `volume create` / `volume show` (legs, resync).
 */
#define UTIL_LOG_TAG "vmctl"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/vmctl_virt.h"

int vmctl_virt_option(char **argv, int argc, int *i, Vm__CtlRequest *rq)
{
	const char *o = argv[*i];
	char *end;

	if (strcmp(o, "--mirror") && strcmp(o, "--extent") && strcmp(o, "--lun") &&
	    strcmp(o, "--chap"))
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "vmctl: %s needs a value\n", o);
		return -1;
	}
	const char *val = argv[++*i];
	if (strcmp(o, "--chap") == 0) {
		rq->chap_user = (char *)val;
		return 1;
	}
	if (strcmp(o, "--extent") == 0) {
		if (eng_parse_size(val, &rq->extent_size) < 0 || !rq->extent_size) {
			fprintf(stderr, "vmctl: bad extent size '%s'\n", val);
			return -1;
		}
		return 1;
	}
	unsigned long n = strtoul(val, &end, 10);
	if (*end || !*val || n > 255 || (o[2] == 'm' && (n < 1 || n > 2))) {
		fprintf(stderr, "vmctl: bad value '%s' for %s\n", val, o);
		return -1;
	}
	if (o[2] == 'm')
		rq->mirror = (uint32_t)n;
	else
		rq->lun = (uint32_t)n;
	return 1;
}

int vmctl_virt_command(char **args, int nargs, Vm__CtlRequest *rq, char *secret, size_t len)
{
	if (strcmp(args[0], "backend") != 0)
		return -1;
	if (strcmp(args[1], "list") == 0 && nargs == 2) {
		rq->cmd = VM__CTL_CMD__CTL_BACKEND_LIST;
		return 0;
	}
	if (strcmp(args[1], "remove") == 0 && nargs == 3) {
		rq->cmd = VM__CTL_CMD__CTL_BACKEND_REMOVE;
		rq->backend = (uint32_t)strtoul(args[2], NULL, 10);
		return 0;
	}
	if (strcmp(args[1], "add") == 0 && nargs == 4) {
		rq->cmd = VM__CTL_CMD__CTL_BACKEND_ADD;
		rq->portal = args[2];
		rq->target = args[3];
		if (rq->chap_user[0]) {
			if (isatty(STDIN_FILENO))
				fprintf(stderr, "CHAP secret: ");
			if (!fgets(secret, (int)len, stdin)) {
				fprintf(stderr, "vmctl: no secret on stdin\n");
				return 2;
			}
			secret[strcspn(secret, "\r\n")] = '\0';
			rq->chap_secret = secret;
		}
		return 0;
	}
	fprintf(stderr, "vmctl: usage: backend add PORTAL TARGET-IQN [--lun N] [--chap USER] | "
			"backend list | backend remove ID\n");
	return 2;
}

static const char *leg_state(uint32_t s)
{
	return s == 0 ? "ok" : s == 1 ? "failed" : s == 2 ? "resync" : "?";
}

bool vmctl_virt_print(const Vm__CtlRequest *rq, const Vm__CtlReply *rep, bool json)
{
	if (rq->cmd == VM__CTL_CMD__CTL_BACKEND_LIST || rq->cmd == VM__CTL_CMD__CTL_BACKEND_ADD ||
	    rq->cmd == VM__CTL_CMD__CTL_BACKEND_REMOVE) {
		if (json) {
			printf("{\"backends\":[");
			for (size_t i = 0; i < rep->n_backends; i++) {
				const Vm__CtlBackendView *b = rep->backends[i];
				printf("%s{\"id\":%" PRIu32 ",\"portal\":\"%s\",\"target\":\"%s\","
				       "\"lun\":%" PRIu32 ",\"size\":%" PRIu64 ",\"free\":%" PRIu64
				       ",\"state\":\"%s\",\"node\":%" PRIu32 "}",
				       i ? "," : "", b->id, b->portal, b->target, b->lun, b->size,
				       b->free_bytes, b->state, b->node);
			}
			printf("]}\n");
			return true;
		}
		printf("%-6s %-22s %-40s %4s %10s %10s %s\n", "ID", "PORTAL", "TARGET", "LUN",
		       "SIZE", "FREE", "STATE");
		for (size_t i = 0; i < rep->n_backends; i++) {
			const Vm__CtlBackendView *b = rep->backends[i];
			printf("%-6" PRIu32 " %-22s %-40s %4" PRIu32 " %9" PRIu64 "M %9" PRIu64
			       "M %s (node %" PRIu32 ")\n",
			       b->id, b->portal, b->target, b->lun, b->size >> 20,
			       b->free_bytes >> 20, b->state, b->node);
		}
		return true;
	}
	return false;
}

void vmctl_virt_print_legs(const Vm__CtlReply *rep, bool json)
{
	if (!rep->map || rep->map->n_volumes != 1)
		return;
	const Vm__Volume *v = rep->map->volumes[0];
	const Vm__CtlVirtStatus *vs = rep->virt;
	if (json) {
		if (!v->n_legs)
			return;
		printf("{\"legs\":[");
		for (size_t l = 0; l < v->n_legs; l++)
			printf("%s{\"state\":\"%s\",\"backend\":%" PRIu32 "}", l ? "," : "",
			       leg_state(v->legs[l]->state),
			       v->legs[l]->n_backend ? v->legs[l]->backend[0] : 0);
		printf("]");
		if (vs)
			printf(",\"dirty_regions\":%" PRIu64
			       ",\"resyncing\":%s,\"resync_total\":%" PRIu64
			       ",\"resync_done\":%" PRIu64 ",\"writes_degraded\":%" PRIu64,
			       vs->dirty_regions, vs->resyncing ? "true" : "false",
			       vs->resync_total, vs->resync_done, vs->writes_degraded);
		printf("}\n");
		return;
	}
	if (!v->n_legs)
		return;
	printf("extent %" PRIu64 "M, region %" PRIu64 "K\n", v->extent_size >> 20,
	       v->region_size >> 10);
	for (size_t l = 0; l < v->n_legs; l++) {
		const Vm__Leg *g = v->legs[l];
		printf("leg %zu: %-7s %zu extent(s) on back end %" PRIu32 "\n", l,
		       leg_state(g->state), g->n_backend, g->n_backend ? g->backend[0] : 0);
	}
	if (vs) {
		printf("dirty regions %" PRIu64 " of %" PRIu64 ", writes degraded %" PRIu64 "\n",
		       vs->dirty_regions, vs->nregions, vs->writes_degraded);
		if (vs->resyncing) {
			unsigned pct = vs->resync_total
					   ? (unsigned)(vs->resync_done * 100 / vs->resync_total)
					   : 100;
			printf("resync %3u%% [", pct);
			for (unsigned k = 0; k < 40; k++)
				putchar(k < pct * 40 / 100 ? '#' : '.');
			printf("] %" PRIu64 "/%" PRIu64 " regions\n", vs->resync_done,
			       vs->resync_total);
		}
	}
}
