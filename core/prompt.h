/* A prompt as a chain of fixed-size blocks, for prefix caching: what an
 * engine can reuse from an earlier request is the longest run of leading
 * blocks the two share, so each block is named by a hash of itself and of
 * every block before it (block i's hash differs whenever anything before
 * it does). nova-mock-engine models its prefix cache with these hashes;
 * nova-router remembers which replica served which chain.
 *
 * The text of a request is canonical: for a chat request each message in
 * order as its role, a 0x1F, its content (a string, or its parts in order:
 * a text part's text, an image part's URL), a 0x1E; for a completion the
 * prompt string (or, for an array of strings, the first). Two requests
 * that differ only in fields other than the messages (or prompt), such as
 * temperature or max_tokens, have the same text. */
#ifndef NOVA_CORE_PROMPT_H
#define NOVA_CORE_PROMPT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The canonical text of body (a chat request when chat, else a completion
 * request), at most max bytes: *out (the caller frees) and *len. Returns
 * false when the body has no messages array (chat) or no prompt string or
 * array (completion), or when out of memory; text past max is cut. */
bool prompt_text(const json_t *body, bool chat, size_t max, char **out, size_t *len);

/* The chain hashes of the whole blocks of block_bytes (> 0) in text[0..len),
 * at most max of them, into hashes[]; a trailing partial block has none.
 * Returns how many were written. */
size_t prompt_block_hashes(const char *text, size_t len, size_t block_bytes, uint64_t *hashes,
			   size_t max);

/* The same 64-bit hash of n bytes as one block (a name for a string: a
 * session key, a replica id; not cryptographic). */
uint64_t prompt_hash(const void *p, size_t n);

#endif
