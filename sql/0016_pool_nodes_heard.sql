-- The nodes' health as the inventory judges it, written by the owner of
-- `nodes` (pools/): one function the inventory's heartbeat flush calls in
-- the same statement that records the beats, so a node that speaks again
-- after it went unhealthy is ready again without a second round trip per
-- flush (pools/pool.h documents it beside pool_nodes_mark_silent, the C
-- entry point of the other direction). A failed node stays failed: only the
-- reconciler revives one (pool_node_failed_fate).
--
-- Rejected: the flush updating `nodes` itself, as it did (a table written by
-- a module that does not own it: two spellings of the same transition);
-- and a second statement after the flush, which costs every flush a round
-- trip for a list that is empty unless nodes were unhealthy.
CREATE FUNCTION pool_nodes_heard(ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE AS $$
    WITH up AS (
        UPDATE nodes SET state = 'ready', state_reason = 'heartbeat resumed'
        WHERE id = ANY (ids) AND state = 'unhealthy'
        RETURNING 1)
    SELECT count(*)::integer FROM up
$$;
