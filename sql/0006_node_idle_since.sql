-- When an on-demand node last became idle (ready, nothing placed on it),
-- kept by the reconciler. updated_at cannot say it: heartbeats move it.
ALTER TABLE nodes ADD COLUMN idle_since timestamptz;
