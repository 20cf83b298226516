-- deleted_exports gets the org_id of the org whose data it keeps, like every tenant
-- table (PostgreSQL puts it under row-level security; see migrations/postgres/0009).
-- Rows written before keep NULL: a slug may have been reused since.
ALTER TABLE deleted_exports ADD COLUMN org_id TEXT;
CREATE INDEX deleted_exports_org_id ON deleted_exports (org_id);
