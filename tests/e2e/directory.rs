//! The token path's credential directory: once loaded, a fleet's token requests are answered
//! from memory (the `mcpg_token_grant_lookups_total{source}` counter says where), a
//! revocation still takes effect on the very next request (the org is read from the
//! database until the directory has reloaded it), and a credential the directory does not
//! hold is left to the database.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::Service;
use crate::support::process::wait_until;

const FLEET: usize = 40;

/// `metric{labels}` from the service's `/metrics` (0 when absent).
fn metric(client: &Client, service: &Service, series: &str) -> f64 {
    let page = client
        .get(format!("http://{}/metrics", service.ops_addr()))
        .send()
        .and_then(reqwest::blocking::Response::text)
        .expect("metrics scraped");
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

fn token_status(client: &Client, service: &Service, credential: &str) -> u16 {
    client
        .post(format!("{}/v1/federation/token", service.url))
        .bearer_auth(credential)
        .send()
        .expect("token endpoint answers")
        .status()
        .as_u16()
}

const FROM_DIRECTORY: &str = "mcpg_token_grant_lookups_total{source=\"directory\"}";
const FROM_DATABASE: &str = "mcpg_token_grant_lookups_total{source=\"database\"}";

#[test]
fn a_fleet_is_answered_from_memory_and_a_revocation_still_takes_effect_at_once() {
    let service = Service::start(&[]);
    let client = Client::new();
    service.ctl_ok(&["org", "create", "acme", "--display-name", "Acme"]);
    service.ctl_ok(&[
        "license",
        "set",
        "acme",
        "--tier",
        "team",
        "--limit",
        "max_gateways=100",
    ]);
    service.ctl_ok(&["workspace", "create", "acme/main"]);
    service.ctl_ok(&["env", "create", "acme/main/prod"]);
    service.ctl_ok(&[
        "gateway",
        "register",
        "acme/main/prod",
        "edge",
        "--count",
        &FLEET.to_string(),
        "--credentials-file",
        "fleet.jsonl",
    ]);
    let fleet: Vec<Value> = std::fs::read_to_string(service.work_dir().join("fleet.jsonl"))
        .expect("credentials written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(fleet.len(), FLEET);

    wait_until(
        "the directory to hold the fleet",
        Duration::from_secs(20),
        || (metric(&client, &service, "mcpg_directory_gateways") == FLEET as f64).then_some(()),
    );
    let (directory, database) = (
        metric(&client, &service, FROM_DIRECTORY),
        metric(&client, &service, FROM_DATABASE),
    );
    for gateway in &fleet {
        let credential = gateway["credential"].as_str().expect("credential");
        assert_eq!(token_status(&client, &service, credential), 200);
    }
    assert_eq!(
        metric(&client, &service, FROM_DIRECTORY),
        directory + FLEET as f64,
        "every token of the fleet came from the directory"
    );
    assert_eq!(metric(&client, &service, FROM_DATABASE), database);

    // A revocation answers the very next request, whatever the directory holds.
    let revoked = fleet[7]["credential"].as_str().expect("credential");
    let name = fleet[7]["name"].as_str().expect("name");
    service.ctl_ok(&["gateway", "revoke", "acme/main/prod", name]);
    assert_eq!(token_status(&client, &service, revoked), 401);
    // So does a suspension, for every gateway of the org.
    service.ctl_ok(&["org", "suspend", "acme"]);
    let other = fleet[8]["credential"].as_str().expect("credential");
    assert_eq!(token_status(&client, &service, other), 403);
    service.ctl_ok(&["org", "resume", "acme"]);
    assert_eq!(token_status(&client, &service, other), 200);

    // Once the org is reloaded (its gateways after the revocation, its record after the
    // resumption: two marks, read one after the other), the directory answers again,
    // without the revoked one.
    wait_until(
        "the directory to reload the org",
        Duration::from_secs(20),
        || {
            (metric(&client, &service, "mcpg_directory_gateways") == (FLEET - 1) as f64)
                .then_some(())
        },
    );
    wait_until(
        "the directory to answer for the org again",
        Duration::from_secs(20),
        || {
            let directory = metric(&client, &service, FROM_DIRECTORY);
            assert_eq!(token_status(&client, &service, other), 200);
            (metric(&client, &service, FROM_DIRECTORY) == directory + 1.0).then_some(())
        },
    );
    let database = metric(&client, &service, FROM_DATABASE);
    // A credential the directory does not hold is the database's to refuse (on another
    // replica it may have been registered a moment ago).
    assert_eq!(token_status(&client, &service, revoked), 401);
    assert_eq!(metric(&client, &service, FROM_DATABASE), database + 1.0);
}

/// The `tier` claim of the token a gateway is given now.
fn token_tier(client: &Client, service: &Service, credential: &str) -> String {
    let answer: Value = client
        .post(format!("{}/v1/federation/token", service.url))
        .bearer_auth(credential)
        .send()
        .and_then(reqwest::blocking::Response::json)
        .expect("a token");
    let token = answer["token"].as_str().expect("token");
    let payload = token.split('.').nth(1).expect("a compact JWS");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    claims["tier"].as_str().expect("tier").to_owned()
}

const ORG_RECORD_LOADS: &str = "mcpg_directory_loads_total{scope=\"org_record\"}";
const ORG_LOADS: &str = "mcpg_directory_loads_total{scope=\"org\"}";

#[test]
fn a_license_change_swaps_the_orgs_grant_without_reading_its_gateways_again() {
    let service = Service::start(&[]);
    let client = Client::new();
    service.ctl_ok(&["org", "create", "acme", "--display-name", "Acme"]);
    let license = |tier: &str| {
        service.ctl_ok(&[
            "license",
            "set",
            "acme",
            "--tier",
            tier,
            "--limit",
            "max_gateways=100",
        ]);
    };
    license("team");
    service.ctl_ok(&["workspace", "create", "acme/main"]);
    service.ctl_ok(&["env", "create", "acme/main/prod"]);
    service.ctl_ok(&[
        "gateway",
        "register",
        "acme/main/prod",
        "edge",
        "--count",
        "10",
        "--credentials-file",
        "fleet.jsonl",
    ]);
    let text = std::fs::read_to_string(service.work_dir().join("fleet.jsonl")).expect("written");
    let first: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    let credential = first["credential"].as_str().expect("credential");
    wait_until(
        "the directory to hold the fleet",
        Duration::from_secs(20),
        || (metric(&client, &service, "mcpg_directory_gateways") == 10.0).then_some(()),
    );
    // Let the registration's reload settle before counting.
    std::thread::sleep(Duration::from_millis(500));
    let org_loads = metric(&client, &service, ORG_LOADS);
    let record_loads = metric(&client, &service, ORG_RECORD_LOADS);
    assert_eq!(token_tier(&client, &service, credential), "team");

    for (round, tier) in ["enterprise", "team", "enterprise"].into_iter().enumerate() {
        license(tier);
        // The very next token carries the new license, whichever path answers it.
        assert_eq!(token_tier(&client, &service, credential), tier);
        wait_until(
            "the directory to swap the org's record",
            Duration::from_secs(20),
            || {
                (metric(&client, &service, ORG_RECORD_LOADS) >= record_loads + round as f64 + 1.0)
                    .then_some(())
            },
        );
        let directory = metric(&client, &service, FROM_DIRECTORY);
        assert_eq!(token_tier(&client, &service, credential), tier);
        assert_eq!(
            metric(&client, &service, FROM_DIRECTORY),
            directory + 1.0,
            "answered from memory with the swapped grant"
        );
    }
    assert_eq!(
        metric(&client, &service, ORG_LOADS),
        org_loads,
        "no license change read the org's gateways again"
    );
    assert_eq!(metric(&client, &service, "mcpg_directory_gateways"), 10.0);
}
