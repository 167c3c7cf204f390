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

    /// A backend whose flush takes as long as an fsync on a slow disk.
    struct SlowFlush(MemoryBackend);

    impl Backend for SlowFlush {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
            self.0.get(key)
        }
        fn scan_prefix(
            &self,
            prefix: &[u8],
        ) -> Result<Vec<crate::store::KeyValue>, crate::store::StoreError> {
            self.0.scan_prefix(prefix)
        }
        fn write(&self, batch: Batch) -> Result<(), crate::store::StoreError> {
            self.0.write(batch)
        }
        fn flush(&self) -> Result<(), crate::store::StoreError> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            self.0.flush()
        }
        fn close(self: Box<Self>) -> Result<(), crate::store::StoreError> {
            Box::new(self.0).close()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_flushes() {
        let commits = Arc::new(GroupCommit::start(Arc::new(
            SlowFlush(MemoryBackend::new()),
        )));
        let waits: Vec<_> = (0..64)
            .map(|_| {
                let commits = commits.clone();
                tokio::spawn(async move { commits.durable().await })
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        let stats = commits.stats();
        assert_eq!(stats.writes.load(Ordering::Relaxed), 64);
        // 64 writers queue within far less than one 20 ms flush: at most a handful of
        // flushes carry them all.
        let flushes = stats.flushes.load(Ordering::Relaxed);
        assert!(flushes <= 8, "{flushes} flushes for 64 concurrent writers");
    }
}
