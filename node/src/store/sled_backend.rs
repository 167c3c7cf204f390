//! The real [`Backend`]: one sled database in the node's data dir.

use std::path::Path;

use super::{Backend, Batch, BatchOp, KeyValue, StoreError};

/// A sled database. sled flushes on its own every 500 ms; callers that acknowledge
/// writes must still call [`Backend::flush`] first.
#[derive(Clone)]
pub struct SledBackend {
    db: sled::Db,
}

impl SledBackend {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(SledBackend { db })
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(StoreError::from)
            })
            .collect()
    }

    fn write(&self, mut batch: Batch) -> Result<(), StoreError> {
        // A single write is atomic in sled on its own, and much cheaper than
        // `apply_batch`, which takes a process-wide lock and writes extra log entries.
        if batch.ops.len() == 1 {
            match batch.ops.pop().expect("one op") {
                BatchOp::Put(k, v) => self.db.insert(k, v)?,
                BatchOp::Delete(k) => self.db.remove(k)?,
            };
            return Ok(());
        }
        let mut sled_batch = sled::Batch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put(k, v) => sled_batch.insert(k, v),
                BatchOp::Delete(k) => sled_batch.remove(k),
            }
        }
        Ok(self.db.apply_batch(sled_batch)?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_backend_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let first = SledBackend::open(&path).unwrap();
        let reopen_path = path.clone();
        crate::store::conformance::run(Box::new(first), move || {
            Box::new(SledBackend::open(&reopen_path).unwrap())
        });
    }
}
