/*
 * url.c: iSCSI URLs in libiscsi's form,
 * iscsi://[user[%secret]@]host[:port]/target-iqn/lun[?opt=val&...],
 * so that every tool of the project and libiscsi's tools take the same
 * strings.
 */
#define UTIL_LOG_TAG "ini-url"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-init/ini.h"

/* Copy [s, s + len) into dst (size \p size), failing when it does not fit. */
static int copy_part(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size)
		return -EINVAL;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

static int parse_digest(const char *v, bool *on)
{
	if (strcasecmp(v, "crc32c") == 0)
		*on = true;
	else if (strcasecmp(v, "none") == 0)
		*on = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_option(struct ini_config *cfg, const char *opt, size_t len)
{
	char buf[ISCSI_CHAP_SECRET_MAX + 32];
	char *val;

	if (copy_part(buf, sizeof(buf), opt, len) < 0)
		return -EINVAL;
	val = strchr(buf, '=');
	if (!val)
		return -EINVAL;
	*val++ = '\0';
	if (strcmp(buf, "header_digest") == 0)
		return parse_digest(val, &cfg->header_digest);
	if (strcmp(buf, "data_digest") == 0)
		return parse_digest(val, &cfg->data_digest);
	if (strcmp(buf, "digest") == 0) {
		int rc = parse_digest(val, &cfg->header_digest);
		cfg->data_digest = cfg->header_digest;
		return rc;
	}
	if (strcmp(buf, "target_user") == 0)
		return copy_part(cfg->chap.mutual_user, sizeof(cfg->chap.mutual_user), val,
				 strlen(val));
	if (strcmp(buf, "target_password") == 0)
		return copy_part(cfg->chap.mutual_secret, sizeof(cfg->chap.mutual_secret), val,
				 strlen(val));
	return -EINVAL;
}

int ini_url_parse(const char *url, struct ini_config *cfg, uint64_t *lun)
{
	const char *p, *at, *slash, *end, *q;
	char *e;

	if (strncmp(url, "iscsi://", 8) != 0)
		return -EINVAL;
	p = url + 8;
	q = strchr(p, '?');
	end = q ? q : p + strlen(p);
	slash = memchr(p, '/', (size_t)(end - p));
	at = memchr(p, '@', (size_t)((slash ? slash : end) - p));
	*lun = 0;
	cfg->target_name[0] = '\0';
	cfg->chap.user[0] = cfg->chap.secret[0] = '\0';
	if (at) {
		const char *pct = memchr(p, '%', (size_t)(at - p));
		if (copy_part(cfg->chap.user, sizeof(cfg->chap.user), p,
			      (size_t)((pct ? pct : at) - p)) < 0)
			return -EINVAL;
		if (pct && copy_part(cfg->chap.secret, sizeof(cfg->chap.secret), pct + 1,
				     (size_t)(at - pct - 1)) < 0)
			return -EINVAL;
		p = at + 1;
	}
	/* host[:port], the host possibly "[v6]" */
	const char *hend = slash ? slash : end;
	const char *colon;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hend - p));
		if (!rb || copy_part(cfg->host, sizeof(cfg->host), p + 1, (size_t)(rb - p - 1)) < 0)
			return -EINVAL;
		colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(hend - p));
		if (copy_part(cfg->host, sizeof(cfg->host), p,
			      (size_t)((colon ? colon : hend) - p)) < 0)
			return -EINVAL;
	}
	if (!cfg->host[0])
		return -EINVAL;
	cfg->port = INI_DEFAULT_PORT;
	if (colon) {
		unsigned long port = strtoul(colon + 1, &e, 10);
		if (e != hend || port == 0 || port > 65535)
			return -EINVAL;
		cfg->port = (uint16_t)port;
	}
	if (slash && slash + 1 < end) {
		const char *tname = slash + 1;
		const char *lslash = memchr(tname, '/', (size_t)(end - tname));
		if (copy_part(cfg->target_name, sizeof(cfg->target_name), tname,
			      (size_t)((lslash ? lslash : end) - tname)) < 0)
			return -EINVAL;
		if (lslash) {
			unsigned long long l = strtoull(lslash + 1, &e, 10);
			if (e != end || lslash + 1 == end)
				return -EINVAL;
			*lun = l;
		}
	}
	while (q && *q) {
		const char *opt = q + 1;
		const char *amp = strchr(opt, '&');
		size_t len = amp ? (size_t)(amp - opt) : strlen(opt);
		if (len && parse_option(cfg, opt, len) < 0)
			return -EINVAL;
		q = amp;
	}
	return 0;
}
