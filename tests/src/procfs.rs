//! What a running process uses, read from Linux's `/proc`: its resident memory,
//! threads, open file descriptors and the CPU time it has consumed, to tell a node
//! that idles from one that spins or leaks. The tests and `bench soak` read it here.
//!
//! It must never change the process it looks at.

use std::time::Duration;

use anyhow::{Context, Result};

/// The value after `name` (e.g. `VmRSS:`) on its line of `/proc/<pid>/status`; an
/// error when the process is gone or has exited (a zombie).
fn status_field(pid: u32, name: &str) -> Result<String> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("process {pid} is gone"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    if field("State:").is_some_and(|s| s.starts_with('Z')) {
        anyhow::bail!("process {pid} exited (zombie)");
    }
    field(name).with_context(|| format!("no {name} in {path}"))
}

/// Resident memory of process `pid` (`VmRSS`), bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    kib_field(pid, "VmRSS:")
}

/// The peak resident memory of process `pid` since it started (`VmHWM`), bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64> {
    kib_field(pid, "VmHWM:")
}

fn kib_field(pid: u32, name: &str) -> Result<u64> {
    let value = status_field(pid, name)?;
    let kib: u64 = value
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{name} of process {pid}: {value:?}"))?;
    Ok(kib * 1024)
}

/// How many threads process `pid` runs.
pub fn threads(pid: u32) -> Result<u64> {
    let value = status_field(pid, "Threads:")?;
    value
        .parse()
        .with_context(|| format!("Threads of process {pid}: {value:?}"))
}

/// How many file descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("list {dir}"))?
        .count())
}

/// The CPU time process `pid` has used so far, user and system.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: the fields
    // after its closing parenthesis are the 3rd (state) on; utime and stime are the
    // 14th and 15th, in clock ticks.
    let after_name = stat
        .rsplit_once(')')
        .with_context(|| format!("{path}: no command name in {stat:?}"))?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .with_context(|| format!("{path}: field {} missing", index + 3))?
            .parse()
            .with_context(|| format!("{path}: field {} is not a number", index + 3))
    };
    let ticks = ticks(11)? + ticks(12)?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .context("read CLK_TCK")?
        .context("CLK_TCK is not set")? as u64;
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// Bytes process `pid` has passed to `write()` and its kin so far (`wchar` of
/// `/proc/<pid>/io`: what the program asked to write, before the page cache).
pub fn written_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let value = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .with_context(|| format!("no wchar in {path}"))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("wchar of process {pid}: {value:?}"))
}

/// The share of one core process `pid` used over `window`: CPU time used in the
/// window divided by the wall time it lasted (measured, not assumed).
pub async fn cpu_share(pid: u32, window: Duration) -> Result<f64> {
    let (cpu_before, started) = (cpu_time(pid)?, std::time::Instant::now());
    tokio::time::sleep(window).await;
    let used = cpu_time(pid)?.saturating_sub(cpu_before);
    Ok(used.as_secs_f64() / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(open_fds(me).unwrap() >= 3);
        assert!(rss_bytes(me).unwrap() > 1 << 20);
        assert!(threads(me).unwrap() >= 1);
        let written = written_bytes(me).unwrap();
        let file = std::env::temp_dir().join(format!("procfs-{me}"));
        std::fs::write(&file, [7u8; 4096]).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(written_bytes(me).unwrap() >= written + 4096);
        assert!(
            rss_bytes(u32::MAX - 1).is_err(),
            "a gone process is an error"
        );
        let before = cpu_time(me).unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(me).unwrap() > before);
    }
}
