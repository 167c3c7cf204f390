//! The README's command lines, as a test reads them: the lines of its indented code
//! blocks that start with a given command, joined where they end in `\`, with the
//! shell variables the README sets in them (`H=...; S=...`) kept in place.
//!
//! It must never rewrite a line: what a test runs is what a newcomer pastes.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The workspace's README.md.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

/// Every command line of the README's code blocks (indented by four spaces), with
/// continuation lines joined; in the order they appear.
pub fn command_lines() -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path()).context("read README.md")?;
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let Some(code) = line.strip_prefix("    ") else {
            if let Some(done) = current.take() {
                lines.push(done);
            }
            continue;
        };
        let piece = code.trim();
        let joined = match current.take() {
            Some(mut open) => {
                open.push(' ');
                open.push_str(piece);
                open
            }
            None => piece.to_string(),
        };
        match joined.strip_suffix('\\') {
            Some(open) => current = Some(open.trim_end().to_string()),
            None => lines.push(joined),
        }
    }
    lines.extend(current);
    Ok(lines)
}

/// The README's lines that start with `command ` (e.g. `grpcurl`).
pub fn lines_starting(command: &str) -> Result<Vec<String>> {
    let prefix = format!("{command} ");
    Ok(command_lines()?
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect())
}

/// Fails with a message naming `tests/run` when `tool` is not on PATH: a test never
/// skips for a missing tool.
pub fn require_tool(tool: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    anyhow::ensure!(
        found,
        "{tool} is not on PATH: run the tests with `tests/run`, which installs it \
         (tests/tools/install-{tool}.sh)"
    );
    Ok(())
}
