//! End-to-end scenarios across the workspace's binaries, each run as a real process:
//! `mcpg-auth serve` on SQLite in a temporary directory, `mcpg-ctl` setting tenants up,
//! `mcpg-entitlements` as the gateway, and `mcpg-license` for keys, offline licenses and
//! issuer certificates. Everything listens on 127.0.0.1; every key is generated at test time.
//! `ctl/` holds `mcpg-ctl`'s command tests, which need the service running.

mod byoc;
mod cluster;
mod console;
mod conventions;
mod ctl;
mod deploy;
mod directory;
mod federate;
mod offline;
mod outage;
mod plugin_sets;
mod revoke;
mod rotation;
mod support;
