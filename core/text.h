/* Text from outside Nova (an engine's or agent's log, a command's stderr, a
 * provider's status words) made fit for an API answer.
 *
 * Such text ends up in node reasons (GET /v1/nodes), events and errors, so
 * what an engine prints is readable by any API caller with read scope. It
 * goes through text_excerpt() first: bounded, one line, valid UTF-8, no
 * control characters. The caller hands over bytes it already holds; this
 * module never opens a file, so an excerpt is never "the lines of a file
 * the caller named".
 *
 * Rejected: escaping the text instead (JSON does that already, and escaped
 * control characters still reach terminals and log viewers that unescape
 * them), and a cap alone (an engine's ANSI colour codes and a binary
 * core dump's bytes made answers no person could read). */
#ifndef NOVA_CORE_TEXT_H
#define NOVA_CORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* The most an excerpt holds, in bytes, without the NUL. */
#define TEXT_EXCERPT_MAX 240

/* Write into out (cap bytes, at least 1; an excerpt takes at most
 * TEXT_EXCERPT_MAX + 1) a one-line excerpt of the len bytes at in (NULL or
 * empty: ""): runs of whitespace (newlines, tabs, CR) become one space and
 * leading and trailing ones go; other control characters (C0, DEL, C1) and
 * the Unicode line, paragraph and bidirectional controls become '?'; bytes
 * that are not valid UTF-8 (stray continuations, overlong forms, surrogates,
 * past U+10FFFF, a sequence cut short) become '?', one per byte. When the
 * result would not fit in min(cap - 1, TEXT_EXCERPT_MAX) bytes it is cut at
 * a character boundary and marked with "...": at the start of the text's
 * last part when tail (a log's last lines say most), else at the end of
 * its first part. Returns the excerpt's length. */
size_t text_excerpt(char *out, size_t cap, const char *in, size_t len, bool tail);

#endif
