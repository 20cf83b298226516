//! The BYOC flow end to end with the real binaries and services: the vendor certifies a
//! customer's key bounded to its org (`mcpg-license certify`), the customer runs `mcpg-auth`
//! with it, a gateway pinning only the vendor root federates over HTTP, and a revocation
//! list uploaded with `mcpg-ctl` and fetched by the gateway ends its entitlements at once.

use std::path::Path;

use mcpg_auth::ExternalKey;
use mcpg_entitlements::config::GatewayConfig;
use mcpg_entitlements::gateway::GatewayBuilder;
use mcpg_entitlements::{Gateway, State};
use serde_json::Value;

use crate::ctl::Server;
use crate::{Workdir, stdout};

fn gateway(work: &Workdir, server: &Server, root_public: &Path, credential: &str) -> Gateway {
    std::fs::write(work.path(&format!("{credential}.credential")), {
        std::fs::read_to_string(server.dir.path().join(format!("{credential}.credential")))
            .expect("credential file")
    })
    .expect("copy credential");
    let toml = format!(
        "mode = \"federated\"\nstate_dir = \"state-{credential}\"\ntrusted_roots = [\"{}\"]\n\
         [federation]\nurl = \"{}\"\ncredential_file = \"{credential}.credential\"\n",
        root_public.display(),
        server.url
    );
    let config_path = work.path("gateway.toml");
    let config = GatewayConfig::parse(&toml, &config_path).expect("config");
    let settings = config.resolve(&work.path("")).expect("settings");
    GatewayBuilder::new(settings)
        .build()
        .expect("gateway starts")
}

#[test]
fn a_bounded_byoc_issuer_federates_gateways_of_its_org_only_until_revoked() {
    let work = Workdir::new();
    let root = work.keygen("vendor-root");
    let issuer = work.keygen("acme-issuer");
    work.run([
        "certify",
        "--key",
        &root.secret.display().to_string(),
        "--subject-key",
        &issuer.public.display().to_string(),
        "--issuer",
        "http://127.0.0.1:8421",
        "--org",
        "acme-corp",
        "--max-tier",
        "team",
        "--valid-for",
        "90d",
        "--out",
        "acme-issuer.cert",
    ])
    .success();
    let inspected = stdout(
        &work
            .run(["inspect", "acme-issuer.cert", "--json"])
            .success(),
    );
    let inspected: Value = serde_json::from_str(&inspected).expect("json");
    let cid = inspected
        .pointer("/claims/cid")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("a certificate id in {inspected}"))
        .to_owned();

    let server = Server::start_with(|settings| {
        settings.external_key = Some(ExternalKey {
            signing_key: issuer.secret.clone(),
            passphrase_file: None,
            certificates: vec![work.path("acme-issuer.cert")],
        });
        settings.trusted_roots = vec![root.public.clone()];
    });
    for (org, name) in [("acme-corp", "edge-1"), ("globex", "edge-2")] {
        server
            .ctl(["org", "create", org, "--display-name", org])
            .success();
        server
            .ctl([
                "license",
                "set",
                org,
                "--tier",
                "team",
                "--valid-for",
                "30d",
            ])
            .success();
        server
            .ctl(["workspace", "create", &format!("{org}/main")])
            .success();
        server
            .ctl(["env", "create", &format!("{org}/main/prod")])
            .success();
        server
            .ctl([
                "gateway",
                "register",
                &format!("{org}/main/prod"),
                name,
                "--credential-file",
                &format!("{name}.credential"),
            ])
            .success();
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let acme = gateway(&work, &server, &root.public, "edge-1");
        assert_eq!(acme.refresh_now().await, Ok(State::Active));
        assert!(acme.check_default("observability.audit").allowed);
        assert_eq!(acme.revocation_serial(), None, "no list published yet");

        // The issuer is bounded to acme-corp: globex's gateway gets nothing.
        let globex = gateway(&work, &server, &root.public, "edge-2");
        let refused = globex.refresh_now().await.expect_err("refused");
        assert!(
            !globex.check_default("observability.audit").allowed,
            "{refused}"
        );
    });

    // The customer rolls to a new key the vendor certified: published as pending first.
    let next = work.keygen("acme-issuer-next");
    work.run([
        "certify",
        "--key",
        &root.secret.display().to_string(),
        "--subject-key",
        &next.public.display().to_string(),
        "--issuer",
        "http://127.0.0.1:8421",
        "--org",
        "acme-corp",
        "--max-tier",
        "team",
        "--valid-for",
        "180d",
        "--out",
        "acme-issuer-next.cert",
    ])
    .success();
    let imported = server.json([
        "keys",
        "import",
        "--signing-key",
        &next.secret.display().to_string(),
        "--certificate",
        &work.path("acme-issuer-next.cert").display().to_string(),
    ]);
    assert_eq!(imported["state"], "pending");
    let keys = stdout(&server.ctl(["keys", "list"]).success());
    assert!(
        keys.contains("pending") && keys.contains("active"),
        "{keys}"
    );

    work.run([
        "revoke",
        "--key",
        &root.secret.display().to_string(),
        "--serial",
        "1",
        "--certificate",
        &cid,
        "--out",
        "revocations-0001.paseto",
    ])
    .success();
    let list = work.path("revocations-0001.paseto");
    server
        .ctl(["revocations", "upload", &list.display().to_string()])
        .success();

    runtime.block_on(async {
        let acme = gateway(&work, &server, &root.public, "edge-1");
        assert!(acme.check_default("observability.audit").allowed, "resumed");
        assert_eq!(
            acme.refresh_revocations().await.expect("fetched"),
            Some(true)
        );
        let decision = acme.check_default("observability.audit");
        assert_eq!((decision.allowed, decision.state), (false, State::Revoked));
        assert_eq!(acme.snapshot().revocation_serial, Some(1));
    });
}
