-- Revocation lists uploaded by a global admin (`PUT /v1/admin/revocations`): root-signed
-- PASETO lists, one row per accepted serial. The list in force is the highest serial; it
-- is served at /.well-known/mcpg-revocations and keeps this service from signing under a
-- revoked certificate. Global (no org_id), shared by every replica.
CREATE TABLE revocation_lists (
    serial       INTEGER PRIMARY KEY CHECK (serial >= 0),
    list         TEXT NOT NULL,
    uploaded_at  INTEGER NOT NULL
);
