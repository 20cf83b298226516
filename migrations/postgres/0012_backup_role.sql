-- A least-privilege role for `mcpg-auth backup`: it may read every row of every table and
-- write none.
--
-- `pg_dump` as the owner fails under forced row-level security (it sets row_security = off,
-- and the owner is subject to the forced policies), and a role that is not listed anywhere
-- would silently read no tenant row. A backup role is listed in mcpg_backup_roles; on every
-- table under row-level security a SELECT-only policy lets such a login role (session_user,
-- which SET ROLE and SECURITY DEFINER functions cannot change) see every org's rows. It
-- gets SELECT on every table and sequence and nothing else. The service's own role is never
-- listed: mcpg_grant_app_role removes it, and mcpg_grant_backup_role refuses a role that may
-- write any table of the schema.

CREATE TABLE mcpg_backup_roles (
    role_name TEXT PRIMARY KEY
);

-- The policies read mcpg_backup_roles as the querying role: every role that may read the
-- global role list (the service's roles) may read this one too, and no more.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT rolname FROM pg_roles
        WHERE rolname <> current_user
          AND has_table_privilege(rolname, 'mcpg_global_roles', 'SELECT')
    LOOP
        EXECUTE format('GRANT SELECT ON TABLE mcpg_backup_roles TO %I', r.rolname);
    END LOOP;
END
$$;

-- The SELECT-only policy for backup roles on every table under row-level security that
-- lacks it (idempotent, so a table added by a later migration gets it at the next grant).
CREATE FUNCTION mcpg_backup_policies() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relrowsecurity
          AND NOT EXISTS (SELECT 1 FROM pg_policies p
                          WHERE p.schemaname = current_schema() AND p.tablename = c.relname
                            AND p.policyname = 'mcpg_backup')
    LOOP
        EXECUTE format(
            'CREATE POLICY mcpg_backup ON %I FOR SELECT '
            'USING (session_user::text IN (SELECT role_name FROM mcpg_backup_roles))',
            t.relname);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION mcpg_backup_policies() FROM PUBLIC;
SELECT mcpg_backup_policies();

-- The privileges of 0010 for the service's roles, with mcpg_backup_roles read-only like
-- mcpg_global_roles.
CREATE OR REPLACE FUNCTION mcpg_grant_role(role_to_grant name) RETURNS void
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
        IF t.relname IN ('_sqlx_migrations', 'mcpg_global_roles', 'mcpg_backup_roles') THEN
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

-- The service's tenant role: never a global role, never a backup role.
CREATE OR REPLACE FUNCTION mcpg_grant_app_role(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mcpg_grant_role(app_role);
    DELETE FROM mcpg_global_roles
    WHERE role_name = app_role::text AND role_name <> current_user::text;
    DELETE FROM mcpg_backup_roles WHERE role_name = app_role::text;
END
$$;
REVOKE ALL ON FUNCTION mcpg_grant_app_role(name) FROM PUBLIC;

-- A backup role: SELECT on every table and sequence, listed in mcpg_backup_roles. Run by
-- the owner (SELECT mcpg_grant_backup_role('mcpg_backup')), again after an upgrade that
-- adds tables. A role that may write any table of the schema (the service's own roles, the
-- owner) is refused: listing it would widen what it reads, and revoking its grants here
-- would break it.
CREATE FUNCTION mcpg_grant_backup_role(backup_role name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    IF backup_role = current_user THEN
        RAISE EXCEPTION 'the owner % reads every row already; a backup role is another login role',
            backup_role;
    END IF;
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    LOOP
        IF has_table_privilege(backup_role, format('%I.%I', current_schema(), t.relname),
                               'INSERT, UPDATE, DELETE, TRUNCATE') THEN
            RAISE EXCEPTION 'role % may write table %, so it cannot be a backup role',
                backup_role, t.relname;
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), backup_role);
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('GRANT SELECT ON TABLE %I TO %I', t.relname, backup_role);
    END LOOP;
    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   current_schema(), backup_role);
    PERFORM mcpg_backup_policies();
    INSERT INTO mcpg_backup_roles (role_name) VALUES (backup_role::text)
    ON CONFLICT (role_name) DO NOTHING;
END
$$;
REVOKE ALL ON FUNCTION mcpg_grant_backup_role(name) FROM PUBLIC;
