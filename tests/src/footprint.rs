//! What a running node holds, seen from outside: its resident memory
//! (`procfs::rss_bytes`) and the bytes of its data dir, so a test can assert that
//! something a peer did left both flat.
//!
//! It must never guess: a figure the kernel or the file system does not give is an
//! error, not a zero.

use std::path::Path;

use anyhow::{Context, Result};

/// Bytes of every file under `dir` (their lengths, as `du --apparent-size` counts).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// One reading of a node: memory and data dir, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub rss: u64,
    pub disk: u64,
}

impl Footprint {
    pub fn of(pid: u32, data_dir: &Path) -> Result<Footprint> {
        Ok(Footprint {
            rss: crate::procfs::rss_bytes(pid)?,
            disk: dir_bytes(data_dir)?,
        })
    }

    /// Growth since `before`, in MB (negative when it shrank).
    pub fn growth_mb(&self, before: &Footprint) -> (f64, f64) {
        let mb = |after: u64, before: u64| (after as f64 - before as f64) / 1e6;
        (mb(self.rss, before.rss), mb(self.disk, before.disk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("b"), [0u8; 24]).unwrap();
        assert_eq!(dir_bytes(dir.path()).unwrap(), 1024);
    }
}
