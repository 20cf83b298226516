//! Tier-0 mode: free plugins only, and no network I/O at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcpg_entitlements::{
    FederationClient, FetchFuture, GatewayBuilder, ModeSettings, Reason, Settings, State,
};
use mcpg_license_core::{ManualClock, Tier, TrustStore};
use secrecy::SecretString;

use crate::support::*;

/// A client that counts calls (and would fail the test by being called at all).
#[derive(Default)]
struct Tripwire {
    calls: AtomicUsize,
}

impl FederationClient for Tripwire {
    fn fetch_token<'a>(&'a self, _credential: &'a SecretString) -> FetchFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            Err(mcpg_entitlements::FetchError::Outage {
                cause: "tier0 must never fetch".into(),
                retry_after: None,
            })
        })
    }
}

#[tokio::test]
async fn tier0_allows_only_free_plugins_and_never_calls_the_federation() {
    let dir = temp_dir();
    let state_dir = dir.path().join("state");
    let clock = ManualClock::new(START);
    let tripwire = Arc::new(Tripwire::default());
    let gateway = GatewayBuilder::new(Settings {
        mode: ModeSettings::Tier0,
        state_dir: state_dir.clone(),
        trust: TrustStore::default(),
        revocation_list: None,
        more_tenants: Vec::new(),
    })
    .clock(Arc::new(clock.clone()))
    .client(tripwire.clone())
    .build()
    .expect("tier0 starts");

    let free = gateway.check(&acme(), "reliability.retry");
    assert_eq!(
        (free.allowed, free.state, free.tier),
        (true, State::Unlicensed, Tier::Free)
    );
    let paid = gateway.check_default("identity.oidc");
    assert_eq!((paid.allowed, paid.reason), (false, Reason::Tier0Only));
    assert_eq!(gateway.refresh_due().await, 0);
    assert!(gateway.refresh_now().await.is_err());
    let runner = tokio::spawn(gateway.clone().run(async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }));
    runner.await.expect("run loop ends");
    assert_eq!(tripwire.calls.load(Ordering::SeqCst), 0);
    assert!(!state_dir.exists(), "tier0 writes no state");
}
