//! Test-only helpers shared by every crate's tests. Use it as a dev-dependency only.
//!
//! Always available (no server involved, so the store crates can use them):
//! - [`Backend`] and [`TestStore`]: a fresh store per test, an SQLite file in a temp dir
//!   or a new schema on the test PostgreSQL (one that does not answer fails the test).
//! - [`backends`]: `#[backends] async fn name(backend: Backend)` runs one test body as
//!   two tests, `name::sqlite` and `name::postgres`; the store conformance suite uses it
//!   to run every case on both.
//! - [`Receiver`]: a real recording webhook endpoint on port 0.
//! - [`TestClock`]: a clock to inject, frozen or running, moved by the test.
//! - [`wait_until`] / [`poll_until`]: await asynchronous effects with a deadline.
//!
//! With the feature `server`: [`spawn_app`] / [`TestApp::builder`], a real Herald
//! server (the same `herald_server::run_with_store` the binary uses) on `127.0.0.1:0`
//! over a fresh [`TestStore`], with an admin token and a ready HTTP client.
//!
//! ```no_run
//! # #[cfg(feature = "server")]
//! # async fn demo() {
//! let app = herald_testkit::spawn_app().await;
//! let health = app.http.get(app.url("/api/v1/health")).send().await.unwrap();
//! assert!(health.status().is_success());
//! app.stop().await.unwrap();
//! # }
//! ```

#[cfg(feature = "server")]
mod app;
mod backend;
mod clock;
mod receiver;
mod wait;

#[cfg(feature = "server")]
pub use app::{TestApp, TestAppBuilder, spawn_app};
pub use backend::{Backend, TestStore, open_sqlite};
pub use clock::TestClock;
pub use herald_testkit_macros::backends;
pub use receiver::{Receiver, RecordedRequest, Reply};
pub use wait::{DEADLINE, poll_until, wait_until};
