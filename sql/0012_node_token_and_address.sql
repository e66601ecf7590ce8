-- Heartbeats are checked by their token first (inventory/inventory.c): a
-- token the in-memory table does not hold (a node provisioned since the
-- last read of the fleet, a rotated token, or a forged one) is looked up
-- by its hash, so an unknown node id and a wrong token on a known node
-- cost the same one lookup and get the same 401. Without this index that
-- lookup was a scan of nodes per forged request. Partial: revoked and
-- terminated nodes hold no hash and are never looked up by one. Not
-- UNIQUE: tokens are 256-bit random, a duplicate is not worth a failed
-- provision to guard against, and a plain index cannot refuse an upgrade
-- of an existing database.
CREATE INDEX nodes_token_hash ON nodes (token_hash) WHERE token_hash IS NOT NULL;

-- A node's replica endpoints are taken only on the node's own address as
-- its provider knows it (nodes.endpoint; inventory/inventory_int.h). The
-- providers record it now when they provision (lpu agents and fake nodes:
-- 127.0.0.1; an ssh host: its address, the handle's host; a pod: its IP,
-- recorded by the reconciler once the pod runs). Nodes provisioned before
-- get it here, so their sidecars' endpoints keep being routed after the
-- upgrade. Kubernetes nodes need nothing: the reconciler records their
-- pods' IPs on its next pass.
UPDATE nodes n SET endpoint = '127.0.0.1'
  FROM pools p
 WHERE p.id = n.pool_id AND p.provider IN ('lpu', 'fake')
   AND (n.endpoint IS NULL OR n.endpoint LIKE 'fake://%');
UPDATE nodes n SET endpoint = regexp_replace(n.handle, ':[0-9]+(/.*)?$', '')
  FROM pools p
 WHERE p.id = n.pool_id AND p.provider = 'ssh' AND n.endpoint IS NULL AND n.handle IS NOT NULL;
