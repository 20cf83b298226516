//! `POST /v1/orgs/{org}/usage/receipts`: the import of an air-gapped deployment's usage
//! bundle (`mcpg-entitlements usage export`), by the org's admins and the vendor — the
//! people who read the org's usage.
//!
//! The bundle is verified with `mcpg_license_core::usage::verify_bundle` against the roots
//! the service trusts (the keyring's: the compiled-in vendor roots, `--trusted-root` and the
//! development root) and the chain on record for its deployment, inside the write
//! transaction that stores its new days (see `infra::store::usage_import`). The bundle's
//! license must be for this org: its `org` claim is the org's slug (or its id). A refusal
//! answers 400 `malformed` or 422 with the receipt's stable code and writes nothing.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mcpg_license_core::usage::{
    Bundle, LicenseCheck, PluginCounts, ReceiptError, VerifiedBundle, decode_key, encode_key,
    verify_bundle,
};
use serde::Serialize;

use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::is_json;
use crate::http::state::AppState;
use crate::infra::store::ImportOutcome;

/// The largest bundle the API takes: about ten years of daily entries with a hundred
/// plugins each. Larger exports are split with `mcpg-entitlements usage export --since`.
pub(crate) const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/orgs/{org}/usage/receipts",
        post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
    )
}

/// What an import stored.
#[derive(Debug, Serialize)]
struct ImportView {
    org: String,
    deployment_id: String,
    deployment_key: String,
    license: String,
    /// Days stored by this import.
    days_imported: usize,
    /// Leading days of the bundle imported before (not counted again).
    already_imported: usize,
    first_day: Option<String>,
    last_day: Option<String>,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    /// The chain head now on record (the next bundle continues after it).
    chain_hash: String,
    totals: Totals,
}

/// The imported days added up.
#[derive(Debug, Default, Serialize)]
struct Totals {
    /// Days on which at least one gateway ran.
    active_days: u64,
    /// The highest `peak_gateways` of the days.
    peak_gateways: u32,
    tokens: u64,
    plugins: BTreeMap<String, PluginCounts>,
}

fn view(org: &str, verified: &VerifiedBundle) -> ImportView {
    let mut totals = Totals::default();
    for signed in &verified.entries {
        let e = &signed.entry;
        totals.active_days += u64::from(e.gateways_active > 0);
        totals.peak_gateways = totals.peak_gateways.max(e.peak_gateways);
        totals.tokens = totals.tokens.saturating_add(e.tokens);
        for (name, counts) in &e.plugins {
            totals.plugins.entry(name.clone()).or_default().add(*counts);
        }
    }
    let first = verified.entries.first().map(|s| &s.entry);
    let last = verified.entries.last().map(|s| &s.entry);
    ImportView {
        org: org.to_owned(),
        deployment_id: verified.deployment_id.clone(),
        deployment_key: verified.deployment_key.clone(),
        license: verified.license.lic.clone(),
        days_imported: verified.entries.len(),
        already_imported: verified.already_imported,
        first_day: first.map(|e| e.day.clone()),
        last_day: last.map(|e| e.day.clone()),
        first_seq: first.map(|e| e.seq),
        last_seq: last.map(|e| e.seq),
        chain_hash: verified.chain.last_hash.clone(),
        totals,
    }
}

/// Reads what the import needs before the transaction: the bundle's deployment and its
/// key (normalised), unverified.
fn deployment_of(body: &[u8]) -> std::result::Result<(String, String), ReceiptError> {
    let bundle: Bundle = serde_json::from_slice(body)
        .map_err(|e| ReceiptError::Malformed(format!("not a usage bundle: {e}")))?;
    let key = decode_key(&bundle.deployment_key).ok_or_else(|| {
        ReceiptError::Malformed("deployment_key is not a base64url Ed25519 public key".into())
    })?;
    Ok((bundle.deployment_id, encode_key(&key)))
}

/// `POST /v1/orgs/{org}/usage/receipts`.
async fn import(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<ImportView>> {
    access.require(Action::ImportUsage)?;
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json (a usage bundle)".into(),
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest("cannot read body".into()),
    })?;
    let (deployment_id, deployment_key) = deployment_of(&body).map_err(ApiError::Receipt)?;
    let (slug, org_id) = (access.org.slug.as_str(), access.org.id.as_str());
    let trust = state.keyring.trust();
    let verify = |record: &crate::infra::store::OnRecord| {
        let check = LicenseCheck {
            trust,
            license: None,
            deployment_id: record.key_deployment.as_deref(),
        };
        let verified = verify_bundle(&body, record.chain.as_ref(), &check)?;
        if verified.org != slug && verified.org != org_id {
            return Err(ReceiptError::LicenseMismatch(format!(
                "the bundle's license {} is for org {:?}, not for {slug}",
                verified.license.lic, verified.org
            )));
        }
        Ok(verified)
    };
    let outcome = access
        .tenant()
        .import_usage(&deployment_id, &deployment_key, state.now(), verify)
        .await?;
    match outcome {
        ImportOutcome::Imported(verified) => {
            tracing::info!(
                org = %slug,
                deployment = %verified.deployment_id,
                days = verified.entries.len(),
                "usage receipts imported"
            );
            Ok(axum::Json(view(slug, &verified)))
        }
        ImportOutcome::Refused(refusal) => Err(ApiError::Receipt(refusal)),
        ImportOutcome::Raced(message) => Err(ApiError::Conflict(message)),
    }
}
