/*
 * iSCSI text keys (RFC 7143 6.1): split a "key=value\0..." data segment into
 * pairs in place, and build one with a growing buffer.
 */
#define UTIL_LOG_TAG "text"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/iscsi.h"
#include "iscsi/iscsi_internal.h"

#define TEXT_MIN_CAP 512

int iscsi_text_parse(char *buf, size_t len, struct iscsi_kv *kv, size_t max, size_t *n)
{
	size_t count = 0;
	size_t pos = 0;

	/*
	 * RFC 7143 6.1: every key=value pair ends with a NUL. Some senders drop
	 * the last one; the caller leaves room for it so we can add it back.
	 */
	if (len > 0 && buf[len - 1] != '\0')
		buf[len++] = '\0';

	while (pos < len) {
		char *pair = buf + pos;
		size_t plen = strlen(pair); /* stops at a NUL inside buf, see above */

		pos += plen + 1;
		if (plen == 0)
			continue; /* padding or a stray separator carries no pair */

		char *eq = memchr(pair, '=', plen);
		if (!eq)
			return -EINVAL;
		size_t klen = (size_t)(eq - pair);
		size_t vlen = plen - klen - 1;
		/* RFC 7143 6.1: a key name is 1..63 characters. */
		if (klen == 0 || klen > ISCSI_KEY_MAX)
			return -EINVAL;
		if (vlen > ISCSI_VALUE_MAX)
			return -EINVAL;
		if (count == max)
			return -E2BIG;
		*eq = '\0';
		kv[count].key = pair;
		kv[count].val = eq + 1;
		count++;
	}
	*n = count;
	return 0;
}

const char *iscsi_kv_get(const struct iscsi_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	}
	return NULL;
}

bool iscsi_name_ok(const char *s, size_t len)
{
	if (len == 0 || len >= ISCSI_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

int iscsi_text_number(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		const char *p = s + 2;
		if (!*p)
			return -EINVAL;
		for (; *p; p++) {
			unsigned d;
			if (*p >= '0' && *p <= '9')
				d = (unsigned)(*p - '0');
			else if (*p >= 'a' && *p <= 'f')
				d = (unsigned)(*p - 'a' + 10);
			else if (*p >= 'A' && *p <= 'F')
				d = (unsigned)(*p - 'A' + 10);
			else
				return -EINVAL;
			if (v >> 60)
				return -ERANGE;
			v = (v << 4) | d;
		}
		*out = v;
		return 0;
	}
	/* decimal-constant: "0", or digits that do not start with 0. */
	if (s[0] == '0') {
		if (s[1] != '\0')
			return -EINVAL;
		*out = 0;
		return 0;
	}
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

void iscsi_text_init(struct iscsi_text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->cap = 0;
}

void iscsi_text_free(struct iscsi_text *t)
{
	free(t->buf);
	iscsi_text_init(t);
}

void iscsi_text_reset(struct iscsi_text *t)
{
	t->len = 0;
}

/* Make room for \p more bytes after t->len. The buffer stays realloc()-able. */
static int text_reserve(struct iscsi_text *t, size_t more)
{
	size_t need = (size_t)t->len + more;

	if (need > UINT32_MAX / 2)
		return -ENOMEM;
	if (need <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : TEXT_MIN_CAP;
	while (cap < need)
		cap *= 2;
	char *nb = realloc(t->buf, cap);
	if (!nb)
		return -ENOMEM;
	t->buf = nb;
	t->cap = (uint32_t)cap;
	return 0;
}

int iscsi_text_append_raw(struct iscsi_text *t, const void *data, size_t len)
{
	/* One spare byte: iscsi_text_parse() may terminate the last pair in place. */
	int rc = text_reserve(t, len + 1);

	if (rc < 0)
		return rc;
	if (len)
		memcpy(t->buf + t->len, data, len);
	t->len += (uint32_t)len;
	return 0;
}

int iscsi_text_add(struct iscsi_text *t, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t klen = strlen(key);
	int vlen;

	va_start(ap, fmt);
	vlen = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (vlen < 0)
		return -EINVAL;

	size_t need = klen + 1 + (size_t)vlen + 1;
	int rc = text_reserve(t, need);
	if (rc < 0)
		return rc;

	char *p = t->buf + t->len;
	memcpy(p, key, klen);
	p[klen] = '=';
	va_start(ap, fmt);
	vsnprintf(p + klen + 1, (size_t)vlen + 1, fmt, ap);
	va_end(ap);
	t->len += (uint32_t)need;
	return 0;
}
