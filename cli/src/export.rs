//! `export`: one document taken out of a node, as its automerge bytes (loadable by
//! `@automerge/automerge` or any automerge library) or as plain JSON for a
//! spreadsheet or a data team.
//!
//! It must never leave a half-written file under the name asked for: the bytes go to
//! a temporary file beside it, renamed into place once complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use mart_proto::v1::ExportDocumentRequest;

use crate::output::Format;
use crate::rpc::{Node, RpcError};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The document, as `martctl docs` lists it (e.g. ledger/ttu/2026-12)
    pub id: String,
    /// Write it to this file (required for the automerge bytes; with --json the
    /// document goes to stdout without it)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// With the global `--json`: the document's current state as plain JSON (movements as
/// objects); without it, its automerge bytes with the whole history.
pub async fn export(node: &Node, a: ExportArgs, format: Format) -> Result<()> {
    let json = format == Format::Json;
    if a.out.is_none() && !json {
        bail!("the automerge bytes are binary: name a file with --out FILE (or ask for --json)");
    }
    let request = node.request(ExportDocumentRequest {
        doc_id: a.id.clone(),
        json,
    });
    let mut chunks = node.call(node.admin().export_document(request)).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks
        .message()
        .await
        .map_err(|s| RpcError::new(s.code(), s.message()))?
    {
        bytes.extend_from_slice(&chunk.data);
    }
    match &a.out {
        Some(path) => {
            write_whole(path, &bytes)?;
            eprintln!(
                "{}: {} bytes written to {}",
                a.id,
                bytes.len(),
                path.display()
            );
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut partial = path.to_path_buf();
    partial.set_file_name(format!(".{}.partial", name.to_string_lossy()));
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot move {} to {}", partial.display(), path.display()))?;
    Ok(())
}
