//! Interoperability: our JWTs verify with jsonwebtoken from the JWKS alone, and our
//! PASETOs with rusty_paseto from the `k4.public` PASERK alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcpg_license_core::{Jwks, Tier, issue_offline_license};
use rusty_paseto::core::{
    Footer, ImplicitAssertion, Key, Paseto, PasetoAsymmetricPublicKey, Public, V4,
};

use crate::fixtures::*;

fn install_jose_provider() {
    // jsonwebtoken 11 needs a process-wide provider; a second install is a harmless error.
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

#[test]
fn jwt_verifies_with_jsonwebtoken_from_the_jwks_alone() {
    install_jose_provider();
    let w = world();
    let claims = online_claims(Tier::Enterprise);
    let token = sign_jwt(&w.issuer_key, &claims);

    let jwks = Jwks {
        keys: vec![w.issuer_key.public_key().to_jwk()],
    };
    let published = serde_json::to_string(&jwks).expect("serialises");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&published).expect("a JWKS");

    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("mcpg-ent+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid in JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["mcpg-gateway"]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    // The fixture's times are in 2027; check signature and claims, not the wall clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
        .expect("jsonwebtoken verifies our token");
    assert_eq!(data.claims["org"], "acme-corp");
    assert_eq!(data.claims["exp"], claims.exp);

    // And it refuses a token whose payload we changed.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    payload["tier"] = "enterprise".into();
    payload["org"] = "globex".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert!(jsonwebtoken::decode::<serde_json::Value>(&tampered, &key, &validation).is_err());
}

fn paserk_to_raw(paserk: &str) -> [u8; 32] {
    let b64 = paserk.strip_prefix("k4.public.").expect("k4.public");
    URL_SAFE_NO_PAD
        .decode(b64)
        .expect("base64url")
        .try_into()
        .expect("32 bytes")
}

#[test]
fn offline_license_verifies_with_rusty_paseto_from_the_paserk_alone() {
    let root = key();
    let claims = offline_claims(Tier::Team);
    let token = issue_offline_license(&claims, &root, None).expect("signs");

    let raw = paserk_to_raw(&root.public_key().to_paserk());
    let key = Key::<32>::from(raw);
    let public = PasetoAsymmetricPublicKey::<V4, Public>::from(&key);
    let footer_b64 = token.rsplit('.').next().expect("footer");
    let footer = String::from_utf8(URL_SAFE_NO_PAD.decode(footer_b64).expect("b64")).expect("utf8");

    let payload = Paseto::<V4, Public>::try_verify(
        &token,
        &public,
        Footer::from(footer.as_str()),
        ImplicitAssertion::from("mcpg-offline-license-v1"),
    )
    .expect("rusty_paseto verifies our license");
    let payload: serde_json::Value = serde_json::from_str(&payload).expect("json");
    assert_eq!(payload["org"], "acme-corp");
    assert_eq!(
        payload["exp"],
        mcpg_license_core::clock::to_rfc3339(claims.exp)
    );

    // The implicit assertion binds the purpose: verifying as something else fails.
    assert!(
        Paseto::<V4, Public>::try_verify(
            &token,
            &public,
            Footer::from(footer.as_str()),
            ImplicitAssertion::from("mcpg-issuer-cert-v1"),
        )
        .is_err()
    );
}
