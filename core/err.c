#include "core/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void nova_err_clear(struct nova_err *err)
{
	if (!err)
		return;
	err->code = NOVA_OK;
	err->field[0] = '\0';
	err->message[0] = '\0';
	err->hint[0] = '\0';
}

/* One line of valid UTF-8, whatever went in: a field or message may echo
 * a key from a request ("unknown field a\nb") and is cut at its buffer,
 * perhaps inside a character. Control bytes and bytes of no complete UTF-8
 * sequence become '?', so a log line stays one line and the JSON error
 * body can always be built (jansson refuses invalid UTF-8: the answer
 * would have lost its message). Found by fuzz/fuzz_json.c. */
static void err_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
			 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		size_t i = 1;
		while (n > 1 && i < n && (p[i] & 0xc0) == 0x80)
			i++;
		/* Overlong forms and surrogates are what jansson refuses too. */
		bool ok = n == 1 ? *p >= 0x20 && *p != 0x7f
			: n != 0 && i == n &&
			  !(n == 2 && *p < 0xc2) &&
			  !(n == 3 && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0))) &&
			  !(n == 4 && ((*p == 0xf0 && p[1] < 0x90) || *p > 0xf4 ||
				       (*p == 0xf4 && p[1] >= 0x90)));
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

int nova_err_vset(struct nova_err *err, int code, const char *field, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	err->hint[0] = '\0';
	err_clean(err->field);
	err_clean(err->message);
	return code;
}

int nova_err_set(struct nova_err *err, int code, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	nova_err_vset(err, code, field, fmt, ap);
	va_end(ap);
	return code;
}

void nova_err_set_hint(struct nova_err *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	err_clean(err->hint);
}

void nova_err_prefix_field(struct nova_err *err, const char *prefix)
{
	char tmp[NOVA_ERR_FIELD_MAX];
	if (!err || !prefix || !*prefix)
		return;
	int n = err->field[0] ? snprintf(tmp, sizeof(tmp), "%s.%s", prefix, err->field)
			      : snprintf(tmp, sizeof(tmp), "%s", prefix);
	if (n < 0)
		return;
	/* A field path too long for the record is cut, never left unterminated. */
	memcpy(err->field, tmp, sizeof(tmp));
	err_clean(err->field);
}

static const struct {
	int code;
	const char *name;
	int http;
	int exit;
} err_table[] = {
	{NOVA_OK, "ok", 200, 0},
	{NOVA_EINVAL, "invalid", 400, 2},
	{NOVA_ENOTFOUND, "not_found", 404, 3},
	{NOVA_EEXISTS, "already_exists", 409, 4},
	{NOVA_ECONFLICT, "conflict", 409, 4},
	{NOVA_EAGAIN, "unavailable_retry", 503, 6},
	{NOVA_EUNAVAIL, "unavailable", 503, 6},
	{NOVA_EUNAUTH, "unauthenticated", 401, 5},
	{NOVA_EFORBIDDEN, "forbidden", 403, 5},
	{NOVA_ETOOBIG, "too_large", 413, 2},
	{NOVA_ENOTSUP, "not_supported", 501, 1},
	{NOVA_EFAILED, "provider_failed", 502, 6},
	{NOVA_EINTERNAL, "internal", 500, 6},
	{NOVA_ENOMETHOD, "method_not_allowed", 405, 2},
	{NOVA_ETOOMANY, "too_many_requests", 429, 6},
};

#define ERR_TABLE_LEN (sizeof(err_table) / sizeof(err_table[0]))

const char *nova_code_name(int code)
{
	for (size_t i = 0; i < ERR_TABLE_LEN; i++)
		if (err_table[i].code == code)
			return err_table[i].name;
	return "internal";
}

int nova_code_from_name(const char *name)
{
	for (size_t i = 0; name && i < ERR_TABLE_LEN; i++)
		if (strcmp(err_table[i].name, name) == 0)
			return err_table[i].code;
	return NOVA_EINTERNAL;
}

int nova_code_http_status(int code)
{
	for (size_t i = 0; i < ERR_TABLE_LEN; i++)
		if (err_table[i].code == code)
			return err_table[i].http;
	return 500;
}

int nova_code_exit_status(int code)
{
	for (size_t i = 0; i < ERR_TABLE_LEN; i++)
		if (err_table[i].code == code)
			return err_table[i].exit;
	return 6;
}

int nova_code_from_http_status(int status)
{
	switch (status) {
	case 400: case 422: return NOVA_EINVAL;
	case 401: return NOVA_EUNAUTH;
	case 403: return NOVA_EFORBIDDEN;
	case 404: return NOVA_ENOTFOUND;
	case 405: return NOVA_ENOMETHOD;
	case 409: return NOVA_ECONFLICT;
	case 413: return NOVA_ETOOBIG;
	case 429: return NOVA_ETOOMANY;
	case 501: return NOVA_ENOTSUP;
	case 502: return NOVA_EFAILED;
	case 503: return NOVA_EUNAVAIL;
	default: return status >= 200 && status < 300 ? NOVA_OK : NOVA_EINTERNAL;
	}
}
