//! Waiting for asynchronous effects by polling with a deadline, never fixed sleeps.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// How long tests wait for an asynchronous effect by default: long enough for anything
/// on a loaded two-core machine, so it is only ever reached when the effect never comes.
pub const DEADLINE: Duration = Duration::from_secs(60);

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Polls `condition` until it returns `true`, pausing briefly (5 ms, doubling up to
/// 100 ms) between tries.
///
/// # Panics
/// When `timeout` passes first: the test fails with the timeout in the message.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(timeout, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await;
}

/// Polls `probe` until it returns `Some`, and returns that value. Same pacing as
/// [`wait_until`].
///
/// # Panics
/// When `timeout` passes first.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        let now = Instant::now();
        assert!(now < deadline, "condition not met within {timeout:?}");
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        wait_until(Duration::from_secs(5), || async { calls.fetch_add(1, Ordering::SeqCst) >= 3 }).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn poll_until_hands_back_the_value() {
        let calls = AtomicU32::new(0);
        let n = poll_until(Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            (n == 2).then_some(n)
        })
        .await;
        assert_eq!(n, 2);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "condition not met within")]
    async fn panics_at_the_deadline() {
        wait_until(Duration::from_secs(1), || async { false }).await;
    }
}
