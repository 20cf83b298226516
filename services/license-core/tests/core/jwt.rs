//! Online JWT: round trip, every rejection path, the expiry boundary, and a property test
//! that no single-byte change survives verification.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpg_license_core::{KeySet, LEEWAY, MAX_TOKEN_BYTES, Tier, Validity, VerifyError, jwt};
use proptest::prelude::*;

use crate::fixtures::*;

fn forge(header: &str, payload_from: &str) -> String {
    let parts: Vec<&str> = payload_from.split('.').collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        parts[1],
        parts[2]
    )
}

#[test]
fn jwt_round_trips_through_the_chain() {
    let w = world();
    let claims = online_claims(Tier::Team);
    let token = sign_jwt(&w.issuer_key, &claims);
    let verified = w
        .trust
        .verify_online_token(&token, &w.cert, NOW, Validity::Strict)
        .expect("verifies");
    assert_eq!(verified, claims);
}

#[test]
fn jwt_header_is_pinned() {
    let w = world();
    let token = sign_jwt(&w.issuer_key, &online_claims(Tier::Team));
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().expect("header"))
        .expect("base64");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("json");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "mcpg-ent+jwt");
    assert_eq!(header["kid"], w.issuer_key.kid().as_str());
}

#[test]
fn other_algorithms_are_rejected_before_the_signature_is_looked_at() {
    let w = world();
    let token = sign_jwt(&w.issuer_key, &online_claims(Tier::Team));
    let kid = w.issuer_key.kid().as_str();
    for alg in ["none", "HS256", "RS256", "ES256", "eddsa"] {
        let forged = forge(
            &format!(r#"{{"alg":"{alg}","typ":"mcpg-ent+jwt","kid":"{kid}"}}"#),
            &token,
        );
        assert_eq!(
            jwt::parse_jwt(&forged).err(),
            Some(VerifyError::UnsupportedAlgorithm(alg.into())),
            "{alg}"
        );
    }
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"mcpg-ent+jwt"}"#),
        token.split('.').nth(1).expect("payload")
    );
    assert_eq!(
        jwt::parse_jwt(&unsigned).err().map(|e| e.code()),
        Some("unsupported_algorithm")
    );
}

#[test]
fn wrong_or_missing_type_is_rejected() {
    let w = world();
    let token = sign_jwt(&w.issuer_key, &online_claims(Tier::Team));
    let kid = w.issuer_key.kid().as_str();
    for header in [
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#),
    ] {
        let err = jwt::parse_jwt(&forge(&header, &token)).err();
        assert_eq!(err.map(|e| e.code()), Some("wrong_type"), "{header}");
    }
}

#[test]
fn unknown_kid_is_rejected() {
    let w = world();
    let stranger = key();
    let token = sign_jwt(&stranger, &online_claims(Tier::Team));
    let err = w
        .trust
        .verify_online_token(&token, &w.cert, NOW, Validity::Strict)
        .err();
    assert_eq!(
        err,
        Some(VerifyError::UnknownKey(stranger.kid().to_string()))
    );
    let set = KeySet::new([w.issuer_key.public_key().clone()]);
    assert_eq!(
        set.verify_jwt(&token, ISSUER, NOW).err().map(|e| e.code()),
        Some("unknown_key")
    );
}

#[test]
fn oversized_input_is_rejected_unparsed() {
    let garbage = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        jwt::parse_jwt(&garbage),
        Err(VerifyError::Oversized { .. })
    ));
}

#[test]
fn malformed_tokens_are_errors_not_panics() {
    for bad in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "eyJ9.e30.AA",
        "\u{0}.\u{1}.\u{2}",
    ] {
        assert!(jwt::parse_jwt(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn expiry_boundary_honours_the_leeway_exactly() {
    let w = world();
    let claims = online_claims(Tier::Team);
    let token = sign_jwt(&w.issuer_key, &claims);
    let verify = |at| {
        w.trust
            .verify_online_token(&token, &w.cert, at, Validity::Strict)
    };
    assert!(verify(claims.exp).is_ok(), "valid at exp (inside leeway)");
    assert!(
        verify(claims.exp + LEEWAY - 1).is_ok(),
        "valid at the end of leeway"
    );
    assert_eq!(
        verify(claims.exp + LEEWAY).err(),
        Some(VerifyError::Expired { exp: claims.exp })
    );
    assert!(verify(claims.nbf - LEEWAY).is_ok());
    assert_eq!(
        verify(claims.nbf - LEEWAY - 1).err(),
        Some(VerifyError::NotYetValid { nbf: claims.nbf })
    );
}

#[test]
fn grace_validity_ends_exactly_at_the_grace_bound() {
    let w = world();
    let claims = online_claims(Tier::Team);
    let grc = claims.grc.expect("online tokens carry grc");
    let token = sign_jwt(&w.issuer_key, &claims);
    let verify = |at| {
        w.trust
            .verify_online_token(&token, &w.cert, at, Validity::UntilGrace)
    };
    assert!(verify(claims.exp + 3 * DAY).is_ok());
    assert!(verify(grc - 1).is_ok());
    assert_eq!(verify(grc).err().map(|e| e.code()), Some("expired"));
}

#[test]
fn token_from_another_issuer_url_is_rejected() {
    let w = world();
    let mut claims = online_claims(Tier::Team);
    claims.iss = "https://evil.example".into();
    let token = sign_jwt(&w.issuer_key, &claims);
    let err = w
        .trust
        .verify_online_token(&token, &w.cert, NOW, Validity::Strict)
        .err();
    assert_eq!(err.map(|e| e.code()), Some("bounds_exceeded"));
    let set = KeySet::new([w.issuer_key.public_key().clone()]);
    assert_eq!(
        set.verify_jwt(&token, ISSUER, NOW).err().map(|e| e.code()),
        Some("wrong_issuer")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_single_byte_change_fails_verification(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let w = world_fixture();
        let token = w.1.as_bytes().to_vec();
        let at = index.index(token.len());
        prop_assume!(token[at] != byte);
        let mut changed = token.clone();
        changed[at] = byte;
        let result = match String::from_utf8(changed) {
            Ok(text) => w.0.trust.verify_online_token(&text, &w.0.cert, NOW, Validity::Strict),
            Err(_) => Err(VerifyError::Malformed("not utf-8".into())),
        };
        prop_assert!(result.is_err(), "changed byte {} to {} and it still verified", at, byte);
    }
}

fn world_fixture() -> &'static (World, String) {
    use std::sync::OnceLock;
    static W: OnceLock<(World, String)> = OnceLock::new();
    W.get_or_init(|| {
        let w = world();
        let token = sign_jwt(&w.issuer_key, &online_claims(Tier::Enterprise));
        (w, token)
    })
}
