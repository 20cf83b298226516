-- The replicas running on this database, for cluster-wide rate limits: each process
-- upserts its row (a random id per start) every beat and deletes it when it stops
-- gracefully; a row whose beat_at is older than three beats belongs to a replica that
-- is gone. Times are the database's clock, in Unix milliseconds, so the hosts' clocks do
-- not matter. Global (no org_id, so no row-level security); the service's role gets its
-- grants from mcpg_grant_app_role after migrating.
CREATE TABLE replicas (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    listen      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    beat_at     BIGINT NOT NULL
);
CREATE INDEX replicas_beat_at ON replicas (beat_at);
