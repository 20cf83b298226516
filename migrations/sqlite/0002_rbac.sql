-- Principals and RBAC (SQLite): users of an org, their role bindings, personal API tokens
-- bound to a user, time-limited impersonation tokens, and the archive of deletions.

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, email)
);

-- scope_key is '' for the org, the workspace id or the environment id: it makes a binding
-- unique without relying on NULLs in a UNIQUE constraint.
CREATE TABLE role_bindings (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    workspace_id   TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments(id) ON DELETE CASCADE,
    scope_key      TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (user_id, role, scope_key)
);
CREATE INDEX role_bindings_org ON role_bindings (org_id);

-- A token with user_id belongs to that user; with impersonator_id it was issued to a global
-- admin acting inside org_id until expires_at.
ALTER TABLE api_tokens ADD COLUMN user_id TEXT REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN impersonator_id TEXT;
ALTER TABLE api_tokens ADD COLUMN reason TEXT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- What a delete removed, as JSON, kept after the rows are gone (vendor-level archive; no
-- org_id column on purpose: it outlives the org).
CREATE TABLE deleted_exports (
    id         TEXT PRIMARY KEY,
    org_slug   TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('org', 'workspace', 'environment')),
    path       TEXT NOT NULL,
    export     TEXT NOT NULL,
    deleted_at INTEGER NOT NULL
);
CREATE INDEX deleted_exports_org ON deleted_exports (org_slug);
