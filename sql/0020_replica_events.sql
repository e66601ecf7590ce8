-- Engine exits as deployment events (issue 19; deployments/deployment.h,
-- deployment_replicas_report). Owned by deployments/.
--
-- A sidecar reports, with each heartbeat, how a replica's engine last ended
-- without being asked to (exit code or signal) and when; the report is
-- recorded once as an event of kind 'replica' ("replica 0 killed by signal
-- SIGKILL; restart 1"). Reports repeat (a flush writes only a node's latest
-- heartbeat, so one exit must ride on every beat until a newer one), so
-- each placement keeps the time of the last exit recorded: an exit no newer
-- than it is not recorded again, whichever novad flushes it.
ALTER TABLE deployment_events DROP CONSTRAINT deployment_events_kind_check;
ALTER TABLE deployment_events ADD CONSTRAINT deployment_events_kind_check
    CHECK (kind IN ('transition', 'scaled', 'autoscale', 'replica'));

ALTER TABLE replica_placements ADD COLUMN last_exit_ms bigint;
