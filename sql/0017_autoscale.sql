-- Autoscaling (issue 17; deployments/autoscale.h). Owned by deployments/.
--
-- A deployment's policy: NULL is scaled by hand. Kept beside the replica
-- count it drives, so a PATCH that sets it and clamps the count is one
-- row's update.
ALTER TABLE deployments ADD COLUMN autoscale jsonb
    CHECK (autoscale IS NULL OR jsonb_typeof(autoscale) = 'object');

-- Events that are not state transitions (the autoscaler's decisions:
-- "scaled 2 -> 4: ...") go to the same feed with their kind; a transition
-- keeps from_state/to_state as before.
ALTER TABLE deployment_events ADD COLUMN kind text NOT NULL DEFAULT 'transition'
    CHECK (kind IN ('transition', 'scaled', 'autoscale'));

-- What the autoscaler remembers of a deployment between its ticks, so a
-- novad that restarts, or another that takes the singleton duty over, goes
-- on with the same stabilization window and idle clock: the window's
-- recommendations as change points and the last activity (memory), and its
-- last decision for `deployment get`. A row of its own, not columns of
-- deployments: the autoscaler writes it while the worker holds the
-- deployment's row locked, and a tick must not wait for a provisioning.
CREATE TABLE autoscale_state (
    deployment_id uuid PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
    memory        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(memory) = 'object'),
    recommended   integer NOT NULL DEFAULT 0 CHECK (recommended >= 0),
    last_reason   text NOT NULL DEFAULT '',
    decided_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
