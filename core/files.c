#include "core/files.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int files_mkdir_p(const char *dir, mode_t leaf_mode, const char *field, struct nova_err *err)
{
	char tmp[1024];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(tmp))
		return nova_err_set(err, NOVA_EINVAL, field, "directory path \"%s\" is empty or too long",
				    dir);
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return nova_err_set(err, NOVA_EUNAVAIL, field, "cannot create %s: %s", tmp,
					    strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, leaf_mode) != 0 && errno != EEXIST)
		return nova_err_set(err, NOVA_EUNAVAIL, field, "cannot create %s: %s", tmp,
				    strerror(errno));
	return 0;
}
