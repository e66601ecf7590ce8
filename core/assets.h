/* Files novad serves as they are (the API's documentation page, the
 * dashboard): compiled into the binary from web/ by tools/embed_files, as
 * the migrations are, so an installed novad needs no asset directory and
 * no build step runs when it starts. */
#ifndef NOVA_CORE_ASSETS_H
#define NOVA_CORE_ASSETS_H

#include <stddef.h>

struct asset {
	const char *path;         /* "/docs.html": its name under web/ */
	const char *content_type;
	const unsigned char *data; /* NUL-terminated past len */
	size_t len;
};

extern const struct asset assets_builtin[];
extern const size_t assets_builtin_count;

/* The asset at path, or NULL. */
const struct asset *asset_find(const char *path);

#endif
