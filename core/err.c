#include "core/err.h"

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

int nova_err_vset(struct nova_err *err, int code, const char *field, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	err->hint[0] = '\0';
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
