//! End-to-end tests of the API: the real router over a real SQLite file, served on
//! 127.0.0.1:0 and driven with reqwest over loopback.

mod applications;
mod endpoints;
mod errors;
mod event_types;
mod events;
mod harness;
mod live_page;
mod messages;
mod openapi;
mod retry_schedules;
mod sources;
mod stream;
