-- Plugin sets (issue 14): the plugins a workspace's gateways run, each with an opaque
-- config, and optionally an environment's own set that overrides its workspace's. One row
-- per workspace (environment_id NULL) or per environment, keyed by the id of the place it
-- belongs to (scope_id: the environment's id, else the workspace's), so the token query
-- finds a gateway's sets with two primary-key lookups. plugins is the set as JSON text
-- (sorted by id), digest its canonical SHA-256 (the token's ps.cfg). Deleting the
-- workspace, environment or org deletes its sets. managed_by is 'tenants.yaml' for a set
-- the file wrote (dropped when the file no longer declares it), NULL for one written
-- through the API.
CREATE TABLE plugin_sets (
    scope_id       TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments(id) ON DELETE CASCADE,
    plugins        TEXT NOT NULL,
    digest         TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    managed_by     TEXT,
    CHECK (scope_id = COALESCE(environment_id, workspace_id))
);
CREATE INDEX plugin_sets_org ON plugin_sets (org_id);
CREATE INDEX plugin_sets_workspace ON plugin_sets (workspace_id);
