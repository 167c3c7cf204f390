//! Group commit: one flush makes the writes of every waiting writer durable.
//!
//! A writer stages its records first and then waits here; a dedicated thread takes
//! every waiter queued so far, flushes once, and wakes them all. Waiters that arrive
//! during a flush share the next one. A waiter is never woken by a flush that started
//! before it queued, so a woken writer's records are on disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use tokio::sync::oneshot;

use super::EngineError;
use crate::store::Backend;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Counts of durable writes and of the flushes that carried them.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub writes: AtomicU64,
    pub flushes: AtomicU64,
}

pub struct GroupCommit {
    queue: mpsc::Sender<Waiter>,
    stats: Arc<CommitStats>,
}

impl GroupCommit {
    /// Starts the flushing thread; it ends when this value is dropped.
    pub fn start(backend: Arc<dyn Backend>) -> Self {
        let (queue, waiters) = mpsc::channel::<Waiter>();
        let stats = Arc::new(CommitStats::default());
        let thread_stats = stats.clone();
        thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                while let Ok(first) = waiters.recv() {
                    let mut batch = vec![first];
                    batch.extend(waiters.try_iter());
                    let result = backend.flush().map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "flush failed");
                    }
                    thread_stats.flushes.fetch_add(1, Ordering::Relaxed);
                    thread_stats
                        .writes
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    for waiter in batch {
                        let _ = waiter.send(result.clone());
                    }
                }
            })
            .expect("spawn group-commit thread");
        GroupCommit { queue, stats }
    }

    /// Waits until everything staged before this call is durable.
    pub async fn durable(&self) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(tx)
            .map_err(|_| EngineError::NotDurable("the flushing thread has stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(EngineError::NotDurable(e)),
            Err(_) => Err(EngineError::NotDurable(
                "the flushing thread has stopped".into(),
            )),
        }
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
