//! Integration tests of `mcpg-auth`: each starts the real server on an ephemeral port.
//! Tests marked for both backends run on SQLite and, when `MCPG_TEST_POSTGRES_URL` is set,
//! on PostgreSQL with a fresh database each.

mod deployment;
mod federation;
mod helpers;
mod lifecycle;
mod limits;
mod management;
mod persistence;
mod rbac;
mod robustness;
mod rotation;
mod row_security;
mod tenancy;
