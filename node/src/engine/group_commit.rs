//! Group commit: one flush makes the writes of every waiting writer durable; and the
//! first storage failure stops every write after it.
//!
//! A writer stages its records first and then waits here; a dedicated thread takes
//! every waiter queued so far, flushes once, and wakes them all. Waiters that arrive
//! during a flush share the next one. A waiter is never woken by a flush that started
//! before it queued, so a woken writer's records are on disk.
//!
//! Writers stage through [`GroupCommit::backend`], which counts the writes staged, so
//! a reader can wait until what it read is durable ([`GroupCommit::durable_reads`]).
//! A failed write or flush is final: sled 0.34 keeps the first i/o error of a
//! database for as long as it is open (`Config::set_global_error`, reset only when
//! the database is opened again), and the documents in memory hold changes the disk
//! may not. From then on every write, flush and durable read fails with that error,
//! and [`GroupCommit::watch_failure`] tells the server to stop the node, so that a
//! new process (its supervisor's restart) loads exactly what the disk holds. It must
//! never acknowledge a write, or serve a read, that the failure may have lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;

use tokio::sync::{oneshot, watch};

use super::EngineError;
use crate::store::{Backend, Batch, KeyValue, StoreError};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Counts of durable writes and of the flushes that carried them.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub writes: AtomicU64,
    pub flushes: AtomicU64,
}

/// What the writers, the readers and the flushing thread share.
struct Progress {
    /// Writes staged so far (counted once the backend took them).
    staged: AtomicU64,
    /// Writes staged before the last successful flush began: all durable.
    durable: AtomicU64,
    /// The first storage failure, in words; set once, never cleared.
    failure: OnceLock<String>,
    failed: watch::Sender<Option<String>>,
}

impl Progress {
    /// Records `e` as the store's failure (the first one stays) and returns it.
    fn fail(&self, e: &StoreError) -> String {
        let first = self.failure.get_or_init(|| {
            let failure = e.to_string();
            tracing::error!(error = %failure, "the store failed: every write is refused from now on and the node stops; it writes again once restarted");
            failure
        });
        self.failed.send_replace(Some(first.clone()));
        first.clone()
    }

    fn stopped(&self) -> Result<(), StoreError> {
        match self.failure.get() {
            Some(failure) => Err(StoreError::Stopped(failure.clone())),
            None => Ok(()),
        }
    }
}

/// The backend as the engine writes through it: counts the writes staged, and
/// refuses every write and flush once one failed.
struct Staging {
    inner: Arc<dyn Backend>,
    progress: Arc<Progress>,
}

impl Backend for Staging {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.scan_prefix(prefix)
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.progress.stopped()?;
        if let Err(e) = self.inner.write(batch) {
            self.progress.fail(&e);
            return Err(e);
        }
        self.progress.staged.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.progress.stopped()?;
        let staged = self.progress.staged.load(Ordering::SeqCst);
        if let Err(e) = self.inner.flush() {
            self.progress.fail(&e);
            return Err(e);
        }
        self.progress.durable.fetch_max(staged, Ordering::SeqCst);
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<(), StoreError> {
        Err(StoreError::Close {
            path: "the engine's store".into(),
            reason: "it is closed by whoever opened it, not through the engine".into(),
        })
    }
}

pub struct GroupCommit {
    queue: mpsc::Sender<Waiter>,
    stats: Arc<CommitStats>,
    progress: Arc<Progress>,
    staging: Arc<dyn Backend>,
}

impl GroupCommit {
    /// Starts the flushing thread; it ends when this value is dropped. Writes must
    /// go through [`GroupCommit::backend`] from now on.
    pub fn start(backend: Arc<dyn Backend>) -> Self {
        let (queue, waiters) = mpsc::channel::<Waiter>();
        let stats = Arc::new(CommitStats::default());
        let progress = Arc::new(Progress {
            staged: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            failure: OnceLock::new(),
            failed: watch::Sender::new(None),
        });
        let staging: Arc<dyn Backend> = Arc::new(Staging {
            inner: backend,
            progress: progress.clone(),
        });
        let thread_stats = stats.clone();
        let flushed = staging.clone();
        let thread_progress = progress.clone();
        thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                while let Ok(first) = waiters.recv() {
                    let mut batch = vec![first];
                    batch.extend(waiters.try_iter());
                    // Waiters are told the store's first failure, in its own words.
                    let result = flushed.flush().map_err(|e| match e {
                        StoreError::Stopped(failure) => failure,
                        e => thread_progress.fail(&e),
                    });
                    thread_stats.flushes.fetch_add(1, Ordering::Relaxed);
                    crate::events::flushed(batch.len(), result.is_ok());
                    if result.is_ok() {
                        thread_stats
                            .writes
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    for waiter in batch {
                        let _ = waiter.send(result.clone());
                    }
                }
            })
            .expect("spawn group-commit thread");
        GroupCommit {
            queue,
            stats,
            progress,
            staging,
        }
    }

    /// The backend writers stage through.
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.staging.clone()
    }

    /// Waits until everything staged before this call is durable.
    pub async fn durable(&self) -> Result<(), EngineError> {
        let asked = std::time::Instant::now();
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(tx)
            .map_err(|_| EngineError::NotDurable("the flushing thread has stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => {
                crate::events::durable_write(asked.elapsed());
                Ok(())
            }
            Ok(Err(e)) => Err(EngineError::NotDurable(e)),
            Err(_) => Err(EngineError::NotDurable(
                "the flushing thread has stopped".into(),
            )),
        }
    }

    /// Call after a read, with everything it read staged before: returns once all
    /// of it is durable (at once when nothing staged is waiting for a flush), or
    /// fails if a flush failed, so the read is never served.
    pub async fn durable_reads(&self) -> Result<(), EngineError> {
        let staged = self.progress.staged.load(Ordering::SeqCst);
        self.progress.stopped()?;
        if self.progress.durable.load(Ordering::SeqCst) < staged {
            self.durable().await?;
        }
        Ok(())
    }

    /// `Some(failure)` once the store failed: the node must stop.
    pub fn watch_failure(&self) -> watch::Receiver<Option<String>> {
        self.progress.failed.subscribe()
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, MemoryBackend};

    #[tokio::test]
    async fn staged_writes_are_durable_once_acknowledged() {
        let backend = MemoryBackend::new();
        let commits = GroupCommit::start(Arc::new(backend.clone()));
        let mut batch = Batch::default();
        batch.put(&b"k"[..], &b"v"[..]);
        backend.write(batch).unwrap();
        commits.durable().await.unwrap();
        let after_crash = backend.crash_and_reopen();
        assert_eq!(after_crash.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    /// A backend whose first flush waits for the test to open a gate, so the test
    /// knows which writers queued during it.
    struct GatedFlush {
        inner: MemoryBackend,
        entered: std::sync::Mutex<mpsc::Sender<()>>,
        gate: std::sync::Mutex<Option<mpsc::Receiver<()>>>,
    }

    impl Backend for GatedFlush {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
            self.inner.get(key)
        }
        fn scan_prefix(
            &self,
            prefix: &[u8],
        ) -> Result<Vec<crate::store::KeyValue>, crate::store::StoreError> {
            self.inner.scan_prefix(prefix)
        }
        fn write(&self, batch: Batch) -> Result<(), crate::store::StoreError> {
            self.inner.write(batch)
        }
        fn flush(&self) -> Result<(), crate::store::StoreError> {
            let gate = self.gate.lock().unwrap().take();
            if let Some(gate) = gate {
                self.entered.lock().unwrap().send(()).unwrap();
                gate.recv().unwrap();
            }
            self.inner.flush()
        }
        fn close(self: Box<Self>) -> Result<(), crate::store::StoreError> {
            Box::new(self.inner).close()
        }
    }

    /// Every writer that queues while a flush runs shares the next one.
    #[tokio::test]
    async fn writers_queued_during_a_flush_share_the_next_one() {
        let (entered_tx, entered) = mpsc::channel();
        let (open_gate, gate) = mpsc::channel();
        let commits = Arc::new(GroupCommit::start(Arc::new(GatedFlush {
            inner: MemoryBackend::new(),
            entered: std::sync::Mutex::new(entered_tx),
            gate: std::sync::Mutex::new(Some(gate)),
        })));
        let first = tokio::spawn({
            let commits = commits.clone();
            async move { commits.durable().await }
        });
        tokio::task::spawn_blocking(move || entered.recv().unwrap())
            .await
            .unwrap();
        // Poll each of 63 more writers once: that queues it, while the flush waits.
        let mut waiting: Vec<_> = (0..63).map(|_| Box::pin(commits.durable())).collect();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for w in &mut waiting {
            assert!(std::future::Future::poll(w.as_mut(), &mut cx).is_pending());
        }
        open_gate.send(()).unwrap();
        first.await.unwrap().unwrap();
        for w in waiting {
            w.await.unwrap();
        }
        let stats = commits.stats();
        assert_eq!(stats.writes.load(Ordering::Relaxed), 64);
        assert_eq!(stats.flushes.load(Ordering::Relaxed), 2);
    }
}
