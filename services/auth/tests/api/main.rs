//! Integration tests of `mcpg-auth`: each starts the real server on an ephemeral port.
//! Tests marked for both backends run on SQLite and, when `MCPG_TEST_POSTGRES_URL` is set,
//! on PostgreSQL with a fresh database each.

mod archives;
mod audit;
mod audit_tamper;
mod backup;
mod backup_refusals;
mod byoc;
mod byoc_roll;
mod cluster_limits;
mod cluster_root;
mod connections;
mod contract;
mod denials;
mod deployment;
mod federation;
mod global_scope;
mod helpers;
mod idp;
mod input_rules;
mod key_certificates;
mod layering;
mod lifecycle;
mod limits;
mod management;
mod oidc;
mod ops;
mod org_list;
mod pagination;
mod peers;
mod persistence;
mod rate_budgets;
mod rbac;
mod robustness;
mod rollover;
mod rotation;
mod row_security;
mod sealed_key;
mod special_files;
mod tenancy;
mod tenants_bounds;
mod tenants_file;
mod tenants_seed;
mod tier_gating;
mod token_body;
mod write_validation;
