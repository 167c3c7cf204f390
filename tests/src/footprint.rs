//! What a running node holds, seen from outside: its resident memory (`VmRSS` of
//! `/proc/<pid>/status`) and the bytes of its data dir, so a test can assert that
//! something a peer did left both flat.
//!
//! It must never guess: a figure the kernel or the file system does not give is an
//! error, not a zero.

use std::path::Path;

use anyhow::{Context, Result};

/// Resident memory of process `pid`, bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmRSS of {path}: {line:?}"))?;
    Ok(kib * 1024)
}

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
            rss: rss_bytes(pid)?,
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
    fn reads_this_process_and_a_dir() {
        assert!(rss_bytes(std::process::id()).unwrap() > 1 << 20);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("b"), [0u8; 24]).unwrap();
        assert_eq!(dir_bytes(dir.path()).unwrap(), 1024);
        assert!(rss_bytes(u32::MAX).is_err());
    }
}
