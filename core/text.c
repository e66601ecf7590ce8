#include "core/text.h"

#include <stdint.h>
#include <string.h>

/* How much input an excerpt looks at: every kept byte comes from at most
 * this many (a '?' stands for one byte, a space for a run), so the window
 * always holds enough to fill an excerpt when the text has that much. */
#define TEXT_WINDOW (4 * TEXT_EXCERPT_MAX)

static bool text_space(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

static bool text_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Code points that are valid UTF-8 but steer how text is shown: C1
 * controls, line and paragraph separators, bidirectional marks,
 * embeddings, overrides and isolates. */
static bool text_control(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), its code
 * point in *cp; 0 when p does not start one. */
static size_t text_utf8(uint32_t *cp, const unsigned char *p, size_t n)
{
	unsigned char b = p[0];
	size_t need;
	uint32_t v;
	if (b >= 0xc2 && b <= 0xdf) {
		need = 2;
		v = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		need = 3;
		v = b & 0x0f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		need = 4;
		v = b & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if (!text_cont(p[i]))
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates, past U+10FFFF. */
	if ((need == 3 && v < 0x800) || (v >= 0xd800 && v <= 0xdfff) || (need == 4 && v < 0x10000) ||
	    v > 0x10ffff)
		return 0;
	*cp = v;
	return need;
}

/* Sanitize in[0..n) into out (which holds at least n bytes): whitespace
 * runs to one space, controls and bad bytes to '?'. No trimming. */
static size_t text_clean(char *out, const unsigned char *in, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char b = in[i];
		uint32_t cp;
		size_t k;
		if (text_space(b)) {
			if (o == 0 || out[o - 1] != ' ')
				out[o++] = ' ';
			i++;
		} else if (b < 0x20 || b == 0x7f) {
			out[o++] = '?';
			i++;
		} else if (b < 0x80) {
			out[o++] = (char)b;
			i++;
		} else if ((k = text_utf8(&cp, in + i, n - i)) == 0 || text_control(cp)) {
			/* A control is replaced whole; a bad byte alone, and
			 * what follows is judged afresh. */
			out[o++] = '?';
			i += k ? k : 1;
		} else {
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
		}
	}
	return o;
}

static bool text_all_space(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!text_space(p[i]))
			return false;
	return true;
}

size_t text_excerpt(char *out, size_t cap, const char *in_text, size_t len, bool tail)
{
	const unsigned char *in = (const unsigned char *)in_text;
	char buf[TEXT_WINDOW];
	size_t limit, start = 0, end = len, n, a, b;
	bool cut = false;
	if (!out || cap == 0)
		return 0;
	out[0] = '\0';
	if (!in || len == 0)
		return 0;
	limit = cap - 1 < TEXT_EXCERPT_MAX ? cap - 1 : TEXT_EXCERPT_MAX;
	if (len > TEXT_WINDOW) {
		if (tail) {
			start = len - TEXT_WINDOW;
			cut = !text_all_space(in, start);
			/* Begin on a character, not inside one. */
			for (int i = 0; i < 3 && start < len && text_cont(in[start]); i++)
				start++;
		} else {
			end = TEXT_WINDOW;
			cut = !text_all_space(in + end, len - end);
			/* End on a character, not inside one. */
			for (int i = 0; i < 3 && end > 0 && text_cont(in[end]); i++)
				end--;
		}
	}
	n = text_clean(buf, in + start, end - start);
	a = 0;
	b = n;
	while (a < b && buf[a] == ' ')
		a++;
	while (b > a && buf[b - 1] == ' ')
		b--;
	if (b - a > limit)
		cut = true;
	if (!cut || limit < 4) {
		/* Fits (or no room for a mark): cut at a boundary only. */
		if (b - a > limit) {
			if (tail) {
				a = b - limit;
				while (a < b && text_cont((unsigned char)buf[a]))
					a++;
			} else {
				b = a + limit;
				while (b > a && text_cont((unsigned char)buf[b]))
					b--;
			}
		}
		memcpy(out, buf + a, b - a);
		out[b - a] = '\0';
		return b - a;
	}
	size_t keep = limit - 3;
	if (tail) {
		if (b - a > keep) {
			a = b - keep;
			while (a < b && text_cont((unsigned char)buf[a]))
				a++;
		}
		while (a < b && buf[a] == ' ')
			a++;
		memcpy(out, "...", 3);
		memcpy(out + 3, buf + a, b - a);
		out[3 + b - a] = '\0';
		return 3 + b - a;
	}
	if (b - a > keep) {
		b = a + keep;
		while (b > a && text_cont((unsigned char)buf[b]))
			b--;
	}
	while (b > a && buf[b - 1] == ' ')
		b--;
	memcpy(out, buf + a, b - a);
	memcpy(out + (b - a), "...", 4);
	return b - a + 3;
}
