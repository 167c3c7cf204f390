//! Outside tools some tests drive (promtool, chromium): found on PATH, where
//! `tests/run` installs them (`tests/tools/install-*.sh`).
//!
//! It must never let a test skip: a missing tool is a failure that says how to get
//! it.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The path of `tool` on PATH, or an error naming `tests/run`.
pub fn require(tool: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{tool} is not installed: run the suite with tests/run, which installs it \
         (tests/tools/install-{tool}.sh)"
    )
}

/// Runs `tool` with `args` (and `stdin`), failing with its output unless it exits 0;
/// returns its stdout.
pub async fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use tokio::io::AsyncWriteExt;
    let binary = require(tool)?;
    let mut child = tokio::process::Command::new(&binary)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await?;
    }
    drop(input);
    let out = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{tool} {args:?} failed with {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}
