//! Access: an org's role bindings (grant, revoke) and its users' personal tokens (issue,
//! shown once; list by user; revoke). Every action is the API's own function
//! ([`crate::http::api::rbac`]) behind the same [`Action::ManageAccess`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ConsoleError;
use super::extract::{Form, Query};
use super::session::SignedIn;
use super::view::{self, Frame, Section, csrf_field};
use crate::domain::rbac::{Action, Email};
use crate::http::api::rbac::{
    BindingBody, grant_binding, issue_user_token, revoke_binding_of, revoke_user_token,
};
use crate::http::authorize::Access;
use crate::http::error::ApiError;
use crate::http::state::AppState;

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// Bindings listed per page.
const BINDINGS_PER_PAGE: i64 = 200;
/// Tokens listed for one user.
const TOKENS_LISTED: i64 = 200;

/// `?tokens_of=` of the access page: whose personal tokens to list.
#[derive(Debug, Deserialize)]
pub(crate) struct AccessQuery {
    #[serde(default)]
    tokens_of: Option<String>,
}

/// `GET /console/orgs/{org}/access`.
pub(crate) async fn access_page(
    signed_in: SignedIn,
    access: Access,
    Query(query): Query<AccessQuery>,
) -> Result<Markup> {
    access.require(Action::ManageAccess)?;
    let tenant = access.tenant();
    let bindings = tenant.bindings_after(None, BINDINGS_PER_PAGE).await?;
    let tokens_of = query
        .tokens_of
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let tokens = match &tokens_of {
        Some(user) => {
            let user = Email::parse(user).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Some(
                tenant
                    .user_tokens(user.as_str(), None, TOKENS_LISTED)
                    .await?,
            )
        }
        None => None,
    };
    let org = access.org.slug.as_str();
    let here = format!("/console/orgs/{org}/access");
    let csrf = signed_in.csrf.as_str();
    let body = html! {
        h1 { "Access to " (org) }
        section aria-labelledby="bindings-h" {
            h2 id="bindings-h" { "Role bindings" }
            form class="stack" method="post" action={ (here) "/bindings" } {
                (csrf_field(csrf))
                label for="grant-email" { "Email" }
                input id="grant-email" name="email" type="email" required autocomplete="off";
                label for="grant-role" { "Role" }
                select id="grant-role" name="role" {
                    option value="admin" { "admin (the org)" }
                    option value="operator" { "operator (a workspace)" }
                    option value="viewer" { "viewer (an environment)" }
                }
                label for="grant-ws" { "Workspace (operator, viewer)" }
                input id="grant-ws" name="workspace" autocomplete="off";
                label for="grant-env" { "Environment (viewer)" }
                input id="grant-env" name="environment" autocomplete="off";
                button type="submit" { "Grant role" }
            }
            @if bindings.is_empty() {
                p { "No role bindings." }
            } @else {
                div class="scroll" {
                    table {
                        caption { "Bindings by email" }
                        thead { tr {
                            th scope="col" { "Email" } th scope="col" { "Role" }
                            th scope="col" { "Scope" } th scope="col" { "Granted" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for b in &bindings {
                                tr {
                                    td { (b.email) }
                                    td { (b.role) }
                                    td { (scope_text(b.workspace.as_deref(), b.environment.as_deref())) }
                                    td { (view::time(b.created_at)) }
                                    td {
                                        form method="post" action={ (here) "/bindings/revoke" } {
                                            (csrf_field(csrf))
                                            input type="hidden" name="email" value=(b.email);
                                            input type="hidden" name="role" value=(b.role);
                                            input type="hidden" name="workspace" value=(b.workspace.as_deref().unwrap_or_default());
                                            input type="hidden" name="environment" value=(b.environment.as_deref().unwrap_or_default());
                                            button type="submit" class="danger"
                                                aria-label={ "Revoke " (b.role) " of " (b.email) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="tokens-h" {
            h2 id="tokens-h" { "Personal tokens" }
            form class="stack" method="post" action={ (here) "/tokens" } {
                (csrf_field(csrf))
                label for="token-email" { "Email" }
                input id="token-email" name="email" type="email" required autocomplete="off";
                label for="token-name" { "Token name" }
                input id="token-name" name="name" maxlength="200" autocomplete="off" placeholder="personal";
                button type="submit" { "Issue token" }
            }
            form class="inline" method="get" action=(here) {
                label for="tokens-of" { "List the tokens of" }
                input id="tokens-of" name="tokens_of" type="email" value=[tokens_of.as_deref()] autocomplete="off";
                button type="submit" { "List tokens" }
            }
            @if let (Some(user), Some(tokens)) = (&tokens_of, &tokens) {
                @if tokens.is_empty() {
                    p { "No tokens of " (user) "." }
                } @else {
                    table {
                        caption { "Tokens of " (user) }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Prefix" }
                            th scope="col" { "Issued" } th scope="col" { "State" }
                        } }
                        tbody {
                            @for t in tokens {
                                tr {
                                    td { (t.name) }
                                    td { code { (t.token_prefix) "…" } }
                                    td { (view::time(t.created_at)) }
                                    td {
                                        @if let Some(at) = t.revoked_at {
                                            "revoked " (view::time(at))
                                        } @else {
                                            form method="post" action={ (here) "/tokens/revoke" } {
                                                (csrf_field(csrf))
                                                input type="hidden" name="email" value=(t.email);
                                                input type="hidden" name="id" value=(t.id);
                                                button type="submit" class="danger"
                                                    aria-label={ "Revoke token " (t.name) } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let frame = Frame::org(&signed_in, &access, Section::Access);
    Ok(view::page(frame, "Access", body))
}

fn scope_text(workspace: Option<&str>, environment: Option<&str>) -> String {
    match (workspace, environment) {
        (None, _) => "the org".to_owned(),
        (Some(ws), None) => format!("workspace {ws}"),
        (Some(ws), Some(env)) => format!("environment {ws} › {env}"),
    }
}

/// A binding form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct BindingForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    environment: String,
}

impl BindingForm {
    /// The API's binding body: an empty workspace or environment is none.
    fn body(&self) -> Result<BindingBody> {
        let mut value = json!({ "email": self.email.trim(), "role": self.role });
        for (key, text) in [
            ("workspace", &self.workspace),
            ("environment", &self.environment),
        ] {
            if !text.trim().is_empty() {
                value[key] = Value::from(text.trim());
            }
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::BadRequest(format!("invalid form: {e}")).into())
    }
}

fn back(access: &Access) -> Redirect {
    Redirect::to(&format!("/console/orgs/{}/access", access.org.slug))
}

/// `POST …/access/bindings`.
pub(crate) async fn grant(
    State(state): State<AppState>,
    access: Access,
    Form(form): Form<BindingForm>,
) -> Result<Redirect> {
    grant_binding(&state, &access, &form.body()?).await?;
    Ok(back(&access))
}

/// `POST …/access/bindings/revoke`.
pub(crate) async fn revoke_binding(
    State(state): State<AppState>,
    access: Access,
    Form(form): Form<BindingForm>,
) -> Result<Redirect> {
    revoke_binding_of(&state, &access, &form.body()?).await?;
    Ok(back(&access))
}

/// The issue form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct IssueForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

/// `POST …/access/tokens`: issues a personal token and shows it this once.
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    signed_in: SignedIn,
    access: Access,
    Form(form): Form<IssueForm>,
) -> Result<Response> {
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    let (record, credential) = issue_user_token(&state, &access, form.email.trim(), name).await?;
    let body = html! {
        h1 { "Token issued to " (record.email) }
        div class="secret" role="status" {
            p { "The token is shown this once. Hand it to " (record.email) " now; it cannot be shown again." }
            label for="credential" { "Personal token " (record.name) }
            input id="credential" type="text" readonly value=(credential.expose())
                class="credential" spellcheck="false" autocomplete="off";
            button type="button" class="copy" data-copy="credential" hidden { "Copy" }
        }
        p { a href={ "/console/orgs/" (access.org.slug) "/access" } { "Back to access" } }
    };
    let frame = Frame::org(&signed_in, &access, Section::Access);
    Ok((StatusCode::CREATED, view::page(frame, "Token issued", body)).into_response())
}

/// The token revoke form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct RevokeTokenForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    id: String,
}

/// `POST …/access/tokens/revoke`.
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    access: Access,
    Form(form): Form<RevokeTokenForm>,
) -> Result<Redirect> {
    revoke_user_token(&state, &access, &form.email, &form.id).await?;
    Ok(Redirect::to(&format!(
        "/console/orgs/{}/access?tokens_of={}",
        access.org.slug,
        super::audit::encode(&form.email)
    )))
}
