//! The dispatcher against real stores (SQLite and PostgreSQL) and real HTTP receivers
//! on loopback, all from the test harness.

mod delivery;
mod isolation;
mod lifecycle;
mod outcomes;
mod ssrf;
mod support;
mod upkeep;
