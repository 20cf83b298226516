//! The page frame and the pieces every page shares. HTML is written with maud, which
//! escapes every interpolated value; nothing here builds markup from strings.

use maud::{DOCTYPE, Markup, html};

use super::session::SignedIn;
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::ApiError;
use crate::http::extract::Principal;

/// Which part of the console a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// The vendor's org list.
    Orgs,
    /// One org's overview.
    Overview,
    /// Workspaces, environments and gateways.
    Fleet,
    /// The audit chain.
    Audit,
    /// Role bindings and personal tokens.
    Access,
    /// The vendor's keys and trust.
    Keys,
}

/// What the frame of a signed-in page needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// The session.
    pub(crate) signed_in: &'a SignedIn,
    /// The org the page is about, if any.
    pub(crate) org: Option<&'a str>,
    /// The section to highlight.
    pub(crate) section: Section,
    /// Whether the caller may manage the org's access (the Access link).
    pub(crate) manage_access: bool,
}

impl<'a> Frame<'a> {
    /// The frame of a page about `access`'s org: the org's sections, as far as the caller
    /// may use them.
    pub(crate) fn org(signed_in: &'a SignedIn, access: &'a Access, section: Section) -> Self {
        Self {
            signed_in,
            org: Some(&access.org.slug),
            section,
            manage_access: access.allows(Action::ManageAccess),
        }
    }
}

/// Where a principal lands after signing in: the org list, which sends a single-org
/// caller on to their org.
pub(crate) fn home_of(_principal: &Principal) -> String {
    "/console/orgs".to_owned()
}

fn head(title: &str) -> Markup {
    head_moving_to(title, None)
}

/// The head of a page; with `to`, one that moves on to `to` at once (a meta refresh).
fn head_moving_to(title: &str, to: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            @if let Some(to) = to {
                meta http-equiv="refresh" content={ "0;url=" (to) };
            }
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            title { (title) " · MCPG console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page outside a session (sign-in, refusals).
pub(crate) fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main id="main" class="narrow" { (content) }
            }
        }
    }
}

/// A page outside a session that moves on to `to` at once (and says so, with a link).
pub(crate) fn moving_page(title: &str, to: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head_moving_to(title, Some(to)))
            body {
                main id="main" class="narrow" { (content) }
            }
        }
    }
}

/// A signed-in page: navigation, sign-out, and `content`.
pub(crate) fn page(frame: Frame<'_>, title: &str, content: Markup) -> Markup {
    let current = |section: Section| (frame.section == section).then_some("page");
    let principal = &frame.signed_in.principal;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    nav aria-label="Console" {
                        ul {
                            @if principal.is_global() {
                                li { a href="/console/orgs" aria-current=[current(Section::Orgs)] { "Orgs" } }
                                li { a href="/console/keys" aria-current=[current(Section::Keys)] { "Keys" } }
                            }
                            @if let Some(org) = frame.org {
                                li { a href={ "/console/orgs/" (org) } aria-current=[current(Section::Overview)] { "Overview" } }
                                li { a href={ "/console/orgs/" (org) "/fleet" } aria-current=[current(Section::Fleet)] { "Fleet" } }
                                li { a href={ "/console/orgs/" (org) "/audit" } aria-current=[current(Section::Audit)] { "Audit" } }
                                @if frame.manage_access {
                                    li { a href={ "/console/orgs/" (org) "/access" } aria-current=[current(Section::Access)] { "Access" } }
                                }
                            }
                        }
                    }
                    form class="sign-out" method="post" action="/console/sign-out" {
                        (csrf_field(&frame.signed_in.csrf))
                        span class="who" { (principal.audit_id()) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" { (content) }
            }
        }
    }
}

/// The hidden CSRF field every form of a session carries.
pub(crate) fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// An error in words, with the API's stable code.
pub(crate) fn refusal(error: &ApiError) -> Markup {
    let (status, code) = error.status_and_code();
    html! {
        div class="refusal" role="alert" {
            p {
                (error.to_string())
            }
            p class="code" {
                "Error code " code { (code) } " (HTTP " (status.as_u16()) ")"
            }
        }
    }
}

/// A Unix time as RFC 3339 (UTC), as the API writes it.
pub(crate) fn time(unix: i64) -> String {
    mcpg_license_core::clock::to_rfc3339(unix)
}
