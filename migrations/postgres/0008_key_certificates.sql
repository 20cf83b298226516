-- More certificates of one signing key: when a new root certifies the same issuer key
-- (a root rollover), the key has one certificate per root. `signing_keys.certificate` stays
-- the key's primary certificate; this table holds the others. Global like signing_keys (no
-- org_id, so no row-level security), shared by every replica; the service's role gets its
-- grants from mcpg_grant_app_role after migrating.
CREATE TABLE signing_key_certificates (
    cid          TEXT PRIMARY KEY,
    kid          TEXT NOT NULL REFERENCES signing_keys(kid) ON DELETE CASCADE,
    certificate  TEXT NOT NULL,
    root_kid     TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    added_at     BIGINT NOT NULL
);
CREATE INDEX signing_key_certificates_kid ON signing_key_certificates (kid);
