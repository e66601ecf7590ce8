-- Work asked for while an item is being worked on. A claimed item stays
-- 'queued' (under a lease), so a second request for the same subject
-- conflicts with it in work_items_one_open, and was dropped (DO NOTHING):
-- a replica that became ready while a worker's pass over its deployment
-- was running waited for some other event to be looked at again (seen as a
-- deployment stuck at "1 of 2 replicas ready"). Each such request now
-- counts here; a pass that finds the count moved when it is done leaves the
-- item queued for another pass.
ALTER TABLE work_items ADD COLUMN requests bigint NOT NULL DEFAULT 0;
