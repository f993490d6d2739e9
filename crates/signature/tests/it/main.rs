//! Integration tests for herald-signature against independent implementations: the
//! `standardwebhooks` crate for `v1`, and `ed25519-dalek` used directly for `v1a`.

mod ed25519_independent;
mod standardwebhooks_oracle;

/// The current unix time. Only tests read the clock; the crate never does, and the
/// oracle crate checks timestamps against its own clock.
pub fn now_secs() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(elapsed.as_secs()).expect("time fits i64")
}
