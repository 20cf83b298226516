//! The `tenants.yaml` document, parsed strictly: unknown keys, malformed slugs, tiers,
//! entitlement ids, quota numbers, times and key hashes are refused with the line and
//! column they are on. Checks that span several fields (a duplicate workspace, an
//! entitlement both added and removed, more workspaces than the quota) run while the
//! document is read, so their errors carry the line of the tenant or list they concern.

use std::collections::{BTreeSet, HashMap};

use mcpg_license_core::clock::parse_rfc3339;
use mcpg_license_core::{Catalog, EntitlementId, Limits, Tier};
use serde::Deserialize;

use super::TenantsError;
use crate::domain::{OrgStatus, Slug};

/// The longest display or key name accepted.
const MAX_NAME: usize = 200;

/// A validated `tenants.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantsDoc {
    /// The tenants (orgs) the file manages.
    pub(crate) tenants: Tenants,
}

/// The tenant list: ids and key hashes are unique across the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "Vec<TenantSpec>")]
pub(crate) struct Tenants(pub(crate) Vec<TenantSpec>);

/// One tenant: an org with its license, workspaces, environments and API keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawTenant")]
pub(crate) struct TenantSpec {
    /// The org's slug.
    pub(crate) id: Slug,
    /// Human name.
    pub(crate) display_name: String,
    /// Status to enforce; `None` leaves the org's status as it is (new orgs are active).
    pub(crate) status: Option<OrgStatus>,
    /// The trial's end (Unix seconds): set exactly when `status` is `Some(Trial)`.
    pub(crate) trial_ends: Option<i64>,
    /// The gateway-side settings to enforce; `None` keeps the org's current value.
    pub(crate) gateway: GatewaySettings,
    /// License tier.
    pub(crate) tier: Tier,
    /// Entitlements added to the tier's defaults, sorted.
    pub(crate) add: Vec<EntitlementId>,
    /// Entitlements removed from the tier's defaults, sorted.
    pub(crate) remove: Vec<EntitlementId>,
    /// Whether `add` and `remove` may name entitlements the plugin catalog does not know
    /// (a plugin that ships later).
    pub(crate) allow_future_entitlements: bool,
    /// The license's limits.
    pub(crate) limits: Limits,
    /// License start; `None` keeps the current one (now for a new license).
    pub(crate) valid_from: Option<i64>,
    /// License end; `None` keeps the current one (a year after the start for a new one).
    pub(crate) valid_until: Option<i64>,
    /// Workspaces with their environments.
    pub(crate) workspaces: Vec<WorkspaceSpec>,
    /// API keys (org admins).
    pub(crate) api_keys: Vec<ApiKeySpec>,
}

/// The org's gateway-side settings (seed 001's tenant fields): stored on the org, returned
/// by `GET /v1/orgs/{org}`. `None` keeps the org's current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GatewaySettings {
    /// The Kubernetes namespace the org's MCP servers run in.
    pub(crate) namespace: Option<String>,
    /// The org's server catalog file, as the gateway names it.
    pub(crate) catalog_file: Option<String>,
}

/// A workspace and its environments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkspaceSpec {
    /// Workspace slug.
    pub(crate) name: Slug,
    /// Environment slugs.
    #[serde(default)]
    pub(crate) environments: Vec<Slug>,
    /// The workspace's plugin set; `None`: the file does not declare one (a set the file
    /// wrote before is then removed; one written through the API is kept).
    #[serde(default)]
    pub(crate) plugins: Option<mcpg_license_core::PluginSet>,
}

/// An API key of the org, known by the SHA-256 of the full token.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawApiKey")]
pub(crate) struct ApiKeySpec {
    /// Name (defaults to one derived from the hash).
    pub(crate) name: String,
    /// Lowercase hex SHA-256 of the token.
    pub(crate) hash: String,
}

/// The role a key acts with. Keys act as the org's admin (like org API tokens made through
/// the API); narrower roles are bound to users, not to keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KeyRole {
    Admin,
}

/// Statuses the file may set (a trial needs `trial_ends`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FileStatus {
    Active,
    Suspended,
    Trial,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: Slug,
    display_name: String,
    #[serde(default)]
    status: Option<FileStatus>,
    #[serde(default)]
    trial_ends: Option<TimeOrDate>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    catalog_file: Option<String>,
    #[serde(default = "free_tier")]
    tier: Tier,
    #[serde(default)]
    entitlements: RawEntitlements,
    #[serde(default)]
    allow_future_entitlements: bool,
    #[serde(default)]
    quotas: Quotas,
    #[serde(default)]
    valid_from: Option<Rfc3339>,
    #[serde(default)]
    valid_until: Option<Rfc3339>,
    #[serde(default)]
    workspaces: Vec<WorkspaceSpec>,
    #[serde(default)]
    api_keys: Vec<ApiKeySpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntitlements {
    #[serde(default)]
    add: BTreeSet<EntitlementId>,
    #[serde(default)]
    remove: BTreeSet<EntitlementId>,
}

/// The license's limits under their wire names; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Quotas {
    #[serde(default)]
    max_workspaces: Option<u64>,
    #[serde(default)]
    max_environments: Option<u64>,
    #[serde(default)]
    max_gateways: Option<u64>,
    #[serde(default)]
    rps: Option<u64>,
    #[serde(default)]
    max_servers: Option<u64>,
    #[serde(default)]
    max_concurrent_requests: Option<u64>,
}

/// A tenant without `tier` gets the free tier (seed 001's tenants name none).
fn free_tier() -> Tier {
    Tier::Free
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    #[serde(default)]
    name: Option<String>,
    key_hash: String,
    #[serde(default)]
    role: Option<KeyRole>,
}

/// An RFC 3339 time, as Unix seconds.
#[derive(Debug, Clone, Copy)]
struct Rfc3339(i64);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_rfc3339(&text).map(Rfc3339).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not an RFC 3339 time, e.g. 2027-01-31T00:00:00Z"
            ))
        })
    }
}

/// An RFC 3339 time or a date (`2027-01-31`, meaning its start, 00:00 UTC), as Unix
/// seconds.
#[derive(Debug, Clone, Copy)]
struct TimeOrDate(i64);

impl<'de> Deserialize<'de> for TimeOrDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let is_date = text.len() == 10 && !text.contains('T');
        let time = if is_date {
            parse_rfc3339(&format!("{text}T00:00:00Z"))
        } else {
            parse_rfc3339(&text)
        };
        time.map(TimeOrDate).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is neither an RFC 3339 time nor a date, e.g. 2027-01-31 or \
                 2027-01-31T00:00:00Z"
            ))
        })
    }
}

fn check_name(what: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(format!("{what} must be 1-{MAX_NAME} printable characters"));
    }
    // The API's display-text rule: no control, bidirectional or invisible characters.
    if let Some(c) = name
        .chars()
        .find(|c| crate::domain::is_forbidden_in_display_text(*c))
    {
        return Err(format!(
            "{what} holds U+{:04X}: control, bidirectional and invisible characters are refused",
            u32::from(c)
        ));
    }
    Ok(name.to_owned())
}

impl TryFrom<RawApiKey> for ApiKeySpec {
    type Error = String;

    fn try_from(raw: RawApiKey) -> Result<Self, String> {
        let hex = raw
            .key_hash
            .strip_prefix("sha256:")
            .ok_or("key_hash must be \"sha256:\" followed by 64 hex digits")?
            .to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("key_hash must be \"sha256:\" followed by 64 hex digits".into());
        }
        // Admin is the only role a key can have (and the default).
        match raw.role {
            None | Some(KeyRole::Admin) => {}
        }
        let name = match raw.name {
            Some(name) => check_name("name", &name)?,
            None => format!("tenants.yaml key {}", &hex[..8]),
        };
        Ok(Self { name, hash: hex })
    }
}

impl TryFrom<RawTenant> for TenantSpec {
    type Error = String;

    fn try_from(raw: RawTenant) -> Result<Self, String> {
        // Org slugs follow the org rule (reserved names refused), as in the API.
        let id = Slug::parse_org(raw.id.as_str()).map_err(|e| e.to_string())?;
        let display_name = check_name("display_name", &raw.display_name)?;
        let status = raw.status.map(|s| match s {
            FileStatus::Active => OrgStatus::Active,
            FileStatus::Suspended => OrgStatus::Suspended,
            FileStatus::Trial => OrgStatus::Trial,
        });
        let trial_ends = match (status, raw.trial_ends) {
            (Some(OrgStatus::Trial), Some(end)) => Some(end.0),
            (Some(OrgStatus::Trial), None) => {
                return Err(format!(
                    "tenant {id}: status: trial needs trial_ends (when the trial ends: an \
                     RFC 3339 time or a date, e.g. 2027-01-31)"
                ));
            }
            (_, Some(_)) => {
                return Err(format!("tenant {id}: trial_ends is only for status: trial"));
            }
            (_, None) => None,
        };
        let gateway = GatewaySettings {
            namespace: raw
                .namespace
                .as_deref()
                .map(crate::domain::gateway_namespace)
                .transpose()
                .map_err(|e| format!("tenant {id}: {e}"))?,
            catalog_file: raw
                .catalog_file
                .as_deref()
                .map(crate::domain::catalog_file)
                .transpose()
                .map_err(|e| format!("tenant {id}: {e}"))?,
        };
        if let Some(both) = raw
            .entitlements
            .add
            .intersection(&raw.entitlements.remove)
            .next()
        {
            return Err(format!("tenant {id}: {both} is both added and removed"));
        }
        if let (Some(from), Some(until)) = (raw.valid_from, raw.valid_until)
            && until.0 <= from.0
        {
            return Err(format!("tenant {id}: valid_until must be after valid_from"));
        }
        let mut workspaces = BTreeSet::new();
        let mut environments = 0_u64;
        for ws in &raw.workspaces {
            if !workspaces.insert(ws.name.as_str()) {
                return Err(format!(
                    "tenant {id}: workspace {} is listed twice",
                    ws.name
                ));
            }
            let mut seen = BTreeSet::new();
            for env in &ws.environments {
                if !seen.insert(env.as_str()) {
                    return Err(format!(
                        "tenant {id}: environment {}/{env} is listed twice",
                        ws.name
                    ));
                }
            }
            environments += ws.environments.len() as u64;
        }
        let quotas = raw.quotas;
        let file_usage = [
            (
                "max_workspaces",
                quotas.max_workspaces,
                workspaces.len() as u64,
            ),
            ("max_environments", quotas.max_environments, environments),
        ];
        for (name, limit, used) in file_usage {
            if let Some(limit) = limit
                && used > limit
            {
                return Err(format!(
                    "tenant {id}: {used} listed but quotas.{name} is {limit}"
                ));
            }
        }
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for key in &raw.api_keys {
            if !names.insert(key.name.as_str()) {
                return Err(format!(
                    "tenant {id}: API key name {:?} is used twice",
                    key.name
                ));
            }
            if !hashes.insert(key.hash.as_str()) {
                return Err(format!(
                    "tenant {id}: API key {:?} repeats a key_hash",
                    key.name
                ));
            }
        }
        Ok(Self {
            id,
            display_name,
            status,
            trial_ends,
            gateway,
            tier: raw.tier,
            add: raw.entitlements.add.into_iter().collect(),
            remove: raw.entitlements.remove.into_iter().collect(),
            allow_future_entitlements: raw.allow_future_entitlements,
            limits: Limits {
                max_gateways: quotas.max_gateways,
                max_workspaces: quotas.max_workspaces,
                max_environments: quotas.max_environments,
                rps: quotas.rps,
                max_servers: quotas.max_servers,
                max_concurrent_requests: quotas.max_concurrent_requests,
            },
            valid_from: raw.valid_from.map(|t| t.0),
            valid_until: raw.valid_until.map(|t| t.0),
            workspaces: raw.workspaces,
            api_keys: raw.api_keys,
        })
    }
}

impl TryFrom<Vec<TenantSpec>> for Tenants {
    type Error = String;

    fn try_from(tenants: Vec<TenantSpec>) -> Result<Self, String> {
        let mut ids = HashMap::new();
        let mut hashes: HashMap<&str, &str> = HashMap::new();
        for (index, tenant) in tenants.iter().enumerate() {
            if let Some(first) = ids.insert(tenant.id.as_str(), index) {
                return Err(format!(
                    "tenant id {} is used twice (tenants[{first}] and tenants[{index}])",
                    tenant.id
                ));
            }
            for key in &tenant.api_keys {
                if let Some(other) = hashes.insert(&key.hash, tenant.id.as_str()) {
                    return Err(format!(
                        "the key_hash of {}'s API key {:?} is also used by tenant {other}",
                        tenant.id, key.name
                    ));
                }
            }
        }
        Ok(Self(tenants))
    }
}

impl TenantsDoc {
    /// Parses and validates a document within the default object bound; `source` names
    /// it in errors (a file name).
    #[cfg(test)]
    pub(crate) fn parse(source: &str, text: &str) -> Result<Self, TenantsError> {
        Self::parse_bounded(source, text, super::bounds::DEFAULT_MAX_OBJECTS)
    }

    /// Parses and validates a document that declares at most `max_objects` orgs,
    /// workspaces, environments and API keys, has no YAML anchor or alias and is at most
    /// [`super::bounds::MAX_DOCUMENT_BYTES`] long. The bounds are checked on the event
    /// stream, before anything is built.
    pub(crate) fn parse_bounded(
        source: &str,
        text: &str,
        max_objects: usize,
    ) -> Result<Self, TenantsError> {
        if text.trim().is_empty() {
            return Err(TenantsError::invalid(
                source,
                None,
                "the document is empty; write `tenants: []` to manage no tenant",
            ));
        }
        super::bounds::check(source, text, max_objects)?;
        let doc: Self = serde_norway::from_str(text).map_err(|error| {
            let location = error.location().map(|l| (l.line(), l.column()));
            let mut message = error.to_string();
            if let Some((line, column)) = location {
                let suffix = format!(" at line {line} column {column}");
                if let Some(stripped) = message.strip_suffix(&suffix) {
                    message = stripped.to_owned();
                }
            }
            TenantsError::invalid(source, location, message)
        })?;
        doc.check_known_entitlements(source)?;
        doc.check_plugin_sets(source)?;
        Ok(doc)
    }

    /// Refuses a workspace's plugin set naming a plugin the catalog does not know or the
    /// tenant's own license does not entitle — the rule of the plugin-set API.
    fn check_plugin_sets(&self, source: &str) -> Result<(), TenantsError> {
        for tenant in &self.tenants.0 {
            let entitlements =
                Catalog::builtin().license_entitlements(tenant.tier, &tenant.add, &tenant.remove);
            for workspace in &tenant.workspaces {
                let Some(set) = &workspace.plugins else {
                    continue;
                };
                if let Err(refusal) =
                    crate::domain::plugin_sets::check_plugin_set(set, &entitlements)
                {
                    return Err(TenantsError::invalid(
                        source,
                        None,
                        format!(
                            "tenant {}, workspace {}: plugins: {}",
                            tenant.id,
                            workspace.name,
                            refusal.message()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Refuses entitlement ids the plugin catalog does not know, unless the tenant sets
    /// `allow_future_entitlements: true` — the same rule as the license API.
    fn check_known_entitlements(&self, source: &str) -> Result<(), TenantsError> {
        let catalog = Catalog::builtin();
        for tenant in self
            .tenants
            .0
            .iter()
            .filter(|t| !t.allow_future_entitlements)
        {
            if let Err(error) = catalog.check_known(tenant.add.iter().chain(&tenant.remove)) {
                return Err(TenantsError::UnknownEntitlement(format!(
                    "{source}: tenant {}: {error}; fix the id, or set \
                     allow_future_entitlements: true on the tenant for a plugin that ships later",
                    tenant.id
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn parse(text: &str) -> Result<TenantsDoc, TenantsError> {
        TenantsDoc::parse("tenants.yaml", text)
    }

    fn line_of(error: TenantsError) -> Option<usize> {
        match error {
            TenantsError::Invalid { line, .. } => line,
            other => panic!("expected an invalid document, got {other}"),
        }
    }

    #[test]
    fn a_full_tenant_parses_into_the_model() {
        let doc = parse(&format!(
            "tenants:\n\
             - id: team-a\n  display_name: Team Alpha\n  tier: team\n\
             \x20 entitlements:\n    add: [\"plugin:policy.cedar\"]\n\
             \x20 quotas:\n    max_workspaces: 2\n    max_gateways: 5\n\
             \x20 valid_until: 2030-01-01T00:00:00Z\n\
             \x20 workspaces:\n  - name: platform\n    environments: [dev, prod]\n\
             \x20 api_keys:\n  - key_hash: \"{}\"\n    name: production\n",
            HASH.to_uppercase().replace("SHA256:", "sha256:")
        ))
        .expect("valid");
        let tenant = &doc.tenants.0[0];
        assert_eq!(tenant.id.as_str(), "team-a");
        assert_eq!(tenant.tier, Tier::Team);
        assert_eq!(tenant.limits.max_workspaces, Some(2));
        assert_eq!(tenant.limits.max_gateways, Some(5));
        assert_eq!(tenant.add.len(), 1);
        assert_eq!(tenant.workspaces[0].environments.len(), 2);
        assert_eq!(tenant.api_keys[0].hash, &HASH["sha256:".len()..]);
        assert_eq!(tenant.valid_until, parse_rfc3339("2030-01-01T00:00:00Z"));
    }

    #[test]
    fn the_readme_example_is_a_valid_document() {
        let readme = include_str!("../../../../../README.md");
        let section = readme
            .split("## Tenants as code")
            .nth(1)
            .expect("README has the tenants.yaml section");
        let example = section
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a yaml block");
        let doc = parse(example).expect("the README example parses");
        assert_eq!(doc.tenants.0[0].workspaces[0].environments.len(), 2);
    }

    /// Seed 001's example, with real hashes in place of its `sha256:abc123...`
    /// placeholders: the only adaptation the format needs.
    pub(crate) fn seed_001_example(hashes: [&str; 3]) -> String {
        format!(
            "tenants:\n\
             - id: team-a\n\
             \x20 display_name: Team Alpha\n\
             \x20 namespace: mcp-team-a\n\
             \x20 catalog_file: catalogs/team-a.yaml\n\
             \x20 api_keys:\n\
             \x20   - key_hash: \"{}\"\n\
             \x20     name: \"production\"\n\
             \x20   - key_hash: \"{}\"\n\
             \x20     name: \"development\"\n\
             \x20 quotas:\n\
             \x20   max_servers: 5\n\
             \x20   max_concurrent_requests: 100\n\
             - id: team-b\n\
             \x20 display_name: Team Beta\n\
             \x20 namespace: mcp-team-b\n\
             \x20 catalog_file: catalogs/team-b.yaml\n\
             \x20 api_keys:\n\
             \x20   - key_hash: \"{}\"\n\
             \x20 quotas:\n\
             \x20   max_servers: 10\n",
            hashes[0], hashes[1], hashes[2]
        )
    }

    #[test]
    fn seed_001s_example_parses_into_the_model() {
        let hash = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let doc = parse(&seed_001_example([&hash('a'), &hash('b'), &hash('c')]))
            .expect("seed 001's example parses");
        let [a, b] = &doc.tenants.0[..] else {
            panic!("two tenants")
        };
        assert_eq!(a.id.as_str(), "team-a");
        assert_eq!(a.tier, Tier::Free);
        assert_eq!(a.gateway.namespace.as_deref(), Some("mcp-team-a"));
        assert_eq!(
            a.gateway.catalog_file.as_deref(),
            Some("catalogs/team-a.yaml")
        );
        assert_eq!(a.limits.max_servers, Some(5));
        assert_eq!(a.limits.max_concurrent_requests, Some(100));
        assert_eq!(a.api_keys.len(), 2);
        assert_eq!(b.limits.max_servers, Some(10));
        assert_eq!(b.limits.max_concurrent_requests, None);
        assert_eq!(
            b.api_keys[0].name,
            format!("tenants.yaml key {}", "c".repeat(8))
        );
        assert_eq!(a.status, None);
    }

    #[test]
    fn trials_need_an_end_and_only_trials_have_one() {
        let tenant = |extra: &str| format!("tenants:\n- id: a\n  display_name: A\n{extra}");
        let date = parse(&tenant("  status: trial\n  trial_ends: 2027-01-31\n")).expect("date");
        assert_eq!(date.tenants.0[0].status, Some(OrgStatus::Trial));
        assert_eq!(
            date.tenants.0[0].trial_ends,
            parse_rfc3339("2027-01-31T00:00:00Z")
        );
        let time = parse(&tenant(
            "  status: trial\n  trial_ends: 2027-01-31T12:00:00Z\n",
        ))
        .expect("time");
        assert_eq!(
            time.tenants.0[0].trial_ends,
            parse_rfc3339("2027-01-31T12:00:00Z")
        );
        let cases = [
            ("  status: trial\n", "status: trial needs trial_ends"),
            (
                "  status: active\n  trial_ends: 2027-01-31\n",
                "trial_ends is only for status: trial",
            ),
            (
                "  trial_ends: 2027-01-31\n",
                "trial_ends is only for status: trial",
            ),
            (
                "  status: trial\n  trial_ends: next week\n",
                "neither an RFC 3339 time nor a date",
            ),
            ("  namespace: Team_A\n", "not a Kubernetes namespace name"),
            ("  catalog_file: \"\"\n", "catalog_file"),
        ];
        for (extra, needle) in cases {
            let error = parse(&tenant(extra)).expect_err(extra);
            assert!(error.to_string().contains(needle), "{extra}: {error}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let error = parse("tenants:\n- id: a\n  display_name: A\n  tier: free\n  namespsace: x\n")
            .expect_err("unknown key");
        assert!(
            error.to_string().contains("unknown field `namespsace`"),
            "{error}"
        );
        assert_eq!(line_of(error), Some(5));
    }

    #[test]
    fn malformed_values_name_their_line() {
        let cases = [
            (
                "tenants:\n- id: Bad Id\n  display_name: A\n  tier: free\n",
                2,
                "invalid slug",
            ),
            (
                "tenants:\n- id: a\n  display_name: A\n  tier: gold\n",
                4,
                "gold",
            ),
            (
                "tenants:\n- id: a\n  display_name: A\n  tier: free\n  quotas:\n    max_gateways: -1\n",
                6,
                "-1",
            ),
            (
                "tenants:\n- id: a\n  display_name: A\n  tier: free\n  quotas:\n    max_server: 5\n",
                6,
                "max_server",
            ),
            (
                "tenants:\n- id: a\n  display_name: A\n  tier: free\n  api_keys:\n  - key_hash: \"md5:00\"\n",
                6,
                "sha256:",
            ),
            (
                "tenants:\n- id: a\n  display_name: A\n  tier: free\n  api_keys:\n  - key_hash: \"x\"\n    role: viewer\n",
                7,
                "viewer",
            ),
        ];
        for (text, line, needle) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.to_string().contains(needle), "{error}");
            assert_eq!(line_of(error), Some(line), "{text}");
        }
    }

    #[test]
    fn unknown_entitlements_are_refused_unless_the_tenant_allows_future_ones() {
        let doc = |allow: &str| {
            format!(
                "tenants:\n- id: a\n  display_name: A\n  tier: team\n{allow}  \
                 entitlements:\n    add: [\"plugin:policy.cedr\", \"plugin:billing.stripe\"]\n"
            )
        };
        let error = parse(&doc("")).expect_err("unknown entitlements");
        assert!(
            matches!(error, TenantsError::UnknownEntitlement(_)),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("tenant a: unknown entitlements: "),
            "{message}"
        );
        assert!(
            message.contains("plugin:policy.cedr (did you mean plugin:policy.cedar?)"),
            "{message}"
        );
        assert!(message.contains("plugin:billing.stripe"), "{message}");
        assert!(message.contains("allow_future_entitlements"), "{message}");
        let allowed = parse(&doc("  allow_future_entitlements: true\n")).expect("opted in");
        assert!(allowed.tenants.0[0].allow_future_entitlements);
        assert_eq!(allowed.tenants.0[0].add.len(), 2);
    }

    #[test]
    fn cross_field_mistakes_are_refused() {
        let twice = "tenants:\n- id: a\n  display_name: A\n  tier: free\n\
                     - id: a\n  display_name: B\n  tier: free\n";
        assert!(
            parse(twice)
                .expect_err("dup")
                .to_string()
                .contains("used twice")
        );
        let over = "tenants:\n- id: a\n  display_name: A\n  tier: free\n  quotas:\n    max_workspaces: 1\n  workspaces:\n  - name: x\n  - name: y\n";
        let error = parse(over).expect_err("over quota");
        assert!(
            error.to_string().contains("quotas.max_workspaces is 1"),
            "{error}"
        );
        assert_eq!(line_of(error), Some(2));
        let both = "tenants:\n- id: a\n  display_name: A\n  tier: free\n  entitlements:\n    add: [\"plugin:x\"]\n    remove: [\"plugin:x\"]\n";
        assert!(
            parse(both)
                .expect_err("both")
                .to_string()
                .contains("both added and removed")
        );
    }

    #[test]
    fn broken_yaml_and_empty_files_are_refused() {
        let error = parse("tenants:\n- id: a\n  display_name: [unclosed\n").expect_err("syntax");
        assert!(line_of(error).is_some());
        assert!(parse("  \n").is_err());
        assert!(
            parse("tenants: []\n")
                .expect("empty list")
                .tenants
                .0
                .is_empty()
        );
    }

    #[test]
    fn reserved_org_slugs_and_bidi_display_names_are_refused_as_in_the_api() {
        let reserved = "tenants:\n- id: admin\n  display_name: Admin\n  tier: free\n";
        assert!(
            parse(reserved)
                .expect_err("reserved")
                .to_string()
                .contains("reserved")
        );
        let bidi = "tenants:\n- id: acme\n  display_name: \"Acme \\u202Egnp.exe\"\n  tier: free\n";
        assert!(
            parse(bidi)
                .expect_err("bidi override")
                .to_string()
                .contains("U+202E")
        );
    }
}
