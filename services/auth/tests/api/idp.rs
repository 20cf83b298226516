//! A stand-in OIDC identity provider for the login tests: an axum server on 127.0.0.1:0
//! serving a discovery document and a JWKS that tests can replace (key rotation), counting
//! JWKS fetches; keys (Ed25519, P-256, RSA) are generated at test time and mint tokens.
//! For the console's sign-in it also runs the authorization code flow with PKCE: its
//! authorization endpoint consents at once for the user a test set ([`Idp::log_in_as`])
//! and its token endpoint checks the code, client, redirect URI and S256 verifier before it
//! answers with an ID token carrying the request's nonce.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::now;

/// The audience the tests' configurations expect.
pub const AUDIENCE: &str = "mcpg-management";

/// A signing key of the IdP.
pub struct IdpKey {
    /// Key id.
    pub kid: String,
    /// Its algorithm.
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// Its public JWK.
    pub jwk: Value,
    /// The raw public key bytes (what an HS256 forgery would use as the secret).
    pub public_bytes: Vec<u8>,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("random bytes");
    bytes
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One RSA key per test binary: 2048-bit generation is slow in debug builds.
fn rsa_key() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static KEY: OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        let der = key.to_pkcs1_der().expect("PKCS#1").as_bytes().to_vec();
        (der, key.n().to_bytes_be(), key.e().to_bytes_be())
    })
}

impl IdpKey {
    /// A fresh key for `alg` (EdDSA, ES256 or RS256) with a random kid.
    pub fn generate(alg: Algorithm) -> Self {
        let kid = format!("k-{}", hex::encode(random::<6>()));
        let (encoding, jwk, public_bytes) = match alg {
            Algorithm::EdDSA => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                let key = ed25519_dalek::SigningKey::from_bytes(&random::<32>());
                let der = key.to_pkcs8_der().expect("PKCS#8");
                let public = key.verifying_key().to_bytes().to_vec();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&public)});
                (EncodingKey::from_ed_der(der.as_bytes()), jwk, public)
            }
            Algorithm::ES256 => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                use p256::pkcs8::EncodePrivateKey;
                let key = p256::SecretKey::from_slice(&random::<32>()).expect("P-256 scalar");
                let der = key.to_pkcs8_der().expect("PKCS#8");
                let point = key.public_key().to_encoded_point(false);
                let (x, y) = (point.x().expect("x"), point.y().expect("y"));
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
                (
                    EncodingKey::from_ec_der(der.as_bytes()),
                    jwk,
                    point.as_bytes().to_vec(),
                )
            }
            Algorithm::RS256 => {
                let (der, n, e) = rsa_key();
                let jwk = json!({"kty": "RSA", "n": b64(n), "e": b64(e)});
                (EncodingKey::from_rsa_der(der), jwk, n.clone())
            }
            other => panic!("the stand-in IdP does not sign {other:?}"),
        };
        let mut jwk = jwk;
        jwk["kid"] = Value::from(kid.clone());
        jwk["use"] = Value::from("sig");
        Self {
            kid,
            alg,
            encoding,
            jwk,
            public_bytes,
        }
    }

    /// A token over `claims` with this key and its kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// A token over `claims` with this key, naming `kid` in its header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        self.sign_with(|header| header.kid = Some(kid.to_owned()), claims)
    }

    /// A token over `claims` with this key, its header (alg and kid set) adjusted first.
    pub fn sign_with(&self, adjust: impl FnOnce(&mut Header), claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        adjust(&mut header);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

#[derive(Default)]
struct Published {
    issuer: String,
    jwks: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    /// Who the authorization endpoint signs in: the key to sign with and the claims.
    login: Mutex<Option<(Arc<IdpKey>, Value)>>,
    /// Codes issued and not yet redeemed.
    codes: Mutex<HashMap<String, Grant>>,
}

/// What a code was issued for.
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
    claims: Value,
    key: Arc<IdpKey>,
}

/// The running stand-in.
pub struct Idp {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
    published: Arc<Published>,
    server: tokio::task::JoinHandle<()>,
}

impl Idp {
    /// Starts the IdP publishing `keys`.
    pub async fn start(keys: &[&IdpKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind IdP");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let published = Arc::new(Published {
            issuer: issuer.clone(),
            ..Published::default()
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(published.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let idp = Self {
            issuer,
            published,
            server,
        };
        idp.publish(keys);
        idp
    }

    /// Replaces the published key set (a rotation).
    pub fn publish(&self, keys: &[&IdpKey]) {
        let jwks = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.published.jwks.lock().expect("lock") = jwks;
    }

    /// Makes the authorization endpoint sign in the user of `claims` (their `aud` is
    /// replaced by the client's id, and the request's nonce added), signing with `key`.
    pub fn log_in_as(&self, key: Arc<IdpKey>, claims: Value) {
        *self.published.login.lock().expect("lock") = Some((key, claims));
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// Valid claims for a user of IdP tenant `tenant` with `roles`, for 5 minutes.
    pub fn claims(&self, tenant: &str, roles: &[&str]) -> Value {
        let now = now();
        json!({
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": format!("user-of-{tenant}"),
            "email": format!("ops@{tenant}.example"),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "org_id": tenant,
            "groups": roles,
        })
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State(published): State<Arc<Published>>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": published.issuer,
        "jwks_uri": format!("{}/jwks", published.issuer),
        "authorization_endpoint": format!("{}/authorize", published.issuer),
        "token_endpoint": format!("{}/token", published.issuer),
        "code_challenge_methods_supported": ["S256"],
    }))
}

/// Consents at once: a code for the configured user, back to the client's redirect URI.
async fn authorize(
    State(published): State<Arc<Published>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if field("response_type") != "code" || field("code_challenge_method") != "S256" {
        return (StatusCode::BAD_REQUEST, "code flow with S256 only").into_response();
    }
    let Some((key, claims)) = published.login.lock().expect("lock").clone() else {
        return (StatusCode::FORBIDDEN, "nobody to sign in").into_response();
    };
    let code = hex::encode(random::<16>());
    let redirect_uri = field("redirect_uri");
    published.codes.lock().expect("lock").insert(
        code.clone(),
        Grant {
            client_id: field("client_id"),
            redirect_uri: redirect_uri.clone(),
            challenge: field("code_challenge"),
            nonce: field("nonce"),
            claims,
            key,
        },
    );
    let mut back = reqwest::Url::parse(&redirect_uri).expect("redirect URI");
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &field("state"));
    Redirect::to(back.as_str()).into_response()
}

/// Redeems a code once, checking client, redirect URI and the PKCE verifier.
async fn token(
    State(published): State<Arc<Published>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let invalid = || {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
    };
    let Some(grant) = published.codes.lock().expect("lock").remove(&field("code")) else {
        return invalid().into_response();
    };
    let verified = b64(&Sha256::digest(field("code_verifier").as_bytes())) == grant.challenge;
    if field("grant_type") != "authorization_code"
        || field("client_id") != grant.client_id
        || field("redirect_uri") != grant.redirect_uri
        || !verified
    {
        return invalid().into_response();
    }
    let mut claims = grant.claims;
    claims["aud"] = json!(grant.client_id);
    claims["nonce"] = json!(grant.nonce);
    let id_token = grant.key.sign(&claims);
    axum::Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn jwks(State(published): State<Arc<Published>>) -> axum::Json<Value> {
    published.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = published.jwks.lock().expect("lock").clone();
    axum::Json(json!({ "keys": keys }))
}
