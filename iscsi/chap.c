/*
 * CHAP with MD5 for the iSCSI login (RFC 1994, RFC 7143 12.1.3): the target
 * and initiator steps, one-way and mutual, and the binary value codecs
 * ("0x" hex, "0b" base64, RFC 7143 6.1) the CHAP keys use.
 */
#define UTIL_LOG_TAG "chap"
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "iscsi/iscsi.h"
#include "iscsi/iscsi_internal.h"

/* Longest challenge we take from a peer (libiscsi sends 32 bytes, Linux 16). */
#define CHAP_PEER_CHALLENGE_MAX 1024
/* RFC 7143 12.1.3: secrets shorter than 12 bytes are weak (we still accept them). */
#define CHAP_SECRET_WEAK 12
/* Room for a decoded CHAP_R: a bit more than MD5 so a wrong length is seen as such. */
#define CHAP_RESPONSE_MAX 64

/* ---- MD5 ---- */

static int chap_md5(uint8_t id, const void *secret, size_t secret_len, const void *challenge,
		    size_t challenge_len, uint8_t out[ISCSI_CHAP_MD5_LEN])
{
	uint8_t buf[1 + ISCSI_CHAP_SECRET_MAX + CHAP_PEER_CHALLENGE_MAX];
	unsigned int olen = 0;
	int ok;

	/* RFC 1994 4.1: Response = MD5(Identifier || secret || Challenge). */
	if (secret_len <= ISCSI_CHAP_SECRET_MAX && challenge_len <= CHAP_PEER_CHALLENGE_MAX) {
		size_t len = 1 + secret_len + challenge_len;
		buf[0] = id;
		memcpy(buf + 1, secret, secret_len);
		memcpy(buf + 1 + secret_len, challenge, challenge_len);
		ok = EVP_Digest(buf, len, out, &olen, EVP_md5(), NULL);
		explicit_bzero(buf, len);
	} else {
		/* Larger than any CHAP exchange of ours: stream it. */
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) &&
		     EVP_DigestUpdate(ctx, &id, 1) && EVP_DigestUpdate(ctx, secret, secret_len) &&
		     EVP_DigestUpdate(ctx, challenge, challenge_len) &&
		     EVP_DigestFinal_ex(ctx, out, &olen);
		EVP_MD_CTX_free(ctx);
	}
	if (!ok || olen != ISCSI_CHAP_MD5_LEN) {
		log_err("MD5 failed");
		return -ENOMEM;
	}
	return 0;
}

void iscsi_chap_md5(uint8_t id, const void *secret, size_t secret_len, const void *challenge,
		    size_t challenge_len, uint8_t out[ISCSI_CHAP_MD5_LEN])
{
	/* No way to report the (allocation) failure here: leave no stale digest. */
	if (chap_md5(id, secret, secret_len, challenge, challenge_len, out) < 0)
		memset(out, 0, ISCSI_CHAP_MD5_LEN);
}

static int chap_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t r = getrandom(p, len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_err("getrandom: %s", strerror(errno));
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static void chap_warn_weak(size_t secret_len)
{
	static atomic_bool warned;

	if (secret_len < CHAP_SECRET_WEAK && !atomic_exchange(&warned, true))
		log_warn("CHAP secret shorter than %d bytes (RFC 7143 12.1.3 calls it weak)",
			 CHAP_SECRET_WEAK);
}

/* ---- binary values (RFC 7143 6.1) ---- */

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int decode_hex(const char *p, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(p);

	/* Whole bytes only: an odd digit count is refused rather than guessed. */
	if (n == 0 || n % 2)
		return -EINVAL;
	if (n / 2 > max)
		return -E2BIG;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_val(p[2 * i]);
		int lo = hex_val(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

static int decode_base64(const char *p, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(p);
	size_t pad = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	/* RFC 4648 4: up to two '=' close a padded final quantum. */
	while (n > 0 && p[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (n == 0 || (pad && (n + pad) % 4) || n % 4 == 1)
		return -EINVAL;
	if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > max)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(p[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*len = o;
	return 0;
}

int iscsi_bin_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
	/* RFC 7143 6.1: binary-value = hex-constant / base64-constant. */
	if (!s || s[0] != '0')
		return -EINVAL;
	if (s[1] == 'x' || s[1] == 'X')
		return decode_hex(s + 2, out, max, len);
	if (s[1] == 'b' || s[1] == 'B')
		return decode_base64(s + 2, out, max, len);
	return -EINVAL;
}

void iscsi_bin_encode_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	*out++ = '0';
	*out++ = 'x';
	for (size_t i = 0; i < len; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 15];
	}
	*out = '\0';
}

/* ---- the CHAP_* keys of one message ---- */

struct chap_keys {
	const char *a, *i, *c, *n, *r;
	bool any; /* at least one CHAP_ key */
	bool dup; /* a CHAP_ key appears twice */
};

static void chap_collect(const struct iscsi_kv *kv, size_t nkv, struct chap_keys *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < nkv; i++) {
		const char **slot;

		if (strncmp(kv[i].key, "CHAP_", 5) != 0)
			continue;
		k->any = true;
		const char *which = kv[i].key + 5;
		if (strcmp(which, "A") == 0)
			slot = &k->a;
		else if (strcmp(which, "I") == 0)
			slot = &k->i;
		else if (strcmp(which, "C") == 0)
			slot = &k->c;
		else if (strcmp(which, "N") == 0)
			slot = &k->n;
		else if (strcmp(which, "R") == 0)
			slot = &k->r;
		else
			continue; /* not a key of RFC 7143 12.1.3: ignored */
		if (*slot)
			k->dup = true;
		*slot = kv[i].val;
	}
}

static int parse_id(const char *s, uint8_t *id)
{
	uint64_t v;

	/* CHAP_I is the one-octet RFC 1994 Identifier, as a numerical value. */
	if (iscsi_text_number(s, &v) < 0 || v > 255)
		return -EINVAL;
	*id = (uint8_t)v;
	return 0;
}

/* 1 when MD5 (5) is in the CHAP_A list, 0 when not, -EINVAL when malformed. */
static int algo_has_md5(const char *list)
{
	char item[24];
	const char *p = list;
	bool found = false;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		uint64_t v;

		if (len == 0 || len >= sizeof(item))
			return -EINVAL;
		memcpy(item, p, len);
		item[len] = '\0';
		if (iscsi_text_number(item, &v) < 0)
			return -EINVAL;
		if (v == ISCSI_CHAP_MD5)
			found = true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return found;
}

static int add_hex(struct iscsi_text *out, const char *key, const uint8_t *bin, size_t len)
{
	char hex[2 * ISCSI_CHAP_CHALLENGE_LEN + 3];

	_Static_assert(ISCSI_CHAP_MD5_LEN <= ISCSI_CHAP_CHALLENGE_LEN, "hex buffer size");
	iscsi_bin_encode_hex(bin, len, hex);
	return iscsi_text_add(out, key, "%s", hex);
}

/* ---- target ---- */

/* START: the initiator lists its algorithms; we answer with our challenge. */
static int target_challenge(struct iscsi_chap *c, const struct chap_keys *k, struct iscsi_text *out)
{
	if (!k->a || k->i || k->c || k->n || k->r) {
		log_warn("CHAP_A expected alone");
		return ISCSI_LS_INITIATOR_ERROR;
	}
	int has = algo_has_md5(k->a);
	if (has < 0) {
		log_warn("malformed CHAP_A=%.32s", k->a);
		return ISCSI_LS_INITIATOR_ERROR;
	}
	if (!has) {
		/* RFC 7143 6.2.1: no acceptable value in the list: Reject. */
		log_warn("initiator offers no MD5 CHAP (CHAP_A=%.32s)", k->a);
		if (iscsi_text_add(out, "CHAP_A", "Reject") < 0)
			return ISCSI_LS_OUT_OF_RESOURCES;
		return ISCSI_LS_AUTH_FAILED;
	}
	/* A fresh, unpredictable identifier and challenge for every login. */
	if (chap_random(&c->id, 1) < 0 || chap_random(c->challenge, ISCSI_CHAP_CHALLENGE_LEN) < 0)
		return ISCSI_LS_TARGET_ERROR;
	if (iscsi_text_add(out, "CHAP_A", "%d", ISCSI_CHAP_MD5) < 0 ||
	    iscsi_text_add(out, "CHAP_I", "%u", (unsigned)c->id) < 0 ||
	    add_hex(out, "CHAP_C", c->challenge, ISCSI_CHAP_CHALLENGE_LEN) < 0)
		return ISCSI_LS_OUT_OF_RESOURCES;
	c->state = ISCSI_CHAP_CHALLENGE;
	return ISCSI_CHAP_CONTINUE;
}

/* Answer the initiator's challenge with the target's own credentials. */
static int target_mutual(struct iscsi_chap *c, const struct iscsi_chap_cred *cred, uint8_t mid,
			 const uint8_t *mch, size_t mlen, struct iscsi_text *out)
{
	uint8_t rsp[ISCSI_CHAP_MD5_LEN];
	size_t slen = strnlen(cred->mutual_secret, sizeof(cred->mutual_secret));

	if (!cred->mutual_user[0] || slen == 0) {
		log_warn("initiator asks for mutual CHAP, but the target has no credentials");
		return ISCSI_LS_AUTH_FAILED;
	}
	/*
	 * RFC 7143 12.1.3: "Originators MUST NOT reuse the CHAP challenge sent
	 * by the Responder for the other direction ... Responders MUST check
	 * for this condition". Echoing our challenge back would make us compute
	 * the very response the initiator owes us.
	 */
	if (mlen == ISCSI_CHAP_CHALLENGE_LEN && memcmp(mch, c->challenge, mlen) == 0) {
		log_warn("initiator reflected our CHAP challenge");
		return ISCSI_LS_AUTH_FAILED;
	}
	/*
	 * RFC 7143 12.1.3: a secret used to authenticate initiators "MUST NOT be
	 * configured for authentication of any target"; with one secret both
	 * ways, a second connection could replay our answer as its response.
	 */
	if (strncmp(cred->secret, cred->mutual_secret, sizeof(cred->secret)) == 0) {
		log_err("CHAP user %s: the mutual secret equals the initiator secret", cred->user);
		return ISCSI_LS_AUTH_FAILED;
	}
	chap_warn_weak(slen);
	if (chap_md5(mid, cred->mutual_secret, slen, mch, mlen, rsp) < 0)
		return ISCSI_LS_TARGET_ERROR;
	if (iscsi_text_add(out, "CHAP_N", "%s", cred->mutual_user) < 0 ||
	    add_hex(out, "CHAP_R", rsp, sizeof(rsp)) < 0)
		return ISCSI_LS_OUT_OF_RESOURCES;
	return 0;
}

/* CHALLENGE: check CHAP_N/CHAP_R, then answer a mutual CHAP_I/CHAP_C. */
static int target_verify(struct iscsi_chap *c, const struct chap_keys *k,
			 bool (*lookup)(void *arg, const char *user, struct iscsi_chap_cred *cred),
			 void *lookup_arg, struct iscsi_text *out)
{
	uint8_t rsp[CHAP_RESPONSE_MAX];
	uint8_t expect[ISCSI_CHAP_MD5_LEN];
	uint8_t mch[CHAP_PEER_CHALLENGE_MAX];
	struct iscsi_chap_cred cred;
	size_t rlen = 0, mlen = 0;
	uint8_t mid = 0;
	int rdec, rc;

	if (!k->n || !k->r || k->a) {
		log_warn("CHAP_N and CHAP_R expected");
		return ISCSI_LS_INITIATOR_ERROR;
	}
	/* -E2BIG is only a response of the wrong length: judged below. */
	rdec = iscsi_bin_decode(k->r, rsp, sizeof(rsp), &rlen);
	if (rdec == -EINVAL) {
		log_warn("malformed CHAP_R");
		return ISCSI_LS_INITIATOR_ERROR;
	}
	/* CHAP_I and CHAP_C together ask the target to authenticate itself. */
	if (!k->i != !k->c) {
		log_warn("CHAP_I and CHAP_C must come together");
		return ISCSI_LS_INITIATOR_ERROR;
	}
	if (k->i &&
	    (parse_id(k->i, &mid) < 0 || iscsi_bin_decode(k->c, mch, sizeof(mch), &mlen) < 0)) {
		log_warn("malformed mutual CHAP_I/CHAP_C");
		return ISCSI_LS_INITIATOR_ERROR;
	}

	memset(&cred, 0, sizeof(cred));
	if (!lookup(lookup_arg, k->n, &cred)) {
		log_warn("CHAP: unknown user %.64s", k->n);
		rc = ISCSI_LS_AUTH_FAILED;
		goto out;
	}
	size_t slen = strnlen(cred.secret, sizeof(cred.secret));
	if (slen == 0) {
		log_warn("CHAP user %.64s has no secret", k->n);
		rc = ISCSI_LS_AUTH_FAILED;
		goto out;
	}
	chap_warn_weak(slen);
	if (chap_md5(c->id, cred.secret, slen, c->challenge, ISCSI_CHAP_CHALLENGE_LEN, expect) <
	    0) {
		rc = ISCSI_LS_TARGET_ERROR;
		goto out;
	}
	/* Constant time, so the comparison leaks nothing of the expected value. */
	if (rdec < 0 || rlen != ISCSI_CHAP_MD5_LEN || CRYPTO_memcmp(expect, rsp, rlen) != 0) {
		log_warn("CHAP: wrong response for user %.64s", k->n);
		rc = ISCSI_LS_AUTH_FAILED;
		goto out;
	}
	if (k->i) {
		rc = target_mutual(c, &cred, mid, mch, mlen, out);
		if (rc)
			goto out;
	}
	c->state = ISCSI_CHAP_DONE;
	rc = ISCSI_CHAP_OK;
out:
	explicit_bzero(&cred, sizeof(cred));
	explicit_bzero(expect, sizeof(expect));
	return rc;
}

int iscsi_chap_target_step(struct iscsi_chap *c, const struct iscsi_kv *kv, size_t nkv,
			   bool (*lookup)(void *arg, const char *user,
					  struct iscsi_chap_cred *cred),
			   void *lookup_arg, struct iscsi_text *out)
{
	struct chap_keys k;
	int rc;

	chap_collect(kv, nkv, &k);
	if (k.dup) {
		log_warn("a CHAP key was sent twice");
		c->state = ISCSI_CHAP_FAILED;
		return ISCSI_LS_INITIATOR_ERROR;
	}
	switch (c->state) {
	case ISCSI_CHAP_START:
		/* AuthMethod=CHAP was just agreed: CHAP_A comes in the next request. */
		if (!k.any)
			return ISCSI_CHAP_CONTINUE;
		rc = target_challenge(c, &k, out);
		break;
	case ISCSI_CHAP_CHALLENGE:
		rc = target_verify(c, &k, lookup, lookup_arg, out);
		break;
	case ISCSI_CHAP_DONE:
		/* Authenticated; more CHAP keys would restart nothing. */
		return k.any ? ISCSI_LS_INITIATOR_ERROR : ISCSI_CHAP_OK;
	default:
		return ISCSI_LS_AUTH_FAILED;
	}
	if (rc > 0)
		c->state = ISCSI_CHAP_FAILED;
	return rc;
}

/* ---- initiator ---- */

/* The target's CHAP_A/I/C: answer with our name and response, and maybe our challenge. */
static int initiator_respond(struct iscsi_chap *c, const struct chap_keys *k,
			     const struct iscsi_chap_cred *cred, struct iscsi_text *out)
{
	uint8_t tch[CHAP_PEER_CHALLENGE_MAX];
	uint8_t rsp[ISCSI_CHAP_MD5_LEN];
	size_t tlen = 0;
	uint64_t algo;
	uint8_t tid;

	if (!k->a || !k->i || !k->c || iscsi_text_number(k->a, &algo) < 0 ||
	    algo != ISCSI_CHAP_MD5 || parse_id(k->i, &tid) < 0 ||
	    iscsi_bin_decode(k->c, tch, sizeof(tch), &tlen) < 0) {
		log_warn("target sent bad CHAP_A/CHAP_I/CHAP_C");
		return -EPROTO;
	}
	size_t slen = strnlen(cred->secret, sizeof(cred->secret));
	if (slen == 0) {
		log_err("CHAP requested but no secret configured");
		return -EINVAL;
	}
	chap_warn_weak(slen);
	if (chap_md5(tid, cred->secret, slen, tch, tlen, rsp) < 0)
		return -ENOMEM;
	if (iscsi_text_add(out, "CHAP_N", "%s", cred->user) < 0 ||
	    add_hex(out, "CHAP_R", rsp, sizeof(rsp)) < 0)
		return -ENOMEM;
	if (!cred->mutual_secret[0]) {
		c->state = ISCSI_CHAP_DONE;
		return ISCSI_CHAP_OK;
	}
	/* Mutual: our own challenge, never the target's one (RFC 7143 12.1.3). */
	do {
		if (chap_random(&c->mutual_id, 1) < 0 ||
		    chap_random(c->mutual_challenge, ISCSI_CHAP_CHALLENGE_LEN) < 0)
			return -EIO;
	} while (tlen == ISCSI_CHAP_CHALLENGE_LEN &&
		 memcmp(tch, c->mutual_challenge, ISCSI_CHAP_CHALLENGE_LEN) == 0);
	if (iscsi_text_add(out, "CHAP_I", "%u", (unsigned)c->mutual_id) < 0 ||
	    add_hex(out, "CHAP_C", c->mutual_challenge, ISCSI_CHAP_CHALLENGE_LEN) < 0)
		return -ENOMEM;
	c->state = ISCSI_CHAP_CHALLENGE;
	return ISCSI_CHAP_CONTINUE;
}

/* The target's answer to our challenge. */
static int initiator_verify(struct iscsi_chap *c, const struct chap_keys *k,
			    const struct iscsi_chap_cred *cred)
{
	uint8_t rsp[CHAP_RESPONSE_MAX];
	uint8_t expect[ISCSI_CHAP_MD5_LEN];
	size_t rlen = 0;

	if (!k->n || !k->r || iscsi_bin_decode(k->r, rsp, sizeof(rsp), &rlen) < 0) {
		log_warn("target sent no valid CHAP_N/CHAP_R");
		return -EPROTO;
	}
	size_t slen = strnlen(cred->mutual_secret, sizeof(cred->mutual_secret));
	if (chap_md5(c->mutual_id, cred->mutual_secret, slen, c->mutual_challenge,
		     ISCSI_CHAP_CHALLENGE_LEN, expect) < 0)
		return -ENOMEM;
	if ((cred->mutual_user[0] && strcmp(k->n, cred->mutual_user) != 0) ||
	    rlen != ISCSI_CHAP_MD5_LEN || CRYPTO_memcmp(expect, rsp, rlen) != 0) {
		log_warn("target failed mutual CHAP (user %.64s)", k->n);
		explicit_bzero(expect, sizeof(expect));
		return -EACCES;
	}
	explicit_bzero(expect, sizeof(expect));
	c->state = ISCSI_CHAP_DONE;
	return ISCSI_CHAP_OK;
}

int iscsi_chap_initiator_step(struct iscsi_chap *c, const struct iscsi_kv *kv, size_t nkv,
			      const struct iscsi_chap_cred *cred, struct iscsi_text *out)
{
	struct chap_keys k;
	int rc;

	chap_collect(kv, nkv, &k);
	if (k.dup) {
		c->state = ISCSI_CHAP_FAILED;
		return -EPROTO;
	}
	switch (c->state) {
	case ISCSI_CHAP_START:
		/* RFC 7143 12.1.3: the initiator opens with its algorithm list. */
		if (!k.any)
			return iscsi_text_add(out, "CHAP_A", "%d", ISCSI_CHAP_MD5) < 0
				   ? -ENOMEM
				   : ISCSI_CHAP_CONTINUE;
		rc = initiator_respond(c, &k, cred, out);
		break;
	case ISCSI_CHAP_CHALLENGE:
		rc = initiator_verify(c, &k, cred);
		break;
	case ISCSI_CHAP_DONE:
		return ISCSI_CHAP_OK;
	default:
		return -EACCES;
	}
	if (rc < 0 && rc != ISCSI_CHAP_OK)
		c->state = ISCSI_CHAP_FAILED;
	return rc;
}
