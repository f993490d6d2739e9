//! The file descriptor limit and the connection cap derived from it.
//!
//! Every open connection is a descriptor, and so is every database connection,
//! outbound delivery, SQLite file and the listener itself. When inbound connections
//! take them all, the node cannot accept, reach its database or deliver, so the cap
//! leaves a reserve for the rest.

/// Descriptors kept for what is not counted elsewhere: stdio, the listener, the
/// runtime's event queue, SQLite's files, DNS lookups, log files.
const FIXED_RESERVE: u64 = 64;

/// The cap is never derived below this share of the limit, so a tight limit with a
/// large reserve still admits connections.
const MIN_SHARE_DIVISOR: u64 = 4;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now
/// in force (unchanged when raising fails, as it may in a sandbox).
pub fn raise_nofile_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let current = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft);
            tracing::warn!(error = %e, "cannot raise the file descriptor limit; keeping the current one");
            current.unwrap_or(1024)
        }
    }
}

/// The connection cap for a descriptor limit of `nofile`, keeping `reserved`
/// descriptors (database pool, outbound deliveries) plus a fixed reserve free.
pub fn derived_cap(nofile: u64, reserved: u64) -> usize {
    let cap = nofile.saturating_sub(reserved.saturating_add(FIXED_RESERVE)).max(nofile / MIN_SHARE_DIVISOR).max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_reserve_free() {
        assert_eq!(derived_cap(1024, 10 + 500), 450);
        assert_eq!(derived_cap(1_048_576, 510), 1_048_002);
    }

    #[test]
    fn a_tight_limit_still_admits_a_share() {
        assert_eq!(derived_cap(256, 510), 64);
        assert_eq!(derived_cap(0, 10), 1);
    }
}
