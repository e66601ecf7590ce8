/* Test support: HTTP at the byte level, for what a well-behaved client
 * will not send (bad paths, oversized or truncated bodies) and to read the
 * exact status line and headers a server answers. */
#ifndef NOVA_TESTS_SUPPORT_RAWHTTP_H
#define NOVA_TESTS_SUPPORT_RAWHTTP_H

#include <stddef.h>

/* Connect to 127.0.0.1:port, send len bytes of request (the server may hang
 * up early, e.g. with a 413: what it said is still read), then read until it
 * closes, at most 10 s and 1 MiB. Returns the answer NUL-terminated (the
 * caller frees it), or NULL when the connection could not be made. */
char *rawhttp_exchange(unsigned port, const char *request, size_t len);

/* The value of header `name` (case-insensitive) in a raw answer, copied into
 * buf; NULL when absent. */
const char *rawhttp_header(char *buf, size_t len, const char *answer, const char *name);

#endif
