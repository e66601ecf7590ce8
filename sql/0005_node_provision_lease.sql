-- One provisioner per node at a time. Workers on different deployments of
-- one pool see the same static node waiting in `provisioning`; the one that
-- sets the lease provisions it, the others leave it alone until the lease
-- runs out (a worker that died mid-call is thus replaced, not doubled).
ALTER TABLE nodes ADD COLUMN provision_lease_until timestamptz;
