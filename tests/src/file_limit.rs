//! A disk that fills up, without root: a node's soft `RLIMIT_FSIZE`, set at launch
//! or moved from outside while it runs (`prlimit`), makes every write past the limit
//! fail with `EFBIG`, as a full disk fails with `ENOSPC`.
//!
//! The node is launched with `SIGXFSZ` ignored, so such a write returns an error
//! instead of killing the process. The hard limit stays unlimited, so the test (same
//! uid) may raise the soft limit again: space freed. It must never touch any
//! process but the node it was asked about.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result};

/// Makes `command` start with `SIGXFSZ` ignored and a soft file-size limit of `soft`
/// bytes (`None`: unlimited); the hard limit is unlimited.
pub fn limit_at_launch(command: &mut Command, soft: Option<u64>) {
    let limit = rlimit(soft);
    // SAFETY: between fork and exec only async-signal-safe calls are made (signal,
    // setrlimit), touching no lock or allocation of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets the soft file-size limit of the running process `pid` to `soft` bytes
/// (`None`: unlimited), its hard limit unlimited.
pub fn set_limit(pid: u32, soft: Option<u64>) -> Result<()> {
    let limit = rlimit(soft);
    // SAFETY: `limit` is a valid rlimit and the old value is not asked for.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("prlimit RLIMIT_FSIZE of process {pid} to {soft:?}"));
    }
    Ok(())
}

fn rlimit(soft: Option<u64>) -> libc::rlimit {
    libc::rlimit {
        rlim_cur: soft.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    }
}

/// The size of the largest file under `dir` (a sled database's log is the one that
/// grows).
pub fn largest_file(dir: &std::path::Path) -> Result<u64> {
    let mut largest = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        largest = largest.max(if meta.is_dir() {
            largest_file(&entry.path())?
        } else {
            meta.len()
        });
    }
    Ok(largest)
}
