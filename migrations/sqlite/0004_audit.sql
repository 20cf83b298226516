-- The per-org audit chain (SQLite). One row per entry, hash-chained per org; a head row
-- per org; signed checkpoints of the head. No foreign key to orgs: the chain outlives the
-- org it records. Entries and checkpoints are append-only: triggers refuse UPDATE and
-- DELETE (the chain makes any edit that bypasses them detectable).

CREATE TABLE audit_entries (
    org_id         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    details        TEXT NOT NULL,
    details_sha256 TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    UNIQUE (org_id, seq)
);
CREATE INDEX audit_entries_action ON audit_entries (org_id, action, seq);

CREATE TABLE audit_heads (
    org_id TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL,
    hash   TEXT NOT NULL
);

CREATE TABLE audit_checkpoints (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_checkpoints_org ON audit_checkpoints (org_id, seq);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
