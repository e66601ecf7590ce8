-- API keys carry scopes (what a key may do) and may expire. auth/auth.h
-- lists the scopes and what each grants.
--
-- Keys made before this migration could do everything but manage keys:
-- they keep exactly that as write + read. Rejected: giving them admin
-- (more than they had) or nothing (every deployed client breaks on
-- upgrade). The column's default fills the existing rows and is dropped
-- at once, so a new key must name its scopes: none is never all. The CHECK
-- holds the names (and at least one); auth.c also refuses a duplicate.
ALTER TABLE api_keys
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{write,read}',
    ADD COLUMN expires_at timestamptz;

ALTER TABLE api_keys
    ALTER COLUMN scopes DROP DEFAULT,
    ADD CONSTRAINT api_keys_scopes_known CHECK (
        cardinality(scopes) BETWEEN 1 AND 6
        AND scopes <@ ARRAY['admin', 'write', 'read', 'routes', 'router', 'inference']::text[]);
