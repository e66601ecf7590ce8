-- Nova schema, version 1: pools, nodes with state history, models,
-- deployments, replicas, work items, API keys.
--
-- The database is the source of truth and the last line of defence: states
-- are CHECKed, node and deployment transitions are validated by triggers that
-- also record each transition with its reason, names are unique, and foreign
-- keys keep references whole. Application bugs should hit an error here
-- rather than leave a row in a state no code expects.

CREATE TABLE pools (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL UNIQUE
                     CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    provider         text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_-]{0,31}$'),
    config           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    labels           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    max_nodes        integer CHECK (max_nodes >= 0),        -- NULL: unlimited
    max_accelerators integer CHECK (max_accelerators >= 0), -- NULL: unlimited
    accelerator_types text[] NOT NULL DEFAULT '{}',         -- empty: any
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleting')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nodes (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pool_id           uuid NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 253),
    handle            text,               -- the provider's name for it
    state             text NOT NULL DEFAULT 'provisioning'
                      CHECK (state IN ('provisioning', 'ready', 'unhealthy', 'draining',
                                       'terminating', 'terminated', 'failed')),
    state_reason      text NOT NULL DEFAULT '',
    cordoned          boolean NOT NULL DEFAULT false,
    accelerator_type  text,
    accelerator_count integer NOT NULL DEFAULT 0 CHECK (accelerator_count >= 0),
    accelerator_memory_mib bigint NOT NULL DEFAULT 0 CHECK (accelerator_memory_mib >= 0),
    labels            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    endpoint          text,
    token_hash        text CHECK (token_hash ~ '^[0-9a-f]{64}$'), -- NULL: revoked
    last_heartbeat_at timestamptz,
    last_seq          bigint,
    capacity          jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pool_id, name),
    -- a terminated node holds no credential
    CHECK (state <> 'terminated' OR token_hash IS NULL)
);
CREATE INDEX nodes_pool_state ON nodes (pool_id, state);

CREATE TABLE node_events (
    id         bigserial PRIMARY KEY,
    node_id    uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    from_state text,
    to_state   text NOT NULL,
    reason     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_events_node ON node_events (node_id, id);

-- provisioning -> ready <-> unhealthy -> draining -> terminating -> terminated,
-- plus failed (from any live state; a failed node is then terminated).
CREATE FUNCTION nova_node_transition_allowed(from_s text, to_s text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE from_s
        WHEN 'provisioning' THEN to_s IN ('ready', 'failed', 'terminating')
        WHEN 'ready'        THEN to_s IN ('unhealthy', 'draining', 'failed', 'terminating')
        WHEN 'unhealthy'    THEN to_s IN ('ready', 'draining', 'failed', 'terminating')
        WHEN 'draining'     THEN to_s IN ('ready', 'terminating', 'failed')
        WHEN 'terminating'  THEN to_s IN ('terminated', 'failed')
        WHEN 'failed'       THEN to_s IN ('terminating', 'terminated')
        ELSE false
    END
$$;

CREATE FUNCTION nova_node_record_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO node_events (node_id, from_state, to_state, reason)
        VALUES (NEW.id, NULL, NEW.state, NEW.state_reason);
        RETURN NEW;
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NOT nova_node_transition_allowed(OLD.state, NEW.state) THEN
            RAISE EXCEPTION 'node % cannot go from % to %', OLD.id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.state_reason = '' THEN
            RAISE EXCEPTION 'node % state change to % needs a reason', OLD.id, NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO node_events (node_id, from_state, to_state, reason)
        VALUES (NEW.id, OLD.state, NEW.state, NEW.state_reason);
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER nodes_transition BEFORE UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION nova_node_record_transition();
CREATE TRIGGER nodes_created AFTER INSERT ON nodes
    FOR EACH ROW EXECUTE FUNCTION nova_node_record_transition();

CREATE TABLE models (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$'),
    version    text NOT NULL DEFAULT 'latest'
               CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    kind       text NOT NULL
               CHECK (kind IN ('single', 'spec_decode', 'vision', 'lora_static', 'lora_dynamic')),
    spec       jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

CREATE TABLE deployments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id     uuid NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
    pool_id      uuid NOT NULL REFERENCES pools (id) ON DELETE RESTRICT,
    replicas     integer NOT NULL CHECK (replicas BETWEEN 0 AND 10000),
    placement    text NOT NULL DEFAULT 'binpack' CHECK (placement IN ('binpack', 'spread')),
    constraints  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(constraints) = 'object'),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'deploying', 'running', 'degraded', 'stopping',
                                  'stopped', 'failed')),
    state_reason text NOT NULL DEFAULT '',
    generation   bigint NOT NULL DEFAULT 1 CHECK (generation > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployments_pool ON deployments (pool_id);
CREATE INDEX deployments_model ON deployments (model_id);

CREATE TABLE deployment_events (
    id            bigserial PRIMARY KEY,
    deployment_id uuid NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    from_state    text,
    to_state      text NOT NULL,
    reason        text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, id);

CREATE FUNCTION nova_deployment_transition_allowed(from_s text, to_s text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE from_s
        WHEN 'pending'   THEN to_s IN ('deploying', 'stopping', 'failed')
        WHEN 'deploying' THEN to_s IN ('pending', 'running', 'degraded', 'stopping', 'failed')
        WHEN 'running'   THEN to_s IN ('degraded', 'deploying', 'stopping', 'failed')
        WHEN 'degraded'  THEN to_s IN ('running', 'deploying', 'stopping', 'failed')
        WHEN 'stopping'  THEN to_s IN ('stopped', 'failed')
        WHEN 'stopped'   THEN to_s IN ('pending')
        WHEN 'failed'    THEN to_s IN ('pending', 'stopping')
        ELSE false
    END
$$;

CREATE FUNCTION nova_deployment_record_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO deployment_events (deployment_id, from_state, to_state, reason)
        VALUES (NEW.id, NULL, NEW.state, NEW.state_reason);
        RETURN NEW;
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NOT nova_deployment_transition_allowed(OLD.state, NEW.state) THEN
            RAISE EXCEPTION 'deployment % cannot go from % to %', OLD.id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.state_reason = '' THEN
            RAISE EXCEPTION 'deployment % state change to % needs a reason', OLD.id, NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO deployment_events (deployment_id, from_state, to_state, reason)
        VALUES (NEW.id, OLD.state, NEW.state, NEW.state_reason);
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER deployments_transition BEFORE UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION nova_deployment_record_transition();
CREATE TRIGGER deployments_created AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION nova_deployment_record_transition();

-- A replica runs on one node, or on a gang of nodes (one placement per stage
-- and node) for multi-stage models.
CREATE TABLE replicas (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_id uuid NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    ordinal       integer NOT NULL CHECK (ordinal >= 0),
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'placed', 'starting', 'ready', 'failed',
                                   'stopping', 'stopped')),
    state_reason  text NOT NULL DEFAULT '',
    endpoint      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (deployment_id, ordinal)
);

CREATE TABLE replica_placements (
    replica_id   uuid NOT NULL REFERENCES replicas (id) ON DELETE CASCADE,
    stage        integer NOT NULL CHECK (stage >= 0),
    node_id      uuid NOT NULL REFERENCES nodes (id) ON DELETE RESTRICT,
    accelerators integer NOT NULL CHECK (accelerators >= 0),
    PRIMARY KEY (replica_id, stage, node_id)
);
CREATE INDEX replica_placements_node ON replica_placements (node_id);

-- Work for the deployment worker: claimed with FOR UPDATE SKIP LOCKED; the
-- lock has an owner and an expiry, and a fencing token that grows on every
-- claim so a worker whose lock expired cannot commit.
CREATE TABLE work_items (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind ~ '^[a-z_]{1,32}$'),
    subject_id      uuid NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL DEFAULT 8 CHECK (max_attempts > 0),
    run_after       timestamptz NOT NULL DEFAULT now(),
    lock_owner      text,
    lock_expires_at timestamptz,
    fence           bigint NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((lock_owner IS NULL) = (lock_expires_at IS NULL)),
    CHECK (attempts <= max_attempts)
);
CREATE UNIQUE INDEX work_items_one_open ON work_items (kind, subject_id) WHERE state = 'queued';
CREATE INDEX work_items_runnable ON work_items (run_after) WHERE state = 'queued';

-- API keys are shown once; only the SHA-256 of the key is stored. The prefix
-- (the first characters after "sk-nova-") finds the row without revealing it.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    prefix       text NOT NULL UNIQUE CHECK (prefix ~ '^sk-nova-[0-9A-Za-z]{8}$'),
    key_hash     text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
