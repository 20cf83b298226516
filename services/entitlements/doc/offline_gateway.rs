// Hidden setup of the rustdoc examples (included with `include!`): a `gateway.toml` in a
// temporary directory for an offline Team license of `acme/platform/prod`, signed here by
// a root key generated for the example and trusted by the file. Evaluates to the temporary
// directory and the path of the file: `let (dir, config) = include!(...);`.
{
    let dir = tempfile::tempdir()?;
    let root = mcpg_license_core::SigningKey::generate()?;
    let now = mcpg_license_core::Clock::now(&mcpg_license_core::SystemClock);
    let tier = mcpg_license_core::Tier::Team;
    let claims = mcpg_license_core::LicenseClaims {
        iss: "https://vendor.example".into(),
        sub: "lic-acme".into(),
        aud: mcpg_license_core::AUDIENCE.into(),
        iat: now - 60,
        nbf: now - 60,
        exp: now + 30 * 86_400,
        jti: "doc-example".into(),
        org: "acme".into(),
        ws: Some("platform".into()),
        env: Some("prod".into()),
        tier,
        ent: mcpg_license_core::Catalog::builtin().tier_defaults(tier),
        lim: mcpg_license_core::Limits::default(),
        lic: "lic-acme".into(),
        rfa: None,
        grc: None,
        bind: None,
        ps: None,
    };
    let license = mcpg_license_core::issue_offline_license(&claims, &root, None)?;
    std::fs::write(dir.path().join("acme.license"), license)?;
    std::fs::write(dir.path().join("root.paserk"), root.public_key().to_paserk())?;
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "mode = \"offline\"\nstate_dir = \"state\"\ntrusted_roots = [\"root.paserk\"]\n\
         [offline]\nlicense = \"acme.license\"\n",
    )?;
    (dir, config)
}
