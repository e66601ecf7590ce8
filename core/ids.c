#include "core/ids.h"

#include <string.h>
#include <uuid/uuid.h>

void ids_uuid_generate(char out[IDS_UUID_LEN])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

bool ids_is_uuid(const char *s)
{
	uuid_t u;
	return s && strlen(s) == 36 && uuid_parse(s, u) == 0;
}

/* Written out rather than libuuid's uuid_parse and uuid_unparse, which go
 * through strtoul and sprintf byte by byte: on the heartbeat path they cost
 * more than the table lookup. */
static int ids_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool ids_uuid_parse(unsigned char out[16], const char *s)
{
	size_t o = 0;
	if (!s)
		return false;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			continue;
		}
		int hi = ids_hex(s[i]), lo = hi < 0 ? -1 : ids_hex(s[i + 1]);
		if (lo < 0)
			return false;
		out[o++] = (unsigned char)(hi << 4 | lo);
		i++;
	}
	return s[36] == '\0';
}

void ids_uuid_format(char out[IDS_UUID_LEN], const unsigned char in[16])
{
	static const char digits[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = digits[in[i] >> 4];
		out[o++] = digits[in[i] & 15];
	}
	out[o] = '\0';
}

bool ids_is_dns_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}
