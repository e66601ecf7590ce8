-- Deployments get a name people and scripts can use (unique, like pools).
ALTER TABLE deployments ADD COLUMN name text;
UPDATE deployments SET name = 'd-' || left(id::text, 8) WHERE name IS NULL;
ALTER TABLE deployments ALTER COLUMN name SET NOT NULL;
ALTER TABLE deployments ADD CONSTRAINT deployments_name_key UNIQUE (name);
ALTER TABLE deployments ADD CONSTRAINT deployments_name_check
    CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$');
