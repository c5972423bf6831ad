-- A deployment's health as its node reports it (starting, healthy, unhealthy,
-- none; NULL before it runs) and the sum of its containers' restart counts.
ALTER TABLE deployments ADD COLUMN health TEXT;
ALTER TABLE deployments ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
