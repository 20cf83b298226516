//! Integration tests of mcpg-entitlements: the state machine on a manual clock with a fake
//! federation, the trust chain, persistence, offline licenses, the HTTP client against a
//! stand-in server, and the binary run as a process.

mod binary;
mod binary_plugin_sets;
mod binary_status;
mod byoc;
mod chain;
mod deploy_examples;
mod embed_example;
mod http_client;
mod limits;
mod offline;
mod persistence;
mod plugin_sets;
mod refresh;
mod revocation;
mod served_certificates;
mod sidecar_doc;
mod sidecar_openapi;
mod sidecar_ops;
mod sidecar_process;
mod special_files;
mod standin;
mod state_machine;
mod support;
mod tenants_config;
mod tier0;
mod usage_ledger;
mod usage_process;
mod usage_report;
