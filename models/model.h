/* The model registry: what can be deployed.
 *
 * A model is a name and version, an engine (a container image and/or a serve
 * command template), and its kind with its stages. Each stage states the
 * accelerators one replica needs for it:
 *   single        one stage
 *   spec_decode   two stages, "draft" and "target"
 *   vision        two stages, "encoder" and "llm"
 *   lora_static   one stage, plus a fixed list of adapters
 *   lora_dynamic  one stage, adapters loaded on demand; max_adapters is what
 *                 one replica holds at once (its engine evicts the least
 *                 recently used past it), and "adapters" (optional) lists
 *                 the names its engines can load, each routed as
 *                 model/adapter like a static one ("dynamic": true)
 * Adapter names (both LoRA kinds): 1 to 512 bytes, at most 256, each once,
 * none the model's own name.
 * Multi-stage models are placed as a gang: every stage gets capacity or the
 * replica gets none.
 *
 * Spec (JSON, and the same keys in YAML model files under etc/models/):
 *   {"name": "llama-3-8b", "version": "1", "kind": "single",
 *    "engine": {"image": "...", "command": ["vllm", "serve", "{model}"],
 *               "env": {"K": "V"}, "health_path": "/health",
 *               "mock": {"max_num_seqs": 8, "startup_ms": 2000}},
 *    "stages": [{"name": "main", "accelerator_type": "A100-80G",
 *                "accelerators": 1, "memory_mib": 40960}],
 *    "adapters": ["sql-lora"], "max_adapters": 4}
 *
 * engine.mock (optional) is for nova-mock-engine alone: a sidecar in
 * mock-agent mode (--mock-engine) passes each member as the engine's flag
 * of that name ("max_num_seqs": 8 -> --max-num-seqs 8; "fail_health":
 * true -> --fail-health), so a test or demo can give each model its own
 * capacity and faults. Real engines ignore it. Members, integers in the
 * engine's ranges unless said: startup_ms 0..600000, max_num_seqs
 * 0..100000 (0: no limit), total_tokens_per_second 1..10000000,
 * tokens_per_second 1..100000, latency_ms 0..600000, max_tokens 1..100000,
 * crash_after 0..10^9, fail_health (boolean), error_percent 0..100 (that
 * share of requests answered 500, for rollback tests), lora_load_ms 0..600000,
 * prefix_block_bytes 1..2^20, prefix_cache_blocks 0..2^24,
 * uncached_block_us 0..10^7, embedding_dims 1..4096. Another member, or one
 * out of its range, is refused naming it ("engine.mock.max_num_seqs"). */
#ifndef NOVA_MODELS_MODEL_H
#define NOVA_MODELS_MODEL_H

#include <jansson.h>
#include <stddef.h>

#include "audit/audit.h"
#include "core/db.h"
#include "core/err.h"

#define MODEL_ID_LEN 37
#define MODEL_MAX_STAGES 4

struct model_stage {
	char name[32];
	char accelerator_type[64]; /* "" means any */
	unsigned accelerators;     /* per replica, for this stage */
	unsigned long long memory_mib; /* per accelerator, 0 means any */
};

struct model {
	char id[MODEL_ID_LEN];
	char name[129];
	char version[65];
	char kind[16];
	struct model_stage stages[MODEL_MAX_STAGES];
	size_t n_stages;
	json_t *spec;              /* the whole registered spec (owned) */
	char created_at[40];
};

/* Validate a spec strictly (NOVA_EINVAL naming the field). On success, out
 * (if not NULL) is filled from it; out->spec is a new reference. */
int model_spec_parse(struct model *out, const json_t *spec, struct nova_err *err);

/* Changes take the request's audit note (audit/audit.h), recorded in the
 * change's own transaction; NULL for none. */

/* NOVA_EEXISTS when (name, version) is taken. */
int model_register(struct model **out, struct db_pool *db, const json_t *spec,
		   struct audit_note *audit, struct nova_err *err);
/* ref: an id, "name:version", or "name" (the newest version). */
int model_get(struct model **out, struct db_pool *db, const char *ref, struct nova_err *err);
int model_list(struct model ***out, size_t *n_out, struct db_pool *db, struct nova_err *err);
/* NOVA_ECONFLICT while a deployment uses it. */
int model_delete(struct db_pool *db, const char *ref, struct audit_note *audit,
		 struct nova_err *err);

void model_free(struct model *m);
void model_list_free(struct model **models, size_t n);
json_t *model_to_json(const struct model *m);

#endif
