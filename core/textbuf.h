/* A growing, NUL-terminated text built piece by piece (a statement's array
 * literals, a metrics page, a response or request body as it arrives).
 *
 * A failed allocation is remembered and every later append does nothing, so
 * a builder checks `failed` once, at the end, rather than after each piece.
 * Capacity doubles from 4 KiB (the initial size is the caller's choice with
 * textbuf_reserve). Zero-initialized storage is an empty buffer. */
#ifndef NOVA_CORE_TEXTBUF_H
#define NOVA_CORE_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct textbuf {
	char *p;      /* NULL until something is added; then always NUL-terminated */
	size_t len;   /* bytes, without the NUL */
	size_t cap;
	bool failed;  /* an allocation failed: the content is incomplete */
};

/* Room for at least n more bytes (and the NUL); false when it failed. */
bool textbuf_reserve(struct textbuf *t, size_t n);
void textbuf_add(struct textbuf *t, const char *s, size_t n);
void textbuf_adds(struct textbuf *t, const char *s);
void textbuf_addf(struct textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Free the text; the buffer is empty again. Accepts a never-used buffer. */
void textbuf_finish(struct textbuf *t);

#endif
