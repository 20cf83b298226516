-- Operator login through each org's own OIDC provider: one configuration per org.
--
-- issuer        the `iss` the IdP's tokens carry, exactly (compared byte for byte)
-- audience      the `aud` a token must name
-- jwks_uri      where the IdP publishes its keys (given, or discovered once when the
--               configuration is saved)
-- tenant_claim  the claim naming the IdP tenant (`org_id`, `tid`, `custom:tenant_id` …)
-- tenant_value  the value of that claim that identifies this org
-- role_claim    the claim whose value(s) map to a role
-- role_map      JSON object: claim value → admin | operator | viewer
-- algorithms    JSON array, a subset of RS256, ES256, EdDSA: the algorithms accepted

CREATE TABLE org_oidc (
    org_id       TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    issuer       TEXT NOT NULL,
    audience     TEXT NOT NULL,
    jwks_uri     TEXT NOT NULL,
    tenant_claim TEXT NOT NULL,
    tenant_value TEXT NOT NULL,
    role_claim   TEXT NOT NULL,
    role_map     TEXT NOT NULL,
    algorithms   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- The login path looks configurations up by the token's issuer.
CREATE INDEX org_oidc_issuer ON org_oidc (issuer);
