//! What the soak samples of one running node, from outside, as an operator's tools
//! would see it: resident memory, open file descriptors and threads of its process
//! (`/proc/<pid>`), CPU seconds it used, and the bytes its data dir takes on disk.
//!
//! It must never touch the node: it only reads `/proc` and the file system.

use std::path::Path;

use anyhow::{Context, Result};
use mart_tests::procfs;

/// One reading of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// `VmRSS`, bytes.
    pub rss: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub fds: u64,
    /// `Threads` of `/proc/<pid>/status`.
    pub threads: u64,
    /// Blocks allocated to every file under the data dir, bytes (what `du` counts).
    pub disk: u64,
    /// `utime + stime`, seconds.
    pub cpu_secs: f64,
}

/// Reads process `pid` and its data dir; fails if the process is gone or a zombie
/// (a node that died during the soak is a finding, never a gap in the table).
pub fn read(pid: u32, data_dir: &Path) -> Result<Reading> {
    Ok(Reading {
        rss: procfs::rss_bytes(pid)?,
        fds: procfs::open_fds(pid)? as u64,
        threads: procfs::threads(pid)?,
        disk: disk_bytes(data_dir)?,
        cpu_secs: procfs::cpu_time(pid)?.as_secs_f64(),
    })
}

/// Bytes allocated on disk to every file under `dir` (recursively; 512-byte blocks,
/// as `du` counts: a sparse file counts for what it holds, not its length).
pub fn disk_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A file sled removed between the listing and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 64 * 1024]).unwrap();
        let reading = read(std::process::id(), dir.path()).unwrap();
        assert!(reading.rss > 1 << 20, "{reading:?}");
        assert!(reading.fds >= 3 && reading.threads >= 1, "{reading:?}");
        assert!(reading.disk >= 64 * 1024, "{reading:?}");
    }

    #[test]
    fn a_gone_process_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(u32::MAX - 1, dir.path()).is_err());
    }
}
