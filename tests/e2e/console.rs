//! The operator console of the real `mcpg-auth` binary: same listener as the API, its
//! headers, and a sign-in with the bootstrap token that opens a session.

use reqwest::blocking::Client;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};

use crate::support::Service;

/// The `name=value` of the cookie `name` among the answer's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

#[test]
fn the_binary_serves_the_console_on_its_api_listener_and_signs_in_with_a_token() {
    let service = Service::start(&[]);
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = client
        .get(format!("{}/console/sign-in", service.url))
        .send()
        .expect("sign-in page");
    assert_eq!(form.status(), 200);
    assert!(
        form.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    let sign_in_cookie = set_cookie(&form, "mcpg_console_sign_in");
    let body = form.text().expect("body");
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("a CSRF field") + marker.len();
    let csrf = &body[start..start + body[start..].find('"').expect("end")];

    let signed_in = client
        .post(format!("{}/console/sign-in", service.url))
        .header(COOKIE, &sign_in_cookie)
        .form(&[("csrf", csrf), ("token", service.token.as_str())])
        .send()
        .expect("sign in");
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()[LOCATION], "/console/orgs");
    let session = set_cookie(&signed_in, "mcpg_console");

    let orgs = client
        .get(format!("{}/console/orgs", service.url))
        .header(COOKIE, &session)
        .send()
        .expect("orgs page");
    assert_eq!(orgs.status(), 200);
    assert!(orgs.text().expect("body").contains("Organizations"));
    let css = client
        .get(format!("{}/console/assets/console.css", service.url))
        .send()
        .expect("stylesheet");
    assert_eq!(css.status(), 200);
}
