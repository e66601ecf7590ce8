#include <stdio.h>
#include <string.h>

#include "gateway/gw_int.h"

const char gw_openapi_schemas[] =
	"{"
	"\"Error\": {\"type\": \"object\", \"required\": [\"error\"], \"properties\": {\"error\": {"
	"  \"type\": \"object\", \"required\": [\"code\", \"message\", \"field\"], \"properties\": {"
	"    \"code\": {\"type\": \"string\", \"example\": \"not_found\"},"
	"    \"message\": {\"type\": \"string\"}, \"field\": {\"type\": \"string\"},"
	"    \"hint\": {\"type\": \"string\"},"
	"    \"request_id\": {\"type\": \"string\", \"description\": \"the request's X-Request-Id, "
	"as novad's log lines for it carry it\"}}}}},"
	"\"Health\": {\"type\": \"object\", \"properties\": {\"status\": {\"type\": \"string\","
	"  \"description\": \"healthz: ok; readyz: ready, degraded (the database is away; routes and "
	"heartbeats are served from memory) or not ready\"},"
	"  \"version\": {\"type\": \"string\"}, \"checks\": {\"type\": \"object\", \"description\":"
	"  \"readyz: database, heartbeats, routes, brake (and schema when it is not this binary's), "
	"each with ok and what is known\"}}},"
	"\"Quotas\": {\"type\": \"object\", \"additionalProperties\": false, \"properties\": {"
	"  \"max_nodes\": {\"type\": \"integer\", \"minimum\": 0, \"nullable\": true,"
	"    \"description\": \"null: unlimited\"},"
	"  \"max_accelerators\": {\"type\": \"integer\", \"minimum\": 0, \"nullable\": true},"
	"  \"accelerator_types\": {\"type\": \"array\", \"items\": {\"type\": \"string\"},"
	"    \"description\": \"empty: any type\"}}},"
	"\"PoolCreate\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"required\": [\"name\", \"provider\"], \"properties\": {"
	"  \"name\": {\"type\": \"string\", \"pattern\": \"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$\"},"
	"  \"provider\": {\"type\": \"string\", \"example\": \"lpu\"},"
	"  \"config\": {\"type\": \"object\", \"description\": \"provider-specific, validated by the provider\"},"
	"  \"labels\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}},"
	"  \"quotas\": {\"$ref\": \"#/components/schemas/Quotas\"},"
	"  \"warm_nodes\": {\"$ref\": \"#/components/schemas/WarmNodes\"}}},"
	"\"WarmNodes\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 100, \"default\": 0,"
	"  \"description\": \"idle nodes kept provisioned, sidecar up and nothing assigned, so a "
	"scale-up takes one at once and one is provisioned behind it; only for a provider whose "
	"nodes are made on demand (kubernetes), at most quotas.max_nodes\"},"
	"\"PoolUpdate\": {\"type\": \"object\", \"additionalProperties\": false, \"minProperties\": 1,"
	"  \"properties\": {"
	"  \"quotas\": {\"$ref\": \"#/components/schemas/Quotas\"},"
	"  \"warm_nodes\": {\"$ref\": \"#/components/schemas/WarmNodes\"}}},"
	"\"Pool\": {\"type\": \"object\", \"properties\": {"
	"  \"id\": {\"type\": \"string\", \"format\": \"uuid\"}, \"name\": {\"type\": \"string\"},"
	"  \"provider\": {\"type\": \"string\"}, \"config\": {\"type\": \"object\"},"
	"  \"labels\": {\"type\": \"object\"}, \"quotas\": {\"$ref\": \"#/components/schemas/Quotas\"},"
	"  \"warm_nodes\": {\"$ref\": \"#/components/schemas/WarmNodes\"},"
	"  \"state\": {\"type\": \"string\", \"enum\": [\"active\", \"deleting\"]},"
	"  \"node_count\": {\"type\": \"integer\"},"
	"  \"machine\": {\"type\": \"string\", \"nullable\": true, \"description\": \"the machine "
	"whose novads alone reach the nodes (lpu agents are its processes); null: any\"},"
	"  \"created_at\": {\"type\": \"string\", \"format\": \"date-time\"},"
	"  \"updated_at\": {\"type\": \"string\", \"format\": \"date-time\"}}},"
	"\"PoolList\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Pool\"}},"
	"\"Scope\": {\"type\": \"string\", \"enum\": [\"admin\", \"write\", \"read\", \"routes\","
	"  \"router\", \"inference\"], \"description\": \"admin: everything, API keys included; "
	"write: create, change, delete pools, models, deployments, cordon and drain nodes; read: every "
	"GET but API keys (implies routes); routes: GET /v1/routes and its watch; router: what "
	"nova-router needs (implies routes); inference: requests through nova-router\"},"
	"\"ApiKeyCreate\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"required\": [\"name\", \"scopes\"], \"properties\": {"
	"  \"name\": {\"type\": \"string\", \"maxLength\": 64},"
	"  \"scopes\": {\"type\": \"array\", \"minItems\": 1, \"uniqueItems\": true,"
	"    \"items\": {\"$ref\": \"#/components/schemas/Scope\"},"
	"    \"description\": \"required (no default: least privilege); fixed for the key's life\"},"
	"  \"expires_at\": {\"type\": \"string\", \"format\": \"date-time\","
	"    \"description\": \"RFC 3339, in the future; absent: never\"}}},"
	"\"ApiKey\": {\"type\": \"object\", \"properties\": {"
	"  \"id\": {\"type\": \"string\", \"format\": \"uuid\"}, \"name\": {\"type\": \"string\"},"
	"  \"prefix\": {\"type\": \"string\"},"
	"  \"created_at\": {\"type\": \"string\", \"format\": \"date-time\"},"
	"  \"last_used_at\": {\"type\": \"string\", \"format\": \"date-time\", \"nullable\": true},"
	"  \"revoked_at\": {\"type\": \"string\", \"format\": \"date-time\", \"nullable\": true},"
	"  \"scopes\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Scope\"}},"
	"  \"expires_at\": {\"type\": \"string\", \"format\": \"date-time\", \"nullable\": true,"
	"    \"description\": \"past it the key is refused (401)\"}}},"
	"\"ApiKeyCreated\": {\"allOf\": [{\"$ref\": \"#/components/schemas/ApiKey\"}, {\"type\": \"object\","
	"  \"properties\": {\"key\": {\"type\": \"string\", \"description\": \"shown once\"}}}]},"
	"\"Stage\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"required\": [\"name\", \"accelerators\"], \"properties\": {"
	"  \"name\": {\"type\": \"string\"}, \"accelerator_type\": {\"type\": \"string\"},"
	"  \"accelerators\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 64},"
	"  \"memory_mib\": {\"type\": \"integer\", \"minimum\": 0}}},"
	"\"ModelSpec\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"required\": [\"name\", \"kind\", \"engine\", \"stages\"], \"properties\": {"
	"  \"name\": {\"type\": \"string\"}, \"version\": {\"type\": \"string\", \"default\": \"latest\"},"
	"  \"kind\": {\"type\": \"string\", \"enum\": [\"single\", \"spec_decode\", \"vision\","
	"    \"lora_static\", \"lora_dynamic\"]},"
	"  \"description\": {\"type\": \"string\"},"
	"  \"engine\": {\"type\": \"object\", \"properties\": {\"image\": {\"type\": \"string\"},"
	"    \"command\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
	"    \"args\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
	"    \"env\": {\"type\": \"object\"}, \"health_path\": {\"type\": \"string\"},"
	"    \"port\": {\"type\": \"integer\"},"
	"    \"mock\": {\"type\": \"object\", \"additionalProperties\": false, \"description\": "
	"\"nova-mock-engine's flags when a sidecar runs the model on it (max_num_seqs: 8 is "
	"--max-num-seqs 8); real engines ignore it\", \"properties\": {"
	"      \"startup_ms\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 600000},"
	"      \"max_num_seqs\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 100000},"
	"      \"total_tokens_per_second\": {\"type\": \"integer\", \"minimum\": 1, "
	"\"maximum\": 10000000},"
	"      \"tokens_per_second\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100000},"
	"      \"latency_ms\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 600000},"
	"      \"max_tokens\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100000},"
	"      \"crash_after\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000000000},"
	"      \"fail_health\": {\"type\": \"boolean\"},"
	"      \"error_percent\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 100},"
	"      \"lora_load_ms\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 600000},"
	"      \"prefix_block_bytes\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1048576},"
	"      \"prefix_cache_blocks\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 16777216},"
	"      \"uncached_block_us\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 10000000},"
	"      \"embedding_dims\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 4096}}}}},"
	"  \"stages\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Stage\"}},"
	"  \"adapters\": {\"type\": \"array\", \"maxItems\": 256, \"uniqueItems\": true, "
	"\"description\": \"LoRA adapters, each routed as model/adapter: those a lora_static model "
	"serves (required, not empty), or those a lora_dynamic model's engines can load on demand "
	"(optional); none the model's own name\", \"items\": {\"type\": \"string\", "
	"\"minLength\": 1, \"maxLength\": 512}},"
	"  \"max_adapters\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1024, "
	"\"description\": \"lora_dynamic (required): adapters one replica holds at once; its "
	"engine evicts the least recently used past it\"}}},"
	"\"Transition\": {\"type\": \"object\", \"description\": \"one of the last 20 state "
	"transitions, oldest first\", \"properties\": {"
	"  \"from\": {\"type\": \"string\", \"nullable\": true}, \"to\": {\"type\": \"string\"},"
	"  \"reason\": {\"type\": \"string\"}, \"at\": {\"type\": \"string\", \"format\": \"date-time\"},"
	"  \"kind\": {\"type\": \"string\", \"enum\": [\"transition\", \"scaled\", \"autoscale\", \"replica\", \"rollout\"],"
	"    \"description\": \"scaled: an autoscaler decision; autoscale: the policy set or "
	"turned off; replica: an engine's exit; rollout: a rollout's step (from and to are then "
	"the state as it stands)\"}}},"
"\"Placement\": {\"type\": \"object\", \"properties\": {"
	"  \"stage\": {\"type\": \"integer\"}, \"node\": {\"type\": \"string\"},"
	"  \"node_id\": {\"type\": \"string\", \"format\": \"uuid\"},"
	"  \"accelerators\": {\"type\": \"integer\"}}},"
"\"Replica\": {\"type\": \"object\", \"properties\": {"
	"  \"id\": {\"type\": \"string\", \"format\": \"uuid\"}, \"ordinal\": {\"type\": \"integer\"},"
	"  \"state\": {\"type\": \"string\", \"enum\": [\"pending\", \"placed\", \"starting\","
	"    \"ready\", \"failed\", \"stopping\", \"stopped\"]},"
	"  \"reason\": {\"type\": \"string\"}, \"endpoint\": {\"type\": \"string\", \"nullable\": true},"
	"  \"placements\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Placement\"}},"
	"  \"standby\": {\"type\": \"boolean\", \"description\": \"a standby replica (its ordinal "
	"is the deployment's count or above): started and kept ready, out of the routes\"},"
	"  \"version\": {\"type\": \"string\", \"description\": \"the model version it runs "
	"(a rollout mixes them; state stopping: draining)\"},"
	"  \"revision\": {\"type\": \"integer\", \"description\": \"the deployment's revision "
	"it was made at\"}}},"
"\"Accelerators\": {\"type\": \"object\", \"properties\": {"
	"  \"type\": {\"type\": \"string\", \"nullable\": true}, \"count\": {\"type\": \"integer\"},"
	"  \"memory_mib\": {\"type\": \"integer\"}}},"
	"\"ModelList\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Model\"}},"
	"\"DeploymentCreate\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"required\": [\"model\", \"pool\"], \"properties\": {"
	"  \"name\": {\"type\": \"string\"}, \"model\": {\"type\": \"string\","
	"    \"description\": \"id, NAME:VERSION or NAME\"},"
	"  \"pool\": {\"type\": \"string\"},"
	"  \"replicas\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000, \"default\": 1},"
	"  \"standby_replicas\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 0,"
	"    \"description\": \"replicas started and kept ready beyond the count, out of the routes: "
	"a scale-up promotes one at once and a new one starts behind it\"},"
	"  \"placement\": {\"type\": \"string\", \"enum\": [\"binpack\", \"spread\"]},"
	"  \"labels\": {\"type\": \"object\", \"description\": \"node selector\"},"
	"  \"autoscale\": {\"$ref\": \"#/components/schemas/Autoscale\"}}},"
	"\"Autoscale\": {\"type\": \"object\", \"nullable\": true, \"additionalProperties\": false,"
	"  \"description\": \"the autoscaling policy (null: scaled by hand); at least one target, each above 0; "
	"the desired count is the largest any target asks for, within the bounds and the pool's "
	"accelerator quota\", \"required\": [\"max_replicas\"], \"properties\": {"
	"  \"min_replicas\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 1},"
	"  \"max_replicas\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1000},"
	"  \"target_queue_depth\": {\"type\": \"number\", \"minimum\": 0,"
	"    \"description\": \"requests waiting per replica (engines' queues and the routers' "
	"waiting requests)\"},"
	"  \"target_inflight_tokens\": {\"type\": \"number\", \"minimum\": 0,"
	"    \"description\": \"tokens held by running sequences, per replica\"},"
	"  \"target_ttft_p95_ms\": {\"type\": \"number\", \"minimum\": 0},"
	"  \"target_tokens_per_second\": {\"type\": \"number\", \"minimum\": 0,"
	"    \"description\": \"generation rate per replica\"},"
	"  \"scale_down_window_s\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 300},"
	"  \"idle_s\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 0,"
	"    \"description\": \"scale to zero after this long without a request (needs "
	"min_replicas 0); 0: never\"}}},"
	"\"DeploymentPatch\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"minProperties\": 1, \"description\": \"a new count (refused, 409, while "
	"autoscaled), a standby count, a policy (clamps the count into its bounds, or sets it to replicas when "
	"both are given), autoscale null (off), or a new version of its model (model or "
	"model_version, with rollout's knobs): a rollout\", \"properties\": {"
	"  \"model\": {\"type\": \"string\", \"description\": \"NAME:VERSION or a model id, "
	"a version of the deployment's own model\"},"
	"  \"model_version\": {\"type\": \"string\", \"maxLength\": 64},"
	"  \"rollout\": {\"type\": \"object\", \"additionalProperties\": false, \"properties\": {"
	"    \"max_surge\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000, \"default\": 1},"
	"    \"max_unavailable\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000, "
	"\"default\": 0},"
	"    \"canary_percent\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 99},"
	"    \"drain_timeout_s\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 3600, "
	"\"default\": 30},"
	"    \"auto_rollback\": {\"type\": \"boolean\", \"default\": true},"
	"    \"max_error_rate_increase\": {\"type\": \"number\", \"minimum\": 0, \"maximum\": 1, "
	"\"default\": 0.05},"
	"    \"max_ttft_ratio\": {\"type\": \"number\", \"minimum\": 1, \"exclusiveMinimum\": true, \"maximum\": 100, "
	"\"default\": 2},"
	"    \"min_requests\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1000000, "
	"\"default\": 20}}},"
	"  \"replicas\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000},"
	"  \"standby_replicas\": {\"type\": \"integer\", \"minimum\": 0},"
	"  \"autoscale\": {\"$ref\": \"#/components/schemas/Autoscale\"}}},"
	"\"Deployment\": {\"type\": \"object\", \"properties\": {"
	"  \"id\": {\"type\": \"string\"}, \"name\": {\"type\": \"string\"},"
	"  \"model\": {\"type\": \"object\"}, \"pool\": {\"type\": \"object\"},"
	"  \"replicas\": {\"type\": \"integer\"}, \"ready_replicas\": {\"type\": \"integer\","
	"    \"description\": \"ready, standby included\"},"
	"  \"standby_replicas\": {\"type\": \"integer\"},"
	"  \"placement\": {\"type\": \"string\"}, \"labels\": {\"type\": \"object\"},"
	"  \"state\": {\"type\": \"string\", \"enum\": [\"pending\", \"deploying\", \"running\","
	"    \"degraded\", \"stopping\", \"stopped\", \"failed\"]},"
	"  \"state_reason\": {\"type\": \"string\"}, \"generation\": {\"type\": \"integer\"},"
	"  \"revision\": {\"type\": \"integer\", \"description\": \"bumped by each change of "
	"version\"},"
	"  \"rollout\": {\"type\": \"object\", \"nullable\": true, \"description\": "
	"\"deployment get only: the latest rollout (state rolling, canary, rolling_back, complete, "
	"rolled_back; from_version, to_version, target_version, the knobs, auto_rollback, progress "
	"{target, previous}, waiting_for, reason, started_at, updated_at, finished_at)\"},"
	"  \"autoscale\": {\"$ref\": \"#/components/schemas/Autoscale\"},"
	"  \"autoscaler\": {\"type\": \"object\", \"description\": \"autoscaled only: the "
	"autoscaler's last recommendation and its last decision\", \"properties\": {"
	"    \"recommended\": {\"type\": \"integer\", \"nullable\": true},"
	"    \"last_decision\": {\"type\": \"string\", \"nullable\": true},"
	"    \"decided_at\": {\"type\": \"string\", \"format\": \"date-time\", \"nullable\": true}}},"
	"  \"replica_list\": {\"type\": \"array\", \"description\": \"deployment get only\","
	"    \"items\": {\"$ref\": \"#/components/schemas/Replica\"}},"
	"  \"events\": {\"type\": \"array\", \"description\": \"deployment get only\","
	"    \"items\": {\"$ref\": \"#/components/schemas/Transition\"}}}},"
	"\"DeploymentList\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Deployment\"}},"
	"\"Node\": {\"type\": \"object\", \"properties\": {"
	"  \"id\": {\"type\": \"string\"}, \"name\": {\"type\": \"string\"},"
	"  \"pool\": {\"type\": \"object\"}, \"handle\": {\"type\": \"string\", \"nullable\": true},"
	"  \"state\": {\"type\": \"string\", \"enum\": [\"provisioning\", \"ready\", \"unhealthy\","
	"    \"draining\", \"terminating\", \"terminated\", \"failed\"]},"
	"  \"state_reason\": {\"type\": \"string\"}, \"cordoned\": {\"type\": \"boolean\"},"
	"  \"accelerators\": {\"$ref\": \"#/components/schemas/Accelerators\"},"
	"  \"labels\": {\"type\": \"object\"},"
	"  \"endpoint\": {\"type\": \"string\", \"nullable\": true},"
	"  \"last_heartbeat_at\": {\"type\": \"string\", \"format\": \"date-time\", \"nullable\": true},"
	"  \"created_at\": {\"type\": \"string\", \"format\": \"date-time\"},"
	"  \"events\": {\"type\": \"array\", \"description\": \"node get only\","
	"    \"items\": {\"$ref\": \"#/components/schemas/Transition\"}}}},"
	"\"NodeList\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Node\"}},"
	"\"Heartbeat\": {\"type\": \"object\", \"additionalProperties\": false,"
	"  \"required\": [\"seq\"], \"properties\": {"
	"  \"seq\": {\"type\": \"integer\", \"description\": \"increasing; from the wall clock\"},"
	"  \"capacity\": {\"type\": \"object\"}, \"assignment_generation\": {\"type\": \"integer\"},"
	"  \"replicas\": {\"type\": \"array\", \"items\": {\"type\": \"object\","
	"    \"required\": [\"replica_id\", \"state\"], \"properties\": {"
	"    \"replica_id\": {\"type\": \"string\", \"format\": \"uuid\"},"
	"    \"state\": {\"type\": \"string\", \"enum\": [\"starting\", \"ready\", \"failed\"]},"
	"    \"endpoint\": {\"type\": \"string\"}, \"stage\": {\"type\": \"integer\"},"
	"    \"load\": {\"$ref\": \"#/components/schemas/Load\"},"
	"    \"adapters_loaded\": {\"type\": \"array\", \"maxItems\": 64, \"description\": "
	"\"the LoRA adapters the engine has loaded now (the entries of its GET /v1/models with a "
	"parent); absent: none\", \"items\": {\"type\": \"string\", \"minLength\": 1, "
	"\"maxLength\": 512}}}}}}},"
	"\"Load\": {\"type\": \"object\", \"maxProperties\": 16, \"description\": \"a replica's load as "
	"its sidecar read it from the engine's /metrics (nova-mock-engine, vLLM, SGLang, llama.cpp "
	"server; label sets summed); numbers of at least 0; other names are passed through\", "
	"\"additionalProperties\": {\"type\": \"number\", \"minimum\": 0}, \"properties\": {"
	"  \"queue_depth\": {\"type\": \"number\", \"description\": \"requests waiting to be scheduled\"},"
	"  \"running\": {\"type\": \"number\", \"description\": \"requests being processed; absent "
	"when the engine does not say\"},"
	"  \"kv_cache_usage\": {\"type\": \"number\", \"minimum\": 0, \"maximum\": 1, \"description\": "
	"\"fraction of the KV cache in use (the fullest engine's); absent when the engine does not "
	"say\"},"
	"  \"tokens_per_second\": {\"type\": \"number\", \"description\": \"generation rate\"},"
	"  \"ttft_ms\": {\"type\": \"number\", \"description\": \"mean time to first token of the "
	"requests finished since the last scrape\"},"
	"  \"ttft_p95_ms\": {\"type\": \"number\", \"description\": \"p95 time to first token of "
	"the requests whose first token came since the last scrape, from the engine's histogram "
	"buckets (interpolated as Prometheus's histogram_quantile); absent when the engine does not "
	"say\"},"
	"  \"inflight_tokens\": {\"type\": \"number\", \"description\": \"tokens the running "
	"requests hold in the KV cache (prompt and generated so far; vLLM: its blocks in use times "
	"the block size); absent when the engine does not say\"},"
	"  \"restarts\": {\"type\": \"integer\", \"minimum\": 0}}},"
	"\"HeartbeatAnswer\": {\"type\": \"object\", \"properties\": {"
	"  \"accepted\": {\"type\": \"boolean\"}, \"reason\": {\"type\": \"string\"},"
	"  \"interval_ms\": {\"type\": \"integer\", \"minimum\": 100, \"maximum\": 600000, "
	"\"description\": \"when to beat next, in ms: the configured heartbeat_interval_ms, or the "
	"whole fleet's node count over max_heartbeats_per_second when that is longer (rounded up to "
	"two significant digits), so all novads together stay within the budget. The node is judged "
	"by the interval it was last told: unhealthy after 3 of them without a heartbeat, failed "
	"after the longer of node_failed_after_ms and 6 of them\"},"
	"  \"refused\": {\"type\": \"array\", \"description\": \"replica reports whose endpoint "
	"was not taken (not http(s)://host:port on the node's own address): never routed\", "
	"\"items\": {\"type\": \"object\", \"properties\": {\"replica_id\": {\"type\": \"string\"}, "
	"\"stage\": {\"type\": \"integer\"}, \"field\": {\"type\": \"string\"}, "
	"\"reason\": {\"type\": \"string\"}}}}}},"
	"\"Routes\": {\"type\": \"object\", \"properties\": {"
	"  \"stale\": {\"type\": \"boolean\", \"description\": \"present (true) when the table has not "
	"been read from the database for 5 s: it is served from memory\"},"
	"  \"age_ms\": {\"type\": \"integer\", \"description\": \"with stale: the table's age\"},"
	"  \"version\": {\"type\": \"integer\"}, \"routes\": {\"type\": \"array\", \"items\": {"
	"    \"type\": \"object\", \"properties\": {\"model\": {\"type\": \"string\"},"
	"    \"version\": {\"type\": \"string\"}, \"adapter\": {\"type\": \"string\", \"nullable\": true},"
	"    \"dynamic\": {\"type\": \"boolean\", \"description\": \"present (true) on a "
	"lora_dynamic model's adapter routes: every replica can load the adapter; adapter_loaded "
	"says which have it\"},"
	"    \"endpoints\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
	"      \"url\": {\"type\": \"string\"}, \"replica\": {\"type\": \"string\"},"
	"      \"deployment\": {\"type\": \"string\"}, \"node\": {\"type\": \"string\"},"
	"      \"load\": {\"description\": \"null: no load reported (to this novad) yet\", "
	"\"anyOf\": [{\"$ref\": \"#/components/schemas/Load\"}, "
	"{\"type\": \"object\", \"nullable\": true, \"enum\": [null]}]},"
	"      \"adapters_loaded\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
	"\"description\": \"on the model's own route (adapter null): the LoRA adapters the "
	"replica's engine reported loaded (to this novad, with its load); absent: none; never in "
	"watch events\"},"
	"      \"adapter_loaded\": {\"type\": \"boolean\", \"description\": \"on a dynamic "
	"adapter's route: whether the replica's engine reported that adapter loaded; never in watch "
	"events\"}}}}}}}}},"
	"\"RouterKeys\": {\"type\": \"object\", \"required\": [\"keys\"], \"properties\": {"
	"  \"keys\": {\"type\": \"array\", \"description\": \"every active (not revoked, not "
	"expired) API key, sorted by hash\", \"items\": {\"type\": \"object\", \"properties\": {"
	"    \"hash\": {\"type\": \"string\", \"description\": \"lowercase hex SHA-256 of the key\"},"
	"    \"scopes\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Scope\"}},"
	"    \"expires_at\": {\"type\": \"integer\", \"nullable\": true, \"description\": "
	"\"seconds since the epoch; null: never\"}}}}}},"
	"\"RouterDemand\": {\"type\": \"object\", \"required\": [\"router\", \"models\"], "
	"\"additionalProperties\": false, \"description\": \"one router's whole demand now: a "
	"model it no longer names has none from it\", \"properties\": {"
	"  \"router\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 200, "
	"\"description\": \"this router instance, stable for its life (host:port:pid)\"},"
	"  \"models\": {\"type\": \"object\", \"maxProperties\": 4096, \"description\": \"route "
	"key (a model, or model/adapter) -> its counts\", \"additionalProperties\": {"
	"\"type\": \"object\", \"required\": [\"waiting\", \"in_flight\"], "
	"\"additionalProperties\": false, \"properties\": {"
	"    \"waiting\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000000000, "
	"\"description\": \"requests waiting for a replica (none is ready)\"},"
	"    \"in_flight\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 1000000000, "
	"\"description\": \"requests being answered by a replica\"}}}}}},"
	"\"RouterDemandTotals\": {\"type\": \"object\", \"required\": [\"models\"], "
	"\"description\": \"the sums over the routers whose report is younger than ttl_ms; a "
	"route key with no demand is absent\", \"properties\": {"
	"  \"ttl_ms\": {\"type\": \"integer\"},"
	"  \"models\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"object\", "
	"\"properties\": {\"waiting\": {\"type\": \"integer\"}, \"in_flight\": {\"type\": "
	"\"integer\"}, \"routers\": {\"type\": \"integer\", \"description\": \"routers "
	"reporting it\"}}}}}},"
	"\"ApiKeyList\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/ApiKey\"}},"
	"\"EventList\": {\"type\": \"object\", \"required\": [\"events\", \"cursor\", \"more\"], "
	"\"description\": \"in time order, newest last\", \"properties\": {"
	"  \"cursor\": {\"type\": \"string\", \"description\": \"pass as after= for the events "
	"recorded since (the last seq of each source, N-D-P)\"},"
	"  \"more\": {\"type\": \"boolean\", \"description\": \"more events follow the cursor "
	"now: ask again at once\"},"
	"  \"events\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"required\": "
	"[\"source\", \"seq\", \"object\", \"kind\", \"reason\", \"at\"], \"properties\": {"
	"    \"source\": {\"type\": \"string\", \"enum\": [\"node\", \"deployment\", \"pool\"]},"
	"    \"seq\": {\"type\": \"integer\", \"description\": \"the event's id in its source\"},"
	"    \"object\": {\"type\": \"string\", \"description\": \"the node's, deployment's or "
	"pool's name\"},"
	"    \"object_id\": {\"type\": \"string\"}, \"pool\": {\"type\": \"string\"},"
	"    \"kind\": {\"type\": \"string\", \"description\": \"transition, or a pool event's "
	"kind (brake_engaged, ...)\"},"
	"    \"from\": {\"type\": \"string\", \"nullable\": true},"
	"    \"to\": {\"type\": \"string\", \"nullable\": true},"
	"    \"reason\": {\"type\": \"string\"},"
	"    \"at\": {\"type\": \"string\", \"format\": \"date-time\"}}}}}},"
	"\"AuditList\": {\"type\": \"object\", \"description\": \"newest first; query: since, "
	"until (RFC 3339), key (an API key's id or name, or admin), object (a name as requested, or an "
	"id), kind, before (an event id: the next page), limit (1 to 1000, default 100)\", "
	"\"properties\": {"
	"  \"next_before\": {\"type\": \"integer\", \"nullable\": true},"
	"  \"events\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
	"    \"id\": {\"type\": \"integer\"}, \"at\": {\"type\": \"string\", \"format\": \"date-time\"},"
	"    \"actor\": {\"type\": \"string\", \"enum\": [\"admin\", \"apikey\"]},"
	"    \"api_key_id\": {\"type\": \"string\", \"nullable\": true},"
	"    \"api_key_name\": {\"type\": \"string\", \"nullable\": true},"
	"    \"method\": {\"type\": \"string\"}, \"route\": {\"type\": \"string\"},"
	"    \"kind\": {\"type\": \"string\"}, \"object\": {\"type\": \"string\"},"
	"    \"object_id\": {\"type\": \"string\", \"nullable\": true},"
	"    \"status\": {\"type\": \"integer\"},"
	"    \"error_code\": {\"type\": \"string\", \"nullable\": true},"
	"    \"request_id\": {\"type\": \"string\"}}}}}}"
	"}";

static json_t *gw_schema_ref(const char *name)
{
	char ref[128];
	snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
	return json_pack("{s:s}", "$ref", ref);
}

static json_t *gw_json_content(const char *schema)
{
	return json_pack("{s:{s:o}}", "application/json", "schema", gw_schema_ref(schema));
}

static json_t *gw_path_params(const char *pattern)
{
	json_t *params = json_array();
	for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
		const char *end = strchr(p, '}');
		if (!end)
			break;
		json_t *name = json_stringn(p + 1, (size_t)(end - p - 1));
		json_array_append_new(params, json_pack("{s:o, s:s, s:b, s:{s:s}}", "name", name, "in",
							"path", "required", 1, "schema", "type",
							"string"));
	}
	return params;
}

/* The query parameters each operation takes (the route table has no room
 * for them: they are what the handlers read). */
static const struct {
	const char *method, *pattern, *name, *type, *description;
} gw_query_params[] = {
	{"GET", "/v1/nodes", "pool", "string", "only this pool's nodes (a name or an id)"},
	{"GET", "/v1/routes", "model", "string", "only this model's (or LoRA adapter's) routes"},
	{"GET", "/v1/routes/watch", "model", "string", "only this model's (or adapter's) changes"},
	{"DELETE", "/v1/pools/{pool}", "force", "boolean",
	 "delete with nodes, deprovisioning them; refused while deployments use the pool"},
	{"GET", "/v1/events", "pool", "string",
	 "one pool's events: its own, its nodes' and its deployments' (a name or an id)"},
	{"GET", "/v1/events", "deployment", "string", "one deployment's transitions (a name or an id)"},
	{"GET", "/v1/events", "node", "string", "one node's transitions (a name or an id)"},
	{"GET", "/v1/events", "since", "string", "RFC 3339: events at or after, oldest first"},
	{"GET", "/v1/events", "after", "string",
	 "a cursor from a previous answer: the events recorded since it"},
	{"GET", "/v1/events", "limit", "integer", "1 to 1000, default 200"},
	{"GET", "/v1/events/watch", "kind", "string",
	 "comma-separated kinds: node, deployment, pool, route (default all; another is 400 "
	 "naming kind)"},
	{"GET", "/v1/events/watch", "after", "integer",
	 "an event id: the events after it (for clients that cannot send Last-Event-ID, which "
	 "wins when both are given); 0: from the oldest kept; absent: only what comes next"},
	{"GET", "/v1/audit", "since", "string", "RFC 3339: events at or after"},
	{"GET", "/v1/audit", "until", "string", "RFC 3339: events before"},
	{"GET", "/v1/audit", "key", "string", "an API key's id or name, or admin"},
	{"GET", "/v1/audit", "object", "string", "a name as requested, or an id"},
	{"GET", "/v1/audit", "kind", "string", "pool, model, deployment, node, apikey"},
	{"GET", "/v1/audit", "before", "integer", "an event id: the next (older) page"},
	{"GET", "/v1/audit", "limit", "integer", "1 to 1000, default 100"},
	{"GET", "/v1/deployments/{deployment}/replicas/{replica}/logs", "tail", "integer",
	 "the last N lines, 0 to 10000, default 100"},
	{"GET", "/v1/deployments/{deployment}/replicas/{replica}/logs", "follow", "boolean",
	 "then each new line as the engine writes it, until the client goes or the replica stops"},
	{"GET", "/v1/deployments/{deployment}/replicas/{replica}/logs", "stage", "integer",
	 "a multi-stage replica's stage (default: the last, serving one)"},
};

/* "GET /v1/pools/{pool}/nodes" -> "getPoolsByPoolNodes": unique per
 * operation, stable, as client generators name methods. */
static void gw_operation_id(char *out, size_t len, const char *method, const char *pattern)
{
	size_t o = 0;
	bool up = false;
	for (const char *m = method; *m && o + 1 < len; m++)
		out[o++] = (char)(*m | 0x20);
	const char *p = pattern;
	if (!strncmp(p, "/v1/", 4))
		p += 3;
	for (; *p && o + 3 < len; p++) {
		if (*p == '/' || *p == '-' || *p == '_' || *p == '.') {
			up = true;
		} else if (*p == '{') {
			out[o++] = 'B';
			out[o++] = 'y';
			up = true;
		} else if (*p == '}') {
			continue;
		} else {
			out[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
			up = false;
		}
	}
	out[o] = '\0';
}

static void gw_error_response(json_t *responses, const char *status, const char *description)
{
	json_object_set_new(responses, status,
			    json_pack("{s:s, s:o}", "description", description, "content",
				      gw_json_content("Error")));
}

static json_t *gw_operation(const struct gw_route *r)
{
	char status[8], op_id[128];
	json_t *responses = json_object();
	json_t *op, *params = gw_path_params(r->pattern);
	bool has_query = false;
	snprintf(status, sizeof(status), "%d", r->ok_status);
	gw_operation_id(op_id, sizeof(op_id), r->method, r->pattern);
	for (size_t i = 0; i < sizeof(gw_query_params) / sizeof(gw_query_params[0]); i++) {
		if (strcmp(gw_query_params[i].method, r->method) ||
		    strcmp(gw_query_params[i].pattern, r->pattern))
			continue;
		has_query = true;
		json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name",
							gw_query_params[i].name, "in", "query",
							"required", 0, "description",
							gw_query_params[i].description, "schema",
							"type", gw_query_params[i].type));
	}
	if (!strcmp(r->pattern, "/v1/routes/watch"))
		json_object_set_new(
			responses, status,
			json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
				  "Server-Sent Events: a snapshot event (the whole table, as GET "
				  "/v1/routes answers), then an update event per change (the models "
				  "whose routes changed, with their new routes); each has an id (the "
				  "table's version) to resume from with Last-Event-ID; comments keep "
				  "the stream alive",
				  "content", "text/event-stream", "schema", "type", "string",
				  "example", "id: 7\nevent: snapshot\ndata: {\"version\": 7, \"routes\": []}\n\n"));
	else if (!strcmp(r->pattern, "/v1/events/watch"))
		json_object_set_new(
			responses, status,
			json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
				  "Server-Sent Events, in id order: each event as `id: N`, `event: "
				  "KIND` (node, deployment, pool, route) and `data:` the event as JSON "
				  "{id, kind, subject, at, data} (data: node {node, pool, name, from, "
				  "to, reason}; deployment {deployment, name, model, kind, from, to, "
				  "reason}; pool {pool, kind, message}; route {model, deployment, and "
				  "what changed}). When the cursor is older than the retention (or "
				  "beyond the stream), first `event: snapshot` with data {expired: "
				  "true, after, pruned_through, head}: events were lost, list the state "
				  "again (GET /v1/nodes, /v1/deployments, ...); its id is where the "
				  "stream goes on. Comments (lines starting with a colon) say where "
				  "the stream begins and keep it alive, also while the database is "
				  "away",
				  "content", "text/event-stream", "schema", "type", "string",
				  "example",
				  ": after 41\n\nid: 42\nevent: pool\ndata: {\"id\":42,\"kind\":\"pool\","
				  "\"subject\":\"6f1c...\",\"at\":\"2026-05-01T10:00:00.000000Z\","
				  "\"data\":{\"pool\":\"6f1c...\",\"kind\":\"created\",\"message\":\"\"}}\n\n"));
	else if (!strcmp(r->pattern, "/v1/deployments/{deployment}/replicas/{replica}/logs"))
		json_object_set_new(
			responses, status,
			json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
				  "the engine's stdout and stderr as lines of text (chunked; each line "
				  "cut at 8 KiB), followed as they come with follow=true",
				  "content", "text/plain", "schema", "type", "string", "example",
				  "INFO: model loaded\n"));
	else if (r->response_schema)
		json_object_set_new(responses, status,
				    json_pack("{s:s, s:o}", "description", "success", "content",
					      gw_json_content(r->response_schema)));
	else
		json_object_set_new(responses, status, json_pack("{s:s}", "description", "success"));
	bool keys = !strcmp(r->pattern, "/v1/router/keys");
	if (!strcmp(r->method, "GET") && (!strcmp(r->pattern, "/v1/routes") || keys)) {
		json_object_set_new(json_object_get(responses, status), "headers",
				    json_pack("{s:{s:s, s:{s:s}}}", "ETag", "description",
					      keys ? "a weak tag of the keys' text: the same keys have "
						     "the same tag on every novad"
						   : "a weak tag of the routes alone: the same table has "
						     "the same tag on every novad",
					      "schema", "type", "string"));
		json_object_set_new(responses, "304",
				    json_pack("{s:s}", "description",
					      keys ? "If-None-Match named the current ETag: the keys "
						     "have not changed"
						   : "If-None-Match named the current ETag: the table has "
						     "not changed"));
		json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name",
							"If-None-Match", "in", "header", "required", 0,
							"description", "an ETag from an earlier answer",
							"schema", "type", "string"));
	}
	if (!strcmp(r->pattern, "/v1/routes/watch") || !strcmp(r->pattern, "/v1/events/watch")) {
		json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name",
							"Last-Event-ID", "in", "header", "required", 0,
							"description", "the id of the last event received: "
							"the stream resumes after it",
							"schema", "type", "string"));
	}
	if (r->request_schema || has_query)
		gw_error_response(responses, "400",
				  r->request_schema ? "the body (or a query parameter) is not valid: "
						      "error.field names the first field at fault"
						    : "a query parameter is not valid");
	if (r->request_schema)
		gw_error_response(responses, "413", "the body is larger than max_body_bytes");
	if (r->access != GW_PUBLIC)
		gw_error_response(responses, "401",
				  r->access == GW_NODE ? "no node token, or not this node's"
						       : "no credential, or an unknown, revoked or expired one");
	if (r->access != GW_PUBLIC && r->access != GW_NODE)
		gw_error_response(responses, "403", "the credential lacks the scope this route needs");
	if (strchr(r->pattern, '{'))
		gw_error_response(responses, "404", "no such object");
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD") && r->access != GW_NODE &&
	    r->access != GW_PUBLIC)
		gw_error_response(responses, "409", "the change conflicts with the object's state "
						    "(or a name already taken)");
	if (r->capped || (r->access != GW_PUBLIC && r->access != GW_NODE))
		json_object_set_new(responses, "429",
				    json_pack("{s:s, s:{s:{s:s, s:{s:s}}}, s:o}", "description",
					      r->capped ? "too many streams open (for this credential "
							  "or in all), or this credential holds too "
							  "many connections; retry after the delay given"
							: "this credential holds too many connections "
							  "(http.max_connections_per_key); retry after "
							  "the delay given",
					      "headers", "Retry-After", "description",
					      "seconds to wait", "schema", "type", "integer", "content",
					      gw_json_content("Error")));
	json_object_set_new(responses, "default",
			    json_pack("{s:s, s:o}", "description", "error", "content",
				      gw_json_content("Error")));
	op = json_pack("{s:s, s:s, s:[s], s:o, s:o}", "operationId", op_id, "summary", r->summary,
		       "tags", r->tag, "parameters", params, "responses", responses);
	if (r->request_schema)
		json_object_set_new(op, "requestBody",
				    json_pack("{s:b, s:o}", "required", 1, "content",
					      gw_json_content(r->request_schema)));
	/* Scopes in the requirement although OpenAPI 3.0 reserves them for
	 * OAuth: 3.1 allows roles there, and a client generator reading
	 * "security" then sees what the route needs; x-nova-scope says the same
	 * for tools that drop the list. */
	if (r->access == GW_PUBLIC) {
		json_object_set_new(op, "security", json_array());
	} else if (r->access == GW_NODE) {
		json_object_set_new(op, "security", json_pack("[{s:[]}]", "nodeToken"));
	} else {
		char accepted[128];
		size_t used = 0;
		const char *need = auth_scope_name(r->access);
		for (unsigned bit = 1; bit & AUTH_SCOPES_ALL; bit <<= 1)
			if (bit != r->access && auth_scopes_allow(bit, r->access) && used < sizeof(accepted))
				used += (size_t)snprintf(accepted + used, sizeof(accepted) - used, ", %s",
							 auth_scope_name(bit));
		json_object_set_new(op, "security", json_pack("[{s:[s]}]", "bearer", need));
		json_object_set_new(op, "x-nova-scope", json_string(need));
		json_object_set_new(op, "description",
				    json_sprintf("Needs the %s scope (a key with %s%s also may; so "
						 "does the admin token).", need, need, accepted));
	}
	return op;
}

json_t *gw_openapi(void)
{
	json_t *paths = json_object();
	json_t *schemas = json_loads(gw_openapi_schemas, 0, NULL);
	/* A model as stored: its spec (without the spec's closed set of
	 * fields, which an id and a date would break) plus id and date.
	 * Rejected: allOf of ModelSpec and those two, which no response can
	 * pass (additionalProperties: false refuses the id). */
	json_t *model = json_deep_copy(json_object_get(schemas, "ModelSpec"));
	if (model) {
		json_object_del(model, "additionalProperties");
		json_object_del(model, "required");
		json_t *props = json_object_get(model, "properties");
		json_object_set_new(props, "id", json_pack("{s:s, s:s}", "type", "string", "format", "uuid"));
		json_object_set_new(props, "created_at",
				    json_pack("{s:s, s:s}", "type", "string", "format", "date-time"));
		json_object_set_new(schemas, "Model", model);
	}
	for (size_t i = 0; i < gw_routes_count; i++) {
		const struct gw_route *r = &gw_routes[i];
		char method[16];
		json_t *item = json_object_get(paths, r->pattern);
		size_t j;
		if (!item) {
			item = json_object();
			json_object_set_new(paths, r->pattern, item);
		}
		for (j = 0; r->method[j] && j + 1 < sizeof(method); j++)
			method[j] = (char)(r->method[j] | 0x20);
		method[j] = '\0';
		json_object_set_new(item, method, gw_operation(r));
	}
	return json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}], s:o, s:{s:o, s:{s:{s:s, s:s, s:s}, "
			 "s:{s:s, s:s, s:s}}}, s:[{s:[]}]}",
			 "openapi", "3.0.3", "info", "title", "Nova orchestration API", "version",
			 NOVA_VERSION, "description",
			 "Provisioning engine for LLM-inference compute. Errors are "
			 "{\"error\": {\"code\", \"message\", \"field\"}}. Credentials: the admin "
			 "token (Authorization: Bearer, or X-Admin-Secret) may do everything; an API key "
			 "(Authorization: Bearer, or X-API-Key) what its scopes allow: admin (all), "
			 "write, read (every GET but API keys; implies routes), routes, router (implies "
			 "routes), inference. Each operation names the scope it needs. Two different "
			 "credentials in one request are 400.",
			 "servers", "url", "/", "description", "this novad",
			 "paths", paths, "components", "schemas", schemas ? schemas : json_object(),
			 "securitySchemes", "bearer", "type", "http", "scheme", "bearer", "description",
			 "the admin token or an API key (sk-nova-...)", "nodeToken", "type", "http",
			 "scheme", "bearer", "description", "a node's own token (heartbeats)",
			 "security", "bearer");
}
