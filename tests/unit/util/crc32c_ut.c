/*
 * crc32c_ut.c: CRC32C against the RFC 3720 B.4 examples, both engines, and
 * the engines against a bit-at-a-time reference on random buffers.
 */
#include <CUnit/Basic.h>
#include <stdlib.h>

#include "util/util.h"
#include "util/util_internal.h"

typedef uint32_t (*crc_update_fn)(uint32_t, const void *, size_t);

/* The RFC lists the digest as the bytes sent; iSCSI sends it little-endian. */
static uint32_t wire_le(uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
	return (uint32_t)b0 | ((uint32_t)b1 << 8) | ((uint32_t)b2 << 16) | ((uint32_t)b3 << 24);
}

static const uint8_t read10_pdu[48] = {
    0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* Independent reference: one bit at a time, straight from the definition. */
static uint32_t crc_ref(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0);
	}
	return c ^ 0xffffffffu;
}

static uint32_t finish(crc_update_fn fn, const void *buf, size_t len)
{
	return fn(UTIL_CRC32C_INIT, buf, len) ^ UTIL_CRC32C_XOR;
}

static void check_vectors(crc_update_fn fn)
{
	uint8_t m[32];

	memset(m, 0, sizeof(m));
	CU_ASSERT_EQUAL(finish(fn, m, 32), wire_le(0xaa, 0x36, 0x91, 0x8a));
	CU_ASSERT_EQUAL(finish(fn, m, 32), 0x8a9136aau);
	memset(m, 0xff, sizeof(m));
	CU_ASSERT_EQUAL(finish(fn, m, 32), wire_le(0x43, 0xab, 0xa8, 0x62));
	for (int i = 0; i < 32; i++)
		m[i] = (uint8_t)i;
	CU_ASSERT_EQUAL(finish(fn, m, 32), wire_le(0x4e, 0x79, 0xdd, 0x46));
	for (int i = 0; i < 32; i++)
		m[i] = (uint8_t)(31 - i);
	CU_ASSERT_EQUAL(finish(fn, m, 32), wire_le(0x5c, 0xdb, 0x3f, 0x11));
	CU_ASSERT_EQUAL(finish(fn, read10_pdu, sizeof(read10_pdu)),
			wire_le(0x56, 0x3a, 0x96, 0xd9));
}

static void test_vectors_default(void)
{
	uint8_t zeros[32] = {0};

	CU_ASSERT_EQUAL(util_crc32c(zeros, sizeof(zeros)), 0x8a9136aau);
	CU_ASSERT_EQUAL(util_crc32c(read10_pdu, sizeof(read10_pdu)), 0xd9963a56u);
	check_vectors(util_crc32c_update);
}

static void test_vectors_sw(void)
{
	check_vectors(util_crc32c_update_sw);
}

static void test_vectors_hw(void)
{
	if (!util_crc32c_hw()) {
		printf("(no SSE4.2: hardware engine not tested) ");
		return;
	}
	check_vectors(util_crc32c_update_hw);
}

static void test_empty(void)
{
	uint8_t b = 0x5a;

	/* CRC of nothing: preset then complement gives 0. */
	CU_ASSERT_EQUAL(util_crc32c(&b, 0), 0);
	CU_ASSERT_EQUAL(util_crc32c_update(0x12345678u, &b, 0), 0x12345678u);
	CU_ASSERT_EQUAL(util_crc32c_update_sw(0x12345678u, &b, 0), 0x12345678u);
}

/* Chaining over any split point equals one pass (digest over BHS + AHS...). */
static void test_incremental(void)
{
	uint32_t whole = util_crc32c(read10_pdu, sizeof(read10_pdu));

	for (size_t cut = 0; cut <= sizeof(read10_pdu); cut++) {
		uint32_t c = UTIL_CRC32C_INIT;
		c = util_crc32c_update(c, read10_pdu, cut);
		c = util_crc32c_update(c, read10_pdu + cut, sizeof(read10_pdu) - cut);
		CU_ASSERT_EQUAL(c ^ UTIL_CRC32C_XOR, whole);
		c = util_crc32c_update_sw(UTIL_CRC32C_INIT, read10_pdu, cut);
		c = util_crc32c_update_sw(c, read10_pdu + cut, sizeof(read10_pdu) - cut);
		CU_ASSERT_EQUAL(c ^ UTIL_CRC32C_XOR, whole);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	/* xorshift64: deterministic across runs. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random lengths at every alignment: both engines agree with the reference. */
static void test_random_engines_agree(void)
{
	enum { BUF = 9000 };
	uint8_t *buf = malloc(BUF + 16);
	bool hw = util_crc32c_hw();
	unsigned bad_sw = 0, bad_hw = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (size_t i = 0; i < BUF + 16; i++)
		buf[i] = (uint8_t)rng();
	for (int iter = 0; iter < 2000; iter++) {
		size_t off = (size_t)(rng() % 16);
		size_t len = (size_t)(iter < 100 ? (unsigned)iter : rng() % BUF);
		uint32_t ref = crc_ref(buf + off, len);

		if (finish(util_crc32c_update_sw, buf + off, len) != ref)
			bad_sw++;
		if (hw && finish(util_crc32c_update_hw, buf + off, len) != ref)
			bad_hw++;
		if (util_crc32c(buf + off, len) != ref)
			bad_sw++;
	}
	CU_ASSERT_EQUAL(bad_sw, 0);
	CU_ASSERT_EQUAL(bad_hw, 0);
	free(buf);
}

/* A single flipped bit anywhere changes the digest. */
static void test_detects_bit_flip(void)
{
	uint8_t m[64];
	uint32_t base;
	unsigned missed = 0;

	for (int i = 0; i < 64; i++)
		m[i] = (uint8_t)(i * 7);
	base = util_crc32c(m, sizeof(m));
	for (int bit = 0; bit < 64 * 8; bit++) {
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (util_crc32c(m, sizeof(m)) == base)
			missed++;
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CU_ASSERT_EQUAL(missed, 0);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("crc32c", NULL, NULL);
	if (!s)
		return 1;
	CU_add_test(s, "RFC 3720 B.4 vectors, default engine", test_vectors_default);
	CU_add_test(s, "RFC 3720 B.4 vectors, table engine", test_vectors_sw);
	CU_add_test(s, "RFC 3720 B.4 vectors, SSE4.2 engine", test_vectors_hw);
	CU_add_test(s, "empty buffer", test_empty);
	CU_add_test(s, "incremental update at every split", test_incremental);
	CU_add_test(s, "engines agree with reference, random", test_random_engines_agree);
	CU_add_test(s, "single bit flips detected", test_detects_bit_flip);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
