//! The ceiling of the token benchmark: an axum handler that does nothing but sign a fixed
//! claim set with a pre-parsed key. `bench/token-load.sh` measures it beside `mcpg-auth`
//! to show how much of the service's cost is the signature itself.
//!
//! `cargo run --release -p mcpg-auth --example sign_ceiling -- 127.0.0.1:8441`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use mcpg_license_core::{
    AUDIENCE, Catalog, Clock, JwtSigner, LicenseClaims, Limits, SigningKey, SystemClock, Tier,
};

/// The signer and the one claim set it signs on every request.
struct Ceiling {
    signer: JwtSigner,
    claims: LicenseClaims,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8441".into())
        .parse()?;
    let ceiling = Arc::new(Ceiling {
        signer: JwtSigner::new(SigningKey::generate()?),
        claims: fixed_claims(SystemClock.now()),
    });
    let app = Router::new()
        .route("/v1/federation/token", post(sign))
        .with_state(ceiling);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("sign ceiling on http://{addr}/v1/federation/token");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn sign(State(ceiling): State<Arc<Ceiling>>) -> Result<String, &'static str> {
    ceiling
        .signer
        .sign(&ceiling.claims)
        .map_err(|_| "invalid claims")
}

/// One claim set of the shape and size of the service's tokens (UUID ids for the gateway,
/// the token and the license; an enterprise tier's entitlements), so that the ceiling signs
/// as many bytes as `mcpg-auth` does.
fn fixed_claims(now: i64) -> LicenseClaims {
    LicenseClaims {
        iss: "http://127.0.0.1:8441".into(),
        sub: uuid::Uuid::now_v7().to_string(),
        aud: AUDIENCE.into(),
        iat: now,
        nbf: now - 5,
        exp: now + 86_400,
        jti: uuid::Uuid::new_v4().to_string(),
        org: "bench".into(),
        ws: Some("platform".into()),
        env: Some("prod".into()),
        tier: Tier::Enterprise,
        ent: Catalog::builtin().tier_defaults(Tier::Enterprise),
        lim: Limits::default(),
        lic: uuid::Uuid::now_v7().to_string(),
        rfa: Some(now + 28_800),
        grc: Some(now + 86_400 + 604_800),
        bind: None,
        ps: None,
    }
}
