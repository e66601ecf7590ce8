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

bool ids_uuid_parse(unsigned char out[16], const char *s)
{
	return s && strlen(s) == 36 && uuid_parse(s, out) == 0;
}

void ids_uuid_format(char out[IDS_UUID_LEN], const unsigned char in[16])
{
	uuid_unparse_lower(in, out);
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
