#include "core/json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The dotted path ("config.topology", "hosts[0].key") of the first string
 * or key in v holding a NUL byte; false when none does. */
static bool json_nul_path(char *buf, size_t n, const json_t *v, const char *at)
{
	char sub[NOVA_ERR_FIELD_MAX];
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) == json_string_length(v))
			return false;
		snprintf(buf, n, "%s", at);
		return true;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) {
			/* A key with a NUL is cut at it by jansson: named up to it. */
			snprintf(sub, sizeof(sub), "%s%s%s", at, *at ? "." : "", k);
			if (json_nul_path(buf, n, x, sub))
				return true;
		}
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			snprintf(sub, sizeof(sub), "%s[%zu]", at, i);
			if (json_nul_path(buf, n, x, sub))
				return true;
		}
	}
	return false;
}

/* The dotted path of the last number that starts before byte pos of text,
 * which jansson parsed up to there: the number it found out of range. A
 * scan of the text rather than of a parsed tree: nothing parses (jansson
 * keeps integers as json_int_t and refuses the rest of the document), and
 * a parse with JSON_DECODE_INT_AS_REAL would still refuse 1e999 and could
 * not tell an integer 2^63 from a real 9.3e18 given earlier. Keys are named
 * as written (escapes and all); the path is cut at NOVA_ERR_FIELD_MAX. */
static void json_number_path(char *buf, size_t n, const char *text, size_t len, size_t pos)
{
	struct {
		bool obj;
		size_t index, key, key_len;
	} st[64];
	size_t depth = 0, skipped = 0; /* frames deeper than st[] are counted only */
	bool want_key = false, in_number = false;
	buf[0] = '\0';
	if (pos > len)
		pos = len;
	for (size_t i = 0; i < pos; i++) {
		char c = text[i];
		bool number_char = (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
				   c == 'e' || c == 'E';
		if (number_char && !in_number) {
			/* A number begins here: its path is the state now (deeper
			 * than st[], its first 64 steps and "..."). */
			size_t o = 0;
			buf[0] = '\0';
			for (size_t d = 0; d < depth && o < n; d++) {
				/* An empty key is named "" so the path still says where. */
				int w;
				if (!st[d].obj)
					w = snprintf(buf + o, n - o, "[%zu]", st[d].index);
				else if (!st[d].key_len)
					w = snprintf(buf + o, n - o, "%s\"\"", o ? "." : "");
				else
					w = snprintf(buf + o, n - o, "%s%.*s", o ? "." : "",
						     (int)st[d].key_len, text + st[d].key);
				if (w < 0)
					break;
				o += (size_t)w;
			}
			if (skipped && o < n)
				snprintf(buf + o, n - o, "...");
		}
		in_number = number_char;
		switch (c) {
		case '{':
		case '[':
			if (depth < sizeof(st) / sizeof(st[0]) && !skipped) {
				st[depth].obj = c == '{';
				st[depth].index = st[depth].key = st[depth].key_len = 0;
				depth++;
			} else {
				skipped++;
			}
			want_key = c == '{';
			break;
		case '}':
		case ']':
			if (skipped)
				skipped--;
			else if (depth)
				depth--;
			want_key = false;
			break;
		case ',':
			if (!skipped && depth && !st[depth - 1].obj)
				st[depth - 1].index++;
			want_key = !skipped && depth && st[depth - 1].obj;
			break;
		case '"': {
			size_t start = i + 1;
			for (i = start; i < pos && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			if (want_key && !skipped && depth) {
				st[depth - 1].key = start;
				st[depth - 1].key_len = (i < pos ? i : pos) - start;
			}
			want_key = false;
			break;
		}
		default:
			break;
		}
	}
}

int json_parse_object(json_t **out, const char *buf, size_t len, struct nova_err *err)
{
	json_error_t jerr;
	json_t *v;
	*out = NULL;
	if (!buf || len == 0)
		return nova_err_set(err, NOVA_EINVAL, "", "request body is empty; a JSON object is required");
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v && json_error_code(&jerr) == json_error_null_character) {
		/* Refused all the same (no string in Nova holds a NUL, and a C
		 * string would silently end there: a path would name another
		 * file), but naming the field it is in. */
		char field[NOVA_ERR_FIELD_MAX] = "";
		json_t *w = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
		bool found = w && json_nul_path(field, sizeof(field), w, "");
		json_decref(w);
		if (found)
			return nova_err_set(err, NOVA_EINVAL, field, "%s contains a NUL byte (\\u0000)",
					    field);
	}
	if (!v && json_error_code(&jerr) == json_error_numeric_overflow && jerr.position > 0) {
		/* jansson's "too big integer" names no field: name it. */
		char field[NOVA_ERR_FIELD_MAX];
		json_number_path(field, sizeof(field), buf, len, (size_t)jerr.position);
		if (field[0])
			return nova_err_set(err, NOVA_EINVAL, field,
					    "%s: %s out of range (integers are 64-bit: -2^63 to 2^63-1)",
					    field, strstr(jerr.text, "real") ? "number" : "integer");
	}
	if (!v)
		return nova_err_set(err, NOVA_EINVAL, "", "malformed JSON at line %d column %d: %s",
				    jerr.line, jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return nova_err_set(err, NOVA_EINVAL, "", "request body must be a JSON object");
	}
	*out = v;
	return 0;
}

static const char *json_kind_name(enum json_kind k)
{
	switch (k) {
	case JSON_KIND_STRING: return "a string";
	case JSON_KIND_INT: return "an integer";
	case JSON_KIND_BOOL: return "a boolean";
	case JSON_KIND_OBJECT: return "an object";
	case JSON_KIND_ARRAY: return "an array";
	case JSON_KIND_NUMBER: return "a number";
	case JSON_KIND_ANY: return "a value";
	}
	return "a value";
}

static void json_path(char *buf, size_t n, const char *path, const char *name)
{
	if (path && *path)
		snprintf(buf, n, "%s.%s", path, name);
	else
		snprintf(buf, n, "%s", name);
}

static int json_decode_one(const struct json_field *f, json_t *v, const char *fp,
			   struct nova_err *err)
{
	switch (f->kind) {
	case JSON_KIND_STRING: {
		size_t max = f->max_len ? f->max_len : 1024;
		if (!json_is_string(v))
			break;
		if (json_string_length(v) == 0 && !f->allow_empty)
			return nova_err_set(err, NOVA_EINVAL, fp, "%s must not be empty", fp);
		if (json_string_length(v) > max)
			return nova_err_set(err, NOVA_EINVAL, fp, "%s is longer than %zu bytes", fp, max);
		*(const char **)f->out = json_string_value(v);
		return 0;
	}
	case JSON_KIND_INT:
		if (!json_is_integer(v))
			break;
		if (f->min < f->max &&
		    (json_integer_value(v) < f->min || json_integer_value(v) > f->max))
			return nova_err_set(err, NOVA_EINVAL, fp, "%s must be between %lld and %lld", fp,
					    f->min, f->max);
		*(long long *)f->out = json_integer_value(v);
		return 0;
	case JSON_KIND_BOOL:
		if (!json_is_boolean(v))
			break;
		*(bool *)f->out = json_is_true(v);
		return 0;
	case JSON_KIND_OBJECT:
		if (!json_is_object(v))
			break;
		*(json_t **)f->out = v;
		return 0;
	case JSON_KIND_ARRAY:
		if (!json_is_array(v))
			break;
		*(json_t **)f->out = v;
		return 0;
	case JSON_KIND_NUMBER:
		if (!json_is_number(v))
			break;
		*(double *)f->out = json_number_value(v);
		return 0;
	case JSON_KIND_ANY:
		if (json_is_null(v))
			break;
		*(json_t **)f->out = v;
		return 0;
	}
	return nova_err_set(err, NOVA_EINVAL, fp, "%s must be %s", fp, json_kind_name(f->kind));
}

int json_decode_object(const json_t *obj, const struct json_field *fields, size_t n_fields,
		       const char *path, struct nova_err *err)
{
	char fp[NOVA_ERR_FIELD_MAX];
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		const char *p = path && *path ? path : "body";
		return nova_err_set(err, NOVA_EINVAL, path ? path : "", "%s must be an object", p);
	}
	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		for (i = 0; i < n_fields; i++)
			if (strcmp(fields[i].name, key) == 0)
				break;
		if (i == n_fields) {
			json_path(fp, sizeof(fp), path, key);
			return nova_err_set(err, NOVA_EINVAL, fp, "unknown field %s", fp);
		}
	}
	for (size_t i = 0; i < n_fields; i++) {
		const struct json_field *f = &fields[i];
		json_path(fp, sizeof(fp), path, f->name);
		if (f->present)
			*f->present = false;
		v = json_object_get(obj, f->name);
		if (!v) {
			if (f->required)
				return nova_err_set(err, NOVA_EINVAL, fp, "%s is required", fp);
			continue;
		}
		int rc = json_decode_one(f, v, fp, err);
		if (rc)
			return rc;
		if (f->present)
			*f->present = true;
	}
	return 0;
}

char *json_dump_compact(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int json_check_labels(const json_t *labels, const char *field, struct nova_err *err)
{
	const char *k;
	json_t *v;
	if (!json_is_object(labels))
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an object of strings", field);
	if (json_object_size(labels) > 64)
		return nova_err_set(err, NOVA_EINVAL, field, "%s has more than 64 entries", field);
	json_object_foreach((json_t *)labels, k, v) {
		char f[NOVA_ERR_FIELD_MAX];
		snprintf(f, sizeof(f), "%s.%s", field, k);
		if (!*k || strlen(k) > 63)
			return nova_err_set(err, NOVA_EINVAL, field,
					    "%s keys must be 1 to 63 characters", field);
		if (!json_is_string(v) || json_string_length(v) > 256)
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be a string of at most 256 bytes",
					    f);
	}
	return 0;
}
