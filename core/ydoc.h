/* YAML documents with source positions, over libyaml's document API.
 *
 * Config files (novad.yaml, datacenter topology, model configs, kubeconfig)
 * are loaded whole into a node tree, so an error can point at
 * "file:line:column" of the offending node (libyaml marks are 0-based; we
 * print 1-based, as editors do). */
#ifndef NOVA_CORE_YDOC_H
#define NOVA_CORE_YDOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "core/err.h"

struct ydoc;

/* An empty file yields a document whose root is NULL. */
int ydoc_load_file(struct ydoc **out, const char *path, struct nova_err *err);
int ydoc_load_string(struct ydoc **out, const char *name, const char *buf, size_t len,
		     struct nova_err *err);
void ydoc_destroy(struct ydoc *doc);

yaml_node_t *ydoc_root(struct ydoc *doc);
yaml_node_t *ydoc_node(struct ydoc *doc, int index);
const char *ydoc_name(const struct ydoc *doc);

/* Scalar text of a node, or NULL when it is not a scalar. */
const char *ydoc_scalar(const yaml_node_t *node);
/* Value node for key in a mapping (NULL if absent or not a mapping). */
yaml_node_t *ydoc_map_get(struct ydoc *doc, const yaml_node_t *map, const char *key);

/* Set err to "<name>:<line>:<col>: <message>" at node, with field.
 *
 * Rule for every message about a parsed document: say where (name, line,
 * column), which field and what was expected, never the text found there
 * (no scalar, no unknown key): the document may be a file a caller named,
 * and an error must not be a way to read it. */
int ydoc_err(struct ydoc *doc, const yaml_node_t *node, struct nova_err *err, int code,
	     const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Typed scalar readers; each fails with a positioned NOVA_EINVAL naming field. */
int ydoc_get_string(const char **out, struct ydoc *doc, const yaml_node_t *node,
		    const char *field, struct nova_err *err);
/* ydoc_get_string, copied into dst (cap bytes with the NUL); a longer
 * string is a positioned NOVA_EINVAL naming field. */
int ydoc_copy_string(char *dst, size_t cap, struct ydoc *doc, const yaml_node_t *node,
		     const char *field, struct nova_err *err);
int ydoc_get_long(long long *out, struct ydoc *doc, const yaml_node_t *node, const char *field,
		  long long min, long long max, struct nova_err *err);
int ydoc_get_bool(bool *out, struct ydoc *doc, const yaml_node_t *node, const char *field,
		  struct nova_err *err);

/* Check that every key of map is one of allowed (NULL-terminated); an
 * unknown key is a positioned error naming prefix (the key is not
 * echoed), a duplicate one names "<prefix>.<key>". */
int ydoc_map_check_keys(struct ydoc *doc, const yaml_node_t *map, const char *prefix,
			const char *const *allowed, struct nova_err *err);

/* Convert a node to JSON: mappings -> objects, sequences -> arrays; plain
 * scalars that are integers, reals, true/false or null/~ become those JSON
 * types, quoted scalars stay strings. */
int ydoc_to_json(json_t **out, struct ydoc *doc, const yaml_node_t *node, struct nova_err *err);

#endif
