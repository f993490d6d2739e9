//! The store conformance suite: every case on a fresh SQLite file and on a fresh
//! PostgreSQL schema (PostgreSQL must be running; it is never skipped).

herald_store::conformance_tests!();
