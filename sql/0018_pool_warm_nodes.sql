-- Warm capacity (issue 17; pools/pool.h). Owned by pools/.
--
-- A pool of ephemeral nodes (kubernetes pods) keeps warm_nodes of them
-- provisioned and idle, so a scale-up takes one at once instead of waiting
-- for a pod to be made (the reconciler's "warm nodes" duty keeps the count,
-- its idle duty spares them). 0: none kept, as before. Not a quota: quotas
-- are limits, this is a target, within quotas.max_nodes. The pools module
-- refuses it for a provider whose nodes exist anyway (lpu racks, ssh
-- hosts), which the database cannot see; the bounds it can see are here.
ALTER TABLE pools ADD COLUMN warm_nodes integer NOT NULL DEFAULT 0
    CHECK (warm_nodes >= 0 AND warm_nodes <= 100),
    ADD CONSTRAINT pools_warm_within_max_nodes
    CHECK (max_nodes IS NULL OR warm_nodes <= max_nodes);
