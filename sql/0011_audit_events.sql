-- The audit trail: who changed what, when, with what result, in which
-- request. audit/audit.h is its one writer and reader.
--
-- A change's row is written in the change's own transaction, so the trail
-- and the state never disagree (no change without its row, no row for a
-- change rolled back); a refused request's row is written on its own.
--
-- Never a secret: the actor is the key's id and name (never the key, its
-- prefix or its hash), the object is what the request named in its path or
-- body's name, and no request body is kept.
--
-- api_key_id has no foreign key: keys are revoked, never deleted, and a
-- trail must outlive whatever it names. Rejected: storing the request body
-- (it carries serve commands, inline kubeconfigs and keys).
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL CHECK (actor IN ('admin', 'apikey')),
    api_key_id  uuid,
    api_key_name text NOT NULL DEFAULT '',
    method      text NOT NULL CHECK (length(method) BETWEEN 1 AND 16),
    route       text NOT NULL CHECK (length(route) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    object      text NOT NULL DEFAULT '' CHECK (length(object) <= 300),
    object_id   uuid,
    status      integer NOT NULL CHECK (status BETWEEN 100 AND 599),
    error_code  text NOT NULL DEFAULT '',
    request_id  text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
    CHECK ((actor = 'apikey') = (api_key_id IS NOT NULL))
);

CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_key ON audit_events (api_key_id, id);
CREATE INDEX audit_events_object ON audit_events (object, id);
CREATE INDEX audit_events_object_id ON audit_events (object_id, id);
