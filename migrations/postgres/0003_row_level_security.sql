-- Row-level security for every tenant table (every table of this schema with an org_id).
--
-- The service connects as an unprivileged role (see mcpg_grant_app_role below) and every
-- tenant transaction starts with `SELECT set_config('mcpg.org_id', $1, true)`, so a
-- query can only see and write the rows of the org its transaction is bound to. FORCE
-- makes the table owner (the migration role) obey the policies too.
--
-- Two permissive policies per table (policies OR together):
--   mcpg_tenant  rows of the org named by the transaction-local setting mcpg.org_id;
--                NULLIF because a pooled connection reports '' once a transaction that
--                set it has ended.
--   mcpg_global  every row, only in a transaction that set mcpg.global = 'on'. Only the
--                store's cross-tenant methods set it (credential-hash lookups, the
--                batched last-token flush, per-org gauges, global admin tokens); the
--                tenant-scoped store handle never does.
-- A transaction that set neither sees no tenant row and can write none.

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE n.nspname = current_schema()
          AND c.relkind IN ('r', 'p')
          AND a.attname = 'org_id'
          AND NOT a.attisdropped
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
        EXECUTE format(
            'CREATE POLICY mcpg_tenant ON %I FOR ALL '
            'USING (org_id = NULLIF(current_setting(''mcpg.org_id'', true), '''')) '
            'WITH CHECK (org_id = NULLIF(current_setting(''mcpg.org_id'', true), ''''))',
            t.relname);
        EXECUTE format(
            'CREATE POLICY mcpg_global ON %I FOR ALL '
            'USING (current_setting(''mcpg.global'', true) = ''on'') '
            'WITH CHECK (current_setting(''mcpg.global'', true) = ''on'')',
            t.relname);
    END LOOP;
END
$$;

-- Grants the service's role exactly what it needs: read and write rows, use sequences,
-- read the migration history (to check the schema version at start). No TRUNCATE (it
-- ignores row-level security), no DDL, no ownership. Called by the service after every
-- migration run, with the role its --database-url connects as, so tables added by later
-- migrations are covered too.
CREATE FUNCTION mcpg_grant_app_role(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), app_role);
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', current_schema(), app_role);
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t.relname, app_role);
        IF t.relname = '_sqlx_migrations' THEN
            EXECUTE format('GRANT SELECT ON TABLE %I TO %I', t.relname, app_role);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO %I',
                           t.relname, app_role);
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   current_schema(), app_role);
END
$$;
REVOKE ALL ON FUNCTION mcpg_grant_app_role(name) FROM PUBLIC;
