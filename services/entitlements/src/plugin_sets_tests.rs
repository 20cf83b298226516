//! The decision table with and without a plugin set, and accepting served and persisted
//! sets.

use mcpg_license_core::{AUDIENCE, Catalog, Limits, PluginSetEntry, Tier, UnixTime};
use serde_json::json;

use super::*;
use crate::decision::{Reason, State};
use crate::entitlements::{Basis, PluginIndex, TenantEntitlements};

const IAT: UnixTime = 1_800_000_000;
const EXP: UnixTime = IAT + 86_400;
const GRC: UnixTime = EXP + 7 * 86_400;

fn set() -> PluginSet {
    let entry = |id: &str, config| PluginSetEntry {
        id: id.into(),
        config,
    };
    PluginSet::new(vec![
        entry("identity.oidc", json!({"issuer": "https://idp.test"})),
        entry("identity.apikey", Value::Null),
        entry("identity.saml", json!({"metadata": "x"})),
        entry("vendor.custom", json!({"k": 1})),
    ])
    .expect("valid set")
}

fn claims(with_set: bool) -> LicenseClaims {
    LicenseClaims {
        iss: "https://auth.test".into(),
        sub: "gw_1".into(),
        aud: AUDIENCE.into(),
        iat: IAT,
        nbf: IAT,
        exp: EXP,
        jti: "jti-1".into(),
        org: "acme".into(),
        ws: Some("platform".into()),
        env: Some("prod".into()),
        tier: Tier::Team,
        ent: Catalog::builtin().tier_defaults(Tier::Team),
        lim: Limits::default(),
        lic: "lic-1".into(),
        rfa: None,
        grc: Some(GRC),
        bind: None,
        ps: with_set.then(|| set().claim()),
    }
}

fn served(set: &PluginSet) -> Value {
    json!({"digest": set.digest(), "plugins": set})
}

fn federated(with_set: bool) -> TenantEntitlements {
    let catalog = Catalog::builtin();
    let claims = claims(with_set);
    let basis = Basis::Federated { exp: EXP, grc: GRC };
    let ent = TenantEntitlements::from_claims(catalog, &claims, basis, None, None);
    match accept(&claims, Some(&served(&set()))).expect("accepted") {
        Some(set) => ent.with_plugin_set(catalog, set),
        None => ent,
    }
}

fn decide(ent: &TenantEntitlements, plugin: &str, now: UnixTime) -> (bool, Reason, State) {
    let d = ent.decide(PluginIndex::resolve(Catalog::builtin(), plugin), now);
    (d.allowed, d.reason, d.state)
}

#[test]
fn the_plugin_set_narrows_what_the_license_allows_in_every_state_of_its_token() {
    use Reason::*;
    // (plugin, in the set, entitled by Team): expected in Active/Grace, expected in Lapsed.
    let table = [
        ("identity.oidc", Allowed, Lapsed),              // in, entitled
        ("observability.audit", NotInPluginSet, Lapsed), // out, entitled
        ("identity.saml", NotEntitled, Lapsed),          // in, not entitled
        ("policy.cedar", NotEntitled, Lapsed),           // out, not entitled
        ("identity.apikey", Allowed, Allowed),           // in, free
        ("reliability.retry", NotInPluginSet, NotInPluginSet), // out, free
        ("vendor.custom", UnknownPlugin, UnknownPlugin), // in, unknown to the catalog
    ];
    let ent = federated(true);
    for (plugin, licensed, lapsed) in table {
        for (now, state) in [(IAT, State::Active), (EXP, State::Grace)] {
            let got = decide(&ent, plugin, now);
            assert_eq!(
                got,
                (licensed == Allowed, licensed, state),
                "{plugin} {state}"
            );
        }
        let got = decide(&ent, plugin, GRC);
        assert_eq!(
            got,
            (lapsed == Allowed, lapsed, State::Lapsed),
            "{plugin} lapsed"
        );
    }
}

#[test]
fn without_a_set_or_once_revoked_the_entitlements_alone_decide() {
    let catalog = Catalog::builtin();
    let plain = federated(false);
    for plugin in ["observability.audit", "reliability.retry", "identity.oidc"] {
        assert_eq!(
            decide(&plain, plugin, IAT),
            (true, Reason::Allowed, State::Active)
        );
    }
    assert_eq!(
        decide(&plain, "policy.cedar", IAT),
        (false, Reason::NotEntitled, State::Active)
    );
    let with_set = federated(true);
    let details = with_set.details().cloned();
    let revoked = TenantEntitlements::revoked(catalog, "license_revoked", 0, details);
    assert!(revoked.plugin_set().is_none());
    assert_eq!(
        decide(&revoked, "reliability.retry", IAT),
        (true, Reason::Allowed, State::Revoked)
    );
    assert_eq!(
        decide(&revoked, "identity.oidc", IAT),
        (false, Reason::Revoked, State::Revoked)
    );
    let unlicensed = TenantEntitlements::unlicensed(catalog, Reason::NotFederated);
    assert_eq!(
        decide(&unlicensed, "reliability.retry", IAT),
        (true, Reason::Allowed, State::Unlicensed)
    );
}

#[test]
fn configs_are_taken_only_when_the_signed_claim_vouches_for_them() {
    let with_set = claims(true);
    let good = accept(&with_set, Some(&served(&set())))
        .expect("accepted")
        .expect("a set");
    assert_eq!(
        good.config("identity.oidc").as_deref(),
        Some(&json!({"issuer": "https://idp.test"}))
    );
    assert_eq!(good.config("identity.apikey"), None, "null config");
    assert_eq!(good.config("observability.audit"), None, "not in the set");
    assert_eq!(good.digest(), set().digest());
    assert!(good.contains("vendor.custom") && !good.contains("policy.cedar"));

    assert_eq!(
        accept(&with_set, None),
        Err(PluginSetRejection::Missing(set().digest()))
    );
    let mut edited = served(&set());
    edited["plugins"][0]["config"] = json!({"issuer": "https://evil.test"});
    assert!(matches!(
        accept(&with_set, Some(&edited)),
        Err(PluginSetRejection::Mismatch { .. })
    ));
    let fewer =
        json!({"plugins": [{"id": "identity.oidc", "config": {"issuer": "https://idp.test"}}]});
    assert!(matches!(
        accept(&with_set, Some(&fewer)),
        Err(PluginSetRejection::Mismatch { .. })
    ));
    let malformed = json!({"plugins": [{"id": "Bad Id"}]});
    assert!(matches!(
        accept(&with_set, Some(&malformed)),
        Err(PluginSetRejection::Invalid(_))
    ));
    // A set beside a token without `ps` is ignored, whatever it holds.
    assert_eq!(accept(&claims(false), Some(&edited)), Ok(None));
}

#[test]
fn a_persisted_set_counts_only_when_it_matches_the_token() {
    let with_set = claims(true);
    let (kept, ok) = restore(&with_set, Ok(Some(set()))).expect("a set");
    assert!(ok && kept.configs_available());
    let other = PluginSet::new(vec![PluginSetEntry {
        id: "identity.oidc".into(),
        config: json!(1),
    }])
    .expect("valid");
    let (ids_only, ok) = restore(&with_set, Ok(Some(other))).expect("a set");
    assert!(!ok && !ids_only.configs_available());
    assert_eq!(ids_only.ids(), set().claim().ids.as_slice());
    assert_eq!(ids_only.config("identity.oidc"), None);
    assert!(restore(&claims(false), Ok(Some(set()))).is_none());
}
