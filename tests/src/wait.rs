//! Waiting on a condition instead of sleeping: [`wait_until`] polls a predicate until
//! it holds or a deadline passes.
//!
//! It must never be used to retry the operation under test: the predicate only
//! observes (is the node answering, has the process exited).

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often the predicate is polled.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Polls `predicate` until it returns `Ok(true)`. An `Err` from the predicate stops the
/// wait at once (the condition can no longer become true, e.g. the process died); the
/// deadline passing is an error naming `what`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut predicate: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if predicate().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_once_the_predicate_holds() {
        let polls = AtomicU32::new(0);
        wait_until("the third poll", Duration::from_secs(5), || async {
            Ok(polls.fetch_add(1, Ordering::SeqCst) >= 2)
        })
        .await
        .unwrap();
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn times_out_naming_the_condition() {
        let err = wait_until("never", Duration::from_millis(50), || async { Ok(false) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[tokio::test]
    async fn an_error_stops_the_wait_at_once() {
        let started = Instant::now();
        let err = wait_until("impossible", Duration::from_secs(30), || async {
            anyhow::bail!("the process exited")
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("exited"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
