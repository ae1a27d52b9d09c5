/*
 * vmctl: the command line of vmengine. Talks to the local engine over its
 * libqb IPC socket (root only), one request and one reply per command.
 * Human tables by default, --json for scripts. Exit status: 0 success,
 * 1 the engine refused or failed (one line on stderr), 2 bad arguments
 * (usage on stderr), 3 the engine is unreachable.
 */
#define UTIL_LOG_TAG "vmctl"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <qb/qbipcc.h>

#include "engine/engine.h"
#include "engine/vmctl_virt.h"
#include "proto/proto.h"

/* Above the engine's own request timeout (15 s), so the engine's answer arrives first. */
#define TIMEOUT_MS 20000
#define MAX_MSG	   (PROTO_ENV_LEN + PROTO_MAX_PAYLOAD + 4096)

static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmctl [--json] [-s SOCKET] COMMAND\n"
		"  cluster status                       members, quorum, map version, load\n"
		"  volume list                          every volume of the map\n"
		"  volume show NAME [--watch]           --watch: redraw every second while a "
		"resync runs\n"
		"  volume create NAME SIZE [--owner NODE] [--block-size 512|4096]\n"
		"  volume move NAME NODE                hosts log out and log in again at NODE\n"
		"  volume delete NAME\n"
		"  volume resize NAME SIZE              grow only\n"
		"  volume chap NAME USER [TARGET-USER]  secret read from stdin; USER \"\" turns "
		"CHAP off;\n"
		"                                       TARGET-USER: mutual CHAP, the target's "
		"secret on a second line\n"
		"  volume create ... [--mirror 1|2] [--extent SIZE]  legs on back ends\n"
		"  backend add PORTAL TARGET-IQN [--lun N] [--chap USER]  secret from stdin\n"
		"  backend list                         size, free space, state on each engine\n"
		"  backend remove ID                    only when no volume uses it\n"
		"  host allow VOLUME INITIATOR-IQN\n"
		"  host deny VOLUME INITIATOR-IQN       the volume stays closed when the last one "
		"goes\n"
		"SIZE: bytes or with K/M/G/T (powers of 1024). SOCKET: default \"%s\" or "
		"$VMCTL_SOCKET.\n",
		ENG_CTL_SOCKET);
}

static int bad_usage(const char *why)
{
	fprintf(stderr, "vmctl: %s\n", why);
	usage(stderr);
	return 2;
}

/* ---- output ---- */

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

static void json_volume(const Vm__Volume *v)
{
	printf("{\"name\":");
	json_str(v->name);
	printf(",\"size\":%" PRIu64 ",\"block_size\":%" PRIu32 ",\"owner\":%" PRIu32
	       ",\"partner\":%" PRIu32 ",\"restricted\":%s,\"allow\":[",
	       v->size, v->block_size, v->owner, v->partner, v->restricted ? "true" : "false");
	for (size_t k = 0; k < v->n_allow; k++) {
		if (k)
			putchar(',');
		json_str(v->allow[k]);
	}
	printf("],\"chap_user\":");
	json_str(v->chap_user);
	printf(",\"generation\":%" PRIu64 ",\"portal\":", v->generation);
	json_str(v->service_portal);
	putchar('}');
}

static void human_size(uint64_t b, char *buf, size_t len)
{
	static const char *const units[] = {"B", "K", "M", "G", "T"};
	unsigned u = 0;

	while (u + 1 < UTIL_ARRAY_SIZE(units) && b >= 1024 && b % 1024 == 0) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 "%s", b, units[u]);
}

static void print_map(const Vm__Map *m, bool one)
{
	char size[32];

	if (json) {
		if (one && m->n_volumes == 1) {
			json_volume(m->volumes[0]);
			putchar('\n');
			return;
		}
		printf("{\"version\":%" PRIu64 ",\"volumes\":[", m->version);
		for (size_t i = 0; i < m->n_volumes; i++) {
			if (i)
				putchar(',');
			json_volume(m->volumes[i]);
		}
		printf("]}\n");
		return;
	}
	if (!one)
		printf("map version %" PRIu64 ", %zu volume(s)\n", m->version, m->n_volumes);
	if (m->n_volumes == 0)
		return;
	printf("%-24s %8s %5s %6s %7s %-8s %s\n", "NAME", "SIZE", "BS", "OWNER", "PARTNER", "CHAP",
	       "ALLOW");
	for (size_t i = 0; i < m->n_volumes; i++) {
		const Vm__Volume *v = m->volumes[i];
		human_size(v->size, size, sizeof(size));
		printf("%-24s %8s %5" PRIu32 " %6" PRIu32 " %7" PRIu32 " %-8s ", v->name, size,
		       v->block_size, v->owner, v->partner, v->chap_user[0] ? v->chap_user : "-");
		if (!v->restricted)
			printf("(any)");
		else if (!v->n_allow)
			printf("(nobody)");
		for (size_t k = 0; k < v->n_allow; k++)
			printf("%s%s", k ? "," : "", v->allow[k]);
		putchar('\n');
	}
}

static void print_status(const Vm__CtlStatus *st)
{
	if (json) {
		printf("{\"node\":%" PRIu32 ",\"mode\":", st->node);
		json_str(st->mode);
		printf(",\"quorate\":%s,\"state\":", st->quorate ? "true" : "false");
		json_str(st->state);
		printf(",\"version\":%" PRIu64 ",\"dropped\":%" PRIu64
		       ",\"dropped_unknown\":%" PRIu64 ",\"dropped_oversized\":%" PRIu64
		       ",\"dropped_malformed\":%" PRIu64 ",\"send_retries\":%" PRIu64
		       ",\"members\":[",
		       st->version, st->dropped, st->dropped_unknown, st->dropped_oversized,
		       st->dropped_malformed, st->send_retries);
		for (size_t i = 0; i < st->n_members; i++) {
			const Vm__CtlMember *m = st->members[i];
			printf("%s{\"node\":%" PRIu32 ",\"name\":", i ? "," : "", m->node);
			json_str(m->name);
			printf(",\"portal\":");
			json_str(m->portal);
			printf(",\"volumes\":%" PRIu32 ",\"read_ops\":%" PRIu64
			       ",\"write_ops\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"local\":%s}",
			       m->volumes, m->read_ops, m->write_ops, m->bytes,
			       m->local ? "true" : "false");
		}
		printf("]}\n");
		return;
	}
	printf("node %" PRIu32 ", %s mode, %s, map %s at version %" PRIu64 "\n", st->node, st->mode,
	       st->quorate ? "quorate" : "NO QUORUM", st->state, st->version);
	if (st->dropped || st->send_retries)
		printf("cluster messages dropped: %" PRIu64 " (unknown %" PRIu64
		       ", oversized %" PRIu64 ", malformed %" PRIu64 "); send retries %" PRIu64
		       "\n",
		       st->dropped, st->dropped_unknown, st->dropped_oversized,
		       st->dropped_malformed, st->send_retries);
	printf("%-6s %-16s %-24s %7s %10s %10s\n", "NODE", "NAME", "PORTAL", "VOLUMES", "READS",
	       "WRITES");
	for (size_t i = 0; i < st->n_members; i++) {
		const Vm__CtlMember *m = st->members[i];
		printf("%-6" PRIu32 " %-16s %-24s %7" PRIu32 " %10" PRIu64 " %10" PRIu64 "%s\n",
		       m->node, m->name[0] ? m->name : "?", m->portal[0] ? m->portal : "?",
		       m->volumes, m->read_ops, m->write_ops, m->local ? "  (this engine)" : "");
	}
}

/* ---- transport ---- */

static int call(const char *sock, const Vm__CtlRequest *rq, Vm__CtlReply **out)
{
	struct qb_ipc_request_header hdr;
	uint8_t *buf, *rbuf;
	size_t len;
	int err = 0;

	if (proto_pack(PROTO_CTL_REQUEST, &rq->base, &buf, &len) < 0) {
		fprintf(stderr, "vmctl: request too large\n");
		return 2;
	}
	qb_ipcc_connection_t *c = qb_ipcc_connect(sock, MAX_MSG);
	if (!c) {
		fprintf(stderr,
			"vmctl: cannot reach the engine on socket \"%s\": %s (is vmengined "
			"running? as root?)\n",
			sock, strerror(errno));
		free(buf);
		return 3;
	}
	rbuf = malloc(MAX_MSG);
	hdr.id = (int32_t)rq->cmd;
	hdr.size = (int32_t)(sizeof(hdr) + len);
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {buf, len}};
	ssize_t n = rbuf ? qb_ipcc_sendv_recv(c, iov, 2, rbuf, MAX_MSG, TIMEOUT_MS) : -ENOMEM;
	free(buf);
	qb_ipcc_disconnect(c);
	if (n < (ssize_t)sizeof(struct qb_ipc_response_header)) {
		fprintf(stderr, "vmctl: no answer from the engine: %s\n",
			n < 0 ? strerror((int)-n) : "short reply");
		free(rbuf);
		return 3;
	}
	size_t off = sizeof(struct qb_ipc_response_header);
	*out = (Vm__CtlReply *)proto_unpack(PROTO_CTL_REPLY, &vm__ctl_reply__descriptor, rbuf + off,
					    (size_t)n - off, &err);
	free(rbuf);
	if (!*out) {
		fprintf(stderr, "vmctl: malformed reply from the engine (%s)\n", strerror(-err));
		return 3;
	}
	return 0;
}

/* ---- commands ---- */

static int parse_size(const char *s, uint64_t *out)
{
	if (eng_parse_size(s, out) < 0 || *out == 0) {
		fprintf(stderr, "vmctl: bad size '%s': bytes or a number with K/M/G/T\n", s);
		return 2;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * volume show NAME --watch: the same request once a second. On a terminal
 * the screen is redrawn (the volume, its legs, the progress bar with an
 * ETA); otherwise (a pipe, a file, --json) one line per second. Ends with 0
 * once no resync runs (at once when none does), on Ctrl-C (the default
 * SIGINT), or with the exit status of the first failed request.
 */
static int watch(const char *sock, const Vm__CtlRequest *rq)
{
	bool tty = isatty(STDOUT_FILENO) && !json;
	struct vmctl_watch w = {.eta_s = -1};

	for (;;) {
		Vm__CtlReply *rep = NULL;
		uint64_t t = now_ms();
		int rc = call(sock, rq, &rep);
		if (rc)
			return rc;
		if (rep->error || !rep->map || rep->map->n_volumes != 1) {
			fprintf(stderr, "vmctl: %s\n",
				rep->message[0] ? rep->message : strerror(-rep->error));
			vm__ctl_reply__free_unpacked(rep, NULL);
			return 1;
		}
		vmctl_virt_watch_sample(&w, rep, t);
		bool running = vmctl_virt_resyncing(rep);
		if (tty) {
			printf("\033[H\033[J"); /* cursor home, clear below: redraw in place */
			print_map(rep->map, true);
			vmctl_virt_print_legs(rep, false, w.eta_s);
			printf("%s\n",
			       running ? "(every second; Ctrl-C to stop)" : "no resync running");
		} else {
			vmctl_virt_watch_line(rep, &w, json);
		}
		fflush(stdout);
		vm__ctl_reply__free_unpacked(rep, NULL);
		if (!running)
			return 0;
		uint64_t spent = now_ms() - t;
		if (spent < 1000) {
			struct timespec ts = {0, (long)(1000 - spent) * 1000000L};
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
	}
}

static int read_secret(char *buf, size_t len)
{
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "CHAP secret: ");
	if (!fgets(buf, (int)len, stdin)) {
		fprintf(stderr, "vmctl: no secret on stdin\n");
		return 2;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	const char *sock = getenv("VMCTL_SOCKET");
	const char *owner = "";
	uint32_t block_size = 0;
	bool watching = false;
	Vm__CtlRequest rq = VM__CTL_REQUEST__INIT;
	char secret[512], tsecret[512];
	int opt, rc;
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"socket", required_argument, NULL, 's'},
	    {"owner", required_argument, NULL, 'o'},
	    {"block-size", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {"watch", no_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};

	if (!sock || !*sock)
		sock = ENG_CTL_SOCKET;
	while ((opt = getopt_long(argc, argv, "+js:o:b:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 's':
			sock = optarg;
			break;
		case 'o':
			owner = optarg;
			break;
		case 'b':
			block_size = (uint32_t)strtoul(optarg, NULL, 10);
			if (block_size != 512 && block_size != 4096)
				return bad_usage("--block-size must be 512 or 4096");
			break;
		case 'w':
			watching = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* Options may also follow the command ("volume create a 1G --owner n2"). */
	char *args[8];
	int nargs = 0;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--watch") == 0) {
			watching = true;
		} else if ((strcmp(argv[i], "--owner") == 0 ||
			    strcmp(argv[i], "--block-size") == 0) &&
			   i + 1 < argc) {
			if (argv[i][2] == 'o') {
				owner = argv[++i];
			} else {
				block_size = (uint32_t)strtoul(argv[++i], NULL, 10);
				if (block_size != 512 && block_size != 4096)
					return bad_usage("--block-size must be 512 or 4096");
			}
		} else if ((rc = vmctl_virt_option(argv, argc, &i, &rq)) != 0) {
			if (rc < 0)
				return 2;
		} else if (strncmp(argv[i], "--", 2) == 0 && argv[i][2]) {
			return bad_usage("unknown option");
		} else if (nargs < (int)UTIL_ARRAY_SIZE(args)) {
			args[nargs++] = argv[i];
		} else {
			return bad_usage("too many arguments");
		}
	}
	if (nargs < 2)
		return bad_usage(nargs ? "missing subcommand" : "missing command");
	const char *noun = args[0], *verb = args[1];
#define NEED(n)                                                                                    \
	do {                                                                                       \
		if (nargs != (n))                                                                  \
			return bad_usage("wrong number of arguments");                             \
	} while (0)
	if (strcmp(noun, "cluster") == 0 && strcmp(verb, "status") == 0) {
		NEED(2);
		rq.cmd = VM__CTL_CMD__CTL_STATUS;
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "list") == 0) {
		NEED(2);
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_LIST;
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "show") == 0) {
		NEED(3);
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_SHOW;
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "create") == 0) {
		NEED(4);
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_CREATE;
		if ((rc = parse_size(args[3], &rq.size)) != 0)
			return rc;
		rq.owner = (char *)owner;
		rq.block_size = block_size;
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "move") == 0) {
		NEED(4);
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_MOVE;
		rq.owner = args[3];
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "delete") == 0) {
		NEED(3);
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_DELETE;
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "resize") == 0) {
		NEED(4);
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_RESIZE;
		if ((rc = parse_size(args[3], &rq.size)) != 0)
			return rc;
	} else if (strcmp(noun, "volume") == 0 && strcmp(verb, "chap") == 0) {
		if (nargs != 4 && nargs != 5)
			return bad_usage("wrong number of arguments");
		rq.cmd = VM__CTL_CMD__CTL_VOLUME_CHAP;
		rq.chap_user = args[3];
		secret[0] = '\0';
		if (args[3][0] && (rc = read_secret(secret, sizeof(secret))) != 0)
			return rc;
		rq.chap_secret = secret;
		if (nargs == 5) {
			if (!args[3][0] || !args[4][0])
				return bad_usage("mutual CHAP needs both user names");
			rq.chap_mutual_user = args[4];
			if ((rc = read_secret(tsecret, sizeof(tsecret))) != 0)
				return rc;
			rq.chap_mutual_secret = tsecret;
		}
	} else if (strcmp(noun, "host") == 0 &&
		   (strcmp(verb, "allow") == 0 || strcmp(verb, "deny") == 0)) {
		NEED(4);
		rq.cmd = verb[0] == 'a' ? VM__CTL_CMD__CTL_HOST_ALLOW : VM__CTL_CMD__CTL_HOST_DENY;
		rq.iqn = args[3];
	} else if (strcmp(noun, "debug") == 0 && strcmp(verb, "bad-message") == 0) {
		NEED(3); /* test hook: unknown | oversized | corrupt */
		rq.cmd = VM__CTL_CMD__CTL_DEBUG_BAD_MESSAGE;
	} else if ((rc = vmctl_virt_command(args, nargs, &rq, secret, sizeof(secret))) >= 0) {
		if (rc)
			return rc;
	} else {
		return bad_usage("unknown command");
	}
	if (nargs >= 3)
		rq.name = args[2];
	if (watching) {
		if (rq.cmd != VM__CTL_CMD__CTL_VOLUME_SHOW)
			return bad_usage("--watch goes with volume show");
		return watch(sock, &rq);
	}

	Vm__CtlReply *rep = NULL;
	if ((rc = call(sock, &rq, &rep)) != 0)
		return rc;
	rc = 0;
	if (rep->error) {
		fprintf(stderr, "vmctl: %s\n",
			rep->message[0] ? rep->message : strerror(-rep->error));
		rc = 1;
	} else if (vmctl_virt_print(&rq, rep, json)) {
		/* back ends */
	} else if (rep->status) {
		print_status(rep->status);
	} else if (rep->map) {
		print_map(rep->map, rq.cmd != VM__CTL_CMD__CTL_VOLUME_LIST);
		if (rq.cmd != VM__CTL_CMD__CTL_VOLUME_LIST && !json)
			vmctl_virt_print_legs(rep, json, -1);
	} else if (json) {
		printf("{\"result\":");
		json_str(rep->message);
		printf("}\n");
	} else if (rep->message[0]) {
		printf("%s\n", rep->message);
	}
	vm__ctl_reply__free_unpacked(rep, NULL);
	return rc;
}
