//! The reqwest client against a stand-in server: each answer of the contract maps to the
//! right outcome.

use std::time::Duration;

use mcpg_entitlements::{
    Denial, FederationClient, FetchError, GatewayBuilder, HttpFederationClient, ModeSettings,
};
use mcpg_license_core::Tier;
use secrecy::SecretString;

use crate::standin::{Answer, StandIn};
use crate::support::{CREDENTIAL, federated_settings, temp_dir};

#[tokio::test]
async fn the_http_client_maps_every_answer_of_the_contract() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let client = HttpFederationClient::new(&format!("{}/", server.url()), Duration::from_secs(5))
        .expect("client");
    let credential = SecretString::from(CREDENTIAL);

    let ok = client.fetch_token(&credential).await.expect("200");
    assert!(ok.issuer_certificate.starts_with("v4.public."));
    assert_eq!(ok.token.split('.').count(), 3);

    server.then(Answer::Error {
        status: 403,
        code: "license_revoked",
        retry_after: None,
    });
    assert_eq!(
        client.fetch_token(&credential).await.expect_err("403"),
        FetchError::Denied(Denial::LicenseRevoked)
    );

    server.then(Answer::Error {
        status: 401,
        code: "invalid_credential",
        retry_after: None,
    });
    assert_eq!(
        client.fetch_token(&credential).await.expect_err("401"),
        FetchError::Denied(Denial::InvalidCredential)
    );

    server.then(Answer::Oversized(4 * 1024 * 1024));
    assert!(
        matches!(
            client
                .fetch_token(&credential)
                .await
                .expect_err("oversized"),
            FetchError::Unexpected { .. }
        ),
        "a 4 MiB answer is refused, not buffered"
    );

    server.then(Answer::Error {
        status: 429,
        code: "rate_limited",
        retry_after: Some(120),
    });
    match client.fetch_token(&credential).await.expect_err("429") {
        FetchError::Outage { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)))
        }
        other => panic!("429 is an outage, got {other:?}"),
    }

    server.then(Answer::Error {
        status: 503,
        code: "unavailable",
        retry_after: None,
    });
    assert!(matches!(
        client.fetch_token(&credential).await,
        Err(FetchError::Outage {
            retry_after: None,
            ..
        })
    ));

    server.then(Answer::Error {
        status: 404,
        code: "not_found",
        retry_after: None,
    });
    assert!(matches!(
        client.fetch_token(&credential).await,
        Err(FetchError::Unexpected { status: 404, .. })
    ));

    assert_eq!(server.hits(), 7);
    assert!(
        server
            .bearers()
            .iter()
            .all(|b| b == &format!("Bearer {CREDENTIAL}"))
    );
}

#[tokio::test]
async fn an_unreachable_federation_is_an_outage() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = HttpFederationClient::new(&format!("http://{addr}"), Duration::from_secs(2))
        .expect("client");
    let error = client
        .fetch_token(&SecretString::from(CREDENTIAL))
        .await
        .expect_err("refused");
    assert!(matches!(error, FetchError::Outage { .. }), "{error:?}");
}

#[tokio::test]
async fn the_http_client_fetches_the_revocation_list() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let client = HttpFederationClient::new(&server.url(), Duration::from_secs(5)).expect("client");
    assert_eq!(
        client.fetch_revocations().await,
        Ok(None),
        "404: none published"
    );

    server.publish(200, "v4.public.list\n".into());
    assert_eq!(
        client.fetch_revocations().await,
        Ok(Some("v4.public.list".into()))
    );

    server.publish(503, String::new());
    assert!(matches!(
        client.fetch_revocations().await,
        Err(FetchError::Outage { .. })
    ));

    server.publish(403, "no".into());
    assert!(matches!(
        client.fetch_revocations().await,
        Err(FetchError::Unexpected { status: 403, .. })
    ));

    server.publish(200, "x".repeat(2 * 1024 * 1024));
    assert!(matches!(
        client.fetch_revocations().await,
        Err(FetchError::Unexpected { status: 200, .. })
    ));
}

#[tokio::test]
async fn a_federation_answering_429_with_a_huge_retry_after_delays_refresh_at_most_thirty_minutes()
{
    let server = StandIn::start(Answer::Error {
        status: 429,
        code: "rate_limited",
        retry_after: Some(u64::MAX),
    })
    .await;
    let dir = temp_dir();
    let mut settings = federated_settings(dir.path(), server.authority.trust());
    if let ModeSettings::Federated { url, .. } = &mut settings.mode {
        *url = server.url();
    }
    let gateway = GatewayBuilder::new(settings)
        .build()
        .expect("gateway starts");
    for _ in 0..3 {
        let before = mcpg_license_core::Clock::now(&mcpg_license_core::SystemClock);
        assert!(gateway.refresh_now().await.is_err(), "429 is an outage");
        let after = mcpg_license_core::Clock::now(&mcpg_license_core::SystemClock);
        let next = gateway.next_refresh_at().expect("scheduled");
        assert!(
            (before + 30..=after + 30 * 60).contains(&next),
            "next refresh at {next}, now {before}..{after}"
        );
    }
    assert_eq!(server.hits(), 3);
}
