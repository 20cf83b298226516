//! How licenses, certificates and times are shown: human-readable lines for terminals and
//! JSON values for `--json` output.

use std::fmt::Write as _;

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::duration::format_duration;
use mcpg_license_core::{IssuerCertificate, LicenseClaims, TimeFormat, UnixTime};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

/// Whole days from `now` to `exp`, rounded down (negative once expired).
pub fn days_to_expiry(exp: UnixTime, now: UnixTime) -> i64 {
    (exp - now).div_euclid(DAY)
}

/// `2027-11-23T10:30:00Z (in 364 days)` or `… (expired 3 days ago)`.
pub fn expiry(exp: UnixTime, now: UnixTime) -> String {
    let when = to_rfc3339(exp);
    let left = exp - now;
    let span = |seconds: i64| match seconds {
        s if s >= 2 * DAY => format!("{} days", s / DAY),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    };
    if left > 0 {
        format!("{when} (in {})", span(left))
    } else {
        format!("{when} (expired {} ago)", span(-left))
    }
}

/// The claims as JSON, times as RFC 3339 strings (the offline license's own form).
pub fn claims_json(claims: &LicenseClaims) -> Value {
    serde_json::from_slice(&claims.to_json(TimeFormat::Rfc3339)).unwrap_or(Value::Null)
}

/// A certificate as JSON: id, issuer, certified key and kid, validity and bounds.
pub fn certificate_json(cert: &IssuerCertificate) -> Value {
    json!({
        "cid": cert.cid,
        "issuer": cert.issuer,
        "key": cert.key.to_paserk(),
        "kid": cert.key.kid().as_str(),
        "iat": to_rfc3339(cert.iat),
        "nbf": to_rfc3339(cert.nbf),
        "exp": to_rfc3339(cert.exp),
        "bounds": cert.bounds,
    })
}

/// The claims as aligned `name  value` lines.
pub fn claims_text(claims: &LicenseClaims, now: UnixTime) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("license", claims.lic.clone()),
        ("subject", claims.sub.clone()),
        ("issuer", claims.iss.clone()),
        ("org", claims.org.clone()),
    ];
    if let Some(ws) = &claims.ws {
        rows.push(("workspace", ws.clone()));
    }
    if let Some(env) = &claims.env {
        rows.push(("environment", env.clone()));
    }
    rows.push(("tier", claims.tier.to_string()));
    let ent: Vec<&str> = claims.ent.iter().map(|e| e.as_str()).collect();
    rows.push((
        "entitlements",
        if ent.is_empty() {
            "(none)".into()
        } else {
            ent.join(", ")
        },
    ));
    let lim: Vec<String> = claims.lim.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !lim.is_empty() {
        rows.push(("limits", lim.join(", ")));
    }
    if let Some(bind) = &claims.bind {
        rows.push(("bound to", bind.clone()));
    }
    rows.push(("issued", to_rfc3339(claims.iat)));
    rows.push(("not before", to_rfc3339(claims.nbf)));
    rows.push(("expires", expiry(claims.exp, now)));
    if let Some(rfa) = claims.rfa {
        rows.push(("refresh after", to_rfc3339(rfa)));
    }
    if let Some(grc) = claims.grc {
        rows.push(("grace until", to_rfc3339(grc)));
    }
    rows.push(("token id", claims.jti.clone()));
    table(&rows)
}

/// The certificate as aligned `name  value` lines.
pub fn certificate_text(cert: &IssuerCertificate, now: UnixTime) -> String {
    let bounds = &cert.bounds;
    let rows: Vec<(&str, String)> = vec![
        ("certificate", cert.cid.clone()),
        ("issuer", cert.issuer.clone()),
        ("certified key", cert.key.kid().to_string()),
        (
            "orgs",
            bounds
                .orgs
                .as_ref()
                .map_or_else(|| "any".into(), |o| o.join(", ")),
        ),
        ("max tier", bounds.max_tier.to_string()),
        (
            "entitlements",
            bounds.entitlements.as_ref().map_or_else(
                || "any".into(),
                |set| {
                    set.iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
        ),
        ("max lifetime", format_duration(bounds.max_token_lifetime)),
        ("max grace", format_duration(bounds.max_grace)),
        ("issued", to_rfc3339(cert.iat)),
        ("not before", to_rfc3339(cert.nbf)),
        ("expires", expiry(cert.exp, now)),
    ];
    table(&rows)
}

/// Indented two-column lines, names padded to the longest.
pub fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "  {name:<width$}  {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_to_expiry_rounds_down_and_goes_negative() {
        assert_eq!(days_to_expiry(10 * DAY, 0), 10);
        assert_eq!(days_to_expiry(10 * DAY - 1, 0), 9);
        assert_eq!(days_to_expiry(0, 1), -1);
    }

    #[test]
    fn expiry_says_how_long_is_left_or_ago() {
        assert!(expiry(365 * DAY, 0).ends_with("(in 365 days)"));
        assert!(expiry(0, 3 * DAY).ends_with("(expired 3 days ago)"));
        assert!(expiry(5 * 3_600, 0).ends_with("(in 5 hours)"));
    }
}
