#include "core/ids.h"

#include <string.h>
#include <uuid/uuid.h>

#include "core/hex.h"

void ids_uuid_generate(char out[IDS_UUID_LEN])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

bool ids_is_uuid(const char *s)
{
	unsigned char u[16];
	return ids_uuid_parse(u, s);
}

/* Written out (with core/hex) rather than libuuid's uuid_parse and
 * uuid_unparse, which go through strtoul and sprintf byte by byte: on the
 * heartbeat path they cost more than the table lookup. */
static const size_t ids_groups[5] = {4, 2, 2, 2, 6}; /* bytes between dashes */

bool ids_uuid_parse(unsigned char out[16], const char *s)
{
	size_t o = 0;
	if (!s)
		return false;
	for (size_t g = 0; g < 5; g++) {
		if (g > 0 && *s++ != '-')
			return false;
		if (!hex_decode(out + o, s, ids_groups[g]))
			return false;
		s += 2 * ids_groups[g];
		o += ids_groups[g];
	}
	return *s == '\0';
}

void ids_uuid_format(char out[IDS_UUID_LEN], const unsigned char in[16])
{
	size_t i = 0;
	for (size_t g = 0; g < 5; g++) {
		if (g > 0)
			*out++ = '-';
		hex_encode(out, in + i, ids_groups[g]);
		out += 2 * ids_groups[g];
		i += ids_groups[g];
	}
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
