-- Shared load (issue 20): what each node's replicas last reported (their
-- state, endpoint, load and loaded LoRA adapters), so that every novad's
-- /v1/routes and the drain's idle check see the load of every node, not
-- only of the heartbeats that novad took (behind a round-robin load
-- balancer each novad takes a part of every node's heartbeats).
--
-- Written by the heartbeat flush, in its one statement, only for the nodes
-- whose report changed from what the writer knows the table holds; read by
-- every novad after each flush, only the rows the others wrote since its
-- last read: `written_xid` is the writing transaction's id, and a reader
-- keeps as its cursor the oldest transaction still running at its last read
-- (pg_snapshot_xmin), so a row committed late by a transaction that began
-- before that read is not skipped (a serial number or a timestamp would
-- be: numbers are taken in one order and committed in another). The
-- newest heartbeat sequence per node wins, here and in each novad's memory.
--
-- Rejected: a jsonb column on node_heartbeats. The cursor needs an index on
-- the writing transaction, and every heartbeat row update would then touch
-- an index (node_heartbeats is updated every beat and keeps its updates
-- heap-only); its rows would also widen, and the health sweep and the fleet
-- refresh scan them. Here only a changed report writes a row, and the
-- index is this table's alone.
CREATE TABLE node_loads (
    node_id     uuid PRIMARY KEY REFERENCES node_heartbeats (node_id) ON DELETE CASCADE,
    seq         bigint NOT NULL,   -- the heartbeat whose report this is
    reports     jsonb NOT NULL,    -- the replica reports, as the novad kept them
    sum         bigint NOT NULL,   -- the writer's checksum of that report's text
    written_by  uuid NOT NULL,     -- the novad (its inventory_recorders id)
    written_xid xid8 NOT NULL      -- the writing transaction
);

CREATE INDEX node_loads_cursor ON node_loads (written_xid, node_id);
