/* Small filesystem helpers shared by the state directory's users, and the
 * one gate through which a path named in an API body reaches a file on
 * novad's own machine.
 *
 * Provider files: a pool's config may name files on novad's machine (an
 * lpu topology, a kubeconfig, an ssh key or known_hosts). Those are taken
 * only under the directories the operator allowed (novad.yaml
 * provider_files, NOVA_PROVIDER_FILES). files_path_allowed() resolves the
 * path (symlinks, "..") without opening it, refuses it unless the result
 * lies under an allowed directory and is a regular file, and hands back the
 * resolved path, which is the one to open (files_read_allowed() does both,
 * with a size cap).
 *
 * Every check and read here touches the file system on a reader thread
 * and waits for it at most the provider-files timeout (files_timeout_set):
 * a file that does not answer (a hung network or FUSE mount) gets
 * NOVA_EUNAVAIL naming the field, and the caller's thread is free again;
 * the reader is left behind, and past FILES_STUCK_MAX such readers every
 * read is refused at once (files.c says why and what was rejected).
 *
 * The allowed list is one process-wide setting, set once by novad from its
 * configuration before any thread starts and read-only after (as the
 * adapter registry is). It is not per adapter instance because it is not
 * the pool's to choose: it bounds every pool. Rejected: passing it through
 * adapter_validate/create, which would widen the adapter contract for all
 * providers for one setting that never changes while novad runs. Until it
 * is set nothing is allowed: a program that forgets it fails closed. */
#ifndef NOVA_CORE_FILES_H
#define NOVA_CORE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

/* The novad.yaml key the allowed directories come from, for hints. */
#define FILES_ALLOWED_KEY "provider_files"
#define FILES_ALLOWED_MAX 16
/* What a provider file may weigh: topologies, kubeconfigs, keys and
 * known_hosts files are kilobytes; the cap keeps a mistaken path (a log, a
 * disk image) from being read whole. */
#define FILES_READ_MAX (1024 * 1024)
/* How long a check or read may take by default: novad.yaml's
 * provider_files_timeout_ms (NOVA_PROVIDER_FILES_TIMEOUT_MS). */
#define FILES_TIMEOUT_DEFAULT_MS 2000
#define FILES_STUCK_MAX 8

/* The deadline of every check and read below (0: the default). A
 * process-wide setting made by novad before threads start. */
void files_timeout_set(unsigned ms);
/* Readers left behind past their deadline and still running (at most
 * FILES_STUCK_MAX: then reads are refused at once). */
unsigned files_readers_stuck(void);

/* mkdir -p: missing parents are made 0755, the last component leaf_mode.
 * Errors are NOVA_EUNAVAIL naming field (the config key the path came from). */
int files_mkdir_p(const char *dir, mode_t leaf_mode, const char *field, struct nova_err *err);

/* Replace the allowed directories with dirs[0..n): each must exist and be a
 * directory; it is kept resolved (realpath). NOVA_EINVAL naming field (the
 * config key they came from). Call before threads start. */
int files_allowed_set(const char *const *dirs, size_t n, const char *field, struct nova_err *err);
size_t files_allowed_count(void);
/* The i-th allowed directory, resolved (borrowed). */
const char *files_allowed_dir(size_t i);

/* Check the path path_len bytes at path (a JSON string may hold a NUL, so
 * the length is given) without opening it: absolute, no NUL, resolvable,
 * under an allowed directory after resolving, and a regular file. On
 * success resolved (cap bytes) holds the resolved path. Errors are
 * NOVA_EINVAL naming field, with the novad.yaml key as the hint when the
 * path is outside; NOVA_EUNAVAIL naming field when the file system did not
 * answer within the deadline, or too many readers are stuck. */
int files_path_allowed(char *resolved, size_t cap, const char *path, size_t path_len,
		       const char *field, struct nova_err *err);

/* files_path_allowed(), then the file's content (at most max bytes, else
 * NOVA_EINVAL), NUL-terminated, in *out (the caller frees); *len_out (may
 * be NULL) its length. resolved may be NULL. */
int files_read_allowed(char **out, size_t *len_out, char *resolved, size_t cap, const char *path,
		       size_t path_len, size_t max, const char *field, struct nova_err *err);

/* Read a regular file the caller chose (no allowed-directory check): at
 * most max bytes, opened without following a final symlink and without
 * blocking, NUL-terminated in *out. NOVA_ENOTFOUND when missing,
 * NOVA_EUNAVAIL past the deadline (as above), else NOVA_EINVAL naming
 * field. */
int files_read_capped(char **out, size_t *len_out, const char *path, size_t max, const char *field,
		      struct nova_err *err);

/* novad's state directory, for the files providers keep of their own (the
 * ssh pools' known_hosts, the fake provider's state file): set once by
 * novad from its configuration (state_dir, --state-dir, NOVA_STATE_DIR)
 * before any thread starts, read-only after. Until set, or set to NULL or
 * "", it is cfg_default_state_dir()'s (core/config.h). */
void files_state_dir_set(const char *dir);
/* The state directory into out (len bytes). */
void files_state_dir(char *out, size_t len);

/* novad's etc directory: PREFIX/share/nova/etc beside an installed
 * PREFIX/bin/novad; else, run from a build directory of the source tree
 * (build/, build-asan/, build/bench/), the etc/ of the nearest of the
 * program's first three ancestors that holds etc/novad.yaml. false when
 * neither exists. */
bool files_default_etc_dir(char *out, size_t len);

#endif
