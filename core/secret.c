#include "core/secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/hex.h"

int secret_token_generate(char *out, size_t out_len, const char *prefix, struct nova_err *err)
{
	static const char alphabet[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned char raw[64];
	size_t plen = strlen(prefix), n = 0;
	const size_t want = 43; /* 43 * log2(62) = 256.1 bits */
	if (out_len < plen + want + 1)
		return nova_err_set(err, NOVA_EINTERNAL, "", "token buffer too small");
	memcpy(out, prefix, plen);
	while (n < want) {
		ssize_t got = getrandom(raw, sizeof(raw), 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return nova_err_set(err, NOVA_EINTERNAL, "", "getrandom: %s", strerror(errno));
		}
		/* Rejection sampling keeps the characters uniform: 248 = 4 * 62. */
		for (ssize_t i = 0; i < got && n < want; i++)
			if (raw[i] < 248)
				out[plen + n++] = alphabet[raw[i] % 62];
	}
	out[plen + n] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void secret_sha256(unsigned char out[32], const void *data, size_t len)
{
	unsigned int md_len = 0;
	EVP_Digest(data, len, out, &md_len, EVP_sha256(), NULL);
}

bool secret_sha256_from_hex(unsigned char out[32], const char *hex)
{
	return hex && strlen(hex) == 64 && hex_decode(out, hex, 32);
}

void secret_sha256_hex(char out[SECRET_HEX_SHA256_LEN], const void *data, size_t len)
{
	unsigned char md[32];
	secret_sha256(md, data, len);
	hex_encode(out, md, 32);
}

bool secret_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

bool secret_matches_hash(const char *token, const char *stored_hex)
{
	char h[SECRET_HEX_SHA256_LEN];
	if (!token || !stored_hex || strlen(stored_hex) != 64)
		return false;
	secret_sha256_hex(h, token, strlen(token));
	return secret_equal(h, stored_hex, 64);
}
