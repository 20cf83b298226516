-- Objects reconciled from a tenants.yaml carry managed_by = 'tenants.yaml' (NULL: made
-- through the API). Pruning deletes only managed objects, so what an operator made through
-- the API is never removed by a reconciliation.
ALTER TABLE orgs ADD COLUMN managed_by TEXT;
ALTER TABLE workspaces ADD COLUMN managed_by TEXT;
ALTER TABLE environments ADD COLUMN managed_by TEXT;
ALTER TABLE api_tokens ADD COLUMN managed_by TEXT;
