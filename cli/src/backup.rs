//! `backup --out DIR`: a backup of a running node (every document's automerge bytes
//! with its heads, the peer book), which `mart-node run --restore-from DIR` starts
//! from.
//!
//! It must never leave something that looks like a finished backup when it is not:
//! files go into `DIR.partial`, renamed to DIR only once the node sent the manifest
//! (its last file), and it refuses a DIR that exists.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use mart_proto::v1::BackupRequest;
use serde::Serialize;

use crate::output::{fields, print_json, Format};
use crate::rpc::{Node, RpcError};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The folder to create (it must not exist yet), e.g. backups/ttu-2026-12-07
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
struct BackupView {
    dir: String,
    files: usize,
    bytes: u64,
}

pub async fn backup(node: &Node, a: BackupArgs, format: Format) -> Result<()> {
    if a.out.exists() {
        bail!(
            "{} exists: name a new folder for the backup",
            a.out.display()
        );
    }
    let partial = partial_dir(&a.out)?;
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| {
            format!("cannot clear an unfinished backup at {}", partial.display())
        })?;
    }
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;

    let mut chunks = node
        .call(node.admin().backup(node.request(BackupRequest {})))
        .await?;
    let mut written = BTreeSet::new();
    let mut bytes = 0u64;
    let mut open: Option<(String, std::fs::File)> = None;
    let mut manifest = false;
    while let Some(chunk) = chunks
        .message()
        .await
        .map_err(|s| RpcError::new(s.code(), s.message()))?
    {
        if open.as_ref().is_none_or(|(path, _)| path != &chunk.path) {
            let target = partial.join(checked_path(&chunk.path)?);
            if !written.insert(chunk.path.clone()) {
                bail!("the node sent {} twice", chunk.path);
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = std::fs::File::create(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            open = Some((chunk.path.clone(), file));
        }
        let (path, file) = open.as_mut().expect("opened above");
        file.write_all(&chunk.data)?;
        bytes += chunk.data.len() as u64;
        if !chunk.more {
            file.sync_all()?;
            manifest |= path == "manifest.json";
            open = None;
        }
    }
    if !manifest {
        bail!(
            "the node ended the backup without its manifest: {} is unfinished",
            partial.display()
        );
    }
    std::fs::rename(&partial, &a.out)
        .with_context(|| format!("cannot move {} to {}", partial.display(), a.out.display()))?;
    let view = BackupView {
        dir: a.out.display().to_string(),
        files: written.len(),
        bytes,
    };
    if format == Format::Json {
        print_json(&view)?;
    } else {
        print!(
            "{}",
            fields(&[
                ("backup", view.dir.clone()),
                (
                    "files",
                    format!(
                        "{} ({} documents and the manifest)",
                        view.files,
                        view.files - 1
                    )
                ),
                ("bytes", view.bytes.to_string()),
                (
                    "restore",
                    format!("mart-node run --config FILE --restore-from {}", view.dir)
                ),
            ])
        );
    }
    Ok(())
}

/// `DIR.partial` beside DIR.
fn partial_dir(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("{} names no folder", out.display()))?;
    Ok(out.with_file_name(format!("{}.partial", name.to_string_lossy())))
}

/// A path the node sent, if it stays inside the backup folder.
fn checked_path(path: &str) -> Result<&Path> {
    let p = Path::new(path);
    let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
    if path.is_empty() || !plain {
        bail!("the node sent a file outside the backup folder: {path:?}");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_folder_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "documents/../../x", "./x"] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
        assert!(checked_path("documents/ledger~ttu~2026-12.automerge").is_ok());
    }
}
