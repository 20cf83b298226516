-- mcpg-auth federation schema (PostgreSQL). Times are Unix seconds; JSON is stored as TEXT.
-- Every tenant-owned table carries org_id so the tenancy layer can scope every query.

CREATE TABLE orgs (
    id               TEXT PRIMARY KEY,
    slug             TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'trial')),
    trial_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE licenses (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL UNIQUE REFERENCES orgs(id) ON DELETE CASCADE,
    tier                TEXT NOT NULL CHECK (tier IN ('free', 'team', 'enterprise')),
    entitlements_add    TEXT NOT NULL,
    entitlements_remove TEXT NOT NULL,
    limits              TEXT NOT NULL,
    valid_from          BIGINT NOT NULL,
    valid_until         BIGINT NOT NULL,
    revoked_at          BIGINT,
    revision            BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    slug       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE environments (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    slug         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, slug)
);
CREATE INDEX environments_org ON environments (org_id);

CREATE TABLE gateways (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    environment_id    TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    credential_hash   TEXT NOT NULL UNIQUE,
    credential_prefix TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_token_at     BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX gateways_org ON gateways (org_id);
CREATE INDEX gateways_environment ON gateways (environment_id);

CREATE TABLE signing_keys (
    kid              TEXT PRIMARY KEY,
    public_key       TEXT NOT NULL,
    secret_sealed    TEXT NOT NULL,
    certificate      TEXT NOT NULL,
    cert_expires_at  BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired')),
    created_at       BIGINT NOT NULL,
    activate_at      BIGINT NOT NULL,
    activated_at     BIGINT,
    retire_after     BIGINT,
    retired_at       BIGINT
);
CREATE INDEX signing_keys_state ON signing_keys (state);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT REFERENCES orgs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_org ON api_tokens (org_id);

-- One-time facts of the deployment (e.g. that the bootstrap token was issued), so that
-- replicas starting together do the first-start work once.
CREATE TABLE service_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
