/*
 * tool_wire.h: small helpers both test tools (robust.c, fuzz_pdu.c) use to
 * talk iSCSI on a socket by hand. Included once per tool, after the system
 * headers.
 */

/* ---- socket helpers ---- */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Digests go on the wire least significant byte first (RFC 7143 B.4). */
static void put_digest(uint8_t *p, uint32_t crc)
{
	p[0] = (uint8_t)crc;
	p[1] = (uint8_t)(crc >> 8);
	p[2] = (uint8_t)(crc >> 16);
	p[3] = (uint8_t)(crc >> 24);
}

/* Send everything; the peer closing on us is -EPIPE or -ECONNRESET, not a signal. */
static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Value of \p key in a "k=v\0k=v\0" segment, or NULL. */
static const char *text_get(const uint8_t *data, uint32_t len, const char *key)
{
	size_t klen = strlen(key);
	uint32_t off = 0;

	while (off < len) {
		const char *kv = (const char *)data + off;
		size_t n = strnlen(kv, len - off);

		if (n > klen && strncmp(kv, key, klen) == 0 && kv[klen] == '=')
			return kv + klen + 1;
		off += (uint32_t)n + 1;
	}
	return NULL;
}
