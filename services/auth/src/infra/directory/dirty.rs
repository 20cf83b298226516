//! Which orgs the directory cannot answer for until they are read again.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::infra::store::GrantScope;

/// The first and the longest wait before an org (or a full load) that failed is read again.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Orgs whose entries may be stale, with the generation of their last change and what it
/// changed.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    pub(super) generation: u64,
    /// Everything is stale since this generation (`None`: no full load is pending).
    pub(super) all: Option<u64>,
    pub(super) orgs: HashMap<String, Mark>,
    /// Orgs (and `""` for the full load) whose last read failed: when to try again, and the
    /// wait after that.
    pub(super) retry: HashMap<String, (Instant, Duration)>,
}

/// One dirty org: its last change's generation, and what changed since it was last read
/// (a change to its gateways is not undone by a later change to its license).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) generation: u64,
    pub(super) scope: GrantScope,
}

impl Dirty {
    pub(super) fn is_clean(&self) -> bool {
        self.all.is_none() && self.orgs.is_empty()
    }

    /// Marks `org` changed in `scope` at the current generation.
    pub(super) fn mark(&mut self, org: &str, scope: GrantScope) {
        let generation = self.generation;
        match self.orgs.get_mut(org) {
            Some(mark) => {
                mark.generation = generation;
                mark.scope = mark.scope.and(scope);
            }
            None => {
                self.orgs.insert(org.to_owned(), Mark { generation, scope });
            }
        }
    }

    /// Notes a failed read of `key` (an org id, or `""` for a full load): retried after a
    /// wait that doubles up to [`MAX_BACKOFF`].
    pub(super) fn failed(&mut self, key: &str) {
        let wait = self
            .retry
            .get(key)
            .map_or(FIRST_BACKOFF, |(_, wait)| (*wait * 2).min(MAX_BACKOFF));
        self.retry
            .insert(key.to_owned(), (Instant::now() + wait, wait));
    }

    pub(super) fn ready(&self, key: &str, now: Instant) -> bool {
        self.retry.get(key).is_none_or(|(at, _)| *at <= now)
    }

    /// The earliest retry still waiting.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retry.values().map(|(at, _)| *at).min()
    }
}
