-- An org's routing name: the host label that selects it under subdomain routing
-- (`acme.mcpg.dev` → org `acme-corp`) besides its slug, which always selects it too.
-- NULL: none. Unique among routing names; the service also refuses a routing name that
-- is another org's slug and a slug that is another org's routing name, so one label never
-- names two orgs. `orgs` is the tenant directory, read before any org scope; the
-- service's grants on it already cover the new column.
ALTER TABLE orgs ADD COLUMN routing_name TEXT;
CREATE UNIQUE INDEX orgs_routing_name ON orgs (routing_name) WHERE routing_name IS NOT NULL;
