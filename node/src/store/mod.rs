//! Durable bytes: a narrow key-value [`Backend`] trait (sled for real, memory for
//! unit tests) and, on top of it, the [`DocStore`] that keeps each document as a
//! snapshot plus checksummed incremental chunks.
//!
//! Nothing here knows automerge or the domain: it stores and verifies bytes.

mod backend;
#[cfg(test)]
mod conformance;
mod doc_store;
mod error;
mod memory;
mod sled_backend;

pub use backend::{Backend, Batch, BatchOp, KeyValue};
pub use doc_store::{DocStore, StoredDoc};
pub use error::StoreError;
pub use memory::MemoryBackend;
pub use sled_backend::SledBackend;
