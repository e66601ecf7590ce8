#include "core/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "core/textbuf.h"

/* Adds at most what is left of max; the caller stops once it is reached. */
static void prompt_add(struct textbuf *t, size_t max, const char *s, size_t n)
{
	if (t->len >= max)
		return;
	if (n > max - t->len)
		n = max - t->len;
	textbuf_add(t, s, n);
}

static void prompt_add_content(struct textbuf *t, size_t max, const json_t *content)
{
	size_t i;
	const json_t *part;
	if (json_is_string(content)) {
		prompt_add(t, max, json_string_value(content), json_string_length(content));
		return;
	}
	json_array_foreach(content, i, part) {
		const json_t *v = json_object_get(part, "text");
		if (!json_is_string(v))
			v = json_object_get(json_object_get(part, "image_url"), "url");
		if (json_is_string(v))
			prompt_add(t, max, json_string_value(v), json_string_length(v));
	}
}

bool prompt_text(const json_t *body, bool chat, size_t max, char **out, size_t *len)
{
	struct textbuf t = {0};
	const json_t *v;
	*out = NULL;
	*len = 0;
	if (chat) {
		const json_t *messages = json_object_get(body, "messages"), *m;
		size_t i;
		if (!json_is_array(messages))
			return false;
		json_array_foreach(messages, i, m) {
			const json_t *role = json_object_get(m, "role");
			if (json_is_string(role))
				prompt_add(&t, max, json_string_value(role), json_string_length(role));
			prompt_add(&t, max, "\x1f", 1);
			prompt_add_content(&t, max, json_object_get(m, "content"));
			prompt_add(&t, max, "\x1e", 1);
		}
	} else {
		v = json_object_get(body, "prompt");
		if (json_is_array(v))
			v = json_array_get(v, 0);
		if (!json_is_string(v))
			return false;
		prompt_add(&t, max, json_string_value(v), json_string_length(v));
	}
	if (!textbuf_reserve(&t, 0) || t.failed) {
		textbuf_finish(&t);
		return false;
	}
	*out = t.p;
	*len = t.len;
	return true;
}

/* A 64-bit mix of 8-byte words (a multiply and xor-shift per word, a final
 * avalanche); not cryptographic: block names for a cache, where a
 * collision costs one wrong guess of what is cached. */
static uint64_t prompt_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t prompt_hash_block(uint64_t seed, const unsigned char *p, size_t n)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	uint64_t tail = 0;
	memcpy(&tail, p + i, n - i);
	h = (h ^ tail) * 0x9e3779b97f4a7c15ULL;
	return prompt_mix(h);
}

size_t prompt_block_hashes(const char *text, size_t len, size_t block_bytes, uint64_t *hashes,
			   size_t max)
{
	size_t n = 0;
	uint64_t h = 0x6e6f76612d707266ULL; /* any fixed start */
	if (!block_bytes)
		return 0;
	for (size_t off = 0; off + block_bytes <= len && n < max; off += block_bytes) {
		h = prompt_hash_block(h, (const unsigned char *)text + off, block_bytes);
		hashes[n++] = h;
	}
	return n;
}

uint64_t prompt_hash(const void *p, size_t n)
{
	return prompt_hash_block(0x6e6f76612d6b6579ULL, p, n);
}
