-- The org's gateway-side settings (seed 001's tenant fields, settable in tenants.yaml and
-- through PATCH /v1/orgs/{org}): the Kubernetes namespace its MCP servers run in and the
-- server catalog file its gateways load. NULL: not set. Columns of an existing per-org
-- table: orgs' row-level security policy and the service's grants already cover them.
ALTER TABLE orgs ADD COLUMN namespace TEXT;
ALTER TABLE orgs ADD COLUMN catalog_file TEXT;
