-- Health from what novad saw (issue 13).
--
-- Every novad that takes heartbeats records, with each flush, that it is
-- recording: `last_flush_at` is the database's clock at its last
-- successful flush, and `recording_since` the start of its current
-- unbroken run of flushes (a flush that comes more than the blind bound
-- after the one before, because this novad could not reach the database,
-- was stopped, or has just started, begins a new run). The health sweep
-- counts a node's silence only from the newest `recording_since` (every
-- node gets a fresh grace after any recorder's blind spell) and only up to
-- the oldest `last_flush_at` while some recorder is blind (its heartbeats
-- may be waiting in its memory). A recorder silent past the departure
-- bound is removed by the sweep, which then starts a new run of its own:
-- the nodes that beat through the departed novad get a fresh grace too.
--
-- Rejected: judging from `node_heartbeats.last_heartbeat_at` alone, as
-- before. After a 40 s database pause it held times the blocked flushers
-- had not been able to write, and the sweep failed every node at once.
CREATE TABLE inventory_recorders (
    id              uuid PRIMARY KEY,
    host            text NOT NULL DEFAULT '',   -- hostname and pid, for people
    started_at      timestamptz NOT NULL DEFAULT now(),
    recording_since timestamptz NOT NULL,
    last_flush_at   timestamptz NOT NULL
);

-- Events of a pool that are not a node's or a deployment's transition: the
-- brake on mass failure engaged and released, say.
CREATE TABLE pool_events (
    id      bigserial PRIMARY KEY,
    pool_id uuid NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    kind    text NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    message text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pool_events_pool ON pool_events (pool_id, id);

-- A node failed for silence whose agent beats again (it was judged wrongly,
-- or came back) is ready again rather than lost to its pool: failed ->
-- ready is allowed. The reconciler does it, only for a node whose failure
-- was silence and whose heartbeat came after it.
CREATE OR REPLACE FUNCTION nova_node_transition_allowed(from_s text, to_s text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE from_s
        WHEN 'provisioning' THEN to_s IN ('ready', 'failed', 'terminating')
        WHEN 'ready'        THEN to_s IN ('unhealthy', 'draining', 'failed', 'terminating')
        WHEN 'unhealthy'    THEN to_s IN ('ready', 'draining', 'failed', 'terminating')
        WHEN 'draining'     THEN to_s IN ('ready', 'terminating', 'failed')
        WHEN 'terminating'  THEN to_s IN ('terminated', 'failed')
        WHEN 'failed'       THEN to_s IN ('ready', 'terminating', 'terminated')
        ELSE false
    END
$$;
