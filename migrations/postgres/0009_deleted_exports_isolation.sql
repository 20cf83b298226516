-- deleted_exports holds per-org data (the role bindings of a deleted org, with e-mail
-- addresses; the gateways and environments of a deleted workspace), but was keyed by
-- org_slug only, so the org_id-driven row-level security of 0003 missed it. It gets an
-- org_id and the same two policies as every tenant table.
--
-- Rows written before this migration keep org_id NULL: a slug may have been reused by a
-- newer org since, so they cannot be attributed safely. NULL matches no org, so they are
-- visible only to the cross-tenant paths (the vendor's archive).

ALTER TABLE deleted_exports ADD COLUMN org_id TEXT;
CREATE INDEX deleted_exports_org_id ON deleted_exports (org_id);

ALTER TABLE deleted_exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE deleted_exports FORCE ROW LEVEL SECURITY;
CREATE POLICY mcpg_tenant ON deleted_exports FOR ALL
    USING (org_id = NULLIF(current_setting('mcpg.org_id', true), ''))
    WITH CHECK (org_id = NULLIF(current_setting('mcpg.org_id', true), ''));
CREATE POLICY mcpg_global ON deleted_exports FOR ALL
    USING (current_setting('mcpg.global', true) = 'on')
    WITH CHECK (current_setting('mcpg.global', true) = 'on');
