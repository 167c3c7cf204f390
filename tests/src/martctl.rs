//! Running the real `martctl` against a node's admin socket, as an operator does:
//! success with its output, JSON, or the refusal an operator sees.
//!
//! It must never retry a command or read anything but what martctl printed.

use std::path::Path;
use std::process::Output;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::binaries::martctl_bin;

/// Runs `martctl --node unix:<socket> <args>` (ignoring any MARTCTL_NODE around).
pub async fn run(socket: &Path, args: &[&str]) -> Result<Output> {
    tokio::process::Command::new(martctl_bin())
        .arg("--node")
        .arg(format!("unix:{}", socket.display()))
        .args(args)
        .env_remove("MARTCTL_NODE")
        // A test that gives up on a hung martctl (a timeout around this future) must
        // not leave it running.
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("run martctl {args:?} at {}", socket.display()))
}

/// What a run printed and how it exited, for an error message.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "martctl {args:?} exited {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs martctl and requires exit 0; returns stdout.
pub async fn ok(socket: &Path, args: &[&str]) -> Result<String> {
    let out = run(socket, args).await?;
    ensure!(out.status.success(), "{}", describe(args, &out));
    String::from_utf8(out.stdout).context("stdout is not UTF-8")
}

/// Runs martctl with `--json` and requires exit 0; returns what it printed.
pub async fn json(socket: &Path, args: &[&str]) -> Result<Value> {
    let args = [args, &["--json"]].concat();
    let stdout = ok(socket, &args).await?;
    serde_json::from_str(&stdout)
        .with_context(|| format!("martctl {args:?} printed no JSON: {stdout:?}"))
}

/// Like [`json`] for commands that print a JSON array.
pub async fn list(socket: &Path, args: &[&str]) -> Result<Vec<Value>> {
    match json(socket, args).await? {
        Value::Array(items) => Ok(items),
        other => bail!("martctl {args:?} printed {other}, not an array"),
    }
}

/// Runs martctl and requires the refusal an operator sees: its exit code (3 for a
/// permission refused, 1 for any other refusal, see `martctl --help`), nothing on
/// stdout, and `error: <code>: <message>` on stderr; returns that line.
pub async fn refused(socket: &Path, args: &[&str], code: &str) -> Result<String> {
    let out = run(socket, args).await?;
    let exit = match code {
        "permission denied" | "unauthenticated" => 3,
        _ => 1,
    };
    ensure!(out.status.code() == Some(exit), "{}", describe(args, &out));
    ensure!(out.stdout.is_empty(), "{}", describe(args, &out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .next()
        .filter(|l| l.starts_with(&format!("error: {code}: ")))
        .with_context(|| format!("not refused with {code:?}: {}", describe(args, &out)))?;
    Ok(line.to_string())
}
