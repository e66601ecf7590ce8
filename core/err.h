/* Error codes and the caller-owned error record.
 *
 * Every fallible function returns an int: 0 on success, one of the negative
 * NOVA_E* codes on failure, and fills a caller-owned struct nova_err. The
 * record has fixed buffers so that reporting an error never allocates (an
 * out-of-memory path can still say what happened). Each code maps to exactly
 * one HTTP status (gateway) and one exit status (CLI). */
#ifndef NOVA_CORE_ERR_H
#define NOVA_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum nova_code {
	NOVA_OK = 0,
	NOVA_EINVAL = -1,     /* bad input: a field is wrong                 -> 400 */
	NOVA_ENOTFOUND = -2,  /* no such object                              -> 404 */
	NOVA_EEXISTS = -3,    /* an object with that identity exists         -> 409 */
	NOVA_ECONFLICT = -4,  /* the object's state forbids the operation    -> 409 */
	NOVA_EAGAIN = -5,     /* transient failure: retry with backoff       -> 503 */
	NOVA_EUNAVAIL = -6,   /* a dependency (database, provider) is down   -> 503 */
	NOVA_EUNAUTH = -7,    /* no or unknown credential                    -> 401 */
	NOVA_EFORBIDDEN = -8, /* credential of the wrong kind or scope       -> 403 */
	NOVA_ETOOBIG = -9,    /* request body over the limit                 -> 413 */
	NOVA_ENOTSUP = -10,   /* operation not supported by this provider    -> 501 */
	NOVA_EFAILED = -11,   /* permanent provider failure                  -> 502 */
	NOVA_EINTERNAL = -12, /* a bug or resource exhaustion                -> 500 */
	NOVA_ENOMETHOD = -13, /* path exists, method does not                -> 405 */
	NOVA_ETOOMANY = -14,  /* a cap on what one caller may hold is reached -> 429 */
};

#define NOVA_ERR_FIELD_MAX 128
#define NOVA_ERR_MESSAGE_MAX 512
#define NOVA_ERR_HINT_MAX 256

struct nova_err {
	int code;
	char field[NOVA_ERR_FIELD_MAX];     /* offending input field, "" if none */
	char message[NOVA_ERR_MESSAGE_MAX]; /* one line, lower case, factual */
	char hint[NOVA_ERR_HINT_MAX];       /* how to fix it, "" if none */
};

void nova_err_clear(struct nova_err *err);

/* Fill err (which may be NULL) and return code, so callers can write
 * `return nova_err_set(err, NOVA_EINVAL, "name", "must not be empty");`. */
int nova_err_set(struct nova_err *err, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int nova_err_vset(struct nova_err *err, int code, const char *field, const char *fmt,
		  va_list ap) __attribute__((format(printf, 4, 0)));
void nova_err_set_hint(struct nova_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefix the field path: "allocation" becomes "config.allocation". */
void nova_err_prefix_field(struct nova_err *err, const char *prefix);

/* Stable snake_case name of a code ("not_found"); "internal" for unknown. */
const char *nova_code_name(int code);
/* Inverse of nova_code_name; NOVA_EINTERNAL for an unknown name. */
int nova_code_from_name(const char *name);
int nova_code_http_status(int code);
/* CLI exit statuses: 0 ok, 1 other, 2 usage/invalid, 3 not found,
 * 4 exists/conflict, 5 auth, 6 server or dependency unavailable. */
int nova_code_exit_status(int code);
/* The code a gateway error status stands for (for clients). */
int nova_code_from_http_status(int status);

#endif
