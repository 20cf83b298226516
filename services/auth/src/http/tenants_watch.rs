//! Hot reload of `mcpg-auth serve --tenants FILE`.
//!
//! The file is polled (modification by content: SHA-256 of the bytes) rather than watched
//! with inotify: polling survives editors that save by writing a new file and renaming it
//! over the old one, ConfigMap symlink swaps and network file systems. A change is applied
//! once the same content is seen on two consecutive polls, so a file caught half-written
//! is not applied. An invalid document is logged with its line and the previous state is
//! kept; a valid one is reconciled and becomes the new generation.
//!
//! At start, a file that cannot be applied stops the start only while the database has
//! no org (a first start: there is no state to serve). Once it has one, that state is the
//! last good state: the replica logs the error, reports it in the status and the failure
//! metric, serves what the database holds, and applies the file when it changes — so a
//! bad file rolled out to every replica does not take them all down on their next
//! restart.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use mcpg_runtime::every::{FirstTick, every_with};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::domain::settings::TenantsFile;
use crate::domain::tenants_file::{
    ApplyOptions, ChangeAction, MAX_DOCUMENT_BYTES, Plan, TenantsDoc, TenantsError,
};
use crate::http::state::AppState;
use crate::infra::issuer::check_tenants_fit;
use crate::infra::store::Actor;
use crate::infra::store::ApplyError;

/// How long a document that could not be applied for a reason other than its content (a
/// conflict, the database) waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Reads at most one byte more than a document may have, so an oversized file is
/// refused without being read whole.
fn read(path: &Path) -> Result<(Vec<u8>, [u8; 32]), TenantsError> {
    let source = path.display().to_string();
    let cannot_read = |error: std::io::Error| {
        TenantsError::invalid(&source, None, format!("cannot read: {error}"))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(MAX_DOCUMENT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(cannot_read)?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(TenantsError::TooLarge(format!(
            "{source}: the file is larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let hash = Sha256::digest(&bytes).into();
    Ok((bytes, hash))
}

async fn apply(state: &AppState, file: &TenantsFile, bytes: &[u8]) -> Result<Plan, ApplyError> {
    let source = file.path.display().to_string();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| TenantsError::invalid(&source, None, "the file is not UTF-8 text"))?;
    let max_objects = state.info.tenants_max_objects;
    let doc = TenantsDoc::parse_bounded(&source, text, max_objects)?;
    check_tenants_fit(state.keyring.snapshot().as_deref(), &doc, state.now())?;
    let options = ApplyOptions {
        prune: file.prune,
        dry_run: false,
        max_objects,
    };
    // The audit chain names the file as the actor of what it changes.
    let actor = Actor {
        id: format!("tenants-file:{source}"),
        request_id: String::new(),
    };
    state
        .store
        .reconcile_tenants(&doc, options, &actor, state.now())
        .await
}

fn log_applied(file: &TenantsFile, plan: &Plan, generation: u64) {
    tracing::info!(
        file = %file.path.display(),
        generation,
        create = plan.count(ChangeAction::Create),
        update = plan.count(ChangeAction::Update),
        delete = plan.count(ChangeAction::Delete),
        keep = plan.count(ChangeAction::Keep),
        "tenants file applied"
    );
    for change in &plan.changes {
        tracing::info!(
            action = change.action.as_str(),
            path = %change.path,
            detail = %change.detail,
            "tenants change"
        );
    }
}

/// Applies the file once at start. Returns the hash of the applied content, or `None`
/// when the file was refused and the database's state is served instead (see the module
/// docs); an error stops the start (a first start, or a database that does not answer).
pub(crate) async fn apply_at_start(
    state: &AppState,
    file: &TenantsFile,
) -> anyhow::Result<Option<[u8; 32]>> {
    state.tenants.update(|view| {
        view.file = Some(file.path.display().to_string());
        view.prune = file.prune;
    });
    let refused = match read(&file.path) {
        Ok((bytes, hash)) => match apply(state, file, &bytes).await {
            Ok(plan) => {
                let generation = state.tenants.applied(&hash, &plan, state.now());
                log_applied(file, &plan, generation);
                return Ok(Some(hash));
            }
            Err(error) => error,
        },
        Err(error) => error.into(),
    };
    if matches!(refused, ApplyError::Store(_)) || state.store.list_orgs().await?.is_empty() {
        return Err(refused.into());
    }
    tracing::error!(
        error = %refused,
        "tenants file not applied at start; serving the state the database holds"
    );
    state.tenants.failed(&refused.to_string(), state.now());
    Ok(None)
}

/// Polls the file and applies each settled change.
/// `applied` is the hash applied at start (`None`: the file was refused at start, so its
/// current content is retried only once it changes).
pub(crate) fn spawn(
    state: AppState,
    file: TenantsFile,
    applied: Option<[u8; 32]>,
) -> JoinHandle<()> {
    let mut watch = Watch {
        applied: applied.unwrap_or([0; 32]),
        pending: None,
        failed: None,
    };
    if watch.applied == [0; 32]
        && let Ok((_, hash)) = read(&file.path)
    {
        // Refused at start: wait for a change rather than refusing it again.
        watch.failed = Some((hash, None));
    }
    let period = file.interval.max(Duration::from_millis(50));
    every_with(
        period,
        "tenants-file",
        FirstTick::Now,
        watch,
        move |watch| {
            let (state, file) = (state.clone(), file.clone());
            async move { watch.poll(&state, &file).await }
        },
    )
}

/// What the reloader remembers between two polls of the file.
struct Watch {
    /// The hash of the content applied last (zero: none).
    applied: [u8; 32],
    /// A changed content seen once: applied when the next poll sees it unchanged.
    pending: Option<[u8; 32]>,
    /// A content that failed, and when a retry is due (`None`: only once it changes).
    failed: Option<([u8; 32], Option<Instant>)>,
}

impl Watch {
    /// One poll: applies the file's content once it has settled and differs from what is
    /// applied, unless it failed and is not due for a retry.
    async fn poll(mut self, state: &AppState, file: &TenantsFile) -> Self {
        let (bytes, hash) = match read(&file.path) {
            Ok(read) => read,
            Err(error) => {
                // A save in progress can remove the file for a moment: report once.
                if self.failed.is_none_or(|(h, _)| h != [0; 32]) {
                    tracing::warn!(error = %error, "tenants file unreadable; keeping the current state");
                    state.tenants.failed(&error.to_string(), state.now());
                    self.failed = Some(([0; 32], None));
                }
                return self;
            }
        };
        if hash == self.applied {
            self.pending = None;
            return self;
        }
        if self.pending != Some(hash) {
            self.pending = Some(hash);
            return self;
        }
        if let Some((h, retry)) = self.failed
            && h == hash
            && retry.is_none_or(|at| at.elapsed() < RETRY_AFTER)
        {
            return self;
        }
        match apply(state, file, &bytes).await {
            Ok(plan) => {
                self.applied = hash;
                self.failed = None;
                let generation = state.tenants.applied(&hash, &plan, state.now());
                log_applied(file, &plan, generation);
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    "tenants file not applied; keeping the previous state"
                );
                state.tenants.failed(&error.to_string(), state.now());
                // A document that is invalid stays so until it changes; a conflict or a
                // database failure is retried.
                let retry = match error {
                    ApplyError::Refused(
                        TenantsError::Invalid { .. }
                        | TenantsError::Alias { .. }
                        | TenantsError::UnknownEntitlement(_)
                        | TenantsError::OutsideCertificateBounds(_)
                        | TenantsError::TooLarge(_),
                    ) => None,
                    _ => Some(Instant::now()),
                };
                self.failed = Some((hash, retry));
            }
        }
        self
    }
}
