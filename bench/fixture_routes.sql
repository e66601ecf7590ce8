-- Benchmark fixture (bench/run.sh), not product code: a routing table of
-- :models models with :replicas ready replicas each, written straight into a
-- fresh database (the API would take minutes to place 10,000 replicas
-- through the worker, and the benchmark measures reads, not deploys).
-- The pool's provider, "bench", has no adapter, so no novad's worker or
-- reconciler acts on it; the nodes are ready and have never heartbeated, so
-- the health sweep leaves them alone. Ten replicas share a node, each on its
-- own port.
\set nodes (:models * :replicas + 9) / 10
BEGIN;
INSERT INTO pools (name, provider) VALUES ('bench-routes', 'bench');
INSERT INTO nodes (pool_id, name, handle, state, state_reason, accelerator_type,
                   accelerator_count, accelerator_memory_mib)
SELECT p.id, 'bench-node-' || g, 'bench-node-' || g, 'ready', 'benchmark fixture',
       'A100-80G', 16, 81920
FROM pools p, generate_series(0, :nodes - 1) g WHERE p.name = 'bench-routes';
INSERT INTO models (name, version, kind, spec)
SELECT 'bench-model-' || lpad(g::text, 5, '0'), '1', 'single',
       '{"accelerators": 1, "accelerator_type": "A100-80G"}'::jsonb
FROM generate_series(0, :models - 1) g;
INSERT INTO deployments (name, model_id, pool_id, replicas, state, state_reason)
SELECT 'bench-d-' || substr(m.name, 13), m.id, p.id, :replicas, 'running', 'benchmark fixture'
FROM models m, pools p WHERE p.name = 'bench-routes' AND m.name LIKE 'bench-model-%';
-- k numbers the replicas 0 .. models*replicas-1; replica k runs on node k/10.
CREATE TEMP TABLE bench_replicas AS
SELECT d.id AS deployment_id, o AS ordinal,
       (substr(d.name, 9)::int * :replicas + o) AS k
FROM deployments d, generate_series(0, :replicas - 1) o WHERE d.name LIKE 'bench-d-%';
INSERT INTO replicas (deployment_id, ordinal, state, state_reason, endpoint)
SELECT deployment_id, ordinal, 'ready', 'benchmark fixture',
       'http://10.' || (k / 10 / 250 % 250) || '.' || (k / 10 % 250) || '.' || (k / 10 / 62500 + 1)
       || ':' || (8000 + k % 10)
FROM bench_replicas;
INSERT INTO replica_placements (replica_id, stage, node_id, accelerators)
SELECT r.id, 0, n.id, 1
FROM replicas r JOIN bench_replicas b ON b.deployment_id = r.deployment_id AND b.ordinal = r.ordinal
JOIN nodes n ON n.name = 'bench-node-' || (b.k / 10);
COMMIT;
ANALYZE;
