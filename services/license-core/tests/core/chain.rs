//! Issuer certificates: each bound violated alone is rejected with its own reason; roots,
//! validity and depth are enforced.

use mcpg_license_core::{
    Bounds, BoundsViolation, EntitlementId, EntitlementSet, IssuerCertificate, Tier, TrustStore,
    Validity, VerifyError, issue_offline_license,
};

use crate::fixtures::*;

fn byoc_bounds() -> Bounds {
    Bounds {
        orgs: Some(vec!["acme-corp".into()]),
        max_tier: Tier::Team,
        entitlements: Some(Catalog::builtin().tier_defaults(Tier::Team)),
        max_token_lifetime: DAY,
        max_grace: 7 * DAY,
    }
}

use mcpg_license_core::Catalog;

fn verify(w: &World, claims: &mcpg_license_core::LicenseClaims) -> Result<(), VerifyError> {
    let token = sign_jwt(&w.issuer_key, claims);
    w.trust
        .verify_online_token(&token, &w.cert, NOW, Validity::Strict)
        .map(|_| ())
}

#[test]
fn token_within_bounds_verifies() {
    let w = world_with(byoc_bounds());
    assert_eq!(verify(&w, &online_claims(Tier::Team)), Ok(()));
}

#[test]
fn each_bound_violated_alone_has_its_own_reason() {
    let w = world_with(byoc_bounds());
    let base = online_claims(Tier::Team);

    let mut other_org = base.clone();
    other_org.org = "globex".into();
    assert_eq!(
        verify(&w, &other_org),
        Err(VerifyError::Bounds(BoundsViolation::Org("globex".into())))
    );

    let mut higher_tier = base.clone();
    higher_tier.tier = Tier::Enterprise;
    assert_eq!(
        verify(&w, &higher_tier),
        Err(VerifyError::Bounds(BoundsViolation::Tier {
            tier: Tier::Enterprise,
            max: Tier::Team
        }))
    );

    let mut extra = base.clone();
    extra
        .ent
        .insert(EntitlementId::parse("feature:environment.rbac").expect("valid"));
    assert_eq!(
        verify(&w, &extra),
        Err(VerifyError::Bounds(BoundsViolation::Entitlement(
            "feature:environment.rbac".into()
        )))
    );

    let mut long = base.clone();
    long.exp = NOW + 2 * DAY;
    long.grc = Some(long.exp + 7 * DAY);
    assert_eq!(
        verify(&w, &long),
        Err(VerifyError::Bounds(BoundsViolation::Lifetime {
            lifetime: 2 * DAY,
            max: DAY
        }))
    );

    let mut long_grace = base.clone();
    long_grace.grc = Some(base.exp + 30 * DAY);
    assert_eq!(
        verify(&w, &long_grace),
        Err(VerifyError::Bounds(BoundsViolation::Grace {
            grace: 30 * DAY,
            max: 7 * DAY
        }))
    );

    let mut other_issuer = base.clone();
    other_issuer.iss = "https://byoc.acme.example".into();
    assert_eq!(
        verify(&w, &other_issuer).map_err(|e| match e {
            VerifyError::Bounds(v) => v.code(),
            other => other.code(),
        }),
        Err("issuer_mismatch")
    );
}

#[test]
fn token_may_not_outlive_its_certificate() {
    let root = key();
    let issuer_key = key();
    let cert = IssuerCertificate {
        cid: "cert_short".into(),
        issuer: ISSUER.into(),
        key: issuer_key.public_key().clone(),
        iat: NOW - DAY,
        nbf: NOW - DAY,
        exp: NOW + 3_600,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("signs");
    let trust = TrustStore::new([root.public_key().clone()]);
    let token = sign_jwt(&issuer_key, &online_claims(Tier::Team));
    assert_eq!(
        trust
            .verify_online_token(&token, &cert, NOW, Validity::Strict)
            .err(),
        Some(VerifyError::Bounds(BoundsViolation::OutlivesCertificate {
            cert_exp: NOW + 3_600
        }))
    );
}

#[test]
fn certificate_from_an_untrusted_root_is_rejected() {
    let w = world();
    let other_trust = TrustStore::new([key().public_key().clone()]);
    let token = sign_jwt(&w.issuer_key, &online_claims(Tier::Team));
    assert_eq!(
        other_trust
            .verify_online_token(&token, &w.cert, NOW, Validity::Strict)
            .err(),
        Some(VerifyError::UntrustedRoot(w.root.kid().to_string()))
    );
}

#[test]
fn expired_certificate_is_rejected_but_carries_tokens_through_grace() {
    let w = world();
    let cert_exp = NOW + 90 * DAY;
    assert_eq!(
        w.trust
            .verify_certificate(&w.cert, cert_exp + 61, Validity::Strict)
            .err(),
        Some(VerifyError::CertificateExpired { exp: cert_exp })
    );
    assert!(
        w.trust
            .verify_certificate(&w.cert, cert_exp + DAY, Validity::UntilGrace)
            .is_ok()
    );
    assert_eq!(
        w.trust
            .verify_certificate(&w.cert, cert_exp + 7 * DAY, Validity::UntilGrace)
            .err()
            .map(|e| e.code()),
        Some("certificate_expired")
    );
    assert_eq!(
        w.trust
            .verify_certificate(&w.cert, NOW - 2 * DAY, Validity::Strict)
            .err()
            .map(|e| e.code()),
        Some("certificate_not_yet_valid")
    );
}

#[test]
fn chains_deeper_than_one_certificate_are_refused() {
    let w = world();
    // A "certificate" signed by the certified key, with the first certificate in its footer.
    let deeper = issue_offline_license(
        &mcpg_license_core::LicenseClaims {
            exp: NOW + 3_600,
            ..offline_claims(Tier::Team)
        },
        &w.issuer_key,
        Some(&w.cert),
    )
    .expect("signs");
    assert_eq!(
        w.trust
            .verify_certificate(&deeper, NOW, Validity::Strict)
            .err(),
        Some(VerifyError::ChainTooDeep)
    );
    // And a license whose footer certificate is itself chained is refused too.
    let nested = issue_offline_license(
        &mcpg_license_core::LicenseClaims {
            exp: NOW + 3_600,
            ..offline_claims(Tier::Team)
        },
        &w.issuer_key,
        Some(&deeper),
    )
    .expect("signs");
    assert_eq!(
        w.trust.verify_offline_license(&nested, NOW, None).err(),
        Some(VerifyError::ChainTooDeep)
    );
}

#[test]
fn certificate_for_one_key_does_not_vouch_for_another() {
    let w = world();
    let impostor = key();
    let token = sign_jwt(&impostor, &online_claims(Tier::Team));
    assert_eq!(
        w.trust
            .verify_online_token(&token, &w.cert, NOW, Validity::Strict)
            .err(),
        Some(VerifyError::UnknownKey(impostor.kid().to_string()))
    );
}

#[test]
fn bounded_entitlements_allow_subsets() {
    let allowed: EntitlementSet = ["plugin:identity.oidc", "plugin:reliability.retry"]
        .iter()
        .map(|e| EntitlementId::parse(e).expect("valid"))
        .collect();
    let w = world_with(Bounds {
        entitlements: Some(allowed.clone()),
        ..Bounds::unbounded()
    });
    let mut claims = online_claims(Tier::Team);
    claims.ent = [EntitlementId::parse("plugin:identity.oidc").expect("valid")]
        .into_iter()
        .collect();
    assert_eq!(verify(&w, &claims), Ok(()));
}

mod revocation {
    use std::collections::HashSet;

    use mcpg_license_core::{RevocationList, Tier, Validity, VerifyError, issue_offline_license};

    use crate::fixtures::*;

    fn list(serial: u64, certificates: &[&str], licenses: &[&str]) -> RevocationList {
        RevocationList {
            serial,
            iat: NOW,
            certificates: certificates.iter().map(|s| s.to_string()).collect(),
            licenses: licenses
                .iter()
                .map(|s| s.to_string())
                .collect::<HashSet<_>>(),
        }
    }

    #[test]
    fn revoked_certificate_stops_its_tokens_even_in_grace() {
        let mut w = world();
        let token = sign_jwt(&w.issuer_key, &online_claims(Tier::Team));
        let revocation = list(1, &["cert_test"], &[]).sign(&w.root).expect("signs");
        assert_eq!(w.trust.apply_revocation_list(&revocation), Ok(true));
        for validity in [Validity::Strict, Validity::UntilGrace] {
            assert_eq!(
                w.trust
                    .verify_online_token(&token, &w.cert, NOW + 2 * DAY, validity)
                    .err(),
                Some(VerifyError::Revoked("certificate cert_test".into()))
            );
        }
    }

    #[test]
    fn revoked_offline_license_is_refused() {
        let mut w = world();
        let claims = offline_claims(Tier::Enterprise);
        let license = issue_offline_license(&claims, &w.root, None).expect("signs");
        assert!(w.trust.verify_offline_license(&license, NOW, None).is_ok());
        let revocation = list(3, &[], &[&claims.lic]).sign(&w.root).expect("signs");
        assert_eq!(w.trust.apply_revocation_list(&revocation), Ok(true));
        assert_eq!(
            w.trust
                .verify_offline_license(&license, NOW, None)
                .err()
                .map(|e| e.code()),
            Some("revoked")
        );
    }

    #[test]
    fn older_lists_cannot_roll_a_revocation_back() {
        let mut w = world();
        let newer = list(5, &["cert_test"], &[]).sign(&w.root).expect("signs");
        let older = list(4, &[], &[]).sign(&w.root).expect("signs");
        assert_eq!(w.trust.apply_revocation_list(&newer), Ok(true));
        assert_eq!(w.trust.apply_revocation_list(&older), Ok(false));
        assert_eq!(w.trust.apply_revocation_list(&newer), Ok(false));
        assert_eq!(w.trust.revocations().map(|r| r.serial), Some(5));
    }

    #[test]
    fn lists_from_untrusted_or_certified_keys_are_refused() {
        let mut w = world();
        let stranger = key();
        let forged = list(9, &["cert_test"], &[]).sign(&stranger).expect("signs");
        assert_eq!(
            w.trust.apply_revocation_list(&forged).err(),
            Some(VerifyError::UntrustedRoot(stranger.kid().to_string()))
        );
        // A certificate is not a revocation list, even though a root signed it.
        let cert = w.cert.clone();
        assert_eq!(
            w.trust.apply_revocation_list(&cert).err(),
            Some(VerifyError::BadSignature)
        );
        assert!(w.trust.revocations().is_none());
    }
}
