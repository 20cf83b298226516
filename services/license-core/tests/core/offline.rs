//! Offline licenses (PASETO v4.public): round trip, foreign keys, binding, expiry, purpose.

use mcpg_license_core::{
    LEEWAY, LicenseSigner, Tier, TrustStore, VerifyError, decode_unverified, issue_offline_license,
};

use crate::fixtures::*;

#[test]
fn root_signed_license_round_trips() {
    let root = key();
    let claims = offline_claims(Tier::Enterprise);
    let token = issue_offline_license(&claims, &root, None).expect("signs");
    assert!(token.starts_with("v4.public."));
    let trust = TrustStore::new([root.public_key().clone()]);
    let verified = trust
        .verify_offline_license(&token, NOW, None)
        .expect("verifies");
    assert_eq!(verified.claims, claims);
    assert!(matches!(verified.signer, LicenseSigner::Root(kid) if &kid == root.kid()));
}

#[test]
fn license_signed_by_key_a_fails_when_only_key_b_is_trusted() {
    let a = key();
    let b = key();
    let token = issue_offline_license(&offline_claims(Tier::Team), &a, None).expect("signs");
    let trust = TrustStore::new([b.public_key().clone()]);
    assert_eq!(
        trust.verify_offline_license(&token, NOW, None).err(),
        Some(VerifyError::UnknownKey(a.kid().to_string()))
    );
}

#[test]
fn footer_naming_a_trusted_kid_does_not_help_a_foreign_signature() {
    let trusted = key();
    let attacker = key();
    let genuine =
        issue_offline_license(&offline_claims(Tier::Free), &trusted, None).expect("signs");
    let forged =
        issue_offline_license(&offline_claims(Tier::Enterprise), &attacker, None).expect("signs");
    // Graft the trusted footer onto the attacker's token.
    let footer = genuine.rsplit('.').next().expect("footer");
    let body: Vec<&str> = forged.split('.').take(3).collect();
    let grafted = format!("{}.{footer}", body.join("."));
    let trust = TrustStore::new([trusted.public_key().clone()]);
    assert_eq!(
        trust.verify_offline_license(&grafted, NOW, None).err(),
        Some(VerifyError::BadSignature)
    );
}

#[test]
fn certified_key_signs_licenses_with_its_certificate_in_the_footer() {
    let w = world();
    let claims = offline_claims(Tier::Team);
    let token = issue_offline_license(
        &mcpg_license_core::LicenseClaims {
            exp: NOW + 30 * DAY,
            ..claims.clone()
        },
        &w.issuer_key,
        Some(&w.cert),
    );
    // The unbounded certificate allows 24 h tokens only: a 30-day license is refused.
    let token = token.expect("signs");
    assert_eq!(
        w.trust
            .verify_offline_license(&token, NOW, None)
            .err()
            .map(|e| e.code()),
        Some("bounds_exceeded")
    );
    let short = mcpg_license_core::LicenseClaims {
        exp: NOW + 3_600,
        ..claims
    };
    let token = issue_offline_license(&short, &w.issuer_key, Some(&w.cert)).expect("signs");
    let verified = w
        .trust
        .verify_offline_license(&token, NOW, None)
        .expect("verifies");
    assert!(matches!(verified.signer, LicenseSigner::Certified(_)));
}

#[test]
fn binding_is_enforced() {
    let root = key();
    let trust = TrustStore::new([root.public_key().clone()]);
    let claims = mcpg_license_core::LicenseClaims {
        bind: Some("dc1-cluster-7".into()),
        ..offline_claims(Tier::Enterprise)
    };
    let token = issue_offline_license(&claims, &root, None).expect("signs");
    assert!(
        trust
            .verify_offline_license(&token, NOW, Some("dc1-cluster-7"))
            .is_ok()
    );
    assert_eq!(
        trust.verify_offline_license(&token, NOW, Some("dc2")).err(),
        Some(VerifyError::BindingMismatch {
            expected: "dc1-cluster-7".into(),
            found: Some("dc2".into())
        })
    );
    let unset = trust
        .verify_offline_license(&token, NOW, None)
        .expect_err("no deployment id");
    assert_eq!(unset.code(), "binding_mismatch");
    // Words for an operator, never Rust's `Some(..)`/`None`.
    let words = unset.to_string();
    assert!(words.contains("no deployment id is configured"), "{words}");
    let other = trust
        .verify_offline_license(&token, NOW, Some("dc2"))
        .expect_err("another deployment")
        .to_string();
    assert!(
        other.contains("this deployment is \"dc2\"") && !other.contains("Some("),
        "{other}"
    );
}

#[test]
fn offline_expiry_boundary_honours_the_leeway() {
    let root = key();
    let trust = TrustStore::new([root.public_key().clone()]);
    let claims = offline_claims(Tier::Team);
    let token = issue_offline_license(&claims, &root, None).expect("signs");
    assert!(
        trust
            .verify_offline_license(&token, claims.exp, None)
            .is_ok()
    );
    assert!(
        trust
            .verify_offline_license(&token, claims.exp + LEEWAY - 1, None)
            .is_ok()
    );
    assert_eq!(
        trust
            .verify_offline_license(&token, claims.exp + LEEWAY, None)
            .err(),
        Some(VerifyError::Expired { exp: claims.exp })
    );
}

#[test]
fn certificate_is_not_accepted_as_a_license() {
    let w = world();
    assert_eq!(
        w.trust
            .verify_offline_license(&w.cert, NOW, None)
            .err()
            .map(|e| e.code()),
        Some("wrong_type")
    );
}

#[test]
fn license_is_not_accepted_as_a_certificate() {
    let root = key();
    let trust = TrustStore::new([root.public_key().clone()]);
    let token = issue_offline_license(&offline_claims(Tier::Team), &root, None).expect("signs");
    // Different implicit assertion: the signature does not verify as a certificate.
    assert_eq!(
        trust
            .verify_certificate(&token, NOW, mcpg_license_core::Validity::Strict)
            .err(),
        Some(VerifyError::BadSignature)
    );
}

#[test]
fn jwt_given_as_offline_license_is_a_wrong_type() {
    let w = world();
    let jwt = sign_jwt(&w.issuer_key, &online_claims(Tier::Team));
    assert_eq!(
        w.trust
            .verify_offline_license(&jwt, NOW, None)
            .err()
            .map(|e| e.code()),
        Some("wrong_type")
    );
}

#[test]
fn garbage_and_truncated_licenses_are_errors() {
    let root = key();
    let trust = TrustStore::new([root.public_key().clone()]);
    let token = issue_offline_license(&offline_claims(Tier::Team), &root, None).expect("signs");
    for bad in [
        "",
        "v4.public.",
        "v4.public.!!!",
        &token[..token.len() / 2],
        "v4.local.AAAA",
        "v2.public.AAAA",
    ] {
        assert!(
            trust.verify_offline_license(bad, NOW, None).is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn inspect_decodes_without_trusting() {
    let root = key();
    let claims = offline_claims(Tier::Team);
    let token = issue_offline_license(&claims, &root, None).expect("signs");
    match decode_unverified(&token).expect("decodes") {
        mcpg_license_core::Unverified::OfflineLicense {
            claims: seen, kid, ..
        } => {
            assert_eq!(*seen, claims);
            assert_eq!(kid, root.kid().as_str());
        }
        other => panic!("decoded as {other:?}"),
    }
}

mod tamper {
    use std::sync::OnceLock;

    use mcpg_license_core::{Tier, TrustStore, Validity, issue_offline_license};
    use proptest::prelude::*;

    use crate::fixtures::*;

    struct Signed {
        trust: TrustStore,
        license: String,
        certificate: String,
    }

    fn signed() -> &'static Signed {
        static SIGNED: OnceLock<Signed> = OnceLock::new();
        SIGNED.get_or_init(|| {
            let w = world();
            let license =
                issue_offline_license(&offline_claims(Tier::Team), &w.root, None).expect("signs");
            Signed {
                trust: w.trust,
                license,
                certificate: w.cert,
            }
        })
    }

    fn change(token: &str, index: prop::sample::Index, byte: u8) -> Option<String> {
        let mut bytes = token.as_bytes().to_vec();
        let at = index.index(bytes.len());
        if bytes[at] == byte {
            return None;
        }
        bytes[at] = byte;
        // Trailing whitespace is trimmed by design; it is not a change of the token.
        String::from_utf8(bytes).ok().filter(|t| t.trim() != token)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_single_byte_change_to_an_offline_license_fails(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let s = signed();
            if let Some(changed) = change(&s.license, index, byte) {
                prop_assert!(s.trust.verify_offline_license(&changed, NOW, None).is_err());
            }
        }

        #[test]
        fn any_single_byte_change_to_a_certificate_fails(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let s = signed();
            if let Some(changed) = change(&s.certificate, index, byte) {
                prop_assert!(s.trust.verify_certificate(&changed, NOW, Validity::Strict).is_err());
            }
        }
    }
}
