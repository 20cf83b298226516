//! A signing key's certificates through the admin API and the flags: what adding one
//! refuses, what removing one refuses, and a restart with a second `--certificate`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use mcpg_license_core::{Bounds, SigningKey};

use crate::byoc::certify;
use crate::helpers::{Backend, assert_error, now, on_both_backends, spawn_app_full};
use crate::rollover::{Roots, listed};

const DAY: i64 = 86_400;

on_both_backends!(a_certificate_that_does_not_certify_this_key_for_this_issuer_is_refused);

async fn a_certificate_that_does_not_certify_this_key_for_this_issuer_is_refused(backend: Backend) {
    let roots = Roots::new();
    let app = spawn_app_full(backend, |s| roots.apply(s), None).await;
    let kid = roots.kid();
    let t0 = now();
    let other_key = SigningKey::generate().expect("rng");
    let stranger = SigningKey::generate().expect("rng");
    let (for_other_key, _) = certify(
        &roots.new,
        &other_key,
        Bounds::unbounded(),
        t0 - 60,
        t0 + DAY,
    );
    let (untrusted, _) = certify(
        &stranger,
        &roots.key,
        Bounds::unbounded(),
        t0 - 60,
        t0 + DAY,
    );
    let other_issuer = mcpg_license_core::IssuerCertificate {
        cid: format!("cert_{}", uuid::Uuid::new_v4().simple()),
        issuer: "https://elsewhere.example.test".into(),
        key: roots.key.public_key().clone(),
        iat: t0 - 60,
        nbf: t0 - 60,
        exp: t0 + DAY,
        bounds: Bounds::unbounded(),
    }
    .sign(&roots.new)
    .expect("certificate signs");
    let path = format!("/v1/admin/keys/{kid}/certificates");
    for (certificate, says) in [
        (for_other_key.as_str(), "certifies"),
        (other_issuer.as_str(), "issuer"),
        (untrusted.as_str(), "untrusted_root"),
        ("v4.public.not-a-certificate", "certificate"),
    ] {
        let (status, body) = app
            .send(
                Method::POST,
                &path,
                Some(json!({"certificate": certificate})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, "invalid_request");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says}: {message}");
    }
    let (status, body) = app
        .send(
            Method::POST,
            "/v1/admin/keys/k4.pid.unknown/certificates",
            Some(json!({"certificate": roots.new_cert})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The key's own certificate again: a conflict.
    let (status, body) = app
        .send(
            Method::POST,
            &path,
            Some(json!({"certificate": roots.old_cert})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The last certificate is never removed; an unknown one is not found.
    let (status, body) = app
        .send(Method::DELETE, &format!("{path}/{}", roots.old_cid), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "conflict");
    let (status, body) = app
        .send(Method::DELETE, &format!("{path}/cert_unknown"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(listed(&app, &kid).await.len(), 1);

    // Removing the added one leaves the primary alone.
    app.expect(
        Method::POST,
        &path,
        Some(json!({"certificate": roots.new_cert})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        Method::DELETE,
        &format!("{path}/{}", roots.new_cid),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let certificates = listed(&app, &kid).await;
    assert_eq!(certificates.len(), 1);
    assert_eq!(certificates[0]["cid"], roots.old_cid.as_str());
}

on_both_backends!(a_restart_with_a_second_certificate_adds_it);

async fn a_restart_with_a_second_certificate_adds_it(backend: Backend) {
    let roots = Roots::new();
    let mut app = spawn_app_full(backend, |s| roots.apply(s), None).await;
    let credential = app.gateway("acme").await;
    assert_eq!(listed(&app, &roots.kid()).await.len(), 1);
    app.stop().await;
    if let Some(external) = &mut app.settings.external_key {
        external.certificates.push(roots.path("new.cert"));
    }
    app.start().await;
    let certificates = listed(&app, &roots.kid()).await;
    let cids: Vec<&str> = certificates
        .iter()
        .filter_map(|c| c["cid"].as_str())
        .collect();
    assert_eq!(cids, [roots.old_cid.as_str(), roots.new_cid.as_str()]);
    let body = app.token_ok(&credential).await;
    assert_eq!(
        body["issuer_certificates"],
        json!([roots.old_cert, roots.new_cert])
    );
    // A second restart with the same flags adds nothing.
    app.stop().await;
    app.start().await;
    assert_eq!(listed(&app, &roots.kid()).await.len(), 2);
}

on_both_backends!(a_token_is_served_with_the_certificates_it_fits_and_capped_by_the_tightest);

async fn a_token_is_served_with_the_certificates_it_fits_and_capped_by_the_tightest(
    backend: Backend,
) {
    let roots = Roots::new();
    let app = spawn_app_full(backend, |s| roots.apply(s), None).await;
    let credential = app.gateway("acme").await;
    let t0 = now();
    let path = format!("/v1/admin/keys/{}/certificates", roots.kid());
    // A certificate for another org only: acme's tokens do not fit it.
    let mut globex = Bounds::unbounded();
    globex.orgs = Some(vec!["globex".into()]);
    let (for_globex, globex_cid) = certify(&roots.new, &roots.key, globex, t0 - 60, t0 + DAY);
    app.expect(
        Method::POST,
        &path,
        Some(json!({"certificate": for_globex})),
        StatusCode::CREATED,
    )
    .await;
    let body = app.token_ok(&credential).await;
    assert_eq!(body["issuer_certificates"], json!([roots.old_cert]));
    app.expect(
        Method::DELETE,
        &format!("{path}/{globex_cid}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    // A certificate allowing 1 h tokens: every token is capped to fit it too.
    let mut short = Bounds::unbounded();
    short.max_token_lifetime = 3_600;
    let (short_lived, _) = certify(&roots.new, &roots.key, short, t0 - 60, t0 + DAY);
    app.expect(
        Method::POST,
        &path,
        Some(json!({"certificate": short_lived})),
        StatusCode::CREATED,
    )
    .await;
    let body = app.token_ok(&credential).await;
    assert_eq!(
        body["issuer_certificates"],
        json!([roots.old_cert, short_lived])
    );
    let claims = match mcpg_license_core::decode_unverified(body["token"].as_str().expect("token"))
    {
        Ok(mcpg_license_core::Unverified::OnlineToken(claims)) => claims,
        other => panic!("not an online token: {other:?}"),
    };
    assert!(claims.exp - claims.iat <= 3_600, "{claims:?}");
}
