//! Damage done to a stopped node's store, as a rotten sector or a torn write would:
//! for tests that a node survives what its disk does to it.
//!
//! It must never touch a running node's store (sled holds it locked), and it closes
//! the store with `Backend::close`, so a node started right after finds it free.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use mart_node::store::{Backend, Batch, SledBackend};

/// Flips the last byte of each record `pick` chooses among those under `prefixes`
/// in the sled store at `db_path`; returns the keys it damaged (at least one).
fn corrupt_records(
    db_path: &Path,
    prefixes: &[String],
    pick: impl FnOnce(Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<String>> {
    let db = SledBackend::open(db_path).with_context(|| format!("open {}", db_path.display()))?;
    let mut found = Vec::new();
    for prefix in prefixes {
        found.extend(db.scan_prefix(prefix.as_bytes())?);
    }
    let records = pick(found);
    ensure!(
        !records.is_empty(),
        "no record under {prefixes:?} in {}",
        db_path.display()
    );
    let mut batch = Batch::default();
    let mut keys = Vec::new();
    for (key, mut value) in records {
        *value.last_mut().context("empty record")? ^= 0xff;
        keys.push(String::from_utf8(key.clone())?);
        batch.put(key, value);
    }
    db.write(batch)?;
    Box::new(db).close()?;
    Ok(keys)
}

/// Flips the last byte of every record of document `doc` (its chunks, `d/<doc>/...`,
/// and its snapshot, `snap/<doc>`); returns the keys it damaged.
pub fn corrupt_document(db_path: &Path, doc: &str) -> Result<Vec<String>> {
    let prefixes = [format!("d/{doc}/"), format!("snap/{doc}")];
    corrupt_records(db_path, &prefixes, |records| records)
}

/// Flips the last byte of the newest chunk record of any ledger period; returns its
/// key.
pub fn corrupt_newest_ledger_chunk(db_path: &Path) -> Result<String> {
    let keys = corrupt_records(db_path, &["d/ledger/".into()], |records| {
        records
            .into_iter()
            .rfind(|(key, _)| key.windows(3).any(|w| w == b"/c/"))
            .into_iter()
            .collect()
    })?;
    Ok(keys.into_iter().next().expect("one record was damaged"))
}
