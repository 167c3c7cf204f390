//! Supervision of the node's long-running background tasks (the district's dialer):
//! each runs until the node stops. One that returns before is restarted after a
//! backoff, or stops the node, as its [`OnReturn`] says; one that panics (where
//! panics unwind rather than end the process) always stops the node, since what it
//! held may be half-changed. Every early end is logged; none is ever silent.
//!
//! It must never restart a task after shutdown began, nor wait on a task forever
//! without a way for the node to stop.

use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// What a task returning before shutdown means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReturn {
    /// Start it again after a backoff: it keeps no state of its own.
    Restart,
    /// The node cannot work without it: stop the node with an error.
    StopNode,
}

/// Waits between restarts of a task: `first`, doubled at each restart up to `cap`;
/// back to `first` once a run lasted longer than `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_secs(1),
        cap: Duration::from_secs(60),
    };

    fn wait(&self, restarts: u32) -> Duration {
        self.first
            .saturating_mul(1u32 << restarts.min(16))
            .min(self.cap)
    }
}

/// The supervised tasks of a node.
pub struct Supervisor {
    stop: CancellationToken,
    backoff: Backoff,
    /// One supervising loop per task: `Err` says why the node must stop.
    loops: JoinSet<Result<(), String>>,
}

impl Supervisor {
    /// Tasks are told to stop through `stop`; once it is cancelled, a task that
    /// ends is not restarted.
    pub fn new(stop: CancellationToken, backoff: Backoff) -> Self {
        Supervisor {
            stop,
            backoff,
            loops: JoinSet::new(),
        }
    }

    /// Runs `start()` as task `name` under supervision.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, on_return: OnReturn, start: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let backoff = self.backoff;
        self.loops.spawn(async move {
            let mut restarts = 0u32;
            loop {
                let started = tokio::time::Instant::now();
                // Its own task, so that a panic, where it unwinds, reaches this loop
                // as an error instead of ending it.
                let ended = tokio::spawn(start()).await;
                if stop.is_cancelled() {
                    return Ok(());
                }
                let why = match ended {
                    Ok(()) => "returned".to_string(),
                    Err(e) => {
                        let why = panicked(e);
                        tracing::error!(task = name, "background task {why}; stopping the node");
                        return Err(format!("background task {name} {why}"));
                    }
                };
                if on_return == OnReturn::StopNode {
                    tracing::error!(
                        task = name,
                        "background task {why} before shutdown; stopping the node"
                    );
                    return Err(format!("background task {name} {why} before shutdown"));
                }
                if started.elapsed() > backoff.cap {
                    restarts = 0;
                }
                let wait = backoff.wait(restarts);
                restarts = restarts.saturating_add(1);
                tracing::error!(
                    task = name,
                    restarts,
                    ?wait,
                    "background task {why} before shutdown; restarting it"
                );
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// Why a task stopped the node, once one does; pending until then.
    pub async fn failure(&mut self) -> String {
        loop {
            match self.loops.join_next().await {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(reason))) => return reason,
                Some(Err(e)) => return format!("a supervisor loop {}", panicked(e)),
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// After `stop` was cancelled: waits until every task has ended.
    pub async fn join(mut self) {
        while self.loops.join_next().await.is_some() {}
    }
}

/// "panicked: <message>" (or how else the task ended) for a task's [`JoinError`].
fn panicked(e: JoinError) -> String {
    if !e.is_panic() {
        return format!("ended: {e}");
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(1),
        cap: Duration::from_millis(20),
    };
    const PATIENCE: Duration = Duration::from_secs(60);

    /// A task that counts its starts and returns at once.
    fn counting(starts: &Arc<AtomicU32>) -> impl Fn() -> std::future::Ready<()> + Send + 'static {
        let starts = starts.clone();
        move || {
            starts.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        }
    }

    async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !condition() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_task_that_returns_early_is_restarted_until_shutdown() {
        let stop = CancellationToken::new();
        let mut supervisor = Supervisor::new(stop.clone(), QUICK);
        let starts = Arc::new(AtomicU32::new(0));
        supervisor.spawn("dialer", OnReturn::Restart, counting(&starts));
        wait_for("three starts", || starts.load(Ordering::SeqCst) >= 3).await;
        // Restarting is no failure of the node.
        let failure = tokio::time::timeout(Duration::from_millis(50), supervisor.failure()).await;
        assert!(failure.is_err(), "{failure:?}");
        stop.cancel();
        tokio::time::timeout(PATIENCE, supervisor.join())
            .await
            .expect("the supervisor ends once stopped");
        let after = starts.load(Ordering::SeqCst);
        tokio::time::sleep(QUICK.cap * 2).await;
        assert_eq!(
            starts.load(Ordering::SeqCst),
            after,
            "restarted after shutdown"
        );
    }

    #[tokio::test]
    async fn a_vital_task_that_returns_early_stops_the_node() {
        let stop = CancellationToken::new();
        let mut supervisor = Supervisor::new(stop.clone(), QUICK);
        let starts = Arc::new(AtomicU32::new(0));
        supervisor.spawn("flusher", OnReturn::StopNode, counting(&starts));
        let failure = tokio::time::timeout(PATIENCE, supervisor.failure())
            .await
            .expect("the node is told to stop");
        assert!(
            failure.contains("flusher") && failure.contains("returned before shutdown"),
            "{failure}"
        );
        assert_eq!(starts.load(Ordering::SeqCst), 1, "never restarted");
    }

    #[tokio::test]
    async fn a_task_that_panics_stops_the_node_whatever_its_policy() {
        let stop = CancellationToken::new();
        let mut supervisor = Supervisor::new(stop.clone(), QUICK);
        supervisor.spawn("dialer", OnReturn::Restart, || async {
            panic!("the dialer broke");
        });
        let failure = tokio::time::timeout(PATIENCE, supervisor.failure())
            .await
            .expect("the node is told to stop");
        assert!(
            failure.contains("dialer panicked: the dialer broke"),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_task_that_ends_at_shutdown_is_neither_restarted_nor_a_failure() {
        let stop = CancellationToken::new();
        let mut supervisor = Supervisor::new(stop.clone(), QUICK);
        let starts = Arc::new(AtomicU32::new(0));
        let task_stop = stop.clone();
        let task_starts = starts.clone();
        supervisor.spawn("dialer", OnReturn::StopNode, move || {
            task_starts.fetch_add(1, Ordering::SeqCst);
            let stop = task_stop.clone();
            async move { stop.cancelled().await }
        });
        wait_for("the start", || starts.load(Ordering::SeqCst) == 1).await;
        stop.cancel();
        tokio::time::timeout(PATIENCE, supervisor.join())
            .await
            .expect("the supervisor ends once stopped");
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let waits: Vec<_> = (0..8).map(|n| Backoff::DEFAULT.wait(n)).collect();
        assert_eq!(waits[0], Duration::from_secs(1));
        assert_eq!(waits[3], Duration::from_secs(8));
        assert_eq!(waits[7], Duration::from_secs(60));
        assert_eq!(Backoff::DEFAULT.wait(40), Duration::from_secs(60));
    }
}
