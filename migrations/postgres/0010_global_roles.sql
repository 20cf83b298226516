-- Cross-tenant access is a property of the database role, not of a setting.
--
-- Until now the mcpg_global policies let through every row when the transaction had set
-- mcpg.global = 'on'. Any SQL on the service's connection could set it
-- (`... WHERE (SELECT set_config('mcpg.global', 'on', true)) IS NOT NULL`), so one
-- injected query could read every org's rows. Now mcpg_global lets through only sessions
-- whose *login* role (session_user: SET ROLE and SECURITY DEFINER functions cannot change
-- it) is listed in mcpg_global_roles. The service runs its few cross-tenant paths on a
-- second pool logged in as such a role (--global-database-url, else the migration owner);
-- its tenant pool's role is never listed and cannot list itself (SELECT only).

CREATE TABLE mcpg_global_roles (
    role_name TEXT PRIMARY KEY
);
-- The migration owner: the fallback global role of a service given only
-- --migrate-database-url.
INSERT INTO mcpg_global_roles (role_name) VALUES (current_user::text);

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT tablename FROM pg_policies
        WHERE schemaname = current_schema() AND policyname = 'mcpg_global'
    LOOP
        EXECUTE format('DROP POLICY mcpg_global ON %I', t.tablename);
        EXECUTE format(
            'CREATE POLICY mcpg_global ON %I FOR ALL '
            'USING (session_user::text IN (SELECT role_name FROM mcpg_global_roles)) '
            'WITH CHECK (session_user::text IN (SELECT role_name FROM mcpg_global_roles))',
            t.tablename);
    END LOOP;
END
$$;

-- The privileges of 0004 for a role (the service's tenant role or its global role):
-- mcpg_global_roles is readable (the policies read it as the querying role) and never
-- writable.
CREATE FUNCTION mcpg_grant_role(role_to_grant name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), role_to_grant);
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', current_schema(), role_to_grant);
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t.relname, role_to_grant);
        IF t.relname IN ('_sqlx_migrations', 'mcpg_global_roles') THEN
            EXECUTE format('GRANT SELECT ON TABLE %I TO %I', t.relname, role_to_grant);
        ELSIF t.relname IN ('audit_entries', 'audit_checkpoints') THEN
            EXECUTE format('GRANT SELECT, INSERT ON TABLE %I TO %I', t.relname, role_to_grant);
        ELSIF t.relname = 'audit_heads' THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE %I TO %I',
                           t.relname, role_to_grant);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO %I',
                           t.relname, role_to_grant);
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   current_schema(), role_to_grant);
END
$$;
REVOKE ALL ON FUNCTION mcpg_grant_role(name) FROM PUBLIC;

-- The service's tenant role: the grants above, and never a global role.
CREATE OR REPLACE FUNCTION mcpg_grant_app_role(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mcpg_grant_role(app_role);
    DELETE FROM mcpg_global_roles
    WHERE role_name = app_role::text AND role_name <> current_user::text;
END
$$;
REVOKE ALL ON FUNCTION mcpg_grant_app_role(name) FROM PUBLIC;

-- The service's global role (--global-database-url): the grants above, and listed.
CREATE FUNCTION mcpg_grant_global_role(global_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mcpg_grant_role(global_role);
    INSERT INTO mcpg_global_roles (role_name) VALUES (global_role::text)
    ON CONFLICT (role_name) DO NOTHING;
END
$$;
REVOKE ALL ON FUNCTION mcpg_grant_global_role(name) FROM PUBLIC;
