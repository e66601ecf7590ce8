#include "core/assets.h"

#include <string.h>

const struct asset *asset_find(const char *path)
{
	for (size_t i = 0; path && i < assets_builtin_count; i++)
		if (!strcmp(assets_builtin[i].path, path))
			return &assets_builtin[i];
	return NULL;
}
