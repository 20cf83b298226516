//! Usage per org, day and gateway (migration 0018): the batched, additive writes of the
//! usage flush, the over-limit record (once per org, limit and day, with its audit
//! entry), the reads behind the usage API, and the retention's roll-up of old days into
//! months.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::FromRow;

use super::audit_log::{Actor, AuditAction, Event};
use super::{Store, StoreError, TenantStore, from_json_text, in_tx, on_pool};
use crate::domain::usage::PluginCounts;
use crate::domain::usage_summary::{
    GatewayDayRecord, ImportedDayRecord, OrgUsageRecords, PluginDayRecord,
};

/// One gateway's counts for one day, to add to what is stored.
#[derive(Debug, Clone)]
pub(crate) struct GatewayDayDelta {
    /// `YYYY-MM-DD`.
    pub(crate) day: String,
    /// Gateway id.
    pub(crate) gateway_id: String,
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug.
    pub(crate) environment: String,
    /// Tokens issued.
    pub(crate) tokens: i64,
    /// Hours with a token (bit h = UTC hour h).
    pub(crate) hours: i64,
    /// The version it reported, if it did.
    pub(crate) version: Option<String>,
    /// Checks it reported.
    pub(crate) plugins: Vec<(String, PluginCounts)>,
}

const ADD_GATEWAY_DAY: &str = "INSERT INTO usage_gateway_days (org_id, day, gateway_id, \
     workspace, environment, tokens, hours, days, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
     ON CONFLICT (org_id, day, gateway_id) DO UPDATE SET \
     tokens = usage_gateway_days.tokens + excluded.tokens, \
     hours = usage_gateway_days.hours | excluded.hours, \
     workspace = excluded.workspace, environment = excluded.environment, \
     version = COALESCE(excluded.version, usage_gateway_days.version)";

const ADD_PLUGIN_DAY: &str = "INSERT INTO usage_plugin_days (org_id, day, gateway_id, plugin, \
     workspace, environment, allowed, refused) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (org_id, day, gateway_id, plugin) DO UPDATE SET \
     allowed = usage_plugin_days.allowed + excluded.allowed, \
     refused = usage_plugin_days.refused + excluded.refused";

/// Counts are stored as signed 64-bit integers: larger ones are kept at the maximum.
fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[derive(FromRow)]
struct GatewayRow {
    day: String,
    gateway_id: String,
    gateway_name: Option<String>,
    workspace: String,
    environment: String,
    tokens: i64,
    hours: i64,
    version: Option<String>,
}

#[derive(FromRow)]
struct PluginRow {
    day: String,
    gateway_id: String,
    workspace: String,
    environment: String,
    plugin: String,
    allowed: i64,
    refused: i64,
}

#[derive(FromRow)]
struct ImportedRow {
    deployment_id: String,
    day: String,
    gateways_active: i64,
    tokens: i64,
    peak_gateways: i64,
    plugins: String,
    version: Option<String>,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl TenantStore<'_> {
    /// Adds `rows` to the org's stored usage, in one transaction.
    pub(crate) async fn add_usage(&self, rows: &[GatewayDayDelta]) -> Result<(), StoreError> {
        let org = self.org_id();
        in_tx!(self.store(), tx => {
            for row in rows {
                sqlx::query(ADD_GATEWAY_DAY)
                    .bind(org).bind(&row.day).bind(&row.gateway_id)
                    .bind(&row.workspace).bind(&row.environment)
                    .bind(row.tokens).bind(row.hours).bind(&row.version)
                    .execute(&mut *tx).await?;
                for (plugin, counts) in &row.plugins {
                    sqlx::query(ADD_PLUGIN_DAY)
                        .bind(org).bind(&row.day).bind(&row.gateway_id).bind(plugin)
                        .bind(&row.workspace).bind(&row.environment)
                        .bind(stored(counts.allowed)).bind(stored(counts.refused))
                        .execute(&mut *tx).await?;
                }
            }
        });
        Ok(())
    }

    /// The gateways and their token hours on `days`, for the over-limit check.
    pub(crate) async fn usage_hours(
        &self,
        days: &[String; 2],
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let sql = "SELECT day, gateway_id, hours FROM usage_gateway_days \
                   WHERE org_id = $1 AND day IN ($2, $3)";
        Ok(on_pool!(self.store(), pool => sqlx::query_as(sql)
            .bind(self.org_id()).bind(&days[0]).bind(&days[1])
            .fetch_all(pool).await?))
    }

    /// How many distinct gateways got a token on either of `days`: an upper bound of both
    /// the active and the peak gateways of the second day, read without moving the rows.
    pub(crate) async fn usage_gateways_either_day(
        &self,
        days: &[String; 2],
    ) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(DISTINCT gateway_id) FROM usage_gateway_days \
                   WHERE org_id = $1 AND day IN ($2, $3)";
        let count: i64 = on_pool!(self.store(), pool => sqlx::query_scalar(sql)
            .bind(self.org_id()).bind(&days[0]).bind(&days[1])
            .fetch_one(pool).await?);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Records that the org exceeded `limit` on `day`, with one `usage.over_limit` audit
    /// entry in the same transaction; `false` when it was recorded before (by this or
    /// another replica), and then nothing is written.
    pub(crate) async fn record_over_limit(
        &self,
        day: &str,
        limit: &str,
        detail: Value,
        now: i64,
    ) -> Result<bool, StoreError> {
        let org = self.org_id();
        let text = detail.to_string();
        let sql = "INSERT INTO usage_over_limit (org_id, day, limit_key, detail, recorded_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, day, limit_key) DO NOTHING";
        Ok(in_tx!(self.store(), tx => {
            let inserted = sqlx::query(sql)
                .bind(org).bind(day).bind(limit).bind(&text).bind(now)
                .execute(&mut *tx).await?
                .rows_affected() == 1;
            if inserted {
                let mut details = detail;
                if let Value::Object(map) = &mut details {
                    map.insert("day".into(), Value::String(day.to_owned()));
                    map.insert("limit".into(), Value::String(limit.to_owned()));
                }
                let event = Event::new(AuditAction::UsageOverLimit, format!("usage/{day}"), details);
                tx.append_audit(org, &Actor::system(), &[event], now).await?;
            }
            inserted
        }))
    }

    /// Everything stored about the org's usage whose day text lies in `[first, last]`
    /// (`YYYY-MM` rows of rolled-up months sort just before their month's days).
    pub(crate) async fn usage_records(
        &self,
        first: &str,
        last: &str,
    ) -> Result<OrgUsageRecords, StoreError> {
        let org = self.org_id();
        let gateways_sql = "SELECT u.day, u.gateway_id, g.name AS gateway_name, u.workspace, \
             u.environment, u.tokens, u.hours, u.version FROM usage_gateway_days u \
             LEFT JOIN gateways g ON g.id = u.gateway_id AND g.org_id = u.org_id \
             WHERE u.org_id = $1 AND u.day >= $2 AND u.day <= $3 ORDER BY u.day, u.gateway_id";
        let plugins_sql = "SELECT day, gateway_id, workspace, environment, plugin, allowed, \
             refused FROM usage_plugin_days WHERE org_id = $1 AND day >= $2 AND day <= $3 \
             ORDER BY day, gateway_id, plugin";
        let imported_sql = "SELECT deployment_id, day, gateways_active, tokens, \
             peak_gateways, plugins, version FROM usage_imported_days \
             WHERE org_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, deployment_id";
        let limits_sql = "SELECT day, limit_key FROM usage_over_limit \
             WHERE org_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, limit_key";
        let store = self.store();
        let gateways: Vec<GatewayRow> = on_pool!(store, pool => sqlx::query_as(gateways_sql)
            .bind(org).bind(first).bind(last).fetch_all(pool).await?);
        let plugins: Vec<PluginRow> = on_pool!(store, pool => sqlx::query_as(plugins_sql)
            .bind(org).bind(first).bind(last).fetch_all(pool).await?);
        let imported: Vec<ImportedRow> = on_pool!(store, pool => sqlx::query_as(imported_sql)
            .bind(org).bind(first).bind(last).fetch_all(pool).await?);
        let over_limit: Vec<(String, String)> = on_pool!(store, pool => sqlx::query_as(limits_sql)
            .bind(org).bind(first).bind(last).fetch_all(pool).await?);
        records_of(gateways, plugins, imported, over_limit)
    }
}

fn records_of(
    gateways: Vec<GatewayRow>,
    plugins: Vec<PluginRow>,
    imported: Vec<ImportedRow>,
    over_limit: Vec<(String, String)>,
) -> Result<OrgUsageRecords, StoreError> {
    let imported = imported
        .into_iter()
        .map(|row| {
            let plugins: BTreeMap<String, PluginCounts> = from_json_text(&row.plugins)?;
            Ok(ImportedDayRecord {
                deployment_id: row.deployment_id,
                day: row.day,
                gateways_active: count(row.gateways_active),
                tokens: count(row.tokens),
                peak_gateways: count(row.peak_gateways),
                plugins,
                version: row.version,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(OrgUsageRecords {
        gateways: gateways
            .into_iter()
            .map(|row| GatewayDayRecord {
                day: row.day,
                gateway_id: row.gateway_id,
                gateway_name: row.gateway_name,
                workspace: row.workspace,
                environment: row.environment,
                tokens: count(row.tokens),
                hours: u32::try_from(row.hours & 0x00ff_ffff).unwrap_or(0),
                version: row.version,
            })
            .collect(),
        plugins: plugins
            .into_iter()
            .map(|row| PluginDayRecord {
                day: row.day,
                gateway_id: row.gateway_id,
                workspace: row.workspace,
                environment: row.environment,
                plugin: row.plugin,
                counts: PluginCounts {
                    allowed: count(row.allowed),
                    refused: count(row.refused),
                },
            })
            .collect(),
        imported,
        over_limit,
    })
}

/// An org as the cross-org usage report lists it.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct UsageOrg {
    /// Id.
    pub(crate) id: String,
    /// Slug.
    pub(crate) slug: String,
    /// Its license's tier, if it has one.
    pub(crate) tier: Option<String>,
    /// Its license's limits (JSON), if it has one.
    pub(crate) limits: Option<String>,
}

impl Store {
    /// Every org with its license's tier and limits, for the cross-org usage report.
    pub(crate) async fn usage_orgs(&self) -> Result<Vec<UsageOrg>, StoreError> {
        let sql = "SELECT o.id, o.slug, l.tier, l.limits FROM orgs o \
                   LEFT JOIN licenses l ON l.org_id = o.id ORDER BY o.slug";
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql).fetch_all(pool).await?))
    }

    /// Rolls the usage days before `before` (`YYYY-MM-DD`) up into month rows (tokens
    /// and plugin checks summed, `days` = the days a gateway was active) and deletes the
    /// days, in one transaction; returns how many gateway-days were rolled up.
    pub(crate) async fn roll_up_usage(&self, before: &str) -> Result<u64, StoreError> {
        let months = "INSERT INTO usage_gateway_days (org_id, day, gateway_id, workspace, \
             environment, tokens, hours, days, version) \
             SELECT org_id, substr(day, 1, 7), gateway_id, MAX(workspace), MAX(environment), \
             SUM(tokens), 0, COUNT(*), MAX(version) FROM usage_gateway_days \
             WHERE length(day) = 10 AND day < $1 GROUP BY org_id, substr(day, 1, 7), gateway_id \
             ON CONFLICT (org_id, day, gateway_id) DO UPDATE SET \
             tokens = usage_gateway_days.tokens + excluded.tokens, \
             days = usage_gateway_days.days + excluded.days";
        let plugin_months = "INSERT INTO usage_plugin_days (org_id, day, gateway_id, plugin, \
             workspace, environment, allowed, refused) \
             SELECT org_id, substr(day, 1, 7), gateway_id, plugin, MAX(workspace), \
             MAX(environment), SUM(allowed), SUM(refused) FROM usage_plugin_days \
             WHERE length(day) = 10 AND day < $1 \
             GROUP BY org_id, substr(day, 1, 7), gateway_id, plugin \
             ON CONFLICT (org_id, day, gateway_id, plugin) DO UPDATE SET \
             allowed = usage_plugin_days.allowed + excluded.allowed, \
             refused = usage_plugin_days.refused + excluded.refused";
        let delete_days = "DELETE FROM usage_gateway_days WHERE length(day) = 10 AND day < $1";
        let delete_plugins = "DELETE FROM usage_plugin_days WHERE length(day) = 10 AND day < $1";
        Ok(in_tx!(self.global(), tx => {
            sqlx::query(months).bind(before).execute(&mut *tx).await?;
            sqlx::query(plugin_months).bind(before).execute(&mut *tx).await?;
            let rolled = sqlx::query(delete_days).bind(before).execute(&mut *tx).await?
                .rows_affected();
            sqlx::query(delete_plugins).bind(before).execute(&mut *tx).await?;
            rolled
        }))
    }
}
