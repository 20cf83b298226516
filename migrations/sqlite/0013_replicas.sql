-- The replicas running on this database, for cluster-wide rate limits: each process
-- upserts its row (a random id per start) every beat and deletes it when it stops
-- gracefully; a row whose beat_at is older than three beats belongs to a replica that
-- is gone. Times are the database's clock, in Unix milliseconds. Global (no org_id).
CREATE TABLE replicas (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    listen      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    beat_at     INTEGER NOT NULL
);
CREATE INDEX replicas_beat_at ON replicas (beat_at);
