/*
 * proto: the envelope in front of every vmengine message (cluster messages on
 * CPG, vmctl requests and replies, the persisted map file) and the helpers
 * that pack a protobuf-c message behind it and check it before anything is
 * unpacked.
 *
 * Wire layout, 16 bytes, big-endian, offsets frozen below:
 *   0 magic "VMEN" | 4 version | 6 type | 8 payload length | 12 CRC32C(payload)
 * followed by exactly `length` bytes of one protobuf message whose kind is
 * given by `type`. A receiver calls proto_env_check() first: only a buffer it
 * accepts may be handed to the protobuf-c unpack function of that type.
 */
#ifndef VMENGINE_PROTO_H
#define VMENGINE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "proto/vmengine.pb-c.h"

#define PROTO_MAGIC   0x564d454eu /* "VMEN" */
#define PROTO_VERSION 1
#define PROTO_ENV_LEN 16
/* Largest payload of any type (a whole map, a vmctl reply listing it). */
#define PROTO_MAX_PAYLOAD (1u << 20)

struct proto_env {
	uint8_t magic[4];
	uint8_t version[2];
	uint8_t type[2];
	uint8_t length[4];
	uint8_t crc[4];
};
_Static_assert(sizeof(struct proto_env) == PROTO_ENV_LEN, "envelope size is frozen");
_Static_assert(offsetof(struct proto_env, magic) == 0, "frozen");
_Static_assert(offsetof(struct proto_env, version) == 4, "frozen");
_Static_assert(offsetof(struct proto_env, type) == 6, "frozen");
_Static_assert(offsetof(struct proto_env, length) == 8, "frozen");
_Static_assert(offsetof(struct proto_env, crc) == 12, "frozen");

/* Message types; numbers are frozen on the wire and in map files. */
enum proto_type {
	PROTO_MAP_CHANGE = 1,	 /* Vm__MapChange (CPG) */
	PROTO_SYNC_VERSION = 2,	 /* Vm__SyncVersion (CPG) */
	PROTO_SYNC_MAP = 3,	 /* Vm__SyncMap (CPG) */
	PROTO_LOAD_REPORT = 4,	 /* Vm__LoadReport (CPG) */
	PROTO_REGION_INTENT = 5, /* Vm__RegionIntent (CPG) */
	PROTO_CTL_REQUEST = 16,	 /* Vm__CtlRequest (IPC) */
	PROTO_CTL_REPLY = 17,	 /* Vm__CtlReply (IPC) */
	PROTO_MAP_FILE = 32,	 /* Vm__Map (the persisted map) */
};

/* Largest payload accepted for \p type, 0 for an unknown type. */
size_t proto_max_payload(uint16_t type);
/* A short name for logs ("map-change"), "unknown" for an unknown type. */
const char *proto_type_name(uint16_t type);

/*
 * Check the envelope of \p buf (\p len bytes as received): magic, version,
 * a known type, a length that is exactly what follows and within the type's
 * limit, and the payload CRC. Returns 0 and sets *\p type, *\p payload and
 * *\p plen; or -EBADMSG (short, bad magic, version, length or CRC), -ENOMSG
 * (unknown type), -EMSGSIZE (payload above the type's limit). Touches no
 * payload byte beyond the CRC.
 */
int proto_env_check(const void *buf, size_t len, uint16_t *type, const uint8_t **payload,
		    size_t *plen);

/* Write an envelope for \p plen bytes of \p payload of \p type into \p env. */
void proto_env_put(struct proto_env *env, uint16_t type, const void *payload, size_t plen);

/*
 * Pack \p msg behind an envelope of \p type into a new buffer (free() it).
 * Returns 0 and *\p out / *\p outlen, -EMSGSIZE when the packed message is
 * above the type's limit, -ENOMEM.
 */
int proto_pack(uint16_t type, const ProtobufCMessage *msg, uint8_t **out, size_t *outlen);

/*
 * Check \p buf and unpack its payload as \p desc (which must be the type's
 * descriptor: a mismatch of \p type is -ENOMSG). Returns the message (free
 * with protobuf_c_message_free_unpacked(m, NULL)) or NULL with *\p err set
 * to the proto_env_check() error, or -EBADMSG when protobuf-c rejects it.
 */
ProtobufCMessage *proto_unpack(uint16_t type, const ProtobufCMessageDescriptor *desc,
			       const void *buf, size_t len, int *err);

#endif /* VMENGINE_PROTO_H */
