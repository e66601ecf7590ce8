/* Small filesystem helpers shared by the state directory's users. */
#ifndef NOVA_CORE_FILES_H
#define NOVA_CORE_FILES_H

#include <sys/types.h>

#include "core/err.h"

/* mkdir -p: missing parents are made 0755, the last component leaf_mode.
 * Errors are NOVA_EUNAVAIL naming field (the config key the path came from). */
int files_mkdir_p(const char *dir, mode_t leaf_mode, const char *field, struct nova_err *err);

#endif
