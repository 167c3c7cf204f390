//! Damage done to a stopped node's store, as a rotten sector or a torn write would:
//! for tests that a node survives what its disk does to it.
//!
//! It must never touch a running node's store (sled holds it locked).

use std::path::Path;

use anyhow::{ensure, Context, Result};

/// Flips the last byte of every record of document `doc` (its snapshot and chunks,
/// `d/<doc>/...`) in the sled store at `db_path`; returns the keys it damaged.
pub fn corrupt_document(db_path: &Path, doc: &str) -> Result<Vec<String>> {
    let db = sled::open(db_path).with_context(|| format!("open {}", db_path.display()))?;
    let mut keys = Vec::new();
    for entry in db.scan_prefix(format!("d/{doc}/").as_bytes()) {
        let (key, value) = entry?;
        let mut value = value.to_vec();
        *value.last_mut().context("empty record")? ^= 0xff;
        db.insert(&key, value)?;
        keys.push(String::from_utf8(key.to_vec())?);
    }
    ensure!(
        !keys.is_empty(),
        "no record of {doc} in {}",
        db_path.display()
    );
    db.flush()?;
    Ok(keys)
}
