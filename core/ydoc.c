#include "core/ydoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ydoc {
	yaml_document_t doc;
	bool loaded;
	char name[512];
};

static int ydoc_load(struct ydoc **out, const char *name, yaml_parser_t *parser,
		     struct nova_err *err)
{
	struct ydoc *d = calloc(1, sizeof(*d));
	*out = NULL;
	if (!d)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(d->name, sizeof(d->name), "%s", name);
	if (!yaml_parser_load(parser, &d->doc)) {
		int rc = nova_err_set(err, NOVA_EINVAL, "", "%s:%zu:%zu: %s%s%s", name,
				      parser->problem_mark.line + 1, parser->problem_mark.column + 1,
				      parser->problem ? parser->problem : "invalid yaml",
				      parser->context ? " " : "", parser->context ? parser->context : "");
		free(d);
		return rc;
	}
	d->loaded = true;
	*out = d;
	return 0;
}

int ydoc_load_file(struct ydoc **out, const char *path, struct nova_err *err)
{
	yaml_parser_t parser;
	FILE *f;
	int rc;
	*out = NULL;
	f = fopen(path, "rb");
	if (!f)
		return nova_err_set(err, errno == ENOENT ? NOVA_ENOTFOUND : NOVA_EINVAL, "",
				    "%s: cannot open: %s", path, strerror(errno));
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	rc = ydoc_load(out, path, &parser, err);
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

int ydoc_load_string(struct ydoc **out, const char *name, const char *buf, size_t len,
		     struct nova_err *err)
{
	yaml_parser_t parser;
	int rc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	rc = ydoc_load(out, name, &parser, err);
	yaml_parser_delete(&parser);
	return rc;
}

void ydoc_destroy(struct ydoc *doc)
{
	if (!doc)
		return;
	if (doc->loaded)
		yaml_document_delete(&doc->doc);
	free(doc);
}

yaml_node_t *ydoc_root(struct ydoc *doc)
{
	return yaml_document_get_root_node(&doc->doc);
}

yaml_node_t *ydoc_node(struct ydoc *doc, int index)
{
	return yaml_document_get_node(&doc->doc, index);
}

const char *ydoc_name(const struct ydoc *doc)
{
	return doc->name;
}

const char *ydoc_scalar(const yaml_node_t *node)
{
	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

yaml_node_t *ydoc_map_get(struct ydoc *doc, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = ydoc_scalar(ydoc_node(doc, p->key));
		if (k && strcmp(k, key) == 0)
			return ydoc_node(doc, p->value);
	}
	return NULL;
}

int ydoc_err(struct ydoc *doc, const yaml_node_t *node, struct nova_err *err, int code,
	     const char *field, const char *fmt, ...)
{
	char msg[NOVA_ERR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (node)
		return nova_err_set(err, code, field, "%s:%zu:%zu: %s", doc->name,
				    node->start_mark.line + 1, node->start_mark.column + 1, msg);
	return nova_err_set(err, code, field, "%s: %s", doc->name, msg);
}

int ydoc_get_string(const char **out, struct ydoc *doc, const yaml_node_t *node,
		    const char *field, struct nova_err *err)
{
	const char *s = ydoc_scalar(node);
	if (!s)
		return ydoc_err(doc, node, err, NOVA_EINVAL, field, "%s: expected a string", field);
	*out = s;
	return 0;
}

int ydoc_copy_string(char *dst, size_t cap, struct ydoc *doc, const yaml_node_t *node,
		     const char *field, struct nova_err *err)
{
	const char *s = NULL;
	int rc = ydoc_get_string(&s, doc, node, field, err);
	if (rc)
		return rc;
	size_t n = strlen(s);
	if (n >= cap)
		return ydoc_err(doc, node, err, NOVA_EINVAL, field, "%s: longer than %zu bytes", field,
				cap - 1);
	memcpy(dst, s, n + 1);
	return 0;
}

int ydoc_get_long(long long *out, struct ydoc *doc, const yaml_node_t *node, const char *field,
		  long long min, long long max, struct nova_err *err)
{
	const char *s = ydoc_scalar(node);
	char *end;
	long long v;
	if (!s || !*s)
		return ydoc_err(doc, node, err, NOVA_EINVAL, field, "%s: expected an integer", field);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return ydoc_err(doc, node, err, NOVA_EINVAL, field, "%s: expected an integer", field);
	if (v < min || v > max)
		return ydoc_err(doc, node, err, NOVA_EINVAL, field,
				"%s: expected an integer from %lld to %lld", field, min, max);
	*out = v;
	return 0;
}

int ydoc_get_bool(bool *out, struct ydoc *doc, const yaml_node_t *node, const char *field,
		  struct nova_err *err)
{
	const char *s = ydoc_scalar(node);
	if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)) {
		*out = true;
		return 0;
	}
	if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)) {
		*out = false;
		return 0;
	}
	return ydoc_err(doc, node, err, NOVA_EINVAL, field, "%s: expected true or false", field);
}

int ydoc_map_check_keys(struct ydoc *doc, const yaml_node_t *map, const char *prefix,
			const char *const *allowed, struct nova_err *err)
{
	char field[NOVA_ERR_FIELD_MAX];
	if (!map || map->type != YAML_MAPPING_NODE)
		return ydoc_err(doc, map, err, NOVA_EINVAL, prefix ? prefix : "",
				"%s: expected a mapping", prefix && *prefix ? prefix : "document");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = ydoc_node(doc, p->key);
		const char *k = ydoc_scalar(kn);
		size_t i;
		if (!k)
			return ydoc_err(doc, kn, err, NOVA_EINVAL, prefix ? prefix : "",
					"keys must be strings");
		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				break;
		if (!allowed[i]) {
			/* The key is not echoed, not even in the field: the file may
			 * be one a caller named (a topology, a kubeconfig), and its
			 * text is not the caller's to read. The position says where. */
			char accepted[256] = "";
			size_t n = 0;
			for (size_t j = 0; allowed[j] && n < sizeof(accepted); j++)
				n += (size_t)snprintf(accepted + n, sizeof(accepted) - n, "%s%s",
						      j ? ", " : "", allowed[j]);
			return ydoc_err(doc, kn, err, NOVA_EINVAL, prefix ? prefix : "",
					"%s%sunknown key (expected one of: %s)", prefix ? prefix : "",
					prefix && *prefix ? ": " : "", accepted);
		}
		/* k is one of allowed from here on: naming it echoes nothing. */
		if (prefix && *prefix)
			snprintf(field, sizeof(field), "%s.%s", prefix, k);
		else
			snprintf(field, sizeof(field), "%s", k);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *k2 = ydoc_scalar(ydoc_node(doc, q->key));
			if (k2 && strcmp(k2, k) == 0)
				return ydoc_err(doc, kn, err, NOVA_EINVAL, field,
						"%s: duplicate key", field);
		}
	}
	return 0;
}

static json_t *ydoc_scalar_to_json(const yaml_node_t *node)
{
	const char *s = (const char *)node->data.scalar.value;
	char *end;
	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_string(s);
	if (strcmp(s, "true") == 0)
		return json_true();
	if (strcmp(s, "false") == 0)
		return json_false();
	if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0 || *s == '\0')
		return json_null();
	errno = 0;
	long long ll = strtoll(s, &end, 10);
	if (!errno && *end == '\0')
		return json_integer(ll);
	errno = 0;
	double d = strtod(s, &end);
	if (!errno && *end == '\0' && strspn(s, "0123456789+-.eE") == strlen(s))
		return json_real(d);
	return json_string(s);
}

int ydoc_to_json(json_t **out, struct ydoc *doc, const yaml_node_t *node, struct nova_err *err)
{
	json_t *v = NULL;
	*out = NULL;
	if (!node) {
		*out = json_null();
		return 0;
	}
	switch (node->type) {
	case YAML_SCALAR_NODE:
		v = ydoc_scalar_to_json(node);
		break;
	case YAML_SEQUENCE_NODE:
		v = json_array();
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     v && it < node->data.sequence.items.top; it++) {
			json_t *e;
			int rc = ydoc_to_json(&e, doc, ydoc_node(doc, *it), err);
			if (rc) {
				json_decref(v);
				return rc;
			}
			json_array_append_new(v, e);
		}
		break;
	case YAML_MAPPING_NODE:
		v = json_object();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     v && p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *kn = ydoc_node(doc, p->key);
			const char *k = ydoc_scalar(kn);
			json_t *e;
			int rc;
			if (!k) {
				json_decref(v);
				return ydoc_err(doc, kn, err, NOVA_EINVAL, "", "keys must be strings");
			}
			if (json_object_get(v, k)) {
				json_decref(v);
				return ydoc_err(doc, kn, err, NOVA_EINVAL, "", "duplicate key");
			}
			rc = ydoc_to_json(&e, doc, ydoc_node(doc, p->value), err);
			if (rc) {
				json_decref(v);
				return rc;
			}
			json_object_set_new(v, k, e);
		}
		break;
	default:
		return ydoc_err(doc, node, err, NOVA_EINVAL, "", "empty node");
	}
	if (!v)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	*out = v;
	return 0;
}
