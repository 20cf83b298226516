-- Operator console sessions (issue 16): one row per signed-in browser.
--
-- id_hash       SHA-256 (hex) of the opaque session id the cookie carries; the id itself is
--               never stored, so a read of this table cannot be replayed as a cookie.
-- token_id      the API token (global admin token, org API key or personal token) the
--               operator signed in with: every request re-checks that it is still valid, so
--               revoking it ends its sessions; deleting it deletes them. NULL for a sign-in
--               through the org's own identity provider.
-- identity      a sign-in through the org's identity provider: `oidc:{issuer}#{sub}`; such
--               a session lasts while the org has an identity provider configured.
-- role          the role the identity provider's claims mapped to at sign-in.
-- org_id        the org (NULL for a global admin token), for isolation.
-- csrf_secret   the token every form of the session carries (compared in constant time).
-- created_at    sign-in; the session ends at expires_at (absolute timeout) whatever happens.
-- last_seen_at  the last request; the session ends after the idle timeout without one.
--
-- Row-level security like api_tokens: a session is found by the hash of its id before the
-- org is known (the hash is the selector, the org is what the lookup finds out), so the
-- store reads and writes it on the cross-tenant pool (the global role, see 0010), and the
-- tenant role sees only its own org's sessions.
CREATE TABLE console_sessions (
    id_hash       TEXT PRIMARY KEY,
    token_id      TEXT REFERENCES api_tokens(id) ON DELETE CASCADE,
    identity      TEXT,
    role          TEXT CHECK (role IN ('admin', 'operator', 'viewer')),
    org_id        TEXT REFERENCES orgs(id) ON DELETE CASCADE,
    csrf_secret   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    CHECK ((token_id IS NULL) <> (identity IS NULL)),
    CHECK (identity IS NULL OR (org_id IS NOT NULL AND role IS NOT NULL))
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

ALTER TABLE console_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON console_sessions FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON console_sessions FOR ALL
    USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles))
    WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles));
SELECT mcpg_backup_policies();
