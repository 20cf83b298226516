//! A PostgreSQL database of its own for a scenario, laid out as docs/OPERATIONS.md says:
//! an owner role that runs the migrations and an unprivileged app role the service runs as
//! (under row-level security). Made and dropped with `psql` on the server
//! `MCPG_TEST_POSTGRES_URL` names; scenarios skip, saying so, when it is unset.

use std::process::Command;

/// A database, its owner and its app role, dropped with the guard.
pub struct Database {
    admin_url: String,
    name: String,
    roles: [String; 2],
    /// The service's role (`--database-url`).
    pub app_url: String,
    /// The schema owner (`--migrate-database-url`).
    pub owner_url: String,
    /// The server's superuser, on this database (for what an operator would do by hand).
    pub superuser_url: String,
}

impl Database {
    /// A fresh database on `MCPG_TEST_POSTGRES_URL`'s server; `None` (with a message on
    /// stderr) when the variable is unset.
    pub fn create() -> Option<Self> {
        let Some(admin_url) = std::env::var("MCPG_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset");
            return None;
        };
        let mut id = [0_u8; 8];
        getrandom::getrandom(&mut id).expect("random bytes");
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("mcpg_e2e_{id}");
        let (owner, app) = (format!("mcpg_e2e_owner_{id}"), format!("mcpg_e2e_app_{id}"));
        let password = format!("pw{id}");
        psql(
            &admin_url,
            &format!(
                "CREATE ROLE {owner} LOGIN PASSWORD '{password}';\n\
                 CREATE ROLE {app} LOGIN PASSWORD '{password}';"
            ),
        );
        psql(
            &admin_url,
            &format!("CREATE DATABASE {name} OWNER {owner};"),
        );
        let on_database = |role: Option<&str>| {
            let mut url = reqwest::Url::parse(&admin_url).expect("MCPG_TEST_POSTGRES_URL is a URL");
            url.set_path(&format!("/{name}"));
            if let Some(role) = role {
                url.set_username(role).expect("a URL with a host");
                url.set_password(Some(&password))
                    .expect("a URL with a host");
            }
            url.to_string()
        };
        Some(Self {
            app_url: on_database(Some(&app)),
            owner_url: on_database(Some(&owner)),
            superuser_url: on_database(None),
            admin_url,
            name,
            roles: [app, owner],
        })
    }

    /// Runs `sql` as the superuser on this database; its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        psql(&self.superuser_url, sql)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let [app, owner] = &self.roles;
        // One statement per call: DROP DATABASE cannot run inside a transaction.
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {app}"),
            format!("DROP ROLE IF EXISTS {owner}"),
        ] {
            let _ = run_psql(&self.admin_url, &sql);
        }
    }
}

fn psql(url: &str, sql: &str) -> String {
    match run_psql(url, sql) {
        Ok(out) => out,
        Err(error) => panic!("psql failed: {error}\n{sql}"),
    }
}

fn run_psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
