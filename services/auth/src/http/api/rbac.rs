//! Users, their personal API tokens, role bindings (org admins), and impersonation of an
//! org by a global admin.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use mcpg_license_core::EntitlementSet;
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};

use crate::domain::credential::{Credential, CredentialKind};
use crate::domain::rbac::{Action, Binding, Email, Inactive, Role, Scope};
use crate::domain::{Slug, entitlements_at};
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::{ApiJson, Integer, Principal};
use crate::http::page::{ListRoute, PageRequest, Paged};
use crate::http::state::AppState;
use crate::infra::store::{Actor, BindingRecord, BindingSpec, NewImpersonation, UserTokenRecord};

const TOKENS: &str = "/v1/orgs/{org}/users/{email}/tokens";
const BINDINGS: &str = "/v1/orgs/{org}/rbac/bindings";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(TOKENS, get(list_tokens).post(create_token))
        .route(&format!("{TOKENS}/{{id}}"), delete(revoke_token))
        .route(
            BINDINGS,
            get(list_bindings).post(grant).delete(revoke_binding),
        )
        .route("/v1/admin/impersonations", post(impersonate))
}

/// The longest impersonation, in minutes.
const MAX_IMPERSONATION_MINUTES: i64 = 60;
const MAX_TEXT: usize = 200;

fn printable(field: &'static str, text: &str, max: usize) -> Result<String> {
    Ok(crate::domain::display_text(field, text, max)?)
}

fn email(text: &str) -> Result<Email> {
    Email::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenView {
    id: String,
    email: String,
    name: String,
    token_prefix: String,
    created_at: String,
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<UserTokenRecord> for TokenView {
    fn from(t: UserTokenRecord) -> Self {
        Self {
            id: t.id,
            email: t.email,
            name: t.name,
            token_prefix: t.token_prefix,
            created_at: to_rfc3339(t.created_at),
            revoked_at: t.revoked_at.map(to_rfc3339),
            token: None,
        }
    }
}

async fn create_token(
    State(state): State<AppState>,
    access: Access,
    Path((_, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, axum::Json<TokenView>)> {
    let (record, credential) =
        issue_user_token(&state, &access, &user, body.name.as_deref()).await?;
    let mut view = TokenView::from(record);
    view.token = Some(credential.expose().to_owned());
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Issues a personal token to `user` (org admins): the token `POST`, and the console's
/// form. The credential is returned to be shown once; only its hash is stored.
pub(crate) async fn issue_user_token(
    state: &AppState,
    access: &Access,
    user: &str,
    name: Option<&str>,
) -> Result<(UserTokenRecord, Credential)> {
    access.require(Action::ManageAccess)?;
    let user = email(user)?;
    let name = printable("name", name.unwrap_or("personal"), MAX_TEXT)?;
    let credential = Credential::generate(CredentialKind::ApiToken).map_err(ApiError::internal)?;
    let record = access
        .tenant()
        .create_user_token(
            user.as_str(),
            &name,
            &credential.hash().to_hex(),
            credential.display_prefix(),
            state.now(),
        )
        .await?;
    tracing::info!(org = %access.org.slug, token = %record.id, by = %access.principal.token_id, "personal token issued");
    Ok((record, credential))
}

async fn list_tokens(
    access: Access,
    Path((_, user)): Path<(String, String)>,
    page: PageRequest,
) -> Result<Paged<TokenView>> {
    access.require(Action::ManageAccess)?;
    let after: Option<(i64, String)> = page.after(ListRoute::UserTokens)?;
    let after = after.as_ref().map(|(time, id)| (*time, id.as_str()));
    let rows = access
        .tenant()
        .user_tokens(email(&user)?.as_str(), after, page.fetch())
        .await?;
    Ok(page
        .answer(ListRoute::UserTokens, rows, |t| {
            (t.created_at, t.id.clone())
        })
        .map())
}

async fn revoke_token(
    State(state): State<AppState>,
    access: Access,
    Path((_, user, id)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    revoke_user_token(&state, &access, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a personal token of `user` (org admins; idempotent): the token `DELETE`, and
/// the console's revoke button.
pub(crate) async fn revoke_user_token(
    state: &AppState,
    access: &Access,
    user: &str,
    id: &str,
) -> Result<()> {
    access.require(Action::ManageAccess)?;
    access
        .tenant()
        .revoke_user_token(email(user)?.as_str(), id, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, token = %id, by = %access.principal.token_id, "personal token revoked");
    Ok(())
}

/// A binding in requests: no workspace = the org, a workspace = it, both = an environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingBody {
    email: Email,
    role: Role,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    workspace: Option<Slug>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    environment: Option<Slug>,
}

impl BindingBody {
    fn scope(&self) -> Result<Scope> {
        let scope = match (&self.workspace, &self.environment) {
            (None, None) => Scope::Org,
            (Some(ws), None) => Scope::Workspace(ws.to_string()),
            (Some(ws), Some(env)) => Scope::Environment(ws.to_string(), env.to_string()),
            (None, Some(_)) => {
                return Err(ApiError::BadRequest(
                    "an environment binding needs its workspace too".into(),
                ));
            }
        };
        if scope.level() != self.role.level() {
            return Err(ApiError::BadRequest(format!(
                "{} is bound on {}: give {}",
                self.role,
                match self.role {
                    Role::Admin => "an org",
                    Role::Operator => "a workspace",
                    Role::Viewer => "an environment",
                },
                match self.role {
                    Role::Admin => "neither workspace nor environment",
                    Role::Operator => "a workspace and no environment",
                    Role::Viewer => "a workspace and an environment",
                }
            )));
        }
        Ok(scope)
    }
}

#[derive(Debug, Serialize)]
struct BindingView {
    id: String,
    email: String,
    role: Role,
    scope: String,
    workspace: Option<String>,
    environment: Option<String>,
    created_at: String,
    /// Whether the binding takes effect now (tier gating at use).
    active: bool,
    /// Why it does not (only when inactive).
    #[serde(skip_serializing_if = "Option::is_none")]
    inactive: Option<Inactive>,
    /// The entitlement it waits for (only when inactive).
    #[serde(skip_serializing_if = "Option::is_none")]
    required_entitlement: Option<&'static str>,
}

impl BindingView {
    /// The view of `b` in `org` whose license entitles `entitlements` now.
    fn new(org: &str, b: BindingRecord, entitlements: &EntitlementSet) -> Self {
        let binding = Binding {
            role: b.role,
            scope: b.scope(),
        };
        let inactive = binding.inactive(entitlements);
        let scope = match &binding.scope {
            Scope::Org => format!("org/{org}"),
            Scope::Workspace(ws) => format!("workspace/{org}/{ws}"),
            Scope::Environment(ws, env) => format!("env/{org}/{ws}/{env}"),
        };
        Self {
            id: b.id,
            email: b.email,
            role: b.role,
            scope,
            workspace: b.workspace,
            environment: b.environment,
            created_at: to_rfc3339(b.created_at),
            active: inactive.is_none(),
            inactive,
            required_entitlement: inactive.and(binding.required_entitlement()),
        }
    }
}

async fn grant(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<BindingBody>,
) -> Result<(StatusCode, axum::Json<BindingView>)> {
    let record = grant_binding(&state, &access, &body).await?;
    let license = access.tenant().license_if_any().await?;
    let entitlements = entitlements_at(license.as_ref(), state.now());
    Ok((
        StatusCode::CREATED,
        axum::Json(BindingView::new(&access.org.slug, record, &entitlements)),
    ))
}

/// Grants a role binding (org admins): the binding `POST`, and the console's form.
pub(crate) async fn grant_binding(
    state: &AppState,
    access: &Access,
    body: &BindingBody,
) -> Result<BindingRecord> {
    access.require(Action::ManageAccess)?;
    let scope = body.scope()?;
    let tenant = access.tenant();
    // The same rule as at use (`Binding::inactive`), refused early: a binding that would be
    // inert from the start is almost certainly a mistake.
    let binding = Binding {
        role: body.role,
        scope: scope.clone(),
    };
    if let Some(needed) = binding.required_entitlement() {
        let entitlements = entitlements_at(tenant.license_if_any().await?.as_ref(), state.now());
        if binding.inactive(&entitlements).is_some() {
            return Err(ApiError::EntitlementRequired(format!(
                "a {} binding needs the entitlement {needed}, which the organization's license \
                 does not include",
                body.role
            )));
        }
    }
    let spec = BindingSpec {
        email: body.email.as_str(),
        role: body.role,
        scope: &scope,
    };
    let record = tenant.create_binding(&spec, state.now()).await?;
    tracing::info!(org = %access.org.slug, role = %record.role, by = %access.principal.token_id, "role granted");
    Ok(record)
}

/// Lists the org's bindings, each with whether the org's license entitles it now.
async fn list_bindings(
    State(state): State<AppState>,
    access: Access,
    page: PageRequest,
) -> Result<Paged<BindingView>> {
    access.require(Action::ManageAccess)?;
    let license = access.tenant().license_if_any().await?;
    let entitlements = entitlements_at(license.as_ref(), state.now());
    let after: Option<(String, i64, String)> = page.after(ListRoute::Bindings)?;
    let after = after
        .as_ref()
        .map(|(email, time, id)| (email.as_str(), *time, id.as_str()));
    let rows = access.tenant().bindings_after(after, page.fetch()).await?;
    Ok(page
        .answer(ListRoute::Bindings, rows, |b| {
            (b.email.clone(), b.created_at, b.id.clone())
        })
        .filter_map(|b| Some(BindingView::new(&access.org.slug, b, &entitlements))))
}

async fn revoke_binding(
    State(state): State<AppState>,
    access: Access,
    query: Result<Query<BindingBody>, QueryRejection>,
) -> Result<StatusCode> {
    let Query(body) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    revoke_binding_of(&state, &access, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a role binding (org admins): the binding `DELETE`, and the console's button.
pub(crate) async fn revoke_binding_of(
    state: &AppState,
    access: &Access,
    body: &BindingBody,
) -> Result<()> {
    access.require(Action::ManageAccess)?;
    let scope = body.scope()?;
    let spec = BindingSpec {
        email: body.email.as_str(),
        role: body.role,
        scope: &scope,
    };
    access.tenant().delete_binding(&spec, state.now()).await?;
    tracing::info!(org = %access.org.slug, role = %body.role, by = %access.principal.token_id, "role revoked");
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Impersonate {
    org: Slug,
    minutes: Integer<i64>,
    reason: String,
}

#[derive(Debug, Serialize)]
struct ImpersonationView {
    id: String,
    org: String,
    reason: String,
    expires_at: String,
    token: String,
}

/// A global admin asks to act inside one org as its admin for at most an hour; the token
/// and every request made with it are logged with the admin's token id.
async fn impersonate(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    ApiJson(body): ApiJson<Impersonate>,
) -> Result<(StatusCode, axum::Json<ImpersonationView>)> {
    principal.require_global()?;
    if !(1..=MAX_IMPERSONATION_MINUTES).contains(&body.minutes.0) {
        return Err(ApiError::BadRequest(format!(
            "minutes must be 1-{MAX_IMPERSONATION_MINUTES}"
        )));
    }
    let reason = printable("reason", &body.reason, 500)?;
    let org = state.store.org_by_slug(body.org.as_str()).await?;
    let credential = Credential::generate(CredentialKind::ApiToken).map_err(ApiError::internal)?;
    let now = state.now();
    let expires_at = now + body.minutes.0 * 60;
    let record = state
        .store
        .tenant(&org.id)
        .acting(&actor)
        .insert_impersonation(
            &NewImpersonation {
                impersonator_id: &principal.token_id,
                reason: &reason,
                hash: &credential.hash().to_hex(),
                prefix: credential.display_prefix(),
                expires_at,
            },
            now,
        )
        .await?;
    tracing::warn!(
        admin_token = %principal.token_id,
        impersonation_token = %record.id,
        org = %org.slug,
        expires_at = %to_rfc3339(expires_at),
        reason = %reason,
        "a global admin now acts inside an organization as its admin"
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(ImpersonationView {
            id: record.id,
            org: org.slug,
            reason,
            expires_at: to_rfc3339(expires_at),
            token: credential.expose().to_owned(),
        }),
    ))
}
