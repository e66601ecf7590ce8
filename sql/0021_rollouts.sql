-- Rolling updates, canaries and rollback (issue 18; deployments/deployment.h
-- "Rollouts", deployments/worker.h). Owned by deployments/, except
-- router_version_stats (inventory/).
--
-- Each replica runs the model version it was created for: replicas.model_id.
-- A deployment's model_id is the version it is moving to (or runs); during a
-- rollout its replicas form one set per model version, each numbered from 0
-- (so the ordinal is unique per deployment and version, and a version's
-- replicas below the deployment's count are routable as before).
ALTER TABLE replicas ADD COLUMN model_id uuid REFERENCES models (id) ON DELETE RESTRICT;
UPDATE replicas r SET model_id = d.model_id FROM deployments d WHERE d.id = r.deployment_id;
ALTER TABLE replicas ALTER COLUMN model_id SET NOT NULL;
-- A row written without one runs its deployment's version.
CREATE FUNCTION nova_replica_model_default() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.model_id IS NULL THEN
        SELECT model_id INTO NEW.model_id FROM deployments WHERE id = NEW.deployment_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER replicas_model_default BEFORE INSERT ON replicas
    FOR EACH ROW EXECUTE FUNCTION nova_replica_model_default();
ALTER TABLE replicas DROP CONSTRAINT replicas_deployment_id_ordinal_key;
ALTER TABLE replicas ADD CONSTRAINT replicas_deployment_model_ordinal_key
    UNIQUE (deployment_id, model_id, ordinal);
CREATE INDEX replicas_model ON replicas (model_id);
-- The deployment's revision when the replica was written (a rollout bumps it).
ALTER TABLE replicas ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision > 0);
-- A replica of the version being replaced, out of the routes and draining:
-- state 'stopping' since drain_started; the worker stops it once its engine
-- reports nothing running or waiting (after the routers learned), or at the
-- rollout's drain timeout.
ALTER TABLE replicas ADD COLUMN drain_started timestamptz;

ALTER TABLE deployments ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision > 0);

-- One row per rollout: the versions, the knobs, where it stands. At most one
-- active (rolling, canary, rolling_back) per deployment. Versions are kept as
-- text too, so the history reads after an old version was deleted.
CREATE TABLE rollouts (
    id              bigserial PRIMARY KEY,
    deployment_id   uuid NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    revision        integer NOT NULL CHECK (revision > 0),
    from_model_id   uuid REFERENCES models (id) ON DELETE SET NULL,
    to_model_id     uuid REFERENCES models (id) ON DELETE SET NULL,
    from_version    text NOT NULL,
    to_version      text NOT NULL,
    state           text NOT NULL
                    CHECK (state IN ('rolling', 'canary', 'rolling_back', 'complete', 'rolled_back')),
    max_surge       integer NOT NULL CHECK (max_surge BETWEEN 0 AND 1000),
    max_unavailable integer NOT NULL CHECK (max_unavailable BETWEEN 0 AND 1000),
    canary_percent  integer CHECK (canary_percent BETWEEN 1 AND 99),
    drain_timeout_s integer NOT NULL CHECK (drain_timeout_s BETWEEN 0 AND 3600),
    analysis        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(analysis) = 'object'),
    waiting_for     text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CHECK (max_surge > 0 OR max_unavailable > 0)
);
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (deployment_id)
    WHERE state IN ('rolling', 'canary', 'rolling_back');
CREATE INDEX rollouts_deployment ON rollouts (deployment_id, id);

ALTER TABLE deployment_events DROP CONSTRAINT deployment_events_kind_check;
ALTER TABLE deployment_events ADD CONSTRAINT deployment_events_kind_check
    CHECK (kind IN ('transition', 'scaled', 'autoscale', 'replica', 'rollout'));

-- What each router measured of each model version over its sliding window
-- (inventory/demand.h): requests, errors and a time-to-first-token histogram
-- (INVENTORY_TTFT_BOUNDS_MS). Soft state like router_demand: a report
-- replaces its router's rows; rows older than the TTL are not counted.
CREATE TABLE router_version_stats (
    router       text NOT NULL CHECK (length(router) BETWEEN 1 AND 200),
    model        text NOT NULL CHECK (length(model) BETWEEN 1 AND 600),
    version      text NOT NULL CHECK (length(version) BETWEEN 1 AND 64),
    window_s     integer NOT NULL CHECK (window_s BETWEEN 1 AND 3600),
    requests     bigint NOT NULL CHECK (requests >= 0),
    errors       bigint NOT NULL CHECK (errors >= 0),
    ttft_buckets bigint[] NOT NULL,
    reported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (router, model, version)
);
CREATE INDEX router_version_stats_model ON router_version_stats (model, reported_at);
