//! Words and pictures for humans: `explain()` says why a decision was made, `snapshot()`
//! describes every tenant for status pages.

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{Limits, Tier, UnixTime};
use serde::Serialize;

use crate::config::Mode;
use crate::decision::{Decision, Reason, State};
use crate::entitlements::{Basis, LicenseDetails, PluginIndex, TenantHandle};
use crate::gateway::Gateway;
use crate::sync::MutexExt;
use crate::tenant::TenantKey;
use crate::timeline::{Timeline, TimelineSnapshot};

/// The whole gateway, for `status` and `/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The configured mode.
    pub mode: Mode,
    /// The time decisions use (`max(clock, highest time seen)`), Unix seconds.
    pub now: UnixTime,
    /// The same, RFC 3339.
    pub now_rfc3339: String,
    /// Whether the system clock reads earlier than a time already seen.
    pub clock_behind: bool,
    /// Version of the plugin catalog.
    pub catalog_version: u32,
    /// The gateway's own tenant and its state.
    pub default: TenantSnapshot,
    /// Every known tenant.
    pub tenants: Vec<TenantSnapshot>,
    /// Federation refresh status, one per credential.
    pub federation: Vec<FederationSnapshot>,
    /// Serial of the revocation list in force, if any.
    pub revocation_serial: Option<u64>,
    /// The offline usage ledger, when this process records it.
    pub usage_ledger: Option<LedgerSnapshot>,
}

/// The offline usage ledger, for status pages.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerSnapshot {
    /// The deployment key's id (`k4.pid…`).
    pub deployment_kid: String,
    /// The day being counted (appended once it is over).
    pub open_day: String,
    /// The last recorded day's seq, if any.
    pub last_seq: Option<u64>,
    /// The last recorded day.
    pub last_day: Option<String>,
}

/// One tenant.
#[derive(Debug, Clone, Serialize)]
pub struct TenantSnapshot {
    /// `org/ws/env`, when known.
    pub tenant: Option<TenantKey>,
    /// The state now.
    pub state: State,
    /// The tier in effect now.
    pub tier: Tier,
    /// The licensed tier (before any Tier-0 fallback).
    pub licensed_tier: Tier,
    /// Seconds until the grace bound (federated tenants).
    pub seconds_to_grace_end: Option<i64>,
    /// The service's explicit no, when revoked.
    pub revoked: Option<&'static str>,
    /// When that no was first heard (kept across restarts), Unix seconds.
    pub revoked_since: Option<UnixTime>,
    /// The same, RFC 3339.
    pub revoked_since_rfc3339: Option<String>,
    /// The token's (or offline license's) instants and where now is among them.
    pub timeline: Option<TimelineSnapshot>,
    /// Plugins allowed now.
    pub allowed_plugins: Vec<String>,
    /// The token or license behind it.
    pub license: Option<LicenseDetails>,
    /// The plugin set in force (the token's `ps`), if any.
    pub plugin_set: Option<PluginSetSnapshot>,
    /// The gateway-side limits in force now and the requests in flight.
    pub limits: LimitsSnapshot,
}

/// The plugin set of a tenant, for status pages.
#[derive(Debug, Clone, Serialize)]
pub struct PluginSetSnapshot {
    /// The signed digest of the configs.
    pub digest: String,
    /// The plugin ids, sorted (including any this gateway's catalog does not know).
    pub ids: Vec<String>,
    /// Whether the configs are known (else they come with the next refresh).
    pub configs_available: bool,
}

/// The gateway-side limits of a tenant now: the license's while it is licensed, Tier-0's
/// (none) otherwise. Absent means no limit.
#[derive(Debug, Clone, Serialize)]
pub struct LimitsSnapshot {
    /// MCP servers the gateway may run.
    pub max_servers: Option<u64>,
    /// Requests the gateway may serve at once.
    pub max_concurrent_requests: Option<u64>,
    /// Requests holding a permit of [`TenantHandle::try_begin_request`] now (a sidecar's
    /// clients enforce the limit themselves and are not counted).
    pub requests_in_flight: u64,
}

/// One federation credential's refresh status.
#[derive(Debug, Clone, Serialize)]
pub struct FederationSnapshot {
    /// The tenant its tokens are for, once known.
    pub tenant: Option<TenantKey>,
    /// Last successful refresh.
    pub last_success: Option<UnixTime>,
    /// Next scheduled refresh.
    pub next_refresh: Option<UnixTime>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last error's code and message.
    pub last_error: Option<String>,
    /// Whether refreshing stopped (the credential was refused).
    pub stopped: bool,
    /// When the federation last acknowledged a usage report (sent with each token request).
    pub last_usage_report: Option<UnixTime>,
}

impl Gateway {
    /// Describes the gateway and every tenant.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.inner.time.now();
        let federation = self
            .inner
            .sources
            .iter()
            .map(|s| {
                let st = s.status();
                FederationSnapshot {
                    tenant: s.tenant(),
                    last_success: st.last_success,
                    next_refresh: (!st.stopped).then_some(st.next_due),
                    consecutive_failures: st.failures,
                    last_error: st.last_error.as_ref().map(|e| format!("{}: {e}", e.code())),
                    stopped: st.stopped,
                    last_usage_report: s.reporting.lock_or_recover().last_acknowledged,
                }
            })
            .collect();
        Snapshot {
            mode: self.inner.mode,
            now,
            now_rfc3339: to_rfc3339(now),
            clock_behind: self.inner.time.clock_is_behind(),
            catalog_version: self.inner.catalog.version(),
            default: self.tenant_snapshot(self.default_tenant(), self.inner.own.handle(), now),
            tenants: self
                .tenants()
                .into_iter()
                .map(|(key, handle)| self.tenant_snapshot(Some(key), &handle, now))
                .collect(),
            federation,
            revocation_serial: self.revocation_serial(),
            usage_ledger: self.inner.ledger.as_ref().map(|ledger| {
                let ledger = ledger.lock_or_recover();
                LedgerSnapshot {
                    deployment_kid: ledger.public_key().kid().to_string(),
                    open_day: ledger.open_day().to_string(),
                    last_seq: ledger.last().map(|(seq, _)| seq),
                    last_day: ledger.last().map(|(_, day)| day.to_string()),
                }
            }),
        }
    }

    fn tenant_snapshot(
        &self,
        tenant: Option<TenantKey>,
        handle: &TenantHandle,
        now: UnixTime,
    ) -> TenantSnapshot {
        let ent = handle.entitlements();
        let state = ent.state_at(now);
        let catalog = self.inner.catalog;
        let revoked_since = match ent.basis() {
            Basis::Revoked { since, .. } => Some(since),
            _ => None,
        };
        TenantSnapshot {
            tenant,
            state,
            tier: ent.decide(None, now).tier,
            licensed_tier: ent.tier(),
            seconds_to_grace_end: match ent.basis() {
                Basis::Federated { grc, .. } => Some(grc.saturating_sub(now).max(0)),
                _ => None,
            },
            revoked: match ent.basis() {
                Basis::Revoked { code, .. } => Some(code),
                _ => None,
            },
            revoked_since,
            revoked_since_rfc3339: revoked_since.map(to_rfc3339),
            timeline: ent.details().map(|d| Timeline::of(d).snapshot(now)),
            allowed_plugins: catalog
                .plugins()
                .iter()
                .filter(|p| {
                    ent.decide(PluginIndex::resolve(catalog, &p.id), now)
                        .allowed
                })
                .map(|p| p.id.clone())
                .collect(),
            license: ent.details().map(|d| LicenseDetails::clone(d)),
            plugin_set: ent.plugin_set().map(|set| PluginSetSnapshot {
                digest: set.digest().to_owned(),
                ids: set.ids().to_vec(),
                configs_available: set.configs_available(),
            }),
            limits: {
                let Limits {
                    max_servers,
                    max_concurrent_requests,
                    ..
                } = ent.limits_at(now);
                LimitsSnapshot {
                    max_servers,
                    max_concurrent_requests,
                    requests_in_flight: handle.requests_in_flight(),
                }
            },
        }
    }

    /// The handle answering for `tenant` (the gateway's own when `None`; Tier-0's for a
    /// tenant this gateway does not serve).
    pub fn handle_or_default(&self, tenant: Option<&TenantKey>) -> TenantHandle {
        match tenant {
            None => self.inner.own.handle().clone(),
            Some(key) => self
                .handle(key)
                .unwrap_or_else(|| self.inner.registry.unknown().clone()),
        }
    }

    /// The config of `plugin` in the plugin set of `tenant` (the gateway's own when `None`),
    /// when the set in force names it with one. See [`TenantHandle::plugin_config`].
    pub fn plugin_config(
        &self,
        tenant: Option<&TenantKey>,
        plugin: &str,
    ) -> Option<std::sync::Arc<serde_json::Value>> {
        self.handle_or_default(tenant).plugin_config(plugin)
    }

    /// Why `plugin` is allowed or denied for `tenant` (the gateway's own when `None`), in words.
    pub fn explain(&self, tenant: Option<&TenantKey>, plugin: &str) -> String {
        let handle = self.handle_or_default(tenant);
        let label = tenant
            .map(ToString::to_string)
            .or_else(|| self.default_tenant().map(|k| k.to_string()));
        let label = label.unwrap_or_else(|| "this gateway".into());
        let now = self.inner.time.now();
        let ent = handle.entitlements();
        let decision: Decision = ent.decide(PluginIndex::resolve(self.inner.catalog, plugin), now);
        let spec = self.inner.catalog.get(plugin);
        let needs = spec.map_or_else(String::new, |s| {
            let from = match s.tier {
                Tier::Enterprise => "the enterprise tier".to_owned(),
                tier => format!("the {tier} tier and up"),
            };
            format!("{} (included in {from})", s.entitlement)
        });
        let license = ent
            .details()
            .map_or_else(|| "-".into(), |d| d.license.clone());
        let verdict = if decision.allowed {
            "allowed"
        } else {
            "denied"
        };
        let why = match decision.reason {
            Reason::Allowed if decision.state.is_licensed() => {
                let mut text = format!(
                    "the {} license {license} of {label} includes {needs}",
                    decision.tier
                );
                match ent.basis() {
                    Basis::Federated { exp, grc } if decision.state == State::Grace => text.push_str(&format!(
                        "; the token expired at {} and the federation cannot be reached, so entitlements are kept until the grace bound {}",
                        to_rfc3339(exp),
                        to_rfc3339(grc)
                    )),
                    Basis::Federated { exp, .. } | Basis::Offline { exp } => {
                        text.push_str(&format!("; valid until {}", to_rfc3339(exp)))
                    }
                    _ => {}
                }
                text
            }
            Reason::Allowed => format!(
                "it is a Tier-0 plugin, allowed in every state ({label} is {})",
                decision.state
            ),
            Reason::NotEntitled => format!(
                "the {} license {license} of {label} does not include {needs}; a license of \
                 that tier, or one that adds the entitlement, would",
                decision.tier
            ),
            Reason::UnknownPlugin => format!(
                "the plugin catalog (version {}) does not know it, and unknown plugins are always denied",
                self.inner.catalog.version()
            ),
            Reason::Lapsed => match ent.basis() {
                Basis::Federated { grc, .. } => format!(
                    "the grace period of {label} ended at {} without a successful refresh; only Tier-0 plugins are allowed until the federation answers",
                    to_rfc3339(grc)
                ),
                _ => "the grace period ended; only Tier-0 plugins are allowed".into(),
            },
            Reason::Revoked => format!(
                "the federation answered {} for {label}; only Tier-0 plugins are allowed (grace is for outages, not for an explicit no)",
                match ent.basis() {
                    Basis::Revoked { code, .. } => code,
                    _ => "revoked",
                }
            ),
            Reason::Tier0Only => {
                format!("this gateway runs in tier0 mode (no federation), and it needs {needs}")
            }
            Reason::OfflineExpired => match ent.basis() {
                Basis::Offline { exp } => format!(
                    "the offline license expired at {}; only Tier-0 plugins are allowed",
                    to_rfc3339(exp)
                ),
                _ => "the offline license expired; only Tier-0 plugins are allowed".into(),
            },
            Reason::NotFederated => format!(
                "{label} has no entitlements from the federation (yet); only Tier-0 plugins are allowed, and it needs {needs}"
            ),
            Reason::NotInPluginSet => format!(
                "it is {entitled} but not in the plugin set of {label} ({digest}); ask an operator to add it",
                entitled = match decision.state.is_licensed() {
                    true => "entitled",
                    false => "a Tier-0 plugin",
                },
                digest = ent.plugin_set().map_or("-", |s| s.digest()),
            ),
        };
        format!("{plugin} is {verdict}: {why}.")
    }
}
