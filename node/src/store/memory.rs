//! An in-memory [`Backend`] for unit tests: "durable" means kept in the shared map,
//! so a reopened handle sees exactly what was flushed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Backend, Batch, BatchOp, KeyValue, StoreError};

#[derive(Debug, Default)]
struct Maps {
    /// What a reader sees.
    live: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What survives a crash: `live` as of the last flush.
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A map in memory. Clones share the map; [`MemoryBackend::crash_and_reopen`]
/// forgets every write since the last flush, as a power loss would.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    maps: Arc<Mutex<Maps>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new handle on the same storage after a simulated crash.
    pub fn crash_and_reopen(&self) -> Self {
        let mut maps = self.maps.lock().expect("memory backend lock");
        maps.live = maps.durable.clone();
        drop(maps);
        self.clone()
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .maps
            .lock()
            .expect("memory backend lock")
            .live
            .get(key)
            .cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let maps = self.maps.lock().expect("memory backend lock");
        Ok(maps
            .live
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let mut maps = self.maps.lock().expect("memory backend lock");
        for op in batch.ops {
            match op {
                BatchOp::Put(k, v) => {
                    maps.live.insert(k, v);
                }
                BatchOp::Delete(k) => {
                    maps.live.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let mut maps = self.maps.lock().expect("memory backend lock");
        maps.durable = maps.live.clone();
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<(), StoreError> {
        // Nothing is held open: a clone or `crash_and_reopen` sees the same maps.
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_backend_passes_the_conformance_suite() {
        let backend = MemoryBackend::new();
        let reopen_from = backend.clone();
        crate::store::conformance::run(Box::new(backend), move || {
            Box::new(reopen_from.crash_and_reopen())
        });
    }
}
