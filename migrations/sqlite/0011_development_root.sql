-- The development root of a deployment without --signing-key: one per database, so every
-- replica certifies the shared signing keys with the same root and a gateway pinning it
-- trusts them all. At most one row (`singleton` = 1). The secret is sealed under the KEK
-- with the root's kid as associated data, like signing_keys.secret_sealed. Global (no
-- org_id).
CREATE TABLE development_root (
    singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
    kid            TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    secret_sealed  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
