//! The reference: raw sled, one writer, `insert` then `flush()` per write.
//!
//! Opened the way the node opens its store (`Mode::HighThroughput`), in a fresh
//! directory, so the only difference from the node's write path is everything the
//! node does around the flush. Must never share a database with a node, and must run
//! before any node in the same process: sled's concurrency control is process-wide,
//! and the first `apply_batch` (which a node does) puts every later sled operation
//! behind a global lock.

use std::path::Path;

use anyhow::Context;

use crate::measure::{self, Measurement, Timing};

/// Bytes of each value written: about one recorded sale.
const VALUE_BYTES: usize = 100;

/// Inserts and flushes one value at a time into a new database at `path`.
pub fn insert_and_flush(path: &Path, timing: Timing) -> anyhow::Result<Measurement> {
    let db = sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        .open()
        .with_context(|| format!("open sled at {}", path.display()))?;
    let value = [0x5a_u8; VALUE_BYTES];
    let window = timing.open_window();
    let samples = measure::run_sync(window, |n| {
        db.insert(n.to_be_bytes(), &value[..])?;
        db.flush()?;
        Ok(())
    })?;
    Ok(Measurement::merge(window, [samples]))
}
