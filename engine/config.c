/*
 * vmengined configuration: libconfig file over built-in defaults. Every
 * problem is reported as one line naming the file, line and setting.
 */
#define UTIL_LOG_TAG "config"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

void eng_config_default(struct eng_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->node_name, sizeof(cfg->node_name), "vmengine");
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "./var/state");
	snprintf(cfg->tgt.state_dir, sizeof(cfg->tgt.state_dir), "./var/state");
	snprintf(cfg->pool_dir, sizeof(cfg->pool_dir), "./var/pool");
	tgt_config_default(&cfg->tgt);
	snprintf(cfg->cluster.mode, sizeof(cfg->cluster.mode), "solo");
	snprintf(cfg->cluster.ctl_socket, sizeof(cfg->cluster.ctl_socket), "%s", ENG_CTL_SOCKET);
	cfg->cluster.import_volumes = true;
	cfg->cluster.fence_ms = 1000;
	snprintf(cfg->portals[0].addr, sizeof(cfg->portals[0].addr), "127.0.0.1");
	cfg->portals[0].port = ISCSI_DEFAULT_PORT;
	cfg->nportals = 1;
}

int eng_parse_size(const char *s, uint64_t *out)
{
	char *end;
	uint64_t mult = 1;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = 1ull << 10;
		break;
	case 'M':
		mult = 1ull << 20;
		break;
	case 'G':
		mult = 1ull << 30;
		break;
	case 'T':
		mult = 1ull << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I')
			end++;
		if (*end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

int eng_parse_portal(const char *s, struct eng_portal *out)
{
	const char *host = s, *port = NULL;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return -EINVAL;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			return -EINVAL; /* bare IPv6 needs brackets */
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(out->addr))
		return -EINVAL;
	memcpy(out->addr, host, hlen);
	out->addr[hlen] = '\0';
	out->port = ISCSI_DEFAULT_PORT;
	if (port) {
		char *end;
		unsigned long p = strtoul(port, &end, 10);
		if (!*port || *end || p == 0 || p > 65535)
			return -EINVAL;
		out->port = (uint16_t)p;
	}
	return 0;
}

/* Small readers that check types and report the offending setting. */
struct reader {
	const char *file;
	char *err;
	size_t errlen;
	int failed;
};

static void bad(struct reader *r, const config_setting_t *s, const char *what)
{
	if (r->failed)
		return;
	r->failed = 1;
	snprintf(r->err, r->errlen, "%s:%d: %s: %s", r->file, s ? config_setting_source_line(s) : 0,
		 s && config_setting_name(s) ? config_setting_name(s) : "setting", what);
}

static void get_str(struct reader *r, const config_setting_t *grp, const char *name, char *dst,
		    size_t len)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, name) : NULL;

	if (!s)
		return;
	const char *v = config_setting_get_string(s);
	if (!v) {
		bad(r, s, "must be a string");
		return;
	}
	if (strlen(v) >= len) {
		bad(r, s, "too long");
		return;
	}
	snprintf(dst, len, "%s", v);
}

static void get_bool(struct reader *r, const config_setting_t *grp, const char *name, bool *dst)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, name) : NULL;

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		bad(r, s, "must be true or false");
		return;
	}
	*dst = config_setting_get_bool(s);
}

static void get_uint(struct reader *r, const config_setting_t *grp, const char *name, uint32_t *dst,
		     uint32_t min, uint32_t max)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, name) : NULL;

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		bad(r, s, "must be an integer");
		return;
	}
	long long v = config_setting_get_int64(s);
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	if (v < (long long)min || v > (long long)max) {
		char msg[96];
		snprintf(msg, sizeof(msg), "must be between %" PRIu32 " and %" PRIu32, min, max);
		bad(r, s, msg);
		return;
	}
	*dst = (uint32_t)v;
}

static void get_chap(struct reader *r, const config_setting_t *grp, struct iscsi_chap_cred *c)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, "chap") : NULL;

	if (!s)
		s = grp ? config_setting_get_member(grp, "discovery_chap") : NULL;
	if (!s)
		return;
	get_str(r, s, "user", c->user, sizeof(c->user));
	get_str(r, s, "secret", c->secret, sizeof(c->secret));
	get_str(r, s, "mutual_user", c->mutual_user, sizeof(c->mutual_user));
	get_str(r, s, "mutual_secret", c->mutual_secret, sizeof(c->mutual_secret));
	if (r->failed)
		return;
	if (c->user[0] && !c->secret[0])
		bad(r, s, "CHAP user without a secret");
	else if (c->mutual_user[0] && (!c->mutual_secret[0] || !c->user[0]))
		bad(r, s, "mutual CHAP needs user, secret, mutual_user and mutual_secret");
	else if (c->mutual_secret[0] && strcmp(c->mutual_secret, c->secret) == 0)
		/* RFC 7143 12.1.3: the two directions must use different secrets. */
		bad(r, s, "mutual_secret must differ from secret");
}

static void read_iscsi(struct reader *r, const config_setting_t *g, struct eng_config *cfg)
{
	struct tgt_config *t = &cfg->tgt;
	const config_setting_t *s;

	if (!g)
		return;
	get_str(r, g, "node_prefix", t->node_prefix, sizeof(t->node_prefix));
	get_uint(r, g, "max_recv_data_segment_length", &t->max_recv_dsl, 512, 16777215);
	get_uint(r, g, "max_burst_length", &t->max_burst, 512, 16777215);
	get_uint(r, g, "first_burst_length", &t->first_burst, 512, 16777215);
	get_bool(r, g, "immediate_data", &t->immediate_data);
	get_bool(r, g, "initial_r2t", &t->initial_r2t);
	get_uint(r, g, "max_outstanding_r2t", &t->max_outstanding_r2t, 1, 65535);
	get_uint(r, g, "queue_depth", &t->queue_depth, 1, 4096);
	get_uint(r, g, "nop_interval", &t->nop_interval_s, 0, 3600);
	get_uint(r, g, "nop_timeout", &t->nop_timeout_s, 1, 3600);
	get_uint(r, g, "login_timeout", &t->login_timeout_s, 1, 3600);
	get_uint(r, g, "max_transfer_blocks", &t->max_xfer_blocks, 8, 1u << 21);
	get_uint(r, g, "sanitize_rate_mib", &t->sanitize_mib_s, 1, 1u << 20);
	get_chap(r, g, &t->discovery_chap);
	if ((s = config_setting_get_member(g, "digests")) != NULL) {
		int n = config_setting_length(s);
		t->digest_crc32c = t->digest_none = false;
		for (int i = 0; i < n; i++) {
			const char *d = config_setting_get_string_elem(s, i);
			if (d && strcasecmp(d, "crc32c") == 0)
				t->digest_crc32c = true;
			else if (d && strcasecmp(d, "none") == 0)
				t->digest_none = true;
			else
				bad(r, s, "entries must be \"crc32c\" or \"none\"");
		}
		if (!t->digest_crc32c && !t->digest_none)
			bad(r, s, "must list at least one digest");
	}
	if ((s = config_setting_get_member(g, "portals")) != NULL) {
		int n = config_setting_length(s);
		if (n < 1 || n > ENG_MAX_PORTALS)
			bad(r, s, "must list 1 to 8 portals");
		cfg->nportals = 0;
		for (int i = 0; i < n && i < ENG_MAX_PORTALS; i++) {
			const char *p = config_setting_get_string_elem(s, i);
			if (!p || eng_parse_portal(p, &cfg->portals[cfg->nportals]) < 0) {
				bad(r, s,
				    "entries must look like \"127.0.0.1:3260\" or \"[::1]:3260\"");
				break;
			}
			cfg->nportals++;
		}
	}
}

static bool valid_volume_name(const char *n)
{
	/* The name becomes part of an IQN: lowercase letters, digits, '-', '.' (RFC 3722). */
	if (!n[0] || strlen(n) >= VOL_NAME_MAX)
		return false;
	for (const char *p = n; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

static void read_volumes(struct reader *r, const config_setting_t *l, struct eng_config *cfg)
{
	if (!l)
		return;
	int n = config_setting_length(l);
	if (n > ENG_MAX_VOLUMES) {
		bad(r, l, "too many volumes");
		return;
	}
	for (int i = 0; i < n && !r->failed; i++) {
		const config_setting_t *v = config_setting_get_elem(l, (unsigned)i);
		struct eng_volume *vol = &cfg->volumes[cfg->nvolumes];
		const char *size = NULL;
		memset(vol, 0, sizeof(*vol));
		vol->block_size = 512;
		get_str(r, v, "name", vol->name, sizeof(vol->name));
		if (!valid_volume_name(vol->name)) {
			bad(r, v, "volume name must be 1-63 of a-z 0-9 - .");
			return;
		}
		for (unsigned j = 0; j < cfg->nvolumes; j++)
			if (strcmp(cfg->volumes[j].name, vol->name) == 0)
				bad(r, v, "volume name used twice");
		const config_setting_t *s = config_setting_get_member(v, "size");
		if (s && config_setting_type(s) == CONFIG_TYPE_STRING)
			size = config_setting_get_string(s);
		if (s && (config_setting_type(s) == CONFIG_TYPE_INT ||
			  config_setting_type(s) == CONFIG_TYPE_INT64)) {
			long long b = config_setting_get_int64(s);
			if (config_setting_type(s) == CONFIG_TYPE_INT)
				b = config_setting_get_int(s);
			vol->size = b > 0 ? (uint64_t)b : 0;
		} else if (!size || eng_parse_size(size, &vol->size) < 0) {
			bad(r, s ? s : v, "size must be bytes or a number with K/M/G/T");
			return;
		}
		get_uint(r, v, "block_size", &vol->block_size, 512, 4096);
		if (vol->block_size != 512 && vol->block_size != 4096)
			bad(r, v, "block_size must be 512 or 4096");
		else if (vol->size == 0 || vol->size % vol->block_size)
			bad(r, v, "size must be a non-zero multiple of the block size");
		get_chap(r, v, &vol->chap);
		cfg->nvolumes++;
	}
}

static void read_cluster(struct reader *r, const config_setting_t *g, struct eng_config *cfg)
{
	struct eng_cluster *c = &cfg->cluster;
	struct eng_portal p;

	if (!g)
		return;
	get_str(r, g, "mode", c->mode, sizeof(c->mode));
	if (strcmp(c->mode, "solo") != 0 && strcmp(c->mode, "corosync") != 0)
		bad(r, config_setting_get_member(g, "mode"), "must be \"solo\" or \"corosync\"");
	get_str(r, g, "ctl_socket", c->ctl_socket, sizeof(c->ctl_socket));
	get_str(r, g, "advertise", c->advertise, sizeof(c->advertise));
	if (c->advertise[0] && eng_parse_portal(c->advertise, &p) < 0)
		bad(r, config_setting_get_member(g, "advertise"),
		    "must look like \"10.0.0.1:3260\"");
	get_bool(r, g, "import_volumes", &c->import_volumes);
	get_uint(r, g, "fence_ms", &c->fence_ms, 100, 60000);
	get_str(r, g, "service_dev", c->service_dev, sizeof(c->service_dev));
}

int eng_config_load(struct eng_config *cfg, const char *path, char *err, size_t errlen)
{
	config_t cf;
	struct reader r = {.file = path, .err = err, .errlen = errlen};
	const config_setting_t *root, *g;
	bool pool_set = false;

	config_init(&cf);
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&cf),
				 config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	root = config_root_setting(&cf);
	get_str(&r, root, "node_name", cfg->node_name, sizeof(cfg->node_name));
	get_str(&r, root, "state_dir", cfg->state_dir, sizeof(cfg->state_dir));
	/* Reservations with APTPL are kept there (SPC-4 5.12.4). */
	snprintf(cfg->tgt.state_dir, sizeof(cfg->tgt.state_dir), "%.1023s", cfg->state_dir);
	g = config_setting_get_member(root, "log");
	get_bool(&r, g, "debug", &cfg->debug);
	get_bool(&r, g, "syslog", &cfg->syslog);
	get_uint(&r, root, "reactors", &cfg->reactors, 0, 256);
	read_iscsi(&r, config_setting_get_member(root, "iscsi"), cfg);
	g = config_setting_get_member(root, "pool");
	if (g && config_setting_get_member(g, "dir")) {
		get_str(&r, g, "dir", cfg->pool_dir, sizeof(cfg->pool_dir));
		pool_set = true;
	}
	get_bool(&r, g, "shared", &cfg->pool_shared);
	read_volumes(&r, config_setting_get_member(root, "volumes"), cfg);
	read_cluster(&r, config_setting_get_member(root, "cluster"), cfg);
	if (!cfg->cluster.advertise[0] && cfg->nportals)
		snprintf(cfg->cluster.advertise, sizeof(cfg->cluster.advertise),
			 strchr(cfg->portals[0].addr, ':') ? "[%s]:%u" : "%s:%u",
			 cfg->portals[0].addr, cfg->portals[0].port);
	if (!pool_set)
		snprintf(cfg->pool_dir, sizeof(cfg->pool_dir), "%.4000s/../pool", cfg->state_dir);
	if (!r.failed && cfg->tgt.first_burst > cfg->tgt.max_burst)
		snprintf(err, errlen, "%s: first_burst_length above max_burst_length", path),
		    r.failed = 1;
	config_destroy(&cf);
	return r.failed ? -1 : 0;
}
