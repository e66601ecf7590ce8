/* Secrets: random tokens, their hashes, constant-time comparison.
 *
 * Tokens Nova issues (admin, API keys, node tokens) carry 256 bits from the
 * kernel's CSPRNG, so a single SHA-256 is the right storage hash: a slow
 * password hash (bcrypt, argon2) protects low-entropy human secrets and
 * would only cost every authenticated request CPU here. */
#ifndef NOVA_CORE_SECRET_H
#define NOVA_CORE_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define SECRET_HEX_SHA256_LEN 65 /* 64 hex digits + NUL */

/* prefix + 43 base62 characters (>= 256 bits) into out. */
int secret_token_generate(char *out, size_t out_len, const char *prefix, struct nova_err *err);
/* Lowercase hex SHA-256 of data. */
void secret_sha256_hex(char out[SECRET_HEX_SHA256_LEN], const void *data, size_t len);
/* SHA-256 of data, the 32 bytes; and a stored hex hash back to its bytes
 * (false unless it is 64 hex digits). For tables that keep many hashes. */
void secret_sha256(unsigned char out[32], const void *data, size_t len);
bool secret_sha256_from_hex(unsigned char out[32], const char *hex);
/* Constant-time equality of two equal-length buffers. */
bool secret_equal(const void *a, const void *b, size_t len);
/* Compare a presented token with a stored hex hash in constant time. */
bool secret_matches_hash(const char *token, const char *stored_hex);

#endif
