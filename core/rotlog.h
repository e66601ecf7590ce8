/* A log file with a size cap: when a write would take the file past
 * max_bytes it is renamed PATH.1 (PATH.1 to PATH.2, ..., the oldest beyond
 * keep removed) and a new PATH is started, so a log never takes more than
 * (keep + 1) * max_bytes on disk. The lpu agents' logs grew without bound
 * (about 62 MiB a day per idle node: an access line per health probe of
 * each engine); nova-sidecar now writes its log and its engines' output
 * through one of these (--log-file).
 *
 * The writer rotates, not an outside logrotate: a renamed file keeps being
 * written by whoever holds it open, and the engines' output comes through
 * the sidecar, so the sidecar is the one writer that can switch files. With
 * stdio set, stdout and stderr follow the current file (dup2), so whatever
 * a library writes to stderr lands in the capped log too. Rejected:
 * copy-and-truncate (logrotate's copytruncate), which loses what is written
 * between the copy and the truncation and copies the whole file each time.
 *
 * Thread-safe: writes are serialized by a mutex. A write larger than
 * max_bytes goes whole into a fresh file (a line is never split). */
#ifndef NOVA_CORE_ROTLOG_H
#define NOVA_CORE_ROTLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/log.h"

#define ROTLOG_DEFAULT_MAX_BYTES (16ull << 20) /* 16 MiB */
#define ROTLOG_DEFAULT_KEEP 3                  /* so at most 64 MiB per log */
#define ROTLOG_MIN_MAX_BYTES 4096ull
#define ROTLOG_MAX_KEEP 99

struct rotlog;

/* Open (append to) path, created 0600. max_bytes >= ROTLOG_MIN_MAX_BYTES,
 * 1 <= keep <= ROTLOG_MAX_KEEP (else NOVA_EINVAL). With stdio, fds 1 and 2
 * are made the current file, now and after each rotation. */
int rotlog_open(struct rotlog **out, const char *path, unsigned long long max_bytes, unsigned keep,
		bool stdio, struct nova_err *err);
/* Append len bytes, rotating first when they would not fit. 0, or -1 when
 * the file cannot be written (the bytes are dropped: a log must not stop
 * its writer). */
int rotlog_write(struct rotlog *l, const void *buf, size_t len);
/* A nova_log sink (core/log.h) writing each line with its newline; ctx is
 * the rotlog. */
void rotlog_log_sink(void *ctx, enum nova_log_level level, const char *line);
/* Accepts NULL. */
void rotlog_close(struct rotlog *l);

#endif
