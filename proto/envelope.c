/*
 * envelope.c: the 16-byte envelope of every vmengine message; packing a
 * protobuf-c message behind it and checking it before any unpack.
 */
#define UTIL_LOG_TAG "proto"
#include <errno.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "util/util.h"

/*
 * Per-type limits: a change or an announcement is small; only messages that
 * carry a whole map may be large. A sender bug or a hostile peer can then
 * never make a receiver unpack megabytes where a few hundred bytes belong.
 */
static const struct {
	uint16_t type;
	const char *name;
	size_t max;
} types[] = {
    {PROTO_MAP_CHANGE, "map-change", 8192},
    {PROTO_SYNC_VERSION, "sync-version", 1024},
    {PROTO_SYNC_MAP, "sync-map", PROTO_MAX_PAYLOAD},
    /* 64 back ends' BackendSeen (25 bytes at most each) and the figures. */
    {PROTO_LOAD_REPORT, "load-report", 2048},
    /* A part carries at most CLU_REGIONS_PART_WORDS (4096) words: 13 bytes each. */
    {PROTO_REGION_INTENT, "region-intent", 65536},
    {PROTO_CTL_REQUEST, "ctl-request", 8192},
    {PROTO_CTL_REPLY, "ctl-reply", PROTO_MAX_PAYLOAD},
    {PROTO_MAP_FILE, "map-file", PROTO_MAX_PAYLOAD},
};

size_t proto_max_payload(uint16_t type)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(types); i++)
		if (types[i].type == type)
			return types[i].max;
	return 0;
}

const char *proto_type_name(uint16_t type)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(types); i++)
		if (types[i].type == type)
			return types[i].name;
	return "unknown";
}

int proto_env_check(const void *buf, size_t len, uint16_t *type, const uint8_t **payload,
		    size_t *plen)
{
	const struct proto_env *env = buf;

	if (!buf || len < PROTO_ENV_LEN)
		return -EBADMSG;
	if (get_be32(env->magic) != PROTO_MAGIC || get_be16(env->version) != PROTO_VERSION)
		return -EBADMSG;
	uint16_t t = get_be16(env->type);
	uint32_t l = get_be32(env->length);
	size_t max = proto_max_payload(t);
	if (max == 0)
		return -ENOMSG;
	if (l > max)
		return -EMSGSIZE;
	if ((size_t)l != len - PROTO_ENV_LEN)
		return -EBADMSG;
	const uint8_t *p = (const uint8_t *)buf + PROTO_ENV_LEN;
	if (util_crc32c(p, l) != get_be32(env->crc))
		return -EBADMSG;
	*type = t;
	*payload = p;
	*plen = l;
	return 0;
}

void proto_env_put(struct proto_env *env, uint16_t type, const void *payload, size_t plen)
{
	put_be32(env->magic, PROTO_MAGIC);
	put_be16(env->version, PROTO_VERSION);
	put_be16(env->type, type);
	put_be32(env->length, (uint32_t)plen);
	put_be32(env->crc, util_crc32c(payload, plen));
}

int proto_pack(uint16_t type, const ProtobufCMessage *msg, uint8_t **out, size_t *outlen)
{
	size_t plen = protobuf_c_message_get_packed_size(msg);

	if (plen > proto_max_payload(type))
		return -EMSGSIZE;
	uint8_t *buf = malloc(PROTO_ENV_LEN + plen + 1); /* +1: never malloc(0) semantics */
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf + PROTO_ENV_LEN);
	proto_env_put((struct proto_env *)(void *)buf, type, buf + PROTO_ENV_LEN, plen);
	*out = buf;
	*outlen = PROTO_ENV_LEN + plen;
	return 0;
}

ProtobufCMessage *proto_unpack(uint16_t type, const ProtobufCMessageDescriptor *desc,
			       const void *buf, size_t len, int *err)
{
	const uint8_t *payload;
	uint16_t t;
	size_t plen;
	int rc = proto_env_check(buf, len, &t, &payload, &plen);

	if (rc == 0 && t != type)
		rc = -ENOMSG;
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, plen, payload);
	if (!m)
		*err = -EBADMSG;
	return m;
}
