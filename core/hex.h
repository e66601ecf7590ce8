/* Hexadecimal text: bytes to lower-case digits and back. Ids, token hashes
 * and percent-escapes all read or write it. */
#ifndef NOVA_CORE_HEX_H
#define NOVA_CORE_HEX_H

#include <stdbool.h>
#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);
/* n bytes from the first 2n characters of hex; false at the first one that
 * is not a hex digit (never reading past it, so a short string is safe).
 * What follows the 2n characters is the caller's to check. */
bool hex_decode(unsigned char *out, const char *hex, size_t n);
/* 2n lower-case digits of in, then a NUL: out holds 2n + 1 bytes. */
void hex_encode(char *out, const unsigned char *in, size_t n);

#endif
