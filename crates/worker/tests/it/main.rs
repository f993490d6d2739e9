//! The dispatcher against a real SQLite store and real HTTP receivers on loopback.

mod delivery;
mod isolation;
mod lifecycle;
mod outcomes;
mod receiver;
mod ssrf;
mod support;
mod upkeep;
