//! Scenario 5: bring your own cloud. The vendor certifies a customer's issuer key bounded to
//! one org (`mcpg-license certify`), the customer runs `mcpg-auth` with it, and a gateway
//! pinning only the vendor root federates for that org and no other. The customer rolls to a
//! new certified key with `mcpg-ctl keys import`; when the contract ends, the vendor's
//! revocation list, uploaded with `mcpg-ctl`, ends the gateway's entitlements at once.

use crate::support::license::certified_service;
use crate::support::{Gateway, Signer};

#[test]
fn a_bounded_byoc_issuer_federates_gateways_of_its_org_only_until_revoked() {
    // The vendor's root and the customer's key, with the certificate the vendor signs.
    let signer = Signer::new();
    let root = signer.keygen("vendor-root");
    let issuer = signer.keygen("acme-issuer");
    let bounds = ["--org", "acme-corp", "--max-tier", "team"];
    let certificate = signer.certify(
        &root,
        &issuer,
        "acme-issuer.cert",
        &[&bounds[..], &["--valid-for", "90d"]].concat(),
    );
    let cid = signer.certificate_id("acme-issuer.cert");

    let service = certified_service(&root, &issuer, &certificate, &[]);
    let acme = service.tenant("acme-corp", "team", &[], "edge-1");

    let acme = Gateway::federated(&service.url, &acme, &[&root.public]);
    let allowed = acme.check("observability.audit");
    assert!(allowed.allowed(), "{}", allowed.json);
    assert_eq!(allowed.field("state"), "active");
    let status = acme.status();
    assert_eq!(
        status["revocation_serial"],
        serde_json::Value::Null,
        "no list published yet"
    );
    assert_eq!(
        status["default"]["license"]["issuer"],
        crate::support::license::ISSUER
    );

    // The issuer is bounded to acme-corp: globex is refused when it is created, so no
    // gateway of it can ever ask for a token.
    let globex = service.ctl(&["org", "create", "globex", "--display-name", "globex"]);
    assert_eq!(globex.status.code(), Some(1), "{globex:?}");
    let error = String::from_utf8_lossy(&globex.stderr);
    assert!(
        error.contains("outside_certificate_bounds") && error.contains("org_not_allowed"),
        "{error}"
    );

    // The customer rolls to a new key the vendor certified: published as pending first.
    let next = signer.keygen("acme-issuer-next");
    let next_certificate = signer.certify(
        &root,
        &next,
        "acme-issuer-next.cert",
        &[&bounds[..], &["--valid-for", "180d"]].concat(),
    );
    let imported = service.ctl_json(&[
        "keys",
        "import",
        "--signing-key",
        &next.secret.display().to_string(),
        "--certificate",
        &next_certificate.display().to_string(),
    ]);
    assert_eq!(imported["state"], "pending");
    let keys = service.ctl_ok(&["keys", "list"]);
    assert!(
        keys.contains("pending") && keys.contains("active"),
        "{keys}"
    );

    // The contract ends: the vendor revokes the certificate and uploads the list.
    let root_secret = root.secret.display().to_string();
    signer.ok(&[
        "revoke",
        "--key",
        &root_secret,
        "--serial",
        "1",
        "--certificate",
        &cid,
        "--out",
        "revocations-0001.paseto",
    ]);
    let list = signer.path("revocations-0001.paseto").display().to_string();
    service.ctl_ok(&["revocations", "upload", &list]);

    // The gateway resumes from its state directory (its certificate is still good there)…
    let resumed = acme.run(&["--no-refresh", "check", "observability.audit"]);
    assert_eq!(resumed.status.code(), Some(0), "resumed");
    // …and, once it asks, fetches the list before anything else and drops the revoked chain.
    let revoked = acme.check("observability.audit");
    assert!(!revoked.allowed(), "{}", revoked.json);
    assert_eq!(revoked.field("state"), "revoked");
    assert_eq!(acme.status()["revocation_serial"], 1);
}
