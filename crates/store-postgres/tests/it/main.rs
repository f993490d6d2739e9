//! Integration tests of the PostgreSQL store beyond the shared conformance suite (which
//! `herald-store` runs on both backends): what only a shared database shows (races between nodes, wake-ups across nodes, schema
//! versions). Each test gets a fresh schema; PostgreSQL must be running
//! (`HERALD_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

mod accept;
mod cluster;
mod events;
mod migrations;
mod trouble;
