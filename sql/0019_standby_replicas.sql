-- Standby replicas (issue 17; deployments/deployment.h): replicas started
-- and kept ready beyond the count, out of the routing table. Replicas are
-- numbered (ordinal); those below `replicas` serve and the next
-- `standby_replicas` stand by, so a scale-up from N to N + 1 promotes the
-- standby numbered N by the count's change alone (no engine starts), and
-- the worker starts a new standby behind it. Owned by deployments/.
ALTER TABLE deployments ADD COLUMN standby_replicas integer NOT NULL DEFAULT 0
    CHECK (standby_replicas >= 0);
