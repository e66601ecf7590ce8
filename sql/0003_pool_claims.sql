-- Physical resources a pool holds alone (lpu racks: "rack c1r1"). The key is
-- the provider and the resource, so a second pool naming a held resource is
-- refused by the database even when two novads create pools at once. A
-- claim lives as long as its pool row: a pool being deleted keeps its racks
-- until its nodes are gone and the row is removed.
CREATE TABLE pool_claims (
    provider text NOT NULL,
    resource text NOT NULL CHECK (length(resource) BETWEEN 1 AND 200),
    pool_id  uuid NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    PRIMARY KEY (provider, resource)
);
CREATE INDEX pool_claims_pool ON pool_claims (pool_id);

-- Pools made before claims existed: their racks, from the allocation string
-- (the first pool to have named a rack keeps it).
INSERT INTO pool_claims (provider, resource, pool_id)
SELECT p.provider, 'rack c' || (m[1])::integer || 'r' || (m[2])::integer, p.id
FROM pools p
CROSS JOIN LATERAL regexp_split_to_table(p.config->>'allocation', '[:,]') AS r(x)
CROSS JOIN LATERAL regexp_match(btrim(r.x), '^c([0-9]+)r([0-9]+)$') AS m
WHERE p.provider = 'lpu' AND m IS NOT NULL
ORDER BY p.created_at
ON CONFLICT DO NOTHING;
