//! The README's command lines, as a test reads them: its indented code blocks, each
//! under its heading, lines joined where they end in `\`, with the shell variables
//! the README sets in them (`H=...; S=...`) kept in place.
//!
//! It must never rewrite a line: what a test runs is what a newcomer pastes.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The workspace's README.md.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

/// One code block of the README: the heading it sits under and its command lines.
#[derive(Debug, Clone)]
pub struct Block {
    pub heading: String,
    pub lines: Vec<String>,
}

/// The README's code blocks (lines indented by four spaces), continuation lines
/// joined, in the order they appear.
pub fn blocks() -> Result<Vec<Block>> {
    let text = std::fs::read_to_string(path()).context("read README.md")?;
    let mut blocks: Vec<Block> = Vec::new();
    let mut heading = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if let Some(title) = line.strip_prefix('#') {
            heading = title.trim_start_matches('#').trim().to_string();
        }
        if line.starts_with("    ") {
            if !in_block {
                blocks.push(Block {
                    heading: heading.clone(),
                    lines: Vec::new(),
                });
                in_block = true;
            }
            blocks
                .last_mut()
                .expect("a block")
                .lines
                .push(line.to_string());
        } else if !line.trim().is_empty() {
            in_block = false;
        }
    }
    for block in &mut blocks {
        block.lines = join_lines(block.lines.iter().map(String::as_str));
    }
    Ok(blocks)
}

/// Every command line of the README's code blocks, in the order they appear.
pub fn command_lines() -> Result<Vec<String>> {
    Ok(blocks()?.into_iter().flat_map(|b| b.lines).collect())
}

/// Lines with the four-space indent, continuation lines (ending in `\`) joined.
fn join_lines<'a>(raw: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for line in raw {
        let Some(code) = line.strip_prefix("    ") else {
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
    lines
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
