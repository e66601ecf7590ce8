/* Structured logging: one JSON object per line, to stderr by default.
 *
 *   {"ts":"2026-11-23T05:18:35.123Z","level":"info","component":"http","msg":"...",
 *    "key":"value",...}
 *
 * The sink is replaceable so tests can read what was logged. Callers must
 * never pass tokens, passwords, kubeconfigs or connection strings: there is
 * no redaction pass here, because a redactor that guesses is worse than a rule
 * the code review enforces (see nova_log_redact_url for the one helper). */
#ifndef NOVA_CORE_LOG_H
#define NOVA_CORE_LOG_H

#include <stddef.h>

enum nova_log_level {
	NOVA_LOG_DEBUG = 0,
	NOVA_LOG_INFO = 1,
	NOVA_LOG_WARN = 2,
	NOVA_LOG_ERROR = 3,
};

/* A sink receives one complete JSON line without the trailing newline. It may
 * be called from any thread, one call at a time (the logger serializes). */
typedef void (*nova_log_sink_fn)(void *ctx, enum nova_log_level level, const char *line);

/* Pass NULL to restore the default stderr sink. Not for use while other
 * threads log. */
void nova_log_set_sink(nova_log_sink_fn fn, void *ctx);
void nova_log_set_level(enum nova_log_level level);
enum nova_log_level nova_log_get_level(void);
/* "debug", "info", "warn", "error" -> 0; -1 for anything else. */
int nova_log_level_parse(enum nova_log_level *out, const char *name);
const char *nova_log_level_name(enum nova_log_level level);

void nova_log(enum nova_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A message plus string key/value fields, terminated by NULL:
 *   nova_log_kv(NOVA_LOG_INFO, "http", "request", "method", "GET", "status", "200", NULL);
 * A NULL value is written as JSON null. */
void nova_log_kv(enum nova_log_level level, const char *component, const char *msg, ...)
	__attribute__((sentinel));

/* The request this thread works for (an HTTP request's id, or the one a
 * work item carries from the request that queued it): every line the
 * thread logs while it is set carries it as "request_id", so one grep
 * finds all a request caused. NULL clears it. The string must outlive the
 * setting (the caller's). Per thread. */
void nova_log_request_set(const char *request_id);
const char *nova_log_request_get(void);

/* Copy a URL with any user-info password removed ("postgresql://u:secret@h/db"
 * -> "postgresql://u:***@h/db") and any "password=" query value masked. */
void nova_log_redact_url(char *out, size_t out_len, const char *url);

#endif
