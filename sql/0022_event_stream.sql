-- The event plane (issue 20; events/events.h). Owned by events/.
--
-- One durable, ordered stream of what changed in the fleet: node state
-- transitions, deployment events, pool events, and route changes (a replica
-- entering or leaving what can be routed, a deployment's count, model or
-- stop, a canary's split). Every row is written by a trigger in the
-- transaction of the change it records, so the stream holds exactly the
-- committed changes, and its ids mean the same on every novad.
--
-- Ids are given at commit, in commit order, without gaps: a row is inserted
-- with a temporary negative id, and a deferred constraint trigger (which
-- runs as the transaction commits, after every statement of it) takes the
-- next id from event_stream_head, whose row lock is held until the commit
-- is done. So a transaction cannot take id n+1 before the one holding n has
-- committed or rolled back (and a rollback gives n back): a reader that
-- sees id n sees every id below it, and "id > cursor" never skips a
-- late commit. Rejected: a bigserial id, which is taken at insert and
-- commits out of order (a reader at 7 would never see a 6 committed after
-- it); and ordering by transaction id against the snapshot's xmin, which
-- holds every reader back behind the oldest open transaction of the whole
-- cluster. The lock is taken at commit only, after every other lock the
-- transaction holds, so it cannot close a deadlock; what it costs is that
-- transactions recording events commit one at a time.
--
-- Every commit that appended also NOTIFYs nova_events (one notification per
-- transaction: the payload is empty), which wakes every novad's listener.
--
-- Route attribution: each event that may change the routing table names
-- the models (route keys are a model's name and "name/adapter") in
-- `models`, so a novad can tell a route watcher that resumes from an id it
-- never saw which routes to send again (inventory/routes.h).
--
-- Retention: events_prune deletes ids up to a bound (a count and an age) and
-- records it in pruned_through; a consumer whose cursor is below it has
-- missed events and gets a snapshot that says so.
CREATE TABLE event_stream_head (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id        bigint NOT NULL DEFAULT 0 CHECK (last_id >= 0),
    pruned_through bigint NOT NULL DEFAULT 0 CHECK (pruned_through >= 0)
);
INSERT INTO event_stream_head DEFAULT VALUES;

CREATE SEQUENCE event_stream_pending;

CREATE TABLE event_stream (
    id      bigint PRIMARY KEY DEFAULT -nextval('event_stream_pending'),
    kind    text NOT NULL CHECK (kind IN ('node', 'deployment', 'pool', 'route')),
    subject text NOT NULL,            -- a node, deployment or pool id; a route's model
    models  text[],                   -- models whose routes this may change
    data    jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX event_stream_at ON event_stream (at);

-- At commit: the transaction's pending rows (ids below 0: no other
-- transaction's pending row is visible, and committed rows never have one)
-- take the next ids in the order they were inserted, with one update of
-- the head for the whole transaction. The trigger fires once per row; the
-- first firing numbers them all and leaves, in a setting local to the
-- transaction, how many firings are left to skip, so a transaction of n
-- events costs one pass, not n scans of its n pending rows (3,000 nodes
-- inserted at once took over 2 s that way).
CREATE FUNCTION nova_event_order() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    skip bigint := coalesce(nullif(current_setting('nova.event_order_skip', true), ''), '0')::bigint;
    k bigint;
    base bigint;
BEGIN
    IF skip > 0 THEN
        PERFORM set_config('nova.event_order_skip', (skip - 1)::text, true);
        RETURN NULL;
    END IF;
    SELECT count(*) INTO k FROM event_stream WHERE id < 0;
    IF k = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE event_stream_head SET last_id = last_id + k RETURNING last_id - k INTO base;
    UPDATE event_stream e SET id = base + p.rn, at = clock_timestamp()
      FROM (SELECT id, row_number() OVER (ORDER BY id DESC) AS rn
              FROM event_stream WHERE id < 0) p
     WHERE e.id = p.id;
    PERFORM set_config('nova.event_order_skip', (k - 1)::text, true);
    PERFORM pg_notify('nova_events', '');
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER event_stream_order AFTER INSERT ON event_stream
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION nova_event_order();

-- The model name of a deployment (NULL when it is gone).
CREATE FUNCTION nova_event_model_of(dep uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT m.name FROM deployments d JOIN models m ON m.id = d.model_id WHERE d.id = dep
$$;

-- Node transitions (from node_events, which the nodes trigger writes). A
-- change into or out of ready changes the routes of what runs there.
CREATE FUNCTION nova_event_node() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pool uuid;
    node_name text;
    ms text[];
BEGIN
    SELECT n.pool_id, n.name INTO pool, node_name FROM nodes n WHERE n.id = NEW.node_id;
    IF NEW.from_state = 'ready' OR NEW.to_state = 'ready' THEN
        SELECT array_agg(DISTINCT m.name) INTO ms
          FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id
          JOIN deployments d ON d.id = r.deployment_id JOIN models m ON m.id = d.model_id
         WHERE rp.node_id = NEW.node_id;
    END IF;
    INSERT INTO event_stream (kind, subject, models, data)
    VALUES ('node', NEW.node_id::text, ms,
            jsonb_build_object('node', NEW.node_id, 'pool', pool, 'name', node_name,
                               'from', NEW.from_state, 'to', NEW.to_state, 'reason', NEW.reason));
    RETURN NULL;
END
$$;
CREATE TRIGGER node_events_stream AFTER INSERT ON node_events
    FOR EACH ROW EXECUTE FUNCTION nova_event_node();

-- Deployment events of every kind. A deployment created, stopping, stopped
-- or started again changes its model's routes.
CREATE FUNCTION nova_event_deployment() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    model text := nova_event_model_of(NEW.deployment_id);
    dep_name text;
BEGIN
    SELECT d.name INTO dep_name FROM deployments d WHERE d.id = NEW.deployment_id;
    INSERT INTO event_stream (kind, subject, models, data)
    VALUES ('deployment', NEW.deployment_id::text,
            CASE WHEN NEW.kind = 'transition' AND model IS NOT NULL AND
                      (NEW.from_state IS NULL OR NEW.from_state IN ('stopping', 'stopped') OR
                       NEW.to_state IN ('stopping', 'stopped'))
                 THEN ARRAY[model] END,
            jsonb_build_object('deployment', NEW.deployment_id, 'name', dep_name,
                               'model', model, 'kind', NEW.kind, 'from', NEW.from_state,
                               'to', NEW.to_state, 'reason', NEW.reason));
    RETURN NULL;
END
$$;
CREATE TRIGGER deployment_events_stream AFTER INSERT ON deployment_events
    FOR EACH ROW EXECUTE FUNCTION nova_event_deployment();

CREATE FUNCTION nova_event_pool() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_stream (kind, subject, data)
    VALUES ('pool', NEW.pool_id::text,
            jsonb_build_object('pool', NEW.pool_id, 'kind', NEW.kind, 'message', NEW.message));
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_events_stream AFTER INSERT ON pool_events
    FOR EACH ROW EXECUTE FUNCTION nova_event_pool();

-- Route changes that are no event of their own.
CREATE FUNCTION nova_event_route(dep uuid, what jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    model text := nova_event_model_of(dep);
BEGIN
    IF model IS NULL THEN
        RETURN; -- the deployment is being deleted: its replicas' own events cover it
    END IF;
    INSERT INTO event_stream (kind, subject, models, data)
    VALUES ('route', model, ARRAY[model],
            jsonb_build_object('model', model, 'deployment', dep) || what);
END
$$;

-- A replica that is or was ready: its state, endpoint, ordinal or version.
CREATE FUNCTION nova_event_replica() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state = 'ready' THEN
            PERFORM nova_event_route(OLD.deployment_id,
                jsonb_build_object('replica', OLD.id, 'state', 'deleted'));
        END IF;
        RETURN NULL;
    END IF;
    IF NEW.state = 'ready' OR (TG_OP = 'UPDATE' AND OLD.state = 'ready') THEN
        PERFORM nova_event_route(NEW.deployment_id,
            jsonb_build_object('replica', NEW.id, 'state', NEW.state, 'endpoint', NEW.endpoint,
                               'ordinal', NEW.ordinal));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER replicas_stream_insert AFTER INSERT ON replicas
    FOR EACH ROW WHEN (NEW.state = 'ready') EXECUTE FUNCTION nova_event_replica();
CREATE TRIGGER replicas_stream_update AFTER UPDATE ON replicas
    FOR EACH ROW WHEN ((OLD.state = 'ready' OR NEW.state = 'ready') AND
                       (OLD.state, OLD.endpoint, OLD.ordinal, OLD.model_id, OLD.deployment_id)
                       IS DISTINCT FROM
                       (NEW.state, NEW.endpoint, NEW.ordinal, NEW.model_id, NEW.deployment_id))
    EXECUTE FUNCTION nova_event_replica();
CREATE TRIGGER replicas_stream_delete AFTER DELETE ON replicas
    FOR EACH ROW WHEN (OLD.state = 'ready') EXECUTE FUNCTION nova_event_replica();

-- A placement added to or taken from a ready replica (its gang).
CREATE FUNCTION nova_event_placement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.replica_id ELSE NEW.replica_id END;
    dep uuid;
BEGIN
    SELECT r.deployment_id INTO dep FROM replicas r WHERE r.id = rid AND r.state = 'ready';
    IF dep IS NOT NULL THEN
        PERFORM nova_event_route(dep, jsonb_build_object('replica', rid, 'placement', lower(TG_OP)));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER replica_placements_stream AFTER INSERT OR DELETE ON replica_placements
    FOR EACH ROW EXECUTE FUNCTION nova_event_placement();

-- A deployment's count, model or name.
CREATE FUNCTION nova_event_deployment_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nova_event_route(NEW.id,
        jsonb_build_object('replicas', NEW.replicas, 'name', NEW.name));
    IF OLD.model_id IS DISTINCT FROM NEW.model_id THEN
        -- the old model's name too, should it differ
        INSERT INTO event_stream (kind, subject, models, data)
        SELECT 'route', m.name, ARRAY[m.name],
               jsonb_build_object('model', m.name, 'deployment', NEW.id)
          FROM models m WHERE m.id = OLD.model_id
           AND m.name IS DISTINCT FROM nova_event_model_of(NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER deployments_stream AFTER UPDATE ON deployments
    FOR EACH ROW WHEN ((OLD.replicas, OLD.model_id, OLD.name)
                       IS DISTINCT FROM (NEW.replicas, NEW.model_id, NEW.name))
    EXECUTE FUNCTION nova_event_deployment_row();

-- A canary's split.
CREATE FUNCTION nova_event_rollout() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r rollouts%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    PERFORM nova_event_route(r.deployment_id,
        jsonb_build_object('rollout', r.id, 'rollout_state', r.state,
                           'canary_percent', r.canary_percent));
    RETURN NULL;
END
$$;
CREATE TRIGGER rollouts_stream_insert AFTER INSERT ON rollouts
    FOR EACH ROW WHEN (NEW.state = 'canary') EXECUTE FUNCTION nova_event_rollout();
CREATE TRIGGER rollouts_stream_update AFTER UPDATE ON rollouts
    FOR EACH ROW WHEN ((OLD.state = 'canary' OR NEW.state = 'canary') AND
                       (OLD.state, OLD.canary_percent, OLD.to_version, OLD.from_version)
                       IS DISTINCT FROM
                       (NEW.state, NEW.canary_percent, NEW.to_version, NEW.from_version))
    EXECUTE FUNCTION nova_event_rollout();
CREATE TRIGGER rollouts_stream_delete AFTER DELETE ON rollouts
    FOR EACH ROW WHEN (OLD.state = 'canary') EXECUTE FUNCTION nova_event_rollout();
