-- Benchmark fixture (bench/run.sh), not product code: :nodes ready nodes,
-- each with its own node token, written straight into a fresh database.
-- Nova stores a node token as the lowercase hex SHA-256 of the token's text
-- (core/secret.c, pools/pool.c); the tokens here are made the same way, from
-- md5 of random(): weak, and fine for nodes that live for one benchmark in
-- a private cluster. The output, one "ID TOKEN" line per node, is loadgen's
-- nodes file (bench/run.sh writes it to a 0600 file and deletes it).
-- The pool's provider, "bench", has no adapter, so no worker or reconciler
-- acts on it; no replica is placed, so every node's assignment generation is
-- "none" and heartbeats carry no assignments.
BEGIN;
INSERT INTO pools (name, provider) VALUES ('bench-hb', 'bench');
CREATE TEMP TABLE bench_tokens AS
SELECT g, 'nova-node-bench' || md5(random()::text || g) || md5(random()::text) AS token
FROM generate_series(0, :nodes - 1) g;
INSERT INTO nodes (pool_id, name, handle, state, state_reason, accelerator_type,
                   accelerator_count, accelerator_memory_mib, token_hash)
SELECT p.id, 'bench-hb-' || t.g, 'bench-hb-' || t.g, 'ready', 'benchmark fixture', 'A100-80G',
       8, 81920, encode(sha256(convert_to(t.token, 'UTF8')), 'hex')
FROM pools p, bench_tokens t WHERE p.name = 'bench-hb';
COMMIT;
ANALYZE nodes;
SELECT n.id, t.token FROM nodes n JOIN bench_tokens t ON n.name = 'bench-hb-' || t.g ORDER BY t.g;
