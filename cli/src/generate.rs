//! `martctl completions` and `martctl man`: shell completion scripts and man pages,
//! generated from the same clap definitions that parse the command line, so they
//! never drift from it.
//!
//! It must never connect to a node, and never write anywhere but stdout or the
//! directory it is given.

use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;

/// The shells `martctl completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Prints the completion script of `command` for `shell` on stdout.
pub fn completions(mut command: clap::Command, shell: Shell) -> Result<()> {
    let name = command.get_name().to_string();
    let mut out = std::io::stdout();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut command, name, &mut out)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut command, name, &mut out)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut command, name, &mut out)
        }
    }
    Ok(())
}

/// Writes `martctl.1` and one page per subcommand (`martctl-sell.1`, ...) into `dir`
/// (created if missing); prints the pages written.
pub fn man(command: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("write man pages into {}", dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("martctl") && name.ends_with(".1"))
        .collect();
    pages.sort();
    println!("{} man pages in {}", pages.len(), dir.display());
    Ok(())
}
