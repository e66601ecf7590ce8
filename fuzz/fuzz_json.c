/* libFuzzer target: an API request body through the strict decoders, as
 * the gateway takes it (core/json.c's json_parse_object), then through the
 * decoders of the bodies that need no database: a model spec
 * (model_spec_parse), each provider's pool config (adapter_validate: lpu,
 * kubernetes, ssh; inline topologies and kubeconfigs parsed from the JSON
 * strings), labels, and a table of every field kind. Seeds:
 * fuzz/corpus/json/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "core/json.h"
#include "models/model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nova_err err;
	(void)argc;
	(void)argv;
	/* Without the fake: its state_file is a file it writes. */
	if (adapters_register_builtin(false, &err))
		abort();
	return 0;
}

/* Every refusal is a 400 with a message; one that says "out of range"
 * names the field (issue 23: jansson's "too big integer" named none). */
static void fz_check_refusal(int rc, const struct nova_err *err)
{
	if (rc == 0)
		return;
	if (rc != NOVA_EINVAL && rc != NOVA_ENOTFOUND && rc != NOVA_EUNAVAIL && rc != NOVA_ETOOBIG)
		goto bad;
	if (!err->message[0] || strchr(err->message, '\n'))
		goto bad;
	/* The error body is built with jansson, which takes UTF-8 only. */
	json_t *m = json_string(err->message), *f = json_string(err->field);
	bool utf8 = m && f;
	json_decref(m);
	json_decref(f);
	if (utf8)
		return;
bad:
	fprintf(stderr, "refusal %d field \"%s\" message \"%s\"\n", rc, err->field, err->message);
	abort();
}

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
	json_t *body;
	nova_err_clear(&err);
	int rc = json_parse_object(&body, (const char *)data, size, &err);
	if (rc) {
		if (rc != NOVA_EINVAL || body || !err.message[0])
			abort();
		fz_check_overflow_named(data, size, &err);
		return 0;
	}
	if (!json_is_object(body))
		abort();
	struct model m;
	nova_err_clear(&err);
	rc = model_spec_parse(&m, body, &err);
	fz_check_refusal(rc, &err);
	if (rc == 0) {
		if (m.n_stages < 1 || m.n_stages > MODEL_MAX_STAGES || !m.spec)
			abort();
		json_decref(m.spec);
	}
	static const char *const providers[] = {"lpu", "kubernetes", "ssh"};
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
		const struct adapter_ops *ops = adapter_find(providers[i]);
		if (!ops)
			abort();
		nova_err_clear(&err);
		fz_check_refusal(adapter_validate(ops, body, &err), &err);
	}
	nova_err_clear(&err);
	fz_check_refusal(json_check_labels(body, "labels", &err), &err);
	const char *s = NULL;
	long long n = 0;
	bool b = false;
	double d = 0;
	json_t *o = NULL, *a = NULL, *any = NULL;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .out = &s, .max_len = 63},
		{.name = "replicas", .kind = JSON_KIND_INT, .out = &n, .min = 0, .max = 1000},
		{.name = "enabled", .kind = JSON_KIND_BOOL, .out = &b},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &o},
		{.name = "hosts", .kind = JSON_KIND_ARRAY, .out = &a},
		{.name = "weight", .kind = JSON_KIND_NUMBER, .out = &d},
		{.name = "config", .kind = JSON_KIND_ANY, .out = &any},
	};
	nova_err_clear(&err);
	rc = json_decode_object(body, fields, sizeof(fields) / sizeof(fields[0]), "spec", &err);
	fz_check_refusal(rc, &err);
	if (rc == 0 && (n < 0 || n > 1000 || (s && strlen(s) > 63)))
		abort();
	if (rc && strncmp(err.field, "spec", 4) != 0)
		abort();
	json_decref(body);
	return 0;
}
