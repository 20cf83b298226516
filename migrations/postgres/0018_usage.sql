-- Usage (issue 15): what each org runs, per UTC day, for billing and renewals.
--
-- usage_gateway_days  one row per org, day and gateway: tokens issued to it that day, the
--                     UTC hours (bit h = hour h) in which it got one (peak concurrency is
--                     computed from these, see docs/ARCHITECTURE.md), the version it last
--                     reported, and its workspace and environment slugs at the time. Each
--                     replica adds its own counts (tokens +, hours |). A row whose day is
--                     YYYY-MM is a month rolled up after the retention (days = the days
--                     the gateway was active that month).
-- usage_plugin_days   the checks a gateway reported per plugin and day (allowed, refused).
-- usage_over_limit    one row per org, day and limit exceeded (max_gateways, or plugin for
--                     a plugin used that the license does not include): written once, with
--                     its audit entry in the same transaction.
-- usage_imported_days days imported from air-gapped deployments' signed receipts;
-- usage_receipt_chains where each deployment's receipt chain was last imported up to.
--
-- Per-org data under forced row-level security like every tenant table (0015).
CREATE TABLE usage_gateway_days (
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    day          TEXT NOT NULL,
    gateway_id   TEXT NOT NULL,
    workspace    TEXT NOT NULL,
    environment  TEXT NOT NULL,
    tokens       BIGINT NOT NULL,
    hours        BIGINT NOT NULL,
    days         BIGINT NOT NULL DEFAULT 1,
    version      TEXT,
    PRIMARY KEY (org_id, day, gateway_id)
);
CREATE TABLE usage_plugin_days (
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    day          TEXT NOT NULL,
    gateway_id   TEXT NOT NULL,
    plugin       TEXT NOT NULL,
    workspace    TEXT NOT NULL,
    environment  TEXT NOT NULL,
    allowed      BIGINT NOT NULL,
    refused      BIGINT NOT NULL,
    PRIMARY KEY (org_id, day, gateway_id, plugin)
);
CREATE TABLE usage_over_limit (
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    day          TEXT NOT NULL,
    limit_key    TEXT NOT NULL,
    detail       TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, day, limit_key)
);
CREATE TABLE usage_imported_days (
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    deployment_id    TEXT NOT NULL,
    day              TEXT NOT NULL,
    gateways_active  BIGINT NOT NULL,
    tokens           BIGINT NOT NULL,
    peak_gateways    BIGINT NOT NULL,
    plugins          TEXT NOT NULL,
    version          TEXT,
    PRIMARY KEY (org_id, deployment_id, day)
);
CREATE TABLE usage_receipt_chains (
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    deployment_key  TEXT NOT NULL,
    deployment_id   TEXT NOT NULL,
    last_seq        BIGINT NOT NULL,
    last_hash       TEXT NOT NULL,
    imported_at     BIGINT NOT NULL,
    PRIMARY KEY (org_id, deployment_key)
);

ALTER TABLE usage_gateway_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_gateway_days FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON usage_gateway_days FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON usage_gateway_days FOR ALL
    USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles))
    WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles));

ALTER TABLE usage_plugin_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_plugin_days FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON usage_plugin_days FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON usage_plugin_days FOR ALL
    USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles))
    WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles));

ALTER TABLE usage_over_limit ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_over_limit FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON usage_over_limit FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON usage_over_limit FOR ALL
    USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles))
    WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles));

ALTER TABLE usage_imported_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_imported_days FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON usage_imported_days FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON usage_imported_days FOR ALL
    USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles))
    WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles));

ALTER TABLE usage_receipt_chains ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_receipt_chains FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON usage_receipt_chains FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON usage_receipt_chains FOR ALL
    USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles))
    WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles));
SELECT mcpg_backup_policies();
