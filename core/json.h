/* Strict JSON decoding on top of jansson.
 *
 * A request body is decoded against a table of fields. A missing required
 * field, a value of the wrong type, a value out of range or a field the table
 * does not name is an error that names the field by its full path
 * ("quotas.max_nodes"). Rejecting unknown fields is deliberate: a typo in an
 * optional field ("replica" for "replicas") silently ignored is worse than a
 * 400 that names it. */
#ifndef NOVA_CORE_JSON_H
#define NOVA_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

enum json_kind {
	JSON_KIND_STRING,  /* out: const char ** (borrowed from the json_t)  */
	JSON_KIND_INT,     /* out: long long *                               */
	JSON_KIND_BOOL,    /* out: bool *                                    */
	JSON_KIND_OBJECT,  /* out: json_t ** (borrowed)                      */
	JSON_KIND_ARRAY,   /* out: json_t ** (borrowed)                      */
	JSON_KIND_NUMBER,  /* out: double * (integer or real)                */
	JSON_KIND_ANY,     /* out: json_t ** (borrowed), any type but null   */
};

struct json_field {
	const char *name;
	enum json_kind kind;
	bool required;
	void *out;
	bool *present;      /* optional: set true when the field was given   */
	long long min, max; /* JSON_KIND_INT: inclusive range when min < max */
	size_t max_len;     /* JSON_KIND_STRING: 0 means 1024 bytes          */
	bool allow_empty;   /* JSON_KIND_STRING: "" accepted                 */
};

/* Parse buf as one JSON object (other top-level types are refused).
 * *out is a new reference owned by the caller. */
int json_parse_object(json_t **out, const char *buf, size_t len, struct nova_err *err);

/* Decode obj against fields. path prefixes field names in errors ("" or
 * NULL for top level). Strings containing NUL bytes or invalid UTF-8 never
 * reach here: jansson refuses them while parsing. */
int json_decode_object(const json_t *obj, const struct json_field *fields, size_t n_fields,
		       const char *path, struct nova_err *err);

/* Labels: an object of at most 64 string values (keys 1..63 bytes, values
 * at most 256), as pools, nodes and selectors use. */
int json_check_labels(const json_t *labels, const char *field, struct nova_err *err);

/* Serialize compactly; caller frees with free(). NULL on allocation failure. */
char *json_dump_compact(const json_t *v);

#endif
