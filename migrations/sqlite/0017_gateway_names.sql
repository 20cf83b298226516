-- A gateway's name is unique among the unrevoked gateways of its environment, so that
-- `mcpg-ctl gateway show|revoke ORG/WS/ENV NAME` names one gateway. A revoked gateway
-- keeps its name in the history and frees it: its replacement may take the name again.
--
-- Existing duplicates are renamed, not revoked: the oldest keeps the name, each later one
-- gets its id's first 8 characters appended (`edge-1-0193f2ab`), which the operator can
-- read in `gateway list`.
UPDATE gateways SET name = name || '-' || substr(id, 1, 8)
WHERE revoked_at IS NULL
  AND EXISTS (
    SELECT 1 FROM gateways older
    WHERE older.environment_id = gateways.environment_id
      AND older.name = gateways.name
      AND older.revoked_at IS NULL
      AND (older.created_at < gateways.created_at
           OR (older.created_at = gateways.created_at AND older.id < gateways.id)));
CREATE UNIQUE INDEX gateways_live_name ON gateways (environment_id, name)
WHERE revoked_at IS NULL;
