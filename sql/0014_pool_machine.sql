-- The machine a pool's nodes live on, for providers whose nodes are
-- processes of the machine of the novad that made the pool (lpu agents):
-- only novads on that machine provision, inspect or stop them (pools.h,
-- adapters/adapter.h machine_bound). NULL: any novad reaches the nodes.
-- Pools made before this stay NULL: their machine was never recorded, and
-- guessing it would be worse than what they did before.
ALTER TABLE pools ADD COLUMN machine text
    CHECK (machine IS NULL OR machine ~ '^[A-Za-z0-9._-]{1,64}$');
