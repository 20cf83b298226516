-- Revocation lists uploaded by a global admin (`PUT /v1/admin/revocations`): root-signed
-- PASETO lists, one row per accepted serial. The list in force is the highest serial; it
-- is served at /.well-known/mcpg-revocations and keeps this service from signing under a
-- revoked certificate. Global (no org_id, so no row-level security), shared by every
-- replica; the service's role gets its grants from mcpg_grant_app_role after migrating.
CREATE TABLE revocation_lists (
    serial       BIGINT PRIMARY KEY CHECK (serial >= 0),
    list         TEXT NOT NULL,
    uploaded_at  BIGINT NOT NULL
);
