//! The narrow trait every storage backend implements.

use super::StoreError;

/// A key and its value, as a scan returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// Writes applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub ops: Vec<BatchOp>,
}

impl Batch {
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Put(key.into(), value.into()));
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Delete(key.into()));
        self
    }
}

/// An ordered key-value store.
///
/// Laws (checked by the conformance suite for every backend):
/// - a [`Backend::write`] is atomic: after any crash either all of its operations
///   are visible or none;
/// - after [`Backend::flush`] returns, every earlier write survives a crash and a
///   reopen;
/// - [`Backend::scan_prefix`] returns keys in ascending byte order;
/// - once [`Backend::close`] returns, a new handle on the same storage opens at
///   once (nothing of the old one is still holding it).
pub trait Backend: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;
    /// Applies a batch atomically. Not durable until the next [`Backend::flush`].
    fn write(&self, batch: Batch) -> Result<(), StoreError>;
    /// Makes every earlier write durable. May block for an fsync.
    fn flush(&self) -> Result<(), StoreError>;
    /// Flushes and releases the storage, returning only once a new handle may open
    /// it. Fails if other handles on it are still open.
    fn close(self: Box<Self>) -> Result<(), StoreError>;
}
