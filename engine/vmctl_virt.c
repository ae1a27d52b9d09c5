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

static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* "n2:up", "n3:FAILED": what is wrong stands out in a row of "up". */
static void print_engine_state(const Vm__CtlBackendSeen *e)
{
	const char *st = e->state;

	if (strcmp(st, "failed") == 0)
		st = "FAILED";
	else if (strcmp(st, "unknown") == 0)
		st = "?";
	if (e->name[0])
		printf(" %s:%s", e->name, st);
	else
		printf(" %" PRIu32 ":%s", e->node, st);
}

static void print_backends(const Vm__CtlReply *rep, bool json)
{
	if (json) {
		printf("{\"backends\":[");
		for (size_t i = 0; i < rep->n_backends; i++) {
			const Vm__CtlBackendView *b = rep->backends[i];
			printf("%s{\"id\":%" PRIu32 ",\"portal\":", i ? "," : "", b->id);
			json_str(b->portal);
			printf(",\"target\":");
			json_str(b->target);
			printf(",\"lun\":%" PRIu32 ",\"size\":%" PRIu64 ",\"free\":%" PRIu64
			       ",\"state\":",
			       b->lun, b->size, b->free_bytes);
			json_str(b->state);
			printf(",\"node\":%" PRIu32 ",\"engines\":[", b->node);
			for (size_t k = 0; k < b->n_engines; k++) {
				const Vm__CtlBackendSeen *e = b->engines[k];
				printf("%s{\"node\":%" PRIu32 ",\"name\":", k ? "," : "", e->node);
				json_str(e->name);
				printf(",\"state\":");
				json_str(e->state);
				printf(",\"size\":%" PRIu64 ",\"age_s\":%" PRIu32 ",\"local\":%s}",
				       e->size, e->age_s, e->local ? "true" : "false");
			}
			printf("]}");
		}
		printf("]}\n");
		return;
	}
	/* STATE: this engine's own view (live); ENGINES: every member's, this one included. */
	printf("%-6s %-22s %-40s %4s %10s %10s %-8s %s\n", "ID", "PORTAL", "TARGET", "LUN", "SIZE",
	       "FREE", "STATE", "ENGINES");
	for (size_t i = 0; i < rep->n_backends; i++) {
		const Vm__CtlBackendView *b = rep->backends[i];
		printf("%-6" PRIu32 " %-22s %-40s %4" PRIu32 " %9" PRIu64 "M %9" PRIu64 "M %-8s",
		       b->id, b->portal, b->target, b->lun, b->size >> 20, b->free_bytes >> 20,
		       b->state);
		for (size_t k = 0; k < b->n_engines; k++)
			print_engine_state(b->engines[k]);
		putchar('\n');
	}
}

bool vmctl_virt_print(const Vm__CtlRequest *rq, const Vm__CtlReply *rep, bool json)
{
	if (rq->cmd == VM__CTL_CMD__CTL_BACKEND_LIST || rq->cmd == VM__CTL_CMD__CTL_BACKEND_ADD ||
	    rq->cmd == VM__CTL_CMD__CTL_BACKEND_REMOVE) {
		print_backends(rep, json);
		return true;
	}
	return false;
}

/* ---- resync progress: pure helpers, then `volume show` and `--watch` ---- */

size_t vmctl_progress_bar(char *buf, size_t len, uint64_t done, uint64_t total, int64_t eta_s,
			  unsigned width)
{
	/* A total of 0 is nothing left to copy: 100 %. */
	uint64_t d = total ? UTIL_MIN(done, total) : 0;
	unsigned pct = total ? (unsigned)(d * 100 / total) : 100;
	unsigned fill = total ? (unsigned)(d * width / total) : width;
	size_t o = 0;
	int n;

	if (!len)
		return 0;
	buf[0] = '\0';
	if (len < width + 3)
		return 0;
	buf[o++] = '[';
	for (unsigned k = 0; k < width; k++)
		buf[o++] = k < fill ? '#' : '.';
	buf[o++] = ']';
	buf[o] = '\0';
	n = snprintf(buf + o, len - o, " %u%% %" PRIu64 "/%" PRIu64 " regions", pct, done, total);
	if (n < 0 || (size_t)n >= len - o)
		return len - 1;
	o += (size_t)n;
	if (eta_s >= 0) {
		n = snprintf(buf + o, len - o, ", ETA %" PRId64 " s", eta_s);
		if (n < 0 || (size_t)n >= len - o)
			return len - 1;
		o += (size_t)n;
	}
	return o;
}

int64_t vmctl_eta_s(uint64_t done0, uint64_t t0_ms, uint64_t done1, uint64_t t1_ms, uint64_t total)
{
	if (done1 >= total)
		return 0;
	if (done1 <= done0 || t1_ms <= t0_ms)
		return -1; /* no progress seen yet: no rate to go by */
	/* The average rate since the first sample: the resync is paced, so it is steady. */
	uint64_t left = total - done1, dd = done1 - done0, dt = t1_ms - t0_ms;
	return (int64_t)((left * dt + dd * 1000 - 1) / (dd * 1000));
}

/* The leg in resync as the map says (-1: none): known on every engine. */
static int map_resync_leg(const Vm__Volume *v)
{
	for (size_t l = 0; l < v->n_legs; l++)
		if (v->legs[l]->state == 2)
			return (int)l;
	return -1;
}

bool vmctl_virt_resyncing(const Vm__CtlReply *rep)
{
	/*
	 * The owner's live state, or the map: right after the copy the owner
	 * records the leg ok in the map, and a watch ends once both say so.
	 */
	if (rep->virt && rep->virt->resyncing)
		return true;
	return rep->map && rep->map->n_volumes == 1 && map_resync_leg(rep->map->volumes[0]) >= 0;
}

void vmctl_virt_watch_sample(struct vmctl_watch *w, const Vm__CtlReply *rep, uint64_t now_ms)
{
	const Vm__CtlVirtStatus *vs = rep->virt;

	w->eta_s = -1;
	if (!vs || !vs->resyncing) {
		w->have_first = false;
		return;
	}
	/* A new resync (its count went back or its total changed): a new rate. */
	if (!w->have_first || vs->resync_done < w->done0 || vs->resync_total != w->total) {
		w->have_first = true;
		w->done0 = vs->resync_done;
		w->t0_ms = now_ms;
		w->total = vs->resync_total;
	}
	w->eta_s = vmctl_eta_s(w->done0, w->t0_ms, vs->resync_done, now_ms, vs->resync_total);
}

void vmctl_virt_watch_line(const Vm__CtlReply *rep, const struct vmctl_watch *w, bool json)
{
	const Vm__Volume *v = rep->map->volumes[0];
	const Vm__CtlVirtStatus *vs = rep->virt;
	int leg = map_resync_leg(v);
	char bar[128];

	if (json) {
		printf("{\"name\":");
		json_str(v->name);
		printf(",\"resyncing\":%s", vmctl_virt_resyncing(rep) ? "true" : "false");
		if (leg >= 0)
			printf(",\"leg\":%d", leg);
		if (vs && vs->resyncing)
			printf(",\"done\":%" PRIu64 ",\"total\":%" PRIu64 ",\"percent\":%u"
			       ",\"eta_s\":%" PRId64,
			       vs->resync_done, vs->resync_total,
			       vs->resync_total
				   ? (unsigned)(UTIL_MIN(vs->resync_done, vs->resync_total) * 100 /
						vs->resync_total)
				   : 100,
			       w->eta_s);
		printf(",\"owner\":%" PRIu32 ",\"progress_here\":%s}\n", v->owner,
		       vs ? "true" : "false");
		return;
	}
	if (vs && vs->resyncing) {
		vmctl_progress_bar(bar, sizeof(bar), vs->resync_done, vs->resync_total, w->eta_s,
				   20);
		if (leg >= 0)
			printf("%s: resync leg %d %s\n", v->name, leg, bar);
		else
			printf("%s: resync %s\n", v->name, bar);
	} else if (leg >= 0 && vs) {
		printf("%s: resync leg %d copied, being recorded ok in the map\n", v->name, leg);
	} else if (leg >= 0) {
		/* Only the owner counts the regions: this engine sees the leg state. */
		printf("%s: resync leg %d on node %" PRIu32
		       " (progress: vmctl volume show on that engine)\n",
		       v->name, leg, v->owner);
	} else {
		printf("%s: no resync running", v->name);
		for (size_t l = 0; l < v->n_legs; l++)
			printf("%s leg %zu %s", l ? "," : ";", l, leg_state(v->legs[l]->state));
		putchar('\n');
	}
}

void vmctl_virt_print_legs(const Vm__CtlReply *rep, bool json, int64_t eta_s)
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
		char bar[128];
		printf("dirty regions %" PRIu64 " of %" PRIu64 ", writes degraded %" PRIu64 "\n",
		       vs->dirty_regions, vs->nregions, vs->writes_degraded);
		if (vs->resyncing) {
			vmctl_progress_bar(bar, sizeof(bar), vs->resync_done, vs->resync_total,
					   eta_s, 40);
			printf("resync %s\n", bar);
		}
	} else if (map_resync_leg(v) >= 0) {
		printf("resync running on node %" PRIu32 ": its progress is shown there\n",
		       v->owner);
	}
}
