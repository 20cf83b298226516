//! `LicenseClaims`: the one claims schema of online tokens and offline licenses.
//!
//! Parsing goes through a loose wire form and then validates every field into typed
//! values, so a claims value that exists is a valid one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::clock::{UnixTime, parse_rfc3339, to_rfc3339};
use crate::entitlement::{EntitlementId, EntitlementIdError, EntitlementSet};
use crate::limits::Limits;
use crate::plugin_set::{PluginSetClaim, PluginSetError};
use crate::tier::{Tier, UnknownTier};

/// The audience of every token and license.
pub const AUDIENCE: &str = "mcpg-gateway";

/// The latest time any claim may name: 9999-12-31T23:59:59Z. Bounding every time claim
/// keeps all later arithmetic (`exp - iat`, `nbf - leeway`, `grc - exp`) free of overflow,
/// whatever a signer put in the token.
pub const MAX_TIME: UnixTime = 253_402_300_799;

/// The longest string claim accepted (ids, slugs, URLs), in bytes.
const MAX_CLAIM_LEN: usize = 256;

/// How the time claims (`iat nbf exp rfa grc`) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// JWT: NumericDate (whole seconds).
    Seconds,
    /// PASETO: RFC 3339 strings.
    Rfc3339,
}

/// The claims of a license token (see the table in `docs/ARCHITECTURE.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseClaims {
    /// Issuer URL.
    pub iss: String,
    /// Gateway instance id (online) or license id (offline).
    pub sub: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Expires at.
    pub exp: UnixTime,
    /// Unique token id.
    pub jti: String,
    /// Organisation (tenant) the token is for.
    pub org: String,
    /// Workspace, when the token is for one.
    pub ws: Option<String>,
    /// Environment, when the token is for one.
    pub env: Option<String>,
    /// Tier.
    pub tier: Tier,
    /// Entitlements, sorted.
    pub ent: EntitlementSet,
    /// Limits.
    pub lim: Limits,
    /// License id the token was minted from.
    pub lic: String,
    /// Refresh after (online tokens).
    pub rfa: Option<UnixTime>,
    /// Grace until (online tokens): the gateway never keeps entitlements past it.
    pub grc: Option<UnixTime>,
    /// Deployment id an offline license is bound to.
    pub bind: Option<String>,
    /// The effective plugin set of the gateway's workspace or environment, when one is
    /// configured: the gateway allows only these plugins (and only if entitled).
    pub ps: Option<PluginSetClaim>,
}

/// Why a claims document is invalid.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ClaimsError {
    /// Not a JSON object, or a claim of the wrong JSON type.
    #[error("claims are not valid JSON of the expected shape: {0}")]
    Shape(String),
    /// A required claim is absent.
    #[error("claim {0} is missing")]
    Missing(&'static str),
    /// A time claim in the wrong format for the token type.
    #[error("claim {0} is not a valid time")]
    BadTime(&'static str),
    /// A string claim that is empty, too long or has control characters.
    #[error("claim {0} is empty, too long or not printable")]
    BadString(&'static str),
    /// `aud` is not `mcpg-gateway`.
    #[error("audience {0:?} is not mcpg-gateway")]
    WrongAudience(String),
    /// `tier` is not a known tier.
    #[error(transparent)]
    UnknownTier(#[from] UnknownTier),
    /// An entry of `ent` is not an entitlement id.
    #[error(transparent)]
    Entitlement(#[from] EntitlementIdError),
    /// `exp <= iat`, `nbf > exp`, `rfa` outside `[iat, exp]` or `grc < exp`.
    #[error("inconsistent times: {0}")]
    Times(&'static str),
    /// A `ps` claim with bad ids or a bad digest.
    #[error("claim ps: {0}")]
    PluginSet(#[from] PluginSetError),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<String>,
    iat: Option<Value>,
    nbf: Option<Value>,
    exp: Option<Value>,
    jti: Option<String>,
    org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ws: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    tier: Option<String>,
    #[serde(default)]
    ent: Vec<String>,
    #[serde(default)]
    lim: Limits,
    lic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rfa: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grc: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ps: Option<PluginSetClaim>,
}

fn read_time(
    value: Option<Value>,
    name: &'static str,
    format: TimeFormat,
) -> Result<Option<UnixTime>, ClaimsError> {
    match (value, format) {
        (None, _) => Ok(None),
        (Some(Value::Number(n)), TimeFormat::Seconds) => {
            n.as_i64().map(Some).ok_or(ClaimsError::BadTime(name))
        }
        (Some(Value::String(s)), TimeFormat::Rfc3339) => parse_rfc3339(&s)
            .map(Some)
            .ok_or(ClaimsError::BadTime(name)),
        (Some(_), _) => Err(ClaimsError::BadTime(name)),
    }
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T, ClaimsError> {
    value.ok_or(ClaimsError::Missing(name))
}

fn check_string(value: &str, name: &'static str) -> Result<(), ClaimsError> {
    if value.is_empty() || value.len() > MAX_CLAIM_LEN || value.chars().any(char::is_control) {
        return Err(ClaimsError::BadString(name));
    }
    Ok(())
}

fn checked(value: Option<String>, name: &'static str) -> Result<String, ClaimsError> {
    let value = required(value, name)?;
    check_string(&value, name)?;
    Ok(value)
}

fn checked_opt(value: Option<String>, name: &'static str) -> Result<Option<String>, ClaimsError> {
    if let Some(v) = &value {
        check_string(v, name)?;
    }
    Ok(value)
}

impl LicenseClaims {
    /// Parses and validates claims from JSON bytes.
    pub fn from_json(bytes: &[u8], format: TimeFormat) -> Result<Self, ClaimsError> {
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| ClaimsError::Shape(e.to_string()))?;
        let ent = wire
            .ent
            .iter()
            .map(|e| EntitlementId::parse(e))
            .collect::<Result<EntitlementSet, _>>()?;
        let claims = LicenseClaims {
            iss: checked(wire.iss, "iss")?,
            sub: checked(wire.sub, "sub")?,
            aud: required(wire.aud, "aud")?,
            iat: required(read_time(wire.iat, "iat", format)?, "iat")?,
            nbf: required(read_time(wire.nbf, "nbf", format)?, "nbf")?,
            exp: required(read_time(wire.exp, "exp", format)?, "exp")?,
            jti: checked(wire.jti, "jti")?,
            org: checked(wire.org, "org")?,
            ws: checked_opt(wire.ws, "ws")?,
            env: checked_opt(wire.env, "env")?,
            tier: required(wire.tier, "tier")?.parse()?,
            ent,
            lim: wire.lim,
            lic: checked(wire.lic, "lic")?,
            rfa: read_time(wire.rfa, "rfa", format)?,
            grc: read_time(wire.grc, "grc", format)?,
            bind: checked_opt(wire.bind, "bind")?,
            ps: wire.ps,
        };
        claims.validate()?;
        Ok(claims)
    }

    /// Checks the relations between claims. Called by [`LicenseClaims::from_json`]; issuers
    /// call it before signing so that nothing invalid is ever signed.
    pub fn validate(&self) -> Result<(), ClaimsError> {
        if self.aud != AUDIENCE {
            return Err(ClaimsError::WrongAudience(self.aud.clone()));
        }
        for (value, name) in [
            (&self.iss, "iss"),
            (&self.sub, "sub"),
            (&self.jti, "jti"),
            (&self.org, "org"),
            (&self.lic, "lic"),
        ] {
            check_string(value, name)?;
        }
        let times = [
            Some(self.iat),
            Some(self.nbf),
            Some(self.exp),
            self.rfa,
            self.grc,
        ];
        if times
            .into_iter()
            .flatten()
            .any(|t| !(0..=MAX_TIME).contains(&t))
        {
            return Err(ClaimsError::Times("times must lie between 1970 and 9999"));
        }
        if self.exp <= self.iat {
            return Err(ClaimsError::Times("exp must be after iat"));
        }
        if self.nbf >= self.exp {
            return Err(ClaimsError::Times("nbf must be before exp"));
        }
        if let Some(rfa) = self.rfa
            && (rfa < self.iat || rfa > self.exp)
        {
            return Err(ClaimsError::Times("rfa must lie between iat and exp"));
        }
        if let Some(grc) = self.grc
            && grc < self.exp
        {
            return Err(ClaimsError::Times("grc must not be before exp"));
        }
        if let Some(ps) = &self.ps {
            ps.validate()?;
        }
        Ok(())
    }

    /// The claims as a JSON object with times in `format`, members in lexicographic order
    /// and absent optional claims left out. Written through a borrowed wire form: it is on
    /// the token endpoint's hot path (a `serde_json::Value` map cost a tenth of a token).
    pub fn to_json(&self, format: TimeFormat) -> Vec<u8> {
        let time = |t: UnixTime| match format {
            TimeFormat::Seconds => WireTime::Seconds(t),
            TimeFormat::Rfc3339 => WireTime::Text(to_rfc3339(t)),
        };
        let lim = &self.lim;
        let wire = WireOut {
            aud: &self.aud,
            bind: self.bind.as_deref(),
            ent: WireEntitlements(&self.ent),
            env: self.env.as_deref(),
            exp: time(self.exp),
            grc: self.grc.map(time),
            iat: time(self.iat),
            iss: &self.iss,
            jti: &self.jti,
            lic: &self.lic,
            lim: WireLimits {
                max_concurrent_requests: lim.max_concurrent_requests,
                max_environments: lim.max_environments,
                max_gateways: lim.max_gateways,
                max_servers: lim.max_servers,
                max_workspaces: lim.max_workspaces,
                rps: lim.rps,
            },
            nbf: time(self.nbf),
            org: &self.org,
            ps: self.ps.as_ref(),
            rfa: self.rfa.map(time),
            sub: &self.sub,
            tier: self.tier.as_str(),
            ws: self.ws.as_deref(),
        };
        // Strings, numbers and arrays of strings always serialise.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// The lifetime `exp - iat` in seconds.
    pub fn lifetime(&self) -> i64 {
        self.exp - self.iat
    }
}

/// The serialised claims, members in lexicographic order (see [`LicenseClaims::to_json`]).
#[derive(Serialize)]
struct WireOut<'a> {
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<&'a str>,
    ent: WireEntitlements<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a str>,
    exp: WireTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    grc: Option<WireTime>,
    iat: WireTime,
    iss: &'a str,
    jti: &'a str,
    lic: &'a str,
    lim: WireLimits,
    nbf: WireTime,
    org: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ps: Option<&'a PluginSetClaim>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rfa: Option<WireTime>,
    sub: &'a str,
    tier: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ws: Option<&'a str>,
}

/// [`Limits`] with its members in lexicographic order.
#[derive(Serialize)]
struct WireLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrent_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_environments: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_gateways: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_servers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_workspaces: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rps: Option<u64>,
}

/// A time claim as NumericDate or RFC 3339 text.
#[derive(Serialize)]
#[serde(untagged)]
enum WireTime {
    Seconds(UnixTime),
    Text(String),
}

/// The entitlement set as an array of ids.
struct WireEntitlements<'a>(&'a EntitlementSet);

impl Serialize for WireEntitlements<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|id| id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    pub(crate) fn sample() -> LicenseClaims {
        LicenseClaims {
            iss: "https://auth.mcpg.dev".into(),
            sub: "gw_1".into(),
            aud: AUDIENCE.into(),
            iat: 1_800_000_000,
            nbf: 1_800_000_000,
            exp: 1_800_086_400,
            jti: "tok_1".into(),
            org: "acme-corp".into(),
            ws: Some("platform".into()),
            env: Some("prod".into()),
            tier: Tier::Team,
            ent: ["plugin:policy.cedar", "feature:workspace.rbac"]
                .iter()
                .map(|e| EntitlementId::parse(e).expect("valid"))
                .collect(),
            lim: Limits {
                max_gateways: Some(10),
                ..Limits::default()
            },
            lic: "lic_1".into(),
            rfa: Some(1_800_028_800),
            grc: Some(1_800_086_400 + 7 * 86_400),
            bind: None,
            ps: None,
        }
    }

    #[test]
    fn round_trips_in_both_time_formats() {
        let claims = sample();
        for format in [TimeFormat::Seconds, TimeFormat::Rfc3339] {
            let json = claims.to_json(format);
            assert_eq!(LicenseClaims::from_json(&json, format), Ok(claims.clone()));
        }
    }

    #[test]
    fn the_wire_form_is_sorted_compact_json_without_absent_claims() {
        let mut claims = sample();
        let expected = serde_json::json!({
            "aud": AUDIENCE, "ent": ["feature:workspace.rbac", "plugin:policy.cedar"],
            "env": "prod", "exp": 1_800_086_400, "grc": 1_800_691_200, "iat": 1_800_000_000,
            "iss": "https://auth.mcpg.dev", "jti": "tok_1", "lic": "lic_1",
            "lim": {"max_gateways": 10}, "nbf": 1_800_000_000, "org": "acme-corp",
            "rfa": 1_800_028_800, "sub": "gw_1", "tier": "team", "ws": "platform",
        });
        // serde_json's maps are sorted: the bytes, not only the values, must agree.
        let bytes = |value: &Value| serde_json::to_vec(value).expect("json");
        let ent: Vec<&str> = claims.ent.iter().map(|e| e.as_str()).collect();
        assert_eq!(Value::from(ent), expected["ent"]);
        assert_eq!(claims.to_json(TimeFormat::Seconds), bytes(&expected));

        claims.ws = None;
        claims.env = None;
        claims.rfa = None;
        claims.grc = None;
        claims.bind = Some("host:abc".into());
        claims.lim = Limits {
            max_gateways: Some(3),
            max_workspaces: Some(2),
            max_environments: Some(1),
            rps: Some(50),
            max_servers: Some(5),
            max_concurrent_requests: Some(100),
        };
        let mut expected = expected;
        let map = expected.as_object_mut().expect("object");
        for absent in ["ws", "env", "rfa", "grc"] {
            map.remove(absent);
        }
        map.insert("bind".into(), "host:abc".into());
        map.insert(
            "lim".into(),
            serde_json::json!({"max_concurrent_requests": 100, "max_environments": 1,
                "max_gateways": 3, "max_servers": 5, "max_workspaces": 2, "rps": 50}),
        );
        for time in ["exp", "iat", "nbf"] {
            let seconds = map[time].as_i64().expect("seconds");
            map.insert(time.into(), to_rfc3339(seconds).into());
        }
        assert_eq!(claims.to_json(TimeFormat::Rfc3339), bytes(&expected));
    }

    #[test]
    fn time_format_is_enforced() {
        let json = sample().to_json(TimeFormat::Rfc3339);
        assert_eq!(
            LicenseClaims::from_json(&json, TimeFormat::Seconds),
            Err(ClaimsError::BadTime("iat"))
        );
    }

    fn mutate(f: impl FnOnce(&mut Map<String, Value>)) -> Result<LicenseClaims, ClaimsError> {
        let mut value: Value =
            serde_json::from_slice(&sample().to_json(TimeFormat::Seconds)).expect("json");
        if let Value::Object(map) = &mut value {
            f(map);
        }
        LicenseClaims::from_json(
            &serde_json::to_vec(&value).expect("json"),
            TimeFormat::Seconds,
        )
    }

    #[test]
    fn invalid_claims_get_typed_errors() {
        assert!(matches!(
            mutate(|m| {
                m.insert("tier".into(), "platinum".into());
            }),
            Err(ClaimsError::UnknownTier(_))
        ));
        assert!(matches!(
            mutate(|m| {
                m.insert("ent".into(), serde_json::json!(["cedar"]));
            }),
            Err(ClaimsError::Entitlement(_))
        ));
        assert_eq!(
            mutate(|m| {
                m.insert("exp".into(), 1_800_000_000.into());
            }),
            Err(ClaimsError::Times("exp must be after iat"))
        );
        assert_eq!(
            mutate(|m| {
                m.remove("org");
            }),
            Err(ClaimsError::Missing("org"))
        );
        assert_eq!(
            mutate(|m| {
                m.insert("aud".into(), "someone-else".into());
            }),
            Err(ClaimsError::WrongAudience("someone-else".into()))
        );
        assert_eq!(
            mutate(|m| {
                m.insert("exp".into(), "1800086400".into());
            }),
            Err(ClaimsError::BadTime("exp"))
        );
        assert_eq!(
            mutate(|m| {
                m.insert("grc".into(), 1_800_000_001.into());
            }),
            Err(ClaimsError::Times("grc must not be before exp"))
        );
        assert_eq!(
            mutate(|m| {
                m.insert("org".into(), "".into());
            }),
            Err(ClaimsError::BadString("org"))
        );
        assert_eq!(
            mutate(|m| {
                m.insert("exp".into(), i64::MAX.into());
            }),
            Err(ClaimsError::Times("times must lie between 1970 and 9999"))
        );
        assert_eq!(
            mutate(|m| {
                m.insert("iat".into(), i64::MIN.into());
            }),
            Err(ClaimsError::Times("times must lie between 1970 and 9999"))
        );
        assert!(matches!(
            LicenseClaims::from_json(b"[1,2]", TimeFormat::Seconds),
            Err(ClaimsError::Shape(_))
        ));
    }
}
