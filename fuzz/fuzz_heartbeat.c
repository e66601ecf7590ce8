/* libFuzzer target: a heartbeat body (POST /v1/nodes/{node}/heartbeat) as
 * novad takes it: json_parse_object, then the inventory's check of every
 * field (inventory/inventory_int.h). What passes must be what the routes
 * serve: a uuid per replica, a known state, load hints that are numbers
 * (at least 0, kv_cache_usage at most 1). Seeds: fuzz/corpus/heartbeat/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/json.h"
#include "inventory/inventory_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Issue 23: jansson's "too big integer" (and "real number overflow")
 * named no field. Whenever jansson stops at a number out of range inside
 * an object, the refusal must name where. */
static void fz_check_overflow_named(const uint8_t *data, size_t size, const struct nova_err *err)
{
	json_error_t jerr;
	/* Within the first value: a number after it is trailing text. */
	json_t *v = json_loadb((const char *)data, size,
			       JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
	size_t i = 0;
	json_decref(v);
	while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
		i++;
	if (!v && json_error_code(&jerr) == json_error_numeric_overflow && i < size &&
	    data[i] == '{' && !err->field[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nova_err err;
	json_t *body, *capacity = NULL, *replicas = NULL, *r;
	const char *generation = NULL;
	long long seq = -1;
	size_t i;
	nova_err_clear(&err);
	if (json_parse_object(&body, (const char *)data, size, &err)) {
		fz_check_overflow_named(data, size, &err);
		return 0;
	}
	json_t *logs = NULL;
	int rc = inv_heartbeat_body_check(&seq, &capacity, &replicas, &generation, &logs, body, &err);
	if (rc) {
		if (rc != NOVA_EINVAL || !err.message[0])
			abort();
		json_decref(body);
		return 0;
	}
	if (seq < 0 || (capacity && !json_is_object(capacity)) ||
	    (generation && strlen(generation) > 64) || json_array_size(replicas) > 256)
		abort();
	json_array_foreach(replicas, i, r) {
		const char *id = json_string_value(json_object_get(r, "replica_id"));
		const char *state = json_string_value(json_object_get(r, "state"));
		json_t *load = json_object_get(r, "load"), *v;
		const char *k;
		if (!id || !ids_is_uuid(id) || !state ||
		    (strcmp(state, "starting") && strcmp(state, "ready") && strcmp(state, "failed")))
			abort();
		if (load && (!json_is_object(load) || json_object_size(load) > 16))
			abort();
		json_object_foreach(load, k, v) {
			if (!json_is_number(v) || json_number_value(v) < 0)
				abort();
			if (!strcmp(k, "kv_cache_usage") && json_number_value(v) > 1)
				abort();
		}
	}
	json_decref(body);
	return 0;
}
