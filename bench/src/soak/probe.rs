//! What the soak samples of one running node, from outside, as an operator's tools
//! would see it: resident memory, open file descriptors and threads of its process
//! (`/proc/<pid>`), CPU seconds it used, and the bytes its data dir takes on disk.
//!
//! It must never touch the node: it only reads `/proc` and the file system.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Clock ticks per second of `utime` and `stime` in `/proc/<pid>/stat`: `USER_HZ`,
/// which Linux fixes at 100 for user space on every architecture this runs on.
const USER_HZ: f64 = 100.0;

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
    let proc = format!("/proc/{pid}");
    let status = std::fs::read_to_string(format!("{proc}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    if field(&status, "State:").is_some_and(|s| s.starts_with('Z')) {
        bail!("process {pid} exited (zombie)");
    }
    let kib = |name| -> Result<u64> {
        field(&status, name)
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {proc}/status"))
    };
    let rss = kib("VmRSS:")? * 1024;
    let threads = kib("Threads:")?;
    let fds = std::fs::read_dir(format!("{proc}/fd"))
        .with_context(|| format!("list {proc}/fd"))?
        .count() as u64;
    let stat = std::fs::read_to_string(format!("{proc}/stat"))
        .with_context(|| format!("read {proc}/stat"))?;
    let cpu_secs = cpu_ticks(&stat).with_context(|| format!("parse {proc}/stat"))? as f64 / USER_HZ;
    Ok(Reading {
        rss,
        fds,
        threads,
        disk: disk_bytes(data_dir)?,
        cpu_secs,
    })
}

/// The value after `name` on its line of a `/proc/<pid>/status`.
fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2) may hold
/// spaces and parentheses: fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After ")": state is field 3; utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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
    fn counts_cpu_from_the_last_parenthesis() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_ticks(stat), Some(300));
    }

    #[test]
    fn a_gone_process_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(u32::MAX - 1, dir.path()).is_err());
    }
}
