/*
 * util_internal.h: hooks shared by the util sources and their unit tests only.
 * Nothing outside util/ and tests/unit/util/ includes this header.
 */
#ifndef VMENGINE_UTIL_INTERNAL_H
#define VMENGINE_UTIL_INTERNAL_H

#include "util/util.h"

/*
 * The two CRC32C engines behind util_crc32c_update(), exposed so the tests
 * can check each against the RFC 3720 B.4 vectors and against each other.
 * Same contract as util_crc32c_update(). util_crc32c_update_hw() may only be
 * called when util_crc32c_hw() is true.
 */
uint32_t util_crc32c_update_sw(uint32_t crc, const void *buf, size_t len);
uint32_t util_crc32c_update_hw(uint32_t crc, const void *buf, size_t len);

/* Bytes currently held on the free lists of \p bp (for tests and stats). */
size_t util_bufpool_cached_bytes(const struct util_bufpool *bp);

#endif /* VMENGINE_UTIL_INTERNAL_H */
