-- Heartbeats in a table of their own. Every flush rewrites the row of every
-- node that heartbeated, and a row of `nodes` is wide, three times indexed,
-- checked (the token hash's pattern) and passed through the transition
-- trigger on every update: at 100,000 nodes a flush of 25,000 took 1.1 s
-- of the database's time, every 500 ms. This narrow table takes 0.1 s for
-- the same (docs/PERFORMANCE.md, heartbeats). Half-empty pages (fillfactor
-- 50) keep most updates on their page (heap-only tuples, no index writes).
CREATE TABLE node_heartbeats (
    node_id           uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    last_seq          bigint,        -- NULL until the node's first heartbeat
    last_heartbeat_at timestamptz,
    capacity          jsonb          -- as the node last reported it
) WITH (fillfactor = 50);

INSERT INTO node_heartbeats (node_id, last_seq, last_heartbeat_at, capacity)
SELECT id, last_seq, last_heartbeat_at, capacity FROM nodes;

ALTER TABLE nodes DROP COLUMN last_seq, DROP COLUMN last_heartbeat_at, DROP COLUMN capacity;

-- Every node has its row from the start, so a flush only ever updates.
CREATE FUNCTION nova_node_heartbeat_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO node_heartbeats (node_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER nodes_heartbeat_row AFTER INSERT ON nodes
    FOR EACH ROW EXECUTE FUNCTION nova_node_heartbeat_row();

-- A flush brings back the unhealthy nodes among those it wrote: few rows.
CREATE INDEX nodes_unhealthy ON nodes (id) WHERE state = 'unhealthy';
