-- Each stage of a replica reports on its own: a multi-stage replica (its
-- stages on different racks) is ready, and routable, only when every stage
-- is; its endpoint is the last (serving) stage's.
ALTER TABLE replica_placements
    ADD COLUMN state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'starting', 'ready', 'failed')),
    ADD COLUMN endpoint text;

-- Replicas already reported: their stages carry what the replica had.
UPDATE replica_placements rp SET state = r.state,
    endpoint = CASE WHEN rp.stage = (SELECT max(stage) FROM replica_placements x
                                     WHERE x.replica_id = rp.replica_id)
               THEN r.endpoint END
FROM replicas r
WHERE r.id = rp.replica_id AND r.state IN ('starting', 'ready', 'failed');
