-- The per-org audit chain (PostgreSQL). One row per entry, hash-chained per org; a head
-- row per org (locked FOR UPDATE by each writer, which serialises one org's appends);
-- signed checkpoints of the head. No foreign key to orgs: the chain outlives the org it
-- records. Like every tenant table, all three are under forced row-level security with
-- the mcpg_tenant and mcpg_global policies of 0003. Entries and checkpoints are
-- append-only: the service's role is granted only SELECT and INSERT on them (see the new
-- mcpg_grant_app_role below) and a trigger refuses UPDATE and DELETE for every role.

CREATE TABLE audit_entries (
    org_id         TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    details        TEXT NOT NULL,
    details_sha256 TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    UNIQUE (org_id, seq)
);
CREATE INDEX audit_entries_action ON audit_entries (org_id, action, seq);

CREATE TABLE audit_heads (
    org_id TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   TEXT NOT NULL
);

CREATE TABLE audit_checkpoints (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_checkpoints_org ON audit_checkpoints (org_id, seq);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_entries', 'audit_heads', 'audit_checkpoints'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY mcpg_tenant ON %I FOR ALL '
            'USING (org_id = NULLIF(current_setting(''mcpg.org_id'', true), '''')) '
            'WITH CHECK (org_id = NULLIF(current_setting(''mcpg.org_id'', true), ''''))',
            t);
        EXECUTE format(
            'CREATE POLICY mcpg_global ON %I FOR ALL '
            'USING (current_setting(''mcpg.global'', true) = ''on'') '
            'WITH CHECK (current_setting(''mcpg.global'', true) = ''on'')',
            t);
    END LOOP;
END
$$;

CREATE FUNCTION mcpg_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION mcpg_audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION mcpg_audit_append_only();

-- As in 0003, plus: the append-only audit tables get SELECT and INSERT only.
CREATE OR REPLACE FUNCTION mcpg_grant_app_role(app_role name) RETURNS void
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
        ELSIF t.relname IN ('audit_entries', 'audit_checkpoints') THEN
            EXECUTE format('GRANT SELECT, INSERT ON TABLE %I TO %I', t.relname, app_role);
        ELSIF t.relname = 'audit_heads' THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE %I TO %I',
                           t.relname, app_role);
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
