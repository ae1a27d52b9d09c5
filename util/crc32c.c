/*
 * crc32c.c: CRC32C (Castagnoli) for iSCSI header and data digests.
 *
 * RFC 7143 13.1 names CRC32C with generator 0x11EDC6F41; RFC 3720 B.4 gives
 * the examples the unit test checks. iSCSI processes the bits of each byte
 * least significant first, so this is the "reflected" form of the CRC with
 * polynomial 0x82F63B78, register preset to all ones and complemented at the
 * end, the value sent little-endian on the wire.
 *
 * Two engines: the SSE4.2 crc32 instruction (x86-64, detected once at run
 * time, so the file builds without -msse4.2) and a slicing-by-8 table for
 * every other CPU.
 */
#define UTIL_LOG_TAG "crc32c"
#include <pthread.h>

#include "util/util.h"
#include "util/util_internal.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u

/* tab[k][b]: the CRC contribution of byte b followed by k zero bytes. */
static uint32_t crc_tab[8][256];
static bool crc_use_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int bit = 0; bit < 8; bit++)
			c = (c >> 1) ^ ((c & 1u) ? CRC32C_POLY_REFLECTED : 0);
		crc_tab[0][b] = c;
	}
	for (unsigned b = 0; b < 256; b++)
		for (int k = 1; k < 8; k++)
			crc_tab[k][b] =
			    (crc_tab[k - 1][b] >> 8) ^ crc_tab[0][crc_tab[k - 1][b] & 0xff];
#if defined(__x86_64__)
	/* The constructor that fills the CPU model may not have run yet when
	 * another constructor calls us; __builtin_cpu_init() is idempotent. */
	__builtin_cpu_init();
	crc_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* Little-endian 64-bit load from any alignment; a single mov on x86. */
static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint32_t util_crc32c_update_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	/* Byte-wise up to 8-byte alignment so the main loop reads aligned words. */
	while (len && ((uintptr_t)p & 7u)) {
		crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w = load_le64(p) ^ crc;
		crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^
		      crc_tab[5][(w >> 16) & 0xff] ^ crc_tab[4][(w >> 24) & 0xff] ^
		      crc_tab[3][(w >> 32) & 0xff] ^ crc_tab[2][(w >> 40) & 0xff] ^
		      crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction computes exactly the reflected CRC32C step, so the
 * register value is interchangeable with the table engine's.
 */
__attribute__((target("sse4.2"))) uint32_t util_crc32c_update_hw(uint32_t crc, const void *buf,
								 size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7u)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, sizeof(w));
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#else
uint32_t util_crc32c_update_hw(uint32_t crc, const void *buf, size_t len)
{
	/* No hardware engine on this architecture; util_crc32c_hw() is false. */
	return util_crc32c_update_sw(crc, buf, len);
}
#endif

bool util_crc32c_hw(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_use_hw;
}

uint32_t util_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	if (crc_use_hw)
		return util_crc32c_update_hw(crc, buf, len);
	return util_crc32c_update_sw(crc, buf, len);
}

uint32_t util_crc32c(const void *buf, size_t len)
{
	return util_crc32c_update(UTIL_CRC32C_INIT, buf, len) ^ UTIL_CRC32C_XOR;
}
