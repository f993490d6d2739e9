//! End-to-end tests of the server wiring: real servers on port 0, real SQLite files.

mod attempts;
mod bootstrap;
mod connections;
mod delivery;
mod handoff;
mod ingest;
mod lifecycle;
mod metrics;
mod retention;
mod retry_schedules;
