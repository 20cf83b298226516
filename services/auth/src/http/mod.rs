//! The HTTP face of the service: configuration and start-up, routes, extractors, access
//! resolution, errors as responses, middleware, shared state and the server loop. It
//! builds on `infra` and `domain`; nothing below imports it.

pub(crate) mod api;
pub(crate) mod authorize;
pub(crate) mod config;
pub(crate) mod console;
pub(crate) mod denials;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod layers;
pub(crate) mod maintenance;
pub(crate) mod page;
pub(crate) mod rate_headers;
pub(crate) mod ratelimit;
pub(crate) mod select;
pub(crate) mod startup;
pub(crate) mod state;
mod tasks;
pub(crate) mod tenants_status;
pub(crate) mod tenants_watch;
