//! Keys & trust (vendor): the signing keys and their certificates, the roots this service
//! chains to, the revocation list in force; and starting a key rotation. Global admins
//! only, like `/v1/admin/keys` and `/v1/admin/revocations`.

use axum::extract::State;
use axum::response::Redirect;
use maud::{Markup, html};

use super::error::ConsoleError;
use super::session::SignedIn;
use super::view::{self, Frame, Section, csrf_field};
use crate::http::api::admin::rotate_key;
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::infra::store::Actor;

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// `GET /console/keys`.
pub(crate) async fn keys(State(state): State<AppState>, signed_in: SignedIn) -> Result<Markup> {
    signed_in.principal.require_global()?;
    let keys = state.store.keys().await?;
    let revocations = match state.store.revocation_list().await? {
        None => None,
        // A stored list that no longer verifies is shown as such, not hidden.
        Some(stored) => Some(state.keyring.trust().verify_revocation_list(&stored.list)),
    };
    let body = html! {
        h1 { "Keys and trust" }
        section aria-labelledby="keys-h" {
            h2 id="keys-h" { "Signing keys" }
            div class="scroll" {
                table {
                    caption { "Keys, newest first" }
                    thead { tr {
                        th scope="col" { "Key id" } th scope="col" { "State" }
                        th scope="col" { "Signs from" } th scope="col" { "Certificate expires" }
                        th scope="col" { "Certificates" }
                    } }
                    tbody {
                        @for key in keys.iter().rev() {
                            tr {
                                td { code { (key.kid) } }
                                td { (key.state.as_str()) }
                                td { (view::time(key.activated_at.unwrap_or(key.activate_at))) }
                                td { (view::time(key.cert_expires_at)) }
                                td { (1 + key.more_certificates.len()) }
                            }
                        }
                    }
                }
            }
            form class="inline" method="post" action="/console/keys/rotate" {
                (csrf_field(&signed_in.csrf))
                button type="submit" { "Start a key rotation" }
                span class="hint" { "The new key is published at once and signs after the publish delay." }
            }
        }
        section aria-labelledby="roots-h" {
            h2 id="roots-h" { "Roots this service's keys chain to" }
            ul {
                @for kid in &state.info.root_kids {
                    li { code { (kid) } }
                }
            }
            p { "Gateways trust this service by pinning one of these roots." }
        }
        section aria-labelledby="revocations-h" {
            h2 id="revocations-h" { "Revocation list" }
            @match &revocations {
                None => p { "No revocation list uploaded." },
                Some(Ok(list)) => p {
                    "Serial " (list.serial) ", signed " (view::time(list.iat)) ": "
                    (list.certificates.len()) " certificates and "
                    (list.licenses.len()) " offline licenses revoked."
                },
                Some(Err(error)) => div class="refusal" role="alert" {
                    p { "The stored list no longer verifies: " (error.to_string()) }
                },
            }
        }
    };
    let frame = Frame {
        signed_in: &signed_in,
        org: None,
        section: Section::Keys,
        manage_access: false,
    };
    Ok(view::page(frame, "Keys and trust", body))
}

/// `POST /console/keys/rotate`: `POST /v1/admin/keys/rotate`.
pub(crate) async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
) -> Result<Redirect> {
    rotate_key(&state, &principal, &actor).await?;
    Ok(Redirect::to("/console/keys"))
}
