//! Fleet: workspaces › environments › gateways. The fleet page lists the workspaces and
//! environments the caller may see; an environment's page lists its live gateways with
//! their health, filtered and a page at a time, and registers (the credential shown once)
//! and revokes them. Every action asks [`Access`] what the matching API route asks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::ConsoleError;
use super::extract::{Form, Query};
use super::health::Health;
use super::session::SignedIn;
use super::view::{self, Frame, Section, csrf_field};
use crate::domain::Slug;
use crate::domain::rbac::Action;
use crate::http::api::prepare_gateway;
use crate::http::authorize::Access;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::infra::store::{GatewayRecord, TokenTimeFilter};

/// Workspaces per fleet page.
const WORKSPACES_PER_PAGE: i64 = 50;
/// Environments listed under each workspace.
const ENVIRONMENTS_PER_WORKSPACE: i64 = 200;
/// Gateways per environment page.
const GATEWAYS_PER_PAGE: i64 = 50;

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// `?after=` of the fleet page: the last workspace slug of the previous page.
#[derive(Debug, Deserialize)]
pub(crate) struct FleetQuery {
    #[serde(default)]
    after: Option<String>,
}

/// `GET /console/orgs/{org}/fleet`.
pub(crate) async fn fleet(
    signed_in: SignedIn,
    access: Access,
    Query(query): Query<FleetQuery>,
) -> Result<Markup> {
    let tenant = access.tenant();
    let after = query.after.unwrap_or_default();
    let mut workspaces = tenant.workspaces(&after, WORKSPACES_PER_PAGE + 1).await?;
    let next = (workspaces.len() as i64 > WORKSPACES_PER_PAGE).then(|| {
        workspaces.truncate(WORKSPACES_PER_PAGE as usize);
        workspaces.last().map(|ws| ws.slug.clone())
    });
    let mut tree = Vec::new();
    for ws in workspaces {
        if !access.allows(Action::SeeWorkspace(&ws.slug)) {
            continue;
        }
        let envs = tenant
            .environments(&ws.slug, "", ENVIRONMENTS_PER_WORKSPACE)
            .await?
            .into_iter()
            .filter(|env| access.allows(Action::ReadEnvironment(&ws.slug, &env.slug)))
            .map(|env| env.slug)
            .collect::<Vec<_>>();
        tree.push((ws.slug, envs));
    }
    let org = access.org.slug.as_str();
    let manage = access.allows(Action::ManageStructure);
    let csrf = signed_in.csrf.as_str();
    let body = html! {
        h1 { "Fleet of " (org) }
        @if manage {
            form class="inline" method="post" action={ "/console/orgs/" (org) "/workspaces" } {
                (csrf_field(csrf))
                label for="new-workspace" { "New workspace" }
                input id="new-workspace" name="slug" required pattern="[a-z0-9][a-z0-9-]*"
                    autocomplete="off";
                button type="submit" { "Create workspace" }
            }
        }
        @if tree.is_empty() {
            p { "No workspaces you may see." }
        }
        @for (ws, envs) in &tree {
            section class="workspace" aria-labelledby={ "ws-" (ws) } {
                h2 id={ "ws-" (ws) } { "Workspace " (ws) }
                @if envs.is_empty() {
                    p { "No environments you may see." }
                } @else {
                    ul class="environments" {
                        @for env in envs {
                            li {
                                a href={ "/console/orgs/" (org) "/workspaces/" (ws) "/environments/" (env) } {
                                    (ws) " › " (env)
                                }
                            }
                        }
                    }
                }
                @if manage {
                    form class="inline" method="post"
                        action={ "/console/orgs/" (org) "/workspaces/" (ws) "/environments" } {
                        (csrf_field(csrf))
                        label for={ "new-env-" (ws) } { "New environment in " (ws) }
                        input id={ "new-env-" (ws) } name="slug" required
                            pattern="[a-z0-9][a-z0-9-]*" autocomplete="off";
                        button type="submit" { "Create environment" }
                    }
                }
            }
        }
        @if let Some(Some(after)) = next {
            nav aria-label="Pages" {
                a href={ "/console/orgs/" (org) "/fleet?after=" (after) } { "Next workspaces" }
            }
        }
    };
    let frame = Frame::org(&signed_in, &access, Section::Fleet);
    Ok(view::page(frame, "Fleet", body))
}

/// A form naming a slug.
#[derive(Debug, Deserialize)]
pub(crate) struct SlugForm {
    #[serde(default)]
    slug: String,
}

/// `POST /console/orgs/{org}/workspaces`.
pub(crate) async fn create_workspace(
    State(state): State<AppState>,
    access: Access,
    Form(form): Form<SlugForm>,
) -> Result<Redirect> {
    access.require(Action::ManageStructure)?;
    let slug = Slug::parse(form.slug.trim())?;
    access.tenant().create_workspace(&slug, state.now()).await?;
    Ok(Redirect::to(&format!(
        "/console/orgs/{}/fleet",
        access.org.slug
    )))
}

/// `POST /console/orgs/{org}/workspaces/{ws}/environments`.
pub(crate) async fn create_environment(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws)): Path<(String, String)>,
    Form(form): Form<SlugForm>,
) -> Result<Redirect> {
    access.require(Action::ManageStructure)?;
    let slug = Slug::parse(form.slug.trim())?;
    access
        .tenant()
        .create_environment(&ws, &slug, state.now())
        .await?;
    Ok(Redirect::to(&format!(
        "/console/orgs/{}/fleet",
        access.org.slug
    )))
}

/// `?health=&after=` of an environment's page.
#[derive(Debug, Deserialize)]
pub(crate) struct GatewaysQuery {
    #[serde(default)]
    health: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

/// A page cursor: the last gateway's creation time and id.
fn parse_cursor(text: &str) -> Result<(i64, String)> {
    text.split_once('.')
        .and_then(|(time, id)| Some((time.parse().ok()?, id.to_owned())))
        .ok_or_else(|| ApiError::BadRequest("invalid page cursor".into()).into())
}

/// `GET /console/orgs/{org}/workspaces/{ws}/environments/{env}`.
pub(crate) async fn environment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    Query(query): Query<GatewaysQuery>,
) -> Result<Markup> {
    access.require(Action::ReadEnvironment(&ws, &env))?;
    let now = state.now();
    let health = match query.health.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(key) => Some(
            Health::parse(key)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown health filter {key:?}")))?,
        ),
    };
    let filter = match health.map(|h| h.window(now)) {
        None => TokenTimeFilter::Any,
        Some(None) => TokenTimeFilter::Never,
        Some(Some((from, before))) => TokenTimeFilter::Between(from, before),
    };
    let after = query.after.as_deref().map(parse_cursor).transpose()?;
    let mut gateways = access
        .tenant()
        .fleet_gateways(
            &ws,
            &env,
            filter,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            GATEWAYS_PER_PAGE + 1,
        )
        .await?;
    let more = gateways.len() as i64 > GATEWAYS_PER_PAGE;
    gateways.truncate(GATEWAYS_PER_PAGE as usize);
    let manage = access.allows(Action::ManageGateways(&ws, &env));
    let here = format!(
        "/console/orgs/{}/workspaces/{ws}/environments/{env}",
        access.org.slug
    );
    let next = more.then(|| gateways.last()).flatten().map(|last| {
        let health = health.map(Health::key).unwrap_or_default();
        format!(
            "{here}?health={health}&after={}.{}",
            last.created_at, last.id
        )
    });
    let body = html! {
        h1 { "Gateways of " (ws) " › " (env) }
        @if manage {
            (register_form(&here, &signed_in.csrf))
        }
        form class="inline" method="get" action=(here) {
            label for="health" { "Health" }
            select id="health" name="health" {
                option value="" selected[health.is_none()] { "any" }
                @for h in Health::ALL {
                    option value=(h.key()) selected[health == Some(h)] { (h.label()) }
                }
            }
            button type="submit" { "Filter" }
        }
        (gateway_table(&gateways, now, manage.then_some((&here, signed_in.csrf.as_str()))))
        @if let Some(next) = next {
            nav aria-label="Pages" { a href=(next) { "Next gateways" } }
        }
    };
    let frame = Frame::org(&signed_in, &access, Section::Fleet);
    Ok(view::page(frame, "Gateways", body))
}

fn register_form(here: &str, csrf: &str) -> Markup {
    html! {
        form class="inline" method="post" action={ (here) "/gateways" } {
            (csrf_field(csrf))
            label for="gateway-name" { "New gateway name" }
            input id="gateway-name" name="name" required maxlength="200" autocomplete="off";
            button type="submit" { "Register gateway" }
        }
    }
}

/// The gateways as a table; with `revoke` (the page's path and the CSRF token), a revoke
/// button on each row.
fn gateway_table(gateways: &[GatewayRecord], now: i64, revoke: Option<(&String, &str)>) -> Markup {
    html! {
        @if gateways.is_empty() {
            p { "No gateways match." }
        } @else {
            div class="scroll" {
                table {
                    caption { "Live gateways, oldest first" }
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Id" }
                            th scope="col" { "Credential" }
                            th scope="col" { "Last token" }
                            th scope="col" { "Health" }
                            @if revoke.is_some() { th scope="col" { "Actions" } }
                        }
                    }
                    tbody {
                        @for gw in gateways {
                            @let health = Health::of(gw.last_token_at, now);
                            tr {
                                td { (gw.name) }
                                td { code { (gw.id) } }
                                td { code { (gw.credential_prefix) "…" } }
                                td { (gw.last_token_at.map(view::time).unwrap_or_else(|| "never".into())) }
                                td { span class={ "health " (health.key()) } { (health.label()) } }
                                @if let Some((here, csrf)) = revoke {
                                    td {
                                        form method="post" action={ (here) "/gateways/" (gw.id) "/revoke" } {
                                            (csrf_field(csrf))
                                            button type="submit" class="danger"
                                                aria-label={ "Revoke gateway " (gw.name) } { "Revoke" }
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
}

/// The register form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    name: String,
}

/// `POST …/environments/{env}/gateways`: registers a gateway and shows its credential this
/// once (the page is `no-store`, and the credential is in no URL).
pub(crate) async fn register_gateway(
    State(state): State<AppState>,
    signed_in: SignedIn,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    Form(form): Form<RegisterForm>,
) -> Result<Response> {
    access.require(Action::ManageGateways(&ws, &env))?;
    let (gateway, credential) = prepare_gateway(form.name.trim())?;
    let record = access
        .tenant()
        .register_gateways(&ws, &env, &[gateway], state.now())
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("registration returned no gateway")))?;
    tracing::info!(org = %access.org.slug, gateway = %record.id, "gateway registered (console)");
    let here = format!(
        "/console/orgs/{}/workspaces/{ws}/environments/{env}",
        access.org.slug
    );
    let body = html! {
        h1 { "Gateway " (record.name) " registered" }
        div class="secret" role="status" {
            p { "Its credential is shown this once. Copy it into the gateway's configuration now; it cannot be shown again." }
            label for="credential" { "Credential of " (record.name) }
            input id="credential" type="text" readonly value=(credential.expose())
                class="credential" spellcheck="false" autocomplete="off";
            button type="button" class="copy" data-copy="credential" hidden { "Copy" }
        }
        p { "Gateway id: " code { (record.id) } }
        p { a href=(here) { "Back to " (ws) " › " (env) } }
    };
    let frame = Frame::org(&signed_in, &access, Section::Fleet);
    Ok((
        StatusCode::CREATED,
        view::page(frame, "Gateway registered", body),
    )
        .into_response())
}

/// `POST …/gateways/{id}/revoke`.
pub(crate) async fn revoke_gateway(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env, id)): Path<(String, String, String, String)>,
) -> Result<Redirect> {
    access.require(Action::ManageGateways(&ws, &env))?;
    let record = access
        .tenant()
        .revoke_gateway(&ws, &env, &id, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, gateway = %record.id, "gateway revoked (console)");
    Ok(Redirect::to(&format!(
        "/console/orgs/{}/workspaces/{ws}/environments/{env}",
        access.org.slug
    )))
}
