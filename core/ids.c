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
