#include "core/textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool textbuf_reserve(struct textbuf *t, size_t n)
{
	if (t->failed)
		return false;
	if (n > (size_t)-1 / 2 - t->len - 1) {
		t->failed = true;
		return false;
	}
	if (t->len + n + 1 <= t->cap)
		return true;
	size_t nc = t->cap ? t->cap : 4096;
	while (nc < t->len + n + 1)
		nc *= 2;
	char *np = realloc(t->p, nc);
	if (!np) {
		t->failed = true;
		return false;
	}
	if (!t->p)
		np[0] = '\0';
	t->p = np;
	t->cap = nc;
	return true;
}

void textbuf_add(struct textbuf *t, const char *s, size_t n)
{
	if (!textbuf_reserve(t, n))
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

void textbuf_adds(struct textbuf *t, const char *s)
{
	textbuf_add(t, s, strlen(s));
}

void textbuf_addf(struct textbuf *t, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		textbuf_add(t, small, (size_t)n);
		return;
	}
	if (!textbuf_reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

void textbuf_finish(struct textbuf *t)
{
	free(t->p);
	memset(t, 0, sizeof(*t));
}
